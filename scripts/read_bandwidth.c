/* How fast this machine's cores can read memory: the floor under a memory-bound forward pass (1x8 reads every
 * weight once: 1.38 GB in FP32, 0.69 GB in BF16, 0.35 GB in int8 for the 345M model).
 *
 *     cc -O2 -mavx2 -pthread scripts/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth 2
 *
 * Each of THREADS threads sums its share of a 1.4 GiB array with AVX2 loads (the hardware prefetchers see plain
 * sequential reads); five passes, each printed as GB/s and as the time one pass over 1.38 GB would take.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static float *array;
static size_t perThread;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *sum(void *argument) {
    const float *x = array + (size_t)argument * perThread;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < perThread; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return (void *)(size_t)(lanes[0] < 0);  /* keeps the sums from being optimised away */
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: read_bandwidth [threads 1-256]\n");
        return 1;
    }
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
