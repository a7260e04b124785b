import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { MlflowClient } from '../../shared/cloud/mlflow-client';
import { runStep } from '../../shared/core/runtime';
import { MemoryHost } from '../../shared/hosts/memory-host';
import { gateMetricsStep } from '../../shared/steps/gate-metrics';
import { createRegistry } from '../../shared/registry';
import { MlflowRegistry } from '../../shared/registry/mlflow';
import { freePort } from '../ota/support/azurite';
import { KEYS, makePackage } from '../ota/support/packages';
import { runInMemory } from '../ota/support/run-step';
import { StoreBackends } from '../ota/support/stores';
import { promoteReleaseStep } from '../../shared/steps/promote-release';
import { stageOtaStep } from '../../shared/steps/stage-ota';
import { MlflowServer } from '../support/mlflow';
import { gateAgainstRegistry } from '../support/gate-registry';
import { evidence, exerciseRegistry } from '../support/registry-contract';
import { FAST_RETRY, tempWorkspace, write } from '../training/helpers';

/** Everything here runs against a real `mlflow server` (SQLite store, proxied artifacts) on loopback. */
const server = new MlflowServer();
beforeAll(() => server.start(), 200_000);
afterAll(() => server.stop());

const open = (alias?: string) => new MlflowRegistry({ trackingUri: server.url, retry: FAST_RETRY, alias });

