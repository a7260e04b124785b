/**
 * The demo's training script, run by submit-training's local backend exactly as a user's script would be: it
 * reads the training and validation folders from MLSHIP_INPUT_TRAIN / MLSHIP_INPUT_VAL, hyperparameters from
 * MLSHIP_HYPERPARAMETERS, writes `model.onnx` to MLSHIP_OUTPUT_DIR and its metrics to MLSHIP_METRICS_FILE.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGrayPng } from './cells';
import { pooledDice, toOnnx, train, type TrainingImage } from './segmenter';

export function loadSplit(dir: string): TrainingImage[] {
  const images = path.join(dir, 'images');
  return fs
    .readdirSync(images)
    .filter((f) => f.endsWith('.png'))
    .sort()
    .map((f) => {
      const img = readGrayPng(path.join(images, f));
      const mask = readGrayPng(path.join(dir, 'masks', f));
      return { width: img.width, height: img.height, pixels: img.values, labels: mask.values };
    });
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this script through "mlship submit-training --backend local".`);
  return v;
}

function main(): void {
  const hp = JSON.parse(process.env.MLSHIP_HYPERPARAMETERS ?? '{}') as Record<string, string | number>;
  const steps = Number(hp.steps ?? 300);
  const trainSet = loadSplit(env('MLSHIP_INPUT_TRAIN'));
  const valSet = loadSplit(env('MLSHIP_INPUT_VAL'));
  console.log(`training cell segmenter: ${trainSet.length} images, ${steps} steps`);
  // The loss every 10 steps goes into the metrics file's "history", which submit-training draws as a curve.
  const history: { step: number; loss: number }[] = [];
  const weights = train(trainSet, {
    steps,
    hidden: Number(hp.hidden ?? 4),
    seed: Number(hp.seed ?? 1),
    onStep: (step, loss) => {
      if (step % 10 === 0 || step === steps) history.push({ step, loss: Number(loss.toFixed(5)) });
      if (step % 50 === 0 || step === steps) console.log(`step ${step}/${steps} loss ${loss.toFixed(4)}`);
    },
  });
  const dice = pooledDice(valSet, weights);
  const out = env('MLSHIP_OUTPUT_DIR');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'model.onnx'), toOnnx(weights, { 'mlship.training_steps': String(steps) }));
  fs.writeFileSync(env('MLSHIP_METRICS_FILE'), JSON.stringify({ dice, val_images: valSet.length, history }, null, 2));
  console.log(`validation dice ${dice.toFixed(4)}`);
}

if (require.main === module) main();
