// models/method.c - the SCVRL / CVRL method: state, the two graphs of a step, the step.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/method.h"

// ---------------------------------------------------------------------------------------------
// State: online backbone + heads (trained), momentum copies (EMA), the key queue.
// ---------------------------------------------------------------------------------------------
static void scm_declare_heads(scm_state *S, scvrl_params *H) {
    scvrl_params_init(H);
    if (S->shared) con_head_declare(H, "head", S->D);
    else { con_head_declare(H, "head_t", S->D); con_head_declare(H, "head_v", S->D); }
    if (S->ce) {
        int64_t w[2] = { 2, S->D }, b[1] = { 2 };
        scvrl_params_add(H, "head_ce.weight", 2, w, 0);
        scvrl_params_add(H, "head_ce.bias", 1, b, SCVRL_P_NO_DECAY);
    }
}


int scm_init(scm_state *S, const scm_cfg *c, const mvit_config *mc, char *err, size_t errlen) {
    memset(S, 0, sizeof(*S));
    S->temporal = c->temporal;
    S->ce = c->temporal && c->ce;
    S->shared = c->shared_head;
    S->ht = S->shared ? "head" : "head_t";
    S->hv = S->shared ? "head" : "head_v";
    if (mvit_init(&S->on, mc, err, errlen) || mvit_init(&S->mo, mc, err, errlen)) return -1;
    S->D = mvit_width(mc);
    scm_declare_heads(S, &S->H);
    scm_declare_heads(S, &S->Hm);
    if (scvrl_params_finalize(&S->H, err, errlen) || scvrl_params_finalize(&S->Hm, err, errlen)) return -1;
    mvit_init_weights(&S->on, c->seed);
    if (S->shared) con_head_init(&S->H, "head", c->seed);
    else { con_head_init(&S->H, "head_t", c->seed); con_head_init(&S->H, "head_v", c->seed + 1); }
    if (S->ce) {
        scvrl_tensor *w = scvrl_params_find(&S->H, "head_ce.weight"), *b = scvrl_params_find(&S->H, "head_ce.bias");
        float bd = 1.0f / sqrtf((float)S->D);
        scvrl_fill_uniform(scvrl_f32(w), scvrl_nelements(w), c->seed, 77, -bd, bd);
        scvrl_fill_uniform(scvrl_f32(b), scvrl_nelements(b), c->seed, 78, -bd, bd);
    }
    scvrl_params_copy(&S->mo.P, &S->on.P);
    scvrl_params_copy(&S->Hm, &S->H);
    if (con_queue_init(&S->Q, c->queue, CON_DIM, c->seed)) { snprintf(err, errlen, "out of memory for a queue of %lld keys", (long long)c->queue); return -1; }
    return 0;
}


void scm_free(scm_state *S) {
#ifdef SCVRL_CUDA
    if (S->qbe) scvrl_cuda_resident_release(S->qbe, S->Q.keys);
#endif
    mvit_free(&S->on); mvit_free(&S->mo);
    scvrl_params_free(&S->H); scvrl_params_free(&S->Hm);
    con_queue_free(&S->Q);
}



int scm_to_device(scm_state *S, scvrl_backend *be, char *err, size_t errlen) {
    if (scvrl_params_to_device(&S->on.P, be, err, errlen) || scvrl_params_to_device(&S->mo.P, be, err, errlen) ||
        scvrl_params_to_device(&S->H, be, err, errlen) || scvrl_params_to_device(&S->Hm, be, err, errlen)) return -1;
#ifdef SCVRL_CUDA
    if (be && scvrl_cuda_get_precision(be) >= 0 && !S->qbe) {      // the CUDA backend: no 33 MB queue upload a step
        if (scvrl_cuda_resident(be, S->Q.keys, (size_t)(S->Q.K * S->Q.C) * sizeof(float), err, errlen)) return -1;
        S->qbe = be;
    }
#endif
    return 0;
}

// The rows con_queue_push just wrote (B from p0, around the ring's end) to the device copy.
static int scm_queue_refresh(scm_state *S, int64_t p0, int64_t B, char *err, size_t errlen) {
#ifdef SCVRL_CUDA
    size_t row = (size_t)S->Q.C * sizeof(float);
    if (B >= S->Q.K) return scvrl_cuda_resident_update(S->qbe, S->Q.keys, 0, (size_t)S->Q.K * row, err, errlen);
    int64_t n1 = B < S->Q.K - p0 ? B : S->Q.K - p0;
    if (scvrl_cuda_resident_update(S->qbe, S->Q.keys, (size_t)p0 * row, (size_t)n1 * row, err, errlen)) return -1;
    if (B > n1 && scvrl_cuda_resident_update(S->qbe, S->Q.keys, 0, (size_t)(B - n1) * row, err, errlen)) return -1;
#else
    (void)S; (void)p0; (void)B; (void)err; (void)errlen;
#endif
    return 0;
}

