// examples/common/loader.c - see loader.h.
#include "loader.h"
#include "cli.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "video.h"

void ld_init(ld_loader *L, const ds_list *list, int T, int stride, int size, uint64_t seed) {
    memset(L, 0, sizeof(*L));
    L->list = list; L->T = T; L->stride = stride; L->size = size; L->seed = seed;
    L->n_shuffles = 12; L->group = 2; L->beta = 5.0; L->folder_fps = 30.0;
    L->aug = clip_aug_defaults();
    L->aug.out_h = size; L->aug.out_w = size;
}

void ld_free(ld_loader *L) {
    if (L->have_motion) motion_cache_free(&L->motion);
    L->have_motion = 0;
}

static vid_reader *ld__open(const ld_loader *L, int64_t v, vid_info *info, char *err, size_t errlen) {
    vid_opts o = { L->folder_fps, 1 };
    return vid_open_ex(L->list->items[v].path, &o, info, err, errlen);
}

// Native-size frames of one clip: rgb [T][H][W][3] (malloc'ed into *out).
static int ld__read_clip(vid_reader *r, const vid_info *info, const int64_t *idx, int T, uint8_t **out,
                         char *err, size_t errlen) {
    *out = (uint8_t *)malloc((size_t)T * info->height * info->width * 3);
    if (!*out) { snprintf(err, errlen, "out of memory reading a clip"); return -1; }
    int rc = vid_read_frames(r, idx, T, 0, 0, VID_RESIZE_NATIVE, *out, err, errlen);
    return rc < 0 ? -1 : 0;
}

// Rearranges the T native frames rgb [T][H][W][3] of video v by L->mode (clip_mode_frames).
static int ld__apply_mode(const ld_loader *L, int64_t v, const vid_info *info, uint8_t *rgb, char *err, size_t errlen) {
    if (L->mode == CLIP_ORDERED) return 0;
    int frames[1024];
    const char *msg = clip_mode_frames(L->mode, L->seed, L->list->items[v].path, L->T, frames);
    if (msg) { snprintf(err, errlen, "%s: %s clips of %d frames: %s", L->list->items[v].path, clip_mode_name(L->mode) ? clip_mode_name(L->mode) : "?", L->T, msg); return -1; }
    size_t fb = (size_t)info->height * info->width * 3;
    uint8_t *tmp = (uint8_t *)malloc(fb * (size_t)L->T);
    if (!tmp) { snprintf(err, errlen, "out of memory rearranging a clip"); return -1; }
    for (int t = 0; t < L->T; t++) memcpy(tmp + t * fb, rgb + (size_t)frames[t] * fb, fb);
    memcpy(rgb, tmp, fb * (size_t)L->T);
    free(tmp);
    return 0;
}

typedef struct { vid_reader *r; } ld__mctx;
static int ld__motion_read(void *ctx, const int64_t *idx, int n, int h, int w, uint8_t *rgb, char *err, size_t errlen) {
    int rc = vid_read_frames(((ld__mctx *)ctx)->r, idx, n, h, w, VID_RESIZE_PLAIN, rgb, err, errlen);
    return rc < 0 ? -1 : 0;
}

static uint64_t ld__stamp(const char *path) {
    struct stat st;
    if (stat(path, &st)) return 0;
    return (uint64_t)st.st_size ^ ((uint64_t)st.st_mtime << 20);
}

int ld_prepare_motion(ld_loader *L, const char *cache_path, char *err, size_t errlen) {
    motion_opts mo = motion_defaults();
    motion_cache_init(&L->motion, &mo);
    L->have_motion = 1;
    char e2[512];
    if (motion_cache_load(&L->motion, cache_path, e2, sizeof e2) < 0) { snprintf(err, errlen, "%s", e2); return -1; }
    int64_t computed = 0, failed = 0;
    cli_progress p;
    int started = 0;
    for (int64_t v = 0; v < L->list->n; v++) {
        const char *path = L->list->items[v].path;
        vid_info info;
        vid_reader *r = ld__open(L, v, &info, e2, sizeof e2);
        if (!r) { failed++; continue; }
        motion_video mv = { info.n_frames, info.fps, info.width, info.height };
        ld__mctx c = { r };
        const motion_index *mi;
        int rc = motion_index_get(&L->motion, path, ld__stamp(path), &mv, ld__motion_read, &c, &mo, &mi, e2, sizeof e2);
        vid_close(r);
        if (rc < 0) failed++;
        if (rc == 1) computed++;
        if (computed && !started) { cli_progress_start(&p, "motion index", "videos", L->list->n, L->quiet); started = 1; }
        if (started) cli_progress_update(&p, v + 1);
    }
    if (started) cli_progress_finish(&p);
    if (failed) fprintf(stderr, "motion index: %lld videos could not be read; they use uniform sampling\n", (long long)failed);
    if (L->motion.dirty && motion_cache_save(&L->motion, cache_path, e2, sizeof e2))
        fprintf(stderr, "warning: %s\n", e2);
    return 0;
}

