import {
  bucketProblem,
  endpointProblem,
  parseCredentialMode,
  parseEncryption,
  regionProblem,
  SettingsError,
  type CredentialMode,
} from '../../shared/agent-env.js';
import type { SecretSummary } from './secret-summary.js';
import { STORAGE_MODE_KEY, STORAGE_MODES, type S3Key } from './names.js';

export type FailurePolicy = 'deny' | 'ephemeral';

export interface S3Policy {
  /** incomplete or invalid S3 settings */
  onIncomplete: FailurePolicy;
  /** the secret could not be read (API error, RBAC, timeout) */
  onSecretError: FailurePolicy;
}

export type S3Reason =
  | 's3-configured'
  | 'secret-absent'
  | 's3-not-configured'
  | 's3-disabled'
  | 'storage-mode-shared'
  | 'incomplete'
  | 'invalid'
  | 'secret-error';

/** Where the agent's credentials come from, and which of the optional keys the secret holds (absent: the access keys alone). */
export interface CredentialChoice {
  mode: CredentialMode;
  sessionToken: boolean;
  roleArn: boolean;
  stsEndpoint: boolean;
}

export type S3Decision =
  | { kind: 'sync'; reason: 's3-configured'; hasRegion: boolean; credentials?: CredentialChoice }
  | { kind: 'ephemeral'; reason: S3Reason; warning: string }
  | { kind: 'deny'; reason: S3Reason; message: string };

export const MESSAGES = {
  absent: 'S3 not configured: session state is ephemeral',
  // Under the 120 characters past which the API server may truncate a warning.
  shared: 'S3 not configured: session state is ephemeral (STORAGE_MODE=shared; use custom with S3_* keys)',
  disabled: 'S3 disabled in project settings',
  incomplete: (missing: readonly S3Key[]) => `incomplete S3 configuration: missing ${missing.join(', ')}`,
  invalid: (problems: readonly string[]) => `invalid S3 configuration: ${problems.join('; ')}`,
  readError: (reason: string) => `failed to read project secret: ${reason}`,
} as const;

// Fixed order, so the message is stable whatever order the secret lists its keys in. A
// workload identity needs no keys: only what it names is required.
const REQUIRED: Record<CredentialMode, readonly S3Key[]> = {
  keys: ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY', 'S3_SECRET_KEY'],
  'workload-identity': ['S3_ENDPOINT', 'S3_BUCKET'],
};
// An IAM role, on AWS (arn:aws:iam::123456789012:role/x) or MinIO (arn:minio:iam:::role/x).
const ROLE_ARN = /^arn:[a-z-]+:iam:[a-z0-9-]*:[0-9]*:role\/[\w+=,.@/-]+$/;

/** The decision table (README "Webhook decisions"), from what is known about the namespace's secret. */
export function decideS3(summary: SecretSummary, policy: S3Policy): S3Decision {
  if (summary.kind === 'absent') {
    return { kind: 'ephemeral', reason: 'secret-absent', warning: MESSAGES.absent };
  }
  if (summary.kind === 'error') {
    return failure(policy.onSecretError, 'secret-error', MESSAGES.readError(summary.reason));
  }
  return notAskedFor(summary, policy) ?? configured(summary, policy);
}

type PresentSummary = Extract<SecretSummary, { kind: 'present' }>;

/** The decision when the project has not asked for S3 (or said so in a way that cannot be read). */
function notAskedFor({ present, values }: PresentSummary, policy: S3Policy): S3Decision | undefined {
  const mode = values[STORAGE_MODE_KEY];
  if (mode !== undefined && !(STORAGE_MODES as readonly string[]).includes(mode)) {
    return failure(
      policy.onIncomplete,
      'invalid',
      MESSAGES.invalid([`${STORAGE_MODE_KEY} must be ${STORAGE_MODES.map((m) => `"${m}"`).join(' or ')} (got "${mode}")`]),
    );
  }
  // "shared" is the platform's cluster-wide storage, whose credentials live outside the
  // project and never reach this webhook. The platform ignores S3_* keys in this mode, so
  // keys left over from an earlier custom setup must not be used either.
  if (mode === 'shared') {
    return { kind: 'ephemeral', reason: 'storage-mode-shared', warning: MESSAGES.shared };
  }
  // The secret holds every non-Vertex integration; one without any S3 key has simply not
  // been set up for S3, which is the "not configured" row, not an incomplete one. A
  // project that chose "custom" has asked for S3, so missing keys are incomplete there.
  if (present.size === 0 && mode !== 'custom') {
    return { kind: 'ephemeral', reason: 's3-not-configured', warning: MESSAGES.absent };
  }
  const enabled = values.S3_ENABLED;
  if (enabled === undefined) return undefined;
  const parsed = parseBoolean(enabled);
  if (parsed === undefined) {
    return failure(policy.onIncomplete, 'invalid', MESSAGES.invalid([`S3_ENABLED must be "true" or "false" (got "${enabled}")`]));
  }
  return parsed ? undefined : { kind: 'ephemeral', reason: 's3-disabled', warning: MESSAGES.disabled };
}

