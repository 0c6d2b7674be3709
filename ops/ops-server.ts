import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsStatus {
  /** Alive: the process loop is working. */
  live(): boolean;
  /** Ready: joined the group and storage reachable. */
  ready(): boolean;
}

/** /metrics (Prometheus), /healthz (liveness) and /readyz (readiness). */
export function startOpsServer(port: number, registry: Registry, status: OpsStatus): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (code: number, body: string, type = 'text/plain') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => send(200, text, registry.contentType),
        (err: Error) => send(500, err.message),
      );
    } else if (req.url === '/healthz') {
      send(status.live() ? 200 : 503, status.live() ? 'ok\n' : 'not live\n');
    } else if (req.url === '/readyz') {
      send(status.ready() ? 200 : 503, status.ready() ? 'ready\n' : 'not ready\n');
    } else {
      send(404, 'not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}
