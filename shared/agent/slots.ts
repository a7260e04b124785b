import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write';

export type SlotName = 'a' | 'b';

/**
 * Two install slots under <root>/slots and one pointer to the active one. The pointer is a symlink
 * <root>/current → slots/<x>, replaced by rename (atomic on POSIX), so the analysis software that opens
 * <root>/current/… sees the old model or the new one, never a mix. <root>/current.slot holds the same
 * answer as text for software that prefers a file (and is the pointer on Windows).
 */
export class Slots {
  constructor(readonly root: string) {}

  dir(slot: SlotName): string {
    return path.join(this.root, 'slots', slot);
  }

  get currentLink(): string {
    return path.join(this.root, 'current');
  }

  /** The symlink is the truth (it is what the analysis software opens); current.slot only on Windows. */
  async active(): Promise<SlotName | undefined> {
    const target =
      process.platform === 'win32'
        ? await fsp.readFile(path.join(this.root, 'current.slot'), 'utf8').catch(() => undefined)
        : await fsp.readlink(this.currentLink).catch(() => undefined);
    const slot = target?.trim().split(/[\\/]/).pop();
    return slot === 'a' || slot === 'b' ? slot : undefined;
  }

  static other(slot: SlotName | undefined): SlotName {
    return slot === 'a' ? 'b' : 'a';
  }

  /**
   * Replaces the contents of an inactive slot with a fresh directory filled by `fill`. The new directory is
   * filled under a temp name first, so a crash leaves the old slot or the complete new one.
   */
  async install(slot: SlotName, fill: (dir: string) => Promise<void>): Promise<void> {
    const slotsDir = path.join(this.root, 'slots');
    await fsp.mkdir(slotsDir, { recursive: true });
    // Leftovers of an install that was killed (temp and partial folders of this slot) go first.
    for (const name of await fsp.readdir(slotsDir))
      if (name.startsWith(`.${slot}.`)) await fsp.rm(path.join(slotsDir, name), { recursive: true, force: true });
    const temp = path.join(slotsDir, `.${slot}.${randomUUID()}.tmp`);
    try {
      await fill(temp);
      const old = path.join(slotsDir, `.${slot}.${randomUUID()}.old`);
      await fsp.rename(this.dir(slot), old).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await fsp.rename(temp, this.dir(slot));
      await fsp.rm(old, { recursive: true, force: true });
    } catch (error) {
      await fsp.rm(temp, { recursive: true, force: true });
      throw error;
    }
  }

  /** What the agent installed in `slot` (slots/<x>.json), kept next to the slot so a damaged state.json can be rebuilt. */
  async writeMarker(slot: SlotName, content: object): Promise<void> {
    await writeFileAtomic(path.join(this.root, 'slots', `${slot}.json`), JSON.stringify(content, null, 2) + '\n');
  }

  async readMarker(slot: SlotName): Promise<unknown> {
    const text = await fsp.readFile(path.join(this.root, 'slots', `${slot}.json`), 'utf8').catch(() => undefined);
    try {
      return text === undefined ? undefined : JSON.parse(text);
    } catch {
      return undefined;
    }
  }

  /** Points `current` at `slot` in one rename. */
  async activate(slot: SlotName): Promise<void> {
    if (process.platform !== 'win32') {
      const temp = path.join(this.root, `.current.${randomUUID()}.tmp`);
      await fsp.symlink(path.join('slots', slot), temp);
      await fsp.rename(temp, this.currentLink);
    }
    await writeFileAtomic(path.join(this.root, 'current.slot'), `${slot}\n`);
  }

  /** No model at all: what is left when the first install fails its health check. */
  async deactivate(): Promise<void> {
    await fsp.rm(this.currentLink, { force: true });
    await fsp.rm(path.join(this.root, 'current.slot'), { force: true });
  }
}
