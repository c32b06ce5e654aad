// tests/test-motion.c: dense optical flow, the flow-edge motion index, targeted sampling and
// the motion cache (examples/common/motion.h).
#include <stdint.h>
#include <unistd.h>

#include "clip.h"
#include "motion.h"
#include "test.h"

#define PI 3.14159265358979323846

// ---- a smooth random texture: a sum of sinusoids with wavelengths 5..40 px -----------------

typedef struct { double a, fx, fy, ph; } wave;

static uint64_t t_mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double t_unif(uint64_t seed, uint64_t i) { return (double)(t_mix(seed * 0x1234567ull + i) >> 11) * 0x1.0p-53; }

static void make_waves(wave *w, int n, uint64_t seed) {
    for (int k = 0; k < n; k++) {
        double lam = 5 + 35 * t_unif(seed, 3 * k), th = 2 * PI * t_unif(seed, 3 * k + 1);
        w[k] = (wave){0.6 / n, cos(th) / lam, sin(th) / lam, 2 * PI * t_unif(seed, 3 * k + 2)};
    }
}

static double texture(const wave *w, int n, double x, double y) {
    double s = 0.5;
    for (int k = 0; k < n; k++) s += w[k].a * sin(2 * PI * (w[k].fx * x + w[k].fy * y) + w[k].ph);
    return s;
}

// Quantised to 8 bits, as decoded frames are.
static float q8(double v) { return (float)(floor(v * 255 + 0.5) / 255); }

// Flow of frame I1(p) = I0(M^-1 (p - c - d) + c) (rotation theta about the centre c, then
// shift d); mean end-point error over pixels at least `margin` from the border.
static double flow_epe(double dx, double dy, double theta_deg, int margin) {
    int h = 128, w = 160;
    wave wv[16];
    make_waves(wv, 16, 7);
    float *I0 = malloc(sizeof(float) * h * w), *I1 = malloc(sizeof(float) * h * w);
    float *u = malloc(sizeof(float) * h * w), *v = malloc(sizeof(float) * h * w);
    double th = theta_deg * PI / 180, cx = (w - 1) / 2.0, cy = (h - 1) / 2.0, c = cos(th), s = sin(th);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double X = x - cx - dx, Y = y - cy - dy;
            I0[y * w + x] = q8(texture(wv, 16, x, y));
            I1[y * w + x] = q8(texture(wv, 16, c * X + s * Y + cx, -s * X + c * Y + cy));
        }
    motion_flow_opts o = motion_flow_defaults();
    double epe = INFINITY;
    if (motion_flow(I0, I1, h, w, &o, u, v, NULL, 0) == 0) {
        epe = 0;
        int n = 0;
        for (int y = margin; y < h - margin; y++)
            for (int x = margin; x < w - margin; x++, n++) {
                double X = x - cx, Y = y - cy;
                double gu = c * X - s * Y + cx + dx - x, gv = s * X + c * Y + cy + dy - y;
                epe += hypot(u[y * w + x] - gu, v[y * w + x] - gv);
            }
        epe /= n;
    }
    free(I0); free(I1); free(u); free(v);
    return epe;
}

static void test_flow(void) {
    static const double cases[][3] = {{0.5, 0, 0}, {0, -0.5, 0}, {3, 0, 0}, {-2, 3, 0},
                                      {8, 0, 0}, {0, 8, 0}, {-6, -6, 0}, {0, 0, 2}, {0, 0, -2}, {0, 0, 0}};
    for (int i = 0; i < 10; i++) {
        double e = flow_epe(cases[i][0], cases[i][1], cases[i][2], 16);
        char name[96];
        snprintf(name, sizeof name, "flow: shift (%g, %g) px, rotation %g deg: EPE < %s",
                 cases[i][0], cases[i][1], cases[i][2], i == 9 ? "0.01" : "0.25");
        test_check(e < (i == 9 ? 0.01 : 0.25), name, "EPE %.4f px", e);
    }
}

