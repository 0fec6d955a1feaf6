import { pino, type Logger, type DestinationStream } from 'pino';

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
    timestamp: pino.stdTimeFunctions.isoTime,
    base: undefined,
  };
  return destination ? pino(options, destination) : pino(options);
}
