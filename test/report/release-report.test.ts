import * as path from 'node:path';
import { launchChromium, renderPage } from '../support/chromium';
import { Summary } from '../../shared/core/summary';
import { renderReleaseReport, writeReleaseReport } from '../../shared/report/release-report';
import { ROOT } from '../support/runners';

const CHART = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect x="10" y="20" width="40" height="80" fill="#0969da"/><text x="10" y="15">Dice</text></svg>';

function sampleReport() {
  const gate = new Summary().heading('Gate').table(['metric', 'candidate', 'production', 'verdict'], [['dice', '0.846', '0.820', 'pass']]).image('Dice by model', { svg: CHART });
  return {
    title: 'Release cell-segmenter 1.2.0',
    subtitle: 'lab/cells @ 0123456',
    generatedAt: '2026-11-21T12:00:00Z',
    sections: [
      { step: 'validate-data', title: 'Data checks', status: 'passed' as const, seconds: 1.2, markdown: new Summary().heading('Checks').table(['check', 'count'], [['image.missing', 0]]).toMarkdown(), outputs: { fingerprint: 'sha256:abc' } },
      { step: 'gate-metrics', title: 'Gate', status: 'failed' as const, markdown: gate.toMarkdown() },
    ],
  };
}

describe('release report', () => {
  it('is one self-contained page: inline styles, data-URI images, no script, nothing external', () => {
    const html = renderReleaseReport(sampleReport());
    expect(html).toContain('<table>');
    expect(html).toContain('src="data:image/svg+xml;base64,');
    expect(html).not.toMatch(/<script|<link|src="http|href="http|@import/);
    expect(html).toContain("default-src 'none'");
    expect(html).toContain('<span class="badge failed">failed</span>');
  });

  it('renders in headless Chromium without errors or network requests', async () => {
    const file = path.join(ROOT, 'test-output', 'sample-report.html');
    writeReleaseReport(file, sampleReport());
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`file://${file}`);
      const img = page.locator('img[alt="Dice by model"]');
      expect(await img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth)).toBe(200);
      const result = await renderPage(browser, file, path.join(ROOT, 'test-output', 'sample-report.png'));
      expect(result).toEqual({ problems: [], externalRequests: [], sections: 2 });
    } finally {
      await browser.close();
    }
  });
});
