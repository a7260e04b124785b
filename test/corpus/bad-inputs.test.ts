import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seededRandom } from '../../shared/core/random';
import { camelCase, kebabCase } from '../../shared/core/names';
import { main } from '../../shared/cli/main';
import { steps } from '../../shared/steps';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../support/runners';
import { type BadCase, generateCorpus } from './generate';

/**
 * The bad-input corpus (generate.ts) through the CLI: every case in-process through `main` (the CLI's own entry,
 * one process, so the corpus stays fast on a 2-core CI runner), a seeded sample again as child processes of
 * bin/mlship.js with a capped heap (the memory bound), and a smaller sample through the shipped GitHub and Azure
 * bundles. Per case: the documented exit code (2 bad usage, 1 failure), a message naming the file or input, no
 * stack trace, and none of the step's outputs under a final name. Cases are bounded by a generous per-case
 * timeout, never by an assertion on wall time.
 */

const SEED = 17;
const CASE_TIMEOUT_MS = 60_000;
/** A JavaScript stack frame, or Node's internal frames: what a user must never see. */
const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\)|\(<anonymous>\))$|node:internal/m;

let root: string;
let workspace: string;
let cases: BadCase[];
const started = Date.now();

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-corpus-'));
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-corpus-ws-'));
  cases = (await generateCorpus(root, SEED)).cases;
}, 120_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(workspace, { recursive: true, force: true });
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function runInProcess(c: BadCase): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(c.env ?? {})) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const cwd = process.cwd();
  process.chdir(workspace);
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${c.id}: still running after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
    });
    const code = await Promise.race([
      main(c.argv, { io: { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) } }),
      timeout,
    ]).finally(() => clearTimeout(timer));
    return { code, stdout, stderr };
  } finally {
    process.chdir(cwd);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function problems(c: BadCase, o: Outcome, expectedExit: number | 'failed' = c.exit): string[] {
  const text = `${o.stdout}\n${o.stderr}`;
  const out: string[] = [];
  if (o.code === 0) out.push('accepted silently (exit 0)');
  else if (expectedExit !== 'failed' && o.code !== expectedExit) out.push(`exit ${o.code}, expected ${expectedExit}`);
  if (STACK.test(text)) out.push(`stack trace: ${STACK.exec(text)![0].trim()}`);
  // Azure DevOps spells inputs in camelCase (instanceCount for --instance-count).
  if (!text.includes(c.names) && !text.includes(camelCase(c.names))) out.push(`message does not name "${c.names}"`);
  for (const p of c.absent ?? []) if (fs.existsSync(p)) out.push(`left ${p} behind`);
  return out.length ? [`${c.id}: ${out.join('; ')}\n    ${text.trim().split('\n').slice(-6).join('\n    ')}`] : [];
}

test('the corpus has at least 200 cases, over every step and input kind', () => {
  expect(cases.length).toBeGreaterThanOrEqual(200);
  const covered = new Set(cases.map((c) => c.step));
  for (const step of steps) expect(covered).toContain(step.name);
  const kinds = new Set(cases.map((c) => c.kind));
  for (const kind of [
    'json',
    'json-deep',
    'type',
    'range',
    'nan',
    'huge',
    'image',
    'xml',
    'yaml',
    'tar',
    'gzip',
    'bomb',
    'path',
    'enum',
    'key',
    'ci',
  ])
    expect(kinds).toContain(kind);
});

test('every corpus case through the CLI: a clear error, no stack trace, nothing left under a final name', async () => {
  const failures: string[] = [];
  const byStep = new Map<string, { cases: number; ms: number }>();
  const slowest: [string, number][] = [];
  for (const c of cases) {
    const t0 = Date.now();
    const outcome = await runInProcess(c).catch((error: Error) => ({
      code: -1,
      stdout: '',
      stderr: `crashed: ${error.stack ?? error.message}`,
    }));
    failures.push(...problems(c, outcome));
    const tally = byStep.get(c.step) ?? { cases: 0, ms: 0 };
    tally.cases++;
    tally.ms += Date.now() - t0;
    slowest.push([c.id, Date.now() - t0]);
    byStep.set(c.step, tally);
  }
  const table = [...byStep]
    .map(([step, t]) => `${step.padEnd(22)} ${String(t.cases).padStart(4)} cases ${(t.ms / 1000).toFixed(1).padStart(6)} s`)
    .join('\n');
  const slow = slowest
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([id, ms]) => `${id} ${(ms / 1000).toFixed(1)} s`)
    .join(', ');
  process.stdout.write(
    `bad-input corpus: ${cases.length} cases in-process, ${((Date.now() - started) / 1000).toFixed(1)} s since generation began\n${table}\nslowest: ${slow}\n`,
  );
  expect(failures).toEqual([]);
}, 900_000);

/** A seeded sample: `per` cases of each step. */
function sample(per: number, salt: number): BadCase[] {
  const random = seededRandom(SEED + salt);
  const out: BadCase[] = [];
  for (const step of new Set(cases.map((c) => c.step))) {
    const pool = cases.filter((c) => c.step === step && !c.env);
    for (let i = 0; i < per && pool.length; i++) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]);
  }
  return out;
}

test('a sample (one case per step) as child processes of bin/mlship.js, heap capped at 512 MB', async () => {
  const failures: string[] = [];
  for (const c of sample(1, 1)) {
    const result = await runCli(c.argv, { cwd: workspace, env: { NODE_OPTIONS: '--max-old-space-size=512' } });
    failures.push(...problems(c, { code: result.code ?? -1, stdout: result.stdout, stderr: result.stderr }));
  }
  expect(failures).toEqual([]);
}, 600_000);

/** CLI argv → the inputs of the bundles, by the step's own input names. */
function inputsOf(c: BadCase): { step: string; inputs: Record<string, string> } {
  const [stepName, ...rest] = c.argv;
  const step = steps.find((s) => s.name === stepName)!;
  const inputs: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('--')) {
      inputs[step.cliPositional!] = arg;
      continue;
    }
    const name = arg.slice(2);
    const negated = name.startsWith('no-') && !step.inputs[camelCase(name)];
    const key = negated ? camelCase(name.slice(3)) : camelCase(name);
    const spec = step.inputs[key];
    const value = spec?.type === 'boolean' && (rest[i + 1] === undefined || rest[i + 1].startsWith('--')) ? String(!negated) : rest[++i];
    inputs[key] = spec?.type === 'list' && inputs[key] !== undefined ? `${inputs[key]}\n${value}` : value;
  }
  return { step: stepName, inputs };
}

const kebab = kebabCase;

test('a sample through the shipped GitHub Action and Azure DevOps task bundles', async () => {
  const failures: string[] = [];
  for (const c of sample(1, 2).filter((x) => x.step !== 'eval')) {
    const { step, inputs } = inputsOf(c);
    const gh = await runGitHubAction(
      shippedBundle('github', step),
      Object.fromEntries(Object.entries(inputs).map(([k, v]) => [kebab(k), v])),
      { workspace },
    );
    failures.push(...problems({ ...c, id: `github ${c.id}` }, { code: gh.code ?? -1, stdout: gh.stdout, stderr: gh.stderr }, 'failed'));
    const az = await runAzureTask(shippedBundle('azure', step), inputs, { workspace });
    const azCode = az.result === 'Failed' ? 1 : (az.code ?? -1);
    failures.push(...problems({ ...c, id: `azure ${c.id}` }, { code: azCode, stdout: az.stdout, stderr: az.stderr }, 'failed'));
  }
  expect(failures).toEqual([]);
}, 600_000);
