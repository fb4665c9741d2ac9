#ifndef MEGATRON_ATTENTION_H
#define MEGATRON_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

/// The vector width (floats) of the attention kernel this CPU runs: 16 (AVX-512), 8 (AVX2 + FMA), or 0 when it has
/// neither (then the caller attends with BLAS). Checked at run time: the library is built for any x86-64.
int mb_attention_width(void);

/// Floats of `work` that mb_attention_f32 needs for these sizes at vector width `width`.
size_t mb_attention_work_floats(int rows, int keys, int d, int block, int width);

/// One head of one sequence, softmax(scale · Q Kᵀ over the kept keys) V, with its scores kept in the core's cache:
/// q (rows, d), k and v (keys, d), each row `ld` floats apart; keep (keys) of 0/1 (the largest score and the sum run
/// over kept keys only, dropped keys weigh 0; with no key kept every key weighs 1/keys, as an additive minimum-value
/// mask gives); out (rows, d), rows `ldo` floats apart. Query rows go `block` at a time; every row's arithmetic
/// (order of every sum included) depends only on its own query, the keys and `width`, never on the other rows or
/// the block, so packed and padded batches agree bit for bit. `work`: mb_attention_work_floats(...) floats, 64-byte
/// aligned. Requires 0 < width == mb_attention_width() or a narrower width the CPU also runs (8 on an AVX-512 CPU).
void mb_attention_f32(const float *q, const float *k, const float *v, long ld, int rows, int keys, int d, float scale,
                      const float *keep, float *out, long ldo, int block, int width, float *work);

#endif
