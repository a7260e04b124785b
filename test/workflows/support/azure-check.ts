import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import type { AnyStep, InputSpec } from '../../../shared/core/step';
import { literalValueError, nearest, requiredInputs, type StepCatalog } from './step-definitions';

/*
 * A focused structural check of Azure Pipelines YAML. The official schema (the service-schema.json behind the
 * Azure Pipelines VS Code extension) is published in no npm package, so it cannot be used offline here; this
 * check covers what the examples use instead: the stage/job/deployment/step shapes and their keys, pools and
 * demands, agentless jobs, dependsOn, templates (they resolve to files and get exactly their declared
 * parameters), task references (mlship tasks against their definitions in shared/steps, other tasks against
 * the table below), output-variable references across steps, jobs and stages, and pipeline artifacts.
 *
 * Template expressions: `${{ parameters.x }}` is substituted; `${{ if }}` / `${{ elseif }}` / `${{ else }}`
 * branches are all checked (merged); `${{ each }}` is reported as unsupported.
 */

type Mapping = Record<string, unknown>;

/** Inputs of the non-mlship tasks the examples use, from each task's reference page. */
const KNOWN_TASKS: Record<string, { required: string[]; inputs: string[]; agentless?: boolean }> = {
  'AzureCLI@2': {
    required: ['azureSubscription', 'scriptType', 'scriptLocation'],
    inputs: [
      'azureSubscription',
      'scriptType',
      'scriptLocation',
      'scriptPath',
      'inlineScript',
      'arguments',
      'powerShellErrorActionPreference',
      'addSpnToEnvironment',
      'useGlobalConfig',
      'workingDirectory',
      'failOnStandardError',
      'powerShellIgnoreLASTEXITCODE',
      'visibleAzLogin',
      'keepAzSessionActive',
    ],
  },
  'AWSShellScript@1': {
    required: ['scriptType'],
    inputs: [
      'awsCredentials',
      'regionName',
      'arguments',
      'scriptType',
      'filePath',
      'inlineScript',
      'disableAutoCwd',
      'workingDirectory',
      'failOnStandardError',
      'logRequest',
      'logResponse',
    ],
  },
  'ManualValidation@1': {
    required: ['notifyUsers'],
    inputs: ['notifyUsers', 'approvers', 'allowApproversToApproveTheirOwnRuns', 'instructions', 'onTimeout'],
    agentless: true,
  },
  'Delay@1': { required: ['delayForMinutes'], inputs: ['delayForMinutes'], agentless: true },
  'UsePythonVersion@0': {
    required: ['versionSpec'],
    inputs: ['versionSpec', 'disableDownloadFromRegistry', 'allowUnstable', 'githubToken', 'addToPath', 'architecture'],
  },
  'PublishPipelineArtifact@1': {
    required: ['targetPath'],
    inputs: ['targetPath', 'artifact', 'publishLocation', 'fileSharePath', 'parallel', 'parallelCount', 'properties'],
  },
  'DownloadPipelineArtifact@2': {
    required: [],
    inputs: [
      'buildType',
      'project',
      'definition',
      'specificBuildWithTriggering',
      'buildVersionToDownload',
      'branchName',
      'pipelineId',
      'tags',
      'allowPartiallySucceededBuilds',
      'allowFailedBuilds',
      'artifact',
      'patterns',
      'path',
    ],
  },
};

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ROOT_KEYS = [
  'name',
  'appendCommitMessageToRunName',
  'parameters',
  'trigger',
  'pr',
  'schedules',
  'resources',
  'variables',
  'pool',
  'lockBehavior',
  'stages',
  'jobs',
  'steps',
  'extends',
];
const STAGE_KEYS = [
  'stage',
  'displayName',
  'dependsOn',
  'condition',
  'variables',
  'jobs',
  'pool',
  'lockBehavior',
  'isSkippable',
  'templateContext',
  'trigger',
];
const JOB_COMMON = [
  'displayName',
  'dependsOn',
  'condition',
  'continueOnError',
  'timeoutInMinutes',
  'cancelTimeoutInMinutes',
  'variables',
  'pool',
  'container',
  'services',
  'workspace',
  'uses',
  'templateContext',
];
const JOB_KEYS = ['job', 'strategy', 'steps', ...JOB_COMMON];
const DEPLOYMENT_KEYS = ['deployment', 'environment', 'strategy', ...JOB_COMMON];
const HOOKS = ['preDeploy', 'deploy', 'routeTraffic', 'postRouteTraffic'];
const STEP_COMMON = [
  'name',
  'displayName',
  'condition',
  'continueOnError',
  'enabled',
  'env',
  'timeoutInMinutes',
  'retryCountOnTaskFailure',
  'target',
];
const STEP_KINDS: Record<string, string[]> = {
  task: ['inputs'],
  script: ['workingDirectory', 'failOnStderr'],
  bash: ['workingDirectory', 'failOnStderr', 'noProfile', 'noRc'],
  pwsh: [
    'workingDirectory',
    'failOnStderr',
    'errorActionPreference',
    'warningPreference',
    'informationPreference',
    'verbosePreference',
    'debugPreference',
    'progressPreference',
    'ignoreLASTEXITCODE',
  ],
  powershell: ['workingDirectory', 'failOnStderr', 'errorActionPreference', 'ignoreLASTEXITCODE'],
  checkout: [
    'clean',
    'fetchDepth',
    'fetchFilter',
    'fetchTags',
    'lfs',
    'persistCredentials',
    'submodules',
    'path',
    'sparseCheckoutDirectories',
    'sparseCheckoutPatterns',
    'workspaceRepo',
  ],
  download: ['artifact', 'patterns'],
  publish: ['artifact'],
};
const SCRIPT_KINDS = ['script', 'bash', 'pwsh', 'powershell'];
/** Variable namespaces of Azure DevOps itself: `$(Build.BuildId)` is not a step output. */
const PREDEFINED = new Set([
  'Agent',
  'Build',
  'Checks',
  'Common',
  'Deployment',
  'Environment',
  'Pipeline',
  'Release',
  'Resources',
  'Strategy',
  'System',
  'Task',
  'TF',
]);

