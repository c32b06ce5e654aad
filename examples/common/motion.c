// examples/common/motion.c: dense optical flow (pyramidal Lucas-Kanade), the flow-edge
// motion index, targeted sampling and the index cache. See motion.h.
#include "motion.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
// Elementwise loops (no reductions across iterations): vectorised whatever the cost model
// of -O2, with results identical to the scalar loop.
#define MOTION__SIMD _Pragma("omp simd")
#else
#define MOTION__SIMD
#endif

#define MOTION__MAX_LEVELS 6
#define MOTION__MIN_SIDE 12
#define MOTION__EPS 1e-5f   // Tikhonov damping of the 2x2 system (intensities in [0, 1])
#define MOTION__MAX_STEP 2.0f

motion_flow_opts motion_flow_defaults(void) {
    motion_flow_opts o = {.levels = 0, .iters = 5, .win_sigma = 2.0f, .median = 1};
    return o;
}

motion_opts motion_defaults(void) {
    motion_opts o = {.short_side = 128, .top_k = 0, .frame_step = 1, .threads = 0,
                     .flow = motion_flow_defaults()};
    return o;
}

// ---- image helpers ------------------------------------------------------------------------

static int motion__clampi(int i, int n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

// Separable convolution with clamped borders: in, out: [h][w]; tmp: [h][w]; k: [2r + 1].
// The interior loops run over x innermost, so they vectorise; the sum order over taps is
// the same everywhere.
static void motion__conv(const float *restrict in, float *restrict out, int h, int w,
                         const float *restrict k, int r, float *restrict tmp) {
    int x0 = r < w ? r : w, x1 = w - r > x0 ? w - r : x0;  // interior [x0, x1)
    for (int y = 0; y < h; y++) {
        const float *restrict row = in + (size_t)y * w;
        float *restrict dst = tmp + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            if (x == x0) x = x1;
            if (x >= w) break;
            float s = 0;
            for (int j = -r; j <= r; j++) s += k[j + r] * row[motion__clampi(x + j, w)];
            dst[x] = s;
        }
        MOTION__SIMD
        for (int x = x0; x < x1; x++) dst[x] = 0;
        for (int j = -r; j <= r; j++) {
            float kj = k[j + r];
            MOTION__SIMD
            for (int x = x0; x < x1; x++) dst[x] += kj * row[x + j];
        }
    }
    for (int y = 0; y < h; y++) {
        float *restrict dst = out + (size_t)y * w;
        MOTION__SIMD
        for (int x = 0; x < w; x++) dst[x] = 0;
        for (int j = -r; j <= r; j++) {
            const float *restrict row = tmp + (size_t)motion__clampi(y + j, h) * w;
            float kj = k[j + r];
            MOTION__SIMD
            for (int x = 0; x < w; x++) dst[x] += kj * row[x];
        }
    }
}

// Gaussian kernel of radius ceil(2.5 sigma) (1..16); k: [33]. Returns r.
static int motion__gauss(float sigma, float *k) {
    int r = (int)ceilf(2.5f * sigma);
    r = r < 1 ? 1 : r > 16 ? 16 : r;
    float s = 0;
    for (int j = -r; j <= r; j++) s += k[j + r] = expf(-0.5f * (j / sigma) * (j / sigma));
    for (int j = 0; j <= 2 * r; j++) k[j] /= s;
    return r;
}

// Blur with [1 4 6 4 1] / 16 and keep every second pixel: in [h][w] -> out [(h+1)/2][(w+1)/2].
static void motion__down(const float *in, int h, int w, float *out, float *blur, float *tmp) {
    static const float k[5] = {1 / 16.f, 4 / 16.f, 6 / 16.f, 4 / 16.f, 1 / 16.f};
    motion__conv(in, blur, h, w, k, 2, tmp);
    int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    for (int y = 0; y < h2; y++)
        for (int x = 0; x < w2; x++) out[(size_t)y * w2 + x] = blur[(size_t)(2 * y) * w + 2 * x];
}

// Bilinear sample of I [h][w] at (x, y), coordinates clamped to the image.
static float motion__bilinear(const float *I, int h, int w, float x, float y) {
    x = x < 0 ? 0 : x > w - 1 ? (float)(w - 1) : x;
    y = y < 0 ? 0 : y > h - 1 ? (float)(h - 1) : y;
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    float fx = x - x0, fy = y - y0;
    const float *r0 = I + (size_t)y0 * w, *r1 = I + (size_t)y1 * w;
    float a = r0[x0] + fx * (r0[x1] - r0[x0]), b = r1[x0] + fx * (r1[x1] - r1[x0]);
    return a + fy * (b - a);
}

// Keys cubic (a = -0.5) weights for fractional offset f in [0, 1): taps at -1, 0, 1, 2.
#define MOTION__CUBIC_W(f, c) do { \
    float f2_ = (f) * (f), f3_ = f2_ * (f); \
    (c)[0] = -0.5f * f3_ + f2_ - 0.5f * (f); \
    (c)[1] = 1.5f * f3_ - 2.5f * f2_ + 1.0f; \
    (c)[2] = -1.5f * f3_ + 2.0f * f2_ + 0.5f * (f); \
    (c)[3] = 0.5f * f3_ - 0.5f * f2_; \
} while (0)