static void test_stats(void) {
    float *x = malloc(sizeof(float) * 10000);
    for (int i = 0; i < 10000; i++) x[i] = (float)((i * 7919) % 10000 + 1);  // 1..10000 shuffled
    float m = motion_median(x, 10000);
    test_check(m == 5000.5f, "median of 1..10000", "got %g", m);
    float y[5] = {3, 1, 4, 1, 5};
    test_check(motion_median(y, 5) == 3, "median of 5 values", "got %g", motion_median(y, 5));
    // flow field whose magnitude is a ramp in x (slope 1 px per px): Sobel = 8 inside
    int h = 20, w = 30;
    float *u = calloc((size_t)h * w, sizeof(float)), *v = calloc((size_t)h * w, sizeof(float));
    float *scr = malloc(sizeof(float) * 2 * h * w);
    for (int yy = 0; yy < h; yy++)
        for (int xx = 0; xx < w; xx++) u[yy * w + xx] = (float)xx;
    float e = motion_flow_edge(u, v, h, w, 4000, scr);
    test_check(fabsf(e - 8) < 1e-4, "flow edge of a linear flow ramp = 8 (unnormalised Sobel)", "got %g", e);
    for (int i = 0; i < h * w; i++) u[i] = 2.5f;
    e = motion_flow_edge(u, v, h, w, 4000, scr);
    test_check(e == 0, "uniform flow (camera pan) has no flow edges", "got %g", e);
    free(x); free(u); free(v); free(scr);
}

static void test_windows(void) {
    test_check(motion_n_windows(300, 30) == 10 && motion_n_windows(302, 30) == 10 &&
               motion_n_windows(316, 30) == 11 && motion_n_windows(1, 30) == 1 &&
               motion_n_windows(2, 30) == 1 && motion_n_windows(300, 29.97) == 10,
               "window counts (short tail merged)", "%d %d %d", motion_n_windows(300, 30),
               motion_n_windows(302, 30), motion_n_windows(316, 30));
    test_check(motion_window_of(0, 300, 30) == 0 && motion_window_of(29, 300, 30) == 0 &&
               motion_window_of(30, 300, 30) == 1 && motion_window_of(299, 300, 30) == 9 &&
               motion_window_of(301, 302, 30) == 9, "window of a frame", "bad window");
    int h, w;
    motion_analysis_size(640, 480, 112, &h, &w);
    int ok = h == 112 && w == 149;
    motion_analysis_size(64, 48, 112, &h, &w);
    ok &= h == 48 && w == 64;
    test_check(ok, "analysis size keeps the aspect ratio, never upscales", "%dx%d", h, w);
}

// ---- a synthetic video: a textured square, still for the first half, then moving ------------

typedef struct {
    int H, W;
    int64_t n_frames, half;
    wave bg[12], fg[12];
    int calls;
} synth_video;

static int synth_read(void *ctx, const int64_t *idx, int n, int h, int w, uint8_t *rgb,
                      char *err, size_t errlen) {
    synth_video *sv = ctx;
    sv->calls++;
    if (h != sv->H || w != sv->W) {
        snprintf(err, errlen, "synth: asked for %dx%d", h, w);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        if (idx[k] < 0 || idx[k] >= sv->n_frames) {
            snprintf(err, errlen, "synth: frame %lld out of range", (long long)idx[k]);
            return -1;
        }
        double ox = 20 + (idx[k] > sv->half ? 1.0 * (double)(idx[k] - sv->half) : 0), oy = 28;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int in = x >= ox && x < ox + 40 && y >= oy && y < oy + 40;
                double val = in ? texture(sv->fg, 12, x - ox, y - oy) : texture(sv->bg, 12, x, y);
                uint8_t g = (uint8_t)floor(val * 255 + 0.5);
                uint8_t *px = rgb + (((size_t)k * h + y) * w + x) * 3;
                px[0] = px[1] = px[2] = g;
            }
    }
    return 0;
}

static void synth_init(synth_video *sv) {
    memset(sv, 0, sizeof *sv);
    sv->H = 96, sv->W = 128, sv->n_frames = 120, sv->half = 60;
    make_waves(sv->bg, 12, 21);
    make_waves(sv->fg, 12, 22);
}

static double chi2_crit(int df) {  // significance 1e-3, Wilson-Hilferty
    double z = 3.0902, a = 2.0 / (9.0 * df), c = 1 - a + z * sqrt(a);
    return df * c * c * c;
}

