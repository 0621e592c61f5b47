// The application: menus, keyboard shortcuts, files, runs and the test hook, around one Editor.

import { api, ApiError } from './api.js';
import { Editor } from './editor.js';
import { emptyDocument, FORMAT, VERSION } from './graph.js';
import { installGestures } from './gestures.js';
import { LANGUAGES, language, preferredLanguage, setLanguage, t } from './i18n.js';
import { workflowFromPng } from './png.js';
import { EventSocket } from './socket.js';
import { askText, closeMenus, dialog, element, notices, notify, showMenu } from './ui.js';

const SEED_MAX = 2 ** 32 - 1;
// Runs whose events are kept while their id is not yet known to this tab.
const EARLY_RUNS = 8;
const NODE_COLORS = ['#3a3f4b', '#4a3b5c', '#2f4f4f', '#5c3b3b', '#3b5c3e', '#5c543b'];

// [keys, message key, action name]; the help overlay lists these.
const SHORTCUTS = [
  ['Ctrl+Enter', 'help.queue'], ['Ctrl+Alt+Enter', 'help.interrupt'], ['Ctrl+S', 'help.save'], ['Ctrl+O', 'help.open'],
  ['Ctrl+Z', 'help.undo'], ['Ctrl+Shift+Z / Ctrl+Y', 'help.redo'], ['Ctrl+C / Ctrl+V', 'help.copy_paste'],
  ['Ctrl+D', 'help.duplicate'], ['Delete', 'help.delete'], ['Ctrl+A', 'help.select_all'], ['Ctrl+B', 'help.bypass'],
  ['Ctrl+M', 'help.mute'], ['Alt+C', 'help.collapse'], ['Ctrl+G', 'help.group'], ['F2', 'help.rename'],
  ['.', 'help.fit'], ['?', 'help.help'], ['help.double_click_keys', 'help.double_click'],
  ['help.drag_empty_keys', 'help.pan'], ['help.wheel_keys', 'help.zoom'], ['help.box_keys', 'help.box_select'],
];

class App {
  async start() {
    await setLanguage(preferredLanguage());
    const catalog = await api.nodes();
    this.catalog = catalog.nodes || catalog;
    this.editor = new Editor(document.getElementById('canvas'), this.catalog);
    this.gestures = installGestures(this.editor, this);
    this.name = '';
    this.watchedRun = null;
    this.unwatched = new Map();
    this.editor.listeners.add(() => this.updateTitle());
    this.installMenus();
    this.installKeyboard();
    this.installClipboard();
    this.installDrop();
    this.installHook();
    this.socket = new EventSocket({ onEvent: (event) => this.onEvent(event), onState: (state) => this.onSocket(state) });
    document.getElementById('runs-close').addEventListener('click', () => this.toggleRuns(false));
    this.updateTitle();
    this.setStatus(t('status.ready'));
    this.editor.requestDraw();
    window.nodegraphEditor.ready = true;
  }

  // ---- title and status ------------------------------------------------------

  updateTitle() {
    const name = this.name || this.editor.graph.meta.name || t('file.untitled');
    document.title = `${this.editor.dirty ? '● ' : ''}${name} — nodegraph`;
    document.getElementById('workflow-name').textContent = name + (this.editor.dirty ? ' ●' : '');
  }

  setStatus(text) {
    document.getElementById('run-status').textContent = text;
  }

  // ---- menus -----------------------------------------------------------------

