import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TargetClass } from './classes';
import { type Mutation, applyMutation } from './mutations';
import { type Halt, type Pipeline, drain, maintainOnce } from './pipeline';
import { type ReaderName, type ReaderResult, type VerifyOutcome, readAll, verifyInProcess } from './readers';
import { ScriptedSource } from './source';
import { EXTERNAL_MANIFEST_PREFIX } from '../../../maintenance/external-manifest';

/** A signed, compacted store built once, and the source it was read from. */
export interface BaseStore {
  dir: string;
  source: ScriptedSource;
}

/**
 * Events of each case: ids from here on, NEW_EVENTS of them, on one old day
 * (late events: its generation and manifests are rewritten) and one day new
 * to the store, every partition. Two days, not four: each merged day and
 * partition costs a DuckDB merge, the bulk of a case's time.
 */
const CASE_ID_BASE = 1_000_000;
export const NEW_EVENTS = 18;

/**
 * Three rounds of events: two compacted (two generations per day, superseded
 * files gone with a 0s grace), the third left as consumer files with their cut
 * claims. Three days, three partitions, object 0 with a third of the events.
 */
export async function buildBaseStore(p: Pipeline): Promise<BaseStore> {
  const dir = join(p.root, 'base');
  await mkdir(dir, { recursive: true });
  const source = new ScriptedSource();
  const rounds: [number, number, boolean][] = [[0, 180, true], [180, 60, true], [240, 30, false]];
  for (const [first, count, compact] of rounds) {
    source.produce(first, count);
    const halt = await drain(p, dir, source, 25);
    if (halt) throw new Error(`building the base store: consumer stopped: ${halt}`);
    if (compact) {
      const m = await maintainOnce(p, dir, source);
      if (m) throw new Error(`building the base store: maintenance failed: ${m}`);
    }
  }
  return { dir, source };
}

export type Verdict = 'verify-1' | 'readers-unchanged' | 'halted' | 'VIOLATION';

export interface ReaderCheck {
  lost: number;
  duplicated: number;
  unexpected: number;
  error?: string;
}

export interface CaseOutcome {
  cls: TargetClass | 'control';
  mutation: Mutation | null;
  applied: string;
  consumerHalt: Halt;
  maintainerHalt: Halt;
  verify: VerifyOutcome;
  readers: Record<ReaderName, ReaderCheck>;
  /** New events not committed (still in the source for a restart to read). */
  uncommitted: number;
  verdict: Verdict;
  /** Why a VIOLATION is one. */
  why: string;
  ms: number;
}

function check(r: ReaderResult, expected: ReadonlySet<string>): ReaderCheck {
  if ('error' in r) return { lost: expected.size, duplicated: 0, unexpected: 0, error: r.error };
  let lost = 0;
  let duplicated = 0;
  for (const id of expected) {
    const n = r.counts.get(id) ?? 0;
    if (n === 0) lost++;
    else if (n > 1) duplicated++;
  }
  const unexpected = [...r.counts.keys()].filter((id) => !expected.has(id)).length;
  return { lost, duplicated, unexpected };
}

const unchanged = (c: ReaderCheck) => c.error === undefined && c.lost === 0 && c.duplicated === 0 && c.unexpected === 0;

/**
 * One case: copy the base store, tamper with one object (none: the control), produce new events,
 * drain, one maintenance pass, verify, read three ways. The property:
 * verify exits 1, or every reader returns every expected event id exactly
 * once and nothing else. Expected: every old event and every new event the
 * consumer committed. A consumer or maintainer that stops is the designed
 * answer to a tampered chain, claim or generation ("stops, never skips
 * data"): what it did not commit is still in the source, so it is not
 * expected; what it committed is.
 */
export async function runCase(p: Pipeline, base: BaseStore, m: Mutation | null, caseNo: number): Promise<CaseOutcome> {
  const t0 = Date.now();
  const dir = join(p.root, 'cases', String(caseNo));
  await copyStoreDir(base.dir, dir);
  try {
    const source = base.source.clone();
    const applied = m ? await applyMutation(m, { storeDir: dir, nextOffsets: source.committed, attackerKey: p.attacker }) : { description: 'none (control)' };
    const fresh = source.produce(CASE_ID_BASE + caseNo * 100, NEW_EVENTS, [caseNo % 3, 3]);
    const consumerHalt = await drain(p, dir, source);
    const maintainerHalt = await maintainOnce(p, dir, source);
    const verify = await verifyInProcess(dir, p.publicKeyFile);
    const results = await readAll(dir, `${dir}-cache`, source.objectIds());
    const expected = new Set(source.committedEvents().map((e) => e.id));
    const readers = { object: check(results.object, expected), sql: check(results.sql, expected), external: check(results.external, expected) };
    const uncommitted = fresh.filter((e) => !expected.has(e.id)).length;
    const allUnchanged = Object.values(readers).every(unchanged);
    const halted = consumerHalt !== null || maintainerHalt !== null;
    let verdict: Verdict;
    let why = '';
    if (verify.code !== 1 && !allUnchanged) {
      verdict = 'VIOLATION';
      const bad = (Object.entries(readers) as [ReaderName, ReaderCheck][]).filter(([, c]) => !unchanged(c));
      why = `verify exit ${verify.code}${verify.code === 2 ? ` (${verify.stderr.slice(0, 160)})` : ''} while ${bad
        .map(([n, c]) => (c.error ? `${n} failed: ${c.error}` : `${n}: ${c.lost} lost, ${c.duplicated} duplicated, ${c.unexpected} unexpected`))
        .join('; ')}`;
    } else if (halted) verdict = 'halted';
    else if (verify.code === 1) verdict = 'verify-1';
    else verdict = 'readers-unchanged';
    return { cls: m?.cls ?? 'control', mutation: m, applied: applied.description, consumerHalt, maintainerHalt, verify, readers, uncommitted, verdict, why, ms: Date.now() - t0 };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}-cache`, { recursive: true, force: true });
  }
}

/**
 * A copy of the store directory that is a store of its own: the external manifests name files by
 * absolute URI, so in a plain copy they would name the original's files, which verify reports (and
 * a case would pass on that finding rather than on what its mutation did).
 */
async function copyStoreDir(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true });
  // FileObjectStore.uri: `file://` and the resolved path.
  const base = (dir: string) => `file://${resolve(dir)}/`;
  const [src, dst] = [base(from), base(to)];
  const root = join(to, EXTERNAL_MANIFEST_PREFIX);
  for (const day of await readdir(root).catch(() => [] as string[])) {
    const file = join(root, day, 'manifest');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.split(src).join(dst));
  }
}
