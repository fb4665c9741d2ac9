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

bool mb_panel_products_bf16_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

/* How far ahead (bytes) each panel is prefetched, into L2: a few-row product does 4–32 FMAs per weight read, too
   much work for the out-of-order window to hide the memory's latency behind; with the weights already in L2 the two
   overlap. Measured on the 345M model's 1×8 FP32 products (two threads, 8 rows, scratch harness): no prefetch 92 ms,
   4 KB into L1 54 ms, 16–64 KB into L2 49–50 ms, pure reads of the same matrices 42–44 ms. Past the end of a panel
   it reads the next one, which comes next; past the block's end it is only a hint. */
#define PANEL_PREFETCH 16384
/* Steps per block: every group of rows runs a block before the next block, so groups after the first read the
   block (16 steps of 256 bytes, 4 KB) from L1. */
#define STEP_BLOCK 16
/* The step PANEL_PREFETCH bytes ahead of w, its four cache lines, into L2. */
#define PREFETCH_STEP(w)                                                                                             \
    do {                                                                                                             \
        for (int line = 0; line < 256; line += 64) _mm_prefetch((w) + PANEL_PREFETCH + line, _MM_HINT_T1);          \
    } while (0)

/* The three kinds share one shape: a panel is a run of 256-byte steps (FP32: one K step; BF16: a pair of K steps,
   each column's two values side by side; int8: a quad), each column's share of a step 4 bytes, so a step is four
   vectors of 16 columns; each input row gives one 4-byte element per step, broadcast to all 16 lanes:
     FP32  acc += x · w                   (vfmadd231ps)
     BF16  acc += x0 · w0 + x1 · w1       (vdpbf16ps: FP32 accumulation of BF16 pairs, as oneDNN's BF16 kernel)
     int8  acc += Σ of four u8 × s8       (vpdpbusd: exact int32 sums)                                          */
#define F32_VEC __m512
#define F32_LOAD(p) _mm512_load_ps((const float *)(p))
#define F32_STORE(p, v) _mm512_store_ps((float *)(p), v)
#define F32_SPLAT(bits) _mm512_castsi512_ps(_mm512_set1_epi32(bits))
#define F32_STEP(acc, x, w) _mm512_fmadd_ps(x, w, acc)
#define F32_TARGET "avx512f"
#define F32_XSTEP 1

#define BF16_VEC __m512
#define BF16_LOAD F32_LOAD
#define BF16_STORE F32_STORE
#define BF16_SPLAT F32_SPLAT
#define BF16_STEP(acc, x, w) _mm512_dpbf16_ps(acc, (__m512bh)(x), (__m512bh)(w))
#define BF16_TARGET "avx512f,avx512bf16"
#define BF16_XSTEP 1

#define S8_VEC __m512i
#define S8_LOAD(p) _mm512_load_si512((const void *)(p))
#define S8_STORE(p, v) _mm512_store_si512((void *)(p), v)
#define S8_SPLAT(bits) _mm512_set1_epi32(bits)
#define S8_STEP(acc, x, w) _mm512_dpbusd_epi32(acc, x, _mm512_castps_si512(w))
#define S8_TARGET "avx512f,avx512vnni"
#define S8_XSTEP 1
/* BF16 weights widened to FP32 in registers (each lane's pair: the even K row shifted up 16 bits, the odd one with
   its low half cleared), multiplied by FP32 inputs with FMAs: FP32 products of the BF16 weights, where the CPU's
   BF16 dot products are slow (Intel's AVX512_BF16 without AMX: vdpbf16ps ran at ~1 per 3 cycles here; 8 rows of the
   345M model's BF16 weights 39.5 ms with it against 30.9 ms widened, two threads, scratch harness). A step is a pair
   of K rows: two FP32 inputs per row. GROUP_WIDE below is GROUP with that step. */
#define WIDE_TARGET "avx512f"
#define WIDE_XSTEP 2

