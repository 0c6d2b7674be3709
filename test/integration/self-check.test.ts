/**
 * The create-if-absent self-check (storage/self-check.ts) on each real S3
 * server, and the consumer refusing to start on a store that ignores
 * If-None-Match. No real server ignores it on demand, so that store is a small
 * fake S3 endpoint (HEAD bucket, PUT, GET; the issue allows a fake here); the
 * consumer itself is the real compiled CLI.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkCreateIfAbsent, openStore, SELF_CHECK_PREFIX } from '../../storage';
import { envOf, isolatedEnv, runCli, S3_SERVERS } from '../helpers/infra';

describe.each(S3_SERVERS)('create-if-absent self-check on $name (real server)', ({ name, endpoint }) => {
  const vars = isolatedEnv(`selfcheck-${name}`, { AUDIT_S3_ENDPOINT: endpoint });

  it('sees exactly one winner per race of 16 concurrent creates, and the existing key refused', async () => {
    const store = openStore(envOf(vars));
    try {
      const result = await checkCreateIfAbsent(store, { racers: 16, rounds: 5, owner: `test-${name}` });
      expect(result.rounds.map((r) => [r.winners, r.storedIsWinners, r.secondRefused])).toEqual(Array(5).fill([1, true, true]));
      // Without cleanup the probes stay, under _selfcheck/ only.
      const left: string[] = [];
      for await (const o of store.list(SELF_CHECK_PREFIX)) left.push(o.key);
      expect(left.sort()).toEqual([...result.leftBehind].sort());
      expect(left).toHaveLength(5);
      // The maintainer's way: with delete permission, it cleans up after itself.
      const cleaned = await checkCreateIfAbsent(store, { cleanup: true });
      expect(cleaned.leftBehind).toEqual([]);
      const after: string[] = [];
      for await (const o of store.list(SELF_CHECK_PREFIX)) after.push(o.key);
      expect(after.sort()).toEqual(left.sort());
    } finally {
      store.close();
    }
  });
});

/** A minimal S3 endpoint that stores objects in memory and ignores If-None-Match (and signatures). */
function careless(): { server: Server; keys: () => string[]; conditionalPuts: () => number } {
  const objects = new Map<string, Buffer>();
  let conditional = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    // Path-style: /bucket/ (the store's start-up check: a one-key listing) or /bucket/key.
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1).replace(/\/$/, '');
    const isBucket = !path.includes('/');
    if (req.method === 'HEAD' && isBucket) {
      res.writeHead(200).end();
    } else if (req.method === 'GET' && isBucket) {
      // Listing: the check only needs a well-formed answer; the fake's keys are not listed.
      res.writeHead(200, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0"?><ListBucketResult><Name>audit</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>');
    } else if (req.method === 'PUT' && !isBucket) {
      if (req.headers['if-none-match'] === '*') conditional++;
      objects.set(path, Buffer.concat(chunks));
      res.writeHead(200, { ETag: `"${objects.size}"` }).end();
    } else if (req.method === 'GET' && !isBucket && objects.has(path)) {
      const body = objects.get(path)!;
      res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' }).end(body);
    } else if (req.method === 'GET' && !isBucket) {
      res.writeHead(404, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>');
    } else {
      res.writeHead(501, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NotImplemented</Code><Message>not in this fake</Message></Error>');
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  return { server, keys: () => [...objects.keys()], conditionalPuts: () => conditional };
}

describe('audit-consumer on a store that ignores If-None-Match', () => {
  let fake: ReturnType<typeof careless>;
  let endpoint: string;

  beforeAll(async () => {
    fake = careless();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => fake.server.close(() => resolve())));

  it('refuses to start: exit 1, one clear line, nothing but the probe written', async () => {
    // The SDK's Node-version notice (Node < 22) is not the consumer's line.
    const vars = isolatedEnv('careless', { AUDIT_S3_ENDPOINT: endpoint, AUDIT_STORE_URL: 's3://audit/careless', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
    const run = await runCli('consumer', ['--drain'], vars, 60_000);
    const plain = run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect({ code: run.code, plain }).toEqual({
      code: 1,
      plain: [expect.stringMatching(/^audit-consumer: the store s3:\/\/audit\/careless does not enforce create-if-absent \(If-None-Match: \*\) under concurrency: 8 of 8 concurrent creates of _selfcheck\/\S+ succeeded/)],
    });
    // It did send conditional creates (the fake ignored them), and wrote nothing else: no cut claim, no data.
    expect(fake.conditionalPuts()).toBeGreaterThanOrEqual(8);
    expect(fake.keys().length).toBeGreaterThan(0);
    expect(fake.keys().every((k) => k.startsWith(`audit/careless/${SELF_CHECK_PREFIX}`))).toBe(true);
  });
});
