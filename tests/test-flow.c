// tests/test-flow.c: the flow oracle's features (examples/common/flow.h) against analytic
// references: frame pairs rendered from a continuous texture moved by a known whole-pixel or
// sub-pixel translation, rotation or zoom, whose flow field, divergence and curl are known exactly.
//   window      the benchmark's centre window (frames 4..19 of 24, 8..39 of 48)
//   confidence  zero on a flat frame, positive where the texture is
//   translate   the global motion equals the shift (0.6, -1.3) and (2, 0) px, also under a 5% gain
//               change; residual, divergence and curl stay near 0
//   rotate      curl 2 theta (whole frame and every cell), divergence near 0, sign follows the sense
//   zoom        divergence 2 (s - 1), curl near 0, sign follows approach / recede
//   local       a rotating disk on a static background: the cells it covers get its curl's sign
//   target      a moving textured disk over a weak static texture: global motion 0, the moving region's mean flow
//               and speed the disk's shift
//   bins        time bins are the means of the per-pair rows
#include "flow.h"
#include "test.h"

enum { S = 64 };
#define PI 3.14159265358979323846

static double ramp;   // > 0: an illumination ramp across x under the texture (where a gain change shows as flow)

// A smooth, aperiodic texture: sum of 9 sinusoids (wavelengths 7..15 px, fixed directions).
static double tex(double x, double y) {
    double s = 0.5;
    for (int k = 0; k < 9; k++) {
        double a = 2.39996 * k + 0.3, lam = 7.0 + k, ph = 1.7 * k;
        s += 0.05 * sin(2 * PI * (x * cos(a) + y * sin(a)) / lam + ph);
    }
    return ramp > 0 ? 0.6 * s + ramp * x / S : s;
}

// Two RGB frames: frame 0 samples tex at each pixel, frame 1 at the inverse map of the motion
// (x1 = A (x0 - c) + c + d, so a point of frame 0 moves to x1): rgb [2][S][S][3].
// inside: NULL (whole frame moves) or a disk (cx, cy, r) outside which frame 1 equals frame 0.
static void pair(double theta, double scale, double dx, double dy, double gain, const double *disk, uint8_t *rgb) {
    double c = (S - 1) / 2.0, ct = cos(theta), st = sin(theta);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double v0 = tex(x, y), px = x - dx - c, py = y - dy - c;   // inverse: x0 = R^-1 (x1 - d - c) / s + c
            double ix = (ct * px + st * py) / scale + c, iy = (-st * px + ct * py) / scale + c;
            if (disk) {
                double ex = x - disk[0], ey = y - disk[1];
                ix = disk[0] + ct * ex + st * ey; iy = disk[1] - st * ex + ct * ey;
                if (ex * ex + ey * ey > disk[2] * disk[2]) ix = x, iy = y;
            }
            double v1 = tex(ix, iy) * gain;
            for (int ch = 0; ch < 3; ch++) {
                rgb[(y * S + x) * 3 + ch] = (uint8_t)lround(255 * v0);
                rgb[(S * S + y * S + x) * 3 + ch] = (uint8_t)lround(255 * (v1 > 1 ? 1 : v1));
            }
        }
}

static void features(double theta, double scale, double dx, double dy, double gain, const double *disk, float *f) {
    static uint8_t rgb[2 * S * S * 3];
    pair(theta, scale, dx, dy, gain, disk, rgb);
    flow_opts o = flow_defaults();
    char err[256];
    if (flow_clip_features(rgb, 2, S, S, &o, f, err, sizeof err)) { test_fail("flow_clip_features", "%s", err); memset(f, 0, sizeof(float) * FLOW_PAIR_DIM); }
}

static float cell_curl(const float *f, int q) { return f[26 + 2 * q]; }
static float cell_div(const float *f, int q) { return f[25 + 2 * q]; }

static void test_window(void) {
    int64_t s0, s1, s2;
    int l0, l1, l2;
    flow_window(24, 0, &s0, &l0);
    flow_window(48, 0, &s1, &l1);
    flow_window(24, 8, &s2, &l2);
    flow_opts o = flow_defaults();
    int d = flow_dim(&o, 16);
    o.bins = 4;
    test_check(s0 == 4 && l0 == 16 && s1 == 8 && l1 == 32 && s2 == 8 && l2 == 8 && d == 15 * FLOW_PAIR_DIM && flow_dim(&o, 16) == 4 * FLOW_PAIR_DIM,
               "window: frames 4..19 of 24, 8..39 of 48, --window 8 centred; widths", "24: %lld+%d, 48: %lld+%d, w8: %lld+%d", (long long)s0, l0,
               (long long)s1, l1, (long long)s2, l2);
}

