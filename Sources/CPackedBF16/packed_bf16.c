#include "packed_bf16.h"

#include <string.h>

/* One 16 × 64 tile: BF16 element (k, n) at ((k / 2) · 64 + n) · 2 + k % 2, FP32 element (k, n) at k · 64 + n. */
static void widen_tile_scalar(const uint16_t *s, float *d) {
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 64; n++) {
            uint32_t bits = (uint32_t)s[((k / 2) * 64 + n) * 2 + k % 2] << 16;
            memcpy(d + k * 64 + n, &bits, 4);
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

/* Each 32-bit lane of a BF16 pair row holds one column's (k even, k odd): the even row is the lane shifted up 16
   bits, the odd row the lane with its low half cleared. */
__attribute__((target("avx512f"))) static void widen_avx512(const uint16_t *bf16, long blocks, float *fp32) {
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    for (long b = 0; b < blocks; b++) {
        const uint16_t *s = bf16 + b * 1024;
        float *d = fp32 + b * 1024;
        for (int pair = 0; pair < 8; pair++) {
            for (int n = 0; n < 64; n += 16) {
                __m512i lanes = _mm512_loadu_si512(s + (pair * 64 + n) * 2);
                _mm512_storeu_si512(d + (2 * pair) * 64 + n, _mm512_slli_epi32(lanes, 16));
                _mm512_storeu_si512(d + (2 * pair + 1) * 64 + n, _mm512_and_si512(lanes, high));
            }
        }
    }
}

int mb_widen_bf16_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#else
int mb_widen_bf16_has_avx512(void) { return 0; }
#endif

/* FP32 → BF16, round to nearest even; NaN → its top half with the quiet bit set. */
static uint16_t round_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (x != x) return (uint16_t)((bits >> 16) | 0x40);
    return (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

static void round_transposed_scalar(const float *a, long rows, long columns, long lda, uint16_t *out, long ldo) {
    for (long r0 = 0; r0 < rows; r0 += 16)
        for (long c0 = 0; c0 < columns; c0 += 16)
            for (long c = c0; c < c0 + 16 && c < columns; c++)
                for (long r = r0; r < r0 + 16 && r < rows; r++) out[c * ldo + r] = round_bf16(a[r * lda + c]);
}

#if defined(__x86_64__)
/* 16 lanes of FP32 rounded to BF16, each in the low half of its 32-bit lane. */
__attribute__((target("avx512f"))) static inline __m512i round_lanes(__m512 x) {
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    __m512i bits = _mm512_castps_si512(x);
    __m512i upper = _mm512_srli_epi32(bits, 16);
    __m512i value = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, half), _mm512_and_si512(upper, one)), 16);
    return _mm512_mask_or_epi32(value, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), upper, quiet);
}

__attribute__((target("avx512f"))) static void round_avx512(const float *x, long count, uint16_t *out) {
    long i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtepi32_epi16(round_lanes(_mm512_loadu_ps(x + i))));
    for (; i < count; i++) out[i] = round_bf16(x[i]);
}

/* Whole 16 × 16 tiles: each row of 16 floats rounded in its lanes, rows paired into 32-bit lanes (row 2i low, row
   2i + 1 high), the 8 × 16 lanes transposed through a tile in L1, each output row written as 32 bytes. */
__attribute__((target("avx512f"))) static void round_transposed_avx512(const float *a, long rows, long columns, long lda,
                                                                        uint16_t *out, long ldo) {
    uint32_t tile[8][16] __attribute__((aligned(64)));
    long wholeRows = rows / 16 * 16, wholeColumns = columns / 16 * 16;
    for (long r0 = 0; r0 < wholeRows; r0 += 16)
        for (long c0 = 0; c0 < wholeColumns; c0 += 16) {
            for (int pair = 0; pair < 8; pair++) {
                __m512i low = round_lanes(_mm512_loadu_ps(a + (r0 + 2 * pair) * lda + c0));
                __m512i high = round_lanes(_mm512_loadu_ps(a + (r0 + 2 * pair + 1) * lda + c0));
                _mm512_store_si512(tile[pair], _mm512_or_si512(low, _mm512_slli_epi32(high, 16)));
            }
            for (int c = 0; c < 16; c++) {
                uint32_t row[8];
                for (int pair = 0; pair < 8; pair++) row[pair] = tile[pair][c];
                memcpy(out + (c0 + c) * ldo + r0, row, 32);
            }
        }
    /* The edges: columns past the last whole tile, then rows past it. */
    if (wholeColumns < columns)
        round_transposed_scalar(a + wholeColumns, wholeRows, columns - wholeColumns, lda, out + wholeColumns * ldo, ldo);
    if (wholeRows < rows) round_transposed_scalar(a + wholeRows * lda, rows - wholeRows, columns, lda, out + wholeRows, ldo);
}
#endif

void mb_round_bf16(const float *x, long count, uint16_t *out) {
#if defined(__x86_64__)
    if (mb_widen_bf16_has_avx512()) {
        round_avx512(x, count, out);
        return;
    }
#endif
    for (long i = 0; i < count; i++) out[i] = round_bf16(x[i]);
}

void mb_round_bf16_transposed(const float *a, long rows, long columns, long lda, uint16_t *out, long ldo) {
#if defined(__x86_64__)
    if (mb_widen_bf16_has_avx512()) {
        round_transposed_avx512(a, rows, columns, lda, out, ldo);
        return;
    }
#endif
    round_transposed_scalar(a, rows, columns, lda, out, ldo);
}

void mb_widen_bf16_tiles(int vectors, const uint16_t *bf16, long blocks, float *fp32) {
#if defined(__x86_64__)
    if (vectors && mb_widen_bf16_has_avx512()) {
        widen_avx512(bf16, blocks, fp32);
        return;
    }
#endif
    for (long b = 0; b < blocks; b++) widen_tile_scalar(bf16 + b * 1024, fp32 + b * 1024);
}
