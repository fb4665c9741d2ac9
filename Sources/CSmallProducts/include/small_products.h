#ifndef MEGATRON_SMALL_PRODUCTS_H
#define MEGATRON_SMALL_PRODUCTS_H

#include <stdbool.h>
#include <stdint.h>

/// Whether this CPU runs the AVX2 + FMA kernel below (checked at run time: the library is built for any x86-64).
bool mb_small_products_available(void);

/// y[r, j] = sum_i x[r, i] * w[j, i] (+ bias[j]) (+ y[r, j] when accumulate), for rows r < m and columns j in
/// [first, first + count): x (m, k) row-major, w (n, k) row-major (each weight row read once, front to back, so the
/// pass runs at the memory's bandwidth), y rows `ldy` floats apart. For few rows (m up to ~16) where BLAS would
/// repack the weights on every call. Requires mb_small_products_available().
void mb_small_product_f32(const float *x, int m, int k, const float *w, int first, int count, const float *bias,
                          bool accumulate, float *y, int ldy);

/// y[r, j − first] = sum_i x[r, i] · w[j, i] in int32, for rows r < m and columns j in [first, first + count): x (m, k)
/// u8 row-major, w (n, k) s8 row-major (each weight row read once, front to back), y rows `ldy` int32s apart (y
/// holds only the columns asked for). Each pair of products is summed in 16 bits first (vpmaddubsw), so the result is
/// exact only while x[r, i] · w[j, i] + x[r, i + 1] · w[j, i + 1] stays within ±32,767 for every even i (inputs up
/// to 191 and weights within ±85 do). Requires mb_small_products_available().
void mb_small_product_u8s8(const uint8_t *x, int m, int k, const int8_t *w, int first, int count, int32_t *y, int ldy);

#endif
