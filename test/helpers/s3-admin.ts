import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { ROOT, S3_ENDPOINT } from './infra';

const run = promisify(execFile);

export interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export type Role = 'consumer' | 'maintainer' | 'auditor';

/** The root user of the local MinIO (test/run.sh exports it). */
export const ROOT_KEYS: Keys = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
};

/** infra/s3-admin.sh (the real script, with mc) against the MinIO the tests use. */
export async function s3Admin(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const port = new URL(S3_ENDPOINT).port || '80';
  return run('bash', [join(ROOT, 'infra', 's3-admin.sh'), ...args], {
    env: { ...process.env, AUDIT_S3_PORT: port, AWS_ACCESS_KEY_ID: ROOT_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: ROOT_KEYS.secretAccessKey, ...env },
    timeout: 300_000,
  });
}

/** Creates (or converges) the three users for s3://bucket/prefix; their keys by role. */
export async function createUsers(bucket: string, prefix: string, suffix: string): Promise<Record<Role, Keys>> {
  const { stdout } = await s3Admin(['users', '--bucket', bucket, '--prefix', prefix, '--suffix', suffix]);
  const keys: Partial<Record<Role, Keys>> = {};
  for (const line of stdout.trim().split('\n')) {
    const [role, accessKeyId, secretAccessKey] = line.split(' ');
    if ((role === 'consumer' || role === 'maintainer' || role === 'auditor') && accessKeyId && secretAccessKey) keys[role] = { accessKeyId, secretAccessKey };
  }
  if (!keys.consumer || !keys.maintainer || !keys.auditor) throw new Error(`infra/s3-admin.sh users printed no keys for every role:\n${stdout}`);
  return keys as Record<Role, Keys>;
}

/** Removes the users (and policies) createUsers made with this suffix. */
export async function removeUsers(suffix: string): Promise<void> {
  await s3Admin(['remove-users', '--suffix', suffix]);
}

/** Environment for a CLI run as the given user. */
export function asUser(keys: Keys): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey };
}

/** A raw S3 client on the tests' MinIO with the given keys (the project's store has no versioned calls). */
export function s3Client(keys: Keys = ROOT_KEYS): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: S3_ENDPOINT,
    forcePathStyle: true,
    credentials: keys,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** What an S3 call that failed answered: the error name and HTTP status. */
export async function s3Refusal(call: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string } | 'succeeded'> {
  try {
    await call;
    return 'succeeded';
  } catch (err) {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name ?? 'unknown', status: e.$metadata?.httpStatusCode, message: e.message ?? '' };
  }
}
