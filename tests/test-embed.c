// test-embed: the examples/embed program, run as a subprocess on a small model (mvit-tiny at
// 8x64x64, 3 clips): its features and logits against an in-process forward of the same
// weights and clips, batching, --pool avg, the presence of logits, and its error messages.
// Needs ./examples/embed (the Makefile builds the examples before the tests run); skips without.
// SCVRL_EMBED=path runs another build of the program (e.g. a sanitizer build).
#include "scvrl.h"
#include "models/mvit.h"
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

static const char *embed_bin = "./examples/embed";
#define NCLIPS 3
#define FRAMES 8
#define SIZE 64
#define CLASSES 5

static char tmpdir[64];

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void fill_sym(float *x, int64_t n, uint64_t seed, const char *stream) {
    uint64_t st = scvrl_fnv1a64(stream);
    for (int64_t i = 0; i < n; i++) x[i] = 2.0f * scvrl_rng_uniform(seed, st, (uint64_t)i) - 1.0f;
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    if (!(num == num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int tiny(mvit_model *m, int kt, int classes, int avg) {
    mvit_config cfg;
    char err[512];
    mvit_preset("mvit-tiny", &cfg);
    cfg.kt = kt; cfg.frames = FRAMES; cfg.size = SIZE; cfg.num_classes = classes; cfg.pool_avg = avg;
    if (mvit_init(m, &cfg, err, sizeof err)) { test_fail("mvit_init", "%s", err); return -1; }
    mvit_fixture_weights(m, 1234);
    return 0;
}

static int save_weights(const char *path, int kt, int classes) {
    mvit_model m;
    char err[512];
    if (tiny(&m, kt, classes, 0)) return -1;
    int rc = mvit_save(&m, path, err, sizeof err);
    if (rc) test_fail("mvit_save", "%s", err);
    mvit_free(&m);
    return rc;
}

static int save_clips(const char *path, const float *x, int64_t n, int frames, int size) {
    scvrl_st_writer *w = scvrl_st_writer_new();
    int64_t ne[5] = { n, 3, frames, size, size };
    char err[512];
    scvrl_st_writer_add(w, "clips", SCVRL_DT_F32, 5, ne, x);
    int rc = scvrl_st_writer_save(w, path, err, sizeof err);
    if (rc) test_fail("write clips", "%s", err);
    scvrl_st_writer_free(w);
    return rc;
}

// In-process forward of all clips at once: features [n, D], logits [n, C] (if logits != NULL).
static void forward(const mvit_model *m, float *clips, int64_t n, float *feat, float *logits) {
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t ne[5] = { n, 3, FRAMES, SIZE, SIZE };
    scvrl_tensor *x = scvrl_new(ctx, SCVRL_DT_F32, 5, ne), *lg;
    scvrl_mark_input(x);
    x->data = clips;
    scvrl_tensor *f = mvit_forward(ctx, m, x, 0, 0, &lg);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_mark_output(f);
    scvrl_graph_expand(g, f);
    if (lg) { scvrl_mark_output(lg); scvrl_graph_expand(g, lg); }
    char err[512];
    if (scvrl_graph_compute(g, NULL, err, sizeof err)) test_fail("in-process forward", "%s", err);
    memcpy(feat, scvrl_f32(f), (size_t)scvrl_nelements(f) * sizeof(float));
    if (lg && logits) memcpy(logits, scvrl_f32(lg), (size_t)scvrl_nelements(lg) * sizeof(float));
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
}

// Run embed with args (stdout and stderr to files); returns the exit status, stderr in msg.
static int run_embed(const char *args, char *msg, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", embed_bin, args, tmp("stdout.txt"), tmp("stderr.txt"));
    int rc = system(cmd);
    msg[0] = 0;
    FILE *f = fopen(tmp("stderr.txt"), "r");
    if (f) { size_t k = fread(msg, 1, n - 1, f); msg[k] = 0; fclose(f); }
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// A float32 tensor of an output file (malloc'd; NULL if absent), its element count in *n.
static float *read_out(const char *path, const char *name, int64_t *n, char *meta_pool, size_t mlen) {
    scvrl_st_file f;
    char err[512];
    if (scvrl_st_open(&f, path, err, sizeof err)) return NULL;
    const scvrl_st_entry *e = scvrl_st_find(&f, name);
    float *out = e ? (float *)malloc((size_t)e->numel * sizeof(float)) : NULL;
    if (out) scvrl_st_read_f32(&f, e, out, NULL, 0);
    *n = e ? e->numel : 0;
    if (meta_pool) {
        const char *mp = scvrl_st_meta(&f, "pool"), *mm = scvrl_st_meta(&f, "model"), *mk = scvrl_st_meta(&f, "kt");
        snprintf(meta_pool, mlen, "model=%s kt=%s pool=%s", mm ? mm : "?", mk ? mk : "?", mp ? mp : "?");
    }
    scvrl_st_close(&f);
    return out;
}

#define COMMON "--model mvit-tiny --frames 8 --size 64 --quiet"

// The successful runs: features/logits against the in-process forward, batching, pooling.
static void check_outputs(float *clips) {
    mvit_model mh, ma;
    if (tiny(&mh, 2, CLASSES, 0) || tiny(&ma, 2, 0, 1)) return;
    int64_t D = mvit_width(&mh.cfg), n;
    float *ref = (float *)malloc((size_t)(NCLIPS * D) * sizeof(float)), *ref_avg = (float *)malloc((size_t)(NCLIPS * D) * sizeof(float));
    float ref_lg[NCLIPS * CLASSES];
    forward(&mh, clips, NCLIPS, ref, ref_lg);
    forward(&ma, clips, NCLIPS, ref_avg, NULL);
    char msg[4096], args[1024], meta[256], name[256];

    snprintf(args, sizeof args, COMMON " --batch 3 --weights %s --clips %s --out %s", tmp("w_head.st"), tmp("clips.st"), tmp("o3.st"));
    int rc = run_embed(args, msg, sizeof msg);
    float *f3 = read_out(tmp("o3.st"), "features", &n, meta, sizeof meta);
    double e = f3 && n == NCLIPS * D ? rel_err(f3, ref, n) : INFINITY;
    snprintf(name, sizeof name, "embed --batch 3: features equal the in-process forward (rel err %.1e)", e);
    test_check(rc == 0 && e <= 1e-6, name, "exit %d, %lld values; stderr: %s", rc, (long long)n, msg);
    test_check(strstr(meta, "model=mvit-tiny kt=2 pool=cls") != NULL, "embed output __metadata__ (model, kt, pool)", "got %s", meta);
    {   // --device cuda: the GPU's fp32 features equal the in-process CPU forward; without a GPU, a message that names it
        snprintf(args, sizeof args, COMMON " --batch 3 --device cuda --precision fp32 --weights %s --clips %s --out %s", tmp("w_head.st"),
                 tmp("clips.st"), tmp("e.st"));
        unlink(tmp("e.st"));
        int rcg = run_embed(args, msg, sizeof msg);
        if (rcg == 0) {
            float *fg = read_out(tmp("e.st"), "features", &n, NULL, 0);
            double eg = fg && n == NCLIPS * D ? rel_err(fg, ref, n) : INFINITY;
            snprintf(name, sizeof name, "embed --device cuda --precision fp32: features equal the CPU forward (rel err %.1e)", eg);
            test_check(eg <= 1e-5, name, "%lld values", (long long)n);
            free(fg);
        } else {
            test_check(strstr(msg, "--device cuda") != NULL && access(tmp("e.st"), F_OK) != 0,
                       "embed --device cuda without a usable GPU: fails with a message naming the device, writes nothing", "exit %d: %s", rcg, msg);
        }
    }
    float *l3 = read_out(tmp("o3.st"), "logits", &n, NULL, 0);
    e = l3 && n == NCLIPS * CLASSES ? rel_err(l3, ref_lg, n) : INFINITY;
    snprintf(name, sizeof name, "embed: weights with head.1.* give logits [3, %d] equal to in-process (rel err %.1e)", CLASSES, e);
    test_check(e <= 1e-6, name, "%s", l3 ? "wrong size or values" : "no logits in the output");

    snprintf(args, sizeof args, COMMON " --batch 2 --weights %s --clips %s --out %s", tmp("w_head.st"), tmp("clips.st"), tmp("o2.st"));
    rc = run_embed(args, msg, sizeof msg);
    float *f2 = read_out(tmp("o2.st"), "features", &n, NULL, 0);
    e = f2 && f3 && n == NCLIPS * D ? rel_err(f2, f3, n) : INFINITY;
    snprintf(name, sizeof name, "embed --batch 2 equals --batch 3 (rel err %.1e)", e);
    test_check(rc == 0 && e <= 1e-6, name, "exit %d; stderr: %s", rc, msg);

    snprintf(args, sizeof args, COMMON " --pool avg --weights %s --clips %s --out %s", tmp("w_nohead.st"), tmp("clips.st"), tmp("oa.st"));
    rc = run_embed(args, msg, sizeof msg);
    float *fa = read_out(tmp("oa.st"), "features", &n, NULL, 0), *la = read_out(tmp("oa.st"), "logits", &n, NULL, 0);
    test_check(rc == 0 && fa && !la, "embed: weights without head.1.* give no logits", "exit %d, features %s, logits %s; %s", rc,
               fa ? "present" : "absent", la ? "present" : "absent", msg);
    double ea = fa ? rel_err(fa, ref_avg, NCLIPS * D) : INFINITY, ec = fa && f3 ? rel_err(fa, f3, NCLIPS * D) : 0;
    snprintf(name, sizeof name, "embed --pool avg matches the in-process avg forward (rel err %.1e) and differs from cls (%.2f)", ea, ec);
    test_check(ea <= 1e-6 && ec > 1e-2, name, "avg vs in-process %.2e, avg vs cls %.2e", ea, ec);
    free(f3); free(l3); free(f2); free(fa); free(la); free(ref); free(ref_avg);
    mvit_free(&mh); mvit_free(&ma);
}

// Each error case: non-zero exit, and stderr naming what is wrong.
static void check_error(const char *name, const char *args, const char *want, const char *what) {
    char msg[4096];
    int rc = run_embed(args, msg, sizeof msg);
    char nm[512];
    snprintf(nm, sizeof nm, "embed error: %s (exit %d, message names %s)", name, rc, what);
    test_check(rc != 0 && strstr(msg, want), nm, "exit %d, stderr: %s", rc, msg);
}

static void check_errors(void) {
    char args[1024], want[256];
    snprintf(args, sizeof args, COMMON " --weights %s --clips %s --out %s", tmp("absent.st"), tmp("clips.st"), tmp("e.st"));
    check_error("missing weights file", args, tmp("absent.st"), "the file");
    snprintf(args, sizeof args, COMMON " --weights %s --clips %s --out %s", tmp("w_head.st"), tmp("clips32.st"), tmp("e.st"));
    check_error("clips of another size", args, "[N, 3, 8, 64, 64]", "the expected shape [N, 3, 8, 64, 64]");
    snprintf(args, sizeof args, COMMON " --kt 2 --weights %s --clips %s --out %s", tmp("w_kt3.st"), tmp("clips.st"), tmp("e.st"));
    check_error("weights of another model (kt 3 loaded as kt 2)", args, "conv_proj.weight", "conv_proj.weight");
    snprintf(args, sizeof args, COMMON " --clips %s --out %s", tmp("clips.st"), tmp("e.st"));
    char msg[4096];
    int rc = run_embed(args, msg, sizeof msg);
    snprintf(want, sizeof want, "embed without --weights: random initialisation, with a warning (exit %d)", rc);
    test_check(rc == 0 && strstr(msg, "no --weights: random initialisation"), want, "stderr: %s", msg);
    test_check(access(tmp("e.st"), F_OK) == 0, "embed writes --out (atomic rename in place)", "no %s", tmp("e.st"));
}

// Video inputs: videos and a list in input order; an unreadable input fails the run unless
// --skip-bad, which embeds the rest and names the skipped one.
static void check_videos(void) {
    char cmd[1024], msg[4096];
#if defined(SCVRL_FFMPEG)
    const char *fmt = "mp4";
#elif defined(SCVRL_STB)
    const char *fmt = "jpg";
#else
    test_skip("embed video inputs", "built without FFmpeg and without stb: no video can be written or read");
    return;
    const char *fmt = "mp4";
#endif
    snprintf(cmd, sizeof cmd, "./examples/synth --out %s/syn --per-class 1 --classes 2 --pretrain 3 --splits val --quiet --format %s >/dev/null 2>&1",
             tmpdir, fmt);
    if (access("examples/synth", X_OK) || system(cmd)) { test_skip("embed video inputs", "examples/synth not built or failed"); return; }
    const char *flags = "--model mvit-tiny --frames 8 --size 64 --stride 2 --batch 2 --seed 3 --quiet";
    snprintf(cmd, sizeof cmd, "%s --out %s %s/syn/val.csv %s/syn/pretrain.csv", flags, tmp("v.st"), tmpdir, tmpdir);
    int rc = run_embed(cmd, msg, sizeof msg);
    int64_t n = 0;
    float *f = read_out(tmp("v.st"), "features", &n, NULL, 0);
    test_check(rc == 0 && f && n == 5 * 256, "embed video lists: one feature row per video", "rc %d, %lld values: %s", rc, (long long)n, msg);
    snprintf(cmd, sizeof cmd, "%s --out %s %s/syn/val.csv %s/missing.mp4", flags, tmp("v2.st"), tmpdir, tmpdir);
    rc = run_embed(cmd, msg, sizeof msg);
    test_check(rc != 0 && strstr(msg, "missing.mp4") && strstr(msg, "--skip-bad"), "an unreadable video fails and is named", "rc %d: %s", rc, msg);
    snprintf(cmd, sizeof cmd, "%s --skip-bad --out %s %s/syn/val.csv %s/missing.mp4", flags, tmp("v2.st"), tmpdir, tmpdir);
    rc = run_embed(cmd, msg, sizeof msg);
    int64_t n2 = 0;
    float *f2 = read_out(tmp("v2.st"), "features", &n2, NULL, 0);
    int same = f && f2 && n2 == 2 * 256 && !memcmp(f, f2, (size_t)n2 * sizeof(float));
    test_check(rc == 0 && same && strstr(msg, "missing.mp4"), "--skip-bad embeds the rest (same features) and lists the skipped", "rc %d: %s", rc, msg);
    free(f); free(f2);
    snprintf(cmd, sizeof cmd, "rm -rf %s/syn", tmpdir);
    if (system(cmd)) {}
    unlink(tmp("v.st")); unlink(tmp("v2.st"));
}

// Max over parameters of |got - want| / (|want| + tiny), and whether every value is within rel.
static double param_diff(const mvit_model *a, const mvit_model *b) {
    double worst = 0;
    for (int i = 0; i < a->P.n; i++) {
        const float *x = scvrl_f32(a->P.t[i]), *y = scvrl_f32(b->P.t[i]);
        for (int64_t j = 0; j < scvrl_nelements(a->P.t[i]); j++) {
            double d = fabs((double)x[j] - y[j]) / (fabs((double)x[j]) + 1e-4);
            if (d > worst) worst = d;
        }
    }
    return worst;
}

// --save-backbone: a pretraining-style checkpoint (bare online names, momentum.*, a head) exported
// in f32 (bit-exact), f16 and bf16 (rounding only), online and momentum encoders.
static void check_export(void) {
    mvit_model on, mo, back;
    char err[1024], msg[4096], args[1024];
    if (tiny(&on, 2, 0, 0) || tiny(&mo, 2, 0, 0) || tiny(&back, 2, 0, 0)) return;
    mvit_fixture_weights(&mo, 77);
    scvrl_st_writer *w = scvrl_st_writer_new();
    mvit_add_to_writer(&on, w, "");
    mvit_add_to_writer(&mo, w, "momentum.");
    float head[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t hs[2] = { 2, 3 };
    scvrl_st_writer_add(w, "head_t.0.weight", SCVRL_DT_F32, 2, hs, head);
    scvrl_st_writer_meta(w, "format", "scvrl-pretrain-1");
    if (scvrl_st_writer_save(w, tmp("ckpt.st"), err, sizeof err)) test_fail("write a checkpoint", "%s", err);
    scvrl_st_writer_free(w);
    struct { const char *dtype, *encoder; double tol; } cases[] = {
        { "f32", "online", 0.0 }, { "f16", "online", 1.0 / 2048 }, { "bf16", "momentum", 1.0 / 256 } };
    for (int c = 0; c < 3; c++) {
        snprintf(args, sizeof args, "--model mvit-tiny --frames %d --size %d --weights %s --encoder %s --save-backbone %s "
                 "--save-dtype %s --quiet", FRAMES, SIZE, tmp("ckpt.st"), cases[c].encoder, tmp("bb.st"), cases[c].dtype);
        int rc = run_embed(args, msg, sizeof msg);
        char name[160];
        snprintf(name, sizeof name, "--save-backbone %s of the %s encoder of a pretraining checkpoint", cases[c].dtype, cases[c].encoder);
        if (rc) { test_fail(name, "exit %d: %s", rc, msg); continue; }
        if (mvit_load(&back, tmp("bb.st"), "", 0, err, sizeof err)) { test_fail(name, "reload: %s", err); continue; }
        double d = param_diff(!strcmp(cases[c].encoder, "online") ? &on : &mo, &back);
        double other = param_diff(!strcmp(cases[c].encoder, "online") ? &mo : &on, &back);
        scvrl_st_file f;
        const char *cfg = NULL;
        if (!scvrl_st_open(&f, tmp("bb.st"), err, sizeof err)) cfg = scvrl_st_meta(&f, "config");
        int cfg_ok = cfg && strstr(cfg, "model=mvit-tiny") && strstr(cfg, "stride=");
        snprintf(name + strlen(name), sizeof name - strlen(name), ": rel diff %.1e (bound %.1e), other encoder %.1e", d,
                 cases[c].tol, other);
        test_check(d <= cases[c].tol && other > 1e-2 && cfg_ok, name, "wrong weights or no config metadata (%s)", cfg ? cfg : "none");
        if (cfg) scvrl_st_close(&f);
    }
    mvit_free(&on); mvit_free(&mo); mvit_free(&back);
    unlink(tmp("ckpt.st")); unlink(tmp("bb.st"));
}

int main(void) {
    if (getenv("SCVRL_EMBED")) embed_bin = getenv("SCVRL_EMBED");
    if (access(embed_bin, X_OK)) {
        test_skip("embed", "%s is not built (make examples/embed; run from the repository root)", embed_bin);
        return test_done();
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/scvrl-test-embed-XXXXXX");
    if (!mkdtemp(tmpdir)) { test_fail("mkdtemp", "%s", tmpdir); return test_done(); }
    int64_t nclip = (int64_t)3 * FRAMES * SIZE * SIZE;
    float *clips = (float *)malloc((size_t)(NCLIPS * nclip) * sizeof(float));
    float *small = (float *)malloc((size_t)(2 * 3 * FRAMES * 32 * 32) * sizeof(float));
    fill_sym(clips, NCLIPS * nclip, 5, "clips");
    fill_sym(small, 2 * 3 * FRAMES * 32 * 32, 6, "clips32");
    if (!save_weights(tmp("w_head.st"), 2, CLASSES) && !save_weights(tmp("w_nohead.st"), 2, 0) &&
        !save_weights(tmp("w_kt3.st"), 3, 0) && !save_clips(tmp("clips.st"), clips, NCLIPS, FRAMES, SIZE) &&
        !save_clips(tmp("clips32.st"), small, 2, FRAMES, 32)) {
        check_outputs(clips);
        check_errors();
        check_export();
    }
    check_videos();
    const char *files[] = { "w_head.st", "w_nohead.st", "w_kt3.st", "clips.st", "clips32.st", "o3.st", "o2.st", "oa.st",
                            "e.st", "stdout.txt", "stderr.txt" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp(files[i]));
    rmdir(tmpdir);
    free(clips); free(small);
    return test_done();
}