/* Rows r ..< r + R (R <= 4) against steps [from, to) of one panel: 4R accumulators of 16 columns each, loaded from
   and stored back to acc (4-byte elements, rows 64 apart). x's rows are ldx 4-byte elements apart (read unaligned).
   Only the first group of a block prefetches. */
#define GROUP(KIND, R)                                                                                               \
    __attribute__((target(KIND##_TARGET))) static void group_##KIND##_##R(const char *x, long ldx, const char *panel, \
                                                                           int from, int to, void *acc,              \
                                                                           bool prefetch) {                          \
        KIND##_VEC a[R][4];                                                                                          \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) a[r][c] = KIND##_LOAD((char *)acc + (r * 64 + c * 16) * 4);                  \
        for (int i = from; i < to; i++) {                                                                            \
            const char *w = panel + (long)i * 256;                                                                   \
            if (prefetch) PREFETCH_STEP(w);                                                                          \
            __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 64), w2 = _mm512_load_ps(w + 128),                \
                   w3 = _mm512_load_ps(w + 192);                                                                     \
            for (int r = 0; r < R; r++) {                                                                            \
                int bits;                                                                                            \
                memcpy(&bits, x + (r * ldx + i) * 4, 4);                                                             \
                KIND##_VEC b = KIND##_SPLAT(bits);                                                                   \
                a[r][0] = KIND##_STEP(a[r][0], b, w0);                                                               \
                a[r][1] = KIND##_STEP(a[r][1], b, w1);                                                               \
                a[r][2] = KIND##_STEP(a[r][2], b, w2);                                                               \
                a[r][3] = KIND##_STEP(a[r][3], b, w3);                                                               \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) KIND##_STORE((char *)acc + (r * 64 + c * 16) * 4, a[r][c]);                  \
    }

#define GROUP_WIDE(R)                                                                                                \
    __attribute__((target("avx512f"))) static void group_WIDE_##R(const char *x, long ldx, const char *panel,         \
                                                                   int from, int to, void *acc, bool prefetch) {      \
        const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);                                                    \
        __m512 a[R][4];                                                                                              \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) a[r][c] = _mm512_load_ps((float *)acc + r * 64 + c * 16);                    \
        for (int i = from; i < to; i++) {                                                                            \
            const char *w = panel + (long)i * 256;                                                                   \
            if (prefetch) PREFETCH_STEP(w);                                                                          \
            __m512 even[4], odd[4];                                                                                  \
            for (int c = 0; c < 4; c++) {                                                                            \
                __m512i pairs = _mm512_load_si512(w + c * 64);                                                       \
                even[c] = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));                                         \
                odd[c] = _mm512_castsi512_ps(_mm512_and_si512(pairs, high));                                         \
            }                                                                                                        \
            for (int r = 0; r < R; r++) {                                                                            \
                const float *xi = (const float *)x + r * ldx + 2 * i;                                                \
                __m512 b0 = _mm512_set1_ps(xi[0]), b1 = _mm512_set1_ps(xi[1]);                                       \
                for (int c = 0; c < 4; c++) a[r][c] = _mm512_fmadd_ps(b1, odd[c], _mm512_fmadd_ps(b0, even[c], a[r][c])); \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < 4; c++) _mm512_store_ps((float *)acc + r * 64 + c * 16, a[r][c]);                    \
    }

/* Every row of x (m rows, `steps` 4-byte elements each) against one panel, into acc (m rows of 64), in blocks of
   steps. */
