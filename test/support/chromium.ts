import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

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

/** Elements wider than the element that holds them (beyond a pixel of rounding), as "tag.class: width > parent". */
export async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    const out = [];
    for (const el of document.querySelectorAll('main *, header *')) {
      const parent = el.parentElement;
      if (!parent || getComputedStyle(el).display === 'inline' || getComputedStyle(parent).overflowX === 'auto') continue;
      const w = el.getBoundingClientRect().width, pw = parent.getBoundingClientRect().width;
      if (w > pw + 1) out.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className : '') + ': ' + Math.round(w) + ' > ' + Math.round(pw));
    }
    return out;
  })()`);
}

/**
 * What the demo's report test checks of each step's job summary, for a step the demo does not run (export-onnx,
 * optimize-model): no data: URI or inline image (GitHub strips them), every Mermaid xy chart with titled axes, and
 * the summary rendered alone in Chromium at 700 px with no element wider than its container. The screenshot goes to
 * test-output/. Returns what it found, for one toEqual.
 */
export async function summaryRenders(
  step: string,
  markdown: string,
): Promise<{ step: string; dataUri: boolean; image: boolean; axes: boolean[]; overflowing: string[] }> {
  const { renderReleaseReport } = require('../../shared/report/release-report') as typeof import('../../shared/report/release-report');
  const axes = (markdown.match(/```mermaid\n[\s\S]*?```/g) ?? [])
    .filter((b) => b.includes('xychart-beta'))
    .map((b) => /\n {2}x-axis "[^"]+"/.test(b) && /\n {2}y-axis "[^"]+"/.test(b));
  const out = path.resolve(__dirname, '..', '..', 'test-output');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, `summary-${step}.html`);
  fs.writeFileSync(
    file,
    renderReleaseReport({ title: step, generatedAt: 'test', sections: [{ step, title: step, status: 'passed', markdown }] }),
  );
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 700, height: 900 } });
    await page.goto(`file://${file}`);
    const wide = await overflowing(page);
    await page.screenshot({ path: path.join(out, `summary-${step}.png`), fullPage: true });
    return { step, dataUri: /data:/.test(markdown), image: /<img|<svg/.test(markdown), axes, overflowing: wide };
  } finally {
    await browser.close();
  }
}
