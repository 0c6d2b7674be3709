/**
 * Watches an Iceberg table of a JDBC catalog from outside the writer: the
 * catalog row (PostgreSQL) points at the current metadata file (S3), whose
 * current snapshot's summary counts the committed records. That is what a reader
 * of the table sees, so "done" for the Iceberg sink is "every record visible".
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';

export interface IcebergTableRef {
  catalog: string;
  namespace: string;
  name: string;
}

interface TableMetadata {
  'current-snapshot-id'?: number | null;
  snapshots?: { 'snapshot-id': number; summary?: Record<string, string> }[];
}

export class IcebergTableWatcher {
  constructor(
    private readonly pg: Client,
    private readonly s3: S3Client,
  ) {}

  /** Records in the table's current snapshot; 0 while the table or a snapshot does not exist yet. */
  async committedRecords(t: IcebergTableRef): Promise<number> {
    let location: string | undefined;
    try {
      const res = await this.pg.query<{ metadata_location: string }>(
        'SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3',
        [t.catalog, t.namespace, t.name],
      );
      location = res.rows[0]?.metadata_location;
    } catch (err) {
      // The catalog creates its tables on first use: before that there is nothing to see.
      if ((err as { code?: string }).code === '42P01') return 0;
      throw err;
    }
    if (!location) return 0;
    const m = /^s3a?:\/\/([^/]+)\/(.+)$/.exec(location);
    if (!m) throw new Error(`unexpected Iceberg metadata location ${location}`);
    const body = await this.s3.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
    const meta = JSON.parse(await body.Body!.transformToString()) as TableMetadata;
    const current = meta.snapshots?.find((s) => s['snapshot-id'] === meta['current-snapshot-id']);
    return Number(current?.summary?.['total-records'] ?? 0);
  }
}

export interface PrefixSize {
  objects: number;
  bytes: number;
}

/** Objects and bytes stored under a prefix (what a reader's output costs on S3). */
export async function prefixSize(s3: S3Client, bucket: string, prefix: string, match: (key: string) => boolean = () => true): Promise<PrefixSize> {
  let token: string | undefined;
  let objects = 0;
  let bytes = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (!o.Key || !match(o.Key)) continue;
      objects++;
      bytes += o.Size ?? 0;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return { objects, bytes };
}
