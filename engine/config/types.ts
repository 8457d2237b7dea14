/**
 * The experiment file (`*.advmoe.json`) as the engine sees it after defaults are applied.
 * `engine/config/schema.json` is the JSON Schema of the file users write (all fields but `model.backbone`
 * optional); `resolveConfig` fills the defaults so every consumer gets this complete shape.
 * Keep the two in step: a test checks that every field here is described in the schema.
 */

export type DatasetName = 'mnist' | 'fashion-mnist' | 'cifar10' | 'cifar100' | 'image-folder';
export type BackboneName = 'resnet18' | 'vgg16' | 'wrn28_10' | 'densenet';
/** `full` is the architecture of the paper; `small` and `tiny` shrink width/depth to train on a laptop CPU. */
export type BackbonePreset = 'full' | 'small' | 'tiny';
/** `per-layer`: each MoE layer has its own router (the paper's figure). `shared`: one small image-level router
 * (two convs) whose choice every MoE layer uses. `reference`: the reference code's image-level router, a
 * ResNet-20-like net (16-32-64 channels, 3 blocks per stage, option-A shortcuts), top-1 by argmax with the
 * gradient passed straight through to its scores. */
export type RouterTopology = 'per-layer' | 'shared' | 'reference';
/** `blocks`: an MoE conv keeps its N·c channels, inactive experts' channels zeroed; BN and the next layer see all
 * N·c. `gathered`: the reference code's MoEConv — the chosen expert's c channels are gathered, so BN and the next
 * conv see c channels shared by every expert. */
export type MoeLayout = 'blocks' | 'gathered';
/** `same`: TensorFlow's — a 3×3 stride-2 conv on an even size pads only bottom/right. `symmetric`: PyTorch's —
 * (k − 1)/2 on every side. */
export type ConvPadding = 'same' | 'symmetric';
export type MethodName = 'standard' | 'pgd-at' | 'trades' | 'advmoe' | 'official';
export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type Norm = 'linf' | 'l2';
export type AttackName = 'fgsm' | 'pgd' | 'apgd-ce' | 'router' | 'expert';

export interface DataConfig {
  dataset: DatasetName;
  /** Folder holding the dataset files; not needed for the embedded MNIST. Relative paths are resolved
   * against the experiment file's folder. */
  root?: string;
  /** Use only the first N training / test samples (after a seeded shuffle); 0 = all. */
  trainSamples: number;
  testSamples: number;
  /** Random crop (4 px padding) + horizontal flip; defaults on for CIFAR-like data, off for digits. */
  augment: boolean;
  /** Image size for image-folder datasets (images are resized to size × size). */
  imageSize?: number;
}

export interface MoeConfig {
  /** false = the dense CNN (baseline). */
  enabled: boolean;
  /** N: experts per MoE layer. */
  experts: number;
  /** k: experts kept per input. */
  topK: number;
  /** Width of one expert as a fraction of the layer's output channels (official code: 0.5 with N = 2). */
  expertWidth: number;
  router: RouterTopology;
  /** How an MoE conv hands on its experts' channels. resolveConfig always sets it; absent (models built in code,
   * run folders written before this option existed) reads as `blocks`. */
  layout?: MoeLayout;
  /** Batch-normalise each router's pooled input features before its linear layer (README "Routing that does not
   * collapse": without it the routers of our backbones start collapsed). Run folders written before this option
   * existed read as false. */
  routerNorm: boolean;
  /** Which convolutions become MoE: `all-blocks` = every conv inside residual/conv blocks (official
   * ResNet-18: 16 convs), or explicit indices into the model's list of candidate convs. */
  layers: 'all-blocks' | number[];
}

export interface ModelConfig {
  backbone: BackboneName;
  preset: BackbonePreset;
  /** Multiplies every layer's width (after the preset); 1 = preset width. */
  widthMultiplier: number;
  /** Convolution padding. resolveConfig always sets it; absent (models built in code, older run folders) reads
   * as `same`. */
  padding?: ConvPadding;
  /** `dataset`: the model normalises its [0,1] input by the dataset's per-channel mean/std; `none`: it takes
   * raw [0,1] pixels (models trained with the reference code). Absent reads as `dataset`. */
  inputNormalization?: 'dataset' | 'none';
  moe: MoeConfig;
}

export interface AttackConfig {
  norm: Norm;
  /** ε, in pixel units of [0,1]. */
  eps: number;
  /** Step size α. */
  stepSize: number;
  steps: number;
  randomStart: boolean;
  restarts: number;
}

