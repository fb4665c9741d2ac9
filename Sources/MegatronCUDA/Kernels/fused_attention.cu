/* ---- Fused attention: softmax(Q K^T * scale) V on tensor cores (FP16 / BF16, sm_80+), flash-attention style ----
   The scores never leave the registers: each warp takes 16 query rows, the block 64 (FA_ROWS); keys and values
   come through shared memory 64 rows (FA_KEYS) at a time, with an online softmax (running maximum and sum per row,
   the partial output rescaled when the maximum grows). Products are mma.sync m16n8k16 with FP32 accumulation; the
   probabilities enter the second product rounded to T, as the unfused path's do.

   Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), lane = 4g + t:
     A (16x16, row-major): reg0 (row g, cols 2t, 2t+1), reg1 (row g+8, same), reg2 (row g, cols 2t+8, 2t+9),
                           reg3 (row g+8, same); the lower column in the lower 16 bits.
     B (16x8, k x n):      reg0 (k 2t, 2t+1; n g), reg1 (k 2t+8, 2t+9; n g).
     C (16x8, FP32):       c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, same).

   Tensors: q, k, v rows of `ld` elements, out rows of `ldo`; head h is columns h*D ..< (h+1)*D of each. Sequence z
   (blockIdx.z) is rows starts[z] ..< starts[z+1] when `starts` is given (packed, no padding: every key real), else
   rows z*S ..< z*S + S with keep[z*S + j] == 0 for padding keys (queries are not masked; a sequence with no key kept
   attends uniformly over all S, as an additive finfo.min mask gives). Grid (ceil(longest / 64), heads, sequences),
   128 threads. Needs ld, ldo and D multiples of 8 and 16-byte aligned rows. */
#define FA_ROWS 64
#define FA_KEYS 64

template <typename T, int D>
__device__ void attention_fused(const T* q, const T* k, const T* v, T* out, int ld, int ldo, const int* starts,
                                const float* keep, int S, float scale) {
    constexpr int LDS = D + 8;  /* shared row stride (elements): the fragment reads below hit 32 distinct banks */
    __shared__ __align__(16) u16 ks[FA_KEYS * LDS];
    __shared__ __align__(16) u16 vs[FA_KEYS * LDS];
    const float lowest = __int_as_float(0xff800000);  /* -inf */
    const int z = blockIdx.z;
    const long start = starts ? (long)starts[z] : (long)z * S;
    const int len = starts ? starts[z + 1] - starts[z] : S;
    const int q0 = blockIdx.x * FA_ROWS;
    if (q0 >= len) return;  /* the whole block: no barrier yet */
    const float* keepRow = starts ? nullptr : (keep ? keep + (long)z * S : nullptr);
    int anyKept = 1;
    if (keepRow) {
        int mine = 0;
        for (int j = threadIdx.x; j < len; j += blockDim.x) mine |= keepRow[j] != 0.0f;
        anyKept = __syncthreads_or(mine);
    }
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int r0 = q0 + warp * 16 + g, r1 = r0 + 8;  /* this lane's two query rows (in the sequence) */
    const long col = (long)blockIdx.y * D;
    const u16* qb = (const u16*)q;
    const u16* kb = (const u16*)k;
    const u16* vb = (const u16*)v;

    unsigned qf[D / 16][4];  /* Q (16 rows x D) as A fragments, D/16 of them */
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const int c = kk * 16 + 2 * t;
        const u16* row0 = qb + (start + r0) * ld + col + c;
        const u16* row1 = qb + (start + r1) * ld + col + c;
        qf[kk][0] = r0 < len ? *(const unsigned*)row0 : 0u;
        qf[kk][1] = r1 < len ? *(const unsigned*)row1 : 0u;
        qf[kk][2] = r0 < len ? *(const unsigned*)(row0 + 8) : 0u;
        qf[kk][3] = r1 < len ? *(const unsigned*)(row1 + 8) : 0u;
    }
    float o[D / 8][4];  /* the output rows (16 x D) as D/8 accumulator tiles */
