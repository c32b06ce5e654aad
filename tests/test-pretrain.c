// test-pretrain: the SCVRL pieces (InfoNCE against a naive double loop, queue, masks, EMA in
// float32, shuffled negatives never in the positive's order) and the pretrain program end to end
// (a tiny run that learns: losses fall, held-out temporal accuracy above 3/13; bit-exact resume after
// SIGKILL; NaN stop).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "scvrl.h"
#include "models/contrast.h"
#include "models/method.h"
#include "loader.h"
#include "test.h"

static double naive_infonce(const float *q, const float *kp, const float *kn, int nn, int C, float tau, const float *mask) {
    double l[1 + 64], m = -INFINITY, s = 0;
    for (int j = 0; j <= nn; j++) {
        const float *k = j ? kn + (j - 1) * C : kp;
        double d = 0;
        for (int c = 0; c < C; c++) d += (double)q[c] * k[c];
        l[j] = d / tau + (j && mask ? mask[j - 1] : 0.0);
        if (l[j] > m) m = l[j];
    }
    for (int j = 0; j <= nn; j++) s += exp(l[j] - m);
    return m + log(s) - l[0];
}

static void test_infonce(void) {
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t B = 3, N = 5, Cd = 7, K = 6;
    int64_t nq[2] = { B, Cd }, nn[3] = { B, N, Cd }, nk[2] = { K, Cd };
    scvrl_tensor *q = scvrl_new_data(ctx, SCVRL_DT_F32, 2, nq), *kp = scvrl_new_data(ctx, SCVRL_DT_F32, 2, nq);
    scvrl_tensor *kn = scvrl_new_data(ctx, SCVRL_DT_F32, 3, nn), *qu = scvrl_new_data(ctx, SCVRL_DT_F32, 2, nk);
    scvrl_tensor *mask = scvrl_new_2d(ctx, SCVRL_DT_F32, B, K);
    scvrl_fill_uniform(scvrl_f32(q), B * Cd, 1, 1, -1, 1);
    scvrl_fill_uniform(scvrl_f32(kp), B * Cd, 1, 2, -1, 1);
    scvrl_fill_uniform(scvrl_f32(kn), B * N * Cd, 1, 3, -1, 1);
    scvrl_fill_uniform(scvrl_f32(qu), K * Cd, 1, 4, -1, 1);
    scvrl_f32(mask)[2] = -INFINITY; scvrl_f32(mask)[K + 5] = -INFINITY;
    scvrl_tensor *lg1, *lg2;
    scvrl_tensor *l1 = con_infonce_per_sample(ctx, q, kp, kn, 0.1f, &lg1);
    scvrl_tensor *l2 = con_infonce_queue(ctx, q, kp, qu, mask, 0.1f, &lg2);
    scvrl_mark_output(l1); scvrl_mark_output(l2);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, l1); scvrl_graph_expand(g, l2);
    scvrl_graph_compute(g, NULL, NULL, 0);
    double e1 = 0, e2 = 0;
    for (int64_t b = 0; b < B; b++) {
        double r1 = naive_infonce(scvrl_f32(q) + b * Cd, scvrl_f32(kp) + b * Cd, scvrl_f32(kn) + b * N * Cd, (int)N, (int)Cd, 0.1f, NULL);
        double r2 = naive_infonce(scvrl_f32(q) + b * Cd, scvrl_f32(kp) + b * Cd, scvrl_f32(qu), (int)K, (int)Cd, 0.1f, scvrl_f32(mask) + b * K);
        e1 = fmax(e1, fabs(scvrl_f32(l1)[b] - r1) / fabs(r1));
        e2 = fmax(e2, fabs(scvrl_f32(l2)[b] - r2) / fabs(r2));
    }
    char name[128];
    snprintf(name, sizeof name, "InfoNCE with per-sample negatives vs naive loop: rel err %.1e", e1);
    test_check(e1 < 1e-5, name, "differs");
    snprintf(name, sizeof name, "InfoNCE with a masked queue vs naive loop: rel err %.1e", e2);
    test_check(e2 < 1e-5, name, "differs");
    float row[4] = { 1.0f, 1.0f, 0.5f, 0.2f };      // tie with a negative: a miss
    float row2[4] = { 1.1f, 1.0f, 0.5f, 0.2f };
    test_check(con_accuracy(row, 1, 3) == 0.0 && con_accuracy(row2, 1, 3) == 1.0, "accuracy counts ties as misses", "wrong");
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
}

