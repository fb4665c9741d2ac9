/// The backend's kernels in CUDA C, compiled by NVRTC at first use (no CUDA headers: FP16 and BF16 are converted
/// with PTX `cvt` and bit arithmetic, so the source compiles for every architecture from sm_70 on).
///
/// Every kernel computes in FP32 and reads and writes its tensors in their element type: `float`, `f16` or `bf16`
/// (the suffixes `_f32`, `_f16`, `_bf16` of the exported names; two suffixes are input then output).
/// Shapes: rows of activations are (N, D) row-major; heads are split to (B, heads, S, dh).
enum CUDAKernelSource {
    /// The element types a kernel is instantiated for, by name suffix.
    static let elements = ["f32", "f16", "bf16"]

    /// Head sizes the fused attention kernel is instantiated for (multiples of 16, the tensor-core step).
    static let fusedHeadSizes = [16, 32, 64, 128]

    /// The fused attention kernel for element `t` ("f16" or "bf16") and head size `headSize`.
    static func fusedAttentionName(_ t: String, headSize: Int) -> String { "attention_fused_\(t)_\(headSize)" }

    /// Every exported kernel name (what `CUDAKernels` loads; the NVRTC test compiles and checks them all).
    static var kernelNames: [String] {
        var names: [String] = []
        for t in elements {
            names += ["embed_\(t)", "activate_\(t)", "activate16_\(t)", "split_heads_\(t)", "merge_heads_\(t)", "gather_rows_\(t)", "softmax_\(t)",
                      "add_bias_\(t)"]
            for u in elements {
                names += ["layer_norm_\(t)_\(u)", "convert_\(t)_\(u)"]
            }
        }
        for t in ["f16", "bf16"] {
            for d in fusedHeadSizes { names.append(fusedAttentionName(t, headSize: d)) }
        }
        return names + ["split_heads_16B", "merge_heads_16B", "pool_segments"]
    }

