// examples/eval.c - evaluation of pretrained video encoders (../shared DESIGN.md "Evaluation",
// SYNTH.md section 7): linear probe, fine-tuning, the shuffle test, low-shot, kNN, per-class.
//
//   ./examples/eval linear   --weights runs/demo/ckpt-00000150.safetensors --train T.csv --val V.csv
//   ./examples/eval finetune --weights W --train T --val V --epochs 30 --views 10x3
//   ./examples/eval shuffle  --weights W --train T --val V
//   ./examples/eval lowshot  --weights W --train T --val V [--finetune]
//   ./examples/eval knn      --weights W --train T --val V --k 20
//   ./examples/eval perclass --weights A --weights2 B --train T --val V
//
// Each prints a table on stdout and a JSON object as the last line (or into --json FILE). linear, finetune
// and flow also report per-class top-1, each class's most frequent confusion, and in the JSON class_top1,
// confusion ([true][predicted] counts) and pred (each val video's predicted class).
// Accuracies are in percent. Features are extracted once per (weights, list, views) and cached.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "scvrl.h"
#include "models/mvit.h"
#include "cli.h"
#include "dataset.h"
#include "flow.h"
#include "loader.h"
#include "probe.h"
#include "synth.h"
#include "video.h"
#include "vwrite.h"

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------
typedef struct {
    const char *weights, *encoder, *model, *pool, *train, *val, *root, *views, *device, *precision, *out, *cache, *json, *l2;
    int kt, frames, stride, size, interpolate, split, flip, batch, threads, quiet, skip_bad, no_cache, folds, pairs;
    int64_t seed;
    int epochs, warmup_epochs;                                   // finetune
    double lr, wd, label_smoothing, drop_path, head_dropout, min_scale;
    const char *save;
    int group;                                                   // shuffle
    const char *fractions; int finetune;                         // lowshot
    int k; double temperature;                                   // knn
    const char *weights2, *encoder2; int motion;                 // perclass
    const char *clips;                                           // linear, finetune, lowshot, knn
    int fwindow, fbins;                                          // flow
} ev_cfg;

static ev_cfg C = {
    .encoder = "online", .views = "1x1", .device = "cpu", .precision = "bf16", .l2 = "1e-5,1e-4,1e-3,1e-2,1e-1", .split = 1, .batch = 8,
    .folds = 5, .pairs = -1, .epochs = 30, .warmup_epochs = -1, .lr = 1e-4, .wd = 0.05, .label_smoothing = 0.1,
    .drop_path = 0.1, .head_dropout = 0.5, .min_scale = 0.25, .group = 2, .fractions = "1,5,10,25,50,100", .k = 20,
    .temperature = 0.07, .encoder2 = "online", .clips = "ordered",
};

static const char *const encoders[] = { "online", "momentum", NULL };
static const char *const pools[] = { "cls", "avg", NULL };
static const char *const devices[] = { "cpu", "cuda", NULL };
static const char *const precisions[] = { "bf16", "tf32", "fp32", NULL };

static const cli_flag common_flags[] = {
    { "--weights", CLI_STR, &C.weights, "FILE", "pretraining checkpoint or backbone state_dict (torchvision / PySlowFast names); none: random init", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--encoder", CLI_CHOICE, &C.encoder, NULL, "which encoder of a pretraining checkpoint", 0, 0, encoders, 0 },
    { "--train", CLI_STR, &C.train, "LIST", "training videos: CSV (path label), folder per class, or UCF101/HMDB51 split folder", 0, 0, NULL, CLI_REQUIRED },
    { "--val", CLI_STR, &C.val, "LIST", "test videos (same formats; split folders give their test part)", 0, 0, NULL, CLI_REQUIRED },
    { "--split", CLI_INT, &C.split, "N", "UCF101/HMDB51 split number", 1, 3, NULL, 0 },
    { "--root", CLI_STR, &C.root, "DIR", "video folder of UCF101/HMDB51 splits (default: the split folder)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--model", CLI_STR, &C.model, "NAME", "model preset (default: the checkpoint's, else mvit-b)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--kt", CLI_INT, &C.kt, "2|3", "stem temporal kernel (default: the checkpoint's, else 2)", 2, 3, NULL, CLI_NO_DEFAULT },
    { "--frames", CLI_INT, &C.frames, "T", "frames per clip (default: the checkpoint's, else 16)", 2, 256, NULL, CLI_NO_DEFAULT },
    { "--stride", CLI_INT, &C.stride, "S", "frame step (default: the checkpoint's, else 4)", 1, 64, NULL, CLI_NO_DEFAULT },
    { "--size", CLI_INT, &C.size, "PX", "crop size, multiple of 32 (default: the checkpoint's, else 224)", 32, 1024, NULL, CLI_NO_DEFAULT },
    { "--pool", CLI_CHOICE, &C.pool, NULL, "features: CLS token or token mean (default: the checkpoint's, else cls)", 0, 0, pools, CLI_NO_DEFAULT },
    { "--interpolate-pos", CLI_BOOL, &C.interpolate, NULL, "resample positional tables made for another clip size", 0, 0, NULL, 0 },
    { "--views", CLI_STR, &C.views, "TxS", "test views: T temporal x S spatial, softmax scores averaged (10x3: the paper)", 0, 0, NULL, 0 },
    { "--flip", CLI_BOOL, &C.flip, NULL, "also test on mirrored views (off: flips swap left/right classes)", 0, 0, NULL, 0 },
    { "--batch", CLI_INT, &C.batch, "N", "clips per forward", 1, 4096, NULL, 0 },
    { "--threads", CLI_INT, &C.threads, "N", "CPU threads (0: all)", 0, 1024, NULL, 0 },
    { "--device", CLI_CHOICE, &C.device, NULL, "compute device", 0, 0, devices, 0 },
    { "--precision", CLI_CHOICE, &C.precision, NULL, "GPU precision: bf16 (bf16 tensor cores, activations stored as bf16), tf32 (tf32 tensor cores, fp32 activations) or full fp32 (weights, norm statistics, softmax, losses, optimizer: fp32 always; SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
    { "--seed", CLI_INT64, &C.seed, "N", "seed of folds, subsets, shuffles, fine-tuning and random init", 0, 1e18, NULL, 0 },
    { "--out", CLI_STR, &C.out, "DIR", "feature cache folder (default: <weights dir>/eval, or runs/eval-random)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--cache", CLI_STR, &C.cache, "DIR", "put the feature cache here instead of --out", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--no-cache", CLI_BOOL, &C.no_cache, NULL, "always extract features, write no cache", 0, 0, NULL, 0 },
    { "--json", CLI_STR, &C.json, "FILE", "write the JSON result here (default: stdout, last line)", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--skip-bad", CLI_BOOL, &C.skip_bad, NULL, "leave unreadable videos out (with a warning) instead of stopping", 0, 0, NULL, 0 },
    { "--pairs", CLI_INT, &C.pairs, "N", "reversal pairs (2k, 2k+1), k < N, for pair accuracy (-1: 9 with 18 classes, else 0)", -1, 64, NULL, 0 },
    { "--quiet", CLI_BOOL, &C.quiet, NULL, "no progress on stderr", 0, 0, NULL, 0 },
};
static const char *const clip_modes[] = { "ordered", "static", "shuffled", NULL };
static const cli_flag clips_flags[] = {
    { "--clips", CLI_CHOICE, &C.clips, NULL, "training and test clips: as sampled, the centre frame repeated (static), or all frames "
      "permuted by one fixed non-identity permutation per video from --seed (shuffled); SYNTH.md gates G1, G2", 0, 0, clip_modes, 0 },
};
static const cli_flag flow_flags[] = {
    { "--window", CLI_INT, &C.fwindow, "W", "frames of the centre window whose consecutive pairs give the flow (0: round(2n/3) of an "
      "n-frame video, the synthetic benchmark's window)", 0, 1024, NULL, 0 },
    { "--bins", CLI_INT, &C.fbins, "N", "average the per-pair features into N equal time bins (0: every pair its own; needed when "
      "videos differ in length)", 0, 1024, NULL, 0 },
};
static const cli_flag probe_flags[] = {
    { "--l2", CLI_STR, &C.l2, "LIST", "L2 grid (comma list) for cross-validation; one value: no CV", 0, 0, NULL, 0 },
    { "--folds", CLI_INT, &C.folds, "K", "cross-validation folds", 2, 20, NULL, 0 },
};
static const cli_flag ft_flags[] = {
    { "--epochs", CLI_INT, &C.epochs, "N", "fine-tuning epochs", 1, 100000, NULL, 0 },
    { "--lr", CLI_DOUBLE, &C.lr, "LR", "peak AdamW learning rate (warm-up from lr/100, cosine to lr/100)", 0, 10, NULL, 0 },
    { "--wd", CLI_DOUBLE, &C.wd, "WD", "AdamW weight decay", 0, 10, NULL, 0 },
    { "--warmup-epochs", CLI_INT, &C.warmup_epochs, "N", "warm-up epochs (-1: 10% of --epochs)", -1, 100000, NULL, 0 },
    { "--label-smoothing", CLI_DOUBLE, &C.label_smoothing, "E", "label smoothing", 0, 0.99, NULL, 0 },
    { "--drop-path", CLI_DOUBLE, &C.drop_path, "P", "stochastic depth of the last block", 0, 0.99, NULL, 0 },
    { "--head-dropout", CLI_DOUBLE, &C.head_dropout, "P", "dropout before the classifier", 0, 0.99, NULL, 0 },
    { "--min-scale", CLI_DOUBLE, &C.min_scale, "A", "smallest random-crop area fraction in training", 0.01, 1, NULL, 0 },
    { "--save", CLI_STR, &C.save, "FILE", "write the fine-tuned model (torchvision names, head.1.*)", 0, 0, NULL, CLI_NO_DEFAULT },
};
static const cli_flag shuffle_flags[] = {
    { "--group", CLI_INT, &C.group, "G", "frames per shuffled group", 1, 64, NULL, 0 },
};
static const cli_flag lowshot_flags[] = {
    { "--fractions", CLI_STR, &C.fractions, "LIST", "percentages of the training labels (stratified, seeded, nested)", 0, 0, NULL, 0 },
    { "--finetune", CLI_BOOL, &C.finetune, NULL, "fine-tune on each subset instead of the linear probe", 0, 0, NULL, 0 },
};
static const cli_flag knn_flags[] = {
    { "--k", CLI_INT, &C.k, "K", "neighbours", 1, 100000, NULL, 0 },
    { "--temperature", CLI_DOUBLE, &C.temperature, "T", "votes weigh exp(cosine / T)", 1e-6, 1e6, NULL, 0 },
};
static const cli_flag perclass_flags[] = {
    { "--weights2", CLI_STR, &C.weights2, "FILE", "the second checkpoint (B); rows sort by B - A", 0, 0, NULL, CLI_REQUIRED },
    { "--encoder2", CLI_CHOICE, &C.encoder2, NULL, "which encoder of the second checkpoint", 0, 0, encoders, 0 },
    { "--motion", CLI_BOOL, &C.motion, NULL, "add each class's mean flow-edge motion (motion index, cached beside --val)", 0, 0, NULL, 0 },
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define die(...) cli_die("eval", __VA_ARGS__)

// ---------------------------------------------------------------------------------------------
// JSON result
// ---------------------------------------------------------------------------------------------
typedef struct { char *s; size_t n, cap; int first; } ev_json;

static void js_raw(ev_json *j, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(j->s ? j->s + j->n : NULL, j->s ? j->cap - j->n : 0, fmt, ap);
        va_end(ap);
        if (j->s && j->n + (size_t)k < j->cap) { j->n += (size_t)k; return; }
        j->cap = (j->cap + (size_t)k + 256) * 2;
        j->s = (char *)realloc(j->s, j->cap);
        if (!j->s) die("out of memory");
    }
}
static void js_key(ev_json *j, const char *key) { js_raw(j, "%s\"%s\": ", j->first ? "" : ", ", key); j->first = 0; }
static void js_str(ev_json *j, const char *key, const char *v) {
    js_key(j, key);
    js_raw(j, "\"");
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '"' || *p == '\\') js_raw(j, "\\%c", *p);
        else if ((unsigned char)*p < 32) js_raw(j, "\\u%04x", *p);
        else js_raw(j, "%c", *p);
    }
    js_raw(j, "\"");
}
static void js_num(ev_json *j, const char *key, double v) {
    js_key(j, key);
    if (isfinite(v)) js_raw(j, "%.6g", v); else js_raw(j, "null");
}
static void js_int(ev_json *j, const char *key, int64_t v) { js_key(j, key); js_raw(j, "%lld", (long long)v); }
static void js_begin(ev_json *j, const char *task) { memset(j, 0, sizeof *j); j->first = 1; js_raw(j, "{"); js_str(j, "task", task); }

static void js_emit(ev_json *j) {
    js_raw(j, "}");
    if (!C.json) { printf("%s\n", j->s); fflush(stdout); free(j->s); return; }
    FILE *f = fopen(C.json, "w");
    if (!f || fprintf(f, "%s\n", j->s) < 0 || fclose(f)) die("%s: cannot write the JSON result (%s)", C.json, strerror(errno));
    fprintf(stderr, "eval: wrote %s\n", C.json);
    free(j->s);
}

// ---------------------------------------------------------------------------------------------
// Lists, models, features
// ---------------------------------------------------------------------------------------------
typedef struct {
    const char *path;
    int train;            // 1: the training part of a split folder
    ds_list list;
    ld_loader L;
    int *y;               // labels [n]
} ev_set;

typedef struct { float *X; int64_t n; int views, D; uint8_t *valid; } ev_feats;

static int ev_ntv, ev_nsv;

static void ev_parse_views(void) {
    char x;
    if (sscanf(C.views, "%d%c%d", &ev_ntv, &x, &ev_nsv) != 3 || (x != 'x' && x != 'X') || ev_ntv < 1 || ev_nsv < 1 ||
        ev_ntv > 64 || ev_nsv > 16)
        die("--views %s: expected TxS, e.g. 1x1 or 10x3 (T 1..64 temporal, S 1..16 spatial)", C.views);
}

static int ev_parse_list(const char *s, double *v, int max, const char *flag) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !(x > 0) || n == max) die("%s %s: expected a comma list of up to %d positive numbers", flag, s, max);
        v[n++] = x;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') die("%s %s: expected a comma list of numbers", flag, s);
    }
    if (!n) die("%s: empty list", flag);
    return n;
}

