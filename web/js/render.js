// Draw the graph on the canvas. Only what is inside the viewport is drawn; far out, text and widgets are left out.

import { t } from './i18n.js';
import { isLink } from './graph.js';
import { ROW_H, TITLE_H, typeColor } from './layout.js';
import { fileUrl } from './api.js';

const DETAIL_SCALE = 0.4;
// Below this scale a slot is under a pixel wide, so nodes are plain rectangles without slots.
const OUTLINE_SCALE = 0.2;
const FONT = '12px system-ui, sans-serif';
const TITLE_FONT = 'bold 13px system-ui, sans-serif';
const STATUS_COLORS = {
  running: '#4fc3f7', finished: '#66bb6a', cached: '#9ccc65', skipped: '#8a8f98', failed: '#ef5350', queued: '#bbbbbb',
};
const MODE_FILL = { bypass: '#4b3566', mute: '#2b2d31' };

export function formatNumber(value, spec) {
  if (typeof value !== 'number') return value === undefined ? '' : String(value);
  if (spec.type === 'INT') return String(Math.round(value));
  const step = spec.step ?? 0.01;
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  return value.toFixed(decimals);
}

// Fitted labels by font, width and text: measuring text is the costliest part of drawing a node.
const fitted = new Map();
const FITTED_LIMIT = 20000;

// Cut text to fit maxWidth pixels, ending with an ellipsis when cut.
function fitText(ctx, text, maxWidth) {
  const key = `${ctx.font}|${Math.round(maxWidth)}|${text}`;
  let result = fitted.get(key);
  if (result === undefined) {
    result = measureFit(ctx, String(text).replace(/\n/g, ' ⏎ '), maxWidth);
    if (fitted.size >= FITTED_LIMIT) fitted.clear();
    fitted.set(key, result);
  }
  return result;
}

function measureFit(ctx, text, maxWidth) {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + '…').width <= maxWidth) low = mid;
    else high = mid - 1;
  }
  return text.slice(0, low) + '…';
}

// Split text into lines of about `chars` characters, breaking at spaces where possible.
export function wrapText(text, chars) {
  const lines = [];
  for (const paragraph of String(text).split('\n')) {
    let rest = paragraph;
    while (rest.length > chars) {
      let cut = rest.lastIndexOf(' ', chars);
      if (cut <= 0) cut = chars;
      lines.push(rest.slice(0, cut));
      rest = rest.slice(cut).replace(/^ /, '');
    }
    lines.push(rest);
  }
  return lines;
}

// Title bar colors: output nodes green, unknown node types red, the rest slate.
function titleColor(definition) {
  if (!definition) return '#6b2f2f';
  return definition.output_node ? '#3d5a45' : '#3a3f4b';
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}

export class Renderer {
  constructor(editor) {
    this.editor = editor;
    this.images = new Map();
  }

  // An image by URL, loaded once; the editor redraws when it arrives.
  image(url) {
    let image = this.images.get(url);
    if (!image) {
      image = new Image();
      image.onload = () => this.editor.requestDraw();
      image.src = url;
      this.images.set(url, image);
    }
    return image.complete && image.naturalWidth ? image : null;
  }

  draw() {
    const { editor } = this;
    const { ctx, view, width, height } = editor;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#1b1c1f';
    ctx.fillRect(0, 0, width, height);
    this.drawGrid(ctx, view, width, height);

    ctx.setTransform(dpr * view.k, 0, 0, dpr * view.k, dpr * view.x, dpr * view.y);
    const visible = view.visibleWorld(width, height);
    const detail = view.k >= DETAIL_SCALE;
    for (const group of editor.graph.meta.groups) this.drawGroup(ctx, group, visible, detail);
    this.drawLinks(ctx, visible);
    let drawn = 0;
    for (const id of editor.graph.order) {
      const node = editor.graph.nodes.get(id);
      const box = editor.nodeBox(node);
      if (box.x > visible[2] || box.y > visible[3] || box.x + box.w < visible[0] || box.y + box.h + 40 < visible[1]) continue;
      this.drawNode(ctx, node, box, detail);
      drawn += 1;
    }
    this.drawLinkDrag(ctx);
    this.drawnNodes = drawn;

    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const box = editor.boxSelect;
    if (box) {
      ctx.strokeStyle = '#9ecbff';
      ctx.fillStyle = 'rgba(158, 203, 255, 0.12)';
      ctx.lineWidth = 1;
      ctx.fillRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
      ctx.strokeRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
    }
  }