static void test_confidence(void) {
    static float I[S * S], c[S * S], scratch[4 * S * S];
    for (int k = 0; k < S * S; k++) I[k] = 0.4f;
    flow_confidence(I, S, S, c, scratch);
    float mx0 = 0;
    for (int k = 0; k < S * S; k++) mx0 = c[k] > mx0 ? c[k] : mx0;
    for (int y = 0; y < S; y++) for (int x = 0; x < S; x++) I[y * S + x] = x < S / 2 ? 0.4f : (float)tex(x, y);   // flat left, textured right
    flow_confidence(I, S, S, c, scratch);
    double left = 0, right = 0;
    for (int y = 0; y < S; y++) for (int x = 0; x < S; x++) { if (x < S / 2 - 8) left += c[y * S + x]; if (x > S / 2 + 8) right += c[y * S + x]; }
    char name[160];
    snprintf(name, sizeof name, "confidence: 0 on a flat frame (max %g); textured half %.3g, flat half %.3g", mx0, right, left);
    test_check(mx0 == 0 && left == 0 && right > 0, name, "wrong");
}

static void test_translate(void) {
    float f[FLOW_PAIR_DIM], g[FLOW_PAIR_DIM], h[FLOW_PAIR_DIM];
    features(0, 1, 0.6, -1.3, 1.0, NULL, f);
    features(0, 1, 2.0, 0.0, 1.0, NULL, g);
    ramp = 0.35;
    features(0, 1, 0.6, -1.3, 1.05, NULL, h);   // without gain compensation: (0.46, -1.29)
    ramp = 0;
    double e1 = hypot(f[0] - 0.6, f[1] + 1.3), e2 = hypot(g[0] - 2.0, g[1]), e3 = hypot(h[0] - 0.6, h[1] + 1.3);
    double res = fabs(f[2]) + fabs(f[3]) + fabs(f[5]) + fabs(f[6]);
    char name[240];
    snprintf(name, sizeof name, "translate: global motion (%.3f, %.3f) for (0.6, -1.3), (%.3f, %.3f) for (2, 0), (%.3f, %.3f) on a ramp under gain 1.05; "
             "residual + div + curl %.3f", f[0], f[1], g[0], g[1], h[0], h[1], res);
    test_check(e1 < 0.08 && e2 < 0.08 && e3 < 0.1 && res < 0.05 && fabs(f[4]) < 0.1, name, "errors %.3f %.3f %.3f, residual %.3f, energy %.3f", e1, e2, e3, res, f[4]);
}

static void test_rotate_zoom(void) {
    float r[FLOW_PAIR_DIM], rn[FLOW_PAIR_DIM], z[FLOW_PAIR_DIM], zn[FLOW_PAIR_DIM];
    const double th = 0.03, sc = 1.04;
    features(th, 1, 0, 0, 1, NULL, r);
    features(-th, 1, 0, 0, 1, NULL, rn);
    features(0, sc, 0, 0, 1, NULL, z);
    features(0, 1 / sc, 0, 0, 1, NULL, zn);
    // rotating content by +theta (x right, y down) moves (x, y) - c to R(theta) ((x, y) - c): u = -theta dy, v = theta dx, curl 2 theta
    double worst_c = 0, worst_d = 0;
    for (int q = 0; q < 9; q++) {
        worst_c = fmax(worst_c, fabs(cell_curl(r, q) - 2 * th) / (2 * th));
        worst_d = fmax(worst_d, fabs(cell_div(z, q) - 2 * (sc - 1)) / (2 * (sc - 1)));
    }
    char name[300];
    snprintf(name, sizeof name, "rotate %.2f rad: curl %.4f (2 theta %.4f), div %.4f, worst cell %.0f%% off; sense reversed: curl %.4f",
             th, r[6], 2 * th, r[5], 100 * worst_c, rn[6]);
    test_check(fabs(r[6] - 2 * th) < 0.15 * 2 * th && worst_c < 0.2 && fabs(r[5]) < 0.2 * 2 * th && rn[6] < -0.85 * 2 * th, name, "wrong");
    snprintf(name, sizeof name, "zoom x%.2f: div %.4f (2 (s - 1) %.4f), curl %.4f, worst cell %.0f%% off; zoom out: div %.4f",
             sc, z[5], 2 * (sc - 1), z[6], 100 * worst_d, zn[5]);
    test_check(fabs(z[5] - 2 * (sc - 1)) < 0.15 * 2 * (sc - 1) && worst_d < 0.2 && fabs(z[6]) < 0.2 * 2 * (sc - 1) && zn[5] < -0.8 * 2 * (sc - 1),
               name, "wrong");
}

