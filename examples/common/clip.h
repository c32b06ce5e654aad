// examples/common/clip.h: clip sampling, spatial augmentation and temporal shuffles
// for SCVRL / CVRL pretraining and for evaluation.
//
// Randomness. Every random value is a pure function of (seed, stream, index) through
// the counter generator that scvrl.h exports (splitmix64 finaliser `mix`):
//   rng_u64(seed, stream, i)     = mix(mix(seed ^ mix(stream)) + i)
//   rng_uniform(seed, stream, i) = (rng_u64 >> 40) * 2^-24           in [0, 1)
// Streams come from clip_stream(epoch, sample, purpose), one purpose per kind of draw
// (clip starts, jitter, each of the three augmentations, shuffles), and within a stream
// each parameter has a fixed counter slot. So nothing depends on the thread count, on
// call order or on which other options are on (turning blur off never changes a crop).
//
// Clip sampling (pretraining). A clip is T frames `stride` apart (stride in native frames,
// or in frames at target_fps when that is set). Clip A: a start drawn from the window
// distribution (targeted sampling, motion.h) or uniformly, then temporal jitter: an integer
// offset drawn once per sample, uniform in [-jitter, +jitter] frames (default 4 = the
// default stride, so +-4 frames for 16x4), clamped to the valid starts. Clip B: a start uniform
// over the valid starts of the same video, independent of A. Valid starts are
// [0, n_frames - span] with span = the frames a clip covers ((T-1)*stride + 1); a video
// shorter than a clip gets start 0 and its last frame repeats (clip_indices clamps).
//
// Evaluation. K temporal views: view k of K starts at round((k + 0.5) * (n_frames - span)
// / K), the centres of K equal segments of the valid starts (K = 1: the centre clip).
// Spatial views: short side resized to `short_side`, then a crop_h x crop_w crop centred
// on the short side and, along the long side, view j of n at offset round(j * (L - crop) /
// (n - 1)) (n = 3: left / centre / right, or top / centre / bottom; n = 1: centre).
//
// Spatial augmentation (clip_aug_draw + clip_augment), the same parameters for every frame
// of the clip, applied in this fixed order (SimCLR / CVRL):
//   1. random resized crop (torchvision RandomResizedCrop: 10 tries of area fraction in
//      [scale_min, scale_max] and log-uniform aspect ratio in [ratio_min, ratio_max], else
//      the centre crop of clamped ratio; integer box) resampled to out_h x out_w with the
//      triangle (bilinear) filter, antialiased when shrinking (as torchvision's
//      antialias=True / PIL), edges clamped;
//   2. horizontal flip with p_flip (0 turns it off);
//   3. colour jitter with p_jitter: brightness, contrast, saturation factors uniform in
//      [max(0, 1 - s), 1 + s], hue shift uniform in [-hue, hue] (hue 0: off), applied in
//      a random order drawn per clip as torchvision's ColorJitter does (jitter_random_order
//      = 0: the fixed order brightness, contrast, saturation, hue). Contrast blends with
//      the mean grey level of each frame (torchvision on a [T, C, H, W] video);
//   4. grayscale with p_gray (ITU-R 601: 0.2989 R + 0.587 G + 0.114 B, to all 3 channels);
//   5. Gaussian blur with p_blur, sigma uniform in [sigma_min, sigma_max], kernel radius
//      ceil(3 sigma), reflect padding (torchvision GaussianBlur);
//   6. normalisation x = (v - mean[c]) / std[c] with v in [0, 1] (0.45, 0.225).
// Values are clamped to [0, 1] after each colour operation, as torchvision does on floats.
//
// Temporal shuffles. A clip of T frames is cut into T/g groups of g consecutive frames
// (group k = frames [k*g, (k+1)*g)); a shuffle permutes whole groups. perm[k] is the input
// group that lands at output group k, so output frame k*g + j = input frame perm[k]*g + j.
#ifndef SCVRL_CLIP_H
#define SCVRL_CLIP_H
#include <stddef.h>
#include <stdint.h>

// ---- randomness -------------------------------------------------------------------------

// Purposes for clip_stream: one per kind of draw.
#define CLIP_PURPOSE_START_A 0x41A7C3E1D2B4F601ull  // window and start of clip A
#define CLIP_PURPOSE_JITTER  0x1B2D3F405162738Bull  // temporal jitter of clip A
#define CLIP_PURPOSE_START_B 0x8C9DAEBFC0D1E2F3ull  // start of clip B
#define CLIP_PURPOSE_AUG_A   0x5E6F708192A3B4C5ull  // augmentation parameters of x_a
#define CLIP_PURPOSE_AUG_P   0xD6E7F8091A2B3C4Dull  // augmentation parameters of x_p
#define CLIP_PURPOSE_AUG_PV  0x2E3F405162738495ull  // augmentation parameters of x_pv
#define CLIP_PURPOSE_SHUFFLE 0x96A7B8C9DAEBFC0Dull  // shuffle permutations of x_p

