// The server's HTTP API, as described by /api/openapi.json.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.errors?.[0]?.message || body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function request(method, path, body) {
  const options = { method, headers: {} };
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
  upload(file) {
    const form = new FormData();
    form.append('image', file, file.name);
    return request('POST', '/api/uploads', form);
  },
};

export function fileUrl(kind, filename) {
  return `/api/files/${encodeURIComponent(kind)}/${String(filename).split('/').map(encodeURIComponent).join('/')}`;
}
