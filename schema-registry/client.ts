import type { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import * as avro from 'avsc';
import { ConfigError } from '../config/config-error';
import type { SchemaRegistryConfig, SubjectStrategy } from '../config/registry-env';

/**
 * A Confluent-compatible schema registry, through @kafkajs/confluent-schema-registry
 * (HTTP, auth, retries). Only what the pipeline needs: find or register the
 * writer's schema under a subject, and fetch a schema by id. Errors are sorted
 * into what retrying can fix (registry unreachable, 5xx) and what it cannot.
 */

type RegistryArgs = ConstructorParameters<typeof SchemaRegistry>[0];
type Middleware = NonNullable<RegistryArgs['middlewares']>[number];
type RegistryLibrary = typeof import('@kafkajs/confluent-schema-registry');

export const REGISTRY_LIBRARY = '@kafkajs/confluent-schema-registry';

/**
 * A registry is configured but its client library is not installed. The library
 * is an optional peer dependency of the recording package: it brings protobufjs
 * (and its install script) to every app, and most apps use no registry.
 */
export class SchemaRegistryLibraryMissingError extends ConfigError {
  constructor(readonly url: string, override readonly cause?: unknown) {
    super(`schema registry ${url} is configured, but ${REGISTRY_LIBRARY} is not installed: npm install ${REGISTRY_LIBRARY}`);
    this.name = 'SchemaRegistryLibraryMissingError';
  }
}

/** Loaded when a registry is configured, not when this module is: see SchemaRegistryLibraryMissingError. */
function loadRegistryLibrary(url: string): RegistryLibrary {
  try {
    return require(REGISTRY_LIBRARY) as RegistryLibrary;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw new SchemaRegistryLibraryMissingError(url, err);
    throw err;
  }
}

/** The registry could not be reached or answered with a server error: retry later. */
export class SchemaRegistryUnavailableError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'SchemaRegistryUnavailableError';
  }
}

/** The registry answered, and the answer is no (incompatible or invalid schema, refused credentials). One line. */
export class SchemaRegistryRefusedError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'SchemaRegistryRefusedError';
  }
}

export class SchemaIncompatibleError extends SchemaRegistryRefusedError {
  constructor(message: string, cause?: unknown) {
    super(message, 409, cause);
    this.name = 'SchemaIncompatibleError';
  }
}

export interface RegistryErrorInfo {
  status: number | undefined;
  message: string;
}

/** Status and message of an error thrown by the client library (its messages carry a prefix and may span lines). */
export function registryErrorInfo(err: unknown): RegistryErrorInfo {
  const e = err as { status?: unknown; message?: unknown };
  const status = typeof e?.status === 'number' ? e.status : undefined;
  const raw = typeof e?.message === 'string' ? e.message : String(err);
  const message = raw.replace(/^(Confluent_Schema_Registry|audit-pipeline) - /, '').replace(/\s+/g, ' ').trim();
  return { status, message };
}

/**
 * The library reports a refused connection as status 400 ("Error, status 400:
 * connect ECONNREFUSED"), so the transport errors are recognised by their text.
 */
function isTransient(info: RegistryErrorInfo): boolean {
  if (info.status !== undefined && info.status >= 500) return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|socket hang up|timeout|EPIPE/i.test(info.message);
}

export function subjectFor(strategy: SubjectStrategy, topic: string, recordFullName: string): string {
  switch (strategy) {
    case 'topic':
      return `${topic}-value`;
    case 'record':
      return recordFullName;
    case 'topic-record':
      return `${topic}-${recordFullName}`;
  }
}

function bearer(token: string): Middleware {
  return () => ({
    async prepareRequest(next) {
      const request = await next();
      return request.enhance({ headers: { authorization: `Bearer ${token}` } });
    },
  });
}

export class RegistryClient {
  private readonly registry: SchemaRegistry;
  private readonly library: RegistryLibrary;

