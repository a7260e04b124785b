import type { StepContext } from '../../core/context';
import { markdownTable } from '../../core/summary';
import type { ModelVersion } from '../../registry/types';
import { PALETTE } from '../../report/charts';
import type { BackendKind, JobStatus, MetricPoint } from '../../training/types';
import { formatDuration } from '../../training/wait';

/** What one submit-training run ended with: the job summary is written from this one object. */
export interface TrainingResult {
  kind: BackendKind;
  name: string;
  status: JobStatus;
  consoleUrl: string;
  logsUrl?: string;
  metrics?: Record<string, number>;
  history?: MetricPoint[];
  modelUri?: string;
  registered?: ModelVersion;
  hyperparameters?: Record<string, string | number | boolean>;
}

export function writeSummary(ctx: Pick<StepContext, 'summary'>, r: TrainingResult): void {
  const { kind, name, status, metrics, modelUri, registered } = r;
  const elapsed = status.startedAt && status.endedAt ? formatDuration(status.endedAt.getTime() - status.startedAt.getTime()) : undefined;
  const rows: (string | number | undefined)[][] = [
    ['Job', name],
    ['Backend', kind],
    ['Status', status.status],
    ['Training time', elapsed],
    ['Billable seconds', status.billableSeconds],
    ['Model', modelUri],
    ['Registered', registered ? `${registered.name} v${registered.version} (${registered.stage})` : undefined],
    ['Console', r.consoleUrl],
    ['Logs', r.logsUrl],
  ];
  if (status.failureReason) rows.push(['Failure', status.failureReason]);
  ctx.summary
    .heading(`Training ${status.state === 'completed' ? 'completed' : status.state}`)
    .fields(rows.filter((row) => row[1] !== undefined) as [string, string | number][]);
  const hps = Object.entries(r.hyperparameters ?? {});
  if (hps.length) ctx.summary.heading('Hyperparameters', 3).table(['name', 'value'], hps);
  const entries = Object.entries(metrics ?? {});
  if (entries.length) {
    const table = (list: [string, number][]) => list.map(([k, v]) => [k, Number(v.toPrecision(5))]);
    ctx.summary.heading('Final metrics', 3).table(['metric', 'value'], table(entries.slice(0, 20)));
    if (entries.length > 20) ctx.summary.details(`All ${entries.length} metrics`, markdownTable(['metric', 'value'], table(entries)));
  }
  trainingCurves(ctx, r.history ?? []);
}

/** One line chart per metric over epochs: loss and validation scores live on different scales. */
function trainingCurves(ctx: Pick<StepContext, 'summary'>, history: MetricPoint[]): void {
  if (history.length < 2) return;
  const names = [...new Set(history.flatMap((p) => Object.keys(p.values)))].slice(0, 6);
  ctx.summary.heading(`Training curves (${history.length} points)`, 3);
  for (const [i, metric] of names.entries()) {
    const points = history.filter((p) => metric in p.values).map((p) => [p.step, p.values[metric]] as const);
    if (points.length < 2) continue;
    ctx.summary.chart({
      kind: 'line',
      title: `${metric} during training`,
      x: { label: 'epoch or step' },
      y: { label: metric },
      series: [{ name: metric, points, color: PALETTE.series[i % PALETTE.series.length] }],
    });
  }
}
