import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeStepError, InputError, isStepError } from '../core/errors';
import { CocoParamsError, cocoResultJson, EMPTY_RULES, evaluateCocoFiles, evaluateMaskFolders, maskResultJson, parseCocoParams, type CocoParams } from '../metrics';
import { parseClassList } from '../metrics/masks/classes';
import type { CliCommand, CliIo } from './commands';

/** One option of an `mlship eval` command: declared as data, so the parser and the usage text come from one table. */
interface EvalOption {
  readonly name: string;
  /** 'value' takes the next argument (or --name=value); 'flag' takes none. */
  readonly kind: 'value' | 'flag';
  readonly arg?: string;
  readonly description: string;
}

const COCO_OPTIONS: readonly EvalOption[] = [
  { name: 'ground-truth', kind: 'value', arg: 'gt.json', description: 'COCO instances JSON (required)' },
  { name: 'predictions', kind: 'value', arg: 'dt.json', description: 'COCO results list (required)' },
  { name: 'iou-type', kind: 'value', arg: 'bbox|segm', description: 'boxes or instance masks (default bbox)' },
  { name: 'max-dets', kind: 'value', arg: '1,10,100', description: 'COCOeval params.maxDets: at least three limits; AR1/AR10/AR100 read the first three (sorted), AP reads 100 as pycocotools does' },
  { name: 'iou-thrs', kind: 'value', arg: '0.5:0.95:0.05', description: 'params.iouThrs: start:stop:step (np.linspace, as the default is built) or a list 0.5,0.75' },
  { name: 'area-rng', kind: 'value', arg: 'all=0:1e10,...', description: 'params.areaRng with its labels (square pixels); default all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10' },
  { name: 'use-cats', kind: 'value', arg: 'true|false', description: 'params.useCats (default true); false pools every category' },
  { name: 'no-use-cats', kind: 'flag', description: 'the same as --use-cats false' },
  { name: 'json', kind: 'flag', description: 'print the result as JSON' },
];

const MASK_OPTIONS: readonly EvalOption[] = [
  { name: 'ground-truth', kind: 'value', arg: 'DIR', description: 'folder of label masks (required)' },
  { name: 'predictions', kind: 'value', arg: 'DIR', description: 'folder of predicted masks named like the ground truth (required)' },
  { name: 'classes', kind: 'value', arg: '1,2,5|labels.txt', description: 'labels to score, also those absent from every image (a list, or a labels file: one "index name" or name per line, line number = index)' },
  { name: 'binary', kind: 'flag', description: 'any non-zero pixel is foreground' },
  { name: 'include-background', kind: 'flag', description: 'also score label 0' },
  { name: 'empty-rule', kind: 'value', arg: EMPTY_RULES.join('|'), description: 'score of a class absent from an image\'s ground truth (default skip)' },
  { name: 'json', kind: 'flag', description: 'print the result as JSON' },
];

function usageLine(kind: string, opts: readonly EvalOption[]): string {
  return `  mlship eval ${kind.padEnd(5)} ${opts.map((o) => (o.kind === 'flag' ? `[--${o.name}]` : ['ground-truth', 'predictions'].includes(o.name) ? `--${o.name} ${o.arg}` : `[--${o.name} ${o.arg}]`)).join(' ')}`;
}

function optionHelp(opts: readonly EvalOption[]): string {
  return opts.map((o) => `    --${`${o.name}${o.arg ? ` ${o.arg}` : ''}`.padEnd(34)} ${o.description}`).join('\n');
}

const USAGE = `Usage:
${usageLine('coco', COCO_OPTIONS)}
${usageLine('masks', MASK_OPTIONS)}

coco options (pycocotools COCOeval semantics; without --json the 12 lines summarize() prints):
${optionHelp(COCO_OPTIONS)}

masks options:
${optionHelp(MASK_OPTIONS)}`;

