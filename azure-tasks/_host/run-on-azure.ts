import { cancellationSignal, runPost, runStep } from '../../shared/core/runtime';
import type { AnyStep } from '../../shared/core/step';
import { AzureHost } from './azure-host';

/** Entry of every bundled Azure DevOps task. Azure has no `post:` entry, so cleanup runs here after a cancel. */
export async function runOnAzure(step: AnyStep): Promise<void> {
  let host: AzureHost;
  try {
    host = new AzureHost();
  } catch (error) {
    // Without a host there is no task-lib to report through; the agent reads this command from stdout.
    console.log(
      `##vso[task.complete result=Failed;]${(error as Error).message.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}`,
    );
    process.exitCode = 1;
    return;
  }
  const signal = cancellationSignal();
  await runStep(step, host, signal);
  if (signal.aborted) await runPost(step, host);
}
