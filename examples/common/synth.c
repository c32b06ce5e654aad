// examples/common/synth.c: the synthetic benchmark generator (see synth.h and
// ../shared/SYNTH.md). Build with -ffp-contract=off: the bytes must not depend
// on whether the compiler fuses multiply-adds.
#include "synth.h"

#include "vwrite.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define SYNTH__PI 3.14159265358979323846
#define SYNTH__TAU 6.28318530717958647692
#define SYNTH__DEG (SYNTH__PI / 180.0)
#define SYNTH__PHI 0x9E3779B97F4A7C15ull
#define SYNTH__MAX_ATTEMPTS 1000
#define SYNTH__PX112 (1.0 / 112.0)  // one pixel at S = 112, in units of S

static int synth__fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static float synth__clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static double synth__clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

// ---------------------------------------------------------------- hashing

uint64_t synth_splitmix64(uint64_t x) {
    x += SYNTH__PHI;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static const uint64_t synth__split_key[SYNTH_SPLITS] = {
    0x8F3C1A5E27D46B91ull, 0x2B7E151628AED2A6ull, 0xC3A5C85C97CB3127ull, 0x6A09E667F3BCC908ull};

uint64_t synth_video_seed(uint64_t global, int split, int64_t index) {
    return synth_splitmix64(global ^ synth__split_key[split & 3] ^ ((uint64_t)index * SYNTH__PHI));
}

void synth_video_name(uint64_t video_seed, char name[17]) {
    snprintf(name, 17, "%016llx",
             (unsigned long long)synth_splitmix64(video_seed ^ 0x5EED0F0DDBA11ull));
}

// Per-video parameter stream: value n is splitmix64(key + n * K), a counter,
// so one video's draws never depend on any other video.
typedef struct {
    uint64_t key, n;
} synth__rng;

static uint64_t synth__next(synth__rng *r) {
    return synth_splitmix64(r->key + (r->n++) * 0xD1B54A32D192ED03ull);
}
static double synth__unif(synth__rng *r) { return (double)(synth__next(r) >> 11) * 0x1.0p-53; }
static double synth__range(synth__rng *r, double a, double b) { return a + (b - a) * synth__unif(r); }
static int synth__int(synth__rng *r, int n) { return (int)(synth__unif(r) * n); }

// 32-bit lattice hash for value noise.
static float synth__lattice(uint32_t key, int32_t ix, int32_t iy) {
    uint32_t h = key ^ ((uint32_t)ix * 0x8DA6B343u) ^ ((uint32_t)iy * 0xD8163841u);
    h ^= h >> 16; h *= 0x7FEB352Du;
    h ^= h >> 15; h *= 0x846CA68Bu;
    h ^= h >> 16;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

// ---------------------------------------------------------------- names

static const char *synth__motion_names[SYNTH_MOTION_CLASSES] = {
    "left", "right", "up", "down", "rotate_cw", "rotate_ccw", "approach", "recede",
    "speed_up", "slow_down", "start", "stop", "pan_left", "pan_right",
    "approach_recede", "recede_approach", "oscillate", "sweep"};
static const char *synth__shape_names[4] = {"ellipse", "rounded_box", "triangle", "star"};
static const char *synth__texture_names[6] = {"checker", "stripes", "dots", "noise", "fbm", "gradient"};
static const char *synth__split_names[SYNTH_SPLITS] = {"train", "val", "test", "pretrain"};

const char *synth_motion_name(int m) {
    return m >= 0 && m < SYNTH_MOTION_CLASSES ? synth__motion_names[m] : "?";
}
const char *synth_split_name(int s) { return s >= 0 && s < SYNTH_SPLITS ? synth__split_names[s] : "?"; }
int synth_window(int frames) { return (2 * frames + 1) / 3; }

// ---------------------------------------------------------------- textures

// Runtime form of a synth_look: texture-space transform and colours.
typedef struct {
    int family;
    float c, s, inv_p, duty, ph0, ph1;
    uint32_t key;
    float col0[3], dcol[3];
} synth__tex;

static void synth__tex_init(synth__tex *t, const synth_look *L) {
    t->family = L->texture;
    t->c = cosf(L->tex_angle);
    t->s = sinf(L->tex_angle);
    t->inv_p = 1.0f / L->period;
    t->duty = L->duty;
    t->ph0 = L->phase[0];
    t->ph1 = L->phase[1];
    t->key = L->key;
    for (int k = 0; k < 3; k++) {
        t->col0[k] = L->col[0][k];
        t->dcol[k] = L->col[1][k] - L->col[0][k];
    }
}

// Coverage of [0, duty) in a period-1 square wave at x, with a linear ramp one
// pixel (w, in periods) wide; fades to the mean when a period nears 2 pixels.
static float synth__square(float x, float duty, float w) {
    float f = x - floorf(x);
    float sd = f < duty ? fminf(f, duty - f) : -fminf(f - duty, 1.0f - f);
    float cov = synth__clampf(0.5f + sd / w, 0.0f, 1.0f);
    float fade = synth__clampf((w - 0.25f) * 4.0f, 0.0f, 1.0f);
    return cov + (duty - cov) * fade;
}

static float synth__vnoise(uint32_t key, float x, float y) {
    float fx = floorf(x), fy = floorf(y);
    int32_t ix = (int32_t)fx, iy = (int32_t)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    float a = synth__lattice(key, ix, iy), b = synth__lattice(key, ix + 1, iy);
    float c = synth__lattice(key, ix, iy + 1), d = synth__lattice(key, ix + 1, iy + 1);
    float top = a + (b - a) * tx, bot = c + (d - c) * tx;
    return top + (bot - top) * ty;
}

// Value-noise fBm with the given octaves, contrast-stretched to about [0, 1].
static float synth__fbm(uint32_t key, float x, float y, int octaves, float stretch) {
    float sum = 0.0f, amp = 1.0f, norm = 0.0f, f = 1.0f;
    for (int o = 0; o < octaves; o++) {
        sum += amp * synth__vnoise(key + (uint32_t)o * 0x9E3779B9u, x * f, y * f);
        norm += amp;
        amp *= 0.5f;
        f *= 2.0f;
    }
    return synth__clampf(0.5f + (sum / norm - 0.5f) * stretch, 0.0f, 1.0f);
}

// Texture value in [0, 1] at (x, y) in look units; px: one pixel in those units.
static float synth__texture(const synth__tex *t, float x, float y, float px) {
    float u = (t->c * x + t->s * y) * t->inv_p + t->ph0;
    float v = (-t->s * x + t->c * y) * t->inv_p + t->ph1;
    float w = px * t->inv_p;
    switch (t->family) {
    case 0: {  // checker: (floor(2u) + floor(2v)) & 1, anti-aliased
        float a = synth__square(u, 0.5f, w), b = synth__square(v, 0.5f, w);
        return a + b - 2.0f * a * b;
    }
    case 1: return synth__square(u, t->duty, w);  // stripes
    case 2: {                                      // dots of radius duty (periods)
        float fu = u - floorf(u + 0.5f), fv = v - floorf(v + 0.5f);
        float sd = t->duty - sqrtf(fu * fu + fv * fv);
        float cov = synth__clampf(0.5f + sd / w, 0.0f, 1.0f);
        float mean = (float)SYNTH__PI * t->duty * t->duty;
        return cov + (mean - cov) * synth__clampf((w - 0.25f) * 4.0f, 0.0f, 1.0f);
    }
    case 3: return synth__fbm(t->key, 2.0f * u, 2.0f * v, 2, 1.7f);  // value noise
    case 4: return synth__fbm(t->key, 2.0f * u, 2.0f * v, 3, 2.0f);  // fBm (backgrounds)
    default: return fabsf(2.0f * (u - floorf(u)) - 1.0f);            // gradient: triangle ramp
    }
}

// ---------------------------------------------------------------- shapes

// Signed distance (local units, the shape fits the unit disc; < 0 inside).
static float synth__sdf(int shape, float aspect, float x, float y) {
    switch (shape) {
    case 0: {  // ellipse, semi-axes 1 and aspect (iq's approximation)
        float b = aspect;
        float k0 = sqrtf(x * x + (y / b) * (y / b));
        float k1 = sqrtf(x * x + (y / (b * b)) * (y / (b * b)));
        return k1 < 1e-6f ? -b : k0 * (k0 - 1.0f) / k1;
    }
    case 1: {  // rounded box, half extents 0.7 and 0.7 aspect
        float hx = 0.7f, hy = 0.7f * aspect, r = 0.25f * hy;
        float qx = fabsf(x) - hx + r, qy = fabsf(y) - hy + r;
        float ox = fmaxf(qx, 0.0f), oy = fmaxf(qy, 0.0f);
        return fminf(fmaxf(qx, qy), 0.0f) + sqrtf(ox * ox + oy * oy) - r;
    }
    case 2: {  // equilateral triangle, circumradius 1 (iq)
        const float k = 1.7320508f, r = 0.8660254f;
        float px = fabsf(x) - r, py = y + r / k;
        if (px + k * py > 0.0f) {
            float nx = (px - k * py) * 0.5f, ny = (-k * px - py) * 0.5f;
            px = nx;
            py = ny;
        }
        px -= synth__clampf(px, -2.0f * r, 0.0f);
        float len = sqrtf(px * px + py * py);
        return py > 0.0f ? -len : len;
    }
    default: {  // 5-point star, outer radius 1, inner ratio aspect (iq)
        const float k1x = 0.809016994f, k1y = -0.587785252f;
        float px = fabsf(x), py = y;
        float d1 = fmaxf(k1x * px + k1y * py, 0.0f);
        px -= 2.0f * d1 * k1x;
        py -= 2.0f * d1 * k1y;
        float d2 = fmaxf(-k1x * px + k1y * py, 0.0f);
        px -= 2.0f * d2 * -k1x;
        py -= 2.0f * d2 * k1y;
        px = fabsf(px);
        py -= 1.0f;
        float bax = aspect * -k1y, bay = aspect * k1x - 1.0f;
        float h = synth__clampf((px * bax + py * bay) / (bax * bax + bay * bay), 0.0f, 1.0f);
        float ex = px - bax * h, ey = py - bay * h;
        float len = sqrtf(ex * ex + ey * ey);
        return (py * bax - px * bay) > 0.0f ? len : -len;
    }
    }
}

// ---------------------------------------------------------------- sampling

// What --hard scales: noise (pixel noise, shake), distractors, camouflage.
typedef struct {
    float noise_lo, noise_hi, shake_lo, shake_hi;  // noise in 1/255, shake in px at S = 112
    int distract_lo, distract_hi;
    float distract_speed;  // max distractor speed, fraction of S per window
    float camouflage, contrast_lo, contrast_hi;
} synth__level;

static const synth__level synth__levels[3] = {
    {1.0f, 4.0f, 0.0f, 0.5f, 0, 1, 0.25f, 0.10f, 0.15f, 0.45f},
    {2.0f, 10.0f, 0.0f, 1.2f, 0, 3, 0.43f, 0.20f, 0.08f, 0.45f},
    {4.0f, 16.0f, 0.4f, 2.0f, 1, 4, 0.60f, 0.40f, 0.05f, 0.30f},
};

// RGB from luma and a random chroma of magnitude <= sat (BT.601), clamped.
static void synth__colour(synth__rng *r, double luma, double sat, float out[3]) {
    double a = synth__range(r, 0.0, SYNTH__TAU), m = sat * synth__unif(r);
    double cb = m * cos(a), cr = m * sin(a);
    out[0] = (float)synth__clamp(luma + 1.402 * cr, 0.0, 1.0);
    out[1] = (float)synth__clamp(luma - 0.344136 * cb - 0.714136 * cr, 0.0, 1.0);
    out[2] = (float)synth__clamp(luma + 1.772 * cb, 0.0, 1.0);
}

// A textured look: two colours around luma (contrast tau), texture parameters.
// Period: local units for objects, fraction of S for backgrounds (bg != 0).
static void synth__look(synth__rng *r, synth_look *L, int shape, int texture, double luma,
                        int bg) {
    L->shape = shape;
    L->texture = texture;
    double aspect[4] = {synth__range(r, 0.5, 0.75), synth__range(r, 0.55, 0.8), 1.0,
                        synth__range(r, 0.4, 0.55)};
    L->aspect = (float)aspect[shape & 3];
    L->period = bg ? (float)(synth__range(r, 12.0, 32.0) * SYNTH__PX112)
                   : (float)synth__range(r, 0.7, 1.1);
    L->duty = (float)(texture == 2 ? synth__range(r, 0.2, 0.35) : synth__range(r, 0.35, 0.65));
    L->tex_angle = (float)synth__range(r, 0.0, SYNTH__TAU);
    L->phase[0] = (float)synth__unif(r);
    L->phase[1] = (float)synth__unif(r);
    L->key = (uint32_t)synth__next(r);
    double tau = synth__range(r, 0.12, 0.35);
    int swap = synth__int(r, 2);
    double lo = synth__clamp(luma - tau / 2, 0.02, 0.98), hi = synth__clamp(luma + tau / 2, 0.02, 0.98);
    synth__colour(r, swap ? hi : lo, 0.12, L->col[0]);
    synth__colour(r, swap ? lo : hi, 0.12, L->col[1]);
}

// Background family: the target's (camouflage) or one of the other four of
// checker, stripes, dots, fBm, gradient.
static int synth__bg_family(synth__rng *r, int target_texture, int camouflage) {
    int own = target_texture == 3 ? 4 : target_texture;
    int pick = synth__int(r, 4);
    if (camouflage) return own;
    static const int fams[5] = {0, 1, 2, 4, 5};
    int k = 0;
    for (int i = 0; i < 5; i++)
        if (fams[i] != own && k++ == pick) return fams[i];
    return 5;
}

static void synth__sample_distractors(synth__rng *r, const synth__level *h, synth_video *v) {
    v->n_distractors = h->distract_lo + synth__int(r, h->distract_hi - h->distract_lo + 1);
    for (int i = 0; i < SYNTH_MAX_DISTRACTORS; i++) {  // always the same number of draws
        synth_distractor *d = &v->distractor[i];
        int shape = synth__int(r, 4), texture = synth__int(r, 4);
        synth__look(r, &d->look, shape, texture, synth__range(r, 0.15, 0.85), 0);
        d->size = (float)(synth__range(r, 0.3, 0.6) * exp(v->log_size));
        d->pos[0] = (float)synth__range(r, -0.1, 1.1);
        d->pos[1] = (float)synth__range(r, -0.1, 1.1);
        double speed = synth__range(r, 0.0, h->distract_speed), dir = synth__range(r, 0.0, SYNTH__TAU);
        d->vel[0] = (float)(speed * cos(dir));
        d->vel[1] = (float)(speed * sin(dir));
        d->angle0 = (float)synth__range(r, 0.0, SYNTH__TAU);
        double spin = synth__range(r, 60.0, 240.0) * SYNTH__DEG * (synth__int(r, 2) ? 1 : -1);
        d->spin = synth__int(r, 2) ? (float)spin : 0.0f;
    }
}

// Everything but the motion: looks, background, distractors, occluder, nuisances.
static void synth__sample_scene(synth__rng *r, const synth__level *h, synth_video *v) {
    int shape = v->appearance / 4, texture = v->appearance % 4;
    double yb = synth__range(r, 0.2, 0.8);
    double contrast = synth__range(r, h->contrast_lo, h->contrast_hi);
    double sign = synth__int(r, 2) ? 1.0 : -1.0;
    if (yb + sign * contrast < 0.06 || yb + sign * contrast > 0.94) sign = -sign;
    double yt = synth__clamp(yb + sign * contrast, 0.06, 0.94);
    v->contrast = (float)(yt - yb);
    synth__look(r, &v->target, shape, texture, yt, 0);
    v->camouflage = synth__unif(r) < h->camouflage;
    int fam = synth__bg_family(r, texture, v->camouflage);
    synth__look(r, &v->bg, 0, fam, yb, 1);
    v->bg_origin[0] = (float)synth__range(r, 0.0, 64.0);
    v->bg_origin[1] = (float)synth__range(r, 0.0, 64.0);
    v->log_size = (float)synth__range(r, log(0.18), log(0.32));
    synth__sample_distractors(r, h, v);
    v->occluder = synth__unif(r) < 0.4;
    v->occ_angle = (float)synth__range(r, 0.0, SYNTH__PI);
    v->occ_pos[0] = (float)synth__range(r, 0.25, 0.75);
    v->occ_pos[1] = (float)synth__range(r, 0.25, 0.75);
    v->occ_width = (float)synth__range(r, 0.08, 0.14);
    synth__colour(r, synth__range(r, 0.1, 0.9), 0.1, v->occ_col);
    v->shake = (float)(synth__range(r, h->shake_lo, h->shake_hi) * SYNTH__PX112);
    v->grad_amp = (float)synth__range(r, 0.0, 0.25);
    v->grad_dir = (float)synth__range(r, 0.0, SYNTH__TAU);
    v->noise = (float)synth__range(r, h->noise_lo, h->noise_hi);
    v->angle0 = (float)synth__range(r, 0.0, SYNTH__TAU);
}

// Axis laws: horizontal (+-20 deg), vertical, uniform, diagonal (45/135 +-20).
static double synth__axis_law(synth__rng *r, int law) {
    double jitter = synth__range(r, -20.0, 20.0) * SYNTH__DEG;
    double uniform = synth__range(r, 0.0, SYNTH__TAU);
    double diag = (synth__int(r, 2) ? 45.0 : 135.0) * SYNTH__DEG + jitter;
    switch (law) {
    case 0: return jitter;
    case 1: return 0.5 * SYNTH__PI + jitter;
    case 2: return uniform;
    default: return diag;
    }
}

static int synth__pair_axis_law(int pair) {
    return pair == 0 || pair == 6 ? 0 : pair == 1 ? 1 : pair == 4 || pair == 5 ? 2 : 3;
}

// The class's own motion at base time u: out = {dx, dy, dlog_scale, dangle}.
static void synth__own(const synth_video *v, double u, double out[4]) {
    int pair = v->motion / 2, odd = v->motion & 1;
    double ex = cos(v->axis), ey = sin(v->axis), along = 0.0;
    out[0] = out[1] = out[2] = out[3] = 0.0;
    switch (pair) {
    case 0: case 1: case 6: along = -v->d * u; break;
    case 2: out[3] = v->rate * u; break;
    case 3: out[2] = v->rate * u; break;
    case 4: along = u >= -0.625 ? v->speed * (u + 0.8 * u * u + 0.3125) : 0.0; break;
    case 5: along = u > v->onset ? v->speed * (u - v->onset) : 0.0; break;
    case 7: out[2] = (odd ? -1.0 : 1.0) * v->rate * (0.75 - 2.0 * fabs(u - v->onset)); break;
    default:
        if (odd) {
            along = v->onset * v->d * u;  // sweep: one pass over d per window, onset = +-1
        } else {                          // oscillate: 2 triangle cycles per window, p2p d
            double x = 2.0 * u + v->onset;
            along = v->d * (fabs(2.0 * (x - floor(x)) - 1.0) - 0.5);
        }
    }
    out[0] = along * ex;
    out[1] = along * ey;
}

static double synth__base_u(const synth_video *v, int b) {
    return ((double)b - 0.5 * (v->frames - 1)) / v->window;
}

// Motion parameters (all drawn for every class, so the draws never depend on
// the class), then the class's axis, rate, onset and speed.
static void synth__sample_motion(synth__rng *r, synth_video *v, double draws[7]) {
    int pair = v->motion / 2, odd = v->motion & 1;
    v->d = (float)synth__range(r, 0.25, 0.45);
    double axis_own = synth__axis_law(r, synth__pair_axis_law(pair));
    double rot_max = fmin(300.0, 15.0 * v->window);
    double rot = synth__range(r, 120.0, fmax(120.0, rot_max)) * SYNTH__DEG;
    double lrate = synth__range(r, log(1.6), log(2.4));
    double u0 = synth__range(r, -0.2, 0.2), turn = synth__range(r, -0.05, 0.05);
    double phase = synth__unif(r), sweep = synth__int(r, 2) ? 1.0 : -1.0;
    static const int donors[6] = {0, 1, 4, 5, 6, 8};
    double axis_donor = synth__axis_law(r, synth__pair_axis_law(donors[synth__int(r, 6)]));
    for (int k = 0; k < 6; k++) draws[k] = synth__unif(r);  // anchor, offsets
    draws[6] = lrate;  // log-scale rate (also for the classes that hold the scale)
    int still = pair == 2 || pair == 3 || pair == 7;
    v->axis = (float)(still ? axis_donor : axis_own);
    v->rate = (float)(pair == 2 ? rot : lrate);
    v->onset = (float)(pair == 5 ? u0 : pair == 7 ? turn : pair == 8 ? (odd ? sweep : phase) : 0.0);
    v->speed = (float)(pair == 4 ? v->d : pair == 5 ? 1.25 * v->d : 0.0);
}

// Frame means of the own path, and the matched-marginal offsets: along the
// axis, the variance a constant-velocity mover with displacement d would have
// over the frames is filled up with a static uniform offset; across it, the
// position at a random time of a mover along the perpendicular; the log-scale
// likewise from an approach/recede ramp (rate draws[6]). draws: 0-1 anchor,
// 2 along, 3 across, 4 across displacement, 5 log-scale, 6 log-scale rate.
static void synth__match_marginals(synth_video *v, const double draws[7]) {
    int T = v->frames;
    double m[3] = {0, 0, 0}, ex = cos(v->axis), ey = sin(v->axis), u2 = 0.0;
    for (int b = 0; b < T; b++) {
        double o[4], u = synth__base_u(v, b);
        synth__own(v, u, o);
        for (int k = 0; k < 3; k++) m[k] += o[k] / T;
        u2 += u * u / T;
    }
    double var_a = 0.0, var_s = 0.0;
    for (int b = 0; b < T; b++) {
        double o[4];
        synth__own(v, synth__base_u(v, b), o);
        double a = (o[0] - m[0]) * ex + (o[1] - m[1]) * ey;
        var_a += a * a / T;
        var_s += (o[2] - m[2]) * (o[2] - m[2]) / T;
    }
    for (int k = 0; k < 3; k++) v->mean[k] = (float)m[k];
    double target_a = (double)v->d * v->d * u2, target_s = draws[6] * draws[6] * u2;
    double along = sqrt(12.0 * fmax(0.0, target_a - var_a)) * (draws[2] - 0.5);
    double d_perp = 0.25 + 0.2 * draws[4];
    double across = sqrt(12.0 * d_perp * d_perp * u2) * (draws[3] - 0.5);
    v->offset[0] = (float)(along * ex - across * ey);
    v->offset[1] = (float)(along * ey + across * ex);
    v->anchor[0] = (float)(0.5 + 0.2 * (draws[0] - 0.5));
    v->anchor[1] = (float)(0.5 + 0.2 * (draws[1] - 0.5));
    v->scale_offset = (float)(sqrt(12.0 * fmax(0.0, target_s - var_s)) * (draws[5] - 0.5));
}

// ---------------------------------------------------------------- states

// Base-time index of frame t: odd classes of pairs 0-6 run backwards, so their
// frame t is their partner's frame T-1-t, nuisances included.
static int synth__base(const synth_video *v, int t) {
    return v->motion / 2 <= 6 && (v->motion & 1) ? v->frames - 1 - t : t;
}

// Target state at base index b (visible left 0) and the world's shift in the
// frame (pans only), fractions of S.
static void synth__state_at(const synth_video *v, int b, synth_state *st, double pan[2]) {
    double o[4];
    synth__own(v, synth__base_u(v, b), o);
    double dx = o[0] - v->mean[0], dy = o[1] - v->mean[1];
    st->x = (float)(v->anchor[0] + v->offset[0] + dx);
    st->y = (float)(v->anchor[1] + v->offset[1] + dy);
    st->log_scale = (float)(v->log_size + v->scale_offset + o[2] - v->mean[2]);
    double a = fmod(v->angle0 + o[3], SYNTH__TAU);
    st->angle = (float)(a < 0.0 ? a + SYNTH__TAU : a);
    st->visible = 0.0f;
    int is_pan = v->motion / 2 == 6;
    pan[0] = is_pan ? dx : 0.0;
    pan[1] = is_pan ? dy : 0.0;
}

// Points inside the target (cell centres of a 12 x 12 grid on [-1, 1]^2).
typedef struct {
    int n;
    float x[144], y[144];
} synth__points;

static void synth__shape_points(const synth_look *L, synth__points *p) {
    p->n = 0;
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 12; j++) {
            float x = (j + 0.5f) / 6.0f - 1.0f, y = (i + 0.5f) / 6.0f - 1.0f;
            if (synth__sdf(L->shape, L->aspect, x, y) < 0.0f) {
                p->x[p->n] = x;
                p->y[p->n] = y;
                p->n++;
            }
        }
}

// Share of the target inside the frame and not under the occluder; *depth:
// how far (fraction of S) its deepest point lies inside the frame.
static float synth__visible(const synth_video *v, const synth__points *p, const synth_state *st,
                            float *depth) {
    float r = 0.5f * expf(st->log_scale), c = cosf(st->angle), s = sinf(st->angle);
    float nx = -sinf(v->occ_angle), ny = cosf(v->occ_angle);
    int count = 0;
    float deep = -1e9f;
    for (int k = 0; k < p->n; k++) {
        float fx = st->x + r * (c * p->x[k] - s * p->y[k]);
        float fy = st->y + r * (s * p->x[k] + c * p->y[k]);
        float dep = fminf(fminf(fx, 1.0f - fx), fminf(fy, 1.0f - fy));
        deep = fmaxf(deep, dep);
        int covered = v->occluder &&
                      fabsf(nx * (fx - v->occ_pos[0]) + ny * (fy - v->occ_pos[1])) <= 0.5f * v->occ_width;
        if (dep >= 0.0f && !covered) count++;
    }
    *depth = deep;
    return p->n ? (float)count / p->n : 0.0f;
}

void synth_states(const synth_opts *o, const synth_video *v, synth_state *st) {
    (void)o;
    synth__points pts;
    synth__shape_points(&v->target, &pts);
    for (int t = 0; t < v->frames; t++) {
        double pan[2];
        float depth;
        synth__state_at(v, synth__base(v, t), &st[t], pan);
        st[t].visible = synth__visible(v, &pts, &st[t], &depth);
    }
}

// The rejection rule (identical for all classes): the target is >= 3 px (at
// S = 112) inside the frame in every frame and >= 60% visible in >= 75% of them.
static int synth__accept(const synth_video *v) {
    synth__points pts;
    synth__shape_points(&v->target, &pts);
    int good = 0;
    for (int b = 0; b < v->frames; b++) {
        synth_state st;
        double pan[2];
        float depth;
        synth__state_at(v, b, &st, pan);
        float vis = synth__visible(v, &pts, &st, &depth);
        if (depth < 3.0f * (float)SYNTH__PX112) return 0;
        good += vis >= 0.6f;
    }
    return 4 * good >= 3 * v->frames;
}

static int synth__check_opts(const synth_opts *o, char *err, size_t errlen) {
    if (o->size < 16 || o->size > 1024)
        return synth__fail(err, errlen, "frame size %d is not in 16..1024", o->size);
    if (o->frames < 6 || o->frames > 4096)
        return synth__fail(err, errlen, "frame count %d is not in 6..4096", o->frames);
    if (o->hard < 0 || o->hard > 2)
        return synth__fail(err, errlen, "hard level %d is not 0, 1 or 2", o->hard);
    return 0;
}

int synth_sample(const synth_opts *o, uint64_t seed, int motion, int appearance, synth_video *v,
                 char *err, size_t errlen) {
    if (synth__check_opts(o, err, errlen)) return -1;
    if (motion < 0 || motion >= SYNTH_MOTION_CLASSES || appearance < 0 ||
        appearance >= SYNTH_APPEARANCE_CLASSES)
        return synth__fail(err, errlen, "labels (motion %d, appearance %d) out of range 0..17, 0..15",
                           motion, appearance);
    const synth__level *h = &synth__levels[o->hard];
    for (int a = 0; a < SYNTH__MAX_ATTEMPTS; a++) {
        memset(v, 0, sizeof *v);
        v->seed = seed;
        v->motion = motion;
        v->appearance = appearance;
        v->frames = o->frames;
        v->window = synth_window(o->frames);
        synth__rng r = {synth_splitmix64(seed ^ ((uint64_t)(a + 1) * 0xA0761D6478BD642Full)), 0};
        synth__sample_scene(&r, h, v);
        double draws[7];
        synth__sample_motion(&r, v, draws);
        synth__match_marginals(v, draws);
        v->attempts = a + 1;
        if (synth__accept(v)) return 0;
    }
    return synth__fail(err, errlen, "seed %016llx, motion %d: no draw passed the rejection rule in %d attempts",
                       (unsigned long long)seed, motion, SYNTH__MAX_ATTEMPTS);
}

// ---------------------------------------------------------------- drawing

typedef struct {
    synth__tex target, bg, distractor[SYNTH_MAX_DISTRACTORS];
} synth__scene;

// Composites one shape (radius and centre in fractions of S) over img[S][S][3],
// touching only its bounding box; coverage clamp(0.5 - sdf/px) anti-aliases.
static void synth__draw_object(float *img, int S, const synth__tex *tx, const synth_look *L,
                               float cx, float cy, float radius, float angle) {
    float rpx = radius * S;
    if (rpx < 0.25f) return;
    int x0 = (int)floorf((cx - radius) * S - 2.0f), x1 = (int)ceilf((cx + radius) * S + 2.0f);
    int y0 = (int)floorf((cy - radius) * S - 2.0f), y1 = (int)ceilf((cy + radius) * S + 2.0f);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > S ? S : x1;
    y1 = y1 > S ? S : y1;
    float c = cosf(angle), s = sinf(angle), inv = 1.0f / (radius * S), pxl = 1.0f / rpx;
    for (int i = y0; i < y1; i++) {
        float py = (i + 0.5f) - cy * S;
        for (int j = x0; j < x1; j++) {
            float px = (j + 0.5f) - cx * S;
            float lx = (c * px + s * py) * inv, ly = (-s * px + c * py) * inv;
            float alpha = synth__clampf(0.5f - synth__sdf(L->shape, L->aspect, lx, ly) * rpx, 0.0f, 1.0f);
            if (alpha <= 0.0f) continue;
            float t = synth__texture(tx, lx, ly, pxl);
            float *p = img + ((size_t)i * S + j) * 3;
            for (int k = 0; k < 3; k++) p[k] += (tx->col0[k] + tx->dcol[k] * t - p[k]) * alpha;
        }
    }
}

// Background in world coordinates: frame point p shows world point p - shift.
static void synth__draw_bg(float *img, int S, const synth__tex *tx, const float origin[2],
                           float shift_x, float shift_y) {
    float px = 1.0f / S;
    for (int i = 0; i < S; i++) {
        float wy = (i + 0.5f) * px - shift_y + origin[1];
        for (int j = 0; j < S; j++) {
            float wx = (j + 0.5f) * px - shift_x + origin[0];
            float t = synth__texture(tx, wx, wy, px);
            float *p = img + ((size_t)i * S + j) * 3;
            for (int k = 0; k < 3; k++) p[k] = tx->col0[k] + tx->dcol[k] * t;
        }
    }
}

static void synth__draw_occluder(float *img, int S, const synth_video *v) {
    float nx = -sinf(v->occ_angle), ny = cosf(v->occ_angle), half = 0.5f * v->occ_width * S;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            float dx = (j + 0.5f) - v->occ_pos[0] * S, dy = (i + 0.5f) - v->occ_pos[1] * S;
            float alpha = synth__clampf(0.5f - (fabsf(nx * dx + ny * dy) - half), 0.0f, 1.0f);
            if (alpha <= 0.0f) continue;
            float *p = img + ((size_t)i * S + j) * 3;
            for (int k = 0; k < 3; k++) p[k] += (v->occ_col[k] - p[k]) * alpha;
        }
}

