import type { V1Pod } from '@kubernetes/client-node';
import * as z from 'zod';
import { admitPod, type AdmissionDeps } from './admission.js';
import { diffPatch } from './json-patch.js';
import type { MutationResult } from '../mutation/mutate.js';
import { podShapeProblem } from './pod-shape.js';

const reviewSchema = z.object({
  apiVersion: z.enum(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string(),
    namespace: z.string().optional(),
    subResource: z.string().optional(),
    object: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
});

export class BadReview extends Error {
  /** the request's uid, when the review got far enough to carry one */
  constructor(
    message: string,
    readonly uid?: string,
  ) {
    super(uid === undefined ? `malformed AdmissionReview: ${message}` : `malformed AdmissionReview (uid ${uid}): ${message}`);
  }
}

export interface ReviewOutcome {
  /** allowed (no patch), patched, or denied */
  outcome: 'allowed' | 'patched' | 'denied';
  reason: string;
  uid: string;
  namespace: string;
  podName: string;
  warnings: string[];
  message?: string;
  response: unknown;
}

/** AdmissionReview in, AdmissionReview out; throws BadReview on a malformed request. */
export async function reviewAdmission(body: unknown, deps: AdmissionDeps): Promise<ReviewOutcome> {
  const { apiVersion, request } = parseReview(body);
  // Checked before anything reads it, so a mistyped field is a 400, never a crash.
  const shapeProblem = request.object ? podShapeProblem(request.object) : undefined;
  const pod = request.object as V1Pod | null | undefined;
  const metadata = shapeProblem === undefined ? pod?.metadata : undefined;
  const namespace = request.namespace ?? metadata?.namespace ?? '';
  const podName = metadata?.name ?? (metadata?.generateName ? `${metadata.generateName}*` : '');
  const base = { uid: request.uid, namespace, podName, warnings: [] as string[] };
  const reply = (response: Record<string, unknown>) => ({
    apiVersion,
    kind: 'AdmissionReview',
    response: { uid: request.uid, ...response },
  });

  if (request.kind.kind !== 'Pod' || request.kind.group !== '' || request.subResource) {
    return { ...base, outcome: 'allowed', reason: 'not-pod', response: reply({ allowed: true }) };
  }
  if (request.operation !== 'CREATE') {
    return { ...base, outcome: 'allowed', reason: 'not-create', response: reply({ allowed: true }) };
  }
  if (pod === null || pod === undefined) {
    throw new BadReview('request.object: a CREATE of a Pod must carry the pod', request.uid);
  }
  if (shapeProblem !== undefined) throw new BadReview(`request.object.${shapeProblem}`, request.uid);
  return answerFor(pod, await admitPod(pod, namespace, deps), base, reply);
}

function parseReview(body: unknown): z.infer<typeof reviewSchema> {
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadReview(issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid', uidOf(body));
  }
  return parsed.data;
}

/** The review's outcome for a pod admitPod decided on: denied, allowed as it is, or patched. */
function answerFor(
  pod: V1Pod,
  result: MutationResult,
  base: Pick<ReviewOutcome, 'uid' | 'namespace' | 'podName' | 'warnings'>,
  reply: (response: Record<string, unknown>) => unknown,
): ReviewOutcome {
  const warnings = result.warnings.length > 0 ? { warnings: result.warnings } : {};
  if (result.outcome === 'denied') {
    return {
      ...base,
      outcome: 'denied',
      reason: result.reason,
      message: result.message,
      response: reply({ allowed: false, status: { code: 403, message: result.message } }),
    };
  }
  const patch = diffPatch(withoutManagedFields(pod), withoutManagedFields(result.pod));
  if (patch.length === 0) {
    return {
      ...base,
      outcome: 'allowed',
      reason: result.reason,
      warnings: result.warnings,
      response: reply({ allowed: true, ...warnings }),
    };
  }
  return {
    ...base,
    outcome: 'patched',
    reason: result.reason,
    warnings: result.warnings,
    response: reply({
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      ...warnings,
    }),
  };
}

/**
 * JSON.stringify(response), byte for byte. The patch is base64 (made above), which JSON
 * writes as it is: it is spliced in rather than scanned for characters to escape, the
 * largest part of serialising an answer. `"patch":""` can only occur as that key, since
 * every quote inside a JSON string value is escaped.
 */
export function reviewJson(response: unknown): string {
  const patch = (response as { response?: { patch?: unknown } }).response?.patch;
  if (typeof patch !== 'string') return JSON.stringify(response);
  const envelope = response as { response: Record<string, unknown> };
  const json = JSON.stringify({ ...envelope, response: { ...envelope.response, patch: '' } });
  return json.replace('"patch":""', () => `"patch":"${patch}"`);
}

// managedFields is server bookkeeping; diffing it would only add noise to the patch.
function withoutManagedFields(pod: V1Pod): V1Pod {
  if (pod.metadata?.managedFields === undefined) return pod;
  const { managedFields: _dropped, ...metadata } = pod.metadata;
  return { ...pod, metadata };
}

function uidOf(body: unknown): string | undefined {
  const uid = (body as { request?: { uid?: unknown } } | null)?.request?.uid;
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}
