import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { compareVersions } from '../../shared/package/contents';
import { promoteReleaseStep } from '../../shared/steps/promote-release';
import { stageOtaStep } from '../../shared/steps/stage-ota';
import { KEYS, makePackage } from './support/packages';
import { runInMemory } from './support/run-step';
import { StoreBackends } from './support/stores';

/**
 * Approval guards that must hold whatever host runs the step: the CLI inside a pipeline is a pipeline run (CI is
 * told by GITHUB_ACTIONS / TF_BUILD, not the host type), no-self-approval never silently lapses, and tokens read
 * from the environment are masked like secret inputs.
 */
const backends = new StoreBackends();
let pkg: string;
let n = 0;

beforeAll(async () => {
  pkg = await makePackage(backends.folder, '7.1.0');
});
afterAll(() => backends.stop());

async function staged(): Promise<Record<string, string>> {
  const inputs = { ...backends.inputs('local', `guards-${n++}`), signingKey: KEYS.privateKeyPem };
  expect((await runInMemory(stageOtaStep, { ...inputs, package: pkg })).failure).toBeUndefined();
  return { ...inputs, from: 'staging', to: 'production' };
}

test.each([
  ['GitHub Actions', { GITHUB_ACTIONS: 'true' }, 'GITHUB_ACTIONS=true'],
  ['Azure Pipelines', { TF_BUILD: 'True' }, 'TF_BUILD=True'],
])('approved-by is refused when the step runs inside %s, whatever the host', async (_ci, env, shown) => {
  const inputs = await staged();
  const host = await runInMemory(
    promoteReleaseStep,
    { ...inputs, approvalSource: 'cli', approvedBy: 'alice' },
    { env, run: { actor: 'bob' } },
  );
  expect(host.failure).toContain('Input "approved-by" (approval source cli) is for runs on a workstation');
  expect(host.failure).toContain(shown);
});

test('approval-source auto inside GitHub Actions reads the platform, not approved-by', async () => {
  const inputs = await staged();
  const host = await runInMemory(
    promoteReleaseStep,
    { ...inputs, approvedBy: 'alice', requireApproval: true },
    { env: { GITHUB_ACTIONS: 'true' }, run: { actor: 'bob' } },
  );
  expect(host.failure).toContain('Approvals are required, but no "github-token" was given to read them.');
});

test('no-self-approval with an unknown actor is refused, not skipped', async () => {
  const inputs = await staged();
  const host = await runInMemory(
    promoteReleaseStep,
    { ...inputs, approvedBy: 'alice', requireApproval: true, noSelfApproval: true },
    { run: { actor: undefined } },
  );
  expect(host.failure).toContain('no-self-approval is set, but who started this run is unknown');
  const known = await runInMemory(
    promoteReleaseStep,
    { ...inputs, approvedBy: 'alice', requireApproval: true, noSelfApproval: true },
    { run: { actor: 'bob' } },
  );
  expect(known.failure).toBeUndefined();
});

test('a token read from GITHUB_TOKEN is masked when an API error echoes it', async () => {
  const token = 'ghs_from_the_environment_0123';
  // A real HTTP server that answers like a misbehaving proxy: the request's credentials in its error message.
  const server = http.createServer((req, res) => {
    res
      .writeHead(502, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ message: `upstream refused ${req.headers.authorization}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const inputs = await staged();
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, approvalSource: 'github', githubApiUrl: url },
      { env: { GITHUB_TOKEN: token }, run: { id: '1', repository: 'lab/cells', actor: 'bob' } },
    );
    expect(host.failure).toContain('GitHub answered 502');
    expect(host.failure).toContain('upstream refused Bearer ***');
    expect(host.failure).not.toContain(token);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('rollback of a channel whose changes all kept one release says so, not "only one release was ever published"', async () => {
  const inputs = await staged();
  for (const rolloutPercent of [10, 50])
    expect((await runInMemory(promoteReleaseStep, { ...inputs, rolloutPercent }, { run: { actor: 'bob' } })).failure).toBeUndefined();
  const host = await runInMemory(promoteReleaseStep, { ...inputs, mode: 'rollback' }, { run: { actor: 'bob' } });
  expect(host.failure).toContain('Channel "production" (sequence 2, cellseg 7.1.0) has no previous version to roll back to.');
  expect(host.failure).toContain('Every change since the channel started (or since its last rollback) kept cellseg 7.1.0');
});

test('a damaged channel document points at the release records, not at stage-ota (which refuses it)', async () => {
  const inputs = await staged();
  require('node:fs').writeFileSync(
    require('node:path').join(inputs.storeUri, 'channels', 'staging.json'),
    '{"schema": "mlship.channel/v1", "seq',
  );
  const host = await runInMemory(stageOtaStep, { ...inputs, package: pkg, rolloutPercent: 20 });
  expect(host.failure).toContain('staging.json is not valid JSON');
  expect(host.failure).toContain('restore the signed document from the newest release record');
});

test('staging a lower version over a higher one is allowed but warned about', async () => {
  const inputs = await staged();
  const lower = await makePackage(backends.folder, '7.0.9');
  const host = await runInMemory(stageOtaStep, { ...inputs, package: lower });
  expect(host.failure).toBeUndefined();
  expect(host.text).toContain('Staged cellseg 7.0.9 over the higher version 7.1.0 on "staging": devices that follow it will downgrade.');
  const higher = await makePackage(backends.folder, '7.2.0-rc.1');
  expect((await runInMemory(stageOtaStep, { ...inputs, package: higher })).text).not.toContain('downgrade');
});

test('semantic-version precedence', () => {
  const ordered = [
    '1.0.0-alpha',
    '1.0.0-alpha.1',
    '1.0.0-alpha.beta',
    '1.0.0-beta',
    '1.0.0-beta.2',
    '1.0.0-beta.11',
    '1.0.0-rc.1',
    '1.0.0',
    '1.0.1',
    '1.2.0',
    '1.10.0',
    '2.0.0',
  ];
  for (let i = 1; i < ordered.length; i++) {
    expect(compareVersions(ordered[i - 1], ordered[i])).toBeLessThan(0);
    expect(compareVersions(ordered[i], ordered[i - 1])).toBeGreaterThan(0);
  }
  expect(compareVersions('1.0.0+build.5', '1.0.0')).toBe(0);
});
