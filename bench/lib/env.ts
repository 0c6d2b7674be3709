import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The project root (where package.json is), whether run from the sources or from dist/. */
export function projectRoot(from: string): string {
  for (let d = from; d !== dirname(d); d = dirname(d)) if (existsSync(join(d, 'package.json'))) return d;
  throw new Error('package.json not found');
}

/** A numeric benchmark setting from the environment; unset or empty takes the default. */
export function envNumber(name: string, def: number): number {
  return process.env[name] ? Number(process.env[name]) : def;
}

/** The compiled file of a project command, as the services package's "bin" names it (audit-query composes query/ and viewer/). */
export function commandFile(root: string, folder: 'consumer' | 'query' | 'maintenance' | 'cdc'): string {
  return folder === 'query' ? join(root, 'dist', 'bin', 'audit-query.js') : join(root, 'dist', folder, 'cli.js');
}
