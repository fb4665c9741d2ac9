#include "panel_products.h"

#include <string.h>

#include "quantized_rows.h"

#if defined(__x86_64__)
#include <immintrin.h>

bool mb_panel_products_int8_avx2_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

/* The layout (oneDNN's BA16a64b4a, as mb_panel_product_u8s8 reads it): per panel of 64 columns, one 256-byte step per
   quad of K, each column's four weights side by side. This kernel takes a step as four sub-panels of 16 columns (64
   bytes, one cache line, two vectors of 8 columns × 4 weights); each input row gives one 4-byte word per step,
   broadcast to all 8 lanes:
     vpmaddubsw  16-bit sums of the two u8 × s8 products of each pair   (exact while a pair stays within ±32,767)
     vpmaddwd    with ones: 32-bit sums of the quad's two pairs
     vpaddd      into the accumulator
   Tiles of 4 rows × 16 columns (8 accumulators). Measured on an AMD EPYC Zen 4 with `scripts/int8_panels_bench.c`
   (one thread, warm caches): 104–113 G multiply-adds/s on the 345M model's product shapes against 97–113 for oneDNN
   2.6's AVX2 `gemm:jit` (which repacks the plain weights on every call), 112 against 80 at 8 rows; in the engine,
   where the weights come cold from memory and the epilogue is fused here, see `OneDNN.packsInt8Panels`. */

/* How far ahead (bytes) a sub-panel's lines are prefetched into L2 (by the first tile of rows that reads them; the
   tiles after it find them in L1 or L2): as mb_panel_product_u8s8, which measured 16 KB best for few-row products. */
#define PREFETCH 16384
/* Input rows taken at a time: as many as keep their bytes (rows × k) within this, so that every sub-panel pass over
   them reads them from L2 (256 rows at k = 1024, 64 at 4096; at least one tile). */
#define ROW_BLOCK_BYTES (256 << 10)

/* Row r's four bytes of step q as one word: the last step of a k that is not a multiple of 4 zero-filled, never read
   past the row (its weights are zero padding). */
static inline int32_t tail_word(const uint8_t *row, int q, int k) {
    uint8_t bytes[4] = {0, 0, 0, 0};
    for (int i = 4 * q; i < k; i++) bytes[i - 4 * q] = row[i];
    int32_t word;
    memcpy(&word, bytes, 4);
    return word;
}

static inline int32_t word_at(const uint8_t *p) {
    int32_t word;
    memcpy(&word, p, 4);
    return word;
}

/* One step of a tile: each row's word (words[r], r < R) against the sub-panel's step at `step`. */
__attribute__((target("avx2"), always_inline)) static inline void tile_step(const int R, __m256i acc[4][2],
                                                                           const int8_t *step, const int32_t words[4]) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i w0 = _mm256_load_si256((const __m256i *)step), w1 = _mm256_load_si256((const __m256i *)(step + 32));
    for (int r = 0; r < R; r++) {
        const __m256i a = _mm256_set1_epi32(words[r]);
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w0), ones));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w1), ones));
    }
}

/* out[r][0 ..< 16] = the sums of rows x + r·k (r < R) against one sub-panel (its step q at w + q·256). */
__attribute__((target("avx2"), always_inline)) static inline void tile(const int R, const uint8_t *x, int k,
                                                                      const int8_t *w, bool prefetch,
                                                                      int32_t out[4][16]) {
    __m256i acc[4][2];
    int32_t words[4] = {0, 0, 0, 0};
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const int full = k / 4;
    for (int q = 0; q < full; q++) {
        const int8_t *step = w + (long)q * 256;
        if (prefetch) _mm_prefetch((const char *)step + PREFETCH, _MM_HINT_T1);
        for (int r = 0; r < R; r++) words[r] = word_at(x + (long)r * k + 4 * q);
        tile_step(R, acc, step, words);
    }
    if (full * 4 < k) {
        for (int r = 0; r < R; r++) words[r] = tail_word(x + (long)r * k, full, k);
        tile_step(R, acc, w + (long)full * 256, words);
    }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_si256((__m256i *)out[r], acc[r][0]);
        _mm256_storeu_si256((__m256i *)(out[r] + 8), acc[r][1]);
    }
}

/* Rows [first, first + R) (R <= 4) against sub-panel w, for y's columns [column, column + width) (width <= 16):
   their int32 sums into `sums`, or through `finish` into its y. */
__attribute__((target("avx2"))) static void rows_against(const int R, const uint8_t *x, int first, int k,
                                                         const int8_t *w, bool prefetch, int column, int width,
                                                         const mb_int8_finish *finish, int32_t *sums, long ldy) {
    int32_t out[4][16];
    const uint8_t *rows = x + (long)first * k;
    switch (R) {  /* a constant R each, so the row loop unrolls */
    case 4: tile(4, rows, k, w, prefetch, out); break;
    case 3: tile(3, rows, k, w, prefetch, out); break;
    case 2: tile(2, rows, k, w, prefetch, out); break;
    default: tile(1, rows, k, w, prefetch, out); break;
    }
    if (finish) {
        mb_int8_epilogue(finish->level, out[0], R, width, 16, finish->scale + first, finish->zero + first,
                         finish->wscale + column, finish->colsum + column, finish->bias ? finish->bias + column : 0,
                         finish->accumulate, finish->gelu, finish->y + first * finish->ldy + column, finish->ldy);
        return;
    }
    for (int r = 0; r < R; r++) memcpy(sums + (first + r) * ldy + column, out[r], (size_t)width * 4);
}

__attribute__((target("avx2"))) void mb_panel_product_u8s8_avx2(const uint8_t *x, int m, int k, const int8_t *panels,
                                                                long panel_stride, int columns,
                                                                const mb_int8_finish *finish, int32_t *sums, long ldy) {
    int block = ROW_BLOCK_BYTES / (k > 0 ? k : 1);
    block = block < 4 ? 4 : block / 4 * 4;
    for (int first = 0; first < m; first += block) {
        const int rows = m - first < block ? m - first : block;
        for (int column = 0; column < columns; column += 16) {
            const int8_t *w = panels + (long)(column / 64) * panel_stride + (column % 64) / 16 * 64;
            const int width = columns - column < 16 ? columns - column : 16;
            for (int r = 0; r < rows; r += 4) {
                const int R = rows - r < 4 ? rows - r : 4;
                rows_against(R, x, first + r, k, w, r == 0, column, width, finish, sums, ldy);
            }
        }
    }
}

#else
bool mb_panel_products_int8_avx2_available(void) { return false; }
void mb_panel_product_u8s8_avx2(const uint8_t *x, int m, int k, const int8_t *panels, long panel_stride, int columns,
                                const mb_int8_finish *finish, int32_t *sums, long ldy) {
    (void)x; (void)m; (void)k; (void)panels; (void)panel_stride; (void)columns; (void)finish; (void)sums; (void)ldy;
}
#endif
