// tests/test-clip.c: clip sampling, spatial augmentation and temporal shuffles
// (examples/common/clip.h).
#include <stdint.h>

#include "clip.h"
#include "test.h"

// ---- helpers ------------------------------------------------------------------------------

static uint64_t ref_mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Upper critical value of chi-square with df degrees of freedom at significance 1e-3
// (Wilson-Hilferty).
static double chi2_crit(int df) {
    double z = 3.0902, a = 2.0 / (9.0 * df), c = 1 - a + z * sqrt(a);
    return df * c * c * c;
}

// Binomial count k of n at probability p within 5 standard deviations.
static int binom_ok(int k, int n, double p) {
    double sd = sqrt(n * p * (1 - p));
    return fabs(k - n * p) <= 5 * sd + 1;
}

// A textured test clip: uint8 [T][H][W][3]; `same` makes every frame identical.
static uint8_t *make_clip(int T, int H, int W, int same, uint64_t seed) {
    uint8_t *x = malloc((size_t)T * H * W * 3);
    for (int t = 0; t < T; t++)
        for (int y = 0; y < H; y++)
            for (int i = 0; i < W; i++)
                for (int c = 0; c < 3; c++) {
                    int tt = same ? 0 : t;
                    double v = 128 + 60 * sin(0.11 * i + 0.7 * c + 0.3 * tt) * cos(0.07 * y - 0.2 * tt) +
                               30 * (double)(ref_mix(seed ^ ((uint64_t)(((tt * H + y) * W + i) * 3 + c))) >> 58) / 64.0;
                    x[(((size_t)t * H + y) * W + i) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

// ---- randomness and sampling ----------------------------------------------------------------

static void test_rng(void) {
    int ok = 1;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t seed = i * 977, stream = i * 31 + 5;
        uint64_t want = ref_mix(ref_mix(seed ^ ref_mix(stream)) + i);
        float u = (float)(want >> 40) * 0x1.0p-24f;
        ok &= clip_rng_u64(seed, stream, i) == want && clip_rng_uniform(seed, stream, i) == u;
    }
    test_check(ok, "rng matches mix(mix(seed ^ mix(stream)) + i)", "mismatch");
    uint64_t s = ref_mix(3 * 0x100000001B3ull + 7) ^ CLIP_PURPOSE_AUG_P;
    test_check(clip_stream(3, 7, CLIP_PURPOSE_AUG_P) == s, "clip_stream formula", "mismatch");
}

static void test_span_indices(void) {
    clip_sample_opts o = clip_sample_defaults();
    test_check(clip_span(&o, 30) == 61, "span 16x4 = 61", "got %lld", (long long)clip_span(&o, 30));
    int64_t idx[16];
    int cl = clip_indices(&o, 30, 50, 0, idx);
    test_check(cl == 3 && idx[12] == 48 && idx[13] == 49 && idx[15] == 49 && idx[1] == 4,
               "indices clamp at the end of a short video", "clamped %d, idx[12..15] %lld %lld",
               cl, (long long)idx[12], (long long)idx[15]);
    o.target_fps = 30;
    clip_indices(&o, 60, 1000, 10, idx);
    test_check(clip_span(&o, 60) == 121 && idx[1] == 18 && idx[15] == 130,
               "target_fps scales the stride", "span %lld idx1 %lld", (long long)clip_span(&o, 60),
               (long long)idx[1]);
}

static void test_pretrain(void) {
    clip_sample_opts o = clip_sample_defaults();
    int64_t n = 300, span = clip_span(&o, 30), maxs = n - span;
    int ok = 1, jit[9] = {0}, bins[10] = {0}, N = 5000;
    char err[256];
    for (int s = 0; s < N; s++) {
        clip_pretrain_draw d, d2;
        ok &= clip_sample_pretrain(&o, n, 30, NULL, 42, 1, (uint64_t)s, &d, err, sizeof err) == 0;
        clip_sample_pretrain(&o, n, 30, NULL, 42, 1, (uint64_t)s, &d2, err, sizeof err);
        ok &= d.start_a >= 0 && d.start_a <= maxs && d.start_b >= 0 && d.start_b <= maxs;
        ok &= d.jitter_a >= -4 && d.jitter_a <= 4 && d.win_a == -1;
        ok &= memcmp(&d, &d2, sizeof d) == 0;
        jit[d.jitter_a + 4]++;
        bins[d.start_b * 10 / (maxs + 1)]++;
    }
    test_check(ok, "pretrain starts valid, jitter in [-4, 4], deterministic", "bad draw");
    double chi = 0;
    for (int b = 0; b < 10; b++) chi += (bins[b] - N / 10.0) * (bins[b] - N / 10.0) / (N / 10.0);
    test_check(chi < chi2_crit(9), "clip B start uniform (chi-square, 10 bins)", "chi2 %.1f", chi);
    double chj = 0;
    for (int b = 0; b < 9; b++) chj += (jit[b] - N / 9.0) * (jit[b] - N / 9.0) / (N / 9.0);
    test_check(chj < chi2_crit(8), "jitter uniform over -4..4", "chi2 %.1f", chj);
    clip_pretrain_draw a, b;
    clip_sample_pretrain(&o, n, 30, NULL, 42, 1, 5, &a, err, sizeof err);
    clip_sample_pretrain(&o, n, 30, NULL, 42, 2, 5, &b, err, sizeof err);
    int diff = a.start_a != b.start_a || a.start_b != b.start_b;
    clip_sample_pretrain(&o, n, 30, NULL, 43, 1, 5, &b, err, sizeof err);
    diff &= a.start_a != b.start_a || a.start_b != b.start_b;
    test_check(diff, "another epoch or seed draws other clips", "same clips");
    clip_pretrain_draw s;
    int rc = clip_sample_pretrain(&o, 20, 30, NULL, 1, 0, 0, &s, err, sizeof err);
    test_check(rc == 0 && s.start_a == 0 && s.start_b == 0, "video shorter than a clip starts at 0",
               "rc %d start %lld", rc, (long long)s.start_a);
    test_check(clip_sample_pretrain(&o, 0, 30, NULL, 1, 0, 0, &s, err, sizeof err) == -1 && err[0],
               "empty video refused with a message", "accepted");
}

static void test_windows(void) {
    clip_sample_opts o = clip_sample_defaults();
    o.jitter = 0;
    double p[10] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    clip_windows w = {10, 30.0, p};
    int ok = 1;
    for (int s = 0; s < 500; s++) {
        clip_pretrain_draw d;
        clip_sample_pretrain(&o, 300, 30, &w, 7, 0, (uint64_t)s, &d, NULL, 0);
        int64_t c = d.start_a + 30;  // centre of a 61-frame clip
        ok &= d.win_a == 6 && c >= 180 && c < 210;
    }
    test_check(ok, "targeted start: clip centre inside the drawn window", "centre outside");
    double q[4] = {0.1, 0.2, 0.3, 0.4};
    int cnt[4] = {0}, N = 20000;
    for (int i = 0; i < N; i++) cnt[clip_draw_window(q, 4, (i + 0.5) / N)]++;
    test_check(cnt[0] == 2000 && cnt[1] == 4000 && cnt[2] == 6000 && cnt[3] == 8000,
               "window inverse CDF", "%d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
    int64_t s0 = clip_eval_start(&o, 300, 30, 0, 1);
    test_check(s0 == 120, "eval centre clip", "start %lld", (long long)s0);
    int mono = 1;
    int64_t prev = -1, first = clip_eval_start(&o, 300, 30, 0, 10), last = clip_eval_start(&o, 300, 30, 9, 10);
    for (int k = 0; k < 10; k++) {
        int64_t st = clip_eval_start(&o, 300, 30, k, 10);
        mono &= st > prev && st >= 0 && st <= 239;
        prev = st;
    }
    test_check(mono && first == 12 && last == 227, "10 temporal views evenly spaced",
               "first %lld last %lld", (long long)first, (long long)last);
}

// ---- augmentation -----------------------------------------------------------------------------

static void test_aug_same_frames(void) {
    int T = 6, H = 60, W = 80;
    uint8_t *x = make_clip(T, H, W, 1, 3);
    clip_aug_opts o = clip_aug_defaults();
    o.out_h = 48, o.out_w = 40;
    o.p_blur = 1, o.p_jitter = 1, o.hue = 0.1f;
    size_t hw = 48 * 40;
    float *y = malloc(sizeof(float) * 3 * T * hw);
    int ok = 1;
    for (uint64_t s = 0; s < 20; s++) {
        clip_aug_params p;
        clip_aug_draw(&o, H, W, 11, clip_stream(0, s, CLIP_PURPOSE_AUG_A), &p, NULL, 0);
        clip_augment(&p, x, T, H, W, y, 0, NULL, 0);
        for (int c = 0; c < 3; c++)
            for (int t = 1; t < T; t++)
                ok &= memcmp(y + ((size_t)c * T + t) * hw, y + (size_t)c * T * hw, sizeof(float) * hw) == 0;
    }
    test_check(ok, "same parameters for every frame: identical frames stay identical",
               "frame differences non-zero");
    free(x); free(y);
}

static void test_aug_flip_gray(void) {
    int T = 3, H = 50, W = 70;
    uint8_t *x = make_clip(T, H, W, 0, 4);
    clip_aug_opts o = clip_aug_defaults();
    o.out_h = 32, o.out_w = 36, o.p_blur = 1, o.p_jitter = 1;
    clip_aug_params p, q;
    clip_aug_draw(&o, H, W, 5, 99, &p, NULL, 0);
    p.gray = 0, p.flip = 0, q = p, q.flip = 1;
    size_t n = (size_t)3 * T * 32 * 36;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *m = malloc(sizeof(float) * n);
    clip_augment(&p, x, T, H, W, a, 1, NULL, 0);
    clip_augment(&q, x, T, H, W, b, 1, NULL, 0);
    for (size_t r = 0; r < n / 36; r++)
        for (int i = 0; i < 36; i++) m[r * 36 + i] = b[r * 36 + 35 - i];
    double d = max_abs_diff(a, m, n);
    test_check(d < 1e-4, "flip mirrors the output", "max diff %g", d);
    q = p, q.gray = 1;
    clip_augment(&q, x, T, H, W, b, 1, NULL, 0);
    size_t plane = n / 3;
    int eq = memcmp(b, b + plane, sizeof(float) * plane) == 0 && memcmp(b, b + 2 * plane, sizeof(float) * plane) == 0;
    test_check(eq, "grayscale gives equal channels", "channels differ");
    clip_aug_opts nf = clip_aug_defaults();
    nf.p_flip = 0;
    int flips = 0;
    for (uint64_t s = 0; s < 1000; s++) {
        clip_aug_params r;
        clip_aug_draw(&nf, H, W, 5, s, &r, NULL, 0);
        flips += r.flip;
    }
    test_check(flips == 0, "p_flip = 0 never flips", "%d flips", flips);
    free(x); free(a); free(b); free(m);
}

static void test_aug_probabilities(void) {
    clip_aug_opts o = clip_aug_defaults();
    int N = 4000, flip = 0, gray = 0, blur = 0, jit = 0, ok = 1, orders[24] = {0};
    for (int s = 0; s < N; s++) {
        clip_aug_params p;
        clip_aug_draw(&o, 240, 320, 1, clip_stream(0, (uint64_t)s, CLIP_PURPOSE_AUG_A), &p, NULL, 0);
        flip += p.flip, gray += p.gray, blur += p.blur_sigma > 0, jit += p.jitter;
        if (p.blur_sigma > 0) ok &= p.blur_sigma >= 0.1f && p.blur_sigma <= 2.0f;
        if (p.jitter) {
            ok &= p.brightness >= 0.6f && p.brightness <= 1.4f && p.contrast >= 0.6f &&
                  p.contrast <= 1.4f && p.saturation >= 0.6f && p.saturation <= 1.4f && p.hue == 0;
            int code = 0, used = 0;
            for (int k = 0; k < 4; k++) {  // Lehmer code of the order
                int smaller = 0;
                for (int j = 0; j < p.order[k]; j++) smaller += !(used >> j & 1);
                used |= 1 << p.order[k];
                code = code * (4 - k) + smaller;
            }
            orders[code]++;
        }
    }
    test_check(binom_ok(flip, N, 0.5) && binom_ok(gray, N, 0.2) && binom_ok(blur, N, 0.5) &&
               binom_ok(jit, N, 0.8), "augmentation probabilities 0.5 / 0.2 / 0.5 / 0.8",
               "flip %d gray %d blur %d jitter %d of %d", flip, gray, blur, jit, N);
    test_check(ok, "jitter factors in [0.6, 1.4], sigma in [0.1, 2]", "out of range");
    int all = 1;
    for (int k = 0; k < 24; k++) all &= orders[k] > 0;
    test_check(all, "colour jitter order: all 24 orders occur", "some order missing");
}

static void test_aug_crop(void) {
    clip_aug_opts o = clip_aug_defaults();
    int H = 240, W = 320, ok = 1;
    double amin = 1, amax = 0;
    for (uint64_t s = 0; s < 3000; s++) {
        clip_aug_params p;
        clip_aug_draw(&o, H, W, 9, s, &p, NULL, 0);
        double area = p.bw * p.bh / (H * W), ratio = p.bw / p.bh;
        ok &= p.x0 >= 0 && p.y0 >= 0 && p.x0 + p.bw <= W && p.y0 + p.bh <= H;
        ok &= p.x0 == floor(p.x0) && p.bw == floor(p.bw);
        ok &= area >= 0.08 * 0.97 && area <= 1.0 && ratio >= 0.75 * 0.98 && ratio <= 4.0 / 3 * 1.02;
        amin = fmin(amin, area), amax = fmax(amax, area);
    }
    test_check(ok && amin < 0.1 && amax > 0.9, "random resized crop: box inside, area in "
               "[0.08, 1], ratio in [3/4, 4/3]", "area %.3f..%.3f", amin, amax);
    clip_aug_params p;
    clip_aug_draw(&o, 20, 400, 9, 1, &p, NULL, 0);  // ratio 20: all tries fail, centre crop
    test_check(p.bh == 20 && fabs(p.bw - 20 * 4.0 / 3) < 1 && fabs(p.x0 - (400 - p.bw) / 2) <= 1,
               "crop fallback: centre crop with clamped ratio", "box %g %g %g %g", p.x0, p.y0, p.bw, p.bh);
    // geometry: red = x, green = y; with no colour ops the output samples the box
    int h = 200, w = 240;
    uint8_t *x = malloc((size_t)h * w * 3);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) x[(y * w + i) * 3] = (uint8_t)i, x[(y * w + i) * 3 + 1] = (uint8_t)y, x[(y * w + i) * 3 + 2] = 0;
    clip_aug_params q = {.x0 = 30, .y0 = 20, .bw = 150, .bh = 120, .out_h = 60, .out_w = 50,
                         .brightness = 1, .contrast = 1, .saturation = 1, .order = {0, 1, 2, 3},
                         .mean = {0, 0, 0}, .std = {1, 1, 1}};
    float *out = malloc(sizeof(float) * 3 * 60 * 50);
    clip_augment(&q, x, 1, h, w, out, 1, NULL, 0);
    double err = 0;
    for (int oy = 2; oy < 58; oy++)
        for (int ox = 2; ox < 48; ox++) {
            double sx = 30 + (ox + 0.5) * 3 - 0.5, sy = 20 + (oy + 0.5) * 2 - 0.5;
            err = fmax(err, fabs(out[oy * 50 + ox] * 255 - sx));
            err = fmax(err, fabs(out[3000 + oy * 50 + ox] * 255 - sy));
        }
    test_check(err < 0.02, "crop geometry: output pixel centres map onto the box", "max err %g px", err);
    free(x); free(out);
}

static void test_aug_norm_eval(void) {
    int T = 2, H = 48, W = 64;
    uint8_t *x = make_clip(T, H, W, 0, 5);
    clip_aug_params p;
    char err[256];
    int rc = clip_eval_params(H, W, 48, 48, 64, 0, 1, 0, &p, err, sizeof err);
    float *y = malloc(sizeof(float) * 3 * T * H * W);
    clip_augment(&p, x, T, H, W, y, 1, NULL, 0);
    double d = 0;
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < H * W; i++) {
                double want = (x[((size_t)t * H * W + i) * 3 + c] / 255.0 - 0.45) / 0.225;
                d = fmax(d, fabs(y[((size_t)c * T + t) * H * W + i] - want));
            }
    test_check(rc == 0 && d < 1e-5, "identity eval transform: (x/255 - 0.45) / 0.225", "max diff %g", d);
    clip_aug_params v[3];
    for (int k = 0; k < 3; k++) clip_eval_params(240, 320, 224, 224, 224, k, 3, 0, &v[k], NULL, 0);
    double s = 320.0 / 299;  // resized to 224 x 299; views at x = 0, 38, 75
    test_check(fabs(v[0].x0) < 1e-9 && fabs(v[1].x0 - 38 * s) < 1e-9 && fabs(v[2].x0 - 75 * s) < 1e-9 &&
               fabs(v[1].y0) < 1e-9 && fabs(v[0].bw - 224 * s) < 1e-9 && !v[0].flip,
               "3 spatial views: left / centre / right along the long side", "x0 %g %g %g",
               v[0].x0, v[1].x0, v[2].x0);
    clip_eval_params(320, 240, 224, 224, 224, 2, 3, 0, &v[0], NULL, 0);
    test_check(fabs(v[0].y0 - 75 * s) < 1e-9 && fabs(v[0].x0) < 1e-9, "portrait: views run top to bottom",
               "y0 %g", v[0].y0);
    test_check(clip_eval_params(240, 320, 200, 224, 224, 1, 3, 0, &v[0], err, sizeof err) == -1,
               "eval crop larger than the resized frame refused", "accepted");
    free(x); free(y);
}

static void test_aug_determinism(void) {
    int T = 8, H = 72, W = 96;
    uint8_t *x = make_clip(T, H, W, 0, 6);
    clip_aug_opts o = clip_aug_defaults();
    o.out_h = 56, o.out_w = 56, o.p_blur = 1, o.p_jitter = 1, o.hue = 0.2f;
    size_t n = (size_t)3 * T * 56 * 56;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
    clip_aug_params p[3], p2[3];
    clip_aug_draw_views(&o, H, W, 77, 3, 12, p, NULL, 0);
    clip_aug_draw_views(&o, H, W, 77, 3, 12, p2, NULL, 0);
    test_check(memcmp(p, p2, sizeof p) == 0 && memcmp(&p[0], &p[1], sizeof p[0]) != 0,
               "views: deterministic for a seed, x_a and x_p differ", "bad parameters");
    clip_augment(&p[0], x, T, H, W, a, 1, NULL, 0);
    clip_augment(&p[0], x, T, H, W, b, 4, NULL, 0);
    clip_augment(&p[0], x, T, H, W, c, 0, NULL, 0);
    test_check(memcmp(a, b, sizeof(float) * n) == 0 && memcmp(a, c, sizeof(float) * n) == 0,
               "augmentation independent of thread count (1, 4, default)", "outputs differ");
    clip_aug_params q = p[0];
    q.jitter = 1, q.brightness = 0.5f, q.contrast = q.saturation = 1, q.hue = 0, q.gray = 0, q.blur_sigma = 0;
    clip_aug_params r = q;
    r.jitter = 0;
    clip_augment(&q, x, T, H, W, a, 1, NULL, 0);
    clip_augment(&r, x, T, H, W, b, 1, NULL, 0);
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(((a[i] * 0.225 + 0.45)) - 0.5 * (b[i] * 0.225 + 0.45)));
    test_check(d < 1e-5, "brightness 0.5 halves the values", "max diff %g", d);
    free(x); free(a); free(b); free(c);
}

