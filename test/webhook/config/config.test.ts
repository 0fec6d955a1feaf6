import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/webhook/config/config.js';

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
      syncPaths: [
        { name: '.claude', localDir: '.claude' },
        { name: '.gemini', localDir: '.gemini' },
        { name: 'artifacts', localDir: 'artifacts' },
        { name: 'uploads', localDir: 'uploads' },
        { name: 'file-uploads', localDir: 'file-uploads' },
      ],
      finalSyncTimeoutSeconds: 45,
      refreshAfterDays: undefined,
      syncUnhealthyMinSeconds: 300,
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    });
    expect(config.policy).toEqual({ onIncomplete: 'deny', onSecretError: 'deny' });
    expect(config.server).toMatchObject({ port: 8443, tlsCertFile: '/etc/webhook/certs/tls.crt', bodyLimit: '3mb' });
  });

  it('takes AGENT_RUN_AS_USER as a uid, or none for no fixed uid; 1001 by default', () => {
    expect(loadConfig({}).mutation.agentRunAsUser).toBe(1001);
    expect(loadConfig({ AGENT_RUN_AS_USER: '1000680000' }).mutation.agentRunAsUser).toBe(1000680000);
    expect(loadConfig({ AGENT_RUN_AS_USER: 'none' }).mutation.agentRunAsUser).toBeUndefined();
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ SYNC_INTERVAL: '' }).mutation.syncInterval).toBe(60);
    expect(loadConfig({ SYNC_DEBOUNCE_SECONDS: '' }).mutation.syncDebounceSeconds).toBe(1);
  });

  it('rejects bad values with one line naming every bad variable', () => {
    expect(() =>
      loadConfig({ SYNC_INTERVAL: 'soon', SIDECAR_MODE: 'sidecar', EMPTYDIR_SIZE_LIMIT: '10 GB', ON_INCOMPLETE: 'allow' }),
    ).toThrow(
      'invalid webhook configuration: SIDECAR_MODE: Invalid option: expected one of "native"|"legacy"; ' +
        'EMPTYDIR_SIZE_LIMIT: must be a Kubernetes quantity like 10Gi or 500m; ' +
        'SYNC_INTERVAL must be a number of seconds from 1 to 86400, got "soon"; ' +
        'ON_INCOMPLETE: Invalid option: expected one of "deny"|"ephemeral"',
    );
  });

  it.each([
    ['AGENT_RUN_AS_USER', '0'],
    ['AGENT_RUN_AS_USER', '-5'],
    ['STATE_VOLUME', 'Work_Space'],
    ['PORT', '70000'],
  ])('rejects %s=%s', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`^invalid webhook configuration: ${key}: `));
  });

  // Each of these once started a webhook whose every injected agent exited 2 at start,
  // leaving every session pod stuck in Init.
  it.each([
    ['SYNC_PATHS', 'metadata.json', 'SYNC_PATHS entry "metadata.json": "metadata.json" is not a valid S3 prefix name'],
    ['SYNC_PATHS', 'a=../x', 'SYNC_PATHS entry "a=../x": the local path must be relative and inside WORKSPACE_DIR'],
    ['SYNC_PATHS', '.claude,.claude', 'SYNC_PATHS names ".claude" twice'],
    ['SYNC_PATHS', '/abs', 'SYNC_PATHS entry "/abs": "/abs" is not a valid S3 prefix name'],
    ['MAX_SYNC_SIZE', '0', 'MAX_SYNC_SIZE must be a positive size like 500Mi or 1G, got "0"'],
    ['SYNC_INTERVAL', '0.5', 'SYNC_INTERVAL must be a number of seconds from 1 to 86400, got "0.5"'],
    ['SYNC_UNHEALTHY_MIN_SECONDS', '5m', 'SYNC_UNHEALTHY_MIN_SECONDS must be a number of seconds from 1 to 86400, got "5m"'],
    ['SYNC_DEBOUNCE_SECONDS', '1e9', 'SYNC_DEBOUNCE_SECONDS must be 0 (no watching) or a number of seconds from 0.1 to 86400, got "1e9"'],
    ['FINAL_SYNC_TIMEOUT_SECONDS', '1e9', 'FINAL_SYNC_TIMEOUT_SECONDS must be a number of seconds from 1 to 86400, got "1e9"'],
    ['REFRESH_AFTER_DAYS', '0', 'REFRESH_AFTER_DAYS must be a number of days above 0 (fractions allowed), got "0"'],
    ['DEFAULT_S3_REGION', 'EU West', 'DEFAULT_S3_REGION: S3_REGION "EU West" is not a well-formed region (like us-east-1)'],
    ['STATE_VOLUME', 'session-storage-tmp', 'STATE_VOLUME: is the name of a volume the webhook adds'],
  ])('refuses to start with %s=%s, which the agent would reject, naming the setting', (key, value, message) => {
    expect(() => loadConfig({ [key]: value })).toThrow(`invalid webhook configuration: ${message}`);
  });

  it.each([
    [{ PORT: '9090' }, 'METRICS_PORT: must differ from PORT'],
    [{ HEADERS_TIMEOUT_SECONDS: '40' }, 'HEADERS_TIMEOUT_SECONDS: must not exceed REQUEST_TIMEOUT_SECONDS'],
    [{ MAX_CONNECTIONS: '0' }, 'MAX_CONNECTIONS: '],
  ])('rejects server limits that cannot work: %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(`invalid webhook configuration: ${message}`);
  });

    it('accepts every value the agent accepts, as the agent reads it', () => {
    const config = loadConfig({
      SYNC_PATHS: ' .claude=home/.claude, ,artifacts ',
      SYNC_INTERVAL: '1.5',
      SYNC_DEBOUNCE_SECONDS: '0',
      MAX_SYNC_SIZE: '1.5Gi',
      REFRESH_AFTER_DAYS: '0.5',
      SYNC_UNHEALTHY_MIN_SECONDS: '20',
    }).mutation;
    expect(config).toMatchObject({
      syncPaths: [
        { name: '.claude', localDir: 'home/.claude' },
        { name: 'artifacts', localDir: 'artifacts' },
      ],
      syncInterval: 1.5,
      syncDebounceSeconds: 0,
      maxSyncSize: '1.5Gi',
      refreshAfterDays: '0.5',
      syncUnhealthyMinSeconds: 20,
    });
  });
});
