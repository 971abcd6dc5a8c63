// The dispatcher's JSON API on the same origin (docs/api.md). One `call`:
// sends the bearer token kept in sessionStorage, asks for one on a 401 and
// retries, and turns every error body {"error","code"} into an ApiError.

const TOKEN_KEY = 'lowcode-faas.token';

/** An API (or network) error: HTTP status (0: no answer), message, code. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let askToken = async () => null;
let pendingAsk = null;

/**
 * Sets the function that asks the user for a token:
 * `async (reason) => token | null` (null: the user cancelled).
 */
export function setTokenPrompt(fn) {
  askToken = fn;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Sends one request. Resolves to {status, data} (data: parsed JSON or null
 * for an empty body); rejects with ApiError.
 */
export async function call(method, path, body) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Accept: 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, `network error: ${err.message}`, 'NETWORK_ERROR');
    }
    const text = await resp.text();
    let data = null;
    if (text.trim() !== '') {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (resp.status === 401 && attempt < 5) {
      const reason = token ? 'The token was refused; enter it again.' : 'The server needs an API token.';
      // Several calls failing at once share one prompt.
      pendingAsk = pendingAsk || askToken(reason).finally(() => { pendingAsk = null; });
      const given = await pendingAsk;
      if (given) {
        setToken(given);
        continue;
      }
    }
    if (!resp.ok) {
      const message = (data && typeof data.error === 'string' && data.error)
        || (data === null && text.trim() !== ''
          ? `${resp.statusText || 'error'}: the answer is not JSON (is this page served by the lowcode-faas dispatcher?)`
          : resp.statusText || 'request failed');
      const code = (data && typeof data.code === 'string' && data.code) || `HTTP_${resp.status}`;
      throw new ApiError(resp.status, message, code);
    }
    return { status: resp.status, data };
  }
}

/**
 * Whether `/collections/{cp}/functions…` names exactly the collection `cp`:
 * each segment plain and none `functions` or `env`. A collection the Go
 * version stored may have such a segment (docs/api.md §2.2), and
 * `/collections/x/functions/functions` is then ambiguous.
 */
function nestsPlainly(collection) {
  return collection.split('/').every((s) => /^[A-Za-z0-9_.-]+$/.test(s) && s !== 'functions' && s !== 'env');
}

/**
 * A function route (`tail` after `/functions`): `/functions…` for the root,
 * `/collections/{cp}/functions…` for a plain collection, else the
 * unambiguous `/functions…?collection_path={cp}`.
 */
function functionRoute(collection, tail) {
  if (!collection) return `/functions${tail}`;
  if (nestsPlainly(collection)) return `/collections/${collection}/functions${tail}`;
  return `/functions${tail}?collection_path=${encodeURIComponent(collection).replaceAll('%2F', '/')}`;
}

/** The functions of a collection (list, create): see functionRoute. */
export function functionsPath(collection) {
  return functionRoute(collection, '');
}

/** `…/functions/{name}` plus an optional action (invoke, versions, pull). */
export function functionPath(collection, name, action) {
  const tail = `/${encodeURIComponent(name)}`;
  return functionRoute(collection, action ? `${tail}/${action}` : tail);
}

/** `path` with `key=value` added to its query. */
export function withQuery(path, key, value) {
  return `${path}${path.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`;
}

/** `/collections/env` for the root, `/collections/{cp}/env` otherwise. */
export function collectionEnvPath(collection) {
  return collection ? `/collections/${collection}/env` : '/collections/env';
}
