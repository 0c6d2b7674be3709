import { createHash } from 'node:crypto';

/**
 * The digests: what the pipeline signs about every data file it publishes, so
 * that `audit-query verify` can prove the store complete and untampered with
 * nothing but read access and the public keys.
 *
 *   _digests/keys/<keyId>.json                               a signer's public key and validity
 *   _digests/chain/<topic>/<partition>/<seq, 12 digits>.json one per stored cut, chained
 *   _digests/compaction/dt=D/<compacted file name>.json      one per compacted file
 *   _digests/retention/dt=D.json                             a day removed by retention
 *
 * Every digest object is an envelope: the signed body as a JSON string, the
 * signer's key id and an Ed25519 signature of the body's UTF-8 bytes. Keeping
 * the body as a string makes the signed bytes exactly the stored ones (no JSON
 * canonicalisation to agree on).
 */

export const DIGEST_ROOT = '_digests/';
export const ENVELOPE_FORMAT = 'audit-digest/1';
export const KEY_FORMAT = 'audit-key/1';

/** One data file as a digest records it. */
export interface FileEntry {
  key: string;
  size: number;
  /** SHA-256 of the object's bytes, hex. */
  sha256: string;
  rows: number;
  /** Kafka offsets of the first and last rows (offset order). */
  first: string;
  last: string;
  /** Order-independent hash of the rows (trust/row-hash.ts), 32 hex digits. */
  rowHash: string;
}

/**
 * A stored cut of one partition: digests tile the partition's offsets, each
 * starting right after the previous one's `to`. Every offset of [from, to] is
 * in one of the files, was sent to the dead-letter topic, or was skipped by
 * Kafka (transaction markers, offsets removed by compaction or retention in
 * Kafka before they were read): the three add up to the range.
 */
export interface ChainDigest {
  kind: 'chain';
  topic: string;
  partition: number;
  seq: number;
  from: string;
  to: string;
  files: FileEntry[];
  deadLetters: string[];
  /** Offset ranges [first, last] inside [from, to] that Kafka never delivered. */
  skipped: [string, string][];
  /** The previous digest of this partition (null only for the first one) and the SHA-256 of its stored bytes. */
  prev: { seq: number; sha256: string } | null;
  writtenAt: string;
  writer: string;
}

/** A compacted file, and the files whose rows it holds. */
export interface CompactionDigest {
  kind: 'compaction';
  dt: string;
  topic: string;
  partition: number;
  file: FileEntry;
  /** The inputs as the maintainer read them (consumer files or earlier compacted files). */
  replaced: FileEntry[];
  /** Extra copies of an event id dropped (producer retries Kafka accepted twice): their offsets and the XOR of their row hashes. */
  dropped: { offsets: string[]; rowHash: string };
  generation: number;
  writtenAt: string;
  writer: string;
}

/** A day removed whole by retention (AUDIT_RETENTION): its files are gone on purpose. */
export interface RetentionDigest {
  kind: 'retention';
  dt: string;
  retentionMs: number;
  /** The last removal of the day: files listed before it are gone on purpose. */
  writtenAt: string;
  writer: string;
  /** The first removal, when the day was removed again (files stored into it after the first). */
  firstWrittenAt?: string;
  /** Data files found in the day after an earlier removal and removed with it, by every later removal. */
  late?: { key: string; size: number; removedAt: string }[];
}

export type DigestBody = ChainDigest | CompactionDigest | RetentionDigest;

export interface Envelope {
  format: typeof ENVELOPE_FORMAT;
  keyId: string;
  body: string;
  /** Ed25519 signature of `body` (UTF-8), base64. */
  signature: string;
}

/** A signer's public key as published in the store. */
export interface PublishedKey {
  format: typeof KEY_FORMAT;
  keyId: string;
  algorithm: 'ed25519';
  /** SPKI PEM. */
  publicKey: string;
  /** Which service signs with it (informational). */
  role: string;
  /** Digests written before this are not accepted under this key. */
  validFrom: string;
  /** Set when the key is retired: digests written after it are not accepted. */
  validUntil?: string;
}

export function chainKey(topic: string, partition: number, seq: number): string {
  return `${DIGEST_ROOT}chain/${topic}/${partition}/${String(seq).padStart(12, '0')}.json`;
}

const CHAIN_RE = /^_digests\/chain\/(.+)\/(\d+)\/(\d{12})\.json$/;

export function parseChainKey(key: string): { topic: string; partition: number; seq: number } | null {
  const m = CHAIN_RE.exec(key);
  return m ? { topic: m[1]!, partition: Number(m[2]), seq: Number(m[3]) } : null;
}

export function compactionDigestKey(dataKey: string): string {
  return `${DIGEST_ROOT}compaction/${dataKey.replace(/\.parquet$/, '.json')}`;
}

export function retentionDigestKey(dt: string): string {
  return `${DIGEST_ROOT}retention/dt=${dt}.json`;
}

export function keyObjectKey(keyId: string): string {
  return `${DIGEST_ROOT}keys/${keyId}.json`;
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class DigestFormatError extends Error {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`${key}: ${why}`);
    this.name = 'DigestFormatError';
  }
}

export function decodeEnvelope(bytes: Buffer, key: string): Envelope {
  let e: Partial<Envelope>;
  try {
    e = JSON.parse(bytes.toString('utf8')) as Partial<Envelope>;
  } catch (err) {
    throw new DigestFormatError(key, `not JSON (${(err as Error).message})`);
  }
  if (e.format !== ENVELOPE_FORMAT || typeof e.keyId !== 'string' || typeof e.body !== 'string' || typeof e.signature !== 'string') {
    throw new DigestFormatError(key, 'not a digest envelope');
  }
  return e as Envelope;
}

export function decodeBody(envelope: Envelope, key: string): DigestBody {
  try {
    const body = JSON.parse(envelope.body) as DigestBody;
    if (body.kind !== 'chain' && body.kind !== 'compaction' && body.kind !== 'retention') throw new Error(`unknown kind ${String((body as { kind?: unknown }).kind)}`);
    return body;
  } catch (err) {
    throw new DigestFormatError(key, `unreadable body (${(err as Error).message})`);
  }
}
