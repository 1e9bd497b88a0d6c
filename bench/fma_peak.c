/* Register-only AVX-512 FP32 FMA throughput: the machine's FP32 ceiling with no memory traffic.
 * 12 independent vfmadd231ps chains per iteration (enough to cover FMA latency on 2 ports).
 * Build: gcc -O2 -fopenmp fma_peak.c -o fma_peak; run with OMP_NUM_THREADS=N. Prints GFLOP/s. */
#include <omp.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define FMA(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"

int main(void) {
    const long iters = 100000000L;
    double best = 0.0;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
#pragma omp parallel
        for (long i = 0; i < iters; i++) {
            __asm__ volatile(FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) FMA(8) FMA(9) FMA(10) FMA(11)
                             ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                             "xmm10", "xmm11");
        }
        double flops = (double)iters * omp_get_max_threads() * 12 * 16 * 2;
        double rate = flops / (now() - t0);
        if (rate > best) best = rate;
    }
    printf("%.1f\n", best / 1e9);
    return 0;
}
