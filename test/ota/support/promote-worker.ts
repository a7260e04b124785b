/**
 * Child process of the concurrency test: runs promote-release `iterations` times against a shared store and
 * prints, as one JSON line, the sequence and version each run published. Started with
 * `node -r esbuild-register`, it waits for "go" on stdin so both workers start together.
 */
import * as readline from 'node:readline';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { runInMemory } from './run-step';

interface WorkerConfig {
  inputs: Record<string, string | number>;
  env: Record<string, string>;
  iterations: number;
  name: string;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.MLSHIP_WORKER_CONFIG ?? '{}') as WorkerConfig;
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  process.stdin.destroy();
  const runs: { sequence: number; version: string }[] = [];
  for (let i = 0; i < config.iterations; i++) {
    // A different percentage each time makes every run a real change, even right after its own last one.
    const host = await runInMemory(
      promoteReleaseStep,
      { rolloutPercent: 51 + (i % 49), ...config.inputs },
      { env: config.env, run: { id: `${config.name}-${i}`, actor: config.name } },
    );
    if (host.failure) throw new Error(`${config.name} run ${i}: ${host.failure}`);
    runs.push({ sequence: Number(host.outputs.sequence), version: host.outputs.version });
  }
  process.stdout.write(JSON.stringify(runs) + '\n');
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
