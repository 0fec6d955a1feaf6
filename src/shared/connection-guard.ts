import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** connections open at once */
  max: number;
  /** connections open at once from one remote address */
  perSource: number;
}

interface Tracked {
  socket: Socket;
  // taken at accept: a destroyed socket no longer reports its peer
  key: string;
  source: string;
  inFlight: number;
  served: boolean;
}

/**
 * Keeps a server answering while clients hold connections open without using them.
 *
 * Node's own `maxConnections` closes every new connection once the cap is reached, so a
 * client that opens that many idle sockets starves everyone else (the API server
 * included: with failurePolicy Fail no session pod can start). Here a new connection at
 * the cap closes the oldest connection that has no request in flight instead (one that
 * never carried a request before one that did), and is refused only when every open
 * connection is busy. One remote address may hold at most `perSource` connections, so a
 * single client cannot fill the cap with requests it trickles in either.
 *
 * Requests are matched to their connection by the remote address and port, which a TLS
 * socket reports from the TCP socket under it: the same hooks serve HTTP and HTTPS.
 */
export interface GuardedConnections {
  /** closes every connection without a request in flight, TLS handshakes not begun included */
  closeIdle(): void;
  closeAll(): void;
}

export function guardConnections(server: HttpServer, limits: ConnectionLimits): GuardedConnections {
  const table = new ConnectionTable();

  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    if (table.fromSource(source) >= limits.perSource) {
      socket.destroy();
      return;
    }
    if (table.size >= limits.max) {
      const victim = table.idleVictim();
      if (!victim) {
        socket.destroy();
        return;
      }
      table.close(victim);
    }
    table.add(socket, source);
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry = table.get(req.socket);
    if (!entry) return;
    entry.inFlight += 1;
    entry.served = true;
    res.once('close', () => {
      entry.inFlight -= 1;
    });
  });

  // Node's closeIdleConnections only sees connections that reached HTTP: a socket that never
  // began its TLS handshake would hold server.close() until the handshake timeout.
  return {
    closeIdle: () => table.closeEach((entry) => entry.inFlight === 0),
    closeAll: () => table.closeEach(() => true),
  };
}

class ConnectionTable {
  private readonly open = new Map<string, Tracked>();
  private readonly perSource = new Map<string, number>();

  get size(): number {
    return this.open.size;
  }

  fromSource(source: string): number {
    return this.perSource.get(source) ?? 0;
  }

  get(socket: Socket): Tracked | undefined {
    return this.open.get(keyOf(socket));
  }

  add(socket: Socket, source: string): void {
    const entry: Tracked = { socket, key: keyOf(socket), source, inFlight: 0, served: false };
    this.open.set(entry.key, entry);
    this.perSource.set(source, this.fromSource(source) + 1);
    socket.once('close', () => this.forget(entry));
  }

  // Map iteration follows insertion order, so the first idle entry found is the oldest.
  idleVictim(): Tracked | undefined {
    let used: Tracked | undefined;
    for (const entry of this.open.values()) {
      if (entry.inFlight > 0) continue;
      if (!entry.served) return entry;
      used ??= entry;
    }
    return used;
  }

  close(entry: Tracked): void {
    entry.socket.destroy();
    this.forget(entry);
  }

  closeEach(which: (entry: Tracked) => boolean): void {
    for (const entry of [...this.open.values()]) if (which(entry)) this.close(entry);
  }

  private forget(entry: Tracked): void {
    if (this.open.get(entry.key) !== entry) return;
    this.open.delete(entry.key);
    const left = this.fromSource(entry.source) - 1;
    if (left > 0) this.perSource.set(entry.source, left);
    else this.perSource.delete(entry.source);
  }
}

function keyOf(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}
