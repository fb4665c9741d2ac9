#ifndef MEGATRON_PACKED_BF16_H
#define MEGATRON_PACKED_BF16_H

#include <stdint.h>

/// Widens BF16 weights packed in oneDNN's BA16a64b2a layout into FP32 in its BA16a64b layout, exactly (a BF16 is the
/// top half of an FP32): `blocks` tiles of 16 K-rows × 64 columns, one after another in both layouts (the order is
/// the packed matrix's own: every K tile of a 64-column block, then the next block; BA16a64b2a's tiles of 32 K-rows
/// are two such tiles back to back). Inside a tile the BF16 layout keeps each column's pairs of K-rows together
/// (k even, k odd), the FP32 one row after row.
/// With `vectors` non-zero, AVX-512 where the CPU has it (checked at run time); plain C otherwise. Both give the
/// same floats.
void mb_widen_bf16_tiles(int vectors, const uint16_t *bf16, long blocks, float *fp32);

/// Whether `mb_widen_bf16_tiles` runs AVX-512 on this CPU.
int mb_widen_bf16_has_avx512(void);

/// Rounds `count` FP32 values to BF16 (to nearest even, as PyTorch's conversion; a NaN stays a quiet NaN): out[i] is
/// the top half of x[i] rounded. AVX-512 where the CPU has it (checked at run time); the same bits otherwise.
void mb_round_bf16(const float *x, long count, uint16_t *out);

/// Rounds a (rows, columns) block of FP32 (element (r, c) at a[r · lda + c]) to BF16 (to nearest even; a NaN stays a
/// quiet NaN) and writes it transposed: out[c · ldo + r]. Training's weight-gradient product dyᵀ·x reads dy (tokens,
/// features) this way, so that oneDNN multiplies a plain (features, tokens) operand with its fast BF16 kernels instead
/// of a strided one. AVX-512 in 16 × 16 tiles where the CPU has it (checked at run time); the same bits otherwise.
void mb_round_bf16_transposed(const float *a, long rows, long columns, long lda, uint16_t *out, long ldo);

#endif
