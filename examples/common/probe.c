// examples/common/probe.c - see probe.h.
#include "probe.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "clip.h"

#ifndef NAN
#define NAN (0.0 / 0.0)
#endif

static void probe__err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// splitmix64: the probe's own counter generator (folds, subsets).
static uint64_t probe__mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t probe__rng(uint64_t seed, uint64_t stream, uint64_t i) {
    return probe__mix(probe__mix(seed ^ probe__mix(stream)) + i);
}

// Fisher-Yates shuffle of a[0..n) from (seed, stream).
static void probe__shuffle(int64_t *a, int64_t n, uint64_t seed, uint64_t stream) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(probe__rng(seed, stream, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

// ============================================================================
// 1. Linear classifier
// ============================================================================
probe_fit_opts probe_fit_defaults(void) {
    probe_fit_opts o = { 1000, 1e-5, 10, 0 };
    return o;
}

int probe_linear_alloc(probe_linear *m, int D, int C) {
    memset(m, 0, sizeof *m);
    m->D = D; m->C = C;
    m->W = (double *)calloc((size_t)C * D + 1, sizeof(double));
    m->b = (double *)calloc((size_t)C + 1, sizeof(double));
    if (!m->W || !m->b) { probe_linear_free(m); return -1; }
    return 0;
}

void probe_linear_free(probe_linear *m) {
    free(m->W); free(m->b); free(m->mean); free(m->std);
    memset(m, 0, sizeof *m);
}

void probe_standardize_fit(const float *X, int64_t n, int D, double *mean, double *std) {
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < D; j++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++) s += X[i * D + j];
        double mu = n ? s / (double)n : 0;
        for (int64_t i = 0; i < n; i++) { double d = X[i * D + j] - mu; q += d * d; }
        double sd = n ? sqrt(q / (double)n) : 1;
        mean[j] = mu;
        std[j] = sd < 1e-8 ? 1.0 : sd;
    }
}

// The problem: rows (or all rows when rows == NULL) of X with labels y. The parameters are
// u = [U (C*D) | b (C)] with W = U * sc (per feature; sc NULL: 1): a diagonal preconditioner.
typedef struct {
    const float *X; const int *y; const int64_t *rows; int64_t n; int D, C; double l2;
    const double *sc;     // [D] or NULL
    double *R, *L, *Wt, *WT;  // scratch: residuals [n][C], per-row losses [n], W [C][D], W^T [D][C]
} probe__prob;

static const float *probe__row(const probe__prob *p, int64_t i) {
    return p->X + (p->rows ? p->rows[i] : i) * (int64_t)p->D;
}
static int probe__label(const probe__prob *p, int64_t i) { return p->y[p->rows ? p->rows[i] : i]; }

// Parallelise only work worth a fork (the result never depends on it).
#define PROBE__PAR(work) ((work) > 200000)

// Logits of one row: z[c] = W[c] . x + b[c].
static void probe__logits(const double *W, const double *b, const float *x, int D, int C, double *z) {
    for (int c = 0; c < C; c++) {
        const double *w = W + (int64_t)c * D;
        double s = b[c];
        for (int j = 0; j < D; j++) s += w[j] * (double)x[j];
        z[c] = s;
    }
}

// Softmax in place; returns logsumexp.
static double probe__softmax(double *z, int C) {
    double m = z[0], s = 0;
    for (int c = 1; c < C; c++) if (z[c] > m) m = z[c];
    for (int c = 0; c < C; c++) { z[c] = exp(z[c] - m); s += z[c]; }
    for (int c = 0; c < C; c++) z[c] /= s;
    return m + log(s);
}

// Residuals R = softmax - onehot and per-row losses L at W, b. Logits go through W^T (WT, [D][C])
// in blocks of 8 classes, so the inner loop vectorises; each logit still sums over j in order.
static void probe__residuals(const probe__prob *p, const double *W, const double *b, double *WT) {
    int D = p->D, C = p->C, C8 = C / 8 * 8;
    for (int c = 0; c < C; c++) for (int j = 0; j < D; j++) WT[(int64_t)j * C + c] = W[(int64_t)c * D + j];
    #pragma omp parallel for schedule(static) if (PROBE__PAR(p->n * (int64_t)D * C))
    for (int64_t i = 0; i < p->n; i++) {
        double *z = p->R + i * C;
        const float *x = probe__row(p, i);
        for (int c0 = 0; c0 < C8; c0 += 8) {
            double acc[8];
            for (int c = 0; c < 8; c++) acc[c] = b[c0 + c];
            for (int j = 0; j < D; j++) {
                const double xj = x[j], *w = WT + (int64_t)j * C + c0;
                for (int c = 0; c < 8; c++) acc[c] += w[c] * xj;
            }
            for (int c = 0; c < 8; c++) z[c0 + c] = acc[c];
        }
        for (int c = C8; c < C; c++) {
            double s = b[c];
            for (int j = 0; j < D; j++) s += WT[(int64_t)j * C + c] * (double)x[j];
            z[c] = s;
        }
        int y = probe__label(p, i);
        double zy = z[y], lse = probe__softmax(z, C);
        p->L[i] = lse - zy;
        z[y] -= 1.0;
    }
}

// acc[c][0..16) += R[i][c] * x_i[j0..j0+16) over all rows, for classes [c0, c1): a full block of 16
// features (constant trip count: vectorised) or a partial one.
static void probe__grad_block(const probe__prob *p, int j0, int nj, int c0, int c1, double *acc) {
    int C = p->C;
    for (int64_t i = 0; i < p->n; i++) {
        const float *x = probe__row(p, i) + j0;
        const double *r = p->R + i * C;
        for (int c = c0; c < c1; c++) {
            double rc = r[c], *a = acc + (c - c0) * 16;
            if (nj == 16) for (int j = 0; j < 16; j++) a[j] += rc * (double)x[j];
            else for (int j = 0; j < nj; j++) a[j] += rc * (double)x[j];
        }
    }
}

// g[c][j] = (1/n) sum_i R[i][c] x_i[j] + l2 W[c][j], in blocks of 16 features x 64 classes.
static void probe__grad_w(const probe__prob *p, const double *W, double inv, double *g) {
    int D = p->D, C = p->C, nb = (D + 15) / 16;
    #pragma omp parallel for schedule(static) if (PROBE__PAR(p->n * (int64_t)D * C))
    for (int blk = 0; blk < nb; blk++) {
        int j0 = blk * 16, j1 = j0 + 16 < D ? j0 + 16 : D;
        double acc[16 * 64];
        for (int c0 = 0; c0 < C; c0 += 64) {
            int c1 = c0 + 64 < C ? c0 + 64 : C;
            memset(acc, 0, sizeof acc);
            probe__grad_block(p, j0, j1 - j0, c0, c1, acc);
            for (int c = c0; c < c1; c++)
                for (int j = j0; j < j1; j++)
                    g[(int64_t)c * D + j] = acc[(c - c0) * 16 + (j - j0)] * inv + p->l2 * W[(int64_t)c * D + j];
        }
    }
}

// Objective and gradient (with respect to u) at u. Every sum in a fixed order.
static double probe__fg(const probe__prob *p, const double *u, double *g) {
    int D = p->D, C = p->C;
    int64_t CD = (int64_t)C * D;
    const double *W = u, *b = u + CD;
    if (p->sc) {
        for (int c = 0; c < C; c++) for (int j = 0; j < D; j++) p->Wt[(int64_t)c * D + j] = u[(int64_t)c * D + j] * p->sc[j];
        W = p->Wt;
    }
    probe__residuals(p, W, b, p->WT);
    double f = 0, inv = p->n ? 1.0 / (double)p->n : 0, wn = 0;
    for (int64_t i = 0; i < p->n; i++) f += p->L[i];
    for (int64_t k = 0; k < CD; k++) wn += W[k] * W[k];
    f = f * inv + 0.5 * p->l2 * wn;
    probe__grad_w(p, W, inv, g);
    if (p->sc) for (int c = 0; c < C; c++) for (int j = 0; j < D; j++) g[(int64_t)c * D + j] *= p->sc[j];
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int64_t i = 0; i < p->n; i++) s += p->R[i * C + c];
        g[CD + c] = s * inv;
    }
    return f;
}

