import type { Logger } from '../core/context';
import type { RetryPolicy } from '../core/retry';
import type { AzureAuth } from './auth/azure';
import { ArmClient } from './azure-arm';

/** An Azure ML workspace as ARM addresses it; shared by the training backend and the registry. */

export const AZUREML_API_VERSION = '2024-04-01';

export interface AzureWorkspace {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
}

/** A workspace and how to reach it: the run's Azure identity, the ARM endpoint (sovereign clouds) and retry policy. */
export interface AzureWorkspaceConnection extends AzureWorkspace {
  auth: AzureAuth;
  armEndpoint?: string;
  retry: RetryPolicy;
  log?: Logger;
}

export function workspacePath(w: AzureWorkspace): string {
  return `/subscriptions/${w.subscriptionId}/resourceGroups/${w.resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${w.workspace}`;
}

/** An ARM client at the Azure ML API version, logging its retries at debug level, and the workspace's resource path. */
export function workspaceArm(c: AzureWorkspaceConnection): { arm: ArmClient; ws: string } {
  const arm = new ArmClient({
    auth: c.auth,
    endpoint: c.armEndpoint,
    apiVersion: AZUREML_API_VERSION,
    retry: c.retry,
    onRetry: (m) => c.log?.debug(m),
  });
  return { arm, ws: workspacePath(c) };
}