static void test_queue_and_ema(void) {
    con_queue Q;
    con_queue_init(&Q, 8, 4, 3);
    double worst = 0;
    for (int i = 0; i < 8; i++) {
        double n = 0;
        for (int c = 0; c < 4; c++) n += (double)Q.keys[i * 4 + c] * Q.keys[i * 4 + c];
        worst = fmax(worst, fabs(sqrt(n) - 1));
    }
    test_check(worst < 1e-6 && Q.ids[0] == -1 && Q.ptr == 0, "queue starts with random unit keys, ids -1", "norm off by %g", worst);
    float k[5 * 4];
    int64_t ids[5] = { 10, 11, 12, 13, 14 };
    for (int i = 0; i < 20; i++) k[i] = (float)i;
    con_queue_push(&Q, k, ids, 5);
    con_queue_push(&Q, k, ids, 5);           // wraps: slots 5,6,7 then 0,1
    test_check(Q.ptr == 2 && Q.ids[0] == 13 && Q.ids[1] == 14 && Q.ids[2] == 12 && Q.ids[7] == 12 && Q.keys[0] == 12.0f,
               "enqueue overwrites the oldest keys and wraps", "ptr %lld ids %lld %lld", (long long)Q.ptr, (long long)Q.ids[0], (long long)Q.ids[1]);
    float mask[2 * 8];
    int64_t a[2] = { 12, 99 };
    int64_t nm = con_queue_mask(&Q, a, 2, mask);
    int ok = nm == 2 && isinf(mask[2]) && isinf(mask[7]) && mask[0] == 0.0f && mask[8 + 2] == 0.0f;
    test_check(ok, "keys of the anchor's own video are masked, others kept", "%lld masked", (long long)nm);
    con_queue_free(&Q);
    // EMA stays in float32: m = 0.999 moves a weight by 1e-3 of the gap (bf16 would not move at all)
    scvrl_params A, Bp;
    scvrl_params_init(&A); scvrl_params_init(&Bp);
    int64_t n1 = 1;
    scvrl_params_add(&A, "w", 1, &n1, 0); scvrl_params_add(&Bp, "w", 1, &n1, 0);
    scvrl_params_finalize(&A, NULL, 0); scvrl_params_finalize(&Bp, NULL, 0);
    A.w[0] = 1.0f; Bp.w[0] = 2.0f;
    scvrl_ema_update(&A, &Bp, 0.999f);
    test_check(fabsf(A.w[0] - 1.001f) < 1e-6f, "EMA m=0.999 in float32 moves the momentum weight", "got %.8f", A.w[0]);
    scvrl_params_free(&A); scvrl_params_free(&Bp);
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int have(const char *path) { struct stat st; return !stat(path, &st); }

#define DIR "build/tests/pretrain"
#define SMALL "--model mvit-tiny --frames 8 --stride 2 --size 64 --batch 4 --queue 8 --momentum 0.99 --nt 6 --threads 2 --quiet "

// The shuffled copies the loader makes never repeat the positive's frame order.
static void test_shuffles_differ(void) {
    ds_list l;
    char err[512];
    if (ds_load(DIR "/data/pretrain.csv", NULL, &l, err, sizeof err)) { test_fail("shuffles differ from the positive", "%s", err); return; }
    ld_loader L;
    ld_init(&L, &l, 8, 2, 64, 5);
    L.n_shuffles = 6; L.beta = INFINITY;
    int64_t clip = 3 * 8 * 64 * 64;
    float *x = (float *)malloc((size_t)(9 * clip) * sizeof(float));
    int bad = 0;
    for (int s = 0; s < 4; s++) {
        if (ld_pretrain_sample(&L, s, 0, (uint64_t)s, x, x + clip, x + 2 * clip, x + 8 * clip, err, sizeof err)) { bad = 100; break; }
        for (int j = 0; j < 6; j++) if (!memcmp(x + clip, x + (2 + j) * clip, (size_t)clip * sizeof(float))) bad++;
    }
    test_check(bad == 0, "shuffled negatives never equal the positive's order", "%d equal (%s)", bad, err);
    free(x);
    ld_free(&L);
    ds_free(&l);
}

static int read_metrics(const char *path, char lines[][256], int max) {
    FILE *f = fopen(path, "r");
    int n = 0;
    char buf[1024];
    while (f && n < max && fgets(buf, sizeof buf, f))
        if (!strstr(buf, "knn")) { char *c = strstr(buf, ", \"clips_per_s\""); if (c) *c = 0; snprintf(lines[n++], 256, "%s", buf); }
    if (f) fclose(f);
    return n;
}

static void test_end_to_end(void) {
    if (!have("examples/pretrain") || !have("examples/synth")) { test_skip("pretrain end to end", "examples/pretrain not built"); return; }
    run("rm -rf " DIR " && mkdir -p " DIR);
#if defined(SCVRL_FFMPEG)
#define SYNTH_FORMAT "mp4"
#elif defined(SCVRL_STB)
#define SYNTH_FORMAT "jpg"
#else
    test_skip("pretrain end to end", "built without FFmpeg and without stb: no video can be written or read");
    return;
#define SYNTH_FORMAT "mp4"
#endif
    if (run("./examples/synth --out " DIR "/data --per-class 1 --pretrain 24 --splits val --quiet --format " SYNTH_FORMAT)) {
        test_fail("synthetic data", "examples/synth failed");
        return;
    }
    test_shuffles_differ();
    // uninterrupted run, then the same run killed (SIGKILL) mid-way and resumed
    int rc = run("./examples/pretrain --data " DIR "/data/pretrain.csv " SMALL "--steps 12 --save-every 3 --out " DIR "/a > " DIR "/a.log 2>&1");
    test_check(rc == 0, "pretrain runs", "exit %d (see " DIR "/a.log)", rc);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec ./examples/pretrain --data " DIR "/data/pretrain.csv " SMALL "--steps 12 --save-every 3 --out " DIR "/b > " DIR "/b.log 2>&1", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {         // kill after step 7 is logged
        char l[16][256];
        if (read_metrics(DIR "/b/metrics.jsonl", l, 16) >= 8) break;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    rc = run("./examples/pretrain --data " DIR "/data/pretrain.csv " SMALL "--steps 12 --save-every 3 --out " DIR "/b --resume " DIR "/b >> " DIR "/b.log 2>&1");
    char la[16][256], lb[16][256];
    int na = read_metrics(DIR "/a/metrics.jsonl", la, 16), nb = read_metrics(DIR "/b/metrics.jsonl", lb, 16), same = na == 12 && nb == 12;
    for (int i = 0; same && i < 12; i++) same = !strcmp(la[i], lb[i]);
    test_check(rc == 0 && same, "resume after SIGKILL logs exactly the uninterrupted losses", "rc %d, %d vs %d lines", rc, na, nb);
    // NaN: an absurd learning rate makes the loss non-finite; the run stops and keeps its checkpoint
    rc = run("./examples/pretrain --data " DIR "/data/pretrain.csv " SMALL "--steps 12 --save-every 2 --inject-nan-step 3 --out " DIR "/nan > " DIR "/nan.log 2>&1");
    FILE *f = fopen(DIR "/nan.log", "r");
    char buf[4096] = "";
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[got] = 0;
    if (f) fclose(f);
    test_check(rc == 3 && strstr(buf, "last good checkpoint") && have(DIR "/nan/ckpt-00000002.safetensors"),
               "a non-finite loss stops the run with a message and keeps the last good checkpoint", "rc %d: %s", rc, buf);
}

// ---------------------------------------------------------------------------------------------
// Learning (issue #5): a tiny SCVRL run (L_T + 0.5 L_V) of examples/pretrain on synthetic motion
// videos the test makes itself, about 70 s on 2 CPU threads with the data. Its losses must fall
// and its temporal contrastive accuracy on held-out videos (the ordered clip's key against those of
// 12 shuffles, chance 1/13, ties are misses) must exceed 3/13. What makes a minute enough:
// - mvit-micro at 32 px; 4 shuffled negatives per sample in training (12 in the measurement),
//   batch 16, momentum 0.9, lambda 0.5, learning rate 3e-4 held after the warm-up, no drop-path,
//   uniform clip sampling (no motion index to compute).
// - the two views of a training clip are nearly the same (crop area >= 0.9, no flip, no colour
//   augmentation). At initialisation the keys of a clip and of its shuffles have cosine ~0.995;
//   L_T takes off only once the online encoder predicts which way the ordered clip's key differs,
//   and with the paper's augmentation between the views it did not within 600 steps.
// The measurement cannot be passed without learning: pretrain measures it with the paper's
// augmentation between the views (crop area from 0.08, flip, colour jitter, grayscale, blur),
// whatever the training flags, on videos never trained on. There an untrained network scores about
// chance (0.07-0.10 measured; with training's near-identical views it would score ~0.3), and the
// test runs the untrained network (the same run at learning rate 0) through it and checks so.
// Measured on this configuration (AVX-512, 2 threads): seeds 1-5 reach 0.65, 0.42, 0.49, 0.44,
// 0.47 (the test uses seed 1); the untrained network 0.10.
// ---------------------------------------------------------------------------------------------
#define LEARN DIR "/learn"
#define LEARN_FLAGS "--model mvit-micro --frames 8 --stride 2 --size 32 --batch 16 --nt 4 --heldout-nt 12 --queue 64 " \
    "--momentum 0.9 --lambda 0.5 --lr 3e-4 --drop-path 0 --beta inf --crop-min 0.9 --flip 0 --gray 0 --blur 0 " \
    "--color-jitter 0 --threads 2 --seed 1 --save-every 100000 --quiet "
#define LEARN_STEPS "500"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// heldout_acc_t from the JSON line pretrain prints on stdout; NAN if absent.
static double read_heldout(const char *path) {
    FILE *f = fopen(path, "r");
    char buf[1024] = "";
    double v = NAN;
    while (f && fgets(buf, sizeof buf, f)) {
        const char *p = strstr(buf, "\"heldout_acc_t\": ");
        if (p) v = strtod(p + 17, NULL);
    }
    if (f) fclose(f);
    return v;
}

// Means of loss, loss_t and loss_v over the first and the last n logged steps.
static int read_loss_ends(const char *path, int n, double first[3], double last[3]) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    enum { MAX = 4096 };
    static double L[MAX][3];
    int k = 0;
    char buf[2048];
    while (k < MAX && fgets(buf, sizeof buf, f)) {
        long long s;
        if (sscanf(buf, "{\"step\": %lld, \"loss\": %lf, \"loss_t\": %lf, \"loss_v\": %lf", &s, &L[k][0], &L[k][1], &L[k][2]) == 4) k++;
    }
    fclose(f);
    if (k < 2 * n) return -1;
    for (int j = 0; j < 3; j++) {
        first[j] = last[j] = 0;
        for (int i = 0; i < n; i++) { first[j] += L[i][j] / n; last[j] += L[k - n + i][j] / n; }
    }
    return 0;
}

