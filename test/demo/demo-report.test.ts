/**
 * @jest-environment ./test/onnx/ort-environment.js
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runStep } from '../../shared/core/runtime';
import { runDemo } from '../../shared/demo/pipeline';
import { LocalHost } from '../../shared/hosts/local-host';
import { verifyPackageStep } from '../../shared/steps/verify-package';
import { renderReleaseReport } from '../../shared/report/release-report';
import { launchChromium, overflowing, renderPage } from '../support/chromium';
import { ROOT } from '../support/runners';

/**
 * The demo end to end, in-process: every stage passes, the simulated instruments converge on the new release, and
 * what people look at renders in headless Chromium: the release report and every step's job summary as GitHub and
 * Azure DevOps get it (export-onnx is the one step not covered: it needs PyTorch, and has its own tests). The
 * Mermaid blocks are checked for titled axes here; mermaid 11.12.2 itself rendered every one of them without error
 * when this test was written (it is not a dependency). Screenshots are kept in test-output/ as CI artifacts.
 */
describe('demo and its release report', () => {
  it('runs the whole chain and writes a report and summaries that render where they are read', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-'));
    const lines: string[] = [];
    const { reportPath } = await runDemo({ dir, devices: 10, print: (l) => lines.push(l) });
    expect(lines).toHaveLength(15);
    expect(lines.every((l) => / ok \(/.test(l))).toBe(true);
    expect(lines.at(-1)).toContain('10 on 1.1.0');
    const html = fs.readFileSync(reportPath, 'utf8');
    for (const step of [
      'validate-data',
      'submit-training',
      'gate-metrics',
      'benchmark-model',
      'build-device-package',
      'stage-ota',
      'promote-release',
    ])
      expect(html).toContain(step);
    const out = path.join(ROOT, 'test-output');
    fs.mkdirSync(out, { recursive: true });
    fs.copyFileSync(reportPath, path.join(out, 'release-report.html'));

    // verify-package is not a stage of the demo: run it on the package the demo built, as a device maker would.
    const logs = path.join(dir, 'logs');
    const archive = fs.readdirSync(path.join(dir, 'packages')).find((f) => f.includes('1.1.0') && f.endsWith('.tar.gz'))!;
    const summaryFiles = {
      github: path.join(logs, 'verify-package.summary.github.md'),
      'azure-devops': path.join(logs, 'verify-package.summary.azure-devops.md'),
    };
    const verify = new LocalHost({
      inputs: { archive: path.join(dir, 'packages', archive), publicKey: path.join(dir, 'keys', 'release.pub.pem') },
      workspace: dir,
      summaryFile: path.join(logs, 'verify-package.summary.md'),
      summaryFlavor: 'html',
      extraSummaryFiles: summaryFiles,
      write: () => undefined,
    });
    expect((await runStep(verifyPackageStep, verify)).ok).toBe(true);

    // Job summaries as the platforms get them: no data: URI (GitHub strips such images), charts as Mermaid with
    // titled axes on GitHub and as tables on Azure DevOps.
    const steps = fs
      .readdirSync(logs)
      .filter((f) => f.endsWith('.summary.github.md'))
      .map((f) => f.replace('.summary.github.md', ''));
    expect(steps.sort()).toEqual([
      'benchmark-model',
      'build-device-package',
      'gate-metrics',
      'package-production',
      'promote-10%',
      'promote-100%',
      'ship-production',
      'stage-ota',
      'submit-training',
      'train-production',
      'validate-data',
      'verify-package',
    ]);
    let mermaid = 0;
    for (const step of steps) {
      const github = fs.readFileSync(path.join(logs, `${step}.summary.github.md`), 'utf8');
      const azure = fs.readFileSync(path.join(logs, `${step}.summary.azure-devops.md`), 'utf8');
      expect({ step, github: /data:/.test(github), azure: /data:/.test(azure), img: /<img|<svg/.test(github + azure) }).toEqual({
        step,
        github: false,
        azure: false,
        img: false,
      });
      for (const block of github.match(/```mermaid\n[\s\S]*?```/g) ?? []) {
        mermaid++;
        if (block.includes('xychart-beta'))
          expect({ step, x: /\n {2}x-axis "[^"]+"/.test(block), y: /\n {2}y-axis "[^"]+"/.test(block) }).toEqual({
            step,
            x: true,
            y: true,
          });
        else expect(block).toMatch(/^```mermaid\npie showData title \S/);
      }
      expect(azure).not.toContain('```mermaid');
    }
    // validate-data class counts, the loss curves of both trainings, gate-metrics Dice per class, benchmark-model latency.
    expect(mermaid).toBe(5);
    const gateGithub = fs.readFileSync(path.join(logs, 'gate-metrics.summary.github.md'), 'utf8');
    expect(gateGithub).toContain('### Prediction gallery: 8 of 8 test images, worst regressions first');
    const benchGithub = fs.readFileSync(path.join(logs, 'benchmark-model.summary.github.md'), 'utf8');
    expect(benchGithub).toContain('### Prediction gallery: 8 of 8 test images, worst scores first');
    expect(benchGithub).toContain('| image | device dice | file |');

    const browser = await launchChromium();
    try {
      const result = await renderPage(browser, reportPath, path.join(out, 'release-report.png'));
      expect(result).toEqual({ problems: [], externalRequests: [], sections: 15 });
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(`file://${reportPath}`);
      expect(await overflowing(page)).toEqual([]);
      // Every chart has both axis labels and a title.
      const charts = await page.evaluate(
        `[...document.querySelectorAll('svg.chart')].map((s) => ({ kind: s.dataset.chart, title: !!s.querySelector('.chart-title')?.textContent, x: !!s.querySelector('.x-label')?.textContent, y: !!s.querySelector('.y-label')?.textContent }))`,
      );
      expect(charts).toEqual(['bar', 'line', 'line', 'bar', 'latency'].map((kind) => ({ kind, title: true, x: true, y: true })));
      // The galleries, decoded by the browser: gate-metrics shows the 8 test images with three panels (ground truth,
      // candidate, production), benchmark-model the same 8 with two (ground truth, device); 96 px tiles and 4 px
      // gaps, enlarged twice.
      const gallery = (await page.evaluate(
        `[...document.querySelectorAll('img.gallery-image')].map((i) => ({ step: i.closest('section').querySelector('.meta').textContent.split(' ')[0], loaded: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight }))`,
      )) as { step: string }[];
      expect(gallery.filter((g) => g.step === 'gate-metrics')).toEqual(
        Array.from({ length: 8 }, () => ({ step: 'gate-metrics', loaded: true, w: 3 * 192 + 2 * 8, h: 192 })),
      );
      expect(gallery.filter((g) => g.step === 'benchmark-model')).toEqual(
        Array.from({ length: 8 }, () => ({ step: 'benchmark-model', loaded: true, w: 2 * 192 + 8, h: 192 })),
      );
      await page
        .locator('section', { hasText: 'Prediction gallery' })
        .first()
        .screenshot({ path: path.join(out, 'gate-metrics-section.png') });
      await page
        .locator('section', { hasText: 'Latency regression gate' })
        .first()
        .screenshot({ path: path.join(out, 'benchmark-model-section.png') });
      expect(await page.locator('header dl.provenance dt').allTextContents()).toEqual([
        'commit',
        'data fingerprint',
        'candidate model (1.1.0)',
        'production model (1.0.0)',
        'package',
      ]);
      // Every step's summary alone, as the HTML flavor renders it, fits a narrow window without widening the page.
      await page.setViewportSize({ width: 700, height: 900 });
      for (const step of steps) {
        const file = path.join(dir, `${step}.summary.html`);
        const markdown = fs.readFileSync(path.join(logs, `${step}.summary.md`), 'utf8');
        fs.writeFileSync(
          file,
          renderReleaseReport({ title: step, generatedAt: 'test', sections: [{ step, title: step, status: 'passed', markdown }] }),
        );
        await page.goto(`file://${file}`);
        expect({ step, overflowing: await overflowing(page) }).toEqual({ step, overflowing: [] });
        await page.screenshot({ path: path.join(out, `summary-${step.replace(/%/g, 'pct')}.png`), fullPage: true });
      }
      await page.close();
    } finally {
      await browser.close();
    }
    expect(fs.statSync(path.join(out, 'release-report.png')).size).toBeGreaterThan(10000);
  });
});
