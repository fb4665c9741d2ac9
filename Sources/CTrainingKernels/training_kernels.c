#include "training_kernels.h"

#include "vector_math.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

/* One body, written with the compiler's vector types and instantiated per width: AVX-512 (16 floats), AVX2 (8) and
   one lane (plain C, also every width's tail). No FMA anywhere (FP_CONTRACT OFF), so all three give the same bits. */
#define DEFINE_ADAMW(NAME, VF, WIDTH, ATTRIBUTES)                                                                    \
    ATTRIBUTES static long NAME(float *p, float *g, float *m, float *v, long count, float scale, int zeroing,         \
                                float decay, float b1, float b2, float stepSize, float correction2, float eps) {     \
        const float keep1 = 1 - b1, keep2 = 1 - b2;                                                                  \
        long i = 0;                                                                                                  \
        for (; i + WIDTH <= count; i += WIDTH) {                                                                     \
            VF gradient, parameter, m0, v0;                                                                          \
            __builtin_memcpy(&gradient, g + i, sizeof(VF));                                                          \
            __builtin_memcpy(&parameter, p + i, sizeof(VF));                                                         \
            __builtin_memcpy(&m0, m + i, sizeof(VF));                                                                \
            __builtin_memcpy(&v0, v + i, sizeof(VF));                                                                \
            if (scale < 1) gradient = gradient * scale;                                                              \
            if (zeroing) {                                                                                           \
                VF zero = {0};                                                                                       \
                __builtin_memcpy(g + i, &zero, sizeof(VF));                                                          \
            }                                                                                                        \
            parameter = parameter * decay;                                                                           \
            VF m1 = b1 * m0 + keep1 * gradient;                                                                      \
            VF v1 = b2 * v0 + keep2 * gradient * gradient;                                                           \
            __builtin_memcpy(m + i, &m1, sizeof(VF));                                                                \
            __builtin_memcpy(v + i, &v1, sizeof(VF));                                                                \
            VF updated = parameter - stepSize * m1 / (__builtin_elementwise_sqrt(v1) / correction2 + eps);           \
            __builtin_memcpy(p + i, &updated, sizeof(VF));                                                           \
        }                                                                                                            \
        return i;                                                                                                    \
    }

