// test-ops: every op's forward against a naive double-precision loop on small, odd shapes,
// plus determinism (same bytes on a re-run) and the memory plan.
#define SCVRL_IMPLEMENTATION
#include "scvrl.h"
#include "test.h"

static scvrl_tensor *input(scvrl_ctx *ctx, int nd, const int64_t *ne, uint64_t stream) {
    scvrl_tensor *t = scvrl_new_data(ctx, SCVRL_DT_F32, nd, ne);
    scvrl_fill_uniform(scvrl_f32(t), scvrl_nelements(t), 42, stream, -1.0f, 1.0f);
    return t;
}

// Compute `out` alone and compare with ref (double) by relative error.
static void check(scvrl_ctx *ctx, const char *name, scvrl_tensor *out, const double *ref, double tol) {
    (void)ctx;
    scvrl_graph *g = scvrl_graph_new();
    g->seed = 5;
    scvrl_mark_output(out);
    scvrl_graph_expand(g, out);
    char err[256];
    if (scvrl_graph_compute(g, NULL, err, sizeof err)) { test_fail(name, "%s", err); scvrl_graph_free(g); return; }
    int64_t n = scvrl_nelements(out);
    float *y = (float *)malloc((size_t)n * sizeof(float));
    // read through strides (out may be a view)
    for (int64_t i = 0; i < n; i++) {
        int64_t r = i, o = 0;
        for (int d = out->ndim - 1; d >= 0; d--) { o += (r % out->ne[d]) * out->st[d]; r /= out->ne[d]; }
        y[i] = scvrl_f32(out)[o];
    }
    double e = test_rel_err_f(y, ref, n);
    char full[160];
    snprintf(full, sizeof full, "%s: rel err %.2e", name, e);
    test_check(e <= tol, full, "above %.1e", tol);
    free(y);
    scvrl_graph_free(g);
}

static double at(const scvrl_tensor *t, const int64_t *idx) {
    int64_t o = 0;
    for (int d = 0; d < t->ndim; d++) o += idx[d] * t->st[d];
    return scvrl_f32(t)[o];
}

static void test_binary(scvrl_ctx *ctx) {
    int64_t na[3] = { 2, 3, 5 }, nb[2] = { 3, 1 };
    scvrl_tensor *a = input(ctx, 3, na, 1), *b = input(ctx, 2, nb, 2);
    for (int b2 = 0; b2 < 3; b2++) scvrl_f32(b)[b2] += 2.0f;      // keep divisors away from 0
    double ref[4][30];
    for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) for (int k = 0; k < 5; k++) {
        double x = scvrl_f32(a)[(i * 3 + j) * 5 + k], y = scvrl_f32(b)[j];
        int o = (i * 3 + j) * 5 + k;
        ref[0][o] = x + y; ref[1][o] = x - y; ref[2][o] = x * y; ref[3][o] = x / y;
    }
    check(ctx, "add broadcast", scvrl_add(ctx, a, b), ref[0], 1e-6);
    check(ctx, "sub broadcast", scvrl_sub(ctx, a, b), ref[1], 1e-6);
    check(ctx, "mul broadcast", scvrl_mul(ctx, a, b), ref[2], 1e-6);
    check(ctx, "div broadcast", scvrl_div(ctx, a, b), ref[3], 1e-6);
    // broadcasting the other way, through a transposed (strided) view
    scvrl_tensor *at_ = scvrl_transpose(ctx, a, 1, 2);        // [2, 5, 3]
    double r2[30];
    for (int i = 0; i < 2; i++) for (int k = 0; k < 5; k++) for (int j = 0; j < 3; j++)
        r2[(i * 5 + k) * 3 + j] = scvrl_f32(a)[(i * 3 + j) * 5 + k] * scvrl_f32(b)[j];
    scvrl_tensor *bt = scvrl_reshape_2d(ctx, b, 1, 3);
    check(ctx, "mul strided x broadcast", scvrl_mul(ctx, at_, bt), r2, 1e-6);
}

static void test_unary(scvrl_ctx *ctx) {
    int64_t ne[2] = { 7, 9 };
    scvrl_tensor *x = input(ctx, 2, ne, 3);
    scvrl_f32(x)[0] = 4.5f; scvrl_f32(x)[1] = -6.0f;
    double r[4][63];
    for (int i = 0; i < 63; i++) {
        double v = scvrl_f32(x)[i];
        r[0][i] = v > 0 ? v : 0;
        r[1][i] = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        r[2][i] = v * 2.5 - 0.25;
    }
    check(ctx, "relu", scvrl_relu(ctx, x), r[0], 1e-7);
    check(ctx, "gelu (exact erf)", scvrl_gelu(ctx, x), r[1], 1e-6);
    check(ctx, "scale", scvrl_affine(ctx, x, 2.5f, -0.25f), r[2], 1e-7);
}

static void ref_matmul(const scvrl_tensor *a, const scvrl_tensor *b, int tA, int tB, int64_t batch,
                       int64_t M, int64_t N, int64_t K, double *out) {
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t ia[3] = { bi, tA ? k : i, tA ? i : k }, ib3[3] = { bi, tB ? j : k, tB ? k : j };
                    int64_t *ib = b->ndim == 3 ? ib3 : ib3 + 1;
                    s += at(a, ia) * at(b, ib);
                }
                out[(bi * M + i) * N + j] = s;
            }
}

static void test_matmul(scvrl_ctx *ctx) {
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            int64_t B = 3, M = 7, N = 5, K = 13;
            int64_t na[3] = { B, tA ? K : M, tA ? M : K }, nb[3] = { B, tB ? N : K, tB ? K : N };
            scvrl_tensor *a = input(ctx, 3, na, 10 + tA), *b = input(ctx, 3, nb, 20 + tB);
            double ref[3 * 7 * 5];
            ref_matmul(a, b, tA, tB, B, M, N, K, ref);
            char name[64];
            snprintf(name, sizeof name, "matmul batched tA=%d tB=%d", tA, tB);
            check(ctx, name, scvrl_matmul(ctx, a, b, tA, tB), ref, 1e-6);
            scvrl_tensor *b2 = scvrl_reshape_2d(ctx, scvrl_slice(ctx, b, 0, 1, 1), nb[1], nb[2]);
            double ref2[3 * 7 * 5];
            int64_t nb2[2] = { nb[1], nb[2] };
            scvrl_tensor *b2c = scvrl_new_data(ctx, SCVRL_DT_F32, 2, nb2);
            memcpy(b2c->data, scvrl_f32(b) + nb[1] * nb[2], (size_t)(nb[1] * nb[2]) * 4);
            ref_matmul(a, b2c, tA, tB, B, M, N, K, ref2);
            snprintf(name, sizeof name, "matmul shared 2-D b tA=%d tB=%d", tA, tB);
            check(ctx, name, scvrl_matmul(ctx, a, b2, tA, tB), ref2, 1e-6);
        }
    // a strided operand: q from a permuted qkv-like tensor
    int64_t ne[4] = { 2, 6, 3, 4 };
    scvrl_tensor *x = input(ctx, 4, ne, 30);
    int perm[4] = { 0, 2, 1, 3 };
    scvrl_tensor *q = scvrl_permute(ctx, x, perm);          // [2, 3, 6, 4] strided
    int64_t nw[2] = { 5, 4 };
    scvrl_tensor *w = input(ctx, 2, nw, 31);
    double ref[2 * 3 * 6 * 5];
    for (int b = 0; b < 2; b++) for (int h = 0; h < 3; h++) for (int i = 0; i < 6; i++) for (int j = 0; j < 5; j++) {
        double s = 0;
        for (int k = 0; k < 4; k++) s += (double)scvrl_f32(x)[((b * 6 + i) * 3 + h) * 4 + k] * scvrl_f32(w)[j * 4 + k];
        ref[((b * 3 + h) * 6 + i) * 5 + j] = s;
    }
    check(ctx, "matmul strided 4-D a", scvrl_matmul(ctx, q, w, 0, 1), ref, 1e-6);
}