// stream = mix(epoch * 0x100000001B3 + sample) ^ purpose.
uint64_t clip_stream(uint64_t epoch, uint64_t sample, uint64_t purpose);
// The generator above (same values as scvrl_rng_u64 / scvrl_rng_uniform).
uint64_t clip_rng_u64(uint64_t seed, uint64_t stream, uint64_t i);
float clip_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i);

// ---- clip sampling ----------------------------------------------------------------------

typedef struct clip_sample_opts {
    int T;             // frames per clip (16)
    int stride;        // frame step (4)
    int jitter;        // temporal jitter of clip A: uniform integer offset in [-jitter,
                       // +jitter] frames (default 4, the default stride; 0 turns it off)
    double target_fps; // > 0: stride counts frames at this rate (a 25 fps video with
                       // target 30 steps 4 * 25/30 native frames); <= 0: native frames (0)
} clip_sample_opts;

clip_sample_opts clip_sample_defaults(void);

// A distribution over clip starts: p == NULL (or n <= 0) means uniform starts; otherwise
// window i covers frames [floor(i * win_frames), floor((i+1) * win_frames)) (the last
// window runs to the end of the video) and is drawn with probability p[i].
typedef struct clip_windows {
    int n;              // number of windows
    double win_frames;  // frames per window (fps for 1-second windows)
    const double *p;    // [n] probabilities (sum 1)
} clip_windows;

// Frames a clip covers, first to last inclusive: index T-1's offset + 1.
int64_t clip_span(const clip_sample_opts *o, double fps);
// idx[t] = start + round(t * step), clamped to [0, n_frames - 1]; idx: [T].
// Returns how many indices were clamped at the end.
int clip_indices(const clip_sample_opts *o, double fps, int64_t n_frames, int64_t start,
                 int64_t *idx);
// Window index for u in [0, 1) by inverse CDF of p[0..n) (zero-probability windows are
// never drawn).
int clip_draw_window(const double *p, int n, double u);
// One clip start: uniform over [0, max(0, n_frames - span)] when w is NULL or w->p is
// NULL; else window i ~ p, a centre frame c uniform in window i, start = c - (span-1)/2
// clamped to the valid starts. *win_out (may be NULL) gets the window (-1: uniform).
// Uses counters 0 and 1 of (seed, stream).
int64_t clip_draw_start(int64_t n_frames, int64_t span, const clip_windows *w,
                        uint64_t seed, uint64_t stream, int *win_out);

typedef struct clip_pretrain_draw {
    int64_t start_a;   // first frame of clip A (after jitter)
    int64_t start_b;   // first frame of clip B
    int win_a;         // window drawn for A (-1: uniform)
    int jitter_a;      // jitter offset drawn for A, in frames (before clamping)
} clip_pretrain_draw;

// Draws clips A and B of one pretraining sample (seed, epoch, sample index). w may be
// NULL (uniform A). Returns 0, or -1 with a message for bad arguments.
int clip_sample_pretrain(const clip_sample_opts *o, int64_t n_frames, double fps,
                         const clip_windows *w, uint64_t seed, uint64_t epoch,
                         uint64_t sample, clip_pretrain_draw *out, char *err, size_t errlen);
// Start of temporal view `view` of n_views (see the top); n_views = 1: centre clip.
int64_t clip_eval_start(const clip_sample_opts *o, int64_t n_frames, double fps, int view,
                        int n_views);

// ---- spatial augmentation ---------------------------------------------------------------

typedef struct clip_aug_opts {
    int out_h, out_w;              // output size (224 x 224)
    float scale_min, scale_max;    // crop area fraction (0.08, 1.0)
    float ratio_min, ratio_max;    // crop aspect ratio w/h (3/4, 4/3)
    float p_flip;                  // horizontal flip (0.5; 0 = off)
    float p_gray;                  // grayscale (0.2)
    float p_blur;                  // Gaussian blur (0.5)
    float sigma_min, sigma_max;    // blur sigma in output pixels (0.1, 2.0)
    float p_jitter;                // colour jitter (0.8)
    float brightness, contrast, saturation, hue;  // strengths (0.4, 0.4, 0.4, 0)
    int jitter_random_order;       // 1: random order per clip (torchvision); 0: b, c, s, h
    float mean[3], std[3];         // normalisation (0.45, 0.225)
} clip_aug_opts;

clip_aug_opts clip_aug_defaults(void);