static void test_learning(void) {
    if (!have("examples/pretrain") || !have("examples/synth")) { test_skip("pretraining learns", "examples/pretrain not built"); return; }
#if !defined(SCVRL_FFMPEG) && !defined(SCVRL_STB)
    test_skip("pretraining learns", "built without FFmpeg and without stb: no video can be written or read");
    return;
#endif
    double t0 = now_s();
    run("rm -rf " LEARN " && mkdir -p " LEARN);
    // 1,000 unlabelled pretraining videos and 144 held-out labelled ones (8 per motion class), 32 px
    if (run("./examples/synth --out " LEARN "/data --size 32 --per-class 8 --pretrain 1000 --splits val --threads 2 --quiet "
            "--format " SYNTH_FORMAT)) {
        test_fail("pretraining learns", "examples/synth failed");
        return;
    }
    int rc = run("./examples/pretrain --data " LEARN "/data/pretrain.csv --val " LEARN "/data/val.csv " LEARN_FLAGS
                 "--steps 1 --lr 0 --lr-start 0 --lr-end 0 --out " LEARN "/untrained > " LEARN "/untrained.json 2> " LEARN "/untrained.log");
    double chance = 1.0 / 13, bar = 3.0 / 13, u = read_heldout(LEARN "/untrained.json");
    char name[256];
    snprintf(name, sizeof name, "untrained network: held-out temporal accuracy %.3f, near chance %.3f (bar %.3f)", u, chance, bar);
    test_check(rc == 0 && u < 2 * chance, name, "exit %d (see " LEARN "/untrained.log)", rc);
    rc = run("./examples/pretrain --data " LEARN "/data/pretrain.csv --val " LEARN "/data/val.csv " LEARN_FLAGS
             "--lr-end 3e-4 --steps " LEARN_STEPS " --out " LEARN "/run > " LEARN "/run.json 2> " LEARN "/run.log");
    double a = read_heldout(LEARN "/run.json"), f[3], l[3];
    int have_losses = rc == 0 && !read_loss_ends(LEARN "/run/metrics.jsonl", 50, f, l);
    snprintf(name, sizeof name, "SCVRL, " LEARN_STEPS " steps (%.0f s with the data): held-out temporal accuracy %.3f > %.3f",
             now_s() - t0, a, bar);
    test_check(rc == 0 && a > bar, name, "exit %d (see " LEARN "/run.log)", rc);
    if (!have_losses) { test_fail("pretraining losses fall", "no metrics (see " LEARN "/run.log)"); return; }
    snprintf(name, sizeof name, "losses fall (first vs last 50 steps): L %.2f -> %.2f, L_T %.2f -> %.2f, L_V %.2f -> %.2f",
             f[0], l[0], f[1], l[1], f[2], l[2]);
    test_check(l[0] < 0.7 * f[0] && l[1] < 0.7 * f[1] && l[2] < 0.9 * f[2], name, "did not fall enough");
}