static void test_linear(scvrl_ctx *ctx) {
    int64_t nx[3] = { 2, 5, 11 }, nw[2] = { 7, 11 }, nb = 7;
    scvrl_tensor *x = input(ctx, 3, nx, 40), *w = input(ctx, 2, nw, 41), *b = input(ctx, 1, &nb, 42);
    double ref[70];
    for (int r = 0; r < 10; r++) for (int o = 0; o < 7; o++) {
        double s = scvrl_f32(b)[o];
        for (int k = 0; k < 11; k++) s += (double)scvrl_f32(x)[r * 11 + k] * scvrl_f32(w)[o * 11 + k];
        ref[r * 7 + o] = s;
    }
    check(ctx, "linear", scvrl_linear(ctx, x, w, b), ref, 1e-6);
}

// Naive conv3d reference in NCDHW index space (x read through the layout).
static void ref_conv(const float *x, const int64_t *g, int layout, const float *w, const int64_t *wn, const float *b,
                     const int *s, const int *p, int groups, double *out, int64_t *o) {
    for (int i = 0; i < 3; i++) o[i] = (g[2 + i] + 2 * p[i] - wn[2 + i]) / s[i] + 1;
    int64_t Cin = g[1], Cout = wn[0], cpg = Cin / groups, opg = Cout / groups;
    for (int64_t n = 0; n < g[0]; n++) for (int64_t co = 0; co < Cout; co++)
    for (int64_t t = 0; t < o[0]; t++) for (int64_t h = 0; h < o[1]; h++) for (int64_t ww = 0; ww < o[2]; ww++) {
        double acc = b ? b[co] : 0;
        for (int64_t ci = 0; ci < cpg; ci++) for (int64_t a = 0; a < wn[2]; a++) for (int64_t bb = 0; bb < wn[3]; bb++) for (int64_t c = 0; c < wn[4]; c++) {
            int64_t it = t * s[0] - p[0] + a, ih = h * s[1] - p[1] + bb, iw = ww * s[2] - p[2] + c, cg = (co / opg) * cpg + ci;
            if (it < 0 || ih < 0 || iw < 0 || it >= g[2] || ih >= g[3] || iw >= g[4]) continue;
            int64_t xi = layout == 0 ? (((n * Cin + cg) * g[2] + it) * g[3] + ih) * g[4] + iw
                                     : (((n * g[2] + it) * g[3] + ih) * g[4] + iw) * Cin + cg;
            acc += (double)x[xi] * w[(((co * cpg + ci) * wn[2] + a) * wn[3] + bb) * wn[4] + c];
        }
        int64_t oi = layout == 0 ? (((n * Cout + co) * o[0] + t) * o[1] + h) * o[2] + ww
                                 : (((n * o[0] + t) * o[1] + h) * o[2] + ww) * Cout + co;
        out[oi] = acc;
    }
}

static void conv_case(scvrl_ctx *ctx, const char *name, const int64_t g[5], int layout, const int64_t wn[5],
                      int bias, const int s[3], const int p[3], int groups) {
    int64_t xne[5] = { g[0], g[1], g[2], g[3], g[4] };
    if (layout) { xne[1] = g[2]; xne[2] = g[3]; xne[3] = g[4]; xne[4] = g[1]; }
    scvrl_tensor *x = input(ctx, 5, xne, 50), *w = input(ctx, 5, wn, 51), *b = bias ? input(ctx, 1, wn, 52) : NULL;
    int64_t o[3];
    double *ref = (double *)calloc(100000, sizeof(double));
    ref_conv(scvrl_f32(x), g, layout, scvrl_f32(w), wn, b ? scvrl_f32(b) : NULL, s, p, groups, ref, o);
    check(ctx, name, scvrl_conv3d(ctx, x, w, b, s, p, groups, (scvrl_layout)layout), ref, 1e-6);
    free(ref);
}

static void test_conv(scvrl_ctx *ctx) {
    { int64_t g[5] = { 2, 3, 5, 9, 8 }, wn[5] = { 4, 3, 2, 7, 7 }; int s[3] = { 2, 4, 4 }, p[3] = { 0, 3, 3 };
      conv_case(ctx, "conv3d stem 2x7x7 s(2,4,4) p(0,3,3)", g, 0, wn, 1, s, p, 1); }
    { int64_t g[5] = { 1, 3, 6, 9, 8 }, wn[5] = { 5, 3, 3, 7, 7 }; int s[3] = { 2, 4, 4 }, p[3] = { 1, 3, 3 };
      conv_case(ctx, "conv3d stem 3x7x7 p(1,3,3)", g, 0, wn, 1, s, p, 1); }
    { int64_t g[5] = { 2, 6, 3, 5, 4 }, wn[5] = { 6, 1, 3, 3, 3 }; int s[3] = { 1, 2, 2 }, p[3] = { 1, 1, 1 };
      conv_case(ctx, "conv3d depthwise ndhwc s(1,2,2)", g, 1, wn, 0, s, p, 6); }
    { int64_t g[5] = { 1, 5, 4, 9, 9 }, wn[5] = { 5, 1, 3, 3, 3 }; int s[3] = { 1, 8, 8 }, p[3] = { 1, 1, 1 };
      conv_case(ctx, "conv3d depthwise ndhwc s(1,8,8)", g, 1, wn, 0, s, p, 5); }
    { int64_t g[5] = { 2, 6, 3, 5, 4 }, wn[5] = { 6, 1, 3, 3, 3 }; int s[3] = { 1, 2, 2 }, p[3] = { 1, 1, 1 };
      conv_case(ctx, "conv3d depthwise ncdhw", g, 0, wn, 1, s, p, 6); }
    { int64_t g[5] = { 1, 4, 3, 5, 5 }, wn[5] = { 6, 2, 1, 3, 2 }; int s[3] = { 1, 2, 1 }, p[3] = { 0, 1, 1 };
      conv_case(ctx, "conv3d groups=2", g, 0, wn, 1, s, p, 2); }
    { int64_t g[5] = { 2, 3, 4, 6, 5 }, wn[5] = { 4, 3, 2, 3, 3 }; int s[3] = { 2, 2, 1 }, p[3] = { 0, 1, 1 };
      conv_case(ctx, "conv3d ndhwc groups=1", g, 1, wn, 1, s, p, 1); }
}

