/* global document, sessionStorage, AbortController */
/**
 * Cordon queue dashboard. Asks for a governance bearer token, keeps it in sessionStorage (this tab
 * only; never in the URL, a cookie or persistent storage), polls GET /v1/queues every 5 seconds and renders
 * the counts with textContent only. Runs under the gateway's Content-Security-Policy: this file is the
 * page's only script and loads nothing else.
 */
const STORAGE_KEY = 'cordon.dashboard.token';
const POLL_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
// The gateway's accepted bearer token characters (gateway/http/auth.ts).
const TOKEN = /^[A-Za-z0-9._~+/=-]{1,256}$/;
const STATES = ['waiting', 'active', 'delayed', 'paused', 'completed', 'failed'];
const STATUS_TEXT = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const form = document.getElementById('token-form');
const input = document.getElementById('token');
const forget = document.getElementById('forget');
const status = document.getElementById('status');
const table = document.getElementById('queues');
const rows = document.getElementById('rows');
const updated = document.getElementById('updated');

let timer;
let inFlight;

function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function say(text, kind) {
  status.textContent = text;
  status.className = kind || '';
}

function stop() {
  clearTimeout(timer);
  timer = undefined;
  if (inFlight) inFlight.abort();
  inFlight = undefined;
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(poll, ms);
}

function forgetToken(message, kind) {
  stop();
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
  forget.hidden = true;
  table.hidden = true;
  rows.replaceChildren();
  say(message, kind);
  input.focus();
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.floor(Number(seconds)));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (className) td.className = className;
  return td;
}

function render(snapshot) {
  const fresh = [];
  for (const q of snapshot.queues) {
    const counts = q.counts || {};
    const tr = document.createElement('tr');
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = String(q.name);
    tr.append(name);
    for (const state of STATES) {
      const n = Number(counts[state] ?? 0);
      tr.append(cell(n, state === 'failed' && n > 0 ? 'warn' : ''));
    }
    tr.append(cell(age(q.oldestWaitingSeconds)));
    const workers = q.workers === null || q.workers === undefined ? 'unknown' : Number(q.workers);
    tr.append(cell(workers, workers === 0 ? 'warn' : ''));
    tr.append(cell(q.paused ? 'paused' : 'running', q.paused ? 'warn' : ''));
    fresh.push(tr);
  }
  rows.replaceChildren(...fresh);
  table.classList.remove('stale');
  table.hidden = false;
  const at = new Date(snapshot.at);
  updated.textContent = Number.isNaN(at.getTime()) ? '' : `at ${at.toLocaleTimeString()}`;
}

async function errorMessage(res) {
  let detail = '';
  try {
    const body = await res.json();
    if (body && body.error) detail = `${body.error.message || ''}${body.error.code ? ` (${body.error.code})` : ''}`;
  } catch {
    // not JSON: the status says enough
  }
  const text = res.statusText || STATUS_TEXT[res.status] || '';
  return `HTTP ${res.status}${text ? ` ${text}` : ''}${detail ? `: ${detail}` : ''}`;
}

async function poll() {
  const token = storedToken();
  if (!token) return;
  if (document.hidden) {
    schedule(POLL_MS);
    return;
  }
  const controller = new AbortController();
  inFlight = controller;
  const deadline = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let next = POLL_MS;
  try {
    const res = await fetch('/v1/queues', {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      signal: controller.signal,
    });
    if (res.ok) {
      const snapshot = await res.json();
      if (!snapshot || !Array.isArray(snapshot.queues)) throw new Error('unexpected answer from /v1/queues');
      render(snapshot);
      say(`Connected. Refreshing every ${POLL_MS / 1000} s.`, 'ok');
    } else if (res.status === 401 || res.status === 403) {
      // A token this page cannot use: asking again every 5 s would only fill the audit trail.
      forgetToken(`${await errorMessage(res)}. Enter a governance token.`, 'error');
      return;
    } else {
      if (res.status === 429) {
        const retry = Number(res.headers.get('Retry-After'));
        if (Number.isFinite(retry) && retry > 0) next = Math.max(POLL_MS, retry * 1000);
      }
      table.classList.add('stale');
      say(`${await errorMessage(res)}. Retrying in ${Math.round(next / 1000)} s.`, 'error');
    }
  } catch (err) {
    if (controller.signal.aborted && inFlight !== controller) return; // stopped on purpose
    table.classList.add('stale');
    const why = controller.signal.aborted ? 'no answer in time' : err && err.message ? err.message : 'request failed';
    say(`Cannot reach the gateway: ${why}. Retrying in ${POLL_MS / 1000} s.`, 'error');
  } finally {
    clearTimeout(deadline);
    if (inFlight === controller) inFlight = undefined;
  }
  if (storedToken() === token) schedule(next);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = input.value.trim();
  input.value = '';
  if (!TOKEN.test(token)) {
    say('That is not a bearer token: letters, digits and . _ ~ + / = - only, at most 256 characters.', 'error');
    return;
  }
  stop();
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    say('This browser refuses session storage, which the dashboard needs to hold the token.', 'error');
    return;
  }
  forget.hidden = false;
  say('Loading…');
  void poll();
});

forget.addEventListener('click', () => forgetToken('Token forgotten. Enter a governance token to see the queues.'));

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && storedToken() && !inFlight) {
    stop();
    void poll();
  }
});

if (storedToken()) {
  forget.hidden = false;
  say('Loading…');
  void poll();
}
