/* One core running the small-product kernels (Sources/CSmallProducts) on weights too large for the caches, to see
   how close a few-row product gets to the memory's read bandwidth (scripts/read_bandwidth.c):

     cc -O2 -ISources/CSmallProducts/include scripts/small_products_bench.c Sources/CSmallProducts/small_products.c \
        -o /tmp/small_products_bench && /tmp/small_products_bench f32 8 16384 1024 && /tmp/small_products_bench s8 8 65536 1024

   Arguments: kernel (f32 or s8), rows, weight rows n, k, and optionally repetitions (default 5; the best is printed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "small_products.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 5 || (strcmp(argv[1], "f32") && strcmp(argv[1], "s8"))) {
        fprintf(stderr, "usage: %s f32|s8 rows n k [repetitions]\n", argv[0]);
        return 2;
    }
    if (!mb_small_products_available()) {
        fprintf(stderr, "this CPU has no AVX2 and FMA\n");
        return 1;
    }
    int f32 = !strcmp(argv[1], "f32"), m = atoi(argv[2]), k = atoi(argv[4]), reps = argc > 5 ? atoi(argv[5]) : 5;
    long n = atol(argv[3]);
    size_t size = f32 ? 4 : 1, bytes = (size_t)n * k * size;
    void *w = malloc(bytes), *x = malloc((size_t)m * k * size), *y = malloc((size_t)m * n * 4);
    if (!w || !x || !y || m < 1 || n < 1 || k < 1) {
        fprintf(stderr, "no memory for %ld x %d weights, or a size below 1\n", n, k);
        return 1;
    }
    for (size_t i = 0; i < (size_t)n * k; i++) {
        if (f32) ((float *)w)[i] = (float)((int)(i * 7 % 171) - 85) / 85;
        else ((int8_t *)w)[i] = (int8_t)((int)(i * 7 % 171) - 85);
    }
    for (size_t i = 0; i < (size_t)m * k; i++) {
        if (f32) ((float *)x)[i] = (float)(i % 191) / 191;
        else ((uint8_t *)x)[i] = (uint8_t)(i % 191);
    }
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        if (f32) mb_small_product_f32(x, m, k, w, 0, (int)n, NULL, false, y, (int)n);
        else mb_small_product_u8s8(x, m, k, w, 0, (int)n, y, (int)n);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("%s, %d rows, (%ld, %d) weights: best of %d %.3f ms, %.2f GB/s of weights\n", argv[1], m, n, k, reps, best * 1e3,
           bytes / best / 1e9);
    return 0;
}
