import { parseInstant, parseObjectRef, parseFormat, UsageError } from '../../query/args';
import { isoMicros } from '../../query/history';
import { render } from '../../query/format';

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
});
