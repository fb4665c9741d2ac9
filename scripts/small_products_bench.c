/* One core running the FP32 small-product kernel (Sources/CSmallProducts) on weights too large for the caches, to see
   how close a few-row product gets to the memory's read bandwidth (scripts/read_bandwidth.c):

     cc -O2 -ISources/CSmallProducts/include scripts/small_products_bench.c Sources/CSmallProducts/small_products.c \
        -o /tmp/small_products_bench && /tmp/small_products_bench 8 16384 1024

   Arguments: rows, weight rows n, k, and optionally repetitions (default 5; the best is printed). The int8 kernel
   for CPUs without VNNI has its own: scripts/int8_panels_bench.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "small_products.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s rows n k [repetitions]\n", argv[0]);
        return 2;
    }
    if (!mb_small_products_available()) {
        fprintf(stderr, "this CPU has no AVX2 and FMA\n");
        return 1;
    }
    int m = atoi(argv[1]), k = atoi(argv[3]), reps = argc > 4 ? atoi(argv[4]) : 5;
    long n = atol(argv[2]);
    size_t bytes = (size_t)n * k * 4;
    float *w = malloc(bytes), *x = malloc((size_t)m * k * 4), *y = malloc((size_t)m * n * 4);
    if (!w || !x || !y || m < 1 || n < 1 || k < 1) {
        fprintf(stderr, "no memory for %ld x %d weights, or a size below 1\n", n, k);
        return 1;
    }
    for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (float)((int)(i * 7 % 171) - 85) / 85;
    for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (float)(i % 191) / 191;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        mb_small_product_f32(x, m, k, w, 0, (int)n, NULL, false, y, (int)n);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("f32, %d rows, (%ld, %d) weights: best of %d %.3f ms, %.2f GB/s of weights\n", m, n, k, reps, best * 1e3,
           bytes / best / 1e9);
    return 0;
}
