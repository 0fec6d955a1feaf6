import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';
import { Writable } from 'node:stream';
import jsonPatch from 'fast-json-patch';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { createApp, createMetricsApp } from '../../../src/webhook/server/app.js';
import { createMetrics } from '../../../src/webhook/server/metrics.js';
import { ManifestSecretSource, parseSecretManifests } from '../../../src/webhook/lookups/secret-source.js';
import { defaultConfig, loadReview, readFixture } from '../fixtures.js';

function setup(options: { secret?: string; bodyLimit?: string; ready?: boolean } = {}) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const config = defaultConfig();
  const secrets = new ManifestSecretSource(
    options.secret ? parseSecretManifests(readFixture(`secrets/${options.secret}.yaml`), options.secret) : [],
  );
  const metrics = createMetrics();
  const app = createApp({
    deps: { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS },
    metrics,
    logger: createLogger('webhook', sink),
    bodyLimit: options.bodyLimit ?? config.server.bodyLimit,
    ready: () => options.ready ?? true,
  });
  return { app, metrics, lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const decodePatch = (patch: string) => JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as jsonPatch.Operation[];

describe('POST /mutate', () => {
  it('answers a real AdmissionReview with a base64 JSONPatch, echoing apiVersion, kind and uid', async () => {
    const { app } = setup({ secret: 'complete' });
    const review = loadReview('create-session-pod');
    const res = await request(app).post('/mutate').send(review).expect(200).expect('content-type', /json/);
    expect(res.body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch' },
    });
    expect(res.body.response.warnings).toBeUndefined();
    const operations = decodePatch(res.body.response.patch);
    expect(operations.some((op) => op.path.startsWith('/metadata/managedFields'))).toBe(false);
    const pod = jsonPatch.applyPatch(structuredClone(review.request.object), operations, true, false).newDocument;
    expect(pod.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(['init-hydrate', 'state-sync']);
    expect(pod.spec.volumes[0]).toEqual({ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } });
    expect(pod.metadata.managedFields).toEqual(review.request.object.metadata.managedFields);
  });

  it('echoes a v1beta1 apiVersion', async () => {
    const { app } = setup({ secret: 'complete' });
    const review = { ...loadReview('create-session-pod'), apiVersion: 'admission.k8s.io/v1beta1' };
    const res = await request(app).post('/mutate').send(review).expect(200);
    expect(res.body.apiVersion).toBe('admission.k8s.io/v1beta1');
  });

  it('denies in response.status with code and message', async () => {
    const { app } = setup({ secret: 'incomplete' });
    const res = await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    expect(res.body.response).toEqual({
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      allowed: false,
      status: { code: 403, message: 'incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY' },
    });
  });

  it('allows with a warning and swaps PVCs when the secret is absent', async () => {
    const { app } = setup();
    const res = await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    expect(res.body.response.allowed).toBe(true);
    expect(res.body.response.warnings).toEqual(['S3 not configured: session state is ephemeral']);
    const operations = decodePatch(res.body.response.patch);
    expect(operations).toContainEqual({ op: 'remove', path: '/spec/volumes/0/persistentVolumeClaim' });
    expect(operations).toContainEqual({ op: 'add', path: '/spec/volumes/0/emptyDir', value: { sizeLimit: '10Gi' } });
  });

  it.each([
    ['UPDATE', { operation: 'UPDATE' }, 'not-create'],
    ['a non-pod kind', { kind: { group: '', version: 'v1', kind: 'Secret' } }, 'not-pod'],
    ['a subresource', { subResource: 'status' }, 'not-pod'],
  ])('allows %s without a patch', async (_name, change, reason) => {
    const { app, lines } = setup({ secret: 'complete' });
    const review = loadReview('create-session-pod');
    Object.assign(review.request, change);
    const res = await request(app).post('/mutate').send(review).expect(200);
    expect(res.body.response).toEqual({ uid: review.request.uid, allowed: true });
    expect(lines().at(-1)).toMatchObject({ outcome: 'allowed', reason });
  });

  it('gives an empty patch on reinvocation', async () => {
    const { app } = setup({ secret: 'complete' });
    const review = loadReview('create-session-pod');
    const first = await request(app).post('/mutate').send(review).expect(200);
    review.request.object = jsonPatch.applyPatch(review.request.object, decodePatch(first.body.response.patch), true, false).newDocument;
    const second = await request(app).post('/mutate').send(review).expect(200);
    expect(second.body.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('answers 415 to a wrong content type', async () => {
    const { app } = setup();
    const res = await request(app).post('/mutate').set('content-type', 'text/plain').send('{}').expect(415);
    expect(res.text).toBe('unsupported content type "text/plain": expected application/json\n');
  });

  it('answers 400 to a body that is not JSON', async () => {
    const { app } = setup();
    const res = await request(app).post('/mutate').set('content-type', 'application/json').send('{"apiVersion":').expect(400);
    expect(res.text).toBe('malformed AdmissionReview: body is not valid JSON\n');
  });

  it.each([
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'malformed AdmissionReview: request: Invalid input: expected object, received undefined\n'],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } }, 'malformed AdmissionReview: request.uid: Invalid input: expected string, received undefined\n'],
    ['a JSON array', [], 'malformed AdmissionReview: (root): Invalid input: expected object, received array\n'],
  ])('answers 400 to a review with %s', async (_name, body, message) => {
    const { app } = setup();
    const res = await request(app).post('/mutate').send(body).expect(400);
    expect(res.text).toBe(message);
  });

  it('answers 400 to a pod CREATE without the pod', async () => {
    const { app } = setup();
    const review = loadReview('create-session-pod');
    delete review.request.object;
    const res = await request(app).post('/mutate').send(review).expect(400);
    expect(res.text).toBe('malformed AdmissionReview (uid 705ab4f5-6393-11e8-b7cc-42010a800002): request.object: a CREATE of a Pod must carry the pod\n');
  });

  // The API server only sends well-typed pods, but any client can post to /mutate, and a
  // mistyped field once crashed the mutation halfway into an HTTP 500.
  it.each([
    ['spec.containers a string', (pod: any) => (pod.spec.containers = 'x'), 'request.object.spec.containers: Invalid input: expected array, received string'],
    ['spec.volumes an object', (pod: any) => (pod.spec.volumes = {}), 'request.object.spec.volumes: Invalid input: expected array, received object'],
    ['spec.volumes [null]', (pod: any) => (pod.spec.volumes = [null]), 'request.object.spec.volumes.0: Invalid input: expected object, received null'],
    ['a numeric subPath', (pod: any) => (pod.spec.containers[0].volumeMounts[1].subPath = 7), 'request.object.spec.containers.0.volumeMounts.1.subPath: Invalid input: expected string, received number'],
    ['a numeric annotation', (pod: any) => (pod.metadata.annotations = { 'ambient-code.io/session-storage': 1 }), 'request.object.metadata.annotations.ambient-code.io/session-storage: Invalid input: expected string, received number'],
    ['metadata an array', (pod: any) => (pod.metadata = []), 'request.object.metadata: Invalid input: expected object, received array'],
    ['a string grace period', (pod: any) => (pod.spec.terminationGracePeriodSeconds = '60'), 'request.object.spec.terminationGracePeriodSeconds: Invalid input: expected number, received string'],
  ])('answers 400 naming the field and echoing the uid to a pod with %s, and logs it', async (_name, change, problem) => {
    const { app, lines } = setup({ secret: 'complete' });
    const review = loadReview('create-session-pod');
    change(review.request.object);
    const res = await request(app).post('/mutate').send(review).expect(400);
    expect(res.text).toBe(`malformed AdmissionReview (uid ${review.request.uid}): ${problem}\n`);
    expect(lines().at(-1)).toMatchObject({ outcome: 'rejected', reason: 'malformed-review', code: 400, uid: review.request.uid });
  });

  // What the API server sends is read by the webhook's own lean path, anything else by
  // express.json: both must give the same answers, byte for byte.
  const contentTypes = ['application/json', 'application/json; charset=utf-8'];

  it.each(contentTypes)('answers the same bytes for a review sent as %s, with or without a byte order mark', async (type) => {
    const { app } = setup({ secret: 'complete' });
    const text = JSON.stringify(loadReview('create-session-pod'));
    const plain = await request(app).post('/mutate').set('content-type', 'application/json').send(text).expect(200);
    const res = await request(app).post('/mutate').set('content-type', type).send(text).expect(200);
    const bom = await request(app).post('/mutate').set('content-type', type).send(`\uFEFF${text}`).expect(200);
    expect(res.text).toBe(plain.text);
    expect(bom.text).toBe(plain.text);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(plain.text)));
  });

  it.each(contentTypes.flatMap((type) => ['"x"', 'null', '7', ' [1', '{"a":1}x'].map((body) => [type, body])))(
    'answers 400 to a %s body %s that is not a JSON object or array',
    async (type, body) => {
      const { app } = setup();
      const res = await request(app).post('/mutate').set('content-type', type).send(body).expect(400);
      expect(res.text).toBe('malformed AdmissionReview: body is not valid JSON\n');
    },
  );

  it('answers 413 past the body limit', async () => {
    const { app } = setup({ bodyLimit: '2kb' });
    const res = await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(413);
    expect(res.text).toBe('request body exceeds the 2kb limit\n');
  });

  it('answers 413 past the body limit for a body express.json reads', async () => {
    const { app } = setup({ bodyLimit: '2kb' });
    const res = await request(app).post('/mutate').set('content-type', 'application/json; charset=utf-8').send(JSON.stringify(loadReview('create-session-pod'))).expect(413);
    expect(res.text).toBe('request body exceeds the 2kb limit\n');
  });

  it('logs one line per decision, without any secret value', async () => {
    const { app, lines } = setup({ secret: 'complete' });
    await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    const logged = lines();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      msg: 'admission decision',
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      namespace: 'project-a',
      pod: 'sess-7f3a-runner',
      outcome: 'patched',
      reason: 's3-configured',
    });
    const text = JSON.stringify(logged);
    expect(text).not.toContain('AKIAEXAMPLEACCESSKEY');
    expect(text).not.toContain('wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY');
  });
});

