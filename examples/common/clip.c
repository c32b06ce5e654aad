// examples/common/clip.c: clip sampling, spatial augmentation, temporal shuffles.
// See clip.h for the conventions (randomness, order of the augmentations, shapes).
#include "clip.h"
#include "scvrl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
// Elementwise loops (no reductions across iterations): vectorised whatever the cost model
// of -O2, with results identical to the scalar loop.
#define CLIP__SIMD _Pragma("omp simd")
#else
#define CLIP__SIMD
#endif

// ---- randomness: scvrl.h's counter-based generator ------------------------------------------

#define clip__mix scvrl_mix64
#define clip__rng_u64 scvrl_rng_u64
#define clip__rng_uniform scvrl_rng_uniform

// [0, 1) with 53 bits, for integer draws over large ranges.
static double clip__rng_double(uint64_t seed, uint64_t stream, uint64_t i) {
    return (double)(clip__rng_u64(seed, stream, i) >> 11) * 0x1.0p-53;
}

// Uniform integer in [lo, hi] (inclusive); lo when hi <= lo.
static int64_t clip__randint(uint64_t seed, uint64_t stream, uint64_t i, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    double n = (double)(hi - lo) + 1.0;
    int64_t r = lo + (int64_t)(clip__rng_double(seed, stream, i) * n);
    return r > hi ? hi : r;
}

// Uniform float in [lo, hi).
static float clip__uniform(uint64_t seed, uint64_t stream, uint64_t i, float lo, float hi) {
    return lo + (hi - lo) * clip__rng_uniform(seed, stream, i);
}

uint64_t clip_stream(uint64_t epoch, uint64_t sample, uint64_t purpose) {
    return clip__mix(epoch * 0x100000001B3ull + sample) ^ purpose;
}

uint64_t clip_rng_u64(uint64_t seed, uint64_t stream, uint64_t i) {
    return clip__rng_u64(seed, stream, i);
}

float clip_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    return clip__rng_uniform(seed, stream, i);
}

// ---- clip sampling -----------------------------------------------------------------------

clip_sample_opts clip_sample_defaults(void) {
    clip_sample_opts o = {.T = 16, .stride = 4, .jitter = 4, .target_fps = 0};
    return o;
}

// Native frames between consecutive clip frames.
static double clip__step(const clip_sample_opts *o, double fps) {
    if (o->target_fps > 0 && fps > 0) return o->stride * fps / o->target_fps;
    return o->stride;
}

static int64_t clip__offset(double step, int t) { return (int64_t)floor(t * step + 0.5); }

int64_t clip_span(const clip_sample_opts *o, double fps) {
    if (o->T < 1) return 1;
    return clip__offset(clip__step(o, fps), o->T - 1) + 1;
}

int clip_indices(const clip_sample_opts *o, double fps, int64_t n_frames, int64_t start,
                 int64_t *idx) {
    double step = clip__step(o, fps);
    int clamped = 0;
    for (int t = 0; t < o->T; t++) {
        int64_t i = start + clip__offset(step, t);
        if (i > n_frames - 1) { i = n_frames - 1; clamped++; }
        idx[t] = i < 0 ? 0 : i;
    }
    return clamped;
}

int clip_draw_window(const double *p, int n, double u) {
    double total = 0;
    for (int i = 0; i < n; i++) total += p[i] > 0 ? p[i] : 0;
    double target = u * total, acc = 0;
    int last = -1;
    for (int i = 0; i < n; i++) {
        if (!(p[i] > 0)) continue;
        acc += p[i];
        last = i;
        if (target < acc) return i;
    }
    return last < 0 ? 0 : last;  // rounding at the top end, or all zero
}

