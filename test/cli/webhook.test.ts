import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { IMAGE_CLI } from '../support/image-layout.js';

const fixture = (path: string) => new URL(`../fixtures/${path}`, import.meta.url).pathname;

function webhook(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [IMAGE_CLI, 'webhook', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH ?? '', ADDRESS: '127.0.0.1', PORT: '0', ...env },
  });
}

describe('session-storage webhook start-up checks (built binary)', { timeout: 30_000 }, () => {
  it('refuses to start on invalid settings with one line naming them, exit 2', () => {
    const result = webhook(['--secret-file', fixture('secrets/demo.yaml')], { MAX_SYNC_SIZE: '2 gigs', ON_SECRET_ERROR: 'retry' });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      'invalid webhook configuration: MAX_SYNC_SIZE must be a positive size like 500Mi or 1G, got "2 gigs"; ' +
        'ON_SECRET_ERROR: Invalid option: expected one of "deny"|"ephemeral"\n',
    );
  });

  it('refuses to start with agent settings every injected agent would reject, exit 2', () => {
    const result = webhook(['--secret-file', fixture('secrets/demo.yaml')], { SYNC_PATHS: '.claude,.claude' });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('invalid webhook configuration: SYNC_PATHS names ".claude" twice\n');
  });

  it('refuses a secret file that is not the integration secret, exit 2', () => {
    const result = webhook(['--secret-file', fixture('pods/plain-pod.yaml')], {});
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/plain-pod\.yaml: expected a Secret manifest \(kind: Secret\)\n$/);
  });

  it('exits 1 naming the port when the metrics port is taken, leaving nothing listening', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as import('node:net').AddressInfo).port;
    try {
      const result = webhook(['--secret-file', fixture('secrets/demo.yaml')], { METRICS_PORT: String(port) });
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(`cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
    } finally {
      taken.close();
    }
  });
});
