import * as fs from 'node:fs';
import * as path from 'node:path';
import { getOnnxRuntime } from '../onnx/runtime';
import { readGrayPng, writeGrayPng } from './cells';

/**
 * Runs a segmentation model over every image of a folder and writes its label masks (cell where the
 * probability is at least `threshold`) under the same file names: the predictions gate-metrics compares.
 */
export async function predictMasks(modelPath: string, imagesDir: string, outDir: string, threshold = 0.5): Promise<number> {
  const { ort } = await getOnnxRuntime();
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
  const [input] = session.inputNames;
  const [output] = session.outputNames;
  fs.mkdirSync(outDir, { recursive: true });
  const files = fs
    .readdirSync(imagesDir)
    .filter((f) => f.endsWith('.png'))
    .sort();
  for (const file of files) {
    const image = readGrayPng(path.join(imagesDir, file));
    const tensor = new ort.Tensor('float32', Float32Array.from(image.values), [1, 1, image.height, image.width]);
    const result = await session.run({ [input]: tensor });
    const probability = result[output].data as Float32Array;
    const labels = new Uint8Array(probability.length);
    for (let i = 0; i < labels.length; i++) labels[i] = probability[i] >= threshold ? 1 : 0;
    writeGrayPng(path.join(outDir, file), image.width, image.height, labels);
  }
  await session.release();
  return files.length;
}
