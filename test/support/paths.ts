import * as path from 'node:path';

/** The repository root; tests resolve everything from here instead of counting `../` from their own folder. */
export const ROOT = path.resolve(__dirname, '../..');

/**
 * Reference data produced by the tools mlship must agree with (pycocotools, MONAI), kept beside the checkout
 * in ../shared/fixtures rather than in the repository.
 */
export const SHARED_FIXTURES = path.resolve(ROOT, '../shared/fixtures');

/** A path inside the repository. */
export function repoPath(...parts: string[]): string {
  return path.join(ROOT, ...parts);
}
