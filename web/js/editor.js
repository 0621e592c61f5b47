// The editor's state and every edit it can make: the graph, the view, the selection, run state, undo.
// Gestures (gestures.js) and commands (app.js) call these methods; nothing else changes the graph.

import { Graph, compatible, emptyDocument, isLink } from './graph.js';
import { UndoStack } from './history.js';
import { layoutNode, TITLE_H } from './layout.js';
import { Renderer } from './render.js';
import { Transform, fitTransform } from './view.js';
import { nodeName, t } from './i18n.js';
import { notify } from './ui.js';

const CLIPBOARD_FORMAT = 'nodegraph/clipboard';
const CLIPBOARD_KEY = 'nodegraph.clipboard';
const GROUP_PAD = 16;

export class Editor {
  constructor(canvas, catalog) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.graph = new Graph(catalog, emptyDocument());
    this.view = new Transform(0, 0, 1);
    this.selection = new Set();
    this.runState = new Map();
    this.errors = new Map();
    this.undoStack = new UndoStack();
    this.renderer = new Renderer(this);
    this.layoutCache = new Map();
    this.stateVersion = 0;
    this.linkDrag = null;
    this.boxSelect = null;
    this.pointer = [0, 0];
    this.lastHint = '';
    this.drawTimes = [];
    this.frameCount = 0;
    this.listeners = new Set();
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
  }

  // ---- drawing -------------------------------------------------------------

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = rect.width;
    this.height = rect.height;
    this.canvas.width = Math.round(rect.width * dpr);
    this.canvas.height = Math.round(rect.height * dpr);
    this.canvas.style.width = `${rect.width}px`;
    this.canvas.style.height = `${rect.height}px`;
    this.requestDraw();
  }

  requestDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => this.drawNow());
  }

  drawNow() {
    this.drawPending = false;
    const started = performance.now();
    this.renderer.draw();
    const spent = performance.now() - started;
    this.drawTimes.push(spent);
    if (this.drawTimes.length > 600) this.drawTimes.shift();
    this.frameCount += 1;
  }

  // Call after anything the user would call a change: redraw and tell listeners (title, dirty mark).
  changed() {
    this.dirty = true;
    this.requestDraw();
    for (const listener of this.listeners) listener();
  }

  // The title a node shows: its own, else its type's name in the current language.
  nodeTitle(node) {
    const definition = this.graph.definition(node);
    return node.title || (definition ? nodeName(definition) : t('node.unknown', { type: node.type }));
  }

  // ---- geometry ------------------------------------------------------------

  layout(node) {
    const key = `${this.graph.version}/${this.stateVersion}`;
    const cached = this.layoutCache.get(node);
    if (cached && cached.key === key) return cached.layout;
    const layout = layoutNode(this.graph, node, this.runState.get(node.id));
    this.layoutCache.set(node, { key, layout });
    return layout;
  }

  nodeBox(node) {
    const layout = this.layout(node);
    const [x, y] = node.ui.pos || [0, 0];
    return { x, y, w: layout.w, h: layout.h, layout };
  }

  slotWorld(node, kind, name) {
    const box = this.nodeBox(node);
    const slot = (kind === 'input' ? box.layout.inputs : box.layout.outputs).get(name);
    return slot ? [box.x + slot.x, box.y + slot.y] : null;
  }

  linkedOutputs(id) {
    if (this.linkedOutputsVersion !== this.graph.version) {
      this.linkedOutputsMap = new Map();
      for (const link of this.graph.links()) {
        if (!this.linkedOutputsMap.has(link.source)) this.linkedOutputsMap.set(link.source, new Set());
        this.linkedOutputsMap.get(link.source).add(link.output);
      }
      this.linkedOutputsVersion = this.graph.version;
    }
    return this.linkedOutputsMap.get(id) || new Set();
  }

  // Page coordinates of a world point (for the test hook and DOM overlays).
  toPage(wx, wy) {
    const rect = this.canvas.getBoundingClientRect();
    const [sx, sy] = this.view.toScreen(wx, wy);
    return { x: rect.left + sx, y: rect.top + sy };
  }

  eventPoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  // Return what is under world point (wx, wy): a slot, widget, title, resize handle, node body, group title or null.
  hitTest(wx, wy) {
    const reach = Math.max(8, 10 / this.view.k);
    for (let i = this.graph.order.length - 1; i >= 0; i -= 1) {
      const node = this.graph.nodes.get(this.graph.order[i]);
      const box = this.nodeBox(node);
      if (wx < box.x - reach || wx > box.x + box.w + reach || wy < box.y - reach || wy > box.y + box.h + reach) continue;
      const { layout } = box;
      for (const [kind, slots] of [['output', layout.outputs], ['input', layout.inputs]]) {
        for (const [name, slot] of slots) {
          if (Math.hypot(wx - box.x - slot.x, wy - box.y - slot.y) <= reach) {
            if (layout.collapsed) return { kind, node, name, collapsed: true };
            return { kind, node, name };
          }
        }
      }
      if (wx < box.x || wx > box.x + box.w || wy < box.y || wy > box.y + box.h) continue;
      const lx = wx - box.x;
      const ly = wy - box.y;
      if (ly < TITLE_H) return { kind: lx < 24 ? 'collapse' : 'title', node };
      if (!layout.collapsed && lx > box.w - 12 && ly > box.h - 12) return { kind: 'resize', node };
      for (const widget of layout.widgets) {
        if (isLink(node.inputs[widget.name])) continue;
        if (lx >= widget.x && lx <= widget.x + widget.w && ly >= widget.y && ly <= widget.y + widget.h) {
          return { kind: 'widget', node, widget, lx: lx - widget.x, ly: ly - widget.y };
        }
      }
      return { kind: 'node', node };
    }
    const groups = this.graph.meta.groups;
    const corner = Math.max(12, 12 / this.view.k);
    for (let i = groups.length - 1; i >= 0; i -= 1) {
      const [x, y, w, h] = groups[i].bounding;
      if (wx >= x && wx <= x + w && wy >= y && wy <= y + 26) return { kind: 'group-title', group: groups[i] };
      if (wx >= x + w - corner && wx <= x + w && wy >= y + h - corner && wy <= y + h) {
        return { kind: 'group-resize', group: groups[i] };
      }
    }
    return null;
  }

  // ---- edits ---------------------------------------------------------------

  // Remember the document as it is now so the coming edit can be undone.
  record() {
    this.undoStack.record(this.graph.toDocument());
  }

  edited() {
    this.graph.changed();
    this.changed();
  }

  undo() {
    const document = this.undoStack.undo(this.graph.toDocument());
    if (document) this.restore(document);
  }

  redo() {
    const document = this.undoStack.redo(this.graph.toDocument());
    if (document) this.restore(document);
  }

  restore(document) {
    this.graph.load(document);
    for (const id of [...this.selection]) if (!this.graph.nodes.has(id)) this.selection.delete(id);
    this.changed();
  }

  addNode(type, worldPos) {
    this.record();
    const id = this.graph.addNode(type, worldPos);
    this.selection = new Set([id]);
    this.edited();
    return id;
  }

  deleteSelection() {
    if (!this.selection.size) return;
    this.record();
    this.graph.removeNodes([...this.selection]);
    for (const id of this.selection) this.runState.delete(id);
    this.selection.clear();
    this.edited();
  }

  setInput(node, name, value) {
    if (node.inputs[name] === value) return;
    this.record();
    if (value === undefined) delete node.inputs[name];
    else node.inputs[name] = value;
    this.clearErrors(node.id, name);
    this.edited();
  }

  clearErrors(id, input) {
    const list = this.errors.get(id);
    if (!list) return;
    const kept = list.filter((error) => input !== undefined && error.input !== input);
    if (kept.length) this.errors.set(id, kept);
    else this.errors.delete(id);
  }

  // Return why a link from (source, output) to (target, input) is rejected, or '' when it is valid.
  linkProblem(source, output, target, input) {
    const from = this.graph.outputType(source, output);
    const to = this.graph.inputType(target, input);
    if (source === target) return t('hint.self_link');
    if (!compatible(from, to)) return t('hint.incompatible', { from, to, input });
    if (this.reaches(target.id, source.id)) return t('hint.cycle');
    return '';
  }

  // Whether `to` is downstream of `from` (so linking to -> from would close a cycle).
  reaches(from, to) {
    const consumers = new Map();
    for (const link of this.graph.links()) {
      if (!consumers.has(link.source)) consumers.set(link.source, []);
      consumers.get(link.source).push(link.target);
    }
    const stack = [from];
    const seen = new Set(stack);
    while (stack.length) {
      const id = stack.pop();
      if (id === to) return true;
      for (const next of consumers.get(id) || []) {
        if (!seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    return false;
  }

  // Connect an output to an input; an input takes one link, so a new one replaces the old.
  connect(source, output, target, input) {
    const problem = this.linkProblem(source, output, target, input);
    if (problem) {
      this.hint(problem);
      return false;
    }
    this.record();
    this.graph.connect(source.id, output, target.id, input);
    this.clearErrors(target.id, input);
    this.edited();
    return true;
  }

  disconnect(target, input) {
    this.record();
    this.graph.disconnect(target.id, input);
    this.edited();
  }

  hint(message) {
    this.lastHint = message;
    notify(message, 'warning', 3500);
    this.requestDraw();
  }

  toggleMode(mode) {
    if (!this.selection.size) return;
    this.record();
    const nodes = [...this.selection].map((id) => this.graph.nodes.get(id));
    const allSet = nodes.every((node) => node.mode === mode);
    for (const node of nodes) {
      if (allSet) delete node.mode;
      else node.mode = mode;
    }
    this.edited();
  }

  toggleCollapse(nodes = [...this.selection].map((id) => this.graph.nodes.get(id))) {
    if (!nodes.length) return;
    this.record();
    const collapse = !nodes.every((node) => node.ui.collapsed);
    for (const node of nodes) {
      if (collapse) node.ui.collapsed = true;
      else delete node.ui.collapsed;
    }
    this.edited();
  }

  setTitle(node, title) {
    this.record();
    if (title) node.title = title;
    else delete node.title;
    this.edited();
  }

  setColor(node, color) {
    this.record();
    if (color) node.ui.color = color;
    else delete node.ui.color;
    this.edited();
  }

  selectAll() {
    this.selection = new Set(this.graph.nodes.keys());
    this.requestDraw();
  }

  // Wrap the selected nodes in a new group.
  groupSelection(title) {
    if (!this.selection.size) return null;
    const boxes = [...this.selection].map((id) => this.nodeBox(this.graph.nodes.get(id)));
    const x0 = Math.min(...boxes.map((box) => box.x)) - GROUP_PAD;
    const y0 = Math.min(...boxes.map((box) => box.y)) - GROUP_PAD - 26;
    const x1 = Math.max(...boxes.map((box) => box.x + box.w)) + GROUP_PAD;
    const y1 = Math.max(...boxes.map((box) => box.y + box.h)) + GROUP_PAD;
    this.record();
    const group = { title, bounding: [x0, y0, x1 - x0, y1 - y0].map(Math.round), color: '#3f5a7a' };
    this.graph.meta.groups.push(group);
    this.edited();
    return group;
  }

  // Nodes whose box lies inside a group's bounding rectangle.
  nodesInGroup(group) {
    const [x, y, w, h] = group.bounding;
    return [...this.graph.nodes.values()].filter((node) => {
      const box = this.nodeBox(node);
      return box.x >= x && box.y >= y && box.x + box.w <= x + w && box.y + box.h <= y + h;
    });
  }

  // ---- clipboard -----------------------------------------------------------

  copySelection() {
    if (!this.selection.size) return null;
    const ids = new Set(this.selection);
    const nodes = {};
    for (const id of this.graph.order) if (ids.has(id)) nodes[id] = structuredClone(this.graph.nodes.get(id));
    const text = JSON.stringify({ format: CLIPBOARD_FORMAT, nodes });
    localStorage.setItem(CLIPBOARD_KEY, text);
    return text;
  }

  // Paste nodes from clipboard text at the pointer: new ids, links among them kept, links from outside dropped.
  paste(text, worldPos) {
    let data;
    try {
      data = JSON.parse(text ?? localStorage.getItem(CLIPBOARD_KEY) ?? '');
    } catch {
      return false;
    }
    if (!data || (data.format !== CLIPBOARD_FORMAT && data.format !== 'nodegraph/workflow') || !data.nodes) return false;
    const entries = Object.entries(data.nodes);
    if (!entries.length) return false;
    const xs = entries.map(([, node]) => node.ui?.pos?.[0] ?? 0);
    const ys = entries.map(([, node]) => node.ui?.pos?.[1] ?? 0);
    const dx = worldPos[0] - Math.min(...xs);
    const dy = worldPos[1] - Math.min(...ys);
    this.record();
    const renamed = new Map();
    this.selection = new Set();
    for (const [oldId, original] of entries) {
      const node = structuredClone(original);
      const id = this.graph.uniqueId(oldId.replace(/_\d+$/, ''));
      renamed.set(oldId, id);
      node.inputs ??= {};
      node.ui = { ...(node.ui || {}) };
      node.ui.pos = [Math.round((node.ui.pos?.[0] ?? 0) + dx), Math.round((node.ui.pos?.[1] ?? 0) + dy)];
      this.graph.insert(id, node);
      this.selection.add(id);
    }
    for (const oldId of renamed.keys()) {
      const node = this.graph.nodes.get(renamed.get(oldId));
      for (const [input, value] of Object.entries(node.inputs)) {
        if (!isLink(value)) continue;
        if (renamed.has(value.from[0])) node.inputs[input] = { from: [renamed.get(value.from[0]), value.from[1]] };
        else this.graph.disconnect(node.id, input);
      }
    }
    this.edited();
    return true;
  }

  duplicateSelection() {
    const text = this.copySelection();
    if (!text) return;
    const boxes = [...this.selection].map((id) => this.nodeBox(this.graph.nodes.get(id)));
    this.paste(text, [Math.min(...boxes.map((b) => b.x)) + 30, Math.min(...boxes.map((b) => b.y)) + 30]);
  }

  // ---- view ----------------------------------------------------------------

  setView(view) {
    this.view = view;
    this.requestDraw();
  }

  bounds(nodes = [...this.graph.nodes.values()]) {
    if (!nodes.length) return null;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const node of nodes) {
      const box = this.nodeBox(node);
      x0 = Math.min(x0, box.x);
      y0 = Math.min(y0, box.y);
      x1 = Math.max(x1, box.x + box.w);
      y1 = Math.max(y1, box.y + box.h);
    }
    for (const group of nodes.length === this.graph.nodes.size ? this.graph.meta.groups : []) {
      const [x, y, w, h] = group.bounding;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + w);
      y1 = Math.max(y1, y + h);
    }
    return [x0, y0, x1, y1];
  }

  // Fit the selection, or everything when nothing is selected.
  fitView() {
    const chosen = [...this.selection].map((id) => this.graph.nodes.get(id));
    const bounds = this.bounds(chosen.length ? chosen : undefined);
    if (bounds) this.setView(fitTransform(bounds, this.width, this.height));
  }

  // ---- run state -----------------------------------------------------------

  setRunState(id, state) {
    if (state) this.runState.set(id, state);
    else this.runState.delete(id);
    this.stateVersion += 1;
    this.requestDraw();
  }

  clearRunState() {
    this.runState.clear();
    this.stateVersion += 1;
    this.requestDraw();
  }

  setErrors(errors) {
    this.errors.clear();
    for (const error of errors) {
      if (!error.node || !this.graph.nodes.has(error.node)) continue;
      if (!this.errors.has(error.node)) this.errors.set(error.node, []);
      this.errors.get(error.node).push(error);
    }
    this.stateVersion += 1;
    this.requestDraw();
  }

  // Replace the document, undoably; the view fits the new graph.
  loadDocument(document) {
    this.record();
    this.graph.load(document);
    this.selection.clear();
    this.errors.clear();
    this.clearRunState();
    this.changed();
    this.dirty = false;
    this.fitView();
  }
}
