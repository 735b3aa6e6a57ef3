/**
 * The documentation holds up: the README stays a front door (at most 150 lines), every error code the
 * gateway can answer is in docs/api.md with the HTTP status http/ gives it, and no relative link in the
 * README or docs/ points to a file or heading that does not exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../gateway/errors/index.js';
import { statusOf } from '../../gateway/http/errors.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCS = path.join(ROOT, 'docs');

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return markdownFiles(file);
    return name.endsWith('.md') ? [file] : [];
  });
}

/** The text outside fenced code blocks and inline code spans, line by line. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line.replace(/`[^`]*`/g, (span) => span.replace(/[[\]()]/g, ' '));
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

interface Link {
  file: string;
  line: number;
  target: string;
}

function relativeLinks(file: string): Link[] {
  const links: Link[] = [];
  prose(readFileSync(file, 'utf8')).forEach((text, i) => {
    for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      links.push({ file, line: i + 1, target });
    }
  });
  return links;
}

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const pages = [path.join(ROOT, 'README.md'), ...markdownFiles(DOCS)];

describe('README', () => {
  it('is at most 150 lines', () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(150);
  });

  it('shows the two commands first', () => {
    const first = readme.indexOf('```');
    const block = readme.slice(first, readme.indexOf('```', first + 3));
    expect(block).toContain('npm ci && npm start');
    expect(block).toContain('npm ci && npm test');
  });
});

describe('docs/api.md', () => {
  const api = readFileSync(path.join(DOCS, 'api.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of api.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) rows.set(m[1]!, m[2]!);

  it.each([...ERROR_CODES])('documents %s with its HTTP status', (code) => {
    expect(rows.has(code), `no row for \`${code}\` in docs/api.md's error tables`).toBe(true);
    expect(Number(rows.get(code))).toBe(statusOf(code));
  });

  it('documents no code the gateway does not have', () => {
    const known = new Set<string>(ERROR_CODES);
    expect([...rows.keys()].filter((code) => !known.has(code))).toEqual([]);
  });
});

describe('relative links in README.md and docs/', () => {
  const links = pages.flatMap(relativeLinks);

  it('finds the links to check', () => {
    expect(links.length).toBeGreaterThan(10);
  });

  it.each(pages.map((p) => path.relative(ROOT, p)))('every link in %s points to something that exists', (page) => {
    const broken: string[] = [];
    for (const link of links.filter((l) => path.relative(ROOT, l.file) === page)) {
      const [pathPart = '', anchor] = link.target.split('#', 2);
      const target = pathPart === '' ? link.file : path.resolve(path.dirname(link.file), decodeURIComponent(pathPart));
      const where = `${page}:${link.line} → ${link.target}`;
      if (!existsSync(target)) {
        broken.push(`${where}: no such file`);
        continue;
      }
      if (anchor && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(anchor)) {
        broken.push(`${where}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});
