import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateServingCertificates } from './certs.js';

export interface CertsCommandOptions {
  service: string;
  namespace: string;
  dev: boolean;
  out: string;
}

/** `session-storage certs`: writes ca.crt, tls.crt, tls.key; prints the caBundle. */
export async function runCerts(options: CertsCommandOptions): Promise<number> {
  const material = await generateServingCertificates(options);
  try {
    await mkdir(options.out, { recursive: true });
    await writeFile(join(options.out, 'ca.crt'), material.caCert);
    await writeFile(join(options.out, 'tls.crt'), material.cert);
    await writeFile(join(options.out, 'tls.key'), material.key, { mode: 0o600 });
  } catch (error) {
    process.stderr.write(`cannot write certificates to ${options.out}: ${(error as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`wrote ${options.out}/ca.crt, tls.crt, tls.key; caBundle:\n`);
  process.stdout.write(`${Buffer.from(material.caCert).toString('base64')}\n`);
  return 0;
}