export interface AdvMoeConfig {
  /** Router steps and expert steps alternate every `period` batches (1 = both every batch). */
  period: number;
  order: 'router-first' | 'expert-first';
  /** Router learning rate as a multiple of the schedule's lr. */
  routerLrScale: number;
  /** Attack objective and losses of both steps (README "Methods"): `trades` — KL attack, each step minimises
   * CE(f(x), y) + β·KL(f(x) ‖ f(x′)) (as the reference code); `ce` — CE attack, each step minimises
   * CE(f(x′), y) (PGD-AT form). */
  loss: 'trades' | 'ce';
}

/**
 * Remedies against router collapse (README "Routing that does not collapse"). Each is a term of every loss that
 * updates routers (the router noise acts in those passes' forward), and each is off at 0.
 */
export interface RoutingRemedies {
  /** Weight of CE(router logits, y mod N): the reference code's class-partitioned router target. `official`
   * has it built in (weight 1) and ignores this field. */
  classTarget: number;
  /** λ of the Switch Transformer load-balancing loss N·Σₑ fₑ·Pₑ (1 when balanced, up to N when collapsed). */
  balance: number;
  /** λ of log N − H(p̄), p̄ the batch-average router distribution (0 when p̄ is uniform). */
  entropy: number;
  /** Standard deviation of Gaussian noise added to the router logits before top-k in training's update passes
   * (noisy top-k gating, Shazeer et al. 2017, with a fixed noise scale); attacks and evaluation see none. */
  noise: number;
  /** Rate γ of auxiliary-loss-free balancing (Wang et al. 2024, used by DeepSeek-V3): every router carries a
   * per-expert selection bias, added to its scores for the top-k choice only, and each update pass nudges it
   * toward equal load (bias += γ·N·(k/N − load)). No loss term: the gradients are those of the task. */
  balanceBias: number;
  /** Whose routing the selection bias balances: the update passes' (the inputs trained on; adversarial ones in
   * adversarial training) or the clean batch's (one extra forward per step), routed with the batch's BN statistics
   * ('clean') or with the running ones inference uses ('clean-inference'). */
  balanceBiasOn: 'update-passes' | 'clean' | 'clean-inference';
  /** Epochs at the start of training during which each MoE layer's experts share one set of weights (their
   * updates are summed into it), so that no expert is starved while the others learn; after them the experts
   * train apart from that shared start (sparse upcycling). 0 = off. README "Routing that does not collapse". */
  tieExpertsEpochs: number;
  /** Epochs after which the routers stop learning (StableMoE's second stage, Dai et al. 2022): from then on no
   * update changes a router or its selection bias, so inputs keep their experts while those finish training, and
   * AdvMoE and official skip their router steps. 0 = never. README "Routing that does not collapse". */
  freezeRoutersAfterEpochs: number;
  /** Which passes differentiate through the hard routing with the straight-through estimator: 'every-pass' (as
   * before), or 'router-updates', only those whose update trains routers; the training attacks and AdvMoE's expert
   * steps then treat the routing as a constant (docs/architecture.md "Routing gradients"). */
  straightThrough: 'every-pass' | 'router-updates';
}

export interface MethodConfig {
  kind: MethodName;
  /** TRADES β (also used by `official`). */
  tradesBeta: number;
  advmoe: AdvMoeConfig;
  /** `official`: weight α of the router's KL term, CE(r(x), y mod N) + α·KL(r(x) ‖ r(x′)). */
  officialRouterAlpha: number;
  /** Attack used to make training adversarial examples. */
  attack: AttackConfig;
  /** Collapse remedies (the file's `method.routerBalance` is read as `routing.balance`). */
  routing: RoutingRemedies;
  /** Ramp ε linearly from 0 over this many epochs (helps large-ε MNIST training start). 0 = off. */
  epsWarmupEpochs: number;
}

export interface ScheduleConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  lrSchedule: 'cosine' | 'step' | 'constant';
  /** For `step`: epochs at which lr is multiplied by `gamma`. */
  milestones: number[];
  gamma: number;
  /** Linear lr warm-up over this many epochs (fractional allowed). */
  warmupEpochs: number;
}

export interface EvalConfig {
  /** Attack that defines RA (README "Metric definitions": PGD-10, ε 8/255, α 2/255; MNIST ε 0.3). */
  attack: AttackConfig;
  /** Number of test samples used for robustness analysis (0 = all). */
  samples: number;
  /** ε values of the RA-vs-ε curve. */
  epsCurve: number[];
  /** Evaluate SA/RA on `samples` test inputs at the end of every `everyEpochs` epochs (0 = only at the end). */
  everyEpochs: number;
}

export interface ExperimentConfig {
  name: string;
  seed: number;
  backend: BackendName;
  data: DataConfig;
  model: ModelConfig;
  method: MethodConfig;
  schedule: ScheduleConfig;
  eval: EvalConfig;
  /** Write a checkpoint every this many epochs (the last epoch always writes one). */
  checkpointEveryEpochs: number;
  /** Log a metrics record every this many steps. */
  logEverySteps: number;
}