// Bicubic sample of I [h][w] at (x, y) inside the image (taps clamped at the borders);
// branch-free so that the residual loop vectorises.
static inline float motion__bicubic(const float *I, int h, int w, float x, float y) {
    int x0 = (int)x, y0 = (int)y;  // x, y >= 0: truncation is floor
    float fx = x - x0, fy = y - y0, cx[4], cy[4], s = 0;
    MOTION__CUBIC_W(fx, cx);
    MOTION__CUBIC_W(fy, cy);
    int xa = x0 - 1 < 0 ? 0 : x0 - 1, xb = x0, xc = x0 + 1 < w ? x0 + 1 : w - 1;
    int xd = x0 + 2 < w ? x0 + 2 : w - 1;
    int ya = y0 - 1 < 0 ? 0 : y0 - 1, yb = y0, yc = y0 + 1 < h ? y0 + 1 : h - 1;
    int yd = y0 + 2 < h ? y0 + 2 : h - 1;
    const float *r0 = I + (size_t)ya * w, *r1 = I + (size_t)yb * w;
    const float *r2 = I + (size_t)yc * w, *r3 = I + (size_t)yd * w;
    s += cy[0] * (cx[0] * r0[xa] + cx[1] * r0[xb] + cx[2] * r0[xc] + cx[3] * r0[xd]);
    s += cy[1] * (cx[0] * r1[xa] + cx[1] * r1[xb] + cx[2] * r1[xc] + cx[3] * r1[xd]);
    s += cy[2] * (cx[0] * r2[xa] + cx[1] * r2[xb] + cx[2] * r2[xc] + cx[3] * r2[xd]);
    s += cy[3] * (cx[0] * r3[xa] + cx[1] * r3[xb] + cx[2] * r3[xc] + cx[3] * r3[xd]);
    return s;
}

// Flow of a coarse level [hc][wc] -> [h][w], rescaled to the finer pixels.
static void motion__upflow(const float *uc, const float *vc, int hc, int wc, float *u, float *v,
                           int h, int w) {
    float sx = (float)wc / w, sy = (float)hc / h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float cx = (x + 0.5f) * sx - 0.5f, cy = (y + 0.5f) * sy - 0.5f;
            u[(size_t)y * w + x] = motion__bilinear(uc, hc, wc, cx, cy) / sx;
            v[(size_t)y * w + x] = motion__bilinear(vc, hc, wc, cx, cy) / sy;
        }
}

#define MOTION__CSWAP(a, b) do { float lo_ = a < b ? a : b; b = a < b ? b : a; a = lo_; } while (0)

// Median of 9 values by the exchange network of Paeth / Devillard (branch-free).
static float motion__med9(float p0, float p1, float p2, float p3, float p4, float p5, float p6,
                          float p7, float p8) {
    MOTION__CSWAP(p1, p2); MOTION__CSWAP(p4, p5); MOTION__CSWAP(p7, p8);
    MOTION__CSWAP(p0, p1); MOTION__CSWAP(p3, p4); MOTION__CSWAP(p6, p7);
    MOTION__CSWAP(p1, p2); MOTION__CSWAP(p4, p5); MOTION__CSWAP(p7, p8);
    MOTION__CSWAP(p0, p3); MOTION__CSWAP(p5, p8); MOTION__CSWAP(p4, p7);
    MOTION__CSWAP(p3, p6); MOTION__CSWAP(p1, p4); MOTION__CSWAP(p2, p5);
    MOTION__CSWAP(p4, p7); MOTION__CSWAP(p4, p2); MOTION__CSWAP(p6, p4);
    MOTION__CSWAP(p4, p2);
    return p4;
}

// 3x3 median of x [h][w] in place (borders clamped); tmp: [h][w].
static void motion__median3(float *restrict x, int h, int w, float *restrict tmp) {
    for (int y = 0; y < h; y++) {
        const float *a = x + (size_t)motion__clampi(y - 1, h) * w, *b = x + (size_t)y * w;
        const float *c = x + (size_t)motion__clampi(y + 1, h) * w;
        float *dst = tmp + (size_t)y * w;
        for (int k = 0; k < (w > 1 ? 2 : 1); k++) {  // the two border columns
            int i = k ? w - 1 : 0, l = i > 0 ? i - 1 : 0, r = i + 1 < w ? i + 1 : w - 1;
            dst[i] = motion__med9(a[l], a[i], a[r], b[l], b[i], b[r], c[l], c[i], c[r]);
        }
        for (int i = 1; i < w - 1; i++)
            dst[i] = motion__med9(a[i - 1], a[i], a[i + 1], b[i - 1], b[i], b[i + 1], c[i - 1], c[i], c[i + 1]);
    }
    memcpy(x, tmp, sizeof(float) * (size_t)h * w);
}

