// The REST client every page uses: JSON in and out, the bearer token, and one error type for
// every failure (the server's `{"code","message","fields"}` shape, or `network`).
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || 'request failed');
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'network' : 'other');
    this.fields = (body && body.fields) || [];
    this.retryAfterMs = body && body.retry_after_ms;
  }
}

export function createApi({ base = '/api/v1', token = () => null, onUnauthorized = () => {} } = {}) {
  async function request(method, path, { query, body, form } = {}) {
    let url = base + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      const s = q.toString();
      if (s) url += '?' + s;
    }
    const headers = {};
    const tok = token();
    if (tok) headers.authorization = 'Bearer ' + tok;
    let payload;
    if (form) payload = form;
    else if (body !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body); }
    let res;
    try {
      res = await fetch(url, { method, headers, body: payload });
    } catch (e) {
      throw new ApiError(0, { code: 'network', message: String(e && e.message) });
    }
    if (res.status === 204) return null;
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      const err = new ApiError(res.status, data);
      if (res.status === 401) onUnauthorized(err);
      throw err;
    }
    return data;
  }
  return {
    get: (path, query) => request('GET', path, { query }),
    post: (path, body) => request('POST', path, { body: body ?? {} }),
    patch: (path, body) => request('PATCH', path, { body }),
    put: (path, body) => request('PUT', path, { body }),
    del: (path) => request('DELETE', path),
    upload: (path, form) => request('POST', path, { form }),
  };
}
