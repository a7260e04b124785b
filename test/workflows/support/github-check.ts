import * as YAML from 'yaml';
import { kebabCase } from '../../../shared/core/names';
import type { AnyStep, InputSpec } from '../../../shared/core/step';
import type { AccessPath } from './github-parser';
import { literalValueError, nearest, requiredInputs, type StepCatalog } from './step-definitions';

/**
 * What GitHub's parser cannot know: that `uses: mlship/mlship/actions/<step>@v1` gets only inputs of that step
 * and all its required ones, that every `steps.<id>.outputs.<name>` / `needs.<job>.outputs.<name>` /
 * `jobs.<job>.outputs.<name>` names an output that exists, that reusable workflows are called with their declared
 * inputs and secrets, and that every downloaded artifact is uploaded by a job this one waits for.
 */
export interface GithubCheckContext {
  catalog: StepCatalog;
  accessPaths(expression: string): AccessPath[];
  /** The workflow a `jobs.<id>.uses` reference calls, when it is one of ours; undefined for others. */
  resolveReusable(uses: string): { file: string; doc: Workflow } | undefined;
}

type Mapping = Record<string, unknown>;
export interface Workflow {
  on?: Mapping | string | string[];
  permissions?: unknown;
  concurrency?: unknown;
  jobs: Record<string, Job>;
}
export interface Job extends Mapping {
  needs?: string | string[];
  uses?: string;
  with?: Mapping;
  secrets?: Mapping | 'inherit';
  outputs?: Record<string, string>;
  steps?: Step[];
  environment?: unknown;
  permissions?: unknown;
}
export interface Step extends Mapping {
  id?: string;
  uses?: string;
  run?: string;
  with?: Mapping;
}

const MLSHIP_ACTION = /^mlship\/mlship\/actions\/([a-z0-9-]+)@(.+)$/;
const EXPRESSION = /\$\{\{(.*?)\}\}/gs;
const GITHUB_OUTPUT_WRITE = /echo\s+["']?([A-Za-z_][A-Za-z0-9_-]*)=[^\n]*>>\s*"?\$GITHUB_OUTPUT/g;

export function parseWorkflowYaml(text: string): Workflow {
  return YAML.parse(text, { uniqueKeys: true }) as Workflow;
}

export function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

export function mlshipStepOf(step: Step, catalog: StepCatalog): AnyStep | undefined {
  const match = typeof step.uses === 'string' ? MLSHIP_ACTION.exec(step.uses) : null;
  return match ? catalog.byName.get(match[1]!) : undefined;
}

function workflowCall(doc: Workflow): Mapping | undefined {
  return doc.on && typeof doc.on === 'object' && !Array.isArray(doc.on)
    ? (((doc.on as Mapping).workflow_call as Mapping | undefined) ?? undefined)
    : undefined;
}

/** Outputs a job exposes to `needs.<job>.outputs`: its own map, or the called workflow's declared outputs. */
function jobOutputs(job: Job, ctx: GithubCheckContext): Set<string> | undefined {
  if (job.uses) {
    const called = ctx.resolveReusable(job.uses);
    if (!called) return undefined;
    return new Set(Object.keys((workflowCall(called.doc)?.outputs as Mapping | undefined) ?? {}));
  }
  return new Set(Object.keys(job.outputs ?? {}));
}

/** Names a step writes to $GITHUB_OUTPUT (run steps) or declares (mlship steps); undefined when unknowable. */
function stepOutputs(step: Step, ctx: GithubCheckContext): Set<string> | undefined {
  const def = mlshipStepOf(step, ctx.catalog);
  if (def) return new Set(Object.keys(def.outputs).map(kebabCase));
  if (typeof step.run === 'string') return new Set([...step.run.matchAll(GITHUB_OUTPUT_WRITE)].map((m) => m[1]!));
  return undefined;
}

function expressionsIn(value: unknown, key?: string): string[] {
  if (typeof value === 'string') {
    const found = [...value.matchAll(EXPRESSION)].map((m) => m[1]!);
    // `if:` is an expression even without ${{ }}.
    return key === 'if' && found.length === 0 ? [value] : found;
  }
  if (Array.isArray(value)) return value.flatMap((v) => expressionsIn(v));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => expressionsIn(v, k));
  return [];
}

