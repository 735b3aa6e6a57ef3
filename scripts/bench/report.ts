/** The benchmark's result rows, the printed table and the JSON file written for comparison across commits. */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { summarise, type Summary } from './stats.js';

export interface Target {
  /** What the ratio (or, without a baseline, the value) must be: at most or at least `value`. */
  op: '<=' | '>=';
  value: number;
  /** 'ratio' compares the ratio to its baseline, 'value' the measured value itself. */
  of: 'ratio' | 'value';
}

export interface Row {
  stage: string;
  size: string;
  unit: string;
  value: Summary;
  /** What the value is compared with, measured in the same rounds. */
  baseline?: { label: string; value: Summary };
  /** value / baseline, per round; median and range. */
  ratio?: Summary;
  target?: Target;
  ok?: boolean;
  note?: string;
}

export function row(r: Omit<Row, 'ratio' | 'ok'>, ratioRounds?: number[]): Row {
  const out: Row = { ...r };
  if (r.baseline) {
    const rounds = ratioRounds ?? r.value.rounds.map((v, i) => v / (r.baseline!.value.rounds[i] ?? NaN));
    out.ratio = summarise(rounds);
  }
  if (r.target) {
    const x = r.target.of === 'ratio' ? out.ratio?.median : r.value.median;
    if (x !== undefined && Number.isFinite(x)) out.ok = r.target.op === '<=' ? x <= r.target.value : x >= r.target.value;
  }
  return out;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 10) return x.toFixed(2);
  if (a >= 1) return x.toFixed(3);
  return x.toPrecision(3);
}

function targetText(t?: Target): string {
  if (!t) return '';
  return `${t.of === 'ratio' ? 'ratio ' : ''}${t.op === '<=' ? '≤' : '≥'} ${t.value}`;
}

export function table(rows: Row[]): string {
  const head = ['stage', 'size', 'median', 'range', 'unit', 'baseline (median)', 'ratio', 'ratio range', 'target', 'ok'];
  const body = rows.map((r) => [
    r.stage,
    r.size,
    fmt(r.value.median),
    `${fmt(r.value.min)}–${fmt(r.value.max)}`,
    r.unit,
    r.baseline ? `${r.baseline.label} ${fmt(r.baseline.value.median)}` : '',
    r.ratio ? fmt(r.ratio.median) : '',
    r.ratio ? `${fmt(r.ratio.min)}–${fmt(r.ratio.max)}` : '',
    targetText(r.target),
    r.ok === undefined ? '' : r.ok ? 'ok' : 'OVER',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const [i, b] of body.entries()) {
    out.push(line(b));
    const note = rows[i]!.note;
    if (note) out.push(`    ${note}`);
  }
  return out.join('\n');
}

function gitCommit(root: string): string | undefined {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return undefined;
  }
}

export async function writeResults(root: string, rows: Row[], meta: Record<string, unknown>): Promise<string> {
  const startedAt = String(meta.startedAt ?? new Date().toISOString());
  const dir = path.join(root, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.replace(/:/g, '-')}.json`);
  const doc = {
    ...meta,
    commit: gitCommit(root),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` },
    rows,
  };
  await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}
