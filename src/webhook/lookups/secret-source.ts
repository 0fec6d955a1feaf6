import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { INTEGRATION_SECRET } from '../config/names.js';
import { summarizeSecret, type SecretLike, type SecretSummary } from '../config/secret-summary.js';

export type CacheResult = 'hit' | 'miss';

/** Where the webhook learns what a namespace's integration secret holds. */
export interface SecretSource {
  /** Never rejects: read failures come back as `{ kind: 'error' }`. */
  get(namespace: string): Promise<SecretSummary>;
  /** True once the source can answer without guessing (the first list has completed). */
  ready(): boolean;
  close(): void;
}

export interface SecretManifest extends SecretLike {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export class ManifestError extends Error {}

/** Parses one or more Secret manifests (YAML or JSON, `data` or `stringData`). */
export function parseSecretManifests(text: string, origin: string): SecretManifest[] {
  const documents = parseAllDocuments(text);
  const secrets: SecretManifest[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) {
      throw new ManifestError(`${origin}: not valid YAML or JSON: ${document.errors[0]?.message.split('\n')[0]}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    const secret = value as SecretManifest;
    if (typeof value !== 'object' || secret.kind !== 'Secret') {
      throw new ManifestError(`${origin}: expected a Secret manifest (kind: Secret)`);
    }
    if (secret.metadata?.name !== INTEGRATION_SECRET) {
      throw new ManifestError(
        `${origin}: the Secret must be named ${INTEGRATION_SECRET} (got "${secret.metadata?.name ?? ''}")`,
      );
    }
    secrets.push(secret);
  }
  return secrets;
}

/**
 * Secrets from manifests on disk, for `inject --secret` and local runs without a cluster.
 * A manifest without a namespace stands for every namespace.
 */
export class ManifestSecretSource implements SecretSource {
  private readonly byNamespace = new Map<string, SecretSummary>();
  private anyNamespace: SecretSummary | undefined;

  constructor(secrets: readonly SecretManifest[]) {
    for (const secret of secrets) {
      const namespace = secret.metadata?.namespace;
      if (namespace === undefined) this.anyNamespace = summarizeSecret(secret);
      else this.byNamespace.set(namespace, summarizeSecret(secret));
    }
  }

  static async fromFiles(paths: readonly string[]): Promise<ManifestSecretSource> {
    const secrets: SecretManifest[] = [];
    for (const path of paths) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new ManifestError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      secrets.push(...parseSecretManifests(text, path));
    }
    return new ManifestSecretSource(secrets);
  }

  get(namespace: string): Promise<SecretSummary> {
    return Promise.resolve(this.byNamespace.get(namespace) ?? this.anyNamespace ?? { kind: 'absent' });
  }

  ready(): boolean {
    return true;
  }

  close(): void {}
}
