/**
 * The registry client and the consumer's id cache against a small in-process
 * HTTP stand-in for the registry (the real one, Apicurio, is exercised in
 * test/integration/schema-registry.test.ts; it runs without auth, so the auth
 * options are checked here, on the requests themselves).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, schemaRegistryConfig, type SchemaRegistryConfig } from '../../config/env';
import {
  RegistryClient,
  RegistrySchemaIds,
  SchemaIncompatibleError,
  SchemaRegistryRefusedError,
  SchemaRegistryUnavailableError,
  registerWriterSchema,
  subjectFor,
} from '../../schema-registry';
import { schemaJson, schemaType } from '../../schemas';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

type Handler = (req: IncomingMessage, body: string) => { status: number; body: unknown };

async function fakeRegistry(handler: Handler): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
      const out = handler(req, body);
      res.writeHead(out.status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
      res.end(JSON.stringify(out.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const close = (s: Server) => new Promise((r) => s.close(r));
const config = (url: string, auth: SchemaRegistryConfig['auth'] = { kind: 'none' }): SchemaRegistryConfig => ({ url, auth, subjectStrategy: 'topic', retryMs: 5_000 });

describe('schema registry configuration', () => {
  it('is off without AUDIT_SCHEMA_REGISTRY_URL, and reads auth and strategy', () => {
    expect(schemaRegistryConfig({})).toBeNull();
    expect(schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'http://r:8081', AUDIT_SCHEMA_REGISTRY_TOKEN: 't' })).toEqual({
      url: 'http://r:8081',
      auth: { kind: 'bearer', token: 't' },
      subjectStrategy: 'topic',
      retryMs: 300_000,
    });
    expect(
      schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'http://r', AUDIT_SCHEMA_REGISTRY_USERNAME: 'u', AUDIT_SCHEMA_REGISTRY_PASSWORD: 'p', AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY: 'record' }),
    ).toMatchObject({ auth: { kind: 'basic', username: 'u', password: 'p' }, subjectStrategy: 'record' });
  });

  it('names the variable of a bad value', () => {
    expect(() => schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'not a url' })).toThrow(/AUDIT_SCHEMA_REGISTRY_URL/);
    expect(() => schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'http://r', AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY: 'x' })).toThrow(/AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY/);
    expect(() => schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'http://r', AUDIT_SCHEMA_REGISTRY_USERNAME: 'u' })).toThrow(ConfigError);
    expect(() => schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: 'http://r', AUDIT_SCHEMA_REGISTRY_TOKEN: 't', AUDIT_SCHEMA_REGISTRY_USERNAME: 'u', AUDIT_SCHEMA_REGISTRY_PASSWORD: 'p' })).toThrow(/exclude/);
  });

  it('derives subjects by strategy', () => {
    expect(subjectFor('topic', 'audit.events', 'io.auditpipeline.AuditEvent')).toBe('audit.events-value');
    expect(subjectFor('record', 'audit.events', 'io.auditpipeline.AuditEvent')).toBe('io.auditpipeline.AuditEvent');
    expect(subjectFor('topic-record', 'audit.events', 'io.auditpipeline.AuditEvent')).toBe('audit.events-io.auditpipeline.AuditEvent');
  });
});

describe('registry client', () => {
  it('sends the bearer token and basic credentials with every request', async () => {
    const reg = await fakeRegistry(() => ({ status: 200, body: { id: 7, schema: JSON.stringify(schemaJson(2)) } }));
    try {
      await new RegistryClient(config(reg.url, { kind: 'bearer', token: 'sekret' })).schemaById(7);
      await new RegistryClient(config(reg.url, { kind: 'basic', username: 'u', password: 'p' })).schemaById(8);
      expect(reg.seen.map((s) => [s.url, s.authorization])).toEqual([
        ['/schemas/ids/7', 'Bearer sekret'],
        ['/schemas/ids/8', `Basic ${Buffer.from('u:p').toString('base64')}`],
      ]);
    } finally {
      await close(reg.server);
    }
  });

  it('looks the schema up under the topic subject, registers it when missing, and refuses an incompatible one in one line', async () => {
    let registered = false;
    const reg = await fakeRegistry((req) => {
      if (req.method === 'POST' && req.url === '/subjects/t1-value') return registered ? { status: 200, body: { id: 5, version: 1 } } : { status: 404, body: { error_code: 40401, message: 'Subject not found' } };
      if (req.method === 'GET' && req.url === '/config/t1-value') return { status: 404, body: { error_code: 40401, message: 'none' } };
      if (req.method === 'POST' && req.url === '/subjects/t1-value/versions') {
        registered = true;
        return { status: 200, body: { id: 5 } };
      }
      if (req.method === 'POST' && req.url === '/subjects/t2-value') return { status: 404, body: { error_code: 40403, message: 'Schema not found' } };
      if (req.method === 'GET' && req.url === '/config/t2-value') return { status: 404, body: { error_code: 40401, message: 'none' } };
      if (req.method === 'POST' && req.url === '/subjects/t2-value/versions') {
        return { status: 409, body: { error_code: 409, message: 'Schema being registered is incompatible with an earlier schema;\nreader type: STRING not compatible with writer type: LONG' } };
      }
      return { status: 500, body: { message: `unexpected ${req.method} ${req.url}` } };
    });
    try {
      const client = new RegistryClient(config(reg.url));
      const first = await registerWriterSchema(client, 't1', 'topic');
      expect(first).toMatchObject({ id: 5, subject: 't1-value', version: 2 });
      expect(first.header).toEqual(Buffer.from([0, 0, 0, 0, 5]));
      expect((await registerWriterSchema(client, 't1', 'topic')).id).toBe(5);
      expect(reg.seen.filter((s) => s.url === '/subjects/t1-value/versions')).toHaveLength(1); // the second time: looked up only
      const err = await registerWriterSchema(client, 't2', 'topic').then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(SchemaIncompatibleError);
      expect(err!.message).not.toContain('\n');
      expect(err!.message).toMatch(/subject "t2-value" as incompatible .*reader type: STRING not compatible with writer type: LONG/);
    } finally {
      await close(reg.server);
    }
  });

  it('tells a missing id (null), an unreachable registry and a refusal apart', async () => {
    const reg = await fakeRegistry((req) =>
      req.url === '/schemas/ids/404' ? { status: 404, body: { error_code: 40403, message: 'Schema 404 not found' } } : { status: 401, body: { error_code: 401, message: 'Unauthorized' } },
    );
    try {
      const client = new RegistryClient(config(reg.url));
      expect(await client.schemaById(404)).toBeNull();
      await expect(client.schemaById(1)).rejects.toBeInstanceOf(SchemaRegistryRefusedError);
    } finally {
      await close(reg.server);
    }
    await expect(new RegistryClient(config(reg.url)).schemaById(1)).rejects.toBeInstanceOf(SchemaRegistryUnavailableError);
  });
});

describe('registry start-up probe', () => {
  it('accepts a registry, refuses a URL that is not one (one line), and reports one that is down as unavailable', async () => {
    const reg = await fakeRegistry((req) => (req.url === '/apis/ccompat/v7/subjects' ? { status: 200, body: [] } : { status: 404, body: { message: 'RESTEASY003210: Could not find resource' } }));
    try {
      await expect(new RegistryClient(config(`${reg.url}/apis/ccompat/v7`, { kind: 'bearer', token: 'x' })).probe()).resolves.toBeUndefined();
      expect(reg.seen[0]).toMatchObject({ url: '/apis/ccompat/v7/subjects', authorization: 'Bearer x' });
      const err = await new RegistryClient(config(reg.url)).probe().then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(SchemaRegistryRefusedError);
      expect(err!.message).toMatch(/does not answer as a Confluent-compatible schema registry \(GET \/subjects: HTTP 404/);
    } finally {
      await close(reg.server);
    }
    await expect(new RegistryClient(config(reg.url)).probe()).rejects.toBeInstanceOf(SchemaRegistryUnavailableError);
  });
});

describe('consumer id cache', () => {
  it('maps registry schemas to our versions by canonical fingerprint, whatever their doc or defaults', async () => {
    const docless = { ...(schemaJson(1) as object), doc: 'registered by someone else' };
    const v3 = { ...(schemaJson(2) as object), fields: [...(schemaJson(2) as unknown as { fields: object[] }).fields, { name: 'x', type: 'int', default: 0 }] };
    const schemas: Record<string, unknown> = { '/schemas/ids/1': schemaJson(2), '/schemas/ids/2': docless, '/schemas/ids/3': v3 };
    const reg = await fakeRegistry((req) =>
      schemas[req.url!] ? { status: 200, body: { schema: JSON.stringify(schemas[req.url!]) } } : { status: 404, body: { error_code: 40403, message: 'not found' } },
    );
    try {
      const ids = new RegistrySchemaIds(new RegistryClient(config(reg.url)), 1_000);
      for (const id of [1, 2, 3, 9]) await ids.ensure(id);
      expect(ids.lookup(1)).toEqual({ kind: 'found', version: 2, type: schemaType(2) });
      expect(ids.lookup(2)).toEqual({ kind: 'found', version: 1, type: schemaType(1) });
      expect(ids.lookup(3)).toMatchObject({ kind: 'found', version: null });
      expect(ids.lookup(9)).toEqual({ kind: 'absent' });
      const calls = reg.seen.length;
      await ids.ensure(1);
      expect(reg.seen.length).toBe(calls); // cached
    } finally {
      await close(reg.server);
    }
  });

  it('waits for a registry that is down for a new id (heartbeating), and gives up after its budget', async () => {
    let up = false;
    const reg = await fakeRegistry(() => (up ? { status: 200, body: { schema: JSON.stringify(schemaJson(2)) } } : { status: 503, body: { message: 'starting' } }));
    try {
      const ids = new RegistrySchemaIds(new RegistryClient(config(reg.url)), 30_000);
      let beats = 0;
      const resolved = ids.ensure(4, async () => {
        beats++;
        if (beats === 2) up = true;
      });
      await resolved;
      expect(beats).toBeGreaterThanOrEqual(2);
      expect(ids.lookup(4)).toMatchObject({ version: 2 });

      up = false;
      const short = new RegistrySchemaIds(new RegistryClient(config(reg.url)), 300);
      await expect(short.ensure(5)).rejects.toThrow(/schema id 5 could not be resolved within 300 ms/);
    } finally {
      await close(reg.server);
    }
  });
});