    static let source = #"""
typedef unsigned short u16;
struct f16 { u16 bits; };
struct bf16 { u16 bits; };
typedef float f32;

__device__ __forceinline__ float load(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float load(const f16* p, long i) {
    float v; asm("cvt.f32.f16 %0, %1;" : "=f"(v) : "h"(p[i].bits)); return v;
}
__device__ __forceinline__ float load(const bf16* p, long i) { return __uint_as_float(((unsigned)p[i].bits) << 16); }
__device__ __forceinline__ void store(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(f16* p, long i, float v) {
    u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); p[i].bits = h;
}
/* Round to nearest even, NaN kept quiet: what torch and the CPU backend do. */
__device__ __forceinline__ u16 bf16_bits(float v) {
    unsigned u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}
__device__ __forceinline__ void store(bf16* p, long i, float v) { p[i].bits = bf16_bits(v); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* out (N, H) FP32 = word[ids] + position[positions] + token_type[types]; one block per row. `tokens` (3N) holds the
   N ids, then the N types, then the N positions (one upload; packed sequences restart their positions at 0). */
template <typename T>
__device__ void embed(const int* tokens, const T* word, const T* position, const T* tokenType, float* out, int N,
                      int H) {
    long row = blockIdx.x;
    long w = (long)tokens[row] * H, t = (long)tokens[N + row] * H, p = (long)tokens[2L * N + row] * H;
    for (int j = threadIdx.x; j < H; j += blockDim.x)
        out[row * H + j] = load(word, w + j) + load(position, p + j) + load(tokenType, t + j);
}

/* out = LayerNorm(x + residual) over rows of D; residual may be null; out may be x. One warp per row (the row
   stays in L1 between the passes); the mean, then the mean square of the deviations (two passes, as the CPU). */
template <typename TI, typename TO>
__device__ void layer_norm(const TI* x, const float* residual, const float* gamma, const float* beta, TO* out,
                           int D, float eps, long rows) {
    long row = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    long base = row * D;
    if (D <= 1024) {  /* the row read once, into registers (32 values per lane) */
        float v[32];
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 32; i++) {
            int j = lane + i * 32;
            v[i] = j < D ? load(x, base + j) + (residual ? residual[base + j] : 0.0f) : 0.0f;
            s += v[i];
        }
        float mean = warp_sum(s) / D;
        float q = 0.0f;
#pragma unroll
        for (int i = 0; i < 32; i++) {
            float d = lane + i * 32 < D ? v[i] - mean : 0.0f;
            q += d * d;
        }
        float inv = rsqrtf(warp_sum(q) / D + eps);
#pragma unroll
        for (int i = 0; i < 32; i++) {
            int j = lane + i * 32;
            if (j < D) store(out, base + j, (v[i] - mean) * inv * gamma[j] + beta[j]);
        }
        return;
    }
    float s = 0.0f;
    for (int j = lane; j < D; j += 32) s += load(x, base + j) + (residual ? residual[base + j] : 0.0f);
    float mean = warp_sum(s) / D;
    float q = 0.0f;
    for (int j = lane; j < D; j += 32) {
        float d = load(x, base + j) + (residual ? residual[base + j] : 0.0f) - mean;
        q += d * d;
    }
    float inv = rsqrtf(warp_sum(q) / D + eps);
    for (int j = lane; j < D; j += 32) {
        float v = load(x, base + j) + (residual ? residual[base + j] : 0.0f);
        store(out, base + j, (v - mean) * inv * gamma[j] + beta[j]);
    }
}

/* act: 0 exact erf GELU, 1 tanh GELU, 2 relu, 3 tanh. */
__device__ __forceinline__ float activation(float v, int act) {
    if (act == 0) return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    if (act == 1) return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    if (act == 2) return v > 0.0f ? v : 0.0f;
    return tanhf(v);
}

/* x = act(x) in place, one element per step. */
template <typename T>
__device__ void activate(T* x, long n, int act) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        store(x, i, activation(load(x, i), act));
}

/* x = act(x) in place, 16 bytes (8 halves or 4 floats) per step: `units` 16-byte units, x 16-byte aligned. */
template <typename T>
__device__ void activate16(T* x, long units, int act) {
    uint4* p = (uint4*)x;
    const int per = 16 / sizeof(T);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < units; i += (long)gridDim.x * blockDim.x) {
        uint4 u = p[i];
        T* e = (T*)&u;
#pragma unroll
        for (int j = 0; j < per; j++) store(e, j, activation(load(e, j), act));
        p[i] = u;
    }
}

/* y (N, M) += bias (M), for products whose cuBLASLt epilogue was not available. */
template <typename T>
__device__ void add_bias(T* y, const float* bias, long n, int M) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        store(y, i, load(y, i) + bias[i % M]);
}

template <typename TI, typename TO>
__device__ void convert(const TI* x, TO* y, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        store(y, i, load(x, i));
}

/* qkv (B*S, 3H) = q | k | v -> qh, kh, vh (B, heads, S, dh). */
template <typename T>
__device__ void split_heads(const T* qkv, T* qh, T* kh, T* vh, int B, int S, int H, int heads) {
    long n = (long)B * S * H;
    int dh = H / heads;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long row = i / H; int c = (int)(i % H);
        long b = row / S, s = row % S; int h = c / dh, d = c % dh;
        long o = ((b * heads + h) * S + s) * dh + d, src = row * 3 * H + c;
        qh[o] = qkv[src]; kh[o] = qkv[src + H]; vh[o] = qkv[src + 2 * H];
    }
}

/* ctx (B, heads, S, dh) -> out (B*S, H). */
template <typename T>
__device__ void merge_heads(const T* ctx, T* out, int B, int S, int H, int heads) {
    long n = (long)B * S * H;
    int dh = H / heads;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long row = i / H; int c = (int)(i % H);
        long b = row / S, s = row % S; int h = c / dh, d = c % dh;
        out[i] = ctx[((b * heads + h) * S + s) * dh + d];
    }
}

