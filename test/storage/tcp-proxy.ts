/**
 * A TCP proxy on 127.0.0.1 that a test can cut and restore, to simulate a storage outage without
 * touching the shared PostgreSQL or Redis: point the storage (or a server process) at the proxy.
 *
 * - `cut()`: every open connection is reset and new ones are accepted and reset at once (the
 *   client sees its connections die and every reconnect fail, as when the server goes away);
 * - `restore()`: new connections are forwarded again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    return new Promise((resolve, reject) => {
      let proxy: TcpProxy;
      const server = createServer((client) => {
        proxy.accepted++;
        if (proxy.#cut) {
          client.resetAndDestroy();
          return;
        }
        const upstream = createConnection({ port: targetPort, host: targetHost });
        proxy.#track(client);
        proxy.#track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        const close = (): void => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', close).on('close', close);
        upstream.on('error', close).on('close', close);
      });
      proxy = new TcpProxy(server);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(proxy));
    });
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** Reset every open connection and refuse new ones until {@link restore}. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) {
      if (!socket.destroyed) socket.resetAndDestroy();
    }
    this.#sockets.clear();
  }

  restore(): void {
    this.#cut = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
