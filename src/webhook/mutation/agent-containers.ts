import type { V1Container, V1EnvVar, V1SecurityContext, V1Volume } from '@kubernetes/client-node';
import type { MutationConfig } from '../config/config.js';
import type { CredentialChoice } from '../config/s3-settings.js';
import { AGENT_ENV } from '../../shared/agent-env.js';
import {
  AGENT_STATE_DIR,
  AGENT_STATE_VOLUME,
  AGENT_TMP_VOLUME,
  AGENT_TOKEN_VOLUME,
  AGENT_CA_VOLUME,
  HYDRATE_CONTAINER,
  INTEGRATION_SECRET,
  type S3Key,
  SYNC_CONTAINER,
  WORKSPACE_DIR,
} from '../config/names.js';
import { livenessProbeTiming, unhealthyAfterSeconds } from '../../shared/liveness.js';

export interface AgentSpecInput {
  config: MutationConfig;
  session: string;
  /** name of the pod volume holding the session's state */
  stateVolume: string;
  /** SYNC_PATHS after mapping `.claude` to the runner's subPath, checked by the agent's parser */
  syncPaths: string;
  /** whether the secret has S3_REGION; otherwise the configured default is used */
  secretHasRegion: boolean;
  /** absent: the secret's access keys alone */
  credentials?: CredentialChoice;
  /** undefined: no fixed uid (what the SCC assigns, or the image's USER) */
  runAsUser: number | undefined;
  runAsGroup: number | undefined;
  /** 0 when the pod already uses the configured port */
  metricsPort: number;
  /** the swapped workspace's sizeLimit, requested as ephemeral storage so the scheduler reserves it */
  reservedStorage: string | undefined;
  /** the pod's terminationGracePeriodSeconds after the mutation: how long the session's next pod waits for this one */
  terminationGraceSeconds: number;
}

export const SYNC_METRICS_PORT_NAME = 'sync-metrics';

export interface AgentSpecs {
  hydrate: V1Container;
  sync: V1Container;
  volumes: V1Volume[];
}

// The only place the injected containers are described. The env they carry follows the
// contract of src/shared/agent-env.ts; every value was checked with the agent's parsers.
export function buildAgentSpecs(input: AgentSpecInput): AgentSpecs {
  const { config } = input;
  // A factory rather than one object cloned twice: each container gets its own fresh
  // objects, and building them costs far less than structuredClone (docs/BENCHMARKS.md).
  const container = (name: string, args: string[]): V1Container => ({
    name,
    image: config.agentImage,
    imagePullPolicy: config.agentImagePullPolicy,
    env: agentEnv(input),
    resources: {
      requests: { ...config.resources.requests },
      limits: { ...config.resources.limits },
    },
    securityContext: securityContext(input.runAsUser, input.runAsGroup),
    volumeMounts: [
      { name: input.stateVolume, mountPath: WORKSPACE_DIR },
      { name: AGENT_STATE_VOLUME, mountPath: AGENT_STATE_DIR },
      { name: AGENT_TMP_VOLUME, mountPath: '/tmp' },
      ...(ownToken(input) ? [{ name: AGENT_TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }] : []),
      ...(config.agentNetwork.caConfigMap === undefined ? [] : [{ name: AGENT_CA_VOLUME, mountPath: CA_DIR, readOnly: true }]),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
    args,
  });
  const hydrate = container(HYDRATE_CONTAINER, ['hydrate']);
  const sync = container(SYNC_CONTAINER, ['sync']);
  if (config.sidecarMode === 'native') sync.restartPolicy = 'Always';
  if (input.reservedStorage !== undefined) {
    sync.resources!.requests = { ...sync.resources!.requests, 'ephemeral-storage': input.reservedStorage };
  }
  if (input.metricsPort > 0) {
    sync.env!.push(
      { name: AGENT_ENV.SYNC_METRICS_PORT, value: String(input.metricsPort) },
      { name: AGENT_ENV.SYNC_UNHEALTHY_MIN_SECONDS, value: String(config.syncUnhealthyMinSeconds) },
    );
    sync.ports = [{ name: SYNC_METRICS_PORT_NAME, containerPort: input.metricsPort, protocol: 'TCP' }];
    // /healthz fails once no sync cycle has succeeded for 5 intervals (at least
    // SYNC_UNHEALTHY_MIN_SECONDS) and none is running: three failed probes restart the
    // sidecar, which the pod's events and restart count show. A readiness probe would take
    // the whole pod out of its Services.
    sync.livenessProbe = {
      httpGet: { path: '/healthz', port: SYNC_METRICS_PORT_NAME },
      ...livenessProbeTiming(unhealthyAfterSeconds(config.syncInterval, config.syncUnhealthyMinSeconds)),
    };
  }
  return {
    hydrate,
    sync,
    volumes: [
      { name: AGENT_STATE_VOLUME, emptyDir: { sizeLimit: '64Mi' } },
      { name: AGENT_TMP_VOLUME, emptyDir: { sizeLimit: '512Mi' } },
      ...(ownToken(input) ? [tokenVolume()] : []),
      ...(config.agentNetwork.caConfigMap === undefined
        ? []
        : [{ name: AGENT_CA_VOLUME, configMap: { name: config.agentNetwork.caConfigMap, items: [{ key: config.agentNetwork.caKey, path: 'ca.crt' }] } }]),
    ],
  };
}

// IRSA's conventions: a ServiceAccount token for STS's audience, which the kubelet renews
// (at 80% of its life) and the agent reads again at each exchange.
const TOKEN_DIR = '/var/run/secrets/session-storage/serviceaccount';
const TOKEN_AUDIENCE = 'sts.amazonaws.com';

// With S3_ROLE_ARN the webhook gives the agent its own web identity token; without it, the
// workload identity is the one EKS (IRSA or Pod Identity) puts in the pod's containers.
function ownToken(input: AgentSpecInput): boolean {
  return input.credentials?.mode === 'workload-identity' && input.credentials.roleArn;
}

function tokenVolume(): V1Volume {
  return {
    name: AGENT_TOKEN_VOLUME,
    projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }] },
  };
}

