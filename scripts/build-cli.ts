/**
 * Compiles the `mlship` CLI into lib/ for the published package: one esbuild bundle of our own code per entry
 * (the CLI, and the demo's training script that submit-training's local backend runs as a child process), with
 * every npm package left external so the package's `dependencies` are resolved from its node_modules at run time.
 * Non-code assets the sources find through __dirname (the export script) are copied beside the bundle.
 * Type-checking is tsc's job; esbuild only transpiles (well under a second).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = path.resolve(__dirname, '..');
export const LIB = path.join(ROOT, 'lib');

/**
 * Packages the CLI loads on first use instead of at start. Every step module imports its cloud SDKs and parsers at
 * the top, so a bundle that required them eagerly spent ~0.7 s (on this 2-core machine) loading the AWS and Azure
 * SDKs before printing `mlship --help`; `mlship eval coco` needs none of them either. Measured by bench:cold-start.
 */
const LAZY_PACKAGES = [
  '@aws-sdk/client-s3',
  '@aws-sdk/client-sagemaker',
  '@aws-sdk/client-sts',
  '@aws-sdk/client-cloudwatch-logs',
  '@aws-sdk/credential-providers',
  '@aws-sdk/lib-storage',
  '@azure/identity',
  '@azure/storage-blob',
  'fast-xml-parser',
  'pngjs',
  'tar',
  'yaml',
];

/**
 * Resolves each lazy package to a small module whose exports are getters that require the real package on first
 * access. The export names are read from the installed package at build time, so esbuild's interop code (which
 * copies a module's own properties) sees the same names; nothing is loaded until one is used.
 */
function lazyPackages(names: readonly string[]): Plugin {
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`);
  return {
    name: 'lazy-packages',
    setup(b) {
      b.onResolve({ filter }, (args) =>
        args.namespace === 'lazy-package' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy-package' },
      );
      b.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (args) => {
        const real = require(require.resolve(args.path, { paths: [ROOT] })) as Record<string, unknown>;
        const keys = Object.keys(real).filter((k) => k !== '__esModule');
        const contents = [
          'let real;',
          `const load = () => (real ??= require(${JSON.stringify(args.path)}));`,
          ...(real.__esModule ? ["Object.defineProperty(exports, '__esModule', { value: true });"] : []),
          `for (const key of ${JSON.stringify(keys)}) Object.defineProperty(exports, key, { enumerable: true, get: () => load()[key] });`,
        ].join('\n');
        return { contents, loader: 'js', resolveDir: ROOT };
      });
    },
  };
}

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
    plugins: [lazyPackages(LAZY_PACKAGES)],
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
