// test-pretrain: the SCVRL pieces (InfoNCE against a naive double loop, queue, masks, EMA in
// float32, shuffled negatives never in the positive's order) and the pretrain program end to end
// (losses fall, held-out temporal accuracy, bit-exact resume after SIGKILL, NaN stop).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "scvrl.h"
#include "models/contrast.h"
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

int main(void) {
    test_infonce();
    test_queue_and_ema();
    test_end_to_end();
    return test_done();
}
