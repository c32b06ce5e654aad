// test-eval: the evaluation kit of examples/common/probe.h and the eval program.
//   probe       logistic regression learns a separable set (100% train, high test), matches a naive
//               gradient-descent reference, cross-validation is deterministic (threads, repeats),
//               eigendecomposition, folds and low-shot subsets, multi-view softmax averaging
//   shuffle     on synthetic clips through probe_extract + probe_video_perm + probe_shuffle_eval (the
//               path of `eval shuffle`): a frame-difference model drops, a frame-average model does not
//   knn         constructed features with an exact expected accuracy and temperature weighting
//   program     `eval` end to end on a tiny synthetic set (skipped if examples/eval is not built); clip
//               modes through the loader; `eval flow` (the flow oracle) on 6 motion classes; the per-class
//               top-1 / confusion report of linear, finetune and flow against a count made in the test
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "scvrl.h"
#include "probe.h"
#include "synth.h"
#include "vwrite.h"
#include "test.h"

static double gauss(uint64_t seed, uint64_t i) { return scvrl_rng_normal(seed, 7, i); }

// n rows of D features in C well-separated Gaussian blobs (centres 6 apart on the first axes).
static void blobs(float *X, int *y, int n, int D, int C, uint64_t seed, double spread) {
    for (int i = 0; i < n; i++) {
        y[i] = i % C;
        for (int j = 0; j < D; j++) X[i * D + j] = (float)(spread * gauss(seed, (uint64_t)(i * D + j)) + (j == y[i] ? 6.0 : 0.0) + 3.0);
    }
}

static void test_separable(void) {
    enum { N = 120, NT = 300, D = 12, K = 4 };
    static float X[N * D], Xt[NT * D];
    static int y[N], yt[NT];
    blobs(X, y, N, D, K, 1, 1.0);
    blobs(Xt, yt, NT, D, K, 2, 1.0);
    probe_linear m;
    probe_cv_opts o = probe_cv_defaults();
    o.quiet = 1;
    probe_cv_result r;
    char err[256];
    int rc = probe_linear_train(&m, X, y, N, D, K, &o, &r, err, sizeof err);
    double *prob = (double *)malloc(sizeof(double) * NT * K);
    if (!rc) rc = probe_linear_predict(&m, Xt, NT, 1, prob, NULL, err, sizeof err);
    double acc = rc ? 0 : probe_topk(prob, yt, NT, K, 1);
    char name[160];
    snprintf(name, sizeof name, "probe: separable blobs: train %.3f, test %.3f (l2 %g)", r.train_acc, acc, r.l2);
    test_check(!rc && r.train_acc == 1.0 && acc >= 0.97, name, "rc %d: %s", rc, err);
    free(prob);
    probe_linear_free(&m);
}

// J and its gradient by plain loops (double), for the reference.
static double naive_grad(const float *X, const int *y, int n, int D, int C, double l2, const double *W, const double *b,
                         double *gW, double *gb) {
    double f = 0, z[8];
    for (int k = 0; k < C * D; k++) gW[k] = l2 * W[k];
    for (int c = 0; c < C; c++) gb[c] = 0;
    for (int i = 0; i < n; i++) {
        double m = -1e300, s = 0;
        for (int c = 0; c < C; c++) { z[c] = b[c]; for (int j = 0; j < D; j++) z[c] += W[c * D + j] * X[i * D + j]; m = fmax(m, z[c]); }
        for (int c = 0; c < C; c++) s += exp(z[c] - m);
        f += m + log(s) - z[y[i]];
        for (int c = 0; c < C; c++) {
            double r = exp(z[c] - m) / s - (c == y[i]);
            gb[c] += r / n;
            for (int j = 0; j < D; j++) gW[c * D + j] += r * X[i * D + j] / n;
        }
    }
    double wn = 0;
    for (int k = 0; k < C * D; k++) wn += W[k] * W[k];
    return f / n + 0.5 * l2 * wn;
}

