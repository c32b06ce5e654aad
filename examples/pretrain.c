// examples/pretrain.c - SCVRL (and CVRL) self-supervised pretraining of MViT.
//
// Per step (../shared DESIGN.md, "The method"): for each video, clip A (targeted sampling) gives
// x_a and x_p (two augmentations), x_p gives N_T shuffled copies, clip B gives x_pv. The online
// encoder embeds x_a; the momentum encoder x_p, the shuffles and x_pv. L = L_T + lambda L_V.
// With no arguments it runs the demo: a small synthetic motion set, mvit-micro, about 1.5 CPU minutes.
// SCVRL_DEBUG_KEYS=1 prints, per step, how far the momentum keys of the ordered clip and of its
// shuffles are apart (the signal L_T can use).
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>
#include "scvrl.h"
#include "models/mvit.h"
#include "models/contrast.h"
#include "models/method.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "plot.h"
#include "probe.h"
#include "synth.h"
#include "vwrite.h"

// ---------------------------------------------------------------------------------------------
// Configuration: every hyper-parameter a flag, the paper's value the default.
// ---------------------------------------------------------------------------------------------
typedef struct {
    const char *data, *val, *model, *out, *resume, *device, *precision, *objective, *temporal_loss, *pool, *encoder_note;
    int steps, epochs, batch, threads, save_every, keep, knn_every, frames, stride, size, kt, nt, group, heldout_nt;
    int shared_head, momentum_droppath, warmup, quiet, inject_nan_step;
    int64_t queue, seed;
    double lr, lr_start, lr_end, wd, tau, lambda_v, momentum, beta, clip_grad, drop_path, crop_min, fps;
    double p_flip, p_gray, p_blur, p_jitter;
} pt_cfg;

static pt_cfg C = {
    .model = "mvit-b", .out = "runs/scvrl", .device = "cpu", .precision = "bf16", .objective = "scvrl", .temporal_loss = "nce",
    .pool = "cls", .steps = 0, .epochs = 0, .batch = 4, .threads = 0, .save_every = 500, .keep = 3,
    .knn_every = 0, .frames = 16, .stride = 4, .size = 224, .kt = 2, .nt = 12, .heldout_nt = 12, .group = 2, .warmup = -1,
    .queue = 65536, .seed = 0, .inject_nan_step = -1, .lr = 1e-4, .lr_start = 1e-6, .lr_end = 1e-6, .wd = 0.05, .tau = 0.1,
    .lambda_v = 1.0, .momentum = 0.999, .beta = 5.0, .clip_grad = 0.0, .drop_path = 0.2, .crop_min = 0.08, .fps = 30,
    .p_flip = 0.5, .p_gray = 0.2, .p_blur = 0.5, .p_jitter = 0.8,
};

static const char *const objectives[] = { "scvrl", "cvrl", NULL };
static const char *const tlosses[] = { "nce", "ce", NULL };
static const char *const pools[] = { "cls", "avg", NULL };
static const char *const devices[] = { "cpu", "cuda", NULL };
static const char *const precisions[] = { "bf16", "tf32", "fp32", NULL };

