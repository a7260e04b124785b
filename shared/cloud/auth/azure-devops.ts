import type { ServiceConnection } from '../../core/host';
import { StepError } from '../../core/errors';
import type { ConnectionType } from '../../core/step';
import type { AuthContext } from './context';

const GRANT: Record<ConnectionType, string> = {
  AzureRM: 'an Azure Resource Manager service connection',
  AWS: 'an AWS service connection (AWS Toolkit for Azure DevOps)',
};

/**
 * The service connection a `connection` input names, as the agent hands it to the task (ENDPOINT_AUTH_<id>,
 * ENDPOINT_URL_<id>, ENDPOINT_DATA_<id>_<key>). The agent sets those only when the pipeline is authorised for
 * the connection and the input is of type `connectedService:<type>`, so "not there" always means one of the two.
 */
export function requireServiceConnection(ctx: AuthContext, id: string, label: string, type: ConnectionType): ServiceConnection {
  if (!ctx.getServiceConnection) {
    throw new StepError(
      `The input ${label} ("${id}") selects an Azure DevOps service connection, which only Azure Pipelines provides; this run is on ${ctx.platform}.`,
      {
        hint: 'Leave it empty here: GitHub uses OIDC (role-to-assume, azure-client-id and azure-tenant-id) and the CLI the credentials in its environment.',
      },
    );
  }
  const connection = ctx.getServiceConnection(id);
  if (!connection) {
    throw new StepError(
      `Service connection "${id}" (input ${label}) was not handed to the task: the agent provided no authorization scheme for it.`,
      {
        hint:
          `Select ${GRANT[type]} in the task's ${label} input, and authorise this pipeline to use it (Project settings → Service connections → ${id} → ` +
          'Security → Pipeline permissions; a first run waiting for "Permit" counts too). The agent hands credentials only to a task input of that connection type.',
      },
    );
  }
  return connection;
}

/** The scheme a connection uses, for messages: never its parameters, which are secrets. */
export function unsupportedScheme(connection: ServiceConnection, label: string, supported: string): StepError {
  return new StepError(
    `Service connection "${connection.id}" (input ${label}) uses the "${connection.scheme}" authorization scheme, which this step cannot use.`,
    { hint: `Use ${supported}.` },
  );
}

/**
 * A fresh OIDC token for a service connection from Azure DevOps' oidctoken API (SYSTEM_OIDCREQUESTURI with the
 * job's System.AccessToken), as @azure/identity's AzurePipelinesCredential and the AWS Toolkit request one.
 */
export async function azureDevOpsOidcToken(ctx: AuthContext, connection: ServiceConnection, label: string): Promise<string> {
  const requestUri = ctx.env.SYSTEM_OIDCREQUESTURI;
  const accessToken = ctx.env.SYSTEM_ACCESSTOKEN;
  if (!requestUri || !accessToken) {
    throw new StepError(
      `Service connection "${connection.id}" (input ${label}) uses OpenID Connect, which needs the pipeline's System.AccessToken, but ${accessToken ? 'SYSTEM_OIDCREQUESTURI' : 'SYSTEM_ACCESSTOKEN'} is not in the task's environment.`,
      {
        hint: 'Add `env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }` to the task in the pipeline YAML (agents 3.225 and later set SYSTEM_OIDCREQUESTURI).',
      },
    );
  }
  ctx.setSecret(accessToken);
  const url = `${requestUri}?api-version=7.1&serviceConnectionId=${encodeURIComponent(connection.id)}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
    body: '{}',
  }).catch((error: Error) => {
    throw new StepError(`Could not reach Azure DevOps for an OIDC token of service connection "${connection.id}": ${error.message}`, {
      cause: error,
    });
  });
  const text = await res.text();
  const token = res.ok ? (JSON.parse(text || '{}') as { oidcToken?: string }).oidcToken : undefined;
  if (!token) {
    throw new StepError(`Azure DevOps returned no OIDC token for service connection "${connection.id}" (HTTP ${res.status}).`, {
      hint: 'The job token must be allowed to use the connection: check the connection\'s pipeline permissions and that "Limit job authorization scope" leaves it reachable.',
    });
  }
  ctx.setSecret(token);
  return token;
}
