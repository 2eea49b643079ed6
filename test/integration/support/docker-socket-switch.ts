// A real unix socket in front of the test bed's Docker engine whose behaviour a test switches at run
// time, to play a Docker that stops answering without touching the shared engine:
//  - 'proxy': every request is relayed to the engine (except those `hangRequest` picks: never answered);
//  - 'hang':  connections are accepted and never read nor answered (a wedged dockerd);
//  - 'half':  the status line, headers and the start of a body are sent, then nothing more.
// Switching closes every open connection, so pooled keep-alive connections follow the new mode.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

export type SocketMode = 'proxy' | 'hang' | 'half';

export class DockerSocketSwitch {
  private server: net.Server | undefined;
  private readonly relay: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private mode_: SocketMode;
  /** Requests (by method and URL) to leave unanswered in 'proxy' mode. */
  hangRequest: (method: string, url: string) => boolean = () => false;
  /** Every request line seen, with the time (ms) it arrived: tests assert on order. */
  readonly requests: { line: string; at: number }[] = [];

  constructor(
    readonly socketPath: string,
    private readonly upstream: string,
    mode: SocketMode,
  ) {
    this.mode_ = mode;
    this.relay = http.createServer((req, res) => this.handle(req, res));
  }

  get mode(): SocketMode {
    return this.mode_;
  }

  async listen(): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      // 'hang': accept and never read, never answer.
      if (this.mode_ !== 'hang') this.relay.emit('connection', socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
  }

  setMode(mode: SocketMode): void {
    this.mode_ = mode;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    this.requests.push({ line: `${method} ${url}`, at: Date.now() });
    if (this.mode_ === 'half') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '4096' });
      res.write('{"Id":"');
      return;
    }
    if (this.mode_ === 'hang' || this.hangRequest(method, url)) return;
    const upstream = http.request({ socketPath: this.upstream, method, path: url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