static const cli_flag flags[] = {
    { "--data", CLI_STR, &C.data, "LIST", "training videos: CSV (path [label]), folder per class, or split files; none: the demo", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--val", CLI_STR, &C.val, "LIST", "labelled videos for the kNN monitor and the held-out temporal accuracy", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--model", CLI_STR, &C.model, "NAME", "model preset (below)", 0, 0, NULL, 0 },
    { "--out", CLI_STR, &C.out, "DIR", "run folder: checkpoints, metrics.jsonl, loss curve, config", 0, 0, NULL, 0 },
    { "--resume", CLI_STR, &C.resume, "DIR|FILE", "continue a run bit for bit from its latest (or this) checkpoint", 0, 0, NULL, CLI_NO_DEFAULT },
    { "--steps", CLI_INT, &C.steps, "N", "optimizer steps (0: from --epochs)", 0, 1 << 30, NULL, 0 },
    { "--epochs", CLI_INT, &C.epochs, "N", "passes over --data (0 with --steps 0: 100)", 0, 1 << 20, NULL, 0 },
    { "--batch", CLI_INT, &C.batch, "N", "videos per step", 1, 4096, NULL, 0 },
    { "--device", CLI_CHOICE, &C.device, NULL, "compute device", 0, 0, devices, 0 },
    { "--precision", CLI_CHOICE, &C.precision, NULL, "GPU precision: bf16 (bf16 tensor cores, activations stored as bf16), tf32 (tf32 tensor cores, fp32 activations) or full fp32 (weights, norm statistics, softmax, losses, optimizer: fp32 always; SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
    { "--threads", CLI_INT, &C.threads, "N", "CPU threads (0: all)", 0, 1024, NULL, 0 },
    { "--objective", CLI_CHOICE, &C.objective, NULL, "scvrl: L_T + lambda L_V; cvrl: L_V only", 0, 0, objectives, 0 },
    { "--temporal-loss", CLI_CHOICE, &C.temporal_loss, NULL, "nce: shuffled InfoNCE; ce: shuffled/ordered classifier (Table 8c)", 0, 0, tlosses, 0 },
    { "--shared-head", CLI_BOOL, &C.shared_head, NULL, "one projection head for both losses (ablation)", 0, 0, NULL, 0 },
    { "--pool", CLI_CHOICE, &C.pool, NULL, "backbone output: CLS token or token mean (Table 8d)", 0, 0, pools, 0 },
    { "--kt", CLI_INT, &C.kt, "2|3", "stem temporal kernel (3: the projection sees shuffle seams, Table 8e)", 2, 3, NULL, 0 },
    { "--frames", CLI_INT, &C.frames, "T", "frames per clip", 2, 256, NULL, 0 },
    { "--stride", CLI_INT, &C.stride, "S", "frame step within a clip", 1, 64, NULL, 0 },
    { "--size", CLI_INT, &C.size, "PX", "crop size (multiple of 32)", 32, 1024, NULL, 0 },
    { "--nt", CLI_INT, &C.nt, "N", "shuffled negatives per sample (N_T)", 1, 64, NULL, 0 },
    { "--heldout-nt", CLI_INT, &C.heldout_nt, "N", "shuffles per clip of the held-out temporal accuracy (chance 1/(N+1))", 1, 64, NULL, 0 },
    { "--group", CLI_INT, &C.group, "G", "frames per shuffled group", 1, 64, NULL, 0 },
    { "--queue", CLI_INT64, &C.queue, "K", "visual negatives in the queue (N_V)", 1, 1 << 24, NULL, 0 },
    { "--momentum", CLI_DOUBLE, &C.momentum, "M", "momentum-encoder EMA (MoCo's value)", 0, 1, NULL, 0 },
    { "--momentum-droppath", CLI_BOOL, &C.momentum_droppath, NULL, "drop-path in the momentum encoder too", 0, 0, NULL, 0 },
    { "--tau", CLI_DOUBLE, &C.tau, "T", "InfoNCE temperature", 1e-4, 100, NULL, 0 },
    { "--lambda", CLI_DOUBLE, &C.lambda_v, "L", "weight of L_V", 0, 1000, NULL, 0 },
    { "--lr", CLI_DOUBLE, &C.lr, "LR", "peak AdamW learning rate", 0, 10, NULL, 0 },
    { "--lr-start", CLI_DOUBLE, &C.lr_start, "LR", "learning rate at step 0 (linear warm-up)", 0, 10, NULL, 0 },
    { "--lr-end", CLI_DOUBLE, &C.lr_end, "LR", "learning rate at the end (cosine)", 0, 10, NULL, 0 },
    { "--warmup", CLI_INT, &C.warmup, "N", "warm-up steps (-1: 5% of the run)", -1, 1 << 30, NULL, 0 },
    { "--wd", CLI_DOUBLE, &C.wd, "WD", "AdamW weight decay (not on norms, biases, positions)", 0, 10, NULL, 0 },
    { "--clip-grad", CLI_DOUBLE, &C.clip_grad, "N", "global gradient-norm clip (0: off)", 0, 1e9, NULL, 0 },
    { "--drop-path", CLI_DOUBLE, &C.drop_path, "P", "stochastic depth of the last block", 0, 0.99, NULL, 0 },
    { "--fps", CLI_DOUBLE, &C.fps, "F", "frame rate given to frame-folder videos", 0.01, 1000, NULL, 0 },
    { "--crop-min", CLI_DOUBLE, &C.crop_min, "A", "smallest random-resized-crop area fraction", 0.01, 1, NULL, 0 },
    { "--flip", CLI_DOUBLE, &C.p_flip, "P", "horizontal-flip probability of each view", 0, 1, NULL, 0 },
    { "--gray", CLI_DOUBLE, &C.p_gray, "P", "grayscale probability of each view", 0, 1, NULL, 0 },
    { "--blur", CLI_DOUBLE, &C.p_blur, "P", "Gaussian-blur probability of each view", 0, 1, NULL, 0 },
    { "--color-jitter", CLI_DOUBLE, &C.p_jitter, "P", "colour-jitter probability of each view (brightness, contrast, saturation 0.4)", 0, 1, NULL, 0 },
    { "--beta", CLI_DOUBLE, &C.beta, "B", "targeted-sampling temperature (inf: uniform)", 1e-6, INFINITY, NULL, 0 },
    { "--seed", CLI_INT64, &C.seed, "N", "seed of every random draw", 0, 1e18, NULL, 0 },
    { "--save-every", CLI_INT, &C.save_every, "N", "checkpoint every N steps (and at the end)", 1, 1 << 30, NULL, 0 },
    { "--keep", CLI_INT, &C.keep, "N", "checkpoints kept", 1, 1000, NULL, 0 },
    { "--knn-every", CLI_INT, &C.knn_every, "N", "kNN top-1 on --val every N steps (0: at the end only)", 0, 1 << 30, NULL, 0 },
    { "--quiet", CLI_BOOL, &C.quiet, NULL, "no progress bar", 0, 0, NULL, 0 },
    { "--inject-nan-step", CLI_INT, &C.inject_nan_step, "N", "testing: poison step N's input with NaN (checks the NaN stop)", -1, 1 << 30, NULL, 0 },
};

static volatile sig_atomic_t g_stop = 0;
static void on_sigint(int s) { (void)s; g_stop = 1; }

#define die(...) cli_die("pretrain", __VA_ARGS__)

// ---------------------------------------------------------------------------------------------
// The method (models/method.c): encoders, heads, queue, the two graphs of a step, the step.
// ---------------------------------------------------------------------------------------------
typedef scm_state pt_state;
typedef scm_graphs pt_graphs;
typedef scm_stats pt_stats;

static scm_cfg pt_method_cfg(void) {
    scm_cfg m;
    memset(&m, 0, sizeof m);
    m.temporal = !strcmp(C.objective, "scvrl");
    m.ce = !strcmp(C.temporal_loss, "ce");
    m.shared_head = C.shared_head;
    m.nt = C.nt; m.frames = C.frames; m.size = C.size; m.batch = C.batch; m.momentum_droppath = C.momentum_droppath;
    m.queue = C.queue;
    m.tau = C.tau; m.lambda_v = C.lambda_v; m.momentum = C.momentum; m.wd = C.wd; m.clip_grad = C.clip_grad;
    m.seed = (uint64_t)C.seed;
    return m;
}

static scvrl_tensor *pt_input(scvrl_ctx *ctx, int64_t n, const char *name) {
    int64_t ne[5] = { n, 3, C.frames, C.size, C.size };
    scvrl_tensor *t = scvrl_new_data(ctx, SCVRL_DT_F32, 5, ne);
    scvrl_set_name(t, "%s", name);
    return t;
}

// ---------------------------------------------------------------------------------------------
// Batches: video order is a seeded permutation per epoch; a video that cannot be read is
// replaced by the next one in the permutation and counted.
// ---------------------------------------------------------------------------------------------
typedef struct {
    ld_loader L;
    ds_list list;
    int64_t *perm, perm_epoch;
    int64_t skipped;
    char last_err[512];
} pt_data;

static int64_t pt_video_at(pt_data *D, int64_t sample) {
    int64_t N = D->list.n, epoch = sample / N, pos = sample % N;
    if (D->perm_epoch != epoch || !D->perm) {
        if (!D->perm) D->perm = (int64_t *)malloc((size_t)N * sizeof(int64_t));
        for (int64_t i = 0; i < N; i++) D->perm[i] = i;
        uint64_t st = scvrl_fnv1a64("pretrain.epoch") ^ (uint64_t)epoch;
        for (int64_t i = N - 1; i > 0; i--) {
            int64_t j = (int64_t)(scvrl_rng_u64((uint64_t)C.seed, st, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = D->perm[i]; D->perm[i] = D->perm[j]; D->perm[j] = t;
        }
        D->perm_epoch = epoch;
    }
    return D->perm[pos];
}

// Fill the momentum input xm [x_p (B); shuffles (B*nt, sample-major); x_pv (B)] and the online
// input xo [x_a (B)] (CE variant: [x_a; x_p; first shuffle]). vids[b] gets the video of sample b.
// Returns the number of unreadable videos replaced. A pure function of the step.
// shuf [B*nt*T]: x_p row b*T + frame for every frame of every shuffled copy (gathered in the graph: scm_shuffled in models/method.c).
static void pt_shuffle_index(const pt_data *D, int64_t b, uint64_t epoch, uint64_t sample, int32_t *shuf) {
    int T = C.frames, g = C.group, nt = D->L.n_shuffles, perms[64 * 128], frames[256];
    clip_shuffle_perms(D->L.seed, clip_stream(epoch, sample, CLIP_PURPOSE_SHUFFLE), T, g, nt, perms);
    for (int j = 0; j < nt; j++) {
        clip_shuffle_frames(perms + j * (T / g), T, g, frames);
        for (int t = 0; t < T; t++) shuf[((int64_t)b * nt + j) * T + t] = (int32_t)(b * T + frames[t]);
    }
}

static int64_t pt_load_batch(pt_data *D, const pt_graphs *G, const pt_state *S, int64_t step, int64_t *vids,
                             float *xm, float *xo, int32_t *shuf) {
    int64_t B = G->B, clip = G->clip, nt = D->L.n_shuffles;
    enum { TRIES = 16 };
    int64_t *cand = (int64_t *)malloc((size_t)(B * TRIES) * sizeof(int64_t));   // first choice, then fallbacks
    for (int64_t b = 0; b < B; b++)
        for (int k = 0; k < TRIES; k++) cand[b * TRIES + k] = pt_video_at(D, step * B + b + k * 7919);
    int64_t skipped = 0;
    float *xn_ce = S->ce ? (float *)malloc((size_t)(nt * clip) * sizeof(float) * (size_t)B) : NULL;
    #pragma omp parallel for schedule(dynamic) reduction(+ : skipped)
    for (int64_t b = 0; b < B; b++) {
        char err[512];
        float *xa = xo + b * clip, *xp = S->ce ? xo + (B + b) * clip : (nt ? xm + b * clip : NULL);
        float *xn = S->ce ? xn_ce + b * nt * clip : NULL;           // SCVRL: gathered in the graph
        float *xpv = xm + ((nt && !S->ce ? 2 * B : B) - B + b) * clip;
        int64_t sample = step * B + b;
        vids[b] = cand[b * TRIES];
        for (int k = 0; k < TRIES; k++) {
            int64_t v = cand[b * TRIES + k];
            if (!ld_pretrain_sample(&D->L, v, (uint64_t)(sample / D->list.n), (uint64_t)sample, xa, xp, xn, xpv, err, sizeof err)) {
                vids[b] = v;
                if (nt && !S->ce) pt_shuffle_index(D, b, (uint64_t)(sample / D->list.n), (uint64_t)sample, shuf);
                break;
            }
            skipped++;
            #pragma omp critical
            snprintf(D->last_err, sizeof D->last_err, "%s", err);
        }
        if (S->ce) memcpy(xo + (2 * B + b) * clip, xn, (size_t)clip * sizeof(float));
    }
    free(xn_ce);
    free(cand);
    return skipped;
}

// Prefetch: a loader thread prepares step s+1 in the other of two buffers while step s computes
// (used with --device cuda, where the CPU is otherwise idle; batches stay a function of the step).
typedef struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t want, ready, skipped[2];
    int quit, on;
    float *xm[2], *xo[2];
    int32_t *shuf[2];
    int64_t *vids[2];
    pt_data *D; const pt_graphs *G; const pt_state *S;
    scvrl_backend *be;   // CUDA: the batch buffers are resident and uploaded by the loader (resident != 0)
    int resident;
    char uerr[2][512];   // an upload's error, reported by the step that takes the batch
} pt_prefetch;

// Bytes of one batch buffer's three inputs: momentum clips, online clips, shuffle indices (>= 1 element).
static void pt_batch_bytes(const pt_graphs *G, size_t b[3]) {
    b[0] = (size_t)(G->xm->ne[0] * G->clip) * sizeof(float);
    b[1] = (size_t)(G->xo->ne[0] * G->clip) * sizeof(float);
    b[2] = (size_t)(G->shuf ? scvrl_nelements(G->shuf) : 1) * sizeof(int32_t);
}

// CUDA: the two clip inputs of batch buffer k to the device without waiting (scvrl_cuda_resident_async):
// the copy overlaps the step computing from the other buffer (the shuffle indices stay on the host:
// scm_step makes the gather's plane indices from them). 0, or -1 with err.
static int pt_upload(pt_prefetch *P, int k, char *err, size_t errlen) {
    err[0] = 0;
#ifdef SCVRL_CUDA
    if (!P->resident) return 0;
    size_t b[3];
    pt_batch_bytes(P->G, b);
    if (scvrl_cuda_resident_async(P->be, P->xm[k], b[0], err, errlen) || scvrl_cuda_resident_async(P->be, P->xo[k], b[1], err, errlen))
        return -1;
#else
    (void)P; (void)k; (void)errlen;
#endif
    return 0;
}

// CUDA: lets the two batch buffers go (the backend unpins them and frees their device copies).
static void pt_resident_release(pt_prefetch *P) {
#ifdef SCVRL_CUDA
    for (int k = 0; P->resident && k < 2; k++) {
        scvrl_cuda_resident_release(P->be, P->xm[k]); scvrl_cuda_resident_release(P->be, P->xo[k]);
    }
#endif
    P->resident = 0;
}

// CUDA: registers the two batch buffers as resident device inputs (unless SCVRL_SYNC_UPLOAD is set). A
// failure leaves the buffers to the per-compute upload, with a warning.
static void pt_resident_register(pt_prefetch *P) {
#ifdef SCVRL_CUDA
    if (!P->be || strcmp(C.device, "cuda") || getenv("SCVRL_SYNC_UPLOAD")) return;
    size_t b[3];
    pt_batch_bytes(P->G, b);
    char err[512];
    int rc = 0;
    P->resident = 1;
    for (int k = 0; k < 2 && !rc; k++)
        rc = scvrl_cuda_resident(P->be, P->xm[k], b[0], err, sizeof err) || scvrl_cuda_resident(P->be, P->xo[k], b[1], err, sizeof err);
    if (rc) { fprintf(stderr, "warning: batches are uploaded at each step instead (%s)\n", err); pt_resident_release(P); }
#else
    (void)P;
#endif
}

static void *pt_prefetch_main(void *arg) {
    pt_prefetch *P = (pt_prefetch *)arg;
    pthread_mutex_lock(&P->mu);
    for (;;) {
        while (!P->quit && P->want == P->ready) pthread_cond_wait(&P->cv, &P->mu);
        if (P->quit) break;
        int64_t s = P->want;
        pthread_mutex_unlock(&P->mu);
        int64_t sk = pt_load_batch(P->D, P->G, P->S, s, P->vids[s & 1], P->xm[s & 1], P->xo[s & 1], P->shuf[s & 1]);
        char uerr[512];
        pt_upload(P, (int)(s & 1), uerr, sizeof uerr);
        pthread_mutex_lock(&P->mu);
        memcpy(P->uerr[s & 1], uerr, sizeof uerr);
        P->skipped[s & 1] = sk;
        P->ready = s;
        pthread_cond_broadcast(&P->cv);
    }
    pthread_mutex_unlock(&P->mu);
    return NULL;
}

static void pt_prefetch_start(pt_prefetch *P, pt_data *D, const pt_graphs *G, const pt_state *S, scvrl_backend *be, int on) {
    memset(P, 0, sizeof(*P));
    P->D = D; P->G = G; P->S = S; P->be = be; P->on = on; P->want = P->ready = -1;
    size_t b[3];
    pt_batch_bytes(G, b);
    for (int k = 0; k < 2; k++) {
        P->xm[k] = (float *)malloc(b[0]);
        P->shuf[k] = (int32_t *)malloc(b[2]);
        P->xo[k] = (float *)malloc(b[1]);
        P->vids[k] = (int64_t *)malloc((size_t)G->B * sizeof(int64_t));
        if (!P->xm[k] || !P->xo[k] || !P->vids[k] || !P->shuf[k]) die("out of memory for the batch buffers (try a smaller --batch)");
    }
    pt_resident_register(P);
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv, NULL);
    if (on && pthread_create(&P->th, NULL, pt_prefetch_main, P)) P->on = 0;
}

static void pt_prefetch_stop(pt_prefetch *P) {
    if (P->on) {
        pthread_mutex_lock(&P->mu); P->quit = 1; pthread_cond_broadcast(&P->cv); pthread_mutex_unlock(&P->mu);
        pthread_join(P->th, NULL);
    }
    pt_resident_release(P);
    for (int k = 0; k < 2; k++) { free(P->xm[k]); free(P->xo[k]); free(P->vids[k]); free(P->shuf[k]); }
}

// The batch of `step` in the graph inputs (and the next one requested). Returns videos skipped.
static int64_t pt_prefetch_get(pt_prefetch *P, pt_graphs *G, int64_t step, int64_t *vids) {
    int k = (int)(step & 1);
    int64_t sk;
    if (!P->on) {
        sk = pt_load_batch(P->D, G, P->S, step, P->vids[k], P->xm[k], P->xo[k], P->shuf[k]);
        pt_upload(P, k, P->uerr[k], sizeof P->uerr[k]);
    } else {
        pthread_mutex_lock(&P->mu);
        if (P->ready != step) { P->want = step; pthread_cond_broadcast(&P->cv); }
        while (P->ready != step) pthread_cond_wait(&P->cv, &P->mu);
        sk = P->skipped[k];
        P->want = step + 1;
        pthread_cond_broadcast(&P->cv);
        pthread_mutex_unlock(&P->mu);
    }
    if (P->uerr[k][0]) die("uploading the batch of step %lld: %s\n  (SCVRL_SYNC_UPLOAD=1 uploads at each step instead; --resume continues from the last checkpoint)", (long long)step, P->uerr[k]);
    G->xm->data = P->xm[k];
    G->xo->data = P->xo[k];
    if (G->shuf) G->shuf->data = P->shuf[k];
    memcpy(vids, P->vids[k], (size_t)G->B * sizeof(int64_t));
    return sk;
}

// ---------------------------------------------------------------------------------------------
// One optimisation step. Returns 0, or -1 on a compute error or a non-finite loss.
// ---------------------------------------------------------------------------------------------

static int64_t pt_total_steps(const pt_data *D) {
    if (C.steps > 0) return C.steps;
    int64_t per_epoch = (D->list.n + C.batch - 1) / C.batch;
    return (C.epochs > 0 ? C.epochs : 100) * (per_epoch ? per_epoch : 1);
}

static int pt_step(pt_state *S, pt_graphs *G, pt_data *D, pt_prefetch *PF, scvrl_backend *be, int64_t total,
                   pt_stats *st, char *err, size_t errlen) {
    int64_t step = S->step, warm = C.warmup >= 0 ? C.warmup : total / 20;
    double t0 = cli_now();
    double lr = scvrl_lr_schedule(step, warm, total, C.lr_start, C.lr, C.lr_end);
    int64_t vids[4096];
    D->skipped += pt_prefetch_get(PF, G, step, vids);
    if (step == C.inject_nan_step) scvrl_f32(G->xo)[0] = NAN;
    scm_cfg m = pt_method_cfg();
    if (scm_step(S, G, &m, be, vids, lr, st, err, errlen)) return -1;
    st->sec = cli_now() - t0;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: one safetensors file with the online backbone under bare torchvision names,
// the heads, momentum.*, optim.*, queue.*, state.*, and the config in __metadata__.
// ---------------------------------------------------------------------------------------------
static void pt_add_params(scvrl_st_writer *w, const scvrl_params *P, const char *prefix) {
    char name[256];
    for (int i = 0; i < P->n; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, P->t[i]->name);
        scvrl_st_writer_add(w, name, SCVRL_DT_F32, P->t[i]->ndim, P->t[i]->ne, P->t[i]->data);
    }
}

static void pt_add_flat(scvrl_st_writer *w, const char *name, const float *x, int64_t n) {
    scvrl_st_writer_add(w, name, SCVRL_DT_F32, 1, &n, x);
}

static const char *pt_config_string(char *buf, size_t n) {
    snprintf(buf, n, "model=%s objective=%s temporal_loss=%s shared_head=%d pool=%s kt=%d frames=%d stride=%d size=%d "
             "batch=%d nt=%d group=%d queue=%lld momentum=%g tau=%g lambda=%g lr=%g wd=%g beta=%g crop_min=%g seed=%lld",
             C.model, C.objective, C.temporal_loss, C.shared_head, C.pool, C.kt, C.frames, C.stride, C.size, C.batch,
             C.nt, C.group, (long long)C.queue, C.momentum, C.tau, C.lambda_v, C.lr, C.wd, C.beta, C.crop_min, (long long)C.seed);
    size_t used = strlen(buf);      // augmentation probabilities only when not the paper's (older checkpoints resume)
    if (used < n && (C.p_flip != 0.5 || C.p_gray != 0.2 || C.p_blur != 0.5 || C.p_jitter != 0.8))
        snprintf(buf + used, n - used, " flip=%g gray=%g blur=%g color_jitter=%g", C.p_flip, C.p_gray, C.p_blur, C.p_jitter);
    return buf;
}

static int pt_save(const pt_state *S, const char *dir, char *err, size_t errlen) {
    char path[1024], cfg[1024];
    snprintf(path, sizeof path, "%s/ckpt-%08lld.safetensors", dir, (long long)S->step);
    scvrl_st_writer *w = scvrl_st_writer_new();
    if (!w) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    mvit_add_to_writer(&S->on, w, "");
    pt_add_params(w, &S->H, "");
    mvit_add_to_writer(&S->mo, w, "momentum.");
    pt_add_params(w, &S->Hm, "momentum.");
    if (S->on.P.m) {
        pt_add_flat(w, "optim.backbone.m", S->on.P.m, S->on.P.n_elems);
        pt_add_flat(w, "optim.backbone.v", S->on.P.v, S->on.P.n_elems);
        pt_add_flat(w, "optim.heads.m", S->H.m, S->H.n_elems);
        pt_add_flat(w, "optim.heads.v", S->H.v, S->H.n_elems);
    }
    int64_t qs[2] = { S->Q.K, S->Q.C }, one = 1, K = S->Q.K;
    int64_t st[4] = { S->step, S->on.P.step, C.seed, S->Q.ptr };
    scvrl_st_writer_add(w, "queue.keys", SCVRL_DT_F32, 2, qs, S->Q.keys);
    scvrl_st_writer_add(w, "queue.ids", SCVRL_DT_I64, 1, &K, S->Q.ids);
    scvrl_st_writer_add(w, "queue.ptr", SCVRL_DT_I64, 1, &one, &st[3]);
    scvrl_st_writer_add(w, "state.step", SCVRL_DT_I64, 1, &one, &st[0]);
    scvrl_st_writer_add(w, "state.adam_step", SCVRL_DT_I64, 1, &one, &st[1]);
    scvrl_st_writer_add(w, "state.seed", SCVRL_DT_I64, 1, &one, &st[2]);
    scvrl_st_writer_meta(w, "config", pt_config_string(cfg, sizeof cfg));
    scvrl_st_writer_meta(w, "format", "scvrl-pretrain-1");
    int rc = scvrl_st_writer_save(w, path, err, errlen);
    scvrl_st_writer_free(w);
    return rc;
}

// Keep the newest C.keep checkpoints of dir.
static void pt_prune(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    int64_t steps[4096]; int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        long long s;
        if (sscanf(e->d_name, "ckpt-%lld.safetensors", &s) == 1 && strstr(e->d_name, ".tmp") == NULL) steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= C.keep) {
            char p[1024];
            snprintf(p, sizeof p, "%s/ckpt-%08lld.safetensors", dir, (long long)steps[i]);
            remove(p);
        }
    }
}