static void test_vs_gradient_descent(void) {
    enum { N = 40, D = 5, K = 3 };
    float X[N * D];
    int y[N];
    blobs(X, y, N, D, K, 3, 2.5);           // overlapping: a proper minimum
    for (int k = 0; k < N * D; k++) X[k] = (X[k] - 3.0f) / 3.0f;
    double l2 = 0.05, W[K * D] = { 0 }, b[K] = { 0 }, gW[K * D], gb[K], f = 0;
    for (int it = 0; it < 30000; it++) {
        f = naive_grad(X, y, N, D, K, l2, W, b, gW, gb);
        for (int k = 0; k < K * D; k++) W[k] -= 0.5 * gW[k];
        for (int c = 0; c < K; c++) b[c] -= 0.5 * gb[c];
    }
    probe_linear m;
    probe_linear_alloc(&m, D, K);
    probe_fit_opts o = probe_fit_defaults();
    o.tol = 1e-11;
    char err[128];
    int rc = probe_linear_fit(&m, X, y, N, l2, &o, err, sizeof err);
    double dw = 0, db = 0;
    for (int k = 0; k < K * D; k++) dw = fmax(dw, fabs(m.W[k] - W[k]));
    // the bias is defined up to a constant shift (softmax): compare centred biases
    double mb = (m.b[0] + m.b[1] + m.b[2]) / 3, rb = (b[0] + b[1] + b[2]) / 3;
    for (int c = 0; c < K; c++) db = fmax(db, fabs((m.b[c] - mb) - (b[c] - rb)));
    double fo = probe_linear_objective(&m, X, y, N, l2);
    char name[200];
    snprintf(name, sizeof name, "probe: L-BFGS matches 30000 steps of naive gradient descent: |dW| %.1e, |db| %.1e, J %.8f vs %.8f (%d iters)",
             dw, db, fo, f, m.iters);
    test_check(!rc && dw < 1e-6 && db < 1e-6 && fabs(fo - f) < 1e-10, name, "differs");
    probe_linear_free(&m);
}

static void test_cv_deterministic(void) {
    enum { N = 90, D = 30, K = 3 };
    static float X[N * D];
    static int y[N];
    blobs(X, y, N, D, K, 5, 4.0);          // noisy, many irrelevant features: regularisation matters
    probe_cv_opts o = probe_cv_defaults();
    o.quiet = 1;
    probe_linear m1, m2, m3;
    probe_cv_result r1, r2, r3;
    char err[128];
    int rc = probe_linear_train(&m1, X, y, N, D, K, &o, &r1, err, sizeof err);
    rc |= probe_linear_train(&m2, X, y, N, D, K, &o, &r2, err, sizeof err);
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(nt > 1 ? 1 : 2);
#endif
    rc |= probe_linear_train(&m3, X, y, N, D, K, &o, &r3, err, sizeof err);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    int same = !rc && !memcmp(m1.W, m2.W, sizeof(double) * K * D) && !memcmp(m1.W, m3.W, sizeof(double) * K * D) &&
               r1.best == r2.best && r1.best == r3.best && !memcmp(r1.cv_acc, r3.cv_acc, sizeof(double) * 5);
    int best_is_max = 1;
    for (int i = 0; i < o.n_grid; i++) best_is_max &= r1.cv_acc[i] <= r1.cv_acc[r1.best];
    char name[200];
    snprintf(name, sizeof name, "probe: 5-fold CV picks l2 %g (held-out %.3f) bit-identically across runs and thread counts", r1.l2, r1.cv_acc[r1.best]);
    test_check(same && best_is_max, name, "runs differ or the choice is not the best held-out accuracy");
    int folds[N], cnt[5][K];
    memset(cnt, 0, sizeof cnt);
    probe_folds(y, N, K, 5, 0, folds);
    int balanced = 1;
    for (int i = 0; i < N; i++) cnt[folds[i]][y[i]]++;
    for (int f = 0; f < 5; f++) for (int c = 0; c < K; c++) balanced &= cnt[f][c] == 6;
    test_check(balanced, "probe: stratified folds hold each class equally", "unbalanced");
    probe_linear_free(&m1); probe_linear_free(&m2); probe_linear_free(&m3);
}

static void test_eigh(void) {
    enum { N = 9 };
    double A[N * N], V[N * N], w[N];
    for (int i = 0; i < N; i++) for (int j = 0; j <= i; j++) A[i * N + j] = A[j * N + i] = gauss(9, (uint64_t)(i * N + j));
    memcpy(V, A, sizeof A);
    int rc = probe_eigh(V, N, w);
    double err = 0, orth = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, o = 0;
            for (int k = 0; k < N; k++) { s += V[i * N + k] * w[k] * V[j * N + k]; o += V[k * N + i] * V[k * N + j]; }
            err = fmax(err, fabs(s - A[i * N + j]));
            orth = fmax(orth, fabs(o - (i == j)));
        }
    int sorted = 1;
    for (int i = 1; i < N; i++) sorted &= w[i] <= w[i - 1];
    char name[160];
    snprintf(name, sizeof name, "probe: eigendecomposition V diag(w) V^T = A (%.1e), V orthonormal (%.1e), w descending", err, orth);
    test_check(!rc && err < 1e-12 && orth < 1e-12 && sorted, name, "wrong");
}

