import { describe, expect, it } from 'vitest';
import { ClientRegistry, hashToken, newToken, parseClientsFile } from '../../gateway/config/clients.js';
import { GatewayError } from '../../gateway/errors/index.js';

const t1 = newToken();
const t2 = newToken();
const yaml = `clients:
  - id: wm
    role: source
    source: west-midlands
    tokens: ["${hashToken(t1)}", "${hashToken(t2)}"]
  - id: dvla
    role: partner
    partner: dvla
    tokens: ["${hashToken('dvla-token')}"]
`;

describe('clients file', () => {
  it('authenticates by token hash, with two valid tokens during rotation', () => {
    const reg = new ClientRegistry(parseClientsFile(yaml, 'c.yaml'));
    expect(reg.authenticate(t1)?.id).toBe('wm');
    expect(reg.authenticate(t2)?.id).toBe('wm');
    expect(reg.authenticate('dvla-token')).toMatchObject({ id: 'dvla', role: 'partner', partner: 'dvla' });
    expect(reg.authenticate('nope')).toBeUndefined();
    expect(reg.authenticate('')).toBeUndefined();
  });

  it('refuses plaintext tokens, unknown roles, missing scopes and duplicates, listing every problem', () => {
    const bad = `clients:
  - id: a
    role: source
    tokens: ["plaintext-token"]
  - id: a
    role: wizard
    tokens: ["${hashToken('x')}"]
  - id: b
    role: partner
    partner: dvla
    source: west-midlands
    tokens: ["${hashToken('y')}"]
`;
    try {
      parseClientsFile(bad, 'bad.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      const paths = ((err as GatewayError).details ?? []).map((d) => d.path);
      expect(paths).toEqual(
        expect.arrayContaining(['bad.yaml: clients[0].source', 'bad.yaml: clients[0].tokens', 'bad.yaml: clients[1].id', 'bad.yaml: clients[1].role', 'bad.yaml: clients[2].source']),
      );
    }
  });

  it('reads the sample flag', () => {
    expect(parseClientsFile('sample: true\nclients: []\n', 'x').sample).toBe(true);
    expect(parseClientsFile('clients: []\n', 'x').sample).toBe(false);
  });
});
