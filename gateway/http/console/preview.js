/* global document */
/**
 * The preview view: one dossier (an example, a JSON file or pasted) previewed for every partner with
 * POST /v1/preview, side by side. Rows are the dossier's subjects, matched by subject id through each
 * preview's `refs` (input id → placeholder ref in the plaintext), never by array position: a partner
 * that is not sent a subject shows "not shared" on that subject's row. A cell's decision trace
 * (rule → operation → path) is its tooltip and, on click, the panel under the table.
 */
import { api, el, errorBlock, leaves } from './common.js';

const select = document.getElementById('preview-example');
const text = document.getElementById('preview-dossier');
const file = document.getElementById('preview-file');
const out = document.getElementById('preview-out');
const trace = document.getElementById('trace');
const traceTitle = document.getElementById('trace-title');
const traceLines = document.getElementById('trace-lines');

const SENT = { requested: 'sent: requested checks', statutory: 'sent: statutory duty', not_requested: 'not sent: not requested', deferred: 'not sent: deferred by the force' };

/** The dossier in the text box, parsed, or undefined (for the diff view). */
export function currentDossier() {
  try {
    const v = JSON.parse(text.value);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

async function loadExample(name) {
  const dossier = await api('GET', `/v1/governance/examples/${encodeURIComponent(name)}`);
  text.value = JSON.stringify(dossier, null, 2);
}

export async function open() {
  if (select.options.length > 0) return;
  try {
    const { examples } = await api('GET', '/v1/governance/examples');
    select.replaceChildren(...examples.map((n) => el('option', { value: n, text: n })));
    if (!text.value.trim() && examples.length) await loadExample(examples[0]);
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
}

export function reset() {
  out.replaceChildren();
  select.replaceChildren();
  text.value = '';
  trace.hidden = true;
}

function traceText(entries) {
  return entries.map((t) => `${t.rule} → ${t.op} → ${t.path}${t.note ? ` (${t.note})` : ''}`);
}

function showTrace(title, entries) {
  traceTitle.textContent = title;
  const lines = traceText(entries);
  traceLines.replaceChildren(...(lines.length ? lines.map((l) => el('li', { text: l })) : [el('li', { text: 'no rule applied here' })]));
  trace.hidden = false;
}

/** One cell: the partner's view of a subject (or of the dossier outside the subjects), with its trace. */
function cell(partner, rowLabel, lines, entries, state) {
  const title = traceText(entries).join('\n') || 'no rule applied here';
  const content = lines.length
    ? el('ul', { className: 'leaves' }, lines.map(([p, v]) => el('li', {}, el('span', { className: 'path', text: p }), el('span', { className: 'value', text: v }))))
    : el('p', { className: 'none', text: state });
  const button = el('button', { type: 'button', className: 'cell', title, dataset: { partner: partner.partner } }, content);
  button.addEventListener('click', () => showTrace(`Decision trace: ${partner.partner} · ${rowLabel}`, entries));
  return el('td', { dataset: { partner: partner.partner } }, button);
}

function subjectLabel(s) {
  const name = s.name && typeof s.name === 'object' ? [s.name.given, s.name.family].filter(Boolean).join(' ') : '';
  return `${s.id}${name ? ` · ${name}` : ''}${s.role ? ` (${s.role})` : ''}`;
}

function render(dossier, previews) {
  const subjects = Array.isArray(dossier.subjects) ? dossier.subjects : [];
  const head = el(
    'tr',
    {},
    el('th', { scope: 'col', text: 'Subject' }),
    previews.map((p) => {
      const sent = SENT[p.sent.sent] || p.sent.sent;
      return el(
        'th',
        { scope: 'col', dataset: { partner: p.partner } },
        el('div', { text: p.partner }),
        el('div', { className: `note sent-${p.sent.sent}`, text: sent }),
        p.blocked ? el('div', { className: 'blocked', text: `blocked: ${p.blocked.reason}` }) : null,
        p.match
          ? el('div', {
              className: 'note match',
              text: `asked first: a match request on ${p.match.disclosed.filter((d) => d.path.startsWith('subjects')).map((d) => d.path.replace(/^subjects\[\]\./, '')).join(', ')}; the cells are what follows a hit (${p.match.followUp === 'approval' ? 'once the force approves' : 'at once'})`,
            })
          : null,
      );
    }),
  );
  const rows = [];
  // Outside the subjects: reference, group, locations…
  rows.push(
    el(
      'tr',
      { dataset: { subject: '' } },
      el('th', { scope: 'row', text: 'Dossier (outside the subjects)' }),
      previews.map((p) => {
        const d = p.plaintext ? { ...p.plaintext.dossier } : undefined;
        if (d) delete d.subjects;
        return cell(p, 'the dossier', d ? leaves(d) : [], p.trace.filter((t) => t.scope === 'dossier'), p.blocked ? `blocked: ${p.blocked.reason}` : 'nothing');
      }),
    ),
  );
  for (const s of subjects) {
    rows.push(
      el(
        'tr',
        { dataset: { subject: String(s.id) } },
        el('th', { scope: 'row', text: subjectLabel(s) }),
        previews.map((p) => {
          const ref = p.refs.find((r) => r.subject === s.id);
          const shared = ref && p.plaintext ? p.plaintext.dossier.subjects.find((x) => x.id === ref.ref) : undefined;
          const lines = shared ? leaves(shared).filter(([path]) => path !== 'id') : [];
          const entries = p.trace.filter((t) => t.scope === 'subject' && t.subject === s.id);
          return cell(p, subjectLabel(s), lines, entries, p.blocked ? `blocked: ${p.blocked.reason}` : 'not shared');
        }),
      ),
    );
  }
  out.replaceChildren(
    el('p', { className: 'note', text: `Policy revision ${previews[0] ? previews[0].policy.revision : ''}. Refs and pseudonyms are placeholders. Hover a cell for its trace, click to pin it below.` }),
    el('div', { className: 'scroll' }, el('table', { id: 'preview-table' }, el('thead', {}, head), el('tbody', {}, rows))),
  );
}

document.getElementById('preview-load-example').addEventListener('click', () => {
  if (select.value) loadExample(select.value).catch((err) => out.replaceChildren(errorBlock(err)));
});

file.addEventListener('change', async () => {
  const f = file.files && file.files[0];
  if (!f) return;
  if (f.size > 4 * 1024 * 1024) {
    out.replaceChildren(errorBlock(new Error(`${f.name} is larger than 4 MiB`)));
    return;
  }
  text.value = await f.text();
});

document.getElementById('preview-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  trace.hidden = true;
  let dossier;
  try {
    dossier = JSON.parse(text.value);
  } catch (err) {
    out.replaceChildren(errorBlock(new Error(`The dossier is not valid JSON: ${err.message}`)));
    return;
  }
  out.replaceChildren(el('p', { text: 'Previewing…' }));
  try {
    const { partners } = await api('GET', '/v1/governance/agreements');
    const previews = [];
    for (const p of partners) previews.push(await api('POST', '/v1/preview', { dossier, partner: p.partner.id }));
    render(dossier, previews);
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
});
