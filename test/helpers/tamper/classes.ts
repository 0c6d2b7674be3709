import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseGenerationKey, parseStoredFile } from '../../../catalog';
import { parseChainKey } from '../../../trust/format';

/** The kinds of object a bucket writer can tamper with (issue 19). */
export const TARGET_CLASSES = [
  'chainHead', 'olderDigest', 'cutClaim', 'generation', 'index', 'dayManifest', 'key', 'dataFile', 'outside',
] as const;
export type TargetClass = (typeof TARGET_CLASSES)[number];

/** Every key under a file:// store's root, sorted (so a target index means the same object in every copy). */
export async function listKeys(storeDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else out.push(relative(storeDir, full).split(sep).join('/'));
    }
  };
  await walk(storeDir);
  return out.sort();
}

/**
 * The class of a stored key; `outside` for anything the layout does not name
 * (storage/README.md). Chain heads are the highest number of each partition's
 * chain; older chain digests and compaction/retention digests are `olderDigest`.
 */
export function classify(keys: readonly string[]): Map<TargetClass, string[]> {
  const heads = new Map<string, number>();
  for (const k of keys) {
    const c = parseChainKey(k);
    if (c) heads.set(`${c.topic}/${c.partition}`, Math.max(heads.get(`${c.topic}/${c.partition}`) ?? -1, c.seq));
  }
  const out = new Map<TargetClass, string[]>(TARGET_CLASSES.map((c) => [c, []]));
  for (const k of keys) out.get(classOf(k, heads))!.push(k);
  return out;
}

function classOf(k: string, heads: ReadonlyMap<string, number>): TargetClass {
  const chain = parseChainKey(k);
  if (chain) return heads.get(`${chain.topic}/${chain.partition}`) === chain.seq ? 'chainHead' : 'olderDigest';
  if (/^_digests\/(compaction\/dt=\d{4}-\d{2}-\d{2}\/.+|retention\/dt=\d{4}-\d{2}-\d{2})\.json$/.test(k)) return 'olderDigest';
  if (/^_digests\/keys\/[0-9a-f]+\.json$/.test(k)) return 'key';
  if (/^_cuts\/.+\/\d+\/\d+\.json$/.test(k)) return 'cutClaim';
  if (parseGenerationKey(k)) return 'generation';
  if (/^_index\/dt=\d{4}-\d{2}-\d{2}\/_manifest\.bin$/.test(k) || /^_symlink_format_manifest\/dt=\d{4}-\d{2}-\d{2}\/manifest$/.test(k)) return 'dayManifest';
  if (/^_index\/dt=\d{4}-\d{2}-\d{2}\/[^/]+\.json$/.test(k)) return 'index';
  if (parseStoredFile(k)) return 'dataFile';
  return 'outside';
}