static void test_local(void) {
    // a disk of radius 12 centred in cell (1, 2) (x 43..63, y 21..42) rotates by 0.15 rad; the background stays
    const double disk[3] = { 52, 31, 12 }, th = 0.15;
    float f[FLOW_PAIR_DIM], fn[FLOW_PAIR_DIM];
    features(th, 1, 0, 0, 1, disk, f);
    features(-th, 1, 0, 0, 1, disk, fn);
    double other = 0;
    for (int q = 0; q < 9; q++) if (q != 5) other = fmax(other, fabs(cell_curl(f, q)));
    char name[240];
    snprintf(name, sizeof name, "local rotation: curl of the disk's cell %.3f (reversed %.3f; inside the disk 2 theta = %.2f), other cells <= %.3f, global (%.2f, %.2f)",
             cell_curl(f, 5), cell_curl(fn, 5), 2 * th, other, f[0], f[1]);
    test_check(cell_curl(f, 5) > 0.25 * th && cell_curl(fn, 5) < -0.25 * th && other < 0.25 * th && fabs(f[0]) + fabs(f[1]) < 0.05, name, "wrong");
    // 54, 55: the fit in a window around the moving region's centre sees the disk, not the cell grid
    snprintf(name, sizeof name, "local rotation: the moving region's window gives curl %.3f (reversed %.3f, 2 theta = %.2f), div %.3f",
             f[55], fn[55], 2 * th, f[54]);
    test_check(f[55] > 0.25 * th && fn[55] < -0.25 * th && fabs(f[54]) < 0.5 * fabs(f[55]), name, "wrong");
}

// A textured disk (radius 10) moves by (dx, dy) over a static background of the same texture at a fifth of
// the contrast, so the confidence (lmin, ~ contrast^2) is nearly all the disk's: the global motion must still
// be the background's 0 (a confidence-weighted median took the disk's motion for the camera's), and the
// moving region's mean flow (43, 44) and speed (45) the disk's shift.
static void test_target(void) {
    static uint8_t rgb[2 * S * S * 3];
    const double dx = 1.5, dy = -0.8, cx = 30, cy = 33, r = 10;
    for (int t = 0; t < 2; t++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double ex = x - cx - t * dx, ey = y - cy - t * dy, d = sqrt(ex * ex + ey * ey);
                double a = d < r - 0.5 ? 1 : d > r + 0.5 ? 0 : r + 0.5 - d;   // 1-px anti-aliased edge
                double bg = 0.5 + 0.25 * (tex(x, y) - 0.5), fg = 0.6 + 1.25 * (tex(ex + 100, ey + 100) - 0.5);
                uint8_t v = (uint8_t)lround(255 * fmin(1, fmax(0, bg + a * (fg - bg))));
                for (int ch = 0; ch < 3; ch++) rgb[((size_t)t * S * S + y * S + x) * 3 + ch] = v;
            }
    flow_opts o = flow_defaults();
    float f[FLOW_PAIR_DIM];
    char err[256], name[300];
    int rc = flow_clip_features(rgb, 2, S, S, &o, f, err, sizeof err);
    double em = hypot(f[43] - dx, f[44] - dy), es = fabs(f[45] - hypot(dx, dy)), ea = hypot(f[46] - fabs(dx), f[47] - fabs(dy));
    snprintf(name, sizeof name, "moving target over a weak texture: global (%.2f, %.2f) for (0, 0); moving region's flow (%.2f, %.2f) for (%.1f, %.1f), "
             "speed %.2f for %.2f", f[0], f[1], f[43], f[44], dx, dy, f[45], hypot(dx, dy));
    test_check(!rc && fabs(f[0]) + fabs(f[1]) < 0.1 && em < 0.25 * hypot(dx, dy) && es < 0.25 * hypot(dx, dy) &&
               ea < 0.25 * hypot(dx, dy) && f[46] >= 0 && f[47] >= 0, name, "rc %d %s", rc, rc ? err : "");
    // 56, 57: the confident share moving over 0.25 / 0.5 px: most of it here (the disk holds most of the
    // confidence), next to nothing when the second frame repeats the first
    float still[FLOW_PAIR_DIM];
    memcpy(rgb + (size_t)S * S * 3, rgb, (size_t)S * S * 3);
    rc |= flow_clip_features(rgb, 2, S, S, &o, still, err, sizeof err);
    snprintf(name, sizeof name, "moving share: %.2f / %.2f of the confidence moves over 0.25 / 0.5 px; a repeated frame %.3f / %.3f",
             f[56], f[57], still[56], still[57]);
    test_check(!rc && f[57] > 0.5 && f[56] >= f[57] && f[56] <= 1 && still[56] < 0.02 && still[57] <= still[56], name, "rc %d %s", rc, rc ? err : "");
}

