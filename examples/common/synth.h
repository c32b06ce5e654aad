// examples/common/synth.h: the synthetic motion/appearance benchmark of
// ../shared/SYNTH.md (sections 2-5 and 9) as a library.
//
// A video is a pure function of (video seed, motion class, appearance class,
// options): synth_sample draws its latents (with the rejection rule),
// synth_states gives the per-frame target states and synth_render the uint8
// RGB frames [T][S][S][3]. There is no sequential RNG state: per-video
// parameters come from a counter stream keyed by the video seed, per-frame
// nuisances from frame seed = splitmix64(video seed + base-time index), pixel
// noise from a counter hash of (frame seed, x, y). So bytes never depend on the
// thread count, the order of generation or reversal.
//
// Time: the evaluation window is W = round(2T/3) native frames, centred in the
// T-frame video; frame t sits at u = (t - (T-1)/2) / W, so the window is
// u in [-1/2, 1/2] and the video u in about [-3/4, 3/4]. Space: fractions of S.
//
// Motion classes (pairs 2k / 2k+1; pairs 0-6: class 2k+1 is class 2k evaluated
// at -u, i.e. exactly its frame reversal):
//   0 left        1 right       (constant velocity within +-20 deg of horizontal)
//   2 up          3 down
//   4 rotate cw   5 rotate ccw  (120-300 deg per window, <= 15 deg per native frame)
//   6 approach    7 recede      (log-scale ramp ln 1.6 .. ln 2.4 per window)
//   8 speed up    9 slow down   (v(u) = vbar (1 + 1.6 u), clamped at 0)
//  10 start      11 stop        (still until u0 in U[-0.2, 0.2])
//  12 pan left   13 pan right   (the world, target included, shifts by d)
//  14 approach->recede  15 recede->approach (log-scale tent, turn at 0 +- 0.05)
//  16 oscillate  17 sweep       (diagonal axis: 2 triangle cycles vs one pass)
// Matched marginals: every class's target position is anchor + static offset
// + own path. The offset fills the class's along-axis variance up to that of a
// constant-velocity mover and adds, across the axis, the position at a random
// time of a perpendicular mover; classes that hold position draw the axis from
// a moving class. Log-scale likewise (from an approach/recede ramp), angle is
// uniform. Per-frame x, y, log-scale and angle then agree across all classes to
// KS D ~ 0.02 at 10,000 videos per class (tests/test-synth.c checks 400).
// Appearance class = 4 * shape + texture family; shape: ellipse, rounded box,
// triangle, 5-point star; texture: checker, stripes, dots, value noise.
//
// --hard levels (synth_opts.hard) scale noise, distractors and camouflage:
//   level  pixel noise (/255)  shake (px@112)  distractors  camouflage  contrast
//   0      U[1, 4]             U[0, 0.5]       0-1, slower  10%         U[0.15, 0.45]
//   1      U[2, 10]            U[0, 1.2]       0-3          20%         U[0.08, 0.45]  (SYNTH.md)
//   2      U[4, 16]            U[0.4, 2]       1-4, faster  40%         U[0.05, 0.30]
#ifndef SCVRL_SYNTH_H
#define SCVRL_SYNTH_H
#include <stddef.h>
#include <stdint.h>

#define SYNTH_MOTION_CLASSES 18
#define SYNTH_APPEARANCE_CLASSES 16
#define SYNTH_MAX_DISTRACTORS 4

enum { SYNTH_TRAIN = 0, SYNTH_VAL = 1, SYNTH_TEST = 2, SYNTH_PRETRAIN = 3, SYNTH_SPLITS = 4 };
enum { SYNTH_KIND_MOTION = 0, SYNTH_KIND_APPEARANCE = 1 };
enum { SYNTH_JPG = 0, SYNTH_MP4 = 1 };  // same values as vwrite_format

typedef struct {
    int size;    // S: frames are S x S pixels (16..1024, even for mp4); default 64
    int frames;  // T: frames per video (6..4096); default 24 (window 16)
    int hard;    // difficulty 0, 1 (default, SYNTH.md section 2) or 2
    int stamp;   // 1: write the frame index as a barcode (leaks order: tests only)
} synth_opts;

// One textured shape's look. Texture coordinates are the object's local
// coordinates (unit = its radius), rotated by tex_angle.
typedef struct {
    int shape, texture;  // 0..3 each (see above); texture 4 = fBm, 5 = gradient (backgrounds)
    float aspect;        // ellipse / box minor-axis ratio, star inner radius ratio
    float period, duty;  // texture period (local units) and stripe duty / dot radius ratio
    float tex_angle;     // texture orientation, radians
    float phase[2];      // texture offset (local units)
    uint32_t key;        // value-noise lattice key
    float col[2][3];     // the two colours, RGB in [0, 1]
} synth_look;

typedef struct {
    synth_look look;
    float size;          // diameter, fraction of S
    float pos[2];        // world position at u = 0, fraction of S
    float vel[2];        // fraction of S per window
    float angle0, spin;  // radians, radians per window
} synth_distractor;