// ---- Lucas-Kanade ---------------------------------------------------------------------------

// Work arrays of one level (each [h][w] of the finest level).
typedef struct motion__ws {
    float *ix, *iy, *jxx, *jxy, *jyy, *sxx, *sxy, *syy, *res, *rx, *ry, *tmp, *tmp2;
} motion__ws;
#define MOTION__WS_ARRAYS 13

// Gradient of I0 [h][w] (central differences), J = grad grad^T and its window sums S = G*J.
static void motion__tensor(const float *I0, int h, int w, const float *k, int r, motion__ws *s) {
    for (int y = 0; y < h; y++) {
        const float *row = I0 + (size_t)y * w;
        const float *up = I0 + (size_t)motion__clampi(y - 1, h) * w;
        const float *dn = I0 + (size_t)motion__clampi(y + 1, h) * w;
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            s->ix[i] = 0.5f * (row[motion__clampi(x + 1, w)] - row[motion__clampi(x - 1, w)]);
            s->iy[i] = 0.5f * (dn[x] - up[x]);
        }
    }
    size_t n = (size_t)h * w;
    MOTION__SIMD
    for (size_t i = 0; i < n; i++) {
        s->jxx[i] = s->ix[i] * s->ix[i];
        s->jxy[i] = s->ix[i] * s->iy[i];
        s->jyy[i] = s->iy[i] * s->iy[i];
    }
    motion__conv(s->jxx, s->sxx, h, w, k, r, s->tmp);
    motion__conv(s->jxy, s->sxy, h, w, k, r, s->tmp);
    motion__conv(s->jyy, s->syy, h, w, k, r, s->tmp);
}

// res = I1(x + u) - I0 (bicubic), 0 where x + u leaves the image (those window terms then
// trust the neighbour's flow instead of a clamped sample).
static void motion__residual(const float *I0, const float *I1, int h, int w, const float *u,
                             const float *v, float *res) {
    for (int y = 0; y < h; y++) {
        MOTION__SIMD
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float px = x + u[i], py = y + v[i];
            int inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1);
            float cx = inside ? px : 0, cy = inside ? py : 0;
            float val = motion__bicubic(I1, h, w, cx, cy) - I0[i];
            res[i] = inside ? val : 0.0f;
        }
    }
}

// `iters` Gauss-Newton steps of the flow u, v [h][w] from I0 to I1 at one level. Each pixel's
// window residuals are linearised at that pixel's own flow: with J = grad I0 grad I0^T and
// r(x') = I1(x' + u(x')) - I0(x'), the window sum of grad I0 (r + grad I0 . (u(x) - u(x')))
// vanishes for u_new(x) = (S + eps)^-1 [G*(J u - grad I0 r) + eps u], S = G*J. (Using the
// plain per-pixel increment instead couples neighbouring pixels and drifts along weak
// directions.)
static void motion__lk_level(const float *I0, const float *I1, int h, int w, int iters,
                             const float *k, int r, motion__ws *s, float *u, float *v) {
    size_t n = (size_t)h * w;
    motion__tensor(I0, h, w, k, r, s);
    for (int it = 0; it < iters; it++) {
        motion__residual(I0, I1, h, w, u, v, s->res);
        MOTION__SIMD
        for (size_t i = 0; i < n; i++) s->tmp2[i] = s->jxx[i] * u[i] + s->jxy[i] * v[i] - s->ix[i] * s->res[i];
        motion__conv(s->tmp2, s->rx, h, w, k, r, s->tmp);
        MOTION__SIMD
        for (size_t i = 0; i < n; i++) s->tmp2[i] = s->jxy[i] * u[i] + s->jyy[i] * v[i] - s->iy[i] * s->res[i];
        motion__conv(s->tmp2, s->ry, h, w, k, r, s->tmp);
        MOTION__SIMD
        for (size_t i = 0; i < n; i++) {
            float a = s->sxx[i] + MOTION__EPS, b = s->sxy[i], c = s->syy[i] + MOTION__EPS;
            float det = a * c - b * b;
            float rx = s->rx[i] + MOTION__EPS * u[i], ry = s->ry[i] + MOTION__EPS * v[i];
            float du = (c * rx - b * ry) / det - u[i], dv = (a * ry - b * rx) / det - v[i];
            du = du > MOTION__MAX_STEP ? MOTION__MAX_STEP : du < -MOTION__MAX_STEP ? -MOTION__MAX_STEP : du;
            dv = dv > MOTION__MAX_STEP ? MOTION__MAX_STEP : dv < -MOTION__MAX_STEP ? -MOTION__MAX_STEP : dv;
            u[i] += du, v[i] += dv;
        }
    }
}

static int motion__n_levels(int h, int w, int want) {
    int L = 1;
    while (L < MOTION__MAX_LEVELS) {
        int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
        if ((h2 < w2 ? h2 : w2) < MOTION__MIN_SIDE) break;
        h = h2, w = w2, L++;
    }
    return want > 0 && want < L ? want : L;
}

