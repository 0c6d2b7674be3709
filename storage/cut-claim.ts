/**
 * The claim stored at `_cuts/<topic>/<partition>/<firstOffset>.json` (storage/layout.ts
 * `cutKey`): a signed envelope (kind `cut`) when the consumer signs, the bare JSON
 * otherwise (and in stores of the previous release). Written by the consumer, read by
 * the consumer on a replay and by the maintainer when it removes claims no replay needs.
 */
export interface CutClaim {
  kind: 'cut';
  topic: string;
  partition: number;
  first: string;
  last: string;
  owner: string;
  claimedAt: string;
  writtenAt: string;
}

/** A claim as the previous release wrote it: bare JSON, no kind (trust policies accept it in unsigned mode only). */
export function legacyClaim(bytes: Buffer): CutClaim {
  const c = JSON.parse(bytes.toString('utf8')) as Omit<CutClaim, 'kind' | 'writtenAt'>;
  if (c === null || typeof c !== 'object' || typeof c.last !== 'string') throw new Error('not a cut claim');
  return { ...c, kind: 'cut', writtenAt: c.claimedAt };
}
