/** An Azure ML workspace as ARM addresses it; shared by the training backend and the registry. */

export const AZUREML_API_VERSION = '2024-04-01';

export interface AzureWorkspace {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
}

export function workspacePath(w: AzureWorkspace): string {
  return `/subscriptions/${w.subscriptionId}/resourceGroups/${w.resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${w.workspace}`;
}
