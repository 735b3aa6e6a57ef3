/* global document, sessionStorage, AbortController */
/**
 * What every view of the governance console shares: the token (sessionStorage of this tab only; never
 * a URL, a cookie or persistent storage), the one way to call the gateway (bearer header, no cookies,
 * JSON errors turned into readable text), and building elements with textContent only: nothing the
 * gateway or a pasted file says is ever parsed as HTML.
 */
const STORAGE_KEY = 'cordon.console.token';
const REQUEST_TIMEOUT_MS = 30000;
// The gateway's accepted bearer token characters (gateway/http/auth.ts).
export const TOKEN = /^[A-Za-z0-9._~+/=-]{1,256}$/;

export function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function keepToken(token) {
  sessionStorage.setItem(STORAGE_KEY, token);
}

export function dropToken() {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}

/** An element with properties (`text` is its textContent, `className`, `dataset`, attributes by name) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'hidden') node.hidden = Boolean(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return node;
}

/** A failed call: `status` and the gateway's error (`code`, `message`, `details`). */
export class ApiError extends Error {
  constructor(status, error) {
    super(error && error.message ? error.message : `HTTP ${status}`);
    this.status = status;
    this.code = error && error.code;
    this.details = (error && Array.isArray(error.details) && error.details) || [];
  }
}

const listeners = [];
/** Called with the ApiError when the gateway refuses the token (401 or 403): the page asks again. */
export function onRefused(fn) {
  listeners.push(fn);
}

/** GET or POST JSON with the stored token. Throws ApiError (refused token: listeners told first). */
export async function api(method, path, body) {
  const token = storedToken();
  if (!token) throw new ApiError(401, { code: 'unauthenticated', message: 'Enter a governance token first' });
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal: controller.signal,
    });
  } catch (err) {
    throw new ApiError(0, { code: 'unreachable', message: controller.signal.aborted ? 'The gateway did not answer in time' : `Cannot reach the gateway: ${err && err.message ? err.message : 'request failed'}` });
  } finally {
    clearTimeout(deadline);
  }
  let json;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json && json.error);
    if (res.status === 401 || res.status === 403) for (const fn of listeners) fn(err);
    throw err;
  }
  return json;
}

/** A readable line for an ApiError, with each offending path. */
export function describe(err) {
  if (!(err instanceof ApiError)) return err && err.message ? err.message : String(err);
  const head = `${err.status ? `HTTP ${err.status} ` : ''}${err.code ? `${err.code}: ` : ''}${err.message}`;
  return head;
}

/** The error as a block: its line, then one item per detail (path: message). */
export function errorBlock(err) {
  const box = el('div', { className: 'error', role: 'alert' }, el('p', { text: describe(err) }));
  if (err instanceof ApiError && err.details.length) {
    box.append(el('ul', {}, err.details.slice(0, 200).map((d) => el('li', { text: `${d.path ? `${d.path}: ` : ''}${d.message || ''}` }))));
  }
  return box;
}

/** Leaves of a JSON value as `path: value` lines (arrays with [i]), for showing a redacted record. */
export function leaves(value, prefix = '') {
  const out = [];
  const walk = (v, p) => {
    if (Array.isArray(v)) {
      if (v.length === 0) out.push([p, '[]']);
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 0) out.push([p, '{}']);
      for (const k of keys) walk(v[k], p ? `${p}.${k}` : k);
    } else {
      out.push([p, v === null ? 'null' : String(v)]);
    }
  };
  walk(value, prefix);
  return out;
}