// ---- symmetric eigendecomposition (EISPACK tred2 + tql2, as in JAMA) ----
static void probe__tred2(double *V, int n, double *d, double *e) {
#define VV(i, j) V[(int64_t)(i) * n + (j)]
    for (int j = 0; j < n; j++) d[j] = VV(n - 1, j);
    for (int i = n - 1; i > 0; i--) {
        double scale = 0, h = 0;
        for (int k = 0; k < i; k++) scale += fabs(d[k]);
        if (scale == 0) {
            e[i] = d[i - 1];
            for (int j = 0; j < i; j++) { d[j] = VV(i - 1, j); VV(i, j) = 0; VV(j, i) = 0; }
        } else {
            for (int k = 0; k < i; k++) { d[k] /= scale; h += d[k] * d[k]; }
            double f = d[i - 1], g = sqrt(h);
            if (f > 0) g = -g;
            e[i] = scale * g; h -= f * g; d[i - 1] = f - g;
            for (int j = 0; j < i; j++) e[j] = 0;
            for (int j = 0; j < i; j++) {
                f = d[j]; VV(j, i) = f; g = e[j] + VV(j, j) * f;
                for (int k = j + 1; k <= i - 1; k++) { g += VV(k, j) * d[k]; e[k] += VV(k, j) * f; }
                e[j] = g;
            }
            f = 0;
            for (int j = 0; j < i; j++) { e[j] /= h; f += e[j] * d[j]; }
            double hh = f / (h + h);
            for (int j = 0; j < i; j++) e[j] -= hh * d[j];
            for (int j = 0; j < i; j++) {
                f = d[j]; g = e[j];
                for (int k = j; k <= i - 1; k++) VV(k, j) -= (f * e[k] + g * d[k]);
                d[j] = VV(i - 1, j); VV(i, j) = 0;
            }
        }
        d[i] = h;
    }
    for (int i = 0; i < n - 1; i++) {
        VV(n - 1, i) = VV(i, i); VV(i, i) = 1;
        double h = d[i + 1];
        if (h != 0) {
            for (int k = 0; k <= i; k++) d[k] = VV(k, i + 1) / h;
            for (int j = 0; j <= i; j++) {
                double g = 0;
                for (int k = 0; k <= i; k++) g += VV(k, i + 1) * VV(k, j);
                for (int k = 0; k <= i; k++) VV(k, j) -= g * d[k];
            }
        }
        for (int k = 0; k <= i; k++) VV(k, i + 1) = 0;
    }
    for (int j = 0; j < n; j++) { d[j] = VV(n - 1, j); VV(n - 1, j) = 0; }
    VV(n - 1, n - 1) = 1;
    e[0] = 0;
}

static int probe__tql2(double *V, int n, double *d, double *e) {
    for (int i = 1; i < n; i++) e[i - 1] = e[i];
    e[n - 1] = 0;
    double f = 0, tst1 = 0, eps = ldexp(1.0, -52);
    for (int l = 0; l < n; l++) {
        tst1 = fmax(tst1, fabs(d[l]) + fabs(e[l]));
        int m = l;
        while (m < n - 1 && fabs(e[m]) > eps * tst1) m++;
        if (m > l) {
            int iter = 0;
            do {
                if (++iter > 60) return -1;
                double g = d[l], p = (d[l + 1] - g) / (2 * e[l]), r = hypot(p, 1.0);
                if (p < 0) r = -r;
                d[l] = e[l] / (p + r); d[l + 1] = e[l] * (p + r);
                double dl1 = d[l + 1], h = g - d[l];
                for (int i = l + 2; i < n; i++) d[i] -= h;
                f += h;
                p = d[m];
                double c = 1, c2 = 1, c3 = 1, el1 = e[l + 1], sn = 0, s2 = 0;
                for (int i = m - 1; i >= l; i--) {
                    c3 = c2; c2 = c; s2 = sn;
                    g = c * e[i]; h = c * p; r = hypot(p, e[i]);
                    e[i + 1] = sn * r; sn = e[i] / r; c = p / r;
                    p = c * d[i] - sn * g;
                    d[i + 1] = h + sn * (c * g + sn * d[i]);
                    for (int k = 0; k < n; k++) {
                        h = VV(k, i + 1);
                        VV(k, i + 1) = sn * VV(k, i) + c * h;
                        VV(k, i) = c * VV(k, i) - sn * h;
                    }
                }
                p = -sn * s2 * c3 * el1 * e[l] / dl1;
                e[l] = sn * p; d[l] = c * p;
            } while (fabs(e[l]) > eps * tst1);
        }
        d[l] += f; e[l] = 0;
    }
    return 0;
#undef VV
}

int probe_eigh(double *A, int n, double *w) {
    double *e = (double *)calloc((size_t)n + 1, sizeof(double));
    if (!e) return -1;
    probe__tred2(A, n, w, e);
    int rc = probe__tql2(A, n, w, e);
    free(e);
    if (rc) return -1;
    for (int i = 0; i < n - 1; i++) {          // descending, columns moved with their values
        int k = i;
        for (int j = i + 1; j < n; j++) if (w[j] > w[k]) k = j;
        if (k == i) continue;
        double t = w[i]; w[i] = w[k]; w[k] = t;
        for (int r = 0; r < n; r++) { t = A[(int64_t)r * n + i]; A[(int64_t)r * n + i] = A[(int64_t)r * n + k]; A[(int64_t)r * n + k] = t; }
    }
    return 0;
}

// Dot product with four partial sums (a fixed order, so still deterministic).
static double probe__dot(const double *a, const double *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}
// Largest gradient entry with respect to W (u's gradient divided by the scale).
static double probe__gmax(const probe__prob *p, const double *g, int64_t P) {
    double m = 0;
    int64_t CD = (int64_t)p->C * p->D;
    for (int c = 0; c < p->C; c++)
        for (int j = 0; j < p->D; j++) m = fmax(m, fabs(p->sc ? g[(int64_t)c * p->D + j] / p->sc[j] : g[(int64_t)c * p->D + j]));
    for (int64_t i = CD; i < P; i++) m = fmax(m, fabs(g[i]));
    return m;
}

// L-BFGS two-loop recursion: d = -H g from the pairs (S, Y) in ring order.
static void probe__direction(const double *g, double *d, double *S, double *Y, double *rho, double *alpha,
                             int hist, int head, int count, int64_t P) {
    for (int64_t k = 0; k < P; k++) d[k] = -g[k];
    for (int t = 0; t < count; t++) {
        int k = (head - 1 - t + hist) % hist;
        alpha[k] = rho[k] * probe__dot(S + k * P, d, P);
        for (int64_t q = 0; q < P; q++) d[q] -= alpha[k] * Y[k * P + q];
    }
    if (count) {
        int k = (head - 1 + hist) % hist;
        double gamma = probe__dot(S + k * P, Y + k * P, P) / probe__dot(Y + k * P, Y + k * P, P);
        for (int64_t q = 0; q < P; q++) d[q] *= gamma;
    }
    for (int t = count - 1; t >= 0; t--) {
        int k = (head - 1 - t + hist) % hist;
        double beta = rho[k] * probe__dot(Y + k * P, d, P);
        for (int64_t q = 0; q < P; q++) d[q] += (alpha[k] - beta) * S[k * P + q];
    }
}

