import { crc64Avro, canonicalForm, knownSchemaIds, schemaType, type RegistryEntry } from '../schemas';
import { type RegistryClient, SchemaRegistryRefusedError, SchemaRegistryUnavailableError } from './client';

export interface SchemaIdsLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

/**
 * The consumer's view of registry ids: each id met on the topic is fetched once,
 * mapped to the version of ours with the same canonical fingerprint, and kept
 * for the life of the process. Ids already seen therefore keep decoding while
 * the registry is down; a new id waits for it (retried with backoff, with
 * heartbeats so the group keeps the member) for up to `retryMs`, then fails,
 * and the consumer stops without committing what it has not stored.
 */
export class RegistrySchemaIds {
  private readonly entries = new Map<number, RegistryEntry>();
  private readonly byFingerprint = new Map<bigint, number>();

  constructor(
    private readonly client: RegistryClient,
    private readonly retryMs: number,
    private readonly log?: SchemaIdsLogger,
  ) {
    for (const v of knownSchemaIds()) this.byFingerprint.set(crc64Avro(canonicalForm(schemaType(v))), v);
  }

  /** Synchronous lookup, as the decoders need it (a RegistryLookup). */
  readonly lookup = (id: number): RegistryEntry | undefined => this.entries.get(id);

  get size(): number {
    return this.entries.size;
  }

  /** Resolves an id (no-op when known). Throws SchemaRegistryUnavailableError after `retryMs` of outage. */
  async ensure(id: number, heartbeat?: () => Promise<void>): Promise<void> {
    if (this.entries.has(id)) return;
    const deadline = Date.now() + this.retryMs;
    let backoff = 200;
    let warned = false;
    for (;;) {
      try {
        const type = await this.client.schemaById(id);
        if (type === null) {
          this.entries.set(id, { kind: 'absent' });
        } else {
          const version = this.byFingerprint.get(crc64Avro(canonicalForm(type))) ?? null;
          // A known version decodes with our own type object, which the fast path and the resolvers key on.
          this.entries.set(id, { kind: 'found', version, type: version === null ? type : schemaType(version) });
          if (version === null) this.log?.warn({ schemaId: id }, 'registry schema is none of this build\'s versions; read by Avro schema resolution');
        }
        if (warned) this.log?.info({ schemaId: id }, 'schema registry reachable again');
        return;
      } catch (err) {
        // A refusal (e.g. bad credentials) is not cured by waiting either, but the
        // records must not be dead-lettered for it: it is retried like an outage.
        if (!(err instanceof SchemaRegistryUnavailableError || err instanceof SchemaRegistryRefusedError)) throw err;
        if (Date.now() + backoff > deadline) {
          throw new SchemaRegistryUnavailableError(`schema id ${id} could not be resolved within ${this.retryMs} ms: ${err.message}`, err);
        }
        if (!warned) {
          this.log?.warn({ schemaId: id, err: err.message }, 'schema registry unavailable for a new schema id; waiting for it');
          warned = true;
        }
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, 5_000);
        if (heartbeat) await heartbeat();
      }
    }
  }
}
