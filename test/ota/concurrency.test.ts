import * as path from 'node:path';
import { parseChannel } from '../../shared/ota/channel';
import type { StoreKind } from '../../shared/ota/store';
import { loadPublicKey } from '../../shared/package';
import { stageOtaStep } from '../../shared/steps/stage-ota';
import { TsChild } from './support/child';
import { KEYS, makePackage } from './support/packages';
import { runInMemory } from './support/run-step';
import { StoreBackends } from './support/stores';

const backends = new StoreBackends();
const ITERATIONS = 50;
let packages: string[];

beforeAll(async () => {
  await backends.start();
  packages = [await makePackage(backends.folder, '3.0.0'), await makePackage(backends.folder, '4.0.0')];
});
afterAll(() => backends.stop());

// The three stores run side by side (each pair of workers contends only on its own store), to keep the test short.
test(`two processes promoting different versions to one channel ${ITERATIONS} times each lose no update (folder, S3, Azure Blob)`, async () => {
  const kinds: StoreKind[] = ['local', 's3', 'azure-blob'];
  await Promise.all(
    kinds.map((kind) =>
      race(kind).catch((error: Error) => {
        error.message = `${kind} store: ${error.message}`;
        throw error;
      }),
    ),
  );
});

async function race(kind: StoreKind): Promise<void> {
  const prefix = `race-${kind}`;
  const storeInputs = { ...backends.inputs(kind, prefix), signingKey: KEYS.privateKeyPem };
  const env = backends.env(kind);
  for (const [i, pkg] of packages.entries()) {
    const staged = await runInMemory(stageOtaStep, { ...storeInputs, package: pkg, channel: `candidate-${i}` }, { env });
    expect(staged.failure).toBeUndefined();
  }
  const workers = [0, 1].map(
    (i) =>
      new TsChild(path.join(__dirname, 'support/promote-worker.ts'), {
        ...env,
        MLSHIP_WORKER_CONFIG: JSON.stringify({
          inputs: { ...storeInputs, from: `candidate-${i}`, to: 'production' },
          env,
          iterations: ITERATIONS,
          name: `worker-${i}`,
        }),
      }),
  );
  await Promise.all(workers.map((w) => w.waitFor('ready')));
  workers.forEach((w) => w.send('go'));
  const codes = await Promise.all(workers.map((w) => w.exit()));
  expect({ codes, stderr: workers.map((w) => w.stderr.slice(-500)) }).toEqual({ codes: [0, 0], stderr: expect.any(Array) });
  const runs = workers.map((w) => JSON.parse(w.stdout.trim().split('\n').at(-1)!) as { sequence: number; version: string }[]);

  // Each worker saw its own sequence numbers strictly increase and published its own version each time.
  runs.forEach((mine, i) => {
    expect(mine).toHaveLength(ITERATIONS);
    expect(mine.every((r, j) => j === 0 || r.sequence > mine[j - 1].sequence)).toBe(true);
    expect(new Set(mine.map((r) => r.version))).toEqual(new Set([i === 0 ? '3.0.0' : '4.0.0']));
  });
  // Together: every number from 1 to 100 exactly once, no update lost, none published twice.
  const all = runs
    .flat()
    .map((r) => r.sequence)
    .sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: 2 * ITERATIONS }, (_, k) => k + 1));
  // They really ran at the same time: each one published both before and after the other's first and last.
  const [a, b] = runs.map((mine) => mine.map((r) => r.sequence));
  expect(Math.min(...a) < Math.max(...b) && Math.min(...b) < Math.max(...a)).toBe(true);

  const store = backends.open(kind, prefix);
  const publicKey = loadPublicKey(KEYS.publicKeyPem);
  const final = parseChannel((await store.readDocument('channels/production.json'))!.body, publicKey, 'production');
  expect(final.sequence).toBe(2 * ITERATIONS);
  expect(['3.0.0', '4.0.0']).toContain(final.current.version);
  const last = runs.flat().find((r) => r.sequence === final.sequence)!;
  expect(final.current.version).toBe(last.version);
  // The release records agree with what each worker says it published.
  const bySequence = new Map(runs.flat().map((r) => [r.sequence, r.version]));
  for (const seq of [1, 17, 50, 51, 99, 100]) {
    const record = JSON.parse((await store.readDocument(`releases/production/${String(seq).padStart(10, '0')}.json`))!.body.toString());
    expect(record.document.current.version).toBe(bySequence.get(seq));
  }
}
