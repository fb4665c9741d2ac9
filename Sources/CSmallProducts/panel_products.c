#include "panel_products.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

bool mb_panel_products_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

bool mb_panel_products_int8_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}

/* How far ahead (bytes) each panel is prefetched, into L2: a few-row product does 4–32 FMAs per weight read, too
   much work for the out-of-order window to hide the memory's latency behind; with the weights already in L2 the two
   overlap. Measured on the 345M model's 1×8 products (two threads, 8 rows, scratch harness): no prefetch 92 ms, 4 KB
   into L1 54 ms, 16–64 KB into L2 49–50 ms, pure reads of the same matrices 42–44 ms. Past the end of a panel it
   reads the next one, which comes next; past the block's end it is only a hint. */
#define PANEL_PREFETCH 16384
/* Steps of K per block: every group of rows runs a block before the next block, so groups after the first read the
   block (16 × 64 floats, 4 KB) from L1. */
#define K_BLOCK 16

/* Rows r ..< r + R (R <= 4) against K steps [from, to) of one panel: 4R accumulators of 16 columns each, loaded
   from and stored back to acc (rows 64 floats apart). x's rows are ldx floats apart. */
#define GROUP(R)                                                                                                     \
    __attribute__((target("avx512f"))) static void group##R(const float *x, long ldx, const float *panel, int from,   \
                                                            int to, float *acc, bool prefetch) {                     \
        __m512 a[R][4];                                                                                              \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) a[r][c] = _mm512_load_ps(acc + r * 64 + c * 16);                             \
        for (int i = from; i < to; i++) {                                                                            \
            const float *w = panel + (long)i * 64;                                                                   \
            if (prefetch) {                                                                                          \
                const char *ahead = (const char *)w + PANEL_PREFETCH;                                                \
                _mm_prefetch(ahead, _MM_HINT_T1);                                                                    \
                _mm_prefetch(ahead + 64, _MM_HINT_T1);                                                               \
                _mm_prefetch(ahead + 128, _MM_HINT_T1);                                                              \
                _mm_prefetch(ahead + 192, _MM_HINT_T1);                                                              \
            }                                                                                                        \
            __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16), w2 = _mm512_load_ps(w + 32),                \
                   w3 = _mm512_load_ps(w + 48);                                                                      \
            for (int r = 0; r < R; r++) {                                                                            \
                __m512 b = _mm512_set1_ps(x[r * ldx + i]);                                                           \
                a[r][0] = _mm512_fmadd_ps(b, w0, a[r][0]);                                                           \
                a[r][1] = _mm512_fmadd_ps(b, w1, a[r][1]);                                                           \
                a[r][2] = _mm512_fmadd_ps(b, w2, a[r][2]);                                                           \
                a[r][3] = _mm512_fmadd_ps(b, w3, a[r][3]);                                                           \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) _mm512_store_ps(acc + r * 64 + c * 16, a[r][c]);                             \
    }
GROUP(1)
GROUP(2)
GROUP(3)
GROUP(4)

__attribute__((target("avx512f"))) void mb_panel_product_f32(const float *x, int m, int k, const float *panels,
                                                              long panel_stride, int columns, const float *bias,
                                                              bool accumulate, float *y, long ldy) {
    _Alignas(64) float acc[MB_PANEL_ROWS * 64];
    if (m <= 0) return;
    for (int p = 0; p * 64 < columns; p++) {
        const float *panel = panels + p * panel_stride;
        memset(acc, 0, sizeof(float) * 64 * m);
        for (int from = 0; from < k; from += K_BLOCK) {
            int to = from + K_BLOCK < k ? from + K_BLOCK : k;
            for (int r = 0; r < m; r += 4) {
                const float *xr = x + (long)r * k;
                float *ar = acc + r * 64;
                switch (m - r < 4 ? m - r : 4) {
                case 1: group1(xr, k, panel, from, to, ar, r == 0); break;
                case 2: group2(xr, k, panel, from, to, ar, r == 0); break;
                case 3: group3(xr, k, panel, from, to, ar, r == 0); break;
                default: group4(xr, k, panel, from, to, ar, r == 0); break;
                }
            }
        }
        /* y = acc (+ bias) (+ y), only the block's columns (the last panel may hold padding). */
        for (int c = 0; c < 64 && p * 64 + c < columns; c += 16) {
            int valid = columns - (p * 64 + c) < 16 ? columns - (p * 64 + c) : 16;
            __mmask16 mask = (__mmask16)((1u << valid) - 1);
            __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + p * 64 + c) : _mm512_setzero_ps();
            for (int r = 0; r < m; r++) {
                float *target = y + r * ldy + p * 64 + c;
                __m512 v = _mm512_add_ps(_mm512_load_ps(acc + r * 64 + c), b);
                if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, target));
                _mm512_mask_storeu_ps(target, mask, v);
            }
        }
    }
}

