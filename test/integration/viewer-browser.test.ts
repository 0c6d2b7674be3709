/**
 * The viewer in a real headless Chromium, driven by keyboard where a person
 * would: sign-in, search, paging, an object's timeline with its field diffs,
 * its state as of a time, an actor's activity, request links, CSV and PDF
 * downloads (the PDF read back with pdfjs-dist), 200 % zoom, and stored markup
 * that stays text. Screenshots go to .test-cache/viewer-screenshots/; with
 * AUDIT_TEST_SCREENSHOTS=readme they refresh viewer/screenshots/ (the README's).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AuditEventInput } from '../../producer';
import { closeBrowser, launchBrowser } from '../helpers/browser';
import { ROOT, isolatedEnv } from '../helpers/infra';
import { pdfText } from '../helpers/pdf-text';
import { type RunningViewer, startViewer, storeEvents } from '../helpers/viewer';

const AT = (d: number, h: number, m = 0) => Date.UTC(2026, 4, d, h, m); // May 2026
const id = (prefix: string, n: number) => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;
const TOKEN = 'browser-test-token-0123456789abcdef';
// A run does not rewrite the committed images unless asked to.
const SHOTS = process.env.AUDIT_TEST_SCREENSHOTS === 'readme' ? join(ROOT, 'viewer', 'screenshots') : join(ROOT, '.test-cache', 'viewer-screenshots');

/** INV-9: created, sent, amount changed, paid; its creation and a customer update share one request. */
const HISTORY: (AuditEventInput & { eventId: string })[] = [
  { eventId: id('e0000000', 1), objectType: 'invoice', objectId: 'INV-9', action: 'create', occurredAt: AT(1, 9), actorId: 'alice', tenantId: 'acme', requestId: 'req-42', httpMethod: 'POST', httpPath: '/invoices', httpStatus: 201, after: { status: 'draft', amount: 100, customer: 'C-7' } },
  { eventId: id('e0000000', 2), objectType: 'customer', objectId: 'C-7', action: 'update', occurredAt: AT(1, 9, 1), actorId: 'alice', tenantId: 'acme', requestId: 'req-42', changes: { open_invoices: { old: 0, new: 1 } } },
  { eventId: id('e0000000', 3), objectType: 'invoice', objectId: 'INV-9', action: 'update', occurredAt: AT(2, 10), actorId: 'bob', tenantId: 'acme', changes: { status: { old: 'draft', new: 'sent' } } },
  { eventId: id('e0000000', 4), objectType: 'invoice', objectId: 'INV-9', action: 'update', occurredAt: AT(3, 11), actorId: 'alice', tenantId: 'acme', changes: { amount: { old: 100, new: 120 } } },
  { eventId: id('e0000000', 5), objectType: 'invoice', objectId: 'INV-9', action: 'update', occurredAt: AT(4, 12), actorId: 'carol', tenantId: 'acme', changes: { status: { old: 'sent', new: 'paid' } } },
  {
    eventId: id('e0000000', 6),
    objectType: 'note',
    objectId: 'N-1',
    action: 'create',
    occurredAt: AT(4, 13),
    actorId: 'alice',
    tenantId: 'acme',
    after: { text: '<img src=x onerror=alert(1)><script>alert(2)</script>', link: 'javascript:alert(3)' },
  },
];
/** Alice's activity: 3 events above plus these, over several pages of 4. */
const ALICE_EXTRA = 7;
const EVENTS = [...HISTORY];
for (let i = 0; i < ALICE_EXTRA; i++) {
  EVENTS.push({ eventId: id('f0000000', i), objectType: 'order', objectId: `O-${i}`, action: 'create', occurredAt: AT(5, 8, i), actorId: 'alice', tenantId: 'acme', after: { n: i } });
}
const ALICE_IDS = EVENTS.filter((e) => e.actorId === 'alice').sort((a, b) => Number(a.occurredAt) - Number(b.occurredAt)).map((e) => e.eventId);

