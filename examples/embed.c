// examples/embed.c: features (and logits) of clips with an MViT.
//
//   ./examples/embed --model mvit-b --weights W.safetensors --clips X.safetensors --out Y.safetensors
//
// Reads the float32 tensor `clips` [N, 3, T, H, W] (already normalised) from X and writes
// `features` [N, D] (the final-norm CLS token, or the mean of the grid tokens with --pool avg)
// and, when the weights hold a classifier (head.1.weight), `logits` [N, classes] to Y, with the
// settings in its __metadata__. Clips go through the model --batch at a time; the output is
// written atomically (temporary file, fsync, rename).
#include "scvrl.h"
#include "models/mvit.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *model, *pool, *weights, *prefix, *clips, *out;
    int kt, frames, size, batch, threads, interpolate, ignore_unexpected, quiet;
    int64_t seed;
    const char *views;            // "TxS" temporal x spatial views per video (video inputs)
    int stride, skip_bad, n_inputs;
    double fps;                   // frame rate given to frame folders
    const char **inputs;          // videos, frame folders or lists (.csv / .txt) given as arguments
    const char *save_backbone, *save_dtype;   // --save-backbone FILE: write the loaded backbone
    const char *encoder;          // online | momentum: which encoder of a pretraining checkpoint
    int pretrain_ckpt;            // the weights are a pretraining checkpoint (other prefixes ignored)
    const char *device, *precision;   // cpu | cuda; GPU matrix products tf32 | bf16 | fp32
} embed_opts;

static scvrl_backend *g_be;     // the compute backend (--device)

// The clips: a pointer per clip into the file (float32, little-endian) or into a converted copy.
typedef struct {
    scvrl_st_file f;
    int64_t n, per_clip;     // clips, floats per clip
    const uint8_t *bytes;    // clip i at bytes + i * per_clip * 4
    float *converted;        // owned when the file's dtype is not float32 (or the host is big-endian)
} embed_clips;

#define fail(...) cli_die("embed: error", __VA_ARGS__)

static void shape_str(char *buf, size_t n, int nd, const int64_t *ne) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

// Open --clips and check the tensor `clips` against the model's [N, 3, T, S, S].
static void clips_open(embed_clips *c, const embed_opts *o) {
    char err[1024], want[96], got[160];
    snprintf(want, sizeof want, "[N, 3, %d, %d, %d]", o->frames, o->size, o->size);
    if (scvrl_st_open(&c->f, o->clips, err, sizeof err))
        fail("%s\n  (--clips: a safetensors file holding a float32 tensor 'clips' of shape %s)", err, want);
    const scvrl_st_entry *e = scvrl_st_find(&c->f, "clips");
    if (!e) {
        char names[400] = "";
        size_t k = 0;
        for (int i = 0; i < c->f.n && i < 8 && k < sizeof names; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s'%s'", i ? ", " : "", c->f.e[i].name);
        fail("%s: no tensor named 'clips' (the file holds %s%s); embed reads the clips from a float32 tensor "
             "'clips' of shape %s", o->clips, c->f.n ? names : "no tensors", c->f.n > 8 ? ", ..." : "", want);
    }
    shape_str(got, sizeof got, e->ndim, e->shape);
    if (e->ndim != 5 || e->shape[1] != 3 || e->shape[2] != o->frames || e->shape[3] != o->size || e->shape[4] != o->size)
        fail("%s: 'clips' has shape %s, but --model %s --frames %d --size %d expects %s: pass the --frames and --size "
             "the clips were made with (frames even, size a multiple of 32), or re-make the clips", o->clips, got,
             o->model, o->frames, o->size, want);
    if (e->shape[0] < 1) fail("%s: 'clips' holds no clips (shape %s)", o->clips, got);
    c->n = e->shape[0];
    c->per_clip = e->numel / c->n;
    int le = 1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    le = 0;
#endif
    if (e->dtype == SCVRL_DT_F32 && le) { c->bytes = c->f.data + e->begin; return; }
    c->converted = (float *)malloc((size_t)e->numel * sizeof(float));
    if (!c->converted) fail("%s: out of memory converting %lld %s values to float32", o->clips, (long long)e->numel, scvrl_dtype_name(e->dtype));
    if (scvrl_st_read_f32(&c->f, e, c->converted, err, sizeof err)) fail("%s", err);
    c->bytes = (const uint8_t *)c->converted;
}

// Fail early (before any compute) when --out cannot be written: its folder must exist and be writable.
static void check_out(const char *out) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (access(dir, W_OK)) fail("cannot write --out %s: folder '%s': %s (create it, or pick another --out)", out, dir, strerror(errno));
}

