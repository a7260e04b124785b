import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeStepError, InputError, isStepError } from '../core/errors';
import {
  CocoParamsError,
  cocoResultJson,
  EMPTY_RULES,
  evaluateCocoFiles,
  evaluateMaskFolders,
  maskResultJson,
  parseCocoParams,
  type CocoParams,
} from '../metrics';
import { parseClassList } from '../metrics/masks/classes';
import type { CliCommand, CliIo } from './commands';
import { commandHelp, runCommand, type CommandSpec, type OptionValues } from './options';

const JSON_OPTION = { json: { type: 'boolean', description: 'print the result as JSON' } } as const;

/** The two required options of both evaluations: what is compared with what. */
function sources(value: 'file' | 'DIR', truth: string, predictions: string): CommandSpec['options'] {
  return {
    'ground-truth': { type: 'string', value: value === 'DIR' ? 'DIR' : 'gt.json', required: true, description: truth },
    predictions: { type: 'string', value: value === 'DIR' ? 'DIR' : 'dt.json', required: true, description: predictions },
  };
}

const COCO: CommandSpec = {
  command: 'mlship eval coco',
  summary: 'COCO evaluation with pycocotools COCOeval semantics; without --json the 12 lines summarize() prints.',
  options: {
    ...sources('file', 'COCO instances JSON', 'COCO results list'),
    'iou-type': { type: 'string', value: 'bbox|segm', description: 'boxes or instance masks (default bbox)' },
    'max-dets': {
      type: 'string',
      value: '1,10,100',
      description:
        'COCOeval params.maxDets: at least three limits; AR1/AR10/AR100 read the first three (sorted), AP reads 100 as pycocotools does',
    },
    'iou-thrs': {
      type: 'string',
      value: '0.5:0.95:0.05',
      description: 'params.iouThrs: start:stop:step (np.linspace, as the default is built) or a list 0.5,0.75',
    },
    'area-rng': {
      type: 'string',
      value: 'all=0:1e10,...',
      description: 'params.areaRng with its labels (square pixels); default all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10',
    },
    'use-cats': { type: 'string', value: 'true|false', description: 'params.useCats (default true); false pools every category' },
    'no-use-cats': { type: 'boolean', description: 'the same as --use-cats false' },
    ...JSON_OPTION,
  },
};

const MASKS: CommandSpec = {
  command: 'mlship eval masks',
  summary: 'Dice and IoU of label masks, per class, micro and macro.',
  options: {
    ...sources('DIR', 'folder of label masks', 'folder of predicted masks named like the ground truth'),
    classes: {
      type: 'string',
      value: '1,2,5|labels.txt',
      description:
        'labels to score, also those absent from every image (a list, or a labels file: one "index name" or name per line, line number = index)',
    },
    binary: { type: 'boolean', description: 'any non-zero pixel is foreground' },
    'include-background': { type: 'boolean', description: 'also score label 0' },
    'empty-rule': {
      type: 'string',
      value: EMPTY_RULES.join('|'),
      description: "score of a class absent from an image's ground truth (default skip)",
    },
    ...JSON_OPTION,
  },
};

const USAGE = `${commandHelp(COCO)}\n\n${commandHelp(MASKS)}`;

/** Runs `body`, turning a StepError into its message on stderr: 2 for bad input, 1 for a failed evaluation. */
async function guarded(io: CliIo, body: () => Promise<void>): Promise<number> {
  try {
    await body();
    return 0;
  } catch (error) {
    if (!isStepError(error)) throw error;
    io.stderr(`error: ${describeStepError(error)}\n`);
    return error instanceof InputError ? 2 : 1;
  }
}

const OPTION_OF = { maxDets: 'max-dets', iouThrs: 'iou-thrs', areaRng: 'area-rng' } as const;

/** COCOeval parameters from the options; an impossible set is a usage error naming the option and its value. */
function cocoParamsFrom(o: OptionValues): CocoParams {
  const useCatsText = o['use-cats'];
  let useCats = !o['no-use-cats'];
  if (typeof useCatsText === 'string') {
    if (!['true', 'false', '1', '0'].includes(useCatsText))
      throw new InputError(`Option "--use-cats" has value "${useCatsText}"; allowed: true, false.`);
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

async function coco(o: OptionValues, io: CliIo): Promise<void> {
  const iouType = String(o['iou-type'] ?? 'bbox');
  if (iouType !== 'bbox' && iouType !== 'segm') throw new InputError(`Option "--iou-type" has value "${iouType}"; allowed: bbox, segm.`);
  const params = cocoParamsFrom(o);
  const result = evaluateCocoFiles({
    groundTruth: path.resolve(String(o['ground-truth'])),
    predictions: path.resolve(String(o.predictions)),
    iouType,
    params,
  });
  if (o.json) io.stdout(JSON.stringify(cocoResultJson(result), null, 2) + '\n');
  // The same 12 lines pycocotools' summarize() prints, so results compare at a glance.
  else io.stdout(result.summary.join('\n') + '\n');
}

async function masks(o: OptionValues, io: CliIo): Promise<void> {
  const emptyRule = String(o['empty-rule'] ?? 'skip') as (typeof EMPTY_RULES)[number];
  if (!EMPTY_RULES.includes(emptyRule))
    throw new InputError(`Option "--empty-rule" has value "${emptyRule}"; allowed: ${EMPTY_RULES.join(', ')}.`);
  const classes = typeof o.classes === 'string' ? classList(o.classes) : undefined;
  const result = await evaluateMaskFolders({
    groundTruth: path.resolve(String(o['ground-truth'])),
    predictions: path.resolve(String(o.predictions)),
    binary: Boolean(o.binary),
    includeBackground: Boolean(o['include-background']),
    emptyRule,
    classes,
  });
  const json = maskResultJson(result) as Record<string, unknown>;
  if (o.json) io.stdout(JSON.stringify(json, null, 2) + '\n');
  else io.stdout(`dice ${String(json.dice)}\niou  ${String(json.iou)}\n`);
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
    const [kind, ...rest] = argv;
    if (kind === 'coco') return runCommand(COCO, rest, io, (o) => guarded(io, () => coco(o, io)));
    if (kind === 'masks') return runCommand(MASKS, rest, io, (o) => guarded(io, () => masks(o, io)));
    if (kind === '--help' || kind === '-h') {
      io.stdout(USAGE + '\n');
      return 0;
    }
    io.stderr(`error: ${kind ? `Unknown evaluation "${kind}".` : 'Say what to evaluate.'}\n\n${USAGE}\n`);
    return 2;
  },
};