// Minimises J from th (in place) by L-BFGS; returns the final objective, iterations in *iters.
static double probe__lbfgs(const probe__prob *p, double *th, int64_t P, const probe_fit_opts *o, int *iters,
                           double *work) {
    int hist = o->history > 0 ? o->history : 10;
    double *g = work, *gn = g + P, *d = gn + P, *xn = d + P, *S = xn + P, *Y = S + (int64_t)hist * P;
    double *rho = Y + (int64_t)hist * P, *alpha = rho + hist;
    double f = probe__fg(p, th, g);
    int head = 0, count = 0, it = 0;
    for (; it < o->max_iter && probe__gmax(p, g, P) >= o->tol; it++) {
        probe__direction(g, d, S, Y, rho, alpha, hist, head, count, P);
        double gd = probe__dot(g, d, P);
        if (!(gd < 0)) { count = 0; for (int64_t k = 0; k < P; k++) d[k] = -g[k]; gd = probe__dot(g, d, P); }
        double step = count ? 1.0 : fmin(1.0, 1.0 / sqrt(probe__dot(g, g, P))), fn = f;
        int ok = 0;
        for (int ls = 0; ls < 60 && !ok; ls++, step *= 0.5) {
            for (int64_t k = 0; k < P; k++) xn[k] = th[k] + step * d[k];
            fn = probe__fg(p, xn, gn);
            ok = fn <= f + 1e-4 * step * gd;
            if (ok) break;
        }
        if (!ok) break;                      // no decrease left at double precision
        double *s = S + (int64_t)head * P, *y = Y + (int64_t)head * P;
        for (int64_t k = 0; k < P; k++) { s[k] = xn[k] - th[k]; y[k] = gn[k] - g[k]; }
        double sy = probe__dot(s, y, P);
        if (sy > 1e-12 * sqrt(probe__dot(s, s, P) * probe__dot(y, y, P))) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % hist;
            if (count < hist) count++;
        }
        memcpy(th, xn, (size_t)P * sizeof(double));
        memcpy(g, gn, (size_t)P * sizeof(double));
        double df = f - fn;
        f = fn;
        if (df <= 1e-15 * fmax(1.0, fabs(f)) && probe__gmax(p, g, P) < 100 * o->tol) { it++; break; }
    }
    *iters = it;
    return f;
}

// Fit on the given rows (NULL: all n); sc: the preconditioner's per-feature scale (NULL: none).
static int probe__fit_rows(probe_linear *m, const float *X, const int *y, const int64_t *rows, int64_t n, double l2,
                           const double *sc, const probe_fit_opts *o, char *err, size_t errlen) {
    int D = m->D, C = m->C;
    for (int64_t i = 0; i < n; i++) {
        int yi = y[rows ? rows[i] : i];
        if (yi < 0 || yi >= C) { probe__err(err, errlen, "label %d of row %lld is outside 0..%d", yi, (long long)(rows ? rows[i] : i), C - 1); return -1; }
    }
    int64_t CD = (int64_t)C * D, P = CD + C;
    int hist = o->history > 0 ? o->history : 10;
    double *th = (double *)malloc((size_t)P * sizeof(double)), *Wt = (double *)malloc((size_t)CD * sizeof(double));
    double *WT = (double *)malloc((size_t)CD * sizeof(double));
    double *work = (double *)malloc(((size_t)(4 + 2 * hist) * (size_t)P + 2 * (size_t)hist) * sizeof(double));
    double *R = (double *)malloc((size_t)(n * C + 1) * sizeof(double)), *L = (double *)malloc((size_t)(n + 1) * sizeof(double));
    int rc = 0;
    if (!th || !Wt || !WT || !work || !R || !L) { probe__err(err, errlen, "out of memory fitting a %d x %d classifier on %lld rows", C, D, (long long)n); rc = -1; }
    if (!rc) {
        for (int64_t k = 0; k < CD; k++) th[k] = sc ? m->W[k] / sc[k % D] : m->W[k];
        memcpy(th + CD, m->b, (size_t)C * sizeof(double));
        probe__prob p = { X, y, rows, n, D, C, l2, sc, R, L, Wt, WT };
        m->loss = probe__lbfgs(&p, th, P, o, &m->iters, work);
        for (int64_t k = 0; k < CD; k++) m->W[k] = sc ? th[k] * sc[k % D] : th[k];
        memcpy(m->b, th + CD, (size_t)C * sizeof(double));
        m->l2 = l2;
    }
    free(th); free(Wt); free(WT); free(work); free(R); free(L);
    return rc;
}

int probe_linear_fit(probe_linear *m, const float *X, const int *y, int64_t n, double l2,
                     const probe_fit_opts *o, char *err, size_t errlen) {
    probe_fit_opts d = probe_fit_defaults();
    return probe__fit_rows(m, X, y, NULL, n, l2, NULL, o ? o : &d, err, errlen);
}

double probe_linear_objective(const probe_linear *m, const float *X, const int *y, int64_t n, double l2) {
    int64_t P = (int64_t)m->C * m->D + m->C;
    double *th = (double *)malloc((size_t)P * sizeof(double)), *g = (double *)malloc((size_t)P * sizeof(double));
    double *R = (double *)malloc((size_t)(n * m->C + 1) * sizeof(double)), *L = (double *)malloc((size_t)(n + 1) * sizeof(double));
    double *WT = (double *)malloc((size_t)P * sizeof(double)), f = NAN;
    if (th && g && R && L && WT) {
        memcpy(th, m->W, (size_t)m->C * m->D * sizeof(double));
        memcpy(th + (int64_t)m->C * m->D, m->b, (size_t)m->C * sizeof(double));
        probe__prob p = { X, y, NULL, n, m->D, m->C, l2, NULL, R, L, NULL, WT };
        f = probe__fg(&p, th, g);
    }
    free(th); free(g); free(R); free(L); free(WT);
    return f;
}

void probe_folds(const int *y, int64_t n, int C, int k, uint64_t seed, int *fold) {
    int64_t *idx = (int64_t *)malloc((size_t)(n + 1) * sizeof(int64_t));
    int next = 0;
    for (int c = 0; c < C; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) if (y[i] == c) idx[m++] = i;
        probe__shuffle(idx, m, seed, 0xF01D0000ull + (uint64_t)c);
        for (int64_t t = 0; t < m; t++) { fold[idx[t]] = next; next = (next + 1) % k; }
    }
    for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= C) fold[i] = 0;
    free(idx);
}

probe_cv_opts probe_cv_defaults(void) {
    static const double grid[] = { 1e-5, 1e-4, 1e-3, 1e-2, 1e-1 };
    probe_cv_opts o;
    memset(&o, 0, sizeof o);
    o.grid = grid; o.n_grid = 5; o.folds = 5; o.seed = 0; o.fit = probe_fit_defaults();
    return o;
}

// Held-out accuracy and mean log-loss of m on rows.
static void probe__heldout(const probe_linear *m, const float *X, const int *y, const int64_t *rows, int64_t n,
                           double *acc, double *loss) {
    int64_t hit = 0;
    double ls = 0;
    double *z = (double *)malloc((size_t)m->C * sizeof(double));
    for (int64_t t = 0; t < n; t++) {
        probe__logits(m->W, m->b, X + rows[t] * m->D, m->D, m->C, z);
        int yi = y[rows[t]];
        double zy = z[yi];
        int am = 0;
        for (int c = 1; c < m->C; c++) if (z[c] > z[am]) am = c;
        hit += am == yi;
        ls += probe__softmax(z, m->C) - zy;
    }
    free(z);
    *acc = n ? (double)hit / (double)n : NAN;
    *loss = n ? ls / (double)n : NAN;
}

