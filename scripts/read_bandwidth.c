/* How fast this machine's cores can read memory: the floor under a memory-bound forward pass (1x8 reads every
 * weight once: 1.38 GB in FP32, 0.69 GB in BF16, 0.35 GB in int8 for the 345M model).
 *
 *     cc -O2 -mavx2 -pthread scripts/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth 2 [pass]
 *
 * Each of THREADS threads sums its share of a 1.4 GiB array with AVX2 loads (the hardware prefetchers see plain
 * sequential reads); five passes, each printed as GB/s and as the time one pass over 1.38 GB would take.
 *
 * With `pass`, the reads are shaped as a 1x8 forward pass of the 345M model (FP32) runs its products: 100 matrices
 * in their own allocations (per layer QKV (3072, 1024), output (1024, 1024), FFN (4096, 1024) and (1024, 4096); the
 * MLM transform, the decoder (29056, 1024), the pooler and the NSP head), each split between the threads by columns,
 * the threads meeting after every matrix, each read 8 KB ahead by software prefetch as our small-product kernels do.
 * What a pass of pure reads costs with the products' structure: the floor under `bench --points 1x8 --dtype fp32`.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static float *array;
static size_t perThread;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float sumRange(const float *x, size_t n, int prefetch) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        if (prefetch) {
            _mm_prefetch((const char *)(x + i) + 8192, _MM_HINT_T0);
            _mm_prefetch((const char *)(x + i) + 8192 + 64, _MM_HINT_T0);
        }
        s0 = _mm256_add_ps(s0, _mm256_load_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return lanes[0];
}

static volatile float sink;  /* keeps the sums from being optimised away */

static void *sum(void *argument) {
    sink += sumRange(array + (size_t)argument * perThread, perThread, 0);
    return NULL;
}

/* --- pass mode --- */
#define MATRICES 100
static float *matrices[MATRICES];
static size_t elements[MATRICES];
static int threads;
static atomic_int generation, finished;

/* Thread `part`'s share of matrix m: its slice of the rows (whole 32-float steps). */
static void readShare(int m, int part) {
    size_t step = (elements[m] / threads + 31) / 32 * 32, first = step * part;
    if (first < elements[m]) sink += sumRange(matrices[m] + first, (first + step < elements[m] ? step : elements[m] - first), 1);
}

static void *helper(void *argument) {
    int part = (int)(size_t)argument, seen = 0;
    for (;;) {
        int g;
        while ((g = atomic_load(&generation)) == seen) _mm_pause();
        if (g < 0) return NULL;
        seen = g;
        readShare((g - 1) % MATRICES, part);
        atomic_fetch_add(&finished, 1);
    }
}

static int passMode(void) {
    size_t total = 0;
    for (int i = 0; i < MATRICES; i++) {
        size_t rows = 1024, k = 1024;
        if (i < 96) {
            int kind = i % 4;  /* QKV, output, FFN in, FFN out */
            rows = kind == 0 ? 3072 : kind == 2 ? 4096 : 1024;
            k = kind == 3 ? 4096 : 1024;
        } else if (i == 97) {
            rows = 29056;  /* the decoder; 96 the MLM transform, 98 the pooler */
        } else if (i == 99) {
            rows = 2;  /* the NSP head */
        }
        elements[i] = rows * k;
        matrices[i] = aligned_alloc(64, elements[i] * sizeof(float));
        if (!matrices[i]) {
            fprintf(stderr, "read_bandwidth: cannot allocate the pass's matrices\n");
            return 1;
        }
        for (size_t j = 0; j < elements[i]; j++) matrices[i][j] = 1;
        total += elements[i] * sizeof(float);
    }
    pthread_t workers[256];
    for (long i = 1; i < threads; i++) pthread_create(&workers[i], NULL, helper, (void *)i);
    int g = 0;
    for (int pass = 0; pass < 10; pass++) {
        double start = now();
        for (int m = 0; m < MATRICES; m++) {
            atomic_store(&finished, 0);
            atomic_store(&generation, ++g);
            readShare(m, 0);
            while (atomic_load(&finished) < threads - 1) _mm_pause();
        }
        double seconds = now() - start;
        printf("%d threads, a 1x8 pass's %d matrices: %.1f GB/s (%.2f GB in %.1f ms)\n", threads, MATRICES,
               total / seconds / 1e9, total / 1e9, seconds * 1e3);
    }
    atomic_store(&generation, -1);
    for (int i = 1; i < threads; i++) pthread_join(workers[i], NULL);
    return 0;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 256 || (argc > 2 && strcmp(argv[2], "pass") != 0)) {
        fprintf(stderr, "usage: read_bandwidth [threads 1-256] [pass]\n");
        return 1;
    }
    if (argc > 2) return passMode();
    size_t count = (size_t)1400 << 18;  /* 1.4 GiB of floats */
    perThread = count / threads / 32 * 32;
    array = aligned_alloc(64, count * sizeof(float));
    if (!array) {
        fprintf(stderr, "read_bandwidth: cannot allocate 1.4 GiB\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++) array[i] = 1;
    double bytes = (double)perThread * threads * sizeof(float);
    for (int pass = 0; pass < 5; pass++) {
        pthread_t workers[256];
        double start = now();
        for (long i = 0; i < threads; i++) pthread_create(&workers[i], NULL, sum, (void *)i);
        for (int i = 0; i < threads; i++) pthread_join(workers[i], NULL);
        double seconds = now() - start;
        printf("%d threads: %.1f GB/s (1.38 GB in %.1f ms)\n", threads, bytes / seconds / 1e9, 1.38e9 / (bytes / seconds) * 1e3);
    }
    free(array);
    return 0;
}
