import { StepError } from '../core/errors';
import { isTransientNetworkError, type RetryDecision } from '../core/retry';

/** Error names AWS uses for "slow down"; SageMaker answers 400 ThrottlingException. */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
]);

const EXPIRED = new Set(['ExpiredTokenException', 'ExpiredToken', 'RequestExpired', 'TokenRefreshRequired']);

interface AwsErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export function awsErrorName(error: unknown): string {
  return (error as AwsErrorShape)?.name ?? 'Error';
}

/** True when the service rejected credentials as expired: refresh them and try again. */
export function isExpiredCredentials(error: unknown): boolean {
  return EXPIRED.has(awsErrorName(error));
}

export function classifyAwsError(error: unknown): RetryDecision {
  const e = error as AwsErrorShape;
  const status = e?.$metadata?.httpStatusCode;
  if (THROTTLING.has(awsErrorName(error)) || status === 429) return { retry: true, reason: `throttled (${awsErrorName(error)})` };
  if (status !== undefined && status >= 500) return { retry: true, reason: `${status} ${awsErrorName(error)}` };
  if (e?.$retryable) return { retry: true, reason: awsErrorName(error) };
  if (isTransientNetworkError(error)) return { retry: true, reason: (error as Error).message };
  return { retry: false };
}

/** Turns a final AWS error into a StepError that says which call failed and what usually fixes it. */
export function awsStepError(service: string, operation: string, error: unknown): StepError {
  if (error instanceof StepError) return error;
  const name = awsErrorName(error);
  const message = (error as Error)?.message ?? String(error);
  const hints: Record<string, string> = {
    AccessDeniedException: `The identity lacks permission for ${service.toLowerCase()}:${operation}; see docs/permissions.md for the least-privilege policy.`,
    AccessDenied: `The identity lacks permission for ${service.toLowerCase()}:${operation}; see docs/permissions.md.`,
    ValidationException: 'AWS rejected a value in the request; check the job spec fields (role ARN, image, instance type, S3 URIs).',
    ResourceLimitExceeded: 'The account quota for this instance type is used up; request a quota increase or choose another instance type.',
    CredentialsProviderError: 'The AWS credentials could not be refreshed; see docs/permissions.md.',
    UnrecognizedClientException: 'AWS does not recognise the access key; check the credentials and region.',
    InvalidClientTokenId: 'AWS does not recognise the access key; check the credentials and region.',
  };
  const retried = classifyAwsError(error).retry ? ' (still failing after retrying with backoff)' : '';
  return new StepError(`${service} ${operation} failed: ${name}: ${message}${retried}`, { hint: hints[name], cause: error });
}