function options(argv: readonly string[], known: readonly EvalOption[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new InputError(`Unexpected argument "${argv[i]}".`, { hint: USAGE });
    const eq = argv[i].indexOf('=');
    const name = eq === -1 ? argv[i].slice(2) : argv[i].slice(2, eq);
    const spec = known.find((o) => o.name === name);
    if (spec?.kind === 'flag' && eq === -1) out[name] = true;
    else if (spec?.kind === 'value' && eq !== -1) out[name] = argv[i].slice(eq + 1);
    else if (spec?.kind === 'value' && i + 1 < argv.length) out[name] = argv[++i];
    else throw new InputError(`Unknown or incomplete option "${argv[i]}".`, { hint: USAGE });
  }
  return out;
}

function required(o: Record<string, string | boolean>, name: string): string {
  const v = o[name];
  if (typeof v !== 'string') throw new InputError(`Option "--${name}" is required.`, { hint: USAGE });
  return path.resolve(v);
}

const OPTION_OF = { maxDets: 'max-dets', iouThrs: 'iou-thrs', areaRng: 'area-rng' } as const;

/** COCOeval parameters from the options; an impossible set is a usage error naming the option and its value. */
function cocoParamsFrom(o: Record<string, string | boolean>): CocoParams {
  const useCatsText = o['use-cats'];
  let useCats = !o['no-use-cats'];
  if (typeof useCatsText === 'string') {
    if (!['true', 'false', '1', '0'].includes(useCatsText)) throw new InputError(`Option "--use-cats" has value "${useCatsText}"; allowed: true, false.`);
    useCats = (useCatsText === 'true' || useCatsText === '1') && useCats;
  }
  const text = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  try {
    return parseCocoParams({ maxDets: text('max-dets'), iouThrs: text('iou-thrs'), areaRng: text('area-rng'), useCats });
  } catch (error) {
    if (!(error instanceof CocoParamsError)) throw error;
    const opt = OPTION_OF[error.param];
    throw new InputError(`Option "--${opt}" has value "${String(o[opt] ?? '(default)')}": ${error.message}`, { hint: error.hint });
  }
}

async function evaluate(argv: readonly string[], io: CliIo): Promise<void> {
  const [kind, ...rest] = argv;
  if (kind === 'coco') {
    const o = options(rest, COCO_OPTIONS);
    const iouType = (o['iou-type'] ?? 'bbox') as string;
    if (iouType !== 'bbox' && iouType !== 'segm') throw new InputError(`Option "--iou-type" has value "${iouType}"; allowed: bbox, segm.`);
    const params = cocoParamsFrom(o);
    const result = evaluateCocoFiles({ groundTruth: required(o, 'ground-truth'), predictions: required(o, 'predictions'), iouType, params });
    if (o.json) io.stdout(JSON.stringify(cocoResultJson(result), null, 2) + '\n');
    // The same 12 lines pycocotools' summarize() prints, so results compare at a glance.
    else io.stdout(result.summary.join('\n') + '\n');
    return;
  }
  if (kind === 'masks') {
    const o = options(rest, MASK_OPTIONS);
    const emptyRule = (o['empty-rule'] ?? 'skip') as (typeof EMPTY_RULES)[number];
    if (!EMPTY_RULES.includes(emptyRule)) throw new InputError(`Option "--empty-rule" has value "${emptyRule}"; allowed: ${EMPTY_RULES.join(', ')}.`);
    const classes = typeof o.classes === 'string' ? classList(o.classes) : undefined;
    const result = await evaluateMaskFolders({ groundTruth: required(o, 'ground-truth'), predictions: required(o, 'predictions'), binary: Boolean(o.binary), includeBackground: Boolean(o['include-background']), emptyRule, classes });
    const json = maskResultJson(result) as Record<string, unknown>;
    if (o.json) io.stdout(JSON.stringify(json, null, 2) + '\n');
    else io.stdout(`dice ${String(json.dice)}\niou  ${String(json.iou)}\n`);
    return;
  }
  throw new InputError(kind ? `Unknown evaluation "${kind}".` : 'Say what to evaluate.', { hint: USAGE });
}

/** --classes: a comma list, or the path of a labels file when a file of that name exists. */
function classList(value: string): number[] {
  const file = path.resolve(value);
  const isFile = fs.existsSync(file) && fs.statSync(file).isFile();
  return parseClassList(isFile ? { file, text: fs.readFileSync(file, 'utf8') } : { text: value }, '--classes').map((c) => c.index);
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
