import { resolve } from 'node:path';
import { z } from 'zod';
import { parseDuration } from './duration';
import { StoreUrlError, parseStoreUrl } from './store-url';
import { ConfigError } from './config-error';
import { nodeRunsPlatformatic } from './node-support';
import { REGISTRY_VARS, schemaRegistryConfig, type RegistryVar } from './registry-env';

export { ConfigError } from './config-error';
export { nodeRunsPlatformatic } from './node-support';
export { REGISTRY_VARS, schemaRegistryConfig, type SchemaRegistryConfig, type SubjectStrategy } from './registry-env';

/**
 * The one place where the services read their environment. Every variable has a
 * documented default (README "Configuration"); a bad value stops start-up with
 * a message naming the variable.
 */

const intVar = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
/** A duration written `30s`, `15m`, `1h`, `400d`, `7y`, read as milliseconds. */
const durationVar = () =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 30s, 15m, 1h, 400d or 7y` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * `https://app.example.com` or `http://127.0.0.1:8080`, exactly as a browser writes it in an
 * Origin header: anything else could never match one, and would go unquoted into a CSP header.
 */
export function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === text;
  } catch {
    return false;
  }
}

/** Carried as text: config/registry-env.ts checks them, for the producer as for the services. */
const registryEnvShape = Object.fromEntries(REGISTRY_VARS.map((name) => [name, z.string().optional()])) as Record<RegistryVar, z.ZodOptional<z.ZodString>>;

