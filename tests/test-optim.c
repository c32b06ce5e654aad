// test-optim: AdamW (decoupled decay, no-decay group), global-norm clipping and the EMA
// against torch.optim.AdamW / clip_grad_norm_ (tests/data/adamw.safetensors), and the
// warm-up + cosine schedule against its closed form.
#include "scvrl.h"
#include "test.h"

static const char *names[3] = { "w1", "b1", "w2" };

static void read_into(scvrl_st_file *f, const char *name, float *dst, int64_t n) {
    const scvrl_st_entry *e = scvrl_st_find(f, name);
    SCVRL_ASSERT(e && e->numel == n, "fixture tensor %s", name);
    scvrl_st_read_f32(f, e, dst, NULL, 0);
}

int main(void) {
    char err[512];
    scvrl_st_file f;
    if (scvrl_st_open(&f, "tests/data/adamw.safetensors", err, sizeof err)) {
        test_skip("adamw", "%s", err);
        return test_done();
    }
    scvrl_params P, E;
    scvrl_params_init(&P);
    int64_t s1[2] = { 7, 5 }, s2[1] = { 5 }, s3[3] = { 3, 4, 2 };
    scvrl_params_add(&P, "w1", 2, s1, 0);
    scvrl_params_add(&P, "b1", 1, s2, SCVRL_P_NO_DECAY);
    scvrl_params_add(&P, "w2", 3, s3, 0);
    scvrl_params_finalize(&P, err, sizeof err);
    scvrl_params_init(&E);
    int64_t se[1] = { 10 };
    scvrl_params_add(&E, "k", 1, se, 0);
    scvrl_params_finalize(&E, err, sizeof err);
    char key[64];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "p.%s.init", names[i]);
        read_into(&f, key, scvrl_f32(P.t[i]), scvrl_nelements(P.t[i]));
    }
    read_into(&f, "ema.k.init", E.w, 10);
    double lr[5];
    memcpy(lr, f.data + scvrl_st_find(&f, "lr")->begin, sizeof lr);
    float tn[5];
    read_into(&f, "total_norm", tn, 5);
    double worst_p = 0, worst_n = 0, worst_e = 0;
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "g.%s.%d", names[i], s);
            read_into(&f, key, (float *)P.t[i]->grad_data, scvrl_nelements(P.t[i]));
        }
        double norm = scvrl_clip_grad_norm(&P, 1.0);
        worst_n = fmax(worst_n, fabs(norm - tn[s]) / tn[s]);
        scvrl_adamw_cfg c = scvrl_adamw_default();
        c.lr = (float)lr[s];
        scvrl_adamw_step(&P, &c, err, sizeof err);
        // the EMA of the first 10 values of w1 (a stand-in momentum encoder)
        scvrl_params Q = E;                       // shallow: same layout, src weights = w1[:10]
        Q.w = P.w;
        scvrl_ema_update(&E, &Q, 0.99f);
        for (int i = 0; i < 3; i++) {
            int64_t n = scvrl_nelements(P.t[i]);
            float *ref = (float *)malloc((size_t)n * 4);
            snprintf(key, sizeof key, "p.%s.%d", names[i], s);
            read_into(&f, key, ref, n);
            for (int64_t j = 0; j < n; j++) worst_p = fmax(worst_p, fabs(scvrl_f32(P.t[i])[j] - ref[j]));
            free(ref);
        }
        float ek[10];
        snprintf(key, sizeof key, "ema.k.%d", s);
        read_into(&f, key, ek, 10);
        for (int j = 0; j < 10; j++) worst_e = fmax(worst_e, fabs(E.w[j] - ek[j]));
    }
    char name[160];
    snprintf(name, sizeof name, "clip_grad_norm total norm as torch: rel err %.1e", worst_n);
    test_check(worst_n < 1e-6, name, "differs");
    snprintf(name, sizeof name, "AdamW 5 steps (clipped, no-decay group, lr per step) as torch: max abs diff %.1e", worst_p);
    test_check(worst_p < 1e-6, name, "differs");
    snprintf(name, sizeof name, "EMA m=0.99 over 5 steps as torch: max abs diff %.1e", worst_e);
    test_check(worst_e < 1e-7, name, "differs");
    // schedule: linear warm-up from 1e-6 to 1e-4 over 10 steps, cosine to 1e-6 at 110
    double a = scvrl_lr_schedule(0, 10, 110, 1e-6, 1e-4, 1e-6), b = scvrl_lr_schedule(5, 10, 110, 1e-6, 1e-4, 1e-6);
    double c = scvrl_lr_schedule(10, 10, 110, 1e-6, 1e-4, 1e-6), d = scvrl_lr_schedule(60, 10, 110, 1e-6, 1e-4, 1e-6);
    double e = scvrl_lr_schedule(110, 10, 110, 1e-6, 1e-4, 1e-6);
    test_check(fabs(a - 1e-6) < 1e-15 && fabs(b - 5.05e-5) < 1e-15 && fabs(c - 1e-4) < 1e-15 &&
               fabs(d - (1e-6 + 0.5 * (1e-4 - 1e-6))) < 1e-15 && fabs(e - 1e-6) < 1e-15,
               "warm-up + cosine schedule", "%g %g %g %g %g", a, b, c, d, e);
    scvrl_params_free(&P);
    scvrl_params_free(&E);
    scvrl_st_close(&f);
    return test_done();
}
