// test-gemm: the CPU SGEMM (scvrl__sgemm) against a double-precision triple loop: all four transposes,
// odd shapes, padded leading dimensions, accumulate, the MViT shapes; bit-identical across runs and threads.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define SCVRL_IMPLEMENTATION
#include "scvrl.h"   // the GEMM under test is scvrl__sgemm (section 13)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static int failures = 0;
static double worst_rel = 0;

// one case; sample: check only every sample-th row (big shapes)
static void run_case(int tA, int tB, int64_t M, int64_t N, int64_t K, int64_t pad, int acc, int64_t sample) {
    int64_t lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
    int64_t arows = tA ? K : M, brows = tB ? N : K;
    size_t asz = (size_t)(arows * lda), bsz = (size_t)(brows * ldb), csz = (size_t)(M * ldc);
    float *A = malloc((asz + 1) * sizeof(float)), *B = malloc((bsz + 1) * sizeof(float));
    float *C0 = malloc((csz + 1) * sizeof(float)), *C1 = malloc((csz + 1) * sizeof(float));
    float *C2 = malloc((csz + 1) * sizeof(float));
    for (size_t i = 0; i < asz; i++) A[i] = frand();
    for (size_t i = 0; i < bsz; i++) B[i] = frand();
    for (size_t i = 0; i < csz; i++) C0[i] = frand();
    // poison padding columns of C: must be left untouched
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = N; j < ldc; j++) C0[i * ldc + j] = 12345.0f;
    memcpy(C1, C0, csz * sizeof(float));
    memcpy(C2, C0, csz * sizeof(float));
    scvrl__sgemm(tA, tB, M, N, K, A, lda, B, ldb, C1, ldc, acc);
    scvrl__sgemm(tA, tB, M, N, K, A, lda, B, ldb, C2, ldc, acc);
    int same = memcmp(C1, C2, csz * sizeof(float)) == 0;
    // single-threaded run (from inside a parallel region) must also be identical
    float *C3 = malloc((csz + 1) * sizeof(float));
    memcpy(C3, C0, csz * sizeof(float));
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        scvrl__sgemm(tA, tB, M, N, K, A, lda, B, ldb, C3, ldc, acc);
    }
#else
    scvrl__sgemm(tA, tB, M, N, K, A, lda, B, ldb, C3, ldc, acc);
#endif
    int same1 = memcmp(C1, C3, csz * sizeof(float)) == 0;
#ifdef _OPENMP
    {   // and with 3 threads (oversubscribed here: work items then land on threads differently)
        int keep = omp_get_max_threads();
        memcpy(C3, C0, csz * sizeof(float));
        omp_set_num_threads(3);
        scvrl__sgemm(tA, tB, M, N, K, A, lda, B, ldb, C3, ldc, acc);
        omp_set_num_threads(keep);
        same1 = same1 && memcmp(C1, C3, csz * sizeof(float)) == 0;
    }
