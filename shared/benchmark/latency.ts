/**
 * The timing loop. One iteration is one awaited call of `run`, timed with process.hrtime.bigint(); nothing else
 * happens between the two clock reads, so the harness adds no more than a bare `session.run` loop would
 * (bench/harness.ts measures the difference).
 */

export interface MeasureOptions {
  warmup: number;
  /** Timed iterations; ignored when durationMs is set. */
  iterations: number;
  /** Run for this long instead of a fixed count. */
  durationMs?: number;
  signal?: AbortSignal;
}

export async function timeOnce(run: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function measure(run: () => Promise<unknown>, options: MeasureOptions): Promise<number[]> {
  for (let i = 0; i < options.warmup; i++) await run();
  const samples: number[] = [];
  if (options.durationMs !== undefined) {
    const end = process.hrtime.bigint() + BigInt(Math.round(options.durationMs * 1e6));
    for (;;) {
      const t0 = process.hrtime.bigint();
      await run();
      const t1 = process.hrtime.bigint();
      samples.push(Number(t1 - t0) / 1e6);
      if (t1 >= end || options.signal?.aborted) break;
    }
    return samples;
  }
  for (let i = 0; i < options.iterations && !options.signal?.aborted; i++) {
    const t0 = process.hrtime.bigint();
    await run();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return samples;
}

/**
 * Baseline and candidate alternately (ABBA order), so drift on a shared runner (a neighbour's job, clock changes)
 * hits both alike.
 */
export async function measureInterleaved(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  options: MeasureOptions,
): Promise<{ a: number[]; b: number[] }> {
  for (let i = 0; i < options.warmup; i++) {
    await a();
    await b();
  }
  const out = { a: [] as number[], b: [] as number[] };
  const end = options.durationMs !== undefined ? process.hrtime.bigint() + BigInt(Math.round(options.durationMs * 1e6)) : undefined;
  for (let i = 0; ; i++) {
    if (end === undefined ? i >= options.iterations : process.hrtime.bigint() >= end) break;
    if (options.signal?.aborted) break;
    const first = i % 2 === 0 ? 'a' : 'b';
    for (const which of first === 'a' ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
      const fn = which === 'a' ? a : b;
      const t0 = process.hrtime.bigint();
      await fn();
      out[which].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return out;
}
