// examples/retrieve.c - nearest-neighbour video retrieval with a pretrained encoder (the paper's
// Figure 4): embeds a query clip, searches an index of videos by cosine similarity, prints the
// top-k and, with --grid, draws query and neighbours as rows of their first, middle and last frames.
//
//   ./examples/retrieve query.mp4                       default model and index (see --help)
//   ./examples/retrieve q.mp4 --index videos/ --k 10 --grid nn.png --weights runs/demo/ckpt-00000150.safetensors
//
// The index's features are cached beside it (<list>.index.safetensors, or <dir>.index.safetensors)
// with each file's size and mtime, and only new or changed videos are embedded again.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "scvrl.h"
#include "models/mvit.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "probe.h"
#include "synth.h"
#include "video.h"
#include "vwrite.h"
#ifdef SCVRL_STB
#include <stb/stb_image_write.h>
#endif

#define RT_DEFAULT_MODEL "scvrl-tiny-synth.safetensors"
#define RT_GEN_DIR "data/retrieve-index-112"
// Grid layout (pixels): rows of [rank | first | middle | last | similarity bar].
#define RT_PAD 6
#define RT_RANK_W 28
#define RT_BAR_W 140

typedef struct {
    const char *weights, *encoder, *model, *pool, *index, *grid, *device, *precision;
    int kt, frames, stride, size, interpolate, k, thumb, batch, threads, quiet, keep_self;
    int64_t seed;
} rt_cfg;

static rt_cfg C = { .encoder = "online", .device = "cpu", .precision = "bf16", .k = 5, .thumb = 96, .batch = 8 };

static const char *const encoders[] = { "online", "momentum", NULL };
static const char *const pools[] = { "cls", "avg", NULL };
static const char *const devices[] = { "cpu", "cuda", NULL };
static const char *const precisions[] = { "bf16", "tf32", "fp32", NULL };

