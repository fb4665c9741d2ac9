/* The CUDA backend's kernels but fused attention, compiled by NVRTC at first use together with fused_attention_mma.cuh,
   fused_attention.cu and exports.cu, in that order (CUDAKernelSource.source). No CUDA headers: FP16 and BF16 are
   converted with PTX `cvt` and bit arithmetic, so the source compiles for every architecture from sm_70 on.
   Every kernel computes in FP32 and reads and writes its tensors in their element type: float, f16 or bf16.
   Shapes: rows of activations are (N, D) row-major; heads are split to (B, heads, S, dh). */
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
