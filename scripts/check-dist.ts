import { execFileSync } from 'node:child_process';
import type { AnyStep } from '../shared/core/step';
import { buildBundle, ROOT, shippedTargets } from './build';

/**
 * Rebuilds every committed bundle and fails when git sees any difference: a changed tracked file or a new
 * untracked file under a dist/ folder (e.g. an asset a new dependency brought).
 */
async function main(): Promise<void> {
  const { steps } = require('../shared/steps') as { steps: readonly AnyStep[] };
  const targets = shippedTargets(steps);
  for (const target of targets) await buildBundle(target);
  const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=all', '--', 'actions', 'azure-tasks'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const stale = status
    .split('\n')
    .filter((line) => /(^|\/)dist\//.test(line.slice(3)))
    .filter(Boolean);
  if (stale.length) {
    console.error(`dist/ is out of date (${stale.length} file(s)):\n${stale.join('\n')}\n\nRun "npm run build" and commit the result.`);
    process.exitCode = 1;
    return;
  }
  console.log(`dist/ is current: ${targets.length} bundles rebuilt, no difference.`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
