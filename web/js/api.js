// The server's HTTP API, as described by /api/openapi.json.

import { t } from './i18n.js';

// A server started with --token wants it on every /api/ request. The editor takes it from its own
// page address (`/?token=…`) and sends it as a header, or as `?token=` where a header cannot go
// (the WebSocket, image URLs). It never goes into a document, a download or storage.
const TOKEN = new URLSearchParams(location.search).get('token') || '';

export function hasToken() {
  return TOKEN !== '';
}

// Add the token to a same-server /api/ URL; other URLs (data: previews, blobs) are returned as they are.
export function withToken(url) {
  if (!TOKEN || !String(url).startsWith('/api/')) return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(TOKEN)}`;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(status === 401 ? unauthorizedMessage() : body?.errors?.[0]?.message || body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// What a 401 means depends on whether the page address carried a token at all.
export function unauthorizedMessage() {
  return TOKEN ? t('error.token_rejected')
    : t('error.token_missing', { address: `${location.origin}${location.pathname}?token=TOKEN` });
}

async function request(method, path, body) {
  const options = { method, headers: {} };
  if (TOKEN) options.headers.Authorization = `Bearer ${TOKEN}`;
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  nodes: () => request('GET', '/api/nodes'),
  validate: (workflow) => request('POST', '/api/validate', { workflow }),
  queue: (workflow, params) => request('POST', '/api/runs', params ? { workflow, params } : { workflow }),
  runs: (limit = 50) => request('GET', `/api/runs?limit=${limit}`),
  run: (id) => request('GET', `/api/runs/${encodeURIComponent(id)}`),
  runWorkflow: (id) => request('GET', `/api/runs/${encodeURIComponent(id)}/workflow`),
  deleteRun: (id) => request('DELETE', `/api/runs/${encodeURIComponent(id)}`),
  workflows: () => request('GET', '/api/workflows'),
  workflow: (name) => request('GET', `/api/workflows/${encodeURIComponent(name)}`),
  saveWorkflow: (name, workflow) => request('PUT', `/api/workflows/${encodeURIComponent(name)}`, workflow),
  exportMermaid: (workflow) => request('POST', '/api/mermaid/export', { workflow }),
  upload(file) {
    const form = new FormData();
    form.append('image', file, file.name);
    return request('POST', '/api/uploads', form);
  },
};

export function fileUrl(kind, filename) {
  return withToken(`/api/files/${encodeURIComponent(kind)}/${String(filename).split('/').map(encodeURIComponent).join('/')}`);
}
