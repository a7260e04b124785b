import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as internal from 'azure-pipelines-task-lib/internal';
import * as tl from 'azure-pipelines-task-lib/task';
import type { Annotation, ProgressReport, RunInfo, ServiceConnection } from '../../shared/core/host';
import { HostBase, type LogLevel } from '../../shared/core/host-base';
import { percentOf } from '../../shared/core/progress';

/** Endpoint data keys the steps read from AzureRM and AWS service connections. */
const ENDPOINT_DATA_KEYS = [
  'subscriptionId',
  'subscriptionName',
  'environment',
  'scopeLevel',
  'resourceGroupName',
  'workspaceName',
  'region',
];

/**
 * Azure DevOps host: inputs through azure-pipelines-task-lib (camelCase names, as task.json declares them),
 * outputs as output variables (`isOutput=true`, read as `$(stepName.outputName)` in later jobs), logging commands
 * for masks, issues, progress and the summary.
 */
export class AzureHost extends HostBase {
  readonly platform = 'azure' as const;
  readonly workspace = tl.getVariable('System.DefaultWorkingDirectory') ?? process.cwd();
  readonly tempDir = tl.getVariable('Agent.TempDirectory') ?? os.tmpdir();
  readonly env = process.env;
  readonly run: RunInfo;

  constructor() {
    super();
    // task-lib fills its vault (inputs, endpoint credentials) once per process, in the first copy that loads. A
    // bundle carries its own copy, so if another copy loaded first (TaskMockRunner.run() without noMockTask
    // loads one) the inputs are in that copy's vault and unreachable from here: say so instead of a TypeError.
    if (!internal._vault) {
      throw new Error(
        'azure-pipelines-task-lib was loaded by another module before this task, so the task cannot read its inputs. In L0 tests run the bundle with TaskMockRunner.run(true).',
      );
    }
    const v = (name: string) => tl.getVariable(name) || undefined;
    const collection = v('System.CollectionUri');
    const project = v('System.TeamProject');
    const buildId = v('Build.BuildId');
    this.run = {
      id: buildId ?? `azure-${process.pid}`,
      attempt: Number(v('System.JobAttempt') ?? 1),
      repository: v('Build.Repository.Name'),
      commit: v('Build.SourceVersion'),
      ref: v('Build.SourceBranch'),
      actor: v('Build.RequestedForEmail') ?? v('Build.RequestedFor'),
      workflow: v('Build.DefinitionName'),
      job: [v('System.StageName'), v('System.JobName'), v('System.TaskInstanceName')].filter(Boolean).join('.') || undefined,
      url:
        collection && project && buildId
          ? `${collection.replace(/\/$/, '')}/${encodeURIComponent(project)}/_build/results?buildId=${buildId}`
          : undefined,
    };
  }

  inputLabel(key: string): string {
    return key;
  }
  getInput(key: string, options: { secret?: boolean } = {}): string | undefined {
    // tl.getInput echoes the value to the debug log; a secret is read from the task-lib's vault instead.
    const v = options.secret ? internal._vault.retrieveSecret(`INPUT_${internal._getVariableKey(key)}`) : tl.getInput(key, false);
    return v === undefined || v === '' ? undefined : v;
  }
  setOutput(key: string, value: string): void {
    tl.setVariable(key, value, false, true);
  }
  protected override registerSecretLine(line: string): void {
    tl.setSecret(line);
  }
  protected emit(level: LogLevel, text: string, a?: Annotation): void {
    if (level === 'debug') tl.debug(text);
    else if (level === 'info') console.log(text);
    else tl.logIssue(level === 'warning' ? tl.IssueType.Warning : tl.IssueType.Error, text, a?.file, a?.line, a?.column);
  }
  protected emitGroupStart(title: string): void {
    console.log(`##[group]${title}`);
  }
  protected emitGroupEnd(): void {
    console.log('##[endgroup]');
  }
  protected emitSummary(markdown: string): void {
    // The agent reads the file after the task ends, so it must outlive the process: Agent.TempDirectory does.
    const file = path.join(this.tempDir, `mlship-summary-${process.pid}-${Date.now()}.md`);
    fs.writeFileSync(file, markdown);
    tl.uploadSummary(file);
  }
  protected override emitProgress(report: ProgressReport, line: string): void {
    const percent = percentOf(report);
    if (percent !== undefined) tl.setProgress(percent, report.label);
    console.log(line);
  }
  protected emitFailed(message: string): void {
    tl.setResult(tl.TaskResult.Failed, message);
  }
  /** Task variables: the only state the agent keeps between a task's entries. */
  override saveState(key: string, value: string): void {
    tl.setTaskVariable(key, value);
  }
  override getState(key: string): string | undefined {
    return tl.getTaskVariable(key) || undefined;
  }
  getServiceConnection(id: string): ServiceConnection | undefined {
    const scheme = tl.getEndpointAuthorizationScheme(id, true);
    if (!scheme) return undefined;
    const auth = tl.getEndpointAuthorization(id, true);
    const parameters = { ...(auth?.parameters ?? {}) };
    for (const value of Object.values(parameters)) if (value) this.setSecret(value);
    const data: Record<string, string> = {};
    for (const key of ENDPOINT_DATA_KEYS) {
      const value = tl.getEndpointDataParameter(id, key, true);
      if (value) data[key] = value;
    }
    return { id, url: tl.getEndpointUrl(id, true), scheme, parameters, data };
  }
}