// Pyramids of I0 and I1 and the flow of each level in one buffer.
typedef struct motion__pyr {
    int L, h[MOTION__MAX_LEVELS], w[MOTION__MAX_LEVELS];
    float *i0[MOTION__MAX_LEVELS], *i1[MOTION__MAX_LEVELS], *u[MOTION__MAX_LEVELS], *v[MOTION__MAX_LEVELS];
    float *buf;
} motion__pyr;

static int motion__pyr_alloc(motion__pyr *p, int h, int w, int L, motion__ws *s) {
    size_t total = 0, n0 = (size_t)h * w;
    p->L = L;
    for (int l = 0; l < L; l++) {
        p->h[l] = h, p->w[l] = w;
        total += 4 * (size_t)h * w;
        h = (h + 1) / 2, w = (w + 1) / 2;
    }
    p->buf = malloc(sizeof(float) * (total + MOTION__WS_ARRAYS * n0));
    if (!p->buf) return -1;
    float *q = p->buf;
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)p->h[l] * p->w[l];
        p->i0[l] = q, p->i1[l] = q + n, p->u[l] = q + 2 * n, p->v[l] = q + 3 * n;
        q += 4 * n;
    }
    float **ws[MOTION__WS_ARRAYS] = {&s->ix, &s->iy, &s->jxx, &s->jxy, &s->jyy, &s->sxx, &s->sxy,
                                     &s->syy, &s->res, &s->rx, &s->ry, &s->tmp, &s->tmp2};
    for (int i = 0; i < MOTION__WS_ARRAYS; i++) *ws[i] = q + (size_t)i * n0;
    return 0;
}

int motion_flow(const float *I0, const float *I1, int h, int w, const motion_flow_opts *o,
                float *u, float *v, char *err, size_t errlen) {
    if (h < 3 || w < 3 || o->iters < 1 || !(o->win_sigma > 0)) {
        if (err && errlen)
            snprintf(err, errlen, "motion_flow: need frames of at least 3x3 (got %dx%d), iters "
                     ">= 1 and win_sigma > 0", h, w);
        return -1;
    }
    motion__pyr p;
    motion__ws s;
    if (motion__pyr_alloc(&p, h, w, motion__n_levels(h, w, o->levels), &s)) {
        if (err && errlen) snprintf(err, errlen, "motion_flow: out of memory (%dx%d)", h, w);
        return -1;
    }
    memcpy(p.i0[0], I0, sizeof(float) * (size_t)h * w);
    memcpy(p.i1[0], I1, sizeof(float) * (size_t)h * w);
    for (int l = 1; l < p.L; l++) {
        motion__down(p.i0[l - 1], p.h[l - 1], p.w[l - 1], p.i0[l], s.tmp2, s.tmp);
        motion__down(p.i1[l - 1], p.h[l - 1], p.w[l - 1], p.i1[l], s.tmp2, s.tmp);
    }
    float k[33];
    int r = motion__gauss(o->win_sigma, k);
    for (int l = p.L - 1; l >= 0; l--) {
        int hl = p.h[l], wl = p.w[l];
        if (l == p.L - 1) {
            memset(p.u[l], 0, sizeof(float) * (size_t)hl * wl);
            memset(p.v[l], 0, sizeof(float) * (size_t)hl * wl);
        } else {
            motion__upflow(p.u[l + 1], p.v[l + 1], p.h[l + 1], p.w[l + 1], p.u[l], p.v[l], hl, wl);
        }
        motion__lk_level(p.i0[l], p.i1[l], hl, wl, o->iters, k, r, &s, p.u[l], p.v[l]);
        if (o->median) {
            motion__median3(p.u[l], hl, wl, s.tmp);
            motion__median3(p.v[l], hl, wl, s.tmp);
        }
    }
    memcpy(u, p.u[0], sizeof(float) * (size_t)h * w);
    memcpy(v, p.v[0], sizeof(float) * (size_t)h * w);
    free(p.buf);
    return 0;
}

// ---- statistics ---------------------------------------------------------------------------

