import { StepError } from '../../core/errors';
import { STAT_NAMES, type StatName } from '../../metrics/coco/params';
import type { ClassScore } from './scores';

export interface StoredMetrics {
  readonly value: number;
  readonly perClass: ClassScore[] | null;
  readonly testSet?: { images?: number; fingerprint?: string };
}

const FORMATS =
  'Use this step\'s report (reportFile) of the production model, `mlship eval coco|masks --json` output, or {"metric": "AP", "value": 0.51, "perClass": [{"id": 1, "value": 0.48}]}.';

function bad(file: string, message: string): never {
  throw new StepError(`Production metrics ${file}: ${message}`, { file, hint: FORMATS });
}

function metricValue(v: unknown, file: string, where: string): number | null {
  if (v === null || v === -1) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1)
    bad(file, `${where} is ${JSON.stringify(v)}; metrics are numbers in [0, 1].`);
  return v;
}

/** Reads the production model's stored metrics in any of the formats this project writes. */
export function parseStoredMetrics(json: unknown, file: string, metric: string): StoredMetrics {
  if (!json || typeof json !== 'object' || Array.isArray(json)) bad(file, 'is not a JSON object.');
  const o = json as Record<string, unknown>;
  // a gate report: the model it evaluated is "candidate"
  if (o.candidate && typeof o.candidate === 'object') return parseStoredMetrics(o.candidate, file, metric);
  const testSet = o.testSet && typeof o.testSet === 'object' ? (o.testSet as StoredMetrics['testSet']) : undefined;
  if (typeof o.metric === 'string') {
    if (o.metric !== metric) bad(file, `holds metric "${o.metric}" but the gate compares "${metric}".`);
    const value = metricValue(o.value, file, '"value"');
    if (value === null) bad(file, '"value" is missing.');
    return { value, perClass: parsePerClass(o.perClass, file, (c) => c.value), testSet };
  }
  if (Array.isArray(o.stats)) {
    const i = STAT_NAMES.indexOf(metric as StatName);
    if (i < 0 || o.stats.length !== 12) bad(file, `holds COCO stats, which do not include "${metric}".`);
    const value = metricValue(o.stats[i], file, `stats[${i}] (${metric})`);
    if (value === null) bad(file, `${metric} is -1 (nothing to evaluate).`);
    return { value, perClass: parsePerClass(o.perCategory, file, (c) => (Array.isArray(c.stats) ? c.stats[i] : undefined)), testSet };
  }
  if (metric in o) {
    const value = metricValue(o[metric], file, `"${metric}"`);
    if (value === null) bad(file, `"${metric}" is null.`);
    return { value, perClass: parsePerClass(o.perClass, file, (c) => c[metric]), testSet };
  }
  return bad(file, `has no "${metric}" value.`);
}

function parsePerClass(list: unknown, file: string, pick: (c: Record<string, unknown>) => unknown): ClassScore[] | null {
  if (list === undefined) return null;
  if (!Array.isArray(list)) bad(file, 'per-class values are not a list.');
  return list.map((c, i) => {
    if (!c || typeof c !== 'object') bad(file, `per-class entry ${i} is not an object.`);
    const r = c as Record<string, unknown>;
    const id = (r.id ?? r.label) as number | string | undefined;
    if (typeof id !== 'number' && typeof id !== 'string') bad(file, `per-class entry ${i} has no "id".`);
    return {
      id,
      name: typeof r.name === 'string' ? r.name : String(id),
      value: metricValue(pick(r), file, `per-class entry ${i} (id ${JSON.stringify(id)})`),
    };
  });
}