// Three standard normals from one 64-bit hash (two Box-Muller pairs, 16-bit uniforms).
static void synth__gauss3(uint64_t h, float z[3]) {
    float u1 = ((float)(h >> 48) + 0.5f) * (1.0f / 65536.0f);
    float a1 = (float)((h >> 32) & 0xFFFF) * (float)(SYNTH__TAU / 65536.0);
    float u2 = ((float)((h >> 16) & 0xFFFF) + 0.5f) * (1.0f / 65536.0f);
    float a2 = (float)(h & 0xFFFF) * (float)(SYNTH__TAU / 65536.0);
    float r1 = sqrtf(-2.0f * logf(u1)), r2 = sqrtf(-2.0f * logf(u2));
    z[0] = r1 * cosf(a1);
    z[1] = r1 * sinf(a1);
    z[2] = r2 * cosf(a2);
}

// Gain (i.i.d. per frame), static gradient, Gaussian pixel noise from a
// counter hash of (frame seed, x, y), rounding: img[S][S][3] -> out[S][S][3].
static void synth__finish(const synth_video *v, uint64_t fs, float gain, const float *img,
                          uint8_t *out, int S) {
    float gx = cosf(v->grad_dir), gy = sinf(v->grad_dir), amp2 = 2.0f * v->grad_amp;
    for (int i = 0; i < S; i++) {
        float py = (i + 0.5f) / S - 0.5f;
        for (int j = 0; j < S; j++) {
            float px = (j + 0.5f) / S - 0.5f;
            float g = 255.0f * gain * (1.0f + amp2 * (gx * px + gy * py));
            size_t at = ((size_t)i * S + j) * 3;
            float z[3];
            synth__gauss3(synth_splitmix64(fs ^ ((uint64_t)(at / 3 + 1) * 0x9FB21C651E98DF25ull)), z);
            for (int k = 0; k < 3; k++) {
                float x = floorf(img[at + k] * g + v->noise * z[k] + 0.5f);
                out[at + k] = (uint8_t)(x < 0.0f ? 0.0f : x > 255.0f ? 255.0f : x);
            }
        }
    }
}

