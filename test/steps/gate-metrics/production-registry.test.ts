import * as path from 'node:path';
import { runStep } from '../../../shared/core/runtime';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import type { AzureAuth } from '../../../shared/cloud/auth/azure';
import { createRegistry } from '../../../shared/registry';
import { createGateMetricsStep } from '../../../shared/steps/gate-metrics';
import { AzureFake, SUB } from '../../fakes/azure-fake';
import { cocoSet, gateAgainstRegistry } from '../../support/gate-registry';
import { FAST_RETRY, tempWorkspace } from '../../training/helpers';

// The SageMaker and MLflow backends run the same check against moto and a real mlflow server
// (test/registry/sagemaker-moto.test.ts, test/registry/mlflow.test.ts).

describe('gate-metrics reads the production model’s metrics from a registry', () => {
  it('local registry, opened from the step inputs', async () => {
    const ws = tempWorkspace('mlship-gate-reg-');
    const registry = createRegistry('local', { root: path.join(ws, 'models') });
    await gateAgainstRegistry(registry, ws, { registry: 'local', registryPath: 'models' }, {}, (n) => `/models/gate/${n}`);
  });

  it('Azure ML model versions (ARM REST against the fake; Azure ML has no emulator)', async () => {
    const fake = await new AzureFake().start();
    try {
      const auth: AzureAuth = { source: 'test', token: async () => fake.mintToken().token, invalidate() {} };
      const registry = createRegistry('azureml', {
        subscriptionId: SUB,
        resourceGroup: 'ml-rg',
        workspace: 'cells-ws',
        auth,
        armEndpoint: fake.url,
        retry: FAST_RETRY,
      });
      const step = createGateMetricsStep({ openRegistry: () => registry });
      await gateAgainstRegistry(
        registry,
        tempWorkspace('mlship-gate-reg-'),
        { registry: 'azureml' },
        {},
        (n) => `azureml://jobs/gate-${n}/outputs/model`,
        step,
      );
    } finally {
      await fake.close();
    }
  });

  it('names the metric that is missing and the ones the version has', async () => {
    const ws = tempWorkspace('mlship-gate-reg-');
    const registry = createRegistry('local', { root: path.join(ws, 'models') });
    await registry.register({ name: 'seg', artifactUri: '/m/1', metrics: { dice: 0.8, 'dice/class-1': 0.7, iou: 0.6 }, trainingJob: 'j1' });
    await registry.setStage('seg', '1', 'production');
    const { gt, half } = cocoSet(ws);
    const host = new MemoryHost(
      { groundTruth: gt, candidatePredictions: half, productionModel: 'seg', registryPath: 'models', maxDrop: 0.1, bootstrapResamples: 0 },
      { workspace: ws },
    );
    await runStep(createGateMetricsStep(), host, new AbortController().signal);
    expect(host.failure).toContain('The production version seg v1 in the local registry has no "AP" metric (it has dice, iou).');
  });
});
