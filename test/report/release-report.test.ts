import * as path from 'node:path';
import { launchChromium, renderPage } from '../support/chromium';
import { Summary } from '../../shared/core/summary';
import { type ReleaseReport, renderReleaseReport, writeReleaseReport } from '../../shared/report/release-report';
import { ROOT } from '../support/runners';

function sampleReport(): ReleaseReport {
  const gate = new Summary()
    .heading('Gate')
    .table(['metric', 'candidate', 'production', 'verdict'], [['dice', '0.846', '0.820', 'pass']])
    .chart({
      kind: 'bar',
      title: 'Dice by model',
      category: 'model',
      categories: ['candidate', 'production'],
      value: { label: 'dice', min: 0, max: 1 },
      series: [{ name: 'dice', values: [0.846, 0.82] }],
    });
  return {
    title: 'Release cell-segmenter 1.2.0',
    subtitle: 'lab/cells @ 0123456',
    generatedAt: '2026-11-21T12:00:00Z',
    sections: [
      {
        step: 'validate-data',
        title: 'Data checks',
        status: 'passed',
        seconds: 1.2,
        markdown: new Summary()
          .heading('Checks')
          .table(['check', 'count'], [['image.missing', 0]])
          .toMarkdown(),
        outputs: { fingerprint: 'sha256:abc' },
      },
      {
        step: 'gate-metrics',
        title: 'Gate',
        status: 'failed',
        markdown: gate.toMarkdown('html'),
        outputs: { latency: '[{"batch":1,"p50":1.25}]' },
      },
    ],
  };
}

describe('release report', () => {
  it('is one self-contained page: inline styles, inline SVG charts, no script, nothing external, no JSON dumps', () => {
    const html = renderReleaseReport(sampleReport());
    expect(html).toContain('<div class="table-wrap"><table>');
    expect(html).toContain('<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="bar"');
    expect(html).toContain('<thead><tr><th>batch</th><th>p50</th></tr></thead><tbody><tr><td>1</td><td>1.25</td></tr></tbody>');
    expect(html).not.toContain('[{&quot;batch');
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
      const chart = page.locator('svg[aria-label="Dice by model"]');
      expect(
        await chart.evaluate((el) => (el as unknown as { getBoundingClientRect(): { width: number } }).getBoundingClientRect().width),
      ).toBeGreaterThan(300);
      const result = await renderPage(browser, file, path.join(ROOT, 'test-output', 'sample-report.png'));
      expect(result).toEqual({ problems: [], externalRequests: [], sections: 2 });
    } finally {
      await browser.close();
    }
  });
});
