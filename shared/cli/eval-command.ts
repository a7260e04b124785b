import * as path from 'node:path';
import { describeStepError, InputError, isStepError } from '../core/errors';
import { cocoResultJson, EMPTY_RULES, evaluateCocoFiles, evaluateMaskFolders, maskResultJson, STAT_NAMES } from '../metrics';
import type { CliCommand, CliIo } from './commands';

const USAGE = `Usage:
  mlship eval coco  --ground-truth gt.json --predictions dt.json [--iou-type bbox|segm] [--json]
  mlship eval masks --ground-truth DIR --predictions DIR [--binary] [--include-background] [--empty-rule ${EMPTY_RULES.join('|')}] [--json]`;

function options(argv: readonly string[], known: { values: string[]; flags: string[] }): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--')) throw new InputError(`Unexpected argument "${argv[i]}".`, { hint: USAGE });
    if (known.flags.includes(name)) out[name] = true;
    else if (known.values.includes(name) && i + 1 < argv.length) out[name] = argv[++i];
    else throw new InputError(`Unknown or incomplete option "${argv[i]}".`, { hint: USAGE });
  }
  return out;
}

function required(o: Record<string, string | boolean>, name: string): string {
  const v = o[name];
  if (typeof v !== 'string') throw new InputError(`Option "--${name}" is required.`, { hint: USAGE });
  return path.resolve(v);
}

async function evaluate(argv: readonly string[], io: CliIo): Promise<void> {
  const [kind, ...rest] = argv;
  if (kind === 'coco') {
    const o = options(rest, { values: ['ground-truth', 'predictions', 'iou-type'], flags: ['json', 'no-use-cats'] });
    const iouType = (o['iou-type'] ?? 'bbox') as string;
    if (iouType !== 'bbox' && iouType !== 'segm') throw new InputError(`Option "--iou-type" has value "${iouType}"; allowed: bbox, segm.`);
    const result = evaluateCocoFiles({ groundTruth: required(o, 'ground-truth'), predictions: required(o, 'predictions'), iouType, useCats: !o['no-use-cats'] });
    if (o.json) io.stdout(JSON.stringify(cocoResultJson(result), null, 2) + '\n');
    // The same 12 lines pycocotools' summarize() prints, so results compare at a glance.
    else STAT_NAMES.forEach((name, i) => io.stdout(`${name.padEnd(10)} ${result.stats[i].toFixed(3)}\n`));
    return;
  }
  if (kind === 'masks') {
    const o = options(rest, { values: ['ground-truth', 'predictions', 'empty-rule'], flags: ['json', 'binary', 'include-background'] });
    const emptyRule = (o['empty-rule'] ?? 'skip') as (typeof EMPTY_RULES)[number];
    if (!EMPTY_RULES.includes(emptyRule)) throw new InputError(`Option "--empty-rule" has value "${emptyRule}"; allowed: ${EMPTY_RULES.join(', ')}.`);
    const result = await evaluateMaskFolders({ groundTruth: required(o, 'ground-truth'), predictions: required(o, 'predictions'), binary: Boolean(o.binary), includeBackground: Boolean(o['include-background']), emptyRule });
    const json = maskResultJson(result) as Record<string, unknown>;
    if (o.json) io.stdout(JSON.stringify(json, null, 2) + '\n');
    else io.stdout(`dice ${String(json.dice)}\niou  ${String(json.iou)}\n`);
    return;
  }
  throw new InputError(kind ? `Unknown evaluation "${kind}".` : 'Say what to evaluate.', { hint: USAGE });
}

/** `mlship eval coco|masks`: the metrics engine on its own, printing the numbers the gate uses. */
export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'Evaluate predictions: COCO mAP (pycocotools-exact) or Dice/IoU of label masks',
  async run(argv, io) {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout(USAGE + '\n');
      return 0;
    }
    try {
      await evaluate(argv, io);
      return 0;
    } catch (error) {
      if (!isStepError(error)) throw error;
      io.stderr(`error: ${describeStepError(error)}\n`);
      return error instanceof InputError ? 2 : 1;
    }
  },
};
