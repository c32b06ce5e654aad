// examples/common/flow.h: the flow oracle of the synthetic benchmark's validity gates (SYNTH.md
// section 7, G3 cross leak and G4 learnable): hand-made motion features of a video's centre
// window from dense optical flow, for the standardised logistic-regression probe of probe.h.
//
// Flow. motion_flow of motion.h (pyramidal dense Lucas-Kanade) between consecutive frames of
// the window, on grey frames g = (0.299 R + 0.587 G + 0.114 B) / 255, frame t+1 first scaled to
// frame t's mean grey level (the benchmark's i.i.d. per-frame gain would otherwise show as flow
// wherever the image has a gradient); (u, v) in pixels with frame_t(x, y) ~ frame_{t+1}(x + u, y + v);
// x to the right, y down.
//
// Confidence. Dense flow is only meaningful where the image has texture in two directions
// (flat regions, stripes and lone edges get what the coarser pyramid levels or the aperture
// problem leave there). Every statistic below therefore weighs pixel k by
//   c_k = max(0, lmin_k - median over the frame of lmin),
// lmin the smaller eigenvalue of the structure tensor of frame t (central-difference gradients,
// products blurred by a Gaussian of sigma 2 px): textured pixels count, the frame's noise floor
// and flat areas do not.
//
// Per pair of frames (t, t+1), FLOW_PAIR_DIM = 58 values (pixel coordinates x, y; sums over every
// pixel, weighted by c):
//   0, 1    global motion g: median of u and of v over every pixel, unweighted (camera: pans and shake;
//           the background is most of the frame, while the confident pixels can be mostly the target's)
//   2, 3    mean residual flow: weighted mean of r = (u, v) - g
//   4       motion energy: weighted mean |r|
//   5, 6    divergence and curl of r about its motion centre: the least-squares affine field
//           r(x) ~ m + A (x - x0) with weights c |r|^2, x0 their centroid; div = A_xx + A_yy,
//           curl = A_yx - A_xy (dv/dx - du/dy); 0 where the weighted second moments are
//           degenerate. A rotation by theta per frame gives curl 2 theta, a zoom by s div 2 (s - 1).
//   7..24   3x3 grid: weighted mean r_u, r_v of cell (i, j), rows i and columns j of
//           [floor(k h / 3), floor((k+1) h / 3)), at 7 + 2 (3 i + j) and + 1 (0 if no weight)
//   25..42  3x3 grid: divergence and curl of the affine fit of r within cell (i, j), weights c
//           (not |r|^2), at 25 + 2 (3 i + j) and + 1: a rotating or zooming target keeps its
//           sign in the cells it covers, where one fit over the frame dilutes it among the
//           distractors and the flow errors of the background
//   43, 44  mean flow of the moving region: the offset m of the motion-weighted affine fit of 5, 6 (the mean
//           of r under weights c |r|^2, so the target's flow, not the textured background's ~0)
//   45      its speed |m|: pairs 4, 5 and 8 of the benchmark draw their direction at random (uniform, or one
//           of four diagonals), so a linear model sees them only through a speed; the frame-wide energy (4)
//           is the background's flow noise more than the target's speed (a 12-20 px target at 64 px)
//   46, 47  |m_x|, |m_y|: its direction up to sign, for the same classes (sweep runs along a random diagonal,
//           left/right and up/down near an axis: a linear model needs the unsigned components)
//   48..51  direction-normalised track (flow_track_features, over the whole window): the moving region's flow m
//           along and across its principal axis e (the major eigenvector of sum_t m m^T, signed along the
//           net displacement sum_t m), then a cos 4 theta and a sin 4 theta of that axis's angle theta (the same
//           in every pair), a its anisotropy (l1 - l2) / (l1 + l2): speed profiles (speed up, start, oscillate's
//           sign changes) become linear in the along component whatever the direction, and cos 4 theta tells
//           near-axis paths (+1) from diagonal ones (-1)
//   52      the along component divided by the window's RMS flow |m| (0 when that is under 1e-3 px): the speed
//           profile's shape without its scale (speed up's ramp against start's step, whatever the speed)
//   53      the cumulative along component up to this pair over the window's sum of |along|: the path's
//           progress in time (a smoother profile than the per-pair speed)
//   54, 55  divergence and curl of r fitted (weights c, as 25..42) in a square window of half-size 0.15 max(h, w)
//           around the moving region's centre (the centroid of the weights of 5, 6): the target's own zoom and
//           rotation, where the frame-wide fit mixes in the background's flow noise and the 3x3 cells cut
//           the target wherever it straddles them
//   56, 57  moving share: the weighted share (weights c) of pixels whose |r| exceeds 0.25 px and 0.5 px: near 0
//           while the target stands still (start's and stop's still phases), where the moving region's
//           flow (43, 44) is whatever else moves, and growing with the target's speed
// (a median, not the mean, for g, so that a small moving target leaves the camera term).
//
// Over time. The window's P = len - 1 pairs in time order, features [P][FLOW_PAIR_DIM]; with bins > 0
// averaged into `bins` equal time bins (pair p goes to bin floor(p * bins / P)): [bins][FLOW_PAIR_DIM].
//
// Window. The evaluation window of the synthetic benchmark: W = round(2 n / 3) native frames
// (synth_window) centred in an n-frame video, first frame (n - W + 1) / 2 (frames 4..19 of 24);
// `window` > 0 sets W (clamped to n).
#ifndef SCVRL_FLOW_H
#define SCVRL_FLOW_H
#include <stddef.h>
#include <stdint.h>
#include "motion.h"

#define FLOW_PAIR_DIM 58

typedef struct {
    int window;             // frames of the centre window (0: round(2 n / 3), the benchmark's)
    int bins;               // time bins (0: every pair, its own row)
    motion_flow_opts flow;  // dense flow (motion_flow_defaults)
} flow_opts;

flow_opts flow_defaults(void);

// First frame and length of the centre window of an n-frame video (len >= 2 unless n < 2).
void flow_window(int64_t n_frames, int window, int64_t *start, int *len);
// Fills values 48..53 of the P pairs' features f [P][FLOW_PAIR_DIM] from their 43, 44 (see above).
void flow_track_features(float *f, int P);

// Feature width for a window of len frames: (bins or len - 1) * FLOW_PAIR_DIM.
int flow_dim(const flow_opts *o, int len);

// The confidence c of frame I0 [h][w] (grey): conf [h][w] out; scratch: float [4 * h * w].
void flow_confidence(const float *I0, int h, int w, float *conf, float *scratch);
// The FLOW_PAIR_DIM values of the flow u, v: float [h][w] from grey frame I0 [h][w] to the next ->
// out [FLOW_PAIR_DIM]. scratch: float [5 * h * w]. Needs h, w >= 3.
void flow_pair_features(const float *I0, const float *u, const float *v, int h, int w, float *scratch,
                        float *out);

// Features of len consecutive frames rgb: uint8 [len][h][w][3] -> out [flow_dim(o, len)].
// Returns 0, or -1 with a message (sizes, memory).
int flow_clip_features(const uint8_t *rgb, int len, int h, int w, const flow_opts *o, float *out,
                       char *err, size_t errlen);

// Features of the centre window of the video (or frame folder) at path: reads the window at
// native size and calls flow_clip_features. *dim gets the width; out must hold
// flow_dim(o, len) floats (len from flow_window; at most FLOW_MAX_DIM). 0, or -1 with a
// message naming the file.
#define FLOW_MAX_DIM (FLOW_PAIR_DIM * 1024)
int flow_video_features(const char *path, const flow_opts *o, float *out, int *dim, char *err,
                        size_t errlen);

#endif
