import { writeFileAtomic } from './atomic-write';
import { StepError } from './errors';

/**
 * Writes a file a step was asked to produce (a report, a page, raw samples) whole or not at all. A failure (a
 * folder in the way, no permission, a full disk) is the user's path, not a bug, so it becomes a StepError that
 * names the inputs which chose it, as the platform spells them.
 */
export async function writeOutputFile(file: string, data: string | Buffer, inputs: string): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (error) {
    throw new StepError(`Cannot write ${file}: ${(error as Error).message}.`, { file, hint: `Choose a writable ${inputs} path.` });
  }
}
