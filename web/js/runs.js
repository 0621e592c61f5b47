// Runs: queueing the workflow, following its events on the canvas, interrupting, and the history panel.

import { api, ApiError } from './api.js';
import { t } from './i18n.js';
import { element, notify } from './ui.js';

const SEED_MAX = 2 ** 32 - 1;
// Runs whose events are kept while their id is not yet known to this tab.
const EARLY_RUNS = 8;

export class Runs {
  constructor(app) {
    this.app = app;
    this.editor = app.editor;
    this.watchedRun = null;
    this.unwatched = new Map();
    document.getElementById('runs-close').addEventListener('click', () => this.toggleRuns(false));
  }

  setStatus(text) {
    this.app.setStatus(text);
  }

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
    const workflow = this.editor.graph.toDocument();
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
      if (this.app.files.load(workflow)) {
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

}
