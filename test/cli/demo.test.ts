import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

// The README's first command (`npm run demo` = build + this script) must keep working.
describe('the local demo', { timeout: 30_000 }, () => {
  it('starts the webhook over HTTPS, gets a patch and a denial, and drains on SIGTERM', () => {
    const result = spawnSync(process.execPath, [`${root}dist/webhook/demo.js`], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('uid 705ab4f5-6393-11e8-b7cc-42010a800002  allowed: true');
    expect(result.stdout).toMatch(/add +\/spec\/initContainers \[init-hydrate, state-sync\]/);
    expect(result.stdout).toContain('denied (403): invalid session name "My_Session.v2"');
    expect(result.stdout).toContain('6. SIGTERM: drained and exited with status 0');
  });
});