export function checkGithubWorkflow(file: string, doc: Workflow, ctx: GithubCheckContext): string[] {
  const findings: string[] = [];
  const call = workflowCall(doc);
  const declaredInputs = new Set(Object.keys((call?.inputs as Mapping | undefined) ?? {}));
  const dispatchInputs =
    doc.on && typeof doc.on === 'object' && !Array.isArray(doc.on)
      ? ((doc.on as Mapping).workflow_dispatch as Mapping | null | undefined)?.inputs
      : undefined;
  for (const k of Object.keys((dispatchInputs as Mapping | undefined) ?? {})) declaredInputs.add(k);
  const declaredSecrets = new Set(Object.keys((call?.secrets as Mapping | undefined) ?? {}));
  const hasInputs = !!call || !!dispatchInputs;

  const checkPaths = (where: string, job: Job | undefined, visibleSteps: Step[], expressions: string[]) => {
    for (const expression of expressions) {
      let paths: AccessPath[];
      try {
        paths = ctx.accessPaths(expression);
      } catch (error) {
        findings.push(`${file}: ${where}: expression "${expression.trim()}" does not parse: ${(error as Error).message}`);
        continue;
      }
      for (const [context, name, section, output] of paths) {
        if (context === 'steps' && name !== undefined) {
          const step = visibleSteps.find((s) => s.id === name);
          if (!step) {
            findings.push(`${file}: ${where}: steps.${name} is not a step before this point in the job.`);
          } else if (section === 'outputs' && output !== undefined) {
            const known = stepOutputs(step, ctx);
            if (known && !known.has(output)) {
              const hint = nearest(output, known);
              findings.push(
                `${file}: ${where}: step "${name}" has no output "${output}"${hint ? ` (did you mean "${hint}"?)` : ''}; it has: ${[...known].join(', ') || 'none'}.`,
              );
            }
          }
        } else if (context === 'needs' && name !== undefined && job) {
          if (!list(job.needs).includes(name)) {
            findings.push(`${file}: ${where}: needs.${name} is used but the job does not list "${name}" in needs.`);
            continue;
          }
          const target = doc.jobs[name];
          const known = target ? jobOutputs(target, ctx) : undefined;
          if (section === 'outputs' && output !== undefined && known && !known.has(output)) {
            findings.push(`${file}: ${where}: job "${name}" has no output "${output}"; it has: ${[...known].join(', ') || 'none'}.`);
          }
        } else if (context === 'jobs' && name !== undefined) {
          const target = doc.jobs[name];
          if (!target) findings.push(`${file}: ${where}: jobs.${name} is not a job of this workflow.`);
          else if (section === 'outputs' && output !== undefined && !jobOutputs(target, ctx)?.has(output)) {
            findings.push(`${file}: ${where}: job "${name}" has no output "${output}".`);
          }
        } else if (context === 'inputs' && name !== undefined && hasInputs && !declaredInputs.has(name)) {
          findings.push(`${file}: ${where}: inputs.${name} is not a declared input (${[...declaredInputs].join(', ')}).`);
        } else if (
          context === 'secrets' &&
          name !== undefined &&
          call &&
          name !== 'GITHUB_TOKEN' &&
          !declaredSecrets.has(name) &&
          !job?.environment
        ) {
          findings.push(
            `${file}: ${where}: secrets.${name} is neither declared under workflow_call.secrets nor read in a job with an environment.`,
          );
        }
      }
    }
  };

  // workflow_call outputs read jobs.<id>.outputs.<name>
  for (const [name, output] of Object.entries((call?.outputs as Record<string, Mapping> | undefined) ?? {})) {
    checkPaths(`on.workflow_call.outputs.${name}`, undefined, [], expressionsIn(output.value));
  }

  for (const [jobId, job] of Object.entries(doc.jobs)) {
    for (const need of list(job.needs)) if (!doc.jobs[need]) findings.push(`${file}: jobs.${jobId}: needs "${need}", which is not a job.`);
    if (job.uses) findings.push(...checkReusableCall(file, jobId, job, ctx));
    const steps = job.steps ?? [];
    const { steps: _steps, ...jobFields } = job;
    // Job-level fields (outputs, env, if, …) may read any step of the job.
    checkPaths(`jobs.${jobId}`, job, steps, expressionsIn(jobFields));
    steps.forEach((step, index) => {
      const where = `jobs.${jobId}.steps[${index}]${step.id ? ` (${step.id})` : ''}`;
      checkPaths(where, job, steps.slice(0, index), expressionsIn(step));
      if (typeof step.uses === 'string' && MLSHIP_ACTION.test(step.uses))
        findings.push(...checkMlshipStep(`${file}: ${where}`, step, ctx.catalog));
    });
  }
  findings.push(...checkArtifacts(file, doc));
  return findings;
}

