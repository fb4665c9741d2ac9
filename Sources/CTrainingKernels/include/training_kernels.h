#ifndef MEGATRON_TRAINING_KERNELS_H
#define MEGATRON_TRAINING_KERNELS_H

/// AdamW's update of `count` parameters in place, torch's order of operations with no fused multiply-adds, so that
/// every width gives the same bits as the scalar formula:
///   gradient = g · gradientScale (when gradientScale < 1); g = 0 (when zeroing)
///   m = β₁·m + (1 − β₁)·gradient;  v = β₂·v + ((1 − β₂)·gradient)·gradient
///   p = p·decay − (stepSize·m) / (√v / correction2 + ε)
/// AVX-512 or AVX2 where the CPU has them (checked once, at the first call), plain C otherwise. Memory-bound: at the
/// 345M model each step streams 28 bytes per parameter.
void mb_adamw_update(float *p, float *g, float *m, float *v, long count, float gradientScale, int zeroing, float decay,
                     float beta1, float beta2, float stepSize, float correction2, float epsilon);

#endif