int scm_sync(scm_state *S, char *err, size_t errlen) {
    if (scvrl_params_sync(&S->on.P, err, errlen) || scvrl_params_sync(&S->mo.P, err, errlen) ||
        scvrl_params_sync(&S->H, err, errlen) || scvrl_params_sync(&S->Hm, err, errlen)) return -1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The two graphs of a step, built once and replayed.
// ---------------------------------------------------------------------------------------------
static scvrl_tensor *scm_input(scvrl_ctx *ctx, const scm_cfg *c, int64_t n, const char *name) {
    int64_t ne[5] = { n, 3, c->frames, c->size, c->size };
    scvrl_tensor *t = scvrl_new_data(ctx, SCVRL_DT_F32, 5, ne);
    scvrl_set_name(t, "%s", name);
    return t;
}


// The momentum batch [x_p; its shuffled copies; x_pv] is one gather of x_m's (clip, channel, frame)
// planes inside the graph (on the device for CUDA), so only x_p and x_pv are loaded and uploaded:
// clip i channel c frame t of the batch = plane G->planes[(i*3 + c)*T + t] of x_m [2B*3*T, H*W],
// filled from G->shuf at each step (scm_planes).
static scvrl_tensor *scm_gathered(scvrl_ctx *ctx, const scm_cfg *c, scm_graphs *G) {
    int64_t T = c->frames, np = G->Bm * 3 * T;
    G->planes = scvrl_new_1d(ctx, SCVRL_DT_I32, np);
    scvrl_tensor *pl = scvrl_reshape_2d(ctx, G->xm, 2 * G->B * 3 * T, (int64_t)c->size * c->size);   // [2B*3*T, H*W]
    int64_t ne[5] = { G->Bm, 3, T, c->size, c->size };
    return scvrl_reshape(ctx, scvrl_index_select(ctx, pl, 0, G->planes), 5, ne);                   // [Bm, 3, T, H, W]
}

// G->planes from G->shuf (rows b*T + frame of x_p for frame t of shuffle j of sample b); -1 with a
// message for a row outside x_p.
static int scm_planes(scm_graphs *G, const scm_cfg *c, char *err, size_t errlen) {
    int64_t B = G->B, nt = c->nt, T = c->frames;
    const int32_t *sh = (const int32_t *)G->shuf->data;
    int32_t *pl = (int32_t *)G->planes->data;
    for (int64_t i = 0; i < G->Bm; i++)
        for (int64_t t = 0; t < T; t++) {
            // x_p[i] is x_m's clip i, shuffle j of sample b the rows sh[(b*NT + j)*T + t] of x_p's frames,
            // x_pv[b] x_m's clip B + b (batch clip i = B + B*NT + b)
            int64_t src = i < B ? i * T + t : i >= B + B * nt ? (i - B * nt) * T + t : sh[(i - B) * T + t];
            if (i >= B && i < B + B * nt && (src < 0 || src >= B * T)) {
                snprintf(err, errlen, "shuffle index %lld (clip %lld, frame %lld) outside the %lld frames of x_p", (long long)src,
                         (long long)(i - B), (long long)t, (long long)(B * T));
                return -1;
            }
            int64_t clip = src / T, fr = src % T;
            for (int64_t ch = 0; ch < 3; ch++) pl[(i * 3 + ch) * T + t] = (int32_t)((clip * 3 + ch) * T + fr);
        }
    return 0;
}


static void scm_build_momentum(scm_graphs *G, scm_state *S, const scm_cfg *c) {
    scvrl_ctx *ctx = G->ctx;
    int64_t B = G->B, nt = S->temporal && !S->ce ? c->nt : 0;
    G->Bm = S->temporal && !S->ce ? B * (2 + nt) : B;
    G->xm = scm_input(ctx, c, nt ? 2 * B : B, "x_momentum");
    scvrl_tensor *x = G->xm;
    if (nt) {
        G->shuf = scvrl_new_1d(ctx, SCVRL_DT_I32, B * nt * c->frames);
        x = scm_gathered(ctx, c, G);
    }
    scvrl_tensor *f = mvit_forward(ctx, &S->mo, x, c->momentum_droppath, 5000, NULL);
    int64_t nk = B * (1 + nt);
    if (nt) {
        G->kt = scvrl_l2_normalize(ctx, con_head(ctx, &S->Hm, S->ht, scvrl_slice(ctx, f, 0, 0, nk)), 1e-12f);
        scvrl_mark_output(G->kt);
    }
    G->kv = scvrl_l2_normalize(ctx, con_head(ctx, &S->Hm, S->hv, scvrl_slice(ctx, f, 0, G->Bm - B, B)), 1e-12f);
    scvrl_mark_output(G->kv);
    G->gm = scvrl_graph_new();
    if (G->kt) scvrl_graph_expand(G->gm, G->kt);
    scvrl_graph_expand(G->gm, G->kv);
}


static void scm_build_online(scm_graphs *G, scm_state *S, const scm_cfg *c) {
    scvrl_ctx *ctx = G->ctx;
    int64_t B = G->B, K = c->queue;
    G->xo = scm_input(ctx, c, S->ce ? 3 * B : B, "x_online");
    scvrl_tensor *f = mvit_forward(ctx, &S->on, G->xo, 1, 0, NULL);
    scvrl_tensor *fa = S->ce ? scvrl_slice(ctx, f, 0, 0, B) : f;
    G->kpv = scvrl_new_2d(ctx, SCVRL_DT_F32, B, CON_DIM);
    int64_t qne[2] = { K, CON_DIM };
    G->queue = scvrl_new(ctx, SCVRL_DT_F32, 2, qne);
    G->queue->data = S->Q.keys;
    G->mask = scvrl_new_2d(ctx, SCVRL_DT_F32, B, K);
    scvrl_tensor *qv = scvrl_l2_normalize(ctx, con_head(ctx, &S->H, S->hv, fa), 1e-12f);
    G->loss_v = scvrl_mean_all(ctx, con_infonce_queue(ctx, qv, G->kpv, G->queue, G->mask, (float)c->tau, &G->lg_v));
    scvrl_tensor *loss = scvrl_scale(ctx, G->loss_v, (float)c->lambda_v);
    if (S->temporal && !S->ce) {
        int64_t kne[3] = { B, c->nt, CON_DIM };
        G->kp = scvrl_new_2d(ctx, SCVRL_DT_F32, B, CON_DIM);
        G->kn = scvrl_new_data(ctx, SCVRL_DT_F32, 3, kne);
        scvrl_tensor *qt = scvrl_l2_normalize(ctx, con_head(ctx, &S->H, S->ht, fa), 1e-12f);
        G->loss_t = scvrl_mean_all(ctx, con_infonce_per_sample(ctx, qt, G->kp, G->kn, (float)c->tau, &G->lg_t));
    } else if (S->ce) {      // ordered (0) vs shuffled (1) on the online features of x_p and one shuffle
        G->ce_tgt = scvrl_new_1d(ctx, SCVRL_DT_I32, 2 * B);
        for (int64_t b = 0; b < 2 * B; b++) ((int32_t *)G->ce_tgt->data)[b] = b >= B;
        G->lg_t = scvrl_linear(ctx, scvrl_slice(ctx, f, 0, B, 2 * B), scvrl_params_find(&S->H, "head_ce.weight"),
                               scvrl_params_find(&S->H, "head_ce.bias"));
        G->loss_t = scvrl_mean_all(ctx, scvrl_cross_entropy(ctx, G->lg_t, G->ce_tgt));
    }
    if (G->loss_t) loss = scvrl_add(ctx, loss, G->loss_t);
    G->loss = loss;
    scvrl_mark_output(G->loss_v); scvrl_mark_output(G->lg_v);
    if (G->loss_t) { scvrl_mark_output(G->loss_t); scvrl_mark_output(G->lg_t); }
    G->go = scvrl_graph_new();
    scvrl_graph_expand(G->go, loss);
    scvrl_graph_expand(G->go, G->lg_v);
    if (G->lg_t) scvrl_graph_expand(G->go, G->lg_t);
    scvrl_graph_backward(ctx, G->go, loss);
}


void scm_build(scm_graphs *G, scm_state *S, const scm_cfg *c) {
    memset(G, 0, sizeof(*G));
    G->ctx = scvrl_ctx_new(0);
    G->B = c->batch;
    G->clip = 3LL * c->frames * c->size * c->size;
    scm_build_momentum(G, S, c);
    scm_build_online(G, S, c);
}

void scm_free_graphs(scm_graphs *G) {
    scvrl_graph_free(G->gm); scvrl_graph_free(G->go);
    scvrl_ctx_free(G->ctx);
}


// ---------------------------------------------------------------------------------------------
// The step
// ---------------------------------------------------------------------------------------------
double scm_clip_grads(scm_state *S, double max_norm) {
    double norm = sqrt(scvrl_grad_sumsq(&S->on.P) + scvrl_grad_sumsq(&S->H));
    if (max_norm > 0 && norm > max_norm) {
        float f = (float)(max_norm / (norm + 1e-6));
        scvrl_grad_scale(&S->on.P, f);
        scvrl_grad_scale(&S->H, f);
    }
    return norm;
}

// SCVRL_DEBUG_KEYS=1: how far apart the momentum keys of the ordered clip and of its shuffles are.
static void scm_debug_keys(const scm_graphs *G, const scm_cfg *c) {
    int64_t B = G->B, D = CON_DIM;
    double s_pn = 0, s_nn = 0, s_vv = 0;
    const float *kp = scvrl_f32(G->kp), *kn = scvrl_f32(G->kn);
    for (int64_t b = 0; b < B; b++) for (int j = 0; j < c->nt; j++) {
        double d = 0, e = 0;
        for (int64_t k = 0; k < D; k++) { d += kp[b * D + k] * kn[(b * c->nt + j) * D + k]; e += kn[(b * c->nt) * D + k] * kn[(b * c->nt + j) * D + k]; }
        s_pn += d / (double)(B * c->nt); s_nn += e / (double)(B * c->nt);
    }
    for (int64_t k = 0; B > 1 && k < D; k++) s_vv += kp[k] * kp[D + k];
    fprintf(stderr, "keys: cos(k_p, k_n) %.6f  cos(k_n0, k_nj) %.6f  cos(k_p[0], k_p[1]) %.6f\n", s_pn, s_nn, s_vv);
}

int scm_step(scm_state *S, scm_graphs *G, const scm_cfg *c, scvrl_backend *be, const int64_t *vids, double lr,
             scm_stats *st, char *err, size_t errlen) {
    int64_t B = G->B;
    st->lr = lr;
    if (G->planes && scm_planes(G, c, err, errlen)) return -1;      // a bad shuffle index: nothing updated
    scvrl_ema_update(&S->mo.P, &S->on.P, (float)c->momentum);
    scvrl_ema_update(&S->Hm, &S->H, (float)c->momentum);
    G->gm->seed = scvrl_rng_u64(c->seed, 1, (uint64_t)S->step);
    if (scvrl_graph_compute(G->gm, be, err, errlen)) return -1;
    if (G->kp) {
        memcpy(G->kp->data, G->kt->data, (size_t)(B * CON_DIM) * sizeof(float));
        memcpy(G->kn->data, scvrl_f32(G->kt) + B * CON_DIM, (size_t)(B * c->nt * CON_DIM) * sizeof(float));
        if (getenv("SCVRL_DEBUG_KEYS")) scm_debug_keys(G, c);
    }
    memcpy(G->kpv->data, G->kv->data, (size_t)(B * CON_DIM) * sizeof(float));
    st->masked = con_queue_mask(&S->Q, vids, B, scvrl_f32(G->mask));
    scvrl_params_zero_grad(&S->on.P);
    scvrl_params_zero_grad(&S->H);
    G->go->seed = scvrl_rng_u64(c->seed, 2, (uint64_t)S->step);
    if (scvrl_graph_compute(G->go, be, err, errlen)) return -1;
    st->loss = scvrl_f32(G->loss)[0];
    st->loss_v = scvrl_f32(G->loss_v)[0];
    st->loss_t = G->loss_t ? scvrl_f32(G->loss_t)[0] : 0.0;
    if (!isfinite(st->loss)) {
        snprintf(err, errlen, "loss is %g at step %lld (L_T %g, L_V %g): stopping; the last good checkpoint is kept. "
                 "Try a lower --lr or --clip-grad 1", st->loss, (long long)S->step, st->loss_t, st->loss_v);
        return -1;
    }
    st->acc_v = con_accuracy(scvrl_f32(G->lg_v), B, c->queue);
    if (S->ce) {
        int64_t hit = 0;
        for (int64_t r = 0; r < 2 * B; r++) { const float *l = scvrl_f32(G->lg_t) + 2 * r; hit += (l[1] > l[0]) == (r >= B); }
        st->acc_t = (double)hit / (double)(2 * B);
    } else st->acc_t = G->lg_t ? con_accuracy(scvrl_f32(G->lg_t), B, c->nt) : 0.0;
    if (c->clip_grad > 0) scm_clip_grads(S, c->clip_grad);
    scvrl_adamw_cfg ac = scvrl_adamw_default();
    ac.lr = (float)lr; ac.weight_decay = (float)c->wd;
    if (scvrl_adamw_step(&S->on.P, &ac, err, errlen) || scvrl_adamw_step(&S->H, &ac, err, errlen)) return -1;
    int64_t p0 = S->Q.ptr;
    con_queue_push(&S->Q, scvrl_f32(G->kv), vids, B);
    if (S->qbe && scm_queue_refresh(S, p0, B, err, errlen)) return -1;
    S->step++;
    return 0;
}
