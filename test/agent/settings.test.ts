import { describe, expect, it } from 'vitest';
import { loadSettings, parseSyncPaths, SettingsError } from '../../src/agent/settings.js';

const base = {
  S3_ENDPOINT: 'http://minio.ambient-code.svc:9000',
  S3_BUCKET: 'ambient-sessions',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'secret-value',
  NAMESPACE: 'project-a',
  SESSION_NAME: 'session-1',
};

describe('agent settings', () => {
  it('applies the documented defaults', () => {
    const settings = loadSettings(base);
    expect(settings).toMatchObject({
      region: 'us-east-1',
      workspaceDir: '/workspace',
      syncIntervalSeconds: 60,
      syncDebounceSeconds: 1,
      maxSyncSize: 2 ** 30,
      hydrateTimeoutSeconds: 120,
      finalSyncTimeoutSeconds: 45,
      refreshAfterDays: 7,
      unhealthyMinSeconds: 300,
      stateDir: '/var/lib/session-storage',
      exclude: ['repos/**', 'node_modules/**', '.venv/**', '__pycache__/**'],
    });
    expect(settings.syncPaths).toEqual([
      { name: '.claude', localDir: '.claude' },
      { name: '.gemini', localDir: '.gemini' },
      { name: 'artifacts', localDir: 'artifacts' },
      { name: 'uploads', localDir: 'uploads' },
      { name: 'file-uploads', localDir: 'file-uploads' },
    ]);
  });

  it('reads every knob', () => {
    const settings = loadSettings({
      ...base,
      S3_REGION: 'eu-west-1',
      WORKSPACE_DIR: '/data',
      SYNC_PATHS: '.claude=home/.claude, artifacts',
      SYNC_EXCLUDE: '*.log, tmp/**',
      SYNC_INTERVAL: '15',
      SYNC_DEBOUNCE_SECONDS: '2.5',
      MAX_SYNC_SIZE: '500Mi',
      HYDRATE_TIMEOUT_SECONDS: '30',
      FINAL_SYNC_TIMEOUT_SECONDS: '20',
      REFRESH_AFTER_DAYS: '0.5',
      SYNC_UNHEALTHY_MIN_SECONDS: '20',
      AGENT_STATE_DIR: '/state',
    });
    expect(settings).toMatchObject({
      region: 'eu-west-1',
      workspaceDir: '/data',
      syncPaths: [
        { name: '.claude', localDir: 'home/.claude' },
        { name: 'artifacts', localDir: 'artifacts' },
      ],
      exclude: ['*.log', 'tmp/**'],
      syncIntervalSeconds: 15,
      syncDebounceSeconds: 2.5,
      maxSyncSize: 500 * 2 ** 20,
      hydrateTimeoutSeconds: 30,
      finalSyncTimeoutSeconds: 20,
      refreshAfterDays: 0.5,
      unhealthyMinSeconds: 20,
      stateDir: '/state',
    });
  });

  it('turns the watching off with SYNC_DEBOUNCE_SECONDS=0', () => {
    expect(loadSettings({ ...base, SYNC_DEBOUNCE_SECONDS: '0' }).syncDebounceSeconds).toBe(0);
  });

  it('allows an empty exclude list', () => {
    expect(loadSettings({ ...base, SYNC_EXCLUDE: '' }).exclude).toEqual([]);
  });

  it.each([
    [{ S3_BUCKET: undefined }, 'S3_BUCKET is required'],
    [{ AWS_SECRET_ACCESS_KEY: '' }, 'AWS_SECRET_ACCESS_KEY is required'],
    [{ S3_ENDPOINT: 'minio:9000' }, 'S3_ENDPOINT must be an http or https URL (got "minio:9000")'],
    [{ S3_ENDPOINT: 'https://user:pw@s3.example.com' }, 'S3_ENDPOINT must not embed credentials'],
    [{ S3_BUCKET: 'Bad_Bucket' }, 'S3_BUCKET "Bad_Bucket" is not a legal bucket name'],
    [{ S3_REGION: 'EU West' }, 'S3_REGION "EU West" is not a well-formed region'],
    [{ NAMESPACE: 'Project_A' }, 'NAMESPACE must be a DNS label'],
    [{ SESSION_NAME: '../etc' }, 'SESSION_NAME must be a DNS label'],
    [{ SYNC_INTERVAL: 'soon' }, 'SYNC_INTERVAL must be a number of seconds from 1 to 86400, got "soon"'],
    [{ SYNC_UNHEALTHY_MIN_SECONDS: '0' }, 'SYNC_UNHEALTHY_MIN_SECONDS must be a number of seconds from 1 to 86400, got "0"'],
    [{ SYNC_DEBOUNCE_SECONDS: 'soon' }, 'SYNC_DEBOUNCE_SECONDS must be 0 (no watching) or a number of seconds from 0.1 to 86400, got "soon"'],
    [{ SYNC_DEBOUNCE_SECONDS: '0.05' }, 'SYNC_DEBOUNCE_SECONDS must be 0 (no watching) or a number of seconds from 0.1 to 86400, got "0.05"'],
    [{ SYNC_DEBOUNCE_SECONDS: '-1' }, 'SYNC_DEBOUNCE_SECONDS must be 0 (no watching) or a number of seconds from 0.1 to 86400, got "-1"'],
    [{ MAX_SYNC_SIZE: '1 lot' }, 'MAX_SYNC_SIZE must be a positive size like 500Mi or 1G, got "1 lot"'],
    [{ MAX_SYNC_SIZE: '0' }, 'MAX_SYNC_SIZE must be a positive size like 500Mi or 1G, got "0"'],
    [{ REFRESH_AFTER_DAYS: '0' }, 'REFRESH_AFTER_DAYS must be a number of days above 0 (fractions allowed), got "0"'],
    [{ SYNC_PATHS: 'x=../outside' }, 'SYNC_PATHS entry "x=../outside": the local path must be relative and inside WORKSPACE_DIR'],
    [{ SYNC_PATHS: 'a,a' }, 'SYNC_PATHS names "a" twice'],
    [{ REFRESH_AFTER_DAYS: 'weekly' }, 'REFRESH_AFTER_DAYS must be a number of days above 0 (fractions allowed), got "weekly"'],
  ])('rejects %o with one clear line', (override, message) => {
    expect(() => loadSettings({ ...base, ...override })).toThrow(message);
  });

  it('never echoes a credential in an error', () => {
    try {
      loadSettings({ ...base, S3_BUCKET: '' });
    } catch (error) {
      expect(String(error)).not.toContain('secret-value');
      return;
    }
    throw new Error('expected a settings error');
  });

  it('refuses sync path names that cannot be S3 prefixes', () => {
    expect(() => parseSyncPaths('a/b')).toThrow(SettingsError);
    expect(() => parseSyncPaths('..')).toThrow(SettingsError);
    expect(() => parseSyncPaths('metadata.json')).toThrow(SettingsError);
    // Where the restore bundle lives: a sync path of that name would sync (and delete) it.
    expect(() => parseSyncPaths('.session-storage')).toThrow(SettingsError);
    expect(() => parseSyncPaths(' , ')).toThrow('SYNC_PATHS must name at least one path');
  });

  it.each([
    ['unset', {}, {}],
    ['empty (an empty key in the secret)', { S3_SSE: '', S3_SSE_KMS_KEY_ID: '' }, {}],
    ['AES256', { S3_SSE: 'AES256' }, { sse: 'AES256' }],
    ['aws:kms with the bucket key', { S3_SSE: 'aws:kms' }, { sse: 'aws:kms' }],
    ['aws:kms with a key', { S3_SSE: ' aws:kms ', S3_SSE_KMS_KEY_ID: 'alias/sessions' }, { sse: 'aws:kms', sseKmsKeyId: 'alias/sessions' }],
  ])('server-side encryption %s', (_, env, expected) => {
    const settings = loadSettings({ ...base, ...env });
    expect({ sse: settings.sse, sseKmsKeyId: settings.sseKmsKeyId }).toEqual({ sse: undefined, sseKmsKeyId: undefined, ...expected });
  });

  it.each([
    [{ S3_SSE: 'aes256' }, 'S3_SSE must be AES256 or aws:kms (or unset for the bucket\'s default), got "aes256"'],
    [{ S3_SSE: 'aws:kms:dsse' }, 'S3_SSE must be AES256 or aws:kms (or unset for the bucket\'s default), got "aws:kms:dsse"'],
    [{ S3_SSE_KMS_KEY_ID: 'alias/sessions' }, 'S3_SSE_KMS_KEY_ID is only used with S3_SSE=aws:kms'],
    [{ S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'alias/sessions' }, 'S3_SSE_KMS_KEY_ID is only used with S3_SSE=aws:kms'],
  ])('refuses %o with a settings error naming it', (env, message) => {
    expect(() => loadSettings({ ...base, ...env })).toThrow(new SettingsError(message));
  });
});
