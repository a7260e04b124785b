import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tar from 'tar';
import { StepError } from '../../shared/core/errors';
import {
  buildPackage,
  stableJson,
  generateSigningKeyPair,
  manifestSchemaErrors,
  verifyPackage,
  type BuildPackageOptions,
} from '../../shared/package';
import { listTree, makeWorkspace, readEntries, tempDir } from './helpers';
import { Message, segmentationModel, writeMessage, modelMessage, writeModel } from './onnx-fixture';

const keys = generateSigningKeyPair();
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('buildPackage', () => {
  const root = tempDir();
  let ws: Awaited<ReturnType<typeof makeWorkspace>>;
  let base: BuildPackageOptions;
  beforeAll(async () => {
    ws = await makeWorkspace(root);
    base = {
      name: 'cellseg',
      version: '1.4.0',
      models: [ws.model],
      labels: ws.labels,
      preprocessing: ws.preprocessing,
      releaseNotes: 'Better nuclei recall.',
      compatibility: {
        deviceModels: ['BioScope X2'],
        minDriverVersion: '535.104.05',
        minCudaVersion: '12.2',
        minOnnxRuntimeVersion: '1.17.0',
        minComputeCapability: '7.5',
        minGpuMemoryMb: 2048,
      },
      provenance: {
        gitCommit: 'A1B2C3D4E5F60718293a4b5c6d7e8f9012345678',
        repository: 'lab/cellseg',
        workflowRun: { id: '42', attempt: 1, url: 'https://ci/run/42', workflow: 'release', job: 'package' },
        trainingJob: 'sagemaker:cellseg-2024-05-01',
        dataFingerprint: 'sha256:feedface',
        gateReport: ws.gateReport,
        benchmarkReport: ws.benchmarkReport,
      },
      signingKey: keys.privateKeyPem,
      outputDir: path.join(root, 'out'),
    };
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  /** For builds of another model than the workspace's: its reports are about that one, so they stay out. */
  const unbound = {
    get provenance() {
      return { ...base.provenance, gateReport: undefined, benchmarkReport: undefined };
    },
  };

  test('writes a signed archive whose manifest describes every file', async () => {
    const built = await buildPackage(base);
    expect(built.archivePath).toBe(path.join(root, 'out', 'cellseg-1.4.0.tar.gz'));
    expect(built.sha256).toBe(sha256(built.archivePath));
    expect(built.size).toBe(fs.statSync(built.archivePath).size);
    expect(listTree(path.join(root, 'out'))).toEqual(['cellseg-1.4.0.tar.gz']);

    const m = built.manifest;
    expect(manifestSchemaErrors(m)).toEqual([]);
    expect(m.files).toEqual([
      { path: 'labels.json', size: fs.statSync(ws.labels).size, sha256: sha256(ws.labels), role: 'labels' },
      { path: 'models/cellseg.onnx', size: fs.statSync(ws.model).size, sha256: sha256(ws.model), role: 'model' },
      { path: 'preprocessing.json', size: fs.statSync(ws.preprocessing).size, sha256: sha256(ws.preprocessing), role: 'preprocessing' },
    ]);
    expect(m.models).toEqual([
      {
        path: 'models/cellseg.onnx',
        format: 'onnx',
        irVersion: 8,
        producer: { name: 'pytorch', version: '2.3.0' },
        graphName: 'main_graph',
        opsets: [{ domain: 'ai.onnx', version: 17 }],
        inputs: [{ name: 'image', kind: 'tensor', dtype: 'float32', shape: [1, 3, 'height', 'width'] }],
        outputs: [{ name: 'mask', kind: 'tensor', dtype: 'float32', shape: [1, 3, 'height', 'width'] }],
        externalData: [],
      },
    ]);
    expect(m.labels).toEqual({ path: 'labels.json', format: 'json', classes: 3 });
    expect(m.preprocessing).toBe('preprocessing.json');
    expect(m.compatibility).toEqual({
      deviceModels: ['BioScope X2'],
      minDriverVersion: '535.104.05',
      minCudaVersion: '12.2',
      minOnnxRuntimeVersion: '1.17.0',
      minComputeCapability: '7.5',
      minGpuMemoryMb: 2048,
    });
    expect(m.provenance.gitCommit).toBe('a1b2c3d4e5f60718293a4b5c6d7e8f9012345678');
    const bound = { task: 'segmentation', model: { path: ws.model, sha256: sha256(ws.model) } };
    expect(m.provenance.gateReport).toEqual({ passed: true, ...bound, metrics: { mAP: 0.612, dice: 0.871 } });
    expect(m.provenance.benchmarkReport).toEqual({ format: 'mlship-benchmark/1', ...bound, provider: 'cuda', p50Ms: 12.5, p95Ms: 14.1 });
    expect(m.golden).toBeUndefined();
    expect(m.allowedMismatches).toBeUndefined();

    // Sorted content first, then the manifest and its signature; each entry with fixed metadata.
    const entries = readEntries(built.archivePath);
    expect(entries.map((e) => e.path)).toEqual([
      'labels.json',
      'models/cellseg.onnx',
      'preprocessing.json',
      'manifest.json',
      'manifest.sig',
    ]);
    expect(entries[1].data!.equals(fs.readFileSync(ws.model))).toBe(true);
    expect(crypto.createHash('sha256').update(entries[3].data!).digest('hex')).toBe(built.manifestDigest);
    const listed: tar.ReadEntry[] = [];
    await tar.t({ file: built.archivePath, onReadEntry: (e) => void listed.push(e) });
    expect(listed.map((e) => [e.path, e.mode, e.uid, e.gid, e.uname, e.mtime?.getTime()])).toEqual(
      entries.map((e) => [e.path, 0o644, 0, 0, '', 0]),
    );
  });

  test('is reproducible: same inputs twice, and copies elsewhere with other mtimes and modes, give identical bytes', async () => {
    const first = await buildPackage({ ...base, outputDir: path.join(root, 'r1') });
    const second = await buildPackage({ ...base, outputDir: path.join(root, 'r2') });
    expect(second.sha256).toBe(first.sha256);

    const copyDir = path.join(root, 'elsewhere', 'deep', 'copy');
    fs.mkdirSync(copyDir, { recursive: true });
    const copy = (file: string, when: number, mode: number) => {
      const target = path.join(copyDir, path.basename(file));
      fs.copyFileSync(file, target);
      fs.chmodSync(target, mode);
      fs.utimesSync(target, when, when);
      return target;
    };
    const third = await buildPackage({
      ...base,
      models: [copy(ws.model, 1_000_000, 0o755)],
      labels: copy(ws.labels, 2_000_000_000, 0o600),
      preprocessing: copy(ws.preprocessing, 5, 0o640),
      provenance: { ...base.provenance, gateReport: copy(ws.gateReport, 77, 0o644), benchmarkReport: copy(ws.benchmarkReport, 88, 0o644) },
      outputDir: path.join(root, 'r3'),
    });
    expect(third.sha256).toBe(first.sha256);
    expect(third.manifestDigest).toBe(first.manifestDigest);

    // Compression changes the archive bytes, not what is signed.
    const compressed = await buildPackage({ ...base, compression: 'fast', outputDir: path.join(root, 'r4') });
    expect(compressed.sha256).not.toBe(first.sha256);
    expect(compressed.size).toBeLessThan(first.size);
    expect(compressed.manifestDigest).toBe(first.manifestDigest);
  });

  test('streams a model larger than one gzip member and still verifies', async () => {
    const file = path.join(root, 'big', 'big.onnx');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const weights = crypto.randomBytes(3 * 1024 * 1024 + 77);
    await writeModel(
      file,
      segmentationModel({
        initializers: [
          { name: 'bias', dims: [1], raw: Buffer.alloc(4) },
          { name: 'w', dims: [weights.length], dataType: 2, raw: weights },
        ],
      }),
    );
    const progress: number[] = [];
    const built = await buildPackage({
      ...base,
      ...unbound,
      models: [file],
      labels: undefined,
      preprocessing: undefined,
      outputDir: path.join(root, 'big-out'),
      onProgress: (done) => progress.push(done),
    });
    expect(progress[progress.length - 1]).toBe(fs.statSync(file).size);
    expect(progress.length).toBeGreaterThanOrEqual(4);
    expect(zlib.gunzipSync(fs.readFileSync(built.archivePath)).length).toBeGreaterThan(weights.length);
    const listed: string[] = [];
    await tar.t({ file: built.archivePath, onReadEntry: (e) => void listed.push(`${e.path} ${e.size}`) });
    expect(listed).toEqual([
      `models/big.onnx ${fs.statSync(file).size}`,
      `manifest.json ${Buffer.byteLength(stableJson(built.manifest))}`,
      expect.stringMatching(/^manifest\.sig \d+$/),
    ]);
    const verified = await verifyPackage(built.archivePath, { publicKey: keys.publicKeyPem });
    expect(verified.manifest.files[0]).toEqual({
      path: 'models/big.onnx',
      size: fs.statSync(file).size,
      sha256: sha256(file),
      role: 'model',
    });
  });

  test('packages external weight files beside the model', async () => {
    const dir = path.join(root, 'ext');
    fs.mkdirSync(dir);
    const model = path.join(dir, 'detector.onnx');
    await writeModel(model, segmentationModel({ initializers: [{ name: 'bias', dims: [1], externalLocation: 'detector.weights' }] }));
    fs.writeFileSync(path.join(dir, 'detector.weights'), Buffer.alloc(4, 1));
    const built = await buildPackage({
      ...base,
      ...unbound,
      models: [model],
      labels: undefined,
      preprocessing: undefined,
      outputDir: path.join(root, 'ext-out'),
    });
    expect(built.manifest.files.map((f) => [f.path, f.role])).toEqual([
      ['models/detector.onnx', 'model'],
      ['models/detector.weights', 'external-data'],
    ]);
    expect(built.manifest.models[0].externalData).toEqual(['models/detector.weights']);

    fs.rmSync(path.join(dir, 'detector.weights'));
    await expect(buildPackage({ ...base, ...unbound, models: [model], outputDir: path.join(root, 'ext-out2') })).rejects.toThrow(
      `Cannot read ${path.join(dir, 'detector.weights')}`,
    );

    const escaping = path.join(dir, 'escaping.onnx');
    await writeModel(escaping, segmentationModel({ initializers: [{ name: 'bias', dims: [1], externalLocation: '../secrets.bin' }] }));
    await expect(buildPackage({ ...base, models: [escaping], outputDir: path.join(root, 'ext-out3') })).rejects.toThrow(
      `The model ${escaping} keeps weights in "../secrets.bin", outside its own folder.`,
    );
  });

  describe('TensorRT engine caches', () => {
    const cache = (
      name: string,
      sidecar: object | undefined,
      files: Record<string, string> = {
        'TensorrtExecutionProvider_TRTKernel_graph_main_1_0_0_sm86.engine': 'ENGINE',
        'TensorrtExecutionProvider_TRTKernel_graph_main_1_0_0_sm86.profile': 'PROFILE',
      },
    ) => {
      const dir = path.join(root, 'trt', name);
      fs.mkdirSync(dir, { recursive: true });
      for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
      if (sidecar) fs.writeFileSync(path.join(dir, 'tensorrt-cache.json'), JSON.stringify(sidecar));
      return dir;
    };

    test('are keyed by model, GPU, compute capability and TensorRT version', async () => {
      const a4000 = cache('a4000', {
        gpuModel: 'NVIDIA RTX A4000',
        computeCapability: '8.6',
        tensorrtVersion: '10.3.0',
        precision: 'fp16',
        onnxruntimeVersion: '1.19.2',
      });
      const t4 = cache(
        't4',
        { gpuModel: 'Tesla T4', computeCapability: '7.5', tensorrtVersion: '8.6.1', model: 'cellseg.onnx' },
        { 'a.engine': 'T4' },
      );
      const built = await buildPackage({ ...base, tensorrtCaches: [t4, a4000], outputDir: path.join(root, 'trt-out') });
      expect(built.manifest.tensorrtCaches).toEqual([
        {
          path: 'tensorrt/cellseg/nvidia-rtx-a4000_sm86_trt10.3.0',
          model: 'models/cellseg.onnx',
          gpuModel: 'NVIDIA RTX A4000',
          computeCapability: '8.6',
          tensorrtVersion: '10.3.0',
          onnxruntimeVersion: '1.19.2',
          precision: 'fp16',
          files: [
            'tensorrt/cellseg/nvidia-rtx-a4000_sm86_trt10.3.0/TensorrtExecutionProvider_TRTKernel_graph_main_1_0_0_sm86.engine',
            'tensorrt/cellseg/nvidia-rtx-a4000_sm86_trt10.3.0/TensorrtExecutionProvider_TRTKernel_graph_main_1_0_0_sm86.profile',
          ],
        },
        {
          path: 'tensorrt/cellseg/tesla-t4_sm75_trt8.6.1',
          model: 'models/cellseg.onnx',
          gpuModel: 'Tesla T4',
          computeCapability: '7.5',
          tensorrtVersion: '8.6.1',
          onnxruntimeVersion: null,
          precision: null,
          files: ['tensorrt/cellseg/tesla-t4_sm75_trt8.6.1/a.engine'],
        },
      ]);
      expect(built.manifest.files.filter((f) => f.role === 'tensorrt-cache')).toHaveLength(3);
      expect(built.manifest.files.some((f) => f.path.endsWith('tensorrt-cache.json'))).toBe(false);
    });

    test('a single engine file with its sidecar beside it', async () => {
      const dir = path.join(root, 'trt', 'single');
      fs.mkdirSync(dir, { recursive: true });
      const engine = path.join(dir, 'cellseg_fp16.engine');
      fs.writeFileSync(engine, 'ENGINE');
      fs.writeFileSync(
        `${engine}.tensorrt-cache.json`,
        JSON.stringify({ gpuModel: 'NVIDIA Jetson AGX Orin', computeCapability: '8.7', tensorrtVersion: '8.5.2' }),
      );
      const built = await buildPackage({ ...base, tensorrtCaches: [engine], outputDir: path.join(root, 'trt-single') });
      expect(built.manifest.tensorrtCaches.map((t) => [t.path, t.files])).toEqual([
        [
          'tensorrt/cellseg/nvidia-jetson-agx-orin_sm87_trt8.5.2',
          ['tensorrt/cellseg/nvidia-jetson-agx-orin_sm87_trt8.5.2/cellseg_fp16.engine'],
        ],
      ]);
    });

    test('refuse a cache without a sidecar, with a bad one, with links, or with no model to belong to', async () => {
      const out = path.join(root, 'trt-bad');
      const bare = cache('bare', undefined);
      await expect(buildPackage({ ...base, tensorrtCaches: [bare], outputDir: out })).rejects.toThrow(
        `The TensorRT cache ${bare} has no tensorrt-cache.json saying which GPU and TensorRT version it was built for.`,
      );
      const bad = cache('bad', { gpuModel: 'T4', computeCapability: 'sm75', tensorrtVersion: '8.6' });
      await expect(buildPackage({ ...base, tensorrtCaches: [bad], outputDir: out })).rejects.toThrow(
        `The TensorRT cache description ${path.join(bad, 'tensorrt-cache.json')} is invalid: /computeCapability must match pattern`,
      );
      const linked = cache('linked', { gpuModel: 'T4', computeCapability: '7.5', tensorrtVersion: '8.6' });
      fs.symlinkSync('/etc/hostname', path.join(linked, 'x.engine'));
      await expect(buildPackage({ ...base, tensorrtCaches: [linked], outputDir: out })).rejects.toThrow(
        `${path.join(linked, 'x.engine')} is a symbolic link; a package holds regular files only.`,
      );
      const second = path.join(root, 'trt', 'second.onnx');
      await writeModel(second, segmentationModel());
      const orphan = cache('orphan', { gpuModel: 'T4', computeCapability: '7.5', tensorrtVersion: '8.6' });
      await expect(buildPackage({ ...base, models: [ws.model, second], tensorrtCaches: [orphan], outputDir: out })).rejects.toThrow(
        `The TensorRT cache ${orphan} does not say which of the 2 models it was built from.`,
      );
      expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
    });
  });

  test.each<[string, Partial<BuildPackageOptions>, string]>([
    [
      'a "v" version',
      { version: 'v1.2.0' },
      'Version "v1.2.0" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease][+build]). Drop the leading "v": 1.2.0.',
    ],
    ['a two-part version', { version: '1.2' }, 'Version "1.2" is not a semantic version'],
    ['a name with a slash', { name: 'lab/cellseg' }, 'Package name "lab/cellseg" is not allowed.'],
    ['no model', { models: [] }, 'No model given.'],
    ['the same model twice', { models: ['MODEL', 'MODEL'] }, 'is listed twice.'],
    ['a bad CUDA version', { compatibility: { minCudaVersion: 'cuda12' } }, 'CUDA version "cuda12" is not a version like 12.2.'],
    [
      'a bad compute capability',
      { compatibility: { minComputeCapability: 'sm_86' } },
      'Compute capability "sm_86" is not a version like 7.5.',
    ],
    ['a commit that is not a hash', { provenance: { gitCommit: 'HEAD' } }, 'Git commit "HEAD" is not a commit hash.'],
    [
      'a public key as signing key',
      { signingKey: keys.publicKeyPem },
      'The signing key is not an Ed25519 private key in PEM (PKCS#8) form.',
    ],
    [
      'an RSA signing key',
      { signingKey: crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey },
      'The signing key is not an Ed25519 private key',
    ],
  ])('refuses %s', async (_what, change, message) => {
    const models = change.models?.map((m) => (m === 'MODEL' ? ws.model : m));
    const error = await buildPackage({ ...base, ...change, ...(models ? { models } : {}), outputDir: path.join(root, 'refused') }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).message).toContain(message);
    expect((error as StepError).message).not.toContain('PRIVATE KEY');
  });

  test('accepts the key as base64 of the PEM, or with \\n escapes, as single-line secrets hold it', async () => {
    const a = await buildPackage({
      ...base,
      signingKey: Buffer.from(keys.privateKeyPem).toString('base64'),
      outputDir: path.join(root, 'k1'),
    });
    const b = await buildPackage({ ...base, signingKey: keys.privateKeyPem.replace(/\n/g, '\\n'), outputDir: path.join(root, 'k2') });
    expect(b.sha256).toBe(a.sha256);
  });

  test('checks labels, preprocessing and reports, naming the file and line', async () => {
    const file = (name: string, content: string) => {
      const p = path.join(root, 'inputs', name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
      return p;
    };
    const broken = file('labels.json', '[\n  "cell",\n  "nucleus"\n  "debris"\n]');
    const error = (await buildPackage({ ...base, labels: broken }).catch((e: unknown) => e)) as StepError;
    expect(error.message).toContain(`The labels file ${broken} is not valid JSON`);
    expect(error.file).toBe(broken);
    expect(error.line).toBe(4);
    const gap = file('labels.txt', 'cell\n\nnucleus\n');
    await expect(buildPackage({ ...base, labels: gap })).rejects.toThrow(`The labels file ${gap} has an empty class name on line 2.`);
    const nested = file('nested.json', '{"classes": ["cell"]}');
    await expect(buildPackage({ ...base, labels: nested })).rejects.toThrow(
      `The labels file ${nested} has entry 0 without a name (["cell"]).`,
    );
    const txt = file('classes.txt', 'background\r\ncell\r\nnucleus\r\n');
    expect((await buildPackage({ ...base, labels: txt, outputDir: path.join(root, 'txt') })).manifest.labels).toEqual({
      path: 'labels.txt',
      format: 'txt',
      classes: 3,
    });
    const pre = file('pre.json', '[1, 2]');
    await expect(buildPackage({ ...base, preprocessing: pre })).rejects.toThrow(
      `The preprocessing spec ${pre} must hold a JSON object, but holds an array.`,
    );
    const gate = file('gate.json', '"passed"');
    await expect(buildPackage({ ...base, provenance: { gateReport: gate } })).rejects.toThrow(
      `The gate report ${gate} must hold a JSON object, but holds "passed".`,
    );
  });

  test('refuses a model that is not ONNX and file names a device could not store', async () => {
    const notOnnx = path.join(root, 'weights.pt');
    fs.writeFileSync(notOnnx, crypto.randomBytes(4096));
    await expect(buildPackage({ ...base, models: [notOnnx] })).rejects.toThrow(`${notOnnx} is not a readable ONNX model`);
    const spaced = path.join(root, 'my model.onnx');
    await writeModel(spaced, segmentationModel());
    await expect(buildPackage({ ...base, models: [spaced] })).rejects.toThrow(
      `Cannot package ${spaced} as "models/my model.onnx": "my model.onnx" has characters other than A-Z a-z 0-9 . _ -.`,
    );
    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    const twin = path.join(other, 'cellseg.onnx');
    fs.copyFileSync(ws.model, twin);
    await expect(buildPackage({ ...base, models: [ws.model, twin] })).rejects.toThrow(
      `Two files would be packaged as "models/cellseg.onnx": ${ws.model} and ${twin}.`,
    );
  });

  test('leaves nothing behind when cancelled', async () => {
    const out = path.join(root, 'cancelled');
    const controller = new AbortController();
    controller.abort(new Error('cancelled by SIGTERM'));
    await expect(buildPackage({ ...base, outputDir: out, signal: controller.signal })).rejects.toThrow('cancelled by SIGTERM');
    expect(fs.readdirSync(out)).toEqual([]);
  });

  test('a streamed model message is byte-identical to the buffered one (fixture sanity)', async () => {
    const file = path.join(root, 'fixture.onnx');
    const message = modelMessage(segmentationModel());
    await writeMessage(file, message);
    expect(fs.readFileSync(file).equals(message.toBuffer())).toBe(true);
    expect(new Message().int(1, 300).toBuffer().toString('hex')).toBe('08ac02');
  });
});
