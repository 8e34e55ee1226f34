// Optional wall-clock timers around the phases of the eigensolver, for profiling builds only
// (compiled with -DNN_PHASE_TIMERS, which gives the module one import, env.nn_now, returning
// milliseconds). Without the macro NN_TIME expands to nothing and the module imports only
// env.nn_gemm_parallel (gemm_parallel.hpp).
#pragma once

namespace nn {

// Slots of nn_phase_totals (milliseconds accumulated since the last nn_phase_reset).
enum PhaseSlot {
  kTimeSymv = 0,        // tridiagonalisation: symmetric matrix-vector products
  kTimePanel = 1,       // tridiagonalisation: the panel's column updates and corrections
  kTimeRank2k = 2,      // tridiagonalisation: trailing rank-2k updates
  kTimeSecular = 3,     // divide and conquer: secular equations, zhat, vectors of D + rho z z^T
  kTimeMergeGemm = 4,   // divide and conquer: the product of each merge
  kTimeMergeOther = 5,  // divide and conquer: sorting, deflation, copies
  kTimeLeaf = 6,        // divide and conquer: QR iterations on the leaves
  kTimeBackT = 7,       // back-transformation: Y and T of each block of reflectors
  kTimeBackGemm = 8,    // back-transformation: the two products per block
  kTimeBackTW = 9,      // back-transformation: T W
  kPhaseSlots = 16,
};

}  // namespace nn

#ifdef NN_PHASE_TIMERS
extern "C" __attribute__((import_module("env"), import_name("nn_now"))) double nn_now();
namespace nn {
inline double phaseTotals[kPhaseSlots];
struct PhaseTimer {
  int slot;
  double start;
  explicit PhaseTimer(int s) : slot(s), start(nn_now()) {}
  ~PhaseTimer() { phaseTotals[slot] += nn_now() - start; }
};
}  // namespace nn
#define NN_TIME_CAT2(a, b) a##b
#define NN_TIME_CAT(a, b) NN_TIME_CAT2(a, b)
#define NN_TIME(slot) nn::PhaseTimer NN_TIME_CAT(nnPhaseTimer, __LINE__)(slot)
#else
#define NN_TIME(slot) ((void)0)
#endif
