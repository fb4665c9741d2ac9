#include "quantized_rows.h"

#include <math.h>
#include <stddef.h>

#include "vector_math.h"

/* Every width rounds the same way: products and sums stay separate operations (no fused multiply-add), so the
   floats match the plain C loop and the earlier Swift code bit for bit. */
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

/* GELU (exact-erf form) of every lane, as VectorMath.geluErf computes it, operation for operation (no fused
   multiply-adds: FP_CONTRACT is off), so every width gives the same floats: ½v · (1 + erf(v/√2)), erf by Abramowitz &
   Stegun 7.1.26 (≤ 5e-7 absolute) with VectorMath.exp's e^x. Written once with the compiler's vector types (one lane
   for plain C); EXP is MB_DEFINE_VECTOR_EXP's function for the same types. */
#define DEFINE_GELU(NAME, EXP, VF, VI, ATTRIBUTES)                                                                   \
    MB_DEFINE_VECTOR_EXP(EXP, VF, VI, ATTRIBUTES static inline)                                                      \
    MB_DEFINE_VECTOR_ERF(NAME##_erf, EXP, VF, VI, ATTRIBUTES static inline)                                          \
    ATTRIBUTES static inline VF NAME(VF v) { return 0.5f * v * (1 + NAME##_erf(v * 0.7071067811865476f)); }

typedef float f1 __attribute__((vector_size(4)));
typedef int32_t i1 __attribute__((vector_size(4)));
DEFINE_GELU(gelu_1, exp_1, f1, i1, )

/* The plain C GELU of one float (the tails of the vector loops too). */
static inline float gelu_one(float v) { return gelu_1((f1){v})[0]; }

/* ---- plain C: the reference, and the tail of every vector loop ------------------------------------------------ */

/* Scale and zero point of a row from its (0-widened) range. */
static void row_scale(float lowest, float highest, float top, float *scale, int32_t *zero) {
    float s = highest > lowest ? (highest - lowest) / top : 1.0f;
    float z = roundf(-lowest / s);
    z = z < 0 ? 0 : (z > top ? top : z);
    *scale = s;
    *zero = (int32_t)z;
}

static inline uint8_t level(float v, float inverse, float zero, float top) {
    float l = v * inverse + zero;
    l = l < 0 ? 0 : (l > top ? top : l);
    return (uint8_t)(int32_t)nearbyintf(l);
}

/* A weight row's scale from its largest |w| (`top`), then levels and their sum for elements from `first` on; `sum0`
   is the sum of the levels before `first` (written by the caller's vector loop with the same scale). */
static void weight_scale(float top, float most, float *scale) { *scale = top > 0 ? top / most : 1.0f; }

static void weight_levels(const float *w, int first, int k, float top, bool finite, float most, int8_t *q, float *scale,
                          int32_t *sum, int32_t sum0) {
    if (!finite) {
        for (int i = 0; i < k; i++) q[i] = 0;
        *scale = NAN;
        *sum = 0;
        return;
    }
    weight_scale(top, most, scale);
    float inverse = 1.0f / *scale;
    int32_t total = sum0;
    for (int i = first; i < k; i++) {
        float l = w[i] * inverse;
        l = l < -most ? -most : (l > most ? most : l);
        q[i] = (int8_t)(int32_t)nearbyintf(l);
        total += q[i];
    }
    *sum = total;
}

/* A row's range widened to include 0, from `lanes` vector lanes' minima, maxima and poison sums (NaN once an
   element was NaN or infinite) and the elements from `from` on; false when the row is not all finite (then its
   levels are 0, its scale NaN and its zero 0, written here). */
static bool finish_range(const float *lows, const float *highs, const float *poisons, int lanes, const float *x, int from,
                         int k, float *lowest, float *highest, uint8_t *q, float *scale, int32_t *zero) {
    float low = 0, high = 0;
    bool finite = true;
    for (int l = 0; l < lanes; l++) {
        low = lows[l] < low ? lows[l] : low;
        high = highs[l] > high ? highs[l] : high;
        finite = finite && poisons[l] == 0;
    }
    for (int j = from; j < k; j++) {
        low = x[j] < low ? x[j] : low;
        high = x[j] > high ? x[j] : high;
        finite = finite && isfinite(x[j]);
    }
    if (!finite) {
        for (int j = 0; j < k; j++) q[j] = 0;
        *scale = NAN;
        *zero = 0;
    }
    *lowest = low;
    *highest = high;
    return finite;
}

/* A weight row's largest |w| from `lanes` lanes' maxima and poison sums and the elements from `from` on; false
   when the row is not all finite. */
static bool finish_top(const float *tops, const float *poisons, int lanes, const float *w, int from, int k, float *top) {
    float t = 0;
    bool finite = true;
    for (int l = 0; l < lanes; l++) {
        t = tops[l] > t ? tops[l] : t;
        finite = finite && poisons[l] == 0;
    }
    for (int j = from; j < k; j++) {
        float a = fabsf(w[j]);
        t = a > t ? a : t;
        finite = finite && isfinite(w[j]);
    }
    *top = t;
    return finite;
}

static void quantize_scalar(const float *x, int k, float top, uint8_t *q, float *scale, int32_t *zero) {
    float lowest, highest;
    if (!finish_range(NULL, NULL, NULL, 0, x, 0, k, &lowest, &highest, q, scale, zero)) return;
    row_scale(lowest, highest, top, scale, zero);
    float inverse = 1.0f / *scale, z = (float)*zero;
    for (int i = 0; i < k; i++) q[i] = level(x[i], inverse, z, top);
}

static void weights_scalar(const float *w, int k, float most, int8_t *q, float *scale, int32_t *sum) {
    float top;
    bool finite = finish_top(NULL, NULL, 0, w, 0, k, &top);
    weight_levels(w, 0, k, top, finite, most, q, scale, sum, 0);
}

static inline float epilogue_one(int32_t sum, int32_t zero, int32_t colsum, float scale, float wscale, const float *bias,
                                 int j, bool accumulate, bool gelu, const float *old) {
    float v = (float)(int32_t)((uint32_t)sum - (uint32_t)zero * (uint32_t)colsum) * (scale * wscale);
    if (bias) v += bias[j];
    if (accumulate) v = *old + v;
    return gelu ? gelu_one(v) : v;
}

static void epilogue_scalar(const int32_t *part, int rows, int width, int ldp, const float *scale, const int32_t *zero,
                            const float *wscale, const int32_t *colsum, const float *bias, bool accumulate, bool gelu,
                            float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        const int32_t *p = part + (long)r * ldp;
        float *t = y + (long)r * ldy;
        for (int j = 0; j < width; j++)
            t[j] = epilogue_one(p[j], zero[r], colsum[j], scale[r], wscale[j], bias, j, accumulate, gelu, t + j);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/* gelu_8x2 and gelu_16x2: two vectors at once (the compiler's wider types in pairs of registers). GELU is a long chain
   of dependent operations per vector, and two chains side by side keep more of the vector units busy (the AVX2 int8
   epilogue: 345M 32×32 passes 0.8–1.4% faster, three alternations); every lane's operations are the same. */
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
DEFINE_GELU(gelu_8, exp_8, f8, i8, __attribute__((target("avx2"))))
/* Inlined, so no 16-lane vector crosses a call under AVX2 (-Wpsabi warns of that calling convention, up to the end of
   epilogue_avx2, its one caller). */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
DEFINE_GELU(gelu_8x2, exp_8x2, f16, i16, __attribute__((target("avx2"), always_inline)))
typedef float f32x __attribute__((vector_size(128)));
typedef int32_t i32x __attribute__((vector_size(128)));
DEFINE_GELU(gelu_16, exp_16, f16, i16, __attribute__((target("avx512f"))))
DEFINE_GELU(gelu_16x2, exp_16x2, f32x, i32x, __attribute__((target("avx512f"))))

/* ---- AVX2: eight lanes --------------------------------------------------------------------------------------- */

__attribute__((target("avx2"))) static void quantize_avx2(const float *x, int k, float top, uint8_t *q, float *scale,
                                                          int32_t *zero) {
    __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps(), poison = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        low = _mm256_min_ps(v, low);  /* min/max keep the second operand when either is NaN: poison finds those */
        high = _mm256_max_ps(v, high);
        poison = _mm256_add_ps(poison, _mm256_sub_ps(v, v));  /* NaN once any element is NaN or infinite */
    }
    float lows[8], highs[8], poisons[8], lowest, highest;
    _mm256_storeu_ps(lows, low);
    _mm256_storeu_ps(highs, high);
    _mm256_storeu_ps(poisons, poison);
    if (!finish_range(lows, highs, poisons, 8, x, i, k, &lowest, &highest, q, scale, zero)) return;
    row_scale(lowest, highest, top, scale, zero);
    float inverse = 1.0f / *scale, z = (float)*zero;
    const __m256 vi = _mm256_set1_ps(inverse), vz = _mm256_set1_ps(z), vt = _mm256_set1_ps(top), v0 = _mm256_setzero_ps();
    i = 0;
    for (; i + 32 <= k; i += 32) {
        __m256i n[4];
        for (int b = 0; b < 4; b++) {
            __m256 l = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * b), vi), vz);
            l = _mm256_min_ps(vt, _mm256_max_ps(v0, l));
            n[b] = _mm256_cvtps_epi32(l);  /* the current rounding mode: halves to even */
        }
        /* 32 int32 in 0 ... 255 to 32 bytes: packs work per 128-bit lane, the permute puts the lanes back in order. */
        __m256i words = _mm256_packs_epi32(n[0], n[1]), words2 = _mm256_packs_epi32(n[2], n[3]);
        __m256i bytes = _mm256_packus_epi16(words, words2);
        bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), bytes);
    }
    for (; i < k; i++) q[i] = level(x[i], inverse, z, top);
}