export const envSchema = z.object({
  AUDIT_KAFKA_BROKERS: z.string().min(1).default('localhost:9092'),
  AUDIT_TOPIC: z.string().min(1).default('audit.events'),
  AUDIT_DLQ_TOPIC: z.string().min(1).optional(),
  AUDIT_CONSUMER_GROUP: z.string().min(1).default('audit-consumer'),
  /**
   * The consumer creates AUDIT_TOPIC when it does not exist (false: it refuses to start, exit 2,
   * so a mistyped topic is not drained "successfully" and created on a broker that auto-creates).
   */
  AUDIT_CREATE_TOPIC: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  AUDIT_CLIENT_ID: z.string().min(1).default('audit-pipeline'),
  /** A member silent this long leaves the group and its partitions move (kafkajs sessionTimeout). */
  AUDIT_KAFKA_SESSION_TIMEOUT_MS: intVar(30_000, 6_000),
  /** How long a rebalance waits for members to finish their batch (a cut upload) and rejoin. */
  AUDIT_KAFKA_REBALANCE_TIMEOUT_MS: intVar(60_000, 6_000),
  /**
   * The consumer's Kafka client: `kafkajs` (2.2, unmaintained since 2023) or `platformatic`
   * (@platformatic/kafka, which needs Node >= 22.22 on 22, >= 24.6 on 24). Default kafkajs: side
   * by side the consumer spent the same CPU per event on either (bench/README.md#consumer-clients).
   */
  AUDIT_KAFKA_CLIENT: z
    .enum(['platformatic', 'kafkajs'])
    .optional()
    .superRefine((client, ctx) => {
      if (client === 'platformatic' && !nodeRunsPlatformatic()) {
        ctx.addIssue({ code: 'custom', message: `@platformatic/kafka needs Node >= 22.22 or >= 24.6 (this is ${process.version}); use kafkajs` });
      }
    })
    // @platformatic/kafka where Node runs it (maintained; as fast as kafkajs, ~10 % less peak RSS:
    // bench/README.md#consumer-clients), kafkajs on the Node lines it does not support.
    .transform((client) => client ?? (nodeRunsPlatformatic() ? 'platformatic' : 'kafkajs')),
  /** Checked here, not when the store opens, so a bad URL is a configuration error (exit 2), not a failure. */
  AUDIT_STORE_URL: z
    .string()
    .min(1)
    .superRefine((url, ctx) => {
      try {
        parseStoreUrl(url);
      } catch (err) {
        if (!(err instanceof StoreUrlError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
      }
    })
    .default('file://./.audit-data'),
  AUDIT_S3_ENDPOINT: z.string().url().optional(),
  AUDIT_S3_REGION: z.string().min(1).default('us-east-1'),
  /** Rotation: a partition's buffered records are cut into files when any limit is reached. */
  AUDIT_FLUSH_MAX_RECORDS: intVar(100_000, 1),
  AUDIT_FLUSH_MAX_BYTES: intVar(64 * 1024 * 1024, 1024),
  AUDIT_FLUSH_MAX_AGE_MS: intVar(60_000, 10),
  /** Bound on the memory held by all buffered records of this process (staging lines plus bookkeeping), whatever the number of partitions or days. */
  AUDIT_MEMORY_MAX_BYTES: intVar(64 * 1024 * 1024, 1024),
  AUDIT_PARTITIONS_CONCURRENTLY: intVar(4, 1),
  AUDIT_PARQUET_ROW_GROUP_ROWS: intVar(16_384, 1024),
  AUDIT_PARQUET_COMPRESSION: z.enum(['zstd', 'snappy', 'gzip', 'uncompressed']).default('zstd'),
  /** ZSTD level: higher stores a few percent fewer bytes for much more write CPU (see consumer/parquet-writer.ts). */
  AUDIT_PARQUET_ZSTD_LEVEL: z.coerce.number().int().min(1).max(22).default(3),
  /** DuckDB (which writes the Parquet files): its memory limit (it spills beyond it) and worker threads. */
  AUDIT_DUCKDB_MEMORY_LIMIT: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$/i, 'a size such as 128MB or 1GiB')
    .default('128MB'),
  AUDIT_DUCKDB_THREADS: intVar(1, 1),
  /**
   * Worker threads that transcode Kafka batches into staging lines; 0 = on the consumer's event loop.
   * Default 0: on the 2-core benchmark host (both cores busy) a worker gained nothing and cost ~65 MB RSS.
   */
  AUDIT_TRANSCODE_WORKERS: intVar(0, 0),
  /** Storage down for up to this long is ridden out (retries with backoff); beyond it the consumer exits 1 without committing. */
  AUDIT_STORE_RETRY_MS: intVar(300_000, 0),
  AUDIT_METRICS_PORT: intVar(0, 0),
  AUDIT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AUDIT_WORK_DIR: z.string().optional(),
  // ---- signed digests (trust/README.md) ----
  /** Ed25519 private key (PKCS#8 PEM file) the consumer and maintainer sign digests with; unset (and AUDIT_SIGNING_KEY unset) = no digests. */
  AUDIT_SIGNING_KEY_FILE: z.string().min(1).optional(),
  /** The same key as PEM text (for secret stores that inject values, not files); wins over the file. */
  AUDIT_SIGNING_KEY: z.string().min(1).optional(),
  /**
   * The public keys trusted for what the pipeline reads back from the bucket (chain heads, cut claims,
   * generations, indexes): a JSON file (trust/trusted-keys.ts). Unset: a signing process trusts its own
   * key only, a reader the keys published in the store (with a warning).
   */
  AUDIT_TRUSTED_KEYS_FILE: z.string().min(1).optional(),
  // ---- the viewer's embeddable history (viewer/embed/README.md) ----
  /** The key (a file of 32 or more random bytes) embed tokens are minted and checked with; unset = no embed routes. */
  AUDIT_EMBED_KEY_FILE: z.string().min(1).optional(),
  /** Origins allowed to embed the history (CORS for the component, frame-ancestors for the iframe), comma-separated `https://app.example.com`; unset = none. */
  AUDIT_EMBED_ORIGINS: z
    .string()
    .transform((text, ctx) => {
      const origins = text.split(',').map((o) => o.trim()).filter(Boolean);
      const bad = origins.filter((o) => !isOrigin(o));
      if (bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `not an origin (scheme://host[:port], nothing after): ${bad.map((b) => JSON.stringify(b)).join(', ')}` });
        return z.NEVER;
      }
      return origins;
    })
    .optional(),
  // ---- audit-admin maintain (maintenance/README.md) ----
  /** Data files younger than this are left for a later pass (a day still being written is not rewritten every pass); `0s` = everything now. */
  AUDIT_COMPACT_MIN_AGE: durationVar().prefault('1h'),
  /** Whole days older than this (by event date, UTC) are removed; unset = kept forever. */
  AUDIT_RETENTION: durationVar().optional(),
  /** How long superseded files and manifests stay readable after the commit that replaced them: longer than any query or external scan. */
  AUDIT_COMPACT_GRACE: durationVar().prefault('1h'),
  /** Time between maintenance passes of the service (not used with --once). */
  AUDIT_MAINTAIN_INTERVAL: durationVar().prefault('15m'),
  /** Objects fetched, uploaded or deleted at once by the maintainer. */
  AUDIT_MAINTAIN_CONCURRENCY: intVar(16, 1),
  /** Publish the store as an Iceberg table under `<prefix>/_iceberg/` after each pass (maintenance/iceberg/); S3 and file stores only. */
  AUDIT_ICEBERG: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Tests only: the maintainer kills itself (SIGKILL) at this step, to prove a pass can die anywhere. */
  AUDIT_TEST_CRASH_AT: z.enum(['after-upload', 'before-commit', 'after-commit', 'mid-cleanup']).optional(),
  // ---- audit-cdc (PostgreSQL change capture, cdc/README.md) ----
  /** The database to capture (a role with REPLICATION, or a superuser, to create the slot and publication). */
  AUDIT_CDC_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'a postgresql:// URL').default('postgresql://postgres@localhost:5432/postgres'),
  AUDIT_CDC_SLOT: z.string().regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and _ (PostgreSQL slot names)').default('audit_cdc'),
  AUDIT_CDC_PUBLICATION: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'an SQL identifier').default('audit_cdc'),
  /** Create the slot and publication when missing (false: they must exist). */
  AUDIT_CDC_CREATE: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Tables of a publication audit-cdc creates (comma-separated, `schema.table` or `table`); unset = FOR ALL TABLES. */
  AUDIT_CDC_PUBLICATION_TABLES: z.string().optional(),
  /** Per-table mapping (object type, id columns, column include/exclude/mask, skip): JSON text, or `@/path/to/file.json`. */
  AUDIT_CDC_MAPPING: z.string().optional(),
  /** Install statement triggers that tag changes made without app context with the database role. */
  AUDIT_CDC_ROLE_TRIGGERS: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  AUDIT_CDC_SOURCE_SERVICE: z.string().min(1).default('audit-cdc'),
  /** Events not yet acknowledged by Kafka beyond which reading the replication stream pauses. */
  AUDIT_CDC_MAX_BUFFERED: intVar(20_000, 100),
  /** How often Kafka deliveries are checked and the slot position confirmed. */
  AUDIT_CDC_ACK_INTERVAL_MS: intVar(200, 10),
  AUDIT_CACHE_DIR: z.string().optional(),
  /** Key that signs audit-query's search cursors (>= 32 characters); unset = a random key kept in the cache dir (cursor.key). */
  AUDIT_QUERY_CURSOR_KEY: z.string().min(32, 'at least 32 characters').optional(),
}).extend(registryEnvShape);

