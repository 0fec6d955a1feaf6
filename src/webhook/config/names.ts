// The fixed names of the design contract (README, docs/ARCHITECTURE.md): users, manifests
// and the agent depend on them.
export const SESSION_LABEL = 'agentic-session';
export const SESSION_NAME_ANNOTATION = 'ambient-code.io/session-name';
export const OPT_OUT_ANNOTATION = 'ambient-code.io/session-storage';
export const STATUS_ANNOTATION = 'ambient-code.io/session-storage-status';
/** On pods given a state-sync: what manifests/monitoring's PodMonitor selects. */
export const SYNC_LABEL = 'ambient-code.io/session-storage-sync';
export const INTEGRATION_SECRET = 'ambient-non-vertex-integrations';
/** On the namespace, set by the admin when opting in: PVCs created before it stay. */
export const STORAGE_ENABLED_AT_ANNOTATION = 'ambient-code.io/session-storage-enabled-at';
/** On a PVC whose files were copied to S3: the session they were copied under. */
export const MIGRATED_TO_ANNOTATION = 'ambient-code.io/session-storage-migrated-to';
/** On a continuation's pod: the parent session its first pod copies the saved state of. */
export const PARENT_ANNOTATION = 'ambient-code.io/session-storage-parent';

/** set by OpenShift's SCC admission, which runs before the webhooks and assigns uids */
export const OPENSHIFT_SCC_ANNOTATION = 'openshift.io/scc';
export const HYDRATE_CONTAINER = 'init-hydrate';
export const SYNC_CONTAINER = 'state-sync';
export const AGENT_STATE_VOLUME = 'session-storage-state';
export const AGENT_TMP_VOLUME = 'session-storage-tmp';
/** The projected ServiceAccount token of S3_CREDENTIALS=workload-identity with S3_ROLE_ARN. */
export const AGENT_TOKEN_VOLUME = 'session-storage-token';
/** The CA bundle of AGENT_CA_CONFIGMAP. */
export const AGENT_CA_VOLUME = 'session-storage-ca';
/** Every volume the webhook may add. */
export const AGENT_VOLUMES: readonly string[] = [AGENT_STATE_VOLUME, AGENT_TMP_VOLUME, AGENT_TOKEN_VOLUME, AGENT_CA_VOLUME];
export { AGENT_STATE_DIR, WORKSPACE_DIR } from '../../shared/agent-env.js';

export const S3_KEYS = [
  'S3_ENABLED',
  'S3_ENDPOINT',
  'S3_BUCKET',
  'S3_REGION',
  'S3_ACCESS_KEY',
  'S3_SECRET_KEY',
  'S3_SSE',
  'S3_SSE_KMS_KEY_ID',
  'S3_CREDENTIALS',
  'S3_SESSION_TOKEN',
  'S3_ROLE_ARN',
  'S3_STS_ENDPOINT',
] as const;
export type S3Key = (typeof S3_KEYS)[number];

// The platform's choice between its cluster-wide storage ("shared") and the project's own
// S3 ("custom"); the platform reads the S3_* keys only in custom mode.
export const STORAGE_MODE_KEY = 'STORAGE_MODE';
export const STORAGE_MODES = ['shared', 'custom'] as const;

// The keys whose values the webhook may keep in memory; the credentials are only ever
// recorded as present or absent.
export const NON_SECRET_KEYS = [
  'S3_ENABLED',
  'S3_ENDPOINT',
  'S3_BUCKET',
  'S3_REGION',
  'S3_SSE',
  'S3_SSE_KMS_KEY_ID',
  'S3_CREDENTIALS',
  'S3_ROLE_ARN',
  'S3_STS_ENDPOINT',
] as const;
export type NonSecretKey = (typeof NON_SECRET_KEYS)[number];
