import { describe, expect, it } from 'vitest';
import { ensureAuthority } from '../../../src/webhook/ca/authority.js';
import { createCA, inspectCertificate, splitPemBundle } from '../../../src/webhook/ca/pki.js';
import { MemorySecretStore } from './memory-stores.js';

const DAY = 24 * 3600_000;
const fingerprints = (bundle: string) => splitPemBundle(bundle).map((p) => inspectCertificate(p).fingerprint256);
const fp = (pem: string) => inspectCertificate(pem).fingerprint256;

describe('ensureAuthority', () => {
  it('creates the CA Secret once; replicas racing at start all end up with the same CA', async () => {
    const store = new MemorySecretStore();
    const results = await Promise.all(
      [1, 2, 3].map(() => ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY })),
    );
    expect(store.writes).toBe(1);
    const stored = store.secret?.data['ca.crt'];
    expect(stored).toBeDefined();
    for (const authority of results) expect(authority.current.cert).toBe(stored);
  });

  it('keeps the CA while it is young and does not write', async () => {
    const store = new MemorySecretStore();
    const first = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY });
    const again = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY, now: new Date(Date.now() + 10 * DAY) });
    expect(again.current.cert).toBe(first.current.cert);
    expect(store.writes).toBe(1);
  });

  it('rotates a CA past two thirds of its life, keeping the old one in the bundle and as previous', async () => {
    const store = new MemorySecretStore();
    const first = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY });
    const later = new Date(Date.now() + 21 * DAY);
    const rotated = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY, now: later });
    expect(fp(rotated.current.cert)).not.toBe(fp(first.current.cert));
    expect(rotated.previous?.cert).toBe(first.current.cert);
    expect(fingerprints(rotated.bundle)).toEqual([fp(rotated.current.cert), fp(first.current.cert)]);
    expect(store.secret?.data['ca-bundle.crt']).toBe(rotated.bundle);

    const concurrent = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY, now: later });
    expect(concurrent.current.cert).toBe(rotated.current.cert);
  });

  it('drops expired CAs from the bundle at the next rotation', async () => {
    const store = new MemorySecretStore();
    await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY });
    const second = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY, now: new Date(Date.now() + 21 * DAY) });
    const third = await ensureAuthority(store, { commonName: 'ca', validityMs: 30 * DAY, now: new Date(Date.now() + 42 * DAY) });
    expect(fingerprints(third.bundle)).toEqual([fp(third.current.cert), fp(second.current.cert)]);
  });

  it('replaces a CA Secret whose key does not match its certificate', async () => {
    const store = new MemorySecretStore();
    const [a, b] = [await createCA('a', DAY), await createCA('b', DAY)];
    await store.create({ 'ca.crt': a.cert, 'ca.key': b.key });
    const authority = await ensureAuthority(store, { commonName: 'ca', validityMs: DAY });
    expect(authority.current.cert).not.toBe(a.cert);
    expect(store.secret?.data['ca.crt']).toBe(authority.current.cert);
  });
});