// Node adds NODE_EXTRA_CA_CERTS to its trusted CAs at start, for every request the agent
// makes (the lean client, the SDK, STS, the container credentials endpoint).
const CA_DIR = '/etc/session-storage/ca';

function networkEnv(network: MutationConfig['agentNetwork']): V1EnvVar[] {
  return [
    ...(network.caConfigMap === undefined ? [] : [{ name: AGENT_ENV.NODE_EXTRA_CA_CERTS, value: `${CA_DIR}/ca.crt` }]),
    ...(network.httpsProxy === undefined ? [] : [{ name: AGENT_ENV.HTTPS_PROXY, value: network.httpsProxy }]),
    ...(network.httpProxy === undefined ? [] : [{ name: AGENT_ENV.HTTP_PROXY, value: network.httpProxy }]),
    ...(network.noProxy === undefined ? [] : [{ name: AGENT_ENV.NO_PROXY, value: network.noProxy }]),
  ];
}

// Only what the chosen mode needs: never a key reference without keys.
function credentialEnv(input: AgentSpecInput): V1EnvVar[] {
  const choice = input.credentials;
  if (choice?.mode !== 'workload-identity') {
    return [
      secretRef(AGENT_ENV.AWS_ACCESS_KEY_ID, 'S3_ACCESS_KEY'),
      secretRef(AGENT_ENV.AWS_SECRET_ACCESS_KEY, 'S3_SECRET_KEY'),
      ...(choice?.sessionToken ? [secretRef(AGENT_ENV.AWS_SESSION_TOKEN, 'S3_SESSION_TOKEN')] : []),
    ];
  }
  return [
    { name: AGENT_ENV.S3_CREDENTIALS, value: 'workload-identity' },
    ...(choice.stsEndpoint ? [secretRef(AGENT_ENV.S3_STS_ENDPOINT, 'S3_STS_ENDPOINT')] : []),
    ...(choice.roleArn
      ? [secretRef(AGENT_ENV.AWS_ROLE_ARN, 'S3_ROLE_ARN'), { name: AGENT_ENV.AWS_WEB_IDENTITY_TOKEN_FILE, value: `${TOKEN_DIR}/token` }]
      : []),
  ];
}

function secretRef(name: string, key: S3Key): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: INTEGRATION_SECRET, key } } };
}

// A key the secret may lack: the container still starts, without the variable.
function optionalSecretRef(name: string, key: S3Key): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: INTEGRATION_SECRET, key, optional: true } } };
}

function agentEnv(input: AgentSpecInput): V1EnvVar[] {
  const { config } = input;
  return [
    secretRef(AGENT_ENV.S3_ENDPOINT, 'S3_ENDPOINT'),
    secretRef(AGENT_ENV.S3_BUCKET, 'S3_BUCKET'),
    input.secretHasRegion
      ? secretRef(AGENT_ENV.S3_REGION, 'S3_REGION')
      : { name: AGENT_ENV.S3_REGION, value: config.defaultRegion },
    ...credentialEnv(input),
    // Server-side encryption of what the agent writes; without them the bucket's default.
    optionalSecretRef(AGENT_ENV.S3_SSE, 'S3_SSE'),
    optionalSecretRef(AGENT_ENV.S3_SSE_KMS_KEY_ID, 'S3_SSE_KMS_KEY_ID'),
    { name: AGENT_ENV.NAMESPACE, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    // The session's owner pod is named by its UID (a recreated pod may reuse the name).
    { name: AGENT_ENV.POD_UID, valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
    { name: AGENT_ENV.POD_NAME, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: AGENT_ENV.SESSION_NAME, value: input.session },
    { name: AGENT_ENV.WORKSPACE_DIR, value: WORKSPACE_DIR },
    { name: AGENT_ENV.SYNC_PATHS, value: input.syncPaths },
    { name: AGENT_ENV.SYNC_EXCLUDE, value: config.syncExclude },
    { name: AGENT_ENV.SYNC_INTERVAL, value: String(config.syncInterval) },
    { name: AGENT_ENV.SYNC_DEBOUNCE_SECONDS, value: String(config.syncDebounceSeconds) },
    { name: AGENT_ENV.MAX_SYNC_SIZE, value: config.maxSyncSize },
    { name: AGENT_ENV.HYDRATE_TIMEOUT_SECONDS, value: String(config.hydrateTimeoutSeconds) },
    { name: AGENT_ENV.FINAL_SYNC_TIMEOUT_SECONDS, value: String(config.finalSyncTimeoutSeconds) },
    { name: AGENT_ENV.TERMINATION_GRACE_SECONDS, value: String(input.terminationGraceSeconds) },
    ...(config.refreshAfterDays === undefined ? [] : [{ name: AGENT_ENV.REFRESH_AFTER_DAYS, value: config.refreshAfterDays }]),
    { name: AGENT_ENV.AGENT_STATE_DIR, value: AGENT_STATE_DIR },
    ...networkEnv(config.agentNetwork),
  ];
}

// Pod Security "restricted" plus a read-only root: the agent writes only to its mounts.
function securityContext(runAsUser: number | undefined, runAsGroup: number | undefined): V1SecurityContext {
  return {
    runAsNonRoot: true,
    ...(runAsUser === undefined ? {} : { runAsUser }),
    ...(runAsGroup === undefined ? {} : { runAsGroup }),
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