// The newest checkpoint file of a run folder (or the file itself).
static int pt_find_checkpoint(const char *arg, char *out, size_t n) {
    struct stat st;
    if (stat(arg, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) { snprintf(out, n, "%s", arg); return 0; }
    DIR *d = opendir(arg);
    if (!d) return -1;
    long long best = -1, s;
    struct dirent *e;
    while ((e = readdir(d)))
        if (sscanf(e->d_name, "ckpt-%lld.safetensors", &s) == 1 && !strstr(e->d_name, ".tmp") && s > best) best = s;
    closedir(d);
    if (best < 0) return -1;
    snprintf(out, n, "%s/ckpt-%08lld.safetensors", arg, best);
    return 0;
}

static int pt_read_flat(scvrl_st_file *f, const char *name, float *dst, int64_t n, char *err, size_t errlen) {
    const scvrl_st_entry *e = scvrl_st_find(f, name);
    if (!e || e->numel != n) { snprintf(err, errlen, "%s: %s missing or of another size: not a checkpoint of this run's model", f->path, name); return -1; }
    return scvrl_st_read_f32(f, e, dst, err, errlen);
}

static int64_t pt_read_i64(scvrl_st_file *f, const char *name) {
    const scvrl_st_entry *e = scvrl_st_find(f, name);
    int64_t v = -1;
    if (e && e->dtype == SCVRL_DT_I64 && e->numel >= 1) memcpy(&v, f->data + e->begin, 8);
    return v;
}

static int pt_resume(pt_state *S, const char *path, char *err, size_t errlen) {
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, errlen)) return -1;
    char cfg[1024];
    const char *have = scvrl_st_meta(&f, "config");
    int rc = 0;
    if (!have || strcmp(have, pt_config_string(cfg, sizeof cfg))) {
        snprintf(err, errlen, "%s was made with another configuration:\n  checkpoint: %s\n  this run:   %s\n"
                 "resume with the same flags (or start a new --out)", path, have ? have : "(none)", cfg);
        rc = -1;
    }
    if (!rc) rc = mvit_load(&S->on, path, "", MVIT_LOAD_IGNORE_UNEXPECTED, err, errlen);
    if (!rc) rc = mvit_load(&S->mo, path, "momentum.", MVIT_LOAD_IGNORE_UNEXPECTED, err, errlen);
    char name[256];
    for (int i = 0; !rc && i < S->H.n; i++) {
        rc = pt_read_flat(&f, S->H.t[i]->name, scvrl_f32(S->H.t[i]), scvrl_nelements(S->H.t[i]), err, errlen);
        snprintf(name, sizeof name, "momentum.%s", S->Hm.t[i]->name);
        if (!rc) rc = pt_read_flat(&f, name, scvrl_f32(S->Hm.t[i]), scvrl_nelements(S->Hm.t[i]), err, errlen);
    }
    if (!rc && scvrl_st_find(&f, "optim.backbone.m")) {
        char e2[64];
        scvrl_adamw_cfg z = scvrl_adamw_default();
        z.lr = 0; z.weight_decay = 0;            // allocates m, v; lr 0 changes nothing
        scvrl_adamw_step(&S->on.P, &z, e2, sizeof e2); scvrl_adamw_step(&S->H, &z, e2, sizeof e2);
        rc = pt_read_flat(&f, "optim.backbone.m", S->on.P.m, S->on.P.n_elems, err, errlen);
        if (!rc) rc = pt_read_flat(&f, "optim.backbone.v", S->on.P.v, S->on.P.n_elems, err, errlen);
        if (!rc) rc = pt_read_flat(&f, "optim.heads.m", S->H.m, S->H.n_elems, err, errlen);
        if (!rc) rc = pt_read_flat(&f, "optim.heads.v", S->H.v, S->H.n_elems, err, errlen);
    }
    if (!rc) rc = pt_read_flat(&f, "queue.keys", S->Q.keys, S->Q.K * S->Q.C, err, errlen);
    const scvrl_st_entry *qi = scvrl_st_find(&f, "queue.ids");
    if (!rc && (!qi || qi->numel != S->Q.K || qi->dtype != SCVRL_DT_I64)) { snprintf(err, errlen, "%s: queue.ids missing", path); rc = -1; }
    if (!rc) {
        memcpy(S->Q.ids, f.data + qi->begin, (size_t)S->Q.K * 8);
        S->Q.ptr = pt_read_i64(&f, "queue.ptr");
        S->step = pt_read_i64(&f, "state.step");
        S->on.P.step = S->H.step = pt_read_i64(&f, "state.adam_step");
        if (S->step < 0 || S->Q.ptr < 0) { snprintf(err, errlen, "%s: state.* missing", path); rc = -1; }
    }
    scvrl_st_close(&f);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Monitors: kNN top-1 (leave-one-out, cosine, k = 10) of online features on --val, and the
