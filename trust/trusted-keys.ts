import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/env';
import { keyIdOf } from './signer';

/**
 * The public keys a service or reader trusts, from configuration
 * (AUDIT_TRUSTED_KEYS_FILE, `verify --trust`) and never from the bucket: the
 * bucket's `_digests/keys/` objects are for discovery only, since anyone who can
 * write the bucket can publish a key there.
 *
 * AUDIT_TRUSTED_KEYS_FILE is a JSON array, one entry per key:
 *
 *   [{"publicKeyFile": "consumer.pem.pub", "validFrom": "2026-01-01T00:00:00Z"},
 *    {"publicKey": "-----BEGIN PUBLIC KEY-----\n…", "validUntil": "2026-06-30T00:00:00Z", "note": "retired"}]
 *
 * `publicKeyFile` is relative to the trust file's folder. An object signed
 * under a key is accepted only if its own `writtenAt` lies in the key's
 * [validFrom, validUntil] (either bound may be absent).
 */

export interface TrustedKey {
  keyId: string;
  publicKeyPem: string;
  validFrom?: string;
  validUntil?: string;
  /** Where the key came from, for messages. */
  source: string;
}

/** A bad trust configuration: a ConfigError, so every bin exits 2 with its one line. */
export class TrustedKeysError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'TrustedKeysError';
  }
}

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO-8601 time');
const entrySchema = z
  .object({
    publicKey: z.string().min(1).optional(),
    publicKeyFile: z.string().min(1).optional(),
    validFrom: isoTime.optional(),
    validUntil: isoTime.optional(),
    note: z.string().optional(),
  })
  .strict()
  .refine((e) => (e.publicKey === undefined) !== (e.publicKeyFile === undefined), 'exactly one of publicKey and publicKeyFile');
const fileSchema = z.array(entrySchema).min(1, 'at least one key');

export class TrustedKeys {
  private readonly byId = new Map<string, TrustedKey>();

  constructor(keys: Iterable<TrustedKey> = []) {
    for (const k of keys) this.add(k);
  }

  /** A key from its SPKI PEM; `source` names where it came from. */
  static keyFromPem(pem: string, source: string, validity: { validFrom?: string; validUntil?: string } = {}): TrustedKey {
    let keyId: string;
    try {
      const pub = createPublicKey(pem);
      if (pub.asymmetricKeyType !== 'ed25519') throw new Error(`an ${String(pub.asymmetricKeyType)} key, not Ed25519`);
      keyId = keyIdOf(pub);
    } catch (err) {
      throw new TrustedKeysError(`${source}: not an Ed25519 public key (${(err as Error).message})`);
    }
    const toIso = (s: string | undefined) => (s === undefined ? undefined : new Date(s).toISOString());
    const validFrom = toIso(validity.validFrom);
    const validUntil = toIso(validity.validUntil);
    return { keyId, publicKeyPem: pem, source, ...(validFrom ? { validFrom } : {}), ...(validUntil ? { validUntil } : {}) };
  }

  /** AUDIT_TRUSTED_KEYS_FILE: the file's JSON, checked; messages name the file and the entry. */
  static async fromFile(path: string): Promise<TrustedKeys> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new TrustedKeysError(`AUDIT_TRUSTED_KEYS_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new TrustedKeysError(`AUDIT_TRUSTED_KEYS_FILE ${path}: not JSON (${(err as Error).message})`);
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new TrustedKeysError(`AUDIT_TRUSTED_KEYS_FILE ${path}: ${issue.path.length ? `entry ${issue.path.join('.')}: ` : ''}${issue.message}`);
    }
    const keys: TrustedKey[] = [];
    for (const [i, e] of parsed.data.entries()) {
      const source = `AUDIT_TRUSTED_KEYS_FILE ${path} entry ${i}`;
      let pem = e.publicKey;
      if (e.publicKeyFile !== undefined) {
        const file = resolve(dirname(path), e.publicKeyFile);
        try {
          pem = await readFile(file, 'utf8');
        } catch (err) {
          throw new TrustedKeysError(`${source}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      }
      if (e.validFrom && e.validUntil && Date.parse(e.validFrom) > Date.parse(e.validUntil)) {
        throw new TrustedKeysError(`${source}: validFrom is after validUntil`);
      }
      keys.push(TrustedKeys.keyFromPem(pem!, source, e));
    }
    return new TrustedKeys(keys);
  }

  add(key: TrustedKey): void {
    const before = this.byId.get(key.keyId);
    // The same key named twice (a file and the service's own key): the configured validity wins.
    if (before && before.source.startsWith('AUDIT_TRUSTED_KEYS_FILE')) return;
    this.byId.set(key.keyId, key);
  }

  get(keyId: string): TrustedKey | undefined {
    return this.byId.get(keyId);
  }

  get size(): number {
    return this.byId.size;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** The keys with their validity, as one string: what was accepted under one set is not reused under another (a key retired since). */
  fingerprint(): string {
    return [...this.byId.values()]
      .map((k) => `${k.keyId}@${k.validFrom ?? ''}..${k.validUntil ?? ''}`)
      .sort()
      .join(',');
  }

  /** Why `writtenAt` is outside the key's validity, or null when inside. */
  static validityProblem(key: TrustedKey, writtenAt: string | undefined): string | null {
    if (key.validFrom === undefined && key.validUntil === undefined) return null;
    const t = writtenAt === undefined ? Number.NaN : Date.parse(writtenAt);
    if (Number.isNaN(t)) return `no valid writtenAt to check against key ${key.keyId}'s validity`;
    if (key.validFrom !== undefined && t < Date.parse(key.validFrom)) return `written ${writtenAt}, before key ${key.keyId} was valid (validFrom ${key.validFrom})`;
    if (key.validUntil !== undefined && t > Date.parse(key.validUntil)) return `written ${writtenAt}, after key ${key.keyId} was retired (validUntil ${key.validUntil})`;
    return null;
  }
}