static int64_t clip__clamp(int64_t x, int64_t lo, int64_t hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

int64_t clip_draw_start(int64_t n_frames, int64_t span, const clip_windows *w,
                        uint64_t seed, uint64_t stream, int *win_out) {
    int64_t max_start = n_frames - span > 0 ? n_frames - span : 0;
    if (!w || !w->p || w->n <= 0 || !(w->win_frames > 0)) {
        if (win_out) *win_out = -1;
        return clip__randint(seed, stream, 0, 0, max_start);
    }
    int i = clip_draw_window(w->p, w->n, clip__rng_double(seed, stream, 0));
    int64_t a = (int64_t)floor(i * w->win_frames);
    int64_t b = i == w->n - 1 ? n_frames : (int64_t)floor((i + 1) * w->win_frames);
    if (b > n_frames) b = n_frames;
    if (a > n_frames - 1) a = n_frames - 1;
    if (b <= a) b = a + 1;
    int64_t c = clip__randint(seed, stream, 1, a, b - 1);
    if (win_out) *win_out = i;
    return clip__clamp(c - (span - 1) / 2, 0, max_start);
}

static int clip__check_sample(const clip_sample_opts *o, int64_t n_frames, double fps,
                              char *err, size_t errlen) {
    if (o->T < 1 || o->stride < 1 || o->jitter < 0) {
        if (err && errlen)
            snprintf(err, errlen, "clip sampling: T %d and stride %d must be >= 1, jitter %d >= 0",
                     o->T, o->stride, o->jitter);
        return -1;
    }
    if (n_frames < 1) {
        if (err && errlen)
            snprintf(err, errlen, "clip sampling: the video has %lld frames (need >= 1)",
                     (long long)n_frames);
        return -1;
    }
    if (o->target_fps > 0 && !(fps > 0)) {
        if (err && errlen) snprintf(err, errlen, "clip sampling: target_fps set but fps %g", fps);
        return -1;
    }
    return 0;
}

int clip_sample_pretrain(const clip_sample_opts *o, int64_t n_frames, double fps,
                         const clip_windows *w, uint64_t seed, uint64_t epoch,
                         uint64_t sample, clip_pretrain_draw *out, char *err, size_t errlen) {
    if (clip__check_sample(o, n_frames, fps, err, errlen)) return -1;
    int64_t span = clip_span(o, fps);
    int64_t max_start = n_frames - span > 0 ? n_frames - span : 0;
    uint64_t sa = clip_stream(epoch, sample, CLIP_PURPOSE_START_A);
    uint64_t sj = clip_stream(epoch, sample, CLIP_PURPOSE_JITTER);
    uint64_t sb = clip_stream(epoch, sample, CLIP_PURPOSE_START_B);
    int64_t a = clip_draw_start(n_frames, span, w, seed, sa, &out->win_a);
    out->jitter_a = (int)clip__randint(seed, sj, 0, -o->jitter, o->jitter);
    out->start_a = clip__clamp(a + out->jitter_a, 0, max_start);
    out->start_b = clip_draw_start(n_frames, span, NULL, seed, sb, NULL);
    return 0;
}

int64_t clip_eval_start(const clip_sample_opts *o, int64_t n_frames, double fps, int view,
                        int n_views) {
    int64_t delta = n_frames - clip_span(o, fps);
    if (delta <= 0) return 0;
    if (n_views < 1) n_views = 1;
    view = view < 0 ? 0 : view >= n_views ? n_views - 1 : view;
    return (int64_t)floor((view + 0.5) * (double)delta / n_views + 0.5);
}

// ---- augmentation parameters -------------------------------------------------------------

clip_aug_opts clip_aug_defaults(void) {
    clip_aug_opts o = {
        .out_h = 224, .out_w = 224, .scale_min = 0.08f, .scale_max = 1.0f,
        .ratio_min = 3.0f / 4.0f, .ratio_max = 4.0f / 3.0f, .p_flip = 0.5f, .p_gray = 0.2f,
        .p_blur = 0.5f, .sigma_min = 0.1f, .sigma_max = 2.0f, .p_jitter = 0.8f,
        .brightness = 0.4f, .contrast = 0.4f, .saturation = 0.4f, .hue = 0.0f,
        .jitter_random_order = 1, .mean = {0.45f, 0.45f, 0.45f}, .std = {0.225f, 0.225f, 0.225f}};
    return o;
}

// Counter slots within an augmentation stream.
enum { CLIP__SLOT_CROP = 0,  // 4 per try: area, ratio, top, left (10 tries)
       CLIP__SLOT_FLIP = 40, CLIP__SLOT_GRAY, CLIP__SLOT_BLUR, CLIP__SLOT_SIGMA,
       CLIP__SLOT_JITTER, CLIP__SLOT_FACTORS, CLIP__SLOT_ORDER = CLIP__SLOT_FACTORS + 4 };

// torchvision RandomResizedCrop.get_params with counter draws; integer box into p.
static void clip__draw_crop(const clip_aug_opts *o, int H, int W, uint64_t seed,
                            uint64_t stream, clip_aug_params *p) {
    double area = (double)H * W;
    double lr0 = log(o->ratio_min), lr1 = log(o->ratio_max);
    for (int a = 0; a < 10; a++) {
        uint64_t s = CLIP__SLOT_CROP + 4 * (uint64_t)a;
        double target = area * clip__uniform(seed, stream, s, o->scale_min, o->scale_max);
        double ratio = exp(lr0 + (lr1 - lr0) * clip__rng_uniform(seed, stream, s + 1));
        int w = (int)nearbyint(sqrt(target * ratio));
        int h = (int)nearbyint(sqrt(target / ratio));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            p->y0 = (double)clip__randint(seed, stream, s + 2, 0, H - h);
            p->x0 = (double)clip__randint(seed, stream, s + 3, 0, W - w);
            p->bw = w, p->bh = h;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < o->ratio_min) h = (int)nearbyint(w / (double)o->ratio_min);
    else if (in_ratio > o->ratio_max) w = (int)nearbyint(h * (double)o->ratio_max);
    p->bw = w, p->bh = h;
    p->y0 = (H - h) / 2, p->x0 = (W - w) / 2;
}

// Jitter factor uniform in [max(0, 1 - s), 1 + s]; 1 when s <= 0.
static float clip__factor(uint64_t seed, uint64_t stream, uint64_t i, float s) {
    if (!(s > 0)) return 1.0f;
    return clip__uniform(seed, stream, i, s < 1 ? 1 - s : 0, 1 + s);
}

static void clip__draw_color(const clip_aug_opts *o, uint64_t seed, uint64_t stream,
                             clip_aug_params *p) {
    p->jitter = clip__rng_uniform(seed, stream, CLIP__SLOT_JITTER) < o->p_jitter;
    p->brightness = p->contrast = p->saturation = 1.0f;
    p->hue = 0.0f;
    for (int k = 0; k < 4; k++) p->order[k] = k;
    if (!p->jitter) return;
    p->brightness = clip__factor(seed, stream, CLIP__SLOT_FACTORS + 0, o->brightness);
    p->contrast = clip__factor(seed, stream, CLIP__SLOT_FACTORS + 1, o->contrast);
    p->saturation = clip__factor(seed, stream, CLIP__SLOT_FACTORS + 2, o->saturation);
    if (o->hue > 0) p->hue = clip__uniform(seed, stream, CLIP__SLOT_FACTORS + 3, -o->hue, o->hue);
    if (!o->jitter_random_order) return;
    for (int i = 3; i > 0; i--) {  // Fisher-Yates: a uniform permutation of the 4 ops
        int j = (int)clip__randint(seed, stream, CLIP__SLOT_ORDER + (uint64_t)(3 - i), 0, i);
        int t = p->order[i]; p->order[i] = p->order[j]; p->order[j] = t;
    }
}

int clip_aug_draw(const clip_aug_opts *o, int H, int W, uint64_t seed, uint64_t stream,
                  clip_aug_params *p, char *err, size_t errlen) {
    if (H < 1 || W < 1 || o->out_h < 1 || o->out_w < 1) {
        if (err && errlen)
            snprintf(err, errlen, "clip augmentation: sizes must be positive (input %dx%d, "
                     "output %dx%d)", H, W, o->out_h, o->out_w);
        return -1;
    }
    if (!(o->scale_min > 0 && o->scale_min <= o->scale_max && o->ratio_min > 0 &&
          o->ratio_min <= o->ratio_max && o->sigma_min >= 0 && o->sigma_min <= o->sigma_max)) {
        if (err && errlen) snprintf(err, errlen, "clip augmentation: bad scale, ratio or sigma range");
        return -1;
    }
    memset(p, 0, sizeof *p);
    clip__draw_crop(o, H, W, seed, stream, p);
    p->out_h = o->out_h, p->out_w = o->out_w;
    p->flip = clip__rng_uniform(seed, stream, CLIP__SLOT_FLIP) < o->p_flip;
    p->gray = clip__rng_uniform(seed, stream, CLIP__SLOT_GRAY) < o->p_gray;
    if (clip__rng_uniform(seed, stream, CLIP__SLOT_BLUR) < o->p_blur)
        p->blur_sigma = clip__uniform(seed, stream, CLIP__SLOT_SIGMA, o->sigma_min, o->sigma_max);
    if (p->blur_sigma < 0) p->blur_sigma = 0;
    clip__draw_color(o, seed, stream, p);
    for (int c = 0; c < 3; c++) p->mean[c] = o->mean[c], p->std[c] = o->std[c];
    return 0;
}

int clip_aug_draw_views(const clip_aug_opts *o, int H, int W, uint64_t seed, uint64_t epoch,
                        uint64_t sample, clip_aug_params p[3], char *err, size_t errlen) {
    static const uint64_t purpose[3] = {CLIP_PURPOSE_AUG_A, CLIP_PURPOSE_AUG_P, CLIP_PURPOSE_AUG_PV};
    for (int v = 0; v < 3; v++)
        if (clip_aug_draw(o, H, W, seed, clip_stream(epoch, sample, purpose[v]), &p[v], err, errlen))
            return -1;
    return 0;
}

int clip_eval_params(int H, int W, int short_side, int crop_h, int crop_w, int view,
                     int n_views, int flip, clip_aug_params *p, char *err, size_t errlen) {
    if (H < 1 || W < 1 || short_side < 1 || crop_h < 1 || crop_w < 1) {
        if (err && errlen) snprintf(err, errlen, "clip eval: sizes must be positive");
        return -1;
    }
    double s = (double)short_side / (H < W ? H : W);
    int rh = H <= W ? short_side : (int)nearbyint(H * s);
    int rw = W < H ? short_side : (int)nearbyint(W * s);
    if (crop_h > rh || crop_w > rw) {
        if (err && errlen)
            snprintf(err, errlen, "clip eval: crop %dx%d does not fit the resized frame %dx%d "
                     "(short side %d)", crop_h, crop_w, rh, rw, short_side);
        return -1;
    }
    if (n_views < 1) n_views = 1;
    view = view < 0 ? 0 : view >= n_views ? n_views - 1 : view;
    int oy = (rh - crop_h) / 2, ox = (rw - crop_w) / 2;
    int along_w = rw >= rh;  // views run along the long side
    int L = along_w ? rw - crop_w : rh - crop_h;
    int off = n_views == 1 ? L / 2 : (int)nearbyint((double)view * L / (n_views - 1));
    if (along_w) ox = off; else oy = off;
    double sx = (double)W / rw, sy = (double)H / rh;  // source pixels per resized pixel
    memset(p, 0, sizeof *p);
    p->x0 = ox * sx, p->y0 = oy * sy, p->bw = crop_w * sx, p->bh = crop_h * sy;
    p->out_h = crop_h, p->out_w = crop_w, p->flip = flip != 0;
    p->brightness = p->contrast = p->saturation = 1.0f;
    for (int k = 0; k < 4; k++) p->order[k] = k;
    for (int c = 0; c < 3; c++) p->mean[c] = 0.45f, p->std[c] = 0.225f;
    return 0;
}

// ---- resampling ----------------------------------------------------------------------------

// Filter taps for one axis: output o reads inputs first[o] .. first[o] + count[o] - 1 with
// weights w[o * taps + k] (already divided by `gain`).
typedef struct clip__wtab {
    int n_out, taps;
    int *first, *count;
    float *w;
} clip__wtab;

static void clip__wtab_free(clip__wtab *t) {
    free(t->first); free(t->count); free(t->w);
    memset(t, 0, sizeof *t);
}

// Triangle filter (bilinear), PIL-style: support scales with the shrink factor (antialias),
// taps are clipped to the image and renormalised. Source box [x0, x0 + box) of n_in pixels.
static int clip__wtab_make(clip__wtab *t, double x0, double box, int n_in, int n_out, float gain) {
    double scale = box / n_out, fs = scale > 1 ? scale : 1, support = fs;
    t->n_out = n_out;
    t->taps = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * (size_t)n_out);
    t->count = malloc(sizeof(int) * (size_t)n_out);
    t->w = malloc(sizeof(float) * (size_t)n_out * (size_t)t->taps);
    if (!t->first || !t->count || !t->w) { clip__wtab_free(t); return -1; }
    for (int o = 0; o < n_out; o++) {
        double center = x0 + (o + 0.5) * scale;
        int lo = (int)floor(center - support + 0.5), hi = (int)floor(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        if (hi - lo > t->taps) hi = lo + t->taps;
        float *w = t->w + (size_t)o * t->taps;
        int n = hi - lo;
        double sum = 0;
        for (int k = 0; k < n; k++) sum += fmax(0.0, 1.0 - fabs((lo + k + 0.5 - center) / fs));
        if (n <= 0 || !(sum > 0)) {  // centre off the image: nearest edge pixel
            lo = center < 0 ? 0 : n_in - 1;
            n = 1, w[0] = gain;
        } else {
            for (int k = 0; k < n; k++)
                w[k] = (float)(fmax(0.0, 1.0 - fabs((lo + k + 0.5 - center) / fs)) / sum * gain);
        }
        t->first[o] = lo, t->count[o] = n;
    }
    return 0;
}

// One frame: src uint8 [H][W][3] -> rgb planes float [3][oh][ow] in [0, 1] (gain 1/255 is in
// tx's weights). tmp: [yhi - ylo][ow][3]; acc: [ow * 3].
static void clip__resample(const clip__wtab *tx, const clip__wtab *ty, int ylo, int yhi,
                           int flip, const uint8_t *src, int W, float *tmp, float *acc,
                           float *rgb) {
    int ow = tx->n_out, oh = ty->n_out;
    for (int y = ylo; y < yhi; y++) {  // horizontal pass on the rows the vertical pass reads
        const uint8_t *row = src + (size_t)y * W * 3;
        float *dst = tmp + (size_t)(y - ylo) * ow * 3;
        for (int ox = 0; ox < ow; ox++) {
            int so = flip ? ow - 1 - ox : ox;
            const float *w = tx->w + (size_t)so * tx->taps;
            const uint8_t *s = row + (size_t)tx->first[so] * 3;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < tx->count[so]; k++)
                r += w[k] * s[3 * k], g += w[k] * s[3 * k + 1], b += w[k] * s[3 * k + 2];
            dst[3 * ox] = r, dst[3 * ox + 1] = g, dst[3 * ox + 2] = b;
        }
    }
    size_t hw = (size_t)oh * ow;
    for (int oy = 0; oy < oh; oy++) {
        const float *w = ty->w + (size_t)oy * ty->taps;
        CLIP__SIMD
        for (int j = 0; j < ow * 3; j++) acc[j] = 0;
        for (int k = 0; k < ty->count[oy]; k++) {
            const float *row = tmp + (size_t)(ty->first[oy] + k - ylo) * ow * 3;
            float wk = w[k];
            CLIP__SIMD
            for (int j = 0; j < ow * 3; j++) acc[j] += wk * row[j];
        }
        float *r = rgb + (size_t)oy * ow, *g = r + hw, *b = g + hw;
        CLIP__SIMD
        for (int ox = 0; ox < ow; ox++) {
            float vr = acc[3 * ox], vg = acc[3 * ox + 1], vb = acc[3 * ox + 2];
            r[ox] = vr > 1 ? 1 : vr, g[ox] = vg > 1 ? 1 : vg, b[ox] = vb > 1 ? 1 : vb;
        }
    }
}

