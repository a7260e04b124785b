/**
 * Cold start of a bundled action that does nothing heavy: wall time of `node dist/index.js` as the runner
 * starts it, against bare `node -e ""`; the same for the compiled CLI (`mlship --help` from lib/, as the installed
 * package runs it) and for the CLI run from the sources in a clone; plus the size of every committed bundle.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildBundle } from '../scripts/build';
import { buildCli, LIB } from '../scripts/build-cli';

const ROOT = path.resolve(__dirname, '..');
const RUNS = Number(process.env.RUNS ?? 20);

function time(args: string[], env: NodeJS.ProcessEnv): number[] {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { env, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return samples.sort((a, b) => a - b);
}

const median = (s: number[]) => s[Math.floor(s.length / 2)];
const p90 = (s: number[]) => s[Math.floor(s.length * 0.9)];

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cold-'));
  const files = { GITHUB_OUTPUT: path.join(dir, 'o'), GITHUB_STEP_SUMMARY: path.join(dir, 's'), GITHUB_STATE: path.join(dir, 'st') };
  for (const f of Object.values(files)) fs.writeFileSync(f, '');
  const rows: string[][] = [];
  const base = time(['-e', ''], { PATH: process.env.PATH });
  rows.push(['node -e ""', median(base).toFixed(1), p90(base).toFixed(1), '']);
  for (const platform of ['github', 'azure'] as const) {
    const outDir = `.mlship/test-bundles/${platform}/echo-test`;
    await buildBundle({ step: 'echo-test', module: 'test/fixtures/echo-step', exportName: 'echoStep', platform, outDir });
    const bundle = path.join(ROOT, outDir, 'index.js');
    const env = { PATH: process.env.PATH, ...files, RUNNER_TEMP: dir, AGENT_TEMPDIRECTORY: dir, INPUT_MESSAGE: 'hi' };
    const s = time([bundle], env);
    rows.push([
      `echo step, ${platform} bundle`,
      median(s).toFixed(1),
      p90(s).toFixed(1),
      `${(fs.statSync(bundle).size / 1024).toFixed(0)} KiB`,
    ]);
  }
  await buildCli();
  const plain = { PATH: process.env.PATH, HOME: process.env.HOME };
  const cli = time([path.join(LIB, 'mlship.js'), '--help'], plain);
  rows.push([
    'mlship --help, compiled (lib/mlship.js)',
    median(cli).toFixed(1),
    p90(cli).toFixed(1),
    `${(fs.statSync(path.join(LIB, 'mlship.js')).size / 1024).toFixed(0)} KiB`,
  ]);
  const sources = time([path.join(ROOT, 'bin', 'mlship.js'), '--help'], plain);
  rows.push(['mlship --help, from the sources (a clone)', median(sources).toFixed(1), p90(sources).toFixed(1), '']);
  console.log(`\nmlship --help is ${(median(cli) / median(base)).toFixed(2)}× node -e "" (target ≤ 3×).\n`);
  console.log(`Cold start, ${RUNS} runs each, ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}\n`);
  console.log('| what | median ms | p90 ms | bundle |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  const bundles = [
    ...fs.readdirSync(path.join(ROOT, 'actions')).map((d) => `actions/${d}/dist/index.js`),
    ...fs.readdirSync(path.join(ROOT, 'azure-tasks')).map((d) => `azure-tasks/${d}/dist/index.js`),
  ].filter((f) => fs.existsSync(path.join(ROOT, f)));
  if (bundles.length) {
    console.log('\n| committed bundle | size |');
    console.log('| --- | --- |');
    for (const b of bundles) console.log(`| ${b} | ${(fs.statSync(path.join(ROOT, b)).size / 1024).toFixed(0)} KiB |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