// Grid order: indices sorted by decreasing l2.
static void probe__grid_order(const double *grid, int n, int *ord) {
    for (int i = 0; i < n; i++) ord[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && grid[ord[j]] > grid[ord[j - 1]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
}

// The preconditioner's basis: eigenvectors of the training covariance with non-negligible variance,
// and the features rotated into it. Rotation leaves the L2 problem unchanged; in this basis a
// diagonal scale 1/sqrt(s lambda_k + l2) makes the Hessian well conditioned.
typedef struct { int r, D; double *V, *lam; float *Z; } probe__basis;   // V [D][r], Z [n][r]

#define PROBE__CURV 0.25    // s: the softmax curvature the scale assumes

static void probe__basis_free(probe__basis *B) { free(B->V); free(B->lam); free(B->Z); memset(B, 0, sizeof *B); }

static int probe__basis_make(const float *Z, int64_t n, int D, probe__basis *B) {
    memset(B, 0, sizeof *B);
    double *S = (double *)calloc((size_t)D * D, sizeof(double)), *lam = (double *)malloc((size_t)D * sizeof(double));
    if (!S || !lam) { free(S); free(lam); return -1; }
    #pragma omp parallel for schedule(dynamic) if (PROBE__PAR(n * (int64_t)D * D))
    for (int j = 0; j < D; j++) {
        double *row = S + (int64_t)j * D;
        for (int64_t i = 0; i < n; i++) {
            const float *z = Z + i * D;
            double zj = z[j];
            for (int k = j; k < D; k++) row[k] += zj * (double)z[k];
        }
        for (int k = j; k < D; k++) row[k] /= (double)(n ? n : 1);
    }
    for (int j = 0; j < D; j++) for (int k = 0; k < j; k++) S[(int64_t)j * D + k] = S[(int64_t)k * D + j];
    if (probe_eigh(S, D, lam)) { free(S); free(lam); return -1; }
    int r = 0;
    while (r < D && lam[r] > 1e-9 * lam[0] && lam[r] > 0) r++;
    if (r < 1) r = 1;
    B->r = r; B->D = D; B->lam = lam;
    B->V = (double *)malloc((size_t)D * r * sizeof(double));
    B->Z = (float *)malloc((size_t)(n * r + 1) * sizeof(float));
    if (!B->V || !B->Z) { free(S); probe__basis_free(B); return -1; }
    for (int j = 0; j < D; j++) memcpy(B->V + (int64_t)j * r, S + (int64_t)j * D, (size_t)r * sizeof(double));
    free(S);
    #pragma omp parallel for schedule(static) if (PROBE__PAR(n * (int64_t)D * r))
    for (int64_t i = 0; i < n; i++) {
        double acc[64];
        for (int k0 = 0; k0 < r; k0 += 64) {
            int k1 = k0 + 64 < r ? k0 + 64 : r;
            memset(acc, 0, sizeof acc);
            for (int j = 0; j < D; j++) {
                double zj = Z[i * D + j];
                const double *v = B->V + (int64_t)j * r;
                for (int k = k0; k < k1; k++) acc[k - k0] += zj * v[k];
            }
            for (int k = k0; k < k1; k++) B->Z[i * r + k] = (float)acc[k - k0];
        }
    }
    return 0;
}

static void probe__scale(const probe__basis *B, double l2, double *sc) {
    for (int k = 0; k < B->r; k++) sc[k] = 1.0 / sqrt(PROBE__CURV * B->lam[k] + l2);
}

// Cross-validation over the grid on the rotated features; fills r->cv_acc, r->cv_loss, r->best.
static int probe__cv(const probe__basis *B, const int *y, int64_t n, int C, const probe_cv_opts *o, probe_cv_result *r,
                     char *err, size_t errlen) {
    int k = o->folds < 2 ? 2 : o->folds, ord[32], rc = 0, D = B->r;
    if ((int64_t)k > n) k = (int)n;
    int *fold = (int *)malloc((size_t)n * sizeof(int));
    int64_t *tr = (int64_t *)malloc((size_t)n * sizeof(int64_t)), *te = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    probe_linear *fm = (probe_linear *)calloc((size_t)k, sizeof(probe_linear));
    double *sc = (double *)malloc((size_t)D * sizeof(double));
    if (!fold || !tr || !te || !fm || !sc) { probe__err(err, errlen, "out of memory for cross-validation"); rc = -1; }
    for (int f = 0; !rc && f < k; f++) if (probe_linear_alloc(&fm[f], D, C)) { probe__err(err, errlen, "out of memory"); rc = -1; }
    if (!rc) probe_folds(y, n, C, k, o->seed, fold);
    probe__grid_order(o->grid, o->n_grid, ord);
    for (int gi = 0; gi < o->n_grid && !rc; gi++) {
        double acc = 0, loss = 0, l2 = o->grid[ord[gi]];
        probe__scale(B, l2, sc);
        for (int f = 0; f < k && !rc; f++) {
            int64_t ntr = 0, nte = 0;
            for (int64_t i = 0; i < n; i++) { if (fold[i] == f) te[nte++] = i; else tr[ntr++] = i; }
            rc = probe__fit_rows(&fm[f], B->Z, y, tr, ntr, l2, sc, &o->fit, err, errlen);
            double a, l;
            probe__heldout(&fm[f], B->Z, y, te, nte, &a, &l);
            acc += a * (double)nte; loss += l * (double)nte;
        }
        r->cv_acc[ord[gi]] = acc / (double)n;
        r->cv_loss[ord[gi]] = loss / (double)n;
        if (!o->quiet)
            fprintf(stderr, "probe: l2 %-8.1e %d-fold held-out accuracy %.4f, log-loss %.4f\n", l2, k, acc / (double)n, loss / (double)n);
    }
    r->best = ord[0];
    for (int gi = 1; gi < o->n_grid; gi++) {
        int i = ord[gi], b = r->best;
        if (r->cv_acc[i] > r->cv_acc[b] || (r->cv_acc[i] == r->cv_acc[b] && r->cv_loss[i] < r->cv_loss[b])) r->best = i;
    }
    for (int f = 0; f < k && fm; f++) probe_linear_free(&fm[f]);
    free(fm); free(fold); free(tr); free(te); free(sc);
    return rc;
}

// Fits along the grid (largest l2 first, warm-started) down to the chosen one, in the basis; then
// maps W back to the standardised features: W = W_basis V^T.
static int probe__fit_path(probe_linear *m, const probe__basis *B, const int *y, int64_t n, const probe_cv_opts *o, int best,
                           char *err, size_t errlen) {
    probe_linear mr;
    int ord[32], rc = 0;
    double *sc = (double *)malloc((size_t)B->r * sizeof(double));
    if (!sc || probe_linear_alloc(&mr, B->r, m->C)) { free(sc); probe__err(err, errlen, "out of memory"); return -1; }
    probe__grid_order(o->grid, o->n_grid, ord);
    for (int gi = 0; gi < o->n_grid && !rc; gi++) {
        probe__scale(B, o->grid[ord[gi]], sc);
        rc = probe__fit_rows(&mr, B->Z, y, NULL, n, o->grid[ord[gi]], sc, &o->fit, err, errlen);
        if (ord[gi] == best) break;
    }
    if (!rc) {
        for (int c = 0; c < m->C; c++)
            for (int j = 0; j < m->D; j++) {
                double s = 0;
                for (int k = 0; k < B->r; k++) s += mr.W[(int64_t)c * B->r + k] * B->V[(int64_t)j * B->r + k];
                m->W[(int64_t)c * m->D + j] = s;
            }
        memcpy(m->b, mr.b, (size_t)m->C * sizeof(double));
        m->l2 = mr.l2; m->iters = mr.iters; m->loss = mr.loss;
    }
    probe_linear_free(&mr);
    free(sc);
    return rc;
}

int probe_linear_train(probe_linear *m, const float *X, const int *y, int64_t n, int D, int C,
                       const probe_cv_opts *o, probe_cv_result *r, char *err, size_t errlen) {
    probe_cv_result tmp;
    if (!r) r = &tmp;
    memset(r, 0, sizeof *r);
    if (o->n_grid < 1 || o->n_grid > 32) { probe__err(err, errlen, "the l2 grid needs 1..32 values"); return -1; }
    if (n < 1) { probe__err(err, errlen, "no training rows"); return -1; }
    for (int64_t i = 0; i < n; i++) if (y[i] < 0 || y[i] >= C) { probe__err(err, errlen, "label %d of row %lld is outside 0..%d", y[i], (long long)i, C - 1); return -1; }
    if (probe_linear_alloc(m, D, C)) { probe__err(err, errlen, "out of memory"); return -1; }
    m->mean = (double *)malloc((size_t)D * sizeof(double));
    m->std = (double *)malloc((size_t)D * sizeof(double));
    float *Z = (float *)malloc((size_t)(n * D) * sizeof(float));
    probe__basis B;
    memset(&B, 0, sizeof B);
    int rc = !m->mean || !m->std || !Z ? -1 : 0;
    if (!rc) {
        probe_standardize_fit(X, n, D, m->mean, m->std);
        #pragma omp parallel for schedule(static) if (PROBE__PAR(n * (int64_t)D))
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < D; j++) Z[i * D + j] = (float)(((double)X[i * D + j] - m->mean[j]) / m->std[j]);
        rc = probe__basis_make(Z, n, D, &B);
    }
    if (rc) probe__err(err, errlen, "out of memory (or no eigendecomposition) for %lld x %d features", (long long)n, D);
    if (!rc && o->n_grid > 1) rc = probe__cv(&B, y, n, C, o, r, err, errlen);
    if (!rc) rc = probe__fit_path(m, &B, y, n, o, r->best, err, errlen);
    if (!rc) {
        r->l2 = m->l2;
        int64_t hit = 0;
        double *z = (double *)malloc((size_t)C * sizeof(double));
        for (int64_t i = 0; i < n && z; i++) { probe__logits(m->W, m->b, Z + i * D, D, C, z); hit += probe_argmax(z, C) == y[i]; }
        free(z);
        r->train_acc = (double)hit / (double)n;
    }
    probe__basis_free(&B);
    free(Z);
    if (rc) probe_linear_free(m);
    return rc;
}

int probe_linear_predict(const probe_linear *m, const float *X, int64_t n, int views, double *prob,
                         double *logits, char *err, size_t errlen) {
    int D = m->D, C = m->C;
    double *S = (double *)malloc((size_t)(n * views * C + 1) * sizeof(double));
    if (!S) { probe__err(err, errlen, "out of memory scoring %lld clips", (long long)n); return -1; }
    #pragma omp parallel if (PROBE__PAR(n * views * (int64_t)D * C))
    {
        float *x = (float *)malloc((size_t)D * sizeof(float));
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < n * views; r++) {
            const float *src = X + r * D;
            for (int j = 0; j < D; j++) x[j] = m->mean ? (float)(((double)src[j] - m->mean[j]) / m->std[j]) : src[j];
            probe__logits(m->W, m->b, x, D, C, S + r * C);
        }
        free(x);
    }
    if (logits) memcpy(logits, S, (size_t)(n * views * C) * sizeof(double));
    probe_views_average(S, n, views, C, prob);
    free(S);
    return 0;
}