// ---- colour ----------------------------------------------------------------------------------

static float clip__clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static float clip__gray(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

// torchvision _blend: clamp(ratio * a + (1 - ratio) * b, 0, 1).
static float clip__blend(float a, float b, float ratio) {
    return clip__clamp01(ratio * a + (1.0f - ratio) * b);
}

// torchvision adjust_hue on one pixel (_rgb2hsv, shift, _hsv2rgb).
static void clip__hue_px(float *r, float *g, float *b, float shift) {
    float R = *r, G = *g, B = *b;
    float maxc = fmaxf(R, fmaxf(G, B)), minc = fminf(R, fminf(G, B));
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / (eqc ? 1.0f : maxc), div = eqc ? 1.0f : cr;
    float rc = (maxc - R) / div, gc = (maxc - G) / div, bc = (maxc - B) / div;
    float h = maxc == R ? bc - gc : maxc == G ? 2.0f + rc - bc : 4.0f + gc - rc;
    h = fmodf(h / 6.0f + 1.0f, 1.0f);
    h = fmodf(h + shift + 1.0f, 1.0f);
    float v = maxc, h6 = h * 6.0f, fi = floorf(h6), f = h6 - fi;
    int i = ((int)fi) % 6;
    float p = clip__clamp01(v * (1 - s)), q = clip__clamp01(v * (1 - s * f));
    float t = clip__clamp01(v * (1 - s * (1 - f)));
    switch (i) {
    case 0: *r = v, *g = t, *b = p; break;
    case 1: *r = q, *g = v, *b = p; break;
    case 2: *r = p, *g = v, *b = t; break;
    case 3: *r = p, *g = q, *b = v; break;
    case 4: *r = t, *g = p, *b = v; break;
    default: *r = v, *g = p, *b = q; break;
    }
}

// One colour-jitter op on planes r, g, b of n pixels.
static void clip__jitter_op(int op, const clip_aug_params *p, float *r, float *g, float *b,
                            size_t n) {
    if (op == 0) {
        float f = p->brightness;
        CLIP__SIMD
        for (size_t i = 0; i < n; i++)
            r[i] = clip__blend(r[i], 0, f), g[i] = clip__blend(g[i], 0, f), b[i] = clip__blend(b[i], 0, f);
    } else if (op == 1) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += clip__gray(r[i], g[i], b[i]);
        float m = (float)(sum / (double)n), f = p->contrast;
        CLIP__SIMD
        for (size_t i = 0; i < n; i++)
            r[i] = clip__blend(r[i], m, f), g[i] = clip__blend(g[i], m, f), b[i] = clip__blend(b[i], m, f);
    } else if (op == 2) {
        float f = p->saturation;
        CLIP__SIMD
        for (size_t i = 0; i < n; i++) {
            float y = clip__gray(r[i], g[i], b[i]);
            r[i] = clip__blend(r[i], y, f), g[i] = clip__blend(g[i], y, f), b[i] = clip__blend(b[i], y, f);
        }
    } else if (p->hue != 0) {
        for (size_t i = 0; i < n; i++) clip__hue_px(&r[i], &g[i], &b[i], p->hue);
    }
}

