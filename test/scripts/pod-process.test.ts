import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { resolveEnv } from '../../scripts/lib/pod-process.js';

// The harness resolves a container's env as the kubelet does, so the e2e tier and the demo
// run the agent with what a real pod would see.
const pod: V1Pod = { metadata: { name: 'p', namespace: 'project-a' }, spec: { containers: [] } };
const container = (env: V1Container['env']): V1Container => ({ name: 'state-sync', env });
const secret: Record<string, string> = { S3_BUCKET: 'sessions', S3_SSE: 'AES256' };
const secretValue = async (name: string, key: string) => (name === 'integration' ? secret[key] : undefined);
const ref = (name: string, key: string, optional?: boolean) => ({
  name,
  valueFrom: { secretKeyRef: { name: 'integration', key, ...(optional === undefined ? {} : { optional }) } },
});

describe('resolving a container env like the kubelet', () => {
  it('sets optional keys the secret has and leaves out those it lacks', async () => {
    const env = await resolveEnv(pod, container([ref('S3_BUCKET', 'S3_BUCKET'), ref('S3_SSE', 'S3_SSE', true), ref('S3_SSE_KMS_KEY_ID', 'S3_SSE_KMS_KEY_ID', true)]), new Map(), secretValue);
    expect(env).toEqual({ S3_BUCKET: 'sessions', S3_SSE: 'AES256' });
  });

  it('refuses to start a container whose required key is missing', async () => {
    await expect(resolveEnv(pod, container([ref('S3_ENDPOINT', 'S3_ENDPOINT')]), new Map(), secretValue)).rejects.toThrow(
      'secret key S3_ENDPOINT missing in integration',
    );
  });
});
