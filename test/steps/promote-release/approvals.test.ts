import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseChannel } from '../../../shared/ota/channel';
import { loadPublicKey } from '../../../shared/package';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { stageOtaStep } from '../../../shared/steps/stage-ota';
import { FakeCiApi } from '../../ota/support/fake-ci-api';
import { KEYS, makePackage } from '../../ota/support/packages';
import { runInMemory } from '../../ota/support/run-step';
import { StoreBackends } from '../../ota/support/stores';

const backends = new StoreBackends();
const api = new FakeCiApi();
const publicKey = loadPublicKey(KEYS.publicKeyPem);
let pkg: string;
let n = 0;

beforeAll(async () => {
  await api.start();
  pkg = await makePackage(backends.folder, '7.0.0');
});
afterAll(async () => {
  await api.stop();
  await backends.stop();
});

/** A fresh store with 7.0.0 on staging. */
async function staged(): Promise<Record<string, string>> {
  const inputs = { ...backends.inputs('local', `approvals-${n++}`), signingKey: KEYS.privateKeyPem };
  expect((await runInMemory(stageOtaStep, { ...inputs, package: pkg })).failure).toBeUndefined();
  return inputs;
}

function production(inputs: Record<string, string>) {
  const file = path.join(inputs.storeUri, 'channels', 'production.json');
  return fs.existsSync(file) ? parseChannel(fs.readFileSync(file), publicKey, 'production') : undefined;
}

const github = (extra: Record<string, string | number | boolean> = {}) => ({
  approvalSource: 'github',
  githubToken: api.token,
  githubApiUrl: api.url,
  ...extra,
});
const ghRun = { id: '4242', repository: 'lab/cells', actor: 'ada', url: 'https://github.com/lab/cells/actions/runs/4242' };

