import { pino, type Logger, type DestinationStream } from 'pino';
import { redactUrlCredentials } from './redact.js';

export type { Logger };

// Every credential-bearing field name we know of is censored wherever it appears in a log
// object, so a value that slips into one by mistake is never printed.
const CREDENTIAL_KEYS = new Set([
  'S3_ACCESS_KEY',
  'S3_SECRET_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'S3_SESSION_TOKEN',
  'AWS_SESSION_TOKEN',
  'accessKeyId',
  'secretAccessKey',
  'sessionToken',
  'authorization',
  'Authorization',
]);
const CENSOR = '[redacted]';

export function createLogger(
  name: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    // Credential fields, and a URL's userinfo wherever it turns up (an endpoint in a
    // denial, an error message quoting a URL): the line keeps the URL without it. One walk
    // that copies only what it changes, instead of pino's redact paths, which cost a
    // decision line far more than its own formatting (docs/BENCHMARKS.md).
    formatters: { log: (object: Record<string, unknown>) => cleaned(object) as Record<string, unknown> },
    // Errors reach the line through this serializer, after the formatter above.
    serializers: { err: (error: Error) => cleaned({ ...pino.stdSerializers.err(error) }) },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...args: unknown[]) => void) {
        method.apply(this, args.some(hasUrl) ? args.map((arg) => (typeof arg === 'string' ? redactUrlCredentials(arg) : arg)) : args);
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: undefined,
  };
  return destination ? pino(options, destination) : pino(options);
}

// redactUrlCredentials only ever changes a "scheme://" URL.
function hasUrl(value: unknown): boolean {
  return typeof value === 'string' && value.includes('://');
}

/** `value` with credentials censored; the same object when there was nothing to censor. */
function cleaned(value: unknown): unknown {
  if (typeof value === 'string') return hasUrl(value) ? redactUrlCredentials(value) : value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const inner: unknown = value[i];
      const clean = cleaned(inner);
      if (clean !== inner) (copy ??= [...value])[i] = clean;
    }
    return copy ?? value;
  }
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const inner: unknown = (value as Record<string, unknown>)[key];
    const clean = CREDENTIAL_KEYS.has(key) ? CENSOR : cleaned(inner);
    if (clean !== inner) (copy ??= { ...value })[key] = clean;
  }
  return copy ?? value;
}
