import PDFDocument from 'pdfkit';
import { printSafe } from '../../config/safe-text';
import { changesOf } from './changes';
import type { JsonEvent } from './event';

/** What the report is about: an object's history or an actor's activity, say. */
export interface PdfReport {
  title: string;
  subtitle?: string;
  events: readonly JsonEvent[];
  generatedAt: Date;
}

/** The PDF could not be produced (pdfkit failed: a font missing from the installation, say). */
export class PdfRenderError extends Error {
  constructor(message: string, override readonly cause: unknown) {
    super(message);
    this.name = 'PdfRenderError';
  }
}

// DejaVu Sans covers Latin, Greek, Cyrillic, Arabic, Hebrew, arrows and box drawing: the
// 14 standard PDF fonts cover Latin-1 only and would print other scripts as blanks.
const FONT = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
const FONT_BOLD = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');

/** Past this a value is cut: one stored 1 MB JSON document must not become 300 pages. */
const MAX_VALUE = 600;
const MARGIN = 50;
const GREY = '#555555';

function clip(text: string): string {
  if (text.length <= MAX_VALUE) return text;
  return `${text.slice(0, MAX_VALUE)}… (${text.length - MAX_VALUE} more characters)`;
}

/**
 * A value as the report prints it: strings quoted (so `"null"` and null, `""` and nothing
 * differ), everything else as JSON; then made safe for print (config/safe-text.ts).
 */
function value(v: unknown): string {
  if (v === null || v === undefined) return '(none)';
  const json = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return printSafe(clip(json ?? String(v)));
}

/** Plain text (a name, an id) made safe for print; empty as a dash. */
function text(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  return printSafe(clip(String(v)));
}

// Hebrew, Arabic, Syriac, Thaana, N'Ko and their presentation forms.
const RTL_CHARS = '\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc';
/** A run of right-to-left letters, with the spaces and punctuation between them but not around them. */
const RTL_RUN = new RegExp(`[${RTL_CHARS}](?:[^A-Za-z0-9\u00c0-\u058f"→]*[${RTL_CHARS}])?`, 'g');

/**
 * Writes one line of the report. The lines are left-to-right, so a right-to-left run
 * inside one (a Hebrew or Arabic value) is written as its own piece: fontkit then shapes
 * it as that script (Arabic joining forms) and lays it out right to left, where shaping
 * the whole line as Latin would print it mirrored.
 */
function line(doc: PDFKit.PDFDocument, s: string, opts: PDFKit.Mixins.TextOptions & { x?: number }): void {
  const { x, ...rest } = opts;
  const pieces: string[] = [];
  let last = 0;
  for (const m of s.matchAll(RTL_RUN)) {
    if (m.index > last) pieces.push(s.slice(last, m.index));
    // Words of the run in visual order (last first), each reversed by fontkit as it shapes
    // it: a run of several words handed over whole comes out with its spaces moved to one end.
    pieces.push(...m[0].split(/(\s+)/).filter((w) => w !== '').reverse());
    last = m.index + m[0].length;
  }
  if (last < s.length || pieces.length === 0) pieces.push(s.slice(last));
  pieces.forEach((piece, i) => {
    const o = { ...rest, continued: i < pieces.length - 1 };
    if (i === 0 && x !== undefined) doc.text(piece, x, doc.y, o);
    else doc.text(piece, o);
  });
}