// Classes of the checkpoint's head (head.1.weight, or PySlowFast's head.projection.weight), 0 if none.
static int weights_classes(embed_opts *o, char *meta, size_t metalen) {
    scvrl_st_file f;
    char err[1024], name[600];
    if (scvrl_st_open(&f, o->weights, err, sizeof err))
        fail("%s\n  (--weights: a safetensors checkpoint with torchvision mvit_v1_b names, e.g. written by "
             "examples/pretrain or tests/ref/convert_pth.py; leave --weights out for a random initialisation)", err);
    int classes = 0;
    const char *heads[] = { "head.1.weight", "head.projection.weight" };
    for (int i = 0; i < 2 && !classes; i++) {
        snprintf(name, sizeof name, "%s%s", o->prefix, heads[i]);
        const scvrl_st_entry *e = scvrl_st_find(&f, name);
        if (e && e->ndim == 2 && e->shape[0] > 0 && e->shape[0] < 1000000) classes = (int)e->shape[0];
    }
    // A pretraining checkpoint (examples/pretrain) also holds heads, the momentum encoder, the
    // optimizer and the queue under other prefixes: those are not errors.
    const char *fmt = scvrl_st_meta(&f, "format");
    o->pretrain_ckpt = scvrl_st_find(&f, "momentum.conv_proj.weight") || (fmt && !strncmp(fmt, "scvrl-pretrain", 14));
    // The checkpoint's own record of its model (mvit_save writes it), for error messages.
    const char *keys[] = { "model", "kt", "frames", "size" };
    size_t k = 0;
    meta[0] = 0;
    for (int i = 0; i < 4 && k < metalen; i++) {
        const char *v = scvrl_st_meta(&f, keys[i]);
        if (v) k += (size_t)snprintf(meta + k, metalen - k, "%s%s %s", k ? ", " : "", keys[i], v);
    }
    scvrl_st_close(&f);
    return classes;
}

// The model, with the weights loaded (or a random initialisation, with a warning).
static void model_load(mvit_model *m, embed_opts *o) {
    mvit_config cfg;
    char err[2048], meta[256] = "";
    mvit_preset(o->model, &cfg);
    cfg.kt = o->kt; cfg.frames = o->frames; cfg.size = o->size;
    cfg.pool_avg = !strcmp(o->pool, "avg");
    if (o->weights) cfg.num_classes = weights_classes(o, meta, sizeof meta);
    if (mvit_init(m, &cfg, err, sizeof err)) fail("%s", err);
    if (!o->weights) {
        fprintf(stderr, "embed: warning: no --weights: random initialisation (mvit_init_weights, seed %lld); "
                        "the features mean nothing\n", (long long)o->seed);
        mvit_init_weights(m, (uint64_t)o->seed);
        return;
    }
    int flags = (o->interpolate ? MVIT_LOAD_INTERPOLATE_POS : 0) |
                (o->ignore_unexpected || o->pretrain_ckpt ? MVIT_LOAD_IGNORE_UNEXPECTED : 0);
    if (mvit_load(m, o->weights, o->prefix, flags, err, sizeof err))
        fail("%s\n  (the model: --model %s --kt %d --frames %d --size %d%s%s%s)", err, o->model, o->kt, o->frames, o->size,
             *meta ? "; the checkpoint's metadata says: " : "", meta, *o->prefix || !strstr(err, "missing") ? "" :
             "; for one encoder of a pretraining checkpoint pass --weights-prefix (e.g. momentum.)");
}

typedef struct {
    scvrl_ctx *ctx;
    scvrl_graph *g;
    scvrl_tensor *x, *feat, *logits;
    int64_t bs;              // batch size the graph was built for
} embed_graph;