static void test_aug_hue_blur(void) {
    uint8_t px[3 * 3 * 3];
    for (int i = 0; i < 9; i++) px[3 * i] = 255, px[3 * i + 1] = 0, px[3 * i + 2] = 0;  // red
    clip_aug_params p;
    clip_eval_params(3, 3, 3, 3, 3, 0, 1, 0, &p, NULL, 0);
    for (int c = 0; c < 3; c++) p.mean[c] = 0, p.std[c] = 1;
    p.jitter = 1, p.hue = 1.0f / 3;  // red -> green
    float y[27];
    clip_augment(&p, px, 1, 3, 3, y, 1, NULL, 0);
    test_check(fabs(y[4]) < 1e-5 && fabs(y[9 + 4] - 1) < 1e-5 && fabs(y[18 + 4]) < 1e-5,
               "hue shift of 1/3 turns red into green", "rgb %g %g %g", y[4], y[13], y[22]);
    int H = 40, W = 40;
    uint8_t *x = make_clip(1, H, W, 0, 8);
    clip_eval_params(H, W, H, H, W, 0, 1, 0, &p, NULL, 0);
    float *a = malloc(sizeof(float) * 3 * H * W), *b = malloc(sizeof(float) * 3 * H * W);
    clip_augment(&p, x, 1, H, W, a, 1, NULL, 0);
    p.blur_sigma = 1.5f;
    clip_augment(&p, x, 1, H, W, b, 1, NULL, 0);
    double va = 0, vb = 0, ma = 0, mb = 0;
    for (int i = 0; i < H * W; i++) ma += a[i], mb += b[i];
    ma /= H * W, mb /= H * W;
    for (int i = 1; i < H * W; i++) va += (a[i] - a[i - 1]) * (a[i] - a[i - 1]), vb += (b[i] - b[i - 1]) * (b[i] - b[i - 1]);
    test_check(vb < 0.5 * va && fabs(ma - mb) < 0.02, "blur smooths and keeps the mean",
               "grad energy %g -> %g, mean %g -> %g", va, vb, ma, mb);
    free(x); free(a); free(b);
}