// k-th smallest (0-based) of a[0..n), partially reordering a (Hoare quickselect).
static float motion__select(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) { float t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

// Median of the top k values of a[0..n) (k clamped to [1, n]); reorders a.
static float motion__median_top(float *a, int64_t n, int64_t k) {
    if (n <= 0) return 0;
    if (k > n) k = n;
    if (k < 1) k = 1;
    int64_t hi = n - 1 - k / 2;  // descending rank k/2
    float x = motion__select(a, n, hi);
    if (k % 2) return x;
    float y = motion__select(a, n, hi + 1);  // descending rank k/2 - 1
    return 0.5f * (x + y);
}

float motion_median(float *x, int64_t n) { return motion__median_top(x, n, n); }

int motion_top_k(const motion_opts *o, int h, int w) {
    if (o->top_k > 0) return o->top_k;
    int k = (int)floor(4000.0 * h * w / (320.0 * 240.0) + 0.5);   // the paper's 4k at 320x240, scaled
    return k > 0 ? k : 1;
}

float motion_flow_edge(const float *u, const float *v, int h, int w, int top_k, float *scratch) {
    if (h < 3 || w < 3) return 0;
    float *mag = scratch, *edge = scratch + (size_t)h * w;
    for (size_t i = 0; i < (size_t)h * w; i++) mag[i] = sqrtf(u[i] * u[i] + v[i] * v[i]);
    int64_t n = 0;
    for (int y = 1; y < h - 1; y++) {
        const float *a = mag + (size_t)(y - 1) * w, *b = a + w, *c = b + w;
        for (int x = 1; x < w - 1; x++) {
            float gx = (a[x + 1] - a[x - 1]) + 2 * (b[x + 1] - b[x - 1]) + (c[x + 1] - c[x - 1]);
            float gy = (c[x - 1] - a[x - 1]) + 2 * (c[x] - a[x]) + (c[x + 1] - a[x + 1]);
            edge[n++] = sqrtf(gx * gx + gy * gy);
        }
    }
    return motion__median_top(edge, n, top_k);
}

// ---- windows --------------------------------------------------------------------------------

static int64_t motion__win_start(int i, double fps) { return (int64_t)floor(i * fps); }

int motion_n_windows(int64_t n_frames, double fps) {
    if (n_frames < 2 || !(fps > 0)) return 1;
    // windows over the pair starts 0 .. n_frames - 2
    int n = (int)floor((double)(n_frames - 2) / fps) + 1;
    while (n > 1 && motion__win_start(n - 1, fps) > n_frames - 2) n--;
    while (motion__win_start(n, fps) <= n_frames - 2) n++;
    // merge a last window shorter than half a second into the previous one
    if (n > 1 && (double)(n_frames - motion__win_start(n - 1, fps)) < 0.5 * fps) n--;
    return n;
}

int motion_window_of(int64_t f, int64_t n_frames, double fps) {
    int n = motion_n_windows(n_frames, fps);
    if (!(fps > 0) || f <= 0) return 0;
    int i = (int)floor((double)f / fps);
    while (i > 0 && motion__win_start(i, fps) > f) i--;
    while (motion__win_start(i + 1, fps) <= f) i++;
    return i < n ? i : n - 1;
}

void motion_analysis_size(int width, int height, int short_side, int *h, int *w) {
    int s = width < height ? width : height;
    if (short_side <= 0 || s <= short_side) { *h = height, *w = width; return; }
    double f = (double)short_side / s;
    *h = height <= width ? short_side : (int)floor(height * f + 0.5);
    *w = width < height ? short_side : (int)floor(width * f + 0.5);
}

// ---- the motion index -------------------------------------------------------------------------

// Pair starts of window i: t = t0, t0 + step, ... <= t1.
static void motion__pairs(int i, int n_win, int64_t n_frames, double fps, int64_t *t0,
                          int64_t *t1) {
    *t0 = motion__win_start(i, fps);
    *t1 = i == n_win - 1 ? n_frames - 2 : motion__win_start(i + 1, fps) - 1;
    if (*t1 > n_frames - 2) *t1 = n_frames - 2;
}

static int motion__check(const motion_video *v, motion_read_fn read, const motion_opts *o,
                         char *err, size_t errlen) {
    const char *why = NULL;
    if (v->n_frames < 1) why = "the video has no frames";
    else if (!(v->fps > 0)) why = "fps must be > 0";
    else if (v->width < 3 || v->height < 3) why = "frames must be at least 3x3";
    else if (!read) why = "no frame reader";
    else if (o->top_k < 0 || o->frame_step < 1) why = "top_k must be >= 0 (0: scaled to the frame) and frame_step >= 1";
    else if (o->flow.iters < 1 || !(o->flow.win_sigma > 0)) why = "flow iters >= 1, win_sigma > 0";
    if (why && err && errlen) snprintf(err, errlen, "motion index: %s", why);
    return why ? -1 : 0;
}

// Per-thread flow buffers: u, v [n]; scratch [2n].
typedef struct motion__tbuf { float *u, *v, *scratch; } motion__tbuf;

// e[j] = flow-edge statistic of pair j, frames gray[a[j]] -> gray[b[j]] ([h][w] each).
static int motion__edges(const float *gray, const int *a, const int *b, int np, int h, int w,
                         const motion_opts *o, float *e) {
    size_t n = (size_t)h * w;
    int failed = 0;
#ifdef _OPENMP
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (nt > np) nt = np;
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        motion__tbuf tb = {malloc(sizeof(float) * n), malloc(sizeof(float) * n), malloc(sizeof(float) * 2 * n)};
        int ok = tb.u && tb.v && tb.scratch;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int j = 0; j < np; j++) {
            if (ok && motion_flow(gray + a[j] * n, gray + b[j] * n, h, w, &o->flow, tb.u, tb.v, NULL, 0))
                ok = 0;
            if (ok) e[j] = motion_flow_edge(tb.u, tb.v, h, w, motion_top_k(o, h, w), tb.scratch);
        }
        if (!ok) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            failed = 1;
        }
        free(tb.u); free(tb.v); free(tb.scratch);
    }
    return failed ? -1 : 0;
}

