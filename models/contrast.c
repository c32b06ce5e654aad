// models/contrast.c - projection heads, InfoNCE losses and the key queue (see contrast.h).
#include "contrast.h"
#include <math.h>
#include <string.h>

static scvrl_tensor *con__p(const scvrl_params *P, const char *prefix, const char *suffix) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    scvrl_tensor *t = scvrl_params_find(P, name);
    SCVRL_ASSERT(t, "no parameter %s", name);
    return t;
}

void con_head_declare(scvrl_params *P, const char *prefix, int D) {
    char name[128];
    int64_t w0[2] = { CON_HIDDEN, D }, b0[1] = { CON_HIDDEN }, w2[2] = { CON_DIM, CON_HIDDEN }, b2[1] = { CON_DIM };
    snprintf(name, sizeof name, "%s.0.weight", prefix); scvrl_params_add(P, name, 2, w0, 0);
    snprintf(name, sizeof name, "%s.0.bias", prefix); scvrl_params_add(P, name, 1, b0, SCVRL_P_NO_DECAY);
    snprintf(name, sizeof name, "%s.2.weight", prefix); scvrl_params_add(P, name, 2, w2, 0);
    snprintf(name, sizeof name, "%s.2.bias", prefix); scvrl_params_add(P, name, 1, b2, SCVRL_P_NO_DECAY);
}

// nn.Linear's default: weight and bias uniform in +-1/sqrt(in).
void con_head_init(scvrl_params *P, const char *prefix, uint64_t seed) {
    static const char *sfx[4] = { "0.weight", "0.bias", "2.weight", "2.bias" };
    for (int i = 0; i < 4; i++) {
        scvrl_tensor *t = con__p(P, prefix, sfx[i]);
        int64_t in = i < 2 ? con__p(P, prefix, "0.weight")->ne[1] : CON_HIDDEN;
        float b = 1.0f / sqrtf((float)in);
        scvrl_fill_uniform(scvrl_f32(t), scvrl_nelements(t), seed, scvrl_fnv1a64(t->name), -b, b);
    }
}

scvrl_tensor *con_head(scvrl_ctx *ctx, const scvrl_params *P, const char *prefix, scvrl_tensor *f) {
    scvrl_tensor *h = scvrl_relu(ctx, scvrl_linear(ctx, f, con__p(P, prefix, "0.weight"), con__p(P, prefix, "0.bias")));
    return scvrl_linear(ctx, h, con__p(P, prefix, "2.weight"), con__p(P, prefix, "2.bias"));
}

scvrl_tensor *con_infonce_per_sample(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *kp, scvrl_tensor *kn,
                                     float tau, scvrl_tensor **logits) {
    int64_t B = q->ne[0], C = q->ne[1], N = kn->ne[1];
    scvrl_tensor *pos = scvrl_sum(ctx, scvrl_mul(ctx, q, kp), 1, 1);                          // [B, 1]
    scvrl_tensor *neg = scvrl_matmul(ctx, scvrl_reshape_3d(ctx, q, B, 1, C), kn, 0, 1);        // [B, 1, N]
    scvrl_tensor *lg = scvrl_scale(ctx, scvrl_concat(ctx, pos, scvrl_reshape_2d(ctx, neg, B, N), 1), 1.0f / tau);
    if (logits) *logits = lg;
    scvrl_tensor *tg = scvrl_new_1d(ctx, SCVRL_DT_I32, B);                                       // zeros: column 0
    return scvrl_cross_entropy(ctx, lg, tg);
}

scvrl_tensor *con_infonce_queue(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *kp, scvrl_tensor *queue,
                                scvrl_tensor *mask, float tau, scvrl_tensor **logits) {
    int64_t B = q->ne[0];
    scvrl_tensor *pos = scvrl_sum(ctx, scvrl_mul(ctx, q, kp), 1, 1);                          // [B, 1]
    scvrl_tensor *neg = scvrl_linear(ctx, q, queue, NULL);                                      // [B, K]
    if (mask) neg = scvrl_add(ctx, neg, mask);
    scvrl_tensor *lg = scvrl_scale(ctx, scvrl_concat(ctx, pos, neg, 1), 1.0f / tau);
    if (logits) *logits = lg;
    scvrl_tensor *tg = scvrl_new_1d(ctx, SCVRL_DT_I32, B);
    return scvrl_cross_entropy(ctx, lg, tg);
}

double con_accuracy(const float *logits, int64_t B, int64_t n) {
    int64_t hit = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *r = logits + b * (n + 1);
        int ok = 1;
        for (int64_t j = 1; j <= n; j++) if (!(r[0] > r[j])) { ok = 0; break; }
        hit += ok;
    }
    return B ? (double)hit / (double)B : 0.0;
}

int con_queue_init(con_queue *q, int64_t K, int64_t C, uint64_t seed) {
    memset(q, 0, sizeof(*q));
    q->keys = (float *)malloc((size_t)(K * C) * sizeof(float));
    q->ids = (int64_t *)malloc((size_t)K * sizeof(int64_t));
    if (!q->keys || !q->ids) { con_queue_free(q); return -1; }
    q->K = K; q->C = C;
    uint64_t st = scvrl_fnv1a64("queue.init");
    for (int64_t i = 0; i < K; i++) {
        double n2 = 0;
        for (int64_t c = 0; c < C; c++) {
            float v = scvrl_rng_normal(seed, st, (uint64_t)(i * C + c));
            q->keys[i * C + c] = v; n2 += (double)v * v;
        }
        float inv = (float)(1.0 / sqrt(n2 > 0 ? n2 : 1.0));
        for (int64_t c = 0; c < C; c++) q->keys[i * C + c] *= inv;
        q->ids[i] = -1;
    }
    return 0;
}

void con_queue_free(con_queue *q) {
    free(q->keys); free(q->ids);
    memset(q, 0, sizeof(*q));
}

void con_queue_push(con_queue *q, const float *keys, const int64_t *ids, int64_t B) {
    for (int64_t b = 0; b < B; b++) {
        memcpy(q->keys + q->ptr * q->C, keys + b * q->C, (size_t)q->C * sizeof(float));
        q->ids[q->ptr] = ids[b];
        q->ptr = (q->ptr + 1) % q->K;
    }
}

int64_t con_queue_mask(const con_queue *q, const int64_t *anchor_ids, int64_t B, float *mask) {
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < q->K; j++) {
            int same = q->ids[j] >= 0 && q->ids[j] == anchor_ids[b];
            mask[b * q->K + j] = same ? -INFINITY : 0.0f;
            n += same;
        }
    return n;
}
