/* global document */
/**
 * The diff view: POST /v1/governance/diff with a candidate policy set read from files chosen in this
 * page (a whole folder, or a few changed files laid over the live set), or an earlier revision this
 * gateway process has served. Only file contents travel, keyed by their path inside the policy set:
 * never a path on the server.
 */
import { api, el, errorBlock } from './common.js';
import { currentDossier } from './preview.js';

const folder = document.getElementById('diff-folder');
const files = document.getElementById('diff-files');
const revisionSelect = document.getElementById('diff-revision');
const usePreview = document.getElementById('diff-use-preview');
const chosen = document.getElementById('diff-chosen');
const out = document.getElementById('diff-out');

// What the gateway accepts as a file of a candidate set (gateway/governance/candidate.ts).
const REL = /^(?:gateway\.yaml|(?:partners|sources|peers)\/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\.ya?ml|(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\/){0,2}[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\.(?:asc|pem|crt))$/;
const NOT_LOADED = /^(tests|signatures)\//;
const MAX_FILES = 200;

let liveFiles = [];
/** `{files, base, note}` from the last input used, or undefined. */
let candidate;

export async function open() {
  const r = await api('GET', '/v1/governance/revisions');
  liveFiles = r.live.files;
  const keep = revisionSelect.value;
  revisionSelect.replaceChildren(
    ...(r.earlier.length
      ? r.earlier.map((e) => el('option', { value: e.revision, text: `${e.revision} (live until ${e.replacedAt})` }))
      : [el('option', { value: '', text: `none yet: this process has served only ${r.live.revision}` })]),
  );
  if (keep && r.earlier.some((e) => e.revision === keep)) revisionSelect.value = keep;
}

export function reset() {
  out.replaceChildren();
  chosen.textContent = '';
  candidate = undefined;
  folder.value = '';
  files.value = '';
}

/** Where a single chosen file goes in the set: the live file of that name, else by its kind. */
function placeFile(name, content) {
  const same = liveFiles.filter((rel) => rel === name || rel.endsWith(`/${name}`));
  if (same.length === 1) return same[0];
  if (name === 'gateway.yaml') return name;
  if (/\.(asc|pem|crt)$/.test(name)) return `keys/${name}`;
  if (/^partner:/m.test(content)) return `partners/${name}`;
  if (/^source:/m.test(content)) return `sources/${name}`;
  if (/^peer:/m.test(content)) return `peers/${name}`;
  return undefined;
}

async function readChosen(list, whole) {
  const out = {};
  const skipped = [];
  for (const f of [...list].slice(0, MAX_FILES * 2)) {
    const content = await f.text();
    // A folder's files arrive as "<folder>/partners/dvla.yaml": the set's own paths drop the folder.
    const rel = whole ? f.webkitRelativePath.split('/').slice(1).join('/') : placeFile(f.name, content);
    if (!rel || !REL.test(rel) || NOT_LOADED.test(rel)) skipped.push(whole ? f.webkitRelativePath : f.name);
    else out[rel] = content;
  }
  const n = Object.keys(out).length;
  const note = `${n} file${n === 1 ? '' : 's'} ${whole ? 'of the chosen folder (the whole set)' : 'laid over the live set'}: ${Object.keys(out).sort().join(', ')}${skipped.length ? `; not part of a policy set, skipped: ${skipped.length} (${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''})` : ''}`;
  return { files: out, base: whole ? 'none' : 'live', note };
}

async function choose(list, whole) {
  try {
    candidate = await readChosen(list, whole);
    chosen.textContent = candidate.note;
    document.querySelector('input[name="against"][value="candidate"]').checked = true;
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
}

folder.addEventListener('change', () => void choose(folder.files, true));
files.addEventListener('change', () => void choose(files.files, false));

const MARK = { gained: '+', lost: '−', changed: '~' };

function partnerBlock(p) {
  const head = el('h4', { text: `${p.partner}: ${p.unchanged ? 'no change' : 'changed'}` });
  if (p.unchanged) return el('div', { className: 'diff-partner unchanged', dataset: { partner: p.partner } }, head);
  const rows = [];
  if (p.delivery) rows.push(['!', 'delivery', p.delivery.from, p.delivery.to, 'delivery']);
  if (p.subjects) rows.push(['!', 'subjects shared', p.subjects.from.join(', ') || '(none)', p.subjects.to.join(', ') || '(none)', 'subjects']);
  for (const c of p.paths) rows.push([MARK[c.change], c.path, c.from || '·', c.to || '·', c.change]);
  return el(
    'div',
    { className: 'diff-partner', dataset: { partner: p.partner } },
    head,
    el(
      'table',
      { className: 'diff' },
      el('thead', {}, el('tr', {}, ['', 'path', 'from', 'to'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.map(([m, path, a, b, kind]) => el('tr', { className: `line ${kind}` }, el('td', { className: 'mark', text: m }), el('td', { className: 'path', text: path }), el('td', { text: a }), el('td', { text: b })))),
    ),
  );
}

function render(report) {
  out.replaceChildren(
    el('p', { id: 'diff-summary', text: `From ${report.from.label} ${report.from.revision} to ${report.to.label} ${report.to.revision}: ${report.changed === 0 ? 'no partner sees anything different' : `${report.changed} partner view${report.changed === 1 ? '' : 's'} changed`}.` }),
    el('p', { className: 'note', text: '+ gained   − lost   ~ operation changed   ! delivery or subjects changed   · not shared' }),
    ...report.dossiers.map((d) => el('section', { className: 'diff-dossier' }, el('h3', { text: d.dossier }), d.partners.map(partnerBlock))),
  );
}

document.getElementById('diff-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const against = document.querySelector('input[name="against"]:checked').value;
  const body = {};
  if (against === 'candidate') {
    if (!candidate || Object.keys(candidate.files).length === 0) {
      out.replaceChildren(errorBlock(new Error('Choose a policy folder or the changed files first.')));
      return;
    }
    body.candidate = { files: candidate.files, base: candidate.base };
  } else {
    if (!revisionSelect.value) {
      out.replaceChildren(errorBlock(new Error('No earlier revision to compare with yet.')));
      return;
    }
    body.revision = revisionSelect.value;
  }
  if (usePreview.checked) {
    const d = currentDossier();
    if (!d) {
      out.replaceChildren(errorBlock(new Error('The Preview view holds no dossier that is valid JSON.')));
      return;
    }
    body.dossier = d;
  }
  out.replaceChildren(el('p', { text: 'Comparing…' }));
  try {
    render(await api('POST', '/v1/governance/diff', body));
  } catch (err) {
    out.replaceChildren(errorBlock(err));
  }
});
