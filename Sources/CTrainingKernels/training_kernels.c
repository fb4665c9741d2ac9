#include "training_kernels.h"

#pragma STDC FP_CONTRACT OFF

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

typedef float v1f __attribute__((ext_vector_type(1)));
DEFINE_ADAMW(adamw_scalar, v1f, 1, )

#if defined(__x86_64__) && defined(__clang__)
typedef float v8f __attribute__((ext_vector_type(8)));
typedef float v16f __attribute__((ext_vector_type(16)));
DEFINE_ADAMW(adamw_avx2, v8f, 8, __attribute__((target("avx2"))))
DEFINE_ADAMW(adamw_avx512, v16f, 16, __attribute__((target("avx512f"))))

static int width(void) {
    static int chosen = -1;
    if (chosen < 0) {
        __builtin_cpu_init();
        chosen = __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") ? 8 : 1;
    }
    return chosen;
}
#endif

void mb_adamw_update(float *p, float *g, float *m, float *v, long count, float gradientScale, int zeroing, float decay,
                     float beta1, float beta2, float stepSize, float correction2, float epsilon) {
    long done = 0;
#if defined(__x86_64__) && defined(__clang__)
    switch (width()) {
    case 16:
        done = adamw_avx512(p, g, m, v, count, gradientScale, zeroing, decay, beta1, beta2, stepSize, correction2, epsilon);
        break;
    case 8:
        done = adamw_avx2(p, g, m, v, count, gradientScale, zeroing, decay, beta1, beta2, stepSize, correction2, epsilon);
        break;
    default:
        break;
    }
#endif
    adamw_scalar(p + done, g + done, m + done, v + done, count - done, gradientScale, zeroing, decay, beta1, beta2,
                 stepSize, correction2, epsilon);
}
