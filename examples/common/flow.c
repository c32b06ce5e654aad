// examples/common/flow.c: the flow oracle's features (see flow.h).
#include "flow.h"
#include "video.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

flow_opts flow_defaults(void) {
    flow_opts o;
    memset(&o, 0, sizeof o);
    o.flow = motion_flow_defaults();
    return o;
}

void flow_window(int64_t n_frames, int window, int64_t *start, int *len) {
    int64_t W = window > 0 ? window : (2 * n_frames + 1) / 3;
    if (W > n_frames) W = n_frames;
    if (W < 2 && n_frames >= 2) W = 2;
    *start = W > 0 ? (n_frames - W + 1) / 2 : 0;
    *len = (int)W;
}

int flow_dim(const flow_opts *o, int len) { return (o->bins > 0 ? o->bins : len - 1) * FLOW_PAIR_DIM; }

// Separable Gaussian blur (sigma 2, radius 6, edges clamped) of x [h][w] in place; tmp [h][w].
static void flow__blur(float *x, int h, int w, float *tmp) {
    float k[13], s = 0;
    for (int i = -6; i <= 6; i++) s += k[i + 6] = expf(-(float)(i * i) / 8.0f);
    for (int i = 0; i < 13; i++) k[i] /= s;
    for (int y = 0; y < h; y++)
        for (int x0 = 0; x0 < w; x0++) {
            float a = 0;
            for (int i = -6; i <= 6; i++) { int xx = x0 + i < 0 ? 0 : x0 + i >= w ? w - 1 : x0 + i; a += k[i + 6] * x[y * w + xx]; }
            tmp[y * w + x0] = a;
        }
    for (int y0 = 0; y0 < h; y0++)
        for (int x0 = 0; x0 < w; x0++) {
            float a = 0;
            for (int i = -6; i <= 6; i++) { int yy = y0 + i < 0 ? 0 : y0 + i >= h ? h - 1 : y0 + i; a += k[i + 6] * tmp[yy * w + x0]; }
            x[y0 * w + x0] = a;
        }
}

void flow_confidence(const float *I0, int h, int w, float *conf, float *scratch) {
    int64_t n = (int64_t)h * w;
    float *xx = scratch, *xy = scratch + n, *yy = scratch + 2 * n, *tmp = scratch + 3 * n;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int xm = x > 0 ? x - 1 : x, xp = x < w - 1 ? x + 1 : x, ym = y > 0 ? y - 1 : y, yp = y < h - 1 ? y + 1 : y;
            float gx = (I0[y * w + xp] - I0[y * w + xm]) / (float)(xp - xm), gy = (I0[yp * w + x] - I0[ym * w + x]) / (float)(yp - ym);
            xx[y * w + x] = gx * gx; xy[y * w + x] = gx * gy; yy[y * w + x] = gy * gy;
        }
    flow__blur(xx, h, w, tmp); flow__blur(xy, h, w, tmp); flow__blur(yy, h, w, tmp);
    for (int64_t k = 0; k < n; k++) {
        float a = xx[k], b = xy[k], c = yy[k], d = 0.5f * (a - c);
        float lmin = 0.5f * (a + c) - sqrtf(d * d + b * b);
        conf[k] = lmin > 0 ? lmin : 0;
    }
    memcpy(tmp, conf, sizeof(float) * (size_t)n);
    float floor_ = motion_median(tmp, n);
    for (int64_t k = 0; k < n; k++) conf[k] = conf[k] > floor_ ? conf[k] - floor_ : 0;
}