describe('health, readiness and metrics', () => {
  it('/healthz answers while /readyz waits for readiness', async () => {
    await request(setup({ ready: false }).app).get('/healthz').expect(200, 'ok');
    await request(setup({ ready: false }).app).get('/readyz').expect(503, 'not ready');
    await request(setup({ ready: true }).app).get('/readyz').expect(200, 'ready');
  });

  // The kubelet probes the plain-HTTP port: no certificate yet means not ready, never dead.
  it('the metrics port answers /healthz always and /readyz from the same readiness', async () => {
    const { metrics } = setup({});
    await request(createMetricsApp(metrics, () => false)).get('/healthz').expect(200, 'ok');
    await request(createMetricsApp(metrics, () => false)).get('/readyz').expect(503, 'not ready');
    await request(createMetricsApp(metrics, () => true)).get('/readyz').expect(200, 'ready');
  });

  it('/metrics, on its own port only, counts reviews by outcome and reason and times them', async () => {
    const { app, metrics } = setup({ secret: 'incomplete' });
    await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    await request(app).post('/mutate').set('content-type', 'text/plain').send('x').expect(415);
    await request(app).get('/metrics').expect(404);
    const res = await request(createMetricsApp(metrics, () => true)).get('/metrics').expect(200);
    expect(res.text).toContain('session_storage_webhook_reviews_total{outcome="denied",reason="incomplete"} 1');
    expect(res.text).toContain('session_storage_webhook_reviews_total{outcome="rejected",reason="unsupported-media-type"} 1');
    expect(res.text).toContain('session_storage_webhook_review_duration_seconds_count{outcome="denied"} 1');
    expect(res.text).toContain('# TYPE session_storage_webhook_secret_cache_total counter');
  });
});