static void synth__render_frame(const synth_opts *o, const synth_video *v, const synth__scene *sc,
                                int t, float *img, uint8_t *out) {
    int S = o->size, b = synth__base(v, t);
    uint64_t fs = synth_splitmix64(v->seed + (uint64_t)b);  // frame seed, by base time
    synth_state st;
    double pan[2], u = synth__base_u(v, b);
    synth__state_at(v, b, &st, pan);
    float z[3];
    synth__gauss3(synth_splitmix64(fs ^ 0x5A4E5A4E5A4Eull), z);
    float shx = v->shake * z[0], shy = v->shake * z[1];
    float gain = 0.95f + 0.1f * (float)((synth_splitmix64(fs ^ 0x6A1A6A1Aull) >> 40) * 0x1.0p-24);
    synth__draw_bg(img, S, &sc->bg, v->bg_origin, (float)pan[0] + shx, (float)pan[1] + shy);
    for (int i = 0; i < v->n_distractors; i++) {
        const synth_distractor *d = &v->distractor[i];
        float x = (float)(d->pos[0] + d->vel[0] * u + pan[0]) + shx;
        float y = (float)(d->pos[1] + d->vel[1] * u + pan[1]) + shy;
        synth__draw_object(img, S, &sc->distractor[i], &d->look, x, y, 0.5f * d->size,
                           (float)(d->angle0 + d->spin * u));
    }
    synth__draw_object(img, S, &sc->target, &v->target, st.x + shx, st.y + shy,
                       0.5f * expf(st.log_scale), st.angle);
    if (v->occluder) synth__draw_occluder(img, S, v);
    synth__finish(v, fs, gain, img, out, S);
    if (o->stamp) synth_stamp(out, S, S, t);
}

