import { azureTaskFolder, camelCase, kebabCase, pascalCase } from '../../shared/core/names';

describe('names', () => {
  it.each([
    ['groundTruth', 'ground-truth'],
    ['maxP95Ms', 'max-p95-ms'],
    ['iouType', 'iou-type'],
    ['message', 'message'],
    ['gpuMemoryMb', 'gpu-memory-mb'],
  ])('%s ⇄ %s', (camel, kebab) => {
    expect(kebabCase(camel)).toBe(kebab);
    expect(camelCase(kebab)).toBe(camel);
  });

  it('names Azure task folders by PascalCase and major version', () => {
    expect(pascalCase('gate-metrics')).toBe('GateMetrics');
    expect(azureTaskFolder('build-device-package', 2)).toBe('BuildDevicePackageV2');
  });
});