static void test_subsets(void) {
    enum { N = 200, K = 5 };
    int y[N];
    for (int i = 0; i < N; i++) y[i] = (i * 7) % K;
    int64_t a[N], b[N];
    int64_t na = probe_subset(y, N, K, 0.1, 3, a), nb = probe_subset(y, N, K, 0.5, 3, b), n1 = probe_subset(y, N, K, 0.001, 3, b + 0);
    int per[K] = { 0 };
    for (int64_t i = 0; i < n1; i++) per[y[b[i]]]++;
    int ok1 = n1 == K;
    for (int c = 0; c < K; c++) ok1 &= per[c] == 1;
    nb = probe_subset(y, N, K, 0.5, 3, b);
    int nested = 1;
    for (int64_t i = 0; i < na; i++) {
        int found = 0;
        for (int64_t j = 0; j < nb; j++) found |= b[j] == a[i];
        nested &= found;
    }
    test_check(na == 20 && nb == 100 && ok1 && nested, "probe: low-shot subsets are stratified (>= 1 per class) and nested",
               "sizes %lld %lld %lld", (long long)na, (long long)nb, (long long)n1);
}

static void test_views(void) {
    // clip 0: one confident view for class 0, two milder ones for class 1: the softmax mean picks 1,
    // the logit mean would pick 0. clip 1: identical views: the mean is that view's softmax.
    double s[2 * 3 * 3] = { 5, 0, 0, 0, 2.4, 0, 0, 2.4, 0, 1, 2, 3, 1, 2, 3, 1, 2, 3 };
    double p[6];
    probe_views_average(s, 2, 3, 3, p);
    double e1 = exp(2.4), a0 = (exp(5) / (exp(5) + 2) + 2 / (e1 + 2)) / 3, a1 = (1 / (exp(5) + 2) + 2 * e1 / (e1 + 2)) / 3;
    double z = exp(1) + exp(2) + exp(3);
    double err = fmax(fabs(p[0] - a0), fabs(p[1] - a1));
    err = fmax(err, fabs(p[5] - exp(3) / z));
    int y[2] = { 1, 2 };
    char name[160];
    snprintf(name, sizeof name, "views: softmax scores averaged over views (err %.1e), not logits: top-1 %.2f", err, probe_topk(p, y, 2, 3, 1));
    test_check(err < 1e-12 && probe_argmax(p, 3) == 1 && probe_topk(p, y, 2, 3, 1) == 1.0, name, "wrong");
    double sc[4 * 4] = { 2, 1, 0, 0, 1, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0.5, 1 };   // rows: labels 0, 0, 2, 3
    int yl[4] = { 0, 0, 2, 3 };
    double pa[2];
    double all = probe_pair_accuracy(sc, yl, 4, 4, 2, pa);
    test_check(all == 0.5 && pa[0] == 0.5 && pa[1] == 0.5, "pair accuracy: true logit strictly above its partner's (ties miss)",
               "%g %g %g", all, pa[0], pa[1]);
}