static void graph_build(embed_graph *eg, const mvit_model *m, int64_t bs) {
    if (eg->g) scvrl_graph_free(eg->g);
    scvrl_ctx_reset(eg->ctx);
    int64_t ne[5] = { bs, 3, m->cfg.frames, m->cfg.size, m->cfg.size };
    eg->x = scvrl_new(eg->ctx, SCVRL_DT_F32, 5, ne);
    scvrl_set_name(eg->x, "clips");
    scvrl_mark_input(eg->x);
    eg->feat = mvit_forward(eg->ctx, m, eg->x, 0, 0, &eg->logits);
    eg->g = scvrl_graph_new();
    scvrl_mark_output(eg->feat);
    scvrl_graph_expand(eg->g, eg->feat);
    if (eg->logits) { scvrl_mark_output(eg->logits); scvrl_graph_expand(eg->g, eg->logits); }
    eg->bs = bs;
}

// Run every clip through the model, --batch at a time, into feat [N, D] and logits [N, C].
static void embed_all(const mvit_model *m, const embed_clips *c, const embed_opts *o, float *feat, float *logits) {
    embed_graph eg = { scvrl_ctx_new(0), NULL, NULL, NULL, NULL, 0 };
    int64_t D = mvit_width(&m->cfg), C = m->cfg.num_classes;
    float *xbuf = (float *)malloc((size_t)((int64_t)o->batch * c->per_clip) * sizeof(float));
    if (!xbuf) fail("out of memory for a batch of %d clips (use a smaller --batch)", o->batch);
    cli_progress p;
    cli_progress_start(&p, "embed", "clips", c->n, o->quiet);
    cli_progress_update(&p, 0);
    char err[1024];
    for (int64_t i0 = 0; i0 < c->n; i0 += eg.bs) {
        int64_t bs = c->n - i0 < o->batch ? c->n - i0 : o->batch;
        if (bs != eg.bs) graph_build(&eg, m, bs);
        memcpy(xbuf, c->bytes + (size_t)(i0 * c->per_clip) * sizeof(float), (size_t)(bs * c->per_clip) * sizeof(float));
        eg.x->data = xbuf;
        if (scvrl_graph_compute(eg.g, g_be, err, sizeof err)) { cli_progress_break(&p); fail("%s", err); }
        memcpy(feat + i0 * D, scvrl_f32(eg.feat), (size_t)(bs * D) * sizeof(float));
        if (C > 0) memcpy(logits + i0 * C, scvrl_f32(eg.logits), (size_t)(bs * C) * sizeof(float));
        cli_progress_update(&p, i0 + bs);
    }
    cli_progress_finish(&p);
    scvrl_graph_free(eg.g);
    scvrl_ctx_free(eg.ctx);
    free(xbuf);
}

static void write_out(const embed_opts *o, const mvit_model *m, int64_t n, const float *feat, const float *logits) {
    scvrl_st_writer *w = scvrl_st_writer_new();
    if (!w) fail("%s: out of memory", o->out);
    int64_t D = mvit_width(&m->cfg), C = m->cfg.num_classes, fne[2] = { n, D }, lne[2] = { n, C };
    scvrl_st_writer_add(w, "features", SCVRL_DT_F32, 2, fne, feat);
    if (C > 0) scvrl_st_writer_add(w, "logits", SCVRL_DT_F32, 2, lne, logits);
    char buf[128];
    scvrl_st_writer_meta(w, "program", "scvrl examples/embed");
    scvrl_st_writer_meta(w, "model", o->model);
    snprintf(buf, sizeof buf, "%d", o->kt); scvrl_st_writer_meta(w, "kt", buf);
    snprintf(buf, sizeof buf, "%d", o->frames); scvrl_st_writer_meta(w, "frames", buf);
    snprintf(buf, sizeof buf, "%d", o->size); scvrl_st_writer_meta(w, "size", buf);
    scvrl_st_writer_meta(w, "pool", o->pool);
    snprintf(buf, sizeof buf, "none (random initialisation, seed %lld)", (long long)o->seed);
    scvrl_st_writer_meta(w, "weights", o->weights ? o->weights : buf);
    if (o->weights && *o->prefix) scvrl_st_writer_meta(w, "weights_prefix", o->prefix);
    scvrl_st_writer_meta(w, o->n_inputs ? "inputs" : "clips", o->clips);
    snprintf(buf, sizeof buf, "%lld", (long long)C); scvrl_st_writer_meta(w, "classes", buf);
    char err[1024];
    if (scvrl_st_writer_save(w, o->out, err, sizeof err)) fail("%s", err);
    scvrl_st_writer_free(w);
}