// Channels-last depthwise conv and max pool on a strided view (channels [C, 2C) of a wider tensor,
// as MViT's q/k/v split gives), C past the 64-channel register block, with a ragged tail.
static void test_ndhwc_strided(scvrl_ctx *ctx) {
    int64_t N = 2, T = 3, H = 7, W = 6, C = 70;
    int64_t wide[5] = { N, T, H, W, 2 * C };
    scvrl_tensor *xw = input(ctx, 5, wide, 55);
    scvrl_tensor *x = scvrl_slice(ctx, xw, 4, C, C);
    int64_t g[5] = { N, C, T, H, W }, xne[5] = { N, T, H, W, C };
    float *xc = (float *)malloc((size_t)(N * T * H * W * C) * sizeof(float));
    for (int64_t i = 0; i < N * T * H * W; i++) memcpy(xc + i * C, scvrl_f32(xw) + i * 2 * C + C, (size_t)C * sizeof(float));
    int64_t wn[5] = { C, 1, 3, 3, 3 };
    scvrl_tensor *w = input(ctx, 5, wn, 56), *b = input(ctx, 1, wn, 57);
    double *ref = (double *)calloc(200000, sizeof(double));
    int64_t o[3];
    { int s[3] = { 1, 2, 2 }, p[3] = { 1, 1, 1 };
      ref_conv(xc, g, 1, scvrl_f32(w), wn, scvrl_f32(b), s, p, (int)C, ref, o);
      check(ctx, "conv3d depthwise ndhwc C=70 strided view, bias", scvrl_conv3d(ctx, x, w, b, s, p, (int)C, SCVRL_LAYOUT_NDHWC), ref, 1e-6); }
    { int s[3] = { 1, 4, 4 }, p[3] = { 1, 1, 1 };
      ref_conv(xc, g, 1, scvrl_f32(w), wn, NULL, s, p, (int)C, ref, o);
      check(ctx, "conv3d depthwise ndhwc C=70 strided view s(1,4,4)", scvrl_conv3d(ctx, x, w, NULL, s, p, (int)C, SCVRL_LAYOUT_NDHWC), ref, 1e-6); }
    // max pool (1,3,3)/(1,2,2) on the same view, then with NaNs planted in the wide tensor
    int k[3] = { 1, 3, 3 }, s[3] = { 1, 2, 2 }, p[3] = { 0, 1, 1 };
    for (int i = 0; i < 3; i++) o[i] = (xne[1 + i] + 2 * p[i] - k[i]) / s[i] + 1;
    int64_t nout = N * o[0] * o[1] * o[2] * C;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            const int64_t at_[3][4] = { { 0, 1, 2, 3 }, { 1, 2, 0, 0 }, { 1, 0, 6, 5 } };   // (n, t, h, w)
            const int64_t ch[3] = { 0, 17, 69 };
            for (int q = 0; q < 3; q++) {
                int64_t i = (((at_[q][0] * T + at_[q][1]) * H + at_[q][2]) * W + at_[q][3]);
                scvrl_f32(xw)[i * 2 * C + C + ch[q]] = NAN; xc[i * C + ch[q]] = NAN;
            }
        }
        int64_t nnan_ref = 0;
        for (int64_t n = 0; n < N; n++) for (int64_t t = 0; t < o[0]; t++) for (int64_t h = 0; h < o[1]; h++)
        for (int64_t ww = 0; ww < o[2]; ww++) for (int64_t c = 0; c < C; c++) {
            double m = -INFINITY; int nan = 0;
            for (int a = 0; a < k[0]; a++) for (int bb = 0; bb < k[1]; bb++) for (int e = 0; e < k[2]; e++) {
                int64_t it = t * s[0] - p[0] + a, ih = h * s[1] - p[1] + bb, iw = ww * s[2] - p[2] + e;
                if (it < 0 || ih < 0 || iw < 0 || it >= T || ih >= H || iw >= W) continue;
                float v = xc[(((n * T + it) * H + ih) * W + iw) * C + c];
                if (v != v) nan = 1; else if (v > m) m = v;
            }
            ref[(((n * o[0] + t) * o[1] + h) * o[2] + ww) * C + c] = nan ? NAN : m;
            nnan_ref += nan;
        }
        scvrl_tensor *y = scvrl_maxpool3d(ctx, x, k, s, p, SCVRL_LAYOUT_NDHWC);
        if (pass == 0) { check(ctx, "maxpool3d ndhwc C=70 strided view", y, ref, 0); continue; }
        scvrl_mark_output(y);
        scvrl_graph *gr = scvrl_graph_new();
        scvrl_graph_expand(gr, y);
        scvrl_graph_compute(gr, NULL, NULL, 0);
        int64_t bad = 0;
        for (int64_t i = 0; i < nout; i++) {
            double r = ref[i]; float v = scvrl_f32(y)[i];
            if ((r != r) != (v != v) || (r == r && v != (float)r)) bad++;
        }
        test_check(bad == 0 && nnan_ref > 0, "maxpool3d ndhwc: NaN in a window gives NaN, the rest exact", "%lld mismatches", (long long)bad);
        scvrl_graph_free(gr);
    }
    free(ref); free(xc);
}

static void pool_case(scvrl_ctx *ctx, const char *name, const int64_t g[5], int layout, const int k[3], const int s[3], const int p[3]) {
    int64_t xne[5] = { g[0], g[1], g[2], g[3], g[4] };
    if (layout) { xne[1] = g[2]; xne[2] = g[3]; xne[3] = g[4]; xne[4] = g[1]; }
    scvrl_tensor *x = input(ctx, 5, xne, 60);
    int64_t o[3];
    for (int i = 0; i < 3; i++) o[i] = (g[2 + i] + 2 * p[i] - k[i]) / s[i] + 1;
    double *ref = (double *)calloc(20000, sizeof(double));
    const float *X = scvrl_f32(x);
    for (int64_t n = 0; n < g[0]; n++) for (int64_t c = 0; c < g[1]; c++)
    for (int64_t t = 0; t < o[0]; t++) for (int64_t h = 0; h < o[1]; h++) for (int64_t w = 0; w < o[2]; w++) {
        double m = -INFINITY;
        for (int a = 0; a < k[0]; a++) for (int b = 0; b < k[1]; b++) for (int e = 0; e < k[2]; e++) {
            int64_t it = t * s[0] - p[0] + a, ih = h * s[1] - p[1] + b, iw = w * s[2] - p[2] + e;
            if (it < 0 || ih < 0 || iw < 0 || it >= g[2] || ih >= g[3] || iw >= g[4]) continue;
            int64_t xi = layout == 0 ? (((n * g[1] + c) * g[2] + it) * g[3] + ih) * g[4] + iw
                                     : (((n * g[2] + it) * g[3] + ih) * g[4] + iw) * g[1] + c;
            if (X[xi] > m) m = X[xi];
        }
        int64_t oi = layout == 0 ? (((n * g[1] + c) * o[0] + t) * o[1] + h) * o[2] + w
                                 : (((n * o[0] + t) * o[1] + h) * o[2] + w) * g[1] + c;
        ref[oi] = m;
    }
    check(ctx, name, scvrl_maxpool3d(ctx, x, k, s, p, (scvrl_layout)layout), ref, 0);
    free(ref);
}

static void test_pool(scvrl_ctx *ctx) {
    { int64_t g[5] = { 2, 5, 3, 7, 6 }; int k[3] = { 1, 3, 3 }, s[3] = { 1, 2, 2 }, p[3] = { 0, 1, 1 };
      pool_case(ctx, "maxpool3d skip (1,3,3)/(1,2,2) ndhwc", g, 1, k, s, p); }
    { int64_t g[5] = { 1, 3, 5, 6, 7 }; int k[3] = { 3, 2, 3 }, s[3] = { 2, 2, 1 }, p[3] = { 1, 1, 1 };
      pool_case(ctx, "maxpool3d odd ncdhw", g, 0, k, s, p); }
    // all-negative input: padding must never win
    int64_t ne[5] = { 1, 1, 1, 2, 2 };
    scvrl_tensor *x = scvrl_new_data(ctx, SCVRL_DT_F32, 5, ne);
    for (int i = 0; i < 4; i++) scvrl_f32(x)[i] = -5.0f - (float)i;
    int k[3] = { 1, 3, 3 }, s[3] = { 1, 2, 2 }, p[3] = { 0, 1, 1 };
    double ref[1] = { -5.0 };
    check(ctx, "maxpool3d padding never wins", scvrl_maxpool3d(ctx, x, k, s, p, SCVRL_LAYOUT_NCDHW), ref, 0);
}

