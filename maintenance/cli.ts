#!/usr/bin/env node
import { InvalidArgumentError } from 'commander';
import { binCommand, exitCodeOf, parseArgs, readEnvOrExit, runBin, sayError, stopOnSignals } from '../config/bin';
import { createLogger } from '../config/logger';
import { writeFile } from 'node:fs/promises';
import { isDt } from '../storage';
import { generateSigningKey } from '../trust/signer';
import { embedKey } from '../viewer/embed/config';
import { EmbedTokenRequestError, MAX_TTL_SECONDS, mintEmbedToken } from '../viewer/embed/token';
import { MaintenanceService } from './service';

interface MaintainFlags {
  once?: boolean;
  dryRun?: boolean;
  since?: string;
  until?: string;
}

interface EmbedTokenFlags {
  tenant: string;
  object: string;
  fields?: string[];
  ttl?: number;
}

const fieldList = (value: string): string[] => {
  const fields = value.split(',').map((f) => f.trim());
  if (fields.some((f) => f === '')) throw new InvalidArgumentError('expected field names separated by commas');
  return fields;
};

const seconds = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_TTL_SECONDS) throw new InvalidArgumentError(`expected whole seconds from 1 to ${MAX_TTL_SECONDS}`);
  return Number(value);
};

const day = (value: string): string => {
  if (!isDt(value)) throw new InvalidArgumentError('expected a day as YYYY-MM-DD');
  return value;
};

/** `audit-admin`: operations on the store (configuration: AUDIT_* environment variables). */
async function main(argv: string[]): Promise<number> {
  let action: Promise<number> | null = null;
  const program = binCommand('audit-admin', 'Operates the audit store (configuration: AUDIT_* environment variables)');
  program
    .command('maintain')
    .description('compaction, index and external manifests, retention and cleanup; a service unless --once')
    .option('--once', 'one pass, then exit 0 (non-zero on failure)')
    .option('--dry-run', 'print what a pass would do and change nothing (implies --once)')
    .option('--since <YYYY-MM-DD>', 'first day to maintain', day)
    .option('--until <YYYY-MM-DD>', 'last day to maintain', day)
    .exitOverride()
    .action((flags: MaintainFlags) => {
      action = maintain(flags);
    });
  program
    .command('keygen')
    .description('creates an Ed25519 key pair for signing digests: the private key (for AUDIT_SIGNING_KEY_FILE) and <file>.pub')
    .requiredOption('--out <file>', 'where to write the private key (mode 600; never overwritten)')
    .exitOverride()
    .action((flags: { out: string }) => {
      action = keygen(flags.out);
    });
  program
    .command('embed-token')
    .description("mints a short-lived token for an app's page to embed one object's history (key: AUDIT_EMBED_KEY_FILE)")
    .requiredOption('--tenant <id>', 'the tenant the object belongs to')
    .requiredOption('--object <TYPE:ID>', 'the object whose history is shown')
    .option('--fields <a,b>', "the object's fields whose changes are shown (default: all)", fieldList)
    .option('--ttl <seconds>', `validity, 1 to ${MAX_TTL_SECONDS} (default 300)`, seconds)
    .exitOverride()
    .action((flags: EmbedTokenFlags) => {
      action = embedToken(flags);
    });
  const usage = await parseArgs(program, argv);
  if (usage !== null) return usage;
  if (action === null) {
    program.outputHelp({ error: true });
    return 2;
  }
  return action;
}

async function maintain(flags: MaintainFlags): Promise<number> {
  const env = readEnvOrExit('audit-admin');
  if (env === 2) return 2;
  const log = createLogger('audit-admin', env.AUDIT_LOG_LEVEL);
  const dryRun = Boolean(flags.dryRun);
  const service = new MaintenanceService(env, {
    once: Boolean(flags.once) || dryRun,
    dryRun,
    range: { since: flags.since ?? null, until: flags.until ?? null },
    log,
    say: (line) => process.stdout.write(`${line}\n`),
  });
  stopOnSignals(log, 'stopping after the current day', () => service.stop());
  try {
    const report = await service.run();
    if (report) process.stdout.write(`${JSON.stringify({ pass: report })}\n`);
    return 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'maintenance failed');
    sayError('audit-admin', (err as Error).message);
    return exitCodeOf(err);
  }
}

async function keygen(out: string): Promise<number> {
  const key = generateSigningKey();
  try {
    // 'wx': an existing key is never replaced (its digests would no longer be signable).
    await writeFile(out, key.privateKeyPem, { mode: 0o600, flag: 'wx' });
    await writeFile(`${out}.pub`, key.publicKeyPem, { flag: 'wx' });
  } catch (err) {
    sayError('audit-admin', `cannot write ${out}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it exists (keys are never overwritten)' : (err as Error).message}`);
    return 2;
  }
  process.stdout.write(`${JSON.stringify({ keyId: key.keyId, privateKey: out, publicKey: `${out}.pub` })}\n`);
  return 0;
}

async function embedToken(flags: EmbedTokenFlags): Promise<number> {
  const env = readEnvOrExit('audit-admin');
  if (env === 2) return 2;
  try {
    const token = mintEmbedToken({ tenant: flags.tenant, object: flags.object, fields: flags.fields, ttlSeconds: flags.ttl }, embedKey(env));
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    // A bad --object or --tenant is a bad argument, like the flags commander checks.
    sayError('audit-admin', (err as Error).message);
    return err instanceof EmbedTokenRequestError ? 2 : exitCodeOf(err);
  }
}

runBin('audit-admin', main);
