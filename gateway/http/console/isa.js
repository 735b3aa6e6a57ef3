/* global document, Blob */
/**
 * The agreement view: the information-sharing agreement with one partner, rendered by the gateway from
 * the live policy (GET /v1/governance/isa/:partner), laid out here as text. The section text carries two
 * Markdown marks (`code`, **bold**), turned into elements one by one; nothing is parsed as HTML. The
 * Markdown and HTML documents `cordon policy isa` prints can be downloaded as they are.
 */
import { api, el, errorBlock } from './common.js';

const select = document.getElementById('isa-partner');
const out = document.getElementById('isa-out');
let urls = [];

/** A line with `code` and **bold** spans as elements, the rest as text. */
function inline(tag, text) {
  const node = el(tag);
  for (const part of String(text).split(/(`[^`]+`|\*\*[^*]+\*\*)/)) {
    if (!part) continue;
    if (part.startsWith('`') && part.endsWith('`') && part.length > 2) node.append(el('code', { text: part.slice(1, -1) }));
    else if (part.startsWith('**') && part.endsWith('**') && part.length > 4) node.append(el('strong', { text: part.slice(2, -2) }));
    else node.append(document.createTextNode(part));
  }
  return node;
}

function block(b) {
  if ('p' in b) return inline('p', b.p);
  if ('list' in b) return el('ul', {}, b.list.map((l) => inline('li', l)));
  const { head, rows } = b.table;
  return el('table', { className: 'isa-table' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))), el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', { text: c }))))));
}

function download(text, type, name, label) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  urls.push(url);
  return el('a', { href: url, download: name, className: 'download', text: label });
}

function render(isa) {
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  const file = isa.reference.replace(/[^A-Za-z0-9._-]/g, '_');
  out.replaceChildren(
    el(
      'p',
      { className: 'row' },
      download(isa.markdown, 'text/markdown;charset=utf-8', `${file}.md`, 'Download Markdown'),
      download(isa.html, 'text/html;charset=utf-8', `${file}.html`, 'Download HTML'),
    ),
    el(
      'article',
      { id: 'isa-document', dataset: { partner: isa.partner, revision: isa.revision } },
      el('h3', { className: 'isa-title', text: isa.title }),
      el('p', { className: 'note', text: `Reference ${isa.reference} · status: ${isa.status.replace(/_/g, ' ')} · policy revision ${isa.revision} · generated ${isa.generatedAt}` }),
      isa.sections.map((s) => el('section', {}, el('h4', { text: s.heading }), s.blocks.map(block))),
    ),
  );
}

async function show() {
  if (!select.value) return;
  out.replaceChildren(el('p', { text: 'Rendering…' }));
  try {
    render(await api('GET', `/v1/governance/isa/${encodeURIComponent(select.value)}`));
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
}

export async function open() {
  if (select.options.length > 0) return;
  const { partners } = await api('GET', '/v1/governance/agreements');
  select.replaceChildren(...partners.map((p) => el('option', { value: p.partner.id, text: `${p.partner.name} (${p.agreement.reference})` })));
  await show();
}

export function reset() {
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  out.replaceChildren();
  select.replaceChildren();
}

select.addEventListener('change', () => void show());
document.getElementById('isa-refresh').addEventListener('click', () => void show());
