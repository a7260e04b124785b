import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import type { ServiceConnection } from '../../core/host';
import { StepError } from '../../core/errors';
import { azureDevOpsOidcToken, requireServiceConnection, unsupportedScheme } from './azure-devops';
import type { AuthContext } from './context';

/** Refresh this long before expiry, as the SDK does: a request signed now must still be valid when it lands. */
const REFRESH_MARGIN_MS = 5 * 60_000;

export interface AwsAuthOptions {
  region: string;
  /** Role for AssumeRoleWithWebIdentity with the platform's OIDC token (GitHub), or AssumeRole elsewhere. */
  roleToAssume?: string;
  /** Seconds each assumed session lasts; long trainings simply refresh. */
  sessionSeconds?: number;
  /** Azure DevOps: an AWS service connection (AWS Toolkit for Azure DevOps), by id. */
  serviceConnection?: string;
  /** How the user spells the service-connection input, for messages. */
  serviceConnectionLabel?: string;
}

export interface AwsAuth {
  readonly credentials: AwsCredentialIdentityProvider;
  /** Where the credentials come from, for logs (never the credentials themselves). */
  readonly source: string;
  /** Forgets cached credentials after a service rejected them as expired; the next call fetches new ones. */
  invalidate(): void;
  /** Resolves credentials once, turning "none found" into a StepError that says how to set them up. */
  check(): Promise<void>;
}

/** SDK endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`), read from the step's env. */
export function awsEndpoint(env: NodeJS.ProcessEnv, service: 'SAGEMAKER' | 'STS' | 'S3' | 'CLOUDWATCH_LOGS'): string | undefined {
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * Picks the credential source the way CI users expect:
 * 1. `role-to-assume` with a fresh OIDC token from the platform on every refresh (GitHub `id-token: write`),
 * 2. `role-to-assume` assumed from the default chain where the platform has no OIDC token,
 * 3. access keys in the step's environment (what aws-actions/configure-aws-credentials exports),
 * 4. the SDK default chain (profiles, SSO, web identity token file, container and instance metadata).
 */
export function resolveAwsAuth(ctx: AuthContext, options: AwsAuthOptions): AwsAuth {
  const env = ctx.env;
  if (options.serviceConnection) return serviceConnectionAuth(ctx, options, options.serviceConnection);
  if (options.roleToAssume && ctx.getIdToken) return webIdentityAuth(ctx, options);
  if (options.roleToAssume) {
    const base = fromNodeProviderChain();
    return refreshing(
      `role ${options.roleToAssume} assumed from the default AWS credential chain`,
      () =>
        fromTemporaryCredentials({
          masterCredentials: base,
          params: { RoleArn: options.roleToAssume!, RoleSessionName: sessionName(ctx), DurationSeconds: options.sessionSeconds ?? 3600 },
          clientConfig: { region: options.region, endpoint: awsEndpoint(env, 'STS') },
        }),
      ctx,
      options,
    );
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    const creds: AwsCredentialIdentity = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
      expiration: env.AWS_CREDENTIAL_EXPIRATION ? new Date(env.AWS_CREDENTIAL_EXPIRATION) : undefined,
    };
    ctx.setSecret(creds.secretAccessKey);
    if (creds.sessionToken) ctx.setSecret(creds.sessionToken);
    const provider: AwsCredentialIdentityProvider = async () => creds;
    return {
      credentials: provider,
      source: 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment',
      invalidate() {},
      check: async () => {},
    };
  }
  return refreshing('the AWS SDK default credential chain', () => fromNodeProviderChain(), ctx, options);
}

/**
 * An AWS service connection as the AWS Toolkit for Azure DevOps defines it: scheme `UsernamePassword` with access
 * keys (`username`, `password`, optional `sessionToken`), optionally assuming `assumeRoleArn` with them
 * (`externalId`, `roleSessionName`); or scheme `None` with a `role` assumed with the connection's OIDC token.
 */
function serviceConnectionAuth(ctx: AuthContext, options: AwsAuthOptions, id: string): AwsAuth {
  const label = options.serviceConnectionLabel ?? 'awsServiceConnection';
  const connection = requireServiceConnection(ctx, id, label, 'AWS');
  const p = connection.parameters;
  const name = `AWS service connection "${id}"`;
  if (connection.scheme.toLowerCase() === 'none' && p.role) {
    return webIdentityAuth(
      ctx,
      { ...options, roleToAssume: p.role, roleSessionName: p.roleSessionName },
      () => azureDevOpsOidcToken(ctx, connection, label),
      `${name} (OpenID Connect)`,
    );
  }
  if (connection.scheme.toLowerCase() !== 'usernamepassword')
    throw unsupportedScheme(connection, label, 'an AWS connection with access keys (UsernamePassword) or with OpenID Connect and a role');
  if (!p.username || !p.password) {
    throw new StepError(`${name} (input ${label}) has ${p.username ? 'no secret access key' : 'no access key id'}.`, {
      hint: 'Edit the connection: give both "Access Key ID" and "Secret Access Key", or switch it to OpenID Connect with a role.',
    });
  }
  const keys: AwsCredentialIdentity = { accessKeyId: p.username, secretAccessKey: p.password, sessionToken: p.sessionToken || undefined };
  for (const secret of [keys.secretAccessKey, keys.sessionToken]) if (secret) ctx.setSecret(secret);
  if (!p.assumeRoleArn) {
    const provider: AwsCredentialIdentityProvider = async () => keys;
    return { credentials: provider, source: `${name} (access keys)`, invalidate() {}, check: async () => {} };
  }
  return assumedWithKeys(ctx, options, connection, keys);
}

