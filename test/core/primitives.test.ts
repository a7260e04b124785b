import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../../shared/core/atomic-write';
import { processAlive } from '../../shared/core/process-alive';
import { backoffDelay, sleep, AbortedError } from '../../shared/core/retry';
import { readJsonFile } from '../../shared/metrics/coco/load';
import { decodeRleString } from '../../shared/validate/geometry';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-primitives-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomicSync', () => {
  it('replaces the file whole and leaves no temp file behind, also when the rename fails', () => {
    const file = path.join(dir, 'nested', 'status.json');
    writeFileAtomicSync(file, '{"state":"running"}');
    writeFileAtomicSync(file, Buffer.from('{"state":"done"}'));
    expect(fs.readFileSync(file, 'utf8')).toBe('{"state":"done"}');
    // A folder where the file should go: the rename fails, and the temp sibling is removed.
    const blocked = path.join(dir, 'blocked');
    fs.mkdirSync(path.join(blocked, 'inside'), { recursive: true });
    expect(() => writeFileAtomicSync(blocked, 'x')).toThrow();
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('processAlive', () => {
  it('is true for this process and false for one that has exited', async () => {
    expect(processAlive(process.pid)).toBe(true);
    const child = require('node:child_process').spawn(process.execPath, ['-e', '']);
    await new Promise((r) => child.on('exit', r));
    expect(processAlive(child.pid)).toBe(false);
  });
});

describe('one backoff', () => {
  it('draws full-jitter delays below the doubling ceiling', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const d = backoffDelay(attempt, { baseMs: 5, maxMs: 200 });
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(200, 5 * 2 ** (attempt - 1)));
    }
  });

  it('sleep (node:timers/promises) rejects with AbortedError when the signal aborts', async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    controller.abort(new Error('cancelled by the runner'));
    await expect(slept).rejects.toEqual(expect.any(AbortedError));
    await expect(sleep(1)).resolves.toBeUndefined();
  });
});

describe('one JSON reader with positions, one RLE decoder', () => {
  it('readJsonFile names the line and column of a syntax error, and refuses NaN', () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{\n  "images": [\n    {"id": 1,}\n  ]\n}');
    expect(() => readJsonFile(bad, 'Ground-truth')).toThrow(
      new RegExp(`Ground-truth file ${bad} is not valid JSON: .* at line 3, column \\d+\\.`),
    );
    const nan = path.join(dir, 'nan.json');
    fs.writeFileSync(nan, '[{"image_id": 1, "score": NaN}]');
    expect(() => readJsonFile(nan, 'Predictions')).toThrow(
      `Predictions file ${nan} holds NaN or Infinity (1 value(s)), which JSON does not allow.`,
    );
  });

  it('validate decodes compressed RLE with the metrics decoder and flags malformed strings', () => {
    // Round trip through the encoder, then a bad character and a truncated value.
    const { rleToString } = require('../../shared/metrics/coco/rle') as typeof import('../../shared/metrics/coco/rle');
    const counts = Uint32Array.from([5, 2, 2, 1, 3]);
    const text = rleToString({ h: 13, w: 1, counts });
    expect(decodeRleString(text)).toEqual([5, 2, 2, 1, 3]);
    expect(decodeRleString('a~')).toBeUndefined();
    expect(decodeRleString('1l')).toBeUndefined();
  });
});
