import { encodeRecord } from '../../../schemas';
import type { InboundMessage } from '../../../consumer/sink';
import { sampleRecord } from '../records';

export const TOPIC = 'audit.events';
export const PARTITIONS = 3;
const DAY_US = 86_400_000_000;
/** First day of the store (µs). */
export const T0_US = Date.UTC(2026, 0, 10) * 1000;

/** One scripted event: what the readers must return, where it lives in "Kafka". */
export interface ScriptedEvent {
  id: string;
  objectId: string;
  partition: number;
  offset: bigint;
}

export function scriptedEventId(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/**
 * Stands in for the Kafka topic and the consumer group: an append-only log per
 * partition and the group's committed offsets. Objects are keyed to one
 * partition, as Kafka's key hashing would, and object 0 receives a third of the
 * events, so some objects have many events and some files many rows.
 */
export class ScriptedSource {
  readonly log: InboundMessage[][] = Array.from({ length: PARTITIONS }, () => []);
  readonly events: ScriptedEvent[] = [];
  readonly committed: bigint[] = Array.from({ length: PARTITIONS }, () => 0n);

  /** Appends `count` events with ids from `firstId`, spread over the given day numbers (0 = T0; old days take late events). */
  produce(firstId: number, count: number, days: readonly number[] = [0, 1, 2]): ScriptedEvent[] {
    const out: ScriptedEvent[] = [];
    for (let k = 0; k < count; k++) {
      const n = firstId + k;
      const objectId = String(n % 3 === 0 ? 0 : n % 6);
      const partition = Number(objectId) % PARTITIONS;
      const log = this.log[partition]!;
      const offset = BigInt(log.length);
      const id = scriptedEventId(n);
      const rec = sampleRecord({
        event_id: id,
        object_id: objectId,
        actor_id: `actor-${n % 7}`,
        occurred_at: T0_US + days[n % days.length]! * DAY_US + n * 1000,
        changes: { n: { old: String(n - 1), new: String(n) } },
      });
      log.push({ offset: offset.toString(), key: Buffer.from(`invoice:${objectId}`), value: encodeRecord(rec) });
      const ev = { id, objectId, partition, offset };
      out.push(ev);
      this.events.push(ev);
    }
    return out;
  }

  /** Messages after the committed offset: what a restarted consumer reads. */
  pending(partition: number): InboundMessage[] {
    return this.log[partition]!.slice(Number(this.committed[partition]!));
  }

  /** Events the group has committed past: the consumer vouches they are stored. */
  committedEvents(): ScriptedEvent[] {
    return this.events.filter((e) => e.offset < this.committed[e.partition]!);
  }

  objectIds(): string[] {
    return [...new Set(this.events.map((e) => e.objectId))].sort();
  }

  clone(): ScriptedSource {
    const c = new ScriptedSource();
    for (let p = 0; p < PARTITIONS; p++) {
      c.log[p]!.push(...this.log[p]!);
      c.committed[p] = this.committed[p]!;
    }
    c.events.push(...this.events);
    return c;
  }
}
