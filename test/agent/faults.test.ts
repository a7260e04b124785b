/**
 * Fault injection on the device agent: each fault of issue 15 ends in a reported `error` (or a revert), with the
 * lock released, nothing half-written left behind, and the agent still polling.
 *
 * The store is a real folder store; the network faults need an HTTP server that misbehaves on demand (cuts the
 * connection after the headers, answers 404/500), which no real object store does, so a small node:http server
 * in front of the folder speaks plain HTTP/1.1 to the agent's fetch. A full disk is an injected ENOSPC (a small
 * tmpfs needs mount rights that CI runners do not have): fs.open / fs.promises.open / fs.promises.writeFile are
 * wrapped before the agent's modules load, so the agent's own writes fail the way a full filesystem fails them.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as AgentModule from '../../shared/agent';
import { type AgentReport, DeviceAgent, runDeviceAgent } from '../../shared/agent';
import { makePackage, KEYS } from '../ota/support/packages';
import { ChannelKit } from './support/fleet';

let kit: ChannelKit;
let v1: string;
let v2: string;
let big: string;
let n = 0;

beforeAll(async () => {
  kit = new ChannelKit();
  v1 = await makePackage(kit.dir, '1.0.0');
  v2 = await makePackage(kit.dir, '2.0.0');
  big = await makePackage(kit.dir, '3.0.0', { payloadBytes: 512 * 1024 });
});
afterAll(() => kit.cleanup());

function rootFor(name: string): string {
  return path.join(kit.dir, 'devices', `${name}-${n++}`);
}

/** Files in `root` that a finished poll must not leave: temp files, the agent lock, half downloads. */
function leftovers(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => /\.tmp$|agent\.lock$|^downloads\/./.test(f));
}