static const cli_flag flags[] = {
    { "--weights", CLI_STR, &C.weights, "FILE", "encoder checkpoint (default: " RT_DEFAULT_MODEL " in <program dir>/../models/ or ./models/)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--encoder", CLI_CHOICE, &C.encoder, NULL, "which encoder of a pretraining checkpoint", 0, 0, encoders, 0 },
    { "--index", CLI_STR, &C.index, "DIR|LIST", "videos to search: a list (CSV), a folder of videos, or class folders (default: a small synthetic set generated once into " RT_GEN_DIR ")", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--k", CLI_INT, &C.k, "K", "neighbours to show", 1, 1000, NULL, 0 },
    { "--grid", CLI_STR, &C.grid, "FILE.png", "draw query and neighbours (first, middle, last frame; similarity bar)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--thumb", CLI_INT, &C.thumb, "PX", "grid thumbnail size", 16, 512, NULL, 0 },
    { "--keep-self", CLI_BOOL, &C.keep_self, NULL, "list the query file itself when it is in the index", 0, 0, NULL, 0 },
    { "--model", CLI_STR, &C.model, "NAME", "model preset (default: the checkpoint's, else mvit-tiny)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--kt", CLI_INT, &C.kt, "2|3", "stem temporal kernel (default: the checkpoint's, else 2)", 2, 3, NULL, CLI_NO_DEFAULT },
    { "--frames", CLI_INT, &C.frames, "T", "frames per clip (default: the checkpoint's, else 8)", 2, 256, NULL, CLI_NO_DEFAULT },
    { "--stride", CLI_INT, &C.stride, "S", "frame step (default: the checkpoint's, else 2)", 1, 64, NULL, CLI_NO_DEFAULT },
    { "--size", CLI_INT, &C.size, "PX", "crop size (default: the checkpoint's, else 64)", 32, 1024, NULL, CLI_NO_DEFAULT },
    { "--pool", CLI_CHOICE, &C.pool, NULL, "features: CLS token or token mean (default: the checkpoint's, else cls)", 0, 0, pools, CLI_NO_DEFAULT },
    { "--interpolate-pos", CLI_BOOL, &C.interpolate, NULL, "resample positional tables made for another clip size", 0, 0, NULL, 0 },
    { "--batch", CLI_INT, &C.batch, "N", "clips per forward", 1, 4096, NULL, 0 },
    { "--threads", CLI_INT, &C.threads, "N", "CPU threads (0: all)", 0, 1024, NULL, 0 },
    { "--device", CLI_CHOICE, &C.device, NULL, "compute device", 0, 0, devices, 0 },
    { "--precision", CLI_CHOICE, &C.precision, NULL, "GPU precision: bf16 (bf16 tensor cores, activations stored as bf16), tf32 (tf32 tensor cores, fp32 activations) or full fp32 (weights, norm statistics, softmax, losses, optimizer: fp32 always; SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
    { "--seed", CLI_INT64, &C.seed, "N", "random initialisation seed (when no model is found)", 0, 1e18, NULL, 0 },
    { "--quiet", CLI_BOOL, &C.quiet, NULL, "no progress on stderr", 0, 0, NULL, 0 },
};

#define die(...) cli_die("retrieve", __VA_ARGS__)

// ---------------------------------------------------------------------------------------------
// The default model and index
// ---------------------------------------------------------------------------------------------
static int rt_exists(const char *p) { struct stat st; return !stat(p, &st); }

// <program dir>/../models/NAME, then ./models/NAME. tried gets both paths for the message.
static const char *rt_default_weights(const char *argv0, char *tried, size_t n) {
    static char path[4096];
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) exe[k] = 0; else snprintf(exe, sizeof exe, "%s", argv0);
    char *sl = strrchr(exe, '/');
    if (sl) *sl = 0; else snprintf(exe, sizeof exe, ".");
    snprintf(path, sizeof path, "%s/../models/%s", exe, RT_DEFAULT_MODEL);
    snprintf(tried, n, "%s and models/%s", path, RT_DEFAULT_MODEL);
    if (rt_exists(path)) return path;
    snprintf(path, sizeof path, "models/%s", RT_DEFAULT_MODEL);
    return rt_exists(path) ? path : NULL;
}

static void rt_synth_progress(void *ctx, int64_t done, int64_t total) { cli_progress_update((cli_progress *)ctx, done); (void)total; }

// A small synthetic index generated once (18 motion classes x 2 videos), at the default model's
// data: the GPU study's set (112 px, 48 frames, hard 0; docs/RESULTS.md).
static const char *rt_default_index(void) {
    static const char *list = RT_GEN_DIR "/val.csv";
    if (rt_exists(list)) return list;
    synth_dataset d;
    memset(&d, 0, sizeof d);
    d.out = RT_GEN_DIR; d.opts.size = 112; d.opts.frames = 48; d.opts.hard = 0; d.kind = SYNTH_KIND_MOTION;
    d.per_class = 2; d.splits = 1 << SYNTH_VAL; d.seed = 7;
    d.format = vwrite_available(VWRITE_MP4, NULL, 0) ? SYNTH_MP4 : SYNTH_JPG;
    char err[1024];
    if (synth_check_dataset(&d, err, sizeof err)) die("cannot generate the default index: %s (pass --index)", err);
    fprintf(stderr, "retrieve: no --index: generating a small synthetic index (36 videos) in %s (once)\n", RT_GEN_DIR);
    cli_progress p;
    cli_progress_start(&p, "synth", "videos", synth_split_count(&d, SYNTH_VAL), C.quiet);
    if (synth_write_dataset(&d, rt_synth_progress, &p, err, sizeof err)) die("cannot generate the default index: %s (pass --index)", err);
    cli_progress_finish(&p);
    return list;
}

// ---------------------------------------------------------------------------------------------
// The index list: a CSV (labels optional), a folder of videos, or what ds_load reads
// ---------------------------------------------------------------------------------------------

static int rt_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// 1 when path is a folder holding JPEG/PNG frames.
static int rt_is_frame_folder(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        found = dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
    }
    closedir(d);
    return found;
}