/* qkv (B*S, 3H) = q | k | v -> (B, heads, S, dh) each, moved in 16-byte units (a head's part of a row is `units` of
   them); one block per token row, blockIdx.y picks q, k or v. */
extern "C" __global__ void split_heads_16B(const uint4* qkv, uint4* qh, uint4* kh, uint4* vh, int S, int heads, int units) {
    uint4* dst = blockIdx.y == 0 ? qh : (blockIdx.y == 1 ? kh : vh);
    long row = blockIdx.x, b = row / S;
    int s = (int)(row % S), perRow = heads * units;
    const uint4* src = qkv + (row * 3 + blockIdx.y) * perRow;
    for (int u = threadIdx.x; u < perRow; u += blockDim.x) {
        int h = u / units, w = u % units;
        dst[((b * heads + h) * S + s) * units + w] = src[u];
    }
}

/* ctx (B, heads, S, dh) -> out (B*S, H) in 16-byte units; one block per token row. */
extern "C" __global__ void merge_heads_16B(const uint4* ctx, uint4* out, int S, int heads, int units) {
    long row = blockIdx.x, b = row / S;
    int s = (int)(row % S), perRow = heads * units;
    for (int u = threadIdx.x; u < perRow; u += blockDim.x) {
        int h = u / units, w = u % units;
        out[row * perRow + u] = ctx[((b * heads + h) * S + s) * units + w];
    }
}

/* out (n, D) = x[rows] (rows index x's (N, D) rows); one block per output row. */
template <typename T>
__device__ void gather_rows(const T* x, const int* rows, T* out, int D) {
    long src = (long)rows[blockIdx.x] * D, dst = (long)blockIdx.x * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) out[dst + j] = x[src + j];
}

/* out (B, D) FP32: row b pools x's (N, D) FP32 rows starts[b] ..< starts[b + 1] by `mode`: 0 their sum (in double),
   1 their maximum, 2 the first. Grid (ceil(D / 256), B); thread j of a block reads one column down the rows, so each
   row is read in coalesced 1 KB runs. */
extern "C" __global__ void pool_segments(const float* x, const int* starts, float* out, int D, int mode) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= D) return;
    long b = blockIdx.y, first = starts[b], end = starts[b + 1];
    float result = x[first * D + j];
    if (mode == 0) {
        double sum = 0;
        for (long t = first; t < end; t++) sum += (double)x[t * D + j];
        result = (float)sum;
    } else if (mode == 1) {
        for (long t = first + 1; t < end; t++) result = fmaxf(result, x[t * D + j]);
    }
    out[b * D + j] = result;
}

/* probs = softmax over keys of scores (already scaled), for `rows` rows (b, h, i) of S keys; keep (B, S) is 1 for
   real keys. Masked keys get 0; a row with no key kept attends uniformly (as an additive finfo.min mask gives).
   One warp per row; b counts from `firstSequence` (the chunk's offset in the batch). */
template <typename T>
__device__ void softmax(const float* scores, const float* keep, T* probs, int S, int heads, int firstSequence, long rows) {
    long row = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    long b = firstSequence + row / ((long)heads * S);
    const float* k = keep + b * S;
    const float* x = scores + row * S;
    // Measured on an H100: keeping the row in registers (32 values per lane) made this kernel 2.5x slower at
    // S = 128 and 1.8x at S = 512 than reading it again from L1.
    const float lowest = -3.402823466e38f;
    float m = lowest; int kept = 0;
    for (int j = lane; j < S; j += 32) if (k[j] != 0.0f) { m = fmaxf(m, x[j]); kept = 1; }
    m = warp_max(m);
    if (!__any_sync(0xffffffffu, kept)) {
        for (int j = lane; j < S; j += 32) store(probs, row * S + j, 1.0f / S);
        return;
    }
    float s = 0.0f;
    for (int j = lane; j < S; j += 32) if (k[j] != 0.0f) s += expf(x[j] - m);
    float inv = 1.0f / warp_sum(s);
    for (int j = lane; j < S; j += 32)
        store(probs, row * S + j, k[j] != 0.0f ? expf(x[j] - m) * inv : 0.0f);
}

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