static void test_rows(scvrl_ctx *ctx) {
    int64_t ne[2] = { 5, 13 }, nd = 13;
    scvrl_tensor *x = input(ctx, 2, ne, 70), *w = input(ctx, 1, &nd, 71), *b = input(ctx, 1, &nd, 72);
    scvrl_f32(x)[3] = 30.0f;       // a large value: softmax must subtract the max
    double ln[65], sm[65], lsm[65], l2[65];
    for (int r = 0; r < 5; r++) {
        const float *xr = scvrl_f32(x) + r * 13;
        double mu = 0, var = 0, mx = -INFINITY, se = 0, n2 = 0;
        for (int i = 0; i < 13; i++) { mu += xr[i]; mx = xr[i] > mx ? xr[i] : mx; n2 += (double)xr[i] * xr[i]; }
        mu /= 13;
        for (int i = 0; i < 13; i++) { var += (xr[i] - mu) * (xr[i] - mu); se += exp(xr[i] - mx); }
        var /= 13;
        for (int i = 0; i < 13; i++) {
            ln[r * 13 + i] = (xr[i] - mu) / sqrt(var + 1e-6) * scvrl_f32(w)[i] + scvrl_f32(b)[i];
            sm[r * 13 + i] = exp(xr[i] - mx) / se;
            lsm[r * 13 + i] = xr[i] - mx - log(se);
            l2[r * 13 + i] = xr[i] / sqrt(n2);
        }
    }
    check(ctx, "layer_norm eps 1e-6", scvrl_layer_norm(ctx, x, w, b, 1e-6f), ln, 1e-6);
    check(ctx, "softmax", scvrl_softmax(ctx, x), sm, 1e-6);
    check(ctx, "log_softmax", scvrl_log_softmax(ctx, x), lsm, 1e-6);
    check(ctx, "l2_normalize", scvrl_l2_normalize(ctx, x, 1e-12f), l2, 1e-6);
    scvrl_tensor *tg = scvrl_new_1d(ctx, SCVRL_DT_I32, 5);
    int32_t tv[5] = { 0, 12, 3, 7, 7 };
    memcpy(tg->data, tv, sizeof tv);
    double ce[5];
    for (int r = 0; r < 5; r++) ce[r] = -lsm[r * 13 + tv[r]];
    check(ctx, "cross_entropy", scvrl_cross_entropy(ctx, x, tg), ce, 1e-6);
}

// Rows long enough for the vector paths (D = 100: three 32-blocks and a tail; D = 96), with and
// without affine parameters, values offset from 0 so the mean matters.
static void test_layer_norm_long(scvrl_ctx *ctx) {
    for (int64_t D = 96; D <= 100; D += 4) {
        int64_t ne[2] = { 7, D };
        scvrl_tensor *x = input(ctx, 2, ne, 73), *w = input(ctx, 1, &D, 74), *b = input(ctx, 1, &D, 75);
        for (int64_t i = 0; i < 7 * D; i++) scvrl_f32(x)[i] = 3.0f + 2.0f * scvrl_f32(x)[i];
        double *ref = (double *)malloc((size_t)(7 * D) * sizeof(double)), *ref2 = (double *)malloc((size_t)(7 * D) * sizeof(double));
        for (int64_t r = 0; r < 7; r++) {
            const float *xr = scvrl_f32(x) + r * D;
            double mu = 0, var = 0;
            for (int64_t i = 0; i < D; i++) mu += xr[i];
            mu /= (double)D;
            for (int64_t i = 0; i < D; i++) var += (xr[i] - mu) * (xr[i] - mu);
            var /= (double)D;
            for (int64_t i = 0; i < D; i++) {
                ref2[r * D + i] = (xr[i] - mu) / sqrt(var + 1e-6);
                ref[r * D + i] = ref2[r * D + i] * scvrl_f32(w)[i] + scvrl_f32(b)[i];
            }
        }
        char name[64];
        snprintf(name, sizeof name, "layer_norm D=%lld", (long long)D);
        check(ctx, name, scvrl_layer_norm(ctx, x, w, b, 1e-6f), ref, 1e-6);
        snprintf(name, sizeof name, "layer_norm D=%lld no affine", (long long)D);
        check(ctx, name, scvrl_layer_norm(ctx, x, NULL, NULL, 1e-6f), ref2, 1e-6);
        free(ref); free(ref2);
    }
}

static void test_attention(scvrl_ctx *ctx) {
    int64_t B = 2, H = 3, Nq = 70, Nk = 19, d = 8;      // Nq spans two query blocks
    int64_t nq[4] = { B, H, Nq, d }, nk[4] = { B, H, Nk, d };
    scvrl_tensor *q = input(ctx, 4, nq, 80), *k = input(ctx, 4, nk, 81), *v = input(ctx, 4, nk, 82);
    double *ref = (double *)malloc((size_t)(B * Nq * H * d) * sizeof(double)), s[19];
    float sc = 0.35f;
    for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) for (int64_t i = 0; i < Nq; i++) {
        double m = -INFINITY, z = 0;
        for (int64_t j = 0; j < Nk; j++) {
            double a = 0;
            for (int64_t c = 0; c < d; c++) a += (double)scvrl_f32(q)[((b * H + h) * Nq + i) * d + c] * scvrl_f32(k)[((b * H + h) * Nk + j) * d + c];
            s[j] = a * sc; m = s[j] > m ? s[j] : m;
        }
        for (int64_t j = 0; j < Nk; j++) { s[j] = exp(s[j] - m); z += s[j]; }
        for (int64_t c = 0; c < d; c++) {
            double o = 0;
            for (int64_t j = 0; j < Nk; j++) o += s[j] / z * scvrl_f32(v)[((b * H + h) * Nk + j) * d + c];
            ref[((b * Nq + i) * H + h) * d + c] = o;
        }
    }
    check(ctx, "attention Nq != Nk, out [B,Nq,h,d]", scvrl_attention(ctx, q, k, v, sc), ref, 1e-6);
    free(ref);
}

