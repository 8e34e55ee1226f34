/**
 * `nngeometry/engine`: the types of the pass over the data, for code that writes its own
 * statistic on top of the engine (a visitor receiving, per batch, each collected layer's input x
 * and the gradients g of k stacked square-root outputs at its pre-activation, row o·B + i being
 * output o, example i), or its own backward scheme (`PassSpec.backward`: how the outputs'
 * cotangents reach the layers). Most programs need only the main entry; `Progress` is exported
 * there.
 *
 * @example
 * ```ts
 * import type { BatchVisitor, OutputGradients } from 'nngeometry/engine';
 * const visitor: BatchVisitor = {
 *   onOutputs: (g: OutputGradients) => console.log(g.firstOutput, g.count, g.batchSize),
 * };
 * ```
 */
export type {
  Progress,
  PassSpec,
  CotangentSource,
  OutputGradients,
  StackedOutputGradients,
  BatchVisitor,
  PassResult,
  SharedPassParticipant,
} from './backend/pass.js';
export type { BackwardScheme, BackwardBatch, ForwardHooks, SchemeGradients, LayerCall } from './backend/backward-scheme.js';
export { batchedBackwardScheme, type BatchedSchemeOptions } from './backend/batched-scheme.js';
