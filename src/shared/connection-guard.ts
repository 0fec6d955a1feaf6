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
export function guardConnections(server: HttpServer, limits: ConnectionLimits): void {
  const open = new Map<string, Tracked>();
  const perSource = new Map<string, number>();

  const forget = (key: string, entry: Tracked) => {
    if (open.get(key) !== entry) return;
    open.delete(key);
    const left = (perSource.get(entry.source) ?? 1) - 1;
    if (left > 0) perSource.set(entry.source, left);
    else perSource.delete(entry.source);
  };

  // Map iteration follows insertion order, so the first idle entry found is the oldest.
  const idleVictim = (): Tracked | undefined => {
    let used: Tracked | undefined;
    for (const entry of open.values()) {
      if (entry.inFlight > 0) continue;
      if (!entry.served) return entry;
      used ??= entry;
    }
    return used;
  };

  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    if ((perSource.get(source) ?? 0) >= limits.perSource) {
      socket.destroy();
      return;
    }
    if (open.size >= limits.max) {
      const victim = idleVictim();
      if (!victim) {
        socket.destroy();
        return;
      }
      victim.socket.destroy();
      forget(keyOf(victim.socket), victim);
    }
    const key = keyOf(socket);
    const entry: Tracked = { socket, source, inFlight: 0, served: false };
    open.set(key, entry);
    perSource.set(source, (perSource.get(source) ?? 0) + 1);
    socket.once('close', () => forget(key, entry));
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry = open.get(keyOf(req.socket));
    if (!entry) return;
    entry.inFlight += 1;
    entry.served = true;
    res.once('close', () => {
      entry.inFlight -= 1;
    });
  });
}

function keyOf(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}
