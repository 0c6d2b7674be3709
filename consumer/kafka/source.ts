import type { InboundMessage } from '../sink';

/**
 * What the consumer needs from a Kafka client, and nothing more: the service and the
 * sink are written against this, so swapping the client (kafkajs today) touches one
 * folder. Offsets are decimal strings, as on the sink's side.
 */

/** One partition's fetched messages, in offset order. */
export interface SourceBatch {
  partition: number;
  messages: readonly InboundMessage[];
  /** Messages after this batch in the partition when it was fetched: 0n means read to the end. */
  lag: bigint;
}

export interface SourceHandlers {
  /**
   * A batch to append. Returning true moves the fetch position past it; false leaves
   * it (the service is stopping, or appending failed). `heartbeat` keeps the member in
   * the group while the batch takes long.
   */
  onBatch(batch: SourceBatch, heartbeat: () => Promise<void>): Promise<boolean>;
  /** A (re)balance gave this member these partitions of the topic. */
  onAssigned(partitions: number[], generation: string): void;
  /** The client failed; when `restarting` is false it stopped for good. */
  onCrash(err: Error, restarting: boolean): void;
}

/** Low and high watermark of a partition. */
export interface PartitionEnds {
  partition: number;
  low: bigint;
  high: bigint;
}

/** A record for the dead-letter topic, sent as is (no compression, all replicas acknowledge). */
export interface OutboundRecord {
  key: string;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
}

export interface KafkaSource {
  /** Connects the admin, the dead-letter producer and the consumer; throws when Kafka is unreachable. */
  connect(): Promise<void>;
  /** Of these topics, those the broker does not have (asked without creating any). */
  missingTopics(topics: string[]): Promise<string[]>;
  /** Creates the topics that do not exist yet (broker defaults). */
  ensureTopics(topics: string[]): Promise<void>;
  /** Joins the group, reads the topic from the committed offsets (or the beginning), and hands batches over. */
  start(topic: string, handlers: SourceHandlers): Promise<void>;
  /** Commits `nextOffset` for a partition of the topic; throws when the broker refuses it. */
  commit(partition: number, nextOffset: string): Promise<void>;
  /** Stops fetching; the membership stays (commits need it). */
  pause(): void;
  resume(): void;
  endOffsets(topic: string): Promise<PartitionEnds[]>;
  /** The group's committed offsets; partitions without one are absent. */
  committedOffsets(topic: string): Promise<Map<number, bigint>>;
  /** Sends one record, idempotently, retried until the broker answers. */
  send(topic: string, record: OutboundRecord): Promise<void>;
  /** Leaves the group and disconnects everything; never throws. */
  stop(): Promise<void>;
}

/** How the service builds its client (config/env.ts AUDIT_KAFKA_* and the fetch settings). */
export interface KafkaSourceOptions {
  clientId: string;
  brokers: string[];
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** How many partitions' batches may be appended at once. */
  partitionsConcurrently: number;
}