// ---- shuffle test on synthetic clips -----------------------------------------------------------
enum { ST = 8, SH = 16, SN = 80 };
// Item i: a bright 3x3 square on grey moving right (class 0) at 1..2 px/frame, or the exact frame
// reversal of such a clip (class 1, moving left): both classes show the same frames, so only order
// tells them apart.
static int sy_label(int64_t i) { return (int)(i % 2); }
static int clip_source(void *ctx, int64_t item, int v, float *clip, char *err, size_t errlen) {
    (void)v; (void)err; (void)errlen;
    int64_t i = item + (ctx ? *(const int64_t *)ctx : 0);      // ctx: item offset (train 0, test 1000)
    double speed = 1.0 + scvrl_rng_uniform(11, 1, (uint64_t)i), x0 = 3 + 2 * scvrl_rng_uniform(11, 2, (uint64_t)i);
    int y0 = 4 + (int)(8 * scvrl_rng_uniform(11, 3, (uint64_t)i));
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < ST; t++) {
            int xc = (int)lround(x0 + speed * (sy_label(i) ? ST - 1 - t : t));
            for (int yy = 0; yy < SH; yy++)
                for (int xx = 0; xx < SH; xx++)
                    clip[((c * ST + t) * SH + yy) * SH + xx] = (abs(xx - xc) <= 1 && abs(yy - y0) <= 1) ? 1.0f : 0.1f;
        }
    return 0;
}
static double centroid_x(const float *clip, int t) {
    double s = 0, w = 0;
    for (int yy = 0; yy < SH; yy++)
        for (int xx = 0; xx < SH; xx++) { double v = clip[(t * SH + yy) * SH + xx] - 0.1; s += v * xx; w += v; }
    return s / w;
}
// Model "average": the time-averaged frame's column profile (order-blind). Model "difference":
// the centroid's displacement between consecutive frames (sees order).
static int embed_average(void *ctx, const float *clips, int n, float *f, char *err, size_t errlen) {
    (void)ctx; (void)err; (void)errlen;
    for (int i = 0; i < n; i++)
        for (int xx = 0; xx < SH; xx++) {
            double s = 0;
            for (int t = 0; t < ST; t++) for (int yy = 0; yy < SH; yy++) s += clips[(int64_t)i * 3 * ST * SH * SH + (t * SH + yy) * SH + xx];
            f[i * SH + xx] = (float)(s / ST);
        }
    return 0;
}
static int embed_difference(void *ctx, const float *clips, int n, float *f, char *err, size_t errlen) {
    (void)ctx; (void)err; (void)errlen;
    for (int i = 0; i < n; i++) {
        const float *c = clips + (int64_t)i * 3 * ST * SH * SH;
        for (int t = 0; t < ST - 1; t++) f[i * SH + t] = (float)(centroid_x(c, t + 1) - centroid_x(c, t));
        for (int t = ST - 1; t < SH; t++) f[i * SH + t] = 0;
    }
    return 0;
}

static void shuffle_model(const char *what, probe_embed_fn fn, probe_shuffle_result *r) {
    static float Ftr[SN * SH], Fo[SN * SH], Fs[SN * SH];
    int ytr[SN], yte[SN], perms[SN * ST / 2];
    char names[SN][32], err[256];
    int rc = 0;
    for (int i = 0; i < SN; i++) {
        snprintf(names[i], sizeof names[i], "data/test/v%03d.mp4", i);
        rc |= probe_video_perm(42, names[i], ST, 2, perms + i * (ST / 2), err, sizeof err);
        ytr[i] = yte[i] = sy_label(i);
    }
    probe_extract_opts o = { SN, 1, ST, SH * SH, SH, 7, clip_source, NULL, fn, NULL, NULL, 2, 0, what, 1 };
    static const int64_t test_offset = 1000;
    rc |= probe_extract(&o, Ftr, NULL, err, sizeof err);     // training items 0..SN-1, ordered
    o.clip_ctx = (void *)&test_offset;                       // test items 1000.., ordered then shuffled
    rc |= probe_extract(&o, Fo, NULL, err, sizeof err);
    o.perms = perms;
    rc |= probe_extract(&o, Fs, NULL, err, sizeof err);
    probe_cv_opts cv = probe_cv_defaults();
    cv.quiet = 1;
    rc |= probe_shuffle_eval(Ftr, ytr, SN, Fo, Fs, yte, SN, 1, SH, 2, 1, &cv, r, err, sizeof err);
    if (rc) test_fail(what, "%s", err);
}

static void test_shuffle(void) {
    int perm[4], perm2[4];
    char err[128];
    probe_video_perm(42, "a/b/v001.mp4", 8, 2, perm, err, sizeof err);
    probe_video_perm(42, "elsewhere/v001.mp4", 8, 2, perm2, err, sizeof err);
    int ident = perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && perm[3] == 3;
    test_check(!ident && !memcmp(perm, perm2, sizeof perm), "shuffle: one fixed non-identity permutation per video (from seed and file name)", "wrong");
    probe_shuffle_result a, d;
    shuffle_model("frame-average model", embed_average, &a);
    shuffle_model("frame-difference model", embed_difference, &d);
    char name[200];
    snprintf(name, sizeof name, "shuffle: frame-average model: ordered %.3f, shuffled %.3f, drop %.3f (none)", a.acc_ordered, a.acc_shuffled, a.drop);
    test_check(a.drop == 0 && a.changed == 0, name, "an order-blind model changed under shuffles");
    snprintf(name, sizeof name, "shuffle: frame-difference model: ordered %.3f, shuffled %.3f, drop %.3f; pair %.3f -> %.3f",
             d.acc_ordered, d.acc_shuffled, d.drop, d.pair_ordered, d.pair_shuffled);
    test_check(d.acc_ordered >= 0.95 && d.drop >= 0.2, name, "no drop for an order-sensitive model");
}

