import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The folders follow the data (producer → schemas → consumer → storage → query,
 * maintenance beside the consumer, change capture beside the producer, the viewer
 * beside the query); on the read side storage → trust → catalog → verify, each
 * trusting only what is below it. Their boundaries are kept here rather than by review: each
 * rule is a folder that must not import another, and no folders may import each
 * other in a loop. Imports are read with TypeScript's own parser, static and
 * dynamic (`await import(...)`), type-only ones included: a type import still
 * ties one folder's design to the other's.
 */
const ROOT = resolve(__dirname, '..', '..');
const SOURCE_SKIP = new Set(['node_modules', 'dist', 'test', 'bench', 'infra', 'docs', 'packages']);

/** [from, to, why]: `from` must never import `to`. */
const FORBIDDEN: readonly [from: string, to: string, why: string][] = [
  ...['maintenance', 'query', 'cdc', 'viewer', 'storage', 'trust', 'kafka', 'ops', 'producer', 'config', 'schemas', 'schema-registry'].map(
    (from) => [from, 'consumer', 'the consumer is a service, not a library: what others need of it lives in a shared folder'] as [string, string, string],
  ),
  ['query', 'viewer', 'the viewer uses the query engine, never the other way round'],
  ...['consumer', 'storage', 'query', 'maintenance', 'cdc', 'viewer', 'trust', 'kafka', 'ops'].map(
    (to) => ['producer', to, 'an app that records events loads only the producer and what it needs'] as [string, string, string],
  ),
  ...['trust', 'catalog', 'verify', 'query', 'maintenance', 'viewer', 'consumer', 'cdc'].map(
    (to) => ['storage', to, 'storage is the bottom of the read path: objects, layout and file formats, trusting nothing'] as [string, string, string],
  ),
  ...['catalog', 'verify', 'query', 'maintenance', 'viewer'].map(
    (to) => ['trust', to, 'keys, signatures and policies come before what is signed with them'] as [string, string, string],
  ),
  ...['producer', 'consumer', 'storage', 'query', 'maintenance', 'cdc', 'viewer', 'trust', 'kafka', 'ops', 'schemas', 'schema-registry'].map(
    (to) => ['config', to, 'configuration is read first by everything, so it depends on nothing of the pipeline'] as [string, string, string],
  ),
];

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || SOURCE_SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, out);
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const topFolder = (path: string): string => relative(ROOT, path).split(sep)[0]!;

interface Edge {
  from: string;
  to: string;
  file: string;
  spec: string;
}

function folderEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(ROOT)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      const from = topFolder(file);
      const to = topFolder(resolve(dirname(file), imported.fileName));
      if (from !== to) edges.push({ from, to, file: relative(ROOT, file), spec: imported.fileName });
    }
  }
  return edges;
}

/** Folder loops, each as the path that closes it (a → b → … → a). */
function folderCycles(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    graph.get(e.from)!.add(e.to);
  }
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

describe('import boundaries between folders', () => {
  const edges = folderEdges();

  test('the source tree is read (a parser that finds no imports would pass every rule)', () => {
    expect(edges.some((e) => e.from === 'consumer' && e.to === 'storage')).toBe(true);
    expect(edges.some((e) => e.from === 'query' && e.to === 'storage')).toBe(true);
  });

  test('no folder imports one it must not', () => {
    const broken = edges.flatMap((e) =>
      FORBIDDEN.filter(([from, to]) => e.from === from && e.to === to).map(([, , why]) => `${e.file} imports ${e.spec} (${e.from} → ${e.to}: ${why})`),
    );
    expect(broken).toEqual([]);
  });

  test('no two folders import each other, directly or through others', () => {
    expect(folderCycles(edges).map((c) => c.join(' → '))).toEqual([]);
  });
});
