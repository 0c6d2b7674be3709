import { spawn } from 'node:child_process';

/** The text of each page of a PDF, as a reader extracts it. */
export interface PdfText {
  /** Each page's text as a reader extracts it (pdfjs puts right-to-left runs back in reading order). */
  pages: string[];
  /** Each page's glyphs in the order they are drawn, left to right: what the page shows, unreordered. */
  drawn: string[];
  info: Record<string, unknown>;
}

// pdfjs-dist is ES modules only, which jest's CommonJS runtime cannot import: it runs in a
// child Node, reading the PDF on stdin and answering JSON on stdout.
const READER = `
import { getDocument, OPS } from 'pdfjs-dist/legacy/build/pdf.mjs';
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const doc = await getDocument({ data: new Uint8Array(Buffer.concat(chunks)), verbosity: 0, useSystemFonts: false }).promise;
const pages = [];
const drawn = [];
for (let n = 1; n <= doc.numPages; n++) {
  const page = await doc.getPage(n);
  const content = await page.getTextContent();
  pages.push(content.items.map((i) => ('str' in i ? i.str + (i.hasEOL ? '\\n' : '') : '')).join(''));
  const ops = await page.getOperatorList();
  let glyphs = '';
  ops.fnArray.forEach((fn, i) => {
    if (fn === OPS.showText) for (const g of ops.argsArray[i][0]) if (typeof g === 'object' && g !== null) glyphs += g.unicode;
  });
  drawn.push(glyphs);
}
const { info } = await doc.getMetadata();
process.stdout.write(JSON.stringify({ pages, drawn, info }));
`;

/** Extracts a PDF's text with pdfjs-dist (Mozilla's reader, the legacy build for Node). */
export function pdfText(pdf: Buffer): Promise<PdfText> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', READER], { cwd: __dirname, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`pdfjs reader exited ${code}: ${err.slice(-2000)}`));
      resolve(JSON.parse(out) as PdfText);
    });
    child.stdin.end(pdf);
  });
}
