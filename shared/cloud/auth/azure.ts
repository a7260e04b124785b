import {
  AzurePipelinesCredential,
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type AccessToken,
  type AuthorityValidationOptions,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import { StepError } from '../../core/errors';
import { requireServiceConnection, unsupportedScheme } from './azure-devops';
import type { AuthContext } from './context';

/** Options handed to every @azure/identity credential the step builds. */
export type IdentityOptions = TokenCredentialOptions & AuthorityValidationOptions;

/** Tokens are renewed this long before they expire, so a request never carries one that lapses in flight. */
const REFRESH_MARGIN_MS = 2 * 60_000;

export interface AzureAuthOptions {
  tenantId?: string;
  clientId?: string;
  /** Azure DevOps service connection (id or name) of type Azure Resource Manager. */
  serviceConnection?: string;
  /** How the user spells the service-connection input, for messages. */
  serviceConnectionLabel?: string;
  /** Passed to every @azure/identity credential: authority host for sovereign clouds, or a test transport. */
  identityOptions?: IdentityOptions;
}

export interface AzureAuth {
  readonly source: string;
  /** A bearer token for `scope`, cached until shortly before it expires. */
  token(scope: string): Promise<string>;
  /** The same token with its expiry, for SDK clients that take a TokenCredential (see `asTokenCredential`). */
  accessToken?(scope: string): Promise<AccessToken>;
  /** Forgets cached tokens and starts over with a new credential (and a fresh OIDC token) after a 401. */
  invalidate(): void;
  /** Subscription of the service connection, when one was used. */
  readonly subscriptionId?: string;
}

interface Resolved {
  source: string;
  make: () => TokenCredential;
  subscriptionId?: string;
  tried: string[];
}

/**
 * Chooses the credential the way each platform expects:
 * - Azure DevOps with a service connection: AzurePipelinesCredential (workload identity federation, using
 *   System.AccessToken) or the connection's service principal secret;
 * - GitHub (an OIDC token is available) with a client and tenant id: ClientAssertionCredential whose callback
 *   fetches a fresh `api://AzureADTokenExchange` token every time MSAL needs one;
 * - elsewhere: DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI, …).
 */
export function resolveAzureAuth(ctx: AuthContext, options: AzureAuthOptions): AzureAuth {
  const resolved = pick(ctx, options);
  let credential: TokenCredential | undefined;
  const cache = new Map<string, AccessToken>();
  const pending = new Map<string, Promise<AccessToken>>();
  const fetchToken = async (scope: string): Promise<AccessToken> => {
    credential ??= resolved.make();
    let token: AccessToken | null;
    try {
      token = await credential.getToken(scope);
    } catch (error) {
      // An identity endpoint that is throttled or briefly down is retried by the caller like any other call.
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 429 || (status !== undefined && status >= 500)) throw error;
      throw missingAzureCredential(resolved, error);
    }
    if (!token) throw missingAzureCredential(resolved, new Error('the credential returned no token'));
    ctx.setSecret(token.token);
    cache.set(scope, token);
    return token;
  };
  const accessToken = async (scope: string): Promise<AccessToken> => {
    const cached = cache.get(scope);
    if (cached && cached.expiresOnTimestamp - Date.now() > REFRESH_MARGIN_MS) return cached;
    let p = pending.get(scope);
    if (!p) {
      p = fetchToken(scope).finally(() => pending.delete(scope));
      pending.set(scope, p);
    }
    return p;
  };
  return {
    source: resolved.source,
    subscriptionId: resolved.subscriptionId,
    accessToken,
    async token(scope: string) {
      return (await accessToken(scope)).token;
    },
    invalidate() {
      cache.clear();
      credential = undefined;
    },
  };
}

/**
 * The step's Azure identity as a TokenCredential for Azure SDK clients (Blob Storage), drawing on the same
 * token cache as the ARM client, so one run resolves one credential and renews it ahead of expiry.
 */
export function asTokenCredential(auth: AzureAuth): TokenCredential {
  return {
    async getToken(scopes: string | string[]): Promise<AccessToken> {
      const scope = Array.isArray(scopes) ? scopes[0] : scopes;
      if (auth.accessToken) return auth.accessToken(scope);
      // An AzureAuth without expiries (a test double): claim a short life so the SDK asks again soon.
      return { token: await auth.token(scope), expiresOnTimestamp: Date.now() + REFRESH_MARGIN_MS * 2 };
    },
  };
}

