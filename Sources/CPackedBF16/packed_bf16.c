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

void mb_widen_bf16_tiles(int vectors, const uint16_t *bf16, long blocks, float *fp32) {
#if defined(__x86_64__)
    if (vectors && mb_widen_bf16_has_avx512()) {
        widen_avx512(bf16, blocks, fp32);
        return;
    }
#endif
    for (long b = 0; b < blocks; b++) widen_tile_scalar(bf16 + b * 1024, fp32 + b * 1024);
}
