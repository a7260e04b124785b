import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runAzureTask, runCli, runGitHubAction, ROOT } from '../support/runners';
import { testBundle } from '../support/test-bundles';

const SECRET = 'tok-7f3a9c1e55d0';
const echoCli = path.join(ROOT, 'test/support/echo-cli.js');

/** Lines that register the secret with the runner are the only ones allowed to carry it. */
function leaks(lines: string[]): string[] {
  return lines.filter((l) => l.includes(SECRET) && !l.startsWith('::add-mask::') && !l.startsWith('##vso[task.setsecret]'));
}

describe('GitHub Action bundle', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = await testBundle('github', 'echo-test', 'test/fixtures/echo-step', 'echoStep');
  });

  it('writes outputs and the summary, masks the secret, exits 0', async () => {
    const run = await runGitHubAction(bundle, { message: 'cells', repeat: '2', 'api-token': SECRET, tags: 'a\nb\nc' });
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ echoed: 'cells cells', 'tag-count': '3' });
    expect(JSON.parse(run.outputs.report)).toEqual({
      text: 'cells',
      tags: ['a', 'b', 'c'],
      run: '4242',
      platform: 'github',
      hasToken: true,
    });
    expect(run.lines).toContain(`::add-mask::${SECRET}`);
    expect(run.lines).toContain('token is ***');
    expect(leaks(run.lines)).toEqual([]);
    expect(run.lines).toContain('::warning file=data/gt.json,line=7::a warning with an annotation');
    expect(run.summary).toContain('| message | cells |');
  });

  it('fails before running when a required input is missing, naming the input', async () => {
    const run = await runGitHubAction(bundle, {});
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('::error::Input "message" is required but was not given.');
    expect(run.outputs).toEqual({});
  });

  it('rejects an enum value that is not allowed, listing the allowed ones', async () => {
    const run = await runGitHubAction(bundle, { message: 'x', mode: 'Pass' });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('Input "mode" has value "Pass", which is not one of the allowed values: pass, fail, crash.');
    expect(run.stdout).toContain('Did you mean "pass"?');
  });

  it('reports an expected failure without a stack trace, annotated, with the summary still written', async () => {
    const run = await runGitHubAction(bundle, { message: 'x', mode: 'fail', 'api-token': SECRET });
    expect(run.code).toBe(1);
    expect(run.lines).toContain('::error file=echo.txt,line=3::Echo failed on purpose for "x".');
    expect(run.stdout).toMatch(/::error::Echo failed on purpose for "x".%0A {2}→ Set mode to pass./);
    expect(run.stdout).not.toMatch(/at .*echo-step/);
    expect(run.summary).toContain('## Echo');
    expect(run.outputs).toEqual({ echoed: 'partial' });
    expect(leaks(run.lines)).toEqual([]);
  });

  it('prints the stack of an unexpected error', async () => {
    const run = await runGitHubAction(bundle, { message: 'x', mode: 'crash' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error::TypeError: unexpected crash%0A\s+at /);
  });

  it('resolves path inputs against the workspace', async () => {
    const run = await runGitHubAction(bundle, { message: 'x', 'report-file': 'report.json' });
    expect(run.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(run.workspace, 'report.json'), 'utf8')).text).toBe('x');
  });
});

describe('Azure DevOps task bundle', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = await testBundle('azure', 'echo-test', 'test/fixtures/echo-step', 'echoStep');
  });

  it('sets output variables, uploads the summary, masks the secret, succeeds', async () => {
    const run = await runAzureTask(bundle, { message: 'cells', repeat: '2', apiToken: SECRET, tags: 'a\nb' });
    expect(run.result).not.toBe('Failed');
    expect(run.outputs).toMatchObject({ echoed: 'cells cells', tagCount: '2' });
    expect(JSON.parse(run.outputs.report).run).toBe('777');
    expect(run.lines).toContain(`##vso[task.setsecret]${SECRET}`);
    expect(run.lines).toContain('token is ***');
    expect(leaks(run.lines)).toEqual([]);
    expect(run.issues).toEqual([
      {
        command: 'task.logissue',
        properties: { type: 'warning', sourcepath: 'data/gt.json', linenumber: '7' },
        message: 'a warning with an annotation',
      },
    ]);
    expect(run.summaries.join('')).toContain('| message | cells |');
  });

  it('fails on a missing required input, naming it in camelCase as task.json does', async () => {
    const run = await runAzureTask(bundle, {});
    expect(run.result).toBe('Failed');
    expect(run.commands.find((c) => c.command === 'task.complete')?.message).toContain('Input "message" is required but was not given.');
  });

  it('rejects a number out of range', async () => {
    const run = await runAzureTask(bundle, { message: 'x', repeat: '9' });
    expect(run.result).toBe('Failed');
    expect(run.stdout).toContain('Input "repeat" has value "9", which is out of range.');
    expect(run.stdout).toContain('Use a whole number from 1 to 5.');
  });

  it('fails an expected failure with an issue pointing at the file', async () => {
    const run = await runAzureTask(bundle, { message: 'x', mode: 'fail', apiToken: SECRET });
    expect(run.result).toBe('Failed');
    expect(
      run.issues.some((i) => i.properties.type === 'error' && i.properties.sourcepath === 'echo.txt' && i.properties.linenumber === '3'),
    ).toBe(true);
    expect(leaks(run.lines)).toEqual([]);
  });
});

describe('CLI', () => {
  it('prints outputs as one JSON object with --json and exits 0', async () => {
    const run = await runCli(
      ['echo-test', '--message', 'cells', '--repeat=2', '--shout', '--tags', 'a', '--tags', 'b', '--api-token', SECRET, '--json'],
      { entry: echoCli },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      echoed: 'CELLS CELLS',
      'tag-count': 2,
      report: { text: 'CELLS', tags: ['a', 'b'], run: expect.stringMatching(/^local-/), platform: 'local', hasToken: true },
    });
    expect(run.stderr).toContain('token is ***');
    expect(leaks(run.lines)).toEqual([]);
  });

  it('exits 2 on bad usage, suggesting the option meant', async () => {
    const run = await runCli(['echo-test', '--mesage', 'x'], { entry: echoCli });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Unknown option "--mesage" for "mlship echo-test".');
    expect(run.stderr).toContain('Did you mean --message?');
  });

  it('exits 2 when a required input is missing', async () => {
    const run = await runCli(['echo-test'], { entry: echoCli });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Input "--message" is required but was not given.');
  });

  it('exits 1 when the step fails and writes the summary file', async () => {
    const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-')), 'summary.md');
    const run = await runCli(['echo-test', '--message', 'x', '--mode', 'fail', '--summary', summary], { entry: echoCli });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('error: Echo failed on purpose for "x".');
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readFileSync(summary, 'utf8')).toContain('## Echo');
  });

  it('generates help from the definition', async () => {
    const run = await runCli(['echo-test', '--help'], { entry: echoCli });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--mode <pass|fail|crash> (default: pass)');
    expect(run.stdout).toContain('--message <string> (required)');
    const top = await runCli(['--help'], { entry: echoCli });
    expect(top.stdout).toContain('echo-test');
  });

  it('exits 2 on an unknown step', async () => {
    const run = await runCli(['no-such-step']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown step or command "no-such-step"');
  });
});
