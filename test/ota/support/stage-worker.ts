/**
 * Child process of the fault test: stages one package when it reads "go" on stdin, then prints "staged".
 * The test kills it at a random moment in between.
 */
import * as readline from 'node:readline';
import { stageOtaStep } from '../../../shared/steps/stage-ota';
import { runInMemory } from './run-step';

async function main(): Promise<void> {
  const config = JSON.parse(process.env.MLSHIP_WORKER_CONFIG ?? '{}') as { inputs: Record<string, string>; env: Record<string, string> };
  // The store's SDK loads lazily; load it before "ready" so the kill window covers staging, not module loading.
  if (config.inputs.store === 's3') require('../../../shared/ota/s3-store');
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  process.stdin.destroy();
  const host = await runInMemory(stageOtaStep, config.inputs, { env: config.env });
  if (host.failure) throw new Error(host.failure);
  process.stdout.write(`staged ${host.outputs.sequence}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
