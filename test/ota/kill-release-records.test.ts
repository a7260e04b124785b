import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { STALE_AFTER_MS, TEMP_NAME } from '../../shared/core/stale-files';
import { parseChannel } from '../../shared/ota/channel';
import { LocalFolderStore } from '../../shared/ota/local-store';
import { updateChannel } from '../../shared/ota/publish';
import { releaseKey, type OtaStore } from '../../shared/ota/store';
import { loadPrivateKey, loadPublicKey } from '../../shared/package';
import { TsChild } from './support/child';
import { KEYS, makePackage } from './support/packages';

/**
 * Crash safety of the audit trail: a run killed between its channel write and its create-only release record
 * leaves a published sequence without a record, and killed writers leave temp and lock files. The next run
 * that updates the channel repairs the record and sweeps what is stale. Kills are SIGKILL at random moments of
 * real stage-ota and promote-release processes over a folder store; the deterministic test pins the one
 * interleaving the random kills only sometimes hit.
 */
const publicKey = loadPublicKey(KEYS.publicKeyPem);
const signingKey = loadPrivateKey(KEYS.privateKeyPem);
let dir: string;
let packages: string[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-kill-'));
  packages = [await makePackage(dir, '7.0.0', { payloadBytes: 256 << 10 }), await makePackage(dir, '7.0.1', { payloadBytes: 256 << 10 })];
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Sequences 1..current of a channel that have no release record. */
async function missingRecords(store: OtaStore, channel: string): Promise<number[]> {
  const stored = await store.readDocument(`channels/${channel}.json`);
  if (!stored) return [];
  const doc = parseChannel(stored.body, publicKey, channel);
  const missing: number[] = [];
  for (let s = 1; s <= doc.sequence; s++) if (!(await store.readDocument(releaseKey(channel, s)))) missing.push(s);
  return missing;
}

function walk(root: string): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(root, e.name)) : [path.join(root, e.name)]));
}

test('a run that dies between the channel write and the release record is repaired by the next update', async () => {
  const root = path.join(dir, 'deterministic');
  const store = new LocalFolderStore(root);
  // The store dies on the first release-record write, as a process killed right after the channel write would.
  let dieOnRecord = true;
  const dying: OtaStore = Object.assign(Object.create(store) as OtaStore, {
    writeDocument: async (key: string, body: Buffer, condition: Parameters<OtaStore['writeDocument']>[2]) => {
      if (dieOnRecord && key.startsWith('releases/')) {
        dieOnRecord = false;
        throw new Error('killed');
      }
      return store.writeDocument(key, body, condition);
    },
  });
  const release = {
    name: 'cellseg',
    version: '7.0.0',
    sha256: 'a'.repeat(64),
    size: 1,
    key: `blobs/sha256/${'a'.repeat(64)}.tar.gz`,
    url: 'file:///x',
  };
  const draft = (percent: number) => () => ({
    current: release,
    previous: null,
    rollout: { percent, groups: [], salt: 's' },
    approvals: null,
    origin: { event: 'stage' as const },
  });
  const publisher = { store: dying, signingKey, publicKey, expiresInHours: 24 };
  await expect(updateChannel(publisher, 'staging', draft(10))).rejects.toThrow('killed');
  expect(await missingRecords(store, 'staging')).toEqual([1]);
  const next = await updateChannel(publisher, 'staging', draft(20));
  expect(next.doc.sequence).toBe(2);
  expect(await missingRecords(store, 'staging')).toEqual([]);
  const repaired = JSON.parse((await store.readDocument(releaseKey('staging', 1)))!.body.toString()) as {
    repaired?: boolean;
    document: { sequence: number };
  };
  expect(repaired).toMatchObject({ repaired: true, document: { sequence: 1 } });
});

