import { cloudInputs, registryInputs } from '../../shared/cloud/inputs';
import { mergeInputs, omitInputs, pickInputs } from '../../shared/core/merge-inputs';
import { storeCloudInputs, storeInputs } from '../../shared/ota/step-inputs';
import { steps } from '../../shared/steps';

describe('mergeInputs', () => {
  it('throws at definition time when two fragments define the same input, naming it and both fragments', () => {
    // The clash this guards against: the OTA store's region and the registry's region were once one `region`.
    const store = { region: { type: 'string', description: 'bucket region' } } as const;
    expect(() => mergeInputs({ channel: { type: 'string', description: 'c' } }, store, cloudInputs)).toThrow(
      'Input "region" is defined twice: by input fragment 2 and by fragment 3 of mergeInputs()',
    );
  });

  it('keeps the order of the fragments and of the inputs within each', () => {
    const merged = mergeInputs({ a: { type: 'string', description: 'a' } }, pickInputs(cloudInputs, 'roleToAssume', 'region'), {
      z: { type: 'boolean', description: 'z' },
    });
    expect(Object.keys(merged)).toEqual(['a', 'roleToAssume', 'region', 'z']);
    expect(merged.region).toBe(cloudInputs.region);
  });

  it('pickInputs and omitInputs refuse keys the fragment does not have', () => {
    expect(() => pickInputs(cloudInputs, 'regoin' as 'region')).toThrow('pickInputs(): the fragment has no input "regoin".');
    expect(() => omitInputs(registryInputs, 'registy' as 'registry')).toThrow('omitInputs(): the fragment has no input "registy".');
    expect(Object.keys(omitInputs(registryInputs, 'registry'))).toEqual([
      'registryPath',
      'registryMetricsS3Prefix',
      'mlflowTrackingUri',
      'mlflowToken',
      'mlflowUsername',
      'mlflowPassword',
      'registryAlias',
    ]);
  });

  it('the shared fragments of the store steps do not clash: the bucket region and the AWS region are two inputs', () => {
    expect(() => mergeInputs(storeInputs, storeCloudInputs)).not.toThrow();
    for (const name of ['stage-ota', 'promote-release']) {
      const step = steps.find((s) => s.name === name)!;
      expect(Object.keys(step.inputs)).toEqual(
        expect.arrayContaining(['storeRegion', 'region', 'roleToAssume', 'azureClientId', 'azureTenantId', 'azureServiceConnection']),
      );
    }
  });
});
