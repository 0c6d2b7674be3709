import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { JsonEvent } from '../../viewer/export/event';
import { registerEmbedRoutes } from '../../viewer/embed/routes';
import { mintEmbedToken } from '../../viewer/embed/token';
import { closeBrowser, launchBrowser } from '../helpers/browser';
import { jsonEvent } from '../helpers/viewer-events';

/**
 * The embeddable history in a real Chromium, across origins: the app's page on
 * app.test (allowed) or other.test (not allowed), both served by one host server, and the
 * viewer's embed routes on viewer.test, a second server on another port. All three names
 * resolve to 127.0.0.1 inside the browser.
 */

const KEY = randomBytes(32);
const PWN = 'window.__pwned=(window.__pwned||0)+1;alert(document.domain)';
const INJECT_IMG = `<img src=x onerror="${PWN}">`;
const INJECT_SCRIPT = `</bdi><script>${PWN}</script>`;

const EVENTS: JsonEvent[] = [
  jsonEvent({ event_id: 'e1', occurred_at: '2026-03-01T10:00:00.000000Z', action: 'create', after: { status: 'draft', title: 'Счёт № 7' } }),
  jsonEvent({ event_id: 'e2', occurred_at: '2026-03-01T11:00:00.000000Z', actor_id: `<img src=y onerror="${PWN}">`, changes: { status: { old: 'draft', new: INJECT_IMG }, title: { old: 'Счёт № 7', new: INJECT_SCRIPT } } }),
  jsonEvent({ event_id: 'e3', occurred_at: '2026-03-01T12:00:00.000000Z', changes: { internal: { old: 'a', new: 'hidden from end users' } } }),
  jsonEvent({ event_id: 'x', tenant_id: 'globex', changes: { status: { old: 'a', new: 'globex only' } } }),
];

function listen(app: FastifyInstance): Promise<number> {
  return app.listen({ port: 0, host: '127.0.0.1' }).then((url) => Number(new URL(url).port));
}

const attr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

