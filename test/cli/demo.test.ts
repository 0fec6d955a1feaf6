import { beforeAll, describe, expect, it } from 'vitest';
import { compileDemo, runDemo } from '../support/demo.js';

let main: string;

beforeAll(async () => {
  main = await compileDemo('unit');
}, 120_000);

// `npm run demo -- --webhook-only` needs no MinIO: the webhook alone on loopback.
describe('the local demo, webhook only', { timeout: 60_000 }, () => {
  it('starts the webhook over HTTPS, gets a patch and a denial, and drains on SIGTERM', () => {
    const result = runDemo(main, ['--webhook-only']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('uid 705ab4f5-6393-11e8-b7cc-42010a800002  allowed: true');
    expect(result.stdout).toMatch(/add +\/spec\/initContainers \[init-hydrate, state-sync\]/);
    expect(result.stdout).toContain('denied (403): invalid session name "My_Session.v2"');
    expect(result.stdout).toContain('6. SIGTERM: drained and exited with status 0');
    expect(result.stdout).not.toContain('minio');
  });

  it('exits 2 with the usage on an unknown option', () => {
    const result = runDemo(main, ['--whole']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage: npm run demo [-- --webhook-only]');
    expect(result.stdout).toBe('');
  });
});