template <typename T> __device__ __forceinline__ unsigned pack2(float lo, float hi);
template <> __device__ __forceinline__ unsigned pack2<f16>(float lo, float hi) {
    u16 a, b;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(a) : "f"(lo));
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(b) : "f"(hi));
    return (unsigned)a | ((unsigned)b << 16);
}
template <> __device__ __forceinline__ unsigned pack2<bf16>(float lo, float hi) {
    return (unsigned)bf16_bits(lo) | ((unsigned)bf16_bits(hi) << 16);
}

/* c (16x8 FP32) += a (16x16) b (16x8), T inputs (PTX names the type). */
template <typename T> __device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1);
#if __CUDA_ARCH__ >= 800
#define MMA16816(T, PTX) \
template <> __device__ __forceinline__ void mma16816<T>(float* c, const unsigned* a, unsigned b0, unsigned b1) { \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX "." PTX ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1)); \
}
#else  /* older GPUs never launch the fused kernel (the backend checks); it only has to compile */
#define MMA16816(T, PTX) \
template <> __device__ __forceinline__ void mma16816<T>(float* c, const unsigned* a, unsigned b0, unsigned b1) {}
#endif
MMA16816(f16, "f16")
MMA16816(bf16, "bf16")

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

#define FUSED(T, D) \
extern "C" __global__ void __launch_bounds__(128) attention_fused_##T##_##D(const T* q, const T* k, const T* v, T* out, int ld, int ldo, const int* starts, const float* keep, int S, float scale) { attention_fused<T, D>(q, k, v, out, ld, ldo, starts, keep, S, scale); }

#define ONE(T) \
extern "C" __global__ void embed_##T(const int* tokens, const T* w, const T* p, const T* t, float* out, int N, int H) { embed(tokens, w, p, t, out, N, H); } \
extern "C" __global__ void activate_##T(T* x, long n, int act) { activate(x, n, act); } \
extern "C" __global__ void activate16_##T(T* x, long units, int act) { activate16(x, units, act); } \
extern "C" __global__ void add_bias_##T(T* y, const float* bias, long n, int M) { add_bias(y, bias, n, M); } \
extern "C" __global__ void split_heads_##T(const T* qkv, T* qh, T* kh, T* vh, int B, int S, int H, int heads) { split_heads(qkv, qh, kh, vh, B, S, H, heads); } \
extern "C" __global__ void merge_heads_##T(const T* c, T* out, int B, int S, int H, int heads) { merge_heads(c, out, B, S, H, heads); } \
extern "C" __global__ void gather_rows_##T(const T* x, const int* rows, T* out, int D) { gather_rows(x, rows, out, D); } \
extern "C" __global__ void softmax_##T(const float* scores, const float* keep, T* probs, int S, int heads, int first, long rows) { softmax(scores, keep, probs, S, heads, first, rows); }
#define TWO(TI, TO) \
extern "C" __global__ void layer_norm_##TI##_##TO(const TI* x, const float* r, const float* g, const float* b, TO* out, int D, float eps, long rows) { layer_norm(x, r, g, b, out, D, eps, rows); } \
extern "C" __global__ void convert_##TI##_##TO(const TI* x, TO* y, long n) { convert(x, y, n); }

ONE(f32) ONE(f16) ONE(bf16)
TWO(f32, f32) TWO(f32, f16) TWO(f32, bf16)
TWO(f16, f32) TWO(f16, f16) TWO(f16, bf16)
TWO(bf16, f32) TWO(bf16, f16) TWO(bf16, bf16)
FUSED(f16, 16) FUSED(f16, 32) FUSED(f16, 64) FUSED(f16, 128)
FUSED(bf16, 16) FUSED(bf16, 32) FUSED(bf16, 64) FUSED(bf16, 128)
"""#
}