function pick(ctx: AuthContext, options: AzureAuthOptions): Resolved {
  const identity = options.identityOptions ?? {};
  const tried: string[] = [];
  if (options.serviceConnection) {
    const label = options.serviceConnectionLabel ?? 'azureServiceConnection';
    const connection = requireServiceConnection(ctx, options.serviceConnection, label, 'AzureRM');
    const p = connection.parameters;
    const tenantId = p.tenantid ?? p.tenantId;
    const clientId = p.serviceprincipalid ?? p.serviceprincipalId ?? p.clientid;
    const subscriptionId = connection.data.subscriptionid ?? connection.data.subscriptionId;
    const scheme = connection.scheme.toLowerCase();
    if (scheme === 'workloadidentityfederation') {
      const systemToken = ctx.env.SYSTEM_ACCESSTOKEN;
      if (!systemToken) {
        throw new StepError(
          `Service connection "${options.serviceConnection}" uses workload identity federation, which needs the pipeline's System.AccessToken, but SYSTEM_ACCESSTOKEN is not in the task's environment.`,
          {
            hint: 'Add `env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }` to the task in the pipeline YAML.',
          },
        );
      }
      if (!tenantId || !clientId)
        throw new StepError(`Service connection "${options.serviceConnection}" has no tenant or service principal id.`, {
          hint: 'Recreate it as an Azure Resource Manager connection with workload identity federation.',
        });
      ctx.setSecret(systemToken);
      return {
        source: `Azure DevOps service connection "${options.serviceConnection}" (workload identity federation)`,
        make: () => new AzurePipelinesCredential(tenantId, clientId, connection.id, systemToken, identity),
        subscriptionId,
        tried,
      };
    }
    if (scheme === 'serviceprincipal' && p.authenticationType?.toLowerCase() === 'spncertificate' && p.servicePrincipalCertificate) {
      if (!tenantId || !clientId)
        throw new StepError(`Service connection "${options.serviceConnection}" has no tenant or service principal id.`);
      // The agent hands the certificate as PEM (certificate and private key together).
      const certificate = p.servicePrincipalCertificate;
      return {
        source: `Azure DevOps service connection "${options.serviceConnection}" (service principal certificate)`,
        make: () => new ClientCertificateCredential(tenantId, clientId, { certificate }, identity),
        subscriptionId,
        tried,
      };
    }
    if (scheme === 'serviceprincipal' && p.serviceprincipalkey) {
      if (!tenantId || !clientId)
        throw new StepError(`Service connection "${options.serviceConnection}" has no tenant or service principal id.`);
      return {
        source: `Azure DevOps service connection "${options.serviceConnection}" (service principal secret)`,
        make: () => new ClientSecretCredential(tenantId, clientId, p.serviceprincipalkey, identity),
        subscriptionId,
        tried,
      };
    }
    if (scheme === 'managedserviceidentity') {
      return {
        source: `Azure DevOps service connection "${options.serviceConnection}" (managed identity)`,
        make: () => new ManagedIdentityCredential(identity),
        subscriptionId,
        tried,
      };
    }
    throw unsupportedScheme(
      connection,
      label,
      'an Azure Resource Manager connection with workload identity federation (recommended), a service principal secret or certificate, or a managed identity',
    );
  }
  tried.push('azure-service-connection (Azure DevOps): not set');
  const clientId = options.clientId ?? ctx.env.AZURE_CLIENT_ID;
  const tenantId = options.tenantId ?? ctx.env.AZURE_TENANT_ID;
  if (ctx.getIdToken && clientId && tenantId) {
    const getIdToken = ctx.getIdToken;
    return {
      source: `OIDC federation for app ${clientId} in tenant ${tenantId}`,
      make: () => new ClientAssertionCredential(tenantId, clientId, () => getIdToken('api://AzureADTokenExchange'), identity),
      tried,
    };
  }
  tried.push(
    ctx.getIdToken
      ? `OIDC federation: ${clientId ? '' : 'azure-client-id'}${!clientId && !tenantId ? ' and ' : ''}${tenantId ? '' : 'azure-tenant-id'} not set`
      : `OIDC federation: this platform (${ctx.platform}) issues no OIDC token to the step`,
  );
  tried.push(
    'DefaultAzureCredential: environment (AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET or certificate), workload identity, managed identity, Azure CLI, Azure Developer CLI, Azure PowerShell',
  );
  return { source: 'DefaultAzureCredential', make: () => new DefaultAzureCredential(identity), tried };
}

function missingAzureCredential(resolved: Resolved, error: unknown): StepError {
  const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  // DefaultAzureCredential reports one error per source it tried; their first lines say what each lacked.
  const inner = (error as { errors?: unknown[] }).errors ?? [];
  const details = inner.map((e) => `     - ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`).join('\n');
  const tried = resolved.tried.length ? `Tried:\n${resolved.tried.map((t, i) => `  ${i + 1}. ${t}`).join('\n')}\n${details}` : details;
  return new StepError(`No usable Azure credential: ${resolved.source} failed: ${reason}\n${tried}`.trimEnd(), {
    hint:
      'GitHub: add `permissions: id-token: write`, give the app registration a federated credential for this repository, and set ' +
      'azure-client-id and azure-tenant-id on the step (or run azure/login first). Azure DevOps: create an Azure Resource Manager ' +
      'service connection with workload identity federation, set azureServiceConnection to its name, and map ' +
      '`SYSTEM_ACCESSTOKEN: $(System.AccessToken)` into the task env. Locally: `az login`. See docs/permissions.md.',
    cause: error,
  });
}
