import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { Logger } from '../core/context';
import type { RetryPolicy } from '../core/retry';
import type { AwsAuth } from './auth/aws';
import { AwsCaller } from './aws-call';

/** A SageMaker client behind the run's credentials and retry policy, for the training backend and the registry. */
export function sageMakerCaller(o: {
  region: string;
  endpoint?: string;
  auth: AwsAuth;
  retry: RetryPolicy;
  log?: Logger;
}): AwsCaller<SageMakerClient> {
  return new AwsCaller(
    'SageMaker',
    () => new SageMakerClient({ region: o.region, endpoint: o.endpoint, credentials: o.auth.credentials, maxAttempts: 1 }),
    o.auth,
    o.retry,
    o.log,
  );
}
