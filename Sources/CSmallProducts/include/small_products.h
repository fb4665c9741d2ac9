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

#endif
