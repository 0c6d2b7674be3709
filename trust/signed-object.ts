import { type Envelope, ENVELOPE_FORMAT } from './format';
import { verifySignature } from './signer';
import { TrustedKeys } from './trusted-keys';

/**
 * Objects of the bucket that steer a decision (a chain head, a cut claim, a
 * generation, an index, a manifest) are stored in the digests' envelope
 * (`{format, keyId, body, signature}`, trust/format.ts), and opened only
 * through `openSigned`: signed by a trusted key, within the key's validity,
 * of the kind the caller expects. What fails is an `UntrustedObjectError` with
 * a code, never a value: the caller stops (chain heads, claims, generations)
 * or reads around it (indexes), and `verify` reports it.
 */

/** What every signed body carries: its kind, and when and by whom it was written (checked against the key's validity). */
export interface SignedBody {
  kind: string;
  writtenAt: string;
  writer?: string;
}

export type TrustFailureCode =
  /** Not an envelope: written without a key, or by something other than the pipeline. */
  | 'unsigned'
  /** An envelope whose body does not parse, or not of the expected kind or object. */
  | 'malformed'
  /** Signed by a key that is not trusted. */
  | 'untrusted-key'
  | 'bad-signature'
  /** Signed by a trusted key outside its validFrom/validUntil. */
  | 'key-not-valid';

export class UntrustedObjectError extends Error {
  constructor(
    readonly key: string,
    readonly code: TrustFailureCode,
    why: string,
  ) {
    super(`${key}: ${why}`);
    this.name = 'UntrustedObjectError';
  }
}

export interface Opened<T extends SignedBody> {
  body: T;
  /** The signer's key id; null for an unsigned object accepted in unsigned mode. */
  keyId: string | null;
}

/** Parses an envelope without checking it; null when the bytes are not one. */
export function parseEnvelope(bytes: Buffer): Envelope | null {
  let e: Partial<Envelope>;
  try {
    e = JSON.parse(bytes.toString('utf8')) as Partial<Envelope>;
  } catch {
    return null;
  }
  if (e === null || typeof e !== 'object') return null;
  if (e.format !== ENVELOPE_FORMAT || typeof e.keyId !== 'string' || typeof e.body !== 'string' || typeof e.signature !== 'string') return null;
  return e as Envelope;
}

function parseBody<T extends SignedBody>(text: string, key: string, kind: string): T {
  let body: T;
  try {
    body = JSON.parse(text) as T;
  } catch (err) {
    throw new UntrustedObjectError(key, 'malformed', `unreadable signed body (${(err as Error).message})`);
  }
  if (body === null || typeof body !== 'object' || body.kind !== kind) {
    throw new UntrustedObjectError(key, 'malformed', `holds a ${String((body as { kind?: unknown } | null)?.kind)} where a ${kind} was expected`);
  }
  return body;
}

/** Opens a signed object: trusted key, valid signature, within the key's validity, of `kind`. */
export function openSigned<T extends SignedBody>(bytes: Buffer, key: string, keys: TrustedKeys, kind: string): Opened<T> {
  const envelope = parseEnvelope(bytes);
  if (envelope === null) throw new UntrustedObjectError(key, 'unsigned', 'not a signed object');
  const signer = keys.get(envelope.keyId);
  if (!signer) throw new UntrustedObjectError(key, 'untrusted-key', `signed with key ${envelope.keyId}, which is not trusted`);
  if (!verifySignature(envelope, signer.publicKeyPem)) throw new UntrustedObjectError(key, 'bad-signature', `signature does not verify under key ${envelope.keyId}`);
  const body = parseBody<T>(envelope.body, key, kind);
  const validity = TrustedKeys.validityProblem(signer, body.writtenAt);
  if (validity) throw new UntrustedObjectError(key, 'key-not-valid', validity);
  return { body, keyId: envelope.keyId };
}
