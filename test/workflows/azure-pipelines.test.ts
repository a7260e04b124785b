import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateCondition, PipelineChecker, type PipelineModel } from './support/azure-check';
import { AZURE_DIR, mutate } from './support/examples';
import { loadStepCatalog } from './support/step-definitions';

// The official Azure Pipelines YAML schema (service-schema.json of the VS Code extension) is in no npm package,
// so it cannot be used offline: support/azure-check.ts is a focused structural check instead.

const catalog = loadStepCatalog();
const PIPELINE = 'azure-pipelines.yml';
const check = (dir = AZURE_DIR, parameters: Record<string, unknown> = {}): PipelineModel =>
  new PipelineChecker(catalog).check(path.join(dir, PIPELINE), parameters);

const copies: string[] = [];
afterAll(() => copies.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** A copy of the example folder with one replacement in one file. */
function mutated(file: string, from: string, to: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-azp-'));
  copies.push(dir);
  fs.cpSync(AZURE_DIR, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, file), mutate(fs.readFileSync(path.join(dir, file), 'utf8'), from, to));
  return dir;
}
const relative = (findings: string[], dir: string) => findings.map((f) => f.split(dir + path.sep).join(''));

describe('the Azure DevOps example pipeline', () => {
  it.each(['azureml', 'sagemaker'])('passes the structural, task and reference checks when training on %s', (backend) => {
    const model = check(AZURE_DIR, { trainingBackend: backend });
    expect(model.findings).toEqual([]);
    expect(model.stages.map((s) => s.name)).toEqual([
      'Validate',
      'Train',
      'Gate',
      'Export',
      'Benchmark',
      'Package',
      'Stage',
      'Promote_1',
      'Promote_2',
      'Promote_3',
    ]);
    const train = model.stages[1]!.jobs;
    expect(train.map((j) => j.steps.map((s) => s.task ?? s.kind))).toEqual([
      backend === 'azureml'
        ? ['checkout', 'SubmitTraining@1', 'AzureCLI@2', 'publish', 'publish']
        : ['checkout', 'SubmitTraining@1', 'AWSShellScript@1', 'publish', 'publish'],
    ]);
  });

  it('uses every mlship task by name@1, a GPU pool with demands, and a manual check before each promotion', () => {
    const model = check();
    const tasks = model.stages
      .flatMap((s) => s.jobs.flatMap((j) => j.steps.map((st) => st.task)))
      .filter((t) => t && catalog.byTaskName.has(t.split('@')[0]!));
    expect([...new Set(tasks)]).toEqual([
      'ValidateData@1',
      'SubmitTraining@1',
      'GateMetrics@1',
      'ExportOnnx@1',
      'BenchmarkModel@1',
      'BuildDevicePackage@1',
      'StageOta@1',
      'PromoteRelease@1',
    ]);
    expect(model.stages.find((s) => s.name === 'Benchmark')!.jobs[0]!.node.pool).toEqual({
      name: 'biodevice-gpu',
      demands: ['gpu', 'cuda -equals 12.2', 'Agent.OS -equals Linux'],
    });
    for (const phase of [1, 2, 3]) {
      const stage = model.stages.find((s) => s.name === `Promote_${phase}`)!;
      const [confirm, promote] = stage.jobs;
      expect({
        pool: confirm!.node.pool,
        task: confirm!.steps[0]!.task,
        onTimeout: (confirm!.steps[0]!.node.inputs as Record<string, unknown>).onTimeout,
      }).toEqual({ pool: 'server', task: 'ManualValidation@1', onTimeout: 'reject' });
      expect({ kind: promote!.kind, environment: promote!.node.environment, dependsOn: promote!.dependsOn }).toEqual({
        kind: 'deployment',
        environment: 'biodevices-production',
        dependsOn: ['confirm'],
      });
      const inputs = promote!.steps.find((s) => s.task === 'PromoteRelease@1')!.node.inputs as Record<string, unknown>;
      expect(inputs).toMatchObject({ phases: '10,50,100', phase, requireApproval: true, noSelfApproval: true });
      // Only the last phase moves the model registry (the template's ${{ if }}).
      expect(inputs.registry).toBe(phase === 3 ? 'azureml' : undefined);
    }
  });

  it('keeps the signing key to the stages that sign', () => {
    const model = check();
    const withKey = model.stages.filter((s) => JSON.stringify(s.node.variables ?? []).includes('mlship-signing')).map((s) => s.name);
    expect(withKey).toEqual(['Package', 'Stage', 'Promote_1', 'Promote_2', 'Promote_3']);
  });

  // [what, file, from, to, first finding, number of findings: one template used three times reports three times]
  const cases: [string, string, string, string, string, number][] = [
    [
      'an unknown input',
      PIPELINE,
      'maxClassDrop: 0.03',
      'maxClassDorp: 0.03',
      'GateMetrics@1 has no input "maxClassDorp" (did you mean "maxClassDrop"?).',
      1,
    ],
    [
      'a missing required input',
      PIPELINE,
      '              groundTruth: data/cells/test/masks\n',
      '',
      'GateMetrics@1 requires input "groundTruth", which is not given.',
      1,
    ],
    [
      'a value the task refuses',
      PIPELINE,
      'provider: cuda',
      'provider: gpu',
      'Input "provider" has value "gpu", which is not one of the allowed values: auto, cuda, tensorrt, cpu.',
      1,
    ],
    [
      'a literal secret',
      PIPELINE,
      'signingKey: $(mlship-signing-key)\n              outputDir',
      'signingKey: keys/signing.pem\n              outputDir',
      'BuildDevicePackage@1 input "signingKey" is a secret and must be a $(secretVariable), not a literal.',
      1,
    ],
    ['a wrong task version', PIPELINE, 'task: ExportOnnx@1', 'task: ExportOnnx@2', "ExportOnnx@2: the task's major version is 1.", 1],
    [
      'an output a step does not have',
      PIPELINE,
      "outputs['gate.candidateMetric']",
      "outputs['gate.candidate']",
      'step "gate" (GateMetrics@1) has no output "candidate"',
      1,
    ],
    [
      'stageDependencies without a direct dependsOn',
      PIPELINE,
      '    dependsOn: [Gate, Export]\n',
      '    dependsOn: [Export]\n',
      'stageDependencies.Gate is only available when stage Benchmark depends on Gate directly (dependsOn: Export).',
      1,
    ],
    [
      'a step output read from another job',
      PIPELINE,
      'releaseNotes: Trained by $(trainingJob)',
      'releaseNotes: Trained by $(train.jobName)',
      '$(train.jobName) is an output of Train.train; in another job read it through dependencies/stageDependencies into a variable.',
      1,
    ],
    [
      'a script output that is not set',
      PIPELINE,
      'version: $(version.value)',
      'version: $(version.semver)',
      'step "version" (bash) has no output "semver"',
      1,
    ],
    [
      'a missing SYSTEM_ACCESSTOKEN',
      'templates/train-azureml.yml',
      '        env:\n          SYSTEM_ACCESSTOKEN: $(System.AccessToken) # exchanged',
      '        # SYSTEM_ACCESSTOKEN: $(System.AccessToken) # exchanged',
      'SubmitTraining@1 needs env SYSTEM_ACCESSTOKEN: $(System.AccessToken)',
      1,
    ],
    [
      'an unknown template parameter',
      PIPELINE,
      '      percent: 50\n',
      '      percentage: 50\n',
      'templates/promote.yml declares no parameter "percentage" (did you mean "percent"?).',
      2,
    ],
    [
      'a template parameter of the wrong type',
      PIPELINE,
      '      phase: 2\n',
      "      phase: 'two'\n",
      'parameter "phase" of templates/promote.yml must be a number, not "two".',
      3,
    ],
    [
      'a missing template',
      PIPELINE,
      'template: templates/train-azureml.yml',
      'template: templates/train-aml.yml',
      'template templates/train-aml.yml does not exist',
      9,
    ],
    [
      'a script in an agentless job',
      'templates/promote.yml',
      '          - task: ManualValidation@1',
      '          - script: echo waiting\n          - task: ManualValidation@1',
      'an agentless job (pool: server) can only run agentless tasks, not script.',
      3,
    ],
    [
      'an unknown job key',
      PIPELINE,
      '        timeoutInMinutes: 45',
      '        timeoutInMinute: 45',
      'unknown key "timeoutInMinute" (did you mean "timeoutInMinutes"?).',
      1,
    ],
    [
      'a bad demand',
      PIPELINE,
      '            - cuda -equals 12.2',
      '            - cuda == 12.2',
      'demand "cuda == 12.2" must be "capability" or "capability -equals value".',
      1,
    ],
    [
      'an unknown task',
      'templates/ota-sas.yml',
      'task: AzureCLI@2',
      'task: AzureCli@3',
      'task AzureCli@3 is neither an mlship task nor one this check knows',
      4,
    ],
    [
      'a deployment output without the job prefix',
      PIPELINE,
      "      cloudDice: $[ stageDependencies.Gate.gate.outputs['gate.candidateMetric'] ]",
      "      cloudDice: $[ stageDependencies.Gate.gate.outputs['gate.candidateMetric'] ]\n      sequence: $[ stageDependencies.Gate.gate.outputs['gate.passed'] ]\n      staged: $[ stageDependencies.Stage.stage.outputs['ota.sequence'] ]",
      'stageDependencies.Stage is only available when stage Benchmark depends on Stage directly',
      1,
    ],
    [
      'an artifact no earlier stage publishes',
      PIPELINE,
      '          - download: current\n            artifact: benchmark',
      '          - download: current\n            artifact: benchmarks',
      'Package.package downloads artifact "benchmarks", which no stage it waits for publishes.',
      1,
    ],
  ];
  it.each(cases)('catches %s', (_, file, from, to, message, count) => {
    const dir = mutated(file, from, to);
    const findings = relative(check(dir).findings, dir);
    expect(findings[0]).toContain(message);
    expect(findings).toHaveLength(count);
  });

  it('addresses a runOnce deployment job output as <job>.<step>.<variable>', () => {
    const from = '      instructions: Check that the staging instruments';
    const ok = mutated(
      PIPELINE,
      from,
      "      instructions: Sequence $[ stageDependencies.Stage.stage.outputs['stage.ota.sequence'] ]. Check that the staging instruments",
    );
    expect(check(ok).findings).toEqual([]);
    const wrong = mutated(
      PIPELINE,
      from,
      "      instructions: Sequence $[ stageDependencies.Stage.stage.outputs['ota.sequence'] ]. Check that the staging instruments",
    );
    expect(relative(check(wrong).findings, wrong)).toEqual([
      "templates/promote.yml: job Promote_1.confirm: outputs of runOnce deployment job \"stage\" are addressed as 'stage.<step>.<variable>', not 'ota.sequence'.",
    ]);
  });
});

describe('compile-time conditions', () => {
  it('evaluates parameters and literals, and leaves run-time values undecided', () => {
    const p = { trainingBackend: 'sagemaker', registry: 'none', phase: 3 };
    expect(evaluateCondition(" eq(parameters.trainingBackend, 'azureml') ", p)).toBe(false);
    expect(evaluateCondition("ne(parameters.registry, 'none')", p)).toBe(false);
    expect(evaluateCondition("and(eq(parameters.phase, 3), not(eq(parameters.registry, 'azureml')))", p)).toBe(true);
    expect(evaluateCondition("startsWith(variables['Build.SourceBranch'], 'refs/tags/v')", p)).toBeUndefined();
    expect(evaluateCondition("and(eq(parameters.registry, 'x'), eq(variables['Build.Reason'], 'PullRequest'))", p)).toBe(false);
    expect(evaluateCondition("or(eq(parameters.registry, 'none'), eq(variables['Build.Reason'], 'PullRequest'))", p)).toBe(true);
  });
});
