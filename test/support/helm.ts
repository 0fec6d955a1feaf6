import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HELM = path.join(ROOT, '.cache/bin/helm');
export const CHART = path.join(ROOT, 'manifests/helm/session-storage');
// The version the e2e tier's API server runs: capabilities checks see the same cluster.
export const KUBE_VERSION = '1.36.3';
const run = promisify(execFile);

/** `helm template` of the chart as release session-storage (helm built by npm run deps). */
export async function helmTemplate(args: string[] = [], options: { kubeVersion?: boolean } = {}): Promise<string> {
  expect(existsSync(HELM), `${HELM} is missing: run npm run deps`).toBe(true);
  const version = options.kubeVersion === false ? [] : ['--kube-version', KUBE_VERSION];
  const { stdout } = await run(HELM, ['template', 'session-storage', CHART, ...version, ...args]);
  return stdout;
}
