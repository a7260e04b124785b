/**
 * Metrics benchmark: synthetic sets shaped like COCO val2017 (bbox), a 1,000-image segm set, a paired bootstrap
 * gate and Dice on 2048×2048 masks; then whole processes side by side with faster-coco-eval and pycocotools
 * (from the Python test environment, when installed) and the val2017-shaped bootstrap on one thread and on all
 * (bench/metrics-whole.ts). Prints a markdown table. Run: npm run bench:metrics [-- options]
 * Options: --quick (smaller sets, for a smoke run), --keep (leave the generated files in the temp folder),
 * --sections engine,whole,bootstrap (a subset); ROUNDS=n interleaved rounds of the whole-process runs (default 3).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { accumulate } from '../shared/metrics/coco/accumulate';
import { loadDetections, loadGroundTruth, readJsonFile } from '../shared/metrics/coco/load';
import { matchDetections } from '../shared/metrics/coco/match';
import { defaultParams } from '../shared/metrics/coco/params';
import { summarize } from '../shared/metrics/coco/summarize';
import { cocoStatMetric, pairedBootstrap } from '../shared/metrics/bootstrap';
import { evaluateCocoFiles } from '../shared/metrics';
import { evaluateCounts, evaluateMaskFolders } from '../shared/metrics/masks/evaluate';
import { countLabels } from '../shared/metrics/masks/overlap';
import { makeDetectionSet, Rand } from './coco-sets';
import { bootstrapThreads, wholeProcessSegm } from './metrics-whole';

const quick = process.argv.includes('--quick');
// --sections engine,whole,bootstrap (default all): the in-process engine figures, the whole-process comparison
// with faster-coco-eval and pycocotools, the val2017-shaped bootstrap on one thread and on all
const sectionArg = process.argv.indexOf('--sections');
const sections = new Set(sectionArg >= 0 ? process.argv[sectionArg + 1].split(',') : ['engine', 'whole', 'bootstrap']);
const rounds = Number(process.env.ROUNDS ?? 3);
const keep = process.argv.includes('--keep');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-metrics-'));

function write(name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

/** CPU seconds (user + system) of the last timed call: on a shared machine they vary less than wall time. */
let lastCpu = 0;
const cpuNote = () => `cpu ${lastCpu.toFixed(2)} s`;

function time<T>(fn: () => T): [T, number] {
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  const out = fn();
  const used = process.cpuUsage(c);
  lastCpu = (used.user + used.system) / 1e6;
  return [out, Number(process.hrtime.bigint() - t) / 1e9];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  const out = await fn();
  const used = process.cpuUsage(c);
  lastCpu = (used.user + used.system) / 1e6;
  return [out, Number(process.hrtime.bigint() - t) / 1e9];
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const rows: [string, string, string][] = [];
const row = (what: string, value: string, note: string) => {
  rows.push([what, value, note]);
  console.error(`${what}: ${value} ${note}`);
};

async function main(): Promise<void> {
  if (sections.has('engine')) await engine();
  if (sections.has('whole')) for (const r of wholeProcessSegm(dir, quick ? 100 : 1000, rounds, (l) => console.error(l))) row(...r);
  if (sections.has('bootstrap')) for (const r of await bootstrapThreads(dir, quick ? 500 : 5000, (l) => console.error(l))) row(...r);
  row('peak RSS (benchmark process)', `${mb(process.resourceUsage().maxRSS * 1024)} MB`, '');

  console.log(`\n| measurement | time | notes |\n| --- | --- | --- |`);
  for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
  console.log(
    `\nNode ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), load average at the end ${os.loadavg()[0].toFixed(1)}${quick ? ', --quick' : ''}`,
  );
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`files kept in ${dir}`);
}