typedef struct { float v, w; } flow__vw;
// Weighted least-squares affine fit of r = (ru, rv) over the rectangle [x0, x1) x [y0, y1) about the
// centroid of the weights (c, times |r|^2 when motion_weighted): div and curl of the fitted matrix A, and
// (mean may be NULL) its offset m, the weighted mean of r. ru, rv, c: [h][w] (row stride w).
static void flow__affine(const float *ru, const float *rv, const float *c, int w, int x0, int x1, int y0, int y1,
                         int motion_weighted, float *div, float *curl, float *mean, float *centre) {
    double sw = 0, sx = 0, sy = 0, su = 0, sv = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            double a = ru[y * w + x], b = rv[y * w + x], wt = c[y * w + x] * (motion_weighted ? a * a + b * b : 1.0);
            sw += wt; sx += wt * x; sy += wt * y; su += wt * a; sv += wt * b;
        }
    *div = *curl = 0;
    if (mean) mean[0] = mean[1] = 0;
    if (centre) { centre[0] = 0.5f * (float)(x0 + x1); centre[1] = 0.5f * (float)(y0 + y1); }
    if (!(sw > 1e-20)) return;
    if (mean) { mean[0] = (float)(su / sw); mean[1] = (float)(sv / sw); }
    double cx = sx / sw, cy = sy / sw;
    if (centre) { centre[0] = (float)cx; centre[1] = (float)cy; }
    double sxx = 0, sxy = 0, syy = 0, sxu = 0, syu = 0, sxv = 0, syv = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            double a = ru[y * w + x], b = rv[y * w + x], wt = c[y * w + x] * (motion_weighted ? a * a + b * b : 1.0);
            double dx = x - cx, dy = y - cy;
            sxx += wt * dx * dx; sxy += wt * dx * dy; syy += wt * dy * dy;
            sxu += wt * dx * a; syu += wt * dy * a; sxv += wt * dx * b; syv += wt * dy * b;
        }
    // centred at the weighted centroid the offset decouples: each row of A solves [sxx sxy; sxy syy] a = [sx.; sy.]
    double det = sxx * syy - sxy * sxy;
    if (!(sxx + syy > 0) || !(det > 1e-9 * (sxx + syy) * (sxx + syy))) return;
    double axx = (syy * sxu - sxy * syu) / det, axy = (sxx * syu - sxy * sxu) / det;   // du/dx, du/dy
    double ayx = (syy * sxv - sxy * syv) / det, ayy = (sxx * syv - sxy * sxv) / det;   // dv/dx, dv/dy
    *div = (float)(axx + ayy);
    *curl = (float)(ayx - axy);
}

void flow_pair_features(const float *I0, const float *u, const float *v, int h, int w, float *scratch, float *out) {
    int64_t n = (int64_t)h * w;
    float *c = scratch, *ru = scratch + n, *rv = scratch + 2 * n;
    flow_confidence(I0, h, w, c, scratch + n);
    flow__vw *vw = (flow__vw *)(scratch + 3 * n);   // [n] pairs over scratch[3n, 5n)
    // global motion: the plain median over every pixel (the background is most of the frame); a median
    // weighted by c let the target win wherever the background's texture is one-dimensional or weak
    // (stripes, gradients: lmin ~ 0), and subtracted the target's own motion as camera motion
    float *tmp = (float *)vw, gu, gv;
    memcpy(tmp, u, sizeof(float) * (size_t)n); gu = motion_median(tmp, n);
    memcpy(tmp, v, sizeof(float) * (size_t)n); gv = motion_median(tmp, n);
    memset(out, 0, sizeof(float) * FLOW_PAIR_DIM);
    out[0] = gu; out[1] = gv;
    double su = 0, sv = 0, se = 0, sc = 0, cu[9] = { 0 }, cv[9] = { 0 }, cc[9] = { 0 };
    for (int y = 0; y < h; y++) {
        int i = (int)((int64_t)3 * y / h);
        for (int x = 0; x < w; x++) {
            int j = (int)((int64_t)3 * x / w), q = 3 * i + j;
            int64_t k = (int64_t)y * w + x;
            double a = u[k] - gu, b = v[k] - gv, wt = c[k];
            ru[k] = (float)a; rv[k] = (float)b;
            su += wt * a; sv += wt * b; se += wt * sqrt(a * a + b * b); sc += wt;
            cu[q] += wt * a; cv[q] += wt * b; cc[q] += wt;
        }
    }
    if (sc > 0) { out[2] = (float)(su / sc); out[3] = (float)(sv / sc); out[4] = (float)(se / sc); }
    double m25 = 0, m50 = 0;
    for (int64_t k = 0; k < n; k++) {
        double a2 = (double)ru[k] * ru[k] + (double)rv[k] * rv[k];
        m25 += c[k] * (a2 > 0.0625); m50 += c[k] * (a2 > 0.25);
    }
    if (sc > 0) { out[56] = (float)(m25 / sc); out[57] = (float)(m50 / sc); }
    for (int q = 0; q < 9; q++)
        if (cc[q] > 0) { out[7 + 2 * q] = (float)(cu[q] / cc[q]); out[8 + 2 * q] = (float)(cv[q] / cc[q]); }
    float ctr[2];
    flow__affine(ru, rv, c, w, 0, w, 0, h, 1, &out[5], &out[6], &out[43], ctr);
    int half = (int)(0.15f * (float)(w > h ? w : h) + 0.5f), lx0 = (int)ctr[0] - half, ly0 = (int)ctr[1] - half;
    int lx1 = lx0 + 2 * half + 1, ly1 = ly0 + 2 * half + 1;
    flow__affine(ru, rv, c, w, lx0 < 0 ? 0 : lx0, lx1 > w ? w : lx1, ly0 < 0 ? 0 : ly0, ly1 > h ? h : ly1, 0, &out[54], &out[55], NULL, NULL);
    out[45] = sqrtf(out[43] * out[43] + out[44] * out[44]);
    out[46] = fabsf(out[43]); out[47] = fabsf(out[44]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int q = 3 * i + j;
            flow__affine(ru, rv, c, w, (int)((int64_t)j * w / 3), (int)((int64_t)(j + 1) * w / 3), (int)((int64_t)i * h / 3),
                         (int)((int64_t)(i + 1) * h / 3), 0, &out[25 + 2 * q], &out[26 + 2 * q], NULL, NULL);
        }
}