__attribute__((target("avx2"))) static void weights_avx2(const float *w, int k, float most, int8_t *q, float *scale,
                                                         int32_t *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 largest = _mm256_setzero_ps(), poison = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 v = _mm256_loadu_ps(w + i);
        largest = _mm256_max_ps(_mm256_andnot_ps(sign, v), largest);
        poison = _mm256_add_ps(poison, _mm256_sub_ps(v, v));
    }
    float lanes[8], poisons[8], top;
    _mm256_storeu_ps(lanes, largest);
    _mm256_storeu_ps(poisons, poison);
    if (!finish_top(lanes, poisons, 8, w, i, k, &top)) {
        weight_levels(w, 0, k, top, false, most, q, scale, sum, 0);
        return;
    }
    weight_scale(top, most, scale);
    const __m256 vi = _mm256_set1_ps(1.0f / *scale), hi = _mm256_set1_ps(most), lo = _mm256_set1_ps(-most);
    __m256i sums = _mm256_setzero_si256();
    i = 0;
    for (; i + 32 <= k; i += 32) {
        __m256i n[4];
        for (int b = 0; b < 4; b++) {
            __m256 l = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(w + i + 8 * b), vi)));
            n[b] = _mm256_cvtps_epi32(l);
            sums = _mm256_add_epi32(sums, n[b]);
        }
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
        bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), bytes);
    }
    int32_t parts[8], total = 0;
    _mm256_storeu_si256((__m256i *)parts, sums);
    for (int l = 0; l < 8; l++) total += parts[l];
    weight_levels(w, i, k, top, true, most, q, scale, sum, total);
}

