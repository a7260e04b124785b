import { StepError } from '../core/errors';
import type { OnnxModelInfo, OnnxValueInfo } from '../onnx/model-info';
import { modelTask, type TaskKind } from '../onnx/task-kind';
import { channelsOf, type PreprocessSpec, validatePreprocessSpec } from '../preprocess/spec';

/**
 * What build-device-package checks before it signs: that the files of one package cannot contradict each other.
 * Each check yields mismatches naming both values and where each came from; the build fails on any of them unless
 * the user allowed that check to mismatch (`allow-mismatch`), and then the manifest records what was let through.
 */

export const MISMATCH_CHECKS = [
  'preprocessing-metadata',
  'preprocessing-input',
  'labels-output',
  'task',
  'report-model',
  'data-fingerprint',
] as const;
export type MismatchCheck = (typeof MISMATCH_CHECKS)[number];

export interface Mismatch {
  check: MismatchCheck;
  message: string;
}

export interface CheckedModel {
  /** Path in the package (models/<file>) and on disk. */
  archivePath: string;
  source: string;
  info: OnnxModelInfo;
}

export interface SourcedSpec {
  spec: PreprocessSpec;
  /** e.g. `preprocessing.json (input preprocessing: spec.json)` */
  source: string;
}

export interface SourcedLabels {
  classes: number;
  /** Class ids when the class map names them ({"1": "cell"}, COCO categories); else 0..classes-1. */
  ids: number[];
  source: string;
}

export interface SourcedReport {
  /** `gate report` / `benchmark report` */
  kind: string;
  file: string;
  value: Record<string, unknown>;
}

export function parseAllowedMismatches(values: readonly string[], label: string): Set<MismatchCheck> {
  const out = new Set<MismatchCheck>();
  for (const v of values) {
    if (!(MISMATCH_CHECKS as readonly string[]).includes(v)) {
      throw new StepError(`"${label}" names the check "${v}", which does not exist.`, {
        hint: `Name one or more of ${MISMATCH_CHECKS.join(', ')}, one per line.`,
      });
    }
    out.add(v as MismatchCheck);
  }
  return out;
}

const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));

/** Spec fields with their documented defaults filled in, so `{}` and `{"bitDepth": "auto"}` compare equal. */
function normalizedSpec(spec: PreprocessSpec): Record<string, unknown> {
  const channels = channelsOf(spec);
  const perChannel = (list: number[] | undefined, fallback: number) =>
    list === undefined ? Array<number>(channels).fill(fallback) : list.length === 1 ? Array<number>(channels).fill(list[0]) : list;
  const resize = spec.resize && {
    width: spec.resize.width,
    height: spec.resize.height,
    fit: spec.resize.fit ?? 'stretch',
    interpolation: spec.resize.interpolation ?? 'linear',
    padValue: spec.resize.padValue ?? 0,
  };
  return {
    inputName: spec.inputName,
    color: spec.color,
    bitDepth: spec.bitDepth ?? 'auto',
    resize,
    maxValue: spec.maxValue,
    mean: spec.dtype === 'uint8' ? undefined : perChannel(spec.mean, 0),
    std: spec.dtype === 'uint8' ? undefined : perChannel(spec.std, 1),
    layout: spec.layout,
    dtype: spec.dtype,
  };
}

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, value);
}

/** The packaged spec against the spec export-onnx stamped into the model (metadata mlship.preprocessing). */
export function checkSpecAgainstMetadata(model: CheckedModel, spec: SourcedSpec): Mismatch[] {
  const stamped = model.info.metadata['mlship.preprocessing'];
  if (stamped === undefined) return [];
  const where = `metadata mlship.preprocessing of ${model.source}`;
  let parsed: PreprocessSpec;
  try {
    parsed = validatePreprocessSpec(JSON.parse(stamped), where);
  } catch (error) {
    return [
      {
        check: 'preprocessing-metadata',
        message: `${where} is not a valid preprocessing spec (${(error as Error).message}), so it cannot be compared with ${spec.source}`,
      },
    ];
  }
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  flatten(normalizedSpec(spec.spec), '', a);
  flatten(normalizedSpec(parsed), '', b);
  const differences: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) differences.push(`${key} ${show(x)} vs ${show(y)}`);
  }
  if (differences.length === 0) return [];
  return [
    {
      check: 'preprocessing-metadata',
      message: `${spec.source} differs from the spec in ${where}: ${differences.join('; ')} (packaged value first)`,
    },
  ];
}

