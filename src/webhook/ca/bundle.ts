import type { Logger } from '../../shared/logger.js';
import { inspectCertificate, splitPemBundle } from './pki.js';
import type { WebhookCaBundles, WebhookConfigStore } from './stores.js';

function trusts(bundles: WebhookCaBundles, caCert: string): boolean {
  const wanted = inspectCertificate(caCert).fingerprint256;
  return (
    bundles.bundles.length > 0 &&
    bundles.bundles.every((b64) =>
      splitPemBundle(Buffer.from(b64, 'base64').toString('utf8')).some(
        (pem) => inspectCertificate(pem).fingerprint256 === wanted,
      ),
    )
  );
}

/**
 * Makes every webhook of our configuration carry `bundle` as its caBundle and reports
 * whether the API server now trusts `caCert` (the CA that signs new serving certificates).
 */
export async function publishCaBundle(
  store: WebhookConfigStore,
  bundle: string,
  caCert: string,
  logger: Logger,
): Promise<boolean> {
  const desired = Buffer.from(bundle).toString('base64');
  const current = await store.read();
  if (!current) {
    logger.warn('webhook configuration not found: caBundle not published yet');
    return false;
  }
  if (current.bundles.every((b) => b === desired)) return trusts(current, caCert);
  if (await store.writeCaBundle(desired, current)) {
    logger.info({ webhooks: current.bundles.length }, 'caBundle published');
    return true;
  }
  // Another replica wrote first; trust whatever it wrote if it includes our CA.
  const after = await store.read();
  return after !== undefined && trusts(after, caCert);
}