// ---- shuffles ---------------------------------------------------------------------------------

static int is_perm(const int *p, int m) {
    int seen[64] = {0};
    for (int i = 0; i < m; i++) {
        if (p[i] < 0 || p[i] >= m || seen[p[i]]) return 0;
        seen[p[i]] = 1;
    }
    return 1;
}

static void test_shuffles(void) {
    int perms[12 * 8], again[12 * 8], other[12 * 8], ok = 1, ident = 0, dup = 0;
    const char *e = clip_shuffle_perms(5, 77, 16, 2, 12, perms);
    clip_shuffle_perms(5, 77, 16, 2, 12, again);
    clip_shuffle_perms(5, 78, 16, 2, 12, other);
    for (int k = 0; k < 12; k++) {
        ok &= is_perm(perms + 8 * k, 8);
        int id = 1;
        for (int i = 0; i < 8; i++) id &= perms[8 * k + i] == i;
        ident += id;
        for (int j = 0; j < k; j++) dup += memcmp(perms + 8 * k, perms + 8 * j, sizeof(int) * 8) == 0;
    }
    test_check(!e && ok, "12 permutations of 8 groups", "%s", e ? e : "not permutations");
    test_check(ident == 0, "never the identity", "%d identities", ident);
    test_check(dup == 0, "permutations distinct", "%d duplicates", dup);
    test_check(memcmp(perms, again, sizeof perms) == 0 && memcmp(perms, other, sizeof perms) != 0,
               "deterministic for (seed, stream), other stream differs", "mismatch");
    int frames[16], intact = 1;
    clip_shuffle_frames(perms, 16, 2, frames);
    for (int k = 0; k < 8; k++) intact &= frames[2 * k] % 2 == 0 && frames[2 * k + 1] == frames[2 * k] + 1;
    test_check(intact && frames[0] == 2 * perms[0], "groups of 2 frames stay intact and in order",
               "bad frame list");
    test_check(clip_shuffle_perms(1, 1, 16, 3, 12, perms) != NULL, "refuse T % g != 0", "accepted");
    test_check(clip_shuffle_perms(1, 1, 6, 2, 6, perms) != NULL, "refuse (T/g)! - 1 < N_T", "accepted");
    test_check(clip_shuffle_perms(1, 1, 8, 8, 1, perms) != NULL, "refuse a single group", "accepted");
    int five[5 * 3], seen = 0;
    e = clip_shuffle_perms(3, 9, 6, 2, 5, five);
    for (int k = 0; k < 5; k++) {
        int code = five[3 * k] * 9 + five[3 * k + 1] * 3 + five[3 * k + 2];
        for (int r = 0; r < 6; r++) {  // the 6 permutations of 3 as base-3 codes
            static const int all[6] = {0 * 9 + 1 * 3 + 2, 0 * 9 + 2 * 3 + 1, 1 * 9 + 0 * 3 + 2,
                                       1 * 9 + 2 * 3 + 0, 2 * 9 + 0 * 3 + 1, 2 * 9 + 1 * 3 + 0};
            if (code == all[r] && r > 0) seen |= 1 << r;
        }
    }
    test_check(!e && seen == 0x3E, "N_T = (T/g)! - 1 gives every non-identity permutation",
               "seen mask %x", seen);
    int cnt[6] = {0}, N = 6000;
    for (int s = 0; s < N; s++) {
        int p3[3];
        clip_shuffle_perms(11, (uint64_t)s, 6, 2, 1, p3);
        cnt[p3[0] * 2 + (p3[1] > p3[2])]++;
    }
    double chi = 0;
    for (int r = 0; r < 6; r++) if (r != 0) chi += (cnt[r] - N / 5.0) * (cnt[r] - N / 5.0) / (N / 5.0);
    test_check(cnt[0] == 0 && chi < chi2_crit(4), "uniform over the non-identity permutations",
               "identity %d, chi2 %.1f", cnt[0], chi);
    int big[4 * 64];
    e = clip_shuffle_perms(2, 3, 64, 1, 4, big);
    ok = !e;
    for (int k = 0; k < 4; k++) ok &= is_perm(big + 64 * k, 64);
    test_check(ok, "64 groups (beyond 20!)", "%s", e ? e : "not permutations");
}

