import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseChannel } from '../../shared/ota/channel';
import { sha256File } from '../../shared/core/sha256';
import type { OtaStore, StoreKind } from '../../shared/ota/store';
import { loadPublicKey } from '../../shared/package';
import { TsChild } from './support/child';
import { KEYS, makePackage } from './support/packages';
import { StoreBackends } from './support/stores';

const backends = new StoreBackends();
const RUNS = 20;
const MiB = 1024 * 1024;
const publicKey = loadPublicKey(KEYS.publicKeyPem);
let packages: string[];

beforeAll(async () => {
  await backends.start(['local', 's3']);
  packages = [];
  for (let i = 0; i <= RUNS; i++) packages.push(await makePackage(backends.folder, `5.0.${i}`, { payload: randomBytes(2 * MiB) }));
});
afterAll(() => backends.stop());

// Both stores side by side, to keep the test short; each has its own staging processes and channel.
test(`staging killed at ${RUNS} random points never leaves the channel on a missing or partial blob (folder, S3)`, async () => {
  const kinds: StoreKind[] = ['local', 's3'];
  await Promise.all(
    kinds.map((kind) =>
      killRuns(kind).catch((error: Error) => {
        error.message = `${kind} store: ${error.message}`;
        throw error;
      }),
    ),
  );
});

async function killRuns(kind: StoreKind): Promise<void> {
  const store = backends.open(kind, `faults-${kind}`);
  const scratch = path.join(backends.folder, `scratch-${kind}`);
  const stager = (pkg: string) => {
    const inputs = { ...backends.inputs(kind, `faults-${kind}`), signingKey: KEYS.privateKeyPem, package: pkg };
    return new TsChild(path.join(__dirname, 'support/stage-worker.ts'), {
      ...backends.env(kind),
      MLSHIP_WORKER_CONFIG: JSON.stringify({ inputs, env: backends.env(kind) }),
    });
  };

  // One undisturbed run tells how long staging takes here, so the kills spread over the whole of it.
  const calibration = stager(packages[RUNS]);
  await calibration.waitFor('ready');
  const started = Date.now();
  calibration.send('go');
  await calibration.waitFor('staged');
  const duration = Date.now() - started;
  expect(await calibration.exit()).toBe(0);

  let lastSequence = (await checkChannel(store, scratch))!.sequence;
  let killed = 0;
  // A few processes load ahead of their turn, so start-up time is not what the test spends its time on.
  const queue = packages.slice(0, RUNS).concat(packages[0]);
  const ready = queue.splice(0, 3).map(stager);
  for (let i = 0; i < RUNS; i++) {
    const child = ready.shift()!;
    if (queue.length) ready.push(stager(queue.shift()!));
    await child.waitFor('ready');
    child.send('go');
    // Stratified: run i dies somewhere in the i-th twentieth of 1.2 × the staging time.
    await new Promise((r) => setTimeout(r, ((i + Math.random()) / RUNS) * 1.2 * duration));
    if (child.process.kill('SIGKILL')) killed++;
    await child.exit();
    const state = await checkChannel(store, scratch);
    expect(state!.sequence).toBeGreaterThanOrEqual(lastSequence);
    lastSequence = state!.sequence;
  }
  expect(killed).toBeGreaterThan(0);
  // Nothing was left behind that blocks the next release (a stale lock, a half-written channel).
  const last = ready.shift()!;
  await last.waitFor('ready');
  last.send('go');
  await last.waitFor('staged');
  expect(await last.exit()).toBe(0);
  expect(await checkChannel(store, scratch)).toMatchObject({ version: '5.0.0' });
}

/** Whatever the channel points at must be a complete blob with the promised size and sha256. */
async function checkChannel(store: OtaStore, scratch: string): Promise<{ sequence: number; version: string } | undefined> {
  const stored = await store.readDocument('channels/staging.json');
  if (!stored) return undefined;
  const doc = parseChannel(stored.body, publicKey, 'staging');
  const copy = path.join(scratch, `${doc.sequence}.tar.gz`);
  await store.download(doc.current.key, copy);
  expect({ sha256: await sha256File(copy), size: fs.statSync(copy).size }).toEqual({ sha256: doc.current.sha256, size: doc.current.size });
  return { sequence: doc.sequence, version: doc.current.version };
}
