#include "attention.h"

#include <string.h>

#include "vector_math.h"

/* One (sequence, head) at a time: K transposed and V copied into zero-padded panels once, then query rows a block at
   a time: scores = scale · Q Kᵀ (register tiles of rows × key vectors), the softmax's numerators in place with one
   sum per row, and context = numerators · V (register tiles of rows × column vectors) divided by the sums as it is
   stored. Everything stays in the core's cache: at the 345M model's d = 64 and 128 keys, Kᵀ and V are 32 KB each and
   a block's scores 64 KB. Written once with the compiler's vector types, instantiated for AVX-512 (16 floats) and
   AVX2 + FMA (8). Every score is one FMA chain over d in order, then × scale; every context element one FMA chain
   over the keys in order, then × its row's 1 / sum; the tiles only decide which of those run side by side. */

#define ROUND_UP(n, m) (((n) + (m) - 1) / (m) * (m))

static size_t work_floats(int rows, int keys, int d, int block, int width) {
    (void)rows;
    size_t kp = (size_t)ROUND_UP(keys, width), dp = (size_t)ROUND_UP(d, width);
    // Kᵀ (d, kp), K and V (keys, dp), the kept keys (kp), scores (block, kp), 1 / sums (block); each 64-byte aligned.
    return ROUND_UP((size_t)d * kp, 16) + 2 * ROUND_UP((size_t)keys * dp, 16) + ROUND_UP(kp, 16)
        + ROUND_UP((size_t)block * kp, 16) + ROUND_UP((size_t)block, 16);
}

size_t mb_attention_work_floats(int rows, int keys, int d, int block, int width) {
    if (rows < 1 || keys < 1 || d < 1 || block < 1 || (width != 8 && width != 16)) return 0;
    return work_floats(rows, keys, d, block < rows ? block : rows, width);
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

int mb_attention_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
    return 0;
}

typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* e^x for every lane, as VectorMath.exp (fused multiply-adds allowed here). */
#define DEFINE_EXP(VF, VI, TARGET)                                                                                   \
    MB_DEFINE_VECTOR_EXP(exp_##VF, VF, VI, __attribute__((target(TARGET), always_inline)) static inline)

#define DEFINE_KERNELS(W, VF, VI, TARGET, GATHER, SR, SC, PR, PC)                                                    \
    DEFINE_EXP(VF, VI, TARGET)                                                                                       \
                                                                                                                     \
    /* scores (R, C·W) = scale · q (R, d) · kt (d, C·W): kt's rows kp apart, scores' sp apart. */                    \
    __attribute__((target(TARGET), always_inline)) static inline void scores_##W(                                    \
        const float *q, long ld, int d, const float *kt, int kp, float *s, int sp, float scale, const int R,         \
        const int C) {                                                                                               \
        VF acc[SR][SC];                                                                                              \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < C; c++) acc[r][c] = (VF){};                                                          \
        for (int i = 0; i < d; i++) {                                                                                \
            VF b[SC];                                                                                                \
            for (int c = 0; c < C; c++) b[c] = *(const VF *)(kt + (long)i * kp + c * W);                             \
            for (int r = 0; r < R; r++) {                                                                            \
                const float a = q[r * ld + i];                                                                       \
                for (int c = 0; c < C; c++) acc[r][c] = b[c] * a + acc[r][c];                                        \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < C; c++) *(VF *)(s + (long)r * sp + c * W) = acc[r][c] * scale;                       \
    }                                                                                                                \
                                                                                                                     \
    /* out (R, columns < C·W) = p (R, keys) · vp (keys, C·W) × each row's inverse sum: vp's rows dp apart. */        \
    __attribute__((target(TARGET), always_inline)) static inline void context_##W(                                   \
        const float *p, int sp, int keys, const float *vp, int dp, const float *inverse, float *out, long ldo,       \
        int columns, const int R, const int C) {                                                                     \
        VF acc[PR][PC];                                                                                              \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < C; c++) acc[r][c] = (VF){};                                                          \
        for (int j = 0; j < keys; j++) {                                                                             \
            VF b[PC];                                                                                                \
            for (int c = 0; c < C; c++) b[c] = *(const VF *)(vp + (long)j * dp + c * W);                             \
            for (int r = 0; r < R; r++) {                                                                            \
                const float a = p[(long)r * sp + j];                                                                 \
                for (int c = 0; c < C; c++) acc[r][c] = b[c] * a + acc[r][c];                                        \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < C; c++) {                                                                            \
                VF o = acc[r][c] * inverse[r];                                                                       \
                int n = columns - c * W;                                                                             \
                memcpy(out + r * ldo + c * W, &o, sizeof(float) * (size_t)(n < W ? n : W));                          \
            }                                                                                                        \
    }                                                                                                                \
                                                                                                                     \
    /* The softmax's numerators of one row in place (kept keys only) and 1 / their sum; `keep` is zero past keys. */ \
    __attribute__((target(TARGET))) static float numerators_##W(float *s, const float *keep, int kp) {               \
        const VF none = (VF){} - __builtin_inff();                                                                   \
        VF best = none;                                                                                              \
        for (int j = 0; j < kp; j += W) {                                                                            \
            VI kept = *(const VF *)(keep + j) != 0;                                                                  \
            best = __builtin_elementwise_max(best, (VF)(((VI)*(VF *)(s + j) & kept) | ((VI)none & ~kept)));          \
        }                                                                                                            \
        /* Across the lanes in halves (a chain of log2 W steps, not W − 1: this ran once per row, latency-bound). */ \
        float lanes[W];                                                                                              \
        memcpy(lanes, &best, sizeof(VF));                                                                            \
        for (int h = W / 2; h > 0; h /= 2)                                                                           \
            for (int l = 0; l < h; l++) lanes[l] = lanes[l + h] > lanes[l] ? lanes[l + h] : lanes[l];                \
        const float maximum = lanes[0];                                                                              \
        VF total = (VF){};                                                                                           \
        for (int j = 0; j < kp; j += W) {                                                                            \
            VI kept = *(const VF *)(keep + j) != 0;                                                                  \
            VF e = (VF)((VI)exp_##VF(*(VF *)(s + j) - maximum) & kept);                                              \
            *(VF *)(s + j) = e;                                                                                      \
            total += e;                                                                                              \
        }                                                                                                            \
        memcpy(lanes, &total, sizeof(VF));                                                                           \
        for (int h = W / 2; h > 0; h /= 2)                                                                           \
            for (int l = 0; l < h; l++) lanes[l] += lanes[l + h];                                                    \
        return 1 / lanes[0];                                                                                         \
    }                                                                                                                \
                                                                                                                     \
    /* rows (count, d), `ld` apart → out (count, dp), rows dp apart, zero past d. */                                 \
    __attribute__((target(TARGET))) static void pack_##W(const float *rows, long ld, int count, int d, float *out,   \
                                                        int dp) {                                                    \
        for (int j = 0; j < count; j++) {                                                                            \
            const float *from = rows + j * ld;                                                                       \
            float *to = out + (long)j * dp;                                                                          \
            int c = 0;                                                                                               \
            for (; c + W <= d; c += W) memcpy(to + c, from + c, sizeof(VF));                                         \
            for (; c < d; c++) to[c] = from[c];                                                                      \
            for (; c < dp; c++) to[c] = 0;                                                                           \
        }                                                                                                            \
    }                                                                                                                \
                                                                                                                     \
    __attribute__((target(TARGET))) static void attend_##W(const float *q, const float *k, const float *v, long ld,  \
                                                          int rows, int keys, int d, float scale, const float *keep, \
                                                          float *out, long ldo, int block, float *work) {            \
        const int kp = ROUND_UP(keys, W), dp = ROUND_UP(d, W);                                                       \
        float *kt = work, *kc = kt + ROUND_UP((size_t)d * kp, 16), *vp = kc + ROUND_UP((size_t)keys * dp, 16);       \
        float *kept = vp + ROUND_UP((size_t)keys * dp, 16);                                                          \
        float *scores = kept + ROUND_UP(kp, 16), *inverse = scores + ROUND_UP((size_t)block * kp, 16);               \
        /* K and V copied to rows dp apart, zero padded: in the (rows, 3H) activations their rows are 3H floats apart\
           (12 KB at the 345M size), so they all fall in the same few L1 sets and evict each other. */               \
        pack_##W(k, ld, keys, d, kc, dp);                                                                            \
        pack_##W(v, ld, keys, d, vp, dp);                                                                            \
        /* Kᵀ (d, kp), zero padded, W keys at a time: one gather per row of Kᵀ. */                                   \
        memset(kt, 0, sizeof(float) * (size_t)d * kp);                                                               \
        VI across;                                                                                                   \
        for (int l = 0; l < W; l++) across[l] = l * dp;                                                              \
        int j0 = 0;                                                                                                  \
        for (; j0 + W <= keys; j0 += W)                                                                              \
            for (int i = 0; i < d; i++) *(VF *)(kt + (long)i * kp + j0) = GATHER(kc + (long)j0 * dp + i, across);    \
        for (; j0 < keys; j0++)                                                                                      \
            for (int i = 0; i < d; i++) kt[(long)i * kp + j0] = kc[(long)j0 * dp + i];                               \
        float count = 0;                                                                                             \
        for (int j = 0; j < kp; j++) {                                                                               \
            kept[j] = j < keys ? keep[j] : 0;                                                                        \
            count += kept[j] != 0;                                                                                   \
        }                                                                                                            \
        for (int first = 0; first < rows; first += block) {                                                          \
            const int m = rows - first < block ? rows - first : block;                                               \
            const float *qb = q + first * ld;                                                                        \
            int r = 0;                                                                                               \
            for (; r + SR <= m; r += SR) {                                                                           \
                int c = 0;                                                                                           \
                for (; c + SC * W <= kp; c += SC * W)                                                                \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, SR, SC);        \
                for (; c + 2 * W <= kp; c += 2 * W) /* 32 keys on AVX-512: two vectors, not one */                   \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, SR, 2);         \
                for (; c < kp; c += W)                                                                               \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, SR, 1);         \
            }                                                                                                        \
            for (; r < m; r++) {                                                                                     \
                int c = 0;                                                                                           \
                for (; c + SC * W <= kp; c += SC * W)                                                                \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, 1, SC);         \
                for (; c + 2 * W <= kp; c += 2 * W) /* 32 keys on AVX-512: two vectors, not one */                   \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, 1, 2);          \
                for (; c < kp; c += W)                                                                               \
                    scores_##W(qb + r * ld, ld, d, kt + c, kp, scores + (long)r * kp + c, kp, scale, 1, 1);          \
            }                                                                                                        \
            for (r = 0; r < m; r++) {                                                                                \
                float *row = scores + (long)r * kp;                                                                  \
                if (count == 0) { /* uniform attention, as an additive minimum-value mask gives */                   \
                    for (int j = 0; j < kp; j++) row[j] = j < keys ? 1 : 0;                                          \
                    inverse[r] = 1 / (float)keys;                                                                    \
                } else {                                                                                             \
                    inverse[r] = numerators_##W(row, kept, kp);                                                      \
                }                                                                                                    \
            }                                                                                                        \
            float *ob = out + first * ldo;                                                                           \
            for (r = 0; r + PR <= m; r += PR) {                                                                      \
                int c = 0;                                                                                           \
                for (; c + PC * W <= dp; c += PC * W)                                                                \
                    context_##W(scores + (long)r * kp, kp, keys, vp + c, dp, inverse + r,                       \
                                ob + r * ldo + c, ldo, d - c, PR, PC);                                               \
                for (; c < dp; c += W)                                                                               \
                    context_##W(scores + (long)r * kp, kp, keys, vp + c, dp, inverse + r,                       \
                                ob + r * ldo + c, ldo, d - c, PR, 1);                                                \
            }                                                                                                        \
            for (; r < m; r++) {                                                                                     \
                int c = 0;                                                                                           \
                for (; c + PC * W <= dp; c += PC * W)                                                                \
                    context_##W(scores + (long)r * kp, kp, keys, vp + c, dp, inverse + r,                       \
                                ob + r * ldo + c, ldo, d - c, 1, PC);                                                \
                for (; c < dp; c += W)                                                                               \
                    context_##W(scores + (long)r * kp, kp, keys, vp + c, dp, inverse + r,                       \
                                ob + r * ldo + c, ldo, d - c, 1, 1);                                                 \
            }                                                                                                        \
        }                                                                                                            \
    }

