import { readFileSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { loadConfig, type WebhookConfig } from '../../src/webhook/config/config.js';
import { parseSecretManifests } from '../../src/webhook/lookups/secret-source.js';
import { summarizeSecret, type SecretSummary } from '../../src/webhook/config/secret-summary.js';

export const fixturePath = (relative: string) => new URL(`../fixtures/${relative}`, import.meta.url).pathname;

export function readFixture(relative: string): string {
  return readFileSync(fixturePath(relative), 'utf8');
}

export function loadPod(name: string): V1Pod {
  return parse(readFixture(`pods/${name}.yaml`)) as V1Pod;
}

export function loadSecretSummary(name: string): SecretSummary {
  const [secret] = parseSecretManifests(readFixture(`secrets/${name}.yaml`), name);
  return summarizeSecret(secret!);
}

export function loadReview(name: string): Record<string, any> {
  return JSON.parse(readFixture(`reviews/${name}.json`)) as Record<string, any>;
}

/** The version the tests' webhook config carries, so no test depends on package.json. */
export const TEST_VERSION = '0.0.0-test';

/** The built-in defaults, as a webhook started without any environment would use. */
export function defaultConfig(env: Record<string, string> = {}): WebhookConfig {
  return loadConfig(env, TEST_VERSION);
}
