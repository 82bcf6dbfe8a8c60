// HTTP endpoints: /metrics (Prometheus text), /healthz (the process loop is alive),
// /readyz (caches synced and, when leader election is on and we lead, the lease is held).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperatorMetrics } from './metrics.ts';

export interface Probes {
  healthy(): { ok: boolean; detail?: string };
  ready(): { ok: boolean; detail?: string };
}

export interface HttpServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(opts: { port: number; host?: string; metrics: OperatorMetrics; probes: Probes }): Promise<HttpServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/metrics') {
      opts.metrics.render().then(
        (m) => reply(200, m.body, m.contentType),
        (err) => reply(500, `metrics: ${(err as Error).message}\n`),
      );
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const h = opts.probes.healthy();
      return reply(h.ok ? 200 : 500, `${h.ok ? 'ok' : 'unhealthy'}${h.detail ? `: ${h.detail}` : ''}\n`);
    }
    if (path === '/readyz') {
      const r = opts.probes.ready();
      return reply(r.ok ? 200 : 503, `${r.ok ? 'ok' : 'not ready'}${r.detail ? `: ${r.detail}` : ''}\n`);
    }
    reply(404, 'not found\n');
  });
  return listen(server, opts.port, opts.host);
}

/** Listen (port 0: any free port) and return the port and a close() that also drops keep-alive connections. */
export async function listen(server: Server, port: number, host = '0.0.0.0'): Promise<HttpServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