describe('audit viewer in headless Chromium', () => {
  const vars = isolatedEnv('viewerbrowser', {
    AUDIT_VIEWER_PAGE_SIZE: '4',
    AUDIT_VIEWER_TOKENS: JSON.stringify([{ token: TOKEN, tenants: ['acme'], name: 'acme-auditor' }]),
  });
  let viewer: RunningViewer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];

  const rowIds = async () => page.locator('#events > tbody > tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-id') ?? ''));
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    await storeEvents(vars, EVENTS);
    viewer = await startViewer(vars);
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1000, height: 700 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await closeBrowser(browser);
    if (viewer) expect((await viewer.stop()).code).toBe(0);
  });

  it('sends a visitor to the sign-in form, which signs in by keyboard and returns to the page asked for', async () => {
    await page.goto(`${viewer.url}/actor?actor=alice`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await shot('signin');
    // The token field has focus; typing and Enter submit the form.
    await page.keyboard.type('wrong-token-0000000000');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#signin-error');
    expect(await page.locator('#signin-error').textContent()).toMatch(/not valid/);
    await page.locator('input[name=token]').focus();
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/actor');
    expect(await page.locator('.who').textContent()).toContain('acme-auditor');
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'audit_viewer_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('searches by actor from the form and pages through every result', async () => {
    await page.goto(`${viewer.url}/`);
    await page.locator('#f-actor').focus();
    await page.keyboard.type('alice');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#events');
    await shot('search');
    const seen: string[] = [];
    for (;;) {
      const ids = await rowIds();
      expect(ids.length).toBeLessThanOrEqual(4);
      seen.push(...ids);
      const next = page.locator('#next-page');
      if ((await next.count()) === 0) break;
      const target = new URL((await next.getAttribute('href'))!, viewer.url).href;
      await next.focus();
      await Promise.all([page.waitForURL(target), page.keyboard.press('Enter')]);
    }
    expect(seen).toEqual(ALICE_IDS);
  });

  it("shows an object's timeline with field-level diffs, and its state as of a time", async () => {
    await page.goto(`${viewer.url}/?object=${encodeURIComponent('invoice:INV-9')}`);
    expect(new URL(page.url()).pathname).toBe('/object');
    expect(await page.locator('h1').textContent()).toBe('History of invoice:INV-9');
    expect(await rowIds()).toEqual([1, 3, 4, 5].map((n) => id('e0000000', n)));
    const amountRow = page.locator(`tr[data-event-id="${id('e0000000', 4)}"] table.diff tbody tr`);
    expect(await amountRow.locator('th').textContent()).toBe('amount');
    expect(await amountRow.locator('del').textContent()).toBe('100');
    expect(await amountRow.locator('ins').textContent()).toBe('120');
    await shot('timeline');
    await page.locator('#f-as_of').focus();
    await page.keyboard.type('2026-05-02T12:00:00Z');
    await page.keyboard.press('Enter');
    await page.waitForSelector('table#state');
    const state = await page.locator('table#state tbody tr').evaluateAll((rows) => rows.map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]));
    expect(state).toEqual([
      ['amount', '100'],
      ['customer', '"C-7"'],
      ['status', '"sent"'],
    ]);
    await shot('as-of');
  });

  it("follows links: an event to its actor's activity, and to its request's other events", async () => {
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    await page.locator(`tr[data-event-id="${id('e0000000', 3)}"] a[href^="/actor"]`).click();
    await page.waitForURL((u) => u.pathname === '/actor');
    expect(await page.locator('h1').textContent()).toBe('Activity of bob');
    expect(await rowIds()).toEqual([id('e0000000', 3)]);
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    await page.locator(`tr[data-event-id="${id('e0000000', 1)}"] a[href^="/request"]`).click();
    await page.waitForURL((u) => u.pathname === '/request');
    expect(await rowIds()).toEqual([id('e0000000', 1), id('e0000000', 2)]);
    await shot('request');
    await page.locator(`tr[data-event-id="${id('e0000000', 2)}"] a[href^="/object"]`).click();
    await page.waitForURL((u) => u.pathname === '/object');
    expect(await page.locator('h1').textContent()).toBe('History of customer:C-7');
  });

  it('downloads the CSV and the PDF report of a history', async () => {
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.locator('a', { hasText: 'Export CSV' }).click()]);
    const csv = await readFile((await csvDownload.path())!, 'utf8');
    const lines = csv.split('\r\n').filter(Boolean);
    expect(lines[0]!.split(',').slice(0, 5)).toEqual(['event_id', 'occurred_at', 'object_type', 'object_id', 'action']);
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([1, 3, 4, 5].map((n) => id('e0000000', n)));
    const [pdfDownload] = await Promise.all([page.waitForEvent('download'), page.locator('a', { hasText: 'PDF report' }).click()]);
    const pdf = await readFile((await pdfDownload.path())!);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const text = (await pdfText(pdf)).pages.join('\n');
    expect(text).toContain('History of invoice:INV-9');
    for (const who of ['alice', 'bob', 'carol']) expect(text).toContain(who);
    expect(text).toMatch(/amount/);
    expect(text).toMatch(/120/);
  });

  it('keeps stored markup as text: no element, no script, no dialog', async () => {
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('note:N-1')}`);
    await page.waitForSelector('#events');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:"]').count()).toBe(0);
    expect(await page.locator('#events').textContent()).toContain('<img src=x onerror=alert(1)>');
    expect(dialogs).toEqual([]);
  });

  it('is usable by keyboard (skip link first) and reflows at 200 % zoom without sideways scrolling', async () => {
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    await page.keyboard.press('Tab');
    // Page scripts are strings here: the project compiles without the DOM's types.
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('main');
    // 200 % zoom of a 1000 px window: a 500 CSS px viewport.
    const zoomed = await context.newPage();
    await zoomed.setViewportSize({ width: 500, height: 700 });
    await zoomed.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    const overflow = (await zoomed.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
    expect(overflow).toBeLessThanOrEqual(0);
    await zoomed.screenshot({ path: join(SHOTS, 'zoom-200.png') });
    await zoomed.close();
  });

  it('signs out with the CSRF-protected form', async () => {
    await page.goto(`${viewer.url}/`);
    await page.locator('form.signout button').click();
    await page.waitForURL((u) => u.pathname === '/signin');
    expect((await context.cookies()).find((c) => c.name === 'audit_viewer_session')).toBeUndefined();
    await page.goto(`${viewer.url}/object?object=${encodeURIComponent('invoice:INV-9')}`);
    expect(new URL(page.url()).pathname).toBe('/signin');
  });
});
