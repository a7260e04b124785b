/**
 * Compiles the `mlship` CLI into lib/ for the published package: one esbuild bundle of our own code per entry
 * (the CLI, and the demo's training script that submit-training's local backend runs as a child process), with
 * every npm package left external so the package's `dependencies` are resolved from its node_modules at run time.
 * Non-code assets the sources find through __dirname (the export script) are copied beside the bundle.
 * Type-checking is tsc's job; esbuild only transpiles (well under a second).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

const ROOT = path.resolve(__dirname, '..');
export const LIB = path.join(ROOT, 'lib');

export async function buildCli(outDir = LIB): Promise<void> {
  fs.rmSync(outDir, { recursive: true, force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: { mlship: 'shared/cli/run.ts', 'train-cells': 'shared/demo/train-cells.ts' },
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    // native-module.ts reaches Node's own require through eval on purpose (see there); nothing else is evaluated.
    logOverride: { 'direct-eval': 'silent' },
    legalComments: 'none',
    logLevel: 'warning',
  });
  fs.cpSync(path.join(ROOT, 'shared', 'onnx', 'python'), path.join(outDir, 'python'), { recursive: true });
}

if (require.main === module) {
  buildCli().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