// ---- blur --------------------------------------------------------------------------------------

static int clip__reflect(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
}

// Gaussian blur of one plane x: [h][w] in place, kernel k: [2r + 1]; tmp: [h][w]. Interior
// loops run over x innermost (vectorised); the tap order is the same everywhere.
static void clip__blur_plane(float *restrict x, int h, int w, const float *restrict k, int r,
                             float *restrict tmp) {
    int x0 = r < w ? r : w, x1 = w - r > x0 ? w - r : x0;  // interior [x0, x1)
    for (int y = 0; y < h; y++) {
        const float *restrict row = x + (size_t)y * w;
        float *restrict dst = tmp + (size_t)y * w;
        for (int i = 0; i < w; i++) {
            if (i == x0) i = x1;
            if (i >= w) break;
            float s = 0;
            for (int j = -r; j <= r; j++) s += k[j + r] * row[clip__reflect(i + j, w)];
            dst[i] = s;
        }
        CLIP__SIMD
        for (int i = x0; i < x1; i++) dst[i] = 0;
        for (int j = -r; j <= r; j++) {
            float kj = k[j + r];
            CLIP__SIMD
            for (int i = x0; i < x1; i++) dst[i] += kj * row[i + j];
        }
    }
    for (int y = 0; y < h; y++) {
        float *restrict dst = x + (size_t)y * w;
        CLIP__SIMD
        for (int i = 0; i < w; i++) dst[i] = 0;
        for (int j = -r; j <= r; j++) {
            const float *restrict row = tmp + (size_t)clip__reflect(y + j, h) * w;
            float kj = k[j + r];
            CLIP__SIMD
            for (int i = 0; i < w; i++) dst[i] += kj * row[i];
        }
    }
}