#pragma unroll
    for (int nd = 0; nd < D / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m[2] = {lowest, lowest}, l[2] = {0.0f, 0.0f};  /* rows g, g+8: running maximum (log2 units) and sum */
    const float scaleLog2 = scale * 1.4426950408889634f;

    for (int kt = 0; kt < len; kt += FA_KEYS) {
        __syncthreads();  /* every warp is done with the previous tile */
        for (int u = threadIdx.x; u < FA_KEYS * (D / 8); u += blockDim.x) {
            const int row = u / (D / 8), part = u % (D / 8);
            uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = kv;
            if (kt + row < len) {
                const long offset = (start + kt + row) * ld + col + part * 8;
                kv = *(const uint4*)(kb + offset);
                vv = *(const uint4*)(vb + offset);
            }
            *(uint4*)(ks + row * LDS + part * 8) = kv;
            *(uint4*)(vs + row * LDS + part * 8) = vv;
        }
        __syncthreads();

        float s[FA_KEYS / 8][4];  /* scores (16 rows x 64 keys) */
#pragma unroll
        for (int nt = 0; nt < FA_KEYS / 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const u16* kr = ks + (nt * 8 + g) * LDS + kk * 16 + 2 * t;
                mma16816<T>(s[nt], qf[kk], *(const unsigned*)kr, *(const unsigned*)(kr + 8));
            }
        }
        float mx[2] = {lowest, lowest};
#pragma unroll
        for (int nt = 0; nt < FA_KEYS / 8; nt++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int key = kt + nt * 8 + 2 * t + (i & 1);
                const bool valid = key < len && (!keepRow || !anyKept || keepRow[key] != 0.0f);
                const float x = valid ? (anyKept ? s[nt][i] * scaleLog2 : 0.0f) : lowest;
                s[nt][i] = x;
                mx[i >> 1] = fmaxf(mx[i >> 1], x);
            }
        }
        float base[2], alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float next = fmaxf(m[r], mx[r]);
            base[r] = next == lowest ? 0.0f : next;  /* no key yet: exp2(-inf - 0) = 0, never -inf - -inf */
            alpha[r] = exp2f(m[r] - base[r]);
            m[r] = next;
        }
#pragma unroll
        for (int nt = 0; nt < FA_KEYS / 8; nt++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float p = exp2f(s[nt][i] - base[i >> 1]);
                s[nt][i] = p;
                sum[i >> 1] += p;
            }
        }
#pragma unroll
        for (int r = 0; r < 2; r++) l[r] = l[r] * alpha[r] + sum[r];
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++) {
            o[nd][0] *= alpha[0]; o[nd][1] *= alpha[0];
            o[nd][2] *= alpha[1]; o[nd][3] *= alpha[1];
        }
        /* O += P V, 16 keys per step: P's A fragment is the score tiles 2j and 2j+1; V's B fragment pairs two rows. */
#pragma unroll
        for (int j = 0; j < FA_KEYS / 16; j++) {
            const unsigned a[4] = {pack2<T>(s[2 * j][0], s[2 * j][1]), pack2<T>(s[2 * j][2], s[2 * j][3]),
                                   pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]), pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
            for (int nd = 0; nd < D / 8; nd++) {
                const u16* vr = vs + (j * 16 + 2 * t) * LDS + nd * 8 + g;
                const unsigned b0 = (unsigned)vr[0] | ((unsigned)vr[LDS] << 16);
                const unsigned b1 = (unsigned)vr[8 * LDS] | ((unsigned)vr[9 * LDS] << 16);
                mma16816<T>(o[nd], a, b0, b1);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    const float inv0 = 1.0f / l[0], inv1 = 1.0f / l[1];
    u16* ob = (u16*)out;
#pragma unroll
    for (int nd = 0; nd < D / 8; nd++) {
        const int c = nd * 8 + 2 * t;
        if (r0 < len) *(unsigned*)(ob + (start + r0) * ldo + col + c) = pack2<T>(o[nd][0] * inv0, o[nd][1] * inv0);
        if (r1 < len) *(unsigned*)(ob + (start + r1) * ldo + col + c) = pack2<T>(o[nd][2] * inv1, o[nd][3] * inv1);
    }
}
