import { redactUrlCredentials } from '../shared/redact.js';

// The agent prints plain lines, not JSON: the shell version's operators grep container
// logs for "Starting sync to S3..." and "Sync complete", and those lines are a contract.
export interface AgentLog {
  info(message: string): void;
  detail(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

interface Writable {
  write(chunk: string): unknown;
}

export function createAgentLog(
  out: Writable = process.stdout,
  err: Writable = process.stderr,
  now: () => Date = () => new Date(),
): AgentLog {
  const stamp = () => `[${now().toISOString()}]`;
  // S3 errors quote the URL they failed on; a URL's userinfo is a credential.
  const clean = redactUrlCredentials;
  return {
    info: (message) => out.write(`${stamp()} ${clean(message)}\n`),
    detail: (message) => out.write(`  ${clean(message)}\n`),
    warn: (message) => out.write(`${stamp()} WARNING: ${clean(message)}\n`),
    error: (message) => err.write(`${stamp()} ERROR: ${clean(message)}\n`),
  };
}
