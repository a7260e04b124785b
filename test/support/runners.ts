import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './paths';

export { ROOT };

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr lines together, as a runner's log shows them. */
  lines: string[];
}

export interface RunningProcess {
  child: ChildProcess;
  /** Resolves when the process has exited; `output()` reads what it printed so far. */
  done: Promise<ProcessResult>;
  output(): string;
}

export function startNode(script: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, stdin?: string): RunningProcess {
  const child = spawn(process.execPath, [script, ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<ProcessResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, lines: `${stdout}\n${stderr}`.split('\n').filter(Boolean) }));
  });
  child.stdin!.end(stdin ?? '');
  return { child, done, output: () => stdout + stderr };
}

export function runNode(script: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, stdin?: string): Promise<ProcessResult> {
  return startNode(script, args, env, cwd, stdin).done;
}

/** Waits until the process has printed `text` (or exited), polling its output. */
export async function waitForOutput(p: RunningProcess, text: string | RegExp, timeoutMs = 30000): Promise<void> {
  const started = Date.now();
  while (!(typeof text === 'string' ? p.output().includes(text) : text.test(p.output()))) {
    if (p.child.exitCode !== null) throw new Error(`process exited before printing ${text}:\n${p.output()}`);
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${text}:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A clean environment: no INPUT_* or runner variables leak in from the machine running the tests. */
export function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) if (process.env[key]) env[key] = process.env[key];
  return env;
}

export interface GitHubRun extends ProcessResult {
  outputs: Record<string, string>;
  summary: string;
  state: Record<string, string>;
  workspace: string;
}

/**
 * Runs an action bundle the way the GitHub runner does: `node dist/index.js` with INPUT_<NAME> (upper case,
 * spaces as underscores, hyphens kept) and the runner's files for outputs, summary and state.
 */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  workspace?: string;
  /** Cancel the way a runner does: send `signal` once the output shows `when`. */
  cancel?: { when: string | RegExp; signal?: NodeJS.Signals };
}

async function runWithCancel(script: string, env: NodeJS.ProcessEnv, cwd: string, cancel?: RunOptions['cancel']): Promise<ProcessResult> {
  const p = startNode(script, [], env, cwd);
  if (cancel) {
    await waitForOutput(p, cancel.when);
    p.child.kill(cancel.signal ?? 'SIGINT');
  }
  return p.done;
}

export async function runGitHubAction(
  bundle: string,
  inputs: Record<string, string>,
  options: RunOptions & { state?: Record<string, string> } = {},
): Promise<GitHubRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-runner-'));
  const workspace = options.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gh-ws-'));
  const files = {
    GITHUB_OUTPUT: path.join(dir, 'output'),
    GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
    GITHUB_STATE: path.join(dir, 'state'),
  };
  for (const f of Object.values(files)) fs.writeFileSync(f, '');
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    ...files,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: dir,
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_REPOSITORY: 'lab/cells',
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_ACTOR: 'octocat',
    GITHUB_WORKFLOW: 'release',
    GITHUB_JOB: 'ship',
    ...Object.fromEntries(Object.entries(options.state ?? {}).map(([k, v]) => [`STATE_${k}`, v])),
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.replace(/ /g, '_').toUpperCase()}`, v])),
    ...options.env,
  };
  const result = await runWithCancel(bundle, env, workspace, options.cancel);
  return {
    ...result,
    outputs: parseFileCommands(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    state: parseFileCommands(fs.readFileSync(files.GITHUB_STATE, 'utf8')),
    summary: fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
    workspace,
  };
}

/** Parses GITHUB_OUTPUT / GITHUB_STATE: `name<<DELIMITER\nvalue\nDELIMITER` records. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
      out[m[1]] = value.join('\n');
    } else if (lines[i].includes('=')) {
      const eq = lines[i].indexOf('=');
      out[lines[i].slice(0, eq)] = lines[i].slice(eq + 1);
    }
  }
  return out;
}

export interface VsoCommand {
  command: string;
  properties: Record<string, string>;
  message: string;
}

export interface AzureRun extends ProcessResult {
  commands: VsoCommand[];
  /** Output variables set with isOutput=true. */
  outputs: Record<string, string>;
  /** `Succeeded` / `Failed` from ##vso[task.complete], or undefined when the task never set a result. */
  result?: string;
  issues: VsoCommand[];
  summaries: string[];
}

/** Runs a task bundle the way the agent does: INPUT_<NAME> upper-cased, then reads the logging commands. */
export async function runAzureTask(bundle: string, inputs: Record<string, string>, options: RunOptions = {}): Promise<AzureRun> {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'azp-agent-'));
  const workspace = options.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'azp-ws-'));
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    AGENT_TEMPDIRECTORY: temp,
    SYSTEM_DEFAULTWORKINGDIRECTORY: workspace,
    BUILD_BUILDID: '777',
    SYSTEM_JOBATTEMPT: '1',
    BUILD_REPOSITORY_NAME: 'lab/cells',
    BUILD_SOURCEVERSION: '0123456789abcdef0123456789abcdef01234567',
    BUILD_REQUESTEDFOREMAIL: 'ada@lab.example',
    SYSTEM_COLLECTIONURI: 'https://dev.azure.com/lab/',
    SYSTEM_TEAMPROJECT: 'cells',
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.replace(/\./g, '_').toUpperCase()}`, v])),
    ...options.env,
  };
  const result = await runWithCancel(bundle, env, workspace, options.cancel);
  const commands = result.stdout.split('\n').flatMap((line) => {
    const m = /^##vso\[([\w.]+)([^\]]*)\](.*)$/.exec(line);
    if (!m) return [];
    const properties = Object.fromEntries(
      m[2]
        .trim()
        .split(';')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    return [{ command: m[1], properties, message: unescapeVso(m[3]) }];
  });
  const outputs: Record<string, string> = {};
  for (const c of commands)
    if (c.command === 'task.setvariable' && c.properties.isOutput === 'true') outputs[c.properties.variable] = c.message;
  return {
    ...result,
    commands,
    outputs,
    result: commands.find((c) => c.command === 'task.complete')?.properties.result,
    issues: commands.filter((c) => c.command === 'task.logissue'),
    summaries: commands.filter((c) => c.command === 'task.uploadsummary').map((c) => fs.readFileSync(c.message, 'utf8')),
  };
}

function unescapeVso(text: string): string {
  return text
    .replace(/%0D/g, '\r')
    .replace(/%0A/g, '\n')
    .replace(/%5D/g, ']')
    .replace(/%3B/g, ';')
    .replace(/%AZP25/g, '%');
}

/** Runs `mlship …` through bin/mlship.js, or another CLI entry (the test-step CLI). */
export function runCli(args: string[], options: { entry?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ProcessResult> {
  return runNode(options.entry ?? path.join(ROOT, 'bin/mlship.js'), args, { ...baseEnv(), ...options.env }, options.cwd ?? ROOT);
}

/** The committed bundle of a shipped step, as a runner would execute it from a checkout of the repository. */
export function shippedBundle(platform: 'github' | 'azure', step: string): string {
  if (platform === 'github') return path.join(ROOT, 'actions', step, 'dist/index.js');
  const folder = fs.readdirSync(path.join(ROOT, 'azure-tasks')).find((d) => d.toLowerCase() === `${step.replace(/-/g, '')}v1`);
  if (!folder) throw new Error(`no Azure task folder for ${step}`);
  return path.join(ROOT, 'azure-tasks', folder, 'dist/index.js');
}
