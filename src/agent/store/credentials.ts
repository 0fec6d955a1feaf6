import type { CredentialMode } from '../../shared/agent-env.js';

/*
 * The one credential chain behind every request the agent sends: the lean signer
 * (s3-endpoint.ts, which signs synchronously and so reads `current()`) and the SDK client
 * (sdk-writes.ts, which calls `get()`). Keys from the secret, with a session token when they
 * are temporary; or, in `workload-identity` mode, what the pod's identity provides: a web
 * identity token (IRSA: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, exchanged at STS) or
 * EKS Pod Identity's container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI + its token
 * file). Those expire: they are fetched again before expiry, so a long sync never signs
 * with credentials about to lapse. The SDK's providers are loaded only in that mode.
 */

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface CredentialSettings {
  credentialMode?: CredentialMode;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  // STS for web identity where it is not AWS's (MinIO, Ceph RGW): the S3 endpoint itself.
  stsEndpoint?: string;
  region: string;
}

// Fetched again this long before they expire (the SDK's own margin), and never used past it.
const REFRESH_BEFORE_MS = 5 * 60_000;

export class CredentialsUnavailableError extends Error {
  override readonly name = 'CredentialsUnavailable';
}

type Provider = () => Promise<AwsCredentials>;

// The workload's identity, as the AWS SDKs find it in the env EKS (or the webhook) set.
async function identityProvider(settings: CredentialSettings, env: NodeJS.ProcessEnv): Promise<Provider> {
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) {
    const { fromTokenFile, stsRequestHandler } = await import('./identity-providers.js');
    return fromTokenFile({
      roleSessionName: env.AWS_ROLE_SESSION_NAME || 'session-storage',
      clientConfig: {
        region: settings.region,
        requestHandler: stsRequestHandler(),
        ...(settings.stsEndpoint === undefined ? {} : { endpoint: settings.stsEndpoint }),
      },
    });
  }
  if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI) {
    const { fromHttp } = await import('./identity-providers.js');
    return fromHttp({});
  }
  throw new CredentialsUnavailableError(
    'S3_CREDENTIALS=workload-identity, but the pod has no workload identity: neither AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) nor AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity) is set',
  );
}

export class CredentialSource {
  private credentials: AwsCredentials | undefined;
  private fetching: Promise<AwsCredentials> | undefined;
  private provider: Promise<Provider> | undefined;

  constructor(
    private readonly settings: CredentialSettings,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    if (settings.credentialMode !== 'workload-identity') {
      if (!settings.accessKeyId || !settings.secretAccessKey) throw new CredentialsUnavailableError('access keys are required unless S3_CREDENTIALS=workload-identity');
      this.credentials = {
        accessKeyId: settings.accessKeyId,
        secretAccessKey: settings.secretAccessKey,
        ...(settings.sessionToken ? { sessionToken: settings.sessionToken } : {}),
      };
    }
  }

  /** Credentials valid for the next request, fetched first when they are missing or about to expire. */
  async get(): Promise<AwsCredentials> {
    const held = this.credentials;
    if (held !== undefined && !this.expiring(held)) return held;
    this.fetching ??= this.fetch().finally(() => (this.fetching = undefined));
    // Still valid for a few minutes: the requests in flight keep them while the new ones come.
    if (held !== undefined && held.expiration !== undefined && held.expiration.getTime() > Date.now()) {
      this.fetching.catch(() => undefined);
      return held;
    }
    return this.fetching;
  }

  /** The credentials the last `get()` made ready, for a signer that cannot wait. */
  current(): AwsCredentials {
    if (this.credentials === undefined) throw new CredentialsUnavailableError('credentials were not fetched before the request');
    return this.credentials;
  }

  private expiring(credentials: AwsCredentials): boolean {
    return credentials.expiration !== undefined && credentials.expiration.getTime() - Date.now() < REFRESH_BEFORE_MS;
  }

  private async fetch(): Promise<AwsCredentials> {
    this.provider ??= identityProvider(this.settings, this.env);
    const provider = await this.provider;
    let fetched: AwsCredentials;
    try {
      fetched = await provider();
    } catch (error) {
      // STS refusing the token (wrong audience, untrusted issuer, no such role) is as
      // permanent as a wrong key; a connection failure stays one (s3-errors.ts reads the cause).
      throw new CredentialsUnavailableError(`the workload identity was refused: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.credentials = {
      accessKeyId: fetched.accessKeyId,
      secretAccessKey: fetched.secretAccessKey,
      ...(fetched.sessionToken ? { sessionToken: fetched.sessionToken } : {}),
      ...(fetched.expiration ? { expiration: fetched.expiration } : {}),
    };
    return this.credentials;
  }
}
