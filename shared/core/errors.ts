/**
 * An expected failure: bad input, a gate that did not pass, a service that said no.
 * Hosts print `message` and `hint` plainly, without a stack trace; anything else is a bug and keeps its stack.
 */
export class StepError extends Error {
  readonly hint?: string;
  /** File and position the failure is about, for an annotation on the platform. */
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /**
   * Outputs still set when the step fails, so a later step that runs anyway (`if: always()`, `condition:
   * always()`, `continue-on-error`) can read e.g. `passed=false` and the figures that failed.
   */
  readonly outputs?: Record<string, unknown>;

  constructor(
    message: string,
    options: { hint?: string; file?: string; line?: number; column?: number; cause?: unknown; outputs?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StepError';
    this.hint = options.hint;
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
    this.outputs = options.outputs;
  }
}

/** Bad usage of a step: a missing or malformed input. The CLI exits 2 for these. */
export class InputError extends StepError {
  constructor(message: string, options: { hint?: string } = {}) {
    super(message, options);
    this.name = 'InputError';
  }
}

export function isStepError(error: unknown): error is StepError {
  return error instanceof StepError;
}

/** Full text of an expected failure, hint included. */
export function describeStepError(error: StepError): string {
  return error.hint ? `${error.message}\n  → ${error.hint}` : error.message;
}
