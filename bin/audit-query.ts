#!/usr/bin/env node
/**
 * The audit-query command as installed: the query engine's commands (query/cli.ts)
 * plus the viewer's `serve` (viewer/serve-command.ts). It lives outside both so
 * that query/ never imports the viewer, which is built on it.
 */
import '../query/compile-cache';
import { runBin } from '../config/bin';
import { main } from '../query/cli';
import { serveCommand } from '../viewer/serve-command';

runBin('audit-query', (argv) => main(argv, [serveCommand]));
