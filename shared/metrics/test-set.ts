import { createHash } from 'node:crypto';

/** Identifies a test set by its image ids (COCO) or mask names, so numbers from different sets are not compared. */
export interface TestSetId {
  readonly images: number;
  readonly fingerprint: string;
}

export function testSetId(ids: readonly (number | string)[]): TestSetId {
  return { images: ids.length, fingerprint: createHash('sha256').update(JSON.stringify(ids)).digest('hex').slice(0, 16) };
}