// The list and its labels (s->L untouched).
static void ev_load_list(ev_set *s, const char *path, int train) {
    memset(s, 0, sizeof *s);
    s->path = path; s->train = train;
    ds_opts o = { C.root, C.split, train };
    char err[2048];
    if (ds_load(path, &o, &s->list, err, sizeof err)) die("%s", err);
    if (s->list.n == 0) die("%s: no videos listed", path);
    s->y = (int *)malloc((size_t)s->list.n * sizeof(int));
    for (int64_t i = 0; i < s->list.n; i++) {
        s->y[i] = s->list.items[i].label;
        if (s->y[i] < 0) die("%s: %s has no label: evaluation lists need `path label` lines", path, s->list.items[i].path);
    }
}

static void ev_open_set(ev_set *s, const char *path, int train, const probe_encoder *e) {
    ev_load_list(s, path, train);
    ld_init(&s->L, &s->list, e->cfg.frames, e->stride, e->cfg.size, (uint64_t)C.seed);
    s->L.beta = INFINITY;
    s->L.n_shuffles = 0;
    s->L.mode = clip_mode_parse(C.clips);
    if (s->L.mode < 0) die("--clips %s: expected ordered, static or shuffled", C.clips);
}

static void ev_close_set(ev_set *s) { ld_free(&s->L); ds_free(&s->list); free(s->y); }

static probe_encoder_opts ev_encoder_opts(const char *weights, const char *encoder, int classes) {
    probe_encoder_opts o;
    memset(&o, 0, sizeof o);
    o.weights = weights; o.encoder = encoder; o.model = C.model; o.kt = C.kt; o.frames = C.frames; o.stride = C.stride;
    o.size = C.size; o.pool = C.pool; o.classes = classes; o.interpolate = C.interpolate; o.device = C.device; o.precision = C.precision;
    o.batch = C.batch; o.seed = (uint64_t)C.seed; o.quiet = C.quiet;
    return o;
}

// announce: print the encoder line (and the random-init warning).
static void ev_open_encoder(probe_encoder *e, const char *weights, const char *encoder, int classes, int announce) {
    char err[4096];
    probe_encoder_opts o = ev_encoder_opts(weights, encoder, classes);
    o.quiet = C.quiet || !announce;
    if (probe_encoder_open(e, &o, err, sizeof err)) die("%s", err);
    if (!o.quiet) fprintf(stderr, "eval: encoder: %s\n", e->desc);
}

// The cache folder (created), or NULL when caching is off.
static const char *ev_cache_dir(const char *weights) {
    static char dir[4096];
    if (C.no_cache) return NULL;
    if (C.cache) snprintf(dir, sizeof dir, "%s", C.cache);
    else if (C.out) snprintf(dir, sizeof dir, "%s", C.out);
    else if (weights) {
        snprintf(dir, sizeof dir, "%s", weights);
        char *sl = strrchr(dir, '/');
        if (sl) snprintf(sl, sizeof dir - (size_t)(sl - dir), "/eval");
        else snprintf(dir, sizeof dir, "eval");
    } else snprintf(dir, sizeof dir, "runs/eval-random");
    char err[1024];
    if (vwrite_mkdirs(dir, err, sizeof err)) {
        fprintf(stderr, "warning: no feature cache: %s (pass --cache DIR or --no-cache)\n", err);
        return NULL;
    }
    return dir;
}

// Features of every video of s: [n][views][D] (cached). perms: NULL or the per-video shuffles.
static void ev_features(probe_encoder *e, const char *weights, ev_set *s, int ntv, int nsv, int flip, const int *perms,
                        ev_feats *out) {
    int views = ntv * nsv * (flip ? 2 : 1);
    int64_t n = s->list.n;
    out->n = n; out->views = views; out->D = e->D;
    out->X = (float *)malloc((size_t)(n * views) * (size_t)e->D * sizeof(float));
    out->valid = (uint8_t *)malloc((size_t)n);
    if (!out->X || !out->valid) die("out of memory for %lld x %d features", (long long)(n * views), e->D);
    char stamp[64], key[8192], path[4400], err[4096], label[64];
    char *rp = realpath(s->path, NULL);
    probe_file_stamp(s->path, stamp, sizeof stamp);
    snprintf(key, sizeof key, "%s | list=%s stamp=%s split=%d part=%s n=%lld | views=%dx%d flip=%d | %s", e->ident,
             rp ? rp : s->path, stamp, C.split, s->train ? "train" : "test", (long long)n, ntv, nsv, flip,
             perms ? "shuffled" : "ordered");
    if (s->L.mode != CLIP_ORDERED) {   // clip modes: the key names the mode (and the seed of shuffled clips)
        size_t k = strlen(key);
        snprintf(key + k, sizeof key - k, " clips=%s seed=%lld", C.clips, s->L.mode == CLIP_SHUFFLED ? (long long)C.seed : 0LL);
    }
    if (perms) { size_t k = strlen(key); snprintf(key + k, sizeof key - k, " seed=%lld group=%d", (long long)C.seed, C.group); }
    free(rp);
    const char *dir = ev_cache_dir(weights);
    if (dir) {
        snprintf(path, sizeof path, "%s/features-%016llx.safetensors", dir, (unsigned long long)scvrl_fnv1a64(key));
        int rc = probe_cache_load(path, key, n, views, e->D, out->X, out->valid, err, sizeof err);
        if (rc == 0) { if (!C.quiet) fprintf(stderr, "eval: %s features of %s: cached in %s\n", perms ? "shuffled" : "ordered", s->path, path); return; }
        if (rc < 0) fprintf(stderr, "warning: ignoring the cache: %s\n", err);
    }
    probe_eval_clips ec = { &s->L, ntv, nsv, flip };
    snprintf(label, sizeof label, "%s%s", s->train ? "train" : "val", perms ? " shuffled" : "");
    probe_extract_opts xo = { n, views, e->cfg.frames, (int64_t)e->cfg.size * e->cfg.size, e->D, C.batch, probe_eval_clip, &ec,
                              probe_encoder_embed, e, perms, C.group, C.skip_bad, label, C.quiet };
    if (probe_extract(&xo, out->X, out->valid, err, sizeof err)) die("%s", err);
    if (dir) {
        char about[1200];
        snprintf(about, sizeof about, "%s; %s; views %dx%d%s", e->desc, s->path, ntv, nsv, perms ? "; shuffled" : "");
        if (probe_cache_save(path, key, about, n, views, e->D, out->X, out->valid, err, sizeof err))
            fprintf(stderr, "warning: features not cached: %s\n", err);
    }
}

