#!/usr/bin/env node
/**
 * Builds the published packages from the one tsc output in dist/: each package
 * folder under packages/ gets the compiled files its entry points reach (its
 * "exports" and "bin"), following require() in the JavaScript and imports in the
 * declarations, so that nothing is listed by hand and nothing unused ships.
 *
 * It refuses (exit 1, one line per problem) when a package would not install
 * cleanly: a module its files load that its manifest does not declare, a declared
 * dependency its files never load, a version other than the repository's, or a
 * dependency range other than the one the repository is built and tested with.
 *
 * Usage: node packages/assemble.js   (run by `npm run build`, after tsc)
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { builtinModules } = require('node:module');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const PACKAGES = ['audit-pipeline', 'services'];

/** Files a module loads by path, not by require(): a worker thread, the Avro schemas read at run time. */
const LOADED_BY_PATH = {
  'producer/transport/worker-host.js': ['dist/producer/transport/worker-main.js'],
  'schemas/registry.js': fs.readdirSync(path.join(ROOT, 'schemas', 'avro')).filter((f) => f.endsWith('.avsc')).map((f) => `schemas/avro/${f}`),
};

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const packageName = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

function specifiers(file) {
  const text = fs.readFileSync(file, 'utf8');
  const found = new Set();
  const patterns = file.endsWith('.d.ts')
    ? [/\bfrom\s+["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g, /\bimport\s+["']([^"']+)["']/g, /\brequire\(\s*["']([^"']+)["']\s*\)/g]
    : [/\brequire(?:\.resolve)?\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) found.add(m[1]);
  return [...found];
}

function resolveRelative(from, spec, declaration) {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = declaration ? [`${base}.d.ts`, path.join(base, 'index.d.ts')] : [`${base}.js`, base, path.join(base, 'index.js')];
  const hit = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  if (!hit) throw new Error(`${path.relative(ROOT, from)}: cannot resolve ${spec}`);
  return hit;
}

/** Every file reachable from the entries, and the packages they load (by kind). */
function walk(entries) {
  const files = new Set();
  const extra = new Set();
  const runtime = new Map(); // package -> first file that loads it
  const types = new Map();
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop();
    if (files.has(file)) continue;
    files.add(file);
    const declaration = file.endsWith('.d.ts');
    if (!declaration) {
      const dts = file.replace(/\.js$/, '.d.ts');
      if (fs.existsSync(dts)) queue.push(dts);
      for (const loaded of LOADED_BY_PATH[path.relative(DIST, file)] ?? []) {
        if (loaded.startsWith('dist/')) queue.push(path.join(ROOT, loaded));
        else extra.add(loaded);
      }
    }
    for (const spec of specifiers(file)) {
      if (spec.startsWith('.')) queue.push(resolveRelative(file, spec, declaration));
      else if (!builtins.has(spec)) {
        const into = declaration ? types : runtime;
        if (!into.has(packageName(spec))) into.set(packageName(spec), path.relative(ROOT, file));
      }
    }
  }
  return { files, extra, runtime, types };
}

function entryFiles(manifest) {
  const targets = [];
  const collect = (value) => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(manifest.exports);
  collect(manifest.bin);
  return targets.filter((t) => t.startsWith('./dist/') || t.startsWith('dist/')).map((t) => path.join(DIST, t.replace(/^(\.\/)?dist\//, '')));
}

function assemble(name, rootManifest) {
  const dir = path.join(__dirname, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const problems = [];
  if (manifest.version !== rootManifest.version) problems.push(`version ${manifest.version} is not the repository's ${rootManifest.version}`);
  const tested = { ...rootManifest.devDependencies, ...rootManifest.dependencies };
  const deps = manifest.dependencies ?? {};
  const peers = manifest.peerDependencies ?? {};
  for (const [dep, range] of Object.entries(deps)) {
    if (tested[dep] !== range) problems.push(`dependency ${dep}@${range}: the repository builds and tests with ${tested[dep] ?? 'nothing of that name'}`);
  }
  const entries = entryFiles(manifest);
  for (const entry of entries) if (!fs.existsSync(entry)) problems.push(`entry ${path.relative(ROOT, entry)} is not built`);
  if (problems.length) return { name: manifest.name, problems };
  const { files, extra, runtime, types } = walk(entries);
  for (const [pkg, file] of runtime) if (!(pkg in deps) && !(pkg in peers)) problems.push(`${file} loads ${pkg}, which is neither a dependency nor a peer dependency`);
  for (const [pkg, file] of types) {
    if (!(pkg in deps) && !(pkg in peers)) problems.push(`${file} refers to the types of ${pkg}, which is neither a dependency nor a peer dependency`);
  }
  for (const dep of Object.keys(deps)) if (!runtime.has(dep)) problems.push(`dependency ${dep} is never loaded by the package's files`);
  if (problems.length) return { name: manifest.name, problems };

  for (const generated of ['dist', 'schemas', 'LICENSE']) fs.rmSync(path.join(dir, generated), { recursive: true, force: true });
  for (const file of files) {
    const target = path.join(dir, path.relative(ROOT, file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
  }
  for (const file of [...extra, 'LICENSE']) {
    const target = path.join(dir, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), target);
  }
  return { name: manifest.name, problems, files: files.size, runtime: [...runtime.keys()].sort() };
}

function main() {
  const rootManifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  let failed = false;
  for (const name of PACKAGES) {
    const result = assemble(name, rootManifest);
    for (const problem of result.problems) process.stderr.write(`assemble ${result.name}: ${problem}\n`);
    failed ||= result.problems.length > 0;
  }
  process.exit(failed ? 1 : 0);
}

if (require.main === module) main();
module.exports = { walk, entryFiles, specifiers };