/* int8: rows r ..< r + R (R <= 4) of u8 inputs against quads [from, to) of one s8 panel (quad q: K steps 4q ..< 4q + 4,
   256 bytes, column c's four weights at c * 4). vpdpbusd adds each lane's four u8 × s8 products into its int32
   accumulator: exact (a whole K row's sum stays within 2^31 for K < 65,000). `quads` holds each row's inputs four
   bytes to an int32 (read unaligned). */
#define GROUP_S8(R)                                                                                                  \
    __attribute__((target("avx512f,avx512vnni"))) static void group##R##_s8(const int32_t *quads, long ldq,          \
                                                                            const int8_t *panel, int from, int to,   \
                                                                            int32_t *acc, bool prefetch) {           \
        __m512i a[R][4];                                                                                             \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) a[r][c] = _mm512_load_si512(acc + r * 64 + c * 16);                         \
        for (int q = from; q < to; q++) {                                                                            \
            const int8_t *w = panel + (long)q * 256;                                                                 \
            if (prefetch) {                                                                                          \
                const char *ahead = (const char *)w + PANEL_PREFETCH;                                                \
                _mm_prefetch(ahead, _MM_HINT_T1);                                                                    \
                _mm_prefetch(ahead + 64, _MM_HINT_T1);                                                               \
                _mm_prefetch(ahead + 128, _MM_HINT_T1);                                                              \
                _mm_prefetch(ahead + 192, _MM_HINT_T1);                                                              \
            }                                                                                                        \
            __m512i w0 = _mm512_load_si512(w), w1 = _mm512_load_si512(w + 64), w2 = _mm512_load_si512(w + 128),      \
                    w3 = _mm512_load_si512(w + 192);                                                                 \
            for (int r = 0; r < R; r++) {                                                                            \
                int32_t four;                                                                                        \
                memcpy(&four, quads + r * ldq + q, 4);                                                               \
                __m512i b = _mm512_set1_epi32(four);                                                                 \
                a[r][0] = _mm512_dpbusd_epi32(a[r][0], b, w0);                                                       \
                a[r][1] = _mm512_dpbusd_epi32(a[r][1], b, w1);                                                       \
                a[r][2] = _mm512_dpbusd_epi32(a[r][2], b, w2);                                                       \
                a[r][3] = _mm512_dpbusd_epi32(a[r][3], b, w3);                                                       \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) _mm512_store_si512(acc + r * 64 + c * 16, a[r][c]);                          \
    }
GROUP_S8(1)
GROUP_S8(2)
GROUP_S8(3)
GROUP_S8(4)

__attribute__((target("avx512f,avx512vnni"))) void mb_panel_product_u8s8(const uint8_t *x, int m, int k,
                                                                          const int8_t *panels, long panel_stride,
                                                                          int columns, int32_t *y, long ldy) {
    _Alignas(64) int32_t acc[MB_PANEL_ROWS * 64];
    const int32_t *quads = (const int32_t *)x; /* k % 4 == 0: each row is whole quads, k / 4 apart */
    int ldq = k / 4;
    if (m <= 0) return;
    for (int p = 0; p * 64 < columns; p++) {
        const int8_t *panel = panels + p * panel_stride;
        memset(acc, 0, sizeof(int32_t) * 64 * m);
        for (int from = 0; from < ldq; from += K_BLOCK) {
            int to = from + K_BLOCK < ldq ? from + K_BLOCK : ldq;
            for (int r = 0; r < m; r += 4) {
                const int32_t *qr = quads + (long)r * ldq;
                int32_t *ar = acc + r * 64;
                switch (m - r < 4 ? m - r : 4) {
                case 1: group1_s8(qr, ldq, panel, from, to, ar, r == 0); break;
                case 2: group2_s8(qr, ldq, panel, from, to, ar, r == 0); break;
                case 3: group3_s8(qr, ldq, panel, from, to, ar, r == 0); break;
                default: group4_s8(qr, ldq, panel, from, to, ar, r == 0); break;
                }
            }
        }
        for (int c = 0; c < 64 && p * 64 + c < columns; c += 16) {
            int valid = columns - (p * 64 + c) < 16 ? columns - (p * 64 + c) : 16;
            __mmask16 mask = (__mmask16)((1u << valid) - 1);
            for (int r = 0; r < m; r++)
                _mm512_mask_storeu_epi32(y + r * ldy + p * 64 + c, mask, _mm512_load_si512(acc + r * 64 + c));
        }
    }
}

#else

bool mb_panel_products_available(void) { return false; }

bool mb_panel_products_int8_available(void) { return false; }

void mb_panel_product_f32(const float *x, int m, int k, const float *panels, long panel_stride, int columns,
                          const float *bias, bool accumulate, float *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)bias; (void)accumulate;
    (void)y; (void)ldy;
}

void mb_panel_product_u8s8(const uint8_t *x, int m, int k, const int8_t *panels, long panel_stride, int columns,
                           int32_t *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)y; (void)ldy;
}

#endif