__attribute__((target("avx2"))) static void epilogue_avx2(const int32_t *part, int rows, int width, int ldp,
                                                          const float *scale, const int32_t *zero, const float *wscale,
                                                          const int32_t *colsum, const float *bias, bool accumulate,
                                                          bool gelu, float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        const int32_t *p = part + (long)r * ldp;
        float *t = y + (long)r * ldy;
        const __m256i vz = _mm256_set1_epi32(zero[r]);
        const __m256 vs = _mm256_set1_ps(scale[r]);
        int j = 0;
#define VALUE_8(j)                                                                                                   \
    ({                                                                                                               \
        __m256i s = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(p + (j))),                                 \
                                     _mm256_mullo_epi32(vz, _mm256_loadu_si256((const __m256i *)(colsum + (j)))));    \
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(vs, _mm256_loadu_ps(wscale + (j))));           \
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + (j)));                                                 \
        if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(t + (j)), v);                                              \
        v;                                                                                                           \
    })
        for (; gelu && j + 16 <= width; j += 16) {
            f16 both = gelu_8x2(__builtin_shufflevector((f8)VALUE_8(j), (f8)VALUE_8(j + 8), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                        10, 11, 12, 13, 14, 15));
            _mm256_storeu_ps(t + j, (__m256)__builtin_shufflevector(both, both, 0, 1, 2, 3, 4, 5, 6, 7));
            _mm256_storeu_ps(t + j + 8, (__m256)__builtin_shufflevector(both, both, 8, 9, 10, 11, 12, 13, 14, 15));
        }
        for (; j + 8 <= width; j += 8) {
            __m256 v = VALUE_8(j);
            if (gelu) v = (__m256)gelu_8((f8)v);
            _mm256_storeu_ps(t + j, v);
        }
