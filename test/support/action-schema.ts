import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './runners';

type Validate = (name: string, content: string) => string[];

/**
 * GitHub's own action.yml schema and parser (`@actions/workflow-parser`, what the Actions language service
 * uses). The package is ESM and imports its schema JSON without import attributes, which only bundlers
 * accept, so it is bundled once with esbuild into a CommonJS file.
 */
export function loadActionValidator(): Validate {
  const out = path.join(ROOT, '.mlship', 'action-validator.cjs');
  const source = [
    "import { parseAction } from '@actions/workflow-parser/actions/action-parser';",
    "import { NoOperationTraceWriter } from '@actions/workflow-parser';",
    'export function validate(name, content) {',
    '  const { context } = parseAction({ name, content }, new NoOperationTraceWriter());',
    '  return context.errors.getErrors().map((e) => e.message);',
    '}',
  ].join('\n');
  const esbuild = require('esbuild') as typeof import('esbuild');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  esbuild.buildSync({
    stdin: { contents: source, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: out,
    logLevel: 'silent',
  });
  return require(out).validate as Validate;
}
