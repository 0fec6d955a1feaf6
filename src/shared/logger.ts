import { pino, type Logger, type DestinationStream } from 'pino';
import { redactUrlCredentials } from './redact.js';

export type { Logger };

// Every credential-bearing field name we know of is redacted, so a value that slips
// into a log object by mistake is never printed.
const REDACT_PATHS = [
  '*.S3_ACCESS_KEY',
  '*.S3_SECRET_KEY',
  '*.AWS_ACCESS_KEY_ID',
  '*.AWS_SECRET_ACCESS_KEY',
  '*.accessKeyId',
  '*.secretAccessKey',
  '*.authorization',
  '*.Authorization',
];

export function createLogger(
  name: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // A URL's userinfo is a credential wherever it turns up (an endpoint in a denial, an
    // error message quoting a URL): the line keeps the URL without it.
    formatters: { log: (object: Record<string, unknown>) => redactStrings(object) as Record<string, unknown> },
    // Errors reach the line through this serializer, after the formatter above.
    serializers: { err: (error: Error) => redactStrings({ ...pino.stdSerializers.err(error) }) },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...args: unknown[]) => void) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? redactUrlCredentials(arg) : arg)));
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: undefined,
  };
  return destination ? pino(options, destination) : pino(options);
}

function redactStrings(value: unknown): unknown {
  if (typeof value === 'string') return redactUrlCredentials(value);
  if (Array.isArray(value)) return value.map(redactStrings);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, redactStrings(inner)]));
  }
  return value;
}
