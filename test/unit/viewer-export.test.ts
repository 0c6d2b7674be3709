import { render } from '../../query/format';
import { renderCsv } from '../../viewer/export/csv';
import { EVENT_FIELDS, UnknownFieldError } from '../../viewer/export/event';
import { renderPdf } from '../../viewer/export/pdf';
import { pdfText } from '../helpers/pdf-text';
import { jsonEvent } from '../helpers/viewer-events';
import { parseCsv } from '../helpers/csv';

const SCRIPT = '<script>alert("x")</script>';
const IMG = '<img src=x onerror=alert(1)>';


describe('renderCsv', () => {
  const events = [
    jsonEvent({ changes: { status: { old: 'draft', new: 'sent' } }, actor_id: '=HYPERLINK("http://evil","x")' }),
    jsonEvent({ event_id: '00000000-0000-4000-8000-000000000002', action: 'create', after: { note: 'a, "b"\nc' }, actor_id: '@SUM(A1)' }),
  ];

  it('writes every field in --format json order, the same bytes as audit-query --format csv', () => {
    const csv = renderCsv(events);
    expect(csv).toBe(render(events as unknown as Record<string, unknown>[], 'csv'));
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual(EVENT_FIELDS);
    expect(rows).toHaveLength(3);
  });

  it('picks and orders the fields asked for, and neutralises formulas', () => {
    const rows = parseCsv(renderCsv(events, ['actor_id', 'action', 'after', 'changes']));
    expect(rows).toEqual([
      ['actor_id', 'action', 'after', 'changes'],
      [`'=HYPERLINK("http://evil","x")`, 'update', '', '{"status":{"old":"draft","new":"sent"}}'],
      [`'@SUM(A1)`, 'create', '{"note":"a, \\"b\\"\\nc"}', ''],
    ]);
  });

  it('answers the header alone for no events, and refuses an unknown field by name', () => {
    expect(renderCsv([], ['occurred_at', 'action'])).toBe('occurred_at,action\r\n');
    expect(() => renderCsv(events, ['action', 'password'])).toThrow(UnknownFieldError);
    expect(() => renderCsv(events, ['action', 'password'])).toThrow(/password/);
  });
});

describe('renderPdf', () => {
  const generatedAt = new Date('2026-03-02T08:30:00.000Z');
  const events = [
    jsonEvent({ action: 'create', after: { name: 'Пётр Иванов', city: 'Αθήνα' } }),
    jsonEvent({
      occurred_at: '2026-03-01T11:00:00.000000Z',
      actor_id: 'admin-1',
      changes: { name: { old: 'Пётр Иванов', new: 'Πέτρος Ιβάνοφ' }, note: { old: null, new: SCRIPT }, html: { old: 'plain', new: IMG } },
      request_id: 'req-9',
      http_method: 'PATCH',
      http_path: '/invoices/7',
      http_status: 200,
    }),
    jsonEvent({
      occurred_at: '2026-03-01T12:00:00.000000Z',
      actor_id: 'evil\u001b[2Jactor\u202Eabc',
      changes: { label: { old: 'שלום עולם', new: 'مرحبا بالعالم' } },
    }),
  ];

  it('prints each event: time, action, actor, object and every change old → new, in any script', async () => {
    const pdf = await renderPdf({ title: 'History of invoice:7', subtitle: 'tenant acme', events, generatedAt });
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const { pages, info } = await pdfText(pdf);
    const all = pages.join('\n');
    expect(all).toContain('History of invoice:7');
    expect(all).toContain('tenant acme');
    expect(all).toContain('Generated 2026-03-02T08:30:00.000Z · 3 events');
    expect(all).toContain('2026-03-01T10:00:00.000000Z');
    expect(all).toContain('2026-03-01T11:00:00.000000Z');
    expect(all).toMatch(/actor: user-42 \(user\)\s+object: invoice:7\s+tenant: acme/);
    // A create's after values come out as changes from nothing; Cyrillic and Greek as written.
    expect(all).toContain('name: (none) → "Пётр Иванов"');
    expect(all).toContain('city: (none) → "Αθήνα"');
    expect(all).toContain('name: "Пётр Иванов" → "Πέτρος Ιβάνοφ"');
    expect(all).toContain('PATCH /invoices/7 200');
    expect(info.Title).toBe('History of invoice:7');
    // Only embedded DejaVu subsets (ABCDEF+DejaVuSans, with their font file), no standard font.
    const raw = pdf.toString('latin1');
    const fonts = [...raw.matchAll(/\/BaseFont \/([^\s/>]+)/g)].map((m) => m[1]);
    expect(fonts.length).toBeGreaterThan(0);
    for (const f of fonts) expect(f).toMatch(/^[A-Z]{6}\+DejaVuSans(-Bold)?$/);
    // A composite font names its base twice (the Type0 font and its descendant), embedded once.
    expect(raw.match(/\/FontFile2 /g)).toHaveLength(new Set(fonts).size);
  });

  it('prints injection strings as literal text and strips control and bidi characters', async () => {
    const { pages, drawn } = await renderPdf({ title: 'Activity of admin-1', events, generatedAt }).then(pdfText);
    const all = pages.join('\n');
    expect(all).toContain(`note: (none) → "${SCRIPT.replace(/"/g, '\\"')}"`);
    expect(all).toContain(`html: "plain" → "${IMG}"`);
    // ESC and the right-to-left override are gone; the visible text around them stays.
    expect(all).toContain('evil[2Jactorabc');
    expect(all).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u202a-\u202e]/);
    // Hebrew and Arabic have glyphs (a font without them extracts nothing there)...
    const label = all.split('\n').find((l) => l.includes('label'));
    expect(label).toContain('"שלום עולם"');
    expect(label).toContain('"مرحبا بالعالم"');
    // ...drawn right to left, words and letters, inside a left-to-right line.
    const mirrored = (s: string) => [...s].reverse().join('');
    expect(drawn.join('')).toContain(`label: "${mirrored('שלום עולם')}" → "${mirrored('مرحبا بالعالم')}"`);
  });

  it('reports no events as such, and breaks long histories over numbered pages', async () => {
    const empty = await renderPdf({ title: 'History of invoice:8', events: [], generatedAt }).then(pdfText);
    expect(empty.pages.join('\n')).toContain('No events.');
    const many = Array.from({ length: 80 }, (_, i) =>
      jsonEvent({ occurred_at: `2026-03-01T10:${String(i % 60).padStart(2, '0')}:00.000000Z`, changes: { n: { old: i, new: i + 1 } } }),
    );
    const long = await renderPdf({ title: 'Long', events: many, generatedAt }).then(pdfText);
    expect(long.pages.length).toBeGreaterThan(2);
    long.pages.forEach((p, i) => expect(p).toContain(`page ${i + 1} of ${long.pages.length}`));
    expect(long.pages.join('\n')).toContain('n: 79 → 80');
  });
});