function eventBlock(doc: PDFKit.PDFDocument, e: JsonEvent, width: number): void {
  const changes = changesOf(e);
  // Keep an event's heading with at least its first lines: start a page rather than strand it.
  if (doc.y + 60 + Math.min(changes.length, 3) * 12 > doc.page.height - doc.page.margins.bottom) doc.addPage();
  const x = MARGIN;
  doc.font('bold').fontSize(10).fillColor('black');
  line(doc, `${text(e.occurred_at)}   ${text(e.action)}`, { x, width });
  doc.font('body').fontSize(9);
  const actor = e.actor_type ? `${text(e.actor_id)} (${text(e.actor_type)})` : text(e.actor_id);
  line(doc, `actor: ${actor}    object: ${text(e.object_type)}:${text(e.object_id)}    tenant: ${text(e.tenant_id)}`, { width });
  const context: string[] = [];
  if (e.http_method) context.push(`${text(e.http_method)} ${text(e.http_path)} ${text(e.http_status)}`);
  if (e.request_id) context.push(`request: ${text(e.request_id)}`);
  if (e.ip) context.push(`ip: ${text(e.ip)}`);
  if (context.length > 0) {
    doc.fillColor(GREY);
    line(doc, context.join('    '), { width });
    doc.fillColor('black');
  }
  if (e.error_type || e.error_message) line(doc, `error: ${text(e.error_type)}: ${text(e.error_message)}`, { width });
  for (const [field, old, next] of changes) {
    line(doc, `${printSafe(clip(field))}: ${value(old)} → ${value(next)}`, { x: x + 14, width: width - 14 });
  }
  doc.fillColor(GREY).fontSize(7).text(`event ${text(e.event_id)}`, x, doc.y, { width }).fillColor('black');
  doc.moveDown(0.6);
}

/**
 * A readable report of events (time, action, actor, object, each changed field old → new)
 * as a PDF, with DejaVu Sans embedded (subset) so any script the font covers prints. Every
 * stored string goes through printSafe: control and bidi characters never reach the page.
 */
export function renderPdf(report: PdfReport): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const fail = (err: unknown) => reject(new PdfRenderError(`cannot render the PDF report: ${(err as Error).message}`, err));
    try {
      const title = printSafe(report.title);
      const doc = new PDFDocument({
        size: 'A4',
        margin: MARGIN,
        font: FONT,
        bufferPages: true,
        info: { Title: title, Subject: report.subtitle ? printSafe(report.subtitle) : title, Creator: 'audit-pipeline', CreationDate: report.generatedAt },
      });
      const chunks: Buffer[] = [];
      doc.on('data', (c: Buffer) => chunks.push(c));
      doc.on('end', () => resolve(Buffer.concat(chunks)));
      doc.on('error', fail);
      doc.registerFont('body', FONT);
      doc.registerFont('bold', FONT_BOLD);
      const width = doc.page.width - 2 * MARGIN;

      doc.font('bold').fontSize(16);
      line(doc, title, { width });
      if (report.subtitle) line(doc.font('body').fontSize(11), printSafe(report.subtitle), { width });
      const count = `${report.events.length} event${report.events.length === 1 ? '' : 's'}`;
      doc.font('body').fontSize(8).fillColor(GREY).text(`Generated ${report.generatedAt.toISOString()} · ${count}`, { width }).fillColor('black');
      doc.moveDown(0.5);
      doc.moveTo(MARGIN, doc.y).lineTo(doc.page.width - MARGIN, doc.y).strokeColor('#999999').stroke();
      doc.moveDown(0.8);
      if (report.events.length === 0) doc.font('body').fontSize(10).text('No events.', { width });
      for (const e of report.events) eventBlock(doc, e, width);

      // Page numbers last, once the page count is known; inside the bottom margin, which
      // text() would otherwise treat as overflow and answer with a new page.
      const { start, count: pages } = doc.bufferedPageRange();
      for (let i = start; i < start + pages; i++) {
        doc.switchToPage(i);
        const bottom = doc.page.margins.bottom;
        doc.page.margins.bottom = 0;
        doc.font('body').fontSize(7).fillColor(GREY).text(`${title} · page ${i - start + 1} of ${pages}`, MARGIN, doc.page.height - MARGIN / 2 - 7, { width, align: 'center', lineBreak: false });
        doc.page.margins.bottom = bottom;
      }
      doc.end();
    } catch (err) {
      fail(err);
    }
  });
}
