import { readFile, writeFile } from 'node:fs/promises';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { StorageError } from './errors';
import type { LockStatus, ObjectInfo, ObjectStore } from './object-store';

export interface S3StoreOptions {
  bucket: string;
  prefix: string;
  region: string;
  /** Set for S3-compatible servers (MinIO, ...); path-style addressing is used then. */
  endpoint?: string;
  /** SDK-level attempts per request (the consumer adds its own backoff on top). */
  maxAttempts?: number;
}

interface S3ErrorShape {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return (err as S3ErrorShape | null)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as S3ErrorShape | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404;
}

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(opts: S3StoreOptions) {
    const config: S3ClientConfig = {
      region: opts.region,
      maxAttempts: opts.maxAttempts ?? 3,
      // Checksums only where S3 requires them: S3-compatible servers differ in
      // their support for the newer default (trailing CRC32 on every upload).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.endpoint) {
      config.endpoint = opts.endpoint;
      config.forcePathStyle = true;
    }
    this.client = new S3Client(config);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ? `${opts.prefix}/` : '';
    this.description = `s3://${opts.bucket}/${opts.prefix}`;
  }

  private fullKey(key: string): string {
    return this.prefix + key;
  }

  private fail(op: string, key: string, err: unknown): StorageError {
    const name = (err as S3ErrorShape | null)?.name;
    return new StorageError(op, `s3://${this.bucket}/${this.fullKey(key)}`, err, name);
  }

  async putFile(key: string, localPath: string): Promise<void> {
    // Files are bounded by the rotation limits (tens of MB), so one buffered PUT
    // is simpler and as fast as a multipart upload, and retries resend cleanly.
    await this.put(key, await readFile(localPath));
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Body: body }));
    } catch (err) {
      throw this.fail('put', key, err);
    }
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Body: body, IfNoneMatch: '*' }),
      );
      return true;
    } catch (err) {
      // 412: another writer created it first; 409: a concurrent conditional write is in flight.
      const status = httpStatus(err);
      if (status === 412 || status === 409) return false;
      throw this.fail('conditional put', key, err);
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.fail('get', key, err);
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Range: `bytes=${start}-${end - 1}` }),
      );
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      throw this.fail('ranged get', key, err);
    }
  }

  async download(key: string, localPath: string): Promise<void> {
    const body = await this.get(key);
    if (body === null) throw this.fail('download', key, new Error('no such object'));
    await writeFile(localPath, body);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.fullKey(prefix), ContinuationToken: token }),
        );
      } catch (err) {
        throw this.fail('list', prefix, err);
      }
      for (const obj of out.Contents ?? []) {
        if (obj.Key) yield { key: obj.Key.slice(this.prefix.length), size: obj.Size ?? 0, lastModified: obj.LastModified?.getTime() };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const found: string[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.fullKey(prefix),
            Delimiter: '/',
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw this.fail('list', prefix, err);
      }
      for (const p of out.CommonPrefixes ?? []) if (p.Prefix) found.push(p.Prefix.slice(this.prefix.length));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (err) {
      throw this.fail('delete', key, err);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let errors: { Key?: string; Code?: string; Message?: string }[];
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.fullKey(k) })), Quiet: true } }),
        );
        errors = out.Errors ?? [];
      } catch (err) {
        throw this.fail('delete', `${batch[0]} (and ${batch.length - 1} more)`, err);
      }
      // Per-key failures (a locked object, access denied) come back in the answer, not as an error.
      const first = errors.find((e) => e.Code !== 'NoSuchKey');
      if (first) {
        throw this.fail('delete', first.Key ?? batch[0]!, new Error(`${first.Code ?? 'error'}: ${first.Message ?? ''} (${errors.length} of ${batch.length} keys refused)`));
      }
    }
  }

  /** Whether the bucket has Object Lock on (asked once): without it no object can be locked, and no HEAD is needed. */
  private lockEnabled: Promise<boolean> | null = null;

  async lockStatus(key: string): Promise<LockStatus | null> {
    this.lockEnabled ??= this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket })).then(
      (out) => out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled',
      (err: unknown) => {
        // No configuration (the usual bucket) is an error reply, not an empty one.
        if (httpStatus(err) === 404 || /ObjectLockConfigurationNotFound/i.test((err as S3ErrorShape).name ?? '')) return false;
        this.lockEnabled = null;
        throw this.fail('get object lock configuration', '', err);
      },
    );
    if (!(await this.lockEnabled)) return null;
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      const until = out.ObjectLockRetainUntilDate?.getTime() ?? null;
      return { retainUntil: until, legalHold: out.ObjectLockLegalHoldStatus === 'ON' };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.fail('head', key, err);
    }
  }

  /** The URI of a key, as an engine outside the project names the object. */
  uri(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  async check(): Promise<void> {
    try {
      // A one-key listing of the store's own prefix, not HeadBucket: HeadBucket needs
      // s3:ListBucket with no prefix condition, which a least-privilege policy scoped
      // to the prefix (infra/iam/) does not grant. It answers 404 for a missing
      // bucket and 403 without access just the same.
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
    } catch (err) {
      const status = httpStatus(err);
      const reason =
        status === 404 ? new Error(`bucket ${this.bucket} does not exist`) : status === 403 ? new Error('access denied') : err;
      throw new StorageError('open', `s3://${this.bucket}`, reason, status === 404 ? 'NoSuchBucket' : (err as S3ErrorShape | null)?.name);
    }
  }

  close(): void {
    this.client.destroy();
  }
}

/** Keys per DeleteObjects request: the S3 API's limit. */
const DELETE_BATCH = 1000;
