/** One training step of each method, its optimizer, schedules, losses and guards (README "Config format", its list of methods; docs/architecture.md "One training request"). */
export { makeAdversary, type AdversaryOptions } from './adversary';
export { CollapseDetector, type CollapseOptions } from './collapse';
export { accuracy, crossEntropy, distinctRouters, routerCrossEntropy, routerKl, tradesKl } from './losses';
export {
  type AdversaryFn,
  type AdversaryLoss,
  checkMethodSupported,
  createOptimizers,
  type Optimizers,
  type StepContext,
  type StepResult,
  trainStep,
} from './methods';
export { SgdMomentum, type SgdOptions } from './optimizer';
export { attackAt, epsFactor, learningRate } from './schedule';