/* GELU's Φ(x) with VectorMath's erf and exp (vector_math.h), and its density. */
#define DEFINE_GELU(NAME, VF, VI, WIDTH, ATTRIBUTES)                                                                 \
    MB_DEFINE_VECTOR_EXP(NAME##_exp, VF, VI, ATTRIBUTES static inline)                                               \
    MB_DEFINE_VECTOR_ERF(NAME##_erf, NAME##_exp, VF, VI, ATTRIBUTES static inline)                                   \
    ATTRIBUTES static long NAME(const float *x, long count, float *y, float *derivative) {                          \
        long i = 0;                                                                                                  \
        for (; i + WIDTH <= count; i += WIDTH) {                                                                     \
            VF v;                                                                                                    \
            __builtin_memcpy(&v, x + i, sizeof(VF));                                                                 \
            VF e = NAME##_erf(v * 0.7071067811865476f);                                                              \
            VF cdf = 0.5f * (1 + e);                                                                                 \
            VF density = NAME##_exp(-0.5f * v * v) * 0.3989422804014327f;                                            \
            VF value = v * cdf, slope = cdf + v * density;                                                           \
            __builtin_memcpy(y + i, &value, sizeof(VF));                                                             \
            __builtin_memcpy(derivative + i, &slope, sizeof(VF));                                                    \
        }                                                                                                            \
        return i;                                                                                                    \
    }

#define DEFINE_EXP_IN_PLACE(NAME, VF, VI, WIDTH, ATTRIBUTES)                                                         \
    MB_DEFINE_VECTOR_EXP(NAME##_lanes, VF, VI, ATTRIBUTES static inline)                                             \
    ATTRIBUTES static long NAME(float *x, long count) {                                                              \
        long i = 0;                                                                                                  \
        for (; i + WIDTH <= count; i += WIDTH) {                                                                     \
            VF v;                                                                                                    \
            __builtin_memcpy(&v, x + i, sizeof(VF));                                                                 \
            v = NAME##_lanes(v);                                                                                     \
            __builtin_memcpy(x + i, &v, sizeof(VF));                                                                 \
        }                                                                                                            \
        return i;                                                                                                    \
    }

#define DEFINE_DROPOUT(NAME, VU, WIDTH, ATTRIBUTES)                                                                 \
    ATTRIBUTES static long NAME(uint8_t *kept, long count, uint64_t state, uint64_t threshold) {                     \
        const uint64_t golden = 0x9E3779B97F4A7C15ull;                                                               \
        VU lanes;                                                                                                    \
        for (int j = 0; j < WIDTH; j++) lanes[j] = state + (uint64_t)(j + 1) * golden;                               \
        long i = 0;                                                                                                  \
        for (; i + WIDTH <= count; i += WIDTH) {                                                                     \
            VU z = lanes;                                                                                            \
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;                                                             \
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;                                                             \
            z = z ^ (z >> 31);                                                                                       \
            for (int j = 0; j < WIDTH; j++) kept[i + j] = (z[j] >> 11) < threshold;                                  \
            lanes += (uint64_t)WIDTH * golden;                                                                       \
        }                                                                                                            \
        return i;                                                                                                    \
    }

typedef float v1f __attribute__((ext_vector_type(1)));
typedef uint64_t v1u __attribute__((ext_vector_type(1)));
typedef int v1i __attribute__((ext_vector_type(1)));
DEFINE_ADAMW(adamw_scalar, v1f, 1, )
DEFINE_GELU(gelu_scalar, v1f, v1i, 1, )
DEFINE_EXP_IN_PLACE(exp_scalar, v1f, v1i, 1, )
DEFINE_DROPOUT(dropout_scalar, v1u, 1, )

#if defined(__x86_64__) && defined(__clang__)
typedef float v8f __attribute__((ext_vector_type(8)));
typedef float v16f __attribute__((ext_vector_type(16)));
typedef int v8i __attribute__((ext_vector_type(8)));
typedef int v16i __attribute__((ext_vector_type(16)));
DEFINE_ADAMW(adamw_avx2, v8f, 8, __attribute__((target("avx2"))))
DEFINE_ADAMW(adamw_avx512, v16f, 16, __attribute__((target("avx512f"))))
DEFINE_GELU(gelu_avx2, v8f, v8i, 8, __attribute__((target("avx2"))))
DEFINE_GELU(gelu_avx512, v16f, v16i, 16, __attribute__((target("avx512f"))))
DEFINE_EXP_IN_PLACE(exp_avx2, v8f, v8i, 8, __attribute__((target("avx2"))))
DEFINE_EXP_IN_PLACE(exp_avx512, v16f, v16i, 16, __attribute__((target("avx512f"))))
typedef uint64_t v4u __attribute__((ext_vector_type(4)));
typedef uint64_t v8u __attribute__((ext_vector_type(8)));
DEFINE_DROPOUT(dropout_avx2, v4u, 4, __attribute__((target("avx2"))))
DEFINE_DROPOUT(dropout_avx512, v8u, 8, __attribute__((target("avx512f,avx512dq"))))

static int width(void) {
    static int chosen = -1;
    if (chosen < 0) {
        __builtin_cpu_init();
        chosen = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? 16
                 : __builtin_cpu_supports("avx2") ? 8 : 1;
    }
    return chosen;
}

/* The elements NAME's widest kernel on this CPU (NAME_avx512 or NAME_avx2) did in whole vectors; the caller's plain C
   kernel does the rest. */
#define WIDEST(NAME, ...) (width() == 16 ? NAME##_avx512(__VA_ARGS__) : width() == 8 ? NAME##_avx2(__VA_ARGS__) : 0)
#else
#define WIDEST(NAME, ...) 0L
#endif

void mb_adamw_update(float *p, float *g, float *m, float *v, long count, float gradientScale, int zeroing, float decay,
                     float beta1, float beta2, float stepSize, float correction2, float epsilon) {
    long done = WIDEST(adamw, p, g, m, v, count, gradientScale, zeroing, decay, beta1, beta2, stepSize, correction2, epsilon);
    adamw_scalar(p + done, g + done, m + done, v + done, count - done, gradientScale, zeroing, decay, beta1, beta2,
                 stepSize, correction2, epsilon);
}

void mb_gelu_with_derivative(const float *x, long count, float *y, float *derivative) {
    long done = WIDEST(gelu, x, count, y, derivative);
    gelu_scalar(x + done, count - done, y + done, derivative + done);
}

void mb_exp_in_place(float *x, long count) {
    long done = WIDEST(exp, x, count);
    exp_scalar(x + done, count - done);
}

void mb_dropout_mask(uint8_t *kept, long count, uint64_t state, uint64_t threshold) {
    long done = WIDEST(dropout, kept, count, state, threshold);
    dropout_scalar(kept + done, count - done, state + (uint64_t)done * 0x9E3779B97F4A7C15ull, threshold);
}

void mb_dropout_apply(float *x, const uint8_t *kept, long count, float scale) {
    for (long i = 0; i < count; i++) x[i] = x[i] * (kept[i] ? scale : 0.0f);
}
