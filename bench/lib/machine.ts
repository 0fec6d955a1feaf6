import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  loadAverage: string;
  // The commit measured, with "+dirty" when the work tree had uncommitted changes.
  commit: string;
}

export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage: os.loadavg().map((load) => load.toFixed(2)).join(' '),
    commit: currentCommit(),
  };
}

export function toolVersion(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

function currentCommit(): string {
  const head = toolVersion('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = toolVersion('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src']) !== '';
  return dirty ? `${head}+dirty` : head;
}