// Kernel of radius ceil(3 sigma) (at least 1); k: [2r + 1] with r <= rmax. Returns r.
static int clip__gauss_kernel(float sigma, float *k, int rmax) {
    int r = (int)ceilf(3.0f * sigma);
    if (r < 1) r = 1;
    if (r > rmax) r = rmax;
    float sum = 0;
    for (int j = -r; j <= r; j++) {
        float x = (float)j / sigma;
        k[j + r] = expf(-0.5f * x * x);
        sum += k[j + r];
    }
    for (int j = 0; j <= 2 * r; j++) k[j] /= sum;
    return r;
}

// ---- the per-frame pipeline ------------------------------------------------------------------

typedef struct clip__scratch {
    float *tmp, *acc, *rgb, *btmp;
} clip__scratch;

static int clip__scratch_alloc(clip__scratch *s, int rows, int oh, int ow) {
    size_t hw = (size_t)oh * ow;
    s->tmp = malloc(sizeof(float) * (size_t)(rows > 0 ? rows : 1) * ow * 3);
    s->acc = malloc(sizeof(float) * (size_t)ow * 3);
    s->rgb = malloc(sizeof(float) * hw * 3);
    s->btmp = malloc(sizeof(float) * hw);
    return s->tmp && s->acc && s->rgb && s->btmp ? 0 : -1;
}