export type Env = z.infer<typeof envSchema>;
export type KafkaClientKind = Env['AUDIT_KAFKA_CLIENT'];

/** Parses the environment; unset and empty variables take their defaults. */
export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const env = parseVars(envSchema, source);
  schemaRegistryConfig(source);
  return env;
}

function parseVars<S extends z.ZodObject>(schema: S, source: NodeJS.ProcessEnv): z.infer<S> {
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = source[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${issues}`);
  }
  return parsed.data;
}

export function dlqTopic(env: Env): string {
  return env.AUDIT_DLQ_TOPIC ?? `${env.AUDIT_TOPIC}.dlq`;
}

/**
 * What a service's first log line says it works with: a store left to its default is said
 * so, with the directory it resolves to (a consumer started in the wrong folder writes there).
 */
export function startupFields(env: Env, kafkaClient: string = env.AUDIT_KAFKA_CLIENT, source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const store = source.AUDIT_STORE_URL ? env.AUDIT_STORE_URL : `${env.AUDIT_STORE_URL} (default)`;
  const local = /^file:\/\//.exec(env.AUDIT_STORE_URL) ? `, ${resolve(env.AUDIT_STORE_URL.slice('file://'.length))}` : '';
  return {
    store: `${store}${local}`,
    topic: env.AUDIT_TOPIC,
    group: env.AUDIT_CONSUMER_GROUP,
    kafka: `${kafkaClient} ${env.AUDIT_KAFKA_BROKERS}`,
  };
}

export function brokers(env: Env): string[] {
  return env.AUDIT_KAFKA_BROKERS.split(',').map((b) => b.trim()).filter(Boolean);
}
