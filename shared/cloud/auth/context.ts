import type { StepContext } from '../../core/context';

/** What credential resolution needs from a step's context; tests and other steps pass the real one. */
export type AuthContext = Pick<StepContext, 'env' | 'platform' | 'run' | 'log' | 'setSecret' | 'getIdToken' | 'getServiceConnection'>;
