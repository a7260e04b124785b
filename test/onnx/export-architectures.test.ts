/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readOnnxModelInfo } from '../../shared/onnx/model-info';
import { runExport, tempDir } from './torch-python';

/**
 * export-onnx on the architectures users train, with random weights (the factories in fixtures/real_models.py
 * block the network, so nothing is downloaded), with each exporter of torch 2.15. Inputs are small so the exports
 * run in seconds to a few minutes on two cores; the figures per test are in docs/export-onnx.md.
 */

jest.setTimeout(900_000);

describe('export-onnx on real architectures (torch 2.x)', () => {
  const ws = tempDir('mlship-export-arch-');

  it.each(['dynamo', 'torchscript'])('segmentation-models-pytorch U-Net (ResNet-34 encoder) with the %s exporter: dynamic batch/height/width, parity at 64, 96 and 128 px', async (exporter) => {
    const host = await runExport({ modelFactory: 'real_models:smp_unet', exporter, inputShape: '1,3,64,64', dynamicAxes: 'batch,height,width', outputNames: 'logits', output: `smp/${exporter}.onnx`, parityInputs: 1 }, ws);
    expect(host.failure).toBeUndefined();
    expect(host.outputs.exporter).toBe(exporter);
    const signature = JSON.parse(host.outputs.signature);
    expect(signature.inputs).toEqual([{ name: 'input', type: 'float32', shape: ['batch', 3, 'height', 'width'] }]);
    const parity = JSON.parse(host.outputs.parity);
    expect(parity.fp32.cases).toBe(3); // 1 seeded + 2 dynamic sizes (2x3x96x96, 3x3x128x128)
    expect(parity.fp32.outputs.logits.ok).toBe(true);
    expect(Number(host.outputs.size)).toBeGreaterThan(90e6); // 24 M parameters in one file (no external data)
  });

  it('torchvision Faster R-CNN (MobileNetV3 FPN) with the TorchScript exporter: boxes, scores, labels match PyTorch', async () => {
    const host = await runExport({ modelFactory: 'real_models:faster_rcnn', exporter: 'torchscript', opset: 17, inputShape: '1,3,128,128', outputNames: 'boxes\nscores\nlabels', output: 'frcnn/torchscript.onnx', parityInputs: 1 }, ws);
    expect(host.failure).toBeUndefined();
    const info = readOnnxModelInfo(path.join(ws, 'frcnn/torchscript.onnx'));
    expect(info.outputs.map((o) => `${o.name}:${o.dtype}`)).toEqual(['boxes:float32', 'scores:float32', 'labels:int64']);
    expect(info.opTypes.NonMaxSuppression).toBeGreaterThan(0);
    expect(info.opTypes.RoiAlign).toBeGreaterThan(0);
    const parity = JSON.parse(host.outputs.parity);
    expect(parity.fp32.outputs.boxes.ok).toBe(true);
    expect(parity.fp32.outputs.labels).toMatchObject({ ok: true, maxAbs: 0 });
  });

  it('torchvision Faster R-CNN with the dynamo exporter: torch.export refuses the data-dependent NMS, the error names the line and the other exporter', async () => {
    const host = await runExport({ modelFactory: 'real_models:faster_rcnn', exporter: 'dynamo', inputShape: '1,3,128,128', outputNames: 'boxes\nscores\nlabels', output: 'frcnn/dynamo.onnx', parityInputs: 1 }, ws);
    expect(host.failure).toMatch(/^Export failed \(export\): torch\.export could not capture the model \(dynamo exporter, step 1 of 3\) .*torchvision\/ops\/boxes\.py:\d+/);
    expect(host.failure).toContain('data-dependent');
    expect(host.failure).toContain('→ Set exporter to torchscript');
    expect(fs.existsSync(path.join(ws, 'frcnn/dynamo.onnx'))).toBe(false);
  });

  it.each(['dynamo', 'torchscript'])('Ultralytics YOLOv8n built from yolov8n.yaml, offline, with the %s exporter', async (exporter) => {
    const host = await runExport({ modelFactory: 'real_models:yolov8n', exporter, inputShape: '1,3,64,64', dynamicAxes: 'batch', outputNames: 'predictions', output: `yolo/${exporter}.onnx`, parityInputs: 1 }, ws);
    expect(host.failure).toBeUndefined();
    const signature = JSON.parse(host.outputs.signature);
    // [batch, 4 box coordinates + 2 classes, 84 anchors at strides 8/16/32 of a 64-pixel input]
    expect(signature.outputs[0].shape.slice(1)).toEqual([6, 84]);
    expect(JSON.parse(host.outputs.parity).fp32.outputs.predictions.ok).toBe(true);
  });
});
