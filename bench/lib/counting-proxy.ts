/**
 * A pass-through HTTP proxy in front of an S3 server that counts the requests
 * a process makes, by method. Headers go through unchanged, so SigV4
 * signatures (which cover the Host header the client sent to the proxy) still
 * verify at the server.
 */
import { type Server, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export class CountingProxy {
  private counts = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<CountingProxy> {
    const t = new URL(target);
    let proxy: CountingProxy | null = null;
    const server = createServer((req, res) => {
      const method = req.method ?? 'GET';
      proxy!.counts.set(method, (proxy!.counts.get(method) ?? 0) + 1);
      const up = request({ host: t.hostname, port: t.port, method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', (err) => {
        res.writeHead(502);
        res.end(err.message);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new CountingProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  /** Requests since the last call, by method, and their total. */
  take(): { total: number; byMethod: Record<string, number> } {
    const byMethod = Object.fromEntries([...this.counts].sort());
    this.counts = new Map();
    return { total: Object.values(byMethod).reduce((a, b) => a + b, 0), byMethod };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