function dims(v: OnnxValueInfo): string {
  return v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : '[?]';
}

/** Channels, layout, size and element type of the spec against the model input it feeds. */
export function checkSpecAgainstInput(model: CheckedModel, spec: SourcedSpec): Mismatch[] {
  const s = spec.spec;
  const name = s.inputName ?? model.info.inputs[0]?.name;
  const input = model.info.inputs.find((i) => i.name === name);
  const out: Mismatch[] = [];
  const fail = (message: string) => out.push({ check: 'preprocessing-input', message });
  if (!input) {
    fail(
      `${spec.source} feeds the input "${name}", but ${model.source} has inputs ${model.info.inputs.map((i) => `"${i.name}"`).join(', ') || '(none)'}`,
    );
    return out;
  }
  const where = `input ${input.name} ${dims(input)} of ${model.source}`;
  if (input.dtype !== null && input.dtype !== s.dtype) fail(`${spec.source} makes ${s.dtype} tensors, but ${where} is ${input.dtype}`);
  if (input.shape === null) return out;
  if (input.shape.length !== 4) {
    fail(`${spec.source} makes a rank-4 ${s.layout} tensor, but ${where} has rank ${input.shape.length}`);
    return out;
  }
  const [c, h, w] = s.layout === 'NCHW' ? [1, 2, 3] : [3, 1, 2];
  const channels = channelsOf(s);
  const dim = input.shape;
  if (typeof dim[c] === 'number' && dim[c] !== channels) {
    fail(
      `${spec.source} makes ${channels}-channel tensors (color ${s.color}, layout ${s.layout}: channel axis ${c}), but ${where} takes ${dim[c]} channel(s) on that axis`,
    );
  }
  if (s.resize) {
    for (const [axis, want, what] of [
      [h, s.resize.height, 'height'],
      [w, s.resize.width, 'width'],
    ] as const) {
      if (typeof dim[axis] === 'number' && dim[axis] !== want)
        fail(`${spec.source} resizes to ${what} ${want}, but ${where} has a fixed ${what} of ${dim[axis]}`);
    }
  }
  return out;
}

