import type { ProgressReport } from './host';

/**
 * Decides which progress reports are worth a log line: CI logs are read by people, so long uploads and
 * training waits print at most every few seconds, plus the first and the last report.
 */
export class ProgressThrottle {
  private readonly last = new Map<string, { at: number; percent: number }>();

  constructor(
    private readonly intervalMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  shouldPrint(report: ProgressReport): boolean {
    const percent = report.total ? Math.floor((100 * report.done) / report.total) : -1;
    const previous = this.last.get(report.label);
    const finished = report.total !== undefined && report.done >= report.total;
    const due = !previous || finished || this.now() - previous.at >= this.intervalMs;
    if (!due || (previous && previous.percent === percent && percent !== -1 && !finished)) return false;
    if (previous && finished && previous.percent === 100) return false;
    this.last.set(report.label, { at: this.now(), percent: finished ? 100 : percent });
    return true;
  }
}

export function percentOf(report: ProgressReport): number | undefined {
  return report.total ? Math.min(100, Math.floor((100 * report.done) / report.total)) : undefined;
}

export function formatProgress(report: ProgressReport): string {
  const amount = (n: number) => (report.unit === 'bytes' ? `${(n / 1048576).toFixed(1)} MB` : String(n));
  const percent = percentOf(report);
  const counts = report.total !== undefined ? `${amount(report.done)}/${amount(report.total)}` : amount(report.done);
  const head = percent !== undefined ? `${percent}% ${counts}` : counts;
  return `${report.label}: ${head}${report.message ? ` — ${report.message}` : ''}`;
}