function assumedWithKeys(ctx: AuthContext, options: AwsAuthOptions, connection: ServiceConnection, keys: AwsCredentialIdentity): AwsAuth {
  const p = connection.parameters;
  return refreshing(
    `role ${p.assumeRoleArn} assumed with AWS service connection "${connection.id}"`,
    () =>
      fromTemporaryCredentials({
        masterCredentials: keys,
        params: {
          RoleArn: p.assumeRoleArn,
          RoleSessionName: p.roleSessionName || sessionName(ctx),
          DurationSeconds: options.sessionSeconds ?? 3600,
          ...(p.externalId ? { ExternalId: p.externalId } : {}),
        },
        clientConfig: { region: options.region, endpoint: awsEndpoint(ctx.env, 'STS') },
      }),
    ctx,
    options,
  );
}

function webIdentityAuth(
  ctx: AuthContext,
  options: AwsAuthOptions & { roleSessionName?: string },
  idToken: () => Promise<string> = () => ctx.getIdToken!('sts.amazonaws.com'),
  source = `role ${options.roleToAssume} via the platform's OIDC token`,
): AwsAuth {
  const sts = new STSClient({ region: options.region, endpoint: awsEndpoint(ctx.env, 'STS'), maxAttempts: 4 });
  const roleArn = options.roleToAssume!;
  const assume = async (): Promise<AwsCredentialIdentity> => {
    let token: string;
    try {
      token = await idToken();
    } catch (error) {
      if (error instanceof StepError) throw error;
      throw new StepError(`Could not get an OIDC token for role ${roleArn}: ${(error as Error).message}`, {
        hint: 'On GitHub add `permissions: id-token: write` to the workflow or job; the step exchanges that token for AWS credentials.',
        cause: error,
      });
    }
    ctx.setSecret(token);
    const out = await sts
      .send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: roleArn,
          RoleSessionName: options.roleSessionName || sessionName(ctx),
          WebIdentityToken: token,
          DurationSeconds: options.sessionSeconds ?? 3600,
        }),
      )
      .catch((error: Error) => {
        throw new StepError(`AWS STS refused AssumeRoleWithWebIdentity for ${roleArn}: ${error.name}: ${error.message}`, {
          hint: `The role's trust policy must allow sts:AssumeRoleWithWebIdentity for the OIDC provider and this repository's subject, with audience sts.amazonaws.com; see docs/permissions.md.`,
          cause: error,
        });
      });
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new StepError(`AssumeRoleWithWebIdentity for ${roleArn} returned no credentials.`);
    ctx.setSecret(c.SecretAccessKey);
    if (c.SessionToken) ctx.setSecret(c.SessionToken);
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
  };
  return refreshing(source, () => assume, ctx, options);
}

/**
 * Wraps a provider with a cache shared by every client of one step, refreshed ahead of expiry and
 * dropped on demand, so a wait of many hours keeps working after each one-hour session ends.
 */
function refreshing(source: string, make: () => AwsCredentialIdentityProvider, ctx: AuthContext, options: AwsAuthOptions): AwsAuth {
  let inner = make();
  let cached: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  const fresh = (c: AwsCredentialIdentity) => !c.expiration || c.expiration.getTime() - Date.now() > REFRESH_MARGIN_MS;
  const credentials: AwsCredentialIdentityProvider = async () => {
    if (cached && fresh(cached)) return cached;
    pending ??= inner()
      .then((c) => {
        ctx.setSecret(c.secretAccessKey);
        if (c.sessionToken) ctx.setSecret(c.sessionToken);
        cached = c;
        return c;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  return {
    credentials,
    source,
    invalidate() {
      cached = undefined;
      inner = make();
    },
    async check() {
      try {
        await credentials();
      } catch (error) {
        if (error instanceof StepError) throw error;
        throw missingAwsCredentials(ctx, options, error);
      }
    },
  };
}

function sessionName(ctx: AuthContext): string {
  return `mlship-${ctx.run.id}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

export function missingAwsCredentials(ctx: AuthContext, options: AwsAuthOptions, error: unknown): StepError {
  const reason = error instanceof Error ? error.message : String(error);
  const tried = [
    options.roleToAssume
      ? `role-to-assume ${options.roleToAssume}: ${ctx.getIdToken ? 'the OIDC exchange failed' : 'assumed from the default chain, which had no base credentials'}`
      : `role-to-assume with the platform's OIDC token: not set`,
    `AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment: ${ctx.env.AWS_ACCESS_KEY_ID ? 'incomplete' : 'not set'}`,
    `the AWS SDK default chain (AWS_PROFILE and ~/.aws files, SSO, AWS_WEB_IDENTITY_TOKEN_FILE, ECS/EC2 metadata): ${reason}`,
  ];
  return new StepError(`No AWS credentials found. Tried:\n${tried.map((t, i) => `  ${i + 1}. ${t}`).join('\n')}`, {
    hint:
      'GitHub: add `permissions: id-token: write` and set the input role-to-assume to an IAM role whose trust policy allows ' +
      'token.actions.githubusercontent.com for this repository (or run aws-actions/configure-aws-credentials first). ' +
      'Azure DevOps: run the step after an AWS Toolkit task that exports credentials from an AWS service connection, or map secret ' +
      'variables into env as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Locally: `aws configure` or `aws sso login`. See docs/permissions.md.',
    cause: error,
  });
}

/** Region from the spec or input, else the environment the AWS CLI and SDKs read. */
export function resolveAwsRegion(env: NodeJS.ProcessEnv, explicit: string | undefined, inputLabel: string): string {
  const region = explicit || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new StepError('No AWS region is set.', {
      hint: `Set the input ${inputLabel} (or sagemaker.region in the job spec), or AWS_REGION in the environment.`,
    });
  }
  return region;
}