describe('embedded history in Chromium, from another origin', () => {
  let viewer: FastifyInstance;
  let host: FastifyInstance;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let viewerOrigin: string;
  let hostPort: number;

  beforeAll(async () => {
    // The host page: an app embedding the history, on an origin of its own.
    host = Fastify({ logger: false });
    host.get('/component', async (req, reply) => {
      const { token = '' } = req.query as { token?: string };
      reply.type('text/html; charset=utf-8');
      return `<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<script src="${attr(viewerOrigin)}/embed/audit-history.js"></script></head>
<body><h1>Invoice 7</h1><audit-history src="${attr(viewerOrigin)}" token="${attr(token)}" object="invoice:7"></audit-history></body></html>`;
    });
    host.get('/frame', async (req, reply) => {
      const { token = '' } = req.query as { token?: string };
      reply.type('text/html; charset=utf-8');
      return `<!doctype html><html><head><meta charset="utf-8"><title>app</title></head>
<body><iframe id="history" src="${attr(viewerOrigin)}/embed/frame?token=${attr(encodeURIComponent(token))}"></iframe></body></html>`;
    });
    hostPort = await listen(host);

    viewer = Fastify({ logger: false });
    registerEmbedRoutes(viewer, {
      key: KEY,
      allowedOrigins: [`http://app.test:${hostPort}`],
      loadHistory: async () => EVENTS,
    });
    viewerOrigin = `http://viewer.test:${await listen(viewer)}`;

    browser = await launchBrowser({ loopbackHosts: ['app.test', 'other.test', 'viewer.test'] });
    context = await browser.newContext();
  });

  afterAll(async () => {
    await closeBrowser(browser);
    await Promise.all([viewer?.close(), host?.close()]);
  });

  const token = (over: { fields?: string[]; issuedAt?: Date } = {}) =>
    mintEmbedToken({ tenant: 'acme', object: 'invoice:7', fields: over.fields ?? ['status', 'title'] }, KEY, over.issuedAt ?? new Date());

  /** A page whose dialogs (alert from an injected handler) are recorded and dismissed. */
  async function open(url: string): Promise<{ page: Page; dialogs: string[]; console: string[] }> {
    const page = await context.newPage();
    const dialogs: string[] = [];
    const console: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => console.push(m.text()));
    await page.goto(url);
    return { page, dialogs, console };
  }

  it('the component renders the history on the allowed origin, stored markup shown as text and inert', async () => {
    const { page, dialogs } = await open(`http://app.test:${hostPort}/component?token=${token()}`);
    await page.locator('audit-history[state="ready"]').waitFor();
    const changes = await page.locator('audit-history li.change').allTextContents();
    expect(changes).toEqual(['status: (none) → draft', 'title: (none) → Счёт № 7', `status: draft → ${INJECT_IMG}`, `title: Счёт № 7 → ${INJECT_SCRIPT}`]);
    expect(await page.locator('audit-history .actor').nth(1).textContent()).toBe(`<img src=y onerror="${PWN}">`);
    // Only the token's fields; the other tenant's event is not there.
    expect(await page.locator('audit-history li.event').count()).toBe(2);
    const text = await page.locator('audit-history').evaluate((el) => el.shadowRoot!.textContent);
    expect(text).not.toMatch(/hidden from end users|globex/);
    // Nothing was parsed as markup: no element beyond what the component builds, no handler ran.
    const tags = await page.locator('audit-history').evaluate((el) => [...new Set([...el.shadowRoot!.querySelectorAll('*')].map((n) => n.tagName.toLowerCase()))].sort());
    expect(tags).toEqual(['bdi', 'div', 'li', 'ol', 'span', 'time', 'ul']);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('an expired token shows the error state, not events', async () => {
    const expired = token({ issuedAt: new Date(Date.now() - 301_000) });
    const { page } = await open(`http://app.test:${hostPort}/component?token=${expired}`);
    await page.locator('audit-history[state="error"]').waitFor();
    expect(await page.locator('audit-history [role="alert"]').textContent()).toMatch(/expired/);
    expect(await page.locator('audit-history li.event').count()).toBe(0);
    await page.close();
  });

  it('on an origin not allowed, the browser keeps the answer from the component', async () => {
    const { page, console } = await open(`http://other.test:${hostPort}/component?token=${token()}`);
    await page.locator('audit-history[state="error"]').waitFor();
    expect(await page.locator('audit-history [role="alert"]').textContent()).toMatch(/could not be reached/);
    expect(console.join('\n')).toMatch(/CORS/);
    expect(await page.locator('audit-history li.event').count()).toBe(0);
    await page.close();
  });

  it('the iframe form loads inside the allowed origin, inert, and is refused inside another', async () => {
    const allowed = await open(`http://app.test:${hostPort}/frame?token=${token()}`);
    const frame = allowed.page.frameLocator('#history');
    await frame.locator('li.event').first().waitFor();
    expect(await frame.locator('li.change').allTextContents()).toEqual([
      'status: (none) → draft',
      'title: (none) → Счёт № 7',
      `status: draft → ${INJECT_IMG}`,
      `title: Счёт № 7 → ${INJECT_SCRIPT}`,
    ]);
    expect(await frame.locator('img, script').count()).toBe(0);
    expect(allowed.dialogs).toEqual([]);
    await allowed.page.close();

    const refused = await open(`http://other.test:${hostPort}/frame?token=${token()}`);
    const child = refused.page.frames().find((f) => f !== refused.page.mainFrame());
    expect(child).toBeDefined();
    // Chromium replaces a frame its frame-ancestors refuse with its error page.
    await child!.waitForURL(/^chrome-error:/);
    expect(await refused.page.frameLocator('#history').locator('li.event').count()).toBe(0);
    expect(refused.console.join('\n')).toMatch(/frame-ancestors/);
    await refused.page.close();
  });
});