// Videos directly inside dir (video files and frame folders), sorted by name. Returns the count.
static int64_t rt_flat_folder(const char *dir, ds_list *out) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int64_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = (char *)malloc(len);
        snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        if (!ds_is_video_name(e->d_name) && !rt_is_frame_folder(p)) { free(p); continue; }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            out->items = (ds_item *)realloc(out->items, (size_t)cap * sizeof(ds_item));
            if (!out->items) die("out of memory listing %s", dir);
        }
        out->items[out->n].path = p;
        out->items[out->n++].label = -1;
    }
    closedir(d);
    char **names = (char **)malloc((size_t)(out->n + 1) * sizeof(char *));
    for (int64_t i = 0; i < out->n; i++) names[i] = out->items[i].path;
    qsort(names, (size_t)out->n, sizeof(char *), rt_cmp_str);
    for (int64_t i = 0; i < out->n; i++) out->items[i].path = names[i];
    free(names);
    return out->n;
}

static void rt_load_index(const char *path, ds_list *list) {
    struct stat st;
    char err[2048];
    if (stat(path, &st)) die("--index %s: %s (give a list file or a folder of videos)", path, strerror(errno));
    if (S_ISDIR(st.st_mode) && rt_flat_folder(path, list) > 0) return;
    if (S_ISDIR(st.st_mode)) ds_free(list);
    if (ds_load(path, NULL, list, err, sizeof err)) die("--index %s: %s", path, err);
    if (list->n == 0) die("--index %s: no videos listed", path);
}

// ---------------------------------------------------------------------------------------------
// Index features, cached beside the index with each file's size and mtime
// ---------------------------------------------------------------------------------------------
typedef struct {
    int64_t n;
    int D;
    char **paths;
    int64_t *size, *mtime;
    float *feat;         // [n][D], unit length
    uint8_t *ok;         // 1: readable
} rt_index;

