/* One core: the int8 panel kernel for CPUs without VNNI (mb_panel_product_u8s8_avx2, Sources/CSmallProducts) against
   oneDNN's AVX2 int8 GEMM (`gemm:jit`, dnnl_gemm_u8s8s32 on the plain weights, which it repacks on every call), on
   the same operands: inputs 0…191, weights within ±85 (the levels without VNNI), the int32 sums compared. Default
   shapes: each core's share of the 345M model's products at 32×32 (1,024 rows split by columns between 2 cores, in
   the engine's chunks) and at 1×8.

     clang -O2 -ISources/CSmallProducts/include -ISources/CQuantizedRows/include -ISources/CVectorMath/include \
        scripts/int8_panels_bench.c Sources/CSmallProducts/panel_products_avx2.c Sources/CQuantizedRows/quantized_rows.c \
        -ldnnl -o /tmp/int8_panels_bench && OMP_NUM_THREADS=1 DNNL_MAX_CPU_ISA=AVX2 /tmp/int8_panels_bench [m n k ...]

   Prints each shape's best of 8 runs for both, in G multiply-adds per second. Build it with clang, as SwiftPM builds
   the kernel (GCC 12 at -O2 keeps the kernel's accumulators in memory: half the speed). */
#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panel_products.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* W (n, k) row-major into the int8 panel layout (BA16a64b4a: per 64 columns, one 256-byte step per quad of K). */
static long pack(const int8_t *w, int n, int k, int8_t *panels) {
    long stride = (long)(k + 63) / 64 * 64 * 64;
    memset(panels, 0, (size_t)((n + 63) / 64) * stride);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++) panels[j / 64 * stride + i / 4 * 256 + j % 64 * 4 + i % 4] = w[(long)j * k + i];
    return stride;
}

static void run(int m, int n, int k) {
    uint8_t *x = malloc((size_t)m * k);
    int8_t *w = malloc((size_t)n * k), *panels = aligned_alloc(64, (size_t)((n + 63) / 64) * ((k + 63) / 64 * 64 * 64));
    int32_t *theirs = malloc((size_t)m * n * 4), *ours = malloc((size_t)m * n * 4);
    if (!x || !w || !panels || !theirs || !ours) {
        fprintf(stderr, "no memory for %d x %d x %d\n", m, n, k);
        exit(1);
    }
    srand(1);
    for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (uint8_t)(rand() % 192);
    for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (int8_t)(rand() % 171 - 85);
    long stride = pack(w, n, k, panels);
    int32_t offset = 0;
    double best_theirs = 1e9, best_ours = 1e9;
    for (int r = 0; r < 8; r++) {
        double t = now();
        dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, x, k, 0, w, k, 0, 0.0f, theirs, n, &offset);
        t = now() - t;
        if (t < best_theirs) best_theirs = t;
        t = now();
        mb_panel_product_u8s8_avx2(x, m, k, panels, stride, n, NULL, ours, n);
        t = now() - t;
        if (t < best_ours) best_ours = t;
    }
    double macs = (double)m * n * k;
    printf("%5d x %5d x %5d: gemm:jit %8.3f ms %6.1f GMAC/s   panels %8.3f ms %6.1f GMAC/s   sums %s\n", m, n, k,
           best_theirs * 1e3, macs / best_theirs / 1e9, best_ours * 1e3, macs / best_ours / 1e9,
           memcmp(theirs, ours, (size_t)m * n * 4) ? "DIFFER" : "equal");
    free(x), free(w), free(panels), free(theirs), free(ours);
}

int main(int argc, char **argv) {
    if (!mb_panel_products_int8_avx2_available()) {
        fprintf(stderr, "this CPU has no AVX2\n");
        return 1;
    }
    if (argc > 1) {
        for (int i = 1; i + 2 < argc; i += 3) run(atoi(argv[i]), atoi(argv[i + 1]), atoi(argv[i + 2]));
        return 0;
    }
    /* 32×32 in the engine's chunks (QKV, attention output, FFN up, FFN down, MLM decoder), then 1×8's QKV and FFN up. */
    int shapes[][3] = {{176, 1536, 1024}, {512, 512, 1024}, {128, 2048, 1024}, {512, 512, 4096}, {144, 14528, 1024},
                       {8, 1536, 1024}, {8, 2048, 1024}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run(shapes[i][0], shapes[i][1], shapes[i][2]);
    return 0;
}
