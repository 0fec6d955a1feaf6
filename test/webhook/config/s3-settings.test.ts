import { describe, expect, it } from 'vitest';
import { decideS3, type S3Policy } from '../../../src/webhook/config/s3-settings.js';
import { summarizeSecret, type SecretSummary } from '../../../src/webhook/config/secret-summary.js';
import { loadSecretSummary } from '../fixtures.js';

const deny: S3Policy = { onIncomplete: 'deny', onSecretError: 'deny' };
const lenient: S3Policy = { onIncomplete: 'ephemeral', onSecretError: 'ephemeral' };

const complete = {
  S3_ENABLED: 'true',
  S3_ENDPOINT: 'http://minio.ambient-system.svc:9000',
  S3_BUCKET: 'ambient-sessions',
  S3_REGION: 'us-east-1',
  S3_ACCESS_KEY: 'AKIAEXAMPLE',
  S3_SECRET_KEY: 'secret-example',
};
const withValues = (stringData: Record<string, string>): SecretSummary => summarizeSecret({ stringData });

describe('the decision table of the README', () => {
  it.each([
    ['secret absent', { kind: 'absent' } as SecretSummary, { kind: 'ephemeral', reason: 'secret-absent', warning: 'S3 not configured: session state is ephemeral' }],
    ['secret without any S3 key', withValues({ GITHUB_TOKEN: 'ghp_x' }), { kind: 'ephemeral', reason: 's3-not-configured', warning: 'S3 not configured: session state is ephemeral' }],
    ['S3_ENABLED false', loadSecretSummary('disabled'), { kind: 'ephemeral', reason: 's3-disabled', warning: 'S3 disabled in project settings' }],
    ['S3_ENABLED FALSE, other keys missing', withValues({ S3_ENABLED: 'FALSE' }), { kind: 'ephemeral', reason: 's3-disabled', warning: 'S3 disabled in project settings' }],
    ['complete (data, base64)', loadSecretSummary('complete'), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['complete (stringData), no region', loadSecretSummary('complete-stringdata'), { kind: 'sync', reason: 's3-configured', hasRegion: false }],
    ['complete without S3_ENABLED', withValues({ ...complete, S3_ENABLED: '' }), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['empty bucket and no secret key', loadSecretSummary('incomplete'), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY' }],
    ['only enabled', withValues({ S3_ENABLED: 'true' }), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY' }],
    ['whitespace-only access key', withValues({ ...complete, S3_ACCESS_KEY: '  ' }), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_ACCESS_KEY' }],
    ['endpoint not a URL, bucket illegal', loadSecretSummary('invalid-endpoint'), {
      kind: 'deny',
      reason: 'invalid',
      message:
        'invalid S3 configuration: S3_ENDPOINT must be an http or https URL (got "minio.ambient-system.svc:9000"); ' +
        'S3_BUCKET "Ambient_Sessions" is not a legal bucket name: only lowercase letters, digits, dots and hyphens are allowed',
    }],
    ['ftp endpoint', withValues({ ...complete, S3_ENDPOINT: 'ftp://files.example.com' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_ENDPOINT must be an http or https URL (got "ftp://files.example.com")' }],
    ['endpoint with credentials', withValues({ ...complete, S3_ENDPOINT: 'https://user:pw@s3.example.com' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_ENDPOINT must not embed credentials' }],
    ['bucket too short', withValues({ ...complete, S3_BUCKET: 'ab' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_BUCKET "ab" is not a legal bucket name: must be 3 to 63 characters long' }],
    ['bucket like an IP', withValues({ ...complete, S3_BUCKET: '192.168.1.10' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_BUCKET "192.168.1.10" is not a legal bucket name: must not be formatted as an IP address' }],
    ['bucket with adjacent dots', withValues({ ...complete, S3_BUCKET: 'a..b' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_BUCKET "a..b" is not a legal bucket name: must not contain two adjacent dots' }],
    ['region malformed', withValues({ ...complete, S3_REGION: 'US East 1' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_REGION "US East 1" is not a well-formed region (like us-east-1)' }],
    ['server-side encryption AES256', withValues({ ...complete, S3_SSE: 'AES256' }), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['server-side encryption with a KMS key', withValues({ ...complete, S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/sessions' }), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['S3_SSE the agent would refuse', withValues({ ...complete, S3_SSE: 'aes256' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_SSE must be AES256 or aws:kms (or unset for the bucket\'s default), got "aes256"' }],
    ['a KMS key without aws:kms', withValues({ ...complete, S3_SSE_KMS_KEY_ID: 'alias/sessions' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_SSE_KMS_KEY_ID is only used with S3_SSE=aws:kms' }],
    ['S3_ENABLED not a boolean', withValues({ ...complete, S3_ENABLED: 'maybe' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_ENABLED must be "true" or "false" (got "maybe")' }],
    ['temporary keys with a session token', withValues({ ...complete, S3_SESSION_TOKEN: 'token-example' }), {
      kind: 'sync',
      reason: 's3-configured',
      hasRegion: true,
      credentials: { mode: 'keys', sessionToken: true, roleArn: false, stsEndpoint: false },
    }],
    ['workload identity without keys', withValues({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_BUCKET: 'sessions', S3_CREDENTIALS: 'workload-identity' }), {
      kind: 'sync',
      reason: 's3-configured',
      hasRegion: false,
      credentials: { mode: 'workload-identity', sessionToken: false, roleArn: false, stsEndpoint: false },
    }],
    ['workload identity with a role and an STS endpoint', withValues({ S3_ENDPOINT: 'https://minio.example.com', S3_BUCKET: 'sessions', S3_CREDENTIALS: 'workload-identity', S3_ROLE_ARN: 'arn:minio:iam:::role/sessions', S3_STS_ENDPOINT: 'https://minio.example.com' }), {
      kind: 'sync',
      reason: 's3-configured',
      hasRegion: false,
      credentials: { mode: 'workload-identity', sessionToken: false, roleArn: true, stsEndpoint: true },
    }],
    ['workload identity still needs an endpoint and a bucket', withValues({ S3_CREDENTIALS: 'workload-identity', S3_REGION: 'eu-west-1' }), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_ENDPOINT, S3_BUCKET' }],
    ['S3_CREDENTIALS the agent would refuse', withValues({ ...complete, S3_CREDENTIALS: 'irsa' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_CREDENTIALS must be "keys" or "workload-identity" (got "irsa")' }],
    ['a role ARN that is not one', withValues({ S3_ENDPOINT: 'https://s3.amazonaws.com', S3_BUCKET: 'sessions', S3_CREDENTIALS: 'workload-identity', S3_ROLE_ARN: 'sessions-role' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_ROLE_ARN "sessions-role" is not an IAM role ARN (like arn:aws:iam::123456789012:role/sessions)' }],
    ['a role ARN with access keys', withValues({ ...complete, S3_ROLE_ARN: 'arn:aws:iam::123456789012:role/sessions' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_ROLE_ARN and S3_STS_ENDPOINT are used only with S3_CREDENTIALS=workload-identity' }],
    ['a session token without keys', withValues({ S3_ENDPOINT: 'https://s3.amazonaws.com', S3_BUCKET: 'sessions', S3_CREDENTIALS: 'workload-identity', S3_SESSION_TOKEN: 'token-example' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_SESSION_TOKEN goes with access keys, not with S3_CREDENTIALS=workload-identity' }],
    ['read error', { kind: 'error', reason: 'HTTP 403: secrets is forbidden' } as SecretSummary, { kind: 'deny', reason: 'secret-error', message: 'failed to read project secret: HTTP 403: secrets is forbidden' }],
  ])('%s', (_name, summary, expected) => {
    expect(decideS3(summary, deny)).toEqual(expected);
  });

  it('keeps the missing keys in a stable order whatever order the secret lists them in', () => {
    const a = withValues({ S3_SECRET_KEY: 'x', S3_ENABLED: 'true', S3_ENDPOINT: 'http://a:9000' });
    const b = withValues({ S3_ENDPOINT: 'http://a:9000', S3_ENABLED: 'true', S3_SECRET_KEY: 'x' });
    expect(decideS3(a, deny)).toEqual(decideS3(b, deny));
    expect(decideS3(a, deny)).toMatchObject({ message: 'incomplete S3 configuration: missing S3_BUCKET, S3_ACCESS_KEY' });
  });

  it.each([
    ['incomplete', loadSecretSummary('incomplete'), 'incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY: session state is ephemeral'],
    ['invalid', withValues({ ...complete, S3_BUCKET: 'ab' }), 'invalid S3 configuration: S3_BUCKET "ab" is not a legal bucket name: must be 3 to 63 characters long: session state is ephemeral'],
    ['secret-error', { kind: 'error', reason: 'timed out after 2000 ms' } as SecretSummary, 'failed to read project secret: timed out after 2000 ms: session state is ephemeral'],
  ])('the ephemeral policy turns a %s denial into a warning', (reason, summary, warning) => {
    expect(decideS3(summary, lenient)).toEqual({ kind: 'ephemeral', reason, warning });
  });

  it('switches the two policies independently', () => {
    const onlyErrors: S3Policy = { onIncomplete: 'deny', onSecretError: 'ephemeral' };
    expect(decideS3(loadSecretSummary('incomplete'), onlyErrors).kind).toBe('deny');
    expect(decideS3({ kind: 'error', reason: 'x' }, onlyErrors).kind).toBe('ephemeral');
  });
});

const SHARED_WARNING = 'S3 not configured: session state is ephemeral (STORAGE_MODE=shared; use custom with S3_* keys)';

describe('STORAGE_MODE, as the platform writes it', () => {
  it.each([
    ['shared, nothing else', withValues({ STORAGE_MODE: 'shared' }), { kind: 'ephemeral', reason: 'storage-mode-shared', warning: SHARED_WARNING }],
    ['shared with stale S3 keys from an earlier custom setup', withValues({ ...complete, STORAGE_MODE: 'shared' }), { kind: 'ephemeral', reason: 'storage-mode-shared', warning: SHARED_WARNING }],
    ['shared, padded with whitespace', withValues({ ...complete, STORAGE_MODE: ' shared\n' }), { kind: 'ephemeral', reason: 'storage-mode-shared', warning: SHARED_WARNING }],
    ['custom with every key', withValues({ ...complete, S3_ENABLED: '', STORAGE_MODE: 'custom' }), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['custom without any S3 key', withValues({ STORAGE_MODE: 'custom' }), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY' }],
    ['custom missing the secret key', withValues({ ...complete, S3_SECRET_KEY: '', STORAGE_MODE: 'custom' }), { kind: 'deny', reason: 'incomplete', message: 'incomplete S3 configuration: missing S3_SECRET_KEY' }],
    ['custom with S3_ENABLED false', withValues({ ...complete, S3_ENABLED: 'false', STORAGE_MODE: 'custom' }), { kind: 'ephemeral', reason: 's3-disabled', warning: 'S3 disabled in project settings' }],
    ['custom with an illegal bucket', withValues({ ...complete, S3_BUCKET: 'ab', STORAGE_MODE: 'custom' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: S3_BUCKET "ab" is not a legal bucket name: must be 3 to 63 characters long' }],
    ['absent: as before, the S3_* keys decide', withValues(complete), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['empty: as absent', withValues({ ...complete, STORAGE_MODE: '' }), { kind: 'sync', reason: 's3-configured', hasRegion: true }],
    ['unknown value', withValues({ ...complete, STORAGE_MODE: 'minio' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: STORAGE_MODE must be "shared" or "custom" (got "minio")' }],
    // The platform compares case-sensitively, so "Custom" is not custom there: refusing it
    // is the only reading that cannot disagree with the platform.
    ['wrong case', withValues({ ...complete, STORAGE_MODE: 'Custom' }), { kind: 'deny', reason: 'invalid', message: 'invalid S3 configuration: STORAGE_MODE must be "shared" or "custom" (got "Custom")' }],
  ])('%s', (_name, summary, expected) => {
    expect(decideS3(summary, deny)).toEqual(expected);
  });

  it('read from base64 data as the platform stores it', () => {
    const summary = summarizeSecret({ data: { STORAGE_MODE: Buffer.from('shared').toString('base64') } });
    expect(decideS3(summary, deny)).toMatchObject({ reason: 'storage-mode-shared' });
  });

  it('the ephemeral policy turns an unknown mode into a warning naming the allowed values', () => {
    expect(decideS3(withValues({ STORAGE_MODE: 'minio' }), lenient)).toEqual({
      kind: 'ephemeral',
      reason: 'invalid',
      warning: 'invalid S3 configuration: STORAGE_MODE must be "shared" or "custom" (got "minio"): session state is ephemeral',
    });
  });
});

describe('secret summaries', () => {
  it('never keep credential values, only whether they are set', () => {
    const summary = loadSecretSummary('complete');
    expect(JSON.stringify([...(summary.kind === 'present' ? summary.present : [])])).toContain('S3_SECRET_KEY');
    const serialized = JSON.stringify(summary, (_key, value: unknown) => (value instanceof Set ? [...value] : value));
    expect(serialized).not.toContain('wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY');
    expect(serialized).not.toContain('AKIAEXAMPLEACCESSKEY');
    expect(summary).toMatchObject({ values: { S3_BUCKET: 'ambient-sessions', S3_ENDPOINT: 'http://minio.ambient-system.svc:9000' } });
  });

  it('read stringData over data, as the API server merges them', () => {
    const summary = summarizeSecret({
      data: { S3_BUCKET: Buffer.from('from-data').toString('base64') },
      stringData: { S3_BUCKET: 'from-string-data' },
    });
    expect(summary).toMatchObject({ values: { S3_BUCKET: 'from-string-data' } });
  });
});
