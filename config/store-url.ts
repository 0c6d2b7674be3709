import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type StoreLocation =
  | { kind: 's3'; bucket: string; prefix: string; url: string }
  | { kind: 'file'; dir: string; url: string };

export class StoreUrlError extends Error {
  constructor(url: string, reason: string) {
    super(`invalid store URL ${JSON.stringify(url)}: ${reason} (expected s3://bucket/prefix or file:///dir)`);
    this.name = 'StoreUrlError';
  }
}

/** `s3://bucket/prefix` or `file:///abs/dir` or `file://./relative/dir` (relative to the working directory). */
export function parseStoreUrl(url: string, cwd: string = process.cwd()): StoreLocation {
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new StoreUrlError(url, `bad bucket name ${JSON.stringify(bucket)}`);
    return { kind: 's3', bucket, prefix, url };
  }
  if (url.startsWith('file://')) {
    const rest = url.slice('file://'.length);
    if (rest === '') throw new StoreUrlError(url, 'empty path');
    // file://./x and file://x are taken as relative paths: the WHATWG parser would treat "x" as a host.
    const dir = rest.startsWith('/') ? fileURLToPath(url) : resolve(cwd, rest);
    return { kind: 'file', dir: isAbsolute(dir) ? dir : resolve(cwd, dir), url };
  }
  throw new StoreUrlError(url, 'unsupported scheme');
}
