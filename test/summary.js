// Prints jest's totals as one plain closing line ("jest: N passed, N failed, N skipped").
const fs = require('node:fs');
const file = process.argv[2];
if (!fs.existsSync(file)) {
  console.error(`no jest results at ${file}`);
  process.exit(1);
}
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
const failed = r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`jest: ${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(r.numTotalTests > 0 && failed === 0 ? 0 : 1);
