/* Runs the CUDA backend's fused attention kernel on the CPU: every CUDA thread of a block is a host thread, and
 * __syncthreads, warp shuffles and mma.sync m16n8k16 are emulated, the last from the PTX ISA's fragment layouts
 * ("Matrix Fragments for mma.m16n8k16 with floating point type"). The kernel's own file is compiled here
 * (Sources/MegatronCUDA/Kernels/fused_attention.cu, the one NVRTC compiles, copied to fused_attention_kernel.inc
 * by scripts/check_fused_attention.py), so its indexing, masking, online softmax and
 * barriers are checked against attention computed in double, without a GPU. What it cannot check: the real
 * hardware's timing, and that the GPU's fragment layout is what the PTX ISA says.
 *
 *     python3 scripts/check_fused_attention.py      # builds this file with the kernel, runs every case
 */
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

typedef unsigned short u16;
struct f16 { u16 bits; };
struct bf16 { u16 bits; };

struct Dim3 { int x = 0, y = 0, z = 0; };
static thread_local Dim3 threadIdx;
static Dim3 blockIdx, blockDim, gridDim;

#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct uint4 { unsigned x, y, z, w; };
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
static inline float __int_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }

/* One block of 128 threads: a barrier for the block and one per warp, and per-warp exchange slots. */
static const int kThreads = 128;
static std::barrier<> *blockBarrier;
static std::barrier<> *warpBarrier[kThreads / 32];
static float shuffleSlot[kThreads];
static int orSlot;
static struct { unsigned a[32][4], b[32][2]; float c[32][4]; } mmaSlot[kThreads / 32];

static void __syncthreads() { blockBarrier->arrive_and_wait(); }
static int __syncthreads_or(int v) {
    blockBarrier->arrive_and_wait();
    if (threadIdx.x == 0) orSlot = 0;
    blockBarrier->arrive_and_wait();
    if (v) __atomic_fetch_or(&orSlot, 1, __ATOMIC_SEQ_CST);
    blockBarrier->arrive_and_wait();
    int r = orSlot;
    blockBarrier->arrive_and_wait();
    return r;
}
static float __shfl_xor_sync(unsigned, float v, int mask) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    shuffleSlot[threadIdx.x] = v;
    warpBarrier[warp]->arrive_and_wait();
    float r = shuffleSlot[warp * 32 + (lane ^ mask)];
    warpBarrier[warp]->arrive_and_wait();
    return r;
}

static float halfToFloat(u16 h) { _Float16 x; std::memcpy(&x, &h, 2); return (float)x; }
static u16 floatToHalf(float f) { _Float16 x = (_Float16)f; u16 h; std::memcpy(&h, &x, 2); return h; }
static float bf16ToFloat(u16 h) { return __int_as_float((unsigned)h << 16); }
static u16 bf16_bits(float v) {
    unsigned u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

template <typename T> unsigned pack2(float lo, float hi);
template <> unsigned pack2<f16>(float lo, float hi) { return floatToHalf(lo) | ((unsigned)floatToHalf(hi) << 16); }
template <> unsigned pack2<bf16>(float lo, float hi) { return bf16_bits(lo) | ((unsigned)bf16_bits(hi) << 16); }
template <typename T> float widen(u16 h);
template <> float widen<f16>(u16 h) { return halfToFloat(h); }
template <> float widen<bf16>(u16 h) { return bf16ToFloat(h); }

/* mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: every lane posts its fragments, then computes its own four
   results from the whole warp's A (16x16) and B (16x8), placed by the PTX ISA's formulas. */
template <typename T> void mma16816(float *c, const unsigned *a, unsigned b0, unsigned b1) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    auto &slot = mmaSlot[warp];
    for (int i = 0; i < 4; i++) slot.a[lane][i] = a[i];
    slot.b[lane][0] = b0;
    slot.b[lane][1] = b1;
    warpBarrier[warp]->arrive_and_wait();
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, t = l & 3;
        for (int i = 0; i < 8; i++) {  /* a0..a7: register i/2, half i%2 */
            u16 h = (u16)(slot.a[l][i / 2] >> (16 * (i & 1)));
            int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = widen<T>(h);
        }
        for (int i = 0; i < 4; i++) {  /* b0..b3 */
            u16 h = (u16)(slot.b[l][i / 2] >> (16 * (i & 1)));
            int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][g] = widen<T>(h);
        }
    }
    int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++) {
        int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
        double s = c[i];
        for (int k = 0; k < 16; k++) s += (double)A[row][k] * B[k][col];
        c[i] = (float)s;
    }
    warpBarrier[warp]->arrive_and_wait();
}

