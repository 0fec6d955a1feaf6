import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createCA, inspectCertificate, renewalDue, splitPemBundle, type CertKeyPem } from './pki.js';
import type { CaSecretData, CaSecretStore } from './stores.js';

/** The CA the replicas share, as kept in the CA Secret. */
export interface Authority {
  current: CertKeyPem;
  /** the CA before the last rotation, kept to sign leaves until the new one is trusted */
  previous?: CertKeyPem;
  /** every CA certificate clients must trust: current first, then older unexpired ones */
  bundle: string;
}

export interface AuthorityOptions {
  commonName: string;
  validityMs: number;
  now?: Date;
}

const KEY = {
  cert: 'ca.crt',
  key: 'ca.key',
  previousCert: 'previous-ca.crt',
  previousKey: 'previous-ca.key',
  bundle: 'ca-bundle.crt',
} as const;

// A CA is replaced once two thirds of its life have passed; the remaining third is the
// time every client has to pick up the new bundle before the old CA expires.
const CA_RENEWAL_FRACTION = 2 / 3;
const MAX_ATTEMPTS = 5;

function usable(candidate: CertKeyPem | undefined, now: Date): candidate is CertKeyPem {
  if (!candidate) return false;
  try {
    const cert = new X509Certificate(candidate.cert);
    return cert.ca && cert.checkPrivateKey(createPrivateKey(candidate.key)) && new Date(cert.validTo) > now;
  } catch {
    return false;
  }
}

function pair(cert: string | undefined, key: string | undefined): CertKeyPem | undefined {
  return cert && key ? { cert, key } : undefined;
}

function decode(data: CaSecretData, now: Date): Authority | undefined {
  const current = pair(data[KEY.cert], data[KEY.key]);
  if (!usable(current, now)) return undefined;
  const previous = pair(data[KEY.previousCert], data[KEY.previousKey]);
  return {
    current,
    ...(usable(previous, now) ? { previous } : {}),
    bundle: mergeBundle([current.cert], data[KEY.bundle] ?? '', now),
  };
}

function encode(authority: Authority): CaSecretData {
  return {
    [KEY.cert]: authority.current.cert,
    [KEY.key]: authority.current.key,
    ...(authority.previous
      ? { [KEY.previousCert]: authority.previous.cert, [KEY.previousKey]: authority.previous.key }
      : {}),
    [KEY.bundle]: authority.bundle,
  };
}

/** `first` then the unexpired certificates of `bundle`, without duplicates. */
export function mergeBundle(first: string[], bundle: string, now: Date): string {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const pem of [...first, ...splitPemBundle(bundle)]) {
    const info = inspectCertificate(pem);
    if (info.notAfter <= now || seen.has(info.fingerprint256)) continue;
    seen.add(info.fingerprint256);
    kept.push(pem.endsWith('\n') ? pem : `${pem}\n`);
  }
  return kept.join('');
}

/**
 * Returns the shared CA, creating it when absent and rotating it when due. Every write is
 * conditional (create fails if it exists, replace carries the resourceVersion read), so
 * when replicas race exactly one write lands and the others adopt its result.
 */
export async function ensureAuthority(store: CaSecretStore, options: AuthorityOptions): Promise<Authority> {
  const now = options.now ?? new Date();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const stored = await store.read();
    const existing = stored ? decode(stored.data, now) : undefined;
    if (existing && !renewalDue(existing.current.cert, now, CA_RENEWAL_FRACTION)) return existing;

    const fresh = await createCA(options.commonName, options.validityMs, now);
    const next: Authority = existing
      ? { current: fresh, previous: existing.current, bundle: mergeBundle([fresh.cert], existing.bundle, now) }
      : { current: fresh, bundle: mergeBundle([fresh.cert], '', now) };
    const written = stored
      ? await store.replace(encode(next), stored.resourceVersion)
      : await store.create(encode(next));
    if (written) return next;
  }
  throw new Error(`the CA Secret changed ${MAX_ATTEMPTS} times while being written; retrying later`);
}