  drawGrid(ctx, view, width, height) {
    let step = 40 * view.k;
    if (step < 12) return;
    ctx.fillStyle = '#2a2c30';
    const x0 = ((view.x % step) + step) % step;
    const y0 = ((view.y % step) + step) % step;
    for (let x = x0; x < width; x += step) {
      for (let y = y0; y < height; y += step) ctx.fillRect(x - 1, y - 1, 2, 2);
    }
  }

  drawGroup(ctx, group, visible, detail) {
    const [x, y, w, h] = group.bounding;
    if (x > visible[2] || y > visible[3] || x + w < visible[0] || y + h < visible[1]) return;
    const color = group.color || '#3f5a7a';
    ctx.globalAlpha = 0.25;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, w, h);
    ctx.globalAlpha = 0.8;
    ctx.fillRect(x, y, w, 26);
    ctx.globalAlpha = 1;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1;
    ctx.strokeRect(x, y, w, h);
    // The resize handle in the bottom-right corner.
    ctx.beginPath();
    ctx.moveTo(x + w - 12, y + h);
    ctx.lineTo(x + w, y + h - 12);
    ctx.lineTo(x + w, y + h);
    ctx.fillStyle = color;
    ctx.fill();
    if (detail) {
      ctx.fillStyle = '#e8e8e8';
      ctx.font = 'bold 14px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'left';
      ctx.fillText(fitText(ctx, group.title || t('group.untitled'), w - 16), x + 8, y + 13);
    }
  }

  drawLinks(ctx, visible) {
    const { editor } = this;
    const { graph } = editor;
    const selected = editor.selection;
    const batches = new Map();
    ctx.lineWidth = 2.5;
    for (const link of graph.links()) {
      const source = graph.nodes.get(link.source);
      const target = graph.nodes.get(link.target);
      if (!source || !target) continue;
      const start = editor.slotWorld(source, 'output', link.output);
      const end = editor.slotWorld(target, 'input', link.input);
      if (!start || !end) continue;
      const bend = Math.max(40, Math.abs(end[0] - start[0]) * 0.5);
      const minX = Math.min(start[0], end[0] - bend);
      const maxX = Math.max(start[0] + bend, end[0]);
      if (minX > visible[2] || maxX < visible[0] || Math.min(start[1], end[1]) > visible[3] ||
          Math.max(start[1], end[1]) < visible[1]) continue;
      const type = graph.outputType(source, link.output);
      const color = typeColor(type === '*' ? graph.inputType(target, link.input) : type);
      const highlighted = selected.has(link.source) || selected.has(link.target);
      const key = `${color}|${highlighted}`;
      if (!batches.has(key)) batches.set(key, { color, highlighted, path: new Path2D() });
      const path = batches.get(key).path;
      path.moveTo(start[0], start[1]);
      path.bezierCurveTo(start[0] + bend, start[1], end[0] - bend, end[1], end[0], end[1]);
    }
    // One stroke per color: far fewer canvas calls than one per link.
    for (const { color, highlighted, path } of batches.values()) {
      ctx.strokeStyle = color;
      ctx.globalAlpha = highlighted ? 1 : 0.75;
      ctx.stroke(path);
    }
    ctx.globalAlpha = 1;
  }

  drawLinkDrag(ctx) {
    const drag = this.editor.linkDrag;
    if (!drag) return;
    const [a, b] = drag.fromOutput ? [drag.anchor, drag.pointer] : [drag.pointer, drag.anchor];
    const bend = Math.max(40, Math.abs(b[0] - a[0]) * 0.5);
    ctx.strokeStyle = drag.rejected ? '#ef5350' : typeColor(drag.type);
    ctx.lineWidth = 2.5;
    ctx.setLineDash(drag.rejected ? [6, 4] : []);
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.bezierCurveTo(a[0] + bend, a[1], b[0] - bend, b[1], b[0], b[1]);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  drawNode(ctx, node, box, detail) {
    const { editor } = this;
    const layout = box.layout;
    const definition = editor.graph.definition(node);
    const state = editor.runState.get(node.id);
    const errors = editor.errors.get(node.id);
    const mode = node.mode || 'active';
    const { x, y, w, h } = box;

    ctx.globalAlpha = mode === 'mute' ? 0.45 : 1;
    // 1. Body and title bar; far out, rounded corners are not visible, so plain rectangles do.
    if (editor.view.k < OUTLINE_SCALE) {
      ctx.fillStyle = MODE_FILL[mode] || '#2b2d31';
      ctx.fillRect(x, y, w, h);
      ctx.fillStyle = node.ui.color || titleColor(definition);
      ctx.fillRect(x, y, w, TITLE_H);
    } else {
      ctx.fillStyle = MODE_FILL[mode] || '#2b2d31';
      roundRect(ctx, x, y, w, h, 6);
      ctx.fill();
      ctx.fillStyle = node.ui.color || titleColor(definition);
      roundRect(ctx, x, y, w, TITLE_H, layout.collapsed ? 6 : [6, 6, 0, 0]);
      ctx.fill();
    }

    // 2. Outline: selection, run state, errors.
    const status = state?.status;
    let outline = null;
    if (errors?.length || status === 'failed') outline = STATUS_COLORS.failed;
    else if (status) outline = STATUS_COLORS[status];
    if (outline) {
      ctx.strokeStyle = outline;
      ctx.lineWidth = status === 'running' ? 4 : 2.5;
      ctx.setLineDash(status === 'skipped' ? [6, 4] : []);
      roundRect(ctx, x - 2, y - 2, w + 4, h + 4, 8);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (editor.selection.has(node.id)) {
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 1.5;
      roundRect(ctx, x - 0.5, y - 0.5, w + 1, h + 1, 6);
      ctx.stroke();
    }

    // 3. Progress bar under the title.
    if (status === 'running' && state.total) {
      ctx.fillStyle = '#4fc3f7';
      ctx.fillRect(x, y + TITLE_H - 3, (w * Math.min(1, state.step / state.total)), 3);
    }

    if (detail) {
      this.drawTitle(ctx, node, definition, box, state, mode);
      if (!layout.collapsed) {
        this.drawSlots(ctx, node, box, errors);
        for (const widget of layout.widgets) this.drawWidget(ctx, node, box, widget);
        if (layout.display) this.drawDisplay(ctx, box, layout.display, state);
      }
      if (errors?.length) this.drawErrors(ctx, box, errors);
    } else if (!layout.collapsed && editor.view.k >= OUTLINE_SCALE) {
      this.drawSlotDots(ctx, node, box);
    }
    ctx.globalAlpha = 1;
  }

  drawTitle(ctx, node, definition, box, state, mode) {
    const { x, y, w } = box;
    ctx.fillStyle = '#c8c8c8';
    ctx.beginPath();
    ctx.arc(x + 13, y + TITLE_H / 2, 5, 0, Math.PI * 2);
    if (box.layout.collapsed) ctx.stroke();
    else ctx.fill();
    let badge = '';
    if (mode !== 'active') badge = t(`mode.${mode}`);
    if (state?.status) {
      badge = t(`state.${state.status}`);
      if (state.status === 'running' && state.total) badge += ` ${state.step}/${state.total}`;
    }
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    let badgeWidth = 0;
    if (badge) {
      badgeWidth = ctx.measureText(badge).width + 10;
      ctx.fillStyle = state?.status ? STATUS_COLORS[state.status] : '#b38bd8';
      roundRect(ctx, x + w - badgeWidth - 6, y + 6, badgeWidth, TITLE_H - 12, 4);
      ctx.fill();
      ctx.fillStyle = '#111';
      ctx.textAlign = 'center';
      ctx.fillText(badge, x + w - badgeWidth / 2 - 6, y + TITLE_H / 2);
    }
    ctx.font = TITLE_FONT;
    ctx.textAlign = 'left';
    ctx.fillStyle = '#f0f0f0';
    const title = this.editor.nodeTitle(node);
    ctx.fillText(fitText(ctx, title, w - 34 - badgeWidth), x + 24, y + TITLE_H / 2 + 1);
  }

  drawSlotDots(ctx, node, box) {
    for (const [kind, slots] of [['input', box.layout.inputs], ['output', box.layout.outputs]]) {
      for (const slot of slots.values()) {
        if (kind === 'input' && slot.widget && !isLink(node.inputs[slot.spec.name])) continue;
        ctx.fillStyle = typeColor(slot.spec.type);
        ctx.fillRect(box.x + slot.x - 4, box.y + slot.y - 4, 8, 8);
      }
    }
  }

  drawSlots(ctx, node, box, errors) {
    const { editor } = this;
    const linkedOutputs = editor.linkedOutputs(node.id);
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    for (const [name, slot] of box.layout.inputs) {
      const linked = isLink(node.inputs[name]);
      const sx = box.x + slot.x;
      const sy = box.y + slot.y;
      this.drawDot(ctx, sx, sy, slot.spec.type, linked, slot.spec.required);
      if (errors?.some((error) => error.input === name)) {
        ctx.strokeStyle = STATUS_COLORS.failed;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(sx, sy, 8, 0, Math.PI * 2);
        ctx.stroke();
      }
      if (!slot.widget || linked) {
        ctx.fillStyle = linked || !slot.widget ? '#d0d0d0' : '#888';
        ctx.textAlign = 'left';
        const label = slot.widget ? `${name} ←` : name;
        ctx.fillText(fitText(ctx, label, box.w / 2 - 14), sx + 12, sy);
      }
    }
    for (const [name, slot] of box.layout.outputs) {
      const sx = box.x + slot.x;
      const sy = box.y + slot.y;
      this.drawDot(ctx, sx, sy, slot.spec.type, linkedOutputs.has(name), true);
      ctx.fillStyle = '#d0d0d0';
      ctx.textAlign = 'right';
      ctx.fillText(fitText(ctx, name, box.w / 2 - 14), sx - 12, sy);
    }
  }

  drawDot(ctx, x, y, type, filled, required) {
    ctx.fillStyle = typeColor(type);
    ctx.strokeStyle = typeColor(type);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 5, 0, Math.PI * 2);
    if (filled) ctx.fill();
    else {
      ctx.fillStyle = '#1b1c1f';
      ctx.fill();
      ctx.setLineDash(required ? [] : [2, 2]);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  drawWidget(ctx, node, box, widget) {
    const value = node.inputs[widget.name];
    if (isLink(value)) return;
    const x = box.x + widget.x;
    const y = box.y + widget.y;
    const { w, spec } = widget;
    const h = ROW_H - 2;
    const missing = value === undefined;
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#1f2023';
    roundRect(ctx, x, y, w, widget.kind === 'textarea' ? widget.h : h, 5);
    ctx.fill();
    const mid = y + h / 2;
    const label = widget.name;

    switch (widget.kind) {
      case 'number':
      case 'combo':
      case 'seed': {
        ctx.fillStyle = '#8a8f98';
        ctx.textAlign = 'center';
        ctx.fillText('‹', x + 8, mid);
        ctx.fillText('›', x + w - 8, mid);
        this.labelValue(ctx, x + 16, mid, w - 32, label,
          widget.kind === 'combo' ? String(value ?? '') : formatNumber(value, spec), missing);
        if (widget.kind === 'seed') {
          const randomize = (node.ui.randomize || []).includes(widget.name);
          this.drawToggle(ctx, x, y + ROW_H, w, h, t('widget.randomize'), randomize);
        }
        break;
      }
      case 'slider': {
        const min = spec.min ?? 0;
        const max = spec.max ?? 1;
        const fraction = Math.min(1, Math.max(0, ((value ?? min) - min) / (max - min || 1)));
        ctx.fillStyle = '#35506b';
        roundRect(ctx, x, y, w * fraction, h, 5);
        ctx.fill();
        this.labelValue(ctx, x + 8, mid, w - 16, label, formatNumber(value, spec), missing);
        break;
      }
      case 'toggle':
        this.drawToggle(ctx, x, y, w, h, label, value === true, true);
        break;
      case 'text':
        this.labelValue(ctx, x + 8, mid, w - 16, label, value ?? '', missing);
        break;
      case 'textarea': {
        ctx.fillStyle = missing ? '#777' : '#d8d8d8';
        ctx.textAlign = 'left';
        const text = missing || value === '' ? label : String(value);
        const lines = wrapText(text, Math.max(8, Math.floor((w - 12) / 6.6)));
        const fits = Math.floor((widget.h - 6) / 15);
        lines.slice(0, fits).forEach((line, i) => ctx.fillText(line, x + 6, y + 10 + i * 15));
        break;
      }
      case 'upload': {
        this.labelValue(ctx, x + 8, mid, w - 16, label, value ?? t('widget.no_image'), missing);
        ctx.fillStyle = '#2f3d52';
        roundRect(ctx, x, y + ROW_H, w, h, 5);
        ctx.fill();
        ctx.fillStyle = '#d8d8d8';
        ctx.textAlign = 'center';
        ctx.fillText(t('widget.upload'), x + w / 2, mid + ROW_H);
        if (value) {
          const image = this.image(fileUrl('input', value));
          if (image) this.drawImageFit(ctx, image, x, y + 2 * ROW_H + 4, w, widget.h - 2 * ROW_H - 6);
        }
        break;
      }
      default:
        break;
    }
  }

  labelValue(ctx, x, y, w, label, value, missing) {
    ctx.textAlign = 'left';
    ctx.fillStyle = '#9aa0a8';
    const labelText = fitText(ctx, label, w * 0.45);
    ctx.fillText(labelText, x, y);
    ctx.textAlign = 'right';
    ctx.fillStyle = missing ? '#777' : '#e8e8e8';
    const room = w - ctx.measureText(labelText).width - 8;
    ctx.fillText(fitText(ctx, missing ? '—' : value, room), x + w, y);
  }

  drawToggle(ctx, x, y, w, h, label, on, withBackground = false) {
    if (!withBackground) {
      ctx.fillStyle = '#1f2023';
      roundRect(ctx, x, y, w, h, 5);
      ctx.fill();
    }
    ctx.textAlign = 'left';
    ctx.fillStyle = '#9aa0a8';
    ctx.fillText(fitText(ctx, label, w - 48), x + 8, y + h / 2);
    ctx.fillStyle = on ? '#4f9d69' : '#555';
    roundRect(ctx, x + w - 34, y + 4, 26, h - 8, (h - 8) / 2);
    ctx.fill();
    ctx.fillStyle = '#eee';
    ctx.beginPath();
    ctx.arc(on ? x + w - 15 : x + w - 27, y + h / 2, (h - 12) / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  drawImageFit(ctx, image, x, y, w, h) {
    const scale = Math.min(w / image.naturalWidth, h / image.naturalHeight);
    const iw = image.naturalWidth * scale;
    const ih = image.naturalHeight * scale;
    ctx.drawImage(image, x + (w - iw) / 2, y + (h - ih) / 2, iw, ih);
  }

  drawDisplay(ctx, box, display, state) {
    const x = box.x + display.x;
    const y = box.y + display.y;
    ctx.fillStyle = '#17181a';
    roundRect(ctx, x, y, display.w, display.h, 5);
    ctx.fill();
    const images = state.images?.length ? state.images : null;
    if (images || state.preview) {
      const count = images ? images.length : 1;
      const cell = display.w / count;
      for (let i = 0; i < count; i += 1) {
        const url = images ? images[i].url || fileUrl(images[i].kind, images[i].filename) : state.preview;
        const image = this.image(url);
        if (image) this.drawImageFit(ctx, image, x + i * cell + 2, y + 2, cell - 4, display.h - 4);
      }
      return;
    }
    ctx.font = '12px ui-monospace, monospace';
    ctx.fillStyle = '#e0e0e0';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const lines = state.text.flatMap((text) => wrapText(text, Math.max(8, Math.floor((display.w - 12) / 7.2))));
    const fits = Math.floor((display.h - 8) / 16);
    lines.slice(0, fits).forEach((line, i) => ctx.fillText(line, x + 6, y + 6 + i * 16));
    ctx.textBaseline = 'middle';
  }

  drawErrors(ctx, box, errors) {
    ctx.font = FONT;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const lines = errors.flatMap((error) => wrapText(error.message, Math.max(20, Math.floor(box.w / 6.6))));
    ctx.fillStyle = 'rgba(120, 20, 20, 0.92)';
    roundRect(ctx, box.x, box.y + box.h + 6, box.w, lines.length * 15 + 8, 4);
    ctx.fill();
    ctx.fillStyle = '#ffdede';
    lines.forEach((line, i) => ctx.fillText(line, box.x + 6, box.y + box.h + 10 + i * 15));
    ctx.textBaseline = 'middle';
  }
}
