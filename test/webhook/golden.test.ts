import { NO_CLAIMS } from '../../src/webhook/lookups/claim-source.js';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { mutate } from '../../src/webhook/mutation/mutate.js';
import { reviewAdmission, reviewJson } from '../../src/webhook/admission/review.js';
import { ManifestSecretSource, parseSecretManifests } from '../../src/webhook/lookups/secret-source.js';
import { decideS3 } from '../../src/webhook/config/s3-settings.js';
import { defaultConfig, fixturePath, loadPod, loadSecretSummary, readFixture } from './fixtures.js';

// Golden files are reviewed like code. test/fixtures/golden/index.yaml says what each one
// is made from; regenerate with UPDATE_GOLDEN=1 after an intended change and read the diff
// before committing it. A golden file is written only then: a missing one fails.
interface GoldenInput {
  pod: string;
  secret?: string;
  env?: Record<string, string>;
}
interface GoldenIndex {
  mutations: Record<string, GoldenInput>;
  reviews: Record<string, GoldenInput>;
  patches: Record<string, GoldenInput>;
}

const index = parse(readFixture('golden/index.yaml')) as GoldenIndex;
const cases = (group: Record<string, GoldenInput>) => Object.entries(group).map(([golden, input]) => ({ golden, ...input }));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function expectGolden(golden: string, actual: unknown): void {
  const file = `golden/${golden}.yaml`;
  if (UPDATE) writeFileSync(fixturePath(file), stringify(actual));
  expect(existsSync(fixturePath(file)), `${file} is missing: write it with UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(actual).toEqual(parse(readFixture(file)));
}

describe('golden mutated pods', () => {
  it.each(cases(index.mutations))('$pod with $secret secret gives $golden', ({ golden, pod, secret, env }) => {
    const config = defaultConfig({ AGENT_IMAGE: 'ghcr.io/ambient-code/ambient-session-storage:test', ...env });
    const summary = secret === undefined ? { kind: 'absent' as const } : loadSecretSummary(secret);
    const result = mutate(loadPod(pod), config.mutation, decideS3(summary, config.policy));
    expect(result.outcome).toBe('patched');
    if (result.outcome !== 'patched') return;
    expectGolden(golden, { warnings: result.warnings, pod: result.pod });
  });
});

async function reviewOf({ pod, secret, env }: GoldenInput) {
  const config = defaultConfig(env);
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
  const manifests = secret === undefined ? [] : parseSecretManifests(readFixture(`secrets/${secret}.yaml`), secret);
  const secrets = new ManifestSecretSource(manifests);
  return reviewAdmission(body, { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS });
}

// Pods the webhook must admit exactly as they came: the golden file is the whole
// AdmissionReview response, so a patch of any size would show up in the diff.
describe('golden admission responses for pods left as they are', () => {
  it.each(cases(index.reviews))('$pod gives $golden', async (input) => {
    const review = await reviewOf(input);
    expectGolden(input.golden, { reason: review.reason, response: review.response });
    expect(reviewJson(review.response)).toBe(JSON.stringify(review.response));
  });
});

// The bytes the API server gets for a mutated pod: the base64 patch (its operations, their
// order, every value) and the response around it, key for key in the order they are written.
describe('golden admission responses for mutated pods', () => {
  it.each(cases(index.patches))('$pod with $secret secret gives $golden', async (input) => {
    const review = await reviewOf(input);
    expect(review.outcome).toBe('patched');
    expectGolden(input.golden, { reason: review.reason, response: review.response });
    const golden = parse(readFixture(`golden/${input.golden}.yaml`)) as { response: unknown };
    expect(JSON.stringify(review.response)).toBe(JSON.stringify(golden.response));
    expect(reviewJson(review.response)).toBe(JSON.stringify(golden.response));
  });
});

describe('fixtures in use', () => {
  const listed = new Set([...Object.keys(index.mutations), ...Object.keys(index.reviews), ...Object.keys(index.patches)]);

  it('every golden file is listed in golden/index.yaml', () => {
    const files = readdirSync(fixturePath('golden')).filter((name) => name !== 'index.yaml');
    expect(files.filter((name) => !listed.has(name.replace(/\.yaml$/, '')))).toEqual([]);
  });

  it('every pod fixture is used by a golden file or a test', () => {
    const root = fixturePath('../');
    const sources = readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts') && !name.startsWith('fixtures'))
      .map((name) => readFileSync(join(root, name), 'utf8'));
    const inputs = new Set([...cases(index.mutations), ...cases(index.reviews), ...cases(index.patches)].map((input) => input.pod));
    const unused = readdirSync(fixturePath('pods'))
      .map((name) => name.replace(/\.yaml$/, ''))
      .filter((pod) => !inputs.has(pod))
      .filter((pod) => !sources.some((source) => source.includes(`'${pod}'`) || source.includes(`pods/${pod}.yaml`)));
    expect(unused, `pod fixtures under ${relative(process.cwd(), fixturePath('pods'))} that no test uses`).toEqual([]);
  });
});