static void test_bins(void) {
    enum { L = 5 };
    static uint8_t rgb[L * S * S * 3], two[2 * S * S * 3];
    for (int t = 0; t < L; t++) {   // frames drifting right by 0.5 t^2 px: flow 0.5, 1.5, 2.5, 3.5... capped per frame by 2 px steps
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++) rgb[((t * S + y) * S + x) * 3 + c] = (uint8_t)lround(255 * tex(x - 0.4 * t * t, y));
    }
    flow_opts o = flow_defaults();
    float all[(L - 1) * FLOW_PAIR_DIM], binned[2 * FLOW_PAIR_DIM], one[FLOW_PAIR_DIM];
    char err[256];
    int rc = flow_clip_features(rgb, L, S, S, &o, all, err, sizeof err);
    o.bins = 2;
    rc |= flow_clip_features(rgb, L, S, S, &o, binned, err, sizeof err);
    o.bins = 0;
    memcpy(two, rgb + 2 * S * S * 3, sizeof two);   // frames 2, 3: pair 2 alone equals row 2
    rc |= flow_clip_features(two, 2, S, S, &o, one, err, sizeof err);
    double e = 0;
    for (int k = 0; k < FLOW_PAIR_DIM; k++) {
        e = fmax(e, fabs(binned[k] - 0.5f * (all[k] + all[FLOW_PAIR_DIM + k])));
        e = fmax(e, fabs(binned[FLOW_PAIR_DIM + k] - 0.5f * (all[2 * FLOW_PAIR_DIM + k] + all[3 * FLOW_PAIR_DIM + k])));
        if (k < 48) e = fmax(e, fabs(one[k] - all[2 * FLOW_PAIR_DIM + k]));   // 48..51 describe the whole window
    }
    char name[200];
    snprintf(name, sizeof name, "bins: 2 bins of 4 pairs are the pair means (max err %.1e); pair u in time order %.2f %.2f %.2f %.2f", e,
             all[0], all[FLOW_PAIR_DIM], all[2 * FLOW_PAIR_DIM], all[3 * FLOW_PAIR_DIM]);
    test_check(!rc && e < 1e-5 && all[0] < all[FLOW_PAIR_DIM] && all[FLOW_PAIR_DIM] < all[2 * FLOW_PAIR_DIM] && fabs(all[0] - 0.4) < 0.1, name, "rc %d %s", rc, rc ? err : "");
    uint8_t small[2 * 2 * 2 * 3] = { 0 };
    test_check(flow_clip_features(small, 2, 2, 2, &o, one, err, sizeof err) == -1 && strstr(err, "3x3"), "bad sizes are refused with a message", "accepted");
}

// The direction-normalised track (48..51) of flows m_t = s_t (cos a, sin a) against the closed form: along = s_t
// (the axis signed by the net displacement), along / RMS, the cumulative along over sum |along|, across = 0, anisotropy 1, (cos 4a, sin 4a); then an isotropic set.
static void test_track(void) {
    enum { P = 4 };
    const double s[P] = { 1.0, 2.0, -0.5, 3.0 }, a = 150.0 * M_PI / 180.0;
    float f[P * FLOW_PAIR_DIM] = { 0 };
    for (int p = 0; p < P; p++) { f[p * FLOW_PAIR_DIM + 43] = (float)(s[p] * cos(a)); f[p * FLOW_PAIR_DIM + 44] = (float)(s[p] * sin(a)); }
    flow_track_features(f, P);
    double e = 0, rms = sqrt((1.0 + 4.0 + 0.25 + 9.0) / P), cum = 0;
    for (int p = 0; p < P; p++) {
        const float *q = f + p * FLOW_PAIR_DIM;
        cum += s[p];
        e = fmax(e, fabs(q[48] - s[p]) + fabs(q[52] - s[p] / rms) + fabs(q[53] - cum / 6.5) + fabs(q[49]) + fabs(q[50] - cos(4 * a)) + fabs(q[51] - sin(4 * a)));
    }
    char name[200];
    snprintf(name, sizeof name, "track: flows along 150 deg give along %.2f %.2f %.2f %.2f, cos/sin 4a %.3f %.3f (max err %.1e)",
             f[48], f[FLOW_PAIR_DIM + 48], f[2 * FLOW_PAIR_DIM + 48], f[3 * FLOW_PAIR_DIM + 48], f[50], f[51], e);
    test_check(e < 1e-5, name, "");
    float g[2 * FLOW_PAIR_DIM] = { 0 };   // (1, 0) then (0, 1): equal eigenvalues, anisotropy 0
    g[43] = 1; g[FLOW_PAIR_DIM + 44] = 1;
    flow_track_features(g, 2);
    test_check(fabs(g[50]) + fabs(g[51]) < 1e-6 && fabs(g[48] * g[48] + g[49] * g[49] - 1) < 1e-5,
               "track: an isotropic set has no axis term (anisotropy 0) and keeps |m|", "%g %g %g %g", g[48], g[49], g[50], g[51]);
}

int main(void) {
    test_window();
    test_confidence();
    test_translate();
    test_rotate_zoom();
    test_local();
    test_target();
    test_bins();
    test_track();
    return test_done();
}
