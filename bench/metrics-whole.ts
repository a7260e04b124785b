/**
 * Whole-process comparisons for `npm run bench:metrics`: the segm evaluation of a 1,000-image set (100 RLE
 * detections per image) run as a separate process by mlship (the CLI as shipped today, which transpiles its
 * TypeScript at start-up, and the same CLI compiled into one file with esbuild, as the installable CLI will be),
 * faster-coco-eval and pycocotools from the Python test environment, interleaved round by round so the load of a
 * shared machine falls on all alike; and the paired bootstrap of a val2017-shaped set on one thread and on all.
 * The compiled CLI goes to node_modules/.cache/mlship-bench (a measurement aid, never committed).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cocoStatMetric, pairedBootstrap, pairedBootstrapParallel } from '../shared/metrics/bootstrap';
import { loadDetections, loadGroundTruth, readJsonFile } from '../shared/metrics/coco/load';
import { matchDetections } from '../shared/metrics/coco/match';
import { defaultParams } from '../shared/metrics/coco/params';
import { makeDetectionSet } from './coco-sets';

const ROOT = path.resolve(__dirname, '..');
const PYTHON = path.join(process.env.MLSHIP_TEST_VENV ?? path.join(ROOT, '.venv-test'), 'bin', 'python');

export interface Measured {
  readonly wall: number;
  /** user + system CPU seconds of the process (all its threads), from /usr/bin/time; NaN without it. */
  readonly cpu: number;
  readonly rssMb: number;
  readonly stdout: string;
}

const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command to completion and measures it as a whole process. */
export function measureProcess(cmd: string, args: string[]): Measured {
  const t0 = process.hrtime.bigint();
  const r = TIME
    ? spawnSync(TIME, ['-f', '@@%U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })
    : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const m = /@@([\d.]+) ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? '');
  return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN, rssMb: m ? Number(m[3]) / 1024 : NaN, stdout: r.stdout };
}

/**
 * Builds the CLI into one CommonJS file, the way the installable CLI is bundled; with `evalOnly`, a bundle of the
 * eval command alone, which shows what start-up costs when a CLI loads only the command it runs.
 */
export function compileCli(evalOnly = false): string {
  const out = path.join(ROOT, 'node_modules/.cache/mlship-bench');
  fs.mkdirSync(out, { recursive: true });
  const esbuild = require('esbuild') as typeof import('esbuild');
  const name = evalOnly ? 'eval-only' : 'main';
  const entry = path.join(ROOT, evalOnly ? 'shared/cli/eval-command.ts' : 'shared/cli/main.ts');
  esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: path.join(out, `${name}.js`),
    logLevel: 'error',
    external: ['onnxruntime-node'],
  });
  const call = evalOnly
    ? `require('./${name}.js').evalCommand.run(process.argv.slice(3), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) })`
    : `require('./${name}.js').main(process.argv.slice(2))`;
  fs.writeFileSync(path.join(out, `${name}-cli.js`), `${call}.then((code) => { process.exitCode = code; });\n`);
  return path.join(out, `${name}-cli.js`);
}

const PY_EVAL = `
import contextlib, io, json, sys
which, gt_file, dt_file, iou = sys.argv[1:5]
if which == 'faster-coco-eval':
    from faster_coco_eval import COCO, COCOeval_faster as Eval
else:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval as Eval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_file)
    dt = gt.loadRes(dt_file)
    E = Eval(gt, dt, iou)
    E.evaluate(); E.accumulate(); E.summarize()
print(json.dumps([float(s) for s in E.stats]))
`;

