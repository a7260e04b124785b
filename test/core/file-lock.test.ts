import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LockTimeout, withFileLock } from '../../shared/core/file-lock';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-lock-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('holders take turns: the second waits until the first releases', async () => {
  const lock = path.join(dir, 'turns.lock');
  const events: string[] = [];
  const holder = (name: string, ms: number) =>
    withFileLock(lock, async () => {
      events.push(`${name} in`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`${name} out`);
    });
  await Promise.all([holder('first', 80), new Promise((r) => setTimeout(r, 10)).then(() => holder('second', 1))]);
  expect(events).toEqual(['first in', 'first out', 'second in', 'second out']);
  expect(fs.existsSync(lock)).toBe(false);
});

test('a lock left by a killed process is broken; one held by a live process is waited for', async () => {
  const lock = path.join(dir, 'stale.lock');
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  fs.writeFileSync(lock, `${dead}@${os.hostname()}#killed-mid-write`);
  expect(await withFileLock(lock, async () => 'got it')).toBe('got it');
  expect(fs.existsSync(lock)).toBe(false);

  fs.writeFileSync(lock, `${process.pid}@${os.hostname()}#someone-else`);
  await expect(withFileLock(lock, async () => 'never', { timeoutMs: 150 })).rejects.toThrow(LockTimeout);
  expect(fs.readFileSync(lock, 'utf8')).toBe(`${process.pid}@${os.hostname()}#someone-else`);
  // On another host only age tells.
  fs.writeFileSync(lock, '4242@other-host#x');
  fs.utimesSync(lock, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
  expect(await withFileLock(lock, async () => 'expired', { staleAfterMs: 60_000 })).toBe('expired');
});