/** The decision for a project that asked for S3: sync, or why its settings cannot work. */
function configured(summary: PresentSummary, policy: S3Policy): S3Decision {
  const { present, values } = summary;
  let credentialMode: CredentialMode;
  try {
    credentialMode = parseCredentialMode(values.S3_CREDENTIALS);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    return failure(policy.onIncomplete, 'invalid', MESSAGES.invalid([error.message]));
  }
  const missing = REQUIRED[credentialMode].filter((key) => !present.has(key));
  if (missing.length > 0) {
    return failure(policy.onIncomplete, 'incomplete', MESSAGES.incomplete(missing));
  }
  const problems = settingProblems(summary, credentialMode);
  if (problems.length > 0) {
    return failure(policy.onIncomplete, 'invalid', MESSAGES.invalid(problems));
  }
  const credentials: CredentialChoice = {
    mode: credentialMode,
    sessionToken: present.has('S3_SESSION_TOKEN'),
    roleArn: values.S3_ROLE_ARN !== undefined,
    stsEndpoint: values.S3_STS_ENDPOINT !== undefined,
  };
  const keysAlone = credentialMode === 'keys' && !credentials.sessionToken;
  return { kind: 'sync', reason: 's3-configured', hasRegion: values.S3_REGION !== undefined, ...(keysAlone ? {} : { credentials }) };
}

// Every value checked, so the denial names them all at once.
function settingProblems({ present, values }: PresentSummary, credentialMode: CredentialMode): string[] {
  return [
    endpointProblem(values.S3_ENDPOINT ?? ''),
    bucketProblem(values.S3_BUCKET ?? ''),
    values.S3_REGION === undefined ? undefined : regionProblem(values.S3_REGION),
    encryptionProblem(values.S3_SSE, values.S3_SSE_KMS_KEY_ID),
    values.S3_STS_ENDPOINT === undefined ? undefined : endpointProblem(values.S3_STS_ENDPOINT)?.replace('S3_ENDPOINT', 'S3_STS_ENDPOINT'),
    values.S3_ROLE_ARN === undefined || ROLE_ARN.test(values.S3_ROLE_ARN)
      ? undefined
      : `S3_ROLE_ARN "${values.S3_ROLE_ARN}" is not an IAM role ARN (like arn:aws:iam::123456789012:role/sessions)`,
    credentialMode === 'keys' && (values.S3_ROLE_ARN !== undefined || values.S3_STS_ENDPOINT !== undefined)
      ? 'S3_ROLE_ARN and S3_STS_ENDPOINT are used only with S3_CREDENTIALS=workload-identity'
      : undefined,
    credentialMode === 'workload-identity' && present.has('S3_SESSION_TOKEN')
      ? 'S3_SESSION_TOKEN goes with access keys, not with S3_CREDENTIALS=workload-identity'
      : undefined,
  ].filter((problem): problem is string => problem !== undefined);
}

// The agent reads these from the same secret at start and refuses a bad value: checked
// here, a typo denies the pod with its name instead of leaving it stuck in Init.
function encryptionProblem(sse: string | undefined, kmsKeyId: string | undefined): string | undefined {
  try {
    parseEncryption(sse, kmsKeyId);
    return undefined;
  } catch (error) {
    if (error instanceof SettingsError) return error.message;
    throw error;
  }
}

function failure(policy: FailurePolicy, reason: S3Reason, message: string): S3Decision {
  return policy === 'deny'
    ? { kind: 'deny', reason, message }
    : { kind: 'ephemeral', reason, warning: `${message}: session state is ephemeral` };
}

function parseBoolean(value: string): boolean | undefined {
  const normalized = value.trim().toLowerCase();
  if (normalized === 'true') return true;
  if (normalized === 'false') return false;
  return undefined;
}