// Attention through the blocked kernel: q/k/v strided as MViT's qkv split gives them
// ([B, N, 3, h, d] permuted to [3, B, h, N, d] and sliced), Nk not a multiple of the key panel,
// Nq = 1 and Nq just past a query panel or block, several heads, d past a channel panel.
static void attention_case(scvrl_ctx *ctx, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d, float sc, int strided) {
    scvrl_tensor *q, *k, *v;
    const float *Q, *K, *V;          // the data, and element strides of (b, h, n); c is contiguous
    int64_t sq[3], sk[3];
    if (strided) {
        int64_t nq5[5] = { B, Nq, 3, H, d }, nk5[5] = { B, Nk, 3, H, d };
        int perm[5] = { 2, 0, 3, 1, 4 };
        scvrl_tensor *bq = input(ctx, 5, nq5, 83), *bkv = input(ctx, 5, nk5, 84);
        scvrl_tensor *xq = scvrl_permute(ctx, bq, perm), *xkv = scvrl_permute(ctx, bkv, perm);
        q = scvrl_reshape_4d(ctx, scvrl_slice(ctx, xq, 0, 0, 1), B, H, Nq, d);
        k = scvrl_reshape_4d(ctx, scvrl_slice(ctx, xkv, 0, 1, 1), B, H, Nk, d);
        v = scvrl_reshape_4d(ctx, scvrl_slice(ctx, xkv, 0, 2, 1), B, H, Nk, d);
        Q = scvrl_f32(bq); K = scvrl_f32(bkv) + H * d; V = scvrl_f32(bkv) + 2 * H * d;
        sq[0] = Nq * 3 * H * d; sq[1] = d; sq[2] = 3 * H * d;
        sk[0] = Nk * 3 * H * d; sk[1] = d; sk[2] = 3 * H * d;
    } else {
        int64_t nq[4] = { B, H, Nq, d }, nk[4] = { B, H, Nk, d };
        q = input(ctx, 4, nq, 85); k = input(ctx, 4, nk, 86); v = input(ctx, 4, nk, 87);
        Q = scvrl_f32(q); K = scvrl_f32(k); V = scvrl_f32(v);
        sq[0] = H * Nq * d; sq[1] = Nq * d; sq[2] = d;
        sk[0] = H * Nk * d; sk[1] = Nk * d; sk[2] = d;
    }
    double *ref = (double *)malloc((size_t)(B * Nq * H * d) * sizeof(double)), *s = (double *)malloc((size_t)Nk * sizeof(double));
    for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) for (int64_t i = 0; i < Nq; i++) {
        double m = -INFINITY, z = 0;
        for (int64_t j = 0; j < Nk; j++) {
            double acc = 0;
            for (int64_t c = 0; c < d; c++)
                acc += (double)Q[b * sq[0] + h * sq[1] + i * sq[2] + c] * K[b * sk[0] + h * sk[1] + j * sk[2] + c];
            s[j] = acc * sc; m = s[j] > m ? s[j] : m;
        }
        for (int64_t j = 0; j < Nk; j++) { s[j] = exp(s[j] - m); z += s[j]; }
        for (int64_t c = 0; c < d; c++) {
            double o = 0;
            for (int64_t j = 0; j < Nk; j++) o += s[j] / z * V[b * sk[0] + h * sk[1] + j * sk[2] + c];
            ref[((b * Nq + i) * H + h) * d + c] = o;
        }
    }
    char name[128];
    snprintf(name, sizeof name, "attention B=%lld h=%lld Nq=%lld Nk=%lld d=%lld scale %.3g%s", (long long)B, (long long)H,
             (long long)Nq, (long long)Nk, (long long)d, sc, strided ? " (qkv-strided)" : "");
    check(ctx, name, scvrl_attention(ctx, q, k, v, sc), ref, 1e-6);
    free(ref); free(s);
}

static void test_attention_blocked(scvrl_ctx *ctx) {
    attention_case(ctx, 1, 2, 130, 393, 96, 0.10206f, 1);   // MViT stage shapes (Nq cut short), 3 query blocks
    attention_case(ctx, 2, 3, 1, 29, 20, 0.5f, 1);          // one query
    attention_case(ctx, 1, 4, 33, 15, 16, 0.25f, 0);        // a query panel + 1, a key panel + 1
    attention_case(ctx, 1, 1, 65, 1, 14, 0.3f, 1);          // one key
    attention_case(ctx, 1, 2, 40, 70, 30, 4.0f, 0);         // peaked softmax
    attention_case(ctx, 1, 2, 40, 70, 30, -0.7f, 1);        // negative scale
}

static void test_shape_ops(scvrl_ctx *ctx) {
    int64_t ne[3] = { 3, 4, 5 };
    scvrl_tensor *x = input(ctx, 3, ne, 90);
    const float *X = scvrl_f32(x);
    double r[60];
    // permute + cont
    for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) r[(k * 3 + i) * 4 + j] = X[(i * 4 + j) * 5 + k];
    int perm[3] = { 2, 0, 1 };
    check(ctx, "permute+cont", scvrl_cont(ctx, scvrl_permute(ctx, x, perm)), r, 0);
    // slice of dim 1
    for (int i = 0; i < 3; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 5; k++) r[(i * 2 + j) * 5 + k] = X[(i * 4 + j + 1) * 5 + k];
    check(ctx, "slice", scvrl_slice(ctx, x, 1, 1, 2), r, 0);
    // reshape of a transposed view (forces a copy) 
    for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) r[(i * 5 + k) * 4 + j] = X[(i * 4 + j) * 5 + k];
    check(ctx, "reshape of transposed", scvrl_reshape_2d(ctx, scvrl_transpose(ctx, x, 1, 2), 15, 4), r, 0);
    // transposed copies big enough for the tiled path: ragged 16-tiles both ways, and a leading dim
    {
        int64_t nb3[3] = { 3, 21, 37 };
        scvrl_tensor *xb = input(ctx, 3, nb3, 93);
        double *rb = (double *)malloc(3 * 21 * 37 * sizeof(double));
        for (int i = 0; i < 3; i++) for (int j = 0; j < 21; j++) for (int k = 0; k < 37; k++)
            rb[(i * 37 + k) * 21 + j] = scvrl_f32(xb)[(i * 21 + j) * 37 + k];
        check(ctx, "cont of a transpose [3,37,21]", scvrl_cont(ctx, scvrl_transpose(ctx, xb, 1, 2)), rb, 0);
        int64_t n2[2] = { 300, 40 };
        scvrl_tensor *x2 = input(ctx, 2, n2, 94);
        double *r2 = (double *)malloc(300 * 40 * sizeof(double));
        for (int j = 0; j < 300; j++) for (int k = 0; k < 40; k++) r2[k * 300 + j] = scvrl_f32(x2)[j * 40 + k];
        check(ctx, "cont of a transpose [40,300]", scvrl_cont(ctx, scvrl_transpose(ctx, x2, 0, 1)), r2, 0);
        free(rb); free(r2);
    }
    // sum over dims
    double s1[15], s0[20], sall[1] = { 0 };
    for (int i = 0; i < 3; i++) for (int k = 0; k < 5; k++) { s1[i * 5 + k] = 0; for (int j = 0; j < 4; j++) s1[i * 5 + k] += X[(i * 4 + j) * 5 + k]; }
    for (int j = 0; j < 20; j++) { s0[j] = 0; for (int i = 0; i < 3; i++) s0[j] += X[i * 20 + j]; }
    for (int i = 0; i < 60; i++) sall[0] += X[i];
    check(ctx, "sum dim 1", scvrl_sum(ctx, x, 1, 0), s1, 1e-6);
    check(ctx, "sum dim 0", scvrl_sum(ctx, x, 0, 0), s0, 1e-6);
    check(ctx, "sum all", scvrl_sum_all(ctx, x), sall, 1e-6);
    // concat along the middle
    int64_t nb[3] = { 3, 2, 5 };
    scvrl_tensor *y = input(ctx, 3, nb, 91);
    double c[90];
    for (int i = 0; i < 3; i++) for (int j = 0; j < 6; j++) for (int k = 0; k < 5; k++)
        c[(i * 6 + j) * 5 + k] = j < 4 ? X[(i * 4 + j) * 5 + k] : scvrl_f32(y)[(i * 2 + j - 4) * 5 + k];
    check(ctx, "concat dim 1", scvrl_concat(ctx, x, y, 1), c, 0);
    // index_select along dim 1 (a frame permutation)
    scvrl_tensor *idx = scvrl_new_1d(ctx, SCVRL_DT_I32, 4);
    int32_t iv[4] = { 2, 3, 0, 1 };
    memcpy(idx->data, iv, sizeof iv);
    for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) r[(i * 4 + j) * 5 + k] = X[(i * 4 + iv[j]) * 5 + k];
    check(ctx, "index_select dim 1", scvrl_index_select(ctx, x, 1, idx), r, 0);
    // expand
    int64_t n1[2] = { 1, 5 }, ne2[2] = { 4, 5 };
    scvrl_tensor *row = input(ctx, 2, n1, 92);
    for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) r[j * 5 + k] = scvrl_f32(row)[k];
    check(ctx, "expand", scvrl_cont(ctx, scvrl_expand(ctx, row, 2, ne2)), r, 0);
}

