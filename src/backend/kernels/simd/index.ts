/**
 * nngeometry's float32 WebAssembly SIMD128 kernels for the tfjs wasm backend (wasm/simd_kernels.c):
 * the fused convolution gradients used by the Conv2DBackpropFilter / Conv2DBackpropInput fixes,
 * im2col / col2im, a packed-B GEMM and the symmetric rank-k update XᵀX; on Node's main thread they
 * split large calls between helper threads (setSimdThreads).
 */
export {
  preloadSimdKernels,
  releaseSimdMemory,
  SIMD_MEMORY_RETAIN_BYTES,
  setSimdKernelsEnabled,
  setSimdThreads,
  SIMD_MAX_THREADS,
  SIMD_THREAD_MIN_FLOPS,
  simdThreads,
  simdKernels,
  simdKernelsInfo,
  useSimdModuleBytes,
  webAssemblySimdSupported,
  type SimdModule,
} from './module.js';
export { col2imAddSimd, conv2dFilterGradSimd, conv2dInputGradSimd, gemmSimd, im2colSimd, syrkSimd } from './kernels.js';
export { symmetricRankUpdate } from './symmetric_rank_update.js';
export { imagePatchesSimd } from './image_patches.js';
