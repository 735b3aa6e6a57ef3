/**
 * Test helpers that open gateway output with the tools partners actually use: GnuPG 2.2 and
 * Sequoia `sq` 0.27. Each call works in its own temporary directory, removed afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GnupgHome {
  dir: string;
  cleanup(): Promise<void>;
}

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    // gpg may exit (and close its stdin) before reading all of it; its exit code and stderr say why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Whether an executable is on PATH. */
export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** A private GNUPGHOME (mode 0700). Call `cleanup()` when done: it stops the agent and removes it. */
export async function withGnupgHome(): Promise<GnupgHome> {
  const dir = await mkdtemp(join(tmpdir(), 'cordon-gnupg-'));
  await chmod(dir, 0o700);
  return {
    dir,
    async cleanup() {
      await run('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: dir } }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function gpgEnv(home: GnupgHome | string): NodeJS.ProcessEnv {
  return { ...process.env, GNUPGHOME: typeof home === 'string' ? home : home.dir };
}

const GPG_BASE = ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];

/** Imports public or secret keys into the home. */
export async function gpgImport(home: GnupgHome | string, armored: string): Promise<void> {
  const res = await run('gpg', [...GPG_BASE, '--import'], { input: armored, env: gpgEnv(home) });
  if (res.code !== 0) throw new Error(`gpg --import failed (${res.code}): ${res.stderr}`);
}

/**
 * Decrypts with the secret keys already imported into `home` and requires a good signature by the
 * key in `signerPublicArmored` (imported here). Reads gpg's machine-readable status lines and fails
 * on anything but DECRYPTION_OKAY + GOODSIG + VALIDSIG of that key (and no BADSIG/ERRSIG/failure).
 */
export async function gpgDecryptVerify(
  home: GnupgHome | string,
  armored: string,
  signerPublicArmored: string,
): Promise<{ plaintext: string; goodSignatureFingerprint: string }> {
  await gpgImport(home, signerPublicArmored);
  const res = await run('gpg', [...GPG_BASE, '--status-fd', '2', '--trust-model', 'always', '--decrypt'], {
    input: armored,
    env: gpgEnv(home),
  });
  const status = res.stderr
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice('[GNUPG:] '.length).split(' '));
  const has = (kw: string) => status.some((s) => s[0] === kw);
  const bad = ['BADSIG', 'ERRSIG', 'EXPSIG', 'EXPKEYSIG', 'REVKEYSIG', 'DECRYPTION_FAILED', 'NO_SECKEY', 'BADMDC', 'FAILURE'];
  const problems = status.filter((s) => bad.includes(s[0]!));
  if (res.code !== 0 || problems.length > 0 || !has('DECRYPTION_OKAY') || !has('GOODSIG') || !has('VALIDSIG')) {
    throw new Error(`gpg could not decrypt and verify (exit ${res.code}):\n${res.stderr}`);
  }
  // VALIDSIG <sig-key-fpr> <date> <ts> <expire> <ver> <reserved> <pk-algo> <hash> <class> <primary-fpr>
  const validsig = status.find((s) => s[0] === 'VALIDSIG')!;
  const primary = validsig[10] ?? validsig[1]!;
  return { plaintext: res.stdout.toString('utf8'), goodSignatureFingerprint: primary.toUpperCase() };
}

/**
 * `sq decrypt --recipient-key <secret> --signer-cert <gateway public>` (sq 0.27 syntax): sq exits
 * non-zero and writes nothing unless the message decrypts and carries a good signature by the cert.
 */
export async function sqDecryptVerify(
  armored: string,
  recipientSecretArmored: string,
  signerPublicArmored: string,
): Promise<{ plaintext: string; stderr: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cordon-sq-'));
  try {
    await chmod(dir, 0o700);
    const secret = join(dir, 'recipient.sec.asc');
    const signer = join(dir, 'signer.asc');
    await writeFile(secret, recipientSecretArmored, { mode: 0o600 });
    await writeFile(signer, signerPublicArmored);
    const res = await run('sq', ['decrypt', '--recipient-key', secret, '--signer-cert', signer], { input: armored });
    if (res.code !== 0) throw new Error(`sq could not decrypt and verify (exit ${res.code}):\n${res.stderr}`);
    return { plaintext: res.stdout.toString('utf8'), stderr: res.stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
