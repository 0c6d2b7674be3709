/**
 * Lets `node -r ./bench/lib/register.js bench/query-bench.ts` run TypeScript
 * without a build step or an extra dependency: each .ts file is transpiled on
 * require with the project's own TypeScript (type checking is `npm run typecheck`'s job).
 */
'use strict';
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      inlineSourceMap: true,
    },
  });
  module._compile(out.outputText, filename);
};
