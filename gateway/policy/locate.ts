/**
 * Turning a policy problem's location (`fields."subjects[].foo"`, `rules[2].then.set.reference`,
 * `line 4, column 1`) into a line and column of the YAML file, for `file:line:column` messages.
 * A location that does not exist in the file (a required property that is missing, a field that must
 * be listed but is not) points at its nearest ancestor that does.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';

type LocationSegment = string | number;

/** `fields."subjects[].foo".where` → ['fields', 'subjects[].foo', 'where']; `rules[2]` → ['rules', 2]. */
export function parseLocation(location: string): LocationSegment[] | undefined {
  const out: LocationSegment[] = [];
  let i = 0;
  while (i < location.length) {
    const c = location[i];
    if (c === '.') {
      i++;
      continue;
    }
    if (c === '[') {
      const end = location.indexOf(']', i);
      if (end === -1) return undefined;
      const n = location.slice(i + 1, end);
      if (!/^[0-9]+$/.test(n)) return undefined;
      out.push(Number(n));
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < location.length && location[j] !== '"') j += location[j] === '\\' ? 2 : 1;
      try {
        out.push(JSON.parse(location.slice(i, j + 1)) as string);
      } catch {
        return undefined;
      }
      i = j + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(location.slice(i));
    if (!m) return undefined;
    out.push(m[0]);
    i += m[0].length;
  }
  return out;
}

interface Position {
  line: number;
  column: number;
}

/** Locates problems in one YAML text (parsed once). */
export class YamlLocator {
  private readonly counter = new LineCounter();
  private readonly root: Node | null;

  constructor(text: string) {
    const doc = parseDocument(text, { lineCounter: this.counter, keepSourceTokens: false, uniqueKeys: false });
    this.root = (doc.contents as Node | null) ?? null;
  }

  private pos(offset: number | undefined): Position | undefined {
    if (offset === undefined) return undefined;
    const { line, col } = this.counter.linePos(offset);
    return { line, column: col };
  }

  /**
   * The position of the deepest node on the path: the key of a map entry (so that `fields.x` points
   * at the line naming x), the item of a sequence. `prefix` selects an item of a top-level sequence
   * (test files holding several tests).
   */
  locate(segments: LocationSegment[], prefix: LocationSegment[] = []): Position | undefined {
    let node: Node | null = this.root;
    let best: number | undefined = node?.range?.[0];
    for (const seg of [...prefix, ...segments]) {
      if (node === null) break;
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : undefined) === String(seg));
        if (pair === undefined) break;
        const key = pair.key as Node | null;
        best = key?.range?.[0] ?? best;
        node = (pair.value as Node | null) ?? null;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (item === undefined) break;
        best = item.range?.[0] ?? best;
        node = item;
      } else {
        break;
      }
    }
    return this.pos(best);
  }
}

/**
 * Split a loader problem path (`partners/a.yaml: fields.x`, `tests/t.yaml[1]: expect`, `gateway.yaml`)
 * into the file, the index of a test inside a multi-test file, and the location.
 */
export function splitProblemPath(p: string): { file: string; docIndex?: number; location: string } {
  const colon = p.indexOf(': ');
  let file = colon === -1 ? p : p.slice(0, colon);
  const location = colon === -1 ? '' : p.slice(colon + 2);
  let docIndex: number | undefined;
  const m = /^(.*\.ya?ml)\[([0-9]+)\]$/.exec(file);
  if (m) {
    file = m[1] as string;
    docIndex = Number(m[2]);
  }
  return docIndex === undefined ? { file, location } : { file, docIndex, location };
}

/** `line 4, column 1` (YAML syntax errors) → that position. */
export function explicitPosition(location: string): Position | undefined {
  const m = /^line ([0-9]+), column ([0-9]+)$/.exec(location);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : undefined;
}
