import * as fs from 'node:fs';
import { runGitHubAction, shippedBundle } from '../support/runners';
import { AwsFake } from '../fakes/aws-fake';
import { FakeCiApi } from '../ota/support/fake-ci-api';
import { KEYS, makePackage } from '../ota/support/packages';
import { BUCKET, StoreBackends } from '../ota/support/stores';

/**
 * stage-ota and promote-release reach S3 the way submit-training reaches SageMaker: on GitHub, `role-to-assume`
 * exchanges the runner's OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL, served by FakeCiApi) for short-lived
 * credentials at STS (the AWS fake, which issues them and records the token), and every S3 request is signed
 * with those. The shipped action bundles run as the GitHub runner runs them; no AWS keys are in the environment.
 */
const backends = new StoreBackends();
const api = new FakeCiApi();
const aws = new AwsFake();
const ROLE = 'arn:aws:iam::123456789012:role/OtaPublisher';
let pkg: string;

beforeAll(async () => {
  await Promise.all([api.start(), aws.start(), backends.start(['s3'])]);
  pkg = await makePackage(backends.folder, '9.1.0');
});
afterAll(async () => {
  await Promise.all([api.stop(), aws.close()]);
  await backends.stop();
});

test('GitHub Actions: stage-ota and promote-release with role-to-assume use the OIDC token and the assumed role on S3', async () => {
  const store = {
    store: 's3',
    'store-uri': `s3://${BUCKET}/oidc`,
    endpoint: backends.s3.endpoint,
    'store-region': 'eu-central-1',
    'role-to-assume': ROLE,
    region: 'eu-west-1',
    'signing-key': KEYS.privateKeyPem,
  };
  const env = { ...api.idTokenEnv, AWS_ENDPOINT_URL_STS: aws.url };

  const stage = await runGitHubAction(shippedBundle('github', 'stage-ota'), { ...store, package: pkg }, { env });
  expect(stage.stdout).not.toContain('::error::');
  expect(stage.code).toBe(0);
  expect(stage.outputs).toMatchObject({ channel: 'staging', version: '9.1.0', 'bytes-uploaded': String(fs.statSync(pkg).size) });
  // With an endpoint, objects are addressed path-style on it.
  expect(stage.outputs['package-url']).toBe(`${backends.s3.endpoint}/${BUCKET}/oidc/blobs/sha256/${stage.outputs.sha256}.tar.gz`);

  const promote = await runGitHubAction(shippedBundle('github', 'promote-release'), store, { env });
  expect(promote.stdout).not.toContain('::error::');
  expect(promote.code).toBe(0);
  expect(promote.outputs).toMatchObject({ channel: 'production', version: '9.1.0', sequence: '1' });

  // One OIDC token per run, for the STS audience, each exchanged for the role; S3 saw only the issued keys.
  expect(api.idTokens.map((t) => t.audience)).toEqual(['sts.amazonaws.com', 'sts.amazonaws.com']);
  expect(aws.webIdentityTokens).toEqual(api.idTokens.map((t) => t.token));
  const assumed = aws.calls.filter((c) => c.service === 'sts').map((c) => (c.body as Record<string, string>).RoleArn);
  expect(assumed).toEqual([ROLE, ROLE]);
  expect([...backends.s3.accessKeys]).toEqual(['ASIAFAKE00000001', 'ASIAFAKE00000002']);
  // S3 requests are signed for the bucket's region (store-region), not the run's AWS region (region).
  expect([...backends.s3.signingRegions]).toEqual(['eu-central-1']);
  // The token and the credentials it bought are masked: registered with the runner, never printed.
  for (const run of [stage, promote]) {
    const token = api.idTokens[run === stage ? 0 : 1].token;
    expect(run.lines).toContain(`::add-mask::${token}`);
    expect(run.lines.filter((l) => l.includes(token) && !l.startsWith('::add-mask::'))).toEqual([]);
  }
});

test('GitHub Actions: without id-token permission, role-to-assume fails with a message that says what to add', async () => {
  const inputs = {
    store: 's3',
    'store-uri': `s3://${BUCKET}/no-oidc`,
    endpoint: backends.s3.endpoint,
    'role-to-assume': ROLE,
    region: 'eu-west-1',
    'signing-key': KEYS.privateKeyPem,
    package: pkg,
  };
  // ACTIONS_ID_TOKEN_REQUEST_URL is what GitHub leaves out when the job lacks `permissions: id-token: write`.
  const stage = await runGitHubAction(shippedBundle('github', 'stage-ota'), inputs, { env: { AWS_ENDPOINT_URL_STS: aws.url } });
  expect(stage.code).toBe(1);
  expect(stage.stdout).toContain(`Could not get an OIDC token for role ${ROLE}`);
  expect(stage.stdout).toContain('permissions: id-token: write');
  expect(backends.s3.keys(BUCKET).filter((k) => k.startsWith('no-oidc/'))).toEqual([]);
});
