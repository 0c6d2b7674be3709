import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { openDuckDb } from '../../../query/history';
import { sqlString } from '../../../storage/sql';
import { compactedFileName, cutKey, generationKey, indexKey, parseDataKey, parseGenerationKey, parseStoredFile } from '../../../storage';
import { chainKey, keyObjectKey, parseChainKey } from '../../../trust/format';
import { type TargetClass, classify, listKeys } from './classes';
import { editJsonLeaf, editLines, editManifestBin } from './edits';
import { TOPIC } from './source';

export const MUTATION_KINDS = ['delete', 'replace', 'truncate', 'add', 'rename', 'editJson', 'flip'] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

/**
 * One tampering, as fast-check generates and shrinks it. `target` and `donor`
 * pick objects of the class modulo how many there are; `at` is a position as
 * a fraction of the object's size; `pick` chooses among fields, lines, rows or
 * names; `delta` is how much a number moves.
 */
export interface Mutation {
  cls: TargetClass;
  kind: MutationKind;
  target: number;
  donor: number;
  at: number;
  pick: number;
  delta: number;
}

export function mutationArb(cls?: TargetClass): fc.Arbitrary<Mutation> {
  return fc.record({
    cls: cls ? fc.constant(cls) : fc.constantFrom(...(['chainHead', 'olderDigest', 'cutClaim', 'generation', 'index', 'dayManifest', 'key', 'dataFile', 'outside'] as const)),
    kind: fc.constantFrom(...MUTATION_KINDS),
    target: fc.nat({ max: 1000 }),
    donor: fc.nat({ max: 1000 }),
    at: fc.double({ min: 0, max: 0.999, noNaN: true }),
    pick: fc.nat({ max: 1000 }),
    delta: fc.constantFrom(1, 2, 5, 100, -1),
  });
}

/** What was done, for reports and counterexamples. */
export interface Applied {
  description: string;
}

export interface MutationContext {
  storeDir: string;
  /** Offsets the next consumer run starts from, per partition (where a forged claim bites). */
  nextOffsets: readonly bigint[];
  attackerKey: { publicKeyPem: string; keyId: string };
}

const at = (m: Mutation, len: number) => Math.min(len - 1, Math.floor(m.at * len));

/** Applies one mutation to one object of its class in the store copy. */
export async function applyMutation(m: Mutation, ctx: MutationContext): Promise<Applied> {
  const keys = await listKeys(ctx.storeDir);
  const classes = classify(keys);
  if (m.cls === 'outside') return plantOutside(m, ctx, classes.get('dataFile')!);
  const members = classes.get(m.cls)!;
  if (members.length === 0) throw new Error(`the base store has no ${m.cls} object`);
  const key = members[m.target % members.length]!;
  const path = (k: string) => join(ctx.storeDir, k);
  const bytes = await readFile(path(key));
  switch (m.kind) {
    case 'delete':
      await rm(path(key));
      return { description: `delete ${key}` };
    case 'truncate': {
      const n = at(m, bytes.length);
      await writeFile(path(key), bytes.subarray(0, n));
      return { description: `truncate ${key} to ${n} of ${bytes.length} bytes` };
    }
    case 'flip': {
      const i = at(m, bytes.length);
      const out = Buffer.from(bytes);
      out[i] = out[i]! ^ (1 + (m.pick % 255));
      await writeFile(path(key), out);
      return { description: `flip byte ${i} of ${key} (xor ${1 + (m.pick % 255)})` };
    }
    case 'replace': {
      const others = members.filter((k) => k !== key);
      if (others.length === 0) return { description: `replace ${key} by an edit of itself: ${await editInPlace(m, key, bytes, ctx)}` };
      const donor = others[m.donor % others.length]!;
      await copyFile(path(donor), path(key));
      return { description: `replace ${key} by the bytes of ${donor}` };
    }
    case 'editJson':
      return { description: `edit ${key}: ${await editInPlace(m, key, bytes, ctx)}` };
    case 'add':
    case 'rename': {
      const { to, content, why } = await newObject(m, key, bytes, ctx, keys);
      await mkdir(dirname(path(to)), { recursive: true });
      await writeFile(path(to), content);
      if (m.kind === 'rename') await rm(path(key));
      return { description: `${m.kind} ${key} -> ${to}${why ? ` (${why})` : ''}` };
    }
  }
}

