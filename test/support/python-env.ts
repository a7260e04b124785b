import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './paths';

/**
 * The pinned Python test environment (.venv-test, built from requirements/test.txt by scripts/setup-python-env.sh,
 * which `npm test` runs first). Tests that need it call `requirePython()`: a missing environment is a failure,
 * never a silent skip, so CI cannot pass without having run them.
 */

export const VENV = process.env.MLSHIP_TEST_VENV ?? path.join(ROOT, '.venv-test');
export const VENV_PYTHON = path.join(VENV, 'bin', 'python');
export const VENV_BIN = path.join(VENV, 'bin');

export function requirePython(modules: string[] = []): string {
  if (!fs.existsSync(VENV_PYTHON)) {
    throw new Error(`the Python test environment is missing at ${VENV}: run "bash scripts/setup-python-env.sh" (npm test does)`);
  }
  if (modules.length) {
    // Importing torch can take minutes on a loaded two-core runner; a timeout is not a missing package.
    const r = spawnSync(VENV_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8', timeout: 600_000 });
    if (r.status === null)
      throw new Error(`importing ${modules.join(', ')} in the Python test environment did not finish (${r.error?.message ?? r.signal})`);
    if (r.status !== 0) throw new Error(`the Python test environment lacks ${modules.join(', ')}: ${r.stderr.trim().split('\n').pop()}`);
  }
  return VENV_PYTHON;
}