// ---- kNN ----------------------------------------------------------------------------------------
static void test_knn(void) {
    const double deg = 3.14159265358979323846 / 180;
    double ra[7] = { 0, 10, 20, 90, 100, 110, 200 }, qa[5] = { 5, 95, 55, 190, 150 };
    int yr[7] = { 0, 0, 0, 1, 1, 1, 2 }, yq[5] = { 0, 1, 1, 2, 2 };
    float R[14], Q[10];
    for (int i = 0; i < 7; i++) { R[2 * i] = (float)(3 * cos(ra[i] * deg)); R[2 * i + 1] = (float)(3 * sin(ra[i] * deg)); }
    for (int i = 0; i < 5; i++) { Q[2 * i] = (float)cos(qa[i] * deg); Q[2 * i + 1] = (float)sin(qa[i] * deg); }
    double sc[15];
    char err[64];
    int rc = probe_knn(R, yr, 7, Q, 5, 2, 3, 3, 1.0, sc, err, sizeof err);
    double acc = probe_topk(sc, yq, 5, 3, 1);
    // query 4 (150 deg): neighbours 110 (cos 40), then 100 and 200 tie at cos 50 -> both in the top 3
    double e4 = fabs(sc[4 * 3 + 1] - (exp(cos(40 * deg)) + exp(cos(50 * deg)))) + fabs(sc[4 * 3 + 2] - exp(cos(50 * deg)));
    char name[160];
    snprintf(name, sizeof name, "knn: cosine, k 3: accuracy %.2f (expected 3/5), votes exp(sim/T) (err %.1e)", acc, e4);
    test_check(!rc && acc == 0.6 && e4 < 1e-6, name, "wrong");
    // temperature: one close neighbour of class 0 against two farther of class 1
    float R2[6] = { 1, 0, (float)cos(60 * deg), (float)sin(60 * deg), (float)cos(70 * deg), (float)sin(70 * deg) };
    float q2[2] = { (float)cos(10 * deg), (float)sin(10 * deg) };
    int y2[3] = { 0, 1, 1 };
    double s1[2], s2[2];
    probe_knn(R2, y2, 3, q2, 1, 2, 2, 3, 0.05, s1, err, sizeof err);
    probe_knn(R2, y2, 3, q2, 1, 2, 2, 3, 10.0, s2, err, sizeof err);
    test_check(probe_argmax(s1, 2) == 0 && probe_argmax(s2, 2) == 1, "knn: a low temperature lets the closest neighbour win, a high one the majority", "wrong");
}

// ---- the program ---------------------------------------------------------------------------------
static const char *eval_bin = "examples/eval";

static int sh(const char *cmd) { int rc = system(cmd); return rc == -1 ? -1 : WEXITSTATUS(rc); }

static int file_has(const char *path, const char *what) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, what) != NULL;
}