static void clip__scratch_free(clip__scratch *s) {
    free(s->tmp); free(s->acc); free(s->rgb); free(s->btmp);
}

#define CLIP__RMAX 32

// Frame t of the clip: src uint8 [H][W][3] -> out planes at out + c * plane + t * hw.
static void clip__frame(const clip_aug_params *p, const clip__wtab *tx, const clip__wtab *ty,
                        int ylo, int yhi, const uint8_t *src, int W, const float *kern, int kr,
                        clip__scratch *s, float *out, size_t plane) {
    int oh = p->out_h, ow = p->out_w;
    size_t hw = (size_t)oh * ow;
    clip__resample(tx, ty, ylo, yhi, p->flip, src, W, s->tmp, s->acc, s->rgb);
    float *r = s->rgb, *g = r + hw, *b = g + hw;
    if (p->jitter)
        for (int k = 0; k < 4; k++) clip__jitter_op(p->order[k], p, r, g, b, hw);
    if (p->gray)
        CLIP__SIMD
        for (size_t i = 0; i < hw; i++) r[i] = g[i] = b[i] = clip__gray(r[i], g[i], b[i]);
    if (p->blur_sigma > 0)
        for (int c = 0; c < 3; c++) clip__blur_plane(s->rgb + c * hw, oh, ow, kern, kr, s->btmp);
    for (int c = 0; c < 3; c++) {
        const float *x = s->rgb + c * hw;
        float *y = out + c * plane;
        float m = p->mean[c], sd = p->std[c];
        CLIP__SIMD
        for (size_t i = 0; i < hw; i++) y[i] = (x[i] - m) / sd;
    }
}

static int clip__check_params(const clip_aug_params *p, int T, int H, int W, char *err,
                              size_t errlen) {
    if (T < 1 || H < 1 || W < 1 || p->out_h < 1 || p->out_w < 1 || !(p->bw > 0) || !(p->bh > 0)) {
        if (err && errlen)
            snprintf(err, errlen, "clip_augment: bad sizes (T %d, %dx%d -> %dx%d, box %gx%g)",
                     T, H, W, p->out_h, p->out_w, p->bw, p->bh);
        return -1;
    }
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] > 0)) {
            if (err && errlen) snprintf(err, errlen, "clip_augment: std[%d] must be > 0", c);
            return -1;
        }
    return 0;
}

