/** @jest-environment ./test/onnx/ort-environment.js */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { StepError } from '../../shared/core/errors';
import { buildPackage, generateSigningKeyPair, manifestSchemaErrors, verifyPackage, type BuildPackageOptions } from '../../shared/package';
import type { MismatchCheck } from '../../shared/package/cross-checks';
import { runSelfTest } from '../../shared/package/self-test';
import { extractVerifiedPackage } from '../../shared/package/verify';
import { tempDir } from './helpers';
import { segmentationModel, writeModel, type ModelSpec } from './onnx-fixture';

/**
 * build-device-package refuses a package whose files contradict each other — the cases found by using it:
 * a spec that differs from the one stamped into the model, an RGB spec for a 1-channel model, 4 labels for a
 * 2-channel output, a detection report beside a segmentation model, reports about another model or data set —
 * naming both values and where each came from; a deliberate exception passes and is recorded in the manifest.
 */
const keys = generateSigningKeyPair();
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const STAMPED = { version: 1, color: 'gray', maxValue: 255, mean: [0.2], std: [0.1], layout: 'NCHW', dtype: 'float32' };

describe('build-device-package cross-checks', () => {
  const root = tempDir('mlship-cross-');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const file = (name: string, content: unknown) => {
    const p = path.join(root, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  /** A 1-channel, 2-class segmentation model (gray in, 2 channels out) with export-onnx's metadata. */
  const grayModel = (name: string, extra: Partial<ModelSpec> = {}) => {
    const p = path.join(root, name);
    return writeModel(
      p,
      segmentationModel({
        inputs: [{ name: 'image', elemType: 1, shape: [1, 1, 'height', 'width'] }],
        outputs: [{ name: 'logits', elemType: 1, shape: [1, 2, 'height', 'width'] }],
        initializers: [{ name: 'pair', dims: [1, 2, 1, 1], raw: Buffer.from(new Float32Array([0, 1]).buffer) }],
        nodes: [['Add', ['image', 'pair'], ['logits']]],
        metadata: { 'mlship.preprocessing': JSON.stringify(STAMPED), 'mlship.data_fingerprint': 'sha256:cells-v3' },
        ...extra,
      }),
    ).then(() => p);
  };
  let model: string;
  let base: BuildPackageOptions;
  const bound = (over: Record<string, unknown> = {}) => ({
    task: 'segmentation',
    model: { path: model, sha256: sha256(model) },
    dataFingerprint: 'sha256:cells-v3',
    ...over,
  });
  beforeAll(async () => {
    model = await grayModel('cells.onnx');
    base = {
      name: 'cells',
      version: '2.0.0',
      models: [model],
      preprocessing: file('spec.json', STAMPED),
      labels: file('labels.txt', 'background\ncell\n'),
      provenance: {
        gateReport: file('gate.json', { passed: true, ...bound() }),
        benchmarkReport: file('bench.json', { format: 'mlship-benchmark/1', ...bound() }),
        dataFingerprint: 'sha256:cells-v3',
      },
      signingKey: keys.privateKeyPem,
      outputDir: path.join(root, 'out'),
    };
  });

  const failure = async (options: Partial<BuildPackageOptions>): Promise<string> => {
    const error = (await buildPackage({ ...base, outputDir: path.join(root, 'refused'), ...options }).catch(
      (e: unknown) => e,
    )) as StepError;
    expect(error).toBeInstanceOf(StepError);
    // A refused build leaves nothing behind.
    expect(fs.existsSync(path.join(root, 'refused')) ? fs.readdirSync(path.join(root, 'refused')) : []).toEqual([]);
    return error.message;
  };

  it('builds a consistent package, byte-identical for the same inputs', async () => {
    const a = await buildPackage({ ...base, outputDir: path.join(root, 'a') });
    const b = await buildPackage({ ...base, outputDir: path.join(root, 'b') });
    expect(b.sha256).toBe(a.sha256);
    expect(a.manifest.allowedMismatches).toBeUndefined();
  });

  it('refuses a spec that contradicts the one in the model metadata, naming both values and their sources', async () => {
    const spec = file('raw-spec.json', { ...STAMPED, maxValue: 1, mean: [0], std: [1] });
    expect(await failure({ preprocessing: spec })).toBe(
      `The package would contradict itself (1 mismatch):\n- preprocessing-metadata: the preprocessing spec ${spec} differs from the spec in metadata mlship.preprocessing of ${model}: maxValue 1 vs 255; mean [0] vs [0.2]; std [1] vs [0.1] (packaged value first)`,
    );
  });

  it('refuses an RGB spec for a 1-channel model and a fixed size the spec does not make', async () => {
    const rgb = file('rgb-spec.json', { ...STAMPED, color: 'rgb', mean: [0.2], std: [0.1] });
    const fixed = await grayModel('fixed.onnx', {
      inputs: [{ name: 'image', elemType: 1, shape: [1, 1, 256, 256] }],
      outputs: [{ name: 'logits', elemType: 1, shape: [1, 2, 256, 256] }],
      metadata: {},
    });
    const message = await failure({ models: [fixed], preprocessing: rgb, provenance: {} });
    expect(message).toContain(
      `- preprocessing-input: the preprocessing spec ${rgb} makes 3-channel tensors (color rgb, layout NCHW: channel axis 1), but input image [1, 1, 256, 256] of ${fixed} takes 1 channel(s) on that axis`,
    );
    const resized = file('resized-spec.json', { ...STAMPED, resize: { width: 512, height: 384 } });
    const sized = await failure({ models: [fixed], preprocessing: resized, provenance: {} });
    expect(sized).toContain(
      `the preprocessing spec ${resized} resizes to height 384, but input image [1, 1, 256, 256] of ${fixed} has a fixed height of 256`,
    );
    expect(sized).toContain('resizes to width 512');
  });

  it('refuses 4 labels for a 2-channel output', async () => {
    const labels = file('four.txt', 'background\ncell\nnucleus\ndebris\n');
    expect(await failure({ labels })).toContain(
      `- labels-output: the labels file ${labels} has 4 classes, but output logits [1, 2, height, width] of ${model} has 2 channel(s), which fits 2`,
    );
  });

  it('refuses a detection gate report beside a segmentation model', async () => {
    const gate = file('det-gate.json', { passed: true, ...bound({ task: 'detection' }) });
    expect(await failure({ provenance: { ...base.provenance, gateReport: gate } })).toContain(
      `- task: ${model} (output logits [1, 2, height, width] (per-pixel, the input's height and width)) is segmentation, but the gate report ${gate} (task) is detection`,
    );
  });

  it('refuses reports about another model, or that do not say which model, and another data set', async () => {
    const other = 'ab'.repeat(32);
    const gate = file('other-gate.json', { passed: true, ...bound({ model: { path: 'old.onnx', sha256: other } }) });
    const bench = file('anon-bench.json', { format: 'mlship-benchmark/1', task: 'segmentation' });
    const message = await failure({ provenance: { ...base.provenance, gateReport: gate, benchmarkReport: bench } });
    expect(message).toContain(
      `- report-model: the gate report ${gate} evaluated the model with sha256 ${other} (old.onnx), but the package holds models/cells.onnx ${sha256(model)}`,
    );
    expect(message).toContain(
      `- report-model: the benchmark report ${bench} does not name the sha256 of the model it evaluated (model.sha256)`,
    );
    const data = await failure({ provenance: { ...base.provenance, dataFingerprint: 'sha256:cells-v4' } });
    expect(data).toContain('- data-fingerprint: the data-fingerprint input is sha256:cells-v4, but metadata mlship.data_fingerprint of');
  });

  it('lets a deliberate exception through and records it in the signed manifest', async () => {
    const labels = file('four.txt', 'background\ncell\nnucleus\ndebris\n');
    const allowMismatch = new Set<MismatchCheck>(['labels-output']);
    const built = await buildPackage({ ...base, labels, allowMismatch, outputDir: path.join(root, 'allowed') });
    expect(built.manifest.allowedMismatches).toEqual([
      { check: 'labels-output', message: expect.stringContaining('has 4 classes, but output logits') },
    ]);
    expect(manifestSchemaErrors(built.manifest)).toEqual([]);
    expect((await verifyPackage(built.archivePath, { publicKey: keys.publicKeyPem })).manifest.allowedMismatches).toHaveLength(1);
  });

  it('makes golden vectors that self-test checks, reproducibly', async () => {
    const images = path.join(root, 'samples');
    fs.mkdirSync(images);
    for (let i = 0; i < 5; i++) {
      const pixels = Buffer.from(Array.from({ length: 24 * 16 }, (_, p) => (p * (i + 3)) % 256));
      await sharp(pixels, { raw: { width: 24, height: 16, channels: 1 } })
        .png()
        .toFile(path.join(images, `s${i}.png`));
    }
    const golden = { imagesDir: images, count: 3, tolerance: { atol: 1e-4, rtol: 1e-3 }, workDir: path.join(root, 'golden-work') };
    const a = await buildPackage({ ...base, golden, outputDir: path.join(root, 'g1') });
    const b = await buildPackage({
      ...base,
      golden: { ...golden, workDir: path.join(root, 'golden-work2') },
      outputDir: path.join(root, 'g2'),
    });
    expect(b.sha256).toBe(a.sha256);
    expect(a.manifest.golden).toEqual({ index: 'golden/index.json', cases: 3 });
    expect(a.manifest.files.filter((f) => f.role === 'golden')).toHaveLength(1 + 3 * 3);
    const dir = path.join(root, 'g1-x');
    await extractVerifiedPackage(a.archivePath, dir, { publicKey: keys.publicKeyPem });
    const report = await runSelfTest({ dir, publicKey: keys.publicKeyPem });
    expect(report.failures).toEqual([]);
    expect(report.cases.map((c) => [c.name, c.tensors.map((t) => `${t.role} ${t.tensor} ${t.maxAbs}`)])).toEqual([
      ['000', ['input image 0', 'output logits 0']],
      ['001', ['input image 0', 'output logits 0']],
      ['002', ['input image 0', 'output logits 0']],
    ]);
    // A package without vectors says so; an archive is only tested once verified; a missing folder is named.
    const plain = path.join(root, 'plain-x');
    const built = await buildPackage({ ...base, outputDir: path.join(root, 'plain') });
    await extractVerifiedPackage(built.archivePath, plain, { publicKey: keys.publicKeyPem });
    await expect(runSelfTest({ dir: plain })).rejects.toThrow(`The package cells 2.0.0 in ${plain} has no golden test vectors.`);
    const { selfTestCommand } = await import('../../shared/package/self-test-command');
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => void err.push(t) };
    expect(await selfTestCommand.run([a.archivePath], io)).toBe(2);
    expect(err.join('')).toContain('a .tar.gz is verified before it is tested: give --public-key');
    expect(await selfTestCommand.run([path.join(root, 'nowhere')], io)).toBe(2);
    expect(err.join('')).toContain(`error: Cannot read the package manifest ${path.join(root, 'nowhere', 'manifest.json')}: ENOENT.`);
    // Golden vectors need the spec that makes their inputs.
    await expect(buildPackage({ ...base, preprocessing: undefined, golden, outputDir: path.join(root, 'g3') })).rejects.toThrow(
      'Golden vectors (golden images) need the preprocessing spec.',
    );
  });

  it('refuses a detector whose predicted label ids on the golden images are not in the class map', async () => {
    // boxes/scores/labels as constants: what the model "detects" does not depend on the image, only on its graph.
    const detector = path.join(root, 'detector.onnx');
    const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
    await writeModel(detector, {
      inputs: [{ name: 'image', elemType: 1, shape: [1, 3, 'height', 'width'] }],
      outputs: [
        { name: 'boxes', elemType: 1, shape: [3, 4] },
        { name: 'scores', elemType: 1, shape: [3] },
        { name: 'labels', elemType: 7, shape: [3] },
      ],
      initializers: [
        { name: 'b', dims: [3, 4], raw: f32([0, 0, 4, 4, 1, 1, 5, 5, 2, 2, 6, 6]) },
        { name: 's', dims: [3], raw: f32([0.9, 0.8, 0.7]) },
        { name: 'l', dims: [3], dataType: 7, raw: Buffer.from(new BigInt64Array([0n, 2n, 7n]).buffer) },
      ],
      nodes: [
        ['Identity', ['b'], ['boxes']],
        ['Identity', ['s'], ['scores']],
        ['Identity', ['l'], ['labels']],
      ],
    });
    const images = path.join(root, 'rgb-samples');
    fs.mkdirSync(images);
    await sharp(Buffer.alloc(8 * 8 * 3, 90), { raw: { width: 8, height: 8, channels: 3 } })
      .png()
      .toFile(path.join(images, 'a.png'));
    const labels = file('det-labels.json', [
      { id: 0, name: 'cell' },
      { id: 1, name: 'nucleus' },
      { id: 2, name: 'debris' },
    ]);
    const spec = file('rgb.json', { version: 1, color: 'rgb', layout: 'NCHW', dtype: 'float32' });
    const options = {
      models: [detector],
      preprocessing: spec,
      labels,
      provenance: {},
      golden: { imagesDir: images, count: 4, tolerance: { atol: 1e-4, rtol: 1e-3 }, workDir: path.join(root, 'det-work') },
    };
    expect(await failure(options)).toBe(
      `The package would contradict itself (1 mismatch):\n- labels-output: output labels of ${detector} predicted label(s) 7 on golden case 000, which the labels file ${labels} does not define (ids 0, 1, 2)`,
    );
    const fine = await buildPackage({
      ...base,
      ...options,
      labels: file('det-labels-8.txt', 'a\nb\nc\nd\ne\nf\ng\nh\n'),
      golden: { ...options.golden, workDir: path.join(root, 'det-work-2') },
      outputDir: path.join(root, 'det-ok'),
    });
    expect(fine.manifest.golden).toEqual({ index: 'golden/index.json', cases: 1 });
  });

  it('names the unknown check in allow-mismatch', () => {
    const { parseAllowedMismatches } = require('../../shared/package/cross-checks') as typeof import('../../shared/package/cross-checks');
    expect(() => parseAllowedMismatches(['labels'], 'allow-mismatch')).toThrow(
      '"allow-mismatch" names the check "labels", which does not exist.',
    );
  });
});
