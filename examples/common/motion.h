// examples/common/motion.h: dense optical flow, the flow-edge motion index of a video and
// targeted clip sampling (SCVRL, PAPER.md "Targeted sampling").
//
// Flow. Pyramidal dense Lucas-Kanade (coarse to fine) on grayscale float frames: a
// Gaussian pyramid (5-tap binomial blur, factor 2, coarsest side >= 12 px); per level the
// flow upsampled from the level above, then `iters` Gauss-Newton steps: warp frame 1 by the
// current flow (bilinear), solve the 2x2 normal equations of brightness constancy summed
// over a Gaussian window (sigma win_sigma) with the gradient of frame 0 (central
// differences) and a small Tikhonov term that only damps textureless pixels, and add the
// increment (clamped to 2 px per step); a 3x3 median filter of the flow closes each level.
// Flow u, v is in pixels: frame0(x, y) ~ frame1(x + u, y + v).
//
// Motion index. Frames are read (through the caller's callback) at an analysis size whose
// short side is short_side (128; smaller videos keep their size), aspect kept, and turned
// into grey (0.299 R + 0.587 G + 0.114 B). For each pair of consecutive frames (t, t+1):
// the flow, its magnitude |f|, the Sobel gradient magnitude of |f| (3x3, unnormalised as
// OpenCV's Sobel, on interior pixels), and e_t = the median of the top_k largest values.
// "Top 4k" is the paper's 4000 values at 320 x 240, scaled to the analysis frame: top_k =
// 4000 * h * w / (320 * 240) (about 1140 at 128 x 171) unless set. Windows
// are 1 second: window i holds the pairs t in [floor(i * fps), floor((i+1) * fps)), and
// a last window shorter than half a second is merged into the one before it (it runs to
// the end of the video). m_i = median of e_t over the window's pairs (0 if it has none).
// With frame_step s > 1 only every s-th pair of each window is used (faster).
//
// Scale. m is in analysis pixels per frame (Sobel unnormalised), so it grows with the
// analysis size and with sharper flow. Measured on real videos at short side 112 (OpenCV's
// box.mp4 and vtest.avi): m = 0.1 .. 0.6 with top_k 4000 and 0.3 .. 2.4 with top_k 800,
// where beta = 5 gives a nearly uniform p; a 40-px square moving 1 px/frame in a 96x128
// frame gives m ~ 1.7 (top_k 500). Choose beta against these figures.
//
// Targeted sampling. p_i = softmax(m_i / beta) (beta = 5; beta = INFINITY: uniform). A clip
// start is drawn by picking window i with probability p_i and a clip centre uniform in the
// window's frames, clamped to the valid starts (clip_draw_start in clip.h).
//
// Cache. The index of every video of a list is kept in one text file beside the list
// (motion_cache_path: "list.csv" -> "list.csv.motion"), written atomically:
//   scvrl-motion <version> <parameters that change the values>
//   entries <N>
//   <stamp, 16 hex digits> <n_frames> <fps> <n_win> <m_0> ... <m_{n_win-1}>\t<key>
//   ... (N lines)
//   end
// A file of another version or other parameters, or a truncated one (entry count or
// "end" missing), is rejected as a whole; an entry whose stamp (the caller's choice, e.g.
// file size and mtime), frame count or fps differs from the video's is stale and recomputed.
#ifndef SCVRL_MOTION_H
#define SCVRL_MOTION_H
#include <stddef.h>
#include <stdint.h>

#include "clip.h"

#define MOTION_CACHE_VERSION 1

// Reads frames idx[0..n) resized to h x w into rgb_out: uint8 [n][h][w][3]. Returns >= 0 on
// success (> 0: that many frames repeat earlier ones, a warning), < 0 on error with a
// message in err. Called from the thread that calls motion_index_compute, never in
// parallel, once per window with ascending indices. With video.h it is
// vid_read_frames(reader, idx, n, h, w, VID_RESIZE_PLAIN, rgb_out, err, errlen) (h x w
// keeps the aspect ratio: motion_analysis_size).
typedef int (*motion_read_fn)(void *ctx, const int64_t *idx, int n, int h, int w,
                              uint8_t *rgb_out, char *err, size_t errlen);

typedef struct motion_flow_opts {
    int levels;       // pyramid levels (0: auto, coarsest side >= 12 px, at most 6)
    int iters;        // Gauss-Newton steps per level (5)
    float win_sigma;  // Gaussian window sigma, pixels (2)
    int median;       // 3x3 median filter after each level (1)
} motion_flow_opts;

typedef struct motion_opts {
    int short_side;   // analysis short side in pixels (128)
    int top_k;        // per-frame statistic: median of the top_k flow-edge values
                      // (0, the default: 4000 * h * w / (320 * 240), the paper's 4k scaled to the frame)
    int frame_step;   // use every frame_step-th pair of each window (1: all)
    int threads;      // OpenMP threads over frame pairs (<= 0: default; results do not depend on it)
    motion_flow_opts flow;
} motion_opts;

typedef struct motion_video {
    int64_t n_frames;   // frame count
    double fps;         // frames per second (window length)
    int width, height;  // native frame size (for the analysis aspect ratio)
} motion_video;

