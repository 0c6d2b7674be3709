import { type DayState, type ObjectStore, INDEX_PREFIX, manifestKey, openDayManifest } from '../storage';
import { mapLimit } from '../storage/concurrency';
import { openFileIndex } from '../storage/signed-index';
import { UntrustedObjectError } from './signed-object';
import type { TrustPolicy } from './trust-policy';

/**
 * verify's check of the lookup indexes (issue 19): every live data file's
 * index, and every day's manifest, must be signed by a trusted key and describe
 * what is stored. Readers ignore one that fails, so no event is lost, but a
 * rewritten index is tampering and is named: `index-invalid`, `manifest-invalid`.
 * A missing index is no finding (a consumer that died between the data file and
 * its index leaves one; readers read the file whole and the maintainer rebuilds it).
 */
export interface IndexFinding {
  code: 'index-invalid' | 'manifest-invalid';
  key: string;
  message: string;
}

export async function checkIndexes(
  store: Pick<ObjectStore, 'list' | 'get'>,
  policy: TrustPolicy,
  days: readonly DayState[],
  concurrency: number,
): Promise<{ findings: IndexFinding[]; checked: number }> {
  const findings: IndexFinding[] = [];
  let checked = 0;
  const fail = (code: IndexFinding['code'], err: UntrustedObjectError) => findings.push({ code, key: err.key, message: `${err.message} (${err.code}); readers ignore it, audit-admin maintain rebuilds it` });
  await mapLimit(days, concurrency, async (day) => {
    const listed = new Set<string>();
    for await (const o of store.list(`${INDEX_PREFIX}dt=${day.dt}/`)) listed.add(o.key);
    const mKey = manifestKey(day.dt);
    if (listed.has(mKey)) {
      const bytes = await store.get(mKey);
      if (bytes !== null) {
        checked++;
        try {
          openDayManifest(policy, bytes, mKey);
        } catch (err) {
          if (!(err instanceof UntrustedObjectError)) throw err;
          fail('manifest-invalid', err);
        }
      }
    }
    await mapLimit(day.live, concurrency, async (f) => {
      const key = `${INDEX_PREFIX}${f.key.replace(/\.parquet$/, '.json')}`;
      if (!listed.has(key)) return;
      const bytes = await store.get(key);
      if (bytes === null) return;
      checked++;
      try {
        openFileIndex(policy, bytes, key, f);
      } catch (err) {
        if (!(err instanceof UntrustedObjectError)) throw err;
        fail('index-invalid', err);
      }
    });
  });
  return { findings, checked };
}