/** The class map against what the model predicts. */
export function checkLabelsAgainstOutputs(model: CheckedModel, labels: SourcedLabels, task: TaskKind | undefined): Mismatch[] {
  const out: Mismatch[] = [];
  const fail = (message: string) => out.push({ check: 'labels-output', message });
  const info = model.info;
  const names = info.metadata.names;
  if (names !== undefined && info.metadata.task !== undefined) {
    // ultralytics: names is a Python dict literal, {0: 'person', 1: 'bicycle', ...}
    const count = (names.match(/(?:^|[{,])\s*\d+\s*:/g) ?? []).length;
    if (count > 0 && count !== labels.classes)
      fail(`${labels.source} has ${labels.classes} classes, but metadata names of ${model.source} lists ${count}`);
  }
  if (task === 'segmentation') {
    const output = info.outputs.find((o) => o.shape?.length === 4) ?? info.outputs[0];
    const channels = output?.shape?.[1];
    if (typeof channels === 'number') {
      const fits = channels === labels.classes || (channels === 1 && labels.classes === 2);
      if (!fits) {
        const expect = channels === 1 ? '2 (background and foreground: a 1-channel output is a foreground probability)' : String(channels);
        fail(
          `${labels.source} has ${labels.classes} classes, but output ${output!.name} ${dims(output!)} of ${model.source} has ${channels} channel(s), which fits ${expect}`,
        );
      }
    }
  }
  return out;
}

/** Label ids a detector produced on the golden images must name classes of the class map. */
export function checkDetectedLabels(
  model: CheckedModel,
  labels: SourcedLabels,
  output: string,
  values: Iterable<number>,
  caseName: string,
): Mismatch[] {
  const known = new Set(labels.ids);
  const bad = new Set<number>();
  for (const v of values) if (!known.has(v)) bad.add(v);
  if (bad.size === 0) return [];
  const ids = labels.ids.length > 12 ? `${labels.ids.slice(0, 12).join(', ')}, …` : labels.ids.join(', ');
  return [
    {
      check: 'labels-output',
      message: `output ${output} of ${model.source} predicted label(s) ${[...bad]
        .sort((a, b) => a - b)
        .slice(0, 10)
        .join(', ')} on golden case ${caseName}, which ${labels.source} does not define (ids ${ids})`,
    },
  ];
}

/** Task kind of each model and report, where each says: all must agree. */
export function checkTasks(models: readonly CheckedModel[], reports: readonly SourcedReport[]): Mismatch[] {
  const claims: { task: string; source: string }[] = [];
  for (const m of models) {
    const t = modelTask(m.info);
    if (t) claims.push({ task: t.task, source: `${m.source} (${t.source})` });
  }
  for (const r of reports) {
    const t = r.value.task;
    if (typeof t === 'string') claims.push({ task: t, source: `the ${r.kind} ${r.file} (task)` });
  }
  const first = claims[0];
  const other = claims.find((c) => c.task !== first?.task);
  if (!first || !other) return [];
  return [{ check: 'task', message: `${first.source} is ${first.task}, but ${other.source} is ${other.task}` }];
}

export function taskOf(models: readonly CheckedModel[], reports: readonly SourcedReport[]): TaskKind | undefined {
  for (const m of models) {
    const t = modelTask(m.info);
    if (t) return t.task;
  }
  for (const r of reports) if (r.value.task === 'segmentation' || r.value.task === 'detection') return r.value.task;
  return undefined;
}

/** Every report names the sha256 of the model it evaluated (report.model.sha256), which must be a packaged model's. */
export function checkReportModels(reports: readonly SourcedReport[], packaged: readonly { path: string; sha256: string }[]): Mismatch[] {
  const out: Mismatch[] = [];
  const list = packaged.map((p) => `${p.path} ${p.sha256}`).join(', ');
  for (const r of reports) {
    const model = r.value.model as { sha256?: unknown; path?: unknown } | null | undefined;
    const sha = typeof model?.sha256 === 'string' ? model.sha256 : undefined;
    if (!sha) {
      out.push({
        check: 'report-model',
        message: `the ${r.kind} ${r.file} does not name the sha256 of the model it evaluated (model.sha256), so it cannot be shown to be about the packaged model (${list})`,
      });
    } else if (!packaged.some((p) => p.sha256 === sha)) {
      out.push({
        check: 'report-model',
        message: `the ${r.kind} ${r.file} evaluated the model with sha256 ${sha}${typeof model?.path === 'string' ? ` (${model.path})` : ''}, but the package holds ${list}`,
      });
    }
  }
  return out;
}

/** The data fingerprint of the package provenance, the models' metadata and the reports, where each has one. */
export function checkDataFingerprints(
  provenance: string | undefined,
  models: readonly CheckedModel[],
  reports: readonly SourcedReport[],
): Mismatch[] {
  const claims: { value: string; source: string }[] = [];
  if (provenance) claims.push({ value: provenance, source: 'the data-fingerprint input' });
  for (const m of models) {
    const v = m.info.metadata['mlship.data_fingerprint'];
    if (v) claims.push({ value: v, source: `metadata mlship.data_fingerprint of ${m.source}` });
  }
  for (const r of reports) {
    const v = r.value.dataFingerprint;
    if (typeof v === 'string' && v !== '') claims.push({ value: v, source: `the ${r.kind} ${r.file} (dataFingerprint)` });
  }
  const first = claims[0];
  const other = claims.find((c) => c.value !== first?.value);
  if (!first || !other) return [];
  return [{ check: 'data-fingerprint', message: `${first.source} is ${first.value}, but ${other.source} is ${other.value}` }];
}

/** Fails on every mismatch not allowed; returns the allowed ones for the manifest. */
export function settleMismatches(found: readonly Mismatch[], allowed: ReadonlySet<MismatchCheck>, allowLabel: string): Mismatch[] {
  const refused = found.filter((m) => !allowed.has(m.check));
  if (refused.length > 0) {
    const lines = refused.map((m) => `- ${m.check}: ${m.message}`).join('\n');
    throw new StepError(`The package would contradict itself (${refused.length} mismatch${refused.length === 1 ? '' : 'es'}):\n${lines}`, {
      hint: `Fix the file named on the wrong side; for a deliberate exception, list the check in "${allowLabel}" (${[...new Set(refused.map((m) => m.check))].join(', ')}) and the manifest will record it.`,
    });
  }
  return found.map((m) => ({ check: m.check, message: m.message }));
}