static void test_dropout(scvrl_ctx *ctx) {
    int64_t n = 100000;
    scvrl_tensor *x = scvrl_new_data(ctx, SCVRL_DT_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) scvrl_f32(x)[i] = 1.0f;
    scvrl_tensor *y = scvrl_dropout(ctx, x, 0.3f, 9);
    scvrl_graph *g = scvrl_graph_new();
    g->seed = 11;
    scvrl_mark_output(y);
    scvrl_graph_expand(g, y);
    scvrl_graph_compute(g, NULL, NULL, 0);
    int64_t zeros = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = scvrl_f32(y)[i];
        int drop = scvrl_rng_uniform(11, 9, (uint64_t)i) < 0.3f;
        if (v == 0.0f) zeros++;
        if (drop ? v != 0.0f : fabsf(v - 1.0f / 0.7f) > 1e-6f) bad++;
    }
    test_check(bad == 0, "dropout mask follows the RNG, kept values scaled by 1/(1-p)", "%lld mismatches", (long long)bad);
    double frac = (double)zeros / (double)n;
    test_check(fabs(frac - 0.3) < 0.01, "dropout rate", "dropped %.4f, want 0.3", frac);
    int64_t ne[2] = { 2000, 3 };
    scvrl_tensor *x2 = scvrl_new_data(ctx, SCVRL_DT_F32, 2, ne);
    for (int64_t i = 0; i < 6000; i++) scvrl_f32(x2)[i] = 1.0f;
    scvrl_tensor *y2 = scvrl_drop_path(ctx, x2, 0.25f, 4);
    scvrl_graph *g2 = scvrl_graph_new();
    g2->seed = 3;
    scvrl_mark_output(y2);
    scvrl_graph_expand(g2, y2);
    scvrl_graph_compute(g2, NULL, NULL, 0);
    int64_t rows_bad = 0, dropped = 0;
    for (int64_t r = 0; r < 2000; r++) {
        float a = scvrl_f32(y2)[r * 3];
        if (a == 0.0f) dropped++;
        for (int c = 1; c < 3; c++) if (scvrl_f32(y2)[r * 3 + c] != a) rows_bad++;
        if (a != 0.0f && fabsf(a - 1.0f / 0.75f) > 1e-6f) rows_bad++;
    }
    test_check(rows_bad == 0 && fabs((double)dropped / 2000 - 0.25) < 0.04, "drop_path drops whole rows",
               "%lld bad rows, %lld dropped", (long long)rows_bad, (long long)dropped);
    scvrl_graph_free(g); scvrl_graph_free(g2);
}

// LINEAR fused with the GELU or ADD that follows it (CPU backend): the same bits as the separate
// kernels, and close to a double reference. Sizes: tiles cut at the right edge, a total that is
// not a multiple of 16 (GELU's scalar tail), the linear as either operand of the add, and a
// linear with two readers (not fused).
static void test_fusion(scvrl_ctx *ctx) {
    int64_t R = 301, I = 45, O1 = 70, O2 = 29;
    int64_t nx[2] = { R, I }, nw1[2] = { O1, I }, nw2[2] = { O2, O1 }, ns[2] = { R, O2 };
    scvrl_tensor *x = input(ctx, 2, nx, 110), *w1 = input(ctx, 2, nw1, 111), *b1 = input(ctx, 1, nw1, 112);
    scvrl_tensor *w2 = input(ctx, 2, nw2, 113), *b2 = input(ctx, 1, nw2, 114), *sk = input(ctx, 2, ns, 115);
    float *out[2][3];
    int nfused = 0;
    for (int pass = 0; pass < 2; pass++) {
        scvrl__fuse = pass == 0;
        scvrl_tensor *h = scvrl_gelu(ctx, scvrl_linear(ctx, x, w1, b1));                    // fused (GELU)
        scvrl_tensor *y = scvrl_add(ctx, sk, scvrl_linear(ctx, h, w2, b2));                 // fused (ADD, 2nd operand)
        scvrl_tensor *l3 = scvrl_linear(ctx, h, w2, NULL);
        scvrl_tensor *z = scvrl_add(ctx, scvrl_add(ctx, l3, y), l3);                        // l3 read twice: not fused
        scvrl_tensor *outs[3] = { h, y, z };
        scvrl_graph *g = scvrl_graph_new();
        for (int k = 0; k < 3; k++) { scvrl_mark_output(outs[k]); scvrl_graph_expand(g, outs[k]); }
        scvrl_graph_compute(g, NULL, NULL, 0);
        const scvrl__plan *P = (const scvrl__plan *)g->plan;
        if (pass == 0) for (int i = 0; i < g->n; i++) nfused += P->fuse[i];
        for (int k = 0; k < 3; k++) {
            int64_t n = scvrl_nelements(outs[k]);
            out[pass][k] = (float *)malloc((size_t)n * sizeof(float));
            memcpy(out[pass][k], outs[k]->data, (size_t)n * sizeof(float));
        }
        if (pass == 0) {   // h and y against double loops (from the float inputs; h as computed)
            double *rh = (double *)malloc((size_t)(R * O1) * sizeof(double)), *ry = (double *)malloc((size_t)(R * O2) * sizeof(double));
            for (int64_t r = 0; r < R; r++) for (int64_t o = 0; o < O1; o++) {
                double a = scvrl_f32(b1)[o];
                for (int64_t k = 0; k < I; k++) a += (double)scvrl_f32(x)[r * I + k] * scvrl_f32(w1)[o * I + k];
                rh[r * O1 + o] = 0.5 * a * (1.0 + erf(a / sqrt(2.0)));
            }
            for (int64_t r = 0; r < R; r++) for (int64_t o = 0; o < O2; o++) {
                double a = scvrl_f32(b2)[o] + scvrl_f32(sk)[r * O2 + o];
                for (int64_t k = 0; k < O1; k++) a += (double)out[0][0][r * O1 + k] * scvrl_f32(w2)[o * O1 + k];
                ry[r * O2 + o] = a;
            }
            double eh = test_rel_err_f(out[0][0], rh, R * O1), ey = test_rel_err_f(out[0][1], ry, R * O2);
            char name[128];
            snprintf(name, sizeof name, "linear+gelu, linear+add fused: rel err %.2e, %.2e (%d pairs fused)", eh, ey, nfused);
            test_check(eh <= 1e-6 && ey <= 1e-6 && nfused == 2, name, "above 1e-6 or not fused");
            free(rh); free(ry);
        }
        scvrl_graph_free(g);
    }
    scvrl__fuse = -1;
    int same = !memcmp(out[0][0], out[1][0], (size_t)(R * O1) * 4) && !memcmp(out[0][1], out[1][1], (size_t)(R * O2) * 4) &&
               !memcmp(out[0][2], out[1][2], (size_t)(R * O2) * 4);
    test_check(same, "fused and separate kernels give the same bytes", "outputs differ");
    for (int pass = 0; pass < 2; pass++) for (int k = 0; k < 3; k++) free(out[pass][k]);
}

