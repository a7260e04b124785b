import type { StepContext } from './context';

/** How an input's raw string is parsed and how each platform presents it. */
export type InputType = 'string' | 'number' | 'boolean' | 'path' | 'enum' | 'secret' | 'list' | 'connection';

/**
 * Service-connection types an Azure DevOps task input can select (`connectedService:<type>`): the agent hands a
 * task a connection's credentials only through an input of that type. `AzureRM` is built in; `AWS` comes with the
 * AWS Toolkit for Azure DevOps.
 */
export type ConnectionType = 'AzureRM' | 'AWS';

/** Where an input exists: `connection` inputs only on Azure DevOps (GitHub and the CLI use OIDC and the environment). */
export type InputPlatform = 'github' | 'azure' | 'cli';

export interface InputSpec {
  readonly type: InputType;
  readonly description: string;
  readonly required?: boolean;
  readonly default?: string | number | boolean;
  /** Allowed values of an `enum` input. */
  readonly options?: readonly string[];
  /** Integer-only `number` inputs. */
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** The service-connection type of a `connection` input. */
  readonly connection?: ConnectionType;
}

export interface OutputSpec {
  readonly description: string;
}

export type InputSpecs = Readonly<Record<string, InputSpec>>;
export type OutputSpecs = Readonly<Record<string, OutputSpec>>;

type ValueOf<S extends InputSpec> = S['type'] extends 'number'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S['type'] extends 'list'
      ? string[]
      : S['type'] extends 'enum'
        ? S['options'] extends readonly (infer O)[]
          ? O
          : string
        : string;

type IsPresent<S extends InputSpec> = S['required'] extends true
  ? true
  : S extends { default: unknown }
    ? true
    : S['type'] extends 'boolean' | 'list'
      ? true
      : false;

/** The parsed inputs `run` receives: optional inputs without a default may be undefined. */
export type InputValues<I extends InputSpecs> = {
  readonly [K in keyof I]: IsPresent<I[K]> extends true ? ValueOf<I[K]> : ValueOf<I[K]> | undefined;
};

/** Outputs `run` returns; objects and arrays are written as JSON. */
export type OutputValues<O extends OutputSpecs> = { [K in keyof O]?: string | number | boolean | object };

export interface AzureTaskIdentity {
  /** Fixed for the life of the task: Azure DevOps keys installed tasks by this GUID. Never change it. */
  readonly id: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly category: 'Build' | 'Test' | 'Deploy' | 'Utility';
}

export interface StepDefinition<I extends InputSpecs = InputSpecs, O extends OutputSpecs = OutputSpecs> {
  /** kebab-case, e.g. `gate-metrics`: the action folder and the CLI command. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** Keys are camelCase (`groundTruth`); platforms derive their own spelling from them. */
  readonly inputs: I;
  readonly outputs: O;
  readonly azure: AzureTaskIdentity;
  /** Input the CLI also takes as a bare argument (`mlship verify-package pkg.tar.gz`). */
  readonly cliPositional?: keyof I & string;
  /** GitHub Marketplace branding. */
  readonly branding?: { icon: string; color: string };
  run(inputs: InputValues<I>, ctx: StepContext): Promise<OutputValues<O>>;
  /**
   * Runs after the job, also when it was cancelled (GitHub `post:`; Azure and the CLI call it on cancellation).
   * Sees the state `run` saved with ctx.saveState, e.g. a cloud job to stop.
   */
  post?(inputs: InputValues<I>, ctx: StepContext): Promise<void>;
}

/** The inputs a platform presents, in definition order. */
export function inputsOn(step: AnyStep, platform: InputPlatform): [string, InputSpec][] {
  return Object.entries(step.inputs as Record<string, InputSpec>).filter(([, spec]) => spec.type !== 'connection' || platform === 'azure');
}

/** Identity function that keeps the literal types of a definition, so `run` sees typed inputs. */
export function defineStep<const I extends InputSpecs, const O extends OutputSpecs>(def: StepDefinition<I, O>): StepDefinition<I, O> {
  return def;
}

// Erased form used by hosts, generators and the CLI, which handle every step alike.
export type AnyStep = StepDefinition<any, any>;
