/* One core running the attention kernel (Sources/CAttention) over every head of a batch laid out as the engine lays
   it out (Q | K | V of a row side by side, 3H floats apart; the 345M model's H = 1024, 16 heads of 64):

     clang -O2 -ISources/CAttention/include -ISources/CVectorMath/include scripts/attention_bench.c \
        Sources/CAttention/attention.c -o /tmp/attention_bench && /tmp/attention_bench 128 8 && /tmp/attention_bench 512 1

   Arguments: sequence length, batch, and optionally the vector width (16 or 8; default the widest this CPU runs) and
   repetitions (default 20; the best is printed). GFLOP/s counts the two products (4 · S² · d per head). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "attention.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s sequence batch [width [repetitions]]\n", argv[0]);
        return 2;
    }
    const int s = atoi(argv[1]), batch = atoi(argv[2]), h = 1024, heads = 16, d = h / heads;
    const int width = argc > 3 ? atoi(argv[3]) : mb_attention_width(), repetitions = argc > 4 ? atoi(argv[4]) : 20;
    if (s < 1 || batch < 1 || width < 1 || width > mb_attention_width()) {
        fprintf(stderr, "sequence and batch must be positive, and this CPU runs widths up to %d\n", mb_attention_width());
        return 2;
    }
    const long ld = 3L * h;
    float *qkv = aligned_alloc(64, sizeof(float) * (size_t)(batch * s * ld));
    float *out = aligned_alloc(64, sizeof(float) * (size_t)batch * s * h);
    float *keep = malloc(sizeof(float) * (size_t)s);
    float *work = aligned_alloc(64, sizeof(float) * (mb_attention_work_floats(s, s, d, 128, width) + 16));
    if (!qkv || !out || !keep || !work) return 1;
    srand(1);
    for (long i = 0; i < batch * s * ld; i++) qkv[i] = (float)(rand() % 2000) / 1000 - 1;
    for (int i = 0; i < s; i++) keep[i] = 1;
    double best = 1e30;
    for (int repetition = 0; repetition < repetitions; repetition++) {
        double start = now();
        for (int b = 0; b < batch; b++)
            for (int head = 0; head < heads; head++) {
                const float *q = qkv + (long)b * s * ld + head * d;
                mb_attention_f32(q, q + h, q + 2 * h, ld, s, s, d, 0.125f, keep, out + (long)b * s * h + head * d, h, 128,
                                 width, work);
            }
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    printf("width %d, %d x %d: %.2f ms, %.1f GFLOP/s, %.1f us per head\n", width, batch, s, best * 1e3,
           4.0 * s * s * d * batch * heads / best / 1e9, best * 1e6 / (batch * heads));
    return 0;
}
