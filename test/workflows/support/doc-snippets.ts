import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { camelCase, kebabCase } from '../../../shared/core/names';
import type { AnyStep, InputSpec } from '../../../shared/core/step';
import { ROOT } from '../../support/runners';
import { checkGithubWorkflow, type GithubCheckContext, type Job, list, type Step, type Workflow } from './github-check';
import { literalValueError, nearest, requiredInputs, type StepCatalog } from './step-definitions';

export interface Snippet {
  /** `docs/export-onnx.md:71` (the line of the opening fence). */
  where: string;
  platform: 'github' | 'azure';
  text: string;
}

/** Every ```yaml block of docs/ and README.md that uses an mlship step, classified by platform. */
export function docSnippets(): Snippet[] {
  const files = ['README.md', ...walk(path.join(ROOT, 'docs')).map((f) => path.relative(ROOT, f))].sort();
  const out: Snippet[] = [];
  for (const file of files) {
    const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^(\s*)```ya?ml\s*$/.exec(lines[i]!);
      if (!open) continue;
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(open[1]!.length));
      const text = body.join('\n');
      const platform = /uses:\s*mlship\/mlship\/actions\//.test(text)
        ? 'github'
        : /task:\s*[A-Z][A-Za-z]+@\d/.test(text)
          ? 'azure'
          : undefined;
      if (platform) out.push({ where: `${file}:${start + 1}`, platform, text });
    }
  }
  return out;
}

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.md') ? [path.join(dir, e.name)] : []));
}

/** The mlship outputs some step produces: what a `needs.<job>.outputs.<name>` in a fragment can at best refer to. */
function anyStepOutputs(catalog: StepCatalog, spell: (k: string) => string): Set<string> {
  return new Set([...catalog.byName.values()].flatMap((s) => Object.keys(s.outputs).map(spell)));
}

const RAW_TAG_GITHUB = /\$\{\{\s*github\.ref_name\s*\}\}/;
const RAW_TAG_AZURE = /\$\(Build\.SourceBranchName\)/;

/** A version input fed the tag name as is: a `v1.4.0` tag is then refused as a version. */
function versionFinding(where: string, label: string, raw: string, platform: 'github' | 'azure'): string | undefined {
  if (!/^(version|model-version|modelVersion)$/.test(label)) return undefined;
  if (!(platform === 'github' ? RAW_TAG_GITHUB : RAW_TAG_AZURE).test(raw)) return undefined;
  return `${where}: input "${label}" is ${raw.trim()}, the tag as is: a v1.4.0 tag is not a version; strip the "v" first (e.g. a step that writes \${REF_NAME#v} to its outputs).`;
}

/**
 * A GitHub snippet is a whole workflow, some of its jobs, a list of steps or one step. Fragments become one job of a workflow;
 * the jobs they read through `needs.<job>.outputs.<name>` become upstream jobs exposing every output any mlship
 * step has, so a name no step produces (`job-id`) is still caught.
 */
/** The snippet's YAML, or the parse error as a finding (a snippet users copy must at least parse). */
function parse(s: Snippet): { value?: unknown; error?: string } {
  try {
    return { value: YAML.parse(s.text, { uniqueKeys: true }) as unknown };
  } catch (error) {
    return { error: `${s.where}: not valid YAML: ${(error as Error).message.split('\n')[0]}` };
  }
}

export function checkGithubSnippet(s: Snippet, ctx: GithubCheckContext): string[] {
  const { value: parsed, error } = parse(s);
  if (error) return [error];
  let doc: Workflow;
  const isMap = !!parsed && typeof parsed === 'object' && !Array.isArray(parsed);
  // Jobs outside the snippet: they expose every output an mlship step has and upload every artifact it downloads.
  const downloaded = [...s.text.matchAll(/download-artifact@[^\n]*\n\s*with:\s*\{?\s*name:\s*([A-Za-z0-9_.-]+)/g)].map((m) => m[1]!);
  const outputs = Object.fromEntries([...anyStepOutputs(ctx.catalog, kebabCase)].map((o) => [o, 'from an mlship step']));
  const stub = (): Job => ({
    'runs-on': 'ubuntu-latest',
    outputs,
    steps: downloaded.map((name) => ({ uses: 'actions/upload-artifact@v4', with: { name, path: name } })),
  });
  if (isMap && 'jobs' in parsed) doc = parsed as Workflow;
  // Entries of `jobs:` shown without it (each value a job with steps).
  else if (isMap && Object.values(parsed).every((j) => !!j && typeof j === 'object' && Array.isArray((j as Job).steps))) {
    const jobs = { ...(parsed as Record<string, Job>) };
    for (const job of Object.values(parsed as Record<string, Job>)) for (const need of list(job.needs)) jobs[need] ??= stub();
    doc = { on: 'push', jobs };
  } else {
    const steps = (Array.isArray(parsed) ? parsed : [parsed]) as Step[];
    const upstream = [...new Set(['upstream', ...[...s.text.matchAll(/needs\.([A-Za-z0-9_-]+)\.outputs/g)].map((m) => m[1]!)])];
    const jobs: Record<string, Job> = Object.fromEntries(upstream.map((j) => [j, stub()]));
    jobs.snippet = { 'runs-on': 'ubuntu-latest', needs: upstream, steps } as Job;
    doc = { on: 'push', jobs };
  }
  const findings = checkGithubWorkflow(s.where, doc, ctx).map((f) => f.replace(/^([^:]+:\d+): jobs\.snippet\./, '$1: '));
  for (const job of Object.values(doc.jobs)) {
    for (const step of job.steps ?? []) {
      for (const [label, value] of Object.entries(step.with ?? {})) {
        const v = versionFinding(s.where, label, String(value), 'github');
        if (v) findings.push(v);
      }
    }
  }
  return findings;
}

function tasksIn(node: unknown, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(node)) for (const n of node) tasksIn(n, out);
  else if (node && typeof node === 'object') {
    if (typeof (node as Record<string, unknown>).task === 'string') out.push(node as Record<string, unknown>);
    for (const v of Object.values(node)) tasksIn(v, out);
  }
  return out;
}

/**
 * An Azure DevOps snippet: every `task: <MlshipTask>@<major>` gets only its own inputs (camelCase), all its
 * required ones, valid literal values, and every `$(<name>.<output>)` / `outputs['<name>.<output>']` names an
 * output the named task has.
 */
export function checkAzureSnippet(s: Snippet, catalog: StepCatalog): string[] {
  const { value, error } = parse(s);
  if (error) return [error];
  const findings: string[] = [];
  const tasks = tasksIn(value);
  const named = new Map<string, AnyStep>();
  for (const t of tasks) {
    const m = /^([A-Za-z]+)@(\d+)$/.exec(String(t.task));
    const def = m ? catalog.byTaskName.get(m[1]!) : undefined;
    if (!m || !def) continue;
    const where = `${s.where}: ${t.task}`;
    if (Number(m[2]) !== def.azure.major) findings.push(`${where}: the task's major version is ${def.azure.major}.`);
    if (typeof t.name === 'string') named.set(t.name, def);
    const inputs = (t.inputs ?? {}) as Record<string, unknown>;
    const specs = def.inputs as Record<string, InputSpec>;
    for (const [key, value] of Object.entries(inputs)) {
      if (!(key in specs)) {
        const hint = nearest(key, Object.keys(specs));
        findings.push(`${where} has no input "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}.`);
        continue;
      }
      const raw = String(value);
      if (!/\$\(|\$\{\{|\$\[/.test(raw)) {
        const error = literalValueError(def, key, raw, 'azure');
        if (error) findings.push(`${where}: ${error}`);
      }
      const v = versionFinding(where, key, raw, 'azure');
      if (v) findings.push(v);
    }
    for (const key of requiredInputs(def)) if (!(key in inputs)) findings.push(`${where} requires input "${key}", which is not given.`);
  }
  const refs = [
    ...s.text.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\)/g),
    ...s.text.matchAll(/outputs\['([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)'\]/g),
  ];
  for (const [, name, output] of refs) {
    const def = named.get(name!);
    if (def && !(output! in def.outputs))
      findings.push(
        `${s.where}: task "${name}" (${def.name}) has no output "${output}"; it has: ${Object.keys(def.outputs).map(camelCase).join(', ')}.`,
      );
  }
  return findings;
}