// Clip modes through the loader (what `eval --clips` reads): on a real video, every frame of the
// static clip equals the ordered clip's frame T/2, the shuffled clip is the ordered one permuted by
// clip_mode_frames (for evaluation and for fine-tuning samples), and the three differ.
static void test_loader_modes(const char *dir) {
    char list[600], err[1024];
    snprintf(list, sizeof list, "%s/train.csv", dir);
    ds_list L;
    ds_opts o = { NULL, 1, 1 };
    if (ds_load(list, &o, &L, err, sizeof err)) { test_fail("loader clip modes", "%s", err); return; }
    enum { T = 8, S = 64, HW = S * S, CL = 3 * T * HW };
    float *x[3], *p[3];
    int rc = 0;
    for (int m = 0; m < 3; m++) {
        ld_loader ld;
        ld_init(&ld, &L, T, 2, S, 11);
        ld.mode = m;
        ld.aug.p_gray = ld.aug.p_blur = ld.aug.p_jitter = 0;
        x[m] = (float *)malloc(sizeof(float) * CL); p[m] = (float *)malloc(sizeof(float) * CL);
        rc |= ld_eval_clip(&ld, 1, 0, 1, 0, 1, x[m], err, sizeof err);
        rc |= ld_pretrain_sample(&ld, 1, 3, 5, p[m], NULL, NULL, NULL, err, sizeof err);
        ld_free(&ld);
    }
    int frames[T];
    clip_mode_frames(CLIP_SHUFFLED, 11, L.items[1].path, T, frames);
    int st = 1, sh = 1, sp = 1, differ = 0;
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < T; t++) {
            st &= !memcmp(x[1] + (c * T + t) * HW, x[0] + (c * T + T / 2) * HW, sizeof(float) * HW);
            sh &= !memcmp(x[2] + (c * T + t) * HW, x[0] + (c * T + frames[t]) * HW, sizeof(float) * HW);
            sp &= !memcmp(p[1] + (c * T + t) * HW, p[0] + (c * T + T / 2) * HW, sizeof(float) * HW);
            sp &= !memcmp(p[2] + (c * T + t) * HW, p[0] + (c * T + frames[t]) * HW, sizeof(float) * HW);
        }
    differ = memcmp(x[0], x[1], sizeof(float) * CL) && memcmp(x[0], x[2], sizeof(float) * CL) && memcmp(x[1], x[2], sizeof(float) * CL);
    test_check(!rc && st && sh && sp && differ, "loader clip modes: static = centre frame x T, shuffled = the per-video permutation "
               "(eval clips and fine-tuning samples)", "rc %d (%s) static %d shuffled %d samples %d differ %d", rc, rc ? err : "", st, sh, sp, differ);
    for (int m = 0; m < 3; m++) { free(x[m]); free(p[m]); }
    ds_free(&L);
}

static void check_class_report(const char *what, const char *json, const char *val_list, int classes);

// A small synthetic set in dir (64 px, 24 frames, hard 1, motion labels, train and val splits; mp4 when
// FFmpeg can write it, else JPEG folders): 0, or -1 with err.
static int write_motion_set(const char *dir, int classes, int per_class, uint64_t seed, char *err, size_t errlen) {
    synth_dataset d;
    memset(&d, 0, sizeof d);
    d.out = dir; d.opts.size = 64; d.opts.frames = 24; d.opts.hard = 1; d.kind = SYNTH_KIND_MOTION; d.classes = classes; d.per_class = per_class;
    d.splits = (1 << SYNTH_TRAIN) | (1 << SYNTH_VAL); d.seed = seed;
    d.format = vwrite_available(VWRITE_MP4, NULL, 0) ? SYNTH_MP4 : SYNTH_JPG;
    return synth_check_dataset(&d, err, errlen) || synth_write_dataset(&d, NULL, NULL, err, errlen) ? -1 : 0;
}