  installMenus() {
    const menus = {
      file: () => [
        { id: 'new', label: t('menu.new'), action: () => this.newWorkflow() },
        { id: 'open', label: t('menu.open'), shortcut: 'Ctrl+O', action: () => this.openDialog() },
        { id: 'open-file', label: t('menu.open_file'), action: () => this.openFile() },
        { id: 'examples', label: t('menu.examples'), submenu: () => this.examplesMenu() },
        'separator',
        { id: 'save', label: t('menu.save'), shortcut: 'Ctrl+S', action: () => this.save() },
        { id: 'save-as', label: t('menu.save_as'), action: () => this.saveAs() },
        { id: 'download', label: t('menu.download'), action: () => this.download() },
      ],
      edit: () => [
        { id: 'undo', label: t('menu.undo'), shortcut: 'Ctrl+Z', action: () => this.editor.undo() },
        { id: 'redo', label: t('menu.redo'), shortcut: 'Ctrl+Shift+Z', action: () => this.editor.redo() },
        'separator',
        { id: 'add', label: t('menu.add_node'), action: () => this.addAtCenter() },
        { id: 'duplicate', label: t('menu.duplicate'), shortcut: 'Ctrl+D', action: () => this.editor.duplicateSelection() },
        { id: 'delete', label: t('menu.delete'), shortcut: 'Delete', action: () => this.editor.deleteSelection() },
        { id: 'group', label: t('menu.group'), shortcut: 'Ctrl+G', action: () => this.group() },
        { id: 'select-all', label: t('menu.select_all'), shortcut: 'Ctrl+A', action: () => this.editor.selectAll() },
        { id: 'fit', label: t('menu.fit'), shortcut: '.', action: () => this.editor.fitView() },
      ],
      run: () => [
        { id: 'queue', label: t('menu.queue'), shortcut: 'Ctrl+Enter', action: () => this.queue() },
        { id: 'interrupt', label: t('menu.interrupt'), shortcut: 'Ctrl+Alt+Enter', action: () => this.interrupt() },
        { id: 'runs', label: t('menu.runs'), action: () => this.toggleRuns() },
      ],
      language: () => LANGUAGES.map((lang) => ({
        id: `lang-${lang.code}`, label: lang.label, checked: lang.code === language(),
        action: () => this.switchLanguage(lang.code),
      })),
      help: () => [{ id: 'shortcuts', label: t('menu.shortcuts'), shortcut: '?', action: () => this.showHelp() }],
    };
    for (const button of document.querySelectorAll('.menubar [data-menu]')) {
      button.addEventListener('click', (event) => {
        event.stopPropagation();
        const open = button.classList.contains('open');
        closeMenus();
        if (open) return;
        const rect = button.getBoundingClientRect();
        showMenu(rect.left, rect.bottom + 2, menus[button.dataset.menu]());
        button.classList.add('open');
      });
    }
    document.getElementById('queue-button').addEventListener('click', () => this.queue());
    document.getElementById('interrupt-button').addEventListener('click', () => this.interrupt());
    document.addEventListener('pointerdown', (event) => {
      if (!event.target.closest('.menu') && !event.target.closest('.menubar')) closeMenus();
    });
  }

  async examplesMenu() {
    try {
      const list = await this.workflowList();
      const examples = list.filter((item) => item.source === 'example');
      if (!examples.length) return [{ label: t('menu.no_examples'), disabled: true }];
      return examples.map((item) => ({
        id: `example-${item.name}`, label: item.title || item.name, action: () => this.openNamed(item.name, true),
      }));
    } catch (error) {
      return [{ label: t('error.server', { message: error.message }), disabled: true }];
    }
  }

  nodeMenu(node) {
    const editor = this.editor;
    return [
      { id: 'rename', label: t('menu.rename'), shortcut: 'F2', action: () => this.gestures.renameNode(node) },
      { id: 'bypass', label: t('menu.bypass'), shortcut: 'Ctrl+B', checked: node.mode === 'bypass',
        action: () => editor.toggleMode('bypass') },
      { id: 'mute', label: t('menu.mute'), shortcut: 'Ctrl+M', checked: node.mode === 'mute',
        action: () => editor.toggleMode('mute') },
      { id: 'collapse', label: t('menu.collapse'), shortcut: 'Alt+C', checked: Boolean(node.ui.collapsed),
        action: () => editor.toggleCollapse() },
      { id: 'color', label: t('menu.color'), submenu: NODE_COLORS.map((color, i) => ({
        label: t(`color.${i}`), checked: node.ui.color === color, action: () => editor.setColor(node, i ? color : null),
      })) },
      'separator',
      { id: 'duplicate', label: t('menu.duplicate'), shortcut: 'Ctrl+D', action: () => editor.duplicateSelection() },
      { id: 'group', label: t('menu.group'), shortcut: 'Ctrl+G', action: () => this.group() },
      { id: 'delete', label: t('menu.delete'), shortcut: 'Delete', action: () => editor.deleteSelection() },
    ];
  }

