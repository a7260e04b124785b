import { StepError } from '../../core/errors';
import { parseClassList as parseDeclaredClasses } from '../../validate/dataset';

/** One class to score: its label value in the masks and a name for reports. */
export interface ClassEntry {
  readonly index: number;
  readonly name: string;
}

/** Labels a semantic mask may hold (countLabels' joint-histogram limit). */
const MAX_LABEL = 4095;

/**
 * The classes to score, given explicitly so a label absent from every image is still scored (as MONAI scores
 * every channel of its one-hot tensors). Three forms:
 * - `lines`: a list input, one "value: name" or "name" (value = position) per item, as validate-data reads it;
 * - `text` with `file`: a labels file, the same per line (line position = value, like a package labels.txt);
 * - `text` alone: the CLI's comma list, "1,2,5" (values) or "background,cell,nucleus" (names by position).
 */
export function parseClassList(source: { lines: readonly string[] } | { text: string; file?: string }, where: string): ClassEntry[] {
  let items: string[];
  const file = 'file' in source ? source.file : undefined;
  if ('lines' in source) items = [...source.lines];
  else if (file !== undefined) {
    items = source.text.split(/\r?\n/);
    if (items[items.length - 1] === '') items.pop();
    const blank = items.findIndex((l) => l.trim() === '');
    // a blank line would shift every later class by one position
    if (blank >= 0)
      throw new StepError(`The labels file ${file} (${where}) has an empty line ${blank + 1}.`, {
        file,
        line: blank + 1,
        hint: 'One class per line; the line position is the label value unless written as "value: name".',
      });
  } else {
    const parts = source.text.split(',').map((s) => s.trim());
    items = parts.every((s) => /^\d+$/.test(s)) ? parts.map((s) => `${s}: class ${s}`) : parts;
  }
  if (items.length === 0 || items.some((s) => s.trim() === ''))
    throw new StepError(`${file ?? where} lists ${items.length === 0 ? 'no classes' : 'an empty class'}.`, {
      file,
      hint: 'Give the classes as "1,2,5", or one "value: name" per line.',
    });
  const out = parseDeclaredClasses(items).map((c) => ({ index: c.value, name: c.name }));
  const seen = new Map<number, string>();
  for (const c of out) {
    if (!Number.isInteger(c.index) || c.index > MAX_LABEL)
      throw new StepError(`${file ?? where} gives class "${c.name}" the value ${c.index}; mask labels are 0..${MAX_LABEL}.`, {
        file,
        hint: 'Use the pixel value the class has in the masks.',
      });
    if (seen.has(c.index))
      throw new StepError(`${file ?? where} gives value ${c.index} to both "${seen.get(c.index)}" and "${c.name}".`, {
        file,
        hint: 'Each label value names one class.',
      });
    seen.set(c.index, c.name);
  }
  return out;
}