static void test_program(void) {
    if (access(eval_bin, X_OK)) { test_skip("eval program", "%s is not built (make examples/eval)", eval_bin); return; }
    char dir[] = "/tmp/scvrl-test-eval-XXXXXX", err[512], cmd[4096];
    if (!mkdtemp(dir)) { test_fail("eval program", "mkdtemp"); return; }
    if (write_motion_set(dir, 4, 3, 5, err, sizeof err)) { test_skip("eval program", "%s", err); return; }
    test_loader_modes(dir);
    const char *m = "--model mvit-tiny --frames 8 --stride 2 --size 64 --batch 6 --quiet";
    snprintf(cmd, sizeof cmd, "%s linear %s --train %s/train.csv --val %s/val.csv --out %s/cache --json %s/lin.json >%s/lin.out 2>%s/lin.err",
             eval_bin, m, dir, dir, dir, dir, dir, dir);
    int rc = sh(cmd);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/lin.json", dir);
    test_check(rc == 0 && file_has(p1, "\"top1\"") && file_has(p1, "\"task\": \"linear\""), "eval linear: random init on a synthetic set writes its JSON", "rc %d", rc);
    snprintf(p2, sizeof p2, "%s/val.csv", dir);
    check_class_report("eval linear", p1, p2, 4);
    snprintf(cmd, sizeof cmd, "%s linear %s --train %s/train.csv --val %s/val.csv --out %s/cache --json %s/lin2.json 2>&1 >/dev/null | grep -c cached > %s/c.txt",
             eval_bin, "--model mvit-tiny --frames 8 --stride 2 --size 64 --batch 6", dir, dir, dir, dir, dir);
    sh(cmd);
    snprintf(p1, sizeof p1, "%s/c.txt", dir);
    snprintf(p2, sizeof p2, "%s/lin2.json", dir);
    test_check(file_has(p1, "2") && file_has(p2, "\"top1\""), "eval linear: the second run reads both feature sets from the cache", "not cached");
    snprintf(cmd, sizeof cmd, "%s shuffle %s --train %s/train.csv --val %s/val.csv --out %s/cache --l2 1e-3 --json %s/sh.json >/dev/null 2>&1 && "
             "%s knn %s --train %s/train.csv --val %s/val.csv --out %s/cache --k 3 --json %s/knn.json >/dev/null 2>&1",
             eval_bin, m, dir, dir, dir, dir, eval_bin, m, dir, dir, dir, dir);
    rc = sh(cmd);
    snprintf(p1, sizeof p1, "%s/sh.json", dir);
    snprintf(p2, sizeof p2, "%s/knn.json", dir);
    test_check(rc == 0 && file_has(p1, "\"drop\"") && file_has(p2, "\"task\": \"knn\""), "eval shuffle and knn run", "rc %d", rc);
    snprintf(cmd, sizeof cmd, "%s finetune %s --train %s/train.csv --val %s/val.csv --epochs 1 --views 2x1 --save %s/ft.safetensors --json %s/ft.json >/dev/null 2>&1 && "
             "%s perclass %s --weights2 %s/ft.safetensors --train %s/train.csv --val %s/val.csv --out %s/cache --l2 1e-3 --json %s/pc.json >/dev/null 2>&1",
             eval_bin, m, dir, dir, dir, dir, eval_bin, m, dir, dir, dir, dir, dir);
    rc = sh(cmd);
    snprintf(p1, sizeof p1, "%s/ft.json", dir);
    snprintf(p2, sizeof p2, "%s/pc.json", dir);
    test_check(rc == 0 && file_has(p1, "\"task\": \"finetune\"") && file_has(p2, "\"class_top1_b\""), "eval finetune (--save) and perclass on the saved model",
               "rc %d", rc);
    snprintf(p2, sizeof p2, "%s/val.csv", dir);
    check_class_report("eval finetune", p1, p2, 4);
    int help = 0;
    const char *subs[] = { "linear", "finetune", "shuffle", "lowshot", "knn", "perclass" };
    for (int i = 0; i < 6; i++) { snprintf(cmd, sizeof cmd, "%s %s --help > /dev/null", eval_bin, subs[i]); help += sh(cmd) == 0; }
    snprintf(cmd, sizeof cmd, "%s linear --train %s/missing.csv --val %s/val.csv 2>&1 | grep -q 'missing.csv'", eval_bin, dir, dir);
    test_check(help == 6 && sh(cmd) == 0, "eval: --help on every command; a missing list is named", "help %d/6", help);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
}

