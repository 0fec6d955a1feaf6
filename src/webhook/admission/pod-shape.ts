import * as z from 'zod';

// The parts of a pod the mutation reads, with the types it relies on. The API server only
// ever sends well-typed pods; anything else (a hand-made review, an `inject` input) must
// be refused with a message rather than crash the mutation halfway. Other fields are not
// looked at and pass through untouched.
const stringMap = z.record(z.string(), z.string());
const id = z.number().int().nonnegative();
const identity = z.object({ runAsUser: id.optional(), runAsGroup: id.optional() });

const container = z.object({
  name: z.string(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  restartPolicy: z.string().optional(),
  securityContext: identity.optional(),
  volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string().optional(), subPath: z.string().optional() })).optional(),
});

const podShape = z.object({
  metadata: z
    .object({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: stringMap.optional(),
      annotations: stringMap.optional(),
      managedFields: z.array(z.unknown()).optional(),
    })
    .optional(),
  spec: z
    .object({
      containers: z.array(container),
      initContainers: z.array(container).optional(),
      volumes: z.array(z.object({ name: z.string(), persistentVolumeClaim: z.object({}).optional() })).optional(),
      securityContext: identity.optional(),
      terminationGracePeriodSeconds: id.optional(),
    })
    .optional(),
});

/** Why `value` is not a pod the mutation can read, as `path: reason`, or undefined. */
export function podShapeProblem(value: unknown): string | undefined {
  const parsed = podShape.safeParse(value);
  if (parsed.success) return undefined;
  const issue = parsed.error.issues[0];
  return issue ? `${issue.path.join('.') || '(pod)'}: ${issue.message}` : 'not a pod';
}