static void test_index(void) {
    synth_video sv;
    synth_init(&sv);
    motion_video vid = {sv.n_frames, 10.0, sv.W, sv.H};
    motion_opts o = motion_defaults();
    o.threads = 1;
    motion_index a, b;
    char err[256] = "";
    int rc = motion_index_compute(&vid, synth_read, &sv, &o, &a, err, sizeof err);
    test_check(rc == 0 && a.n_win == 12 && a.n_frames == 120 && a.fps == 10.0,
               "motion index of a 12-second synthetic video", "rc %d (%s) n_win %d", rc, err, a.n_win);
    if (rc) return;
    double still = 0, moving = 1e30;
    for (int i = 0; i < 6; i++) still = fmax(still, a.m[i]);
    for (int i = 6; i < 12; i++) moving = fmin(moving, a.m[i]);
    test_check(still == 0 && moving > 0, "top 4000: every moving window above every still one",
               "still max %g, moving min %g", still, moving);
    double p[12];
    motion_probs(&a, 5.0, p, NULL, 0);
    double ps = 0, pm = 1;
    for (int i = 0; i < 6; i++) ps = fmax(ps, p[i]);
    for (int i = 6; i < 12; i++) pm = fmin(pm, p[i]);
    test_check(pm > ps, "moving windows get the higher probability (beta 5)",
               "max still p %g, min moving p %g", ps, pm);
    // 4000 of the 94 x 126 interior pixels is a third of the frame, more than the square's
    // edges cover; a sparser statistic separates the halves by orders of magnitude
    motion_opts o5 = o;
    o5.top_k = 500;
    rc = motion_index_compute(&vid, synth_read, &sv, &o5, &b, err, sizeof err);
    still = 0, moving = 1e30;
    for (int i = 0; i < 6 && rc == 0; i++) still = fmax(still, b.m[i]);
    for (int i = 6; i < 12 && rc == 0; i++) moving = fmin(moving, b.m[i]);
    test_check(rc == 0 && still < 0.05 && moving > 1.0, "top 500: large flow edges when moving, none when still",
               "still max %g, moving min %g", still, moving);
    motion_probs(&b, 5.0, p, NULL, 0);
    double pmov = 0;
    for (int i = 6; i < 12; i++) pmov += p[i];
    // m ~ 1.7 for 1 px/frame at this size, so beta = 5 tilts the draw only mildly
    test_check(pmov > 0.55, "top 500: moving half draws more clips", "p(moving) %g", pmov);
    motion_index_free(&b);
    o.threads = 2;
    rc = motion_index_compute(&vid, synth_read, &sv, &o, &b, err, sizeof err);
    test_check(rc == 0 && memcmp(a.m, b.m, sizeof(float) * 12) == 0,
               "motion index independent of thread count", "differs");
    motion_index_free(&b);
    vid.width = 200;
    rc = motion_index_compute(&vid, synth_read, &sv, &o, &b, err, sizeof err);
    test_check(rc == -1 && strstr(err, "synth"), "reader errors are passed on", "rc %d err %s", rc, err);
    motion_index_free(&a);
}

static void test_probs_sampling(void) {
    float m[8] = {0, 2, 4, 6, 8, 10, 3, 1};
    motion_index mi = {240, 30.0, 8, m};
    double p[8], u[8], want[8], z = 0;
    motion_probs(&mi, 5.0, p, NULL, 0);
    for (int i = 0; i < 8; i++) z += want[i] = exp(m[i] / 5.0);
    double d = 0;
    for (int i = 0; i < 8; i++) d = fmax(d, fabs(p[i] - want[i] / z));
    test_check(d < 1e-12, "p = softmax(m / 5)", "max diff %g", d);
    motion_probs(&mi, INFINITY, u, NULL, 0);
    int uni = 1;
    for (int i = 0; i < 8; i++) uni &= u[i] == 1.0 / 8;
    test_check(uni, "beta = INFINITY gives uniform windows", "not uniform");
    char err[128];
    test_check(motion_probs(&mi, 0, u, err, sizeof err) == -1, "beta <= 0 refused", "accepted");
    clip_sample_opts co = clip_sample_defaults();
    int64_t span = clip_span(&co, 30);  // 61 frames
    int cnt[8] = {0}, N = 10000, inside = 1;
    for (int i = 0; i < N; i++) {
        int win;
        int64_t s = motion_sample_start(&mi, p, span, 99, clip_stream(0, (uint64_t)i, CLIP_PURPOSE_START_A), &win);
        cnt[win]++;
        int64_t c = s + (span - 1) / 2;
        if (win >= 1 && win <= 6) inside &= motion_window_of(c, 240, 30) == win;  // not clamped
        inside &= s >= 0 && s <= 240 - span;
    }
    double chi = 0;
    for (int i = 0; i < 8; i++) chi += (cnt[i] - N * p[i]) * (cnt[i] - N * p[i]) / (N * p[i]);
    test_check(chi < chi2_crit(7), "10k targeted draws match p (chi-square, 7 df, alpha 1e-3)",
               "chi2 %.2f (critical %.2f)", chi, chi2_crit(7));
    test_check(inside, "clip centre lies in the drawn window", "centre outside");
    clip_windows w = motion_windows(&mi, p);
    clip_pretrain_draw dr;
    int rc = clip_sample_pretrain(&co, 240, 30, &w, 99, 0, 0, &dr, NULL, 0);
    test_check(rc == 0 && dr.win_a >= 0, "clip_sample_pretrain takes the targeted windows", "rc %d", rc);
}

