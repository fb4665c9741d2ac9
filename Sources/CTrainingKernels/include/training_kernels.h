#ifndef MEGATRON_TRAINING_KERNELS_H
#define MEGATRON_TRAINING_KERNELS_H

#include <stdint.h>

/// AdamW's update of `count` parameters in place, torch's order of operations with no fused multiply-adds, so that
/// every width gives the same bits as the scalar formula:
///   gradient = g · gradientScale (when gradientScale < 1); g = 0 (when zeroing)
///   m = β₁·m + (1 − β₁)·gradient;  v = β₂·v + ((1 − β₂)·gradient)·gradient
///   p = p·decay − (stepSize·m) / (√v / correction2 + ε)
/// AVX-512 or AVX2 where the CPU has them (checked once, at the first call), plain C otherwise. Memory-bound: at the
/// 345M model each step streams 28 bytes per parameter.
void mb_adamw_update(float *p, float *g, float *m, float *v, long count, float gradientScale, int zeroing, float decay,
                     float beta1, float beta2, float stepSize, float correction2, float epsilon);

/// Exact GELU and its derivative in one pass, as the Swift kernels compute them (VectorMath's erf and exp, no fused
/// multiply-adds: the same bits): Φ(x) = 0.5·(1 + erf(x·(1/√2))), y = x·Φ(x), y′ = Φ(x) + x·(e^{−0.5·x·x}·(1/√(2π))).
/// AVX-512 or AVX2 where the CPU has them, plain C otherwise.
void mb_gelu_with_derivative(const float *x, long count, float *y, float *derivative);

/// e^x in place for `count` floats, as VectorMath.exp computes it (the same bits): the softmax's numerators.
void mb_exp_in_place(float *x, long count);

/// A dropout mask of `count` bytes from SplitMix64 (SeededRandom): kept[i] is 1 when the generator's i-th draw after
/// `state` (state + (i + 1)·0x9E3779B97F4A7C15, mixed), shifted right by 11, is under `threshold`, else 0 — the draws
/// of `SeededRandom.next()` one after another, several at a time.
void mb_dropout_mask(uint8_t *kept, long count, uint64_t state, uint64_t threshold);

/// x[i] = x[i] · (kept[i] ? scale : 0) for `count` floats: dropout forward, and its backward on the gradient.
void mb_dropout_apply(float *x, const uint8_t *kept, long count, float scale);

#endif
