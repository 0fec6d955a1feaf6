import { NO_CLAIMS } from '../../src/webhook/claim-source.js';
import { existsSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { mutate } from '../../src/webhook/mutate.js';
import { reviewAdmission } from '../../src/webhook/review.js';
import { ManifestSecretSource, parseSecretManifests } from '../../src/webhook/secret-source.js';
import { decideS3 } from '../../src/webhook/s3-settings.js';
import { VERSION } from '../../src/shared/version.js';
import { STATUS_ANNOTATION } from '../../src/webhook/names.js';
import { defaultConfig, fixturePath, loadPod, loadSecretSummary, readFixture } from './fixtures.js';

// Golden files are reviewed like code. Regenerate with UPDATE_GOLDEN=1 after an intended
// change and read the diff before committing it.
const cases: { golden: string; pod: string; secret: string | undefined; env: Record<string, string> }[] = [
  { golden: 'session-runner.native', pod: 'session-runner', secret: 'complete', env: {} },
  { golden: 'session-runner.legacy', pod: 'session-runner', secret: 'complete', env: { SIDECAR_MODE: 'legacy' } },
  { golden: 'session-runner.ephemeral', pod: 'session-runner', secret: undefined, env: {} },
  { golden: 'session-generate-name.native', pod: 'session-generate-name', secret: 'complete-stringdata', env: {} },
  { golden: 'control-plane.native', pod: 'control-plane', secret: 'complete', env: {} },
];

describe('golden mutated pods', () => {
  it.each(cases)('$pod with $secret secret gives $golden', ({ golden, pod, secret, env }) => {
    const config = defaultConfig({ AGENT_IMAGE: 'ghcr.io/ambient-code/ambient-session-storage:test', ...env });
    const summary = secret === undefined ? { kind: 'absent' as const } : loadSecretSummary(secret);
    const result = mutate(loadPod(pod), config.mutation, decideS3(summary, config.policy));
    expect(result.outcome).toBe('patched');
    if (result.outcome !== 'patched') return;
    // The version changes with every release; the golden files hold a placeholder.
    const annotation = result.pod.metadata!.annotations![STATUS_ANNOTATION]!;
    result.pod.metadata!.annotations![STATUS_ANNOTATION] = annotation.replace(`"version":"${VERSION}"`, '"version":"VERSION"');
    const file = `golden/${golden}.yaml`;
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(fixturePath(file))) {
      writeFileSync(fixturePath(file), stringify({ warnings: result.warnings, pod: result.pod }));
    }
    expect({ warnings: result.warnings, pod: result.pod }).toEqual(parse(readFixture(file)));
  });
});

// Pods the webhook must admit exactly as they came: the golden file is the whole
// AdmissionReview response, so a patch of any size would show up in the diff.
const unchanged: { golden: string; pod: string }[] = [
  { golden: 'platform-s3-operator.review', pod: 'platform-s3-operator' },
];

describe('golden admission responses for pods left as they are', () => {
  it.each(unchanged)('$pod gives $golden', async ({ golden, pod }) => {
    const config = defaultConfig();
    const body = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'golden-uid',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'project-a',
        object: loadPod(pod),
      },
    };
    const secrets = new ManifestSecretSource(parseSecretManifests(readFixture('secrets/complete.yaml'), 'complete'));
    const review = await reviewAdmission(body, { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS });
    const file = `golden/${golden}.yaml`;
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(fixturePath(file))) {
      writeFileSync(fixturePath(file), stringify({ reason: review.reason, response: review.response }));
    }
    expect({ reason: review.reason, response: review.response }).toEqual(parse(readFixture(file)));
  });
});
