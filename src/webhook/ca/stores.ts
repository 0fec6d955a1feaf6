import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';

// The two Kubernetes objects the self-managed CA touches, behind interfaces so the
// rotation logic is tested without a server (the e2e drives the real implementations).

export type CaSecretData = Record<string, string>;

export interface VersionedSecret {
  data: CaSecretData;
  resourceVersion: string;
}

export interface CaSecretStore {
  read(): Promise<VersionedSecret | undefined>;
  /** false when another replica created it first */
  create(data: CaSecretData): Promise<boolean>;
  /** false when another replica changed it since `resourceVersion` */
  replace(data: CaSecretData, resourceVersion: string): Promise<boolean>;
}

export interface WebhookCaBundles {
  resourceVersion: string;
  /** caBundle of each webhook, base64 as stored ('' when unset) */
  bundles: string[];
}

export interface WebhookConfigStore {
  read(): Promise<WebhookCaBundles | undefined>;
  /** Sets every webhook's caBundle; false when the object changed since `resourceVersion`. */
  writeCaBundle(caBundleB64: string, current: WebhookCaBundles): Promise<boolean>;
}

function status(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const unb64 = (text: string) => Buffer.from(text, 'base64').toString('utf8');

export class KubeCaSecretStore implements CaSecretStore {
  private readonly api: CoreV1Api;

  constructor(kubeConfig: KubeConfig, private readonly namespace: string, private readonly name: string) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  async read(): Promise<VersionedSecret | undefined> {
    try {
      const secret = await this.api.readNamespacedSecret({ name: this.name, namespace: this.namespace });
      const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, unb64(v)]));
      return { data, resourceVersion: secret.metadata?.resourceVersion ?? '' };
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  async create(data: CaSecretData): Promise<boolean> {
    try {
      await this.api.createNamespacedSecret({ namespace: this.namespace, body: this.body(data) });
      return true;
    } catch (error) {
      if (status(error) === 409) return false;
      throw error;
    }
  }

  async replace(data: CaSecretData, resourceVersion: string): Promise<boolean> {
    try {
      const body: V1Secret = this.body(data);
      body.metadata = { ...body.metadata, resourceVersion };
      await this.api.replaceNamespacedSecret({ name: this.name, namespace: this.namespace, body });
      return true;
    } catch (error) {
      if (status(error) === 409) return false;
      throw error;
    }
  }

  private body(data: CaSecretData): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/name': 'session-storage-webhook', 'app.kubernetes.io/component': 'ca' },
      },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    };
  }
}

export class KubeWebhookConfigStore implements WebhookConfigStore {
  private readonly api: AdmissionregistrationV1Api;

  constructor(kubeConfig: KubeConfig, private readonly name: string) {
    this.api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  }

  async read(): Promise<WebhookCaBundles | undefined> {
    try {
      const config = await this.api.readMutatingWebhookConfiguration({ name: this.name });
      return {
        resourceVersion: config.metadata?.resourceVersion ?? '',
        bundles: (config.webhooks ?? []).map((w) => w.clientConfig.caBundle ?? ''),
      };
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  async writeCaBundle(caBundleB64: string, current: WebhookCaBundles): Promise<boolean> {
    // The resourceVersion test makes the patch conditional: of several replicas racing
    // with the same read, exactly one write lands; the others re-read next round.
    const body = [
      { op: 'test', path: '/metadata/resourceVersion', value: current.resourceVersion },
      ...current.bundles.map((_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundleB64 })),
    ];
    try {
      await this.api.patchMutatingWebhookConfiguration({ name: this.name, body });
      return true;
    } catch (error) {
      const code = status(error);
      if (code === 409 || code === 422) return false;
      throw error;
    }
  }
}