void flow_track_features(float *f, int P) {
    double sxx = 0, sxy = 0, syy = 0, dx = 0, dy = 0;   // second moments and sum of the moving region's flow m
    for (int p = 0; p < P; p++) {
        double mx = f[(size_t)p * FLOW_PAIR_DIM + 43], my = f[(size_t)p * FLOW_PAIR_DIM + 44];
        sxx += mx * mx; sxy += mx * my; syy += my * my; dx += mx; dy += my;
    }
    double th = 0.5 * atan2(2 * sxy, sxx - syy);      // principal axis of the flow vectors
    double ex = cos(th), ey = sin(th);
    if (ex * dx + ey * dy < 0) { ex = -ex; ey = -ey; } // along the net displacement
    double tr = sxx + syy, an = tr > 1e-20 ? sqrt((sxx - syy) * (sxx - syy) + 4 * sxy * sxy) / tr : 0;  // anisotropy 0..1
    double rms = sqrt(tr / (P > 0 ? P : 1)), tot = 0, cum = 0;
    for (int p = 0; p < P; p++) tot += fabs(ex * f[(size_t)p * FLOW_PAIR_DIM + 43] + ey * f[(size_t)p * FLOW_PAIR_DIM + 44]);
    for (int p = 0; p < P; p++) {
        float *q = f + (size_t)p * FLOW_PAIR_DIM;
        q[52] = rms > 1e-3 ? (float)((ex * q[43] + ey * q[44]) / rms) : 0.0f;
        cum += ex * q[43] + ey * q[44];
        q[53] = tot > 1e-3 ? (float)(cum / tot) : 0.0f;
        q[48] = (float)(ex * q[43] + ey * q[44]);
        q[49] = (float)(-ey * q[43] + ex * q[44]);
        q[50] = (float)(an * cos(4 * th));
        q[51] = (float)(an * sin(4 * th));
    }
}