int synth_render(const synth_opts *o, const synth_video *v, uint8_t *rgb) {
    int S = o->size;
    float *img = malloc((size_t)S * S * 3 * sizeof(float));
    if (!img) return -1;
    synth__scene sc;
    synth__tex_init(&sc.target, &v->target);
    synth__tex_init(&sc.bg, &v->bg);
    for (int i = 0; i < SYNTH_MAX_DISTRACTORS; i++) synth__tex_init(&sc.distractor[i], &v->distractor[i].look);
    for (int t = 0; t < v->frames; t++)
        synth__render_frame(o, v, &sc, t, img, rgb + (size_t)t * S * S * 3);
    free(img);
    return 0;
}

int synth_generate(const synth_opts *o, uint64_t seed, int motion, int appearance, synth_video *v,
                   uint8_t *rgb, synth_state *st, char *err, size_t errlen) {
    if (synth_sample(o, seed, motion, appearance, v, err, errlen)) return -1;
    if (st) synth_states(o, v, st);
    if (rgb && synth_render(o, v, rgb))
        return synth__fail(err, errlen, "out of memory rendering a %d x %d frame", o->size, o->size);
    return 0;
}

// ---------------------------------------------------------------- stamp

#define SYNTH__STAMP_BITS 20

// Block size and columns of the barcode for an H x W frame; 0 when it does not fit.
static int synth__stamp_layout(int height, int width, int *block, int *cols) {
    int b = (height < width ? height : width) / 28;
    b = b < 4 ? 4 : b;
    int c = width / b;
    c = c > SYNTH__STAMP_BITS ? SYNTH__STAMP_BITS : c;
    if (c < 1) return 0;
    int rows = (SYNTH__STAMP_BITS + c - 1) / c;
    if (rows * b > height) return 0;
    *block = b;
    *cols = c;
    return 1;
}

