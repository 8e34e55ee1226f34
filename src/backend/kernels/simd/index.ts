/**
 * nngeometry's float32 WebAssembly SIMD128 kernels for the tfjs wasm backend (wasm/simd_kernels.c):
 * the fused convolution gradients used by the Conv2DBackpropFilter / Conv2DBackpropInput fixes,
 * im2col / col2im, a packed-B GEMM and the symmetric rank-k update XᵀX.
 */
export {
  preloadSimdKernels,
  releaseSimdMemory,
  SIMD_MEMORY_RETAIN_BYTES,
  setSimdKernelsEnabled,
  simdKernels,
  simdKernelsInfo,
  useSimdModuleBytes,
  webAssemblySimdSupported,
  type SimdModule,
} from './module.js';
export { col2imAddSimd, conv2dFilterGradSimd, conv2dInputGradSimd, gemmSimd, im2colSimd, syrkSimd } from './kernels.js';
export { symmetricRankUpdate } from './symmetric_rank_update.js';
export { imagePatchesSimd } from './image_patches.js';
