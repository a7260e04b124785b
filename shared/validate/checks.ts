/**
 * Every check validate-data can report, with its stable id and default severity. Ids are part of the public
 * contract: reports, baselines and user suppressions refer to them, so they are never renamed.
 */
export type Severity = 'error' | 'warning';

export const CHECKS = {
  'structure.parse-error': { severity: 'error', title: 'Annotation or config file does not parse' },
  'structure.schema': { severity: 'error', title: 'Required field missing or of the wrong type' },
  'structure.category-unused': { severity: 'warning', title: 'Declared class without any annotation' },
  'coco.duplicate-image-id': { severity: 'error', title: 'Duplicate image id' },
  'coco.duplicate-annotation-id': { severity: 'error', title: 'Duplicate annotation id' },
  'coco.duplicate-category-id': { severity: 'error', title: 'Duplicate category id' },
  'coco.unknown-image': { severity: 'error', title: 'Annotation points at an unknown image' },
  'coco.unknown-category': { severity: 'error', title: 'Annotation points at an unknown category' },
  'yolo.unknown-class': { severity: 'error', title: 'Class index not in the class list' },
  'yolo.orphan-label': { severity: 'warning', title: 'Label file without an image' },
  'voc.unknown-class': { severity: 'error', title: 'Object class not in the class list' },
  'image.missing': { severity: 'error', title: 'Image file missing' },
  'image.unreadable': { severity: 'error', title: 'Image file unreadable or corrupt' },
  'image.truncated': { severity: 'error', title: 'Image file truncated' },
  'image.unsupported-format': { severity: 'error', title: 'Unsupported image format' },
  'image.size-mismatch': { severity: 'error', title: 'Image size differs from the annotation' },
  'image.unusual-bit-depth': { severity: 'warning', title: 'Bit depth differs from the rest of the set' },
  'image.unusual-channels': { severity: 'warning', title: 'Channel count differs from the rest of the set' },
  'geometry.non-finite': { severity: 'error', title: 'NaN or infinite coordinate' },
  'geometry.box-degenerate': { severity: 'error', title: 'Box with zero or negative size' },
  'geometry.box-outside': { severity: 'error', title: 'Box outside the image' },
  'geometry.box-tiny': { severity: 'warning', title: 'Box smaller than min-box-size' },
  'geometry.polygon-too-few-points': { severity: 'error', title: 'Polygon with fewer than 3 points' },
  'geometry.polygon-outside': { severity: 'error', title: 'Polygon outside the image' },
  'geometry.rle-size-mismatch': { severity: 'error', title: 'RLE size or counts do not match the image' },
  'geometry.yolo-out-of-range': { severity: 'error', title: 'YOLO coordinate outside [0, 1]' },
  'mask.missing': { severity: 'error', title: 'Image without a mask' },
  'mask.orphan': { severity: 'warning', title: 'Mask without an image' },
  'mask.size-mismatch': { severity: 'error', title: 'Mask size differs from its image' },
  'mask.undeclared-label': { severity: 'error', title: 'Mask value not in the class list' },
  'mask.empty-ratio': { severity: 'warning', title: 'Too many empty masks' },
  'distribution.imbalance': { severity: 'warning', title: 'Class imbalance over max-imbalance' },
  'distribution.class-missing-in-split': { severity: 'warning', title: 'Class in train but absent from val/test' },
  'distribution.class-missing-in-train': { severity: 'warning', title: 'Class in val/test but absent from train' },
  'distribution.unlabeled-share': { severity: 'warning', title: 'Too many images without labels' },
  'leakage.duplicate-within-split': { severity: 'warning', title: 'Byte-identical images within a split' },
  'leakage.cross-split': { severity: 'error', title: 'Byte-identical images across splits' },
  'drift.class-psi': { severity: 'warning', title: 'Class distribution shifted (PSI)' },
  'drift.class-chi-square': { severity: 'warning', title: 'Class distribution shifted (chi-square)' },
  'drift.image-size': { severity: 'warning', title: 'Image size distribution shifted' },
  'drift.brightness': { severity: 'warning', title: 'Image brightness shifted' },
  'drift.contrast': { severity: 'warning', title: 'Image contrast shifted' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type CheckId = keyof typeof CHECKS;

/** One offending item: where it is and what value made it fail. */
export interface Example {
  split?: string;
  /** Display path (relative to the workspace when inside it). */
  file?: string;
  id?: string | number;
  field?: string;
  value?: unknown;
  message: string;
  line?: number;
  column?: number;
}

export interface CheckResult {
  id: CheckId;
  severity: Severity;
  title: string;
  count: number;
  examples: Example[];
}

/** Collects findings: a count per check and its first examples, so a million bad boxes cost a counter, not memory. */
export class Findings {
  private readonly counts = new Map<CheckId, number>();
  private readonly examples = new Map<CheckId, Example[]>();
  private readonly evaluated = new Set<CheckId>();

  constructor(
    private readonly maxExamples = 5,
    private readonly severities: Partial<Record<CheckId, Severity>> = {},
  ) {}

  /** Marks checks as evaluated, so a clean run still lists them with a zero count. */
  ran(...ids: CheckId[]): void {
    for (const id of ids) this.evaluated.add(id);
  }

  add(id: CheckId, example: Example, count = 1): void {
    this.evaluated.add(id);
    this.counts.set(id, (this.counts.get(id) ?? 0) + count);
    const list = this.examples.get(id) ?? [];
    if (list.length < this.maxExamples) list.push(compactExample(example));
    this.examples.set(id, list);
  }

  /**
   * A fresh collector with the same limits. A loader reports into one and hands it over with `absorb` only
   * when its file turned out readable, so a syntax error near the end does not come with half a file's findings.
   */
  scope(): Findings {
    return new Findings(this.maxExamples, this.severities);
  }

  absorb(other: Findings): void {
    for (const id of other.evaluated) this.evaluated.add(id);
    for (const [id, count] of other.counts) this.counts.set(id, this.count(id) + count);
    for (const [id, examples] of other.examples) {
      const list = this.examples.get(id) ?? [];
      list.push(...examples.slice(0, Math.max(0, this.maxExamples - list.length)));
      this.examples.set(id, list);
    }
  }

  count(id: CheckId): number {
    return this.counts.get(id) ?? 0;
  }

  severity(id: CheckId): Severity {
    return this.severities[id] ?? CHECKS[id].severity;
  }

  /** Evaluated checks in registry order. */
  results(): CheckResult[] {
    return (Object.keys(CHECKS) as CheckId[])
      .filter((id) => this.evaluated.has(id))
      .map((id) => ({
        id,
        severity: this.severity(id),
        title: CHECKS[id].title,
        count: this.count(id),
        examples: this.examples.get(id) ?? [],
      }));
  }
}

/** Keeps examples small in the report: long arrays and strings are cut. */
function compactExample(example: Example): Example {
  const out: Example = { ...example };
  if (out.value !== undefined) out.value = compactValue(out.value, 0);
  for (const key of Object.keys(out) as (keyof Example)[]) if (out[key] === undefined) delete out[key];
  return out;
}

function compactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  if (Array.isArray(value)) {
    // Arrays count towards the depth too: a finding's value may be a slice of a hostile file nested 5,000 deep.
    if (depth > 8) return value.length ? `[…(${value.length} items)]` : [];
    const head = value.slice(0, 12).map((v) => compactValue(v, depth + 1));
    return value.length > 12 ? [...head, `…(${value.length} items)`] : head;
  }
  if (value && typeof value === 'object') {
    if (depth > 2) return '{…}';
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value).slice(0, 12)) out[k] = compactValue(v, depth + 1);
    return out;
  }
  return value;
}