  groupMenu(group) {
    return [
      { id: 'rename-group', label: t('menu.rename_group'), action: () => this.gestures.renameGroup(group) },
      { id: 'delete-group', label: t('menu.delete_group'), action: () => {
        this.editor.record();
        this.editor.graph.meta.groups = this.editor.graph.meta.groups.filter((item) => item !== group);
        this.editor.edited();
      } },
    ];
  }

  canvasMenu(world, clientX, clientY) {
    return [
      { id: 'add', label: t('menu.add_node'), action: () => this.gestures.addBySearch(clientX, clientY, world) },
      { id: 'paste', label: t('menu.paste'), shortcut: 'Ctrl+V', action: () => this.editor.paste(null, world) },
      { id: 'fit', label: t('menu.fit'), shortcut: '.', action: () => this.editor.fitView() },
    ];
  }

  addAtCenter() {
    const rect = this.editor.canvas.getBoundingClientRect();
    const world = this.editor.view.toWorld(this.editor.width / 2, this.editor.height / 2);
    this.gestures.addBySearch(rect.left + this.editor.width / 2 - 150, rect.top + 80, world);
  }

  async switchLanguage(code) {
    await setLanguage(code, true);
    this.updateTitle();
    this.setStatus(t('status.ready'));
    this.editor.graph.changed();
    this.editor.requestDraw();
    if (!document.getElementById('runs').hidden) this.refreshRuns();
  }

  async group() {
    if (!this.editor.selection.size) return;
    this.editor.groupSelection(t('group.untitled'));
  }

  showHelp() {
    const rows = SHORTCUTS.map(([keys, message]) => element('tr', {},
      element('td', { class: 'keys' }, keys.startsWith('help.') ? t(keys) : keys), element('td', {}, t(message))));
    const body = element('table', { class: 'shortcuts' }, element('tbody', {}, ...rows));
    dialog(t('help.title'), body, [{ label: t('dialog.close'), primary: true, value: () => null }]);
  }

  // ---- keyboard --------------------------------------------------------------

  installKeyboard() {
    window.addEventListener('keydown', (event) => {
      if (event.target.closest?.('input, textarea, select, .dialog')) return;
      const editor = this.editor;
      const ctrl = event.ctrlKey || event.metaKey;
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      const actions = [
        [ctrl && event.altKey && key === 'Enter', () => this.interrupt()],
        [ctrl && !event.altKey && key === 'Enter', () => this.queue()],
        [ctrl && key === 'z' && !event.shiftKey, () => editor.undo()],
        [ctrl && ((key === 'z' && event.shiftKey) || key === 'y'), () => editor.redo()],
        [ctrl && key === 's', () => this.save()],
        [ctrl && key === 'o', () => this.openDialog()],
        [ctrl && key === 'a', () => editor.selectAll()],
        [ctrl && key === 'd', () => editor.duplicateSelection()],
        [ctrl && key === 'b', () => editor.toggleMode('bypass')],
        [ctrl && key === 'm', () => editor.toggleMode('mute')],
        [ctrl && key === 'g', () => this.group()],
        [event.altKey && key === 'c', () => editor.toggleCollapse()],
        [key === 'Delete' || key === 'Backspace', () => editor.deleteSelection()],
        [key === 'F2' && editor.selection.size === 1, () => this.gestures.renameNode(
          editor.graph.nodes.get([...editor.selection][0]))],
        [!ctrl && key === '.', () => editor.fitView()],
        [!ctrl && key === '?', () => this.showHelp()],
        [key === 'Escape', () => { closeMenus(); editor.selection.clear(); editor.requestDraw(); }],
      ];
      const match = actions.find(([when]) => when);
      if (!match) return;
      event.preventDefault();
      match[1]();
    });
  }

  // Copy and paste go through the system clipboard (so they work across tabs and windows),
  // with localStorage as the fallback where the clipboard is not readable.
  installClipboard() {
    const editable = (event) => event.target.closest?.('input, textarea');
    document.addEventListener('copy', (event) => {
      if (editable(event)) return;
      const text = this.editor.copySelection();
      if (!text) return;
      event.clipboardData.setData('text/plain', text);
      event.preventDefault();
    });
    document.addEventListener('cut', (event) => {
      if (editable(event)) return;
      const text = this.editor.copySelection();
      if (!text) return;
      event.clipboardData.setData('text/plain', text);
      event.preventDefault();
      this.editor.deleteSelection();
    });
    document.addEventListener('paste', (event) => {
      if (editable(event)) return;
      const text = event.clipboardData.getData('text/plain');
      const world = this.editor.view.toWorld(...this.editor.pointer);
      if (text && this.editor.paste(text, world)) {
        event.preventDefault();
        return;
      }
      this.editor.paste(null, world);
    });
  }

