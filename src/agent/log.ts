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

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators some log
// viewers break lines on: any of them in a file name could start a forged log line.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeControl(char: string): string {
  const code = char.charCodeAt(0);
  return NAMED[char] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`);
}

/**
 * A file name or object key as it may appear in a log message: control characters are
 * written as escapes (\n, \r, \x1b, \u2028) and the backslash as \\, so every name prints
 * on one line and a name holding a newline is told apart from one spelling "\n".
 */
export function logName(name: string): string {
  return name.replace(/\\/g, '\\\\').replace(CONTROL, escapeControl);
}

export function createAgentLog(
  out: Writable = process.stdout,
  err: Writable = process.stderr,
  now: () => Date = () => new Date(),
): AgentLog {
  const stamp = () => `[${now().toISOString()}]`;
  // Messages also carry text the agent does not control (S3 and file-system error
  // messages that quote paths and URLs): whatever a call site missed still stays on its
  // line, and a URL's userinfo (a credential) is never printed.
  const line = (message: string) => redactUrlCredentials(message).replace(CONTROL, escapeControl);
  return {
    info: (message) => out.write(`${stamp()} ${line(message)}
`),
    detail: (message) => out.write(`  ${line(message)}
`),
    warn: (message) => out.write(`${stamp()} WARNING: ${line(message)}
`),
    error: (message) => err.write(`${stamp()} ERROR: ${line(message)}
`),
  };
}