static void parse(embed_opts *o, int argc, char **argv) {
    static const char *pools[] = { "cls", "avg", NULL };
    static const char *save_dtypes[] = { "f32", "f16", "bf16", NULL };
    static const char *encoders[] = { "online", "momentum", NULL };
    static const char *devices[] = { "cpu", "cuda", NULL };
    static const char *precisions[] = { "bf16", "tf32", "fp32", NULL };
    const cli_flag flags[] = {
        { "--model", CLI_STR, &o->model, "NAME", "model preset (table below)", 0, 0, NULL, 0 },
        { "--kt", CLI_INT, &o->kt, "K", "stem temporal kernel: 2 (SCVRL) or 3 (torchvision)", 2, 3, NULL, 0 },
        { "--frames", CLI_INT, &o->frames, "T", "frames per clip (even)", 2, 4096, NULL, 0 },
        { "--size", CLI_INT, &o->size, "S", "frame height = width (multiple of 32)", 32, 4096, NULL, 0 },
        { "--pool", CLI_CHOICE, &o->pool, NULL, "features: final-norm CLS token, or mean of the grid tokens", 0, 0, pools, 0 },
        { "--batch", CLI_INT, &o->batch, "N", "clips per forward", 1, 65536, NULL, 0 },
        { "--threads", CLI_INT, &o->threads, "N", "OpenMP threads (0: all)", 0, 4096, NULL, 0 },
        { "--device", CLI_CHOICE, &o->device, NULL, "compute device", 0, 0, devices, 0 },
        { "--precision", CLI_CHOICE, &o->precision, NULL, "GPU precision: bf16 (bf16 tensor cores and bf16 activations, fp32 weights, sums and losses), tf32 (tf32 tensor cores, fp32 activations) or full fp32 (SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
        { "--weights", CLI_STR, &o->weights, "FILE", "checkpoint (safetensors, torchvision or PySlowFast names)", 0, 0, NULL, CLI_NO_DEFAULT },
        { "--weights-prefix", CLI_STR, &o->prefix, "P", "name prefix of the encoder in the checkpoint (e.g. momentum.)", 0, 0, NULL, CLI_NO_DEFAULT },
        { "--encoder", CLI_CHOICE, &o->encoder, NULL, "pretraining checkpoints: which encoder (momentum = --weights-prefix momentum.)", 0, 0, encoders, 0 },
        { "--interpolate-pos", CLI_BOOL, &o->interpolate, NULL, "resample positional tables made for another clip size", 0, 0, NULL, 0 },
        { "--ignore-unexpected", CLI_BOOL, &o->ignore_unexpected, NULL, "tensors the model does not use are not an error", 0, 0, NULL, 0 },
        { "--seed", CLI_INT64, &o->seed, "N", "random initialisation seed (without --weights)", 0, 9e18, NULL, 0 },
        { "--clips", CLI_STR, &o->clips, "FILE", "input: float32 'clips' [N, 3, T, S, S], normalised (or give videos)", 0, 0, NULL, CLI_NO_DEFAULT },
        { "--stride", CLI_INT, &o->stride, "S", "video inputs: frame step within a clip", 1, 64, NULL, 0 },
        { "--views", CLI_STR, &o->views, "TxS", "video inputs: temporal x spatial views averaged (e.g. 10x3)", 0, 0, NULL, 0 },
        { "--fps", CLI_DOUBLE, &o->fps, "F", "video inputs: frame rate given to frame folders", 0.01, 1000, NULL, 0 },
        { "--skip-bad", CLI_BOOL, &o->skip_bad, NULL, "video inputs: embed the readable ones, list the rest (else exit 1)", 0, 0, NULL, 0 },
        { "--out", CLI_STR, &o->out, "FILE", "output: 'features' [N, D], 'logits' [N, classes] if the weights have a head", 0, 0, NULL, CLI_NO_DEFAULT },
        { "--save-backbone", CLI_STR, &o->save_backbone, "FILE", "write the loaded backbone (bare torchvision names, config metadata), e.g. to ship a model", 0, 0, NULL, CLI_NO_DEFAULT },
        { "--save-dtype", CLI_CHOICE, &o->save_dtype, NULL, "number format of --save-backbone (f16/bf16: half the size)", 0, 0, save_dtypes, 0 },
        { "--quiet", CLI_BOOL, &o->quiet, NULL, "no progress on stderr", 0, 0, NULL, 0 },
    };
    cli_spec spec = { "embed", "(--clips X.safetensors | VIDEO|FOLDER|LIST.csv ...) --out Y.safetensors [--weights W] [flags]",
                      "Features (and classifier logits) of clips with an MViT: reads the float32 tensor 'clips'\n"
                      "[N, 3, T, S, S] (already normalised), writes 'features' [N, D] and, when the weights hold\n"
                      "head.1.weight, 'logits' [N, classes]; settings go to the output's __metadata__.\n"
                      "Video files, frame folders and lists (.csv/.txt) given as arguments are embedded instead, in\n"
                      "input order (one centre clip each, or the mean over --views), their names in the metadata.",
                      flags, (int)(sizeof flags / sizeof *flags), mvit_print_presets,
                      "example: embed --model mvit-b --weights mvit_b.safetensors --clips val.safetensors --out val_feat.safetensors" };
    static const char *pos[4096];
    o->n_inputs = cli_parse(&spec, argc, argv, 1, pos, 4096);
    o->inputs = pos;
    if (o->clips && o->n_inputs) cli_usage_error(&spec, "give either --clips FILE or video inputs, not both");
    if (!o->clips && !o->n_inputs && !o->save_backbone) cli_usage_error(&spec, "give --clips FILE or video inputs (or --save-backbone FILE)");
    if ((o->clips || o->n_inputs) && !o->out) cli_usage_error(&spec, "--out FILE is required with inputs");
    if (o->save_backbone && !o->weights) cli_usage_error(&spec, "--save-backbone needs --weights (the checkpoint to export)");
    int vt, vs;
    if (sscanf(o->views, "%dx%d", &vt, &vs) != 2 || vt < 1 || vs < 1) cli_usage_error(&spec, "--views wants TxS, e.g. 10x3, not '%s'", o->views);
    mvit_config cfg;
    if (mvit_preset(o->model, &cfg)) cli_usage_error(&spec, "unknown --model '%s' (mvit-b, mvit-s, mvit-tiny, mvit-micro)", o->model);
    cfg.kt = o->kt; cfg.frames = o->frames; cfg.size = o->size;
    char err[256];
    if (mvit_check_config(&cfg, err, sizeof err)) cli_usage_error(&spec, "%s", err);
    if (!strcmp(o->encoder, "momentum")) {
        if (*o->prefix) cli_usage_error(&spec, "give --encoder momentum or --weights-prefix, not both");
        o->prefix = "momentum.";
    }
    if (!o->weights && (*o->prefix || o->interpolate || o->ignore_unexpected))
        cli_usage_error(&spec, "--weights-prefix, --interpolate-pos and --ignore-unexpected need --weights");
}

// ---------------------------------------------------------------------------------------------
// Video inputs: each argument a video, a frame folder, or a list (.csv / .txt) of them.
// ---------------------------------------------------------------------------------------------
static void videos_collect(const embed_opts *o, ds_list *all) {
    memset(all, 0, sizeof(*all));
    char err[1024];
    for (int i = 0; i < o->n_inputs; i++) {
        const char *a = o->inputs[i];
        size_t n = strlen(a);
        int is_list = n > 4 && (!strcmp(a + n - 4, ".csv") || !strcmp(a + n - 4, ".txt"));
        ds_list one = { 0 };
        if (is_list) { if (ds_load_csv(a, &one, err, sizeof err)) fail("%s", err); }
        else {
            one.n = 1;
            one.items = (ds_item *)calloc(1, sizeof(ds_item));
            one.items[0].path = strdup(a); one.items[0].label = -1;
        }
        all->items = (ds_item *)realloc(all->items, (size_t)(all->n + one.n) * sizeof(ds_item));
        for (int64_t j = 0; j < one.n; j++) { all->items[all->n + j].path = strdup(one.items[j].path); all->items[all->n + j].label = one.items[j].label; }
        all->n += one.n;
        ds_free(&one);
    }
}

// features [N, D] (mean over views), logits likewise; bad[i] = 1 for unreadable inputs.
static void videos_embed(const mvit_model *m, const embed_opts *o, const ds_list *L, float *feat, float *logits, char *bad) {
    int vt = 1, vs = 1;
    sscanf(o->views, "%dx%d", &vt, &vs);
    int64_t V = (int64_t)vt * vs, D = mvit_width(&m->cfg), C = m->cfg.num_classes, jobs = L->n * V, per = 3LL * o->frames * o->size * o->size;
    ld_loader ld;
    ld_init(&ld, L, o->frames, o->stride, o->size, 0);
    ld.folder_fps = o->fps;
    embed_graph eg = { scvrl_ctx_new(0), NULL, NULL, NULL, NULL, 0 };
    float *xbuf = (float *)malloc((size_t)(o->batch * per) * sizeof(float));
    if (!xbuf) fail("out of memory for a batch of %d clips (use a smaller --batch)", o->batch);
    memset(feat, 0, (size_t)(L->n * D) * sizeof(float));
    if (C > 0) memset(logits, 0, (size_t)(L->n * C) * sizeof(float));
    cli_progress p;
    cli_progress_start(&p, "embed", "clips", jobs, o->quiet);
    char err[1024];
    for (int64_t j0 = 0; j0 < jobs; j0 += o->batch) {
        int64_t bs = jobs - j0 < o->batch ? jobs - j0 : o->batch;
        if (bs != eg.bs) graph_build(&eg, m, bs);
        #pragma omp parallel for schedule(dynamic)
        for (int64_t b = 0; b < bs; b++) {
            int64_t j = j0 + b, v = j / V;
            char e2[1024];
            if (ld_eval_clip(&ld, v, (int)((j % V) / vs), vt, (int)(j % vs), vs, xbuf + b * per, e2, sizeof e2)) {
                #pragma omp critical
                { if (!bad[v]) fprintf(stderr, "embed: %s\n", e2); bad[v] = 1; }
                memset(xbuf + b * per, 0, (size_t)per * sizeof(float));
            }
        }
        eg.x->data = xbuf;
        if (scvrl_graph_compute(eg.g, g_be, err, sizeof err)) { cli_progress_break(&p); fail("%s", err); }
        for (int64_t b = 0; b < bs; b++) {
            int64_t v = (j0 + b) / V;
            for (int64_t d = 0; d < D; d++) feat[v * D + d] += scvrl_f32(eg.feat)[b * D + d] / (float)V;
            for (int64_t c = 0; c < C; c++) logits[v * C + c] += scvrl_f32(eg.logits)[b * C + c] / (float)V;
        }
        cli_progress_update(&p, j0 + bs);
    }
    cli_progress_finish(&p);
    scvrl_graph_free(eg.g); scvrl_ctx_free(eg.ctx); free(xbuf);
    ld_free(&ld);
}

static int embed_videos(embed_opts *o) {
    ds_list L;
    videos_collect(o, &L);
    check_out(o->out);
    mvit_model m;
    model_load(&m, o);
    int64_t D = mvit_width(&m.cfg), C = m.cfg.num_classes;
    float *feat = (float *)malloc((size_t)(L.n * D) * sizeof(float)), *logits = C > 0 ? (float *)malloc((size_t)(L.n * C) * sizeof(float)) : NULL;
    char *bad = (char *)calloc((size_t)L.n + 1, 1);
    if (!feat || !bad || (C > 0 && !logits)) fail("out of memory for the outputs of %lld videos", (long long)L.n);
    videos_embed(&m, o, &L, feat, logits, bad);
    int64_t nbad = 0, k = 0;
    for (int64_t i = 0; i < L.n; i++) nbad += bad[i];
    if (nbad && !o->skip_bad) fail("%lld of %lld inputs could not be read (above); fix or remove them, or pass --skip-bad", (long long)nbad, (long long)L.n);
    size_t nl = 1;
    for (int64_t i = 0; i < L.n; i++) nl += strlen(L.items[i].path) + 1;
    char *names = (char *)malloc(nl);
    names[0] = 0;
    for (int64_t i = 0; i < L.n; i++) {          // keep the readable ones, in input order
        if (bad[i]) continue;
        memmove(feat + k * D, feat + i * D, (size_t)D * sizeof(float));
        if (C > 0) memmove(logits + k * C, logits + i * C, (size_t)C * sizeof(float));
        strcat(names, L.items[i].path); strcat(names, "\n");
        k++;
    }
    o->clips = names;                 // the input names go to the metadata
    write_out(o, &m, k, feat, logits);
    if (nbad) {
        fprintf(stderr, "embed: skipped %lld unreadable input%s:\n", (long long)nbad, nbad > 1 ? "s" : "");
        for (int64_t i = 0; i < L.n; i++) if (bad[i]) fprintf(stderr, "  %s\n", L.items[i].path);
    }
    if (!o->quiet) fprintf(stderr, "embed: wrote %s: features [%lld, %lld] of %lld videos (views %s, %s)\n", o->out, (long long)k,
                           (long long)D, (long long)k, o->views, o->model);
    free(feat); free(logits); free(bad); free(names);
    ds_free(&L);
    mvit_free(&m);
    return 0;
}

// --save-backbone: the backbone as loaded (an encoder of a pretraining checkpoint, say) under bare
// torchvision names, with the settings eval and retrieve take as defaults in "config".
static void save_backbone(embed_opts *o) {
    mvit_model m;
    model_load(&m, o);
    char cfg[256], err[1024];
    snprintf(cfg, sizeof cfg, "model=%s kt=%d frames=%d stride=%d size=%d pool=%s", o->model, o->kt, o->frames, o->stride,
             o->size, o->pool);
    scvrl_dtype dt = !strcmp(o->save_dtype, "f16") ? SCVRL_DT_F16 : !strcmp(o->save_dtype, "bf16") ? SCVRL_DT_BF16 : SCVRL_DT_F32;
    if (mvit_save_as(&m, o->save_backbone, dt, cfg, err, sizeof err)) fail("%s", err);
    if (!o->quiet) fprintf(stderr, "embed: wrote %s: %s backbone, %lld parameters in %s (%s)\n", o->save_backbone, o->model,
                           (long long)m.P.n_elems, o->save_dtype, cfg);
    mvit_free(&m);
}

int main(int argc, char **argv) {
    embed_opts o = { "mvit-b", "cls", NULL, "", NULL, NULL, 2, 16, 224, 4, 0, 0, 0, 0, 0, "1x1", 4, 0, 0, 30.0, NULL, NULL, "f32", "online", 0, "cpu", "bf16" };
    parse(&o, argc, argv);
    scvrl_set_threads(o.threads);
    if (o.clips || o.n_inputs) {
        char err[512];
        if (!(g_be = probe_backend(o.device, o.precision, err, sizeof err))) fail("--device %s: %s", o.device, err);
    }
    if (o.save_backbone) save_backbone(&o);
    if (!o.clips && !o.n_inputs) return 0;
    if (o.n_inputs) return embed_videos(&o);
    embed_clips c = { 0 };
    clips_open(&c, &o);
    check_out(o.out);
    mvit_model m;
    model_load(&m, &o);
    int64_t D = mvit_width(&m.cfg), C = m.cfg.num_classes;
    float *feat = (float *)malloc((size_t)(c.n * D) * sizeof(float));
    float *logits = C > 0 ? (float *)malloc((size_t)(c.n * C) * sizeof(float)) : NULL;
    if (!feat || (C > 0 && !logits)) fail("out of memory for the outputs of %lld clips", (long long)c.n);
    embed_all(&m, &c, &o, feat, logits);
    write_out(&o, &m, c.n, feat, logits);
    if (!o.quiet) {
        char lg[64] = "";
        if (C > 0) snprintf(lg, sizeof lg, ", logits [%lld, %lld]", (long long)c.n, (long long)C);
        fprintf(stderr, "embed: wrote %s: features [%lld, %lld]%s (%s, pool %s)\n", o.out, (long long)c.n, (long long)D, lg,
                o.model, o.pool);
    }
    free(feat); free(logits); free(c.converted);
    scvrl_st_close(&c.f);
    mvit_free(&m);
    return 0;
}
