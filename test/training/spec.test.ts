import * as path from 'node:path';
import { StepError } from '../../shared/core/errors';
import { attemptName, deriveJobName, isValidJobName } from '../../shared/training/job-name';
import { AbortedError, withRetry } from '../../shared/core/retry';
import { loadJobSpec, requireBackendFields } from '../../shared/training/spec';
import { tempWorkspace, write } from './helpers';

const dir = tempWorkspace('mlship-spec-');

function failure(fn: () => unknown): StepError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StepError) return error;
    throw error;
  }
  throw new Error('expected a StepError');
}

describe('job spec loading and validation', () => {
  it('reads JSON as well as YAML and reports the line of a bad value', () => {
    const file = write(dir, 'spec.json', '{\n  "name": "cellseg",\n  "maxRuntimeMinutes": "two hours",\n  "inputs": { "train": 42 }\n}\n');
    const e = failure(() => loadJobSpec(file, []));
    expect(e.message).toBe(
      `The job spec ${file} has 2 invalid fields:\n` +
        '  - field "maxRuntimeMinutes" must be a number, not "two hours" (line 3)\n' +
        '  - field "inputs.train" must be a URI string or an object with uri (and optional type, mode), not 42 (line 4)',
    );
    expect(e.file).toBe(file);
    expect(e.line).toBe(3);
  });

  it('explains unknown top-level fields and enum values with the allowed set', () => {
    const file = write(dir, 'typo.yml', 'name: cellseg\nbackends: sagemaker\nazureml:\n  distribution: { type: horovod }\n');
    const e = failure(() => loadJobSpec(file, []));
    expect(e.message).toContain(
      'unknown field "backends"; allowed fields at the top level: name, backend, command, inputs, outputPath, hyperparameters, environment, tags, maxRuntimeMinutes, metricsFile, dataFingerprint, sagemaker, azureml, local. Did you mean "backend"? (line 2)',
    );
    expect(e.message).toContain('field "azureml.distribution.type" is "horovod"; allowed values: pytorch, mpi, tensorflow (line 4)');
    expect(e.hint).toBe('Rename "backends" to "backend".');
  });

  it('attributes a bad value to the input that set it', () => {
    const e = failure(() => loadJobSpec(undefined, [{ path: ['sagemaker', 'instanceType'], value: 'g5.xlarge', label: 'instance-type' }]));
    expect(e.message).toBe(
      'The job settings has an invalid field:\n  - field "sagemaker.instanceType" is "g5.xlarge", which is not a SageMaker instance type like ml.g5.2xlarge (from input "instance-type")',
    );
  });

  it('merges map inputs into the file and lets scalar inputs win', () => {
    const file = write(dir, 'merge.yml', 'command: python a.py\nhyperparameters: { epochs: 10, lr: 0.1 }\ninputs: { train: data/train }\n');
    const { spec } = loadJobSpec(file, [
      { path: ['hyperparameters'], value: { lr: 0.01 }, label: 'hyperparameters' },
      { path: ['inputs'], value: { val: 'data/val' }, label: 'data-inputs' },
      { path: ['command'], value: 'python b.py', label: 'command' },
    ]);
    expect(spec.hyperparameters).toEqual({ epochs: 10, lr: 0.01 });
    expect(spec.inputs).toEqual({ train: { uri: 'data/train' }, val: { uri: 'data/val' } });
    expect(spec.command).toBe('python b.py');
    expect(spec.metricsFile).toBe('metrics.json');
  });

  it('reports YAML syntax errors with their position', () => {
    const file = write(dir, 'broken.yml', 'name: cellseg\ninputs: [train\n');
    const e = failure(() => loadJobSpec(file, []));
    expect(e.message).toMatch(new RegExp(`^The job spec ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid YAML or JSON: `));
    expect(e.line).toBe(3);
    const missing = failure(() => loadJobSpec(path.join(dir, 'nope.yml'), []));
    expect(missing.message).toBe(`Cannot read the job spec ${path.join(dir, 'nope.yml')}: ENOENT.`);
  });

  it('names what a backend still needs and which input can provide it', () => {
    const { spec } = loadJobSpec(write(dir, 'sm.yml', 'outputPath: s3://bucket/out/\nsagemaker: { image: img }\n'), []);
    const e = failure(() =>
      requireBackendFields(
        spec,
        'sagemaker',
        'submit',
        'sm.yml',
        (p) => ({ 'sagemaker.roleArn': 'role-arn', 'sagemaker.instanceType': 'instance-type' })[p],
      ),
    );
    expect(e.message).toBe(
      'The sagemaker backend needs "sagemaker.roleArn", "sagemaker.instanceType" to submit a job, but they are not set in sm.yml or the step inputs.',
    );
    expect(e.hint).toBe(
      'Set "roleArn" under "sagemaker:" in the job spec or the input "role-arn"; "instanceType" under "sagemaker:" in the job spec or the input "instance-type".',
    );
    const local = loadJobSpec(write(dir, 'l.yml', 'command: x\noutputPath: /tmp/out\ninputs: { train: ./data }\n'), []).spec;
    const notS3 = failure(() =>
      requireBackendFields(
        { ...local, sagemaker: { image: 'i', roleArn: 'r', instanceType: 'ml.m5.large' } },
        'sagemaker',
        'submit',
        undefined,
        () => undefined,
      ),
    );
    expect(notS3.message).toBe('The job spec field "outputPath" is "/tmp/out", but SageMaker reads and writes only S3 URIs.');
    expect(() => requireBackendFields(local, 'local', 'submit', undefined, () => undefined)).not.toThrow();
  });
});

