// The application: menus, keyboard shortcuts, files, runs and the test hook, around one Editor.

import { api, ApiError } from './api.js';
import { Editor } from './editor.js';
import { Files } from './files.js';
import { installGestures } from './gestures.js';
import { LANGUAGES, language, preferredLanguage, setLanguage, t } from './i18n.js';
import { Runs } from './runs.js';
import { EventSocket } from './socket.js';
import { closeMenus, dialog, element, notices, showMenu } from './ui.js';

const NODE_COLORS = ['#3a3f4b', '#4a3b5c', '#2f4f4f', '#5c3b3b', '#3b5c3e', '#5c543b'];

// Pairs of keys and a message key, listed by the help overlay. Keys that start with `help.` are message keys.
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
    this.files = new Files(this);
    this.runs = new Runs(this);
    this.editor.listeners.add(() => this.updateTitle());
    this.installMenus();
    this.installKeyboard();
    this.installClipboard();
    this.files.installDrop();
    this.installHook();
    this.socket = new EventSocket({
      onEvent: (event) => this.runs.onEvent(event), onState: (state) => this.runs.onSocket(state),
    });
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
        { id: 'new', label: t('menu.new'), action: () => this.files.newWorkflow() },
        { id: 'open', label: t('menu.open'), shortcut: 'Ctrl+O', action: () => this.files.openDialog() },
        { id: 'open-file', label: t('menu.open_file'), action: () => this.files.openFile() },
        { id: 'examples', label: t('menu.examples'), submenu: () => this.examplesMenu() },
        'separator',
        { id: 'save', label: t('menu.save'), shortcut: 'Ctrl+S', action: () => this.files.save() },
        { id: 'save-as', label: t('menu.save_as'), action: () => this.files.saveAs() },
        { id: 'download', label: t('menu.download'), action: () => this.files.download() },
        { id: 'export-mermaid', label: t('menu.export_mermaid'), action: () => this.files.exportMermaid() },
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
        { id: 'queue', label: t('menu.queue'), shortcut: 'Ctrl+Enter', action: () => this.runs.queue() },
        { id: 'interrupt', label: t('menu.interrupt'), shortcut: 'Ctrl+Alt+Enter', action: () => this.runs.interrupt() },
        { id: 'runs', label: t('menu.runs'), action: () => this.runs.toggleRuns() },
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
    document.getElementById('queue-button').addEventListener('click', () => this.runs.queue());
    document.getElementById('interrupt-button').addEventListener('click', () => this.runs.interrupt());
    document.addEventListener('pointerdown', (event) => {
      if (!event.target.closest('.menu') && !event.target.closest('.menubar')) closeMenus();
    });
  }

  async examplesMenu() {
    try {
      const list = await this.files.workflowList();
      const examples = list.filter((item) => item.source === 'example');
      if (!examples.length) return [{ label: t('menu.no_examples'), disabled: true }];
      return examples.map((item) => ({
        id: `example-${item.name}`, label: item.title || item.name, action: () => this.files.openNamed(item.name, true),
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
    if (!document.getElementById('runs').hidden) this.runs.refreshRuns();
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
        [ctrl && event.altKey && key === 'Enter', () => this.runs.interrupt()],
        [ctrl && !event.altKey && key === 'Enter', () => this.runs.queue()],
        [ctrl && key === 'z' && !event.shiftKey, () => editor.undo()],
        [ctrl && ((key === 'z' && event.shiftKey) || key === 'y'), () => editor.redo()],
        [ctrl && key === 's', () => this.files.save()],
        [ctrl && key === 'o', () => this.files.openDialog()],
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
      run: () => app.runs.watchedRun,
      nodeTitle: (id) => editor.nodeTitle(editor.graph.nodes.get(id)),
      frames: () => ({ count: editor.frameCount, drawTimes: [...editor.drawTimes], drawn: editor.renderer.drawnNodes }),
      // Benchmark helpers: load a document and pan by screen pixels, as the gestures do.
      load: (document) => app.files.load(document),
      panBy: (dx, dy) => editor.setView(editor.view.translate(dx, dy)),
    });
  }
}

window.nodegraphEditor = { ready: false };
new App().start().catch((error) => {
  console.error(error);
  const box = document.getElementById('startup-error');
  box.hidden = false;
  // The 401 message already states what to do, and any other error may mean the server is not running.
  const refused = error instanceof ApiError && error.status === 401;
  box.textContent = refused ? error.message : t('error.startup', { message: error.message });
});