int clip_augment(const clip_aug_params *p, const uint8_t *in, int T, int H, int W,
                 float *out, int threads, char *err, size_t errlen) {
    if (clip__check_params(p, T, H, W, err, errlen)) return -1;
    clip__wtab tx = {0}, ty = {0};
    if (clip__wtab_make(&tx, p->x0, p->bw, W, p->out_w, 1.0f / 255.0f) ||
        clip__wtab_make(&ty, p->y0, p->bh, H, p->out_h, 1.0f)) {
        clip__wtab_free(&tx); clip__wtab_free(&ty);
        if (err && errlen) snprintf(err, errlen, "clip_augment: out of memory");
        return -1;
    }
    int ylo = H, yhi = 0;
    for (int o = 0; o < p->out_h; o++) {
        if (ty.first[o] < ylo) ylo = ty.first[o];
        if (ty.first[o] + ty.count[o] > yhi) yhi = ty.first[o] + ty.count[o];
    }
    float kern[2 * CLIP__RMAX + 1];
    int kr = p->blur_sigma > 0 ? clip__gauss_kernel(p->blur_sigma, kern, CLIP__RMAX) : 0;
    size_t plane = (size_t)T * p->out_h * p->out_w, hw = (size_t)p->out_h * p->out_w;
    size_t frame_in = (size_t)H * W * 3;
    int failed = 0;
#ifdef _OPENMP
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (nt > T) nt = T;
#pragma omp parallel num_threads(nt) if (nt > 1)
#else
    (void)threads;
#endif
    {
        clip__scratch s;
        int ok = clip__scratch_alloc(&s, yhi - ylo, p->out_h, p->out_w) == 0;
        if (!ok) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            failed = 1;
        }
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int t = 0; t < T; t++)
            if (ok) clip__frame(p, &tx, &ty, ylo, yhi, in + (size_t)t * frame_in, W, kern, kr, &s,
                                out + (size_t)t * hw, plane);
        clip__scratch_free(&s);
    }
    clip__wtab_free(&tx); clip__wtab_free(&ty);
    if (failed) {
        if (err && errlen) snprintf(err, errlen, "clip_augment: out of memory");
        return -1;
    }
    return 0;
}

// ---- temporal shuffles -------------------------------------------------------------------

// Permutation of rank r in [0, m!) (factorial number system; rank 0 is the identity).
static void clip__unrank(uint64_t r, int m, const uint64_t *fact, int *perm) {
    int avail[64];
    for (int i = 0; i < m; i++) avail[i] = i;
    for (int k = 0; k < m; k++) {
        uint64_t f = fact[m - 1 - k];
        int d = (int)(r / f);
        r %= f;
        perm[k] = avail[d];
        for (int i = d; i < m - 1 - k; i++) avail[i] = avail[i + 1];
    }
}

// Uniform integer in [0, n) from successive counters of (seed, stream) starting at *ctr,
// without modulo bias (rejection).
static uint64_t clip__below(uint64_t seed, uint64_t stream, uint64_t *ctr, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // accept u < limit (a multiple of n)
    for (;;) {
        uint64_t u = clip__rng_u64(seed, stream, (*ctr)++);
        if (u < limit) return u % n;
    }
}

static int clip__is_identity(const int *p, int m) {
    for (int i = 0; i < m; i++) if (p[i] != i) return 0;
    return 1;
}

// m <= 20: Floyd's sampling of n_t distinct ranks in [1, m! - 1], then unranking.
static int clip__perms_small(uint64_t seed, uint64_t stream, int m, int n_t, int *out) {
    uint64_t fact[21] = {1};
    for (int i = 1; i <= 20; i++) fact[i] = fact[i - 1] * (uint64_t)i;
    uint64_t N = fact[m] - 1, ctr = 0;  // ranks 1..N
    uint64_t *chosen = malloc(sizeof(uint64_t) * (size_t)n_t);
    if (!chosen) return -1;
    int n = 0;
    for (uint64_t j = N - (uint64_t)n_t + 1; j <= N; j++) {
        uint64_t t = 1 + clip__below(seed, stream, &ctr, j);
        int seen = 0;
        for (int i = 0; i < n; i++) if (chosen[i] == t) { seen = 1; break; }
        chosen[n++] = seen ? j : t;
    }
    for (int i = 0; i < n; i++) clip__unrank(chosen[i], m, fact, out + (size_t)i * m);
    free(chosen);
    return 0;
}