  // ---- files -----------------------------------------------------------------

  async workflowList() {
    const data = await api.workflows();
    return (data.workflows || data).map((item) => (typeof item === 'string' ? { name: item } : item));
  }

  newWorkflow() {
    this.editor.loadDocument(emptyDocument());
    this.name = '';
    this.updateTitle();
  }

  load(document, name = '') {
    const problem = documentProblem(document);
    if (problem) {
      notify(problem, 'error');
      return false;
    }
    this.editor.loadDocument(document);
    this.name = name;
    this.updateTitle();
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
    if (!this.name) return this.saveAs();
    return this.saveNamed(this.name);
  }

  async saveAs() {
    const name = await askText(t('menu.save_as'), t('file.name'), this.name || this.editor.graph.meta.name || '');
    if (name) await this.saveNamed(name);
  }

  async saveNamed(name) {
    try {
      const document = this.document();
      if (!document.name) document.name = name;
      await api.saveWorkflow(name, document);
      this.name = name;
      this.editor.dirty = false;
      this.updateTitle();
      notify(t('file.saved_as', { name }), 'info', 2500);
    } catch (error) {
      notify(t('error.save', { name, message: error.message }), 'error');
    }
  }

  download() {
    const text = JSON.stringify(this.document(), null, 2);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const stem = (this.name || this.editor.graph.meta.name || 'workflow').replace(/[^\w.-]+/g, '-');
    link.download = stem.endsWith('.json') ? stem : `${stem}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  // ---- runs ------------------------------------------------------------------

  // Seeds in randomize mode get their new value here, drawn on the node before the run is queued.
  randomizeSeeds() {
    let changed = false;
    for (const node of this.editor.graph.nodes.values()) {
      for (const name of node.ui.randomize || []) {
        const spec = this.editor.graph.inputSpecs(node).find((item) => item.name === name);
        if (!spec || typeof node.inputs[name] === 'object') continue;
        const min = spec.min ?? 0;
        const max = Math.min(spec.max ?? SEED_MAX, Number.MAX_SAFE_INTEGER);
        node.inputs[name] = min + Math.floor(Math.random() * (max - min + 1));
        changed = true;
      }
    }
    if (changed) this.editor.edited();
  }

  async queue() {
    this.randomizeSeeds();
    const workflow = this.document();
    this.editor.setErrors([]);
    try {
      // Validate first: problems come back as a 200 list, so they are shown without a failed request.
      const { errors } = await api.validate(workflow);
      if (errors.length) {
        this.showProblems(errors);
        return;
      }
      const result = await api.queue(workflow);
      this.setStatus(t('status.queued_position', { position: result.position ?? 0 }));
      this.watch(result.id);
    } catch (error) {
      this.showQueueError(error);
    }
    if (!document.getElementById('runs').hidden) this.refreshRuns();
  }

  showQueueError(error) {
    if (error instanceof ApiError && error.status === 400 && Array.isArray(error.body?.errors)) {
      this.showProblems(error.body.errors);
      return;
    }
    notify(t('error.queue', { message: error.message }), 'error');
  }

  // Mark the nodes and inputs that validation errors name; errors about the whole document become notices.
  showProblems(errors) {
    this.editor.setErrors(errors);
    const general = errors.filter((item) => !item.node || !this.editor.graph.nodes.has(item.node));
    for (const item of general) notify(item.message, 'error', 10000);
    this.setStatus(t('status.invalid_count', { count: errors.length }));
  }

  async interrupt() {
    try {
      // DELETE on a finished run removes it from the history, so only a queued or running run is sent one.
      const run = this.watchedRun ? await api.run(this.watchedRun) : null;
      if (!run || !['queued', 'running'].includes(run.status)) {
        notify(t('status.nothing_to_interrupt'), 'info', 2500);
        return;
      }
      await api.deleteRun(this.watchedRun);
      notify(t('status.interrupt_sent'), 'info', 2500);
    } catch (error) {
      notify(t('error.interrupt', { message: error.message }), 'error');
    }
  }

  // Runs waiting or running on the server, from every client.
  showQueueCount(event) {
    const count = (event.queued || 0) + (event.running ? 1 : 0);
    document.getElementById('queue-count').textContent = count ? t('status.queue_count', { count }) : '';
  }

  // Follow a run on the canvas; events that arrived before its id was known are replayed.
  watch(runId) {
    this.watchedRun = runId;
    this.editor.clearRunState();
    const early = this.unwatched.get(runId) || [];
    this.unwatched.clear();
    for (const event of early) this.onEvent(event);
  }

  onEvent(event) {
    if (event.event?.startsWith('run.') && !document.getElementById('runs').hidden) this.refreshRunsSoon();
    if (event.event === 'queue.status') this.showQueueCount(event);
    if (!event.run) return;
    if (event.run !== this.watchedRun) {
      // A run can start, and even finish, before the response to the POST that queued it arrives.
      if (!this.unwatched.has(event.run)) {
        if (this.unwatched.size >= EARLY_RUNS) this.unwatched.delete(this.unwatched.keys().next().value);
        this.unwatched.set(event.run, []);
      }
      this.unwatched.get(event.run).push(event);
      return;
    }
    const editor = this.editor;
    const id = event.node;
    const previous = id ? editor.runState.get(id) || {} : null;
    switch (event.event) {
      case 'run.started':
        this.setStatus(t('status.running'));
        break;
      case 'run.succeeded': case 'run.failed': case 'run.interrupted': case 'run.invalid': {
        const status = event.event.slice(4);
        this.setStatus(t(`status.${status}`));
        if (status === 'failed' && event.error?.message) notify(event.error.message, 'error', 10000);
        if (status === 'invalid' && event.errors) editor.setErrors(event.errors);
        break;
      }
      case 'node.started':
        editor.setRunState(id, { ...previous, status: 'running', step: 0, total: 0 });
        break;
      case 'node.progress':
        editor.setRunState(id, { ...previous, status: 'running', step: event.step, total: event.total,
          preview: event.preview || previous.preview });
        break;
      case 'node.cached': case 'node.finished': {
        const display = event.display || {};
        editor.setRunState(id, { status: event.event === 'node.cached' ? 'cached' : 'finished',
          text: display.text, images: display.images, preview: null });
        break;
      }
      case 'node.skipped':
        editor.setRunState(id, { status: 'skipped', reason: event.reason });
        break;
      case 'node.failed':
        editor.setRunState(id, { status: 'failed' });
        editor.setErrors([...[...editor.errors.values()].flat(),
          { node: id, message: `${event.error_type}: ${event.message}` }]);
        break;
      default:
        break;
    }
  }

  onSocket(state) {
    const indicator = document.getElementById('connection');
    indicator.dataset.state = state === 'lost' ? 'lost' : 'ok';
    indicator.textContent = t(state === 'lost' ? 'connection.lost' : 'connection.ok');
    if (state === 'lost') notify(t('connection.lost_notice'), 'warning', 0).classList.add('connection-notice');
    if (state === 'reopened') {
      for (const box of document.querySelectorAll('.connection-notice')) box.remove();
      notify(t('connection.back'), 'info', 4000);
      this.resyncRun();
    }
  }

  // After a reconnect, fetch the watched run's state instead of trusting events that may have been missed.
  async resyncRun() {
    if (!this.watchedRun) return;
    try {
      const run = await api.run(this.watchedRun);
      this.setStatus(t(`status.${run.status}`));
      for (const [id, node] of Object.entries(run.nodes || {})) {
        const status = { executed: 'finished', pending: null }[node.status] ?? node.status;
        if (!status) continue;
        const display = run.outputs?.[id] || {};
        this.editor.setRunState(id, { status, text: display.text, images: display.images });
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) notify(t('error.server', { message: error.message }), 'error');
    }
  }

  toggleRuns(show) {
    const panel = document.getElementById('runs');
    panel.hidden = show === undefined ? !panel.hidden : !show;
    if (!panel.hidden) this.refreshRuns();
  }

  refreshRunsSoon() {
    clearTimeout(this.runsTimer);
    this.runsTimer = setTimeout(() => this.refreshRuns(), 200);
  }

  async refreshRuns() {
    const list = document.getElementById('runs-list');
    let data;
    try {
      data = await api.runs(50);
    } catch (error) {
      list.replaceChildren(element('li', { class: 'muted' }, t('error.server', { message: error.message })));
      return;
    }
    const runs = data.runs || data;
    if (!runs.length) {
      list.replaceChildren(element('li', { class: 'muted' }, t('runs.empty')));
      return;
    }
    list.replaceChildren(...runs.map((run) => element('li', { class: 'run', dataset: { run: run.id, status: run.status } },
      element('span', { class: `run-status status-${run.status}` }, t(`status.${run.status}`)),
      element('span', { class: 'run-time' }, run.created ? new Date(run.created * 1000).toLocaleTimeString() : ''),
      element('span', { class: 'run-name' }, run.name || run.workflow_name || run.id.slice(0, 8)),
      element('button', { class: 'small', onclick: () => this.reopenRun(run.id) }, t('runs.open')),
      element('button', { class: 'small', onclick: () => this.removeRun(run) },
        ['queued', 'running'].includes(run.status) ? t('runs.cancel') : t('runs.delete')))));
  }

  async reopenRun(id) {
    try {
      const workflow = await api.runWorkflow(id);
      if (this.load(workflow)) {
        this.watch(id);
        this.resyncRun();
      }
    } catch (error) {
      notify(t('error.open', { name: id, message: error.message }), 'error');
    }
  }

  async removeRun(run) {
    try {
      await api.deleteRun(run.id);
    } catch (error) {
      notify(t('error.server', { message: error.message }), 'error');
    }
    this.refreshRuns();
  }

  // ---- test hook -------------------------------------------------------------

  installHook() {
    const editor = this.editor;
    const app = this;
    const slot = (id, kind, name) => {
      const node = editor.graph.nodes.get(id);
      const world = node && editor.slotWorld(node, kind, name);
      return world ? editor.toPage(...world) : null;
    };
    Object.assign(window.nodegraphEditor, {
      graph: () => editor.graph.toDocument(),
      slot,
      // Page position of a point in a node: its title bar by default, or (dx, dy) world units from its corner.
      nodePoint(id, dx = 60, dy = 14) {
        const node = editor.graph.nodes.get(id);
        if (!node) return null;
        return editor.toPage(node.ui.pos[0] + dx, node.ui.pos[1] + dy);
      },
      widget(id, name) {
        const node = editor.graph.nodes.get(id);
        const widget = node && editor.layout(node).widgets.find((item) => item.name === name);
        if (!widget) return null;
        const [x, y] = node.ui.pos;
        const topLeft = editor.toPage(x + widget.x, y + widget.y);
        const bottomRight = editor.toPage(x + widget.x + widget.w, y + widget.y + widget.h);
        return { x: topLeft.x, y: topLeft.y, w: bottomRight.x - topLeft.x, h: bottomRight.y - topLeft.y };
      },
      toPage: (wx, wy) => editor.toPage(wx, wy),
      selection: () => [...editor.selection],
      view: () => ({ x: editor.view.x, y: editor.view.y, k: editor.view.k }),
      state: (id) => editor.runState.get(id) || null,
      errors: (id) => editor.errors.get(id) || [],
      hint: () => editor.lastHint,
      // URLs of the images the canvas has loaded and can draw (previews, outputs, uploads).
      images: () => [...editor.renderer.images].filter(([, image]) => image.naturalWidth).map(([url]) => url),
      notices: () => notices.map((item) => item.message),
      status: () => document.getElementById('run-status').textContent,
      name: () => app.name,
      run: () => app.watchedRun,
      nodeTitle: (id) => editor.nodeTitle(editor.graph.nodes.get(id)),
      frames: () => ({ count: editor.frameCount, drawTimes: [...editor.drawTimes], drawn: editor.renderer.drawnNodes }),
      // Benchmark helpers: load a document and pan by screen pixels, as the gestures do.
      load: (document) => app.load(document),
      panBy: (dx, dy) => editor.setView(editor.view.translate(dx, dy)),
    });
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

window.nodegraphEditor = { ready: false };
new App().start().catch((error) => {
  console.error(error);
  const box = document.getElementById('startup-error');
  box.hidden = false;
  box.textContent = t('error.startup', { message: error.message });
});
