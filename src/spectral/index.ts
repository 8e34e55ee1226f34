/**
 * Spectral and stochastic estimation on any curvature operator: eigsh (top/bottom-k
 * eigenpairs), estimateTrace (Hutchinson, Hutch++, XTrace), estimateDiag (Hutchinson, XDiag),
 * spectralDensity (stochastic Lanczos quadrature).
 */
export { asOperator, gramOperator, type LinearOperator, type ParameterOperator, type FunctionOperator, type JacobianProducts, type VectorOf } from './operator.js';
export type { SpectralProgress, SpectralCommonOptions } from './options.js';
export type { ProbeDistribution } from './random.js';
export { eigsh, type EigshOptions, type EigshResult, type EigshRoute } from './eigsh.js';
export { estimateTrace, type EstimateTraceOptions, type TraceEstimate, type TraceMethod } from './trace.js';
export { estimateDiag, type EstimateDiagOptions, type DiagMethod } from './diag.js';
export { spectralDensity, type SpectralDensity, type SpectralDensityOptions } from './slq.js';
