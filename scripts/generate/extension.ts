import { azureTaskFolder } from '../../shared/core/names';
import type { AnyStep } from '../../shared/core/step';

/**
 * `azure-tasks/vss-extension.json`: one Marketplace extension carrying every task. The publisher is package.json's
 * `config.azurePublisher`; `npm run package:azure -- --publisher <id>` packages under another one.
 */
export function extensionManifest(steps: readonly AnyStep[], version: string, publisher: string): Record<string, unknown> {
  return {
    manifestVersion: 1,
    id: 'mlship-tasks',
    publisher,
    version,
    name: 'mlship: ship vision models to biodevices',
    description: 'Validate data, train, gate, export to ONNX, benchmark on GPU runners, package, stage OTA and promote releases.',
    public: false,
    categories: ['Azure Pipelines'],
    targets: [{ id: 'Microsoft.VisualStudio.Services' }],
    tags: ['mlops', 'onnx', 'computer-vision', 'edge'],
    // images/icon.png and each task's icon.png are rendered from images/icon.svg when the extension is packaged.
    icons: { default: 'images/icon.png' },
    content: { details: { path: 'overview.md' } },
    files: [
      { path: 'overview.md' },
      { path: 'images', addressable: true },
      ...steps.map((s) => ({ path: azureTaskFolder(s.name, s.azure.major) })),
    ],
    contributions: steps.map((s) => ({
      id: `${s.name}-task`,
      type: 'ms.vss-distributed-task.task',
      targets: ['ms.vss-distributed-task.tasks'],
      properties: { name: azureTaskFolder(s.name, s.azure.major) },
    })),
  };
}
