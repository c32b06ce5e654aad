// examples/common/loader.h - from a dataset list to float clips: pretraining samples (x_a, x_p,
// the shuffled copies of x_p, x_pv) and evaluation clips, with targeted sampling.
// Every draw is a pure function of (seed, epoch, sample), so batches never depend on threads.
#ifndef SCVRL_LOADER_H
#define SCVRL_LOADER_H
#include <stdint.h>
#include "clip.h"
#include "dataset.h"
#include "motion.h"

typedef struct {
    const ds_list *list;
    int T, stride, size;          // clip frames, frame step, output crop (size x size)
    int n_shuffles, group;        // N_T shuffled copies of x_p in groups of `group` frames
    double beta;                  // targeted sampling temperature (INFINITY: uniform)
    double folder_fps;            // frame rate of frame folders
    uint64_t seed;
    clip_aug_opts aug;
    motion_cache motion;          // motion index per video (targeted sampling)
    int have_motion;
    int quiet;                    // no progress lines while the motion index is computed
    int mode;                     // clip_mode (clip.h) of every clip: ordered (0), static, shuffled;
                                  // the shuffled order comes from `seed` and the video's file name
} ld_loader;

// Sets defaults from the arguments; aug: the paper's augmentation at size x size.
void ld_init(ld_loader *L, const ds_list *list, int T, int stride, int size, uint64_t seed);
void ld_free(ld_loader *L);
// Motion index of every video (cached in cache_path, computed where missing or stale), with
// progress on stderr. Videos that cannot be read are left without an index (uniform sampling).
int ld_prepare_motion(ld_loader *L, const char *cache_path, char *err, size_t errlen);

// One pretraining sample of video v: xa, xp, xpv: [3, T, size, size]; xn: [n_shuffles][3, T, size, size]
// (may be NULL when n_shuffles = 0). 0, or -1 with a message naming the file.
int ld_pretrain_sample(const ld_loader *L, int64_t v, uint64_t epoch, uint64_t sample,
                       float *xa, float *xp, float *xn, float *xpv, char *err, size_t errlen);
// Both apply L->mode to the sampled frames (clips A and B alike) before the spatial transform.
// Evaluation clip of video v: temporal view tv of ntv, spatial view sv of nsv, no flip:
// x: [3, T, size, size]. 0, or -1 with a message naming the file.
int ld_eval_clip(const ld_loader *L, int64_t v, int tv, int ntv, int sv, int nsv, float *x, char *err, size_t errlen);

#endif