// 16 index bits, then 4 check bits (xor of the nibbles, xor 0xA).
static uint32_t synth__stamp_word(uint32_t x) {
    x &= 0xFFFF;
    uint32_t chk = ((x ^ (x >> 4) ^ (x >> 8) ^ (x >> 12)) & 0xF) ^ 0xA;
    return x | chk << 16;
}

void synth_stamp(uint8_t *frame, int height, int width, int index) {
    int b, cols;
    if (!synth__stamp_layout(height, width, &b, &cols)) return;
    uint32_t word = synth__stamp_word((uint32_t)index);
    for (int k = 0; k < SYNTH__STAMP_BITS; k++) {
        uint8_t val = (word >> k) & 1 ? 255 : 0;
        int r0 = (k / cols) * b, c0 = (k % cols) * b;
        for (int i = r0; i < r0 + b; i++) memset(frame + ((size_t)i * width + c0) * 3, val, (size_t)b * 3);
    }
}

int synth_read_stamp(const uint8_t *frame, int height, int width) {
    int b, cols;
    if (!synth__stamp_layout(height, width, &b, &cols)) return -1;
    uint32_t word = 0;
    for (int k = 0; k < SYNTH__STAMP_BITS; k++) {
        int r0 = (k / cols) * b, c0 = (k % cols) * b, n = 0;
        long sum = 0;
        for (int i = r0 + 1; i < r0 + b - 1; i++)
            for (int j = c0 + 1; j < c0 + b - 1; j++, n++) {
                const uint8_t *p = frame + ((size_t)i * width + j) * 3;
                sum += (77 * p[0] + 150 * p[1] + 29 * p[2]) >> 8;
            }
        long mean = sum / n;
        if (mean > 80 && mean < 175) return -1;  // not clearly black or white
        word |= (uint32_t)(mean >= 128) << k;
    }
    return synth__stamp_word(word & 0xFFFF) == word ? (int)(word & 0xFFFF) : -1;
}

