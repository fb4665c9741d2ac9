#ifndef MEGATRON_QUANTIZED_ROWS_H
#define MEGATRON_QUANTIZED_ROWS_H

#include <stdbool.h>
#include <stdint.h>

/// The widest vector code below this CPU runs (checked at run time: the library is built for any x86-64):
/// 2 AVX-512 (F + BW), 1 AVX2, 0 plain C. Every `width` up to it gives the same bytes and the same floats; a
/// `width` above it must not be passed.
int mb_quantized_rows_widest(void);

/// Quantizes one row x[0 ..< k] to u8 levels 0 ... top (255, or less where the CPU's int8 dot products could
/// saturate), asymmetric over the row's range widened to include 0: x ≈ (q − zero) · scale, with
/// scale = (max − min) / top (1 when max = min), zero = round(−min / scale) (halves away from zero) clamped to
/// 0 ... top, q = round_half_even(clamp(x · (1 / scale) + zero, 0, top)). A row with a NaN or an infinity gets all
/// levels 0, scale NaN and zero 0.
void mb_quantize_row(int width, const float *x, int k, float top, uint8_t *q, float *scale, int32_t *zero);

/// Quantizes one weight row w[0 ..< k] to int8 levels −levels ... levels, symmetric (PyTorch's per-channel qint8):
/// scale = max |w| / levels (1 for a row of zeros), q = round_half_even(clamp(w · (1 / scale), −levels, levels)),
/// and `sum` the sum of the row's levels. A row with a NaN or an infinity gets all levels 0, scale NaN and sum 0.
void mb_quantize_weight_row(int width, const float *w, int k, float levels, int8_t *q, float *scale, int32_t *sum);

/// The int8 product's way back to floats, for `rows` rows of int32 sums (`part`, rows `ldp` apart) and `columns`
/// columns: y[r, j] = float(sum[r, j] − zero[r] · colsum[j]) · (scale[r] · wscale[j]) (+ bias[j]) (+ y[r, j] when
/// accumulate), the integer part wrapping as two's complement, then GELU (exact-erf form, as VectorMath.geluErf) of
/// that when `gelu`; y rows `ldy` floats apart. scale and zero are per row (`mb_quantize_row`), wscale and colsum per
/// column (the weights' scales and sums of their int8 levels).
void mb_int8_epilogue(int width, const int32_t *part, int rows, int columns, int ldp, const float *scale,
                      const int32_t *zero, const float *wscale, const int32_t *colsum, const float *bias, bool accumulate,
                      bool gelu, float *y, int ldy);

#endif