describe('MLflow Model Registry (REST against a real mlflow server)', () => {
  it('keeps the registry contract: versions, the champion alias moving, approval evidence in tags', async () => {
    const registry = open();
    await exerciseRegistry(registry, (n) => `s3://mlship-models/cellseg/job-${n}/output/model.tar.gz`);
    // What MLflow itself now says, read with its own REST API: the alias, the lineage tags, the run's metrics.
    const client = new MlflowClient({ trackingUri: server.url, retry: FAST_RETRY });
    const { model_version: champion } = await client.get<{
      model_version: { version: string; run_id: string; tags: { key: string; value: string }[] };
    }>('registered-models/alias', { name: 'cellseg', alias: 'champion' });
    expect(champion.version).toBe('3');
    const { model_version: v2 } = await client.get<{ model_version: { tags: { key: string; value: string }[]; source: string } }>(
      'model-versions/get',
      { name: 'cellseg', version: '2' },
    );
    const tags = Object.fromEntries(v2.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      'mlship.stage': 'archived',
      'mlship.approval': 'approved',
      'mlship.gitCommit': 'bbb222',
      'mlship.trainingJob': 'job-2',
    });
    expect(JSON.parse(tags['mlship.evidence'])).toEqual(evidence);
    expect(v2.source).toBe('s3://mlship-models/cellseg/job-2/output/model.tar.gz');
    const { run } = await client.get<{ run: { data: { metrics: { key: string; value: number }[] } } }>('runs/get', {
      run_id: champion.run_id,
    });
    expect(run.data.metrics.map((m) => [m.key, m.value])).toEqual([['dice', 0.86]]);
  });

  it('uploads a local model folder into the registration run and points the version at it', async () => {
    const ws = tempWorkspace('mlship-mlflow-');
    write(ws, 'out/model/model.onnx', 'onnx-bytes-'.repeat(1000));
    write(ws, 'out/model/labels.json', '["cell"]');
    const registry = new MlflowRegistry({ trackingUri: server.url, retry: FAST_RETRY, workspace: ws });
    const v = await registry.register({
      name: 'uploaded',
      artifactUri: 'out/model',
      metrics: { dice: 0.8, 'dice/class-1': 0.79 },
      trainingJob: 'local-1',
      gitCommit: 'abc',
      dataFingerprint: 'sha256:dd',
    });
    expect(v.artifactUri).toMatch(/^mlflow-artifacts:\/.+\/artifacts\/model$/);
    expect(v).toMatchObject({
      version: '1',
      metrics: { dice: 0.8, 'dice/class-1': 0.79 },
      dataFingerprint: 'sha256:dd',
      gitCommit: 'abc',
      trainingJob: 'local-1',
      stage: 'candidate',
    });
    const rel = v.artifactUri.replace(/^mlflow-artifacts:\/+/, '');
    expect((await registry.client.downloadArtifact(`${rel}/model.onnx`)).toString()).toBe(
      fs.readFileSync(path.join(ws, 'out/model/model.onnx'), 'utf8'),
    );
    expect((await registry.client.downloadArtifact(`${rel}/labels.json`)).toString()).toBe('["cell"]');
    // A re-run registering the same job's model again gets the same version, and uploads nothing new.
    expect(
      (await registry.register({ name: 'uploaded', artifactUri: 'out/model', metrics: { dice: 0.8 }, trainingJob: 'local-1' })).version,
    ).toBe('1');
    expect(await registry.list('uploaded')).toHaveLength(1);
  });

  it('uses a configurable alias, and opens from the generic options (uri = tracking server)', async () => {
    const registry = createRegistry('mlflow', { uri: server.url, mlflow: { alias: 'production' } });
    expect(registry.kind).toBe('mlflow');
    await registry.register({ name: 'aliased', artifactUri: 's3://b/m1.tar.gz', metrics: { AP: 0.5 } });
    await registry.setStage('aliased', '1', 'production', { approval: 'approved', evidence });
    expect((await registry.production('aliased'))?.version).toBe('1');
    expect(await open('champion').production('aliased')).toBeUndefined();
    // Rolling back to staging takes the alias away again.
    await registry.setStage('aliased', '1', 'archived');
    expect(await registry.production('aliased')).toBeUndefined();
  });

  it('names the server and the fix when it cannot be reached, and never prints the token', async () => {
    const token = 'mlflow-secret-token-123';
    const closed = `http://127.0.0.1:${await freePort()}`;
    const registry = new MlflowRegistry({ trackingUri: closed, token, retry: FAST_RETRY });
    const error = await registry.list('x').catch((e: Error & { hint?: string }) => e);
    expect(error).toMatchObject({ name: 'StepError', message: `Cannot reach the MLflow tracking server at ${closed} (ECONNREFUSED).` });
    expect((error as { hint: string }).hint).toContain('MLFLOW_TRACKING_URI');
    expect(JSON.stringify({ m: (error as Error).message, h: (error as { hint: string }).hint })).not.toContain(token);
    expect(() => new MlflowRegistry({ trackingUri: 'file:///tmp/mlruns', retry: FAST_RETRY })).toThrow(
      'The MLflow tracking URI "file:///tmp/mlruns" is not an http(s) server.',
    );
    expect(() => new MlflowRegistry({ trackingUri: server.url, alias: 'latest', retry: FAST_RETRY })).toThrow(
      '"latest" cannot be an MLflow model alias.',
    );
    const withUser = new MlflowRegistry({ trackingUri: server.url.replace('http://', 'http://ci:hunter2@'), retry: FAST_RETRY });
    expect(withUser.location).toBe(server.url);
    await expect(open().setStage('nope', '1', 'production')).rejects.toThrow(`MLflow model nope has no version 1 at ${server.url}.`);
  });
});

/**
 * The pinned environment's mlflow lacks the basic-auth app's extra (Flask-WTF), so an authenticating front is a
 * small proxy that demands one Authorization header and forwards to the real server, as a reverse proxy in front
 * of a self-hosted MLflow does.
 */
