/**
 * The agreement document (isa.ts) as Markdown or HTML. HTML is escaped everywhere and carries no script
 * (a policy file's text must not run in the governance console); `fragment` gives the `<article>` alone
 * for a page that brings its own stylesheet. Pure.
 */
import type { PolicySet } from '../policy/types.js';
import { buildIsa, type IsaDocument, type IsaField, type IsaOptions } from './isa.js';

export type IsaFormat = 'md' | 'html';

/** A section: a heading and blocks (a paragraph, or a list of lines). */
export interface Section {
  heading: string;
  blocks: Array<{ p: string } | { list: string[] } | { table: { head: string[]; rows: string[][] } }>;
}

function fieldLine(f: IsaField): string {
  return `${f.text} (\`${f.path}\`)`;
}

function fingerprint(fp: string): string {
  return fp.replace(/(.{4})/g, '$1 ').trim();
}

/** The document's sections in the national template's order. */
export function sections(d: IsaDocument): Section[] {
  const out: Section[] = [];
  out.push({
    heading: '1. Parties',
    blocks: [
      { list: d.parties },
      { p: `The partner is ${d.partner.name} (\`${d.partner.id}\`), of kind ${d.partner.kind}${d.partner.kindText ? ` (${d.partner.kindText})` : ''}${d.partner.competentAuthority ? ', a competent authority for the law-enforcement purposes (DPA 2018 Sch. 7)' : ', not a competent authority: it processes under UK GDPR'}.` },
    ],
  });
  out.push({ heading: '2. Purpose', blocks: [{ p: d.purpose }] });
  const basis: Section['blocks'] = [{ p: `As agreed: "${d.legalBasis.text}"` }];
  if (d.legalBasis.provisions.length > 0) {
    basis.push({ list: d.legalBasis.provisions.map((x) => `**${x.citation}** (${x.role === 'gateway' ? 'statutory gateway' : x.role}): ${x.note}`) });
  }
  if (d.legalBasis.statutory) basis.push({ p: `Statutory condition **${d.legalBasis.statutory.name}**: ${d.legalBasis.statutory.reason} ${d.legalBasis.statutory.when}` });
  out.push({ heading: '3. Legal basis', blocks: basis });

  const items: Section['blocks'] = [{ p: 'As listed in the agreement:' }, { list: d.dataItems.agreed }, { p: 'What the gateway discloses about each person (from the policy in force):' }];
  items.push({ list: d.dataItems.subjects.map((s) => `**${s.item}**: ${s.fields.map(fieldLine).join('; ')}`) });
  if (d.dataItems.dossier.length > 0) {
    items.push({ p: 'About the dossier and the group:' }, { list: d.dataItems.dossier.map(fieldLine) });
  }
  if (d.dataItems.rules.length > 0) {
    items.push({ p: 'Rules applied to every dossier before it is shared:' });
    items.push({ list: d.dataItems.rules.map((r) => `${r.when}: ${r.effects.join('; ')}.${r.description ? ` ${r.description}` : ''} (rule \`${r.name}\`)`) });
  }
  items.push({ p: 'Constraints that hold whatever this policy says:' }, { list: d.dataItems.constraints });
  out.push({ heading: '4. Data items', blocks: items });

  const disc: Section['blocks'] = [{ p: d.disclosure.text }];
  if (d.disclosure.matchIdentifiers.length > 0) disc.push({ p: 'The match request carries only:' }, { list: d.disclosure.matchIdentifiers.map((m) => `${m.text} (\`${m.path}\`)`) });
  disc.push({ p: `Dossiers reach the partner when they request: ${d.disclosure.requestedBy.length > 0 ? d.disclosure.requestedBy.join(', ') : 'no request word reaches it'}${d.legalBasis.statutory ? ', or under its statutory condition' : ''}. Partner checks: ${d.partner.checks.join(', ')}.` });
  out.push({ heading: '5. Disclosure and responses', blocks: disc });

  out.push({
    heading: '6. Handling',
    blocks: [
      { p: `Highest classification: ${d.handling.highestClassification}. Handling codes accepted:` },
      { list: d.handling.handlingCodes.map((h) => `${h.code}: ${h.text}`) },
      { p: 'Handling conditions the partner honours (items and dossiers carrying any other code are withheld from it):' },
      { list: d.handling.conditionsHonoured.length > 0 ? d.handling.conditionsHonoured.map((c) => `\`${c.code}\`: ${c.description}`) : ['none'] },
      ...(d.handling.conditionsNotHonoured.length > 0 ? [{ p: 'Not honoured (withheld):' }, { list: d.handling.conditionsNotHonoured.map((c) => `\`${c.code}\`: ${c.description}`) }] : []),
    ],
  });
  out.push({ heading: '7. Retention', blocks: [{ p: d.retention.text }] });
  const keys = [[`Partner (${d.partner.id})`, d.security.partnerKey.file, fingerprint(d.security.partnerKey.fingerprint)]];
  if (d.security.gatewayKey) keys.push(['Gateway (signs packets)', '', fingerprint(d.security.gatewayKey.fingerprint)]);
  for (const s of d.security.sourceKeys) keys.push([`Force: ${s.name} (${s.id})`, s.file, fingerprint(s.fingerprint)]);
  out.push({ heading: '8. Security', blocks: [{ list: d.security.statements }, { table: { head: ['Key', 'File', 'Fingerprint'], rows: keys } }] });
  out.push({ heading: '9. Review', blocks: [{ p: `In force from ${d.review.inForceFrom}; review by ${d.review.reviewBy}. ${d.status.text}` }] });
  out.push({ heading: '10. Owner', blocks: [{ p: d.owner }] });
  out.push({
    heading: '11. Signatories',
    blocks: [{ table: { head: ['For', 'Name', 'Position', 'Signature', 'Date'], rows: d.signatories.map((s) => [s.party, '', '', '', '']) } }],
  });
  out.push({
    heading: '12. Policy revision',
    blocks: [{ p: `This document describes policy revision ${d.policy.revision} (partner file \`${d.policy.file}\`${d.policy.sha256 ? `, SHA-256 ${d.policy.sha256}` : ''}), generated ${d.generatedAt}. It is rendered from the policy the gateway enforces: when the policy changes, so does this document.` }],
  });
  return out;
}

