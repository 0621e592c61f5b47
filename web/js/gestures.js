// Pointer gestures on the canvas: one gesture object per interaction, with handlers named for what happened.

import { compatible, isLink } from './graph.js';
import { ROW_H, TITLE_H, MIN_W } from './layout.js';
import { formatNumber } from './render.js';
import { nodeDescription, t } from './i18n.js';
import { api } from './api.js';
import { editText, notify, searchNodes, showMenu } from './ui.js';

const CLICK_SLOP = 4;
const NUMBER_DRAG_PX = 6;

function clamp(value, spec) {
  if (spec.min !== undefined && spec.min !== null) value = Math.max(spec.min, value);
  if (spec.max !== undefined && spec.max !== null) value = Math.min(spec.max, value);
  return spec.type === 'INT' ? Math.round(value) : value;
}

function stepOf(spec) {
  return spec.step ?? (spec.type === 'INT' ? 1 : 0.01);
}

// Round to the step so 0.1 + 0.2 shows as 0.3, not 0.30000000000000004.
function snap(value, spec) {
  const step = stepOf(spec);
  const decimals = Math.min(10, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  return clamp(Number((Math.round(value / step) * step).toFixed(decimals)), spec);
}

export function installGestures(editor, app) {
  const canvas = editor.canvas;
  let gesture = null;

  // Touch points by pointer id; two of them make a pinch.
  const touches = new Map();

  canvas.addEventListener('pointerleave', () => {
    document.getElementById('tooltip').hidden = true;
  });

  canvas.addEventListener('pointerdown', (event) => {
    document.getElementById('tooltip').hidden = true;
    const point = editor.eventPoint(event);
    if (event.pointerType === 'touch') {
      touches.set(event.pointerId, point);
      if (touches.size === 2) {
        // The second finger turns whatever the first one started into a pinch.
        editor.linkDrag = null;
        editor.boxSelect = null;
        gesture = pinchGesture();
        canvas.setPointerCapture(event.pointerId);
        return;
      }
    }
    if (gesture) return;
    document.activeElement?.blur?.();
    editor.pointer = point;
    if (event.button === 2) return;
    gesture = startGesture(event, point);
    if (gesture) {
      canvas.setPointerCapture(event.pointerId);
      gesture.pointerId = event.pointerId;
    }
  });

  canvas.addEventListener('pointermove', (event) => {
    const point = editor.eventPoint(event);
    editor.pointer = point;
    if (touches.has(event.pointerId)) touches.set(event.pointerId, point);
    if (gesture?.pinch) gesture.moved();
    else if (gesture && gesture.pointerId === event.pointerId) gesture.moved(point, event);
    else if (!gesture) updateCursor(point);
  });

  const finish = (event) => {
    touches.delete(event.pointerId);
    if (gesture?.pinch) {
      if (touches.size < 2) gesture = null;
      return;
    }
    if (!gesture || gesture.pointerId !== event.pointerId) return;
    const ended = gesture;
    gesture = null;
    ended.released(editor.eventPoint(event), event);
    editor.requestDraw();
  };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointercancel', finish);

  canvas.addEventListener('wheel', (event) => {
    event.preventDefault();
    const [sx, sy] = editor.eventPoint(event);
    // ctrlKey marks a trackpad pinch in Chromium; its deltas are small, so it zooms faster per unit.
    const speed = event.ctrlKey ? 0.01 : 0.0015;
    const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    editor.setView(editor.view.zoomAt(sx, sy, Math.exp(-delta * speed)));
  }, { passive: false });

  canvas.addEventListener('dblclick', (event) => {
    const point = editor.eventPoint(event);
    const [wx, wy] = editor.view.toWorld(...point);
    const hit = editor.hitTest(wx, wy);
    if (hit?.kind === 'title') return renameNode(hit.node);
    if (hit?.kind === 'group-title') return renameGroup(hit.group);
    if (!hit) return addBySearch(event.clientX, event.clientY, [wx, wy]);
    return undefined;
  });

  canvas.addEventListener('contextmenu', (event) => {
    event.preventDefault();
    const point = editor.eventPoint(event);
    const [wx, wy] = editor.view.toWorld(...point);
    const hit = editor.hitTest(wx, wy);
    if (hit?.node) {
      if (!editor.selection.has(hit.node.id)) editor.selection = new Set([hit.node.id]);
      editor.requestDraw();
      showMenu(event.clientX, event.clientY, app.nodeMenu(hit.node));
    } else if (hit?.kind === 'group-title') {
      showMenu(event.clientX, event.clientY, app.groupMenu(hit.group));
    } else {
      showMenu(event.clientX, event.clientY, app.canvasMenu([wx, wy], event.clientX, event.clientY));
    }
  });

  function updateCursor(point) {
    const hit = editor.hitTest(...editor.view.toWorld(...point));
    const cursors = { output: 'crosshair', input: 'crosshair', resize: 'nwse-resize', widget: 'pointer', title: 'move',
      'group-title': 'move', 'group-resize': 'nwse-resize', collapse: 'pointer' };
    canvas.style.cursor = cursors[hit?.kind] || 'default';
    showTooltip(hit, point);
  }

  // Describe the slot or node under the pointer: its type and description, or the reason it was skipped.
  function showTooltip(hit, point) {
    const tooltip = document.getElementById('tooltip');
    let text = '';
    if (hit?.kind === 'input' || hit?.kind === 'output') {
      const specs = hit.kind === 'input' ? editor.graph.inputSpecs(hit.node) : editor.graph.outputSpecs(hit.node);
      const spec = specs.find((item) => item.name === hit.name);
      text = spec ? `${spec.name} (${spec.type})${spec.description ? ` — ${spec.description}` : ''}` : '';
    } else if (hit?.kind === 'title') {
      const state = editor.runState.get(hit.node.id);
      const description = nodeDescription(editor.graph.definition(hit.node));
      const reason = state?.reason ? t(`reason.${state.reason}`) : '';
      text = reason ? `${t(`state.${state.status}`)}: ${reason === `reason.${state.reason}` ? state.reason : reason}` : description;
    }
    tooltip.hidden = !text;
    if (!text) return;
    tooltip.textContent = text;
    const rect = canvas.getBoundingClientRect();
    tooltip.style.left = `${rect.left + point[0] + 14}px`;
    tooltip.style.top = `${rect.top + point[1] + 18}px`;
  }

  // ---- choosing a gesture ----------------------------------------------------

  function startGesture(event, point) {
    if (event.button === 1) return panGesture(point);
    const [wx, wy] = editor.view.toWorld(...point);
    const hit = editor.hitTest(wx, wy);
    switch (hit?.kind) {
      case 'output':
        return linkGesture(hit.node, hit.name, true, point);
      case 'input': {
        const value = hit.node.inputs[hit.name];
        if (isLink(value)) {
          // Reroute: pick up the link's end and carry it from its source.
          const source = editor.graph.nodes.get(value.from[0]);
          editor.disconnect(hit.node, hit.name);
          if (source) return linkGesture(source, value.from[1], true, point, { rerouted: true });
          return null;
        }
        return linkGesture(hit.node, hit.name, false, point);
      }
      case 'widget':
        select(hit.node, event);
        return widgetGesture(hit, point);
      case 'collapse':
        editor.toggleCollapse([hit.node]);
        return null;
      case 'resize':
        return resizeGesture(hit.node, point);
      case 'title':
      case 'node':
        return moveGesture(hit.node, point, event);
      case 'group-title':
        return groupGesture(hit.group, point);
      case 'group-resize':
        return groupResizeGesture(hit.group, point);
      default:
        if (event.shiftKey || event.ctrlKey || event.metaKey) return boxGesture(point, event);
        return panGesture(point, true);
    }
  }

  function select(node, event) {
    if (event.shiftKey) {
      editor.selection.add(node.id);
    } else if (!editor.selection.has(node.id)) {
      editor.selection = new Set([node.id]);
    }
    editor.graph.bringToFront([node.id]);
    editor.requestDraw();
  }

  // ---- pan, box select -------------------------------------------------------

  function panGesture(start, clearsSelection = false) {
    const view = editor.view;
    let travelled = 0;
    return {
      moved(point) {
        travelled = Math.max(travelled, Math.hypot(point[0] - start[0], point[1] - start[1]));
        editor.setView(view.translate(point[0] - start[0], point[1] - start[1]));
      },
      released() {
        if (clearsSelection && travelled < CLICK_SLOP && editor.selection.size) {
          editor.selection.clear();
          editor.requestDraw();
        }
      },
    };
  }

  // Two fingers: the view follows their midpoint and scales with the distance between them.
  function pinchGesture() {
    const [a, b] = [...touches.values()];
    const view = editor.view;
    const startMid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const startDistance = Math.max(1, Math.hypot(a[0] - b[0], a[1] - b[1]));
    return {
      pinch: true,
      moved() {
        const [p, q] = [...touches.values()];
        if (!q) return;
        const mid = [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2];
        const scale = Math.hypot(p[0] - q[0], p[1] - q[1]) / startDistance;
        editor.setView(view.translate(mid[0] - startMid[0], mid[1] - startMid[1]).zoomAt(mid[0], mid[1], scale));
      },
      released() {},
    };
  }

  function boxGesture(start, event) {
    const base = event.shiftKey ? new Set(editor.selection) : new Set();
    return {
      moved(point) {
        editor.boxSelect = {
          x0: Math.min(start[0], point[0]), y0: Math.min(start[1], point[1]),
          x1: Math.max(start[0], point[0]), y1: Math.max(start[1], point[1]),
        };
        const [wx0, wy0] = editor.view.toWorld(editor.boxSelect.x0, editor.boxSelect.y0);
        const [wx1, wy1] = editor.view.toWorld(editor.boxSelect.x1, editor.boxSelect.y1);
        const chosen = new Set(base);
        for (const node of editor.graph.nodes.values()) {
          const box = editor.nodeBox(node);
          if (box.x < wx1 && box.x + box.w > wx0 && box.y < wy1 && box.y + box.h > wy0) chosen.add(node.id);
        }
        editor.selection = chosen;
        editor.requestDraw();
      },
      released() {
        editor.boxSelect = null;
      },
    };
  }

  // ---- moving and resizing ---------------------------------------------------

  function moveGesture(node, start, event) {
    const wasSelected = editor.selection.has(node.id);
    select(node, event);
    const nodes = [...editor.selection].map((id) => editor.graph.nodes.get(id));
    const origins = nodes.map((item) => [...(item.ui.pos || [0, 0])]);
    const before = editor.graph.toDocument();
    let moving = false;
    return {
      moved(point) {
        if (!moving && Math.hypot(point[0] - start[0], point[1] - start[1]) < CLICK_SLOP) return;
        if (!moving) editor.undoStack.record(before);
        moving = true;
        const dx = (point[0] - start[0]) / editor.view.k;
        const dy = (point[1] - start[1]) / editor.view.k;
        nodes.forEach((item, i) => {
          item.ui.pos = [Math.round(origins[i][0] + dx), Math.round(origins[i][1] + dy)];
        });
        editor.changed();
      },
      released() {
        if (moving) return;
        if (event.shiftKey && wasSelected) editor.selection.delete(node.id);
        else if (!event.shiftKey) editor.selection = new Set([node.id]);
        editor.requestDraw();
      },
    };
  }

  function groupGesture(group, start) {
    const nodes = editor.nodesInGroup(group);
    const origins = nodes.map((node) => [...node.ui.pos]);
    const bounding = [...group.bounding];
    const before = editor.graph.toDocument();
    let moving = false;
    return {
      moved(point) {
        if (!moving && Math.hypot(point[0] - start[0], point[1] - start[1]) < CLICK_SLOP) return;
        if (!moving) editor.undoStack.record(before);
        moving = true;
        const dx = Math.round((point[0] - start[0]) / editor.view.k);
        const dy = Math.round((point[1] - start[1]) / editor.view.k);
        group.bounding = [bounding[0] + dx, bounding[1] + dy, bounding[2], bounding[3]];
        nodes.forEach((node, i) => {
          node.ui.pos = [origins[i][0] + dx, origins[i][1] + dy];
        });
        editor.changed();
      },
      released() {},
    };
  }

  function groupResizeGesture(group, start) {
    const [x, y, w, h] = group.bounding;
    const before = editor.graph.toDocument();
    let resized = false;
    return {
      moved(point) {
        if (!resized) editor.undoStack.record(before);
        resized = true;
        const dx = (point[0] - start[0]) / editor.view.k;
        const dy = (point[1] - start[1]) / editor.view.k;
        group.bounding = [x, y, Math.round(Math.max(120, w + dx)), Math.round(Math.max(60, h + dy))];
        editor.changed();
      },
      released() {},
    };
  }

  function resizeGesture(node, start) {
    const box = editor.nodeBox(node);
    const before = editor.graph.toDocument();
    let resized = false;
    return {
      moved(point) {
        if (!resized) editor.undoStack.record(before);
        resized = true;
        const w = Math.max(MIN_W, box.w + (point[0] - start[0]) / editor.view.k);
        const h = Math.max(TITLE_H + ROW_H, box.h + (point[1] - start[1]) / editor.view.k);
        node.ui.size = [Math.round(w), Math.round(h)];
        editor.graph.changed();
        editor.changed();
      },
      released() {},
    };
  }

  // ---- links -----------------------------------------------------------------

  function linkGesture(node, name, fromOutput, start, { rerouted = false } = {}) {
    const type = fromOutput ? editor.graph.outputType(node, name) : editor.graph.inputType(node, name);
    const anchor = editor.slotWorld(node, fromOutput ? 'output' : 'input', name);
    editor.linkDrag = { fromOutput, type, anchor, pointer: editor.view.toWorld(...start), rejected: false };
    return {
      moved(point) {
        const world = editor.view.toWorld(...point);
        const hit = editor.hitTest(...world);
        const target = dropTarget(hit);
        editor.linkDrag.pointer = target && target.kind !== 'node'
          ? editor.slotWorld(target.node, target.kind, target.name) : world;
        editor.linkDrag.rejected = Boolean(target && target.problem);
        editor.requestDraw();
      },
      released(point, event) {
        editor.linkDrag = null;
        const world = editor.view.toWorld(...point);
        const hit = editor.hitTest(...world);
        if (!hit) {
          if (Math.hypot(point[0] - start[0], point[1] - start[1]) < CLICK_SLOP && !rerouted) return;
          linkIntoSpace(world, event);
          return;
        }
        const target = dropTarget(hit);
        if (!target) return;
        if (target.problem) {
          editor.hint(target.problem);
          return;
        }
        connectTo(target.node, target.name);
      },
    };

    function connectTo(other, otherName) {
      if (fromOutput) editor.connect(node, name, other, otherName);
      else editor.connect(other, otherName, node, name);
    }

    // The slot a drop at `hit` would link to: the slot itself, or the first fitting one of a node.
    function dropTarget(hit) {
      if (!hit?.node || hit.node === node && !hit.name) return null;
      const expectedKind = fromOutput ? 'input' : 'output';
      if (hit.kind === 'input' || hit.kind === 'output') {
        if (hit.kind !== expectedKind) return null;
        const problem = fromOutput ? editor.linkProblem(node, name, hit.node, hit.name)
          : editor.linkProblem(hit.node, hit.name, node, name);
        return { kind: expectedKind, node: hit.node, name: hit.name, problem };
      }
      const slotName = firstFit(hit.node);
      if (!slotName) {
        const problem = t('hint.no_fitting_slot', { node: editor.nodeTitle(hit.node), type });
        return { kind: 'node', node: hit.node, problem };
      }
      return { kind: expectedKind, node: hit.node, name: slotName, problem: '' };
    }

    function firstFit(other) {
      if (fromOutput) {
        const specs = editor.graph.inputSpecs(other);
        const free = specs.find((spec) => !isLink(other.inputs[spec.name]) && compatible(type, spec.type)
          && !editor.linkProblem(node, name, other, spec.name));
        return free?.name ?? null;
      }
      const spec = editor.graph.outputSpecs(other).find((item) => !editor.linkProblem(other, item.name, node, name));
      return spec?.name ?? null;
    }

    // Dropped on empty canvas: pick a compatible node type in the search box and link it.
    async function linkIntoSpace(world, event) {
      const filter = (definition) => (fromOutput
        ? definition.inputs.some((spec) => compatible(type, spec.type))
        : definition.outputs.some((spec) => compatible(spec.type, type)));
      const picked = await searchNodes(event.clientX, event.clientY, editor.graph.catalog, filter,
        t('search.compatible', { type }));
      if (!picked) return;
      const position = fromOutput ? world : [world[0] - 240, world[1]];
      const id = editor.addNode(picked, position);
      const other = editor.graph.nodes.get(id);
      const otherName = firstFit(other);
      if (otherName) connectTo(other, otherName);
    }
  }

  // ---- widgets ---------------------------------------------------------------

  function widgetGesture(hit, start) {
    const { node, widget } = hit;
    const { spec } = widget;
    const value = node.inputs[widget.name];
    const row = Math.floor(hit.ly / ROW_H);
    let travelled = 0;

    if (widget.kind === 'toggle') return tap(() => editor.setInput(node, widget.name, !(value === true)));
    if (widget.kind === 'seed' && row === 1) return tap(() => toggleRandomize(node, widget.name));
    if (widget.kind === 'upload') return tap(() => (row === 0 ? chooseFrom(node, widget) : upload(node, widget)));
    if (widget.kind === 'text' || widget.kind === 'textarea') return tap(() => editWidgetText(node, widget));
    if (widget.kind === 'combo') {
      return tap(() => {
        if (hit.lx < 16) return cycle(node, widget, -1);
        if (hit.lx > widget.w - 16) return cycle(node, widget, 1);
        return chooseFrom(node, widget);
      });
    }
    if (widget.kind === 'slider') {
      const before = editor.graph.toDocument();
      let recorded = false;
      const setFrom = (point) => {
        const [wx] = editor.view.toWorld(...point);
        const box = editor.nodeBox(node);
        const fraction = Math.min(1, Math.max(0, (wx - box.x - widget.x) / widget.w));
        const min = spec.min ?? 0;
        const max = spec.max ?? 1;
        if (!recorded) editor.undoStack.record(before);
        recorded = true;
        node.inputs[widget.name] = snap(min + fraction * (max - min), spec);
        editor.clearErrors(node.id, widget.name);
        editor.edited();
      };
      return {
        moved(point) { setFrom(point); },
        released(point) { setFrom(point); },
      };
    }

    // number and seed: arrows step, a horizontal drag changes by one step per few pixels, a click types.
    const origin = typeof value === 'number' ? value : (spec.default ?? 0);
    const before = editor.graph.toDocument();
    let recorded = false;
    return {
      moved(point) {
        travelled = Math.max(travelled, Math.abs(point[0] - start[0]));
        if (travelled < CLICK_SLOP) return;
        if (!recorded) editor.undoStack.record(before);
        recorded = true;
        const steps = Math.round((point[0] - start[0]) / NUMBER_DRAG_PX);
        node.inputs[widget.name] = snap(origin + steps * stepOf(spec), spec);
        editor.clearErrors(node.id, widget.name);
        editor.edited();
      },
      released() {
        if (travelled >= CLICK_SLOP) return;
        if (hit.lx < 16) editor.setInput(node, widget.name, snap(origin - stepOf(spec), spec));
        else if (hit.lx > widget.w - 16) editor.setInput(node, widget.name, snap(origin + stepOf(spec), spec));
        else editWidgetText(node, widget);
      },
    };

    function tap(action) {
      return {
        moved(point) { travelled = Math.max(travelled, Math.hypot(point[0] - start[0], point[1] - start[1])); },
        released() { if (travelled < CLICK_SLOP) action(); },
      };
    }
  }

  function toggleRandomize(node, name) {
    editor.record();
    const names = new Set(node.ui.randomize || []);
    if (names.has(name)) names.delete(name);
    else names.add(name);
    if (names.size) node.ui.randomize = [...names];
    else delete node.ui.randomize;
    editor.edited();
  }

  function cycle(node, widget, direction) {
    const choices = widget.spec.choices;
    if (!choices.length) return;
    const index = choices.indexOf(node.inputs[widget.name]);
    editor.setInput(node, widget.name, choices[(index + direction + choices.length) % choices.length]);
  }

  function chooseFrom(node, widget) {
    const choices = widget.spec.choices || [];
    const box = editor.nodeBox(node);
    const at = editor.toPage(box.x + widget.x, box.y + widget.y + ROW_H);
    if (!choices.length) {
      notify(t('widget.no_choices', { input: widget.name }), 'info');
      return;
    }
    showMenu(at.x, at.y, choices.map((choice) => ({
      label: String(choice), checked: choice === node.inputs[widget.name],
      action: () => editor.setInput(node, widget.name, choice),
    })));
  }

  function upload(node, widget) {
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = 'image/*';
    input.hidden = true;
    document.body.append(input);
    input.addEventListener('change', async () => {
      input.remove();
      const file = input.files[0];
      if (!file) return;
      try {
        const result = await api.upload(file);
        editor.setInput(node, widget.name, result.name);
      } catch (error) {
        notify(t('error.upload', { file: file.name, message: error.message }), 'error');
      }
    });
    input.click();
  }

  async function editWidgetText(node, widget) {
    const box = editor.nodeBox(node);
    const topLeft = editor.toPage(box.x + widget.x, box.y + widget.y);
    const k = editor.view.k;
    const numeric = widget.kind === 'number' || widget.kind === 'seed';
    const height = widget.kind === 'textarea' ? widget.h : ROW_H - 2;
    const current = node.inputs[widget.name];
    const text = numeric ? formatNumber(current, widget.spec) : (current ?? '');
    const result = await editText({ x: topLeft.x, y: topLeft.y, w: widget.w * k, h: Math.max(60, height) * k },
      text, { multiline: widget.kind === 'textarea', fontSize: Math.max(10, 13 * k), numeric });
    if (result === null) return;
    if (!numeric) {
      editor.setInput(node, widget.name, result);
      return;
    }
    const number = Number(result.trim());
    if (result.trim() === '' || !Number.isFinite(number)) {
      editor.hint(t('hint.not_a_number', { value: result, input: widget.name }));
      return;
    }
    if (widget.spec.type === 'INT' && !Number.isInteger(number)) {
      editor.hint(t('hint.not_an_integer', { value: result, input: widget.name }));
      return;
    }
    editor.setInput(node, widget.name, clamp(number, widget.spec));
  }

  // ---- titles ----------------------------------------------------------------

  async function renameNode(node) {
    const box = editor.nodeBox(node);
    const at = editor.toPage(box.x + 22, box.y + 2);
    const k = editor.view.k;
    const current = editor.nodeTitle(node);
    const result = await editText({ x: at.x, y: at.y, w: (box.w - 30) * k, h: (TITLE_H - 4) * k }, current,
      { fontSize: Math.max(10, 13 * k) });
    if (result === null || result === current) return;
    editor.setTitle(node, result.trim());
  }

  async function renameGroup(group) {
    const at = editor.toPage(group.bounding[0] + 4, group.bounding[1] + 1);
    const k = editor.view.k;
    const result = await editText({ x: at.x, y: at.y, w: (group.bounding[2] - 8) * k, h: 24 * k }, group.title || '',
      { fontSize: Math.max(10, 14 * k) });
    if (result === null || result === group.title) return;
    editor.record();
    group.title = result.trim();
    editor.edited();
  }

  async function addBySearch(clientX, clientY, world) {
    const picked = await searchNodes(clientX, clientY, editor.graph.catalog);
    if (picked) editor.addNode(picked, world);
  }

  return { renameNode, renameGroup, addBySearch };
}