/** Alive and not a zombie (a killed process whose parent died waits for init to reap it; in a container that may never happen). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  let stat = '';
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return !/^\d+ \(.*\) Z/.test(stat);
}

type Mode = 'ok' | 'cut' | '404' | '500';

/** Serves the folder store over HTTP, misbehaving as told. */
class FaultyServer {
  mode: Mode = 'ok';
  private server = http.createServer((req, res) => {
    const key = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    if (this.mode === '404') return res.writeHead(404).end('no such key');
    if (this.mode === '500') return res.writeHead(500).end('internal error');
    let body: Buffer;
    try {
      body = fs.readFileSync(kit.store.pathOf(key));
    } catch {
      return res.writeHead(404).end();
    }
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    if (this.mode === 'cut' && key.startsWith('blobs/')) {
      // Half the package, then the connection goes: what a dropped lab link looks like to the device.
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Runs the agent's daemon loop until `done` says so (or `max` polls), collecting every report and log line. */
async function daemon(
  options: ConstructorParameters<typeof DeviceAgent>[0],
  done: (r: AgentReport, all: AgentReport[]) => boolean,
  between?: (all: AgentReport[]) => void | Promise<void>,
  max = 40,
) {
  const reports: AgentReport[] = [];
  const logs: string[] = [];
  const controller = new AbortController();
  await runDeviceAgent({
    ...options,
    intervalSeconds: 0.02,
    signal: controller.signal,
    log: (line) => logs.push(line),
    onReport: (r) => {
      reports.push(r);
      if (done(r, reports) || reports.length >= max) controller.abort();
      else void between?.(reports);
    },
  });
  return { reports, logs };
}

describe('network faults', () => {
  const server = new FaultyServer();
  let base: string;
  beforeAll(async () => {
    base = await server.start();
  });
  afterAll(() => server.stop());

  test('a download cut mid-body is one error line; the lock is released and the next poll installs', async () => {
    await kit.stage(big, 'cut');
    const root = rootFor('cut');
    server.mode = 'cut';
    const { reports, logs } = await daemon(
      { channelUrl: `${base}/channels/cut.json`, deviceId: 'dev-cut', publicKey: KEYS.publicKeyPem, root },
      (r) => r.status === 'installed',
      (all) => {
        // Two failed polls in a row, then the link comes back.
        if (all.length === 2) server.mode = 'ok';
      },
    );
    expect(reports.slice(0, 2).map((r) => r.status)).toEqual(['error', 'error']);
    expect(reports[0].message).toMatch(
      /^GET http:\/\/127\.0\.0\.1:\d+\/blobs\/sha256\/[0-9a-f]{64}\.tar\.gz broke off after the headers: /,
    );
    expect(reports[0].activeSlot).toBeNull();
    expect(reports.at(-1)).toMatchObject({ status: 'installed', activeSlot: 'a', slots: { a: { version: '3.0.0' } } });
    // No stack traces: every log line is one line.
    expect(logs.filter((l) => l.includes('\n') || /^\s+at /m.test(l))).toEqual([]);
    expect(leftovers(root)).toEqual([]);
  });

  test.each([
    ['404', /^GET http:\/\/127\.0\.0\.1:\d+\/channels\/http-404\.json answered 404 Not Found$/],
    ['500', /^GET http:\/\/127\.0\.0\.1:\d+\/channels\/http-500\.json answered 500 Internal Server Error$/],
  ] as const)('a channel answering %s is one error line, and polling goes on', async (mode, message) => {
    await kit.stage(v1, `http-${mode}`);
    const root = rootFor(mode);
    server.mode = mode;
    const { reports, logs } = await daemon(
      { channelUrl: `${base}/channels/http-${mode}.json`, deviceId: `dev-${mode}`, publicKey: KEYS.publicKeyPem, root },
      (r) => r.status === 'installed',
      (all) => {
        if (all.length === 3) server.mode = 'ok';
      },
    );
    expect(reports.slice(0, 3).every((r) => r.status === 'error' && message.test(r.message))).toBe(true);
    expect(reports.at(-1)!.status).toBe('installed');
    expect(logs.filter((l) => /\n\s+at /.test(l))).toEqual([]);
    expect(leftovers(root)).toEqual([]);
  });

  test('a refused connection names the cause in one line', async () => {
    const closed = new FaultyServer();
    const url = await closed.start();
    await closed.stop();
    const agent = new DeviceAgent({
      channelUrl: `${url}/channels/production.json`,
      deviceId: 'dev-refused',
      publicKey: KEYS.publicKeyPem,
      root: rootFor('refused'),
    });
    const report = await agent.pollOnce();
    expect(report.status).toBe('error');
    expect(report.message).toMatch(
      /^GET http:\/\/127\.0\.0\.1:\d+\/channels\/production\.json failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
    );
  });
});

describe('a hung health check', () => {
  test('is killed with its whole process group at the timeout; the device is reverted and polling goes on', async () => {
    const root = rootFor('hung');
    const pidFile = path.join(root, '..', `hung-${n}.pid`);
    // The shell starts a grandchild that would outlive a kill of the shell alone, and then waits for it.
    const healthCommand = `test "$MLSHIP_MODEL_VERSION" != "2.0.0" || { sleep 300 & echo $! > ${pidFile}; wait; }`;
    await kit.stage(v1, 'hung');
    const agent = new DeviceAgent({
      channelUrl: kit.channelUrl('hung'),
      deviceId: 'dev-hung',
      publicKey: KEYS.publicKeyPem,
      root,
      healthCommand,
      healthTimeoutSeconds: 1,
    });
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', activeSlot: 'a' });
    await kit.stage(v2, 'hung');
    const report = await agent.pollOnce();
    expect(report).toMatchObject({
      status: 'reverted',
      activeSlot: 'a',
      message: 'cellseg 2.0.0 failed its health check (timed out after 1 s); reverted to cellseg 1.0.0',
    });
    // When the poll returns, the grandchild is gone and the device already runs the last good release again.
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(running(grandchild)).toBe(false);
    expect(fs.readlinkSync(path.join(root, 'current'))).toBe(path.join('slots', 'a'));
    expect(leftovers(root)).toEqual([]);
    // Next poll: not retried, answered at once.
    expect(await agent.pollOnce()).toMatchObject({ status: 'reverted', activeSlot: 'a' });
  });
});

describe('a damaged state file', () => {
  test('truncated state.json is rebuilt from the slots with a warning; replay protection survives', async () => {
    const root = rootFor('truncated');
    await kit.stage(v1, 'truncated');
    const agent = new DeviceAgent({ channelUrl: kit.channelUrl('truncated'), deviceId: 'dev-trunc', publicKey: KEYS.publicKeyPem, root });
    await agent.pollOnce();
    const channelFile = kit.store.pathOf('channels/truncated.json');
    const old = fs.readFileSync(channelFile);
    await kit.stage(v2, 'truncated');
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', activeSlot: 'b', highestSequence: 2 });
    const statePath = path.join(root, 'state.json');
    const text = fs.readFileSync(statePath, 'utf8');
    fs.writeFileSync(statePath, text.slice(0, text.length >> 1));

    const recovered = await agent.pollOnce();
    expect(recovered).toMatchObject({
      status: 'up-to-date',
      activeSlot: 'b',
      highestSequence: 2,
      slots: { a: { version: '1.0.0' }, b: { version: '2.0.0' } },
      lastKnownGood: { slot: 'b', version: '2.0.0' },
    });
    expect(recovered.message).toMatch(
      /^runs cellseg 2\.0\.0 \(sequence 2\) \(warning: state\.json was damaged \(.*\); recovered from the slots: runs cellseg 2\.0\.0 in slot b, highest sequence 2\)$/,
    );
    expect(fs.existsSync(`${statePath}.damaged`)).toBe(true);
    // The state file is whole again, and an old document replayed is still refused.
    expect(JSON.parse(fs.readFileSync(statePath, 'utf8'))).toMatchObject({ activeSlot: 'b' });
    fs.writeFileSync(channelFile, old);
    expect(await agent.pollOnce()).toMatchObject({ status: 'refused', activeSlot: 'b' });
  });
});

test('temp files and a lock left by a killed agent are cleaned up by the next poll', async () => {
  const root = rootFor('stale');
  await kit.stage(v1, 'stale');
  const agent = new DeviceAgent({
    channelUrl: kit.channelUrl('stale'),
    deviceId: 'dev-stale',
    publicKey: KEYS.publicKeyPem,
    root,
    reportSink: { description: 'nowhere', put: async () => 'stored' },
  });
  fs.mkdirSync(path.join(root, 'reports', 'outbox'), { recursive: true });
  // What a SIGKILL in the middle of writes leaves: a state temp, a pointer temp, an outbox temp, and the lock of a dead process.
  fs.writeFileSync(path.join(root, '.state.json.0b8c.tmp'), '{"half": ');
  fs.writeFileSync(path.join(root, '.current.slot.77aa.tmp'), 'b');
  fs.writeFileSync(path.join(root, 'reports', 'outbox', '.20261201T100000000Z-000001.json.1c2d.tmp'), '{');
  fs.writeFileSync(path.join(root, 'agent.lock'), `999999999@${os.hostname()}#dead`);
  expect(await agent.pollOnce()).toMatchObject({ status: 'installed' });
  expect(leftovers(root)).toEqual([]);
  expect(fs.readdirSync(path.join(root, 'reports', 'outbox'))).toEqual([]);
});

describe('a full disk (injected ENOSPC)', () => {
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  const fsc = require('node:fs') as typeof import('node:fs');
  const originals = { open: fsp.open, writeFile: fsp.writeFile, fsOpen: fsc.open };
  /** Writes under this folder fail with ENOSPC after the file was created, as on a full filesystem. */
  let fullUnder: string | undefined;
  const full = (file: unknown) => fullUnder !== undefined && typeof file === 'string' && path.resolve(file).startsWith(fullUnder);
  const enospc = (file: string) =>
    Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
      path: file,
    });
  const writing = (flags: unknown) => typeof flags === 'string' && /[wa+]/.test(flags);
  let agentModule: typeof AgentModule;

  beforeAll(() => {
    Object.assign(fsp, {
      open: async (file: string, flags?: string, mode?: number) => {
        if (full(file) && writing(flags ?? 'r')) {
          await (await originals.open(file, flags, mode)).close();
          throw enospc(file);
        }
        return originals.open(file, flags, mode);
      },
      writeFile: async (file: string, data: string, options?: unknown) => {
        if (full(file)) {
          await originals.writeFile(file, '');
          throw enospc(file);
        }
        return originals.writeFile(file, data, options as never);
      },
    });
    (fsc as { open: unknown }).open = (file: string, flags: unknown, mode: unknown, callback?: unknown) => {
      const cb = (typeof mode === 'function' ? mode : callback) as (e: Error | null, fd?: number) => void;
      if (full(file) && writing(flags)) {
        return originals.fsOpen(file, flags as string, (error, fd) => (error ? cb(error) : fsc.close(fd, () => cb(enospc(file)))));
      }
      return (originals.fsOpen as (...args: unknown[]) => void)(file, flags, ...(typeof mode === 'function' ? [mode] : [mode, callback]));
    };
    // The agent's modules are loaded after the wrapping, so their imports see it.
    jest.isolateModules(() => {
      agentModule = require('../../shared/agent') as typeof AgentModule;
    });
  });
  afterAll(() => {
    Object.assign(fsp, { open: originals.open, writeFile: originals.writeFile });
    (fsc as { open: unknown }).open = originals.fsOpen;
  });

  test('full while downloading: an error report, state saved, no partial file; after space is freed it installs', async () => {
    const root = rootFor('enospc-download');
    await kit.stage(big, 'enospc');
    const agent = new agentModule.DeviceAgent({
      channelUrl: kit.channelUrl('enospc'),
      deviceId: 'dev-full',
      publicKey: KEYS.publicKeyPem,
      root,
    });
    fullUnder = path.join(root, 'downloads');
    const report = await agent.pollOnce();
    expect(report.status).toBe('error');
    expect(report.message).toMatch(/^no space left on the device \(.*downloads.*\)$/);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'state.json'), 'utf8'))).toMatchObject({ status: 'error' });
    expect(leftovers(root)).toEqual([]);
    fullUnder = undefined;
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', slots: { a: { version: '3.0.0' } } });
  });

  test('full everywhere: the daemon reports errors without crashing, leaves no lock or temp file, and recovers', async () => {
    const root = rootFor('enospc-all');
    fs.mkdirSync(root, { recursive: true });
    await kit.stage(v1, 'enospc-all');
    fullUnder = root;
    const reports: AgentReport[] = [];
    const controller = new AbortController();
    await agentModule.runDeviceAgent({
      channelUrl: kit.channelUrl('enospc-all'),
      deviceId: 'dev-full-all',
      publicKey: KEYS.publicKeyPem,
      root,
      intervalSeconds: 0.02,
      signal: controller.signal,
      onReport: (r) => {
        reports.push(r);
        if (reports.length === 3) fullUnder = undefined;
        if (r.status === 'installed' || reports.length > 20) controller.abort();
      },
    });
    expect(reports.slice(0, 3).every((r) => r.status === 'error' && /no space left on the device/.test(r.message))).toBe(true);
    expect(reports.at(-1)!.status).toBe('installed');
    expect(leftovers(root)).toEqual([]);
  });
});