// Clip A / B starts for one sample: targeted (motion index) or uniform.
static int ld__draw(const ld_loader *L, int64_t v, const vid_info *info, uint64_t epoch, uint64_t sample,
                    clip_pretrain_draw *d, char *err, size_t errlen) {
    clip_sample_opts so = clip_sample_defaults();
    so.T = L->T; so.stride = L->stride; so.jitter = L->stride;
    const motion_index *mi = NULL;
    double p[4096];
    clip_windows w = { 0, 0, NULL }, *wp = NULL;
    if (L->have_motion && isfinite(L->beta)) {
        const char *path = L->list->items[v].path;
        mi = motion_cache_find(&L->motion, path, ld__stamp(path), info->n_frames, info->fps);
        if (mi && mi->n_win <= 4096 && !motion_probs(mi, L->beta, p, err, errlen)) { w = motion_windows(mi, p); wp = &w; }
    }
    return clip_sample_pretrain(&so, info->n_frames, info->fps, wp, L->seed, epoch, sample, d, err, errlen);
}

int ld_pretrain_sample(const ld_loader *L, int64_t v, uint64_t epoch, uint64_t sample,
                       float *xa, float *xp, float *xn, float *xpv, char *err, size_t errlen) {
    vid_info info;
    vid_reader *r = ld__open(L, v, &info, err, errlen);
    if (!r) return -1;
    clip_pretrain_draw d;
    int64_t ia[256], ib[256];
    uint8_t *fa = NULL, *fb = NULL;
    clip_sample_opts so = clip_sample_defaults();
    so.T = L->T; so.stride = L->stride;
    clip_aug_params ap[3];
    int rc = L->T > 256 ? -1 : 0;
    if (!rc) rc = ld__draw(L, v, &info, epoch, sample, &d, err, errlen);
    if (!rc) { clip_indices(&so, info.fps, info.n_frames, d.start_a, ia); clip_indices(&so, info.fps, info.n_frames, d.start_b, ib); }
    if (!rc) rc = ld__read_clip(r, &info, ia, L->T, &fa, err, errlen);
    if (!rc && xpv) rc = ld__read_clip(r, &info, ib, L->T, &fb, err, errlen);
    if (!rc) rc = ld__apply_mode(L, v, &info, fa, err, errlen);
    if (!rc && xpv) rc = ld__apply_mode(L, v, &info, fb, err, errlen);
    if (!rc) rc = clip_aug_draw_views(&L->aug, info.height, info.width, L->seed, epoch, sample, ap, err, errlen);
    if (!rc) rc = clip_augment(&ap[0], fa, L->T, info.height, info.width, xa, 1, err, errlen);
    if (!rc && xp) rc = clip_augment(&ap[1], fa, L->T, info.height, info.width, xp, 1, err, errlen);
    if (!rc && xpv) rc = clip_augment(&ap[2], fb, L->T, info.height, info.width, xpv, 1, err, errlen);
    if (!rc && xn && L->n_shuffles > 0) {
        int perms[64 * 128], frames[256];
        const char *msg = clip_shuffle_perms(L->seed, clip_stream(epoch, sample, CLIP_PURPOSE_SHUFFLE), L->T, L->group,
                                             L->n_shuffles, perms);
        if (msg) { snprintf(err, errlen, "%s", msg); rc = -1; }
        int64_t hw = (int64_t)L->size * L->size, clip = 3 * L->T * hw;
        for (int i = 0; !rc && i < L->n_shuffles; i++) {
            clip_shuffle_frames(perms + i * (L->T / L->group), L->T, L->group, frames);
            clip_permute_frames(xp, 3, L->T, hw, frames, xn + i * clip);
        }
    }
    free(fa); free(fb);
    vid_close(r);
    return rc;
}

int ld_eval_clip(const ld_loader *L, int64_t v, int tv, int ntv, int sv, int nsv, float *x, char *err, size_t errlen) {
    vid_info info;
    vid_reader *r = ld__open(L, v, &info, err, errlen);
    if (!r) return -1;
    clip_sample_opts so = clip_sample_defaults();
    so.T = L->T; so.stride = L->stride;
    int64_t idx[256];
    uint8_t *f = NULL;
    clip_aug_params p;
    int short_side = L->size;
    int rc = L->T > 256 ? -1 : 0;
    if (!rc) clip_indices(&so, info.fps, info.n_frames, clip_eval_start(&so, info.n_frames, info.fps, tv, ntv), idx);
    if (!rc) rc = ld__read_clip(r, &info, idx, L->T, &f, err, errlen);
    if (!rc) rc = ld__apply_mode(L, v, &info, f, err, errlen);
    if (!rc) rc = clip_eval_params(info.height, info.width, short_side, L->size, L->size, sv, nsv, 0, &p, err, errlen);
    if (!rc) rc = clip_augment(&p, f, L->T, info.height, info.width, x, 1, err, errlen);
    free(f);
    vid_close(r);
    return rc;
}