static void ev_free_feats(ev_feats *f) { free(f->X); free(f->valid); memset(f, 0, sizeof *f); }

static int ev_classes(const ev_set *a, const ev_set *b) {
    int c = a->list.n_classes > b->list.n_classes ? a->list.n_classes : b->list.n_classes;
    for (int64_t i = 0; i < a->list.n; i++) if (a->y[i] + 1 > c) c = a->y[i] + 1;
    for (int64_t i = 0; i < b->list.n; i++) if (b->y[i] + 1 > c) c = b->y[i] + 1;
    return c;
}

static int ev_pairs(int classes) { return C.pairs >= 0 ? (2 * C.pairs <= classes ? C.pairs : classes / 2) : classes == 18 ? 9 : 0; }

static double ev_grid[32];
static probe_cv_opts ev_cv_opts(void) {
    probe_cv_opts o = probe_cv_defaults();
    o.n_grid = ev_parse_list(C.l2, ev_grid, 32, "--l2");
    o.grid = ev_grid; o.folds = C.folds; o.seed = (uint64_t)C.seed; o.quiet = C.quiet;
    return o;
}

static const char *ev_class_name(const ev_set *s, int c, int classes, char *buf, size_t n) {
    if (s->list.classes && c < s->list.n_classes && s->list.classes[c]) return s->list.classes[c];
    if (ev_pairs(classes) == 9 && classes == SYNTH_MOTION_CLASSES) return synth_motion_name(c);
    snprintf(buf, n, "%d", c);
    return buf;
}

static void js_arr(ev_json *j, const char *key, const double *v, int n, double scale) {
    js_key(j, key);
    js_raw(j, "[");
    for (int i = 0; i < n; i++) { if (isfinite(v[i])) js_raw(j, "%s%.6g", i ? ", " : "", v[i] * scale); else js_raw(j, "%snull", i ? ", " : ""); }
    js_raw(j, "]");
}

static void js_common(ev_json *j, const probe_encoder *e, const char *weights, const char *encoder) {
    js_str(j, "weights", weights ? weights : "random");
    js_str(j, "encoder", encoder);
    js_str(j, "model", e->cfg.name);
    js_int(j, "frames", e->cfg.frames); js_int(j, "stride", e->stride); js_int(j, "size", e->cfg.size);
    js_str(j, "train", C.train); js_str(j, "val", C.val);
    js_str(j, "views", C.views); js_int(j, "flip", C.flip);
    js_str(j, "clips", C.clips);
}

// ---------------------------------------------------------------------------------------------
// A run: one encoder, the two lists, their features
// ---------------------------------------------------------------------------------------------
typedef struct {
    const char *weights, *encoder;
    probe_encoder e;
    ev_set tr, va;
    ev_feats ftr, fva;
    int classes, pairs;
    uint8_t *vkeep;         // [va.list.n]: 1 for the val videos that were read (rows of fva), NULL: all
} ev_run;

static void ev_start(ev_run *r, const char *weights, const char *encoder, int head) {
    memset(r, 0, sizeof *r);
    r->weights = weights; r->encoder = encoder;
    ev_open_encoder(&r->e, weights, encoder, 0, !head);
    ev_open_set(&r->tr, C.train, 1, &r->e);
    ev_open_set(&r->va, C.val, 0, &r->e);
    r->classes = ev_classes(&r->tr, &r->va);
    r->pairs = ev_pairs(r->classes);
    if (head) { probe_encoder_close(&r->e); ev_open_encoder(&r->e, weights, encoder, r->classes, 1); }
}

// Keep rows whose mask is set: X [n][views][D] and y in place. Returns the new count.
static int64_t ev_compact(ev_feats *f, int *y, const uint8_t *mask) {
    int64_t k = 0, row = (int64_t)f->views * f->D;
    for (int64_t i = 0; i < f->n; i++) {
        if (!mask[i]) continue;
        if (k != i) { memmove(f->X + k * row, f->X + i * row, (size_t)row * sizeof(float)); if (y) y[k] = y[i]; }
        k++;
    }
    f->n = k;
    return k;
}

static void ev_extract(ev_run *r) {
    ev_features(&r->e, r->weights, &r->tr, 1, 1, 0, NULL, &r->ftr);
    ev_features(&r->e, r->weights, &r->va, ev_ntv, ev_nsv, C.flip, NULL, &r->fva);
    int64_t ntr = r->ftr.n, nva = r->fva.n;
    uint8_t *mt = (uint8_t *)malloc((size_t)ntr), *mv = (uint8_t *)malloc((size_t)nva);
    memcpy(mt, r->ftr.valid, (size_t)ntr); memcpy(mv, r->fva.valid, (size_t)nva);
    if (ev_compact(&r->ftr, r->tr.y, mt) < ntr) fprintf(stderr, "warning: %lld unreadable training videos left out\n", (long long)(ntr - r->ftr.n));
    if (ev_compact(&r->fva, r->va.y, mv) < nva) fprintf(stderr, "warning: %lld unreadable test videos left out\n", (long long)(nva - r->fva.n));
    free(mt);
    r->vkeep = mv;
    if (!r->ftr.n || !r->fva.n) die("no readable videos left in %s", !r->ftr.n ? C.train : C.val);
}

static void ev_end(ev_run *r) {
    ev_free_feats(&r->ftr); ev_free_feats(&r->fva);
    ev_close_set(&r->tr); ev_close_set(&r->va);
    probe_encoder_close(&r->e);
    free(r->vkeep); r->vkeep = NULL;
}

// ---------------------------------------------------------------------------------------------
// Reports shared by the commands: reversal pairs, per-class top-1 and confusion
// ---------------------------------------------------------------------------------------------
// Pair accuracy of each reversal pair (pair_acc [pairs], fractions) as a table.
static void ev_pairs_table(const ev_set *va, int classes, int pairs, const double *pair_acc) {
    char n0[32], n1[32], nm[80];
    printf("  %-36s %8s\n", "reversal pair", "pair acc");
    for (int q = 0; q < pairs; q++) {
        snprintf(nm, sizeof nm, "%s / %s", ev_class_name(va, 2 * q, classes, n0, sizeof n0), ev_class_name(va, 2 * q + 1, classes, n1, sizeof n1));
        printf("  %-36s %8.2f\n", nm, 100 * pair_acc[q]);
    }
}

// Per-class report of the predictions pred [n] of the val rows that were scored (labels y [n]); keep [n_list]
// marks which rows of the val list they are (NULL: all, n = n_list). Computed once, printed as a table and
// written into the JSON by the same code for every command.
typedef struct {
    int classes;
    int64_t n_list;
    int *pred_list;          // [n_list]: prediction per val-list video, -1 where it was left out
    int64_t *conf, *count;   // [classes][classes] (row: true, column: predicted), [classes]
    double *acc;             // [classes] per-class top-1 (fraction; NAN for absent classes)
} ev_class_rep;

static void ev_class_report(ev_class_rep *cr, const int *pred, const int *y, int64_t n, const uint8_t *keep, int64_t n_list,
                            int classes) {
    int K = classes;
    cr->classes = K; cr->n_list = n_list;
    cr->pred_list = (int *)malloc((size_t)(n_list + 1) * sizeof(int));
    cr->conf = (int64_t *)malloc((size_t)K * (size_t)K * sizeof(int64_t));
    cr->count = (int64_t *)malloc((size_t)K * sizeof(int64_t));
    cr->acc = (double *)malloc((size_t)K * sizeof(double));
    if (!cr->pred_list || !cr->conf || !cr->count || !cr->acc) die("out of memory for the per-class report (%d classes)", K);
    for (int64_t i = 0, k = 0; i < n_list; i++) cr->pred_list[i] = !keep || keep[i] ? (k < n ? pred[k++] : -1) : -1;
    probe_confusion(pred, y, n, K, cr->conf);
    probe_per_class(pred, y, n, K, cr->acc, cr->count);
}

static void ev_class_report_free(ev_class_rep *cr) { free(cr->pred_list); free(cr->conf); free(cr->count); free(cr->acc); }

// The table: each class's videos, top-1, and the class it is most often mistaken for (share of its videos).
static void ev_class_table(const ev_set *va, const ev_class_rep *cr) {
    int K = cr->classes;
    char n0[32], n1[32];
    printf("  %-22s %6s %8s   %-22s %8s\n", "class", "videos", "top-1", "most confused with", "share");
    for (int c = 0; c < K; c++) {
        if (!cr->count[c]) continue;
        const int64_t *row = cr->conf + (int64_t)c * K;
        int w = -1;
        for (int q = 0; q < K; q++) if (q != c && row[q] > 0 && (w < 0 || row[q] > row[w])) w = q;
        printf("  %-22s %6lld %8.2f   %-22s", ev_class_name(va, c, K, n0, sizeof n0), (long long)cr->count[c], 100 * cr->acc[c],
               w >= 0 ? ev_class_name(va, w, K, n1, sizeof n1) : "-");
        if (w >= 0) printf(" %8.2f", 100.0 * (double)row[w] / (double)cr->count[c]);
        printf("\n");
    }
}

// JSON: class_top1 [classes] (percent, null for absent classes), confusion [classes][classes] (counts; row: true
// class, column: predicted), pred [n_list] (each val-list video's predicted class, null where it was left out).
static void js_class_report(ev_json *j, const ev_class_rep *cr) {
    int K = cr->classes;
    js_arr(j, "class_top1", cr->acc, K, 100);
    js_key(j, "confusion");
    js_raw(j, "[");
    for (int c = 0; c < K; c++) {
        js_raw(j, "%s[", c ? ", " : "");
        for (int q = 0; q < K; q++) js_raw(j, "%s%lld", q ? ", " : "", (long long)cr->conf[(int64_t)c * K + q]);
        js_raw(j, "]");
    }
    js_raw(j, "]");
    js_key(j, "pred");
    js_raw(j, "[");
    for (int64_t i = 0; i < cr->n_list; i++) {
        if (cr->pred_list[i] >= 0) js_raw(j, "%s%d", i ? ", " : "", cr->pred_list[i]);
        else js_raw(j, "%snull", i ? ", " : "");
    }
    js_raw(j, "]");
}