// m > 20: Fisher-Yates draws, rejecting the identity and repeats (astronomically rare).
static void clip__perms_large(uint64_t seed, uint64_t stream, int m, int n_t, int *out) {
    uint64_t ctr = 0;
    for (int k = 0; k < n_t; k++) {
        int *p = out + (size_t)k * m;
        for (;;) {
            for (int i = 0; i < m; i++) p[i] = i;
            for (int i = m - 1; i > 0; i--) {
                int j = (int)clip__below(seed, stream, &ctr, (uint64_t)i + 1);
                int t = p[i]; p[i] = p[j]; p[j] = t;
            }
            int dup = clip__is_identity(p, m);
            for (int q = 0; q < k && !dup; q++) dup = memcmp(out + (size_t)q * m, p, sizeof(int) * m) == 0;
            if (!dup) break;
        }
    }
}

const char *clip_shuffle_perms(uint64_t seed, uint64_t stream, int T, int g, int n_t,
                               int *perms_out) {
    if (T < 1 || g < 1 || n_t < 0) return "clip_shuffle_perms: T and g must be >= 1, n_t >= 0";
    if (T % g != 0) return "clip_shuffle_perms: T is not a multiple of the group size g";
    int m = T / g;
    if (m > 64) return "clip_shuffle_perms: more than 64 groups";
    if (m <= 20) {
        uint64_t f = 1;
        for (int i = 2; i <= m; i++) f *= (uint64_t)i;
        if (f - 1 < (uint64_t)n_t)
            return "clip_shuffle_perms: (T/g)! - 1 < n_t: not enough distinct non-identity "
                   "permutations of the groups";
    }
    if (n_t == 0) return NULL;
    if (m > 20) {
        clip__perms_large(seed, stream, m, n_t, perms_out);
        return NULL;
    }
    return clip__perms_small(seed, stream, m, n_t, perms_out) ? "clip_shuffle_perms: out of memory"
                                                              : NULL;
}

const char *clip_shuffle_kernel_warning(int T, int g, int k_t, int s_t, int pad_t) {
    if (g < 1 || k_t < 1 || s_t < 1) return "shuffle check: g, k_t and s_t must be >= 1";
    if (g % k_t != 0)
        return "temporal shuffle: the group size g is not a multiple of the stem's temporal "
               "kernel k_t, so stem patches straddle group seams and can detect shuffles";
    int n_out = (T + 2 * pad_t - k_t) / s_t + 1;
    for (int o = 0; o < n_out; o++) {
        int a = o * s_t - pad_t, b = a + k_t - 1;  // frames [a, b] of one stem window
        if (a < 0) a = 0;
        if (b > T - 1) b = T - 1;
        if (a <= b && a / g != b / g)
            return "temporal shuffle: a window of the stem (kernel k_t, stride s_t, padding "
                   "pad_t) straddles a group seam and can detect shuffles; use k_t <= s_t, "
                   "g a multiple of s_t and no temporal padding";
    }
    return NULL;
}

void clip_shuffle_frames(const int *perm, int T, int g, int *frames_out) {
    for (int k = 0; k < T / g; k++)
        for (int j = 0; j < g; j++) frames_out[k * g + j] = perm[k] * g + j;
}

void clip_permute_frames(const float *in, int C, int T, int64_t hw, const int *frames,
                         float *out) {
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++)
            memcpy(out + ((size_t)c * T + t) * hw, in + ((size_t)c * T + frames[t]) * hw,
                   sizeof(float) * (size_t)hw);
}

// ---- clip modes ---------------------------------------------------------------------------

const char *clip_mode_name(int mode) {
    switch (mode) {
    case CLIP_ORDERED: return "ordered";
    case CLIP_STATIC: return "static";
    case CLIP_SHUFFLED: return "shuffled";
    default: return NULL;
    }
}

int clip_mode_parse(const char *s) {
    for (int m = CLIP_ORDERED; m <= CLIP_SHUFFLED; m++)
        if (s && !strcmp(s, clip_mode_name(m))) return m;
    return -1;
}

const char *clip_mode_frames(int mode, uint64_t seed, const char *path, int T, int *frames_out) {
    if (T < 1 || T > 1024) return "clip_mode_frames: T must be in 1..1024";
    switch (mode) {
    case CLIP_ORDERED:
        for (int t = 0; t < T; t++) frames_out[t] = t;
        return NULL;
    case CLIP_STATIC:
        for (int t = 0; t < T; t++) frames_out[t] = T / 2;
        return NULL;
    case CLIP_SHUFFLED: {
        if (T < 2) return "clip_mode_frames: a shuffled clip needs at least 2 frames";
        char name[1024];
        snprintf(name, sizeof name, "%s", path ? path : "");
        size_t len = strlen(name);
        while (len > 1 && name[len - 1] == '/') name[--len] = 0;
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        return clip_shuffle_perms(seed, scvrl_fnv1a64(base) ^ CLIP_PURPOSE_MODE, T, 1, 1, frames_out);
    }
    default: return "clip_mode_frames: unknown clip mode (ordered, static, shuffled)";
    }
}