export interface StepInfo {
  node: Mapping;
  file: string;
  kind: string;
  name?: string;
  /** `Name@major` for task steps. */
  task?: string;
}
export interface JobInfo {
  name: string;
  kind: 'job' | 'deployment';
  file: string;
  node: Mapping;
  dependsOn: string[];
  steps: StepInfo[];
}
export interface StageInfo {
  name: string;
  file: string;
  node: Mapping;
  /** Effective: explicit, else the stage before. */
  dependsOn: string[];
  jobs: JobInfo[];
}
export interface PipelineModel {
  stages: StageInfo[];
  findings: string[];
}

interface Template {
  declared: Map<string, Mapping>;
  body: Mapping;
}

const isMapping = (v: unknown): v is Mapping => !!v && typeof v === 'object' && !Array.isArray(v);
const asList = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

export function loadYaml(file: string, findings: string[]): Mapping | undefined {
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
  if (doc.errors.length > 0) {
    findings.push(...doc.errors.map((e) => `${file}: ${e.message}`));
    return undefined;
  }
  const value = doc.toJS() as unknown;
  if (!isMapping(value)) {
    findings.push(`${file}: the document is not a mapping.`);
    return undefined;
  }
  return value;
}

/** `parameters:` as a list of { name, type, default, values } or the old name → default mapping. */
function declaredParameters(body: Mapping): Map<string, Mapping> {
  const raw = body.parameters;
  if (Array.isArray(raw)) return new Map(raw.filter(isMapping).map((p) => [String(p.name), p]));
  if (isMapping(raw)) return new Map(Object.entries(raw).map(([name, d]) => [name, { name, default: d }]));
  return new Map();
}

/** Replaces `${{ parameters.x }}`: a whole-value reference keeps the parameter's type (lists, numbers). */
function substitute(node: unknown, values: Mapping, where: string, findings: string[]): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(node);
    const lookup = (name: string) => {
      if (!(name in values)) findings.push(`${where}: \${{ parameters.${name} }} names no declared parameter.`);
      return values[name];
    };
    if (whole) return lookup(whole[1]!);
    return node.replace(/\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => String(lookup(name)));
  }
  if (Array.isArray(node)) return node.map((n) => substitute(n, values, where, findings));
  if (isMapping(node)) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, substitute(v, values, where, findings)]));
  return node;
}