// ---------------------------------------------------------------------------------------------
// The linear probe
// ---------------------------------------------------------------------------------------------
typedef struct {
    probe_cv_opts cvo;
    probe_cv_result cv;
    double l2, train_top1, top1, top5, pair, pair_acc[64];
    double *prob;          // [n_val][classes]
    int *pred;             // [n_val]
    int64_t n_train;
} ev_result;

// Probe trained on the training rows `rows` (NULL: all), scored on the whole val set.
static void ev_probe(ev_run *r, const int64_t *rows, int64_t nrows, ev_result *out) {
    memset(out, 0, sizeof *out);
    out->cvo = ev_cv_opts();
    int D = r->e.D, Cn = r->classes;
    int64_t n = rows ? nrows : r->ftr.n, nv = r->fva.n;
    float *X = (float *)malloc((size_t)(n * D) * sizeof(float));
    int *y = (int *)malloc((size_t)n * sizeof(int));
    if (!X || !y) die("out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t s = rows ? rows[i] : i;
        memcpy(X + i * D, r->ftr.X + s * D, (size_t)D * sizeof(float));
        y[i] = r->tr.y[s];
    }
    probe_linear m;
    char err[1024];
    if (probe_linear_train(&m, X, y, n, D, Cn, &out->cvo, &out->cv, err, sizeof err)) die("linear probe: %s", err);
    out->prob = (double *)malloc((size_t)(nv * Cn) * sizeof(double));
    out->pred = (int *)malloc((size_t)nv * sizeof(int));
    if (!out->prob || !out->pred) die("out of memory");
    if (probe_linear_predict(&m, r->fva.X, nv, r->fva.views, out->prob, NULL, err, sizeof err)) die("%s", err);
    for (int64_t i = 0; i < nv; i++) out->pred[i] = probe_argmax(out->prob + i * Cn, Cn);
    out->l2 = out->cv.l2; out->train_top1 = out->cv.train_acc; out->n_train = n;
    out->top1 = probe_topk(out->prob, r->va.y, nv, Cn, 1);
    out->top5 = probe_topk(out->prob, r->va.y, nv, Cn, 5);
    out->pair = r->pairs ? probe_pair_accuracy(out->prob, r->va.y, nv, Cn, r->pairs, out->pair_acc) : NAN;
    probe_linear_free(&m);
    free(X); free(y);
}

static void ev_free_result(ev_result *r) { free(r->prob); free(r->pred); }

static void ev_print_header(const char *what, const ev_run *r) {
    printf("%s\n", what);
    printf("  encoder  %s\n", r->e.desc);
    printf("  train    %s: %lld videos, %d classes\n", C.train, (long long)r->ftr.n, r->classes);
    printf("  val      %s: %lld videos, views %s%s\n", C.val, (long long)r->fva.n, C.views, C.flip ? " + mirrored" : "");
    if (strcmp(C.clips, "ordered")) printf("  clips    %s (training and test)\n", C.clips);
}

static void ev_print_cv(const ev_result *res) {
    if (res->cvo.n_grid < 2) { printf("  l2 %g (given, no cross-validation)\n", res->l2); return; }
    printf("  %-10s %d-fold CV top-1   log-loss\n", "l2", res->cvo.folds);
    for (int i = 0; i < res->cvo.n_grid; i++)
        printf("  %-10.0e %12.2f %10.4f%s\n", res->cvo.grid[i], 100 * res->cv.cv_acc[i], res->cv.cv_loss[i], i == res->cv.best ? "   <- chosen" : "");
}

static void ev_parse(const char *sub, const char *usage, const char *about, const cli_flag *const *groups, const int *sizes,
                     int ng, int argc, char **argv) {
    static cli_flag all[96];
    static char prog[64];
    int n = 0;
    for (int g = 0; g < ng; g++) for (int i = 0; i < sizes[g] && n < 96; i++) all[n++] = groups[g][i];
    snprintf(prog, sizeof prog, "eval %s", sub);
    cli_spec spec = { prog, usage, about, all, n, mvit_print_presets,
                      "Accuracies are in percent. Settings left open come from the checkpoint's metadata (pretrain writes them)." };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    if (C.threads > 0) scvrl_set_threads(C.threads);
    ev_parse_views();
}

static int cmd_linear(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, clips_flags, probe_flags };
    int sz[] = { N_OF(common_flags), N_OF(clips_flags), N_OF(probe_flags) };
    ev_parse("linear", "--train LIST --val LIST [--weights FILE] [flags]",
             "Linear probe: multinomial logistic regression on frozen, standardised features of the centre clip,\n"
             "L2 chosen by cross-validation on the training set; test views averaged over softmax scores.", g, sz, 3, argc, argv);
    ev_run r;
    ev_start(&r, C.weights, C.encoder, 0);
    ev_extract(&r);
    ev_result res;
    ev_probe(&r, NULL, 0, &res);
    ev_print_header("linear probe", &r);
    ev_print_cv(&res);
    printf("  train top-1 %.2f\n", 100 * res.train_top1);
    printf("  val   top-1 %.2f   top-5 %.2f", 100 * res.top1, 100 * res.top5);
    if (r.pairs) printf("   pair accuracy %.2f (%d reversal pairs)", 100 * res.pair, r.pairs);
    printf("\n");
    ev_class_rep cr;
    ev_class_report(&cr, res.pred, r.va.y, r.fva.n, r.vkeep, r.va.list.n, r.classes);
    ev_class_table(&r.va, &cr);
    if (r.pairs) ev_pairs_table(&r.va, r.classes, r.pairs, res.pair_acc);
    ev_json j;
    js_begin(&j, "linear");
    js_common(&j, &r.e, C.weights, C.encoder);
    js_int(&j, "n_train", r.ftr.n); js_int(&j, "n_val", r.fva.n); js_int(&j, "classes", r.classes);
    js_arr(&j, "l2_grid", res.cvo.grid, res.cvo.n_grid, 1);
    if (res.cvo.n_grid > 1) js_arr(&j, "cv_top1", res.cv.cv_acc, res.cvo.n_grid, 100);
    js_num(&j, "l2", res.l2); js_num(&j, "train_top1", 100 * res.train_top1);
    js_num(&j, "top1", 100 * res.top1); js_num(&j, "top5", 100 * res.top5);
    if (r.pairs) { js_num(&j, "pair_acc", 100 * res.pair); js_arr(&j, "pair_acc_per_pair", res.pair_acc, r.pairs, 100); }
    js_class_report(&j, &cr);
    js_emit(&j);
    ev_class_report_free(&cr);
    ev_free_result(&res);
    ev_end(&r);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning: the whole network and a Linear(D, classes) head, AdamW with warm-up and cosine,
// drop-path, head dropout, label smoothing; training clips: random crop (no flip unless --flip).
// ---------------------------------------------------------------------------------------------
typedef struct {
    scvrl_ctx *ctx;
    scvrl_graph *g;
    scvrl_tensor *x, *tgt, *loss, *logits;
    int B;
    int64_t clip;
} ev_ftg;

static void ev_ft_build(ev_ftg *G, probe_encoder *e, int B) {
    memset(G, 0, sizeof *G);
    G->ctx = scvrl_ctx_new(0);
    G->B = B;
    G->clip = 3LL * e->cfg.frames * e->cfg.size * e->cfg.size;
    int64_t ne[5] = { B, 3, e->cfg.frames, e->cfg.size, e->cfg.size };
    G->x = scvrl_new_data(G->ctx, SCVRL_DT_F32, 5, ne);
    G->tgt = scvrl_new_1d(G->ctx, SCVRL_DT_I32, B);
    e->m.cfg.drop_path = (float)C.drop_path;
    scvrl_tensor *f = mvit_forward(G->ctx, &e->m, G->x, 1, 0, NULL);
    if (C.head_dropout > 0) f = scvrl_dropout(G->ctx, f, (float)C.head_dropout, 1000);
    G->logits = scvrl_linear(G->ctx, f, scvrl_params_find(&e->m.P, "head.1.weight"), scvrl_params_find(&e->m.P, "head.1.bias"));
    scvrl_tensor *rows = scvrl_cross_entropy(G->ctx, G->logits, G->tgt);
    if (C.label_smoothing > 0) {       // (1 - e) CE + e * mean_c(-log p_c)
        scvrl_tensor *u = scvrl_scale(G->ctx, scvrl_mean(G->ctx, scvrl_log_softmax(G->ctx, G->logits), 1, 0), (float)-C.label_smoothing);
        rows = scvrl_add(G->ctx, scvrl_scale(G->ctx, rows, (float)(1.0 - C.label_smoothing)), u);
    }
    G->loss = scvrl_mean_all(G->ctx, rows);
    scvrl_mark_output(G->loss);
    G->g = scvrl_graph_new();
    scvrl_graph_expand(G->g, G->loss);
    scvrl_graph_backward(G->ctx, G->g, G->loss);
}