// Reads the frames of window i's pairs and computes m_i. idx, a, b, rgb, gray, e: sized for
// the largest window by the caller.
typedef struct motion__win_buf {
    int64_t *idx;
    int *a, *b;
    uint8_t *rgb;
    float *gray, *e;
} motion__win_buf;

static int motion__window(const motion_video *v, motion_read_fn read, void *ctx,
                          const motion_opts *o, int i, int n_win, int h, int w,
                          motion__win_buf *wb, float *m_out, char *err, size_t errlen) {
    int64_t t0, t1;
    motion__pairs(i, n_win, v->n_frames, v->fps, &t0, &t1);
    int np = 0, nr = 0;
    for (int64_t t = t0; t <= t1; t += o->frame_step, np++) {
        if (o->frame_step == 1) {
            if (nr == 0) wb->idx[nr++] = t;
            wb->a[np] = nr - 1, wb->b[np] = nr, wb->idx[nr++] = t + 1;
        } else {
            wb->a[np] = nr, wb->idx[nr++] = t;
            wb->b[np] = nr, wb->idx[nr++] = t + 1;
        }
    }
    *m_out = 0;
    if (np == 0) return 0;
    int rc = read(ctx, wb->idx, nr, h, w, wb->rgb, err, errlen);
    if (rc < 0) return -1;
    size_t n = (size_t)h * w;
    for (size_t k = 0; k < (size_t)nr * n; k++) {
        const uint8_t *px = wb->rgb + 3 * k;
        wb->gray[k] = (0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]) * (1.0f / 255.0f);
    }
    if (motion__edges(wb->gray, wb->a, wb->b, np, h, w, o, wb->e)) {
        if (err && errlen) snprintf(err, errlen, "motion index: out of memory in the flow");
        return -1;
    }
    *m_out = motion_median(wb->e, np);
    return 0;
}

int motion_index_compute(const motion_video *v, motion_read_fn read, void *ctx,
                         const motion_opts *o, motion_index *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (motion__check(v, read, o, err, errlen)) return -1;
    int h, w;
    motion_analysis_size(v->width, v->height, o->short_side, &h, &w);
    int n_win = motion_n_windows(v->n_frames, v->fps);
    int64_t max_pairs = 0;
    for (int i = 0; i < n_win; i++) {
        int64_t t0, t1;
        motion__pairs(i, n_win, v->n_frames, v->fps, &t0, &t1);
        int64_t np = t1 >= t0 ? (t1 - t0) / o->frame_step + 1 : 0;
        if (np > max_pairs) max_pairs = np;
    }
    size_t nf = (size_t)(2 * max_pairs + 1), n = (size_t)h * w;
    motion__win_buf wb = {malloc(sizeof(int64_t) * nf), malloc(sizeof(int) * nf),
                          malloc(sizeof(int) * nf), malloc(nf * n * 3),
                          malloc(sizeof(float) * nf * n), malloc(sizeof(float) * nf)};
    out->m = calloc((size_t)n_win, sizeof(float));
    int rc = 0;
    if (!wb.idx || !wb.a || !wb.b || !wb.rgb || !wb.gray || !wb.e || !out->m) {
        if (err && errlen) snprintf(err, errlen, "motion index: out of memory (%d windows)", n_win);
        rc = -1;
    }
    for (int i = 0; i < n_win && rc == 0; i++)
        rc = motion__window(v, read, ctx, o, i, n_win, h, w, &wb, &out->m[i], err, errlen);
    free(wb.idx); free(wb.a); free(wb.b); free(wb.rgb); free(wb.gray); free(wb.e);
    if (rc) { motion_index_free(out); return -1; }
    out->n_frames = v->n_frames, out->fps = v->fps, out->n_win = n_win;
    return 0;
}

void motion_index_free(motion_index *mi) {
    free(mi->m);
    memset(mi, 0, sizeof *mi);
}

// ---- targeted sampling ------------------------------------------------------------------------

int motion_probs(const motion_index *mi, double beta, double *p, char *err, size_t errlen) {
    if (!mi || mi->n_win < 1 || !mi->m) {
        if (err && errlen) snprintf(err, errlen, "motion_probs: empty motion index");
        return -1;
    }
    if (!(beta > 0)) {
        if (err && errlen) snprintf(err, errlen, "motion_probs: beta must be > 0 (got %g)", beta);
        return -1;
    }
    int n = mi->n_win;
    if (isinf(beta)) {
        for (int i = 0; i < n; i++) p[i] = 1.0 / n;
        return 0;
    }
    double mx = mi->m[0], sum = 0;
    for (int i = 1; i < n; i++) if (mi->m[i] > mx) mx = mi->m[i];
    for (int i = 0; i < n; i++) sum += p[i] = exp(((double)mi->m[i] - mx) / beta);
    for (int i = 0; i < n; i++) p[i] /= sum;
    return 0;
}

