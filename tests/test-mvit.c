// test-mvit: MViT forward and backward parity with torchvision (float64 fixtures made by
// tests/ref/make_fixtures.py from the shared counter-based weights), names and shapes of the
// state_dict, drop-path, and loading errors.
#include "scvrl.h"
#include "models/mvit.h"
#include "test.h"

typedef struct { const char *file, *preset; int kt, frames, size, batch, grads; } fixture;

static double *read_f64(scvrl_st_file *f, const char *name, int64_t *n) {
    const scvrl_st_entry *e = scvrl_st_find(f, name);
    if (!e) return NULL;
    float *tmp = (float *)malloc((size_t)e->numel * sizeof(float));
    double *out = (double *)malloc((size_t)e->numel * sizeof(double));
    if (e->dtype == SCVRL_DT_F64) memcpy(out, f->data + e->begin, (size_t)e->numel * 8);
    else { scvrl_st_read_f32(f, e, tmp, NULL, 0); for (int64_t i = 0; i < e->numel; i++) out[i] = tmp[i]; }
    free(tmp);
    *n = e->numel;
    return out;
}

static void fill_sym(float *x, int64_t n, uint64_t seed, const char *stream) {
    uint64_t st = scvrl_fnv1a64(stream);
    for (int64_t i = 0; i < n; i++) x[i] = 2.0f * scvrl_rng_uniform(seed, st, (uint64_t)i) - 1.0f;
}

// Check our parameter list against tests/data/params_<name>.txt (names, shapes, first value, sum).
static void check_param_list(const mvit_model *m, const char *txt) {
    FILE *f = fopen(txt, "r");
    char name[400];
    snprintf(name, sizeof name, "state_dict names/shapes/values match %s", txt);
    if (!f) { test_skip(name, "missing fixture (run from the repository root)"); return; }
    char line[512];
    int i = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char n[200], shape[100], kind[32], fan[32];
        double first, sum;
        if (sscanf(line, "%199s %99s %31s %31s %lf %lf", n, shape, kind, fan, &first, &sum) != 6) continue;
        if (i >= m->P.n) { bad++; break; }
        scvrl_tensor *t = m->P.t[i++];
        char ours[100]; size_t k = 0;
        for (int d = 0; d < t->ndim; d++) k += snprintf(ours + k, sizeof ours - k, d ? "x%lld" : "%lld", (long long)t->ne[d]);
        double s = 0;
        for (int64_t j = 0; j < scvrl_nelements(t); j++) s += scvrl_f32(t)[j];
        if (strcmp(n, t->name) || strcmp(shape, ours) || scvrl_f32(t)[0] != (float)first || fabs(s - sum) > 1e-9 * (1 + fabs(sum))) {
            if (bad++ < 3) printf("  #%d: ours %s %s %.9g sum %.17g; ref %s %s %.9g sum %.17g\n", i - 1, t->name, ours,
                                  scvrl_f32(t)[0], s, n, shape, first, sum);
        }
    }
    fclose(f);
    test_check(!bad && i == m->P.n, name, "%d mismatches (%d of %d tensors listed)", bad, i, m->P.n);
}

