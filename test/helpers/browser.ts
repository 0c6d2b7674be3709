import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT } from './infra';

/**
 * The Chromium binary: AUDIT_TEST_CHROMIUM (test/run.sh sets it), else whatever
 * infra/chromium.sh installs (Debian's package, /usr/bin/chromium). Resolved once per
 * test file: the install is instant once done, but it is still a bash start.
 */
let resolved: string | undefined;
export function chromiumPath(): string {
  if (resolved !== undefined) return resolved;
  const fromEnv = process.env.AUDIT_TEST_CHROMIUM;
  if (fromEnv) return (resolved = fromEnv);
  try {
    resolved = execFileSync('bash', [join(ROOT, 'infra', 'chromium.sh'), 'install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`no Chromium for the browser tests (infra/chromium.sh install failed): ${stderr.trim() || (err as Error).message}`);
  }
  return resolved;
}

export interface LaunchOptions {
  /**
   * Host names resolved to 127.0.0.1 (`--host-resolver-rules`), so one machine serves
   * several origins (`http://app.test:PORT`, `http://viewer.test:PORT`) without /etc/hosts.
   */
  loopbackHosts?: readonly string[];
}

/** A headless Chromium; close it with closeBrowser (also after a failed test, from afterAll). */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const hosts = options.loopbackHosts ?? [];
  for (const h of hosts) if (!/^[a-z0-9.-]+$/.test(h)) throw new Error(`launchBrowser: not a host name: ${h}`);
  const resolver = hosts.length > 0 ? [`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`] : [];
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // A jest worker's failure must not leave a browser behind: playwright kills it on these.
    handleSIGINT: true,
    handleSIGTERM: true,
    handleSIGHUP: true,
    timeout: 60_000,
    // Root in a container has no user namespace for the sandbox, and /dev/shm is often 64 MB.
    args: ['--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', ...resolver],
  });
}

/** Closes the browser and waits for its process to exit; a no-op for one never launched. */
export async function closeBrowser(browser: Browser | undefined): Promise<void> {
  if (browser === undefined) return;
  await browser.close();
}
