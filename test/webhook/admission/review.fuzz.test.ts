import { Writable } from 'node:stream';
import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { createApp } from '../../../src/webhook/server/app.js';
import { createMetrics } from '../../../src/webhook/server/metrics.js';
import { BadReview, reviewAdmission } from '../../../src/webhook/admission/review.js';
import { ManifestSecretSource, parseSecretManifests } from '../../../src/webhook/lookups/secret-source.js';
import { defaultConfig, loadReview, readFixture } from '../fixtures.js';
import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';

type Path = (string | number)[];

// A session pod that has every field the mutation reads, so each can be replaced.
function baseReview(): Record<string, any> {
  const review = loadReview('create-session-pod');
  const pod = review.request.object;
  pod.metadata.annotations = {
    'ambient-code.io/session-name': 'sess-7f3a',
    'ambient-code.io/session-storage': 'enabled',
    'ambient-code.io/session-storage-status': '{"mode":"sync","reason":"s3-configured","injected":["initContainer:init-hydrate"],"version":"0","podGracePeriodSeconds":30}',
  };
  pod.metadata.generateName = 'sess-7f3a-';
  pod.spec.initContainers = [{ name: 'init-hydrate', image: 'x', command: ['/usr/local/bin/hydrate.sh'], args: ['a'], restartPolicy: 'Always', volumeMounts: [{ name: 'workspace', mountPath: '/w', subPath: 'a/.claude' }], securityContext: { runAsUser: 5, runAsGroup: 5 } }];
  pod.spec.containers[0].securityContext = { runAsUser: 1001, runAsGroup: 0 };
  pod.spec.containers[0].command = ['run'];
  pod.spec.containers[0].args = ['--x'];
  pod.spec.containers[0].restartPolicy = 'Always';
  pod.spec.securityContext = { runAsUser: 1001, runAsGroup: 0 };
  pod.spec.terminationGracePeriodSeconds = 60;
  return review;
}

const object: Path = ['request', 'object'];
const container = (list: string): Path[] => {
  const at: Path = [...object, 'spec', list, 0];
  return [
    [...object, 'spec', list],
    at,
    [...at, 'name'],
    [...at, 'command'],
    [...at, 'args'],
    [...at, 'restartPolicy'],
    [...at, 'volumeMounts'],
    [...at, 'volumeMounts', 0],
    [...at, 'volumeMounts', 0, 'name'],
    [...at, 'volumeMounts', 0, 'subPath'],
    [...at, 'securityContext'],
    [...at, 'securityContext', 'runAsUser'],
    [...at, 'securityContext', 'runAsGroup'],
  ];
};
const PATHS: Path[] = [
  ['request'],
  ['request', 'uid'],
  ['request', 'kind'],
  ['request', 'kind', 'kind'],
  ['request', 'operation'],
  ['request', 'namespace'],
  ['request', 'subResource'],
  object,
  [...object, 'metadata'],
  [...object, 'metadata', 'name'],
  [...object, 'metadata', 'generateName'],
  [...object, 'metadata', 'namespace'],
  [...object, 'metadata', 'labels'],
  [...object, 'metadata', 'labels', 'agentic-session'],
  [...object, 'metadata', 'annotations'],
  [...object, 'metadata', 'annotations', 'ambient-code.io/session-name'],
  [...object, 'metadata', 'annotations', 'ambient-code.io/session-storage'],
  [...object, 'metadata', 'annotations', 'ambient-code.io/session-storage-status'],
  [...object, 'metadata', 'managedFields'],
  [...object, 'spec'],
  ...container('containers'),
  ...container('initContainers'),
  [...object, 'spec', 'volumes'],
  [...object, 'spec', 'volumes', 0],
  [...object, 'spec', 'volumes', 0, 'name'],
  [...object, 'spec', 'volumes', 0, 'persistentVolumeClaim'],
  [...object, 'spec', 'securityContext'],
  [...object, 'spec', 'securityContext', 'runAsUser'],
  [...object, 'spec', 'securityContext', 'runAsGroup'],
  [...object, 'spec', 'terminationGracePeriodSeconds'],
];

const REMOVE = Symbol('remove');
// Any JSON at all, JSON text (the status annotation is parsed), or the field gone.
const value = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue() },
  { weight: 1, arbitrary: fc.jsonValue().map((inner) => JSON.stringify(inner)) },
  { weight: 1, arbitrary: fc.constant<typeof REMOVE>(REMOVE) },
);
const substitutions = fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { minLength: 1, maxLength: 3 });

function substitute(review: Record<string, any>, changes: [Path, unknown][]): Record<string, any> {
  for (const [path, replacement] of changes) {
    let holder: any = review;
    for (const key of path.slice(0, -1)) {
      if (typeof holder !== 'object' || holder === null) break;
      holder = holder[key];
    }
    if (typeof holder !== 'object' || holder === null) continue;
    const last = path.at(-1)!;
    if (replacement === REMOVE) delete holder[last];
    else holder[last] = replacement;
  }
  return review;
}

function setup() {
  const config = defaultConfig();
  const deps = {
    config: config.mutation,
    policy: config.policy,
    secrets: new ManifestSecretSource(parseSecretManifests(readFixture('secrets/complete.yaml'), 'complete')),
    claims: NO_CLAIMS,
  };
  const app = createApp({
    deps,
    metrics: createMetrics(),
    logger: createLogger('webhook', new Writable({ write: (_c, _e, done) => done() })),
    bodyLimit: '3mb',
    ready: () => true,
  });
  return { app, deps };
}

describe('AdmissionReviews with arbitrary JSON at every field the mutation reads', { timeout: 120_000 }, () => {
  const { app, deps } = setup();

  it('reviewAdmission answers or throws BadReview, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(substitutions, async (changes) => {
        const body = substitute(baseReview(), changes);
        try {
          const outcome = await reviewAdmission(body, deps);
          expect(['allowed', 'patched', 'denied']).toContain(outcome.outcome);
        } catch (error) {
          expect(error).toBeInstanceOf(BadReview);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('POST /mutate never answers 500: a valid AdmissionReview or a 400 with a one-line message', async () => {
    await fc.assert(
      fc.asyncProperty(substitutions, async (changes) => {
        const body = substitute(baseReview(), changes);
        const res = await request(app).post('/mutate').send(body);
        if (res.status === 200) {
          expect(res.body).toMatchObject({ kind: 'AdmissionReview', response: { uid: body.request.uid } });
          expect(typeof res.body.response.allowed).toBe('boolean');
          if (res.body.response.patch !== undefined) {
            expect(Array.isArray(JSON.parse(Buffer.from(res.body.response.patch, 'base64').toString('utf8')))).toBe(true);
          }
          return;
        }
        expect(res.status).toBe(400);
        expect(res.text).toMatch(/^malformed AdmissionReview[^\n]*\n$/);
      }),
      { numRuns: 400 },
    );
  });
});