static void test_cache(void) {
    char dir[] = "/tmp/scvrl-motion-XXXXXX";
    if (!mkdtemp(dir)) { test_skip("motion cache", "mkdtemp failed"); return; }
    char list[256], path[300], err[256];
    snprintf(list, sizeof list, "%s/train.csv", dir);
    test_check(motion_cache_path(list, path, sizeof path) == 0 && strstr(path, "train.csv.motion"),
               "cache path beside the list", "%s", path);
    motion_opts o = motion_defaults();
    o.threads = 2;
    motion_cache c;
    motion_cache_init(&c, &o);
    test_check(motion_cache_load(&c, path, err, sizeof err) == 1 && c.n == 0, "missing cache: empty",
               "rc != 1");
    synth_video sv;
    synth_init(&sv);
    motion_video vid = {sv.n_frames, 10.0, sv.W, sv.H};
    const motion_index *mi = NULL;
    int rc1 = motion_index_get(&c, "videos/a b.mp4", 1234, &vid, synth_read, &sv, &o, &mi, err, sizeof err);
    int calls = sv.calls;
    int rc2 = motion_index_get(&c, "videos/a b.mp4", 1234, &vid, synth_read, &sv, &o, &mi, err, sizeof err);
    test_check(rc1 == 1 && rc2 == 0 && sv.calls == calls && mi && mi->n_win == 12,
               "index computed once, then cached", "rc %d %d, calls %d -> %d", rc1, rc2, calls, sv.calls);
    float m12[12];
    memcpy(m12, mi->m, sizeof m12);
    motion_index other = {50, 25.0, 2, (float[]){1.5f, 2.25f}};
    motion_cache_put(&c, "videos/b.mp4", 7, &other, NULL, 0);
    test_check(motion_cache_save(&c, path, err, sizeof err) == 0, "cache saved", "%s", err);
    motion_cache d;
    motion_cache_init(&d, &o);
    int rl = motion_cache_load(&d, path, err, sizeof err);
    const motion_index *x = motion_cache_find(&d, "videos/a b.mp4", 1234, 120, 10.0);
    const motion_index *y = motion_cache_find(&d, "videos/b.mp4", 7, 50, 25.0);
    test_check(rl == 0 && d.n == 2 && x && memcmp(x->m, m12, sizeof m12) == 0 && y && y->m[1] == 2.25f,
               "cache reloads exactly (keys with spaces)", "rc %d n %d", rl, d.n);
    test_check(!motion_cache_find(&d, "videos/a b.mp4", 1235, 120, 10.0) &&
               !motion_cache_find(&d, "videos/a b.mp4", 1234, 121, 10.0) &&
               !motion_cache_find(&d, "videos/a b.mp4", 1234, 120, 12.0) &&
               !motion_cache_find(&d, "videos/c.mp4", 0, 0, 0),
               "stale entries (stamp, frame count, fps) rejected", "found");
    motion_opts o2 = o;
    o2.top_k = 1000;
    motion_cache e;
    motion_cache_init(&e, &o2);
    test_check(motion_cache_load(&e, path, err, sizeof err) == 1 && e.n == 0 && strstr(err, "parameters"),
               "cache of other parameters rejected", "%s", err);
    test_check(motion_index_get(&d, "v", 0, &vid, synth_read, &sv, &o2, &mi, err, sizeof err) == -1,
               "motion_index_get refuses options that differ from the cache's", "accepted");
    // a truncated file (no "end") and another version
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    f = fopen(path, "w");
    fwrite(buf, 1, n - 4, f);
    fclose(f);
    test_check(motion_cache_load(&d, path, err, sizeof err) == 1 && d.n == 0, "truncated cache rejected", "%s", err);
    buf[13] = '9';  // "scvrl-motion 1" -> "scvrl-motion 9"
    f = fopen(path, "w");
    fwrite(buf, 1, n, f);
    fclose(f);
    test_check(motion_cache_load(&d, path, err, sizeof err) == 1 && strstr(err, "version"),
               "cache of another version rejected", "%s", err);
    motion_cache_free(&c); motion_cache_free(&d); motion_cache_free(&e);
    remove(path);
    rmdir(dir);
}

int main(void) {
    test_flow();
    test_stats();
    test_windows();
    test_index();
    test_probs_sampling();
    test_cache();
    return test_done();
}