// ============================================================================
// 2. Scores and metrics
// ============================================================================
void probe_views_average(const double *scores, int64_t n, int V, int C, double *prob) {
    double *z = (double *)malloc((size_t)C * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        double *p = prob + i * C;
        for (int c = 0; c < C; c++) p[c] = 0;
        for (int v = 0; v < V; v++) {
            memcpy(z, scores + (i * V + v) * C, (size_t)C * sizeof(double));
            probe__softmax(z, C);
            for (int c = 0; c < C; c++) p[c] += z[c] / V;
        }
    }
    free(z);
}

int probe_argmax(const double *x, int C) {
    int a = 0;
    for (int c = 1; c < C; c++) if (x[c] > x[a]) a = c;
    return a;
}

double probe_topk(const double *scores, const int *y, int64_t n, int C, int k) {
    int64_t hit = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= C) continue;
        const double *s = scores + i * C;
        int above = 0;
        for (int c = 0; c < C; c++) above += c != y[i] && s[c] >= s[y[i]];
        hit += above < k;
        m++;
    }
    return m ? (double)hit / (double)m : NAN;
}

double probe_pair_accuracy(const double *scores, const int *y, int64_t n, int C, int n_pairs, double *pair_acc) {
    int64_t hit = 0, m = 0, ph[64] = { 0 }, pm[64] = { 0 };
    for (int64_t i = 0; i < n; i++) {
        int t = y[i], q = t ^ 1;
        if (t < 0 || t >= 2 * n_pairs || q >= C || t / 2 >= 64) continue;
        int h = scores[i * C + t] > scores[i * C + q];
        hit += h; m++; ph[t / 2] += h; pm[t / 2]++;
    }
    for (int p = 0; pair_acc && p < n_pairs; p++) pair_acc[p] = p < 64 && pm[p] ? (double)ph[p] / (double)pm[p] : NAN;
    return m ? (double)hit / (double)m : NAN;
}

void probe_per_class(const int *pred, const int *y, int64_t n, int C, double *acc, int64_t *count) {
    for (int c = 0; c < C; c++) {
        int64_t h = 0, m = 0;
        for (int64_t i = 0; i < n; i++) if (y[i] == c) { m++; h += pred[i] == c; }
        acc[c] = m ? (double)h / (double)m : NAN;
        if (count) count[c] = m;
    }
}

void probe_confusion(const int *pred, const int *y, int64_t n, int C, int64_t *conf) {
    memset(conf, 0, (size_t)C * (size_t)C * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < C && pred[i] >= 0 && pred[i] < C) conf[(int64_t)y[i] * C + pred[i]]++;
}

// Rows of x [n][D] scaled to unit length (double).
static double *probe__unit_rows(const float *x, int64_t n, int D) {
    double *u = (double *)malloc((size_t)(n * D + 1) * sizeof(double));
    if (!u) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)x[i * D + j] * x[i * D + j];
        s = s > 0 ? 1.0 / sqrt(s) : 0;
        for (int j = 0; j < D; j++) u[i * D + j] = x[i * D + j] * s;
    }
    return u;
}

int probe_knn(const float *ref, const int *yref, int64_t nr, const float *q, int64_t nq, int D, int C,
              int k, double T, double *scores, char *err, size_t errlen) {
    double *ur = probe__unit_rows(ref, nr, D), *uq = probe__unit_rows(q, nq, D);
    if (!ur || !uq) { free(ur); free(uq); probe__err(err, errlen, "out of memory for kNN"); return -1; }
    if (k > nr) k = (int)nr;
    #pragma omp parallel
    {
        double *best = (double *)malloc((size_t)(k + 1) * sizeof(double));
        int64_t *bi = (int64_t *)malloc((size_t)(k + 1) * sizeof(int64_t));
        #pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < nq; i++) {
            int nb = 0;
            for (int64_t j = 0; j < nr; j++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += uq[i * D + d] * ur[j * D + d];
                if (nb == k && !(s > best[k - 1])) continue;
                int p = nb < k ? nb++ : k - 1;
                while (p > 0 && best[p - 1] < s) { best[p] = best[p - 1]; bi[p] = bi[p - 1]; p--; }
                best[p] = s; bi[p] = j;
            }
            double *sc = scores + i * C;
            for (int c = 0; c < C; c++) sc[c] = 0;
            for (int t = 0; t < nb; t++) {
                int l = yref[bi[t]];
                if (l >= 0 && l < C) sc[l] += exp(best[t] / T);
            }
        }
        free(best); free(bi);
    }
    free(ur); free(uq);
    return 0;
}

int64_t probe_subset(const int *y, int64_t n, int C, double frac, uint64_t seed, int64_t *idx) {
    int64_t *tmp = (int64_t *)malloc((size_t)(n + 1) * sizeof(int64_t));
    char *take = (char *)calloc((size_t)n + 1, 1);
    if (!tmp || !take) { free(tmp); free(take); return 0; }
    for (int c = 0; c < C; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) if (y[i] == c) tmp[m++] = i;
        if (!m) continue;
        probe__shuffle(tmp, m, seed, 0x5B5E7000ull + (uint64_t)c);
        int64_t want = (int64_t)llround(frac * (double)m);
        if (want < 1) want = 1;
        if (want > m) want = m;
        for (int64_t t = 0; t < want; t++) take[tmp[t]] = 1;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) if (take[i]) idx[k++] = i;
    free(tmp); free(take);
    return k;
}

