import { deviceAgentCommand } from '../agent';
import { demoCommand } from '../demo/command';
import { selfTestCommand } from '../package/self-test-command';
import { rollbackCommand } from '../steps/promote-release/rollback-command';
import type { CliCommand } from './commands';
import { evalCommand } from './eval-command';

/** The commands `mlship` offers besides the steps. */
export const commands: readonly CliCommand[] = [evalCommand, rollbackCommand, deviceAgentCommand, selfTestCommand, demoCommand];