// held-out temporal contrastive accuracy (positive vs N_T shuffles, ties are misses).
// ---------------------------------------------------------------------------------------------
typedef struct { ds_list list; ld_loader L; int have; } pt_val;

static int pt_val_features(pt_state *S, pt_val *V, scvrl_backend *be, float *feats, char *err, size_t errlen) {
    int64_t n = V->list.n, B = C.batch, clip = 3LL * C.frames * C.size * C.size;
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    scvrl_tensor *x = pt_input(ctx, B, "x_val");
    scvrl_tensor *f = scvrl_l2_normalize(ctx, mvit_forward(ctx, &S->on, x, 0, 0, NULL), 1e-12f);
    scvrl_mark_output(f);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, f);
    int rc = 0;
    for (int64_t i0 = 0; i0 < n && !rc; i0 += B) {
        #pragma omp parallel for schedule(dynamic)
        for (int64_t b = 0; b < B; b++) {
            char e2[512];
            if (i0 + b >= n || ld_eval_clip(&V->L, i0 + b, 0, 1, 0, 1, scvrl_f32(x) + b * clip, e2, sizeof e2))
                memset(scvrl_f32(x) + b * clip, 0, (size_t)clip * sizeof(float));
        }
        rc = scvrl_graph_compute(g, be, err, errlen);
        for (int64_t b = 0; b < B && i0 + b < n && !rc; b++) memcpy(feats + (i0 + b) * S->D, scvrl_f32(f) + b * S->D, (size_t)S->D * 4);
    }
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
    return rc;
}

