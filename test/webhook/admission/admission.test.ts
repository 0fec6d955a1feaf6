import { describe, expect, it } from 'vitest';
import { admitPod } from '../../../src/webhook/admission/admission.js';
import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';
import type { SecretSource } from '../../../src/webhook/lookups/secret-source.js';
import type { SecretSummary } from '../../../src/webhook/config/secret-summary.js';
import { defaultConfig, loadPod, loadSecretSummary } from '../fixtures.js';

// The webhook works the S3 decision out once per secret summary; a secret that changes
// (a new summary from the source) must change what the next pod gets.
describe('admission follows the secret as it changes', () => {
  const config = defaultConfig();
  let current: SecretSummary = loadSecretSummary('complete');
  const secrets: SecretSource = { get: () => Promise.resolve(current), ready: () => true, close: () => undefined };
  const admit = () => admitPod(loadPod('session-runner'), 'project-a', { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS });

  it('decides again for each new version of the secret', async () => {
    expect(await admit()).toMatchObject({ outcome: 'patched', reason: 's3-configured' });
    current = loadSecretSummary('invalid-endpoint');
    const broken = await admit();
    expect(broken.outcome).not.toBe('patched');
    current = loadSecretSummary('disabled');
    const disabled = await admit();
    expect(disabled.reason).not.toBe('s3-configured');
    expect(disabled.reason).not.toBe(broken.reason);
    current = loadSecretSummary('complete');
    expect(await admit()).toMatchObject({ outcome: 'patched', reason: 's3-configured' });
  });

  it('gives the same answer for the same version, pod after pod', async () => {
    current = loadSecretSummary('complete');
    const [a, b] = [await admit(), await admit()];
    expect(b).toEqual(a);
  });
});
