import * as fs from 'node:fs';
import * as path from 'node:path';
import { runStep } from '../core/runtime';
import type { AnyStep } from '../core/step';
import { LocalHost } from '../hosts/local-host';
import type { ReportSection } from '../report/release-report';

export interface DemoStepResult {
  outputs: Record<string, string>;
  section: ReportSection;
}

/**
 * Runs a shipped step in-process on the local host, exactly as `mlship <step>` does, with its log in
 * `<dir>/logs/<label>.log` and its job summary kept for the release report (`<label>.summary.md`, HTML flavor)
 * and as GitHub and Azure DevOps would show it (`<label>.summary.github.md`, `<label>.summary.azure-devops.md`).
 */
export class DemoStepRunner {
  readonly sections: ReportSection[] = [];

  constructor(
    private readonly dir: string,
    private readonly print: (line: string) => void,
    private readonly total: number,
  ) {}

  private index = 0;

  async run(
    step: AnyStep,
    inputs: Record<string, string | number | boolean | undefined>,
    options: { label?: string; title?: string; mayFail?: boolean } = {},
  ): Promise<DemoStepResult> {
    const label = options.label ?? step.name;
    const logFile = path.join(this.dir, 'logs', `${label}.log`);
    const summaryFile = path.join(this.dir, 'logs', `${label}.summary.md`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    fs.writeFileSync(logFile, '');
    // The report needs the HTML rendering (inline SVG, embedded galleries); the two CI renderings are kept beside
    // it, as GitHub (Mermaid) and Azure DevOps (tables) would show them.
    const extraSummaryFiles = {
      github: path.join(this.dir, 'logs', `${label}.summary.github.md`),
      'azure-devops': path.join(this.dir, 'logs', `${label}.summary.azure-devops.md`),
    };
    for (const file of [summaryFile, ...Object.values(extraSummaryFiles)]) fs.writeFileSync(file, '');
    const raw = Object.fromEntries(
      Object.entries(inputs)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, String(v)]),
    );
    const host = new LocalHost({
      inputs: raw,
      workspace: this.dir,
      summaryFile,
      summaryFlavor: 'html',
      extraSummaryFiles,
      write: (line) => fs.appendFileSync(logFile, line + '\n'),
    });
    const started = Date.now();
    this.index++;
    const prefix = `[${String(this.index).padStart(2)}/${this.total}] ${label.padEnd(22)}`;
    const outcome = await runStep(step, host, new AbortController().signal);
    const seconds = (Date.now() - started) / 1000;
    const section: ReportSection = {
      step: step.name,
      title: options.title ?? step.title,
      status: outcome.ok ? 'passed' : 'failed',
      seconds,
      markdown: fs.readFileSync(summaryFile, 'utf8'),
      outputs: outcome.ok ? outcome.outputs : { error: outcome.message },
    };
    this.sections.push(section);
    if (!outcome.ok) {
      this.print(`${prefix} failed (${seconds.toFixed(1)} s)\n${indent(outcome.message)}\n    log: ${logFile}`);
      if (!options.mayFail) throw new DemoFailure(`${label} failed: ${outcome.message}`);
      return { outputs: {}, section };
    }
    this.print(`${prefix} ok (${seconds.toFixed(1)} s)`);
    return { outputs: outcome.outputs, section };
  }

  /** A stage of the demo that is not a step (data generation, inference); counted and reported alike. */
  async task<T>(label: string, title: string, fn: () => Promise<{ value: T; markdown: string; detail?: string }>): Promise<T> {
    this.index++;
    const started = Date.now();
    const prefix = `[${String(this.index).padStart(2)}/${this.total}] ${label.padEnd(22)}`;
    const { value, markdown, detail } = await fn();
    const seconds = (Date.now() - started) / 1000;
    this.sections.push({ step: label, title, status: 'passed', seconds, markdown });
    this.print(`${prefix} ok (${seconds.toFixed(1)} s)${detail ? ` — ${detail}` : ''}`);
    return value;
  }
}

export class DemoFailure extends Error {}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
