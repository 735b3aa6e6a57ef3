/**
 * Experiment: openpgp encrypt+sign in a worker thread. Keys arrive armored once (`keys` message) and
 * are parsed once; each `job` carries a plaintext and a recipient fingerprint and answers the armored
 * message. Same config as gateway/crypto/openpgp.ts.
 */
import { parentPort } from 'node:worker_threads';
import * as openpgp from 'openpgp';
import { CONFIG } from '../../gateway/crypto/openpgp.js';


let signer: openpgp.PrivateKey | undefined;
const recipients = new Map<string, openpgp.PublicKey>();

type Msg =
  | { type: 'keys'; signer: string; recipients: Array<[string, string]> }
  | { type: 'job'; id: number; plaintext: string; recipient: string; date: number };

parentPort!.on('message', (m: Msg) => {
  if (m.type === 'keys') {
    void (async () => {
      signer = await openpgp.readPrivateKey({ armoredKey: m.signer, config: CONFIG });
      for (const [fp, armored] of m.recipients) recipients.set(fp, (await openpgp.readKey({ armoredKey: armored, config: CONFIG })) as openpgp.PublicKey);
      parentPort!.postMessage({ type: 'ready' });
    })();
    return;
  }
  void (async () => {
    try {
      const message = await openpgp.createMessage({ binary: Buffer.from(m.plaintext, 'utf8'), format: 'binary' });
      const armored = await openpgp.encrypt({
        message,
        encryptionKeys: recipients.get(m.recipient)!,
        signingKeys: signer!,
        date: new Date(m.date),
        format: 'armored',
        config: CONFIG,
      });
      parentPort!.postMessage({ type: 'done', id: m.id, armored });
    } catch (err) {
      parentPort!.postMessage({ type: 'done', id: m.id, error: (err as Error).message });
    }
  })();
});
