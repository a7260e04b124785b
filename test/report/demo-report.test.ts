/**
 * @jest-environment ./test/onnx/ort-environment.js
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runDemo } from '../../shared/demo/pipeline';
import { launchChromium, renderPage } from '../support/chromium';
import { ROOT } from '../support/runners';

/**
 * The demo end to end, in-process: every stage passes, the simulated instruments converge on the new release,
 * and the release report it writes renders in headless Chromium. The screenshot is kept in test-output/ as a
 * CI artifact.
 */
describe('demo and its release report', () => {
  it('runs the whole chain and writes a report that renders offline', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-'));
    const lines: string[] = [];
    const { reportPath } = await runDemo({ dir, devices: 10, print: (l) => lines.push(l) });
    expect(lines).toHaveLength(15);
    expect(lines.every((l) => / ok \(/.test(l))).toBe(true);
    expect(lines.at(-1)).toContain('10 on 1.1.0');
    const html = fs.readFileSync(reportPath, 'utf8');
    for (const step of ['validate-data', 'submit-training', 'gate-metrics', 'benchmark-model', 'build-device-package', 'stage-ota', 'promote-release']) expect(html).toContain(step);
    fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
    fs.copyFileSync(reportPath, path.join(ROOT, 'test-output', 'release-report.html'));
    const browser = await launchChromium();
    try {
      const result = await renderPage(browser, reportPath, path.join(ROOT, 'test-output', 'release-report.png'));
      expect(result).toEqual({ problems: [], externalRequests: [], sections: 15 });
    } finally {
      await browser.close();
    }
    expect(fs.statSync(path.join(ROOT, 'test-output', 'release-report.png')).size).toBeGreaterThan(10000);
  });
});