// ---------------------------------------------------------------- data sets

#ifdef _OPENMP
#define SYNTH__OMP(x) _Pragma(#x)
#else
#define SYNTH__OMP(x)
#endif

static int synth__kind_classes(int kind) {
    return kind == SYNTH_KIND_APPEARANCE ? SYNTH_APPEARANCE_CLASSES : SYNTH_MOTION_CLASSES;
}
static int synth__classes(const synth_dataset *d) {
    return d->classes > 0 ? d->classes : synth__kind_classes(d->kind);
}

int64_t synth_split_count(const synth_dataset *d, int split) {
    if (split == SYNTH_PRETRAIN) return d->pretrain > 0 ? d->pretrain : 0;
    if (split < 0 || split > SYNTH_TEST || !(d->splits & (1 << split))) return 0;
    return (int64_t)synth__classes(d) * (d->per_class > 0 ? d->per_class : 0);
}

// out[i] = i mod classes, shuffled (Fisher-Yates with a counter hash of key, i).
static void synth__deck(uint64_t key, int64_t n, int classes, int *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (int)(i % classes);
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t j = synth_splitmix64(key + (uint64_t)i * SYNTH__PHI) % (uint64_t)(i + 1);
        int t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

void synth_split_labels(const synth_dataset *d, int split, int *motion, int *appearance) {
    int64_t n = synth_split_count(d, split);
    uint64_t base = d->seed ^ synth__split_key[split & 3];
    int mc = d->kind == SYNTH_KIND_MOTION ? synth__classes(d) : SYNTH_MOTION_CLASSES;
    int ac = d->kind == SYNTH_KIND_APPEARANCE ? synth__classes(d) : SYNTH_APPEARANCE_CLASSES;
    synth__deck(synth_splitmix64(base ^ 0x4D4F54494F4Eull), n, mc, motion);
    synth__deck(synth_splitmix64(base ^ 0x41505045415241ull), n, ac, appearance);
}

typedef struct {
    int split, motion, appearance;
    int64_t index;
    uint64_t seed;
    char rel[64];  // path relative to the output folder
    synth_video v; // latents, filled by the worker
} synth__item;

int synth_check_dataset(const synth_dataset *d, char *err, size_t errlen) {
    if (!d->out || !d->out[0]) return synth__fail(err, errlen, "no output folder given (--out DIR)");
    if (synth__check_opts(&d->opts, err, errlen)) return -1;
    if (d->kind != SYNTH_KIND_MOTION && d->kind != SYNTH_KIND_APPEARANCE)
        return synth__fail(err, errlen, "kind must be motion or appearance");
    int max = synth__kind_classes(d->kind);
    if (d->classes != 0 && (d->classes < 2 || d->classes > max))
        return synth__fail(err, errlen, "--classes %d: %s has 2..%d classes", d->classes,
                           d->kind == SYNTH_KIND_MOTION ? "motion" : "appearance", max);
    if (d->per_class < 0 || d->pretrain < 0 || (d->splits & ~7))
        return synth__fail(err, errlen, "negative counts or unknown splits");
    if (d->per_class == 0 && (d->splits & 7))
        return synth__fail(err, errlen, "--per-class must be at least 1 for train/val/test");
    char why[400];
    if (d->format != SYNTH_JPG && d->format != SYNTH_MP4)
        return synth__fail(err, errlen, "unknown format %d (use mp4 or jpg)", d->format);
    if (!vwrite_available((vwrite_format)d->format, why, sizeof why))
        return synth__fail(err, errlen, "%s", why);
    if (d->format == SYNTH_MP4 && (d->opts.size & 1))
        return synth__fail(err, errlen, "--size %d: mp4 (4:2:0) needs an even size", d->opts.size);
    if (d->opts.stamp && d->opts.size < 32)
        return synth__fail(err, errlen, "--stamp needs --size 32 or more");
    return 0;
}

// All videos of the chosen splits, in order: train, val, test, pretrain.
static synth__item *synth__items(const synth_dataset *d, int64_t *count) {
    int64_t n = 0, at = 0;
    for (int s = 0; s < SYNTH_SPLITS; s++) n += synth_split_count(d, s);
    synth__item *items = calloc(n > 0 ? (size_t)n : 1, sizeof *items);
    if (!items) return NULL;
    for (int s = 0; s < SYNTH_SPLITS; s++) {
        int64_t m = synth_split_count(d, s);
        int *mo = malloc((size_t)(m > 0 ? m : 1) * sizeof(int)), *ap = malloc((size_t)(m > 0 ? m : 1) * sizeof(int));
        if (!mo || !ap) {
            free(mo); free(ap); free(items);
            return NULL;
        }
        synth_split_labels(d, s, mo, ap);
        for (int64_t i = 0; i < m; i++, at++) {
            synth__item *it = &items[at];
            it->split = s;
            it->index = i;
            it->motion = mo[i];
            it->appearance = ap[i];
            it->seed = synth_video_seed(d->seed, s, i);
            char name[17];
            synth_video_name(it->seed, name);
            snprintf(it->rel, sizeof it->rel, "%s/%s%s", synth__split_names[s], name,
                     vwrite_extension((vwrite_format)d->format));
        }
        free(mo);
        free(ap);
    }
    *count = n;
    return items;
}

static int synth__one(const synth_dataset *d, synth__item *it, uint8_t *rgb, synth_state *st,
                      char *e, size_t el) {
    if (synth_generate(&d->opts, it->seed, it->motion, it->appearance, &it->v, rgb, st, e, el))
        return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", d->out, it->rel);
    int S = d->opts.size;
    return vwrite_video((vwrite_format)d->format, path, rgb, d->opts.frames, S, S, e, el);
}

// OpenMP over videos (dynamic schedule); the first failure by index is reported.
static int synth__generate_all(const synth_dataset *d, synth__item *items, int64_t n,
                               synth_state *states, synth_progress_fn progress, void *ctx,
                               char *err, size_t errlen) {
    int64_t done = 0, first_bad = n;
    int stop = 0;
    size_t bytes = (size_t)d->opts.frames * d->opts.size * d->opts.size * 3;
#ifdef _OPENMP
    int nt = d->threads > 0 ? d->threads : omp_get_max_threads();
#else
    int nt = 1;
#endif
    (void)nt;
    SYNTH__OMP(omp parallel num_threads(nt))
    {
        uint8_t *rgb = malloc(bytes);
        char e[600];
        SYNTH__OMP(omp for schedule(dynamic))
        for (int64_t i = 0; i < n; i++) {
            int halt;
            SYNTH__OMP(omp atomic read)
            halt = stop;
            if (halt) continue;
            int rc = rgb ? synth__one(d, &items[i], rgb, states ? states + i * d->opts.frames : NULL, e, sizeof e)
                         : synth__fail(e, sizeof e, "out of memory (%zu bytes for one video)", bytes);
            SYNTH__OMP(omp critical(synth_dataset))
            {
                if (rc && i < first_bad) {
                    first_bad = i;
                    snprintf(err, errlen, "%s", e);
                    stop = 1;
                }
                done++;
                if (progress && !rc) progress(ctx, done, n);
            }
        }
        free(rgb);
    }
    return first_bad < n ? -1 : 0;
}

static FILE *synth__open(const char *out, const char *name, char *path, size_t plen, char *err,
                         size_t errlen) {
    snprintf(path, plen, "%s/%s", out, name);
    FILE *f = fopen(path, "w");
    if (!f) synth__fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static int synth__close(FILE *f, const char *path, char *err, size_t errlen) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return synth__fail(err, errlen, "error writing %s (disk full?)", path);
    return 0;
}

// "path label" lists (PySlowFast). which: 0 motion, 1 appearance, 2 no label.
static int synth__write_list(const synth_dataset *d, const synth__item *items, int64_t n, int split,
                             int which, const char *name, char *err, size_t errlen) {
    char path[4200];
    FILE *f = synth__open(d->out, name, path, sizeof path, err, errlen);
    if (!f) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (items[i].split != split) continue;
        if (which == 2) fprintf(f, "%s\n", items[i].rel);
        else fprintf(f, "%s %d\n", items[i].rel, which == 0 ? items[i].motion : items[i].appearance);
    }
    return synth__close(f, path, err, errlen);
}

