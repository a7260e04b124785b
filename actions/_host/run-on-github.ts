import * as core from '@actions/core';
import { cancellationSignal, runPost, runStep } from '../../shared/core/runtime';
import type { AnyStep } from '../../shared/core/step';
import { GitHubHost } from './github-host';

/**
 * Entry of every bundled action. The same bundle serves `main` and `post` (as actions/cache does): the main
 * run leaves a state flag, and the post run, which GitHub starts even after a cancellation, sees it.
 */
export async function runOnGitHub(step: AnyStep): Promise<void> {
  const host = new GitHubHost();
  if (host.getState('isPost') === 'true') {
    await runPost(step, host);
    return;
  }
  core.saveState('isPost', 'true');
  await runStep(step, host, cancellationSignal());
}
