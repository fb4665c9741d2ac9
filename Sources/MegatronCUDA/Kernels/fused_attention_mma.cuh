/* The device primitives of fused attention (fused_attention.cu): two floats packed into a register of T, and the
   tensor cores' mma.sync m16n8k16. scripts/fused_attention_emulator.cpp has its own versions of these, emulated on
   the CPU from the PTX ISA's fragment layouts. */
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