async function authProxy(expected: string): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const upstream = new URL(server.url);
  const proxy = http.createServer((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    if (req.headers.authorization !== expected) {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="mlflow"' });
      res.end('{"error_code":"UNAUTHENTICATED","message":"You are not authenticated."}');
      return;
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

describe('MLflow credentials', () => {
  it('sends the bearer token or basic auth, and names the server and the fix on 401 without printing secrets', async () => {
    const token = 'mlflow-pat-0123456789';
    const bearer = await authProxy(`Bearer ${token}`);
    try {
      const registry = createRegistry('mlflow', { uri: bearer.url, env: { MLFLOW_TRACKING_TOKEN: token } });
      await registry.register({ name: 'authed', artifactUri: 's3://b/authed.tar.gz', metrics: { AP: 0.4 } });
      expect((await registry.list('authed')).map((v) => v.version)).toEqual(['1']);
      const denied = await createRegistry('mlflow', { uri: bearer.url, env: { MLFLOW_TRACKING_TOKEN: 'wrong-token-value' } })
        .list('authed')
        .catch((e: Error & { hint?: string }) => e);
      expect((denied as Error).message).toBe(
        `The MLflow server at ${bearer.url} refused the request (401, not authenticated) for GET /api/2.0/mlflow/model-versions/search.`,
      );
      expect((denied as { hint: string }).hint).toContain('MLFLOW_TRACKING_TOKEN');
      expect(`${(denied as Error).message} ${(denied as { hint: string }).hint}`).not.toContain('wrong-token-value');
    } finally {
      await bearer.close();
    }
    const basic = await authProxy(`Basic ${Buffer.from('ci-bot:pa55:word').toString('base64')}`);
    try {
      const registry = createRegistry('mlflow', {
        uri: basic.url,
        env: { MLFLOW_TRACKING_USERNAME: 'ci-bot', MLFLOW_TRACKING_PASSWORD: 'pa55:word' },
      });
      expect((await registry.list('authed')).map((v) => v.version)).toEqual(['1']);
      expect(basic.seen.every((h) => h.startsWith('Basic '))).toBe(true);
    } finally {
      await basic.close();
    }
  });
});

describe('promote-release with the MLflow registry', () => {
  const backends = new StoreBackends();
  afterAll(() => backends.stop());

  it('moves the champion alias with the channel, with the approval evidence, and back on rollback', async () => {
    const registry = open();
    const r1 = await registry.register({ name: 'fleet-model', artifactUri: 's3://b/fleet/1.tar.gz', metrics: { dice: 0.81 } });
    const r2 = await registry.register({ name: 'fleet-model', artifactUri: 's3://b/fleet/2.tar.gz', metrics: { dice: 0.86 } });
    const store = { ...backends.inputs('local', 'mlflow'), signingKey: KEYS.privateKeyPem };
    const promote = (extra: Record<string, string | boolean>) =>
      runInMemory(
        promoteReleaseStep,
        { ...store, registry: 'mlflow', mlflowTrackingUri: server.url, modelName: 'fleet-model', approvedBy: 'grace:ok', ...extra },
        { run: { id: 'run-9', actor: 'ada' } },
      );
    await runInMemory(stageOtaStep, { ...store, package: await makePackage(backends.folder, '1.0.0') });
    expect((await promote({ modelVersion: r1.version })).failure).toBeUndefined();
    expect(await registry.production('fleet-model')).toMatchObject({
      version: r1.version,
      approval: 'approved',
      evidence: { source: 'cli', approvers: [{ login: 'grace', comment: 'ok' }] },
    });
    await runInMemory(stageOtaStep, { ...store, package: await makePackage(backends.folder, '2.0.0') });
    expect((await promote({ modelVersion: r2.version })).failure).toBeUndefined();
    expect((await registry.production('fleet-model'))?.version).toBe(r2.version);
    expect((await registry.get('fleet-model', r1.version))?.stage).toBe('archived');
    expect((await promote({ mode: 'rollback' })).failure).toBeUndefined();
    expect((await registry.production('fleet-model'))?.version).toBe(r1.version);
    expect((await registry.get('fleet-model', r2.version))?.stage).toBe('archived');
  });
});

describe('gate-metrics against the production version in MLflow', () => {
  it('reads the alias holder’s run metrics, and names the alias when nothing holds it', async () => {
    const ws = tempWorkspace('mlship-mlflow-gate-');
    await gateAgainstRegistry(
      open(),
      ws,
      { registry: 'mlflow', mlflowTrackingUri: server.url },
      {},
      (n) => `s3://b/gate/${n}/model.tar.gz`,
    );
    const host = new MemoryHost(
      {
        groundTruth: path.join(ws, 'gate-gt.json'),
        candidatePredictions: path.join(ws, 'gate-half.json'),
        productionModel: 'gate-model',
        maxDrop: 0.05,
        registry: 'mlflow',
        registryAlias: 'production',
        bootstrapResamples: 0,
      },
      { workspace: ws, env: { MLFLOW_TRACKING_URI: server.url } },
    );
    await runStep(gateMetricsStep, host, new AbortController().signal);
    expect(host.failure).toContain(
      `Model "gate-model" has no production version in the mlflow registry (alias "production" at ${server.url})`,
    );
    expect(host.failure).toContain('registry-alias');
  });
});