// The momentum batch's plane gather (models/method.c): the keys of x_p and x_pv against the
// momentum encoder run on those clips alone (an independent graph); with "shuffles" that keep
// x_p's frame order every shuffled key equals its sample's positive key bit for bit (and a real
// shuffle does not), so the gather reads the right clip, channel and frame planes; a shuffle row
// outside x_p is refused with a message before anything is updated (momentum weights, step).
static double keys_vs_alone(scm_state *S, const scm_graphs *G, const scm_cfg *c, int64_t first, const char *head, const float *keys) {
    char err[256];
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t ne[5] = { G->B, 3, c->frames, c->size, c->size }, n = G->B * G->clip;
    scvrl_tensor *x = scvrl_new_data(ctx, SCVRL_DT_F32, 5, ne);
    memcpy(x->data, scvrl_f32(G->xm) + first * G->clip, (size_t)n * sizeof(float));
    scvrl_tensor *k = scvrl_l2_normalize(ctx, con_head(ctx, &S->Hm, head, mvit_forward(ctx, &S->mo, x, 0, 5000, NULL)), 1e-12f);
    scvrl_mark_output(k);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, k);
    double worst = scvrl_graph_compute(g, NULL, err, sizeof err) ? INFINITY : 0;
    for (int64_t i = 0; worst < INFINITY && i < G->B * 128; i++) worst = fmax(worst, fabs((double)scvrl_f32(k)[i] - keys[i]));
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
    return worst;
}

