import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '../../trust/signer';
import { runCli } from './infra';
import type { TrustPolicy } from '../../trust/trust-policy';
import { TrustedKeys } from '../../trust/trusted-keys';

/** A fresh Ed25519 key pair in a temp dir: `path` for AUDIT_SIGNING_KEY_FILE, `publicPem` for verify --trust. */
export async function signingKeyFile(): Promise<{ path: string; publicPem: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'audit-key-'));
  const k = generateSigningKey();
  const path = join(dir, 'signing.pem');
  await writeFile(path, k.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'public.pem'), k.publicKeyPem);
  return { path, publicPem: join(dir, 'public.pem') };
}

export interface VerifyResult {
  code: number | null;
  findings: string[];
  stats: Record<string, unknown>;
  stderr: string;
}

/** `audit-query verify --format json`; findings as `<code> <key>`. */
export async function runVerify(vars: Record<string, string>, args: string[] = []): Promise<VerifyResult & { messages: { code: string; key: string; message: string }[] }> {
  const r = await runCli('query', ['verify', '--format', 'json', ...args], vars, 180_000);
  const report = r.code === 0 || r.code === 1 ? (JSON.parse(r.stdout) as { findings: { code: string; key: string; message: string }[]; stats: Record<string, unknown> }) : null;
  return {
    code: r.code,
    findings: (report?.findings ?? []).map((f) => `${f.code} ${f.key}`),
    messages: report?.findings ?? [],
    stats: report?.stats ?? {},
    stderr: r.stderr,
  };
}

/** The store verifies clean (exit 0, no findings), with `offsets` offsets accounted for when given. */
export async function expectVerified(vars: Record<string, string>, offsets?: number): Promise<void> {
  const v = await runVerify(vars);
  expect({ code: v.code, findings: v.findings, stderr: v.code === 0 ? '' : v.stderr.slice(-1000) }).toEqual({ code: 0, findings: [], stderr: '' });
  if (offsets !== undefined) expect(v.stats.offsets).toBe(String(offsets));
}

/** The policy of a store without keys (today's behaviour): for tests of stores that sign nothing. */
export function unsignedTrust(): TrustPolicy {
  return { mode: 'unsigned', keys: new TrustedKeys(), notice: null };
}