// ============================================================================
// 3. Shuffles
// ============================================================================
int probe_video_perm(uint64_t seed, const char *path, int T, int g, int *perm, char *err, size_t errlen) {
    char name[1024];
    snprintf(name, sizeof name, "%s", path);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/') name[--len] = 0;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *msg = clip_shuffle_perms(seed, scvrl_fnv1a64(base), T, g, 1, perm);
    if (msg) { probe__err(err, errlen, "shuffling %d frames in groups of %d: %s", T, g, msg); return -1; }
    return 0;
}

// ============================================================================
// 4. Feature extraction
// ============================================================================
// Loads clips [k0, k0 + nb) of the flattened (item, view) order into buf; marks unreadable items.
static void probe__load_batch(const probe_extract_opts *o, int64_t k0, int nb, float *buf, uint8_t *bad,
                              char *first_err, size_t errlen) {
    int64_t cf = 3 * (int64_t)o->T * o->hw;
    #pragma omp parallel for schedule(dynamic)
    for (int b = 0; b < nb; b++) {
        int64_t k = k0 + b, i = k / o->views;
        int v = (int)(k % o->views);
        char e2[1024];
        float *x = buf + b * cf;
        int rc = o->clip(o->clip_ctx, i, v, x, e2, sizeof e2);
        if (!rc && o->perms) {
            int frames[1024];
            float *tmp = (float *)malloc((size_t)cf * sizeof(float));
            if (!tmp || o->T > 1024) { rc = -1; snprintf(e2, sizeof e2, "out of memory shuffling a clip"); }
            else {
                clip_shuffle_frames(o->perms + i * (o->T / o->group), o->T, o->group, frames);
                clip_permute_frames(x, 3, o->T, o->hw, frames, tmp);
                memcpy(x, tmp, (size_t)cf * sizeof(float));
            }
            free(tmp);
        }
        if (rc) {
            memset(x, 0, (size_t)cf * sizeof(float));
            #pragma omp critical(probe_extract_err)
            {
                if (!bad[i] && !first_err[0]) snprintf(first_err, errlen, "%s", e2);
                if (!bad[i] && o->skip_bad) fprintf(stderr, "\nwarning: skipped: %s\n", e2);
                bad[i] = 1;
            }
        }
    }
}

int probe_extract(const probe_extract_opts *o, float *feats, uint8_t *valid, char *err, size_t errlen) {
    int64_t total = o->n * o->views, cf = 3 * (int64_t)o->T * o->hw;
    int B = o->batch > 0 ? o->batch : 1;
    float *buf = (float *)malloc((size_t)(B * cf) * sizeof(float)), *out = (float *)malloc((size_t)B * o->D * sizeof(float));
    uint8_t *bad = (uint8_t *)calloc((size_t)o->n + 1, 1);
    if (!buf || !out || !bad) {
        free(buf); free(out); free(bad);
        probe__err(err, errlen, "out of memory for a batch of %d clips of %lld floats (use a smaller --batch)", B, (long long)cf);
        return -1;
    }
    cli_progress p;
    cli_progress_start(&p, o->label ? o->label : "features", "clips", total, o->quiet);
    int rc = 0;
    char first[1024] = "";
    for (int64_t k0 = 0; k0 < total && !rc; k0 += B) {
        int nb = (int)(total - k0 < B ? total - k0 : B);
        probe__load_batch(o, k0, nb, buf, bad, first, sizeof first);
        if (first[0] && !o->skip_bad) {
            cli_progress_break(&p);
            probe__err(err, errlen, "%s\n  (remove the video from the list, or pass --skip-bad to leave unreadable videos out)", first);
            rc = -1;
            break;
        }
        rc = o->embed(o->embed_ctx, buf, nb, out, err, errlen);
        for (int b = 0; b < nb && !rc; b++) {
            int64_t k = k0 + b;
            float *dst = feats + k * o->D;
            if (bad[k / o->views]) memset(dst, 0, (size_t)o->D * sizeof(float));
            else memcpy(dst, out + (int64_t)b * o->D, (size_t)o->D * sizeof(float));
        }
        cli_progress_update(&p, k0 + nb);
    }
    if (!rc) cli_progress_finish(&p);
    else cli_progress_break(&p);
    for (int64_t i = 0; valid && i < o->n; i++) valid[i] = !bad[i];
    free(buf); free(out); free(bad);
    return rc;
}

// ============================================================================
// 5. Shuffle evaluation
// ============================================================================
int probe_shuffle_eval(const float *Xtr, const int *ytr, int64_t ntr, const float *Xo, const float *Xs,
                       const int *yte, int64_t nte, int views, int D, int C, int n_pairs,
                       const probe_cv_opts *cv, probe_shuffle_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    probe_linear m;
    probe_cv_result cr;
    if (probe_linear_train(&m, Xtr, ytr, ntr, D, C, cv, &cr, err, errlen)) return -1;
    double *po = (double *)malloc((size_t)(nte * C + 1) * sizeof(double)), *ps = (double *)malloc((size_t)(nte * C + 1) * sizeof(double));
    int rc = !po || !ps ? -1 : 0;
    if (rc) probe__err(err, errlen, "out of memory");
    if (!rc) rc = probe_linear_predict(&m, Xo, nte, views, po, NULL, err, errlen);
    if (!rc) rc = probe_linear_predict(&m, Xs, nte, views, ps, NULL, err, errlen);
    if (!rc) {
        int64_t changed = 0;
        for (int64_t i = 0; i < nte; i++) changed += probe_argmax(po + i * C, C) != probe_argmax(ps + i * C, C);
        r->acc_ordered = probe_topk(po, yte, nte, C, 1);
        r->acc_shuffled = probe_topk(ps, yte, nte, C, 1);
        r->drop = r->acc_ordered - r->acc_shuffled;
        r->changed = nte ? (double)changed / (double)nte : NAN;
        r->pair_ordered = n_pairs > 0 ? probe_pair_accuracy(po, yte, nte, C, n_pairs, NULL) : NAN;
        r->pair_shuffled = n_pairs > 0 ? probe_pair_accuracy(ps, yte, nte, C, n_pairs, NULL) : NAN;
        r->l2 = cr.l2;
    }
    free(po); free(ps);
    probe_linear_free(&m);
    return rc;
}

// ============================================================================
// 6. Feature cache
// ============================================================================
void probe_file_stamp(const char *path, char *out, size_t n) {
    struct stat st;
    if (stat(path, &st)) { snprintf(out, n, "missing"); return; }
    snprintf(out, n, "%lld:%lld", (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
}

int probe_cache_load(const char *path, const char *key, int64_t n, int views, int D, float *feats,
                     uint8_t *valid, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb)) return 1;
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, errlen)) return -1;
    const char *k = scvrl_st_meta(&f, "key");
    const scvrl_st_entry *fe = scvrl_st_find(&f, "features"), *ve = scvrl_st_find(&f, "valid");
    int rc = 1;
    if (k && !strcmp(k, key) && fe && ve && fe->ndim == 3 && fe->shape[0] == n && fe->shape[1] == views && fe->shape[2] == D &&
        ve->numel == n && ve->dtype == SCVRL_DT_I32) {
        rc = scvrl_st_read_f32(&f, fe, feats, err, errlen) ? -1 : 0;
        for (int64_t i = 0; !rc && i < n; i++) {
            int32_t v;
            memcpy(&v, f.data + ve->begin + 4 * i, 4);
            valid[i] = v != 0;
        }
    }
    scvrl_st_close(&f);
    return rc;
}

int probe_cache_save(const char *path, const char *key, const char *about, int64_t n, int views, int D,
                     const float *feats, const uint8_t *valid, char *err, size_t errlen) {
    int32_t *v = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    scvrl_st_writer *w = scvrl_st_writer_new();
    if (!v || !w) { free(v); scvrl_st_writer_free(w); probe__err(err, errlen, "%s: out of memory", path); return -1; }
    for (int64_t i = 0; i < n; i++) v[i] = valid ? valid[i] : 1;
    int64_t fs[3] = { n, views, D };
    scvrl_st_writer_add(w, "features", SCVRL_DT_F32, 3, fs, feats);
    scvrl_st_writer_add(w, "valid", SCVRL_DT_I32, 1, &n, v);
    scvrl_st_writer_meta(w, "key", key);
    scvrl_st_writer_meta(w, "about", about ? about : "");
    scvrl_st_writer_meta(w, "format", "scvrl-features-1");
    int rc = scvrl_st_writer_save(w, path, err, errlen);
    scvrl_st_writer_free(w);
    free(v);
    return rc;
}