static void test_shuffle_apply(void) {
    int C = 3, T = 8, hw = 5;
    float *x = malloc(sizeof(float) * C * T * hw), *y = malloc(sizeof(float) * C * T * hw);
    for (int i = 0; i < C * T * hw; i++) x[i] = (float)i;
    int perm[4], frames[8];
    clip_shuffle_perms(1, 2, T, 2, 1, perm);
    clip_shuffle_frames(perm, T, 2, frames);
    clip_permute_frames(x, C, T, hw, frames, y);
    int ok = 1;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < hw; i++) ok &= y[(c * T + t) * hw + i] == x[(c * T + frames[t]) * hw + i];
    test_check(ok, "permute frames of a [3, T, h, w] clip", "mismatch");
    test_check(clip_shuffle_kernel_warning(16, 2, 2, 2, 0) == NULL, "k_t = 2, s_t = 2, g = 2: no warning", "warned");
    test_check(clip_shuffle_kernel_warning(16, 4, 2, 2, 0) == NULL, "g = 4 with k_t = 2: no warning", "warned");
    test_check(clip_shuffle_kernel_warning(16, 2, 3, 2, 1) != NULL, "k_t = 3 (MViT stem) warns", "no warning");
    test_check(clip_shuffle_kernel_warning(16, 2, 2, 1, 0) != NULL, "overlapping stem windows warn", "no warning");
    free(x); free(y);
}

