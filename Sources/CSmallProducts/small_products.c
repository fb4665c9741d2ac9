#include "small_products.h"

#if defined(__x86_64__)
#include <immintrin.h>

bool mb_small_products_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

__attribute__((target("avx2,fma"))) static inline float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static inline void store(float *y, float value, const float *bias, int column,
                                                             bool accumulate) {
    if (bias) value += bias[column];
    *y = accumulate ? *y + value : value;
}

/* How far ahead (bytes) each weight row is prefetched: the hardware prefetcher alone left a single core at ~60% of
   its read bandwidth (one core, 8 rows, (16384, 1024) weights: 9.3–10.4 ms → 7.3–8.1 ms with 8 KB;
   scripts/small_products_bench.c). Past the end it is only a hint. */
#define PREFETCH_F32 8192

/* Rows r0 ..< r0 + R (R <= 4) against weight rows j and j + 1: 2R accumulators of 8 lanes each. */
#define PAIR_KERNEL(R)                                                                                              \
    __attribute__((target("avx2,fma"))) static void pair##R(const float *x, int k, const float *w0, const float *w1, \
                                                            float out[4][2]) {                                      \
        __m256 a[R][2];                                                                                             \
        for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();                                        \
        int i = 0;                                                                                                  \
        for (; i + 8 <= k; i += 8) {                                                                                \
            if ((i & 15) == 0) { /* once per cache line */                                                          \
                _mm_prefetch((const char *)(w0 + i) + PREFETCH_F32, _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w1 + i) + PREFETCH_F32, _MM_HINT_T0);                                   \
            }                                                                                                       \
            __m256 v0 = _mm256_loadu_ps(w0 + i), v1 = _mm256_loadu_ps(w1 + i);                                     \
            for (int r = 0; r < R; r++) {                                                                           \
                __m256 xv = _mm256_loadu_ps(x + (long)r * k + i);                                                   \
                a[r][0] = _mm256_fmadd_ps(xv, v0, a[r][0]);                                                         \
                a[r][1] = _mm256_fmadd_ps(xv, v1, a[r][1]);                                                         \
            }                                                                                                       \
        }                                                                                                           \
        for (int r = 0; r < R; r++) {                                                                               \
            float s0 = sum8(a[r][0]), s1 = sum8(a[r][1]);                                                           \
            for (int t = i; t < k; t++) {                                                                           \
                s0 += x[(long)r * k + t] * w0[t];                                                                   \
                s1 += x[(long)r * k + t] * w1[t];                                                                   \
            }                                                                                                       \
            out[r][0] = s0;                                                                                         \
            out[r][1] = s1;                                                                                         \
        }                                                                                                           \
    }
PAIR_KERNEL(1)
PAIR_KERNEL(2)
PAIR_KERNEL(3)
PAIR_KERNEL(4)

__attribute__((target("avx2,fma"))) void mb_small_product_f32(const float *x, int m, int k, const float *w, int first,
                                                               int count, const float *bias, bool accumulate, float *y,
                                                               int ldy) {
    float out[4][2];
    for (int j = first; j < first + count; j += 2) {
        /* An odd last column pairs with itself (its second result is dropped). */
        const float *w0 = w + (long)j * k, *w1 = j + 1 < first + count ? w0 + k : w0;
        int pairs = j + 1 < first + count ? 2 : 1;
        /* Four rows at a time: the pair of weight rows (8 KB at k = 1024) stays in L1 for the next four. */
        for (int r = 0; r < m; r += 4) {
            int rows = m - r < 4 ? m - r : 4;
            const float *xr = x + (long)r * k;
            switch (rows) {
            case 1: pair1(xr, k, w0, w1, out); break;
            case 2: pair2(xr, k, w0, w1, out); break;
            case 3: pair3(xr, k, w0, w1, out); break;
            default: pair4(xr, k, w0, w1, out); break;
            }
            for (int q = 0; q < rows; q++)
                for (int p = 0; p < pairs; p++) store(y + (long)(r + q) * ldy + j + p, out[q][p], bias, j + p, accumulate);
        }
    }
}

#else

bool mb_small_products_available(void) { return false; }

void mb_small_product_f32(const float *x, int m, int k, const float *w, int first, int count, const float *bias,
                          bool accumulate, float *y, int ldy) {
    (void)x; (void)m; (void)k; (void)w; (void)first; (void)count; (void)bias; (void)accumulate; (void)y; (void)ldy;
}

#endif