clip_windows motion_windows(const motion_index *mi, const double *p) {
    clip_windows w = {.n = mi->n_win, .win_frames = mi->fps, .p = p};
    return w;
}

int64_t motion_sample_start(const motion_index *mi, const double *p, int64_t span,
                            uint64_t seed, uint64_t stream, int *win_out) {
    clip_windows w = motion_windows(mi, p);
    return clip_draw_start(mi->n_frames, span, &w, seed, stream, win_out);
}

// ---- cache --------------------------------------------------------------------------------------

static uint64_t motion__fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void motion__params(const motion_opts *o, char *out, size_t n) {
    snprintf(out, n, "flow=lk short_side=%d top_k=%d frame_step=%d levels=%d iters=%d "
             "win_sigma=%.9g median=%d", o->short_side, o->top_k, o->frame_step, o->flow.levels,
             o->flow.iters, (double)o->flow.win_sigma, o->flow.median);
}

int motion_cache_path(const char *list_path, char *out, size_t n) {
    int k = snprintf(out, n, "%s.motion", list_path);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

void motion_cache_init(motion_cache *c, const motion_opts *o) {
    memset(c, 0, sizeof *c);
    motion__params(o, c->params, sizeof c->params);
}

static void motion__cache_clear(motion_cache *c) {
    for (int i = 0; i < c->n; i++) { free(c->e[i].key); motion_index_free(&c->e[i].mi); }
    free(c->e); free(c->slot);
    c->e = NULL, c->slot = NULL, c->n = c->cap = c->n_slot = 0, c->dirty = 0;
}

void motion_cache_free(motion_cache *c) { motion__cache_clear(c); }

// Index of key's entry, or -1; *slot_out (may be NULL) gets its hash slot or the empty one.
static int motion__lookup(const motion_cache *c, const char *key, int *slot_out) {
    if (c->n_slot == 0) return -1;
    unsigned mask = (unsigned)c->n_slot - 1, s = (unsigned)motion__fnv1a(key) & mask;
    for (;; s = (s + 1) & mask) {
        int i = c->slot[s];
        if (i < 0 || strcmp(c->e[i].key, key) == 0) {
            if (slot_out) *slot_out = (int)s;
            return i;
        }
    }
}

// Keeps the hash table at most half full.
static int motion__rehash(motion_cache *c, int need) {
    if (2 * need <= c->n_slot) return 0;
    int ns = 64;
    while (ns < 2 * need) ns *= 2;
    int *slot = malloc(sizeof(int) * (size_t)ns);
    if (!slot) return -1;
    for (int s = 0; s < ns; s++) slot[s] = -1;
    free(c->slot);
    c->slot = slot, c->n_slot = ns;
    for (int i = 0; i < c->n; i++) {
        int s;
        motion__lookup(c, c->e[i].key, &s);
        c->slot[s] = i;
    }
    return 0;
}

int motion_cache_put(motion_cache *c, const char *key, uint64_t stamp, const motion_index *mi,
                     char *err, size_t errlen) {
    if (!key || !*key || strpbrk(key, "\t\r\n") || mi->n_win < 1 || !mi->m) {
        if (err && errlen) snprintf(err, errlen, "motion cache: bad entry (empty index, or a key "
                                    "with a tab or newline: %s)", key ? key : "(null)");
        return -1;
    }
    if (motion__rehash(c, c->n + 1)) goto oom;
    float *m = malloc(sizeof(float) * (size_t)mi->n_win);
    if (!m) goto oom;
    memcpy(m, mi->m, sizeof(float) * (size_t)mi->n_win);
    int s, i = motion__lookup(c, key, &s);
    if (i >= 0) {
        motion_index_free(&c->e[i].mi);
    } else {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 64;
            motion_cache_entry *e = realloc(c->e, sizeof *e * (size_t)cap);
            if (!e) { free(m); goto oom; }
            c->e = e, c->cap = cap;
        }
        char *k = strdup(key);
        if (!k) { free(m); goto oom; }
        i = c->n++;
        c->e[i].key = k;
        c->slot[s] = i;
    }
    c->e[i].stamp = stamp;
    c->e[i].mi = *mi;
    c->e[i].mi.m = m;
    c->dirty = 1;
    return 0;
oom:
    if (err && errlen) snprintf(err, errlen, "motion cache: out of memory");
    return -1;
}

const motion_index *motion_cache_find(const motion_cache *c, const char *key, uint64_t stamp,
                                      int64_t n_frames, double fps) {
    int i = motion__lookup(c, key, NULL);
    if (i < 0) return NULL;
    const motion_cache_entry *e = &c->e[i];
    if (e->stamp != stamp) return NULL;
    if (n_frames > 0 && e->mi.n_frames != n_frames) return NULL;
    if (fps > 0 && fabs(e->mi.fps - fps) > 1e-9 * fps) return NULL;
    return &e->mi;
}

