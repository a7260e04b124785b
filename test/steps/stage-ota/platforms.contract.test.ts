import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceAgentCommand } from '../../../shared/agent';
import { main } from '../../../shared/cli/main';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { rollbackCommand } from '../../../shared/steps/promote-release/rollback-command';
import { stageOtaStep } from '../../../shared/steps/stage-ota';
import { runAzureTask, runGitHubAction, shippedBundle } from '../../support/runners';
import { FakeCiApi } from '../../ota/support/fake-ci-api';
import { KEYS, makePackage } from '../../ota/support/packages';
import { StoreBackends } from '../../ota/support/stores';

const backends = new StoreBackends();
const api = new FakeCiApi();
const keyLines = KEYS.privateKeyPem.split('\n').filter((l) => l && !l.startsWith('-----'));
let pkg: string;

beforeAll(async () => {
  await api.start();
  pkg = await makePackage(backends.folder, '8.1.0');
});
afterAll(async () => {
  await api.stop();
  await backends.stop();
});

/** No log line carries the key, except the lines that register it as a secret with the runner. */
function leaks(lines: string[]): string[] {
  return lines.filter(
    (l) => keyLines.some((k) => l.includes(k)) && !l.startsWith('::add-mask::') && !l.startsWith('##vso[task.setsecret]'),
  );
}

test('GitHub Actions: stage, then promote with environment approvals read from the run', async () => {
  api.github.set('4242', [
    { login: 'grace', state: 'approved', comment: 'ok for lab B', environment: 'production' },
    { login: 'octocat', state: 'approved', comment: '', environment: 'production' },
  ]);
  const storeUri = path.join(backends.folder, 'gh-store');
  const stage = await runGitHubAction(shippedBundle('github', 'stage-ota'), {
    package: pkg,
    'store-uri': storeUri,
    'signing-key': KEYS.privateKeyPem,
  });
  expect(stage.code).toBe(0);
  expect(stage.outputs).toMatchObject({
    channel: 'staging',
    sequence: '1',
    version: '8.1.0',
    'bytes-uploaded': String(fs.statSync(pkg).size),
  });
  expect(stage.summary).toContain('## Staged cellseg 8.1.0 on staging');
  expect(leaks(stage.lines)).toEqual([]);

  const inputs = {
    'store-uri': storeUri,
    'signing-key': KEYS.privateKeyPem,
    'require-approval': 'true',
    'min-approvals': '1',
    'no-self-approval': 'true',
    'github-token': api.token,
    phases: '10,100',
  };
  const promote = await runGitHubAction(shippedBundle('github', 'promote-release'), inputs, { env: { GITHUB_API_URL: api.url } });
  expect(promote.code).toBe(0);
  expect(promote.outputs).toMatchObject({ channel: 'production', version: '8.1.0', sequence: '1', 'rollout-percent': '10', phase: '1' });
  // GITHUB_ACTOR is octocat: its own approval is recorded but does not count.
  expect(JSON.parse(promote.outputs.approvers).map((a: { login: string }) => a.login)).toEqual(['grace', 'octocat']);
  expect(api.requests.at(-1)!.url).toBe('/repos/lab/cells/actions/runs/4242/approvals');
  expect(promote.lines).toContain(`::add-mask::${api.token}`);
  expect(leaks(promote.lines)).toEqual([]);

  const refused = await runGitHubAction(
    shippedBundle('github', 'promote-release'),
    { ...inputs, 'min-approvals': '2' },
    { env: { GITHUB_API_URL: api.url } },
  );
  expect(refused.code).toBe(1);
  expect(refused.stdout).toContain('::error::Promotion needs 2 distinct approval(s) from someone other than octocat, but found 1');
});