static void rt_stat(const char *path, int64_t *size, int64_t *mtime) {
    struct stat st;
    if (stat(path, &st)) { *size = -1; *mtime = -1; return; }
    *size = (int64_t)st.st_size;
    *mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

static void rt_normalize(float *x, int D) {
    double s = 0;
    for (int d = 0; d < D; d++) s += (double)x[d] * x[d];
    s = s > 0 ? 1.0 / sqrt(s) : 0;
    for (int d = 0; d < D; d++) x[d] = (float)(x[d] * s);
}

// Cache entries whose path, size and mtime match: copies their features, marks them done.
static int64_t rt_cache_read(const char *cpath, const char *ident, rt_index *ix, uint8_t *done) {
    scvrl_st_file f;
    char err[1024];
    if (!rt_exists(cpath)) return 0;
    if (scvrl_st_open(&f, cpath, err, sizeof err)) { fprintf(stderr, "warning: ignoring the index cache: %s\n", err); return 0; }
    const char *id = scvrl_st_meta(&f, "model"), *paths = scvrl_st_meta(&f, "paths");
    const scvrl_st_entry *fe = scvrl_st_find(&f, "features"), *se = scvrl_st_find(&f, "size"), *me = scvrl_st_find(&f, "mtime");
    int64_t hits = 0;
    if (id && paths && !strcmp(id, ident) && fe && se && me && fe->ndim == 2 && fe->shape[1] == ix->D && fe->dtype == SCVRL_DT_F32 &&
        se->numel == fe->shape[0] && me->numel == fe->shape[0] && se->dtype == SCVRL_DT_I64 && me->dtype == SCVRL_DT_I64) {
        int64_t m = fe->shape[0];
        char **names = (char **)malloc((size_t)(m + 1) * sizeof(char *));
        char *buf = strdup(paths), *s = buf;
        for (int64_t k = 0; k < m; k++) { names[k] = s; char *nl = s ? strchr(s, '\n') : NULL; if (nl) { *nl = 0; s = nl + 1; } else s = NULL; }
        for (int64_t i = 0; i < ix->n; i++)
            for (int64_t k = 0; k < m && names[k]; k++) {
                int64_t sz, mt;
                memcpy(&sz, f.data + se->begin + 8 * k, 8);
                memcpy(&mt, f.data + me->begin + 8 * k, 8);
                if (strcmp(names[k], ix->paths[i]) || sz != ix->size[i] || mt != ix->mtime[i]) continue;
                memcpy(ix->feat + i * ix->D, f.data + fe->begin + (size_t)(k * ix->D) * 4, (size_t)ix->D * 4);
                done[i] = 1; ix->ok[i] = 1; hits++;
                break;
            }
        free(names); free(buf);
    }
    scvrl_st_close(&f);
    return hits;
}

static void rt_cache_write(const char *cpath, const char *ident, const rt_index *ix) {
    int64_t m = 0;
    size_t len = 1;
    for (int64_t i = 0; i < ix->n; i++) if (ix->ok[i]) { m++; len += strlen(ix->paths[i]) + 1; }
    char *paths = (char *)calloc(len, 1), err[1024];
    float *f = (float *)malloc((size_t)(m * ix->D + 1) * sizeof(float));
    int64_t *sz = (int64_t *)malloc((size_t)(m + 1) * 8), *mt = (int64_t *)malloc((size_t)(m + 1) * 8), k = 0;
    for (int64_t i = 0; i < ix->n; i++) {
        if (!ix->ok[i]) continue;
        if (k) strcat(paths, "\n");
        strcat(paths, ix->paths[i]);
        memcpy(f + k * ix->D, ix->feat + i * ix->D, (size_t)ix->D * sizeof(float));
        sz[k] = ix->size[i]; mt[k] = ix->mtime[i]; k++;
    }
    int64_t fs[2] = { m, ix->D };
    scvrl_st_writer *w = scvrl_st_writer_new();
    scvrl_st_writer_add(w, "features", SCVRL_DT_F32, 2, fs, f);
    scvrl_st_writer_add(w, "size", SCVRL_DT_I64, 1, &m, sz);
    scvrl_st_writer_add(w, "mtime", SCVRL_DT_I64, 1, &m, mt);
    scvrl_st_writer_meta(w, "model", ident);
    scvrl_st_writer_meta(w, "paths", paths);
    scvrl_st_writer_meta(w, "format", "scvrl-retrieve-index-1");
    if (scvrl_st_writer_save(w, cpath, err, sizeof err)) fprintf(stderr, "warning: index cache not written: %s\n", err);
    scvrl_st_writer_free(w);
    free(paths); free(f); free(sz); free(mt);
}

// Clips of the items still to embed: sub[j] is the list index of the j-th.
typedef struct { probe_eval_clips ec; const int64_t *sub; } rt_sub_clips;
static int rt_sub_clip(void *ctx, int64_t j, int v, float *clip, char *err, size_t errlen) {
    rt_sub_clips *s = (rt_sub_clips *)ctx;
    return probe_eval_clip(&s->ec, s->sub[j], v, clip, err, errlen);
}

static void rt_embed_missing(probe_encoder *e, const ld_loader *L, rt_index *ix, const uint8_t *done) {
    int64_t *sub = (int64_t *)malloc((size_t)ix->n * sizeof(int64_t)), m = 0;
    for (int64_t i = 0; i < ix->n; i++) if (!done[i]) sub[m++] = i;
    float *f = (float *)malloc((size_t)(m * ix->D + 1) * sizeof(float));
    uint8_t *valid = (uint8_t *)malloc((size_t)m + 1);
    rt_sub_clips sc = { { L, 1, 1, 0 }, sub };
    probe_extract_opts xo = { m, 1, e->cfg.frames, (int64_t)e->cfg.size * e->cfg.size, e->D, C.batch, rt_sub_clip, &sc,
                              probe_encoder_embed, e, NULL, 2, 1, "index", C.quiet };
    char err[2048];
    if (probe_extract(&xo, f, valid, err, sizeof err)) die("%s", err);
    for (int64_t j = 0; j < m; j++) {
        int64_t i = sub[j];
        ix->ok[i] = valid[j];
        memcpy(ix->feat + i * ix->D, f + j * ix->D, (size_t)ix->D * sizeof(float));
        rt_normalize(ix->feat + i * ix->D, ix->D);
    }
    free(sub); free(f); free(valid);
}

static void rt_index_build(probe_encoder *e, const ds_list *list, const char *index_path, rt_index *ix) {
    memset(ix, 0, sizeof *ix);
    ix->n = list->n; ix->D = e->D;
    ix->paths = (char **)malloc((size_t)ix->n * sizeof(char *));
    ix->size = (int64_t *)malloc((size_t)ix->n * 8); ix->mtime = (int64_t *)malloc((size_t)ix->n * 8);
    ix->feat = (float *)calloc((size_t)(ix->n * ix->D), sizeof(float)); ix->ok = (uint8_t *)calloc((size_t)ix->n, 1);
    uint8_t *done = (uint8_t *)calloc((size_t)ix->n, 1);
    if (!ix->paths || !ix->size || !ix->mtime || !ix->feat || !ix->ok || !done) die("out of memory for an index of %lld videos", (long long)ix->n);
    for (int64_t i = 0; i < ix->n; i++) { ix->paths[i] = list->items[i].path; rt_stat(ix->paths[i], &ix->size[i], &ix->mtime[i]); }
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s", index_path);
    size_t l = strlen(cpath);
    while (l > 1 && cpath[l - 1] == '/') cpath[--l] = 0;
    snprintf(cpath + l, sizeof cpath - l, ".index.safetensors");
    int64_t hits = rt_cache_read(cpath, e->ident, ix, done);
    if (!C.quiet) fprintf(stderr, "retrieve: index %s: %lld videos, %lld cached in %s, %lld to embed\n", index_path, (long long)ix->n,
                          (long long)hits, cpath, (long long)(ix->n - hits));
    if (hits < ix->n) {
        ld_loader L;
        ld_init(&L, list, e->cfg.frames, e->stride, e->cfg.size, (uint64_t)C.seed);
        rt_embed_missing(e, &L, ix, done);
        ld_free(&L);
    }
    int stale = hits < ix->n;
    if (!stale) {   // also rewrite when the cache holds entries no longer listed
        scvrl_st_file f;
        char err[256];
        if (!scvrl_st_open(&f, cpath, err, sizeof err)) { const scvrl_st_entry *fe = scvrl_st_find(&f, "features"); stale = !fe || fe->shape[0] != hits; scvrl_st_close(&f); }
    }
    if (stale) rt_cache_write(cpath, e->ident, ix);
    free(done);
}

// ---------------------------------------------------------------------------------------------
// The query
// ---------------------------------------------------------------------------------------------
// Checks the query (exists, decodes, long enough) and embeds its centre clip into q [D] (unit length).
static void rt_query(probe_encoder *e, const char *path, float *q) {
    vid_info info;
    char err[2048];
    vid_reader *r = vid_open(path, &info, err, sizeof err);
    if (!r) die("cannot read the query: %s", err);
    int64_t idx = info.n_frames - 1;
    uint8_t px[3];
    int rc = vid_read_frames(r, &idx, 1, 1, 1, VID_RESIZE_PLAIN, px, err, sizeof err);
    info = vid_get_info(r);
    vid_close(r);
    if (rc < 0) die("cannot read the query: %s", err);
    if (info.n_frames < e->cfg.frames)
        die("%s: too short: %lld frame%s, the model's clips need %d (--frames %d, --stride %d)", path, (long long)info.n_frames,
            info.n_frames == 1 ? "" : "s", e->cfg.frames, e->cfg.frames, e->stride);
    ds_item item = { (char *)path, -1 };
    ds_list one = { &item, 1, NULL, 0 };
    ld_loader L;
    ld_init(&L, &one, e->cfg.frames, e->stride, e->cfg.size, (uint64_t)C.seed);
    probe_eval_clips ec = { &L, 1, 1, 0 };
    probe_extract_opts xo = { 1, 1, e->cfg.frames, (int64_t)e->cfg.size * e->cfg.size, e->D, 1, probe_eval_clip, &ec,
                              probe_encoder_embed, e, NULL, 2, 0, "query", 1 };
    if (probe_extract(&xo, q, NULL, err, sizeof err)) die("cannot read the query: %s", err);
    rt_normalize(q, e->D);
    ld_free(&L);
    if (!C.quiet) fprintf(stderr, "retrieve: query %s: %lld frames, %dx%d, %.1f fps\n", path, (long long)info.n_frames, info.width, info.height, info.fps);
}

// The k most similar readable index entries (similarity descending, ties: list order).
static int rt_search(const rt_index *ix, const float *q, const char *query, int k, int64_t *best, double *sim) {
    char *qr = realpath(query, NULL);
    int nb = 0;
    for (int64_t i = 0; i < ix->n; i++) {
        if (!ix->ok[i]) continue;
        if (!C.keep_self && qr) {
            char *ir = realpath(ix->paths[i], NULL);
            int same = ir && !strcmp(ir, qr);
            free(ir);
            if (same) continue;
        }
        double s = 0;
        for (int d = 0; d < ix->D; d++) s += (double)q[d] * ix->feat[i * ix->D + d];
        if (nb == k && !(s > sim[k - 1])) continue;
        int p = nb < k ? nb++ : k - 1;
        while (p > 0 && sim[p - 1] < s) { sim[p] = sim[p - 1]; best[p] = best[p - 1]; p--; }
        sim[p] = s; best[p] = i;
    }
    free(qr);
    return nb;
}

// ---------------------------------------------------------------------------------------------
// The grid picture: one row per video ([rank | first | middle | last | similarity]), drawn with a
// 5x7 bitmap font for the numbers (no font files needed).
// ---------------------------------------------------------------------------------------------
static const char rt_glyph_chars[] = "0123456789.-Q";
static const uint8_t rt_glyphs[][7] = {
    { 14, 17, 19, 21, 25, 17, 14 }, { 4, 12, 4, 4, 4, 4, 14 }, { 14, 17, 1, 2, 4, 8, 31 }, { 31, 2, 4, 2, 1, 17, 14 },
    { 2, 6, 10, 18, 31, 2, 2 }, { 31, 16, 30, 1, 1, 17, 14 }, { 6, 8, 16, 30, 17, 17, 14 }, { 31, 1, 2, 4, 8, 8, 8 },
    { 14, 17, 17, 14, 17, 17, 14 }, { 14, 17, 17, 15, 1, 2, 12 }, { 0, 0, 0, 0, 0, 12, 12 }, { 0, 0, 0, 31, 0, 0, 0 },
    { 14, 17, 17, 17, 21, 18, 13 },
};

typedef struct { uint8_t *px; int w, h; } rt_img;

static void rt_fill(rt_img *im, int x0, int y0, int w, int h, const uint8_t *rgb) {
    for (int y = y0 > 0 ? y0 : 0; y < y0 + h && y < im->h; y++)
        for (int x = x0 > 0 ? x0 : 0; x < x0 + w && x < im->w; x++) memcpy(im->px + ((size_t)y * im->w + x) * 3, rgb, 3);
}

// Text at (x, y) (top left) in glyphs scaled by s; returns the width drawn.
static int rt_text(rt_img *im, int x, int y, const char *s, int sc, const uint8_t *rgb) {
    int x0 = x;
    for (; *s; s++) {
        const char *g = strchr(rt_glyph_chars, *s);
        if (g && *s) {
            const uint8_t *rows = rt_glyphs[g - rt_glyph_chars];
            for (int r = 0; r < 7; r++)
                for (int c = 0; c < 5; c++)
                    if (rows[r] & (16 >> c)) rt_fill(im, x + c * sc, y + r * sc, sc, sc, rgb);
        }
        x += 6 * sc;
    }
    return x - x0;
}

// First, middle and last frame of a video as thumb x thumb RGB (grey when it cannot be read).
static void rt_thumbs(const char *path, int thumb, uint8_t *out) {
    memset(out, 128, (size_t)3 * thumb * thumb * 3);
    vid_info info;
    char err[1024];
    vid_reader *r = vid_open(path, &info, err, sizeof err);
    if (!r) { fprintf(stderr, "warning: grid: %s\n", err); return; }
    int64_t n = info.n_frames > 0 ? info.n_frames : 1, idx[3] = { 0, n / 2, n - 1 };
    if (vid_read_frames(r, idx, 3, thumb, thumb, VID_RESIZE_CROP, out, err, sizeof err) < 0) {
        memset(out, 128, (size_t)3 * thumb * thumb * 3);
        fprintf(stderr, "warning: grid: %s\n", err);
    }
    vid_close(r);
}

static void rt_grid_row(rt_img *im, int row, const char *path, int rank, double sim) {
    static const uint8_t ink[3] = { 40, 40, 40 }, blue[3] = { 31, 119, 180 }, green[3] = { 44, 160, 44 }, frame[3] = { 200, 200, 200 };
    int T = C.thumb, y0 = RT_PAD + row * (T + RT_PAD), x0 = RT_PAD + RT_RANK_W;
    uint8_t *th = (uint8_t *)malloc((size_t)3 * T * T * 3);
    rt_thumbs(path, T, th);
    if (rank == 0) rt_fill(im, x0 - 3, y0 - 3, 3 * (T + RT_PAD) - RT_PAD + 6, T + 6, blue);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < T; y++)
            memcpy(im->px + ((size_t)(y0 + y) * im->w + x0 + c * (T + RT_PAD)) * 3, th + ((size_t)c * T * T + (size_t)y * T) * 3, (size_t)T * 3);
    free(th);
    char s[32];
    if (rank == 0) snprintf(s, sizeof s, "Q"); else snprintf(s, sizeof s, "%d", rank);
    int sc = strlen(s) <= 2 ? 2 : 1;
    rt_text(im, RT_PAD, y0 + T / 2 - 7 * sc / 2, s, sc, rank ? ink : blue);
    if (rank == 0) return;
    int bx = x0 + 3 * (T + RT_PAD), by = y0 + T / 2 + 2, bw = RT_BAR_W - 8;
    snprintf(s, sizeof s, "%.3f", sim);
    rt_text(im, bx, y0 + T / 2 - 16, s, 2, ink);
    rt_fill(im, bx, by, bw, 10, frame);
    rt_fill(im, bx, by, (int)lround(bw * (sim > 0 ? (sim < 1 ? sim : 1) : 0)), 10, green);
}

