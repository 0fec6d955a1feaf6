import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
let out: string | undefined;
afterEach(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

function certs(args: string[]) {
  out = mkdtempSync(join(tmpdir(), 'certs-'));
  const result = spawnSync(process.execPath, [cli, 'certs', ...args, '--out', join(out, 'certs')], { encoding: 'utf8' });
  return { ...result, dir: join(out, 'certs') };
}

describe('session-storage certs (built binary)', { timeout: 30_000 }, () => {
  it('writes a CA and a serving certificate for the service and prints the caBundle', () => {
    const result = certs(['--service', 'session-storage-webhook', '--namespace', 'ambient-session-storage']);
    expect(result.status).toBe(0);
    const caPem = readFileSync(join(result.dir, 'ca.crt'), 'utf8');
    expect(Buffer.from(result.stdout.trim(), 'base64').toString('utf8')).toBe(caPem);

    const ca = new X509Certificate(caPem);
    const leaf = new X509Certificate(readFileSync(join(result.dir, 'tls.crt')));
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.subjectAltName).toBe(
      'DNS:session-storage-webhook, DNS:session-storage-webhook.ambient-session-storage, DNS:session-storage-webhook.ambient-session-storage.svc',
    );
    expect(leaf.checkHost('session-storage-webhook.ambient-session-storage.svc')).toBeTruthy();
    expect(leaf.checkIP('127.0.0.1')).toBeUndefined();

    const key = createPrivateKey(readFileSync(join(result.dir, 'tls.key')));
    expect(leaf.checkPrivateKey(key)).toBe(true);
    expect(statSync(join(result.dir, 'tls.key')).mode & 0o777).toBe(0o600);
  });

  it('with --dev is also valid for localhost and 127.0.0.1', () => {
    const result = certs(['--service', 'w', '--namespace', 'n', '--dev']);
    expect(result.status).toBe(0);
    const leaf = new X509Certificate(readFileSync(join(result.dir, 'tls.crt')));
    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});