test('Azure DevOps: promote with approvals of this build, outputs as output variables', async () => {
  api.azure.set('777', [
    { uniqueName: 'grace@lab.example', displayName: 'Grace', status: 'approved', comment: 'go', lastModifiedOn: '2025-11-19T08:19:02Z' },
    { uniqueName: 'ada@lab.example', displayName: 'Ada', status: 'approved', comment: '', lastModifiedOn: '2025-11-19T08:20:00Z' },
  ]);
  const storeUri = path.join(backends.folder, 'az-store');
  const stage = await runAzureTask(shippedBundle('azure', 'stage-ota'), { package: pkg, storeUri, signingKey: KEYS.privateKeyPem });
  expect(stage.code).toBe(0);
  expect(stage.result).not.toBe('Failed');
  const env = { SYSTEM_ACCESSTOKEN: api.token, SYSTEM_COLLECTIONURI: `${api.url}/lab/` };
  const promote = await runAzureTask(
    shippedBundle('azure', 'promote-release'),
    { storeUri, signingKey: KEYS.privateKeyPem, requireApproval: 'true', minApprovals: '1', noSelfApproval: 'true' },
    { env },
  );
  expect(promote.code).toBe(0);
  expect(promote.result).not.toBe('Failed');
  expect(promote.outputs).toMatchObject({ channel: 'production', version: '8.1.0', sequence: '1', rolloutPercent: '100' });
  expect(JSON.parse(promote.outputs.approvers)).toEqual([
    { login: 'grace@lab.example', at: '2025-11-19T08:19:02Z', comment: 'go' },
    { login: 'ada@lab.example', at: '2025-11-19T08:20:00Z' },
  ]);
  expect(leaks(stage.lines.concat(promote.lines))).toEqual([]);

  const refused = await runAzureTask(
    shippedBundle('azure', 'promote-release'),
    { storeUri, signingKey: KEYS.privateKeyPem, requireApproval: 'true', minApprovals: '2', noSelfApproval: 'true' },
    { env },
  );
  expect(refused.result).toBe('Failed');
  expect(refused.stdout).toContain('Promotion needs 2 distinct approval(s) from someone other than ada@lab.example, but found 1');
});

test('CLI: stage-ota, promote-release, rollback and device-agent', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
  const cli = (args: string[]) =>
    main(args, { steps: [stageOtaStep, promoteReleaseStep], commands: [rollbackCommand, deviceAgentCommand], io });
  const keyFile = path.join(backends.folder, 'signing.pem');
  fs.writeFileSync(keyFile, KEYS.privateKeyPem);
  const storeUri = path.join(backends.folder, 'cli-store');
  const v2 = await makePackage(backends.folder, '8.2.0');

  expect(await cli(['stage-ota', '--package', pkg, '--store-uri', storeUri, '--signing-key', keyFile])).toBe(0);
  expect(out.join('')).toContain('sequence=1\n');
  expect(await cli(['promote-release', '--store-uri', storeUri, '--signing-key', keyFile, '--approved-by', 'grace'])).toBe(0);
  expect(await cli(['stage-ota', '--package', v2, '--store-uri', storeUri, '--signing-key', keyFile])).toBe(0);
  expect(await cli(['promote-release', '--store-uri', storeUri, '--signing-key', keyFile, '--version', '8.2.0'])).toBe(0);
  out.length = 0;
  expect(
    await cli([
      'rollback',
      '--channel',
      'production',
      '--store-uri',
      storeUri,
      '--signing-key',
      keyFile,
      '--reason',
      'halo artefacts',
      '--json',
    ]),
  ).toBe(0);
  expect(JSON.parse(out.join(''))).toMatchObject({ channel: 'production', version: '8.1.0', sequence: 3, 'previous-version': '' });
  expect(await cli(['rollback', '--chanel', 'production'])).toBe(2);
  expect(err.join('')).toContain('Unknown option "--chanel"');

  out.length = 0;
  const channelUrl = `file://${storeUri}/channels/production.json`;
  const keyPub = path.join(backends.folder, 'signing.pub.pem');
  fs.writeFileSync(keyPub, KEYS.publicKeyPem);
  expect(
    await cli([
      'device-agent',
      '--channel-url',
      channelUrl,
      '--device-id',
      'scope-1',
      '--public-key',
      keyPub,
      '--root',
      path.join(backends.folder, 'cli-device'),
      '--once',
    ]),
  ).toBe(0);
  expect(JSON.parse(out.join(''))).toMatchObject({ status: 'installed', slots: { a: { version: '8.1.0' } } });
});
