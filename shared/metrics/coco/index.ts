export { evaluateCoco, precisionRecallCurve, type CategoryStats, type CocoEvaluation } from './evaluate';
export { loadDetections, loadGroundTruth, readJsonFile, type CocoDetections, type CocoGroundTruth, type Id, type IouType } from './load';
export {
  cocoParams,
  CocoParamsError,
  defaultParams,
  describeParams,
  parseCocoParams,
  STAT_NAMES,
  STAT_SPECS,
  statSpecs,
  summaryLines,
  type CocoParams,
  type CocoParamsInput,
  type StatName,
} from './params';
export * from './rle';
