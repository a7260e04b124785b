import { IdSet, PairSet } from '../../shared/validate/id-sets';

describe('IdSet', () => {
  it('tells a new id from a repeat, for dense, sparse, negative, fractional and string ids', () => {
    const ids = new IdSet();
    const inputs: (string | number)[] = [1, 2, 1_000_000, 2 ** 28 - 1, 2 ** 28, 2 ** 40, -3, 1.5, '1', 'a', 0];
    expect(inputs.map((id) => ids.add(id))).toEqual(inputs.map(() => true));
    expect(inputs.map((id) => ids.add(id))).toEqual(inputs.map(() => false));
    // The number 1 and the string "1" are different ids, as they are to a JSON reader.
    expect(ids.add(3)).toBe(true);
  });

  it('agrees with a Set over 300,000 random ids', () => {
    const ids = new IdSet();
    const reference = new Set<number>();
    let seed = 1;
    let disagreements = 0;
    let repeats = 0;
    for (let i = 0; i < 300_000; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const id = seed % 500_000;
      if (ids.add(id) === reference.has(id)) disagreements++;
      if (reference.has(id)) repeats++;
      reference.add(id);
    }
    expect(disagreements).toBe(0);
    expect(repeats).toBeGreaterThan(50_000);
  });
});

describe('PairSet', () => {
  it.each([
    ['bitmap', 1000, 80],
    ['sparse', 2_000_000, 1000],
  ])('marks each (row, column) pair once (%s)', (_, rows, columns) => {
    const pairs = new PairSet(rows, columns);
    expect(pairs.add(0, 0)).toBe(true);
    expect(pairs.add(0, 0)).toBe(false);
    expect(pairs.add(rows - 1, columns - 1)).toBe(true);
    expect(pairs.add(rows - 1, columns - 2)).toBe(true);
    expect(pairs.add(1, 0)).toBe(true);
    expect(pairs.add(rows - 1, columns - 1)).toBe(false);
  });
});