#include "fused_attention_kernel.inc"

/* ---- the harness ---- */

struct Case {
    const char *name;
    int heads, D;
    std::vector<int> lengths;  /* packed when `packed`, else every sequence S = lengths[0] long, masked by keep */
    bool packed;
    std::vector<std::vector<int>> keep;  /* padded only: 1 = key kept */
    int ldFactor;  /* q, k, v rows are ldFactor * H wide (3: one fused QKV product's output) */
};

template <typename T>
static double runCase(const Case &c, std::mt19937 &rng) {
    int H = c.heads * c.D, ld = c.ldFactor * H, ldo = H;
    int B = (int)c.lengths.size();
    std::vector<int> starts(B + 1, 0);
    int S = c.packed ? 0 : c.lengths[0];
    for (int z = 0; z < B; z++) starts[z + 1] = starts[z] + (c.packed ? c.lengths[z] : S);
    int N = starts[B];
    std::normal_distribution<float> normal(0.0f, 1.0f);
    /* q, k, v as the columns 0, H, 2H of one (N, ld) buffer when ldFactor is 3, else three buffers */
    std::vector<u16> qkv((size_t)N * ld * (c.ldFactor == 3 ? 1 : 3));
    for (auto &e : qkv) e = std::is_same<T, f16>::value ? floatToHalf(normal(rng) * 1.5f) : bf16_bits(normal(rng) * 1.5f);
    const u16 *q = qkv.data(), *k, *v;
    if (c.ldFactor == 3) { k = q + H; v = q + 2 * H; } else { k = q + (size_t)N * ld; v = k + (size_t)N * ld; }
    std::vector<u16> out((size_t)N * ldo, 0xffff);
    std::vector<float> keep;
    if (!c.packed) {
        keep.resize((size_t)B * S);
        for (int z = 0; z < B; z++)
            for (int j = 0; j < S; j++) keep[(size_t)z * S + j] = (float)c.keep[z][j];
    }
    int longest = 0;
    for (int z = 0; z < B; z++) longest = std::max(longest, starts[z + 1] - starts[z]);
    float scale = 1.0f / std::sqrt((float)c.D);
    auto kernel = c.D == 16 ? attention_fused<T, 16> : c.D == 32 ? attention_fused<T, 32>
                : c.D == 64 ? attention_fused<T, 64> : attention_fused<T, 128>;
    gridDim = {(longest + FA_ROWS - 1) / FA_ROWS, c.heads, B};
    blockDim = {kThreads, 1, 1};
    for (int bz = 0; bz < gridDim.z; bz++)
        for (int by = 0; by < gridDim.y; by++)
            for (int bx = 0; bx < gridDim.x; bx++) {
                blockIdx = {bx, by, bz};
                std::barrier<> block(kThreads);
                std::barrier<> w0(32), w1(32), w2(32), w3(32);
                blockBarrier = &block;
                warpBarrier[0] = &w0; warpBarrier[1] = &w1; warpBarrier[2] = &w2; warpBarrier[3] = &w3;
                std::vector<std::thread> threads;
                for (int x = 0; x < kThreads; x++)
                    threads.emplace_back([&, x] {
                        threadIdx = {x, 0, 0};
                        kernel((const T *)q, (const T *)k, (const T *)v, (T *)out.data(), ld, ldo,
                               c.packed ? starts.data() : nullptr, c.packed ? nullptr : keep.data(), S, scale);
                    });
                for (auto &th : threads) th.join();
            }
    /* the reference, in double from the same rounded inputs */
    double worst = 0;
    for (int z = 0; z < B; z++) {
        int s0 = starts[z], len = starts[z + 1] - s0;
        bool any = c.packed;
        if (!c.packed) for (int j = 0; j < len; j++) any |= keep[(size_t)z * S + j] != 0;
        for (int h = 0; h < c.heads; h++)
            for (int i = 0; i < len; i++) {
                std::vector<double> p(len);
                double m = -INFINITY;
                for (int j = 0; j < len; j++) {
                    bool kept = c.packed || !any || keep[(size_t)z * S + j] != 0;
                    double dot = 0;
                    for (int d = 0; d < c.D; d++)
                        dot += (double)widen<T>(q[(size_t)(s0 + i) * ld + h * c.D + d]) * widen<T>(k[(size_t)(s0 + j) * ld + h * c.D + d]);
                    p[j] = kept ? (any ? dot * scale : 0.0) : -INFINITY;
                    m = std::max(m, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < len; j++) { p[j] = std::exp(p[j] - m); sum += p[j]; }
                for (int d = 0; d < c.D; d++) {
                    double want = 0;
                    for (int j = 0; j < len; j++) want += p[j] / sum * widen<T>(v[(size_t)(s0 + j) * ld + h * c.D + d]);
                    u16 got = out[(size_t)(s0 + i) * ldo + h * c.D + d];
                    double delta = got == 0xffff ? INFINITY : std::fabs(widen<T>(got) - want);
                    if (!(delta <= worst)) worst = delta;  /* NaN and unwritten cells count as the worst */
                }
            }
    }
    return worst;
}

int main() {
    std::mt19937 rng(7);
    auto all = [](int s) { return std::vector<int>(s, 1); };
    auto prefix = [](int s, int kept) { std::vector<int> k(s, 0); for (int j = 0; j < kept; j++) k[j] = 1; return k; };
    std::vector<int> sparse(70, 0), late(70, 0);
    for (int j = 0; j < 70; j += 3) sparse[j] = 1;
    for (int j = 66; j < 70; j++) late[j] = 1;  /* the first tile of keys all masked, the second not */
    std::vector<Case> cases = {
        {"padded S=70 D=64: all kept, a padded tail, none kept, every third, only the second tile", 2, 64,
         {70, 70, 70, 70, 70}, false, {all(70), prefix(70, 50), std::vector<int>(70, 0), sparse, late}, 1},
        {"padded S=8 D=64 (one short tile)", 2, 64, {8, 8}, false, {all(8), prefix(8, 5)}, 1},
        {"padded S=128 D=32, q/k/v in one (N, 3H) buffer", 3, 32, {128, 128}, false, {all(128), prefix(128, 100)}, 3},
        {"packed lengths 5, 64, 130, 1 D=64", 2, 64, {5, 64, 130, 1}, true, {}, 1},
        {"packed lengths 17, 200 D=128", 1, 128, {17, 200}, true, {}, 1},
        {"packed lengths 33, 65 D=16, (N, 3H) buffer", 4, 16, {33, 65}, true, {}, 3},
    };
    int failures = 0;
    for (const Case &c : cases) {
        double f = runCase<f16>(c, rng), b = runCase<bf16>(c, rng);
        bool ok = f <= 1e-2 && b <= 6e-2;
        printf("%s %s: max |delta| vs double: f16 %.2e (bound 1e-2), bf16 %.2e (bound 6e-2)\n", ok ? "PASS" : "FAIL", c.name, f, b);
        failures += !ok;
    }
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
