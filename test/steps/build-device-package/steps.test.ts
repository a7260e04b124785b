/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runStep } from '../../../shared/core/runtime';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { generateSigningKeyPair, type PackageManifest } from '../../../shared/package';
import { buildDevicePackageStep } from '../../../shared/steps/build-device-package';
import { verifyPackageStep } from '../../../shared/steps/verify-package';
import { makeWorkspace, readEntries, tempDir } from '../../package/helpers';

const keys = generateSigningKeyPair();
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

describe('build-device-package and verify-package steps', () => {
  const ws = tempDir();
  beforeAll(async () => {
    await makeWorkspace(ws);
    fs.writeFileSync(path.join(ws, 'signing.pub.pem'), keys.publicKeyPem);
  });
  afterAll(() => fs.rmSync(ws, { recursive: true, force: true }));

  const buildInputs = {
    models: 'model/cellseg.onnx\n',
    name: 'cellseg',
    version: '3.1.0',
    labels: 'model/classes.json',
    preprocessing: 'model/preprocessing.json',
    releaseNotes: 'Retrained on 2024-Q2 data.',
    deviceModel: 'BioScope X2\nBioScope X3',
    cuda: '12.2',
    gpuMemoryMb: 3072,
    gateReport: 'gate.json',
    trainingJob: 'azureml:cellseg-77',
    signingKey: keys.privateKeyPem,
    outputDir: 'dist',
  };

  test('fails on a mismatch naming both sides, passes it when allow-mismatch names the check, and makes golden vectors', async () => {
    fs.writeFileSync(path.join(ws, 'model', 'two.txt'), 'background\ncell\n');
    const inputs = { ...buildInputs, labels: 'model/two.txt', outputDir: 'mismatch' };
    const refused = new MemoryHost(inputs, { workspace: ws });
    await runStep(buildDevicePackageStep, refused);
    expect(refused.failure).toContain(
      `- labels-output: the labels file ${path.join(ws, 'model', 'two.txt')} has 2 classes, but output mask [1, 3, height, width] of ${path.join(ws, 'model', 'cellseg.onnx')} has 3 channel(s), which fits 3`,
    );
    expect(refused.failure).toContain('list the check in "allow-mismatch" (labels-output)');
    const typo = new MemoryHost({ ...inputs, allowMismatch: 'labels' }, { workspace: ws });
    await runStep(buildDevicePackageStep, typo);
    expect(typo.failure).toContain('"allow-mismatch" names the check "labels", which does not exist.');

    const allowed = new MemoryHost(
      { ...inputs, allowMismatch: 'labels-output', goldenImages: 'samples', goldenCount: 1 },
      { workspace: ws },
    );
    const sharp = (await import('sharp')).default;
    fs.mkdirSync(path.join(ws, 'samples'), { recursive: true });
    await sharp(Buffer.alloc(512 * 512 * 3, 128), { raw: { width: 512, height: 512, channels: 3 } })
      .png()
      .toFile(path.join(ws, 'samples', 'one.png'));
    await runStep(buildDevicePackageStep, allowed);
    expect(allowed.failure).toBeUndefined();
    expect(allowed.text).toContain('Allowed mismatch (labels-output), recorded in the manifest: the labels file');
    expect(allowed.summary).toContain('Golden test vectors: 1 case(s) in golden/index.json');
    const manifest = JSON.parse(
      readEntries(allowed.outputs.archive)
        .find((e) => e.path === 'manifest.json')!
        .data!.toString(),
    ) as PackageManifest;
    expect(manifest.allowedMismatches?.map((m) => m.check)).toEqual(['labels-output']);
    expect(manifest.golden).toEqual({ index: 'golden/index.json', cases: 1 });
  });

  test('builds the package, reports it, and never prints the key', async () => {
    const host = new MemoryHost(buildInputs, {
      workspace: ws,
      run: {
        id: '9001',
        attempt: 2,
        commit: COMMIT,
        repository: 'lab/cellseg',
        url: 'https://ci/9001',
        workflow: 'release',
        job: 'package',
      },
    });
    const outcome = await runStep(buildDevicePackageStep, host);
    expect(host.failure).toBeUndefined();
    expect(outcome.ok).toBe(true);
    const archive = path.join(ws, 'dist', 'cellseg-3.1.0.tar.gz');
    expect(host.outputs.archive).toBe(archive);
    expect(host.outputs.version).toBe('3.1.0');
    expect(Number(host.outputs.size)).toBe(fs.statSync(archive).size);
    expect(host.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(host.outputs.manifestDigest).toMatch(/^[0-9a-f]{64}$/);

    const manifest = JSON.parse(
      readEntries(archive)
        .find((e) => e.path === 'manifest.json')!
        .data!.toString(),
    ) as PackageManifest;
    expect(manifest.compatibility).toEqual({
      deviceModels: ['BioScope X2', 'BioScope X3'],
      minDriverVersion: null,
      minCudaVersion: '12.2',
      minOnnxRuntimeVersion: null,
      minComputeCapability: null,
      minGpuMemoryMb: 3072,
    });
    expect(manifest.provenance).toEqual({
      gitCommit: COMMIT,
      repository: 'lab/cellseg',
      workflowRun: { id: '9001', attempt: 2, url: 'https://ci/9001', workflow: 'release', job: 'package' },
      trainingJob: 'azureml:cellseg-77',
      dataFingerprint: null,
      gateReport: {
        passed: true,
        task: 'segmentation',
        model: { path: path.join(ws, 'model', 'cellseg.onnx'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
        metrics: { mAP: 0.612, dice: 0.871 },
      },
      benchmarkReport: null,
    });
    expect(manifest.releaseNotes).toBe('Retrained on 2024-Q2 data.');

    const keyBody = keys.privateKeyPem.split('\n')[1];
    expect(host.text).not.toContain(keyBody);
    expect(host.summary).not.toContain(keyBody);
    expect(host.text).toContain(`Wrote ${archive}`);
    expect(host.summary).toContain('## Device package cellseg 3.1.0');
    expect(host.summary).toContain(
      '| models/cellseg.onnx | ai.onnx 17 | image: float32 [1, 3, height, width] | mask: float32 [1, 3, height, width] |',
    );
    expect(host.progressReports[host.progressReports.length - 1]).toMatchObject({
      label: 'package cellseg',
      unit: 'bytes',
      done:
        fs.statSync(path.join(ws, 'model', 'cellseg.onnx')).size +
        fs.statSync(path.join(ws, 'model', 'classes.json')).size +
        fs.statSync(path.join(ws, 'model', 'preprocessing.json')).size,
    });

    const verify = new MemoryHost(
      { archive: 'dist/cellseg-3.1.0.tar.gz', publicKey: 'signing.pub.pem', extractTo: 'slots/a' },
      { workspace: ws },
    );
    await runStep(verifyPackageStep, verify);
    expect(verify.failure).toBeUndefined();
    expect(verify.outputs).toMatchObject({ name: 'cellseg', version: '3.1.0', sha256: host.outputs.sha256, files: '3' });
    expect(fs.existsSync(path.join(ws, 'slots', 'a', 'models', 'cellseg.onnx'))).toBe(true);
    expect(verify.summary).toContain('## Verified cellseg 3.1.0');

    const inline = new MemoryHost({ archive: archive, publicKey: keys.publicKeyPem }, { workspace: ws });
    await runStep(verifyPackageStep, inline);
    expect(inline.outputs.keyId).toBe(host.outputs.keyId);
  });

  test('fails with the step message for a bad version, a bad signing key, a wrong public key and a missing key file', async () => {
    const badVersion = new MemoryHost({ ...buildInputs, version: '3.1' }, { workspace: ws });
    expect((await runStep(buildDevicePackageStep, badVersion)).ok).toBe(false);
    expect(badVersion.failure).toContain('Version "3.1" is not a semantic version');

    const badKey = new MemoryHost(
      { ...buildInputs, signingKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyMaterial' },
      { workspace: ws },
    );
    await runStep(buildDevicePackageStep, badKey);
    expect(badKey.failure).toContain('The key in input "signing-key" is not an Ed25519 private key in PEM (PKCS#8) form.');
    expect(badKey.failure).not.toContain('FakeKeyMaterial');

    const wrongKey = new MemoryHost(
      { archive: 'dist/cellseg-3.1.0.tar.gz', publicKey: generateSigningKeyPair().publicKeyPem },
      { workspace: ws },
    );
    await runStep(verifyPackageStep, wrongKey);
    expect(wrongKey.failure).toMatch(/it was signed with key [0-9a-f]{64}, but the public key given has id [0-9a-f]{64}\./);

    const missingKeyFile = new MemoryHost({ archive: 'dist/cellseg-3.1.0.tar.gz', publicKey: 'keys/nope.pem' }, { workspace: ws });
    await runStep(verifyPackageStep, missingKeyFile);
    expect(missingKeyFile.failure).toContain('The key file "keys/nope.pem" given in input "public-key" does not exist');
  });

  test('declares the Azure identity and the inputs the issue asks for', () => {
    expect(buildDevicePackageStep.azure).toEqual({
      id: '0c14e229-ab1c-4d0c-b9f4-2a81ddaf7fa3',
      major: 1,
      minor: 0,
      patch: 0,
      category: 'Deploy',
    });
    expect(Object.keys(buildDevicePackageStep.inputs)).toEqual(
      expect.arrayContaining([
        'models',
        'preprocessing',
        'labels',
        'name',
        'version',
        'releaseNotes',
        'deviceModel',
        'minDriver',
        'cuda',
        'onnxruntime',
        'computeCapability',
        'gpuMemoryMb',
        'signingKey',
        'gitCommit',
        'trainingJob',
        'dataFingerprint',
        'gateReport',
        'benchmarkReport',
        'tensorrtCaches',
        'outputDir',
      ]),
    );
    expect(buildDevicePackageStep.inputs.signingKey.type).toBe('secret');
    expect(Object.keys(buildDevicePackageStep.outputs)).toEqual(['archive', 'sha256', 'size', 'manifestDigest', 'version', 'keyId']);
  });
});
