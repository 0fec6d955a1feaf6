import { rename, writeFile } from 'node:fs/promises';
import type { CertKeyPem } from './pki.js';

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, path);
}

/**
 * Replaces the serving pair the webhook server watches. Each file is swapped by rename, so
 * a reader never sees half a file; the key goes first, and the server ignores the brief
 * new-key/old-cert mismatch until the certificate follows.
 */
export async function writeKeyPair(certFile: string, keyFile: string, pair: CertKeyPem): Promise<void> {
  await writeAtomically(keyFile, pair.key, 0o600);
  await writeAtomically(certFile, pair.cert, 0o644);
}
