import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../shared/kube-config.js';
import type { Logger } from '../../shared/logger.js';
import { ensureAuthority } from './authority.js';
import { publishCaBundle } from './bundle.js';
import { loadCertConfig, serviceDnsNames, type SelfManagedCertConfig } from './config.js';
import { writeKeyPair } from './files.js';
import { inspectCertificate, isSignedBy, issueCertificate, renewalDue, type CertKeyPem } from './pki.js';
import {
  KubeCaSecretStore,
  KubeWebhookConfigStore,
  type CaSecretStore,
  type WebhookConfigStore,
} from './stores.js';

export interface CertificateManager {
  stop(): void;
}

export interface SelfManagedDeps {
  secrets: CaSecretStore;
  webhooks: WebhookConfigStore;
  logger: Logger;
  writePair?: (pair: CertKeyPem) => Promise<void>;
}

/**
 * One replica's view of the self-managed certificates: the shared CA (from the Secret), the
 * caBundle of our webhook configuration, and this replica's own serving certificate.
 */
export class SelfManagedCertificates {
  private leaf: CertKeyPem | undefined;
  private readonly trustedSince = new Map<string, number>();

  constructor(
    private readonly config: SelfManagedCertConfig,
    private readonly deps: SelfManagedDeps,
  ) {}

  /** The serving certificate in use, if any. */
  servingCertificate(): CertKeyPem | undefined {
    return this.leaf;
  }

  async reconcile(now = new Date()): Promise<void> {
    const { logger } = this.deps;
    const authority = await ensureAuthority(this.deps.secrets, {
      commonName: `${this.config.service}.${this.config.namespace} webhook CA`,
      validityMs: this.config.caValidityMs,
      now,
    });
    const trusted = await publishCaBundle(this.deps.webhooks, authority.bundle, authority.current.cert, logger);
    // Right after a rotation the API servers may not trust the new CA yet (the stored
    // caBundle reaches each one through its own watch): keep signing with the previous CA
    // until the new one has been trusted for the propagation delay, so no handshake fails.
    const fingerprint = inspectCertificate(authority.current.cert).fingerprint256;
    if (!trusted) this.trustedSince.delete(fingerprint);
    else if (!this.trustedSince.has(fingerprint)) this.trustedSince.set(fingerprint, now.getTime());
    const since = this.trustedSince.get(fingerprint);
    const settled = since !== undefined && now.getTime() - since >= this.config.propagationMs;
    const signer = !settled && authority.previous ? authority.previous : authority.current;
    if (this.leaf && !renewalDue(this.leaf.cert, now) && isSignedBy(this.leaf.cert, signer.cert)) return;

    const leaf = await issueCertificate(
      signer,
      {
        commonName: `${this.config.service}.${this.config.namespace}.svc`,
        dnsNames: serviceDnsNames(this.config),
        ipAddresses: this.config.extraIpAddresses,
        usage: 'server',
        // Never outlive the CA: a chain with an expired CA fails even if the leaf is valid.
        validityMs: Math.min(
          this.config.leafValidityMs,
          inspectCertificate(signer.cert).notAfter.getTime() - now.getTime(),
        ),
      },
      now,
    );
    const write = this.deps.writePair ?? ((pair) => writeKeyPair(this.config.certFile, this.config.keyFile, pair));
    await write(leaf);
    this.leaf = leaf;
    logger.info(
      {
        notAfter: inspectCertificate(leaf.cert).notAfter.toISOString(),
        ca: inspectCertificate(signer.cert).fingerprint256,
      },
      'serving certificate issued',
    );
  }
}

const MIN_RETRY_MS = 1_000;

/**
 * Starts certificate management as configured (CERT_MODE). In `files` mode the files come
 * from elsewhere (cert-manager, a mounted Secret, `session-storage certs`) and nothing is
 * done here. In `self-managed` mode the first round runs at once and then every
 * CERT_CHECK_INTERVAL_SECONDS; failures are logged and retried with backoff, and the
 * server keeps answering with the certificate it has.
 */
export function startCertificateManager(options: {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  kubeConfig?: KubeConfig;
}): CertificateManager {
  const config = loadCertConfig(options.env);
  if (config.mode === 'files') return { stop: () => undefined };
  const logger = options.logger.child({ component: 'certificates' });
  const kubeConfig = options.kubeConfig ?? loadKubeConfig();
  const certificates = new SelfManagedCertificates(config, {
    secrets: new KubeCaSecretStore(kubeConfig, config.namespace, config.caSecret),
    webhooks: new KubeWebhookConfigStore(kubeConfig, config.webhookConfiguration),
    logger,
  });

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let retryMs = MIN_RETRY_MS;
  const round = async () => {
    let nextMs = config.checkIntervalMs;
    try {
      await certificates.reconcile();
      retryMs = MIN_RETRY_MS;
    } catch (error) {
      logger.error({ err: (error as Error).message }, 'certificate round failed; retrying');
      nextMs = Math.min(retryMs, config.checkIntervalMs);
      retryMs *= 2;
    }
    if (!stopped) {
      timer = setTimeout(() => void round(), nextMs);
      timer.unref();
    }
  };
  void round();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