// The parameters of one augmentation; clip_augment applies them to every frame.
typedef struct clip_aug_params {
    double x0, y0, bw, bh;  // source box in input pixels (left, top, width, height)
    int out_h, out_w;       // output size
    int flip;               // 1: mirror horizontally
    int jitter;             // 1: apply the colour jitter below
    float brightness, contrast, saturation, hue;  // factors (1, 1, 1, 0: identity)
    int order[4];           // jitter op order: 0 brightness, 1 contrast, 2 saturation, 3 hue
    int gray;               // 1: grayscale
    float blur_sigma;       // > 0: Gaussian blur with this sigma
    float mean[3], std[3];  // normalisation
} clip_aug_params;

// Draws augmentation parameters for input frames of H x W from counters of (seed, stream).
int clip_aug_draw(const clip_aug_opts *o, int H, int W, uint64_t seed, uint64_t stream,
                  clip_aug_params *p, char *err, size_t errlen);
// The three views of one pretraining sample: p[0] x_a and p[1] x_p (both for the frames
// of A), p[2] x_pv (for B), from purposes AUG_A, AUG_P, AUG_PV.
int clip_aug_draw_views(const clip_aug_opts *o, int H, int W, uint64_t seed, uint64_t epoch,
                        uint64_t sample, clip_aug_params p[3], char *err, size_t errlen);
// Evaluation transform, no randomness: resize the short side to short_side, crop
// crop_h x crop_w at spatial view `view` of n_views (see the top), flip only if asked,
// normalise with 0.45 / 0.225. Returns -1 with a message if the crop does not fit.
int clip_eval_params(int H, int W, int short_side, int crop_h, int crop_w, int view,
                     int n_views, int flip, clip_aug_params *p, char *err, size_t errlen);
// in: uint8 [T][H][W][3] RGB -> out: float [3][T][p->out_h][p->out_w].
// Frames run in parallel with OpenMP (threads <= 0: the OpenMP default; 1: serial); the
// result does not depend on the thread count. Returns 0, or -1 with a message.
int clip_augment(const clip_aug_params *p, const uint8_t *in, int T, int H, int W,
                 float *out, int threads, char *err, size_t errlen);

// ---- temporal shuffles ------------------------------------------------------------------

// n_t distinct permutations of the T/g groups, none the identity, drawn uniformly without
// replacement from (seed, stream): perms_out: [n_t][T/g]. Returns NULL, or a message (and
// writes nothing) when T % g != 0 or (T/g)! - 1 < n_t or an argument is out of range.
const char *clip_shuffle_perms(uint64_t seed, uint64_t stream, int T, int g, int n_t,
                               int *perms_out);
// A warning (NULL when none) for shuffling groups of g frames in front of a temporal
// stem with kernel k_t, stride s_t and padding pad_t: g not a multiple of k_t, or some
// stem window of frames [o*s_t - pad_t, o*s_t - pad_t + k_t) straddling a group seam, lets
// the stem see the cut.
const char *clip_shuffle_kernel_warning(int T, int g, int k_t, int s_t, int pad_t);
// frames_out[k*g + j] = perm[k]*g + j: the input frame at each output frame; [T].
void clip_shuffle_frames(const int *perm, int T, int g, int *frames_out);
// out[c][t] = in[c][frames[t]]: in, out: float [C][T][hw] (not aliased).
void clip_permute_frames(const float *in, int C, int T, int64_t hw, const int *frames,
                         float *out);

// ---- clip modes (the validity gates of SYNTH.md section 7) --------------------------------
// How the T sampled frames of a clip are arranged before the spatial transform, the same for
// training and test clips:
//   ordered   as sampled (frames t = 0..T-1);
//   static    the clip's centre frame, sampled frame T/2 (for even T the later of the two
//             middle ones), repeated T times: no motion at all (gate G1);
//   shuffled  all T frames permuted by one fixed non-identity permutation per video, drawn
//             from (seed, the file name of the video's path, i.e. after the last '/'),
//             so every run and every clip of the video meets the same order (gate G2).
#define CLIP_PURPOSE_MODE 0x3C5A7E9102B4D6F8ull  // the permutation of shuffled clips

typedef enum { CLIP_ORDERED = 0, CLIP_STATIC = 1, CLIP_SHUFFLED = 2 } clip_mode;
// "ordered", "static", "shuffled" (NULL for another value).
const char *clip_mode_name(int mode);
// The mode named s (-1 when s names none).
int clip_mode_parse(const char *s);
// frames_out[t] = the sampled frame shown at position t, for mode and the video at path;
// [T]. Returns NULL, or a message (T < 2 for shuffled, T > 1024, unknown mode).
const char *clip_mode_frames(int mode, uint64_t seed, const char *path, int T, int *frames_out);

#endif