// ============================================================================
// 7. The MViT encoder
// ============================================================================
scvrl_backend *probe_backend(const char *device, const char *precision, char *err, size_t errlen) {
    int prec = scvrl_precision_parse(precision ? precision : "bf16");
    if (prec < 0) { probe__err(err, errlen, "unknown precision '%s' (fp32, tf32 or bf16)", precision); return NULL; }
    if (!device || !strcmp(device, "cpu")) return scvrl_backend_cpu();
    if (strcmp(device, "cuda")) { probe__err(err, errlen, "unknown device '%s' (cpu or cuda)", device); return NULL; }
#ifdef SCVRL_CUDA
    scvrl_backend *be = scvrl_backend_cuda(0, err, errlen);
    const char *ep = getenv("SCVRL_CUDA_PRECISION"), *et = getenv("SCVRL_CUDA_TF32");
    if (be && !(ep && *ep) && !(et && *et)) scvrl_cuda_set_precision(be, prec);    // the environment wins (benchmarks, tests)
    return be;
#else
    probe__err(err, errlen, "--device cuda: this build has no CUDA backend (install the CUDA toolkit, then make clean && make)");
    return NULL;
#endif
}

// The value of `key=` in a "k1=v1 k2=v2" string, into out; 0 if found.
static int probe__cfg_get(const char *cfg, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *s = cfg; s && *s;) {
        while (*s == ' ') s++;
        const char *e = strchr(s, ' ');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > kl && !strncmp(s, key, kl) && s[kl] == '=') {
            size_t vl = len - kl - 1 < n - 1 ? len - kl - 1 : n - 1;
            memcpy(out, s + kl + 1, vl);
            out[vl] = 0;
            return 0;
        }
        s = e;
    }
    return -1;
}

// What a weights file says about its model (each field 0 / "" when unknown).
typedef struct { char model[32], pool[8]; int kt, frames, stride, size, pretrain, has_momentum; } probe__wmeta;

static const scvrl_st_entry *probe__find2(const scvrl_st_file *f, const char *prefix, const char *a, const char *b) {
    char n1[300];
    snprintf(n1, sizeof n1, "%s%s", prefix, a);
    const scvrl_st_entry *e = scvrl_st_find(f, n1);
    if (!e) { snprintf(n1, sizeof n1, "%s%s", prefix, b); e = scvrl_st_find(f, n1); }
    return e;
}

// Model settings from tensor shapes (stem kernel, positional tables, block count).
static void probe__infer_shapes(const scvrl_st_file *f, const char *prefix, probe__wmeta *w) {
    const scvrl_st_entry *e = probe__find2(f, prefix, "conv_proj.weight", "patch_embed.proj.weight");
    int c0 = e && e->ndim == 5 ? (int)e->shape[0] : 0;
    if (e && e->ndim == 5 && !w->kt) w->kt = (int)e->shape[2];
    e = probe__find2(f, prefix, "pos_encoding.temporal_pos", "pos_embed_temporal");
    if (e && e->ndim >= 2 && !w->frames) w->frames = 2 * (int)e->shape[e->ndim - 2];
    e = probe__find2(f, prefix, "pos_encoding.spatial_pos", "pos_embed_spatial");
    if (e && e->ndim >= 2 && !w->size) {
        int64_t r = (int64_t)llround(sqrt((double)e->shape[e->ndim - 2]));
        if (r * r == e->shape[e->ndim - 2]) w->size = (int)(4 * r);
    }
    int depth = 0, pl = (int)strlen(prefix);
    for (int i = 0; i < f->n; i++) {
        int b, pos = 0;
        if (strncmp(f->e[i].name, prefix, (size_t)pl)) continue;
        if (sscanf(f->e[i].name + pl, "blocks.%d.norm1.weigh%n", &b, &pos) == 1 && pos > 0 && b + 1 > depth) depth = b + 1;
    }
    if (!w->model[0]) {
        const char *m = depth == 16 ? "mvit-b" : depth == 8 ? "mvit-s" : depth == 4 && c0 == 32 ? "mvit-tiny"
                      : depth == 3 && c0 == 16 ? "mvit-micro" : "";
        snprintf(w->model, sizeof w->model, "%s", m);
    }
}

static int probe__read_wmeta(const char *path, const char *prefix, probe__wmeta *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, errlen)) return -1;
    const char *cfg = scvrl_st_meta(&f, "config"), *fmt = scvrl_st_meta(&f, "format");
    w->has_momentum = scvrl_st_find(&f, "momentum.conv_proj.weight") != NULL;
    w->pretrain = w->has_momentum || (fmt && !strncmp(fmt, "scvrl-pretrain", 14));
    char v[64];
    if (cfg) {
        if (!probe__cfg_get(cfg, "model", v, sizeof v)) snprintf(w->model, sizeof w->model, "%s", v);
        if (!probe__cfg_get(cfg, "pool", v, sizeof v)) snprintf(w->pool, sizeof w->pool, "%s", v);
        if (!probe__cfg_get(cfg, "kt", v, sizeof v)) w->kt = atoi(v);
        if (!probe__cfg_get(cfg, "frames", v, sizeof v)) w->frames = atoi(v);
        if (!probe__cfg_get(cfg, "stride", v, sizeof v)) w->stride = atoi(v);
        if (!probe__cfg_get(cfg, "size", v, sizeof v)) w->size = atoi(v);
    }
    const char *s;
    if (!w->model[0] && (s = scvrl_st_meta(&f, "model"))) snprintf(w->model, sizeof w->model, "%s", s);
    if (!w->kt && (s = scvrl_st_meta(&f, "kt"))) w->kt = atoi(s);
    if (!w->frames && (s = scvrl_st_meta(&f, "frames"))) w->frames = atoi(s);
    if (!w->size && (s = scvrl_st_meta(&f, "size"))) w->size = atoi(s);
    if (!w->stride && (s = scvrl_st_meta(&f, "stride"))) w->stride = atoi(s);
    probe__infer_shapes(&f, prefix, w);
    scvrl_st_close(&f);
    return 0;
}

// Settings: the flag, else the checkpoint's, else the paper's default.
static int probe__resolve_cfg(probe_encoder *e, const probe_encoder_opts *o, const probe__wmeta *w, char *err, size_t errlen) {
    const char *model = o->model ? o->model : w->model[0] ? w->model : "mvit-b";
    if (mvit_preset(model, &e->cfg)) { probe__err(err, errlen, "unknown --model '%s' (mvit-b, mvit-s, mvit-tiny, mvit-micro)", model); return -1; }
    e->cfg.kt = o->kt ? o->kt : w->kt ? w->kt : 2;
    e->cfg.frames = o->frames ? o->frames : w->frames ? w->frames : 16;
    e->cfg.size = o->size ? o->size : w->size ? w->size : 224;
    e->stride = o->stride ? o->stride : w->stride ? w->stride : 4;
    const char *pool = o->pool ? o->pool : w->pool[0] ? w->pool : "cls";
    e->cfg.pool_avg = !strcmp(pool, "avg");
    e->cfg.num_classes = 0;
    return mvit_check_config(&e->cfg, err, errlen);
}