// ---- Markdown ----------------------------------------------------------------------------------

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function isaMarkdown(d: IsaDocument): string {
  const lines = [`# ${d.title}`, '', `Reference ${d.reference} · status: ${d.status.state.replace(/_/g, ' ')} · policy revision ${d.policy.revision}`, ''];
  for (const s of sections(d)) {
    lines.push(`## ${s.heading}`, '');
    for (const b of s.blocks) {
      if ('p' in b) lines.push(b.p, '');
      else if ('list' in b) lines.push(...b.list.map((l) => `- ${l}`), '');
      else {
        lines.push(`| ${b.table.head.map(mdCell).join(' | ')} |`, `|${b.table.head.map(() => ' --- |').join('')}`);
        for (const r of b.table.rows) lines.push(`| ${r.map(mdCell).join(' | ')} |`);
        lines.push('');
      }
    }
  }
  return lines.join('\n');
}

// ---- HTML --------------------------------------------------------------------------------------

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Escapes, then turns the two Markdown marks the sections use (`code`, **bold**) into elements. */
function inline(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#111}' +
  'h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ccc;margin-top:1.6rem}' +
  'table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}' +
  'td:empty{min-width:7rem;height:1.6rem}code{font-size:.9em}.meta{color:#555}';

export function isaHtml(d: IsaDocument, fragment = false): string {
  const body: string[] = [`<article class="isa" data-partner="${esc(d.partner.id)}" data-revision="${esc(d.policy.revision)}">`, `<h1>${esc(d.title)}</h1>`];
  body.push(`<p class="meta">Reference ${esc(d.reference)} · status: ${esc(d.status.state.replace(/_/g, ' '))} · policy revision ${esc(d.policy.revision)}</p>`);
  for (const s of sections(d)) {
    body.push(`<section><h2>${esc(s.heading)}</h2>`);
    for (const b of s.blocks) {
      if ('p' in b) body.push(`<p>${inline(b.p)}</p>`);
      else if ('list' in b) body.push(`<ul>${b.list.map((l) => `<li>${inline(l)}</li>`).join('')}</ul>`);
      else {
        body.push(`<table><thead><tr>${b.table.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>`);
        for (const r of b.table.rows) body.push(`<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`);
        body.push('</tbody></table>');
      }
    }
    body.push('</section>');
  }
  body.push('</article>');
  if (fragment) return body.join('\n');
  return [
    '<!doctype html>',
    '<html lang="en-GB"><head><meta charset="utf-8">',
    `<title>${esc(d.reference)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body>',
    ...body,
    '</body></html>',
    '',
  ].join('\n');
}

export interface RenderIsaOptions extends IsaOptions {
  format: IsaFormat;
  /** HTML only: the `<article>` without the page around it. */
  fragment?: boolean;
}

/** The agreement with `partnerId` as the live policy set enforces it, as Markdown or HTML. Throws `not_found` for an unknown partner. */
export function renderIsa(policies: PolicySet, partnerId: string, options: RenderIsaOptions): string {
  const doc = buildIsa(policies, partnerId, options);
  return options.format === 'html' ? isaHtml(doc, options.fragment === true) : isaMarkdown(doc);
}
