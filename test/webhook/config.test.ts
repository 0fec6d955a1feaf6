import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/webhook/config.js';

describe('webhook configuration from the environment', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config.mutation).toMatchObject({
      sidecarMode: 'native',
      stateVolume: 'workspace',
      emptyDirSizeLimit: '10Gi',
      syncInterval: 60,
      maxSyncSize: '1Gi',
      syncExclude: 'repos/**,node_modules/**,.venv/**,__pycache__/**',
      syncPaths: '.claude,artifacts,uploads',
      finalSyncTimeoutSeconds: 45,
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    });
    expect(config.policy).toEqual({ onIncomplete: 'deny', onSecretError: 'deny' });
    expect(config.server).toMatchObject({ port: 8443, tlsCertFile: '/etc/webhook/certs/tls.crt', bodyLimit: '3mb' });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ SYNC_INTERVAL: '' }).mutation.syncInterval).toBe(60);
  });

  it('rejects bad values with one line naming every bad variable', () => {
    expect(() =>
      loadConfig({ SYNC_INTERVAL: 'soon', SIDECAR_MODE: 'sidecar', EMPTYDIR_SIZE_LIMIT: '10 GB', ON_INCOMPLETE: 'allow' }),
    ).toThrow(
      'invalid webhook configuration: SIDECAR_MODE: Invalid option: expected one of "native"|"legacy"; ' +
        'EMPTYDIR_SIZE_LIMIT: must be a Kubernetes quantity like 10Gi or 500m; ' +
        'SYNC_INTERVAL: must be a number of seconds; ' +
        'ON_INCOMPLETE: Invalid option: expected one of "deny"|"ephemeral"',
    );
  });

  it.each([
    ['MAX_SYNC_SIZE', '1TB'],
    ['SYNC_PATHS', '.claude,,uploads'],
    ['AGENT_RUN_AS_USER', '0'],
    ['STATE_VOLUME', 'Work_Space'],
    ['PORT', '70000'],
  ])('rejects %s=%s', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`^invalid webhook configuration: ${key}: `));
  });
});
