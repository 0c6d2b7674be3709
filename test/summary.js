// Prints jest's totals over one or more result files (the parallel and the serial phase of
// test/run.sh) as one plain closing line ("jest: N passed, N failed, N skipped").
const fs = require('node:fs');
const files = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
let total = 0;
for (const file of files) {
  if (!fs.existsSync(file)) {
    console.error(`no jest results at ${file}`);
    process.exit(1);
  }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
  skipped += r.numPendingTests + r.numTodoTests;
  total += r.numTotalTests;
}
console.log(`jest: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(total > 0 && failed === 0 ? 0 : 1);
