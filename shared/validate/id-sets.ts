/**
 * Compact sets for per-annotation bookkeeping, so checking a million annotations costs bits, not a hash-table
 * entry each. Integer ids (what every COCO exporter writes) go into a bitmap; anything else into a Set.
 */

/** Integer ids below this are kept as bits: at most 32 MiB however sparse the ids are. */
const DENSE_LIMIT = 2 ** 28;

export class IdSet {
  private bits = new Uint8Array(1 << 12);
  private readonly others = new Set<string | number>();

  /** Adds `id`; false when it was already there. The number 1 and the string "1" are different ids. */
  add(id: string | number): boolean {
    if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < DENSE_LIMIT) {
      const byte = id >>> 3;
      if (byte >= this.bits.length) {
        const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
        grown.set(this.bits);
        this.bits = grown;
      }
      const bit = 1 << (id & 7);
      if (this.bits[byte] & bit) return false;
      this.bits[byte] |= bit;
      return true;
    }
    if (this.others.has(id)) return false;
    this.others.add(id);
    return true;
  }
}

/** Pairs (row, column) of small indexes, e.g. (image, class): which classes each image has. */
export class PairSet {
  private readonly bits?: Uint8Array;
  private readonly sparse?: Set<number>;

  constructor(
    rows: number,
    private readonly columns: number,
  ) {
    // A bitmap while it stays under 32 MiB (100k images × 2,600 classes); beyond that only the pairs seen.
    if (rows * columns <= DENSE_LIMIT) this.bits = new Uint8Array(Math.ceil((rows * columns) / 8));
    else this.sparse = new Set();
  }

  /** Adds the pair; false when it was already there. */
  add(row: number, column: number): boolean {
    const key = row * this.columns + column;
    if (this.bits) {
      const bit = 1 << (key & 7);
      if (this.bits[key >>> 3] & bit) return false;
      this.bits[key >>> 3] |= bit;
      return true;
    }
    const set = this.sparse as Set<number>;
    if (set.has(key)) return false;
    set.add(key);
    return true;
  }
}
