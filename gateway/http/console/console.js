/* global document */
/**
 * Cordon governance console: the token form and the views. Runs under the gateway's
 * Content-Security-Policy: these modules are the page's only scripts and load nothing else.
 */
import { dropToken, keepToken, onRefused, storedToken, TOKEN, describe } from './common.js';
import * as partners from './partners.js';
import * as preview from './preview.js';
import * as diff from './diff.js';
import * as audit from './audit.js';
import * as isa from './isa.js';

const VIEWS = { partners, preview, diff, audit, isa };

const form = document.getElementById('token-form');
const input = document.getElementById('token');
const forget = document.getElementById('forget');
const status = document.getElementById('status');
const tabs = document.getElementById('tabs');

let current = 'partners';

function say(text, kind) {
  status.textContent = text;
  status.className = kind || '';
}

/** `loaded`: the view's data was just fetched (the partners view, by the token check). */
function show(name, loaded = false) {
  current = name;
  for (const b of tabs.querySelectorAll('button[data-view]')) b.setAttribute('aria-pressed', String(b.dataset.view === name));
  for (const [n] of Object.entries(VIEWS)) document.getElementById(`view-${n}`).hidden = n !== name;
  if (!loaded) VIEWS[name].open().catch((err) => say(describe(err), 'error'));
}

function close(message, kind) {
  dropToken();
  forget.hidden = true;
  tabs.hidden = true;
  for (const [n, v] of Object.entries(VIEWS)) {
    document.getElementById(`view-${n}`).hidden = true;
    v.reset();
  }
  say(message, kind);
  input.focus();
}

async function start() {
  forget.hidden = false;
  say('Checking the token…');
  // One governance-only call: a wrong token or role is refused here, before any view opens.
  try {
    await partners.load();
  } catch (err) {
    if (storedToken()) say(describe(err), 'error');
    return;
  }
  tabs.hidden = false;
  say('Connected as governance.', 'ok');
  show(current, current === 'partners');
}

onRefused((err) => close(`${describe(err)}. Enter a governance token.`, 'error'));

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = input.value.trim();
  input.value = '';
  if (!TOKEN.test(token)) {
    say('That is not a bearer token: letters, digits and . _ ~ + / = - only, at most 256 characters.', 'error');
    return;
  }
  try {
    keepToken(token);
  } catch {
    say('This browser refuses session storage, which the console needs to hold the token.', 'error');
    return;
  }
  void start();
});

forget.addEventListener('click', () => close('Token forgotten. Enter a governance token to open the console.'));

tabs.addEventListener('click', (event) => {
  const b = event.target.closest('button[data-view]');
  if (b) show(b.dataset.view);
});

if (storedToken()) void start();
