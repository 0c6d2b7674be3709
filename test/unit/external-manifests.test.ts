import type { DayState } from '../../catalog';
import { checkExternalManifests } from '../../verify/external-manifests';

const uri = (key: string) => `s3://audit/events/${key}`;
const day = (dt: string, keys: string[]) => ({ dt, files: keys.map((key) => ({ key, size: 1 })) }) as unknown as DayState;
const raw = (dt: string, a: number, b: number) => `dt=${dt}/t-0-${a}-${b}.parquet`;

describe('external manifests checked against the signed compactions', () => {
  const D = '2026-01-11';
  const E = '2026-01-09';
  const r1 = raw(D, 0, 9);
  const r2 = raw(D, 10, 19);
  const c1 = `dt=${D}/t-0-0-19.c1-aaaa.parquet`;
  const days = new Map([[D, day(D, [r1, r2, c1])], [E, day(E, [raw(E, 20, 29)])]]);
  const held = (key: string) => new Set(key === c1 ? [r1, r2] : []);
  const check = (key: string, dt: string, keys: string[]) => checkExternalManifests([{ key, dt, body: keys.map((k) => `${uri(k)}\n`).join('') }], days, uri, held);

  it('accepts the live set, and a manifest one pass behind it', () => {
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, [c1])).toEqual([]);
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, [r1, r2])).toEqual([]);
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, [r1])).toEqual([]);
  });

  it('names a manifest moved to another day, one naming a file twice, and one naming rows twice', () => {
    expect(check(`_symlink_format_manifest/dt=${E}/manifest`, E, [c1]).map((f) => f.message)).toEqual([
      `names "${uri(c1)}", which is not a data file of dt=${E} in the store`,
    ]);
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, [r1, r1])).toHaveLength(1);
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, [r2, c1]).map((f) => f.message)).toEqual([
      `names ${r2} and ${c1}, which both hold the rows of ${r2}: an engine reads them twice`,
    ]);
    expect(check(`_symlink_format_manifest/dt=${D}/manifest`, D, ['dt=2026-01-11/forged.parquet'])).toHaveLength(1);
  });
});