#define PANEL(KIND)                                                                                                  \
    __attribute__((target(KIND##_TARGET))) static void panel_##KIND(const char *x, int m, int steps,                 \
                                                                    const char *panel, void *acc) {                  \
        memset(acc, 0, (size_t)m * 64 * 4);                                                                          \
        for (int from = 0; from < steps; from += STEP_BLOCK) {                                                       \
            int to = from + STEP_BLOCK < steps ? from + STEP_BLOCK : steps;                                          \
            for (int r = 0; r < m; r += 4) {                                                                         \
                const char *xr = x + (long)r * steps * KIND##_XSTEP * 4;                                             \
                void *ar = (char *)acc + r * 64 * 4;                                                                 \
                switch (m - r < 4 ? m - r : 4) {                                                                     \
                case 1: group_##KIND##_1(xr, steps * KIND##_XSTEP, panel, from, to, ar, r == 0); break;              \
                case 2: group_##KIND##_2(xr, steps * KIND##_XSTEP, panel, from, to, ar, r == 0); break;              \
                case 3: group_##KIND##_3(xr, steps * KIND##_XSTEP, panel, from, to, ar, r == 0); break;              \
                default: group_##KIND##_4(xr, steps * KIND##_XSTEP, panel, from, to, ar, r == 0); break;             \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
    }
#define KERNELS(KIND) GROUP(KIND, 1) GROUP(KIND, 2) GROUP(KIND, 3) GROUP(KIND, 4) PANEL(KIND)
KERNELS(F32)
KERNELS(BF16)
KERNELS(S8)
GROUP_WIDE(1) GROUP_WIDE(2) GROUP_WIDE(3) GROUP_WIDE(4) PANEL(WIDE)

/* y = acc (+ bias) (+ y) for panel p's columns of the block (the last panel may hold padding: never written). */
__attribute__((target("avx512f"))) static void finish_f32(const float *acc, int m, int p, int columns,
                                                          const float *bias, bool accumulate, float *y, long ldy) {
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

/* The FP32-output entry points: each panel into acc, then into y. STEP: K rows per 256-byte step of a panel. */
#define FP32_ENTRY(NAME, KIND, X, W, STEP)                                                                           \
    __attribute__((target(KIND##_TARGET))) void NAME(const X *x, int m, int k, const W *panels, long panel_stride,  \
                                                     int columns, const float *bias, bool accumulate, float *y,     \
                                                     long ldy) {                                                     \
        _Alignas(64) float acc[MB_PANEL_ROWS * 64];                                                                  \
        if (m <= 0) return;                                                                                          \
        for (int p = 0; p * 64 < columns; p++) {                                                                     \
            panel_##KIND((const char *)x, m, k / STEP, (const char *)(panels + p * panel_stride), acc);              \
            finish_f32(acc, m, p, columns, bias, accumulate, y, ldy);                                                \
        }                                                                                                            \
    }
FP32_ENTRY(mb_panel_product_f32, F32, float, float, 1)
FP32_ENTRY(mb_panel_product_bf16, BF16, uint16_t, uint16_t, 2)
FP32_ENTRY(mb_panel_product_bf16_widened, WIDE, float, uint16_t, 2)

__attribute__((target("avx512f,avx512vnni"))) void mb_panel_product_u8s8(const uint8_t *x, int m, int k,
                                                                          const int8_t *panels, long panel_stride,
                                                                          int columns, int32_t *y, long ldy) {
    _Alignas(64) int32_t acc[MB_PANEL_ROWS * 64];
    if (m <= 0) return;
    for (int p = 0; p * 64 < columns; p++) {
        panel_S8((const char *)x, m, k / 4, (const char *)(panels + p * panel_stride), acc);
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

bool mb_panel_products_bf16_available(void) { return false; }

void mb_panel_product_f32(const float *x, int m, int k, const float *panels, long panel_stride, int columns,
                          const float *bias, bool accumulate, float *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)bias; (void)accumulate;
    (void)y; (void)ldy;
}

void mb_panel_product_bf16(const uint16_t *x, int m, int k, const uint16_t *panels, long panel_stride, int columns,
                           const float *bias, bool accumulate, float *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)bias; (void)accumulate;
    (void)y; (void)ldy;
}

void mb_panel_product_bf16_widened(const float *x, int m, int k, const uint16_t *panels, long panel_stride,
                                   int columns, const float *bias, bool accumulate, float *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)bias; (void)accumulate;
    (void)y; (void)ldy;
}

void mb_panel_product_u8s8(const uint8_t *x, int m, int k, const int8_t *panels, long panel_stride, int columns,
                           int32_t *y, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)y; (void)ldy;
}

#endif
