import { createContext } from './context';
import { describeStepError, InputError, isStepError } from './errors';
import type { Host } from './host';
import { parseInputs } from './inputs';
import type { AnyStep } from './step';
import { Summary, type SummaryFlavor } from './summary';

interface Written {
  outputs: Record<string, string>;
  values: Record<string, unknown>;
}

/** A failed run still carries the outputs the step set before failing (e.g. `passed: false` and the metrics). */
export type StepOutcome = ({ ok: true } & Written) | ({ ok: false; usage: boolean; message: string } & Written);

/**
 * The one place a step runs: parse inputs, run, write outputs and summary, and turn any failure into the
 * host's failure. Entry points call this and nothing else; no other module catches to hide an error.
 */
export async function runStep(step: AnyStep, host: Host, signal: AbortSignal = cancellationSignal()): Promise<StepOutcome> {
  const summary = new Summary();
  try {
    const inputs = parseInputs(step, host);
    const ctx = createContext(host, signal, summary);
    const result = (await step.run(inputs, ctx)) ?? {};
    return { ok: true, ...writeOutputs(step, host, result) };
  } catch (error) {
    const written = isStepError(error) && error.outputs ? writeOutputs(step, host, error.outputs) : { outputs: {}, values: {} };
    const message = isStepError(error) ? describeStepError(error) : error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (isStepError(error) && error.file) host.error(error.message, { file: error.file, line: error.line, column: error.column });
    host.setFailed(message);
    return { ok: false, usage: error instanceof InputError, message, ...written };
  } finally {
    if (!summary.isEmpty) await host.appendSummary(summary.toMarkdown(summaryFlavorOf(host)), summary);
  }
}

export function summaryFlavorOf(host: Host): SummaryFlavor {
  return host.summaryFlavor ?? (host.platform === 'azure' ? 'azure-devops' : 'github');
}

function writeOutputs(step: AnyStep, host: Host, result: Record<string, unknown>): Written {
  const outputs: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const key of Object.keys(step.outputs)) {
    const value = result[key];
    if (value === undefined) continue;
    values[key] = value;
    outputs[key] = typeof value === 'string' ? value : JSON.stringify(value);
    host.setOutput(key, outputs[key]);
  }
  return { outputs, values };
}

/** Aborts on the signals runners send when a job is cancelled, so steps can stop cloud work first. */
export function cancellationSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (!controller.signal.aborted) controller.abort(new Error(`cancelled by ${name}`));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller.signal;
}

/**
 * Runs a step's `post` hook: GitHub's `post:` entry, and on other hosts after a cancelled run. Inputs are
 * parsed again because the post process starts fresh.
 */
export async function runPost(step: AnyStep, host: Host, signal: AbortSignal = new AbortController().signal): Promise<void> {
  if (!step.post) return;
  try {
    const inputs = parseInputs(step, host);
    await step.post(inputs, createContext(host, signal));
  } catch (error) {
    host.setFailed(isStepError(error) ? describeStepError(error) : error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
}
