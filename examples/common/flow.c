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

// Weighted least-squares affine fit of r = (ru, rv) about the |r|^2-weighted centroid:
// div and curl of the fitted matrix A. ru, rv: [h][w].
static void flow__affine(const float *ru, const float *rv, int h, int w, float *div, float *curl) {
    double sw = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = ru[y * w + x], b = rv[y * w + x], wt = a * a + b * b;
            sw += wt; sx += wt * x; sy += wt * y;
        }
    *div = *curl = 0;
    if (!(sw > 1e-12)) return;
    double cx = sx / sw, cy = sy / sw;
    double sxx = 0, sxy = 0, syy = 0, sxu = 0, syu = 0, sxv = 0, syv = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = ru[y * w + x], b = rv[y * w + x], wt = a * a + b * b, dx = x - cx, dy = y - cy;
            sxx += wt * dx * dx; sxy += wt * dx * dy; syy += wt * dy * dy;
            sxu += wt * dx * a; syu += wt * dy * a; sxv += wt * dx * b; syv += wt * dy * b;
        }
    // centred at the weighted centroid the offset m decouples: each row of A solves [sxx sxy; sxy syy] a = [sx.; sy.]
    double det = sxx * syy - sxy * sxy;
    if (!(det > 1e-9 * (sxx + syy) * (sxx + syy)) || !(sxx + syy > 1e-12)) return;
    double axx = (syy * sxu - sxy * syu) / det, axy = (sxx * syu - sxy * sxu) / det;   // du/dx, du/dy
    double ayx = (syy * sxv - sxy * syv) / det, ayy = (sxx * syv - sxy * sxv) / det;   // dv/dx, dv/dy
    *div = (float)(axx + ayy);
    *curl = (float)(ayx - axy);
}

void flow_pair_features(const float *u, const float *v, int h, int w, float *scratch, float *out) {
    int64_t n = (int64_t)h * w;
    memcpy(scratch, u, sizeof(float) * (size_t)n);
    float gu = motion_median(scratch, n);
    memcpy(scratch, v, sizeof(float) * (size_t)n);
    float gv = motion_median(scratch, n);
    memset(out, 0, sizeof(float) * FLOW_PAIR_DIM);
    out[0] = gu; out[1] = gv;
    double su = 0, sv = 0, se = 0, cu[9] = { 0 }, cv[9] = { 0 };
    int64_t cn[9] = { 0 };
    for (int y = 0; y < h; y++) {
        int i = (int)((int64_t)3 * y / h);
        for (int x = 0; x < w; x++) {
            int j = (int)((int64_t)3 * x / w), c = 3 * i + j;
            double a = u[y * w + x] - gu, b = v[y * w + x] - gv;
            su += a; sv += b; se += sqrt(a * a + b * b);
            cu[c] += a; cv[c] += b; cn[c]++;
        }
    }
    out[2] = (float)(su / n); out[3] = (float)(sv / n); out[4] = (float)(se / n);
    for (int c = 0; c < 9; c++) { out[7 + 2 * c] = (float)(cu[c] / cn[c]); out[8 + 2 * c] = (float)(cv[c] / cn[c]); }
    float *ru = scratch, *rv = scratch + n;   // the residual field
    for (int64_t k = 0; k < n; k++) { ru[k] = u[k] - gu; rv[k] = v[k] - gv; }
    flow__affine(ru, rv, h, w, &out[5], &out[6]);
}

int flow_clip_features(const uint8_t *rgb, int len, int h, int w, const flow_opts *o, float *out,
                       char *err, size_t errlen) {
    if (len < 2 || h < 3 || w < 3) {
        snprintf(err, errlen, "flow features need at least 2 frames of 3x3 pixels (got %d of %dx%d)", len, h, w);
        return -1;
    }
    int P = len - 1, bins = o->bins > 0 ? o->bins : P;
    int64_t n = (int64_t)h * w;
    float *g = (float *)malloc(sizeof(float) * (size_t)(n * len + 4 * n));
    double *acc = (double *)calloc((size_t)bins * FLOW_PAIR_DIM, sizeof(double));
    int *cnt = (int *)calloc((size_t)bins, sizeof(int));
    if (!g || !acc || !cnt) { free(g); free(acc); free(cnt); snprintf(err, errlen, "out of memory for flow features (%dx%d)", h, w); return -1; }
    float *u = g + n * len, *v = u + n, *scratch = v + n, f[FLOW_PAIR_DIM];
    for (int64_t k = 0; k < n * len; k++)
        g[k] = (0.299f * rgb[3 * k] + 0.587f * rgb[3 * k + 1] + 0.114f * rgb[3 * k + 2]) / 255.0f;
    int rc = 0;
    for (int p = 0; p < P && !rc; p++) {
        rc = motion_flow(g + p * n, g + (p + 1) * n, h, w, &o->flow, u, v, err, errlen);
        if (rc) break;
        flow_pair_features(u, v, h, w, scratch, f);
        int b = (int)((int64_t)p * bins / P);
        for (int k = 0; k < FLOW_PAIR_DIM; k++) acc[b * FLOW_PAIR_DIM + k] += f[k];
        cnt[b]++;
    }
    for (int b = 0; b < bins && !rc; b++)
        for (int k = 0; k < FLOW_PAIR_DIM; k++) out[b * FLOW_PAIR_DIM + k] = cnt[b] ? (float)(acc[b * FLOW_PAIR_DIM + k] / cnt[b]) : 0.0f;
    free(g); free(acc); free(cnt);
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
