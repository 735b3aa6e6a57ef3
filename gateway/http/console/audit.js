/* global document, URLSearchParams */
/**
 * The audit search view: GET /v1/audit with the form's filters, a page at a time. The gateway records
 * every search before answering (audit.queried), so this page's own searches are in the trail too.
 */
import { api, el, errorBlock, leaves } from './common.js';

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

// The chain's own members say nothing about what happened; they stay out of the detail.
const CHAIN = new Set(['prev', 'hash', 'sig']);

/** What the record says, member by member: the field paths and operations disclosed among them. */
function showDetail(r) {
  const detail = document.getElementById('audit-detail');
  const lines = leaves(Object.fromEntries(Object.entries(r).filter(([k]) => !CHAIN.has(k) && k !== 'fields')));
  // One line per path disclosed, with its operation: the "what" of who received what.
  if (Array.isArray(r.fields)) for (const f of r.fields) lines.push(['disclosed', `${f && f.path} → ${f && f.op}`]);
  detail.replaceChildren(
    el('h3', { text: `Record ${r.seq}: ${r.action}` }),
    el('table', { className: 'audit-detail' }, el('tbody', {}, lines.map(([p, v]) => el('tr', {}, el('th', { scope: 'row', text: p }), el('td', { text: v }))))),
  );
  detail.hidden = false;
}

function render(page, q, append) {
  const rows = page.records.map((r) => {
    const fields = Array.isArray(r.fields) ? `${r.fields.length} path${r.fields.length === 1 ? '' : 's'}` : 'details';
    const more = el('button', { type: 'button', className: 'link', text: fields, title: 'Show every member of this record' });
    more.addEventListener('click', () => showDetail(r));
    return el(
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
      el('td', {}, more),
    );
  });
  let table = document.getElementById('audit-table');
  if (!append || !table) {
    const head = ['Seq', 'At', 'Kind', 'Action', 'Actor', 'Recipient', 'Agreement', 'Packet', 'Policy revision', 'What'];
    table = el('table', { id: 'audit-table' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))), el('tbody'));
    out.replaceChildren(el('p', { id: 'audit-summary' }), el('div', { className: 'scroll' }, table), el('aside', { id: 'audit-detail', hidden: true }));
  }
  table.tBodies[0].append(...rows);
  const shown = table.tBodies[0].rows.length;
  document.getElementById('audit-summary').textContent = `${shown} record${shown === 1 ? '' : 's'}${page.next === null ? '' : ' so far'}.${page.warning ? ` Warning: ${page.warning}` : ''}`;
  const more = document.getElementById('audit-more');
  if (more) more.remove();
  if (page.next !== null) {
    const button = el('button', { type: 'button', id: 'audit-more', text: 'Next page' });
    button.addEventListener('click', () => void search(page.next, true));
    document.getElementById('audit-detail').before(button);
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
