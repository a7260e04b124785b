export { evaluateCoco, precisionRecallCurve, type CategoryStats, type CocoEvaluation } from './evaluate';
export { loadDetections, loadGroundTruth, readJsonFile, type CocoDetections, type CocoGroundTruth, type Id, type IouType } from './load';
export { defaultParams, STAT_NAMES, STAT_SPECS, type CocoParams, type StatName } from './params';
export * from './rle';
