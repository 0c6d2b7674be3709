import type { Env } from '../config/env';
import { FileObjectStore } from './file-store';
import type { ObjectStore } from './object-store';
import { S3ObjectStore } from './s3-store';
import { parseStoreUrl } from '../config/store-url';

export function openStore(env: Pick<Env, 'AUDIT_STORE_URL' | 'AUDIT_S3_ENDPOINT' | 'AUDIT_S3_REGION'>): ObjectStore {
  const loc = parseStoreUrl(env.AUDIT_STORE_URL);
  if (loc.kind === 'file') return new FileObjectStore(loc.dir);
  return new S3ObjectStore({
    bucket: loc.bucket,
    prefix: loc.prefix,
    region: env.AUDIT_S3_REGION,
    endpoint: env.AUDIT_S3_ENDPOINT,
  });
}