static double pt_knn(pt_state *S, pt_val *V, scvrl_backend *be) {
    int64_t n = V->list.n, D = S->D;
    float *fe = (float *)malloc((size_t)(n * D) * sizeof(float));
    char err[512];
    if (!fe || pt_val_features(S, V, be, fe, err, sizeof err)) { free(fe); return NAN; }
    int64_t hit = 0;
    for (int64_t i = 0; i < n; i++) {
        double votes[1024] = { 0 }, best[10]; int64_t bi[10]; int nb = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += (double)fe[i * D + d] * fe[j * D + d];
            int p = nb < 10 ? nb++ : 9;
            if (p == 9 && nb == 10 && s <= best[9]) continue;
            while (p > 0 && best[p - 1] < s) { best[p] = best[p - 1]; bi[p] = bi[p - 1]; p--; }
            best[p] = s; bi[p] = j;
        }
        for (int k = 0; k < nb; k++) { int l = V->list.items[bi[k]].label; if (l >= 0 && l < 1024) votes[l] += exp(best[k] / 0.07); }
        int arg = 0;
        for (int l = 1; l < 1024; l++) if (votes[l] > votes[arg]) arg = l;
        hit += arg == V->list.items[i].label;
    }
    free(fe);
    return n ? (double)hit / (double)n : NAN;
}

