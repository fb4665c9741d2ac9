#ifndef MEGATRON_VECTOR_MATH_H
#define MEGATRON_VECTOR_MATH_H

/* e^x for every lane of a compiler vector type, as VectorMath.exp (Swift) computes it: x clamped to [−87.3, 88.3] (so
   2^n stays finite), x = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts), a degree-7 Taylor polynomial in r, and 2^n
   built in the exponent bits; ≤ 2e-7 relative. MB_DEFINE_VECTOR_EXP(NAME, VF, VI, DECLARATION) defines
   `DECLARATION VF NAME(VF x)` for a float vector type VF and the int32 vector VI of its width (one lane works too).
   Whether a·b + c fuses is the including file's choice (its FP_CONTRACT): without fusing, every width gives the floats
   of the Swift code. */
#define MB_DEFINE_VECTOR_EXP(NAME, VF, VI, DECLARATION)                                                              \
    DECLARATION VF NAME(VF x) {                                                                                      \
        VI low = x < -87.3f, high = x > 88.3f;                                                                       \
        x = (VF)(((VI)x & ~(low | high)) | ((VI)((VF){} - 87.3f) & low) | ((VI)((VF){} + 88.3f) & high));            \
        /* x·log2(e) + 1.5·2^23 holds round(x·log2(e)) in its low mantissa bits. */                                  \
        VF shifted = x * 1.442695040888963f + 12582912.0f;                                                           \
        VF n = shifted - 12582912.0f;                                                                                \
        VF r = x - n * 0.693145751953125f;                                                                           \
        r = r - n * 1.428606765330187e-06f;                                                                          \
        VF p = (VF){} + 1.0f / 5040;                                                                                 \
        p = p * r + 1.0f / 720;                                                                                      \
        p = p * r + 1.0f / 120;                                                                                      \
        p = p * r + 1.0f / 24;                                                                                       \
        p = p * r + 1.0f / 6;                                                                                        \
        p = p * r + 0.5f;                                                                                            \
        p = p * r + 1;                                                                                               \
        p = p * r + 1;                                                                                               \
        return p * (VF)((((VI)shifted - 0x4B400000) + 127) << 23); /* 0x4B400000: 1.5·2^23's bits */                 \
    }

/* erf(x) for every lane as VectorMath.erf computes it: Abramowitz & Stegun 7.1.26 (≤ 5e-7 absolute), 1 − (a₁t + … +
   a₅t⁵)·e^{−x²} with t = 1/(1 + p|x|), the sign of x put back. MB_DEFINE_VECTOR_ERF(NAME, EXP, VF, VI, DECLARATION)
   defines `DECLARATION VF NAME(VF x)`; EXP is an MB_DEFINE_VECTOR_EXP function of the same types. */
#define MB_DEFINE_VECTOR_ERF(NAME, EXP, VF, VI, DECLARATION)                                                         \
    DECLARATION VF NAME(VF x) {                                                                                      \
        const VI sign = (VI){} + (int)0x80000000;                                                                    \
        VI negative = x < 0;                                                                                         \
        VF a = (VF)((VI)x & ~sign);                                                                                  \
        VF t = 1.0f / (1.0f + 0.3275911f * a);                                                                       \
        VF p = (VF){} + 1.061405429f;                                                                                \
        p = p * t - 1.453152027f;                                                                                    \
        p = p * t + 1.421413741f;                                                                                    \
        p = p * t - 0.284496736f;                                                                                    \
        p = p * t + 0.254829592f;                                                                                    \
        p = p * t;                                                                                                   \
        VF y = 1 - p * EXP(-(a * a));                                                                                \
        return (VF)((VI)y ^ (negative & sign));                                                                      \
    }

#endif
