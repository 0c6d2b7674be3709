import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { stopOnSignals } from '../config/bin';
import { ConfigError, readEnv } from '../config/env';
import { createLogger } from '../config/logger';
import { AuditClient } from '../producer/client';
import { AuditQuery } from '../query/query';
import { openSearchContext } from '../query/search';
import { readViewerConfig } from './config';
import { embedConfig } from './embed/config';
import { embedPlugin } from './routes/embed';
import type { ViewerContext } from './context';
import { QueryData } from './data';
import { ProducerReadRecorder } from './recorder';
import { type ViewerPlugin, buildViewerApp } from './server';

export interface ServeOptions {
  port: number;
  host: string;
}

/** `--port N` (0 = any free port, printed once listening) and `--host H` (default 127.0.0.1). */
export function parseServeOptions(flags: { port?: string; host?: string }): ServeOptions {
  const port = flags.port === undefined ? 8080 : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535 || (flags.port !== undefined && !/^\d+$/.test(flags.port))) {
    throw new ConfigError(`--port must be a port number from 0 to 65535 (got ${JSON.stringify(flags.port)})`);
  }
  const host = flags.host ?? '127.0.0.1';
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(host)) throw new ConfigError(`--host must be an address or host name (got ${JSON.stringify(host)})`);
  return { port, host };
}

/**
 * Runs the viewer until SIGTERM or SIGINT, then stops taking requests, lets
 * those in flight finish, delivers their read events and exits 0. Start-up
 * fails (ConfigError: exit 2) without tokens and without a trusted proxy header,
 * and (exit 1) when Kafka, where reads are recorded, cannot be reached.
 */
export async function serve(opts: ServeOptions, plugins: readonly ViewerPlugin[] = []): Promise<number> {
  const env = readEnv();
  const config = readViewerConfig(process.env);
  const embed = embedConfig(env);
  const log = createLogger('audit-query-serve', env.AUDIT_LOG_LEVEL);
  if (config.cookieSecretGenerated) log.warn({}, 'AUDIT_VIEWER_COOKIE_SECRET is unset: sessions end when this process stops');
  const client = new AuditClient({
    brokers: env.AUDIT_KAFKA_BROKERS.split(',').map((b) => b.trim()).filter(Boolean),
    topic: env.AUDIT_TOPIC,
    sourceService: 'audit-query serve',
    // A read the trail cannot take is refused rather than served unrecorded.
    onBufferFull: 'fail',
    logger: log,
  });
  try {
    await client.start();
  } catch (err) {
    await client.close(1_000);
    throw new Error(`cannot record reads: Kafka (${env.AUDIT_KAFKA_BROKERS}, topic ${env.AUDIT_TOPIC}) refused or unreachable: ${(err as Error).message}`, { cause: err });
  }
  const query = new AuditQuery(env, undefined, { warn: (line) => log.warn({}, line) });
  const recorder = new ProducerReadRecorder(client);
  const cursorKey = createHmac('sha256', config.cookieSecret).update('audit-viewer-cursor-key').digest();
  const search = await openSearchContext(env, { cursorKey });
  const ctx: ViewerContext = { config, data: new QueryData(query, search, cursorKey), recorder };
  const app = await buildViewerApp(ctx, log, embed ? [embedPlugin(embed), ...plugins] : plugins);
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  stopOnSignals(log, 'finishing requests in flight and delivering their read events', async () => {
    try {
      await app.close();
      await recorder.close();
    } finally {
      query.close();
      search.close();
      stopped();
    }
  });
  try {
    await app.listen({ port: opts.port, host: opts.host });
  } catch (err) {
    await recorder.close();
    query.close();
    search.close();
    throw err;
  }
  const address = app.server.address();
  const bound = address !== null && typeof address === 'object' ? address : null;
  const shown = bound ? (bound.family === 'IPv6' ? `[${bound.address}]` : bound.address) : opts.host;
  process.stderr.write(`audit-query serve: listening on http://${shown}:${bound?.port ?? opts.port}\n`);
  await done;
  return 0;
}