// Temporal accuracy on held-out videos: anchor from the online encoder, positive and shuffles
// from the momentum encoder, as in training but on videos never trained on (epoch 1e6).
static double pt_heldout_acc_t(pt_state *S, pt_val *V, scvrl_backend *be) {
    if (!S->temporal || S->ce) return NAN;
    int64_t B = C.batch, nt = V->L.n_shuffles, clip = 3LL * C.frames * C.size * C.size, hit = 0, tot = 0;
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    scvrl_tensor *xa = pt_input(ctx, B, "xa"), *xm = pt_input(ctx, B * (1 + nt), "xm");
    scvrl_tensor *qa = scvrl_l2_normalize(ctx, con_head(ctx, &S->H, S->ht, mvit_forward(ctx, &S->on, xa, 0, 0, NULL)), 1e-12f);
    scvrl_tensor *km = scvrl_l2_normalize(ctx, con_head(ctx, &S->Hm, S->ht, mvit_forward(ctx, &S->mo, xm, 0, 0, NULL)), 1e-12f);
    scvrl_mark_output(qa); scvrl_mark_output(km);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, qa); scvrl_graph_expand(g, km);
    char err[512];
    for (int64_t i0 = 0; i0 < V->list.n; i0 += B) {
        int ok[4096] = { 0 };
        #pragma omp parallel for schedule(dynamic)
        for (int64_t b = 0; b < B; b++) {
            char e2[512];
            ok[b] = i0 + b < V->list.n && !ld_pretrain_sample(&V->L, i0 + b, 1000000, (uint64_t)(i0 + b), scvrl_f32(xa) + b * clip,
                                                          scvrl_f32(xm) + b * clip, scvrl_f32(xm) + (B + b * nt) * clip, NULL, e2, sizeof e2);
        }
        if (scvrl_graph_compute(g, be, err, sizeof err)) break;
        for (int64_t b = 0; b < B; b++) {
            if (!ok[b]) continue;
            const float *q = scvrl_f32(qa) + b * CON_DIM, *kp = scvrl_f32(km) + b * CON_DIM;
            double pos = 0; int win = 1;
            for (int c = 0; c < CON_DIM; c++) pos += (double)q[c] * kp[c];
            for (int64_t j = 0; j < nt; j++) {
                const float *kn = scvrl_f32(km) + (B + b * nt + j) * CON_DIM;
                double s = 0;
                for (int c = 0; c < CON_DIM; c++) s += (double)q[c] * kn[c];
                if (!(pos > s)) win = 0;
            }
            hit += win; tot++;
        }
    }
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
    return tot ? (double)hit / (double)tot : NAN;
}

// ---------------------------------------------------------------------------------------------
// The demo: 1,000 synthetic 32-px motion videos (and 144 held-out ones) generated once into
// data/demo32, then the recipe of the CI learning test (tests/test-pretrain.c): mvit-micro, 500
// steps of batch 16, L_T + 0.5 L_V with 4 shuffles, queue 64, momentum 0.9, lr 3e-4 after the
// warm-up, near-identical views. About a minute and a half on 2 cores; the held-out temporal
// accuracy (12 shuffles, the paper's augmentation) ends near 0.65 (chance 0.077). --steps and
// --out are kept; every other flag is the demo's.
// ---------------------------------------------------------------------------------------------
#define PT_DEMO_DIR "data/demo32"
static void pt_demo_defaults(void) {
    C.model = "mvit-micro"; C.frames = 8; C.stride = 2; C.size = 32; C.batch = 16; C.nt = 4; C.queue = 64;
    C.momentum = 0.9; C.lambda_v = 0.5; C.steps = C.steps ? C.steps : 500; C.lr = 3e-4; C.lr_start = 1e-6; C.lr_end = 3e-4;
    C.save_every = 100; C.out = strcmp(C.out, "runs/scvrl") ? C.out : "runs/demo"; C.drop_path = 0.0; C.beta = INFINITY;
    // the two views of a clip nearly the same: at initialisation the keys of a clip and of its shuffles
    // are almost equal, and L_T takes off within minutes only without the paper's view augmentation
    C.crop_min = 0.9; C.p_flip = 0; C.p_gray = 0; C.p_blur = 0; C.p_jitter = 0;
}

static void pt_demo_progress(void *ctx, int64_t done, int64_t total) { cli_progress_update((cli_progress *)ctx, done); (void)total; }