// One entry line (without the newline) into c. Returns 0, or -1 if malformed.
static int motion__parse_entry(motion_cache *c, char *line) {
    char *tab = strchr(line, '\t'), *p = line, *q;
    if (!tab || !tab[1]) return -1;
    *tab = 0;
    motion_index mi = {0};
    uint64_t stamp = strtoull(p, &q, 16);
    if (q == p) return -1;
    mi.n_frames = strtoll(p = q, &q, 10);
    mi.fps = strtod(p = q, &q);
    long nw = strtol(p = q, &q, 10);
    if (q == p || nw < 1 || nw > 100000000 || mi.n_frames < 1 || !(mi.fps > 0)) return -1;
    mi.n_win = (int)nw;
    mi.m = malloc(sizeof(float) * (size_t)nw);
    if (!mi.m) return -1;
    for (long i = 0; i < nw; i++) {
        mi.m[i] = strtof(p = q, &q);
        if (q == p) { free(mi.m); return -1; }
    }
    while (*q == ' ') q++;
    int rc = *q ? -1 : motion_cache_put(c, tab + 1, stamp, &mi, NULL, 0);
    free(mi.m);
    return rc;
}

// Header, entries and trailer of an open cache file. Returns 0, or 1 (stale) with a reason.
static int motion__read_file(motion_cache *c, FILE *f, const char *path, char *err, size_t errlen) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long want = -1, got = 0;
    int version = -1, rc = 1, state = 0;  // 0 header, 1 count, 2 entries, 3 after "end"
    const char *why = "empty file";
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (state == 0) {
            int off = 0;
            if (sscanf(line, "scvrl-motion %d %n", &version, &off) != 1 || version != MOTION_CACHE_VERSION) {
                why = "written by another version"; break;
            }
            if (strcmp(line + off, c->params) != 0) { why = "computed with other parameters"; break; }
            state = 1, why = "truncated";
        } else if (state == 1) {
            if (sscanf(line, "entries %lld", &want) != 1 || want < 0) { why = "bad entry count"; break; }
            state = 2;
        } else if (state == 2 && strcmp(line, "end") == 0) {
            state = 3;
            if (got != want) { why = "entry count does not match"; break; }
            rc = 0;
        } else if (state == 2) {
            if (motion__parse_entry(c, line)) { why = "malformed entry"; break; }
            got++;
        } else {
            rc = 1, why = "data after the end";
            break;
        }
    }
    free(line);
    if (rc && err && errlen) snprintf(err, errlen, "motion cache %s ignored: %s", path, why);
    return rc;
}

int motion_cache_load(motion_cache *c, const char *path, char *err, size_t errlen) {
    motion__cache_clear(c);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "motion cache %s: %s", path, strerror(errno));
        return errno == ENOENT ? 1 : -1;
    }
    int rc = motion__read_file(c, f, path, err, errlen);
    if (ferror(f) && rc == 0) {
        if (err && errlen) snprintf(err, errlen, "motion cache %s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc) motion__cache_clear(c);
    c->dirty = 0;
    return rc;
}

int motion_cache_save(motion_cache *c, const char *path, char *err, size_t errlen) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        if (err && errlen) snprintf(err, errlen, "motion cache: path too long: %s", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "motion cache: cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "scvrl-motion %d %s\nentries %d\n", MOTION_CACHE_VERSION, c->params, c->n);
    for (int i = 0; i < c->n; i++) {
        const motion_cache_entry *e = &c->e[i];
        fprintf(f, "%016llx %lld %.17g %d", (unsigned long long)e->stamp,
                (long long)e->mi.n_frames, e->mi.fps, e->mi.n_win);
        for (int k = 0; k < e->mi.n_win; k++) fprintf(f, " %.9g", (double)e->mi.m[k]);
        fprintf(f, "\t%s\n", e->key);
    }
    fprintf(f, "end\n");
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        if (err && errlen) snprintf(err, errlen, "motion cache: writing %s failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    c->dirty = 0;
    return 0;
}

int motion_index_get(motion_cache *c, const char *key, uint64_t stamp, const motion_video *v,
                     motion_read_fn read, void *ctx, const motion_opts *o,
                     const motion_index **out, char *err, size_t errlen) {
    char params[sizeof c->params];
    motion__params(o, params, sizeof params);
    if (strcmp(params, c->params) != 0) {
        if (err && errlen) snprintf(err, errlen, "motion_index_get: options differ from the cache's (%s)", c->params);
        return -1;
    }
    *out = motion_cache_find(c, key, stamp, v->n_frames, v->fps);
    if (*out) return 0;
    motion_index mi;
    if (motion_index_compute(v, read, ctx, o, &mi, err, errlen)) return -1;
    int rc = motion_cache_put(c, key, stamp, &mi, err, errlen);
    motion_index_free(&mi);
    if (rc) return -1;
    *out = motion_cache_find(c, key, stamp, v->n_frames, v->fps);
    return 1;
}
