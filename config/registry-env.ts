import { ConfigError } from './config-error';

/**
 * The schema registry settings, shared by the consumer and the producer. Checked
 * here by hand rather than with the services' zod schema (config/env.ts): an app
 * that only records events reads these variables too, and should not have to
 * install zod for six of them.
 */

export const SUBJECT_STRATEGIES = ['topic', 'record', 'topic-record'] as const;
/** Subject of the record schema: `topic` = `<topic>-value` (Confluent's default), `record` = the record's full name, `topic-record` = `<topic>-<full name>`. */
export type SubjectStrategy = (typeof SUBJECT_STRATEGIES)[number];

export interface SchemaRegistryConfig {
  url: string;
  auth: { kind: 'none' } | { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };
  subjectStrategy: SubjectStrategy;
  retryMs: number;
}

/**
 * The variables, each with its meaning:
 * - AUDIT_SCHEMA_REGISTRY_URL: a Confluent-compatible registry (Confluent, Apicurio's /apis/ccompat/v7, Karapace, Redpanda); unset = none.
 * - AUDIT_SCHEMA_REGISTRY_USERNAME / _PASSWORD: HTTP basic auth (both or neither); exclusive with the bearer token.
 * - AUDIT_SCHEMA_REGISTRY_TOKEN: a bearer token.
 * - AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY: see SubjectStrategy (default `topic`).
 * - AUDIT_SCHEMA_REGISTRY_RETRY_MS: the consumer meets an id it has not resolved while the registry is unreachable: it retries this long, then exits 1 without committing (default 300000).
 */
export const REGISTRY_VARS = [
  'AUDIT_SCHEMA_REGISTRY_URL',
  'AUDIT_SCHEMA_REGISTRY_USERNAME',
  'AUDIT_SCHEMA_REGISTRY_PASSWORD',
  'AUDIT_SCHEMA_REGISTRY_TOKEN',
  'AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY',
  'AUDIT_SCHEMA_REGISTRY_RETRY_MS',
] as const;
export type RegistryVar = (typeof REGISTRY_VARS)[number];
export type RegistryVars = Partial<Record<RegistryVar, string>>;

const DEFAULT_RETRY_MS = 300_000;

function invalid(variable: RegistryVar, reason: string): ConfigError {
  return new ConfigError(`invalid configuration: ${variable}: ${reason}`);
}

/** The registry variables that are set (unset and empty ones take their defaults). */
export function registryVars(source: Readonly<Record<string, unknown>>): RegistryVars {
  const vars: RegistryVars = {};
  for (const name of REGISTRY_VARS) {
    const value = source[name];
    if (typeof value === 'string' && value !== '') vars[name] = value;
  }
  return vars;
}

/**
 * The schema registry to use, or null (AUDIT_SCHEMA_REGISTRY_URL unset). Accepts
 * the bare environment or the services' parsed Env (which carries these variables
 * as text). A bad value is a ConfigError naming the variable.
 */
export function schemaRegistryConfig(source: Readonly<Record<string, unknown>> = process.env): SchemaRegistryConfig | null {
  const vars = registryVars(source);
  const strategy = vars.AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY ?? 'topic';
  if (!(SUBJECT_STRATEGIES as readonly string[]).includes(strategy)) {
    throw invalid('AUDIT_SCHEMA_REGISTRY_SUBJECT_STRATEGY', `"${strategy}" is not one of ${SUBJECT_STRATEGIES.join(', ')}`);
  }
  const retryText = vars.AUDIT_SCHEMA_REGISTRY_RETRY_MS;
  const retryMs = retryText === undefined ? DEFAULT_RETRY_MS : Number(retryText);
  if (!Number.isSafeInteger(retryMs) || retryMs < 0) throw invalid('AUDIT_SCHEMA_REGISTRY_RETRY_MS', `"${retryText}" is not a whole number of milliseconds (>= 0)`);
  const url = vars.AUDIT_SCHEMA_REGISTRY_URL;
  if (url !== undefined && !URL.canParse(url)) throw invalid('AUDIT_SCHEMA_REGISTRY_URL', `"${url}" is not a URL`);
  if (url === undefined) return null;
  const { AUDIT_SCHEMA_REGISTRY_USERNAME: username, AUDIT_SCHEMA_REGISTRY_PASSWORD: password, AUDIT_SCHEMA_REGISTRY_TOKEN: token } = vars;
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError('invalid configuration: AUDIT_SCHEMA_REGISTRY_USERNAME and AUDIT_SCHEMA_REGISTRY_PASSWORD go together');
  }
  if (token !== undefined && username !== undefined) {
    throw new ConfigError('invalid configuration: AUDIT_SCHEMA_REGISTRY_TOKEN and AUDIT_SCHEMA_REGISTRY_USERNAME exclude each other');
  }
  return {
    url,
    auth:
      token !== undefined
        ? { kind: 'bearer', token }
        : username !== undefined && password !== undefined
          ? { kind: 'basic', username, password }
          : { kind: 'none' },
    subjectStrategy: strategy as SubjectStrategy,
    retryMs,
  };
}
