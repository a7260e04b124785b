import type { CliCommand } from './commands';
import { evalCommand } from './eval-command';

/** The commands `mlship` offers besides the steps. */
export const commands: readonly CliCommand[] = [evalCommand];