static void run_fixture(const fixture *fx) {
    char path[256], err[512], name[400];
    snprintf(path, sizeof path, "tests/data/%s.safetensors", fx->file);
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, sizeof err)) { test_skip(fx->file, "%s", err); return; }
    mvit_config cfg;
    mvit_preset(fx->preset, &cfg);
    cfg.kt = fx->kt; cfg.frames = fx->frames; cfg.size = fx->size; cfg.num_classes = 400;
    mvit_model m;
    if (mvit_init(&m, &cfg, err, sizeof err)) { test_fail(fx->file, "%s", err); return; }
    mvit_fixture_weights(&m, 1234);
    snprintf(path, sizeof path, "tests/data/params_%s.txt", fx->file);
    if (fx->size == 64 && fx->kt == 2) check_param_list(&m, path);
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t xne[5] = { fx->batch, 3, fx->frames, fx->size, fx->size };
    scvrl_tensor *x = scvrl_new_data(ctx, SCVRL_DT_F32, 5, xne);
    fill_sym(scvrl_f32(x), scvrl_nelements(x), 99, "input");
    for (int avg = 0; avg < 2; avg++) {
        m.cfg.pool_avg = avg;
        scvrl_tensor *logits, *feat = mvit_forward(ctx, &m, x, 0, 0, &logits);
        scvrl_mark_output(feat); scvrl_mark_output(logits);
        scvrl_tensor *loss = NULL;
        if (fx->grads && !avg) {
            scvrl_tensor *rf = scvrl_new_data(ctx, SCVRL_DT_F32, 2, feat->ne), *rl = scvrl_new_data(ctx, SCVRL_DT_F32, 2, logits->ne);
            fill_sym(scvrl_f32(rf), scvrl_nelements(rf), 7, "dloss.features");
            fill_sym(scvrl_f32(rl), scvrl_nelements(rl), 7, "dloss.logits");
            loss = scvrl_add(ctx, scvrl_sum_all(ctx, scvrl_mul(ctx, feat, rf)), scvrl_sum_all(ctx, scvrl_mul(ctx, logits, rl)));
        }
        scvrl_graph *g = scvrl_graph_new();
        scvrl_graph_expand(g, loss ? loss : feat);
        scvrl_graph_expand(g, logits);
        if (loss) { scvrl_params_zero_grad(&m.P); scvrl_graph_backward(ctx, g, loss); }
        if (scvrl_graph_compute(g, NULL, err, sizeof err)) { test_fail(fx->file, "%s", err); break; }
        int64_t n;
        double *rfeat = read_f64(&f, avg ? "features_avg" : "features", &n), *rlog = read_f64(&f, "logits", &n);
        double e1 = test_rel_err_f(scvrl_f32(feat), rfeat, scvrl_nelements(feat));
        double e2 = avg ? 0.0 : test_rel_err_f(scvrl_f32(logits), rlog, scvrl_nelements(logits));   // logits are CLS-based
        if (avg) snprintf(name, sizeof name, "%s forward (avg pool): features %.2e", fx->file, e1);
        else snprintf(name, sizeof name, "%s forward (CLS): features %.2e, logits %.2e", fx->file, e1, e2);
        test_check(e1 <= 1e-5 && e2 <= 1e-5, name, "relative error above 1e-5");
        free(rfeat); free(rlog);
        if (loss) {
            // The K-pool LayerNorm bias adds the same value to every logit of a softmax row, so its
            // gradient is exactly zero: PyTorch's stored values are rounding noise. Those tensors are
            // checked against an absolute bound (1e-4 of the RMS of all gradients), the rest relatively.
            double worst = 0, zero_worst = 0, sum2 = 0; int64_t cnt = 0; const char *wn = "";
            for (int i = 0; i < m.P.n; i++) {
                char kn[256]; int64_t k;
                snprintf(kn, sizeof kn, "grad.%s", m.P.t[i]->name);
                double *rg = read_f64(&f, kn, &k);
                if (rg) for (int64_t j = 0; j < k; j++) { sum2 += rg[j] * rg[j]; cnt++; }
                free(rg);
            }
            double rms = sqrt(sum2 / (double)(cnt ? cnt : 1));
            for (int i = 0; i < m.P.n; i++) {
                char kn[256];
                snprintf(kn, sizeof kn, "grad.%s", m.P.t[i]->name);
                int64_t k, ki;
                double *rg = read_f64(&f, kn, &k);
                snprintf(kn, sizeof kn, "grad_idx.%s", m.P.t[i]->name);
                const scvrl_st_entry *ie = scvrl_st_find(&f, kn);
                if (!rg || !ie) { worst = INFINITY; wn = m.P.t[i]->name; free(rg); break; }
                int64_t *idx = (int64_t *)(f.data + ie->begin);
                ki = ie->numel;
                float *ours = (float *)malloc((size_t)ki * sizeof(float));
                const float *gbuf = (const float *)m.P.t[i]->grad_data;
                for (int64_t j = 0; j < ki; j++) ours[j] = gbuf[idx[j]];
                if (strstr(m.P.t[i]->name, "attn.pool_k.norm_act.0.bias")) {
                    double mx = 0;
                    for (int64_t j = 0; j < ki; j++) mx = fmax(mx, fabs(ours[j]));
                    zero_worst = fmax(zero_worst, mx / rms);
                } else {
                    double e = test_rel_err_f(ours, rg, ki);
                    if (e > worst) { worst = e; wn = m.P.t[i]->name; }
                }
                free(ours); free(rg);
            }
            snprintf(name, sizeof name, "%s backward: every parameter's gradient, worst %.2e (%s); zero-gradient tensors %.1e of RMS",
                     fx->file, worst, wn, zero_worst);
            test_check(worst <= 1e-4 && zero_worst <= 1e-4, name, "above 1e-4");
        }
        scvrl_graph_free(g);
        scvrl_ctx_reset(ctx);
        x = scvrl_new_data(ctx, SCVRL_DT_F32, 5, xne);
        fill_sym(scvrl_f32(x), scvrl_nelements(x), 99, "input");
    }
    scvrl_ctx_free(ctx);
    mvit_free(&m);
    scvrl_st_close(&f);
}

