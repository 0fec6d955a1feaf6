import type {
  CaSecretData,
  CaSecretStore,
  VersionedSecret,
  WebhookCaBundles,
  WebhookConfigStore,
} from '../../../src/webhook/ca/stores.js';

// In-memory stand-ins with the API server's optimistic-concurrency semantics (create
// conflicts, resourceVersion preconditions), for the rotation logic's unit tests. The
// Kubernetes implementations are exercised against the real API server in test/e2e.

export class MemorySecretStore implements CaSecretStore {
  secret: VersionedSecret | undefined;
  writes = 0;
  private version = 0;

  async read(): Promise<VersionedSecret | undefined> {
    return this.secret && structuredClone(this.secret);
  }

  async create(data: CaSecretData): Promise<boolean> {
    if (this.secret) return false;
    this.store(data);
    return true;
  }

  async replace(data: CaSecretData, resourceVersion: string): Promise<boolean> {
    if (!this.secret || this.secret.resourceVersion !== resourceVersion) return false;
    this.store(data);
    return true;
  }

  private store(data: CaSecretData): void {
    this.writes++;
    this.secret = { data: structuredClone(data), resourceVersion: String(++this.version) };
  }
}

export class MemoryWebhookStore implements WebhookConfigStore {
  writes = 0;
  refuseWrites = false;
  private version = 1;

  constructor(public bundles: string[] = ['']) {}

  async read(): Promise<WebhookCaBundles | undefined> {
    return { resourceVersion: String(this.version), bundles: [...this.bundles] };
  }

  async writeCaBundle(caBundleB64: string, current: WebhookCaBundles): Promise<boolean> {
    if (this.refuseWrites || current.resourceVersion !== String(this.version)) return false;
    this.writes++;
    this.version++;
    this.bundles = this.bundles.map(() => caBundleB64);
    return true;
  }

  decoded(): string[] {
    return this.bundles.map((b) => Buffer.from(b, 'base64').toString('utf8'));
  }
}
