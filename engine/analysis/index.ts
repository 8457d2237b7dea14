/** Robustness analysis (RobustnessReport), quick SA/RA, single-attack accuracy, sample inspection. */
export * from './types';
export { type EvalData, type Images, type Labels } from './data';
export { analyzeRobustness, apgdSettings, atEps, fgsmSettings, inferenceCost, type AnalysisOptions, type AnalysisParts, type BatchDetail } from './robustness';
export { evaluateAttack, inspectSamples, quickEval, type InspectOptions, type QuickEvalResult, type QuickOptions } from './quick';
