import type { Browser } from 'playwright-core';
import { closeBrowser, launchBrowser } from '../helpers/browser';

// The helper the viewer's browser tests stand on: Debian's Chromium, headless, closed cleanly.
describe('test/helpers/browser', () => {
  let browser: Browser | undefined;
  afterAll(() => closeBrowser(browser));

  it('renders a page and runs its script, then closes', async () => {
    browser = await launchBrowser();
    const page = await browser.newPage();
    const html = '<!doctype html><title>t</title><p id="p">static</p><script>document.getElementById("p").textContent = "Ωμέγα " + (6 * 7)</script>';
    await page.goto(`data:text/html;charset=utf-8,${encodeURIComponent(html)}`);
    expect(await page.textContent('#p')).toBe('Ωμέγα 42');
    expect(browser.version()).toMatch(/^\d+\./);
    const closed = new Promise<void>((resolve) => browser!.once('disconnected', () => resolve()));
    await closeBrowser(browser);
    await closed;
    expect(browser.isConnected()).toBe(false);
    browser = undefined;
  });
});