static void test_momentum_gather(void) {
    char err[512] = "";
    mvit_config mc;
    mvit_preset("mvit-tiny", &mc);
    mc.frames = 8; mc.size = 64;
    scm_cfg c = { 0 };
    c.temporal = 1; c.nt = 3; c.frames = 8; c.size = 64; c.batch = 2; c.queue = 8;
    c.tau = 0.1; c.lambda_v = 1; c.momentum = 0.99; c.wd = 0.05; c.seed = 5;
    scm_state S;
    scm_graphs G;
    if (scm_init(&S, &c, &mc, err, sizeof err)) { test_fail("momentum gather", "%s", err); return; }
    scm_build(&G, &S, &c);
    int64_t B = c.batch, T = c.frames, D = 128, vids[2] = { 10, 11 };
    scvrl_fill_uniform(scvrl_f32(G.xm), scvrl_nelements(G.xm), 7, 1, -1, 1);
    scvrl_fill_uniform(scvrl_f32(G.xo), scvrl_nelements(G.xo), 7, 2, -1, 1);
    int32_t *sh = (int32_t *)G.shuf->data;
    scm_stats st;
    double same = 0, moved = 0;
    for (int round = 0; round < 2; round++) {          // 0: frames in order; 1: the second half first
        for (int64_t b = 0; b < B; b++)
            for (int j = 0; j < c.nt; j++)
                for (int64_t t = 0; t < T; t++) sh[(b * c.nt + j) * T + t] = (int32_t)(b * T + (round ? (t + T / 2) % T : t));
        if (scm_step(&S, &G, &c, NULL, vids, 1e-4, &st, err, sizeof err)) { test_fail("momentum gather", "step: %s", err); goto out; }
        const float *kp = scvrl_f32(G.kp), *kn = scvrl_f32(G.kn);
        for (int64_t b = 0; b < B; b++)
            for (int j = 0; j < c.nt; j++)
                for (int64_t k = 0; k < D; k++) {
                    double d = fabs((double)kn[(b * c.nt + j) * D + k] - kp[b * D + k]);
                    if (round) moved += d; else if (d > same) same = d;
                }
    }
    double ep = keys_vs_alone(&S, &G, &c, 0, S.ht, scvrl_f32(G.kp)), ev = keys_vs_alone(&S, &G, &c, B, S.hv, scvrl_f32(G.kpv));
    test_check(ep < 1e-5 && ev < 1e-5, "momentum batch gather: x_p and x_pv keys as the encoder gives them on those clips alone",
               "x_p %.3g, x_pv %.3g", ep, ev);
    int64_t n = S.mo.P.n_elems, step = S.step;
    float *w = (float *)malloc((size_t)n * sizeof(float));
    memcpy(w, S.mo.P.w, (size_t)n * sizeof(float));
    sh[5] = (int32_t)(B * T);
    err[0] = 0;
    int rc = scm_step(&S, &G, &c, NULL, vids, 1e-4, &st, err, sizeof err);
    int kept = S.step == step && !memcmp(w, S.mo.P.w, (size_t)n * sizeof(float));
    free(w);
    test_check(same == 0 && moved > 1e-3, "momentum batch gather: in-order shuffles give the positive's keys exactly, a real shuffle moves them",
               "in order %.3g, shuffled %.3g", same, moved);
    test_check(rc == -1 && strstr(err, "shuffle index 16") && kept, "a shuffle row outside x_p is refused with a message, nothing updated",
               "rc %d, '%s', state kept %d", rc, err, kept);
out:
    scm_free_graphs(&G);
    scm_free(&S);
}

int main(void) {
    test_infonce();
    test_queue_and_ema();
    test_momentum_gather();
    test_end_to_end();
    test_learning();
    return test_done();
}