static double json_num(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char buf[65536], pat[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(buf, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

// Numbers of the JSON array under key in the file at path (null -> NAN; nested arrays flattened, row by row):
// up to max values into v; returns how many, or -1 when the key is missing.
static int json_array(const char *path, const char *key, double *v, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char buf[1 << 20];
    char pat[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(buf, pat);
    if (!p) return -1;
    p += strlen(pat);
    int k = 0, depth = 1;
    while (*p && depth > 0) {
        if (*p == '[') { depth++; p++; }
        else if (*p == ']') { depth--; p++; }
        else if (*p == ',' || *p == ' ') p++;
        else if (!strncmp(p, "null", 4)) { if (k < max) v[k] = NAN; k++; p += 4; }
        else { char *e; double x = strtod(p, &e); if (e == p) return -1; if (k < max) v[k] = x; k++; p = e; }
    }
    return k;
}

// The per-class report of `eval flow` / `linear` / `finetune` (one shared function) against a count made here:
// the labels from the val list itself, the predictions from the JSON's "pred" (one per val-list video);
// class_top1 and the confusion matrix must equal what this loop counts, and the diagonal must give top1.
static void check_class_report(const char *what, const char *json, const char *val_list, int classes) {
    enum { MAXN = 4096, MAXC = 32 };
    static double pred[MAXN], acc[MAXC], conf[MAXC * MAXC];
    static int label[MAXN];
    int64_t cnt[MAXC] = { 0 }, hit[MAXC] = { 0 }, cm[MAXC * MAXC] = { 0 };
    char name[300];
    int n = 0;
    FILE *f = fopen(val_list, "r");
    char line[1024];
    while (f && n < MAXN && fgets(line, sizeof line, f)) {
        char *sp = strrchr(line, ' ');
        if (sp) label[n++] = atoi(sp + 1);
    }
    if (f) fclose(f);
    int np = json_array(json, "pred", pred, MAXN), na = json_array(json, "class_top1", acc, MAXC);
    int nc = json_array(json, "confusion", conf, MAXC * MAXC);
    snprintf(name, sizeof name, "%s: per-class top-1 and confusion match a count of the val list's labels and the predictions", what);
    if (np != n || na != classes || nc != classes * classes || classes > MAXC) {
        test_fail(name, "pred %d (list %d), class_top1 %d, confusion %d for %d classes", np, n, na, nc, classes);
        return;
    }
    int64_t diag = 0, m = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(pred[i])) continue;
        int t = label[i], q = (int)pred[i];
        cnt[t]++; hit[t] += q == t; cm[t * classes + q]++; diag += q == t; m++;
    }
    int bad = 0;
    for (int c = 0; c < classes; c++) {
        double want = cnt[c] ? 100.0 * (double)hit[c] / (double)cnt[c] : NAN;
        if (cnt[c] ? fabs(acc[c] - want) > 1e-3 : isfinite(acc[c])) bad++;
        for (int q = 0; q < classes; q++) bad += (int64_t)conf[c * classes + q] != cm[c * classes + q];
    }
    double top1 = json_num(json, "top1");
    test_check(!bad && m > 0 && fabs(top1 - 100.0 * (double)diag / (double)m) < 1e-3, name, "%d mismatches; top1 %.4f vs %.4f",
               bad, top1, m ? 100.0 * (double)diag / (double)m : NAN);
}

// `eval flow` end to end (gates G3, G4 in miniature): 6 motion classes (left, right, up, down, cw, ccw),
// 12 videos per class at 64 px. Measured over seeds 1-3: motion top-1 56-74% (chance 16.7), appearance
// 5.6-12.5% (chance 6.25, 72 test videos: SE 2.9 points). The second run reads the features from the cache.
static void test_flow_oracle(void) {
    if (access(eval_bin, X_OK)) { test_skip("eval flow", "%s is not built (make examples/eval)", eval_bin); return; }
    char dir[] = "/tmp/scvrl-test-flow-XXXXXX", err[512], cmd[4096], pm[600], pa[600];
    if (!mkdtemp(dir)) { test_fail("eval flow", "mkdtemp"); return; }
    if (write_motion_set(dir, 6, 12, 3, err, sizeof err)) { test_skip("eval flow", "%s", err); return; }
    snprintf(cmd, sizeof cmd, "%s flow --train %s/train_motion.csv --val %s/val_motion.csv --cache %s/fc --quiet --json %s/m.json >/dev/null 2>&1 && "
             "%s flow --train %s/train_appearance.csv --val %s/val_appearance.csv --cache %s/fc --json %s/a.json 2>&1 >/dev/null | grep -c cached > %s/c.txt",
             eval_bin, dir, dir, dir, dir, eval_bin, dir, dir, dir, dir, dir);
    int rc = sh(cmd);
    snprintf(pm, sizeof pm, "%s/m.json", dir);
    snprintf(pa, sizeof pa, "%s/a.json", dir);
    double m = json_num(pm, "top1"), a = json_num(pa, "top1");
    char name[300], cpath[600];
    snprintf(cpath, sizeof cpath, "%s/c.txt", dir);
    snprintf(name, sizeof name, "eval flow: the flow oracle on 6 motion classes at 64 px: motion top-1 %.1f%% (chance 16.7, pass >= 35), "
             "appearance %.1f%% (chance 6.25, pass <= 25), features cached across label lists", m, a);
    test_check(rc == 0 && m >= 35 && a <= 25 && file_has(cpath, "2"), name, "rc %d", rc);
    snprintf(cpath, sizeof cpath, "%s/val_motion.csv", dir);
    check_class_report("eval flow", pm, cpath, 6);
    snprintf(cmd, sizeof cmd, "%s flow --help >/dev/null && %s flow --train %s/missing.csv --val %s/val_motion.csv 2>&1 | grep -q missing.csv", eval_bin, eval_bin, dir, dir);
    test_check(sh(cmd) == 0, "eval flow: --help; a missing list is named", "no");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
}

int main(void) {
    test_separable();
    test_vs_gradient_descent();
    test_cv_deterministic();
    test_eigh();
    test_subsets();
    test_views();
    test_shuffle();
    test_knn();
    test_program();
    test_flow_oracle();
    return test_done();
}
