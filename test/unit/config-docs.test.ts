/**
 * docs/configuration.md's table is generated from schemas/config.schema.json (`npm run docs:config`):
 * this fails when the file's table differs from what the schema generates, so a setting added, changed
 * or removed in the schema without the docs being regenerated is caught.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/config/schema.js';
import { DOCS_FILE, TABLE_END, TABLE_START, withTable } from '../../scripts/docs-config.js';

describe('docs/configuration.md', () => {
  const doc = readFileSync(DOCS_FILE, 'utf8');

  it('has the table the schema generates (run npm run docs:config if not)', () => {
    expect(doc).toContain(TABLE_START);
    expect(doc).toContain(TABLE_END);
    expect(doc).toBe(withTable(doc));
  });

  it('lists every variable of the schema once', () => {
    const table = doc.slice(doc.indexOf(TABLE_START), doc.indexOf(TABLE_END));
    for (const name of Object.keys(configSchema.properties)) {
      expect(table.split(`| \`${name}\` |`).length - 1, name).toBe(1);
    }
  });

  it('an edited table is told apart from the generated one', () => {
    expect(withTable(doc.replace('| `PORT` | `8080` |', '| `PORT` | `80` |'))).toBe(doc);
  });
});