// Backbone weights into e->m (num_classes 0).
static int probe__load_backbone(probe_encoder *e, const probe_encoder_opts *o, const probe__wmeta *w, char *err, size_t errlen) {
    int momentum = o->encoder && !strcmp(o->encoder, "momentum");
    if (momentum && !w->has_momentum) {
        probe__err(err, errlen, "%s has no momentum encoder (momentum.*): it is a bare backbone, not a pretraining "
                   "checkpoint; drop --encoder momentum", o->weights);
        return -1;
    }
    int flags = (o->interpolate ? MVIT_LOAD_INTERPOLATE_POS : 0) | (w->pretrain ? MVIT_LOAD_IGNORE_UNEXPECTED : 0);
    char e2[2048];
    if (mvit_load(&e->m, o->weights, momentum ? "momentum." : "", flags, e2, sizeof e2)) {
        probe__err(err, errlen, "%s\n  (the model: --model %s --kt %d --frames %d --size %d; pass the flags the weights were "
                   "made with, or --interpolate-pos for another clip size)", e2, e->cfg.name, e->cfg.kt, e->cfg.frames, e->cfg.size);
        return -1;
    }
    return 0;
}

// Replace e->m by the same backbone with a classifier head of `classes` (trunc-normal 0.02, bias 0).
static int probe__add_head(probe_encoder *e, int classes, uint64_t seed, char *err, size_t errlen) {
    mvit_model bb = e->m;
    mvit_config c = e->cfg;
    c.num_classes = classes;
    if (mvit_init(&e->m, &c, err, errlen)) { e->m = bb; return -1; }
    memcpy(e->m.P.w, bb.P.w, (size_t)bb.P.n_elems * sizeof(float));
    mvit_free(&bb);
    scvrl_tensor *w = scvrl_params_find(&e->m.P, "head.1.weight"), *b = scvrl_params_find(&e->m.P, "head.1.bias");
    float *wf = scvrl_f32(w);
    for (int64_t j = 0; j < scvrl_nelements(w); j++) {
        double v = 0.02 * scvrl_rng_normal(seed, scvrl_fnv1a64("probe.head"), (uint64_t)j);
        wf[j] = (float)(v < -0.04 ? -0.04 : v > 0.04 ? 0.04 : v);
    }
    memset(b->data, 0, (size_t)scvrl_nelements(b) * sizeof(float));
    e->cfg = c;
    return 0;
}

static void probe__describe(probe_encoder *e, const probe_encoder_opts *o) {
    char stamp[64], cfg[256];
    snprintf(cfg, sizeof cfg, "model=%s kt=%d frames=%d stride=%d size=%d pool=%s", e->cfg.name, e->cfg.kt, e->cfg.frames,
             e->stride, e->cfg.size, e->cfg.pool_avg ? "avg" : "cls");
    if (o->weights) {
        probe_file_stamp(o->weights, stamp, sizeof stamp);
        char *rp = realpath(o->weights, NULL);
        snprintf(e->ident, sizeof e->ident, "weights=%s stamp=%s encoder=%s %s", rp ? rp : o->weights, stamp,
                 o->encoder ? o->encoder : "online", cfg);
        free(rp);
        snprintf(e->desc, sizeof e->desc, "%s (%s encoder), %s", o->weights, o->encoder ? o->encoder : "online", cfg);
    } else {
        snprintf(e->ident, sizeof e->ident, "weights=random seed=%llu %s", (unsigned long long)o->seed, cfg);
        snprintf(e->desc, sizeof e->desc, "random initialisation (seed %llu), %s", (unsigned long long)o->seed, cfg);
    }
}

int probe_encoder_open(probe_encoder *e, const probe_encoder_opts *o, char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    probe__wmeta w;
    memset(&w, 0, sizeof w);
    int momentum = o->encoder && !strcmp(o->encoder, "momentum");
    if (o->weights && probe__read_wmeta(o->weights, momentum ? "momentum." : "", &w, err, errlen)) {
        size_t k = strlen(err);
        snprintf(err + k, errlen - k, "\n  (--weights: a pretraining checkpoint (runs/*/ckpt-*.safetensors) or a backbone "
                 "state_dict in torchvision or PySlowFast names; leave it out for a random initialisation)");
        return -1;
    }
    if (probe__resolve_cfg(e, o, &w, err, errlen)) return -1;
    if (mvit_init(&e->m, &e->cfg, err, errlen)) return -1;
    if (o->weights) {
        if (probe__load_backbone(e, o, &w, err, errlen)) { mvit_free(&e->m); return -1; }
    } else {
        if (!o->quiet)
            fprintf(stderr, "warning: no --weights: a random initialisation of %s (seed %llu); the features show what the "
                    "architecture alone gives\n", e->cfg.name, (unsigned long long)o->seed);
        mvit_init_weights(&e->m, o->seed);
        e->random_init = 1;
    }
    if (o->classes > 0 && probe__add_head(e, o->classes, o->seed, err, errlen)) { mvit_free(&e->m); return -1; }
    e->D = mvit_width(&e->cfg);
    e->classes = o->classes;
    e->batch = o->batch > 0 ? o->batch : 8;
    e->be = probe_backend(o->device, o->precision, err, errlen);
    if (!e->be) { mvit_free(&e->m); return -1; }
    probe__describe(e, o);
    return 0;
}

static void probe__encoder_graph(probe_encoder *e) {
    e->ctx = scvrl_ctx_new(0);
    int64_t ne[5] = { e->batch, 3, e->cfg.frames, e->cfg.size, e->cfg.size };
    e->x = scvrl_new_data(e->ctx, SCVRL_DT_F32, 5, ne);
    scvrl_set_name(e->x, "clips");
    scvrl_mark_input(e->x);
    e->f = mvit_forward(e->ctx, &e->m, e->x, 0, 0, e->cfg.num_classes > 0 ? &e->lg : NULL);
    scvrl_mark_output(e->f);
    e->g = scvrl_graph_new();
    scvrl_graph_expand(e->g, e->f);
    if (e->lg) { scvrl_mark_output(e->lg); scvrl_graph_expand(e->g, e->lg); }
}

int probe_encoder_embed(void *ctx, const float *clips, int n, float *out, char *err, size_t errlen) {
    probe_encoder *e = (probe_encoder *)ctx;
    if (!e->g) probe__encoder_graph(e);
    int64_t cf = 3LL * e->cfg.frames * e->cfg.size * e->cfg.size;
    int W = e->logits ? e->cfg.num_classes : e->D;
    const scvrl_tensor *y = e->logits ? e->lg : e->f;
    for (int i0 = 0; i0 < n; i0 += e->batch) {
        int nb = n - i0 < e->batch ? n - i0 : e->batch;
        memcpy(e->x->data, clips + (int64_t)i0 * cf, (size_t)(nb * cf) * sizeof(float));
        if (nb < e->batch) memset(scvrl_f32(e->x) + nb * cf, 0, (size_t)((e->batch - nb) * cf) * sizeof(float));
        if (scvrl_graph_compute(e->g, e->be, err, errlen)) return -1;
        memcpy(out + (int64_t)i0 * W, y->data, (size_t)nb * W * sizeof(float));
    }
    return 0;
}

void probe_encoder_close(probe_encoder *e) {
    if (e->g) scvrl_graph_free(e->g);
    if (e->ctx) scvrl_ctx_free(e->ctx);
    if (e->be && e->be != scvrl_backend_cpu()) scvrl_backend_free(e->be);
    mvit_free(&e->m);
    memset(e, 0, sizeof *e);
}

int probe_eval_clip(void *ctx, int64_t i, int v, float *clip, char *err, size_t errlen) {
    const probe_eval_clips *c = (const probe_eval_clips *)ctx;
    int per = c->ntv * c->nsv, mirror = c->flip && v >= per;
    int u = v % per;
    if (ld_eval_clip(c->L, i, u / c->nsv, c->ntv, u % c->nsv, c->nsv, clip, err, errlen)) return -1;
    if (mirror) {
        int64_t W = c->L->size, rows = 3LL * c->L->T * c->L->size;
        for (int64_t r = 0; r < rows; r++) {
            float *p = clip + r * W;
            for (int64_t a = 0, b = W - 1; a < b; a++, b--) { float t = p[a]; p[a] = p[b]; p[b] = t; }
        }
    }
    return 0;
}