// Fills the batch of step `step` from the seeded per-epoch order of rows; returns videos skipped.
static int64_t ev_ft_batch(ev_ftg *G, ev_set *tr, const int64_t *rows, int64_t n, int64_t step, int64_t *order, int64_t *order_epoch) {
    int64_t spe = (n + G->B - 1) / G->B, epoch = step / spe, skipped = 0;
    if (*order_epoch != epoch) {
        for (int64_t i = 0; i < n; i++) order[i] = rows ? rows[i] : i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(scvrl_rng_u64((uint64_t)C.seed, scvrl_fnv1a64("eval.finetune") ^ (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = order[i]; order[i] = order[j]; order[j] = t;
        }
        *order_epoch = epoch;
    }
    int32_t *tgt = (int32_t *)G->tgt->data;
    char first[1024] = "";
    #pragma omp parallel for schedule(dynamic) reduction(+ : skipped)
    for (int b = 0; b < G->B; b++) {
        int64_t pos = ((step % spe) * G->B + b) % n;
        char err[1024];
        tgt[b] = tr->y[order[pos]];
        memset(scvrl_f32(G->x) + b * G->clip, 0, (size_t)G->clip * sizeof(float));
        for (int k = 0; k < n && k < 16; k++) {
            int64_t v = order[(pos + k) % n];
            if (!ld_pretrain_sample(&tr->L, v, (uint64_t)epoch, (uint64_t)(step * G->B + b), scvrl_f32(G->x) + b * G->clip, NULL, NULL, NULL, err, sizeof err)) {
                tgt[b] = tr->y[v];
                break;
            }
            skipped++;
            #pragma omp critical(ev_ft_err)
            if (!first[0]) snprintf(first, sizeof first, "%s", err);
        }
    }
    if (first[0] && !C.skip_bad) die("%s\n  (remove the video from the list, or pass --skip-bad)", first);
    return skipped;
}

static void ev_ft_loader(ev_set *tr) {
    tr->L.aug.p_flip = C.flip ? 0.5f : 0.0f;
    tr->L.aug.p_gray = 0; tr->L.aug.p_blur = 0; tr->L.aug.p_jitter = 0;
    tr->L.aug.scale_min = (float)C.min_scale;
}

// Trains e (which has a head) on the training rows (NULL: all n).
static void ev_finetune_train(probe_encoder *e, ev_set *tr, const int64_t *rows, int64_t n) {
    ev_ftg G;
    ev_ft_build(&G, e, C.batch);
    ev_ft_loader(tr);
    int64_t spe = (n + C.batch - 1) / C.batch, total = spe * C.epochs;
    int64_t warm = (C.warmup_epochs >= 0 ? C.warmup_epochs : (C.epochs + 5) / 10) * spe, order_epoch = -1, skipped = 0;
    int64_t *order = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    cli_progress p;
    cli_progress_start(&p, "finetune", "steps", total, C.quiet);
    double ep_loss = 0;
    char err[1024];
    for (int64_t step = 0; step < total; step++) {
        skipped += ev_ft_batch(&G, tr, rows, n, step, order, &order_epoch);
        scvrl_params_zero_grad(&e->m.P);
        G.g->seed = scvrl_rng_u64((uint64_t)C.seed, 3, (uint64_t)step);
        if (scvrl_graph_compute(G.g, e->be, err, sizeof err)) die("finetune: %s", err);
        float loss = scvrl_f32(G.loss)[0];
        if (!isfinite(loss)) die("finetune: the loss is %g at step %lld: try a lower --lr", loss, (long long)step);
        scvrl_adamw_cfg ac = scvrl_adamw_default();
        ac.lr = (float)scvrl_lr_schedule(step, warm, total, C.lr * 0.01, C.lr, C.lr * 0.01);
        ac.weight_decay = (float)C.wd;
        if (scvrl_adamw_step(&e->m.P, &ac, err, sizeof err)) die("finetune: %s", err);
        ep_loss += loss;
        cli_progress_update(&p, step + 1);
        if ((step + 1) % spe == 0 && !C.quiet) {
            cli_progress_break(&p);
            fprintf(stderr, "finetune: epoch %lld/%d  loss %.4f  lr %.2e\n", (long long)((step + 1) / spe), C.epochs, ep_loss / spe, ac.lr);
            ep_loss = 0;
        }
    }
    cli_progress_finish(&p);
    if (skipped) fprintf(stderr, "warning: %lld unreadable training clips were replaced by others\n", (long long)skipped);
    free(order);
    scvrl_graph_free(G.g);
    scvrl_ctx_free(G.ctx);
}

// Softmax scores of the fine-tuned model on the val set, averaged over views: prob [n][classes].
static void ev_finetune_scores(probe_encoder *e, ev_set *va, int classes, double *prob, uint8_t *valid) {
    int views = ev_ntv * ev_nsv * (C.flip ? 2 : 1);
    int64_t n = va->list.n;
    float *lg = (float *)malloc((size_t)(n * views * classes) * sizeof(float));
    double *lgd = (double *)malloc((size_t)(n * views * classes) * sizeof(double));
    if (!lg || !lgd) die("out of memory");
    e->logits = 1;
    probe_eval_clips ec = { &va->L, ev_ntv, ev_nsv, C.flip };
    probe_extract_opts xo = { n, views, e->cfg.frames, (int64_t)e->cfg.size * e->cfg.size, classes, C.batch, probe_eval_clip, &ec,
                              probe_encoder_embed, e, NULL, C.group, C.skip_bad, "val", C.quiet };
    char err[2048];
    if (probe_extract(&xo, lg, valid, err, sizeof err)) die("%s", err);
    for (int64_t i = 0; i < n * views * classes; i++) lgd[i] = lg[i];
    probe_views_average(lgd, n, views, classes, prob);
    e->logits = 0;
    free(lg); free(lgd);
}

// Top-1 / top-5 / pair accuracy over the valid rows; pred [n] gets the predictions of the valid rows (first k) and
// yv [n] their labels; returns k.
static int64_t ev_scores_metrics(const double *prob, const int *y, const uint8_t *valid, int64_t n, int classes, int pairs,
                                 double *top1, double *top5, double *pair, double *pair_acc, int *pred, int *yv) {
    double *p = (double *)calloc((size_t)(n * classes + 1), sizeof(double));
    int *yy = (int *)calloc((size_t)(n + 1), sizeof(int));
    if (!p || !yy) die("out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) if (valid[i]) { memcpy(p + k * classes, prob + i * classes, (size_t)classes * sizeof(double)); yy[k++] = y[i]; }
    *top1 = probe_topk(p, yy, k, classes, 1);
    *top5 = probe_topk(p, yy, k, classes, 5);
    *pair = pairs ? probe_pair_accuracy(p, yy, k, classes, pairs, pair_acc) : NAN;
    for (int64_t i = 0; i < k; i++) { pred[i] = probe_argmax(p + i * classes, classes); yv[i] = yy[i]; }
    free(p); free(yy);
    return k;
}

static int cmd_finetune(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, clips_flags, ft_flags };
    int sz[] = { N_OF(common_flags), N_OF(clips_flags), N_OF(ft_flags) };
    ev_parse("finetune", "--train LIST --val LIST [--weights FILE] [flags]",
             "Fine-tunes the whole network with a Linear(D, classes) head (AdamW, warm-up + cosine, drop-path,\n"
             "label smoothing) on random crops of the training videos, then tests with --views.", g, sz, 3, argc, argv);
    ev_run r;
    ev_start(&r, C.weights, C.encoder, 1);
    if (!C.weights && (C.label_smoothing > 0 || C.drop_path > 0 || C.head_dropout > 0))
        fprintf(stderr, "note: training from scratch with regularisers meant for fine-tuning a pretrained model (label smoothing %g,\n"
                "  drop-path %g, head dropout %g); from scratch on the synthetic motion set, mvit-tiny reached 86.9%% with\n"
                "  --label-smoothing 0 --drop-path 0 --head-dropout 0 --min-scale 0.5 (notes/gates.md)\n",
                C.label_smoothing, C.drop_path, C.head_dropout);
    double t0 = cli_now();
    ev_finetune_train(&r.e, &r.tr, NULL, r.tr.list.n);
    double train_s = cli_now() - t0;
    if (C.save) {
        char err[1024];
        if (mvit_save(&r.e.m, C.save, err, sizeof err)) die("%s", err);
        fprintf(stderr, "eval: wrote the fine-tuned model to %s\n", C.save);
    }
    int64_t nv = r.va.list.n;
    double *prob = (double *)malloc((size_t)(nv * r.classes) * sizeof(double)), top1, top5, pair, pair_acc[64];
    uint8_t *valid = (uint8_t *)malloc((size_t)nv);
    int *pred = (int *)malloc((size_t)(nv + 1) * sizeof(int)), *yv = (int *)malloc((size_t)(nv + 1) * sizeof(int));
    if (!prob || !valid || !pred || !yv) die("out of memory");
    ev_finetune_scores(&r.e, &r.va, r.classes, prob, valid);
    int64_t kept = ev_scores_metrics(prob, r.va.y, valid, nv, r.classes, r.pairs, &top1, &top5, &pair, pair_acc, pred, yv);
    ev_class_rep cr;
    ev_class_report(&cr, pred, yv, kept, valid, nv, r.classes);
    r.ftr.n = r.tr.list.n; r.fva.n = nv;
    ev_print_header("fine-tuning", &r);
    printf("  %d epochs, batch %d, lr %g, wd %g, label smoothing %g, drop-path %g, head dropout %g: %.1f s\n", C.epochs, C.batch,
           C.lr, C.wd, C.label_smoothing, C.drop_path, C.head_dropout, train_s);
    printf("  val top-1 %.2f   top-5 %.2f", 100 * top1, 100 * top5);
    if (r.pairs) printf("   pair accuracy %.2f", 100 * pair);
    printf("\n");
    ev_class_table(&r.va, &cr);
    if (r.pairs) ev_pairs_table(&r.va, r.classes, r.pairs, pair_acc);
    ev_json j;
    js_begin(&j, "finetune");
    js_common(&j, &r.e, C.weights, C.encoder);
    js_int(&j, "n_train", r.tr.list.n); js_int(&j, "n_val", nv); js_int(&j, "classes", r.classes);
    js_int(&j, "epochs", C.epochs); js_num(&j, "lr", C.lr); js_num(&j, "train_seconds", train_s);
    js_num(&j, "top1", 100 * top1); js_num(&j, "top5", 100 * top5);
    if (r.pairs) { js_num(&j, "pair_acc", 100 * pair); js_arr(&j, "pair_acc_per_pair", pair_acc, r.pairs, 100); }
    js_class_report(&j, &cr);
    js_emit(&j);
    ev_class_report_free(&cr);
    free(prob); free(valid); free(pred); free(yv);
    r.ftr.n = r.fva.n = 0;
    ev_end(&r);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The shuffle test (paper Table 2)
// ---------------------------------------------------------------------------------------------
static int cmd_shuffle(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, probe_flags, shuffle_flags };
    int sz[] = { N_OF(common_flags), N_OF(probe_flags), N_OF(shuffle_flags) };
    ev_parse("shuffle", "--train LIST --val LIST [--weights FILE] [flags]",
             "Shuffle sensitivity: the linear probe (trained on ordered clips) on ordered and on shuffled test clips:\n"
             "groups of --group frames, one fixed non-identity permutation per video from --seed and its file name,\n"
             "so every checkpoint meets the same shuffles. A model that uses frame order loses accuracy.", g, sz, 3, argc, argv);
    ev_run r;
    ev_start(&r, C.weights, C.encoder, 0);
    int T = r.e.cfg.frames, G = C.group, ng = T / G;
    const char *w = clip_shuffle_kernel_warning(T, G, r.e.cfg.kt, 2, r.e.cfg.kt == 2 ? 0 : 1);
    if (w && !C.quiet) fprintf(stderr, "warning: %s\n", w);
    int64_t nv = r.va.list.n;
    int *perms = (int *)malloc((size_t)(nv * ng) * sizeof(int));
    char err[1024];
    for (int64_t i = 0; i < nv; i++)
        if (probe_video_perm((uint64_t)C.seed, r.va.list.items[i].path, T, G, perms + i * ng, err, sizeof err)) die("--frames %d, --group %d: %s", T, G, err);
    ev_feats fs;
    ev_features(&r.e, r.weights, &r.tr, 1, 1, 0, NULL, &r.ftr);
    ev_features(&r.e, r.weights, &r.va, ev_ntv, ev_nsv, C.flip, NULL, &r.fva);
    ev_features(&r.e, r.weights, &r.va, ev_ntv, ev_nsv, C.flip, perms, &fs);
    uint8_t *mv = (uint8_t *)malloc((size_t)nv), *mt = (uint8_t *)malloc((size_t)r.ftr.n);
    for (int64_t i = 0; i < nv; i++) mv[i] = r.fva.valid[i] && fs.valid[i];
    memcpy(mt, r.ftr.valid, (size_t)r.ftr.n);
    ev_compact(&r.ftr, r.tr.y, mt);
    int *ys = (int *)malloc((size_t)nv * sizeof(int));
    memcpy(ys, r.va.y, (size_t)nv * sizeof(int));
    ev_compact(&r.fva, r.va.y, mv);
    ev_compact(&fs, ys, mv);
    probe_cv_opts cvo = ev_cv_opts();
    probe_shuffle_result sr;
    if (probe_shuffle_eval(r.ftr.X, r.tr.y, r.ftr.n, r.fva.X, fs.X, r.va.y, r.fva.n, r.fva.views, r.e.D, r.classes, r.pairs, &cvo, &sr, err, sizeof err))
        die("shuffle test: %s", err);
    ev_print_header("shuffle test", &r);
    printf("  shuffles: groups of %d frames (%d groups), one permutation per video, seed %lld; l2 %g\n", G, ng, (long long)C.seed, sr.l2);
    printf("  %-16s %9s %9s %9s\n", "", "ordered", "shuffled", "drop");
    printf("  %-16s %9.2f %9.2f %9.2f\n", "top-1", 100 * sr.acc_ordered, 100 * sr.acc_shuffled, 100 * sr.drop);
    if (r.pairs) printf("  %-16s %9.2f %9.2f %9.2f\n", "pair accuracy", 100 * sr.pair_ordered, 100 * sr.pair_shuffled, 100 * (sr.pair_ordered - sr.pair_shuffled));
    printf("  predictions changed by the shuffle: %.2f%%\n", 100 * sr.changed);
    ev_json j;
    js_begin(&j, "shuffle");
    js_common(&j, &r.e, C.weights, C.encoder);
    js_int(&j, "n_train", r.ftr.n); js_int(&j, "n_val", r.fva.n); js_int(&j, "classes", r.classes);
    js_int(&j, "group", G); js_int(&j, "seed", C.seed); js_num(&j, "l2", sr.l2);
    js_num(&j, "top1_ordered", 100 * sr.acc_ordered); js_num(&j, "top1_shuffled", 100 * sr.acc_shuffled); js_num(&j, "drop", 100 * sr.drop);
    if (r.pairs) { js_num(&j, "pair_ordered", 100 * sr.pair_ordered); js_num(&j, "pair_shuffled", 100 * sr.pair_shuffled); }
    js_num(&j, "changed", 100 * sr.changed);
    js_emit(&j);
    free(perms); free(mv); free(mt); free(ys);
    ev_free_feats(&fs);
    ev_end(&r);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Low-shot: 1, 5, 10, 25, 50, 100% of the training labels
// ---------------------------------------------------------------------------------------------
static void ev_lowshot_row(ev_run *r, double frac, const int64_t *rows, int64_t n, double *top1, double *pair, double *l2) {
    if (!C.finetune) {
        ev_result res;
        ev_probe(r, rows, n, &res);
        *top1 = res.top1; *pair = res.pair; *l2 = res.l2;
        ev_free_result(&res);
        return;
    }
    probe_encoder_close(&r->e);
    ev_open_encoder(&r->e, r->weights, r->encoder, r->classes, 0);
    if (!C.quiet) fprintf(stderr, "eval: fine-tuning on %.4g%% of the labels (%lld videos)\n", 100 * frac, (long long)n);
    ev_finetune_train(&r->e, &r->tr, rows, n);
    int64_t nv = r->va.list.n;
    double *prob = (double *)malloc((size_t)(nv * r->classes) * sizeof(double)), t5;
    uint8_t *valid = (uint8_t *)malloc((size_t)nv);
    int *pred = (int *)malloc((size_t)(nv + 1) * sizeof(int)), *yv = (int *)malloc((size_t)(nv + 1) * sizeof(int));
    if (!prob || !valid || !pred || !yv) die("out of memory");
    ev_finetune_scores(&r->e, &r->va, r->classes, prob, valid);
    ev_scores_metrics(prob, r->va.y, valid, nv, r->classes, r->pairs, top1, &t5, pair, NULL, pred, yv);
    *l2 = NAN;
    free(prob); free(valid); free(pred); free(yv);
}

static int cmd_lowshot(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, clips_flags, probe_flags, lowshot_flags, ft_flags };
    int sz[] = { N_OF(common_flags), N_OF(clips_flags), N_OF(probe_flags), N_OF(lowshot_flags), N_OF(ft_flags) };
    ev_parse("lowshot", "--train LIST --val LIST [--weights FILE] [--finetune] [flags]",
             "Low-shot: the linear probe (or, with --finetune, fine-tuning) on stratified, seeded subsets of the\n"
             "training labels (at least one video per class; smaller subsets nest in larger ones).", g, sz, 5, argc, argv);
    double fr[32];
    int nf = ev_parse_list(C.fractions, fr, 32, "--fractions");
    ev_run r;
    ev_start(&r, C.weights, C.encoder, 0);
    if (!C.finetune) ev_extract(&r);
    else { r.ftr.n = r.tr.list.n; r.fva.n = r.va.list.n; }
    int64_t n = r.ftr.n, *rows = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    double top1[32], pair[32], l2[32], cnt[32];
    for (int k = 0; k < nf; k++) {
        if (fr[k] > 100) die("--fractions: %g is above 100%%", fr[k]);
        int64_t m = probe_subset(r.tr.y, n, r.classes, fr[k] / 100.0, (uint64_t)C.seed, rows);
        cnt[k] = (double)m;
        ev_lowshot_row(&r, fr[k] / 100.0, rows, m, &top1[k], &pair[k], &l2[k]);
    }
    ev_print_header(C.finetune ? "low-shot fine-tuning" : "low-shot linear probe", &r);
    printf("  %8s %8s %8s %10s%s\n", "labels %", "videos", "top-1", C.finetune ? "" : "l2", r.pairs ? "   pair acc" : "");
    for (int k = 0; k < nf; k++) {
        printf("  %8.4g %8.0f %8.2f", fr[k], cnt[k], 100 * top1[k]);
        if (C.finetune) printf(" %10s", ""); else printf(" %10.0e", l2[k]);
        if (r.pairs) printf(" %10.2f", 100 * pair[k]);
        printf("\n");
    }
    ev_json j;
    js_begin(&j, "lowshot");
    js_common(&j, &r.e, C.weights, C.encoder);
    js_str(&j, "method", C.finetune ? "finetune" : "linear");
    js_int(&j, "n_val", r.fva.n); js_int(&j, "classes", r.classes);
    js_arr(&j, "fractions", fr, nf, 1); js_arr(&j, "n_train", cnt, nf, 1); js_arr(&j, "top1", top1, nf, 100);
    if (!C.finetune) js_arr(&j, "l2", l2, nf, 1);
    if (r.pairs) js_arr(&j, "pair_acc", pair, nf, 100);
    js_emit(&j);
    free(rows);
    if (C.finetune) r.ftr.n = r.fva.n = 0;
    ev_end(&r);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// kNN
// ---------------------------------------------------------------------------------------------
// Mean over views of the unit-length features: [n][views][D] -> [n][D].
static float *ev_view_mean(const ev_feats *f) {
    float *o = (float *)calloc((size_t)(f->n * f->D) + 1, sizeof(float));
    for (int64_t i = 0; o && i < f->n; i++)
        for (int v = 0; v < f->views; v++) {
            const float *x = f->X + (i * f->views + v) * f->D;
            double s = 0;
            for (int d = 0; d < f->D; d++) s += (double)x[d] * x[d];
            s = s > 0 ? 1.0 / sqrt(s) : 0;
            for (int d = 0; d < f->D; d++) o[i * f->D + d] += (float)(x[d] * s / f->views);
        }
    return o;
}

static int cmd_knn(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, clips_flags, knn_flags };
    int sz[] = { N_OF(common_flags), N_OF(clips_flags), N_OF(knn_flags) };
    ev_parse("knn", "--train LIST --val LIST [--weights FILE] [flags]",
             "k-nearest-neighbour classification: each test video's (view-averaged, unit-length) feature votes with its\n"
             "--k most cosine-similar training videos, each weighing exp(similarity / --temperature).", g, sz, 3, argc, argv);
    ev_run r;
    ev_start(&r, C.weights, C.encoder, 0);
    ev_extract(&r);
    float *q = ev_view_mean(&r.fva);
    double *sc = (double *)malloc((size_t)(r.fva.n * r.classes) * sizeof(double));
    char err[512];
    if (!q || !sc || probe_knn(r.ftr.X, r.tr.y, r.ftr.n, q, r.fva.n, r.e.D, r.classes, C.k, C.temperature, sc, err, sizeof err))
        die("knn: %s", q && sc ? err : "out of memory");
    double top1 = probe_topk(sc, r.va.y, r.fva.n, r.classes, 1), top5 = probe_topk(sc, r.va.y, r.fva.n, r.classes, 5);
    double pair = r.pairs ? probe_pair_accuracy(sc, r.va.y, r.fva.n, r.classes, r.pairs, NULL) : NAN;
    ev_print_header("kNN", &r);
    printf("  k %d, temperature %g, cosine similarity\n", C.k, C.temperature);
    printf("  val top-1 %.2f   top-5 %.2f", 100 * top1, 100 * top5);
    if (r.pairs) printf("   pair accuracy %.2f (vote share)", 100 * pair);
    printf("\n");
    ev_json j;
    js_begin(&j, "knn");
    js_common(&j, &r.e, C.weights, C.encoder);
    js_int(&j, "n_train", r.ftr.n); js_int(&j, "n_val", r.fva.n); js_int(&j, "classes", r.classes);
    js_int(&j, "k", C.k); js_num(&j, "temperature", C.temperature);
    js_num(&j, "top1", 100 * top1); js_num(&j, "top5", 100 * top5);
    if (r.pairs) js_num(&j, "pair_acc", 100 * pair);
    js_emit(&j);
    free(q); free(sc);
    ev_end(&r);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Per-class comparison of two checkpoints
// ---------------------------------------------------------------------------------------------
// Mean flow-edge motion (motion.h index, mean over windows and videos) of each class of the val set.
static void ev_class_motion(ev_set *va, int classes, double *cm) {
    char cache[4200], err[1024];
    snprintf(cache, sizeof cache, "%s.motion", C.val);
    for (int c = 0; c < classes; c++) cm[c] = NAN;
    if (ld_prepare_motion(&va->L, cache, err, sizeof err)) { fprintf(stderr, "warning: no motion column: %s\n", err); return; }
    double *sum = (double *)calloc((size_t)classes, sizeof(double));
    int64_t *cnt = (int64_t *)calloc((size_t)classes, sizeof(int64_t));
    for (int64_t i = 0; i < va->list.n; i++) {
        const motion_cache *mc = &va->L.motion;
        for (int k = 0; k < mc->n; k++) {
            if (strcmp(mc->e[k].key, va->list.items[i].path) || mc->e[k].mi.n_win < 1) continue;
            double s = 0;
            for (int w = 0; w < mc->e[k].mi.n_win; w++) s += mc->e[k].mi.m[w];
            sum[va->y[i]] += s / mc->e[k].mi.n_win; cnt[va->y[i]]++;
            break;
        }
    }
    for (int c = 0; c < classes; c++) if (cnt[c]) cm[c] = sum[c] / (double)cnt[c];
    free(sum); free(cnt);
}

static double ev_pearson(const double *a, const double *b, int n) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) continue;
        sa += a[i]; sb += b[i]; saa += a[i] * a[i]; sbb += b[i] * b[i]; sab += a[i] * b[i]; m++;
    }
    if (m < 3) return NAN;
    double va = saa - sa * sa / m, vb = sbb - sb * sb / m;
    return va > 0 && vb > 0 ? (sab - sa * sb / m) / sqrt(va * vb) : NAN;
}