// DROP_PATH fused with the residual ADD that reads it (CPU backend): fused in the plan, the same
// bytes as the separate kernels, and every row either the residual alone (dropped) or residual +
// x / (1 - p), about p of the rows dropped.
static void test_fusion_drop_path(scvrl_ctx *ctx) {
    int64_t R = 400, C = 37, ne[2] = { R, C };
    scvrl_tensor *x = input(ctx, 2, ne, 120), *o = input(ctx, 2, ne, 121);
    float *out[2];
    int nfused = 0;
    for (int pass = 0; pass < 2; pass++) {
        scvrl__fuse = pass == 0;
        scvrl_tensor *y = scvrl_add(ctx, o, scvrl_drop_path(ctx, x, 0.3f, 77));
        scvrl_mark_output(y);
        scvrl_graph *g = scvrl_graph_new();
        g->seed = 5;
        scvrl_graph_expand(g, y);
        scvrl_graph_compute(g, NULL, NULL, 0);
        if (pass == 0) for (int i = 0; i < g->n; i++) nfused += ((const scvrl__plan *)g->plan)->fuse[i];
        out[pass] = (float *)malloc((size_t)(R * C) * sizeof(float));
        memcpy(out[pass], y->data, (size_t)(R * C) * sizeof(float));
        scvrl_graph_free(g);
    }
    scvrl__fuse = -1;
    int64_t bad = 0, dropped = 0;
    for (int64_t r = 0; r < R; r++) {
        int drop = out[0][r * C] == scvrl_f32(o)[r * C];
        dropped += drop;
        for (int64_t c = 0; c < C; c++) {
            float xo = scvrl_f32(o)[r * C + c], want = drop ? xo : xo + scvrl_f32(x)[r * C + c] * (1.0f / 0.7f);
            if (out[0][r * C + c] != want) bad++;
        }
    }
    char name[160];
    snprintf(name, sizeof name, "drop_path + add fused (%d pair): same bytes as separate, rows kept or dropped whole (%lld of %lld dropped)",
             nfused, (long long)dropped, (long long)R);
    test_check(nfused == 1 && !memcmp(out[0], out[1], (size_t)(R * C) * 4) && !bad && fabs((double)dropped / R - 0.3) < 0.07, name,
               "%lld elements off", (long long)bad);
    free(out[0]); free(out[1]);
}

// Same graph twice gives the same bytes; the plan reuses memory (peak < sum of all nodes).
static void test_determinism_and_plan(void) {
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t ne[2] = { 300, 96 }, nw[2] = { 384, 96 }, nw2[2] = { 96, 384 };
    scvrl_tensor *x = input(ctx, 2, ne, 1), *w1 = input(ctx, 2, nw, 2), *w2 = input(ctx, 2, nw2, 3);
    scvrl_tensor *h = x;
    int64_t total = 0;
    for (int i = 0; i < 6; i++) {
        h = scvrl_add(ctx, h, scvrl_linear(ctx, scvrl_gelu(ctx, scvrl_linear(ctx, scvrl_layer_norm(ctx, h, NULL, NULL, 1e-6f), w1, NULL)), w2, NULL));
        total += 300 * (96 * 3 + 384 * 2) * 4;
    }
    scvrl_mark_output(h);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, h);
    scvrl_graph_compute(g, NULL, NULL, 0);
    float *a = (float *)malloc(300 * 96 * 4);
    memcpy(a, h->data, 300 * 96 * 4);
    scvrl_graph_compute(g, NULL, NULL, 0);
    test_check(!memcmp(a, h->data, 300 * 96 * 4), "same graph, same bytes", "outputs differ between runs");
    size_t peak = scvrl_graph_activation_bytes(g);
    char name[96];
    snprintf(name, sizeof name, "memory plan reuses buffers (%.2f of %.2f MB)", peak / 1e6, total / 1e6);
    test_check(peak < (size_t)total / 3, name, "peak too high");
    // the sized layout (a backend storing some nodes at 2 bytes an element): with no sizes it is the
    // plan itself; with every other node at 2 bytes no two nodes that are live at once share a byte
    // (liveness found here from the graph: from a node's step to its last reader's) and it is smaller
    int n = g->n;
    const int64_t *offs = scvrl_graph_plan(g, NULL);
    int64_t *o1 = (int64_t *)malloc((size_t)n * 8), *o2 = (int64_t *)malloc((size_t)n * 8);
    uint8_t *el = (uint8_t *)calloc((size_t)n, 1);
    int *last = (int *)malloc((size_t)n * sizeof(int)), same = scvrl_graph_plan_sized(g, NULL, o1) == peak, k = 0, clash = 0;
    for (int i = 0; i < n; i++) { same &= o1[i] == offs[i]; if (offs[i] >= 0) el[i] = (k++ % 2) ? 2 : 0; last[i] = i; }
    size_t small = scvrl_graph_plan_sized(g, el, o2);
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < SCVRL_MAX_SRC; s++)
            if (g->nodes[i]->src[s]) { int b = scvrl_view_base(g->nodes[i]->src[s], NULL)->id; if (b >= 0 && b < n && last[b] < i) last[b] = i; }
        if (g->nodes[i]->flags & SCVRL_F_OUTPUT) last[scvrl_view_base(g->nodes[i], NULL)->id] = n;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (o2[i] < 0 || o2[j] < 0 || (o2[i] >= 0) != (offs[i] >= 0) || j > last[i]) continue;
            int64_t ei = o2[i] + scvrl_nelements(g->nodes[i]) * (el[i] ? el[i] : 4), ej = o2[j] + scvrl_nelements(g->nodes[j]) * (el[j] ? el[j] : 4);
            if (o2[i] < ej && o2[j] < ei) clash++;
        }
    snprintf(name, sizeof name, "sized plan: the plan without sizes, %d clashes with half the nodes at 2 bytes (%.2f of %.2f MB)", clash,
             small / 1e6, peak / 1e6);
    test_check(same && !clash && small < peak, name, same ? "live nodes share memory or no saving" : "differs from the plan");
    // the placed layout: every third allocated node takes its memory 7 steps early (live from its
    // birth), the node after it none (-1): no clashes over the longer lives, no offset for the -1s
    int *birth = (int *)calloc((size_t)n + 1, sizeof(int)), nb = 0, none_ok = 1;
    k = 0;
    for (int i = 0; i < n; i++) {
        birth[i] = i;
        if (offs[i] < 0) continue;
        if (k % 3 == 0 && i >= 7) { birth[i] = i - 7; nb++; }
        else if (k % 3 == 1 && i > 0 && birth[i - 1] != i - 1) birth[i] = -1;
        k++;
    }
    scvrl_graph_plan_placed(g, el, birth, o2);
    clash = 0;
    for (int i = 0; i < n; i++) {
        if (birth[i] < 0) { none_ok &= o2[i] == -1; continue; }
        for (int j = 0; j < n; j++) {
            if (j == i || o2[i] < 0 || o2[j] < 0 || birth[j] < 0) continue;
            if (birth[j] > last[i] || birth[i] > last[j]) continue;      // lives [birth, last] do not meet
            int64_t ei = o2[i] + scvrl_nelements(g->nodes[i]) * (el[i] ? el[i] : 4), ej = o2[j] + scvrl_nelements(g->nodes[j]) * (el[j] ? el[j] : 4);
            if (o2[i] < ej && o2[j] < ei) clash++;
        }
    }
    snprintf(name, sizeof name, "placed plan: %d nodes born early, %d clashes, unallocated nodes without offsets", nb, clash);
    test_check(nb > 3 && !clash && none_ok, name, none_ok ? "nodes live at once share memory" : "a node born -1 got memory");
    free(birth);
    free(o1); free(o2); free(el); free(last);
    free(a);
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
}

