import type { Command } from 'commander';
import type { Subcommand } from '../query/cli';

/** `audit-query serve`: the viewer, loaded only when asked for (no other command needs its web server). */
export const serveCommand: Subcommand = {
  register(program: Command, run: (result: Promise<number>) => void): void {
    program
      .command('serve')
      .description('the read-only web viewer and its API (viewer/README.md); tokens from AUDIT_VIEWER_TOKENS or AUDIT_VIEWER_TOKENS_FILE')
      .option('--port <n>', 'port to listen on (default 8080; 0 = any free port)')
      .option('--host <host>', 'address to listen on (default 127.0.0.1)')
      .action((flags: { port?: string; host?: string }) => {
        run(import('./serve').then((viewer) => viewer.serve(viewer.parseServeOptions(flags))));
      });
  },
};
