import type { Findings } from './checks';
import type { LoadedSplit, SplitName } from './dataset';

export interface DistributionLimits {
  maxImbalance: number;
  maxUnlabeledShare: number;
  /** Segmentation has no empty-image notion beyond empty masks, which mask.empty-ratio covers. */
  checkUnlabeled: boolean;
}

/** Class balance per split, classes missing from a split, unused classes, and the share of unlabelled images. */
export function checkDistribution(
  loaded: readonly LoadedSplit[],
  classes: readonly string[],
  limits: DistributionLimits,
  findings: Findings,
): void {
  const splits = loaded.filter((s) => !s.unusable);
  findings.ran(
    'structure.category-unused',
    'distribution.imbalance',
    'distribution.class-missing-in-split',
    'distribution.class-missing-in-train',
  );
  if (limits.checkUnlabeled) findings.ran('distribution.unlabeled-share');
  const all = [...new Set([...classes, ...splits.flatMap((s) => Object.keys(s.stats.classCounts))])];
  const count = (s: LoadedSplit, c: string) => s.stats.classCounts[c] ?? 0;

  for (const c of classes) {
    if (splits.every((s) => count(s, c) === 0))
      findings.add('structure.category-unused', {
        field: 'class',
        value: c,
        message: `class "${c}" is declared but has no annotation in any split`,
      });
  }
  for (const s of splits) {
    const present = all
      .filter((c) => count(s, c) > 0)
      .map((c) => [c, count(s, c)] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (present.length >= 2) {
      const [most, least] = [present[0], present[present.length - 1]];
      const ratio = most[1] / least[1];
      if (ratio > limits.maxImbalance) {
        findings.add('distribution.imbalance', {
          split: s.split,
          field: 'classCounts',
          value: { most: most[0], mostCount: most[1], least: least[0], leastCount: least[1], ratio: +ratio.toFixed(2) },
          message: `"${most[0]}" has ${most[1]} and "${least[0]}" ${least[1]}: ratio ${ratio.toFixed(1)} > max-imbalance ${limits.maxImbalance}`,
        });
      }
    }
    if (limits.checkUnlabeled && s.stats.images > 0) {
      const share = s.stats.unlabeledImages / s.stats.images;
      if (share > limits.maxUnlabeledShare) {
        findings.add(
          'distribution.unlabeled-share',
          {
            split: s.split,
            field: 'unlabeledImages',
            value: +share.toFixed(4),
            message: `${s.stats.unlabeledImages} of ${s.stats.images} images (${(100 * share).toFixed(1)}%) have no label, over max-unlabeled-share ${limits.maxUnlabeledShare}`,
          },
          s.stats.unlabeledImages,
        );
      }
    }
  }
  const train = splits.find((s) => s.split === 'train');
  if (!train) return;
  const evalSplits = splits.filter((s) => s.split !== 'train' && s.stats.images > 0);
  for (const c of all) {
    for (const s of evalSplits) {
      const inTrain = count(train, c);
      const inEval = count(s, c);
      if (inTrain > 0 && inEval === 0) {
        findings.add('distribution.class-missing-in-split', {
          split: s.split,
          field: 'class',
          value: c,
          message: `"${c}" has ${inTrain} in train and none in ${s.split}`,
        });
      }
      if (inTrain === 0 && inEval > 0) {
        findings.add('distribution.class-missing-in-train', {
          split: s.split as SplitName,
          field: 'class',
          value: c,
          message: `"${c}" has ${inEval} in ${s.split} and none in train`,
        });
      }
    }
  }
}
