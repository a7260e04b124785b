import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, started as this machine allows (root, no sandbox, no background network). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface RenderResult {
  problems: string[];
  externalRequests: string[];
  sections: number;
}

/** Opens a local HTML file, records console errors and every request that leaves the file, and screenshots it. */
export async function renderPage(browser: Browser, file: string, screenshot: string): Promise<RenderResult> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${file}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const sections = await page.locator('section').count();
  await page.close();
  return { problems, externalRequests: requests.filter((u) => !u.startsWith('file://') && !u.startsWith('data:')), sections };
}
