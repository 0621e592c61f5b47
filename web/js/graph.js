// The workflow document being edited, with helpers for its links.
// Nodes are kept as the document's own objects, so fields the editor does not know survive a save.

export const FORMAT = 'nodegraph/workflow';
export const VERSION = 1;
const LITERAL_TYPES = new Set(['STRING', 'INT', 'FLOAT', 'BOOLEAN', '*']);

export function isLink(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Array.isArray(value.from);
}

export function compatible(outputType, inputType) {
  return outputType === inputType || outputType === '*' || inputType === '*';
}

export function emptyDocument() {
  return { format: FORMAT, version: VERSION, name: '', description: '', nodes: {}, params: {}, groups: [], extra: {} };
}

export class Graph {
  constructor(catalog, document = emptyDocument()) {
    this.catalog = catalog;
    this.load(document);
  }

  // Replace the whole document; `order` is the drawing order (last drawn is on top).
  load(document) {
    const doc = structuredClone(document);
    this.meta = { ...doc };
    delete this.meta.nodes;
    // Optional sections the document left out stay out of what is saved, unless an edit fills them.
    this.absent = new Set(['params', 'groups', 'extra'].filter((key) => !(key in doc)));
    this.meta.format ??= FORMAT;
    this.meta.version ??= VERSION;
    this.meta.params ??= {};
    this.meta.groups ??= [];
    this.meta.extra ??= {};
    this.nodes = new Map(Object.entries(doc.nodes || {}));
    for (const [id, node] of this.nodes) {
      node.inputs ??= {};
      node.ui ??= {};
      Object.defineProperty(node, 'id', { value: id, enumerable: false, configurable: true });
    }
    this.order = [...this.nodes.keys()];
    this.changed();
  }

  // Bump the version so cached layouts and link lists are rebuilt.
  changed() {
    this.version = (this.version || 0) + 1;
    this._links = null;
  }

  toDocument() {
    const { format, version, ...rest } = this.meta;
    for (const key of this.absent) {
      const value = rest[key];
      if (Array.isArray(value) ? !value.length : !Object.keys(value).length) delete rest[key];
    }
    const nodes = {};
    for (const [id, node] of this.nodes) nodes[id] = structuredClone(node);
    return { format, version, ...rest, nodes };
  }

  definition(node) {
    return this.catalog[node.type] || null;
  }

  // The node's inputs and outputs: from the catalog, or guessed from the document for an unknown type.
  inputSpecs(node) {
    const definition = this.definition(node);
    if (definition) return definition.inputs;
    return Object.keys(node.inputs).map((name) => ({ name, type: '*', required: false, literal: true }));
  }

  outputSpecs(node) {
    const definition = this.definition(node);
    if (definition) return definition.outputs;
    const names = new Set();
    for (const other of this.nodes.values()) {
      for (const value of Object.values(other.inputs)) {
        if (isLink(value) && value.from[0] === node.id) names.add(value.from[1]);
      }
    }
    return [...names].map((name) => ({ name, type: '*' }));
  }

  inputType(node, name) {
    return this.inputSpecs(node).find((spec) => spec.name === name)?.type ?? null;
  }

  outputType(node, name) {
    return this.outputSpecs(node).find((spec) => spec.name === name)?.type ?? null;
  }

  // Every link as {source, output, target, input}.
  links() {
    if (this._links) return this._links;
    const links = [];
    for (const [id, node] of this.nodes) {
      for (const [input, value] of Object.entries(node.inputs)) {
        if (isLink(value)) links.push({ source: value.from[0], output: value.from[1], target: id, input });
      }
    }
    this._links = links;
    return links;
  }

  uniqueId(base) {
    const stem = base.replace(/[^A-Za-z0-9_-]+/g, '_').toLowerCase() || 'node';
    if (!this.nodes.has(stem)) return stem;
    let n = 2;
    while (this.nodes.has(`${stem}_${n}`)) n += 1;
    return `${stem}_${n}`;
  }

  // Add a node of `type` at world position pos, with its inputs' default values.
  addNode(type, pos) {
    const definition = this.catalog[type];
    const id = this.uniqueId(type);
    const inputs = {};
    for (const spec of definition?.inputs || []) {
      if ('default' in spec && spec.literal) inputs[spec.name] = structuredClone(spec.default);
    }
    const node = { type, inputs, ui: { pos: [Math.round(pos[0]), Math.round(pos[1])] } };
    if (definition?.inputs.some((spec) => spec.widget === 'seed')) {
      node.ui.randomize = definition.inputs.filter((spec) => spec.widget === 'seed').map((spec) => spec.name);
    }
    this.insert(id, node);
    return id;
  }

  insert(id, node) {
    Object.defineProperty(node, 'id', { value: id, enumerable: false, configurable: true });
    this.nodes.set(id, node);
    this.order.push(id);
    this.changed();
  }

  // Remove nodes, the links into other nodes that came from them, and params that targeted them.
  removeNodes(ids) {
    const gone = new Set(ids);
    for (const id of gone) this.nodes.delete(id);
    this.order = this.order.filter((id) => !gone.has(id));
    for (const [id, node] of this.nodes) {
      for (const [input, value] of Object.entries(node.inputs)) {
        if (isLink(value) && gone.has(value.from[0])) this.disconnect(id, input);
      }
    }
    for (const [name, target] of Object.entries(this.meta.params)) {
      if (gone.has(target[0])) delete this.meta.params[name];
    }
    this.changed();
  }

  connect(source, output, target, input) {
    this.nodes.get(target).inputs[input] = { from: [source, output] };
    this.changed();
  }

  // Remove a link; an input with a default widget value gets that value back.
  disconnect(target, input) {
    const node = this.nodes.get(target);
    const spec = this.inputSpecs(node).find((item) => item.name === input);
    if (spec && 'default' in spec && LITERAL_TYPES.has(spec.type)) node.inputs[input] = structuredClone(spec.default);
    else delete node.inputs[input];
    this.changed();
  }

  bringToFront(ids) {
    const lifted = new Set(ids);
    this.order = [...this.order.filter((id) => !lifted.has(id)), ...this.order.filter((id) => lifted.has(id))];
  }
}