// Train mode: drop-path draws follow the graph seed; the mean of 200 train passes agrees with
// torchvision's train-mode mean (a different RNG, so compared within the standard errors).
static void test_drop_path(void) {
    const char *path = "tests/data/mvit_tiny_kt2_8x64_droppath.safetensors";
    char err[512];
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, sizeof err)) { test_skip("drop-path expectation", "%s", err); return; }
    mvit_config cfg;
    mvit_preset("mvit-tiny", &cfg);
    cfg.frames = 8; cfg.size = 64; cfg.num_classes = 400; cfg.drop_path = 0.2f;
    mvit_model m;
    mvit_init(&m, &cfg, err, sizeof err);
    mvit_fixture_weights(&m, 1234);
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    int64_t xne[5] = { 2, 3, 8, 64, 64 };
    scvrl_tensor *x = scvrl_new_data(ctx, SCVRL_DT_F32, 5, xne);
    fill_sym(scvrl_f32(x), scvrl_nelements(x), 99, "input");
    scvrl_tensor *feat = mvit_forward(ctx, &m, x, 1, 1000, NULL);
    scvrl_mark_output(feat);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, feat);
    int n = 400, D = 256, same = 1;
    double *mean = (double *)calloc(2 * 256, sizeof(double));
    float first[512];
    for (int s = 0; s < n; s++) {
        g->seed = (uint64_t)s;
        scvrl_graph_compute(g, NULL, err, sizeof err);
        for (int i = 0; i < 2 * D; i++) mean[i] += scvrl_f32(feat)[i] / n;
        if (s == 0) memcpy(first, feat->data, sizeof first);
    }
    g->seed = 0;
    scvrl_graph_compute(g, NULL, err, sizeof err);
    same = !memcmp(first, feat->data, sizeof first);
    test_check(same, "drop-path: the same seed gives the same draws", "outputs differ");
    int64_t k;
    double *tm = read_f64(&f, "mean_train_features", &k), *ts = read_f64(&f, "std_train_features", &k), *ev = read_f64(&f, "features", &k);
    // mean squared z-score over the elements (about 1 when only sampling noise separates the means)
    double z2 = 0, z2_eval = 0;
    for (int i = 0; i < 2 * D; i++) {
        double se = ts[i] * sqrt(1.0 / n + 1.0 / 200.0) + 1e-6;
        z2 += (mean[i] - tm[i]) * (mean[i] - tm[i]) / (se * se) / (2 * D);
        z2_eval += (ev[i] - tm[i]) * (ev[i] - tm[i]) / (se * se) / (2 * D);
    }
    char name[200];
    snprintf(name, sizeof name, "drop-path: mean of %d train passes matches torchvision's: mean z^2 %.2f (the eval output: %.1f)", n, z2, z2_eval);
    test_check(z2 < 4.0 && z2_eval > 4 * z2, name, "train-mode expectation differs");
    free(mean); free(tm); free(ts); free(ev);
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
    mvit_free(&m);
    scvrl_st_close(&f);
}