/* AVX-512: 32 registers, tiles of 4 rows × 4 vectors (64 keys, or the 345M model's 64 columns) in both products.
   AVX2: 16 registers, tiles of 4 rows × 2 vectors. */
#define GATHER_16(base, index) (v16f)_mm512_i32gather_ps((__m512i)(index), (base), 4)
#define GATHER_8(base, index) (v8f)_mm256_i32gather_ps((base), (__m256i)(index), 4)
DEFINE_KERNELS(16, v16f, v16i, "avx512f", GATHER_16, 4, 4, 4, 4)
DEFINE_KERNELS(8, v8f, v8i, "avx2,fma", GATHER_8, 4, 2, 4, 2)

void mb_attention_f32(const float *q, const float *k, const float *v, long ld, int rows, int keys, int d, float scale,
                      const float *keep, float *out, long ldo, int block, int width, float *work) {
    if (rows < 1 || keys < 1 || d < 1) return;
    if (block < 1 || block > rows) block = rows;
    if (width == 16) attend_16(q, k, v, ld, rows, keys, d, scale, keep, out, ldo, block, work);
    else if (width == 8) attend_8(q, k, v, ld, rows, keys, d, scale, keep, out, ldo, block, work);
}

#else

int mb_attention_width(void) { return 0; }

void mb_attention_f32(const float *q, const float *k, const float *v, long ld, int rows, int keys, int d, float scale,
                      const float *keep, float *out, long ldo, int block, int width, float *work) {
    (void)q; (void)k; (void)v; (void)ld; (void)rows; (void)keys; (void)d; (void)scale; (void)keep; (void)out;
    (void)ldo; (void)block; (void)width; (void)work;
}

#endif
