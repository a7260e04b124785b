/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readOnnxModelInfo } from '../../../shared/onnx/model-info';
import { FIXTURES, python, runExport, tempDir } from '../../onnx/torch-python';
import { summaryRenders } from '../../support/chromium';

// Exports take seconds alone, minutes on a loaded two-core runner; tests never assert on time.
jest.setTimeout(600_000);

describe('export-onnx with PyTorch 2.x', () => {
  const ws = tempDir('mlship-export-');

  it.each([
    ['dynamo', '18', '10'],
    ['torchscript', '17', '8'],
  ])(
    'exports a U-Net from factory + checkpoint with the %s exporter, verifies parity at dynamic sizes, optimized and FP16 variants, and stamps provenance',
    async (exporter, opset, irVersion) => {
      // A checkpoint with other weights than the factory's defaults: the export must use the checkpoint.
      const ckpt = path.join(ws, 'unet.pt');
      const r = spawnSync(
        python,
        [
          '-c',
          `import sys, torch; sys.path.insert(0, ${JSON.stringify(FIXTURES)}); import tiny_models as m; torch.manual_seed(7); net = m.TinyUNet(); torch.save({'state_dict': net.state_dict()}, ${JSON.stringify(ckpt)})`,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      const host = await runExport(
        {
          modelFactory: 'tiny_models:unet',
          checkpoint: 'unet.pt',
          exporter,
          inputShape: '1,3,32,32',
          inputName: 'image',
          outputNames: 'logits',
          dynamicAxes: 'batch,height,width',
          output: `${exporter}/unet.onnx`,
          parityInputs: 2,
          optimize: 'extended',
          fp16: true,
          modelVersion: '2.1.0',
          gitCommit: 'abc1234',
          trainingJob: 'train-42',
          dataFingerprint: 'sha256:feed',
        },
        ws,
      );
      expect(host.failure).toBeUndefined();
      const out = host.outputs;
      const model = path.join(ws, `${exporter}/unet.onnx`);
      expect(out.modelPath).toBe(model);
      expect(out.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(out.size)).toBe(fs.statSync(model).size);
      expect(out.exporter).toBe(exporter);
      expect(out.opset).toBe(opset);
      expect(out.irVersion).toBe(irVersion);
      const signature = JSON.parse(out.signature);
      expect(signature.inputs).toEqual([{ name: 'image', type: 'float32', shape: ['batch', 3, 'height', 'width'] }]);
      expect(signature.outputs[0].name).toBe('logits');
      expect(signature.outputs[0].shape[1]).toBe(2);

      const metadata = JSON.parse(out.metadata);
      expect(metadata).toMatchObject({
        'mlship.version': '2.1.0',
        'mlship.git_commit': 'abc1234',
        'mlship.training_job': 'train-42',
        'mlship.data_fingerprint': 'sha256:feed',
        'mlship.source': 'tiny_models:unet',
      });
      expect(metadata['mlship.exporter']).toMatch(
        new RegExp(`^mlship export-onnx; torch 2\\.\\d+\\.\\d+\\S* \\(${exporter} exporter, opset ${opset}\\); onnx `),
      );
      expect(readOnnxModelInfo(model).metadata['mlship.training_job']).toBe('train-42');

      // 2 seeded cases + 2 dynamic sizes per variant.
      const parity = JSON.parse(out.parity);
      expect(Object.keys(parity)).toEqual(['fp32', 'optimized (extended)', 'fp16']);
      expect(parity.fp32.cases).toBe(4);
      expect(parity.fp32.outputs.logits.ok).toBe(true);
      expect(parity.fp32.outputs.logits.maxAbs).toBeLessThan(1e-4);
      expect(parity['optimized (extended)'].outputs.logits.maxAbs).toBeLessThan(1e-4);
      expect(parity.fp16.outputs.logits.maxAbs).toBeGreaterThan(1e-6); // FP16 rounding is visible …
      expect(parity.fp16.outputs.logits.maxAbs).toBeLessThan(1e-2); // … and within its tolerance
      expect(host.summary).toContain('dynamic-2x3x64x64');
      expect(host.summary).toContain('dynamic-3x3x96x96');
      expect(await summaryRenders(`export-onnx-${exporter}`, host.summary)).toEqual({
        step: `export-onnx-${exporter}`,
        dataUri: false,
        image: false,
        axes: expect.not.arrayContaining([false]),
        overflowing: [],
      });

      // Published beside the model: reference folder, optimized and FP16 variants.
      const index = JSON.parse(fs.readFileSync(path.join(ws, `${exporter}/unet.reference/index.json`), 'utf8'));
      expect(index.cases.map((c: { name: string }) => c.name)).toEqual(['random-0', 'random-1', 'dynamic-2x3x64x64', 'dynamic-3x3x96x96']);
      expect(out.referenceDir).toBe(path.join(ws, `${exporter}/unet.reference`));
      const fp16 = readOnnxModelInfo(path.join(ws, `${exporter}/unet.fp16.onnx`));
      expect(fp16.metadata['mlship.variant']).toBe('fp16');
      expect(fp16.inputs[0].dtype).toBe('float32'); // onnxconverter-common with keep_io_types
      // FP16 weights make the variant smaller; FP32 I/O means Casts at the borders.
      expect(fs.statSync(path.join(ws, `${exporter}/unet.fp16.onnx`)).size).toBeLessThan(0.8 * fs.statSync(model).size);
      expect(fp16.opTypes.Cast).toBeGreaterThanOrEqual(2);
      expect(readOnnxModelInfo(out.optimizedModelPath).metadata['mlship.version']).toBe('2.1.0');
      expect(fs.readdirSync(path.join(ws, exporter)).sort()).toEqual([
        'unet.fp16.onnx',
        'unet.onnx',
        'unet.optimized.onnx',
        'unet.reference',
      ]);
    },
  );

  it('exports a detector with NonMaxSuppression in the graph with the TorchScript exporter and matches PyTorch box for box', async () => {
    const host = await runExport(
      {
        modelFactory: 'tiny_models:detector',
        exporter: 'torchscript',
        inputShape: '1,3,64,64',
        outputNames: 'boxes\nscores\nlabels',
        dynamicAxes: 'height,width',
        output: 'det/detector.onnx',
      },
      ws,
    );
    expect(host.failure).toBeUndefined();
    const info = readOnnxModelInfo(path.join(ws, 'det/detector.onnx'));
    expect(info.opTypes.NonMaxSuppression).toBe(1);
    expect(info.outputs.map((o) => `${o.name}:${o.dtype}`)).toEqual(['boxes:float32', 'scores:float32', 'labels:int64']);
    const parity = JSON.parse(host.outputs.parity);
    expect(parity.fp32.cases).toBe(5);
    expect(parity.fp32.outputs.labels).toMatchObject({ ok: true, maxAbs: 0, mismatches: 0 });
    expect(parity.fp32.outputs.boxes.ok).toBe(true);
  });

  it('names the data-dependent line and suggests the TorchScript exporter when torch.export cannot capture the detector', async () => {
    const host = await runExport(
      {
        modelFactory: 'tiny_models:detector',
        exporter: 'dynamo',
        inputShape: '1,3,64,64',
        outputNames: 'boxes\nscores\nlabels',
        output: 'det/dynamo.onnx',
      },
      ws,
    );
    expect(host.failure).toMatch(
      /^Export failed \(export\): torch\.export could not capture the model \(dynamo exporter, step 1 of 3\) at .*tiny_models\.py:\d+ in forward: .*GuardOnDataDependentSymNode: Could not guard on data-dependent expression/,
    );
    expect(host.failure).toContain('→ Set exporter to torchscript: it traces the model with the example input');
    expect(fs.existsSync(path.join(ws, 'det/dynamo.onnx'))).toBe(false);
  });

  it('dynamo names the custom operator it has no translation for and suggests the other exporter', async () => {
    const host = await runExport(
      { modelFactory: 'tiny_models:custom_op', exporter: 'dynamo', inputShape: '1,3,16,16', output: 'bad/custom.onnx' },
      ws,
    );
    expect(host.failure).toContain(
      'Export failed (unsupported-operator): The dynamo exporter has no ONNX translation for operator mlship_test::wobble (default overload).',
    );
    expect(host.failure).toContain('→ Set exporter to torchscript');
    expect(host.failure).toContain('custom_translation_table');
    expect(fs.existsSync(path.join(ws, 'bad/custom.onnx'))).toBe(false);
  });

  it('exports the FFT model with dynamo (DFT in the graph), which the TorchScript exporter refuses', async () => {
    const host = await runExport(
      { modelFactory: 'tiny_models:unexportable', exporter: 'dynamo', inputShape: '1,3,16,16', output: 'fft/fft.onnx', parityInputs: 2 },
      ws,
    );
    expect(host.failure).toBeUndefined();
    expect(readOnnxModelInfo(path.join(ws, 'fft/fft.onnx')).opTypes.DFT).toBeGreaterThan(0);
    expect(JSON.parse(host.outputs.parity).fp32.outputs.output.ok).toBe(true);
  });

  it('rejects opset 17 with the dynamo exporter before running Python', async () => {
    const host = await runExport(
      { modelFactory: 'tiny_models:unet', exporter: 'dynamo', opset: 17, inputShape: '1,3,16,16', output: 'bad/opset.onnx' },
      ws,
    );
    expect(host.failure).toContain('Input "opset" is 17, but the dynamo exporter emits opset 18 or later.');
    expect(host.failure).toContain('→ Set opset to 18 or higher, or set exporter to torchscript for an older opset.');
  });

  it('fails with the operator, the opset and a hint when the TorchScript exporter meets an operator it cannot express', async () => {
    const host = await runExport(
      { modelFactory: 'tiny_models:unexportable', exporter: 'torchscript', inputShape: '1,3,16,16', output: 'bad/fft.onnx' },
      ws,
    );
    expect(host.failure).toContain(
      'Export failed (unsupported-operator): torch.onnx.export cannot export operator aten::fft_rfft2 at opset 17',
    );
    expect(host.failure).toContain('Last lines of the Python output:');
    expect(host.failure).toMatch(/→ No opset up to \d+ \(the highest this torch 2\.\d+/);
    expect(host.failure).toContain('register_custom_op_symbolic');
    expect(host.failure).toContain('The dynamo exporter (exporter: dynamo) may translate it');
    expect(fs.existsSync(path.join(ws, 'bad/fft.onnx'))).toBe(false);
  });

  it('fails parity when the exported graph carries other weights than the PyTorch model, and publishes nothing', async () => {
    const host = await runExport(
      {
        modelFactory: 'tiny_models:mismatch',
        exporter: 'torchscript',
        inputShape: '1,3,16,16',
        dynamicAxes: 'batch',
        output: 'bad/mismatch.onnx',
      },
      ws,
    );
    // Seeded inputs, so the figures are exact: the planted 5% weight change shows in nearly every value.
    expect(host.failure).toContain(
      'fp32 parity fails (atol 0.0001, rtol 0.001) in 5 of 5 cases: random-0: output output differs in 508 of 512 values (max abs 8.34e-2, max rel 7.67e-1; at [0, 0, 7, 6] PyTorch -1.71441, ONNX Runtime -1.79778)',
    );
    expect(host.failure).toContain('→ A parity failure means the ONNX graph computes something else than PyTorch');
    expect(fs.existsSync(path.join(ws, 'bad/mismatch.onnx'))).toBe(false);
    expect(host.summary).toContain('❌');
  });

  it('exports a TorchScript file instead of a factory', async () => {
    const ts = path.join(ws, 'det.ts.pt');
    const r = spawnSync(
      python,
      [
        '-c',
        `import sys, torch; sys.path.insert(0, ${JSON.stringify(FIXTURES)}); import tiny_models as m; torch.jit.save(torch.jit.trace(m.unet().eval(), torch.randn(1, 3, 32, 32)), ${JSON.stringify(ts)})`,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const host = await runExport({ torchscript: 'det.ts.pt', inputShape: '1,3,32,32', output: 'ts/unet.onnx', parityInputs: 2 }, ws);
    expect(host.failure).toBeUndefined();
    expect(JSON.parse(host.outputs.metadata)['mlship.source']).toBe('torchscript:det.ts.pt');
    expect(JSON.parse(host.outputs.parity).fp32).toMatchObject({ cases: 2, outputs: { output: { ok: true, mismatches: 0 } } });
  });

  it('names missing and unexpected keys when the checkpoint does not fit the model', async () => {
    const ckpt = path.join(ws, 'detector.pt');
    const r = spawnSync(
      python,
      [
        '-c',
        `import sys, torch; sys.path.insert(0, ${JSON.stringify(FIXTURES)}); import tiny_models as m; torch.save(m.detector().state_dict(), ${JSON.stringify(ckpt)})`,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const host = await runExport(
      { modelFactory: 'tiny_models:unet', checkpoint: 'detector.pt', inputShape: '1,3,32,32', output: 'bad/ckpt.onnx' },
      ws,
    );
    expect(host.failure).toMatch(
      /^Export failed \(checkpoint\): Checkpoint .*detector\.pt does not match the model: \d+ missing \(e\.g\. enc1\.0\.weight, enc1\.0\.bias, enc1\.1\.weight\); \d+ unexpected \(e\.g\. max_per_class, iou_threshold, score_threshold\) keys\./,
    );
    expect(host.failure).toContain('→ Use the checkpoint that was trained with this model definition');
  });
});
