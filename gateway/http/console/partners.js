/* global document */
/** The partners view: GET /v1/governance/agreements as a table. */
import { api, el, errorBlock } from './common.js';

const out = document.getElementById('partners-out');
const revision = document.getElementById('partners-revision');
const STATUS = { in_force: 'in force', review_due: 'review due', not_in_force: 'not yet in force', expired: 'expired' };

function statusCell(a) {
  const days = a.daysLeft === null || a.daysLeft === undefined ? '' : ` (${a.daysLeft} day${a.daysLeft === 1 ? '' : 's'} left)`;
  const text = `${STATUS[a.status] || a.status}${a.status === 'expired' ? '' : days}`;
  return el('td', { className: `status-${a.status}`, text });
}

function rate(r) {
  return r === null || r === undefined ? '—' : `${Math.round(r * 1000) / 10} %`;
}

function render(data) {
  revision.textContent = `Live policy revision ${data.revision}; “review due” within ${data.reviewWarnDays} days of the review date.`;
  const rows = data.partners.map((p) => {
    const a = p.agreement;
    const mode = a.disclosure === 'after-match' ? `after-match (${a.followUp === 'approval' ? 'force approves follow-up' : 'follow-up at once'})` : 'immediate';
    const earlier = p.earlier.length ? el('div', { className: 'note', text: `earlier agreements: ${p.earlier.map((e) => `${e.agreement} ${e.hit} hit / ${e.noTrace} no trace`).join('; ')}` }) : null;
    return el(
      'tr',
      { dataset: { partner: p.partner.id } },
      el('th', { scope: 'row' }, el('div', { text: p.partner.name }), el('div', { className: 'note', text: p.partner.id })),
      el('td', { text: p.partner.checks.join(', ') }),
      el('td', {}, el('div', { text: a.reference }), el('div', { className: 'note', text: a.owner }), earlier),
      el('td', { text: a.inForceFrom }),
      el('td', { text: a.reviewBy }),
      statusCell(a),
      el('td', { text: mode }),
      el('td', { className: 'num', text: String(p.answers.hit) }),
      el('td', { className: 'num', text: String(p.answers.noTrace) }),
      el('td', { className: 'num', text: rate(p.answers.hitRate) }),
      el('td', { className: 'num', text: String(p.answers.withdrawn) }),
    );
  });
  const head = ['Partner', 'Checks', 'Agreement', 'In force from', 'Review by', 'Status', 'Disclosure', 'Hits', 'No trace', 'Hit rate', 'Withdrawn'];
  out.replaceChildren(
    el('table', { id: 'partners-table' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))), el('tbody', {}, rows)),
  );
}

/** Loads and renders; throws on a refused token (the caller asks again). */
export async function load() {
  render(await api('GET', '/v1/governance/agreements'));
}

export async function open() {
  try {
    await load();
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
}

export function reset() {
  out.replaceChildren();
  revision.textContent = '';
}

document.getElementById('partners-refresh').addEventListener('click', () => void open());
