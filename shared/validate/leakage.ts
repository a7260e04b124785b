import type { Findings } from './checks';
import type { ImageRef } from './dataset';
import { SPLITS } from './dataset';
import type { ImageRecord } from './image-checks';

/**
 * Byte-identical images by sha256. Within a split every copy after the first is flagged; across splits every
 * copy in a later split (train < val < test) is flagged against the earliest one, since it is the later
 * split's score that the leak inflates. Masks are left out: identical masks (all background) are normal.
 */
export function checkLeakage(
  refs: readonly ImageRef[],
  records: ReadonlyMap<string, ImageRecord>,
  findings: Findings,
  display: (file: string) => string,
): void {
  findings.ran('leakage.duplicate-within-split', 'leakage.cross-split');
  const groups = new Map<string, ImageRef[]>();
  for (const ref of refs) {
    if (ref.role !== 'image') continue;
    const hash = records.get(ref.path)?.sha256;
    if (!hash) continue;
    const group = groups.get(hash);
    if (group) group.push(ref);
    else groups.set(hash, [ref]);
  }
  for (const [hash, group] of groups) {
    if (group.length < 2) continue;
    const ordered = [...group].sort((a, b) => SPLITS.indexOf(a.split) - SPLITS.indexOf(b.split));
    const first = ordered[0];
    const firstInSplit = new Map<string, ImageRef>();
    for (const ref of ordered) {
      const earlier = firstInSplit.get(ref.split);
      const example = { split: ref.split, file: display(ref.path), id: ref.id, field: 'sha256', value: hash.slice(0, 16) };
      if (ref.split !== first.split && !earlier) {
        findings.add('leakage.cross-split', { ...example, message: `same bytes as ${first.split} image ${display(first.path)}` });
      } else if (earlier) {
        findings.add('leakage.duplicate-within-split', { ...example, message: `same bytes as ${display(earlier.path)} in ${ref.split}` });
      }
      if (!earlier) firstInSplit.set(ref.split, ref);
    }
  }
}