async function engine(): Promise<void> {
  // 1. bbox, val2017-shaped
  const nImg = quick ? 500 : 5000;
  const bboxSet = makeDetectionSet(1, nImg, 80, 7.3, 100, false);
  const gtFile = write('bbox-gt.json', bboxSet.gt);
  const dtFile = write('bbox-dt.json', bboxSet.dets);
  const sizes = `${nImg} images, 80 classes, ${bboxSet.gt.annotations.length} gt, ${bboxSet.dets.length} dets; ${mb(fs.statSync(dtFile).size)} MB results`;
  bboxSet.gt.annotations.length = 0;
  bboxSet.dets.length = 0;
  const [[gt, dt], tLoad] = time(() => {
    const g = loadGroundTruth(readJsonFile(gtFile, 'gt'), gtFile, 'bbox');
    return [g, loadDetections(readJsonFile(dtFile, 'dt'), dtFile, g, 'bbox')] as const;
  });
  row('bbox: load (read + JSON.parse + validate)', `${tLoad.toFixed(2)} s`, `${cpuNote()}; ${sizes}`);
  const params = defaultParams();
  const [[stats, tMatch, tAcc], tEval] = time(() => {
    const [table, tm] = time(() => matchDetections(gt, dt, 'bbox', params));
    const [st, ta] = time(() => summarize(accumulate(table), params));
    return [st, tm, ta] as const;
  });
  row(
    'bbox: evaluate + accumulate + summarize (target < 3 s)',
    `${tEval.toFixed(2)} s`,
    `${cpuNote()}; matching ${tMatch.toFixed(2)} s, accumulate ${tAcc.toFixed(2)} s; AP ${stats[0].toFixed(4)}; pycocotools ~68 s, faster-coco-eval ~6 s on this machine class`,
  );
  const [whole, tWhole] = time(() => evaluateCocoFiles({ groundTruth: gtFile, predictions: dtFile, iouType: 'bbox' }));
  row('bbox: whole CLI run, evaluateCocoFiles (target < 8 s)', `${tWhole.toFixed(2)} s`, `${cpuNote()}; AP ${whole.stats[0].toFixed(4)}`);
  row('peak RSS after bbox', `${mb(process.resourceUsage().maxRSS * 1024)} MB`, 'target < 2 GB');

  // 2. segm: 1,000 images x 100 masks (compressed RLE), polygon ground truth
  const sImg = quick ? 100 : 1000;
  const segmSet = makeDetectionSet(7, sImg, 20, 7, 100, true);
  const sgFile = write('segm-gt.json', segmSet.gt);
  const sdFile = write('segm-dt.json', segmSet.dets);
  const sSizes = `${sImg} images, ${segmSet.gt.annotations.length} polygon gt, ${segmSet.dets.length} RLE dets`;
  const [[sgt, sdt], tSLoad] = time(() => {
    const g = loadGroundTruth(readJsonFile(sgFile, 'gt'), sgFile, 'segm');
    return [g, loadDetections(readJsonFile(sdFile, 'dt'), sdFile, g, 'segm')] as const;
  });
  row('segm: load (JSON + RLE decode + polygon rasterising)', `${tSLoad.toFixed(2)} s`, `${cpuNote()}; ${sSizes}`);
  const [sStats, tSEval] = time(() => summarize(accumulate(matchDetections(sgt, sdt, 'segm', params)), params));
  row(
    'segm: evaluate + accumulate + summarize (target < 1 s)',
    `${tSEval.toFixed(2)} s`,
    `${cpuNote()}; AP ${sStats[0].toFixed(4)}; pycocotools ~12.7 s, faster-coco-eval ~2 s`,
  );

  // 3. paired bootstrap gate: 1,000 images, 1,000 resamples
  const bImg = quick ? 200 : 1000;
  const cand = makeDetectionSet(21, bImg, 80, 7.3, 100, false, 22);
  const prod = makeDetectionSet(21, bImg, 80, 7.3, 100, false, 23);
  const bgFile = write('boot-gt.json', cand.gt);
  const bcFile = write('boot-cand.json', cand.dets);
  const bpFile = write('boot-prod.json', prod.dets);
  const [boot, tBoot] = time(() => {
    const g = loadGroundTruth(readJsonFile(bgFile, 'gt'), bgFile, 'bbox');
    const tc = matchDetections(g, loadDetections(readJsonFile(bcFile, 'dt'), bcFile, g, 'bbox'), 'bbox', params);
    const tp = matchDetections(g, loadDetections(readJsonFile(bpFile, 'dt'), bpFile, g, 'bbox'), 'bbox', params);
    return pairedBootstrap(g.imgIds.length, cocoStatMetric(tc, 'AP'), cocoStatMetric(tp, 'AP'), {
      resamples: 1000,
      confidence: 0.95,
      seed: 1,
    });
  });
  row(
    `bootstrap gate: ${bImg} images, 1000 resamples, AP, both models`,
    `${tBoot.toFixed(2)} s`,
    `${cpuNote()}; incl. loading and matching; diff ${boot.difference.toFixed(4)} [${boot.lower.toFixed(4)}, ${boot.upper.toFixed(4)}]`,
  );

  // 4. Dice: 200 masks of 2048x2048 (8-bit labels), 8 distinct pairs cycled so the data never sits in cache
  const W = 2048;
  const N = W * W;
  const r = new Rand(5);
  const pairs: [Uint8Array, Uint8Array][] = [];
  for (let k = 0; k < 8; k++) {
    const g = new Uint8Array(N);
    const p = new Uint8Array(N);
    for (let b = 0; b < 300; b++) {
      const cx = r.range(0, W),
        cy = r.range(0, W),
        rad = r.range(8, 60),
        c = 1 + (b % 4);
      for (let y = Math.max(0, Math.floor(cy - rad)); y < Math.min(W, cy + rad); y++)
        for (let x = Math.max(0, Math.floor(cx - rad)); x < Math.min(W, cx + rad); x++) {
          if ((x - cx) ** 2 + (y - cy) ** 2 < rad * rad) g[y * W + x] = c;
          if ((x - cx - 3) ** 2 + (y - cy) ** 2 < rad * rad * 0.95) p[y * W + x] = c;
        }
    }
    pairs.push([g, p]);
  }
  const nMasks = quick ? 40 : 200;
  const [, tDice] = time(() => {
    const counts = [];
    for (let i = 0; i < nMasks; i++) counts.push(countLabels(pairs[i % 8][0], pairs[i % 8][1]));
    return evaluateCounts(
      counts.map((_, i) => `m${i}`),
      counts,
    );
  });
  row(
    `Dice/IoU: ${nMasks} masks 2048x2048, 8-bit multi-class (target >= 1 GB/s)`,
    `${tDice.toFixed(2)} s`,
    `${cpuNote()}; ${((nMasks * 2 * N) / tDice / 1e9).toFixed(2)} GB/s of mask data (truth + prediction) wall, ${((nMasks * 2 * N) / lastCpu / 1e9).toFixed(2)} GB/s per CPU second; one thread`,
  );
  const [, tBin] = time(() => {
    for (let i = 0; i < nMasks; i++) countLabels(pairs[i % 8][0], pairs[i % 8][1], true);
  });
  row(
    `Dice/IoU: ${nMasks} masks 2048x2048, binary`,
    `${tBin.toFixed(2)} s`,
    `${cpuNote()}; ${((nMasks * 2 * N) / tBin / 1e9).toFixed(2)} GB/s wall, ${((nMasks * 2 * N) / lastCpu / 1e9).toFixed(2)} GB/s per CPU second`,
  );

  // 5. the same from PNG files (decoding included)
  const nPng = quick ? 4 : 20;
  const gDir = path.join(dir, 'masks-gt');
  const pDir = path.join(dir, 'masks-pred');
  fs.mkdirSync(gDir);
  fs.mkdirSync(pDir);
  for (let i = 0; i < nPng; i++) {
    for (const [folder, data] of [
      [gDir, pairs[i % 8][0]],
      [pDir, pairs[i % 8][1]],
    ] as const) {
      const png = PNG.sync.write({ width: W, height: W, data: Buffer.from(data), depth: 8 } as unknown as PNG, {
        colorType: 0,
        inputColorType: 0,
        inputHasAlpha: false,
        bitDepth: 8,
      });
      fs.writeFileSync(path.join(folder, `img${i}.png`), png);
    }
  }
  const [, tFolder] = await timeAsync(() => evaluateMaskFolders({ groundTruth: gDir, predictions: pDir }));
  row(
    `masks from PNG folders: ${nPng} pairs 2048x2048 (pngjs decode included)`,
    `${tFolder.toFixed(2)} s`,
    `${cpuNote()}; ${((tFolder / nPng) * 1000).toFixed(0)} ms per pair`,
  );
}

main().catch((error) => {
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(error);
  process.exit(1);
});
