import type { Logger } from 'pino';
import { type ObjectStore, dtOfMicros } from '../storage';
import { DIGEST_ROOT, type RetentionDigest } from '../trust/format';
import { UntrustedObjectError } from '../trust/signed-object';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';

/** An event dated inside a day that retention has removed: dead-lettered rather than stored into the removed day. */
export class ExpiredDayError extends Error {
  constructor(
    readonly dt: string,
    readonly digestKey: string,
  ) {
    super(`dated ${dt}, a day removed by retention (${digestKey}): not stored, so the next maintenance pass cannot delete it unnoticed`);
    this.name = 'ExpiredDayError';
  }
}

const RETENTION_PREFIX = `${DIGEST_ROOT}retention/`;
const RETENTION_KEY_RE = /^_digests\/retention\/dt=(\d{4}-\d{2}-\d{2})\.json$/;
const DAY_MICROS = 86_400_000_000;

export interface ExpiredDaysDeps {
  store: Pick<ObjectStore, 'list' | 'get'>;
  trust: TrustPolicy;
  log: Logger;
  now: () => number;
  /** How often the list of retention digests is read again. */
  refreshMs: number;
}

/**
 * The days the maintainer removed by retention, known from its signed
 * retention digests (the clock and AUDIT_RETENTION decide nothing here, so two
 * readings of the same offsets agree unless a digest appeared in between). A
 * late event for such a day would be stored into a day that is already gone and
 * deleted again by the next pass; it goes to the dead-letter topic instead, with
 * the reason. A digest that fails the trust check is ignored (the event is then
 * stored, and a later removal of its file is a `verify` finding): a planted
 * digest must not divert live events.
 */
export class ExpiredDays {
  private readonly days = new Set<string>();
  /** Events at or after this instant (µs) fall after every expired day: no lookup needed. */
  private endMicros = Number.NEGATIVE_INFINITY;
  private readAt = Number.NEGATIVE_INFINITY;
  private readonly refused = new Set<string>();
  private reading: Promise<void> | null = null;

  constructor(private readonly deps: ExpiredDaysDeps) {}

  /**
   * Reads the retention digests again when the last reading is older than `refreshMs`. Partitions
   * append concurrently: they all wait for the one reading in flight, never go on without it.
   */
  refreshIfStale(): Promise<void> {
    if (this.reading === null && this.deps.now() - this.readAt >= this.deps.refreshMs) {
      this.readAt = this.deps.now();
      this.reading = this.read()
        .catch((err: unknown) => {
          // Read again at the next call (the caller retries storage errors within its budget).
          this.readAt = Number.NEGATIVE_INFINITY;
          throw err;
        })
        .finally(() => {
          this.reading = null;
        });
    }
    return this.reading ?? Promise.resolve();
  }

  private async read(): Promise<void> {
    for await (const obj of this.deps.store.list(RETENTION_PREFIX)) {
      const dt = RETENTION_KEY_RE.exec(obj.key)?.[1];
      if (dt === undefined || this.days.has(dt) || this.refused.has(obj.key)) continue;
      const bytes = await this.deps.store.get(obj.key);
      if (bytes === null) continue;
      try {
        const { body } = openUnderPolicy<RetentionDigest>(this.deps.trust, bytes, obj.key, 'retention', () => {
          throw new Error('not a signed retention digest');
        });
        if (body.dt !== dt) throw new UntrustedObjectError(obj.key, 'malformed', `names dt=${body.dt}`);
      } catch (err) {
        if (!(err instanceof UntrustedObjectError)) throw err;
        this.refused.add(obj.key);
        this.deps.log.warn({ key: obj.key, reason: err.code }, 'retention digest failed its trust check: ignored (events of that day are stored)');
        continue;
      }
      this.days.add(dt);
      this.endMicros = Math.max(this.endMicros, Date.parse(`${dt}T00:00:00Z`) * 1000 + DAY_MICROS);
    }
  }

  /** The removed day an event time (µs, UTC) falls in, or null. */
  expiredDayOf(occurredAtMicros: number): string | null {
    if (occurredAtMicros >= this.endMicros) return null;
    const dt = dtOfMicros(occurredAtMicros);
    return this.days.has(dt) ? dt : null;
  }

  error(dt: string): ExpiredDayError {
    return new ExpiredDayError(dt, `${RETENTION_PREFIX}dt=${dt}.json`);
  }
}
