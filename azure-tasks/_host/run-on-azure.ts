import { cancellationSignal, runPost, runStep } from '../../shared/core/runtime';
import type { AnyStep } from '../../shared/core/step';
import { AzureHost } from './azure-host';

/** Entry of every bundled Azure DevOps task. Azure has no `post:` entry, so cleanup runs here after a cancel. */
export async function runOnAzure(step: AnyStep): Promise<void> {
  const host = new AzureHost();
  const signal = cancellationSignal();
  await runStep(step, host, signal);
  if (signal.aborted) await runPost(step, host);
}