#undef VALUE_8
        for (; j < width; j++)
            t[j] = epilogue_one(p[j], zero[r], colsum[j], scale[r], wscale[j], bias, j, accumulate, gelu, t + j);
    }
}
#pragma clang diagnostic pop

/* ---- AVX-512: sixteen lanes ---------------------------------------------------------------------------------- */

__attribute__((target("avx512f,avx512bw"))) static void quantize_avx512(const float *x, int k, float top, uint8_t *q,
                                                                       float *scale, int32_t *zero) {
    __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps(), poison = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        low = _mm512_min_ps(v, low);
        high = _mm512_max_ps(v, high);
        poison = _mm512_add_ps(poison, _mm512_sub_ps(v, v));
    }
    float lows[16], highs[16], poisons[16], lowest, highest;
    _mm512_storeu_ps(lows, low);
    _mm512_storeu_ps(highs, high);
    _mm512_storeu_ps(poisons, poison);
    if (!finish_range(lows, highs, poisons, 16, x, i, k, &lowest, &highest, q, scale, zero)) return;
    row_scale(lowest, highest, top, scale, zero);
    float inverse = 1.0f / *scale, z = (float)*zero;
    const __m512 vi = _mm512_set1_ps(inverse), vz = _mm512_set1_ps(z), vt = _mm512_set1_ps(top), v0 = _mm512_setzero_ps();
    i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 l = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), vz);
        l = _mm512_min_ps(vt, _mm512_max_ps(v0, l));
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(l)));  /* halves to even */
    }
    for (; i < k; i++) q[i] = level(x[i], inverse, z, top);
}

__attribute__((target("avx512f,avx512bw"))) static void weights_avx512(const float *w, int k, float most, int8_t *q,
                                                                      float *scale, int32_t *sum) {
    __m512 largest = _mm512_setzero_ps(), poison = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 v = _mm512_loadu_ps(w + i);
        largest = _mm512_max_ps(_mm512_abs_ps(v), largest);
        poison = _mm512_add_ps(poison, _mm512_sub_ps(v, v));
    }
    float lanes[16], poisons[16], top;
    _mm512_storeu_ps(lanes, largest);
    _mm512_storeu_ps(poisons, poison);
    if (!finish_top(lanes, poisons, 16, w, i, k, &top)) {
        weight_levels(w, 0, k, top, false, most, q, scale, sum, 0);
        return;
    }
    weight_scale(top, most, scale);
    const __m512 vi = _mm512_set1_ps(1.0f / *scale), hi = _mm512_set1_ps(most), lo = _mm512_set1_ps(-most);
    __m512i sums = _mm512_setzero_si512();
    i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512i n = _mm512_cvtps_epi32(_mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_mul_ps(_mm512_loadu_ps(w + i), vi))));
        sums = _mm512_add_epi32(sums, n);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(n));
    }
    weight_levels(w, i, k, top, true, most, q, scale, sum, _mm512_reduce_add_epi32(sums));
}

