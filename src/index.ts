/**
 * nngeometry: Fisher information, Gauss-Newton and related curvature matrices of TensorFlow.js
 * models, in many representations behind one interface.
 */
export * from './errors.js';
export { LayerCollection, type LayerEntry, type FromModelOptions } from './layers/layer-collection.js';
export type { LayerKind, ParameterSpec } from './layers/layer-kind.js';
export { PVector } from './object/pvector.js';
export type { PMat, PMatBase, AnyPMat, NormOrder, SolveOptions, Representation, RepresentationResult, FisherSpec } from './object/pspace/pmat.js';
export { PMatDense } from './object/pspace/dense.js';
export { PMatDiag } from './object/pspace/diag.js';
export { PMatBlockDiag } from './object/pspace/block-diag.js';
export { PMatLowRank } from './object/pspace/low-rank.js';
export { PMatImplicit } from './object/pspace/implicit.js';
export { PMatKFAC, type KFACOptions, type KFACSolveOptions, type KroneckerEigen } from './object/pspace/kfac.js';
export { PMatEKFAC, type EKFACOptions, type EKFACBlock, type DiagonalSource } from './object/pspace/ekfac.js';
export type { KfacType, KroneckerRows, KroneckerSupport, SeparateBiasSupport } from './layers/layer-kind.js';
export { PMatQuasiDiag } from './object/pspace/quasi-diag.js';
export { PMatEye } from './object/pspace/eye.js';
export { PMatMixed, PMatEKFACBlockDiag, type MixedMapping } from './object/pspace/mixed.js';
export { capabilitiesOf, isInvertible, hasLogdet, isScalable, isDiagUpdatable, type Capabilities, type Invertible, type HasLogdet, type Scalable, type DiagUpdatable } from './object/pspace/capabilities.js';
export { conjugateGradient, type CGOptions, type CGResult } from './linalg/conjugate-gradient.js';
export { FIM, type FIMOptions } from './metrics/fim.js';
export { terminateWorkers } from './parallel/pool.js';
export { VARIANTS, type Variant, type LossFunction, type LossName } from './metrics/variants.js';
export type { Loader, BatchLike, Inputs } from './data/loader.js';
// The engine's own types (BatchVisitor, PassSpec, ...) are in the advanced entry `nngeometry/engine` (src/engine.ts).
export type { Progress } from './backend/pass.js';
export { setKernelFixesEnabled } from './backend/substrate.js';
export {
  installKernelFixes,
  uninstallKernelFixes,
  kernelFixesInstalled,
  selfTestKernelFixes,
  type KernelFixReport,
  type KernelSelfTestResult,
} from './backend/kernels/index.js';
export { initLinalg, linalgInfo, type LinalgInfo, type InitLinalgOptions, type LinalgImplementation } from './linalg/index.js';
export { symmetricRankUpdate, setSimdKernelsEnabled, setSimdThreads, simdThreads, simdKernelsInfo, preloadSimdKernels, releaseSimdMemory } from './backend/kernels/simd/index.js';
export { save, load, serialize, deserialize, PersistenceError, type Saveable, type SaveTarget, type LoadSource, type LoadOptions } from './persistence/index.js';
export { REGISTRY, saveableNames, mergeableNames, representationNames, type RegistryEntry, type CliDescription, type RepresentationCost, type Persistable } from './object/pspace/registry.js';
export type { RepresentationState, StatePart, StateScalar, RestoreContext } from './object/pspace/state.js';
export { mergePartial, type Mergeable, type PartialResult } from './persistence/merge.js';
// Function space: Jacobians, Gram matrices / empirical NTK, Monte-Carlo Fisher, Hessian.
export { FVector } from './object/fvector.js';
export type { PFMapBase, PFMapRepresentation } from './object/map/pfmap.js';
export { PFMapDense } from './object/map/dense.js';
export { PFMapImplicit } from './object/map/implicit.js';
export { Jacobian, type JacobianOptions } from './metrics/jacobian.js';
export type { FMatBase, FMatRepresentation, GramSpec } from './object/fspace/fmat.js';
export { FMatDense, type FMatEigen } from './object/fspace/dense.js';
export { GramMatrix, type GramMatrixOptions } from './metrics/gram.js';
export { FIMMonteCarlo, type FIMMonteCarloOptions } from './metrics/fim-monte-carlo.js';
export { MONTE_CARLO_VARIANTS, type MonteCarloVariant } from './metrics/monte-carlo-samples.js';
export { Hessian, type HessianOptions, type HessianRepresentation, type HessianResult } from './metrics/hessian.js';
export { PMatHessianImplicit } from './object/pspace/hessian-implicit.js';
export type { HessianLoss } from './metrics/hessian-losses.js';
// Model loading: LayersModels from disk (Node, without tfjs-node) or browser artifacts.
export { loadModel, saveModel, type ModelSource, type BrowserModelFiles, type LoadModelOptions, type SaveModelOptions } from './io/load-model.js';
export { nodeFileSystem, registerFileSystemScheme } from './io/node-file-system.js';
export { factorsFromRows, holdsFactor, holdsInputFactor, type FactorsOrRows, type KroneckerFactors } from './statistics/kronecker-factors.js';
export type { FactorSide } from './statistics/factor-rows.js';
export type { SymmetricBlock } from './object/pspace/symmetric-block.js';
export type { MapTMmapOptions, MapReduction } from './object/map/pmat-algebra.js';
export type { HessianSpec } from './metrics/hessian-vector-product.js';
export type { BatchLoss } from './metrics/hessian-losses.js';
// Training with curvature: natural-gradient optimizer, EWC penalty, Fisher merging.
export { ewcPenalty, type EwcPenaltyOptions } from './training/ewc-penalty.js';
export { FisherSum, onlineFisher, type CurvatureOperator, type FisherTerm, type OnlineFisherOptions } from './training/fisher-sum.js';
export { fisherMerge, type FisherMergeOptions, type MergeMember } from './training/fisher-merge.js';
// Uncertainty and data attribution: Laplace approximation and influence functions.
export { pairwiseInfluence, type PairwiseInfluenceOptions } from './influence/pairwise-influence.js';
export { selfInfluence, type SelfInfluenceOptions } from './influence/self-influence.js';
export type { InfluenceOptions } from './influence/influence-curvature.js';
export type { InfluenceVariant } from './influence/loss-gradients.js';
export type { ImplicitSolveOptions } from './influence/damped-inverse.js';
// Spectral and stochastic estimation on any operator: eigsh, trace, diagonal, spectral density.
export * from './spectral/index.js';
export { NaturalGradientOptimizer, type NaturalGradientOptimizerOptions, type StepInfo } from './training/natural-gradient-optimizer.js';
export { klClipCoefficient } from './training/kl-clip.js';
export type { TrainingVariant } from './training/batch-loss.js';
export { Laplace, type LaplaceFitOptions, type MarginalLikelihoodOptions, type OptimizePriorOptions, type PredictiveOptions, type RegressionPredictive } from './laplace/laplace.js';
export type { LaplaceLikelihood } from './laplace/data-fit.js';
export { serializeOptimizerState, loadOptimizerState, saveOptimizerState } from './training/optimizer-state.js';
export { fit, type FitOptions, type FitCallbacks, type FitHistory, type FitLogs } from './training/fit.js';