static int synth__write_lists(const synth_dataset *d, const synth__item *items, int64_t n,
                              char *err, size_t errlen) {
    static const char *kinds[2] = {"motion", "appearance"};
    for (int s = SYNTH_TRAIN; s <= SYNTH_TEST; s++) {
        if (!synth_split_count(d, s)) continue;
        char name[64];
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s_%s.csv", synth__split_names[s], kinds[k]);
            if (synth__write_list(d, items, n, s, k, name, err, errlen)) return -1;
        }
        snprintf(name, sizeof name, "%s.csv", synth__split_names[s]);
        if (synth__write_list(d, items, n, s, d->kind, name, err, errlen)) return -1;
    }
    if (synth_split_count(d, SYNTH_PRETRAIN) &&
        synth__write_list(d, items, n, SYNTH_PRETRAIN, 2, "pretrain.csv", err, errlen))
        return -1;
    return 0;
}

static void synth__meta_row(FILE *f, const synth_dataset *d, const synth__item *it) {
    const synth_video *v = &it->v;
    fprintf(f, "%s,%s,%lld,%016llx,%d,%s,%d,%s,%s,%s,%d,%.4f,%.4f,%.4f,%.2f,%.4f,%.4f,%.4f,",
            it->rel, synth__split_names[it->split], (long long)it->index, (unsigned long long)v->seed,
            v->motion, synth__motion_names[v->motion], v->appearance, synth__shape_names[v->target.shape],
            synth__texture_names[v->target.texture], synth__texture_names[v->bg.texture], v->camouflage,
            v->contrast, exp(v->log_size), v->d, v->axis / SYNTH__DEG, v->rate, v->onset, v->speed);
    fprintf(f, "%.4f,%.4f,%.4f,%.4f,%.4f,%.2f,%d,%d,%.3f,%.3f,%.3f,%d,%d\n", v->anchor[0],
            v->anchor[1], v->offset[0], v->offset[1], v->scale_offset, v->angle0 / SYNTH__DEG,
            v->n_distractors, v->occluder, v->shake * d->opts.size, v->noise, v->grad_amp,
            d->opts.hard, v->attempts);
}

