import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Imported first by the CLI: every run compiles the same few megabytes of
 * JavaScript (the AWS SDK mostly), and V8's code cache skips that from the
 * second run on (query-bench: about a sixth of the CPU start-up). Node's own
 * NODE_COMPILE_CACHE picks the directory and NODE_DISABLE_COMPILE_CACHE=1 turns
 * it off; the default is the user's cache directory, not Node's shared temp
 * folder, since another local user who could write there could plant code.
 */
enableCompileCache(process.env.NODE_COMPILE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'audit-query-v8'));