function hasPython(module: string): boolean {
  return fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

const median = (v: number[]) => {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export type Row = [string, string, string];

/** Whole-process segm run of every tool, `rounds` times interleaved; markdown rows and the ratios. */
export function wholeProcessSegm(dir: string, images: number, rounds: number, log: (s: string) => void): Row[] {
  const set = makeDetectionSet(7, images, 20, 7, 100, true);
  const gt = path.join(dir, 'whole-segm-gt.json');
  const dt = path.join(dir, 'whole-segm-dt.json');
  fs.writeFileSync(gt, JSON.stringify(set.gt));
  fs.writeFileSync(dt, JSON.stringify(set.dets));
  const evalArgs = ['eval', 'coco', '--ground-truth', gt, '--predictions', dt, '--iou-type', 'segm', '--json'];
  const compiled = compileCli();
  const evalOnly = compileCli(true);
  const tools: { name: string; run: () => Measured; stats: (out: string) => number[] }[] = [
    {
      name: 'mlship, eval command alone compiled (start-up of a CLI that loads only the command it runs)',
      run: () => measureProcess(process.execPath, [evalOnly, ...evalArgs]),
      stats: (o) => JSON.parse(o).stats,
    },
    {
      name: 'mlship, compiled CLI (esbuild bundle)',
      run: () => measureProcess(process.execPath, [compiled, ...evalArgs]),
      stats: (o) => JSON.parse(o).stats,
    },
    {
      name: 'mlship, CLI as shipped today (bin/mlship.js, transpiles at start)',
      run: () => measureProcess(process.execPath, [path.join(ROOT, 'bin/mlship.js'), ...evalArgs]),
      stats: (o) => JSON.parse(o).stats,
    },
  ];
  for (const [name, module] of [
    ['faster-coco-eval', 'faster_coco_eval'],
    ['pycocotools', 'pycocotools'],
  ] as const) {
    if (hasPython(module))
      tools.push({
        name: `${name} ${pyVersion(module)}`,
        run: () => measureProcess(PYTHON, ['-c', PY_EVAL, name, gt, dt, 'segm']),
        stats: (o) => JSON.parse(o),
      });
    else log(`${name} is not installed in ${PYTHON}: left out`);
  }
  // start-up alone: the compiled CLI printing its eval help, and bare node
  const startup = {
    name: 'start-up only: compiled CLI `eval --help`',
    run: () => measureProcess(process.execPath, [compiled, 'eval', '--help']),
  };
  const bare = { name: 'start-up only: `node -e ""`', run: () => measureProcess(process.execPath, ['-e', '']) };
  const samples = new Map<string, Measured[]>();
  const stats = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 ? tools.slice().reverse() : tools) {
      const m = t.run();
      samples.set(t.name, [...(samples.get(t.name) ?? []), m]);
      stats.set(t.name, t.stats(m.stdout));
      log(`round ${round + 1}: ${t.name}: ${m.wall.toFixed(2)} s wall, ${m.cpu.toFixed(2)} s CPU`);
    }
    for (const t of [startup, bare]) samples.set(t.name, [...(samples.get(t.name) ?? []), t.run()]);
  }
  const ref = tools.find((t) => t.name.startsWith('faster-coco-eval'));
  const refWall = ref ? median(samples.get(ref.name)!.map((m) => m.wall)) : NaN;
  const refCpu = ref ? median(samples.get(ref.name)!.map((m) => m.cpu)) : NaN;
  const py = tools.find((t) => t.name.startsWith('pycocotools'));
  const rows: Row[] = [];
  for (const name of [...tools.map((t) => t.name), startup.name, bare.name]) {
    const s = samples.get(name)!;
    const wall = median(s.map((m) => m.wall));
    const cpu = median(s.map((m) => m.cpu));
    const rss = Math.max(...s.map((m) => m.rssMb));
    const agree =
      py && stats.has(name) && name !== py.name
        ? `; stats vs pycocotools max |Δ| ${Math.max(...stats.get(name)!.map((v, i) => Math.abs(v - stats.get(py.name)![i]))).toExponential(1)}`
        : '';
    const ratio =
      ref && stats.has(name) ? `; ${(wall / refWall).toFixed(2)}× faster-coco-eval's wall, ${(cpu / refCpu).toFixed(2)}× its CPU` : '';
    rows.push([
      `whole process, segm ${images} images × 100 RLE: ${name}`,
      `${wall.toFixed(2)} s`,
      `CPU ${cpu.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB (medians of ${rounds} interleaved rounds)${ratio}${agree}`,
    ]);
  }
  return rows;
}

function pyVersion(module: string): string {
  const r = spawnSync(
    PYTHON,
    ['-c', `import importlib.metadata as m; print(m.version('${module === 'faster_coco_eval' ? 'faster-coco-eval' : module}'))`],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? r.stdout.trim() : '';
}

/** The paired bootstrap of two val2017-shaped models (AP, 1,000 resamples): one thread, then every core. */
export async function bootstrapThreads(dir: string, images: number, log: (s: string) => void): Promise<Row[]> {
  const cand = makeDetectionSet(21, images, 80, 7.3, 100, false, 22);
  const prod = makeDetectionSet(21, images, 80, 7.3, 100, false, 23);
  const files = ['gt', 'cand', 'prod'].map((n) => path.join(dir, `boot-${images}-${n}.json`));
  fs.writeFileSync(files[0], JSON.stringify(cand.gt));
  fs.writeFileSync(files[1], JSON.stringify(cand.dets));
  fs.writeFileSync(files[2], JSON.stringify(prod.dets));
  const params = defaultParams();
  const g = loadGroundTruth(readJsonFile(files[0], 'gt'), files[0], 'bbox');
  const c = cocoStatMetric(matchDetections(g, loadDetections(readJsonFile(files[1], 'dt'), files[1], g, 'bbox'), 'bbox', params), 'AP');
  const p = cocoStatMetric(matchDetections(g, loadDetections(readJsonFile(files[2], 'dt'), files[2], g, 'bbox'), 'bbox', params), 'AP');
  const options = { resamples: 1000, confidence: 0.95, seed: 1 };
  const timed = async <T>(fn: () => T | Promise<T>): Promise<[T, number, number]> => {
    const u = process.cpuUsage();
    const t = process.hrtime.bigint();
    const out = await fn();
    const used = process.cpuUsage(u);
    return [out, Number(process.hrtime.bigint() - t) / 1e9, (used.user + used.system) / 1e6];
  };
  const [one, w1, c1] = await timed(() => pairedBootstrap(g.imgIds.length, c, p, options));
  log(`bootstrap, 1 thread: ${w1.toFixed(2)} s`);
  const [many, wn, cn] = await timed(() => pairedBootstrapParallel(g.imgIds.length, c, p, options));
  log(`bootstrap, ${many.threads} threads: ${wn.toFixed(2)} s`);
  const same = one.lower === many.lower && one.upper === many.upper && one.resamples === many.resamples;
  return [
    [
      `bootstrap only: ${images} images (val2017-shaped), 1,000 resamples, AP, both models, 1 thread`,
      `${w1.toFixed(2)} s`,
      `CPU ${c1.toFixed(2)} s; interval [${one.lower.toFixed(4)}, ${one.upper.toFixed(4)}]`,
    ],
    [
      `bootstrap only: the same on ${many.threads} worker threads`,
      `${wn.toFixed(2)} s`,
      `CPU ${cn.toFixed(2)} s (all threads); ${(wn / w1).toFixed(2)}× the one-thread wall time; interval ${same ? 'bit-identical' : 'DIFFERENT'}; ${os.availableParallelism()} cores`,
    ],
  ];
}
