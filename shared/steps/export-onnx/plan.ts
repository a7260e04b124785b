import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { parseDynamicAxes, parseShape, requireFile } from '../../onnx/export-plan';
import { writeNpy } from '../../onnx/npy';
import { preprocessImage } from '../../preprocess/image';
import { loadPreprocessSpec, type PreprocessSpec } from '../../preprocess/spec';

/** From the step's inputs to the config export_onnx.py runs on: checked inputs, prepared samples, provenance. */

export type Exporter = 'auto' | 'dynamo' | 'torchscript';

export interface ExportInputs {
  modelFactory?: string;
  checkpoint?: string;
  torchscript?: string;
  sourceDir: string;
  inputShape: string;
  inputDtype: string;
  inputName: string;
  inputLayout: 'NCHW' | 'NHWC';
  outputNames: string[];
  dynamicAxes?: string;
  exporter: Exporter;
  opset?: number;
  output: string;
  parityInputs: number;
  seed: number;
  sampleImages: string[];
  preprocessing?: string;
  fp16: boolean;
  modelVersion?: string;
  gitCommit?: string;
  trainingJob?: string;
  dataFingerprint?: string;
}

export interface ExportPlan {
  work: string;
  configFile: string;
  dynamic: Record<number, string>;
  provenance: Record<string, string | undefined>;
}

export async function planExport(inputs: ExportInputs, ctx: StepContext): Promise<ExportPlan> {
  const label = (k: string) => ctx.inputLabel(k);
  if (!!inputs.modelFactory === !!inputs.torchscript) {
    throw new InputError(`Give exactly one of "${label('modelFactory')}" and "${label('torchscript')}".`, {
      hint: `Set ${label('modelFactory')} to module:function (with ${label('checkpoint')}), or ${label('torchscript')} to a TorchScript file.`,
    });
  }
  if (inputs.modelFactory && !/^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/.test(inputs.modelFactory)) {
    throw new InputError(`Input "${label('modelFactory')}" has value "${inputs.modelFactory}", which is not module:function.`, {
      hint: 'Example: models.unet:build',
    });
  }
  if (inputs.torchscript && inputs.checkpoint)
    throw new InputError(`"${label('checkpoint')}" applies to ${label('modelFactory')}; a TorchScript file carries its weights.`, {
      hint: `Remove ${label('checkpoint')}.`,
    });
  if (inputs.exporter === 'dynamo' && inputs.opset !== undefined && inputs.opset < 18) {
    throw new InputError(`Input "${label('opset')}" is ${inputs.opset}, but the dynamo exporter emits opset 18 or later.`, {
      hint: `Set ${label('opset')} to 18 or higher, or set ${label('exporter')} to torchscript for an older opset.`,
    });
  }
  requireFile(inputs.checkpoint, label('checkpoint'));
  requireFile(inputs.torchscript, label('torchscript'));
  const shape = parseShape(inputs.inputShape, label('inputShape'));
  const dynamic = parseDynamicAxes(inputs.dynamicAxes, shape.length, inputs.inputLayout, label('dynamicAxes'));
  const spec = inputs.preprocessing ? loadPreprocessSpec(inputs.preprocessing) : undefined;
  if (inputs.sampleImages.length && !spec)
    throw new InputError(`"${label('sampleImages')}" needs "${label('preprocessing')}" to turn images into input tensors.`, {
      hint: 'Give the preprocessing spec the device uses.',
    });
  if (!inputs.output.endsWith('.onnx'))
    throw new InputError(`Input "${label('output')}" is ${inputs.output}; it must end in .onnx.`, { hint: 'Example: dist/model.onnx' });

  const work = fs.mkdtempSync(path.join(ctx.tempDir, 'export-'));
  const samples = spec
    ? await prepareSamples(
        inputs.sampleImages.map((f) => path.resolve(ctx.workspace, f)),
        spec,
        shape,
        dynamic,
        work,
        ctx,
      )
    : [];
  const provenance: Record<string, string | undefined> = {
    'mlship.version': inputs.modelVersion,
    'mlship.git_commit': inputs.gitCommit ?? ctx.run.commit,
    'mlship.training_job': inputs.trainingJob,
    'mlship.data_fingerprint': inputs.dataFingerprint,
    'mlship.preprocessing': spec ? JSON.stringify(spec) : undefined,
    'mlship.run': ctx.run.url ?? ctx.run.id,
  };
  const config = {
    workDir: work,
    factory: inputs.modelFactory,
    checkpoint: inputs.checkpoint,
    torchscript: inputs.torchscript,
    sourceDirs: [inputs.sourceDir],
    input: { name: inputs.inputName, shape, dtype: inputs.inputDtype, dynamicAxes: dynamic },
    outputNames: inputs.outputNames.length ? inputs.outputNames : null,
    exporter: inputs.exporter,
    // null: the script picks the exporter's own (18 for dynamo, 17 for TorchScript).
    opset: inputs.opset ?? null,
    parityInputs: inputs.parityInputs,
    seed: inputs.seed,
    samples,
    fp16: inputs.fp16,
    provenance,
  };
  const configFile = path.join(work, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { work, configFile, dynamic, provenance };
}

async function prepareSamples(
  files: string[],
  spec: PreprocessSpec,
  shape: number[],
  dynamic: Record<number, string>,
  work: string,
  ctx: StepContext,
): Promise<{ name: string; file: string }[]> {
  const dir = path.join(work, 'samples');
  fs.mkdirSync(dir, { recursive: true });
  const out: { name: string; file: string }[] = [];
  for (const [i, file] of files.entries()) {
    const { tensor } = await preprocessImage(file, spec);
    const fixedMismatch = tensor.dims.findIndex((d, axis) => dynamic[axis] === undefined && d !== shape[axis]);
    if (tensor.dims.length !== shape.length || fixedMismatch >= 0) {
      throw new StepError(
        `Sample image ${file} becomes a tensor of shape [${tensor.dims.join(', ')}], but the model input is [${shape.join(', ')}] with fixed axis ${fixedMismatch}.`,
        {
          hint: 'Make the preprocessing spec resize to the input size, or declare that axis in dynamic-axes.',
          file,
        },
      );
    }
    const npy = path.join(dir, `sample${i}.npy`);
    writeNpy(npy, tensor);
    out.push({ name: path.basename(file), file: npy });
  }
  if (files.length) ctx.log.info(`prepared ${files.length} sample image(s) with the preprocessing spec`);
  return out;
}
