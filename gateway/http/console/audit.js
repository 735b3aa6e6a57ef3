/* global document, URLSearchParams */
/**
 * The audit search view: GET /v1/audit with the form's filters, a page at a time. The gateway records
 * every search before answering (audit.queried), so this page's own searches are in the trail too.
 */
import { api, el, errorBlock } from './common.js';

const form = document.getElementById('audit-form');
const out = document.getElementById('audit-out');
const field = (id) => document.getElementById(`audit-${id}`);

let lastQuery;

export async function open() {}

export function reset() {
  out.replaceChildren();
  form.reset();
  lastQuery = undefined;
}

function query(after) {
  const q = new URLSearchParams();
  for (const name of ['reference', 'subject', 'partner', 'kind']) {
    const v = field(name).value.trim();
    if (v) q.set(name, v);
  }
  // Whole days, in UTC: "until" a date includes that day.
  if (field('since').value) q.set('since', `${field('since').value}T00:00:00Z`);
  if (field('until').value) q.set('until', `${field('until').value}T23:59:59.999Z`);
  q.set('limit', '100');
  if (after !== undefined) q.set('after', String(after));
  return q;
}

function agreementOf(r) {
  if (r.agreement && typeof r.agreement === 'object') return r.agreement.reference || '';
  return '';
}

function render(page, q, append) {
  const rows = page.records.map((r) =>
    el(
      'tr',
      { dataset: { seq: String(r.seq), action: String(r.action) } },
      el('td', { className: 'num', text: String(r.seq) }),
      el('td', { text: String(r.at) }),
      el('td', { text: String(r.kind) }),
      el('td', { text: String(r.action) }),
      el('td', { text: r.actor ? String(r.actor) : '' }),
      el('td', { text: r.recipient ? String(r.recipient) : '' }),
      el('td', { text: agreementOf(r) }),
      el('td', { text: r.packet ? String(r.packet) : '' }),
      el('td', { text: r.policyRevision ? String(r.policyRevision) : '' }),
      el('td', { text: Array.isArray(r.fields) ? `${r.fields.length} path${r.fields.length === 1 ? '' : 's'}` : '' }),
    ),
  );
  let table = document.getElementById('audit-table');
  if (!append || !table) {
    const head = ['Seq', 'At', 'Kind', 'Action', 'Actor', 'Recipient', 'Agreement', 'Packet', 'Policy revision', 'Fields'];
    table = el('table', { id: 'audit-table' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))), el('tbody'));
    out.replaceChildren(el('p', { id: 'audit-summary' }), el('div', { className: 'scroll' }, table));
  }
  table.tBodies[0].append(...rows);
  const shown = table.tBodies[0].rows.length;
  document.getElementById('audit-summary').textContent = `${shown} record${shown === 1 ? '' : 's'}${page.next === null ? '' : ' so far'}.${page.warning ? ` Warning: ${page.warning}` : ''}`;
  const more = document.getElementById('audit-more');
  if (more) more.remove();
  if (page.next !== null) {
    const button = el('button', { type: 'button', id: 'audit-more', text: 'Next page' });
    button.addEventListener('click', () => void search(page.next, true));
    out.append(button);
  }
  lastQuery = q;
}

async function search(after, append) {
  const q = after === undefined ? query() : new URLSearchParams(lastQuery);
  if (after !== undefined) q.set('after', String(after));
  if (!append) out.replaceChildren(el('p', { text: 'Searching…' }));
  try {
    render(await api('GET', `/v1/audit?${q.toString()}`), q, append);
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void search(undefined, false);
});