function checkMlshipStep(where: string, step: Step, catalog: StepCatalog): string[] {
  const [, name, ref] = MLSHIP_ACTION.exec(step.uses!)!;
  const def = catalog.byName.get(name!);
  if (!def) return [`${where}: mlship/mlship/actions/${name} is not an mlship step (${[...catalog.byName.keys()].join(', ')}).`];
  const findings: string[] = [];
  if (ref !== `v${def.azure.major}`) findings.push(`${where}: ${name}@${ref}: the step's major version is v${def.azure.major}.`);
  const byLabel = new Map(Object.entries(def.inputs as Record<string, InputSpec>).map(([key, spec]) => [kebabCase(key), { key, spec }]));
  const given = step.with ?? {};
  for (const [label, value] of Object.entries(given)) {
    const input = byLabel.get(label);
    if (!input) {
      const hint = nearest(label, byLabel.keys());
      findings.push(`${where}: ${name} has no input "${label}"${hint ? ` (did you mean "${hint}"?)` : ''}.`);
      continue;
    }
    const raw = String(value);
    if (input.spec.type === 'secret' && !/\$\{\{\s*(secrets\.|github\.token)/.test(raw)) {
      findings.push(`${where}: ${name} input "${label}" is a secret but is not read from secrets (or github.token).`);
    }
    if (!raw.includes('${{')) {
      const error = literalValueError(def, input.key, raw, 'github');
      if (error) findings.push(`${where}: ${error}`);
    }
  }
  for (const key of requiredInputs(def)) {
    if (!(kebabCase(key) in given)) findings.push(`${where}: ${name} requires input "${kebabCase(key)}", which is not given.`);
  }
  return findings;
}

function checkReusableCall(file: string, jobId: string, job: Job, ctx: GithubCheckContext): string[] {
  const called = ctx.resolveReusable(job.uses!);
  if (!called) return [];
  const call = workflowCall(called.doc);
  const where = `${file}: jobs.${jobId} (${job.uses})`;
  if (!call) return [`${where}: ${called.file} has no on.workflow_call.`];
  const findings: string[] = [];
  const inputs = (call.inputs as Record<string, Mapping> | undefined) ?? {};
  const given = job.with ?? {};
  for (const k of Object.keys(given)) if (!(k in inputs)) findings.push(`${where}: ${called.file} declares no input "${k}".`);
  for (const [k, spec] of Object.entries(inputs)) {
    if (spec.required === true && spec.default === undefined && !(k in given))
      findings.push(`${where}: required input "${k}" of ${called.file} is not given.`);
  }
  if (job.secrets !== 'inherit') {
    const secrets = (call.secrets as Record<string, Mapping> | undefined) ?? {};
    const passed = job.secrets ?? {};
    for (const k of Object.keys(passed)) if (!(k in secrets)) findings.push(`${where}: ${called.file} declares no secret "${k}".`);
    for (const [k, spec] of Object.entries(secrets))
      if (spec?.required === true && !(k in passed)) findings.push(`${where}: required secret "${k}" is not passed.`);
  }
  return findings;
}

/** Jobs a job waits for, directly or through others. */
export function ancestors(doc: Workflow, jobId: string, seen = new Set<string>()): Set<string> {
  for (const need of list(doc.jobs[jobId]?.needs)) {
    if (!seen.has(need)) {
      seen.add(need);
      ancestors(doc, need, seen);
    }
  }
  return seen;
}

function checkArtifacts(file: string, doc: Workflow): string[] {
  const uploads = new Map<string, string[]>();
  for (const [jobId, job] of Object.entries(doc.jobs)) {
    for (const step of job.steps ?? []) {
      if (step.uses?.startsWith('actions/upload-artifact@')) {
        const name = String(step.with?.name ?? 'artifact');
        uploads.set(name, [...(uploads.get(name) ?? []), jobId]);
      }
    }
  }
  const findings: string[] = [];
  for (const [jobId, job] of Object.entries(doc.jobs)) {
    const before = ancestors(doc, jobId);
    for (const step of job.steps ?? []) {
      if (!step.uses?.startsWith('actions/download-artifact@') || step.with?.name === undefined) continue;
      const name = String(step.with.name);
      const producers = uploads.get(name) ?? [];
      if (!producers.some((p) => before.has(p))) {
        findings.push(
          `${file}: jobs.${jobId} downloads artifact "${name}", which ${producers.length ? `only ${producers.join(', ')} upload(s), and ${jobId} does not wait for them` : 'no job uploads'}.`,
        );
      }
    }
  }
  return findings;
}