__attribute__((target("avx512f"))) static void epilogue_avx512(const int32_t *part, int rows, int width, int ldp,
                                                               const float *scale, const int32_t *zero,
                                                               const float *wscale, const int32_t *colsum,
                                                               const float *bias, bool accumulate, bool gelu, float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        const int32_t *p = part + (long)r * ldp;
        float *t = y + (long)r * ldy;
        const __m512i vz = _mm512_set1_epi32(zero[r]);
        const __m512 vs = _mm512_set1_ps(scale[r]);
        int j = 0;
#define VALUE_16(j)                                                                                                  \
    ({                                                                                                               \
        __m512i s = _mm512_sub_epi32(_mm512_loadu_si512(p + (j)),                                                    \
                                     _mm512_mullo_epi32(vz, _mm512_loadu_si512(colsum + (j))));                       \
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(vs, _mm512_loadu_ps(wscale + (j))));           \
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + (j)));                                                 \
        if (accumulate) v = _mm512_add_ps(_mm512_loadu_ps(t + (j)), v);                                              \
        v;                                                                                                           \
    })
        for (; gelu && j + 32 <= width; j += 32) {
            f32x both = gelu_16x2(__builtin_shufflevector((f16)VALUE_16(j), (f16)VALUE_16(j + 16), 0, 1, 2, 3, 4, 5, 6,
                                                          7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                                                          24, 25, 26, 27, 28, 29, 30, 31));
            _mm512_storeu_ps(t + j, (__m512)__builtin_shufflevector(both, both, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                                     13, 14, 15));
            _mm512_storeu_ps(t + j + 16, (__m512)__builtin_shufflevector(both, both, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                                                          25, 26, 27, 28, 29, 30, 31));
        }
        for (; j + 16 <= width; j += 16) {
            __m512 v = VALUE_16(j);
            if (gelu) v = (__m512)gelu_16((f16)v);
            _mm512_storeu_ps(t + j, v);
        }
#undef VALUE_16
        for (; j < width; j++)
            t[j] = epilogue_one(p[j], zero[r], colsum[j], scale[r], wscale[j], bias, j, accumulate, gelu, t + j);
    }
}

/* The widest of 2 (AVX-512), 1 (AVX2), 0 (plain C) that this CPU runs. */
int mb_quantized_rows_widest(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? 2
         : __builtin_cpu_supports("avx2") ? 1 : 0;
}
#else
int mb_quantized_rows_widest(void) { return 0; }
#endif

void mb_quantize_row(int width, const float *x, int k, float top, uint8_t *q, float *scale, int32_t *zero) {
    switch (width) {
#if defined(__x86_64__)
    case 2: quantize_avx512(x, k, top, q, scale, zero); return;
    case 1: quantize_avx2(x, k, top, q, scale, zero); return;
#endif
    default: quantize_scalar(x, k, top, q, scale, zero);
    }
}

void mb_quantize_weight_row(int width, const float *w, int k, float levels, int8_t *q, float *scale, int32_t *sum) {
    switch (width) {
#if defined(__x86_64__)
    case 2: weights_avx512(w, k, levels, q, scale, sum); return;
    case 1: weights_avx2(w, k, levels, q, scale, sum); return;
#endif
    default: weights_scalar(w, k, levels, q, scale, sum);
    }
}

void mb_int8_epilogue(int width, const int32_t *part, int rows, int columns, int ldp, const float *scale,
                      const int32_t *zero, const float *wscale, const int32_t *colsum, const float *bias, bool accumulate,
                      bool gelu, float *y, int ldy) {
    switch (width) {
#if defined(__x86_64__)
    case 2: epilogue_avx512(part, rows, columns, ldp, scale, zero, wscale, colsum, bias, accumulate, gelu, y, ldy); return;
    case 1: epilogue_avx2(part, rows, columns, ldp, scale, zero, wscale, colsum, bias, accumulate, gelu, y, ldy); return;
#endif
    default: epilogue_scalar(part, rows, columns, ldp, scale, zero, wscale, colsum, bias, accumulate, gelu, y, ldy);
    }
}
