import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../../shared/logger.js';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TlsFilesOptions {
  certFile: string;
  keyFile: string;
  logger: Logger;
  onLoad: (pair: KeyPair) => void;
  /** fallback poll, for file systems whose events are unreliable */
  pollMs?: number;
}

/**
 * Keeps a certificate/key pair loaded from files that may not exist yet and may be
 * replaced at any time: by an atomic rename, a Kubernetes secret volume's symlink swap,
 * or the self-managed CA rewriting them. A half-written or mismatched pair is ignored
 * until the next change completes it.
 */
export class TlsFiles {
  private current: KeyPair | undefined;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private loading: Promise<void> = Promise.resolve();

  constructor(private readonly options: TlsFilesOptions) {}

  async start(): Promise<void> {
    await this.reload();
    // Watching the directories, not the files: a rename replaces the file's inode.
    for (const directory of new Set([dirname(this.options.certFile), dirname(this.options.keyFile)])) {
      try {
        const watcher = watch(directory, () => this.scheduleReload());
        watcher.on('error', () => watcher.close());
        this.watchers.push(watcher);
      } catch {
        // The directory does not exist yet; the poll below notices when it does.
      }
    }
    this.poll = setInterval(() => this.scheduleReload(), this.options.pollMs ?? 2000);
    this.poll.unref();
  }

  loaded(): boolean {
    return this.current !== undefined;
  }

  close(): void {
    for (const watcher of this.watchers) watcher.close();
    clearInterval(this.poll);
    clearTimeout(this.pending);
  }

  /** Waits for any reload in progress; for tests and the startup path. */
  settled(): Promise<void> {
    return this.loading;
  }

  private scheduleReload(): void {
    clearTimeout(this.pending);
    // Writers usually touch cert and key in quick succession: read once they are done.
    this.pending = setTimeout(() => {
      this.loading = this.loading.then(() => this.reload());
    }, 50);
  }

  private async reload(): Promise<void> {
    let pair: KeyPair;
    try {
      const [cert, key] = await Promise.all([
        readFile(this.options.certFile, 'utf8'),
        readFile(this.options.keyFile, 'utf8'),
      ]);
      pair = { cert, key };
    } catch (error) {
      if (this.current === undefined) {
        this.options.logger.debug({ err: (error as Error).message }, 'waiting for TLS files');
      }
      return;
    }
    if (this.current?.cert === pair.cert && this.current.key === pair.key) return;
    try {
      createSecureContext(pair);
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'ignoring unusable TLS files until they change');
      return;
    }
    const first = this.current === undefined;
    this.current = pair;
    this.options.onLoad(pair);
    this.options.logger.info({ certFile: this.options.certFile }, first ? 'TLS material loaded' : 'TLS material reloaded');
  }
}
