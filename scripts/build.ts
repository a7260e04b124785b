import * as fs from 'node:fs';
import * as path from 'node:path';
import { azureTaskFolder } from '../shared/core/names';
import type { AnyStep } from '../shared/core/step';

const ncc = require('@vercel/ncc') as (
  entry: string,
  options: Record<string, unknown>,
) => Promise<{ code: string; assets: Record<string, { source: Buffer | string }> }>;

export const ROOT = path.resolve(__dirname, '..');
export type Platform = 'github' | 'azure';

/**
 * Native modules stay out of the bundles: ncc cannot bundle their binaries (onnxruntime-node's Linux build
 * alone is ~46 MB). Steps load them at run time through shared/onnx/runtime.ts (see docs/onnxruntime-on-runners.md).
 */
export const EXTERNALS = ['onnxruntime-node', 'sharp'];

export interface BundleTarget {
  step: string;
  /** Module exporting the step, relative to the repo root, without extension. */
  module: string;
  exportName: string;
  platform: Platform;
  /** Output folder relative to the repo root. */
  outDir: string;
}

/** Every bundle committed for the shipped steps. */
export function shippedTargets(steps: readonly AnyStep[]): BundleTarget[] {
  return steps.flatMap((step) => {
    const module = `shared/steps/${step.name}`;
    const exportName = exportNameOf(step);
    return [
      { step: step.name, module, exportName, platform: 'github' as const, outDir: `actions/${step.name}/dist` },
      {
        step: step.name,
        module,
        exportName,
        platform: 'azure' as const,
        outDir: `azure-tasks/${azureTaskFolder(step.name, step.azure.major)}/dist`,
      },
    ];
  });
}

function exportNameOf(step: AnyStep): string {
  const mod = require(path.join(ROOT, 'shared/steps', step.name));
  const name = Object.keys(mod).find((k) => mod[k] === step);
  if (!name) throw new Error(`shared/steps/${step.name}/index.ts does not export the step "${step.name}"`);
  return name;
}

/**
 * The entry file is generated so that it holds nothing but the call (as actions/setup-node's does): the host
 * adapter and the step are the only code it names.
 */
function entrySource(target: BundleTarget): string {
  const host =
    target.platform === 'github'
      ? ['runOnGitHub', '../../actions/_host/run-on-github']
      : ['runOnAzure', '../../azure-tasks/_host/run-on-azure'];
  return [
    `import { ${host[0]} } from '${host[1]}';`,
    `import { ${target.exportName} } from '../../${target.module}';`,
    '',
    `void ${host[0]}(${target.exportName});`,
    '',
  ].join('\n');
}

export async function buildBundle(target: BundleTarget, root = ROOT): Promise<string[]> {
  const entryDir = path.join(root, '.mlship', 'entries');
  fs.mkdirSync(entryDir, { recursive: true });
  const entry = path.join(entryDir, `${target.platform}-${target.step}.ts`);
  fs.writeFileSync(entry, entrySource(target));
  // Type-checking is tsc's job (npm run typecheck); ncc only transpiles, which keeps bundling fast.
  const { code, assets } = await ncc(entry, {
    externals: EXTERNALS,
    minify: false,
    sourceMap: false,
    quiet: true,
    license: 'licenses.txt',
    target: 'es2022',
    cache: false,
    transpileOnly: true,
  });
  const outDir = path.join(root, target.outDir);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'index.js'), code);
  const written = [path.join(target.outDir, 'index.js')];
  for (const [name, asset] of Object.entries(assets)) {
    const file = path.join(outDir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, asset.source);
    written.push(path.join(target.outDir, name));
  }
  return written;
}

async function main(): Promise<void> {
  const { steps } = require('../shared/steps') as { steps: readonly AnyStep[] };
  const only = process.argv.slice(2);
  const targets = shippedTargets(steps).filter((t) => only.length === 0 || only.includes(t.step));
  for (const target of targets) {
    const started = Date.now();
    await buildBundle(target);
    console.log(`built ${target.outDir}/index.js (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
