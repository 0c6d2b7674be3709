import {
  CURRENT_SCHEMA_ID,
  type RegistryEntry,
  type RegistryLookup,
  confluentHeader,
  encodeRecord,
  schemaType,
  singleObjectHeader,
} from '../../schemas';
import { AvroStagingTranscoder } from '../../consumer/staging/avro-transcoder';
import { LineArena } from '../../consumer/staging/line-arena';
import { type StagedRow, stagedLine } from '../../consumer/staging/staged-row';
import { TranscodePool, type TranscodeInput } from '../../consumer/staging/transcode-pool';
import { sampleRecord } from '../helpers/records';

const TEXTS = ['', 'plain', '"quoted"', 'back\\slash', 'new\nline', 'nul\u0000byte', 'é', '日本語', '😀 emoji', '\u2028'];

/** A batch mixing every framing, hostile strings and values the fast path declines. */
function batch(n: number, registry: boolean): TranscodeInput[] {
  const out: TranscodeInput[] = [];
  for (let i = 0; i < n; i++) {
    const rec = sampleRecord({
      object_type: ['invoice', 'a"b', 'ünï', '😀'][i % 4]!,
      object_id: `${TEXTS[i % TEXTS.length]}${i}`,
      actor_id: TEXTS[(i * 7) % TEXTS.length]!,
      occurred_at: Date.UTC(2026, 0, 1) * 1000 + i * 1_000_003,
      metadata: i % 3 === 0 ? { k: TEXTS[i % TEXTS.length]! } : {},
    });
    const kind = i % 7;
    const value =
      kind === 0
        ? encodeRecord(rec)
        : kind === 1
          ? encodeRecord(rec, 2, confluentHeader(registry ? 1 : 2))
          : kind === 2
            ? null
            : kind === 3
              ? Buffer.from('not avro at all')
              : kind === 4
                ? encodeRecord(sampleRecord({ event_id: 'not-a-uuid' }))
                : kind === 5
                  ? encodeRecord(rec, 2, confluentHeader(2)) // with the registry: absent, read as legacy v2
                  : encodeRecord(rec, 2, singleObjectHeader(2));
    out.push({ offset: String(1_000_000_000 + i * 3), value });
  }
  return out;
}

function comparable(row: StagedRow | null): unknown {
  return row === null ? null : { ...row, chunk: null, start: 0, end: 0, line: stagedLine(row).toString('utf8') };
}

const REGISTRY = new Map<number, RegistryEntry>([
  [1, { kind: 'found', version: 2, type: schemaType(2) }],
  [2, { kind: 'absent' }],
]);
const registryLookup: RegistryLookup = (id) => REGISTRY.get(id);

describe('transcode pool (worker threads)', () => {
  for (const registry of [false, true]) {
    it(`stages every message exactly as the in-thread transcoder does, declines included (${registry ? 'with' : 'without'} a registry)`, async () => {
      const lookup = registry ? registryLookup : undefined;
      const pool = new TranscodePool(2, CURRENT_SCHEMA_ID, lookup);
      const local = new AvroStagingTranscoder(CURRENT_SCHEMA_ID, lookup);
      try {
        const messages = batch(700, registry);
        // Two batches at once, on both workers, for two partitions.
        const [a, b] = await Promise.all([pool.transcode(3, messages), pool.transcode(5, messages.slice(100))]);
        const arena = new LineArena();
        let staged = 0;
        messages.forEach((m, i) => {
          const expected = local.transcode(m.value, 3, m.offset, arena);
          if (expected !== null) staged++;
          expect(comparable(a.row(i, m))).toEqual(comparable(expected));
        });
        messages.slice(100).forEach((m, i) => {
          expect(comparable(b.row(i, m))).toEqual(comparable(local.transcode(m.value, 5, m.offset, arena)));
        });
        // Kinds 0, 1, 5 and 6 of 7 take the fast path.
        expect(staged).toBe(400);
      } finally {
        await pool.close();
      }
    });
  }

  it('a failed worker rejects the batch and every later one with a TranscodeWorkerError', async () => {
    const pool = new TranscodePool(1, CURRENT_SCHEMA_ID);
    try {
      // Offsets the worker cannot handle are not possible from Kafka; a terminated worker is.
      await (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!.worker.terminate();
      await expect(pool.transcode(0, batch(10, false))).rejects.toThrow(/transcode worker exited/);
    } finally {
      await pool.close();
    }
  });
});