static void test_rng(void) {
    // the same values tests/ref/scvrl_rng.py prints (see tests/data/rng_values.txt)
    FILE *f = fopen("tests/data/rng_values.txt", "r");
    if (!f) { test_skip("rng matches the Python reference", "tests/data/rng_values.txt not found (run from the repo root)"); return; }
    char line[256];
    int bad = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long seed, stream, i, want;
        char s[200];
        double u;
        if (sscanf(line, "rng_u64 %llu %llu %llu %llx", &seed, &stream, &i, &want) == 4) {
            n++; if (scvrl_rng_u64(seed, stream, i) != want) bad++;
        } else if (sscanf(line, "fnv1a64 %199s %llx", s, &want) == 2) {
            n++; if (scvrl_fnv1a64(s) != want) bad++;
        } else if (sscanf(line, "rng_uniform %llu %llu %llu %lf", &seed, &stream, &i, &u) == 4) {
            n++; if ((double)scvrl_rng_uniform(seed, stream, i) != u) bad++;
        }
    }
    fclose(f);
    test_check(n > 0 && bad == 0, "rng matches the Python reference", "%d of %d values differ", bad, n);
}

// A NaN in a row makes that row NaN (as PyTorch), so a bad step is seen, never laundered.
static void test_nan_propagates(scvrl_ctx *ctx) {
    int64_t ne[2] = { 3, 8 }, nw[2] = { 5, 8 };
    scvrl_tensor *x = input(ctx, 2, ne, 95), *w = input(ctx, 2, nw, 96);
    scvrl_f32(x)[2] = NAN;
    scvrl_tensor *outs[6] = { scvrl_linear(ctx, x, w, NULL), scvrl_layer_norm(ctx, x, NULL, NULL, 1e-6f), scvrl_softmax(ctx, x),
                              scvrl_l2_normalize(ctx, x, 1e-12f), scvrl_relu(ctx, x), scvrl_log_softmax(ctx, x) };
    const char *nm[6] = { "linear", "layer_norm", "softmax", "l2_normalize", "relu", "log_softmax" };
    for (int i = 0; i < 6; i++) {
        scvrl_mark_output(outs[i]);
        scvrl_graph *g = scvrl_graph_new();
        scvrl_graph_expand(g, outs[i]);
        scvrl_graph_compute(g, NULL, NULL, 0);
        int64_t D = outs[i]->ne[1], nan0 = 0, nan1 = 0;
        for (int64_t j = 0; j < D; j++) { nan0 += isnan(scvrl_f32(outs[i])[j]); nan1 += isnan(scvrl_f32(outs[i])[D + j]); }
        int want0 = i == 4 ? 1 : (int)D;            // relu: elementwise; the rest: the whole row
        char name[96];
        snprintf(name, sizeof name, "NaN propagates through %s", nm[i]);
        test_check(nan0 == want0 && nan1 == 0, name, "%lld NaN in the row, %lld in a clean row", (long long)nan0, (long long)nan1);
        scvrl_graph_free(g);
    }
}

// LAYER_NORM_BACK fused with the gradient ADD that joins it to the residual stream's (CPU backend):
// two residual blocks (y = x + f(LN(x)), out = y + g(LN(y))) whose backward has a layer norm's input
// gradient added to the residual gradient twice: both pairs fused in the plan, and the parameter
// gradients the same bytes as the separate kernels; rows of 96 and of 37 (odd) values.
static void test_fusion_ln_back(void) {
    for (int k = 0; k < 2; k++) {
        int64_t D = k ? 37 : 96, nx[3] = { 3, 29, D }, nw[2] = { D, D }, nd[1] = { D };
        float *out[2];
        int nfused = 0;
        int64_t nx_ = 3 * 29 * D, tot = nx_ + 2 * D * D + 6 * D;
        for (int pass = 0; pass < 2; pass++) {
            scvrl__fuse = pass == 0;
            scvrl_ctx *ctx = scvrl_ctx_new(0);
            scvrl_tensor *in[8] = { input(ctx, 3, nx, 130), input(ctx, 2, nw, 131), input(ctx, 1, nd, 132), input(ctx, 2, nw, 133),
                                    input(ctx, 1, nd, 134), input(ctx, 1, nd, 135), input(ctx, 1, nd, 136), input(ctx, 1, nd, 137) };
            float *gb = (float *)calloc((size_t)tot, sizeof(float));
            for (int i = 0, o = 0; i < 8; o += (int)scvrl_nelements(in[i]), i++) { scvrl_mark_param(in[i]); in[i]->grad_data = gb + o; }
            scvrl_tensor *x = in[0];
            scvrl_tensor *y = scvrl_add(ctx, x, scvrl_linear(ctx, scvrl_layer_norm(ctx, x, in[4], in[5], 1e-6f), in[1], in[2]));
            scvrl_tensor *z = scvrl_add(ctx, y, scvrl_linear(ctx, scvrl_layer_norm(ctx, y, in[6], in[7], 1e-6f), in[3], NULL));
            scvrl_tensor *r = input(ctx, 3, nx, 138);
            scvrl_tensor *loss = scvrl_sum_all(ctx, scvrl_mul(ctx, z, r));
            scvrl_graph *g = scvrl_graph_new();
            scvrl_graph_expand(g, loss);
            scvrl_graph_backward(ctx, g, loss);
            scvrl_graph_compute(g, NULL, NULL, 0);
            const scvrl__plan *P = (const scvrl__plan *)g->plan;
            if (pass == 0) for (int i = 0; i < g->n; i++) nfused += P->fuse[i] && g->nodes[i]->op == SCVRL_OP_LAYER_NORM_BACK;
            out[pass] = gb;
            scvrl_graph_free(g);
            scvrl_ctx_free(ctx);
        }
        scvrl__fuse = -1;
        char name[160];
        snprintf(name, sizeof name, "layer_norm_back + residual gradient add fused (%d pairs, rows of %lld): same bytes as separate",
                 nfused, (long long)D);
        test_check(nfused == 2 && !memcmp(out[0], out[1], (size_t)tot * 4), name, nfused != 2 ? "not fused" : "gradients differ");
        free(out[0]); free(out[1]);
    }
}

int main(void) {
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    test_binary(ctx);
    test_unary(ctx);
    test_matmul(ctx);
    test_linear(ctx);
    test_conv(ctx);
    test_pool(ctx);
    test_ndhwc_strided(ctx);
    test_rows(ctx);
    test_layer_norm_long(ctx);
    test_attention(ctx);
    test_attention_blocked(ctx);
    test_shape_ops(ctx);
    test_dropout(ctx);
    test_nan_propagates(ctx);
    test_fusion(ctx);
    test_fusion_drop_path(ctx);
    test_fusion_ln_back();
    test_determinism_and_plan();
    test_rng();
    scvrl_ctx_free(ctx);
    return test_done();
}
