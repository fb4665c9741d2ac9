/* The exported kernels: each template instantiated for its element types under the names CUDAKernelSource.kernelNames
   lists (suffixes _f32, _f16, _bf16; two suffixes are input then output). */
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
