// Files: the server's workflow library, files from disk, dropped files and downloads.

import { api } from './api.js';
import { emptyDocument, FORMAT, VERSION } from './graph.js';
import { t } from './i18n.js';
import { workflowFromPng } from './png.js';
import { askText, dialog, element, notify } from './ui.js';

export class Files {
  constructor(app) {
    this.app = app;
    this.editor = app.editor;
    this.catalog = app.catalog;
  }

  async workflowList() {
    const data = await api.workflows();
    return (data.workflows || data).map((item) => (typeof item === 'string' ? { name: item } : item));
  }

  newWorkflow() {
    this.editor.loadDocument(emptyDocument());
    this.app.name = '';
    this.app.updateTitle();
  }

  load(document, name = '') {
    const problem = documentProblem(document);
    if (problem) {
      notify(problem, 'error');
      return false;
    }
    this.editor.loadDocument(document);
    this.app.name = name;
    this.app.updateTitle();
    return true;
  }

  async openNamed(name, example = false) {
    try {
      const data = await api.workflow(name);
      const document = data.workflow && data.workflow.format ? data.workflow : data;
      this.load(document, example ? '' : name);
    } catch (error) {
      notify(t('error.open', { name, message: error.message }), 'error');
    }
  }

  async openDialog() {
    let list;
    try {
      list = await this.workflowList();
    } catch (error) {
      notify(t('error.server', { message: error.message }), 'error');
      return;
    }
    let chosen = null;
    const item = (entry) => element('li', {},
      element('button', { class: 'link', dataset: { workflow: entry.name }, onclick: (event) => {
        chosen = entry;
        event.target.closest('.dialog').querySelector('button.primary').click();
      } }, entry.title || entry.name),
      entry.source === 'example' ? element('span', { class: 'tag' }, t('file.example')) : null);
    const saved = list.filter((entry) => entry.source !== 'example');
    const examples = list.filter((entry) => entry.source === 'example');
    const body = element('div', { class: 'open-list' },
      element('h3', {}, t('file.saved')),
      saved.length ? element('ul', {}, ...saved.map(item)) : element('p', { class: 'muted' }, t('file.none_saved')),
      element('h3', {}, t('menu.examples')),
      element('ul', {}, ...examples.map(item)));
    await dialog(t('menu.open'), body, [
      { label: t('menu.open_file'), value: () => 'file' },
      { label: t('dialog.cancel'), value: () => null },
      { label: t('dialog.open'), primary: true, value: () => 'chosen' },
    ]).then((result) => {
      if (result === 'file') this.openFile();
      else if (result === 'chosen' && chosen) this.openNamed(chosen.name, chosen.source === 'example');
    });
  }

  openFile() {
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = '.json,application/json,image/png';
    input.hidden = true;
    document.body.append(input);
    input.addEventListener('change', () => {
      input.remove();
      if (input.files[0]) this.openFromFile(input.files[0]);
    });
    input.click();
  }

  // Open a workflow JSON file, or a PNG whose text chunk contains a workflow.
  async openFromFile(file) {
    try {
      if (file.type === 'image/png' || file.name.toLowerCase().endsWith('.png')) {
        const found = await workflowFromPng(await file.arrayBuffer());
        if (!found) throw new Error(t('error.png_no_workflow'));
        this.load(this.withParams(found.workflow, found.params));
      } else {
        let document;
        try {
          document = JSON.parse(await file.text());
        } catch {
          throw new Error(t('error.not_json'));
        }
        this.load(document);
      }
    } catch (error) {
      notify(t('error.file', { file: file.name, message: error.message }), 'error');
    }
  }

  // Write a run's param values into the inputs they target, so the workflow reproduces that run.
  // Values recorded as text (from `--set`) are converted by the input's type, as the engine does.
  withParams(workflow, params) {
    if (!params) return workflow;
    const result = structuredClone(workflow);
    for (const [name, value] of Object.entries(params)) {
      const target = result.params?.[name];
      const node = Array.isArray(target) ? result.nodes?.[target[0]] : null;
      if (!node) continue;
      const spec = this.catalog[node.type]?.inputs.find((item) => item.name === target[1]);
      node.inputs ??= {};
      node.inputs[target[1]] = typeof value === 'string' && spec ? fromText(value, spec.type) : value;
    }
    return result;
  }

  installDrop() {
    const area = document.getElementById('canvas-area');
    area.addEventListener('dragover', (event) => {
      event.preventDefault();
      area.classList.add('dropping');
    });
    area.addEventListener('dragleave', () => area.classList.remove('dropping'));
    area.addEventListener('drop', (event) => {
      event.preventDefault();
      area.classList.remove('dropping');
      const file = event.dataTransfer.files[0];
      if (file) this.openFromFile(file);
    });
  }

  document() {
    return this.editor.graph.toDocument();
  }

  async save() {
    if (!this.app.name) return this.saveAs();
    return this.saveNamed(this.app.name);
  }

  async saveAs() {
    const name = await askText(t('menu.save_as'), t('file.name'), this.app.name || this.editor.graph.meta.name || '');
    if (name) await this.saveNamed(name);
  }

  async saveNamed(name) {
    try {
      const document = this.document();
      if (!document.name) document.name = name;
      await api.saveWorkflow(name, document);
      this.app.name = name;
      this.editor.dirty = false;
      this.app.updateTitle();
      notify(t('file.saved_as', { name }), 'info', 2500);
    } catch (error) {
      notify(t('error.save', { name, message: error.message }), 'error');
    }
  }

  download() {
    const text = JSON.stringify(this.document(), null, 2);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const stem = (this.app.name || this.editor.graph.meta.name || 'workflow').replace(/[^\w.-]+/g, '-');
    link.download = stem.endsWith('.json') ? stem : `${stem}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

}

// Convert a param value given as text to an input's type; text that does not parse stays text,
// so validation names the input and the value.
function fromText(text, type) {
  const trimmed = text.trim();
  if (type === 'INT' && /^[+-]?\d+$/.test(trimmed)) return Number(trimmed);
  if (type === 'FLOAT' && trimmed !== '' && Number.isFinite(Number(trimmed))) return Number(trimmed);
  if (type === 'BOOLEAN') {
    if (['true', '1', 'yes', 'on'].includes(trimmed.toLowerCase())) return true;
    if (['false', '0', 'no', 'off'].includes(trimmed.toLowerCase())) return false;
  }
  return text;
}

// Return why a parsed file is not a workflow document this editor can open, or '' when it is one.
function documentProblem(document) {
  if (!document || typeof document !== 'object' || document.format !== FORMAT || typeof document.nodes !== 'object') {
    return t('error.not_workflow');
  }
  if (document.version > VERSION) return t('error.newer_version', { version: document.version, supported: VERSION });
  return '';
}
