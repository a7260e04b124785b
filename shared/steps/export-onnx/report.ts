import * as path from 'node:path';
import { StepError } from '../../core/errors';
import type { Summary } from '../../core/summary';
import { formatSignature } from '../../onnx/model-info';
import { formatError } from '../../onnx/parity';
import type { ExportResult, VariantParity } from './verify';

/** The job summary of an export and, when it is not faithful, the failure. Both read one ExportResult. */

export function failedVariants(r: ExportResult): VariantParity[] {
  return r.variants.filter((v) => v.cases.some((c) => !c.ok));
}

export function exportFailure(r: ExportResult): StepError | undefined {
  const failed = failedVariants(r);
  const problems = [...r.problems, ...failed.map(parityProblem)];
  if (!problems.length) return undefined;
  return new StepError(
    `The ONNX export of ${r.source} is not faithful:\n- ${problems.join('\n- ')}\n(The rejected model is at ${r.modelFile}.)`,
    {
      hint: failureHint(failed),
    },
  );
}

/** What to do: about ties when every failing output only came out in another order, else the general advice. */
function failureHint(failed: VariantParity[]): string {
  if (!failed.length) return 'Fix the export inputs named above.';
  if (failed.every((v) => v.cases.every((c) => c.outputs.every((o) => o.ok || o.reordered))))
    return 'Rows that agree in another order mean the model sorts by a key with ties (e.g. detection scores), and ONNX Runtime breaks ties differently from PyTorch: return the rows in an order that depends on their values only (sort by score, then by box), as docs/export-onnx.md shows; do not loosen atol/rtol for this.';
  return 'A parity failure means the ONNX graph computes something else than PyTorch: look for operators that trace differently (data-dependent Python branches, torch.onnx.is_in_onnx_export, in-place ops), or loosen atol/rtol only if the differences are numerical noise.';
}

function parityProblem(v: VariantParity): string {
  const bad = v.cases.filter((c) => !c.ok);
  const details = bad.slice(0, 4).map((c) => {
    const o = c.outputs.find((x) => !x.ok)!;
    if (o.shape)
      return `${c.name}: output ${o.output} has shape [${o.shape.actual.join(', ')}], PyTorch gave [${o.shape.expected.join(', ')}]`;
    const w = o.worst!;
    const order = o.reordered ? ' — the same rows in another order (equal sort keys, e.g. detections with tied scores)' : '';
    return `${c.name}: output ${o.output} differs in ${o.mismatches} of ${o.elements} values (max abs ${formatError(o.maxAbs)}, max rel ${formatError(o.maxRel)}; at [${w.index.join(', ')}] PyTorch ${w.expected.toPrecision(6)}, ONNX Runtime ${w.actual.toPrecision(6)})${order}`;
  });
  return `${v.name} parity fails (atol ${v.tol.atol}, rtol ${v.tol.rtol}) in ${bad.length} of ${v.cases.length} cases: ${details.join('; ')}`;
}

export function writeSummary(s: Summary, r: ExportResult): void {
  const { info, python } = r;
  s.heading(`ONNX export: ${path.basename(r.output)}`);
  s.table(
    ['property', 'value'],
    [
      ['opset', info.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')],
      ['IR version', info.irVersion],
      ['producer', `${info.producerName} ${info.producerVersion}`],
      ['exporter', `torch ${python.torchVersion} (${python.exporter}), onnx ${python.onnxVersion}`],
      [
        'nodes',
        `${info.nodeCount} (${Object.entries(info.opTypes)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 8)
          .map(([op, n]) => `${op}×${n}`)
          .join(', ')})`,
      ],
      ['parameters', info.parameterCount],
      ...(python.fp16
        ? [
            [
              'FP16 variant',
              `${python.fp16.convertedNodes} nodes FP16, ${python.fp16.keptNodes} FP32, ${python.fp16.clampedValues} weights clamped`,
            ] as [string, string],
          ]
        : []),
    ],
  );
  s.table(
    ['', 'signature'],
    [...info.inputs.map((i) => ['input', formatSignature(i)]), ...info.outputs.map((o) => ['output', formatSignature(o)])],
  );
  const rows: (string | number)[][] = [];
  for (const v of r.variants) {
    for (const c of v.cases) {
      for (const o of c.outputs) {
        rows.push([
          v.name,
          c.name,
          Object.values(c.inputShapes)
            .map((d) => d.join('×'))
            .join(', '),
          o.output,
          formatError(o.maxAbs),
          formatError(o.maxRel),
          o.mismatches,
          o.ok ? '✅' : '❌',
        ]);
      }
    }
  }
  s.heading('Parity (ONNX Runtime vs PyTorch)', 3);
  s.table(['variant', 'case', 'input', 'output', 'max abs', 'max rel', 'mismatches', ''], rows);
  const prov = Object.entries(r.provenance).filter(([, v]) => v);
  if (prov.length)
    s.details(
      'Provenance in metadata_props',
      prov.map(([k, v]) => `- \`${k}\`: ${String(v).length > 120 ? `${String(v).slice(0, 117)}…` : v}`).join('\n'),
    );
}