static void ev_perclass_table(ev_run *ra, const double *acc_a, const double *acc_b, const int64_t *cnt, const double *motion, int *order) {
    int K = ra->classes;
    double d[4096];
    for (int c = 0; c < K; c++) { order[c] = c; d[c] = isfinite(acc_a[c]) && isfinite(acc_b[c]) ? acc_b[c] - acc_a[c] : -INFINITY; }
    for (int i = 1; i < K; i++)
        for (int j = i; j > 0 && d[order[j]] > d[order[j - 1]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
    printf("  %-22s %6s %8s %8s %8s%s\n", "class", "videos", "A top-1", "B top-1", "B - A", motion ? "   motion" : "");
    for (int t = 0; t < K; t++) {
        int c = order[t];
        char nb[32];
        if (!cnt[c]) continue;
        printf("  %-22s %6lld %8.2f %8.2f %+8.2f", ev_class_name(&ra->va, c, K, nb, sizeof nb), (long long)cnt[c], 100 * acc_a[c],
               100 * acc_b[c], 100 * d[c]);
        if (motion) printf(" %8.3f", motion[c]);
        printf("\n");
    }
}

static void ev_perclass_pairs(ev_run *ra, const ev_result *a, const ev_result *b) {
    char n0[32], n1[32];
    printf("  %-36s %8s %8s %8s\n", "reversal pair (pair accuracy)", "A", "B", "B - A");
    for (int p = 0; p < ra->pairs; p++) {
        char nm[80];
        snprintf(nm, sizeof nm, "%s / %s", ev_class_name(&ra->va, 2 * p, ra->classes, n0, sizeof n0),
                 ev_class_name(&ra->va, 2 * p + 1, ra->classes, n1, sizeof n1));
        printf("  %-36s %8.2f %8.2f %+8.2f\n", nm, 100 * a->pair_acc[p], 100 * b->pair_acc[p], 100 * (b->pair_acc[p] - a->pair_acc[p]));
    }
    printf("  %-36s %8.2f %8.2f %+8.2f\n", "all pairs", 100 * a->pair, 100 * b->pair, 100 * (b->pair - a->pair));
}

static int cmd_perclass(int argc, char **argv) {
    const cli_flag *g[] = { common_flags, probe_flags, perclass_flags };
    int sz[] = { N_OF(common_flags), N_OF(probe_flags), N_OF(perclass_flags) };
    ev_parse("perclass", "--weights A --weights2 B --train LIST --val LIST [flags]",
             "Per-class top-1 of the linear probes of two checkpoints (A: --weights, B: --weights2), sorted by B - A;\n"
             "with the synthetic benchmark's reversal pairs (classes 2k, 2k+1), also each pair's accuracy: the share\n"
             "of clips whose true class's logit beats its partner's.", g, sz, 3, argc, argv);
    ev_run ra, rb;
    ev_result a, b;
    ev_start(&ra, C.weights, C.encoder, 0);
    ev_extract(&ra);
    ev_probe(&ra, NULL, 0, &a);
    ev_start(&rb, C.weights2, C.encoder2, 0);
    ev_extract(&rb);
    ev_probe(&rb, NULL, 0, &b);
    if (ra.fva.n != rb.fva.n || ra.classes != rb.classes) die("the two runs read different sets of videos (unreadable videos?)");
    int K = ra.classes;
    if (K > 4096) die("too many classes (%d)", K);
    double *acc_a = (double *)malloc((size_t)K * sizeof(double)), *acc_b = (double *)malloc((size_t)K * sizeof(double));
    double *motion = C.motion ? (double *)malloc((size_t)K * sizeof(double)) : NULL, diff[4096];
    int64_t *cnt = (int64_t *)malloc((size_t)K * sizeof(int64_t));
    int *order = (int *)malloc((size_t)K * sizeof(int));
    probe_per_class(a.pred, ra.va.y, ra.fva.n, K, acc_a, cnt);
    probe_per_class(b.pred, rb.va.y, rb.fva.n, K, acc_b, NULL);
    if (motion) ev_class_motion(&ra.va, K, motion);
    printf("per-class comparison\n  A  %s\n  B  %s\n  val %s: %lld videos, %d classes, views %s\n", ra.e.desc, rb.e.desc, C.val,
           (long long)ra.fva.n, K, C.views);
    printf("  top-1  A %.2f   B %.2f   B - A %+.2f\n", 100 * a.top1, 100 * b.top1, 100 * (b.top1 - a.top1));
    ev_perclass_table(&ra, acc_a, acc_b, cnt, motion, order);
    if (ra.pairs) ev_perclass_pairs(&ra, &a, &b);
    for (int c = 0; c < K; c++) diff[c] = acc_b[c] - acc_a[c];
    double corr = motion ? ev_pearson(diff, motion, K) : NAN;
    if (motion) printf("  correlation of B - A with class motion: %.3f\n", corr);
    ev_json j;
    js_begin(&j, "perclass");
    js_str(&j, "weights_a", C.weights ? C.weights : "random"); js_str(&j, "encoder_a", C.encoder);
    js_str(&j, "weights_b", C.weights2); js_str(&j, "encoder_b", C.encoder2);
    js_str(&j, "val", C.val); js_str(&j, "views", C.views); js_int(&j, "classes", K);
    js_num(&j, "top1_a", 100 * a.top1); js_num(&j, "top1_b", 100 * b.top1);
    js_arr(&j, "class_top1_a", acc_a, K, 100); js_arr(&j, "class_top1_b", acc_b, K, 100);
    double ord[4096];
    for (int c = 0; c < K; c++) ord[c] = order[c];
    js_arr(&j, "order", ord, K, 1);
    if (ra.pairs) { js_arr(&j, "pair_acc_a", a.pair_acc, ra.pairs, 100); js_arr(&j, "pair_acc_b", b.pair_acc, ra.pairs, 100);
                    js_num(&j, "pair_a", 100 * a.pair); js_num(&j, "pair_b", 100 * b.pair); }
    if (motion) { js_arr(&j, "class_motion", motion, K, 1); js_num(&j, "corr_diff_motion", corr); }
    js_emit(&j);
    free(acc_a); free(acc_b); free(motion); free(cnt); free(order);
    ev_free_result(&a); ev_free_result(&b);
    ev_end(&ra); ev_end(&rb);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The flow oracle (SYNTH.md section 7, gates G3 and G4): the linear probe on hand-made optical-flow
// features of each video's centre window (flow.h) instead of network features.
// ---------------------------------------------------------------------------------------------
// Flow features of every video of s: X [n][D] (cached in --cache DIR when given), valid [n].
static float *ev_flow_features(ev_set *s, const flow_opts *fo, int *D_out, uint8_t *valid) {
    int64_t n = s->list.n;
    float *X = NULL;
    int D = 0;
    char key[1024], path[4400], err[2048];
    uint64_t h = scvrl_fnv1a64("flow-oracle");
    for (int64_t i = 0; i < n; i++) {          // the key: the videos (paths and stamps) and the options, not the labels
        char st[64];
        probe_file_stamp(s->list.items[i].path, st, sizeof st);
        h = (h ^ scvrl_fnv1a64(s->list.items[i].path)) * 0x100000001B3ull;
        h = (h ^ scvrl_fnv1a64(st)) * 0x100000001B3ull;
    }
    snprintf(key, sizeof key, "flow oracle v8 | videos %016llx n=%lld | window=%d bins=%d levels=%d iters=%d sigma=%g median=%d",
             (unsigned long long)h, (long long)n, C.fwindow, C.fbins, fo->flow.levels, fo->flow.iters, fo->flow.win_sigma, fo->flow.median);
    if (C.cache) {
        if (vwrite_mkdirs(C.cache, err, sizeof err)) die("--cache %s: %s", C.cache, err);
        snprintf(path, sizeof path, "%s/flow-%016llx.safetensors", C.cache, (unsigned long long)scvrl_fnv1a64(key));
        FILE *f = fopen(path, "rb");
        if (f) {   // the width is the file's: read it from the first video's window
            int64_t st; int len; vid_info info; vid_opts vo = { 30.0, 1 };
            vid_reader *r = vid_open_ex(s->list.items[0].path, &vo, &info, err, sizeof err);
            fclose(f);
            if (r) {
                vid_close(r);
                flow_window(info.n_frames, C.fwindow, &st, &len);
                D = flow_dim(fo, len);
                X = (float *)malloc((size_t)(n * D) * sizeof(float));
                if (X && probe_cache_load(path, key, n, 1, D, X, valid, err, sizeof err) == 0) {
                    if (!C.quiet) fprintf(stderr, "eval: flow features of %s: cached in %s\n", s->path, path);
                    *D_out = D;
                    return X;
                }
                free(X); X = NULL;
            }
        }
    }
    float *buf = (float *)malloc((size_t)n * FLOW_MAX_DIM * sizeof(float));
    int *dims = (int *)calloc((size_t)n, sizeof(int));
    if (!buf || !dims) die("out of memory for the flow features of %lld videos", (long long)n);
    char first[2048] = "";
    cli_progress p;
    int64_t done = 0;
    cli_progress_start(&p, s->train ? "flow train" : "flow val", "videos", n, C.quiet);
    #pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < n; i++) {
        char e2[2048];
        int rc = flow_video_features(s->list.items[i].path, fo, buf + i * FLOW_MAX_DIM, &dims[i], e2, sizeof e2);
        #pragma omp critical(ev_flow)
        {
            if (rc && !first[0]) snprintf(first, sizeof first, "%s", e2);
            cli_progress_update(&p, ++done);
        }
    }
    cli_progress_finish(&p);
    if (first[0] && !C.skip_bad) die("%s\n  (remove the video from the list, or pass --skip-bad)", first);
    for (int64_t i = 0; i < n; i++) {
        valid[i] = dims[i] > 0;
        if (!valid[i]) continue;
        if (!D) D = dims[i];
        if (dims[i] != D)
            die("%s: %s gives %d flow features, other videos %d (videos of different lengths): pass --bins N or --window W",
                s->path, s->list.items[i].path, dims[i], D);
    }
    if (!D) die("%s: no readable videos", s->path);
    X = (float *)calloc((size_t)(n * D), sizeof(float));
    if (!X) die("out of memory");
    for (int64_t i = 0; i < n; i++) if (valid[i]) memcpy(X + i * D, buf + i * FLOW_MAX_DIM, (size_t)D * sizeof(float));
    free(buf); free(dims);
    if (C.cache && probe_cache_save(path, key, "flow oracle features", n, 1, D, X, valid, err, sizeof err))
        fprintf(stderr, "warning: flow features not cached: %s\n", err);
    *D_out = D;
    return X;
}

static int cmd_flow(int argc, char **argv) {
    static const char *const keep[] = { "--train", "--val", "--split", "--root", "--threads", "--seed", "--cache", "--json", "--skip-bad", "--pairs", "--quiet", NULL };
    static cli_flag all[32];
    int n = 0;
    for (int i = 0; i < N_OF(common_flags); i++)
        for (int k = 0; keep[k]; k++)
            if (!strcmp(common_flags[i].name, keep[k])) {
                all[n] = common_flags[i];
                if (!strcmp(keep[k], "--cache")) all[n].help = "cache the flow features in this folder (keyed by the videos and options, not the labels)";
                n++;
            }
    for (int i = 0; i < N_OF(flow_flags); i++) all[n++] = flow_flags[i];
    for (int i = 0; i < N_OF(probe_flags); i++) all[n++] = probe_flags[i];
    cli_spec spec = { "eval flow", "--train LIST --val LIST [flags]",
        "The flow oracle of the synthetic benchmark's gates G3 and G4 (SYNTH.md section 7): per video, dense optical flow\n"
        "(pyramidal Lucas-Kanade) between consecutive frames of the centre window, summarised per frame pair as global\n"
        "motion, mean residual flow, motion energy, divergence, curl and 3x3-grid mean flows (examples/common/flow.h),\n"
        "in time order; then the linear probe of `eval linear` (standardised, L2 by cross-validation). The label is the\n"
        "list's: train_motion.csv / val_motion.csv for motion (G4), *_appearance.csv for appearance (G3).",
        all, n, NULL, "Accuracies are in percent. Chance: 100/classes (5.56 with 18 motion classes, 6.25 with 16 appearance)." };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    if (C.threads > 0) scvrl_set_threads(C.threads);
    flow_opts fo = flow_defaults();
    fo.window = C.fwindow; fo.bins = C.fbins;
    ev_run r;
    memset(&r, 0, sizeof r);
    ev_load_list(&r.tr, C.train, 1);
    ev_load_list(&r.va, C.val, 0);
    r.classes = ev_classes(&r.tr, &r.va);
    r.pairs = ev_pairs(r.classes);
    double t0 = cli_now();
    int Dtr, Dva;
    uint8_t *mt = (uint8_t *)malloc((size_t)r.tr.list.n), *mv = (uint8_t *)malloc((size_t)r.va.list.n);
    r.ftr.X = ev_flow_features(&r.tr, &fo, &Dtr, mt);
    r.fva.X = ev_flow_features(&r.va, &fo, &Dva, mv);
    double feat_s = cli_now() - t0;
    if (Dtr != Dva) die("%s gives %d flow features per video, %s %d (videos of different lengths): pass --bins N or --window W", C.train, Dtr, C.val, Dva);
    r.ftr.n = r.tr.list.n; r.fva.n = r.va.list.n; r.ftr.views = r.fva.views = 1; r.ftr.D = r.fva.D = Dtr;
    if (ev_compact(&r.ftr, r.tr.y, mt) < r.tr.list.n) fprintf(stderr, "warning: %lld unreadable training videos left out\n", (long long)(r.tr.list.n - r.ftr.n));
    if (ev_compact(&r.fva, r.va.y, mv) < r.va.list.n) fprintf(stderr, "warning: %lld unreadable test videos left out\n", (long long)(r.va.list.n - r.fva.n));
    r.e.D = Dtr;
    ev_result res;
    ev_probe(&r, NULL, 0, &res);
    printf("flow oracle\n  features %d per video (%d x %d: %s), window %s, %.1f s\n", Dtr, Dtr / FLOW_PAIR_DIM, FLOW_PAIR_DIM,
           C.fbins ? "time bins" : "frame pairs", C.fwindow ? "--window" : "2/3 of the video, centred", feat_s);
    printf("  train    %s: %lld videos, %d classes\n  val      %s: %lld videos\n", C.train, (long long)r.ftr.n, r.classes, C.val, (long long)r.fva.n);
    ev_print_cv(&res);
    printf("  train top-1 %.2f\n  val   top-1 %.2f   top-5 %.2f   (chance %.2f)", 100 * res.train_top1, 100 * res.top1, 100 * res.top5, 100.0 / r.classes);
    if (r.pairs) printf("   pair accuracy %.2f (%d reversal pairs)", 100 * res.pair, r.pairs);
    printf("\n");
    ev_class_rep cr;
    ev_class_report(&cr, res.pred, r.va.y, r.fva.n, mv, r.va.list.n, r.classes);
    ev_class_table(&r.va, &cr);
    if (r.pairs) ev_pairs_table(&r.va, r.classes, r.pairs, res.pair_acc);
    ev_json j;
    js_begin(&j, "flow");
    js_str(&j, "train", C.train); js_str(&j, "val", C.val);
    js_int(&j, "window", C.fwindow); js_int(&j, "bins", C.fbins); js_int(&j, "features", Dtr);
    js_int(&j, "n_train", r.ftr.n); js_int(&j, "n_val", r.fva.n); js_int(&j, "classes", r.classes);
    js_arr(&j, "l2_grid", res.cvo.grid, res.cvo.n_grid, 1);
    if (res.cvo.n_grid > 1) js_arr(&j, "cv_top1", res.cv.cv_acc, res.cvo.n_grid, 100);
    js_num(&j, "l2", res.l2); js_num(&j, "train_top1", 100 * res.train_top1);
    js_num(&j, "top1", 100 * res.top1); js_num(&j, "top5", 100 * res.top5); js_num(&j, "chance", 100.0 / r.classes);
    if (r.pairs) { js_num(&j, "pair_acc", 100 * res.pair); js_arr(&j, "pair_acc_per_pair", res.pair_acc, r.pairs, 100); }
    js_num(&j, "feature_seconds", feat_s);
    js_class_report(&j, &cr);
    js_emit(&j);
    ev_class_report_free(&cr);
    ev_free_result(&res);
    free(mt); free(mv);
    ev_free_feats(&r.ftr); ev_free_feats(&r.fva);
    ev_close_set(&r.tr); ev_close_set(&r.va);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
typedef struct { const char *name; int (*run)(int, char **); const char *about; } ev_cmd;
static const ev_cmd cmds[] = {
    { "linear", cmd_linear, "linear probe on frozen, standardised features (L2 by cross-validation)" },
    { "finetune", cmd_finetune, "fine-tune the whole network with a linear head" },
    { "shuffle", cmd_shuffle, "linear probe on ordered vs shuffled test clips (the paper's Table 2)" },
    { "lowshot", cmd_lowshot, "linear probe (or --finetune) on 1..100% of the training labels" },
    { "knn", cmd_knn, "k-nearest-neighbour accuracy (cosine, temperature-weighted votes)" },
    { "perclass", cmd_perclass, "per-class accuracy of two checkpoints side by side, pair accuracy" },
    { "flow", cmd_flow, "the flow oracle (SYNTH.md gates G3, G4): the linear probe on optical-flow features" },
};

static void ev_usage(FILE *f) {
    fprintf(f, "usage: eval COMMAND --train LIST --val LIST [--weights FILE] [flags]\n"
               "Evaluates a pretrained video encoder (SCVRL / CVRL checkpoints of examples/pretrain, or any MViT\n"
               "state_dict in torchvision or PySlowFast names). Prints a table and a JSON line (accuracies in %%).\n\nCommands:\n");
    for (int i = 0; i < N_OF(cmds); i++) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].about);
    fprintf(f, "\n`eval COMMAND --help` lists its flags. Example on the synthetic benchmark:\n"
               "  ./examples/synth --out /tmp/syn --per-class 4\n"
               "  ./examples/eval linear --weights runs/demo/ckpt-00000150.safetensors --train /tmp/syn/train.csv --val /tmp/syn/val.csv\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        ev_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < N_OF(cmds); i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].run(argc, argv);
    fprintf(stderr, "eval: unknown command '%s' (linear, finetune, shuffle, lowshot, knn, perclass, flow; see eval --help)\n", argv[1]);
    return 2;
}
