import { createHash } from 'node:crypto';
import type { Opened } from '../trust/signed-object';
import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { type FileIndex, type RowGroupIndex, parseFileIndex } from './file-index';

/**
 * The signed per-file index (issue 19). Whoever writes a data file (consumer,
 * compactor, or the maintainer rebuilding a failed index) signs its index, and
 * the body binds it to that file: its key and byte size, which a reader checks
 * against the listing before using it, and its row count, which a reader checks
 * against the footer when it reads one. An index moved to another file, or kept
 * after its file was replaced by one of another size, is refused like a forged one.
 *
 * Stored as the digests' JSON envelope (trust/format.ts) around this body.
 * Extending it (actor/tenant filters, page locations) adds optional fields or
 * entries of `filters`; readers ignore what they do not know, and `version`
 * changes only for a change an old reader would misread.
 */
export const FILE_INDEX_KIND = 'file-index';

export interface FilterBits {
  /** Hash family (BLOOM_HASH); a filter of another family is ignored, never trusted. */
  hash: string;
  hashes: number;
  /** The filter's bits, base64. */
  bits: string;
}

export interface SignedFileIndexBody {
  kind: typeof FILE_INDEX_KIND;
  version: 2;
  writtenAt: string;
  writer?: string;
  /** The data file, relative to the store prefix, and its byte size. */
  key: string;
  bytes: number;
  rows: number;
  /** SHA-256 of the data file, when the writer hashed it anyway (for verify; a reader cannot check it cheaply). */
  sha256?: string;
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupIndex[];
  /** Bloom filters by what they hold; `object` = `object_type:object_id`. */
  filters: { object?: FilterBits } & Record<string, FilterBits | undefined>;
}

export function fileIndexBody(index: FileIndex, writtenAt: Date, writer?: string, sha256?: string): SignedFileIndexBody {
  const filters: SignedFileIndexBody['filters'] = {};
  if (index.bloom && index.bloomHashes && index.bloomHash) filters.object = { hash: index.bloomHash, hashes: index.bloomHashes, bits: index.bloom };
  if (index.subjects?.actor) filters.actor = index.subjects.actor;
  if (index.subjects?.tenant) filters.tenant = index.subjects.tenant;
  return {
    kind: FILE_INDEX_KIND,
    version: 2,
    writtenAt: writtenAt.toISOString(),
    ...(writer ? { writer } : {}),
    key: index.key,
    bytes: index.bytes,
    rows: index.rows,
    ...(sha256 ? { sha256 } : {}),
    minOccurredAt: index.minOccurredAt,
    maxOccurredAt: index.maxOccurredAt,
    rowGroups: index.rowGroups,
    filters,
  };
}

/** The stored bytes of a per-file index: signed when the writer has a key, else the previous release's bare JSON. */
export function encodeFileIndex(index: FileIndex, signer: DigestSigner | null, opts: { writer?: string; sha256?: string; now?: Date } = {}): string {
  if (!signer) return JSON.stringify(index);
  return signer.seal(fileIndexBody(index, opts.now ?? new Date(), opts.writer, opts.sha256));
}

function fromBody(body: SignedFileIndexBody, objectKey: string): FileIndex {
  if (body.version !== 2 || typeof body.key !== 'string' || !Array.isArray(body.rowGroups) || !Number.isSafeInteger(body.bytes)) {
    throw new UntrustedObjectError(objectKey, 'malformed', `unsupported index body (version ${String(body.version)})`);
  }
  const f = body.filters?.object;
  const { actor, tenant } = body.filters ?? {};
  return {
    version: 1,
    key: body.key,
    rows: body.rows,
    bytes: body.bytes,
    minOccurredAt: body.minOccurredAt,
    maxOccurredAt: body.maxOccurredAt,
    rowGroups: body.rowGroups,
    ...(f ? { bloom: f.bits, bloomHashes: f.hashes, bloomHash: f.hash } : {}),
    ...(actor || tenant ? { subjects: { ...(actor ? { actor } : {}), ...(tenant ? { tenant } : {}) } } : {}),
  };
}

/** The data file an index must describe, as the listing shows it. */
export interface ListedFile {
  key: string;
  size: number;
}

/**
 * Opens a per-file index under the reader's trust policy and checks it
 * describes `file` (key and size). Throws UntrustedObjectError (the caller reads
 * the file without it). In unsigned mode the previous release's bare JSON is accepted.
 */
export function openFileIndex(policy: TrustPolicy, bytes: Buffer, objectKey: string, file: ListedFile): Opened<SignedFileIndexBody> & { index: FileIndex } {
  const opened = openUnderPolicy<SignedFileIndexBody>(policy, bytes, objectKey, FILE_INDEX_KIND, (b) => {
    const legacy = parseFileIndex(b.toString('utf8'), objectKey);
    return { ...fileIndexBody(legacy, new Date(0)), writtenAt: '' };
  });
  const index = fromBody(opened.body, objectKey);
  if (index.key !== file.key) throw new UntrustedObjectError(objectKey, 'malformed', `describes ${index.key}, not ${file.key}`);
  if (index.bytes !== file.size) throw new UntrustedObjectError(objectKey, 'malformed', `describes a ${index.bytes}-byte ${file.key}; the stored file has ${file.size} bytes`);
  return { ...opened, index };
}

/** SHA-256 (hex) of bytes: binds a manifest's binary section to its signed header. */
export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