describe('job names', () => {
  const key = { repository: 'acme/cells', runId: '123', job: 'train', step: 'cellseg' };

  it('are the same for every attempt of a run and differ between runs, jobs and steps', () => {
    const name = deriveJobName(key, 'cellseg');
    expect(name).toBe(deriveJobName({ ...key }, 'cellseg'));
    expect(name).toMatch(/^cellseg-[0-9a-f]{12}$/);
    const others = [
      deriveJobName({ ...key, runId: '124' }, 'cellseg'),
      deriveJobName({ ...key, job: 'train-2' }, 'cellseg'),
      deriveJobName({ ...key, step: 'detector' }, 'cellseg'),
    ];
    expect(new Set([name, ...others]).size).toBe(4);
  });

  it('fit SageMaker and Azure ML naming rules whatever the prefix', () => {
    const long = deriveJobName(key, 'A very Long spec name, with spaces & symbols that goes on and on and on');
    expect(long.length).toBeLessThanOrEqual(63 - 4);
    expect(isValidJobName(attemptName(long, 12))).toBe(true);
    expect(attemptName('cellseg-abc', 1)).toBe('cellseg-abc');
    expect(attemptName('cellseg-abc', 3)).toBe('cellseg-abc-r3');
    expect(isValidJobName('bad_name')).toBe(false);
  });
});

describe('retry with backoff', () => {
  const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
  const classify = (e: unknown) => (e === throttled ? { retry: true as const, reason: 'throttled' } : { retry: false as const });

  it('retries until the call succeeds and reports each wait', async () => {
    let calls = 0;
    const waits: number[] = [];
    const result = await withRetry(
      async () => {
        if (++calls <= 5) throw throttled;
        return 'ok';
      },
      { policy: { baseMs: 1, maxMs: 8, budgetMs: 5000 }, classify, onRetry: (i) => waits.push(i.delayMs) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(6);
    expect(waits).toHaveLength(5);
    expect(waits.every((w, i) => w >= 0 && w <= Math.min(8, 2 ** i))).toBe(true);
  });

  it('gives up once the budget is spent, and stops waiting when aborted', async () => {
    await expect(
      withRetry(async () => Promise.reject(throttled), { policy: { baseMs: 5, maxMs: 5, budgetMs: 30 }, classify }),
    ).rejects.toBe(throttled);
    await expect(
      withRetry(async () => Promise.reject(new Error('bad request')), { policy: { baseMs: 1, maxMs: 1, budgetMs: 1000 }, classify }),
    ).rejects.toThrow('bad request');
    const controller = new AbortController();
    const pending = withRetry(async () => Promise.reject(throttled), {
      policy: { baseMs: 60_000, maxMs: 60_000, budgetMs: 600_000 },
      classify: () => ({ retry: true, reason: 'x', afterMs: 60_000 }),
      signal: controller.signal,
    });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
  });
});