// Save/load round trip, and loading errors that name the tensor.
static void test_load_errors(void) {
    char err[512];
    mvit_config cfg;
    mvit_preset("mvit-tiny", &cfg);
    cfg.frames = 8; cfg.size = 64;
    mvit_model a, b;
    mvit_init(&a, &cfg, err, sizeof err);
    mvit_init_weights(&a, 5);
    const char *p = "build/tests/mvit_tiny_rt.safetensors";
    test_check(!mvit_save(&a, p, err, sizeof err), "mvit_save", "%s", err);
    mvit_init(&b, &cfg, err, sizeof err);
    int rc = mvit_load(&b, p, "", 0, err, sizeof err);
    test_check(!rc && !memcmp(a.P.w, b.P.w, (size_t)a.P.n_elems * 4), "save then load gives the same weights", "%s", rc ? err : "differ");
    // another stem kernel: conv_proj.weight is named
    mvit_config c3 = cfg; c3.kt = 3;
    mvit_model k3;
    mvit_init(&k3, &c3, err, sizeof err);
    rc = mvit_load(&k3, p, "", 0, err, sizeof err);
    test_check(rc && strstr(err, "conv_proj.weight") && strstr(err, "--kt"), "kt 2 weights into a kt 3 model: error names conv_proj.weight", "got: %s", err);
    // another size: the positional table is named, and --interpolate-pos resamples it
    mvit_config c96 = cfg; c96.size = 96;
    mvit_model s96;
    mvit_init(&s96, &c96, err, sizeof err);
    rc = mvit_load(&s96, p, "", 0, err, sizeof err);
    test_check(rc && strstr(err, "spatial_pos") && strstr(err, "--interpolate-pos"), "64 px weights into a 96 px model: error names spatial_pos", "got: %s", err);
    rc = mvit_load(&s96, p, "", MVIT_LOAD_INTERPOLATE_POS, err, sizeof err);
    test_check(!rc, "--interpolate-pos resamples the positional tables", "%s", err);
    // a missing tensor
    scvrl_st_writer *w = scvrl_st_writer_new();
    for (int i = 0; i < a.P.n; i++)
        if (strcmp(a.P.t[i]->name, "blocks.2.mlp.0.bias"))
            scvrl_st_writer_add(w, a.P.t[i]->name, SCVRL_DT_F32, a.P.t[i]->ndim, a.P.t[i]->ne, a.P.t[i]->data);
    scvrl_st_writer_save(w, p, err, sizeof err);
    scvrl_st_writer_free(w);
    rc = mvit_load(&b, p, "", 0, err, sizeof err);
    test_check(rc && strstr(err, "blocks.2.mlp.0.bias") && strstr(err, "missing"), "a missing tensor is named", "got: %s", err);
    // PySlowFast names (q/k/v separate) load into the same weights
    w = scvrl_st_writer_new();
    char nm[256];
    for (int i = 0; i < a.P.n; i++) {
        scvrl_tensor *t = a.P.t[i];
        const char *n = t->name;
        int blk; char kind[16];
        if (sscanf(n, "blocks.%d.attn.qkv.%15s", &blk, kind) == 2) {
            int64_t part = t->ne[0] / 3, sh[2] = { part, t->ndim > 1 ? t->ne[1] : 1 };
            for (int j = 0; j < 3; j++) {
                snprintf(nm, sizeof nm, "blocks.%d.attn.%c.%s", blk, "qkv"[j], kind);
                scvrl_st_writer_add(w, nm, SCVRL_DT_F32, t->ndim, sh, scvrl_f32(t) + j * part * (t->ndim > 1 ? t->ne[1] : 1));
            }
            continue;
        }
        if (!strcmp(n, "conv_proj.weight")) n = "patch_embed.proj.weight";
        else if (!strcmp(n, "conv_proj.bias")) n = "patch_embed.proj.bias";
        else if (!strcmp(n, "pos_encoding.class_token")) n = "cls_token";
        else if (strstr(n, ".mlp.0.")) { snprintf(nm, sizeof nm, "%.*smlp.fc1.%s", (int)(strstr(n, "mlp.0.") - n), n, strstr(n, "mlp.0.") + 6); n = nm; }
        scvrl_st_writer_add(w, n, SCVRL_DT_F32, t->ndim, t->ne, t->data);
    }
    scvrl_st_writer_save(w, p, err, sizeof err);
    scvrl_st_writer_free(w);
    memset(b.P.w, 0, (size_t)b.P.n_elems * 4);
    rc = mvit_load(&b, p, "", 0, err, sizeof err);
    test_check(!rc && !memcmp(a.P.w, b.P.w, (size_t)a.P.n_elems * 4), "PySlowFast names (separate q/k/v) load", "%s", rc ? err : "weights differ");
    mvit_free(&a); mvit_free(&b); mvit_free(&k3); mvit_free(&s96);
}

int main(int argc, char **argv) {
    static const fixture fx[] = {
        { "mvit_tiny_kt2_8x64", "mvit-tiny", 2, 8, 64, 2, 1 },
        { "mvit_s_kt2_8x64", "mvit-s", 2, 8, 64, 2, 0 },
        { "mvit_b_kt2_8x64", "mvit-b", 2, 8, 64, 2, 1 },
        { "mvit_b_kt3_8x64", "mvit-b", 3, 8, 64, 2, 0 },
        { "mvit_b_kt2_16x224", "mvit-b", 2, 16, 224, 1, 0 },
    };
    int n = (int)(sizeof(fx) / sizeof(fx[0]));
    for (int i = 0; i < n; i++) {
        if (argc > 1 && !strstr(fx[i].file, argv[1])) continue;
        run_fixture(&fx[i]);
    }
    if (argc <= 1) { test_drop_path(); test_load_errors(); }
    return test_done();
}
