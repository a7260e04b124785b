import { deviceAgentCommand } from '../../shared/agent/command';
import { evalCommand } from '../../shared/cli/eval-command';
import { main } from '../../shared/cli/main';
import { demoCommand } from '../../shared/demo/command';
import { stageOtaStep } from '../../shared/steps/stage-ota';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) } };
}

// One option parser (node:util parseArgs, options declared as data) behind every non-step command.
describe.each([
  ['mlship demo', (argv: string[], io: ReturnType<typeof capture>['io']) => demoCommand.run(argv, io), '--dirr', '--dir'],
  [
    'mlship device-agent',
    (argv: string[], io: ReturnType<typeof capture>['io']) => deviceAgentCommand.run(argv, io),
    '--chanel-url',
    '--channel-url',
  ],
  [
    'mlship eval coco',
    (argv: string[], io: ReturnType<typeof capture>['io']) => evalCommand.run(['coco', ...argv], io),
    '--predictons',
    '--predictions',
  ],
])('%s', (command, run, typo, meant) => {
  it('prints help generated from its options on --help and -h, exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const c = capture();
      expect(await run([flag], c.io)).toBe(0);
      expect(c.out.join('')).toMatch(new RegExp(`^Usage: ${command} `));
      expect(c.out.join('')).toContain(`  ${meant} `);
      expect(c.out.join('')).toContain('  --help, -h');
    }
  });

  it('refuses an unknown option with a suggestion, exit 2', async () => {
    const c = capture();
    expect(await run([typo, 'x'], c.io)).toBe(2);
    expect(c.err.join('')).toBe(`error: Unknown option "${typo}" for "${command}".\n  → Did you mean ${meant}? Run "${command} --help".\n`);
    expect(c.out).toEqual([]);
  });
});

test('steps word unknown options the same way', async () => {
  const c = capture();
  expect(await main(['stage-ota', '--pakage', 'x'], { steps: [stageOtaStep], commands: [], io: c.io })).toBe(2);
  expect(c.err.join('')).toBe(
    'error: Unknown option "--pakage" for "mlship stage-ota".\n  → Did you mean --package? Run "mlship stage-ota --help".\n',
  );
});

test('a missing required option and a missing value are usage errors (exit 2)', async () => {
  const c = capture();
  expect(await evalCommand.run(['coco', '--predictions', 'dt.json'], c.io)).toBe(2);
  expect(c.err.join('')).toContain('error: "mlship eval coco" needs --ground-truth.');
  expect(await deviceAgentCommand.run(['--channel-url'], c.io)).toBe(2);
  expect(c.err.join('')).toContain('Option "--channel-url" needs a value.');
});