static void pt_demo_data(void) {
    static const char *dir = PT_DEMO_DIR;
    struct stat st;
    if (!stat(PT_DEMO_DIR "/pretrain.csv", &st) && !stat(PT_DEMO_DIR "/val.csv", &st)) return;
    synth_dataset d;
    memset(&d, 0, sizeof d);
    d.out = dir; d.opts.size = 32; d.opts.frames = 24; d.opts.hard = 1; d.kind = SYNTH_KIND_MOTION;
    d.per_class = 8; d.pretrain = 1000; d.splits = 1 << SYNTH_VAL; d.seed = 1;
    d.format = SYNTH_JPG;
    char err[512];
    d.format = vwrite_available(VWRITE_MP4, NULL, 0) ? SYNTH_MP4 : SYNTH_JPG;
    if (synth_check_dataset(&d, err, sizeof err)) die("demo data: %s", err);
    fprintf(stderr, "demo: generating a synthetic motion data set in %s (once)\n", dir);
    cli_progress p;
    cli_progress_start(&p, "synth", "videos", 1000 + 8 * 18, C.quiet);
    if (synth_write_dataset(&d, pt_demo_progress, &p, err, sizeof err)) die("demo data: %s", err);
    cli_progress_finish(&p);
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
static void pt_mkdir(const char *dir) {
    char err[512];
    if (vwrite_mkdirs(dir, err, sizeof err)) die("%s", err);
}

static void pt_write_command(const char *dir, int argc, char **argv) {
    char path[1024], cfg[1024];
    snprintf(path, sizeof path, "%s/command.txt", dir);
    FILE *f = fopen(path, "a");
    if (!f) die("%s: cannot write (%s)", path, strerror(errno));
    for (int i = 0; i < argc; i++) fprintf(f, "%s%s", i ? " " : "", argv[i]);
    fprintf(f, "\n# %s\n", pt_config_string(cfg, sizeof cfg));
    fclose(f);
}

// metrics.jsonl: on resume, keep only the lines of steps the checkpoint already holds.
static FILE *pt_open_metrics(const char *dir, int64_t keep_below) {
    char path[1024], tmp[1100], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (!out) die("%s: cannot write (%s)", tmp, strerror(errno));
    while (in && fgets(line, sizeof line, in)) {
        long long s;
        if (sscanf(line, "{\"step\": %lld", &s) == 1 && s < keep_below) fputs(line, out);
    }
    if (in) fclose(in);
    fclose(out);
    if (rename(tmp, path)) die("%s: cannot rename (%s)", path, strerror(errno));
    FILE *f = fopen(path, "a");
    if (!f) die("%s: cannot append (%s)", path, strerror(errno));
    return f;
}

static void pt_plot(const char *dir) {
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int cap = 1024, n = 0;
    float *y[3] = { malloc(cap * 4), malloc(cap * 4), malloc(cap * 4) };
    while (fgets(line, sizeof line, f)) {
        long long s; double a, b, c;
        if (sscanf(line, "{\"step\": %lld, \"loss\": %lf, \"loss_t\": %lf, \"loss_v\": %lf", &s, &a, &b, &c) != 4) continue;
        if (n == cap) { cap *= 2; for (int k = 0; k < 3; k++) y[k] = realloc(y[k], (size_t)cap * 4); }
        y[0][n] = (float)a; y[1][n] = (float)b; y[2][n] = (float)c; n++;
    }
    fclose(f);
    char err[512];
    snprintf(path, sizeof path, "%s/loss.png", dir);
    const float *const ys[3] = { y[0], y[1], y[2] };
    if (n > 1 && plot_curves(path, 640, 360, ys, 3, n, err, sizeof err)) fprintf(stderr, "warning: %s\n", err);
    for (int k = 0; k < 3; k++) free(y[k]);
}

static void pt_open_data(pt_data *D, pt_val *V, const char *out) {
    char err[1024];
    memset(D, 0, sizeof *D); memset(V, 0, sizeof *V);
    D->perm_epoch = -1;
    if (ds_load(C.data, NULL, &D->list, err, sizeof err)) die("%s", err);
    if (D->list.n == 0) die("%s: no videos listed", C.data);
    ld_init(&D->L, &D->list, C.frames, C.stride, C.size, (uint64_t)C.seed);
    D->L.quiet = C.quiet;
    D->L.group = C.group;
    D->L.beta = C.beta;
    D->L.aug.scale_min = (float)C.crop_min;
    D->L.aug.p_flip = (float)C.p_flip; D->L.aug.p_gray = (float)C.p_gray;
    D->L.aug.p_blur = (float)C.p_blur; D->L.aug.p_jitter = (float)C.p_jitter;
    D->L.folder_fps = C.fps;
    D->L.n_shuffles = !strcmp(C.objective, "cvrl") ? 0 : !strcmp(C.temporal_loss, "ce") ? 1 : C.nt;
    if (D->L.n_shuffles) {
        int perms_ok = 1;
        double f = 1;
        for (int k = 2; k <= C.frames / C.group && f < 1e9; k++) f *= k;
        int most = D->L.n_shuffles > C.heldout_nt ? D->L.n_shuffles : C.heldout_nt;
        if (C.frames % C.group || f - 1 < most) perms_ok = 0;
        if (!perms_ok) die("--frames %d in groups of --group %d gives too few distinct shuffles for --nt %d / --heldout-nt %d",
                           C.frames, C.group, C.nt, C.heldout_nt);
        const char *w = clip_shuffle_kernel_warning(C.frames, C.group, C.kt, 2, C.kt == 2 ? 0 : 1);
        if (w) fprintf(stderr, "warning: %s\n", w);
    }
    if (C.queue > D->list.n / 4)
        fprintf(stderr, "warning: the queue (%lld keys) exceeds a quarter of the %lld videos: keys of the same video crowd it "
                "(same-video keys are masked); suggested --queue %lld\n", (long long)C.queue, (long long)D->list.n,
                (long long)(D->list.n / 4 >= C.batch * 2 ? D->list.n / 4 : C.batch * 2));
    if ((double)C.queue / C.batch > 1.0 / (1.0 - C.momentum))
        fprintf(stderr, "warning: the queue holds %.0f steps of keys but the momentum encoder averages over ~%.0f steps: "
                "the oldest keys come from a much older encoder\n", (double)C.queue / C.batch, 1.0 / (1.0 - C.momentum));
    if (isfinite(C.beta)) {
        char cache[1100];
        snprintf(cache, sizeof cache, "%s.motion", C.data);
        if (ld_prepare_motion(&D->L, cache, err, sizeof err)) fprintf(stderr, "warning: %s: uniform sampling\n", err);
    }
    if (C.val) {
        if (ds_load(C.val, NULL, &V->list, err, sizeof err)) die("%s", err);
        ld_init(&V->L, &V->list, C.frames, C.stride, C.size, (uint64_t)C.seed + 1);
        V->L.group = C.group; V->L.n_shuffles = D->L.n_shuffles ? C.heldout_nt : 0; V->L.beta = INFINITY; V->L.folder_fps = C.fps;
        // V->L.aug stays the paper's augmentation (ld_init) whatever the training flags: the held-out
        // temporal accuracy is one fixed protocol, under which an untrained network scores chance.
        V->have = 1;
    }
    (void)out;
}

static void pt_log_step(FILE *mf, const pt_stats *st, int64_t step, double clips_per_s, int64_t skipped) {
    fprintf(mf, "{\"step\": %lld, \"loss\": %.6f, \"loss_t\": %.6f, \"loss_v\": %.6f, \"acc_t\": %.4f, \"acc_v\": %.4f, "
            "\"lr\": %.3e, \"clips_per_s\": %.3f, \"skipped\": %lld, \"masked\": %lld}\n", (long long)step, st->loss, st->loss_t,
            st->loss_v, st->acc_t, st->acc_v, st->lr, clips_per_s, (long long)skipped, (long long)st->masked);
    fflush(mf);
}

static int pt_checkpoint(pt_state *S, const char *out) {
    char err[1024];
    if (scm_sync(S, err, sizeof err) || pt_save(S, out, err, sizeof err)) { fprintf(stderr, "pretrain: checkpoint not written: %s\n", err); return -1; }
    pt_prune(out);
    pt_plot(out);
    return 0;
}

static scvrl_backend *pt_backend(void) {
    char err[512];
    scvrl_backend *be = probe_backend(C.device, C.precision, err, sizeof err);
    if (!be) die("--device %s: %s", C.device, err);
    return be;
}

static void pt_train(pt_state *S, pt_graphs *G, pt_data *D, pt_val *V, scvrl_backend *be, FILE *mf) {
    int64_t total = pt_total_steps(D);
    pt_prefetch PF;
    pt_prefetch_start(&PF, D, G, S, be, strcmp(C.device, "cpu") != 0);
    cli_progress p;
    cli_progress_start(&p, "pretrain", "steps", total, C.quiet);
    p.done = S->step;
    double acc_t = 0, acc_v = 0, loss = 0, t_clips = 0, t_sec = 0;
    int n_avg = 0;
    char err[1024];
    while (S->step < total && !g_stop) {
        pt_stats st;
        int64_t step = S->step;
        if (pt_step(S, G, D, &PF, be, total, &st, err, sizeof err)) {
            cli_progress_break(&p);
            fprintf(stderr, "pretrain: %s\n", err);
            exit(3);
        }
        double cps = (double)(G->B * (G->xo->ne[0] / G->B) + G->Bm) / st.sec;
        pt_log_step(mf, &st, step, cps, D->skipped);
        loss += st.loss; acc_t += st.acc_t; acc_v += st.acc_v; t_clips += cps * st.sec; t_sec += st.sec; n_avg++;
        cli_progress_update(&p, S->step);
        if (S->step % 10 == 0 || S->step == total) {
            cli_progress_break(&p);
            fprintf(stderr, "step %lld/%lld  loss %.4f  L_T %.4f acc_t %.2f  L_V %.4f acc_v %.2f  lr %.2e  %.1f clips/s\n",
                    (long long)S->step, (long long)total, loss / n_avg, st.loss_t, acc_t / n_avg, st.loss_v, acc_v / n_avg,
                    st.lr, t_clips / t_sec);
            loss = acc_t = acc_v = t_clips = t_sec = 0; n_avg = 0;
        }
        if (V->have && C.knn_every > 0 && S->step % C.knn_every == 0) {
            double k = pt_knn(S, V, be);
            cli_progress_break(&p);
            fprintf(stderr, "step %lld: kNN top-1 on %s: %.3f\n", (long long)S->step, C.val, k);
            fprintf(mf, "{\"step\": %lld, \"knn_top1\": %.4f}\n", (long long)S->step - 1, k);
        }
        if (S->step % C.save_every == 0 && S->step < total) pt_checkpoint(S, C.out);
    }
    cli_progress_finish(&p);
    pt_prefetch_stop(&PF);
}

int main(int argc, char **argv) {
    cli_spec spec = { "pretrain", "[--data LIST] [flags]",
        "SCVRL self-supervised pretraining of an MViT video transformer (CVRL with --objective cvrl).\n"
        "With no arguments: the demo (a synthetic motion set in data/demo32, mvit-micro, about 1.5 CPU minutes).",
        flags, (int)(sizeof(flags) / sizeof(flags[0])), mvit_print_presets, NULL };
    int demo = argc == 1;
    cli_parse(&spec, argc, argv, 1, NULL, 0);
    if (C.threads > 0) scvrl_set_threads(C.threads);
    if (!C.data) { demo = 1; pt_demo_defaults(); pt_demo_data(); C.data = PT_DEMO_DIR "/pretrain.csv"; if (!C.val) C.val = PT_DEMO_DIR "/val.csv"; }
    (void)demo;
    mvit_config mc;
    if (mvit_preset(C.model, &mc)) { mvit_print_presets(stderr); die("unknown --model %s", C.model); }
    mc.kt = C.kt; mc.frames = C.frames; mc.size = C.size; mc.drop_path = (float)C.drop_path; mc.pool_avg = !strcmp(C.pool, "avg");
    char err[1024];
    if (mvit_check_config(&mc, err, sizeof err)) die("%s", err);
    pt_data D; pt_val V;
    pt_open_data(&D, &V, C.out);
    pt_state S;
    scm_cfg m = pt_method_cfg();
    if (scm_init(&S, &m, &mc, err, sizeof err)) die("%s", err);
    pt_mkdir(C.out);
    if (C.resume) {
        char ck[1024];
        if (pt_find_checkpoint(C.resume, ck, sizeof ck)) die("--resume %s: no checkpoint there (ckpt-*.safetensors)", C.resume);
        if (pt_resume(&S, ck, err, sizeof err)) die("%s", err);
        fprintf(stderr, "resumed from %s at step %lld\n", ck, (long long)S.step);
    }
    pt_write_command(C.out, argc, argv);
    FILE *mf = pt_open_metrics(C.out, S.step);
    pt_graphs G;
    scm_build(&G, &S, &m);
    scvrl_backend *be = pt_backend();
    if (scm_to_device(&S, be, err, sizeof err)) die("%s", err);     // CUDA: weights, EMA and AdamW on the GPU
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    fprintf(stderr, "%s: %s on %lld videos, batch %d, %d threads, %s; run folder %s\n", C.objective, C.model,
            (long long)D.list.n, C.batch, scvrl_get_threads(), C.device, C.out);
    pt_train(&S, &G, &D, &V, be, mf);
    if (pt_checkpoint(&S, C.out)) exit(1);
    if (g_stop) { fprintf(stderr, "stopped at step %lld and saved; continue with --resume %s\n", (long long)S.step, C.out); return 0; }
    double knn = V.have ? pt_knn(&S, &V, be) : NAN, hat = V.have ? pt_heldout_acc_t(&S, &V, be) : NAN;
    if (D.skipped) fprintf(stderr, "%lld unreadable videos were skipped (last: %s)\n", (long long)D.skipped, D.last_err);
    if (V.have) fprintf(stderr, "held-out (%s): kNN top-1 %.3f, temporal accuracy %.3f (chance %.3f)\n", C.val, knn, hat, 1.0 / (C.heldout_nt + 1));
    {
        char png[1100];
        struct stat pst;
        snprintf(png, sizeof png, "%s/loss.png", C.out);
        if (!C.quiet && !stat(png, &pst)) fprintf(stderr, "loss curves: %s (blue: loss, red: L_T, green: L_V, against the step)\n", png);
    }
    char hs[32] = "null", ks[32] = "null";          // JSON has no NaN: null when not measured
    if (isfinite(hat)) snprintf(hs, sizeof hs, "%.4f", hat);
    if (isfinite(knn)) snprintf(ks, sizeof ks, "%.4f", knn);
    printf("{\"steps\": %lld, \"heldout_acc_t\": %s, \"knn_top1\": %s, \"skipped\": %lld, \"out\": \"%s\"}\n",
           (long long)S.step, hs, ks, (long long)D.skipped, C.out);
    fclose(mf);
    scm_free_graphs(&G);
    scm_free(&S);                                   // unbinds the parameters and the queue: before the backend
    if (strcmp(C.device, "cpu")) scvrl_backend_free(be);
    ld_free(&D.L);
    ds_free(&D.list);
    free(D.perm);
    if (V.have) { ld_free(&V.L); ds_free(&V.list); }
    return 0;
}