  constructor(readonly config: SchemaRegistryConfig) {
    this.library = loadRegistryLibrary(config.url);
    const args: RegistryArgs = {
      host: config.url.replace(/\/+$/, ''),
      clientId: 'audit-pipeline',
      // Callers decide how long to wait for a registry that is down; one quick retry here.
      retry: { retries: 1, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
    };
    if (config.auth.kind === 'basic') args.auth = { username: config.auth.username, password: config.auth.password };
    if (config.auth.kind === 'bearer') args.middlewares = [bearer(config.auth.token)];
    this.registry = new this.library.SchemaRegistry(args);
  }

  /**
   * The registry's id for this schema under the subject: looked up when it is
   * registered there already, else registered, which runs the subject's
   * compatibility check. Throws SchemaIncompatibleError when the registry
   * refuses the schema, SchemaRegistryUnavailableError when it cannot be reached.
   */
  async idFor(subject: string, schema: avro.Schema): Promise<number> {
    const confluent = { type: this.library.SchemaType.AVRO, schema: JSON.stringify(schema) } as const;
    try {
      return await this.registry.getRegistryIdBySchema(subject, confluent);
    } catch (err) {
      const info = registryErrorInfo(err);
      if (isTransient(info)) throw new SchemaRegistryUnavailableError(`schema registry ${this.config.url} unreachable: ${info.message}`, err);
      if (info.status === 401 || info.status === 403) throw new SchemaRegistryRefusedError(`schema registry ${this.config.url} refused the credentials (HTTP ${info.status})`, info.status, err);
      // Not registered under this subject (or no such subject yet): register it.
    }
    return this.register(subject, confluent, this.library.COMPATIBILITY.BACKWARD, true);
  }

  private async register(subject: string, schema: { type: SchemaType.AVRO; schema: string }, compatibility: COMPATIBILITY, mayRetry: boolean): Promise<number> {
    try {
      // updateConfig: false, or the library pins a new subject to BACKWARD whatever the registry's global level.
      return (await this.registry.register(schema, { subject, compatibility, updateConfig: false })).id;
    } catch (err) {
      const info = registryErrorInfo(err);
      // The library refuses to register unless the subject's own compatibility
      // setting equals the one passed: take the subject's setting as it is.
      const level = /Compatibility does not match the configuration \(\w+ != (\w+)\)/.exec(info.message)?.[1];
      if (level && mayRetry && level in this.library.COMPATIBILITY) return this.register(subject, schema, level as COMPATIBILITY, false);
      if (isTransient(info)) throw new SchemaRegistryUnavailableError(`schema registry ${this.config.url} unreachable: ${info.message}`, err);
      if (info.status === 409) {
        throw new SchemaIncompatibleError(`schema registry refused the audit schema for subject "${subject}" as incompatible with its registered versions: ${info.message}`, err);
      }
      throw new SchemaRegistryRefusedError(`schema registry refused the audit schema for subject "${subject}" (HTTP ${info.status ?? '?'}): ${info.message}`, info.status, err);
    }
  }

  /**
   * Start-up check of the URL and credentials: `GET /subjects` must answer 200.
   * Without it, a URL missing its API path (Apicurio's `/apis/ccompat/v7`) would
   * answer 404 for every id, and every registry-framed record would be
   * dead-lettered as "not in the schema registry". Throws
   * SchemaRegistryRefusedError (one line) for a wrong URL or refused credentials,
   * SchemaRegistryUnavailableError when nothing answers.
   */
  async probe(): Promise<void> {
    const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    const { auth } = this.config;
    if (auth.kind === 'basic') headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    if (auth.kind === 'bearer') headers.authorization = `Bearer ${auth.token}`;
    let status: number;
    try {
      const res = await fetch(`${this.config.url.replace(/\/+$/, '')}/subjects`, { headers, signal: AbortSignal.timeout(10_000) });
      status = res.status;
      await res.body?.cancel();
    } catch (err) {
      throw new SchemaRegistryUnavailableError(`schema registry ${this.config.url} unreachable: ${(err as Error).message}`, err);
    }
    if (status >= 500) throw new SchemaRegistryUnavailableError(`schema registry ${this.config.url} unavailable (GET /subjects: HTTP ${status})`);
    if (status === 401 || status === 403) throw new SchemaRegistryRefusedError(`schema registry ${this.config.url} refused the credentials (HTTP ${status})`, status);
    if (status !== 200) {
      throw new SchemaRegistryRefusedError(`${this.config.url} does not answer as a Confluent-compatible schema registry (GET /subjects: HTTP ${status}; Apicurio's API is under /apis/ccompat/v7)`, status);
    }
  }

  /** The writer schema with this id, or null when the registry has no such id. */
  async schemaById(id: number): Promise<avro.Type | null> {
    try {
      const schema: unknown = await this.registry.getSchema(id);
      if (typeof (schema as { schema?: unknown } | null)?.schema !== 'function') {
        throw new SchemaRegistryRefusedError(`schema id ${id} in the registry is not an Avro schema`, undefined);
      }
      // The library parses with avsc too; re-parsing with ours keeps one avsc's types in play.
      return avro.Type.forSchema((schema as avro.Type).schema({ exportAttrs: true }));
    } catch (err) {
      if (err instanceof SchemaRegistryRefusedError) throw err;
      const info = registryErrorInfo(err);
      if (info.status === 404) return null;
      if (isTransient(info)) throw new SchemaRegistryUnavailableError(`schema registry ${this.config.url} unreachable: ${info.message}`, err);
      throw new SchemaRegistryRefusedError(`schema registry refused schema id ${id} (HTTP ${info.status ?? '?'}): ${info.message}`, info.status, err);
    }
  }
}