int flow_clip_features(const uint8_t *rgb, int len, int h, int w, const flow_opts *o, float *out,
                       char *err, size_t errlen) {
    if (len < 2 || h < 3 || w < 3) {
        snprintf(err, errlen, "flow features need at least 2 frames of 3x3 pixels (got %d of %dx%d)", len, h, w);
        return -1;
    }
    int P = len - 1, bins = o->bins > 0 ? o->bins : P;
    int64_t n = (int64_t)h * w;
    float *g = (float *)malloc(sizeof(float) * (size_t)(n * len + 7 * n)), *f = (float *)malloc(sizeof(float) * (size_t)P * FLOW_PAIR_DIM);
    double *acc = (double *)calloc((size_t)bins * FLOW_PAIR_DIM, sizeof(double));
    int *cnt = (int *)calloc((size_t)bins, sizeof(int));
    if (!g || !f || !acc || !cnt) { free(g); free(f); free(acc); free(cnt); snprintf(err, errlen, "out of memory for flow features (%dx%d)", h, w); return -1; }
    float *u = g + n * len, *v = u + n, *scratch = v + n;
    for (int64_t k = 0; k < n * len; k++)
        g[k] = (0.299f * rgb[3 * k] + 0.587f * rgb[3 * k + 1] + 0.114f * rgb[3 * k + 2]) / 255.0f;
    int rc = 0;
    for (int p = 0; p < P && !rc; p++) {
        double m0 = 0, m1 = 0;   // gain compensation: frame p+1 scaled to frame p's mean (i.i.d. gain nuisance)
        for (int64_t k = 0; k < n; k++) { m0 += g[p * n + k]; m1 += g[(p + 1) * n + k]; }
        float gain = m1 > 0 ? (float)(m0 / m1) : 1.0f;
        for (int64_t k = 0; k < n; k++) scratch[k] = g[(p + 1) * n + k] * gain;
        rc = motion_flow(g + p * n, scratch, h, w, &o->flow, u, v, err, errlen);
        if (rc) break;
        flow_pair_features(g + p * n, u, v, h, w, scratch, f + (size_t)p * FLOW_PAIR_DIM);
    }
    if (!rc) flow_track_features(f, P);
    for (int p = 0; p < P && !rc; p++) {
        int b = (int)((int64_t)p * bins / P);
        for (int k = 0; k < FLOW_PAIR_DIM; k++) acc[b * FLOW_PAIR_DIM + k] += f[(size_t)p * FLOW_PAIR_DIM + k];
        cnt[b]++;
    }
    for (int b = 0; b < bins && !rc; b++)
        for (int k = 0; k < FLOW_PAIR_DIM; k++) out[b * FLOW_PAIR_DIM + k] = cnt[b] ? (float)(acc[b * FLOW_PAIR_DIM + k] / cnt[b]) : 0.0f;
    free(g); free(f); free(acc); free(cnt);
    return rc;
}

int flow_video_features(const char *path, const flow_opts *o, float *out, int *dim, char *err, size_t errlen) {
    vid_info info;
    vid_opts vo = { 30.0, 1 };
    vid_reader *r = vid_open_ex(path, &vo, &info, err, errlen);
    if (!r) return -1;
    int64_t start;
    int len;
    flow_window(info.n_frames, o->window, &start, &len);
    if (len < 2 || len > 1024 || flow_dim(o, len) > FLOW_MAX_DIM) {
        snprintf(err, errlen, "%s: %lld frames: the flow oracle needs a window of 2..1024 frames (--window)", path, (long long)info.n_frames);
        vid_close(r);
        return -1;
    }
    int64_t idx[1024];
    for (int t = 0; t < len; t++) idx[t] = start + t;
    uint8_t *rgb = (uint8_t *)malloc((size_t)len * info.height * info.width * 3);
    int rc = rgb ? 0 : -1;
    if (!rgb) snprintf(err, errlen, "%s: out of memory reading %d frames", path, len);
    if (!rc && vid_read_frames(r, idx, len, 0, 0, VID_RESIZE_NATIVE, rgb, err, errlen) < 0) rc = -1;
    vid_close(r);
    if (!rc && flow_clip_features(rgb, len, info.height, info.width, o, out, err, errlen)) {
        char e2[512];
        snprintf(e2, sizeof e2, "%s", err);
        snprintf(err, errlen, "%s: %s", path, e2);
        rc = -1;
    }
    free(rgb);
    *dim = rc ? 0 : flow_dim(o, len);
    return rc;
}