#endif
    // the bias epilogues: the same bits as the product followed by the add (any thread count)
    int64_t bias_bad = 0;
    {
        float *bias = malloc((size_t)(N > M ? N : M) * sizeof(float) + 4);
        for (int64_t j = 0; j < (N > M ? N : M); j++) bias[j] = frand();
        for (int mode = 0; mode < 2; mode++) {
            memcpy(C3, C0, csz * sizeof(float));
#ifdef _OPENMP
            int keep = omp_get_max_threads();
            omp_set_num_threads(mode ? 3 : keep);
#endif
            scvrl__sgemm_bias(tA, tB, M, N, K, A, lda, B, ldb, C3, ldc, acc, mode ? NULL : bias, mode ? bias : NULL);
#ifdef _OPENMP
            omp_set_num_threads(keep);
#endif
            for (int64_t i = 0; i < M; i++) {
                for (int64_t j = 0; j < N; j++) {
                    float want = C1[i * ldc + j] + (mode ? bias[i] : bias[j]);
                    if (memcmp(&want, &C3[i * ldc + j], sizeof(float))) bias_bad++;
                }
                for (int64_t j = N; j < ldc; j++) if (C3[i * ldc + j] != 12345.0f) bias_bad++;
            }
        }
        free(bias);
    }
    double maxrel = 0, maxabs = 0;
    int64_t exact_mismatch = 0, pad_bad = 0;
    for (int64_t i = 0; i < M; i += (i == M - 1 ? 1 : sample > 1 ? (i + sample < M ? sample : M - 1 - i) : 1)) {
        for (int64_t j = 0; j < N; j++) {
            double s = acc ? C0[i * ldc + j] : 0.0, sabs = acc ? fabs(C0[i * ldc + j]) : 0.0;
            float chain = acc ? C0[i * ldc + j] : 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float a = tA ? A[k * lda + i] : A[i * lda + k];
                float b = tB ? B[j * ldb + k] : B[k * ldb + j];
                s += (double)a * b;
                sabs += fabs((double)a * b);
#if defined(SCVRL__GEMM_AVX512) || defined(SCVRL__GEMM_AVX2)
                chain = fmaf(a, b, chain);
#else
                { float p = a * b; chain = chain + p; }
#endif
            }
            double got = C1[i * ldc + j];
            double err = fabs(got - s);
            double rel = err / (sabs > 1e-30 ? sabs : 1e-30);
            if (rel > maxrel) maxrel = rel;
            if (err > maxabs) maxabs = err;
            if (C1[i * ldc + j] != chain) exact_mismatch++;
        }
        for (int64_t j = N; j < ldc; j++)
            if (C1[i * ldc + j] != 12345.0f) pad_bad++;
        if (i == M - 1) break;
    }
    int ok = same && same1 && maxrel < 1e-5 && pad_bad == 0 && exact_mismatch == 0 && bias_bad == 0;
    if (!ok) failures++;
    if (maxrel > worst_rel) worst_rel = maxrel;
    printf("%s tA=%d tB=%d M=%-6lld N=%-5lld K=%-5lld pad=%lld acc=%d  max rel err %.2e, max abs err %.2e, "
           "repeat-identical %d, 1/3-thread-identical %d, fma-chain mismatches %lld, pad-clobbered %lld, "
           "bias/row-bias epilogue mismatches %lld\n",
           ok ? "ok  " : "FAIL", tA, tB, (long long)M, (long long)N, (long long)K, (long long)pad, acc, maxrel,
           maxabs, same, same1, (long long)exact_mismatch, (long long)pad_bad, (long long)bias_bad);
    free(A); free(B); free(C0); free(C1); free(C2); free(C3);
}

int main(void) {
    static const int64_t shapes[][4] = {  // M, N, K, sample
        {1, 1, 1, 1}, {7, 13, 5, 1}, {33, 65, 129, 1}, {255, 1, 300, 1}, {1, 300, 255, 1},
        {14, 32, 1, 1}, {15, 33, 17, 1}, {28, 64, 384, 1}, {29, 31, 385, 1}, {100, 2100, 800, 1},
        {1, 4096, 64, 1}, {4096, 1, 64, 1}, {3, 5, 2000, 1}, {200, 200, 0, 1},
        {25089, 288, 96, 97}, {1569, 1536, 384, 37},
    };
    int nsh = (int)(sizeof shapes / sizeof shapes[0]);
#ifdef _OPENMP
    printf("threads: %d\n", omp_get_max_threads());
#endif
    printf("kernel: MR=%d NR=%d (%s)\n", SCVRL__GEMM_MR, SCVRL__GEMM_NR,
#if defined(SCVRL__GEMM_AVX512)
           "AVX-512"
#elif defined(SCVRL__GEMM_AVX2)
           "AVX2+FMA"
#else
           "portable C"
#endif
    );
    for (int s = 0; s < nsh; s++)
        for (int t = 0; t < 4; t++)
            for (int acc = 0; acc < 2; acc++) {
                int64_t pad = (s + t + acc) % 3 == 0 ? 0 : (s % 2 ? 3 : 17);
                run_case(t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], pad, acc, shapes[s][3]);
            }
    printf("worst max relative error (|err| / sum|a*b|): %.3e\n", worst_rel);
    printf(failures ? "FAILED: %d cases\n" : "all passed\n", failures);
    scvrl__gemm_pool_release();
    return failures != 0;
}
