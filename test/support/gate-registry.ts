import * as fs from 'node:fs';
import * as path from 'node:path';
import { runStep } from '../../shared/core/runtime';
import type { AnyStep } from '../../shared/core/step';
import { MemoryHost } from '../../shared/hosts/memory-host';
import type { ModelRegistry } from '../../shared/registry/types';
import { gateMetricsStep } from '../../shared/steps/gate-metrics';

/**
 * gate-metrics against the production version's metrics read from a registry, the same way for every
 * backend: a small COCO test set where the candidate finds half the cells, and a production version in the
 * registry that is first much better (the gate fails) and then worse (it passes).
 */
export async function gateAgainstRegistry(
  registry: ModelRegistry,
  workspace: string,
  registryInputs: Record<string, string>,
  env: NodeJS.ProcessEnv,
  artifact: (n: number) => string,
  step: AnyStep = gateMetricsStep,
): Promise<void> {
  const { gt, half } = cocoSet(workspace);
  const model = 'gate-model';
  const run = async () => {
    const host = new MemoryHost(
      { groundTruth: gt, candidatePredictions: half, productionModel: model, maxDrop: 0.05, bootstrapResamples: 0, ...registryInputs },
      { workspace, env },
    );
    const outcome = await runStep(step, host, new AbortController().signal);
    return { host, outcome };
  };

  // No production version yet: the error names the model and the registry.
  await registry.register({ name: model, artifactUri: artifact(1), metrics: { AP: 0.9, AP50: 0.95 }, trainingJob: 'gate-job-1' });
  const none = await run();
  expect(none.outcome.ok).toBe(false);
  expect(none.host.failure).toContain(`Model "${model}" has no production version in the ${registry.kind} registry`);

  await registry.setStage(model, '1', 'production', { approval: 'approved' });
  const worse = await run();
  expect(worse.outcome.ok).toBe(false);
  expect(Number(worse.host.outputs.productionMetric)).toBe(0.9);
  expect(worse.host.failure).toContain('Metrics gate failed: max-drop: AP fell by');
  const report = JSON.parse(fs.readFileSync(worse.host.outputs.report, 'utf8'));
  expect(report.production).toMatchObject({ source: `${registry.kind} registry ${model} v1`, value: 0.9 });

  await registry.register({ name: model, artifactUri: artifact(2), metrics: { AP: 0.3 }, trainingJob: 'gate-job-2' });
  await registry.setStage(model, '2', 'production', { approval: 'approved' });
  const better = await run();
  expect(better.host.failure).toBeUndefined();
  expect(better.outcome.ok).toBe(true);
  expect(Number(better.host.outputs.productionMetric)).toBe(0.3);
  expect(Number(better.host.outputs.candidateMetric)).toBeGreaterThan(0.3);
}

/** Four images with two cells each; `half` finds one cell per image. */
export function cocoSet(dir: string): { gt: string; half: string } {
  const images = [1, 2, 3, 4].map((id) => ({ id, width: 100, height: 100, file_name: `${id}.png` }));
  const annotations = images.flatMap((im, i) => [
    { id: 2 * i + 1, image_id: im.id, category_id: 1, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 },
    { id: 2 * i + 2, image_id: im.id, category_id: 1, bbox: [60, 60, 20, 20], area: 400, iscrowd: 0 },
  ]);
  const gt = path.join(dir, 'gate-gt.json');
  fs.writeFileSync(gt, JSON.stringify({ images, annotations, categories: [{ id: 1, name: 'cell' }] }));
  const half = path.join(dir, 'gate-half.json');
  fs.writeFileSync(half, JSON.stringify(images.map((im) => ({ image_id: im.id, category_id: 1, bbox: [10, 10, 20, 20], score: 0.9 }))));
  return { gt, half };
}
