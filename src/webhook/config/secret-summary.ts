import { NON_SECRET_KEYS, S3_KEYS, STORAGE_MODE_KEY, type NonSecretKey, type S3Key } from './names.js';

/**
 * What the webhook knows about a namespace's integration secret. Credential values never
 * enter this shape: only whether each key holds a non-empty value.
 */
export type SecretSummary =
  | { kind: 'absent' }
  | { kind: 'error'; reason: string }
  | {
      kind: 'present';
      present: ReadonlySet<S3Key>;
      values: Readonly<Partial<Record<NonSecretKey | typeof STORAGE_MODE_KEY, string>>>;
    };

/** The parts of a v1 Secret the summary is built from (data is base64, stringData plain). */
export interface SecretLike {
  data?: Record<string, string> | undefined;
  stringData?: Record<string, string> | undefined;
}

export function summarizeSecret(secret: SecretLike): SecretSummary {
  const present = new Set<S3Key>();
  const values: Partial<Record<NonSecretKey | typeof STORAGE_MODE_KEY, string>> = {};
  for (const key of S3_KEYS) {
    const value = readKey(secret, key);
    if (value === undefined || value.trim() === '') continue;
    present.add(key);
    if ((NON_SECRET_KEYS as readonly string[]).includes(key)) {
      values[key as NonSecretKey] = value.trim();
    }
  }
  const mode = readKey(secret, STORAGE_MODE_KEY)?.trim();
  if (mode) values[STORAGE_MODE_KEY] = mode;
  return { kind: 'present', present, values };
}

// stringData wins over data, as the API server merges them on write.
function readKey(secret: SecretLike, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain;
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
}