// All latents of one video (written to meta.csv).
typedef struct {
    uint64_t seed;            // video seed
    int motion, appearance;   // labels
    int attempts;             // rejection-sampling attempts (1: first accepted)
    int frames, window;       // T and W
    synth_look target;
    float log_size;           // ln(target diameter / S) at the reference time
    float d;                  // displacement per window (fraction of S)
    float axis;               // motion axis, radians (image coordinates, y down)
    float rate;               // pair 2: rotation (rad/window); else log-scale change
                              // per window (pairs 3, 7; others: its matched-marginal law)
    float onset;              // pair 5: u0; pair 7: turn time; pair 8: phase / sweep sign
    float speed;              // pairs 4, 5: speed (fraction of S per window)
    float anchor[2];          // centre of the target's frame positions
    float offset[2];          // matched-marginal static offset (fraction of S)
    float scale_offset;       // matched-marginal static log-scale offset
    float angle0;             // target angle at u = 0 (radians)
    float mean[3];            // frame means of the class's own x, y, log-scale paths
    synth_look bg;            // background (texture 0..5), world coordinates
    float bg_origin[2];       // world origin offset (fraction of S)
    int camouflage;           // 1: the background uses the target's texture family
    float contrast;           // signed luma difference target - background
    int n_distractors;
    synth_distractor distractor[SYNTH_MAX_DISTRACTORS];
    int occluder;             // 1: a static bar in front
    float occ_angle, occ_pos[2], occ_width, occ_col[3];
    float shake;              // i.i.d. per-frame shake sigma (fraction of S)
    float grad_amp, grad_dir; // static illumination gradient (+-amp at the edges)
    float noise;              // Gaussian pixel noise sigma, in 1/255
} synth_video;

// Per-frame target state (--dump-states; the KS test of matched marginals).
typedef struct {
    float x, y;       // target centre in the frame, fraction of S (without shake)
    float log_scale;  // ln(target diameter / S)
    float angle;      // radians in [0, 2 pi)
    float visible;    // share of the target inside the frame and not occluded
} synth_state;

uint64_t synth_splitmix64(uint64_t x);
// Video seed = splitmix64(global ^ split key ^ index * phi).
uint64_t synth_video_seed(uint64_t global, int split, int64_t index);
// Opaque file name (16 hex digits + NUL) from the video seed alone.
void synth_video_name(uint64_t video_seed, char name[17]);
const char *synth_motion_name(int motion);          // "left", ..., or "?"
const char *synth_split_name(int split);            // "train", "val", "test", "pretrain"
// Window length for T frames: round(2T/3).
int synth_window(int frames);
// Draw all latents (rejection rule of SYNTH.md section 2 included). Returns 0,
// or -1 with a message in err when the options or labels are out of range.
int synth_sample(const synth_opts *o, uint64_t video_seed, int motion, int appearance,
                 synth_video *v, char *err, size_t errlen);
// Target states of every frame: st[T].
void synth_states(const synth_opts *o, const synth_video *v, synth_state *st);
// Render: rgb[T][S][S][3]. Allocates one float frame ([S][S][3]) per call.
// Returns 0, or -1 when out of memory.
int synth_render(const synth_opts *o, const synth_video *v, uint8_t *rgb);
// synth_sample + synth_render (+ synth_states when st != NULL).
int synth_generate(const synth_opts *o, uint64_t video_seed, int motion, int appearance,
                   synth_video *v, uint8_t *rgb, synth_state *st, char *err, size_t errlen);

// Frame-index barcode: 16 bits + 4 check bits in black/white blocks of at
// least 4x4 px in the top-left corner; robust to JPEG q95 and MPEG-4 q2.
// frame: [H][W][3]. synth_read_stamp returns the index, or -1 when no valid
// stamp is there. Frames must be at least 32 x 16 pixels.
void synth_stamp(uint8_t *frame, int height, int width, int index);
int synth_read_stamp(const uint8_t *frame, int height, int width);

// ---- whole data sets (examples/synth) ----
// Layout under out: SPLIT/NAME.mp4 or SPLIT/NAME/000001.jpg ..., with NAME 16
// hex digits of a hash of the video seed; CSV paths are relative to out (use
// out as PySlowFast's PATH_PREFIX). Files: {train,val,test}_{motion,appearance}.csv
// ("path label"), train.csv / val.csv / test.csv (copies for kind),
// pretrain.csv (paths only), meta.csv (header + all latents), states.csv
// (dump_states: path,frame,x,y,log_scale,angle,visible).
typedef struct {
    const char *out;      // output folder (created)
    synth_opts opts;
    int kind;             // SYNTH_KIND_MOTION or SYNTH_KIND_APPEARANCE
    int classes;          // classes of kind used (2..18 or 2..16); 0: all
    int per_class;        // videos per class in train, val and test each
    int pretrain;         // unlabelled pretraining videos (own seed stream)
    int splits;           // bit mask of 1 << SYNTH_TRAIN / VAL / TEST
    uint64_t seed;        // global seed
    int format;           // SYNTH_MP4 or SYNTH_JPG
    int threads;          // OpenMP threads; 0: the OpenMP default
    int dump_states;      // 1: write states.csv
} synth_dataset;

// 0 when d is valid and this build can write d->format, else -1 and why.
int synth_check_dataset(const synth_dataset *d, char *err, size_t errlen);
typedef void (*synth_progress_fn)(void *ctx, int64_t done, int64_t total);
// Writes the whole data set; progress (may be NULL) is called from worker
// threads (serialised) after each video. Returns 0, or -1 with a message.
int synth_write_dataset(const synth_dataset *d, synth_progress_fn progress, void *ctx,
                        char *err, size_t errlen);
// Videos in split for d: classes * per_class for train/val/test (0 when the
// split is not in d->splits), d->pretrain for SYNTH_PRETRAIN.
int64_t synth_split_count(const synth_dataset *d, int split);
// Labels of every video of split, from balanced decks shuffled by a counter
// hash of (seed, split): the kind's labels are exactly balanced, the other
// kind's cycle through all its classes (balanced up to one). Pretrain videos
// get labels the same way (only meta.csv shows them). motion, appearance:
// [synth_split_count(d, split)].
void synth_split_labels(const synth_dataset *d, int split, int *motion, int *appearance);
#endif