typedef struct motion_index {
    int64_t n_frames;  // frame count the index was computed for
    double fps;        // frames per window
    int n_win;         // number of 1-second windows
    float *m;          // [n_win] flow-edge magnitude per window
} motion_index;

motion_flow_opts motion_flow_defaults(void);
motion_opts motion_defaults(void);

// Dense flow from I0 to I1: I0, I1: float [h][w] (any range; 0..1 expected for the damping
// term); u, v: float [h][w] out. Returns 0, or -1 with a message (sizes, memory).
int motion_flow(const float *I0, const float *I1, int h, int w, const motion_flow_opts *o,
                float *u, float *v, char *err, size_t errlen);
// Median of the top_k largest Sobel magnitudes of |(u, v)| over interior pixels;
// u, v: [h][w]; scratch: float [2 * h * w]. top_k is clamped to [1, (h-2)(w-2)].
float motion_flow_edge(const float *u, const float *v, int h, int w, int top_k, float *scratch);
// The top_k motion_index_compute uses for h x w analysis frames (o->top_k, or the scaled default).
int motion_top_k(const motion_opts *o, int h, int w);
// Median of x[0..n) (mean of the two middle values for even n); reorders x. 0 if n <= 0.
float motion_median(float *x, int64_t n);

// Window layout of a video: number of windows, and the window holding frame f.
int motion_n_windows(int64_t n_frames, double fps);
int motion_window_of(int64_t f, int64_t n_frames, double fps);
// Analysis size for a video of width x height: short side short_side (or native if smaller).
void motion_analysis_size(int width, int height, int short_side, int *h, int *w);

// Computes the index of one video, reading frames window by window through `read`.
// out->m is malloc'ed (motion_index_free). Returns 0, or -1 with a message.
int motion_index_compute(const motion_video *v, motion_read_fn read, void *ctx,
                         const motion_opts *o, motion_index *out, char *err, size_t errlen);
void motion_index_free(motion_index *mi);

// p[i] = softmax(m_i / beta) over the windows; beta = INFINITY gives uniform p. p: [n_win].
// Returns 0, or -1 with a message when beta <= 0 or the index is empty.
int motion_probs(const motion_index *mi, double beta, double *p, char *err, size_t errlen);
// The window distribution for clip_draw_start / clip_sample_pretrain (p must outlive it).
clip_windows motion_windows(const motion_index *mi, const double *p);
// Targeted start of a clip covering `span` frames (clip_span); *win_out (may be NULL) gets
// the window. Uses counters 0 and 1 of (seed, stream).
int64_t motion_sample_start(const motion_index *mi, const double *p, int64_t span,
                            uint64_t seed, uint64_t stream, int *win_out);

// ---- cache ----------------------------------------------------------------------------------
// A motion_cache is not thread-safe: threads that compute indices in parallel call
// motion_index_compute and then motion_cache_put under the caller's lock.

typedef struct motion_cache_entry {
    char *key;         // video path (no tab or newline)
    uint64_t stamp;    // caller's freshness stamp (e.g. size ^ mtime); 0 if unused
    motion_index mi;
} motion_cache_entry;

typedef struct motion_cache {
    char params[192];          // the parameter line the values depend on
    int n, cap;                // entries
    motion_cache_entry *e;     // [n]
    int *slot;                 // hash table of entry indices (-1 empty), size n_slot
    int n_slot;
    int dirty;                 // entries added since load/save
} motion_cache;

// "<list_path>.motion" into out. Returns -1 if it does not fit.
int motion_cache_path(const char *list_path, char *out, size_t n);
// An empty cache for indices computed with options o.
void motion_cache_init(motion_cache *c, const motion_opts *o);
void motion_cache_free(motion_cache *c);
// Loads the file into c (initialised with motion_cache_init; replaces its entries).
// Returns 0 when loaded; 1 when the file is missing, of another version or parameters, or
// truncated (c is left empty and err says why); -1 on an I/O or memory error.
int motion_cache_load(motion_cache *c, const char *path, char *err, size_t errlen);
// Writes all entries (temporary file, fsync, rename). Returns 0, or -1 with a message.
int motion_cache_save(motion_cache *c, const char *path, char *err, size_t errlen);
// The fresh entry for key, or NULL when absent or stale (n_frames or fps <= 0 skip that check).
const motion_index *motion_cache_find(const motion_cache *c, const char *key, uint64_t stamp,
                                      int64_t n_frames, double fps);
// Adds (or replaces) the entry for key with a copy of mi. Returns 0, or -1 with a message.
int motion_cache_put(motion_cache *c, const char *key, uint64_t stamp, const motion_index *mi,
                     char *err, size_t errlen);
// The cached index for key if fresh, else computes it (motion_index_compute with the cache's
// options o) and adds it. *out points into the cache. Returns 0 (cached), 1 (computed), -1.
int motion_index_get(motion_cache *c, const char *key, uint64_t stamp, const motion_video *v,
                     motion_read_fn read, void *ctx, const motion_opts *o,
                     const motion_index **out, char *err, size_t errlen);

#endif
