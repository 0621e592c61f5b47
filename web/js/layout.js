// Node geometry in world units, relative to the node's top-left corner (its ui.pos).
// A linked input's widget row shrinks to one line, as the widget is hidden while the link feeds the input.

import { isLink } from './graph.js';

export const TITLE_H = 28;
export const ROW_H = 22;
export const TEXTAREA_H = 64;
export const PREVIEW_H = 150;
export const DEFAULT_W = 240;
export const COLLAPSED_W = 170;
export const MIN_W = 150;
export const PAD = 8;

export const TYPE_COLORS = {
  STRING: '#7fb77e', INT: '#4fa3d1', FLOAT: '#8fb8e8', BOOLEAN: '#d1a04f', IMAGE: '#c27be0', MASK: '#6fcfb4',
  CONDITIONING: '#e0c36b', LLM: '#e07b7b', EMBEDDING: '#b0a0ff', DIFFUSION_MODEL: '#d98cb3', LATENT: '#ff9cf9',
  '*': '#a0a0a0',
};

export function typeColor(type) {
  return TYPE_COLORS[type] || '#a0a0a0';
}

// Return the widget kind that edits an input's literal value, or null for inputs that only take links.
export function widgetKind(spec) {
  if (!spec.literal) return null;
  if (spec.widget === 'upload') return 'upload';
  if (Array.isArray(spec.choices)) return 'combo';
  if (spec.widget === 'seed') return 'seed';
  if (spec.widget === 'slider' && (spec.type === 'INT' || spec.type === 'FLOAT')) return 'slider';
  switch (spec.type) {
    case 'BOOLEAN': return 'toggle';
    case 'INT': case 'FLOAT': return 'number';
    case 'STRING': return spec.multiline ? 'textarea' : 'text';
    default: return null;
  }
}

function widgetHeight(kind, hasValue) {
  if (kind === 'textarea') return TEXTAREA_H;
  if (kind === 'seed') return 2 * ROW_H;
  if (kind === 'upload') return 2 * ROW_H + (hasValue ? PREVIEW_H : 0);
  return ROW_H;
}

// Height of the area showing run output: text lines, images or a progress preview.
function displayHeight(state, width) {
  if (!state) return 0;
  if (state.images?.length || state.preview) return PREVIEW_H + PAD;
  if (state.text?.length) {
    const charsPerLine = Math.max(10, Math.floor((width - 2 * PAD) / 7));
    let lines = 0;
    for (const text of state.text) {
      for (const line of String(text).split('\n')) lines += Math.max(1, Math.ceil(line.length / charsPerLine));
    }
    return Math.min(10, lines) * 16 + 2 * PAD;
  }
  return 0;
}

// Compute a node's layout: {w, h, inputs: Map, outputs: Map, widgets: [], display}.
export function layoutNode(graph, node, state) {
  const inputSpecs = graph.inputSpecs(node);
  const outputSpecs = graph.outputSpecs(node);
  const inputs = new Map();
  const outputs = new Map();

  if (node.ui.collapsed) {
    const w = COLLAPSED_W;
    for (const spec of inputSpecs) inputs.set(spec.name, { x: 0, y: TITLE_H / 2, spec, widget: null });
    for (const spec of outputSpecs) outputs.set(spec.name, { x: w, y: TITLE_H / 2, spec });
    return { w, h: TITLE_H, inputs, outputs, widgets: [], display: null, collapsed: true };
  }

  const w = Math.max(MIN_W, node.ui.size?.[0] ?? DEFAULT_W);
  const plain = inputSpecs.filter((spec) => !widgetKind(spec));
  const withWidget = inputSpecs.filter((spec) => widgetKind(spec));

  // 1. Slot rows: plain input i on the left, output i on the right.
  const slotRows = Math.max(plain.length, outputSpecs.length);
  plain.forEach((spec, i) => inputs.set(spec.name, { x: 0, y: TITLE_H + i * ROW_H + ROW_H / 2, spec, widget: null }));
  outputSpecs.forEach((spec, i) => outputs.set(spec.name, { x: w, y: TITLE_H + i * ROW_H + ROW_H / 2, spec }));
  let y = TITLE_H + slotRows * ROW_H + (slotRows ? 4 : 0);

  // 2. Widget rows, each with its input's slot on the left.
  const widgets = [];
  for (const spec of withWidget) {
    const kind = widgetKind(spec);
    const value = node.inputs[spec.name];
    // A linked input shows only its name, so its row shrinks to one line.
    const h = isLink(value) ? ROW_H : widgetHeight(kind, value !== undefined && value !== '');
    const widget = { name: spec.name, kind, spec, x: PAD + 4, y: y + 1, w: w - 2 * PAD - 4, h: h - 2 };
    widgets.push(widget);
    inputs.set(spec.name, { x: 0, y: y + ROW_H / 2, spec, widget });
    y += h;
  }

  // 3. Output display (text, images, previews) at the bottom.
  const shown = displayHeight(state, w);
  let display = null;
  if (shown) {
    display = { x: PAD, y: y + PAD / 2, w: w - 2 * PAD, h: shown - PAD };
    y += shown;
  }
  y += PAD / 2;
  const h = Math.max(y, node.ui.size?.[1] ?? 0);
  if (display && h > y) display.h += h - y;
  return { w, h, inputs, outputs, widgets, display, collapsed: false };
}