describe('GitHub environment approvals', () => {
  beforeAll(() => {
    api.github.set('4242', [
      { login: 'grace', state: 'approved', comment: 'Dice 0.86 on the lab B panel, ship it', environment: 'production' },
      { login: 'linus', state: 'approved', comment: '', environment: 'production' },
      { login: 'bob', state: 'rejected', comment: 'not yet', environment: 'production' },
      { login: 'eve', state: 'approved', comment: '', environment: 'staging' },
    ]);
  });

  test('records who approved into the channel and the release record, and enforces min-approvals', async () => {
    const inputs = await staged();
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, ...github({ environment: 'production', requireApproval: true, minApprovals: 2 }) },
      { run: ghRun },
    );
    expect(host.failure).toBeUndefined();
    const approvers = JSON.parse(host.outputs.approvers);
    expect(approvers.map((a: { login: string }) => a.login)).toEqual(['grace', 'linus']);
    expect(approvers[0]).toMatchObject({ login: 'grace', comment: 'Dice 0.86 on the lab B panel, ship it' });
    const doc = production(inputs)!;
    expect(doc.approvals).toEqual({ source: 'github-environment', runUrl: ghRun.url, approvers });
    const record = JSON.parse(fs.readFileSync(path.join(inputs.storeUri, 'releases', 'production', '0000000001.json'), 'utf8'));
    expect(record.document.approvals.approvers).toEqual(approvers);
    const request = api.requests.at(-1)!;
    expect(request).toMatchObject({ method: 'GET', url: '/repos/lab/cells/actions/runs/4242/approvals' });
    expect(request.headers).toMatchObject({
      authorization: `Bearer ${api.token}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
    });
    expect(host.summary).toContain('| grace |');
    expect(host.text + host.summary).not.toContain(api.token);
  });

  test('no-self-approval: the run actor approving does not count', async () => {
    const inputs = await staged();
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, ...github({ environment: 'production', requireApproval: true, minApprovals: 2, noSelfApproval: true }) },
      { run: { ...ghRun, actor: 'grace' } },
    );
    expect(host.failure).toContain(
      'Promotion needs 2 distinct approval(s) from someone other than grace, but found 1 (source: github-environment; approvers: grace, linus; 1 self-approval not counted).',
    );
    expect(host.failure).toContain('Run this job in a GitHub environment with required reviewers');
    expect(production(inputs)).toBeUndefined();
  });

  test('a run without approvals is refused when approval is required', async () => {
    api.github.set('5000', []);
    const inputs = await staged();
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, ...github({ requireApproval: true }) },
      { run: { ...ghRun, id: '5000' } },
    );
    expect(host.failure).toContain('Promotion needs 1 distinct approval(s), but found 0 (source: github-environment).');
    expect(production(inputs)).toBeUndefined();
  });

  test('a token the API refuses fails with the answer and what to fix', async () => {
    const inputs = await staged();
    const host = await runInMemory(promoteReleaseStep, { ...inputs, ...github({ githubToken: 'ghs_wrong' }) }, { run: ghRun });
    expect(host.failure).toContain(`GitHub answered 401 to GET ${api.url}/repos/lab/cells/actions/runs/4242/approvals: Bad credentials.`);
    expect(host.failure).toContain('permissions: actions: read');
    expect(host.text + host.failure).not.toContain('ghs_wrong');
  });

  test('without a token and without require-approval the promotion goes ahead, unrecorded, with a warning', async () => {
    const inputs = await staged();
    const host = await runInMemory(promoteReleaseStep, { ...inputs, approvalSource: 'github' }, { run: ghRun });
    expect(host.failure).toBeUndefined();
    expect(host.logs.filter((l) => l.level === 'warning').map((l) => l.message)).toEqual([
      'No GitHub token given: approval evidence is not recorded.',
    ]);
    expect(production(inputs)!.approvals).toBeNull();
  });
});

describe('Azure DevOps approvals', () => {
  test('reads the approvers of this build from the Approvals API', async () => {
    api.azure.set('777', [
      {
        uniqueName: 'ada@lab.example',
        displayName: 'Ada L',
        status: 'approved',
        comment: 'QA passed',
        lastModifiedOn: '2025-11-19T08:19:02.113Z',
      },
    ]);
    api.azure.set('778', [
      { uniqueName: 'mallory@lab.example', displayName: 'M', status: 'approved', comment: '', lastModifiedOn: '2025-11-19T09:00:00Z' },
    ]);
    const inputs = await staged();
    const env = { SYSTEM_ACCESSTOKEN: api.token, SYSTEM_COLLECTIONURI: `${api.url}/lab/`, SYSTEM_TEAMPROJECT: 'cells' };
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, approvalSource: 'azure-devops', requireApproval: true, noSelfApproval: true },
      { env, run: { id: '777', actor: 'grace@lab.example', url: 'https://dev.azure.com/lab/cells/_build/results?buildId=777' } },
    );
    expect(host.failure).toBeUndefined();
    expect(production(inputs)!.approvals).toEqual({
      source: 'azure-devops',
      runUrl: 'https://dev.azure.com/lab/cells/_build/results?buildId=777',
      approvers: [{ login: 'ada@lab.example', at: '2025-11-19T08:19:02.113Z', comment: 'QA passed' }],
    });
    expect(api.requests.at(-1)!.url).toBe('/lab/cells/_apis/pipelines/approvals?$expand=steps&state=approved&top=500&api-version=7.1');
  });
});

describe('approvals on the command line', () => {
  test('approved-by names the approvers (login:comment) and counts toward min-approvals', async () => {
    const inputs = await staged();
    const host = await runInMemory(
      promoteReleaseStep,
      { ...inputs, approvedBy: 'grace:looked at the overlays\nlinus', requireApproval: true, minApprovals: 2 },
      { run: { id: 'local-1', actor: 'ada' } },
    );
    expect(host.failure).toBeUndefined();
    const doc = production(inputs)!;
    expect(doc.approvals).toMatchObject({
      source: 'cli',
      approvers: [{ login: 'grace', comment: 'looked at the overlays' }, { login: 'linus' }],
    });
    expect(doc.origin).toMatchObject({ event: 'promote', actor: 'ada', runId: 'local-1' });
  });
});