static void rt_grid(const char *out, const char *query, const rt_index *ix, const int64_t *best, const double *sim, int nb) {
#ifdef SCVRL_STB
    rt_img im;
    im.w = RT_PAD + RT_RANK_W + 3 * (C.thumb + RT_PAD) + RT_BAR_W + RT_PAD;
    im.h = RT_PAD + (nb + 1) * (C.thumb + RT_PAD);
    im.px = (uint8_t *)malloc((size_t)im.w * im.h * 3);
    if (!im.px) die("%s: out of memory for a %dx%d picture", out, im.w, im.h);
    memset(im.px, 245, (size_t)im.w * im.h * 3);
    rt_grid_row(&im, 0, query, 0, 1.0);
    for (int r = 0; r < nb; r++) rt_grid_row(&im, r + 1, ix->paths[best[r]], r + 1, sim[r]);
    if (!stbi_write_png(out, im.w, im.h, 3, im.px, im.w * 3)) die("%s: cannot write the PNG (%s)", out, strerror(errno));
    free(im.px);
    if (!C.quiet) fprintf(stderr, "retrieve: wrote %s (%dx%d)\n", out, im.w, im.h);
#else
    (void)out; (void)query; (void)ix; (void)best; (void)sim; (void)nb;
#endif
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
static void rt_open_encoder(probe_encoder *e, const char *argv0) {
    char tried[8400], err[4096];
    const char *w = C.weights;
    if (!w) {
        w = rt_default_weights(argv0, tried, sizeof tried);
        if (!w) fprintf(stderr, "warning: no trained model: looked for %s. Using a random initialisation of mvit-tiny: neighbours "
                        "share appearance only. Pass --weights runs/demo/ckpt-*.safetensors (made by ./examples/pretrain).\n", tried);
    }
    probe_encoder_opts o;
    memset(&o, 0, sizeof o);
    o.weights = w; o.encoder = C.encoder; o.model = C.model; o.kt = C.kt; o.frames = C.frames; o.stride = C.stride;
    o.size = C.size; o.pool = C.pool; o.interpolate = C.interpolate; o.device = C.device; o.precision = C.precision; o.batch = C.batch;
    o.seed = (uint64_t)C.seed; o.quiet = 1;
    if (!w) {        // the demo's settings
        o.model = o.model ? o.model : "mvit-tiny"; o.frames = o.frames ? o.frames : 8;
        o.stride = o.stride ? o.stride : 2; o.size = o.size ? o.size : 64;
    }
    if (probe_encoder_open(e, &o, err, sizeof err)) die("%s", err);
    if (!C.quiet) fprintf(stderr, "retrieve: model: %s\n", e->desc);
}

int main(int argc, char **argv) {
    cli_spec spec = { "retrieve", "QUERY [--index DIR|LIST] [--k K] [--grid out.png] [--weights FILE] [flags]",
        "Finds the videos of an index most similar to a query video (cosine similarity of the encoder's\n"
        "features of the centre clip) and prints them, one per line: rank, similarity, path (and label).\n"
        "Default model: " RT_DEFAULT_MODEL ", looked for in <program dir>/../models/ and then ./models/\n"
        "(missing: a random initialisation, with a warning). Default index: a small synthetic set of the\n"
        "default model's kind (112 px, 36 videos), generated once into " RT_GEN_DIR ".\n"
        "The index's features are cached in <list>.index.safetensors (size + mtime per file).",
        flags, (int)(sizeof flags / sizeof flags[0]), mvit_print_presets,
        "The --grid picture is (6 + 28 + 3 * (thumb + 6) + 140 + 6) x (6 + (neighbours + 1) * (thumb + 6)) pixels;\n"
        "it needs stb_image_write (libstb-dev)." };
    const char *pos[1];
    int np = cli_parse(&spec, argc, argv, 1, pos, 1);
    if (np < 1) cli_usage_error(&spec, "give a query video (a file or a frame folder)");
    if (C.threads > 0) scvrl_set_threads(C.threads);
#ifndef SCVRL_STB
    if (C.grid) die("--grid needs stb_image_write: install libstb-dev (apt-get install libstb-dev), then make clean && make");
#endif
    struct stat st;
    if (stat(pos[0], &st)) die("%s: %s (give a video file or a frame folder)", pos[0], strerror(errno));
    probe_encoder e;
    rt_open_encoder(&e, argv[0]);
    float *q = (float *)malloc((size_t)e.D * sizeof(float));
    rt_query(&e, pos[0], q);
    const char *index = C.index ? C.index : rt_default_index();
    ds_list list;
    rt_load_index(index, &list);
    rt_index ix;
    rt_index_build(&e, &list, index, &ix);
    int64_t *best = (int64_t *)malloc((size_t)C.k * sizeof(int64_t));
    double *sim = (double *)malloc((size_t)C.k * sizeof(double));
    int nb = rt_search(&ix, q, pos[0], C.k, best, sim);
    if (nb == 0) die("%s: no readable videos to compare with", index);
    for (int r = 0; r < nb; r++) {
        printf("%2d  %.4f  %s", r + 1, sim[r], ix.paths[best[r]]);
        if (list.items[best[r]].label >= 0) printf("  label %d", list.items[best[r]].label);
        printf("\n");
    }
    fflush(stdout);
    if (C.grid) rt_grid(C.grid, pos[0], &ix, best, sim, nb);
    free(best); free(sim); free(q);
    free(ix.paths); free(ix.size); free(ix.mtime); free(ix.feat); free(ix.ok);
    ds_free(&list);
    probe_encoder_close(&e);
    return 0;
}