type Value = string | number | boolean | undefined;

/**
 * Evaluates the compile-time conditions this check can know: eq, ne, and, or, not, startsWith over parameters
 * and literals. Anything else (variables['Build.Reason'], …) is undefined: every branch is then checked.
 */
export function evaluateCondition(expression: string, parameters: Mapping): Value {
  const tokens = expression.match(/'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])*|-?\d+(?:\.\d+)?|[(),]/g) ?? [];
  let i = 0;
  const parse = (): Value => {
    const token = tokens[i++];
    if (token === undefined) return undefined;
    if (token.startsWith("'")) return token.slice(1, -1).replace(/''/g, "'");
    if (/^-?\d/.test(token)) return Number(token);
    if (token === 'true' || token === 'false') return token === 'true';
    if (tokens[i] === '(') {
      i++;
      const args: Value[] = [];
      while (tokens[i] !== ')' && i < tokens.length) {
        args.push(parse());
        if (tokens[i] === ',') i++;
      }
      i++;
      const known = args.every((a) => a !== undefined);
      const text = (v: Value) => String(v).toLowerCase();
      switch (token.toLowerCase()) {
        case 'eq':
          return known ? text(args[0]) === text(args[1]) : undefined;
        case 'ne':
          return known ? text(args[0]) !== text(args[1]) : undefined;
        case 'not':
          return known ? !args[0] : undefined;
        case 'and':
          return args.some((a) => a === false) ? false : known ? true : undefined;
        case 'or':
          return args.some((a) => a === true) ? true : known ? false : undefined;
        case 'startswith':
          return known ? text(args[0]).startsWith(text(args[1])) : undefined;
        default:
          return undefined;
      }
    }
    const parameter = /^parameters\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(token);
    const value = parameter ? parameters[parameter[1]!] : undefined;
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : undefined;
  };
  return parse();
}

/**
 * Resolves `${{ if }}` / `${{ elseif }}` / `${{ else }}` in mappings and lists: the branch whose condition holds,
 * or every branch of a chain whose condition this check cannot evaluate.
 */
function resolveConditionals(node: unknown, parameters: Mapping, where: string, findings: string[]): unknown {
  const chain = { decided: false, unknown: false };
  const take = (key: string): boolean | undefined => {
    const m = /^\$\{\{\s*(if|elseif|else)\b(.*)\}\}$/s.exec(key.trim());
    if (!m) {
      findings.push(`${where}: template expression "${key}" is not supported by this check.`);
      return undefined;
    }
    const [, kind, condition] = m as unknown as [string, string, string];
    if (kind === 'if') Object.assign(chain, { decided: false, unknown: false });
    if (chain.decided) return false;
    if (kind === 'else') return true;
    const value = evaluateCondition(condition, parameters);
    if (value === undefined) chain.unknown = true;
    else if (value && !chain.unknown) chain.decided = true;
    return value === undefined ? true : Boolean(value);
  };
  if (Array.isArray(node)) {
    const out: unknown[] = [];
    for (const item of node) {
      const keys = isMapping(item) ? Object.keys(item) : [];
      if (keys.length === 1 && keys[0]!.trim().startsWith('${{')) {
        if (take(keys[0]!)) {
          const inner = resolveConditionals((item as Mapping)[keys[0]!], parameters, where, findings);
          out.push(...(Array.isArray(inner) ? inner : [inner]));
        }
      } else {
        Object.assign(chain, { decided: false, unknown: false });
        out.push(resolveConditionals(item, parameters, where, findings));
      }
    }
    return out;
  }
  if (isMapping(node)) {
    const out: Mapping = {};
    for (const [k, v] of Object.entries(node)) {
      if (k.trim().startsWith('${{')) {
        if (!take(k)) continue;
        const inner = resolveConditionals(v, parameters, where, findings);
        if (isMapping(inner)) Object.assign(out, inner);
        else findings.push(`${where}: "${k}" in a mapping must hold a mapping.`);
      } else {
        Object.assign(chain, { decided: false, unknown: false });
        out[k] = resolveConditionals(v, parameters, where, findings);
      }
    }
    return out;
  }
  return node;
}

function checkKeys(node: Mapping, allowed: string[], where: string, findings: string[]): void {
  for (const k of Object.keys(node)) {
    if (!allowed.includes(k)) {
      const hint = nearest(k, allowed);
      findings.push(`${where}: unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : ''}.`);
    }
  }
}

export class PipelineChecker {
  private readonly findings: string[] = [];
  private readonly stages: StageInfo[] = [];

  constructor(private readonly catalog: StepCatalog) {}

  /** `parameters`: values of the pipeline's runtime parameters; the others take their defaults. */
  check(file: string, parameters: Mapping = {}): PipelineModel {
    const root = loadYaml(file, this.findings);
    if (!root) return { stages: [], findings: this.findings };
    const values = { ...Object.fromEntries([...declaredParameters(root).values()].map((p) => [String(p.name), p.default])), ...parameters };
    const body = resolveConditionals(substitute(root, values, file, this.findings), values, file, this.findings) as Mapping;
    checkKeys(body, ROOT_KEYS, file, this.findings);
    if (!Array.isArray(body.stages)) this.findings.push(`${file}: this check expects a multi-stage pipeline (stages:).`);
    else this.readStages(body.stages, file);
    this.checkPool(body.pool, `${file}: pool`);
    this.checkDependencies();
    this.checkReferences();
    this.checkArtifacts();
    return { stages: this.stages, findings: [...new Set(this.findings)] };
  }

  /** Resolves `template:` items and conditional items of a stages/jobs/steps list into plain items. */
  private items(list: unknown, file: string, kind: 'stages' | 'jobs' | 'steps', where: string): { node: Mapping; file: string }[] {
    if (!Array.isArray(list)) {
      this.findings.push(`${where}: ${kind} must be a list.`);
      return [];
    }
    const out: { node: Mapping; file: string }[] = [];
    for (const [i, item] of list.entries()) {
      const at = `${where}[${i}]`;
      if (!isMapping(item)) {
        this.findings.push(`${at}: not a mapping.`);
        continue;
      }
      if (typeof item.template === 'string') {
        checkKeys(item, ['template', 'parameters'], at, this.findings);
        const included = this.instantiate(item.template, item.parameters, file, kind, at);
        if (included) out.push(...this.items(included.list, included.file, kind, `${included.file}: ${kind}`));
        continue;
      }
      out.push({ node: item, file });
    }
    return out;
  }

  private instantiate(
    ref: string,
    passed: unknown,
    from: string,
    kind: string,
    where: string,
  ): { list: unknown; file: string } | undefined {
    // Template paths are relative to the file that includes them.
    const file = path.resolve(path.dirname(from), ref);
    if (!fs.existsSync(file)) {
      this.findings.push(`${where}: template ${ref} does not exist (looked for ${file}).`);
      return undefined;
    }
    const body = loadYaml(file, this.findings);
    if (!body) return undefined;
    const template: Template = { declared: declaredParameters(body), body };
    const given = isMapping(passed) ? passed : {};
    const values: Mapping = {};
    for (const [name, value] of Object.entries(given)) {
      const spec = template.declared.get(name);
      if (!spec) {
        const hint = nearest(name, template.declared.keys());
        this.findings.push(`${where}: ${ref} declares no parameter "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}.`);
        continue;
      }
      const literal = typeof value !== 'string' || !value.includes('${{');
      if (literal && Array.isArray(spec.values) && !spec.values.map(String).includes(String(value))) {
        this.findings.push(`${where}: parameter "${name}" of ${ref} is "${String(value)}", not one of ${spec.values.join(', ')}.`);
      }
      if (literal && spec.type === 'number' && typeof value !== 'number')
        this.findings.push(`${where}: parameter "${name}" of ${ref} must be a number, not "${String(value)}".`);
      if (literal && spec.type === 'boolean' && typeof value !== 'boolean')
        this.findings.push(`${where}: parameter "${name}" of ${ref} must be a boolean, not "${String(value)}".`);
      if (literal && spec.type === 'object' && (typeof value !== 'object' || value === null))
        this.findings.push(`${where}: parameter "${name}" of ${ref} must be an object or list.`);
      values[name] = value;
    }
    for (const [name, spec] of template.declared) {
      if (name in values) continue;
      if (!('default' in spec)) this.findings.push(`${where}: ${ref} needs parameter "${name}", which is not given.`);
      values[name] = spec.default;
    }
    if (!(kind in template.body)) {
      this.findings.push(`${where}: ${ref} is used as a ${kind} template but has no "${kind}:" list.`);
      return undefined;
    }
    checkKeys(template.body, ['parameters', kind], file, this.findings);
    return { list: resolveConditionals(substitute(template.body[kind], values, file, this.findings), values, file, this.findings), file };
  }

  private readStages(list: unknown, file: string): void {
    let previous: string | undefined;
    for (const { node, file: at } of this.items(list, file, 'stages', `${file}: stages`)) {
      const name = String(node.stage ?? '');
      const where = `${at}: stage ${name || '(unnamed)'}`;
      checkKeys(node, STAGE_KEYS, where, this.findings);
      if (!NAME.test(name)) this.findings.push(`${where}: stage name "${name}" must be letters, digits and _ (not starting with a digit).`);
      if (this.stages.some((s) => s.name === name)) this.findings.push(`${where}: a stage named "${name}" already exists.`);
      this.checkPool(node.pool, `${where}: pool`);
      const dependsOn = 'dependsOn' in node ? asList(node.dependsOn) : previous ? [previous] : [];
      const stage: StageInfo = { name, file: at, node, dependsOn, jobs: [] };
      this.stages.push(stage);
      for (const { node: job, file: jobFile } of this.items(node.jobs, at, 'jobs', `${where}: jobs`))
        stage.jobs.push(this.readJob(job, jobFile, stage));
      previous = name;
    }
  }

  private readJob(node: Mapping, file: string, stage: StageInfo): JobInfo {
    const kind = 'deployment' in node ? 'deployment' : 'job';
    const name = String(node[kind] ?? '');
    const where = `${file}: stage ${stage.name}, ${kind} ${name || '(unnamed)'}`;
    checkKeys(node, kind === 'job' ? JOB_KEYS : DEPLOYMENT_KEYS, where, this.findings);
    if (!NAME.test(name)) this.findings.push(`${where}: job name "${name}" must be letters, digits and _ (not starting with a digit).`);
    if (stage.jobs.some((j) => j.name === name)) this.findings.push(`${where}: stage ${stage.name} already has a job "${name}".`);
    const job: JobInfo = { name, kind, file, node, dependsOn: asList(node.dependsOn), steps: [] };
    const server = node.pool === 'server';
    if (!server) this.checkPool(node.pool, `${where}: pool`);
    if (kind === 'job') {
      job.steps = this.readSteps(node.steps, file, where);
    } else {
      if (node.environment === undefined) this.findings.push(`${where}: a deployment job needs an environment.`);
      const strategy = isMapping(node.strategy) ? node.strategy : undefined;
      const runOnce = strategy && isMapping(strategy.runOnce) ? strategy.runOnce : undefined;
      if (!runOnce) this.findings.push(`${where}: this check supports deployment jobs with strategy: runOnce only.`);
      else {
        checkKeys(runOnce, [...HOOKS, 'on'], `${where}: runOnce`, this.findings);
        if (!isMapping(runOnce.deploy)) this.findings.push(`${where}: runOnce needs a deploy hook.`);
        for (const hook of HOOKS) {
          const h = runOnce[hook];
          if (h === undefined) continue;
          if (!isMapping(h)) this.findings.push(`${where}: runOnce.${hook} must be a mapping.`);
          else {
            checkKeys(h, ['steps', 'pool'], `${where}: runOnce.${hook}`, this.findings);
            job.steps.push(...this.readSteps(h.steps, file, `${where}: runOnce.${hook}`));
          }
        }
      }
    }
    if (server) {
      if (kind !== 'job') this.findings.push(`${where}: pool: server is for agentless jobs, not deployment jobs.`);
      for (const step of job.steps) {
        if (!step.task || !KNOWN_TASKS[step.task]?.agentless)
          this.findings.push(`${where}: an agentless job (pool: server) can only run agentless tasks, not ${step.task ?? step.kind}.`);
      }
    } else {
      for (const step of job.steps)
        if (step.task && KNOWN_TASKS[step.task]?.agentless)
          this.findings.push(`${where}: ${step.task} runs only in an agentless job (pool: server).`);
    }
    return job;
  }

  private readSteps(list: unknown, file: string, where: string): StepInfo[] {
    const steps: StepInfo[] = [];
    for (const { node, file: at } of this.items(list, file, 'steps', `${where}: steps`)) {
      const kinds = Object.keys(STEP_KINDS).filter((k) => k in node);
      const label = `${at === file ? where : `${at} (from ${where})`}: step ${String(node.name ?? node.displayName ?? steps.length)}`;
      if (kinds.length !== 1) {
        this.findings.push(
          `${label}: a step needs exactly one of ${Object.keys(STEP_KINDS).join(', ')}; found ${kinds.join(', ') || 'none'}.`,
        );
        continue;
      }
      const kind = kinds[0]!;
      checkKeys(node, [kind, ...STEP_COMMON, ...STEP_KINDS[kind]!], label, this.findings);
      const step: StepInfo = { node, file: at, kind, name: typeof node.name === 'string' ? node.name : undefined };
      if (step.name !== undefined && !NAME.test(step.name))
        this.findings.push(`${label}: step name "${step.name}" must be letters, digits and _.`);
      if (step.name !== undefined && steps.some((s) => s.name === step.name))
        this.findings.push(`${label}: another step of the job is named "${step.name}".`);
      if (kind === 'task') {
        step.task = String(node.task);
        this.checkTask(step, label);
      }
      steps.push(step);
    }
    return steps;
  }

  private checkTask(step: StepInfo, where: string): void {
    const match = /^([A-Za-z0-9-]+)@(\d+)$/.exec(step.task!);
    if (!match) {
      this.findings.push(`${where}: task "${step.task}" must be Name@majorVersion.`);
      return;
    }
    const inputs = isMapping(step.node.inputs) ? step.node.inputs : {};
    const def = this.catalog.byTaskName.get(match[1]!);
    if (def) {
      this.checkMlshipTask(def, Number(match[2]), inputs, step, where);
      return;
    }
    const known = KNOWN_TASKS[step.task!];
    if (!known) {
      this.findings.push(`${where}: task ${step.task} is neither an mlship task nor one this check knows (KNOWN_TASKS).`);
      return;
    }
    for (const k of Object.keys(inputs)) if (!known.inputs.includes(k)) this.findings.push(`${where}: ${step.task} has no input "${k}".`);
    for (const k of known.required) if (!(k in inputs)) this.findings.push(`${where}: ${step.task} requires input "${k}".`);
  }

  private checkMlshipTask(def: AnyStep, major: number, inputs: Mapping, step: StepInfo, where: string): void {
    const task = step.task!;
    if (major !== def.azure.major) this.findings.push(`${where}: ${task}: the task's major version is ${def.azure.major}.`);
    const specs = def.inputs as Record<string, InputSpec>;
    for (const [key, value] of Object.entries(inputs)) {
      const spec = specs[key];
      if (!spec) {
        const hint = nearest(key, Object.keys(specs));
        this.findings.push(`${where}: ${task} has no input "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}.`);
        continue;
      }
      const raw = String(value);
      if (spec.type === 'secret' && !/^\$\([A-Za-z_][A-Za-z0-9_.-]*\)$/.test(raw.trim())) {
        this.findings.push(`${where}: ${task} input "${key}" is a secret and must be a $(secretVariable), not a literal.`);
      }
      if (!/\$\(|\$\[|\$\{\{/.test(raw)) {
        const error = literalValueError(def, key, raw, 'azure');
        if (error) this.findings.push(`${where}: ${error}`);
      }
    }
    for (const key of requiredInputs(def))
      if (!(key in inputs)) this.findings.push(`${where}: ${task} requires input "${key}", which is not given.`);
    // Both read the job's OAuth token: the federated credential of a service connection, and the run's approvals.
    const needsToken =
      inputs.azureServiceConnection !== undefined ||
      (def.name === 'promote-release' && String(inputs.requireApproval ?? 'false') !== 'false');
    const env = isMapping(step.node.env) ? step.node.env : {};
    if (needsToken && env.SYSTEM_ACCESSTOKEN !== '$(System.AccessToken)') {
      this.findings.push(`${where}: ${task} needs env SYSTEM_ACCESSTOKEN: $(System.AccessToken) (service connection or approvals).`);
    }
  }

  private checkPool(pool: unknown, where: string): void {
    if (pool === undefined || typeof pool === 'string') return;
    if (!isMapping(pool)) {
      this.findings.push(`${where}: must be a name or a mapping.`);
      return;
    }
    checkKeys(pool, ['name', 'vmImage', 'demands'], where, this.findings);
    for (const demand of asList(pool.demands)) {
      if (!/^[A-Za-z0-9_.-]+(\s+-equals\s+\S.*)?$/.test(demand))
        this.findings.push(`${where}: demand "${demand}" must be "capability" or "capability -equals value".`);
    }
  }

  private checkDependencies(): void {
    for (const stage of this.stages) {
      for (const d of stage.dependsOn)
        if (!this.stages.some((s) => s.name === d))
          this.findings.push(`${stage.file}: stage ${stage.name} depends on "${d}", which is not a stage.`);
      for (const job of stage.jobs) {
        for (const d of job.dependsOn)
          if (!stage.jobs.some((j) => j.name === d))
            this.findings.push(`${job.file}: ${job.kind} ${stage.name}.${job.name} depends on "${d}", which is not a job of the stage.`);
      }
    }
  }

  /** Output names of a step: an mlship task's outputs, or what a script sets with isOutput=true. */
  private outputsOf(step: StepInfo): Set<string> | undefined {
    if (step.task) {
      const def = this.catalog.byTaskName.get(step.task.split('@')[0]!);
      return def ? new Set(Object.keys(def.outputs)) : undefined;
    }
    if (SCRIPT_KINDS.includes(step.kind)) {
      const script = String(step.node[step.kind]);
      return new Set([...script.matchAll(/##vso\[task\.setvariable variable=([^;\]]+);[^\]]*isOutput=true/g)].map((m) => m[1]!));
    }
    return undefined;
  }

  /** `<step>.<var>` of a job as other jobs address it (a runOnce deployment job prefixes its own name). */
  private resolveOutput(job: JobInfo, key: string, where: string): void {
    const parts = key.split('.');
    if (job.kind === 'deployment') {
      if (parts[0] !== job.name) {
        this.findings.push(
          `${where}: outputs of runOnce deployment job "${job.name}" are addressed as '${job.name}.<step>.<variable>', not '${key}'.`,
        );
        return;
      }
      parts.shift();
    }
    const [stepName, variable] = parts;
    if (parts.length !== 2 || !stepName || !variable) {
      this.findings.push(`${where}: output '${key}' must be '<step>.<variable>'.`);
      return;
    }
    const step = job.steps.find((s) => s.name === stepName);
    if (!step) {
      this.findings.push(`${where}: job "${job.name}" has no step named "${stepName}".`);
      return;
    }
    const outputs = this.outputsOf(step);
    if (outputs && !outputs.has(variable)) {
      const hint = nearest(variable, outputs);
      this.findings.push(
        `${where}: step "${stepName}" (${step.task ?? step.kind}) has no output "${variable}"${hint ? ` (did you mean "${hint}"?)` : ''}; it has: ${[...outputs].join(', ') || 'none'}.`,
      );
    }
  }

  private checkReferences(): void {
    for (const stage of this.stages) {
      const { jobs: _jobs, ...stageFields } = stage.node;
      this.checkStrings(stageFields, stage, undefined, `${stage.file}: stage ${stage.name}`);
      for (const job of stage.jobs) this.checkStrings(job.node, stage, job, `${job.file}: ${job.kind} ${stage.name}.${job.name}`);
    }
  }

  private checkStrings(node: unknown, stage: StageInfo, job: JobInfo | undefined, where: string): void {
    if (Array.isArray(node)) node.forEach((n) => this.checkStrings(n, stage, job, where));
    else if (isMapping(node)) Object.values(node).forEach((n) => this.checkStrings(n, stage, job, where));
    else if (typeof node === 'string') this.checkString(node, stage, job, where);
  }

  private checkString(text: string, stage: StageInfo, job: JobInfo | undefined, where: string): void {
    for (const m of text.matchAll(/stageDependencies\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\.outputs\[\s*'([^']+)'\s*\]/g)) {
      const [, stageName, jobName, key] = m as unknown as [string, string, string, string];
      const source = this.stages.find((s) => s.name === stageName);
      if (!source) this.findings.push(`${where}: stageDependencies.${stageName}: no such stage.`);
      else if (!stage.dependsOn.includes(stageName))
        this.findings.push(
          `${where}: stageDependencies.${stageName} is only available when stage ${stage.name} depends on ${stageName} directly (dependsOn: ${stage.dependsOn.join(', ') || 'none'}).`,
        );
      else {
        const sourceJob = source.jobs.find((j) => j.name === jobName);
        if (!sourceJob) this.findings.push(`${where}: stage ${stageName} has no job "${jobName}".`);
        else this.resolveOutput(sourceJob, key, where);
      }
    }
    for (const m of text.matchAll(/(?<![A-Za-z.])dependencies\.([A-Za-z0-9_]+)\.outputs\[\s*'([^']+)'\s*\]/g)) {
      const [, name, key] = m as unknown as [string, string, string];
      if (job) {
        const source = stage.jobs.find((j) => j.name === name);
        if (!job.dependsOn.includes(name)) this.findings.push(`${where}: dependencies.${name} needs "${name}" in the job's dependsOn.`);
        else if (source) this.resolveOutput(source, key, where);
      } else {
        // Stage conditions and variables: dependencies.<stage>.outputs['<job>.<step>.<variable>']
        const source = this.stages.find((s) => s.name === name);
        const [jobName, ...rest] = key.split('.');
        const sourceJob = source?.jobs.find((j) => j.name === jobName);
        if (!stage.dependsOn.includes(name)) this.findings.push(`${where}: dependencies.${name} needs "${name}" in the stage's dependsOn.`);
        else if (!sourceJob) this.findings.push(`${where}: stage ${name} has no job "${jobName}".`);
        else this.resolveOutput(sourceJob, rest.join('.'), where);
      }
    }
    if (!job) return;
    for (const m of text.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      const [, stepName, variable] = m as unknown as [string, string, string];
      if (PREDEFINED.has(stepName)) continue;
      const step = job.steps.find((s) => s.name === stepName);
      if (step) {
        this.resolveOutput({ ...job, kind: 'job' }, `${stepName}.${variable}`, where);
        continue;
      }
      const elsewhere = this.stages
        .flatMap((s) => s.jobs.map((j) => ({ s, j })))
        .find(({ j }) => j.steps.some((st) => st.name === stepName));
      if (elsewhere) {
        this.findings.push(
          `${where}: $(${stepName}.${variable}) is an output of ${elsewhere.s.name}.${elsewhere.j.name}; in another job read it through dependencies/stageDependencies into a variable.`,
        );
      }
    }
  }

  /** Every `download: current` artifact is published by an earlier stage this one waits for, or an earlier job. */
  private checkArtifacts(): void {
    const publishers = new Map<string, { stage: StageInfo; job: JobInfo }[]>();
    for (const stage of this.stages) {
      for (const job of stage.jobs) {
        for (const step of job.steps) {
          if (step.kind === 'publish') {
            const name = String(step.node.artifact ?? '');
            publishers.set(name, [...(publishers.get(name) ?? []), { stage, job }]);
          }
        }
      }
    }
    for (const stage of this.stages) {
      const before = this.stageAncestors(stage.name);
      for (const job of stage.jobs) {
        for (const step of job.steps) {
          if (step.kind !== 'download' || step.node.download !== 'current' || step.node.artifact === undefined) continue;
          const name = String(step.node.artifact);
          const ok = (publishers.get(name) ?? []).some(
            (p) => before.has(p.stage.name) || (p.stage === stage && job.dependsOn.includes(p.job.name)),
          );
          if (!ok)
            this.findings.push(
              `${job.file}: ${stage.name}.${job.name} downloads artifact "${name}", which no stage it waits for publishes.`,
            );
        }
      }
    }
  }

  private stageAncestors(name: string, seen = new Set<string>()): Set<string> {
    for (const d of this.stages.find((s) => s.name === name)?.dependsOn ?? []) {
      if (!seen.has(d)) {
        seen.add(d);
        this.stageAncestors(d, seen);
      }
    }
    return seen;
  }
}