async function editInPlace(m: Mutation, key: string, bytes: Buffer, ctx: MutationContext): Promise<string> {
  const file = join(ctx.storeDir, key);
  if (key.endsWith('.parquet')) return editParquetRow(file, file, m);
  if (key.endsWith('_manifest.bin')) {
    const r = editManifestBin(bytes, m.pick, m.delta);
    await writeFile(file, r.bytes);
    return r.what;
  }
  if (key.endsWith('/manifest')) {
    const r = editLines(bytes.toString('utf8'), m.pick);
    await writeFile(file, r.text);
    return r.what;
  }
  const r = editJsonLeaf(bytes.toString('utf8'), m.pick, m.delta);
  await writeFile(file, r.text);
  return r.what;
}

/**
 * A row of a Parquet file changed (actor or event id), written back as a
 * valid Parquet file: what someone who can write the bucket but holds no key
 * would forge.
 */
export async function editParquetRow(src: string, dst: string, m: Pick<Mutation, 'pick'>): Promise<string> {
  const { instance, conn } = await openDuckDb();
  try {
    const n = Number((await conn.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${sqlString(src)})`)).getRowObjects()[0]!.n);
    const row = m.pick % Math.max(1, n);
    const column = m.pick % 2 === 0 ? 'actor_id' : 'event_id';
    const value = column === 'actor_id' ? `'mallory'` : `CAST('ffffffff-ffff-4fff-8fff-${String(m.pick).padStart(12, '0')}' AS UUID)`;
    const tmp = `${dst}.forged`;
    await conn.run(
      `COPY (SELECT * EXCLUDE (file_row_number) REPLACE (CASE WHEN file_row_number = ${row} THEN ${value} ELSE ${column} END AS ${column}) ` +
        `FROM read_parquet(${sqlString(src)}, file_row_number = true) ORDER BY file_row_number) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    await rename(tmp, dst);
    return `row ${row} of ${n}: ${column} changed`;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A new key of the same class for `add`/`rename`, and what to store there. */
async function newObject(m: Mutation, key: string, bytes: Buffer, ctx: MutationContext, keys: readonly string[]): Promise<{ to: string; content: Buffer; why?: string }> {
  const taken = new Set(keys);
  const free = (candidates: string[]) => candidates.find((k) => !taken.has(k)) ?? `${key}.${m.pick}`;
  const edited = () => Buffer.from(editJsonLeaf(bytes.toString('utf8'), m.pick, m.delta).text);
  switch (m.cls) {
    case 'chainHead':
    case 'olderDigest': {
      const c = parseChainKey(key);
      if (c) {
        // The next number, or a gap after the head: a forged (unsigned by any trusted key) continuation.
        const seqs = keys.map(parseChainKey).filter((x) => x && x.partition === c.partition).map((x) => x!.seq);
        const head = Math.max(...seqs);
        const seq = head + 1 + (m.pick % 3);
        const forged = forgeChainContinuation(bytes, seq, m.delta);
        return { to: chainKey(c.topic, c.partition, seq), content: forged ?? bytes, why: forged ? `forged digest ${seq} continuing the chain` : 'copy' };
      }
      return { to: free([key.replace(/\.json$/, `-${m.pick}.json`)]), content: m.pick % 2 ? edited() : bytes };
    }
    case 'cutClaim': {
      const p = Number(/^_cuts\/.+\/(\d+)\/\d+\.json$/.exec(key)![1]);
      const first = ctx.nextOffsets[p] ?? 0n;
      const last = first + BigInt(Math.abs(m.delta) * (1 + (m.pick % 40))) - 1n;
      const claim = { ...(JSON.parse(bytes.toString('utf8')) as Record<string, unknown>), first: first.toString(), last: last.toString(), owner: 'mallory' };
      return { to: free([cutKey(TOPIC, p, first.toString())]), content: Buffer.from(JSON.stringify(claim)), why: `claim ${first}-${last} where the next events land` };
    }
    case 'generation': {
      const g = parseGenerationKey(key)!;
      const gens = keys.map(parseGenerationKey).filter((x) => x && x.dt === g.dt).map((x) => x!.generation);
      const next = Math.max(...gens) + 1 + (m.pick % 2);
      return { to: generationKey(g.dt, next), content: m.pick % 3 === 0 ? bytes : edited(), why: 'a newer generation' };
    }
    case 'index': {
      const data = keys.map(parseStoredFile).filter((x) => x !== null);
      const d = data[m.donor % data.length]!;
      const shifted = compactedFileName(d.topic, d.partition, d.first, String(BigInt(d.last) + BigInt(Math.abs(m.delta))), 1, 'x');
      return { to: free([indexKey(d.dt, d.key.slice(d.key.indexOf('/') + 1)), indexKey(d.dt, shifted)]), content: m.pick % 2 ? edited() : bytes };
    }
    case 'dayManifest': {
      const dt = /dt=(\d{4}-\d{2}-\d{2})/.exec(key)![1]!;
      const other = new Date(Date.parse(dt) + (1 + (m.pick % 2)) * 86_400_000).toISOString().slice(0, 10);
      return { to: free([key.replace(dt, other), key.replace(dt, '2026-01-09')]), content: bytes, why: 'another day' };
    }
    case 'key': {
      const pub = { ...(JSON.parse(bytes.toString('utf8')) as Record<string, unknown>) };
      const attacker = m.pick % 2 === 0;
      const id = attacker ? ctx.attackerKey.keyId : `${'f'.repeat(15)}${m.pick % 10}`;
      if (attacker) Object.assign(pub, { keyId: id, publicKey: ctx.attackerKey.publicKeyPem });
      else pub.keyId = id;
      return { to: keyObjectKey(id), content: Buffer.from(JSON.stringify(pub)), why: attacker ? "the attacker's key" : 'a copy under another id' };
    }
    case 'dataFile': {
      const d = parseDataKey(key) ?? parseStoredFile(key);
      const shift = BigInt(1000 * Math.abs(m.delta));
      const name = parseDataKey(key)
        ? `${TOPIC}-${d!.partition}-${BigInt(parseDataKey(key)!.firstOffset) + shift}-${BigInt(parseDataKey(key)!.lastOffset) + shift}.parquet`
        : key.slice(key.indexOf('/') + 1).replace(/\.c(\d+)-/, (_s, g: string) => `.c${Number(g) + 1}-`);
      const dt = m.pick % 3 === 2 ? '2026-01-11' : key.slice(3, 13);
      const to = free([`dt=${dt}/${name}`, `dt=${dt}/${key.slice(key.indexOf('/') + 1)}`]);
      return { to, content: bytes, why: `a plausible layout name` };
    }
    case 'outside':
      throw new Error('outside objects are planted, not derived');
  }
}

/** A chain digest body moved to `seq`, starting after the copied one and reaching `delta` cuts further; the signature is kept (so invalid). */
function forgeChainContinuation(bytes: Buffer, seq: number, delta: number): Buffer | null {
  try {
    const env = JSON.parse(bytes.toString('utf8')) as { body: string };
    const body = JSON.parse(env.body) as { seq: number; from: string; to: string; files: unknown[]; skipped: [string, string][]; prev: unknown };
    const from = BigInt(body.to) + 1n;
    const to = from + BigInt(Math.abs(delta) * 50) - 1n;
    const forged = { ...body, seq, from: from.toString(), to: to.toString(), files: [], deadLetters: [], skipped: [[from.toString(), to.toString()]] };
    return Buffer.from(JSON.stringify({ ...env, body: JSON.stringify(forged) }));
  } catch {
    return null;
  }
}

/**
 * An object the layout does not name, holding data readers might pick up:
 * a copy (or a forged copy) of a data file under a name beside the layout, or
 * a data file moved there.
 */
async function plantOutside(m: Mutation, ctx: MutationContext, dataFiles: readonly string[]): Promise<Applied> {
  const src = dataFiles[m.donor % dataFiles.length]!;
  const dt = src.slice(3, 13);
  const name = src.slice(src.indexOf('/') + 1);
  const places = [
    `dt=${dt}/extra-${m.pick}.parquet`,
    `dt=${dt}/nested/${name}`,
    `dt=${dt}/${name}.bak`,
    `dt=2026-13-01/${name}`,
    `dt=${dt}/_live/${name}`,
    `stray/${name}`,
    `dt=${dt}/${name.replace('.parquet', '.PARQUET')}`,
    `dt=${dt}/other.topic-0-0-${m.pick}.parquet`,
    `_index/dt=${dt}/${name}`,
  ];
  const to = places[m.pick % places.length]!;
  const dst = join(ctx.storeDir, to);
  await mkdir(dirname(dst), { recursive: true });
  const from = join(ctx.storeDir, src);
  switch (m.kind) {
    case 'rename':
      await rename(from, dst);
      return { description: `move ${src} -> ${to}` };
    case 'replace':
    case 'editJson':
      return { description: `plant ${to}: a forged copy of ${src}, ${await editParquetRow(from, dst, m)}` };
    case 'truncate':
    case 'flip': {
      const bytes = Buffer.from(await readFile(from));
      const i = at(m, bytes.length);
      if (m.kind === 'flip') bytes[i] = bytes[i]! ^ 0xff;
      await writeFile(dst, m.kind === 'flip' ? bytes : bytes.subarray(0, i));
      return { description: `plant ${to}: a ${m.kind === 'flip' ? 'corrupted' : 'truncated'} copy of ${src}` };
    }
    case 'delete':
    case 'add':
      await copyFile(from, dst);
      return { description: `plant ${to}: a copy of ${src}` };
  }
}