static int synth__write_meta(const synth_dataset *d, const synth__item *items, int64_t n, char *err,
                             size_t errlen) {
    char path[4200];
    FILE *f = synth__open(d->out, "meta.csv", path, sizeof path, err, errlen);
    if (!f) return -1;
    fprintf(f, "path,split,index,seed,motion,motion_name,appearance,shape,texture,background,"
               "camouflage,contrast,size,d,axis_deg,rate,onset,speed,anchor_x,anchor_y,offset_x,"
               "offset_y,scale_offset,angle0_deg,distractors,occluder,shake_px,noise,grad_amp,hard,"
               "attempts\n");
    for (int64_t i = 0; i < n; i++) synth__meta_row(f, d, &items[i]);
    return synth__close(f, path, err, errlen);
}

static int synth__write_states(const synth_dataset *d, const synth__item *items, int64_t n,
                               const synth_state *st, char *err, size_t errlen) {
    char path[4200];
    FILE *f = synth__open(d->out, "states.csv", path, sizeof path, err, errlen);
    if (!f) return -1;
    fprintf(f, "path,frame,x,y,log_scale,angle,visible\n");
    int T = d->opts.frames;
    for (int64_t i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            const synth_state *s = &st[i * T + t];
            fprintf(f, "%s,%d,%.5f,%.5f,%.5f,%.5f,%.3f\n", items[i].rel, t, s->x, s->y,
                    s->log_scale, s->angle, s->visible);
        }
    return synth__close(f, path, err, errlen);
}

int synth_write_dataset(const synth_dataset *d, synth_progress_fn progress, void *ctx, char *err,
                        size_t errlen) {
    if (synth_check_dataset(d, err, errlen)) return -1;
    if (vwrite_mkdirs(d->out, err, errlen)) return -1;
    for (int s = 0; s < SYNTH_SPLITS; s++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", d->out, synth__split_names[s]);
        if (synth_split_count(d, s) && vwrite_mkdirs(dir, err, errlen)) return -1;
    }
    int64_t n = 0;
    synth__item *items = synth__items(d, &n);
    synth_state *st = d->dump_states ? malloc((size_t)(n > 0 ? n : 1) * d->opts.frames * sizeof *st) : NULL;
    int rc = 0;
    if (!items || (d->dump_states && !st))
        rc = synth__fail(err, errlen, "out of memory for the list of %lld videos", (long long)n);
    if (!rc) rc = synth__generate_all(d, items, n, st, progress, ctx, err, errlen);
    if (!rc) rc = synth__write_lists(d, items, n, err, errlen);
    if (!rc) rc = synth__write_meta(d, items, n, err, errlen);
    if (!rc && st) rc = synth__write_states(d, items, n, st, err, errlen);
    free(st);
    free(items);
    return rc;
}
