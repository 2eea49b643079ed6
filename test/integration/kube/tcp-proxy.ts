// A plain TCP relay between the informer and the real apiserver, so a test can cut every live
// connection and refuse new ones, as a network outage or an apiserver restart would, without
// stopping the shared apiserver. TLS passes through untouched.
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private port_ = 0;
  connections = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get port(): number {
    return this.port_;
  }

  /** Listens (again) on the same port as before, or on a free one the first time. */
  async listen(): Promise<number> {
    const server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port_, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port_ = (server.address() as net.AddressInfo).port;
    return this.port_;
  }

  /** Resets every open connection and stops accepting new ones (they are refused). */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
