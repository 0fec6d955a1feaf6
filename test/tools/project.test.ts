import { describe, expect, it } from 'vitest';
import { openStore, ToolError } from '../../src/tools/project.js';

const secret = {
  S3_ENDPOINT: 'http://minio.example:9000',
  S3_BUCKET: 'ambient-sessions',
  S3_ACCESS_KEY: 'AKIAEXAMPLE',
  S3_SECRET_KEY: 'secret-value',
};

describe('the tools reach S3 with the agent\'s settings', () => {
  it('take the server-side encryption from the secret, so `check` writes as the agent would', () => {
    const store = openStore({ ...secret, S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/sessions' }, 'project-a', 'check', 1);
    try {
      expect(store.settings).toMatchObject({ sse: 'aws:kms', sseKmsKeyId: 'alias/sessions' });
    } finally {
      store.close();
    }
  });

  it('refuse an S3_SSE the agent would refuse, in its words', () => {
    expect(() => openStore({ ...secret, S3_SSE: 'kms' }, 'project-a', 'check', 1)).toThrow(
      new ToolError('the agent would refuse these settings: S3_SSE must be AES256 or aws:kms (or unset for the bucket\'s default), got "kms"'),
    );
  });
});