// Clip modes (gates G1, G2): the frame map of each mode; the shuffled one is a full, non-identity,
// deterministic permutation per (seed, file name) whose frame 0 lands uniformly on the T positions.
static void test_clip_modes(void) {
    int f[16], g[16], ok = 1;
    ok &= clip_mode_frames(CLIP_ORDERED, 1, "a.mp4", 8, f) == NULL;
    for (int t = 0; t < 8; t++) ok &= f[t] == t;
    ok &= clip_mode_frames(CLIP_STATIC, 1, "a.mp4", 8, f) == NULL;
    for (int t = 0; t < 8; t++) ok &= f[t] == 4;
    ok &= clip_mode_frames(CLIP_STATIC, 1, "a.mp4", 7, f) == NULL;
    for (int t = 0; t < 7; t++) ok &= f[t] == 3;
    test_check(ok, "clip modes: ordered is the identity, static repeats sampled frame T/2 (4 of 8, 3 of 7)", "wrong map");
    enum { N = 4000, T = 8 };
    int ident = 0, notperm = 0, nondet = 0, same_seed2 = 0, lands[T] = { 0 };
    char name[64];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "train/%016llx.mp4", (unsigned long long)ref_mix((uint64_t)i));
        const char *m = clip_mode_frames(CLIP_SHUFFLED, 7, name, T, f);
        if (m) { test_fail("clip modes: shuffled", "%s", m); return; }
        int seen[T] = { 0 }, id = 1;
        for (int t = 0; t < T; t++) { if (f[t] < 0 || f[t] >= T || seen[f[t]]++) notperm++; id &= f[t] == t; if (f[t] == 0) lands[t]++; }
        ident += id;
        char other[80];
        snprintf(other, sizeof other, "/elsewhere/%s/", name + 6);   // same file name, another folder, trailing '/'
        clip_mode_frames(CLIP_SHUFFLED, 7, other, T, g);
        nondet += memcmp(f, g, sizeof(int) * T) != 0;
        clip_mode_frames(CLIP_SHUFFLED, 8, name, T, g);
        same_seed2 += memcmp(f, g, sizeof(int) * T) == 0;
    }
    double chi = 0;
    for (int t = 0; t < T; t++) chi += (lands[t] - N / (double)T) * (lands[t] - N / (double)T) / (N / (double)T);
    char nm[200];
    snprintf(nm, sizeof nm, "clip modes: shuffled: %d videos, never the identity, all permutations, fixed per (seed, file name); "
             "another seed agrees %d times; frame 0's position chi2 %.1f", N, same_seed2, chi);
    test_check(!ident && !notperm && !nondet && same_seed2 < N / 100 && chi < chi2_crit(T - 1), nm,
               "identity %d, not a permutation %d, differs by folder %d, seed-independent %d, chi2 %.1f", ident, notperm, nondet, same_seed2, chi);
    test_check(clip_mode_frames(CLIP_SHUFFLED, 1, "a.mp4", 1, f) != NULL && clip_mode_frames(9, 1, "a.mp4", 8, f) != NULL &&
               clip_mode_parse("static") == CLIP_STATIC && clip_mode_parse("Static") < 0 && !strcmp(clip_mode_name(CLIP_SHUFFLED), "shuffled"),
               "clip modes: a 1-frame shuffle and an unknown mode are refused; names parse", "accepted");
}

int main(void) {
    test_rng();
    test_span_indices();
    test_pretrain();
    test_windows();
    test_aug_same_frames();
    test_aug_flip_gray();
    test_aug_probabilities();
    test_aug_crop();
    test_aug_norm_eval();
    test_aug_determinism();
    test_aug_hue_blur();
    test_shuffles();
    test_shuffle_apply();
    test_clip_modes();
    return test_done();
}