test('50 random SIGKILLs of stage-ota and promote-release: no sequence without a release record and no stale temp file after the next run', async () => {
  const root = path.join(dir, 'killed');
  const store = new LocalFolderStore(root);
  const inputs = { store: 'local', storeUri: root, signingKey: KEYS.privateKeyPem };
  const stager = (i: number) =>
    new TsChild(path.join(__dirname, 'support/stage-worker.ts'), {
      MLSHIP_WORKER_CONFIG: JSON.stringify({
        inputs: { ...inputs, channel: 'staging', package: packages[i % 2], packagePublicKey: KEYS.publicKeyPem },
        env: {},
      }),
    });
  const promoter = (i: number) =>
    new TsChild(path.join(__dirname, 'support/promote-worker.ts'), {
      MLSHIP_WORKER_CONFIG: JSON.stringify({
        inputs: { ...inputs, from: 'staging', to: 'production', rolloutPercent: 1 + (i % 99) },
        env: {},
        iterations: 1,
        name: `p${i}`,
      }),
    });
  const finish = { stage: 'staged', promote: '[{' };

  // One undisturbed run of each tells how long it takes here, so the kills spread over all of it.
  const durations: Record<'stage' | 'promote', number> = { stage: 0, promote: 0 };
  for (const [kind, start] of [
    ['stage', () => stager(1)],
    ['promote', () => promoter(0)],
  ] as const) {
    const child = start();
    await child.waitFor('ready');
    const t0 = Date.now();
    child.send('go');
    await child.waitFor(finish[kind]);
    durations[kind] = Date.now() - t0;
    expect(await child.exit()).toBe(0);
  }

  const KILLS = 50;
  const plan = Array.from({ length: KILLS }, (_, i) => (i % 2 === 0 ? 'stage' : 'promote') as 'stage' | 'promote');
  const spawn = (i: number) => (plan[i] === 'stage' ? stager(i) : promoter(i));
  // A few processes load ahead of their turn, so start-up time is not what the test spends its time on.
  const ready = [0, 1, 2].map(spawn);
  // The delay reaches 1.2 × the measured run, so some kills land after a run finished (a fast run may even have
  // exited): those count as runs that were not interrupted. Uniform delays interrupt ~5 in 6 runs; at least 20 of
  // 50 must have been, or the test did not test kills.
  let interrupted = 0;
  for (let i = 0; i < KILLS; i++) {
    const child = ready.shift()!;
    if (i + 3 < KILLS) ready.push(spawn(i + 3));
    await child.waitFor('ready');
    child.send('go');
    await new Promise((r) => setTimeout(r, Math.random() * 1.2 * durations[plan[i]]));
    const finished = child.stdout.includes(finish[plan[i]]);
    if (child.process.kill('SIGKILL') && !finished) interrupted++;
    await child.exit();
  }
  expect(interrupted).toBeGreaterThanOrEqual(20);

  // Time passes: whatever the killed runs left is now older than the sweep threshold.
  const old = new Date(Date.now() - 2 * STALE_AFTER_MS);
  const leftovers = walk(root).filter((f) => TEMP_NAME.test(path.basename(f)) || f.endsWith('.lock'));
  for (const f of leftovers) fs.utimesSync(f, old, old);

  // The next successful run of each.
  for (const [kind, child] of [
    ['stage', stager(KILLS)],
    ['promote', promoter(KILLS)],
  ] as const) {
    await child.waitFor('ready');
    child.send('go');
    await child.waitFor(finish[kind]);
    expect(await child.exit()).toBe(0);
  }

  expect({ staging: await missingRecords(store, 'staging'), production: await missingRecords(store, 'production') }).toEqual({
    staging: [],
    production: [],
  });
  const stale = walk(root).filter(
    (f) => (TEMP_NAME.test(path.basename(f)) || f.endsWith('.lock')) && Date.now() - fs.statSync(f).mtimeMs >= STALE_AFTER_MS,
  );
  expect(stale).toEqual([]);
  process.stdout.write(
    `kill test: ${KILLS} kills (${interrupted} mid-run), ${leftovers.length} leftover temp/lock files aged and swept, stage ${durations.stage} ms, promote ${durations.promote} ms per run\n`,
  );
}, 600_000);
