// tests/test.h: the tiny test harness every tests/test-*.c program uses.
//
// Each check prints one line, which tests/run.sh counts:
//   "ok   NAME"            a passed check
//   "FAIL NAME: why"       a failed check (the program then exits 1)
//   "skip NAME: why"       a skipped check, with the reason
// A test program ends with `return test_done();`.
#ifndef SCVRL_TEST_H
#define SCVRL_TEST_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test__pass, test__fail, test__skip;

static void test_ok(const char *name) { printf("ok   %s\n", name); fflush(stdout); test__pass++; }

static void test_fail(const char *name, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    printf("FAIL %s: ", name); vprintf(fmt, ap); printf("\n"); fflush(stdout);
    va_end(ap); test__fail++;
}

static void test_skip(const char *name, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    printf("skip %s: ", name); vprintf(fmt, ap); printf("\n"); fflush(stdout);
    va_end(ap); test__skip++;
}

// check(cond, name, fmt, ...): ok when cond holds, else FAIL with the message.
#define test_check(cond, name, ...) \
    do { if (cond) test_ok(name); else test_fail(name, __VA_ARGS__); } while (0)

// Relative error ||a - b|| / ||b|| (b the reference), in double.
static double test_rel_err_f(const float *a, const double *b, long n) {
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += b[i] * b[i]; }
    if (!(num == num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int test_done(void) {
    printf("# %d passed, %d failed, %d skipped\n", test__pass, test__fail, test__skip);
    return test__fail ? 1 : 0;
}
#endif
