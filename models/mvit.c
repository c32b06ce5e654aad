// models/mvit.c - MViT v1 (see mvit.h and ../shared MVIT.md for the exact architecture).
#include "mvit.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>

// ---------------------------------------------------------------------------
// Presets: the one table of model sizes.
// ---------------------------------------------------------------------------
typedef struct { const char *name, *about; int depth; const mvit_block_cfg *blocks; } mvit__preset;

// Per block: heads, C_in, C_out, Q-pool stride ({0,0,0}: none), K/V-pool stride. Width grows at the
// end of the block before a Q-pooling block (MLP + project); heads double in the Q-pooling block;
// the K/V stride starts at (1,8,8) and is divided by each Q stride met (MVIT.md section 4).
#define Q0 { 0, 0, 0 }
#define Q2 { 1, 2, 2 }
static const mvit_block_cfg mvit__b_blocks[] = {
    { 1, 96, 192, Q0, { 1, 8, 8 } }, { 2, 192, 192, Q2, { 1, 4, 4 } }, { 2, 192, 384, Q0, { 1, 4, 4 } },
    { 4, 384, 384, Q2, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } },
    { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } },
    { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } },
    { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 768, Q0, { 1, 2, 2 } }, { 8, 768, 768, Q2, { 1, 1, 1 } },
    { 8, 768, 768, Q0, { 1, 1, 1 } },
};
static const mvit_block_cfg mvit__s_blocks[] = {
    { 1, 96, 192, Q0, { 1, 8, 8 } }, { 2, 192, 192, Q2, { 1, 4, 4 } }, { 2, 192, 384, Q0, { 1, 4, 4 } },
    { 4, 384, 384, Q2, { 1, 2, 2 } }, { 4, 384, 384, Q0, { 1, 2, 2 } }, { 4, 384, 768, Q0, { 1, 2, 2 } },
    { 8, 768, 768, Q2, { 1, 1, 1 } }, { 8, 768, 768, Q0, { 1, 1, 1 } },
};
static const mvit_block_cfg mvit__tiny_blocks[] = {
    { 1, 32, 64, Q0, { 1, 4, 4 } }, { 2, 64, 128, Q2, { 1, 2, 2 } }, { 4, 128, 256, Q2, { 1, 1, 1 } },
    { 8, 256, 256, Q0, { 1, 1, 1 } },
};
static const mvit_block_cfg mvit__micro_blocks[] = {
    { 1, 16, 32, Q0, { 1, 4, 4 } }, { 2, 32, 64, Q2, { 1, 2, 2 } }, { 2, 64, 64, Q0, { 1, 2, 2 } },
};
#undef Q0
#undef Q2
static const mvit__preset mvit__presets[] = {
    { "mvit-b", "MViT-B 16x4 (torchvision mvit_v1_b): 16 blocks, 96->768, 36.6M params", 16, mvit__b_blocks },
    { "mvit-s", "8 blocks, 96->768: MViT-B's stages shortened, 15.5M params", 8, mvit__s_blocks },
    { "mvit-tiny", "4 blocks, 32->256, 1.4M params: CPU tests and demos", 4, mvit__tiny_blocks },
    { "mvit-micro", "3 blocks, 16->64, 0.08M params: the CPU learning test at 32 px", 3, mvit__micro_blocks },
};
#define MVIT__NPRESETS ((int)(sizeof(mvit__presets) / sizeof(mvit__presets[0])))

int mvit_preset(const char *name, mvit_config *cfg) {
    for (int i = 0; i < MVIT__NPRESETS; i++) {
        if (strcmp(name, mvit__presets[i].name)) continue;
        memset(cfg, 0, sizeof(*cfg));
        snprintf(cfg->name, sizeof(cfg->name), "%s", name);
        cfg->depth = mvit__presets[i].depth;
        memcpy(cfg->blocks, mvit__presets[i].blocks, (size_t)cfg->depth * sizeof(mvit_block_cfg));
        cfg->kt = 2; cfg->frames = 16; cfg->size = 224; cfg->num_classes = 0; cfg->drop_path = 0.2f;
        return 0;
    }
    return -1;
}

void mvit_print_presets(FILE *f) {
    fprintf(f, "Model presets (--model):\n");
    for (int i = 0; i < MVIT__NPRESETS; i++)
        fprintf(f, "  %-10s %s\n", mvit__presets[i].name, mvit__presets[i].about);
}

int mvit_width(const mvit_config *cfg) { return cfg->blocks[cfg->depth - 1].c_out; }

int mvit_check_config(const mvit_config *cfg, char *err, size_t errlen) {
    if (cfg->kt != 2 && cfg->kt != 3) { snprintf(err, errlen, "--kt must be 2 or 3, not %d", cfg->kt); return -1; }
    if (cfg->frames < 2 || cfg->frames % 2) { snprintf(err, errlen, "--frames must be even and >= 2, not %d", cfg->frames); return -1; }
    if (cfg->size < 32 || cfg->size % 32) { snprintf(err, errlen, "--size must be a multiple of 32, not %d", cfg->size); return -1; }
    return 0;
}

// ---------------------------------------------------------------------------
// Parameters, in torchvision's state_dict order.
// ---------------------------------------------------------------------------
static scvrl_tensor *mvit__add(mvit_model *m, uint32_t fl, int nd, const int64_t *ne, const char *fmt, ...) {
    char name[128];
    va_list ap; va_start(ap, fmt); vsnprintf(name, sizeof name, fmt, ap); va_end(ap);
    return scvrl_params_add(&m->P, name, nd, ne, fl);
}
#define MVIT__ADD1(m, fl, n0, ...) do { int64_t ne_[1] = { n0 }; mvit__add(m, fl, 1, ne_, __VA_ARGS__); } while (0)
#define MVIT__ADD2(m, fl, n0, n1, ...) do { int64_t ne_[2] = { n0, n1 }; mvit__add(m, fl, 2, ne_, __VA_ARGS__); } while (0)

static void mvit__add_linear(mvit_model *m, int64_t out, int64_t in, const char *name) {
    MVIT__ADD2(m, 0, out, in, "%s.weight", name);
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, out, "%s.bias", name);
}
static void mvit__add_norm(mvit_model *m, int64_t n, const char *name) {
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, n, "%s.weight", name);
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, n, "%s.bias", name);
}
static void mvit__add_pool(mvit_model *m, int64_t d, const char *name) {
    int64_t ne[5] = { d, 1, 3, 3, 3 };
    mvit__add(m, 0, 5, ne, "%s.pool.weight", name);
    char nn[128];
    snprintf(nn, sizeof nn, "%s.norm_act.0", name);
    mvit__add_norm(m, d, nn);
}

static void mvit__declare(mvit_model *m) {
    const mvit_config *c = &m->cfg;
    int64_t C0 = c->blocks[0].c_in, stem[5] = { C0, 3, c->kt, 7, 7 };
    mvit__add(m, 0, 5, stem, "conv_proj.weight");
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, C0, "conv_proj.bias");
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, C0, "pos_encoding.class_token");
    MVIT__ADD2(m, SCVRL_P_NO_DECAY, (int64_t)m->grid[1] * m->grid[2], C0, "pos_encoding.spatial_pos");
    MVIT__ADD2(m, SCVRL_P_NO_DECAY, m->grid[0], C0, "pos_encoding.temporal_pos");
    MVIT__ADD1(m, SCVRL_P_NO_DECAY, C0, "pos_encoding.class_pos");
    char nm[128];
    for (int i = 0; i < c->depth; i++) {
        const mvit_block_cfg *b = &c->blocks[i];
        int64_t d = b->c_in / b->heads;
        snprintf(nm, sizeof nm, "blocks.%d.norm1", i); mvit__add_norm(m, b->c_in, nm);
        snprintf(nm, sizeof nm, "blocks.%d.norm2", i); mvit__add_norm(m, b->c_in, nm);
        snprintf(nm, sizeof nm, "blocks.%d.attn.qkv", i); mvit__add_linear(m, 3 * b->c_in, b->c_in, nm);
        snprintf(nm, sizeof nm, "blocks.%d.attn.project.0", i); mvit__add_linear(m, b->c_in, b->c_in, nm);
        if (b->q_stride[0]) { snprintf(nm, sizeof nm, "blocks.%d.attn.pool_q", i); mvit__add_pool(m, d, nm); }
        snprintf(nm, sizeof nm, "blocks.%d.attn.pool_k", i); mvit__add_pool(m, d, nm);
        snprintf(nm, sizeof nm, "blocks.%d.attn.pool_v", i); mvit__add_pool(m, d, nm);
        snprintf(nm, sizeof nm, "blocks.%d.mlp.0", i); mvit__add_linear(m, 4 * b->c_in, b->c_in, nm);
        snprintf(nm, sizeof nm, "blocks.%d.mlp.3", i); mvit__add_linear(m, b->c_out, 4 * b->c_in, nm);
        if (b->c_in != b->c_out) { snprintf(nm, sizeof nm, "blocks.%d.project", i); mvit__add_linear(m, b->c_out, b->c_in, nm); }
    }
    int64_t D = mvit_width(c);
    mvit__add_norm(m, D, "norm");
    if (c->num_classes > 0) mvit__add_linear(m, c->num_classes, D, "head.1");
}

int mvit_init(mvit_model *m, const mvit_config *cfg, char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    if (mvit_check_config(cfg, err, errlen)) return -1;
    m->cfg = *cfg;
    m->grid[0] = cfg->frames / 2; m->grid[1] = cfg->size / 4; m->grid[2] = cfg->size / 4;
    for (int i = 0; i < cfg->depth; i++) {
        const mvit_block_cfg *b = &cfg->blocks[i];
        if (b->heads < 1 || b->c_in % b->heads) { snprintf(err, errlen, "block %d: width %d not divisible by %d heads", i, b->c_in, b->heads); return -1; }
    }
    scvrl_params_init(&m->P);
    mvit__declare(m);
    return scvrl_params_finalize(&m->P, err, errlen);
}

void mvit_free(mvit_model *m) { scvrl_params_free(&m->P); }

static int mvit__ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}
static int mvit__is_norm(const char *n) { return strstr(n, "norm") != NULL; }

void mvit_fixture_weights(mvit_model *m, uint64_t seed) {
    for (int i = 0; i < m->P.n; i++) {
        scvrl_tensor *t = m->P.t[i];
        const char *n = t->name;
        float *w = scvrl_f32(t);
        int64_t numel = scvrl_nelements(t);
        uint64_t st = scvrl_fnv1a64(n);
        double fan_in = (double)numel / (double)t->ne[0];
        for (int64_t j = 0; j < numel; j++) {
            double u = 2.0 * (double)scvrl_rng_uniform(seed, st, (uint64_t)j) - 1.0, v;
            if (mvit__ends_with(n, ".weight") && mvit__is_norm(n)) v = 1.0 + 0.2 * u;
            else if (mvit__ends_with(n, ".bias")) v = 0.2 * u;
            else if (!strncmp(n, "pos_encoding.", 13)) v = 0.5 * u;
            else v = u * sqrt(3.0 / fan_in);
            w[j] = (float)v;
        }
    }
}

void mvit_init_weights(mvit_model *m, uint64_t seed) {
    for (int i = 0; i < m->P.n; i++) {
        scvrl_tensor *t = m->P.t[i];
        const char *n = t->name;
        float *w = scvrl_f32(t);
        int64_t numel = scvrl_nelements(t);
        uint64_t st = scvrl_fnv1a64(n);
        int conv = t->ndim == 5 || !strncmp(n, "conv_proj.", 10) || strstr(n, ".pool.");
        double bound = conv ? 1.0 / sqrt(!strcmp(n, "conv_proj.bias") ? 3.0 * m->cfg.kt * 49 : (double)numel / (double)t->ne[0]) : 0;
        for (int64_t j = 0; j < numel; j++) {
            double v;
            if (conv) v = (2.0 * scvrl_rng_uniform(seed, st, (uint64_t)j) - 1.0) * bound;
            else if (mvit__is_norm(n)) v = mvit__ends_with(n, ".weight") ? 1.0 : 0.0;
            else if (mvit__ends_with(n, ".bias")) v = 0.0;
            else { v = 0.02 * scvrl_rng_normal(seed, st, (uint64_t)j); v = v < -2 ? -2 : v > 2 ? 2 : v; }
            w[j] = (float)v;
        }
    }
}

// ---------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------
static scvrl_tensor *mvit__p(const mvit_model *m, const char *fmt, ...) {
    char name[128];
    va_list ap; va_start(ap, fmt); vsnprintf(name, sizeof name, fmt, ap); va_end(ap);
    scvrl_tensor *t = scvrl_params_find(&m->P, name);
    SCVRL_ASSERT(t, "mvit: no parameter %s", name);
    return t;
}

// Attention pooling (MVIT.md section 5) of the j-th of q/k/v, read straight from the projection
// qkv5 [B, N, 3, h, d]: the grid tokens of all heads are one channels-last view [B, T, H, W, h*d]
// (channel stride 1, no copy), pooled by one depthwise conv whose weight is the shared [d] kernel
// tiled over the heads (the same sums as pooling each head); CLS bypasses; then LN(d) per head.
// Returns [B, h, 1+L, d], a transposed view of the LN output [B, 1+L, h, d].
static scvrl_tensor *mvit__pool(scvrl_ctx *ctx, const mvit_model *m, scvrl_tensor *qkv5, int j, const int thw[3],
                                const int stride[3], const char *name, int out_thw[3]) {
    int64_t B = qkv5->ne[0], N = qkv5->ne[1], h = qkv5->ne[3], d = qkv5->ne[4], C = h * d;
    scvrl_tensor *z = scvrl_reshape_3d(ctx, scvrl_slice(ctx, qkv5, 2, j, 1), B, N, C);     // [B, N, C] view
    int64_t g5[5] = { B, thw[0], thw[1], thw[2], C };
    scvrl_tensor *grid = scvrl_reshape(ctx, scvrl_slice(ctx, z, 1, 1, N - 1), 5, g5);
    scvrl_tensor *w = mvit__p(m, "%s.pool.weight", name);                                  // [d, 1, kt, kh, kw]
    if (h > 1) {
        int64_t k3 = w->ne[2] * w->ne[3] * w->ne[4], e2[2] = { h, d * k3 }, w5[5] = { C, 1, w->ne[2], w->ne[3], w->ne[4] };
        w = scvrl_reshape(ctx, scvrl_cont(ctx, scvrl_expand(ctx, scvrl_reshape_2d(ctx, w, 1, d * k3), 2, e2)), 5, w5);
    }
    int pad[3] = { 1, 1, 1 };
    scvrl_tensor *pooled = scvrl_conv3d(ctx, grid, w, NULL, stride, pad, (int)C, SCVRL_LAYOUT_NDHWC);
    for (int i = 0; i < 3; i++) out_thw[i] = (int)pooled->ne[1 + i];
    int64_t L = pooled->ne[1] * pooled->ne[2] * pooled->ne[3];
    scvrl_tensor *y = scvrl_concat(ctx, scvrl_slice(ctx, z, 1, 0, 1), scvrl_reshape_3d(ctx, pooled, B, L, C), 1);
    y = scvrl_layer_norm(ctx, scvrl_reshape_4d(ctx, y, B, 1 + L, h, d), mvit__p(m, "%s.norm_act.0.weight", name),
                         mvit__p(m, "%s.norm_act.0.bias", name), 1e-6f);                   // [B, 1+L, h, d]
    return scvrl_transpose(ctx, y, 1, 2);
}

// Skip path of a Q-pooling block: max pool (kernel s+1, padding kernel/2) over the grid, CLS bypasses.
static scvrl_tensor *mvit__skip_pool(scvrl_ctx *ctx, scvrl_tensor *x, const int thw[3], const int s[3]) {
    int64_t B = x->ne[0], N = x->ne[1], C = x->ne[2];
    int k[3], p[3];
    for (int i = 0; i < 3; i++) { k[i] = s[i] > 1 ? s[i] + 1 : s[i]; p[i] = k[i] / 2; }
    int64_t g5[5] = { B, thw[0], thw[1], thw[2], C };
    scvrl_tensor *grid = scvrl_reshape(ctx, scvrl_slice(ctx, x, 1, 1, N - 1), 5, g5);
    scvrl_tensor *pooled = scvrl_maxpool3d(ctx, grid, k, s, p, SCVRL_LAYOUT_NDHWC);
    int64_t L = pooled->ne[1] * pooled->ne[2] * pooled->ne[3];
    return scvrl_concat(ctx, scvrl_slice(ctx, x, 1, 0, 1), scvrl_reshape_3d(ctx, pooled, B, L, C), 1);
}

static scvrl_tensor *mvit__linear(scvrl_ctx *ctx, const mvit_model *m, scvrl_tensor *x, const char *fmt, int i) {
    char nm[96];
    snprintf(nm, sizeof nm, fmt, i);
    return scvrl_linear(ctx, x, mvit__p(m, "%s.weight", nm), mvit__p(m, "%s.bias", nm));
}

// One block (MVIT.md section 5): x [B, N, C_in] at grid thw -> [B, Nq, C_out], thw updated.
static scvrl_tensor *mvit__block(scvrl_ctx *ctx, const mvit_model *m, int i, scvrl_tensor *x, int thw[3],
                                 int train, uint64_t stream_base) {
    const mvit_block_cfg *b = &m->cfg.blocks[i];
    int64_t B = x->ne[0], N = x->ne[1], C = b->c_in, h = b->heads, d = C / h;
    float dp = train && m->cfg.depth > 1 ? m->cfg.drop_path * (float)i / (float)(m->cfg.depth - 1) : 0.0f;
    scvrl_tensor *a = scvrl_layer_norm(ctx, x, mvit__p(m, "blocks.%d.norm1.weight", i), mvit__p(m, "blocks.%d.norm1.bias", i), 1e-6f);
    scvrl_tensor *qkv = mvit__linear(ctx, m, a, "blocks.%d.attn.qkv", i);          // [B, N, 3C]
    int64_t ne5[5] = { B, N, 3, h, d };
    scvrl_tensor *qkv5 = scvrl_reshape(ctx, qkv, 5, ne5);                            // [B, N, 3, h, d]
    char nm[96];
    int kv_thw[3], q_thw[3] = { thw[0], thw[1], thw[2] };
    snprintf(nm, sizeof nm, "blocks.%d.attn.pool_k", i);
    scvrl_tensor *k = mvit__pool(ctx, m, qkv5, 1, thw, b->kv_stride, nm, kv_thw);   // [B, h, Nk, d]
    snprintf(nm, sizeof nm, "blocks.%d.attn.pool_v", i);
    scvrl_tensor *v = mvit__pool(ctx, m, qkv5, 2, thw, b->kv_stride, nm, kv_thw);
    scvrl_tensor *q;
    if (b->q_stride[0]) {
        snprintf(nm, sizeof nm, "blocks.%d.attn.pool_q", i);
        q = mvit__pool(ctx, m, qkv5, 0, thw, b->q_stride, nm, q_thw);
    } else {
        int perm[4] = { 0, 2, 1, 3 };
        q = scvrl_permute(ctx, scvrl_reshape_4d(ctx, scvrl_slice(ctx, qkv5, 2, 0, 1), B, N, h, d), perm);   // [B, h, N, d]
    }
    scvrl_tensor *o = scvrl_attention(ctx, q, k, v, (float)(1.0 / sqrt((double)d)));   // [B, Nq, h, d]
    o = scvrl_reshape_3d(ctx, o, B, q->ne[2], C);
    scvrl_tensor *y = mvit__linear(ctx, m, o, "blocks.%d.attn.project.0", i);
    scvrl_tensor *skip = b->q_stride[0] ? mvit__skip_pool(ctx, x, thw, b->q_stride) : x;
    scvrl_tensor *x1 = scvrl_add(ctx, skip, scvrl_drop_path(ctx, y, dp, stream_base + 2 * (uint64_t)i));
    scvrl_tensor *bn = scvrl_layer_norm(ctx, x1, mvit__p(m, "blocks.%d.norm2.weight", i), mvit__p(m, "blocks.%d.norm2.bias", i), 1e-6f);
    scvrl_tensor *mlp = mvit__linear(ctx, m, scvrl_gelu(ctx, mvit__linear(ctx, m, bn, "blocks.%d.mlp.0", i)), "blocks.%d.mlp.3", i);
    scvrl_tensor *r = b->c_in != b->c_out ? mvit__linear(ctx, m, bn, "blocks.%d.project", i) : x1;
    for (int j = 0; j < 3; j++) thw[j] = q_thw[j];
    return scvrl_add(ctx, r, scvrl_drop_path(ctx, mlp, dp, stream_base + 2 * (uint64_t)i + 1));
}

scvrl_tensor *mvit_forward(scvrl_ctx *ctx, const mvit_model *m, scvrl_tensor *x, int train,
                           uint64_t stream_base, scvrl_tensor **logits) {
    const mvit_config *c = &m->cfg;
    SCVRL_ASSERT(x->ndim == 5 && x->ne[1] == 3 && x->ne[2] == c->frames && x->ne[3] == c->size && x->ne[4] == c->size,
                 "mvit: input must be [B, 3, %d, %d, %d]", c->frames, c->size, c->size);
    int64_t B = x->ne[0], C0 = c->blocks[0].c_in;
    int stride[3] = { 2, 4, 4 }, pad[3] = { c->kt == 2 ? 0 : 1, 3, 3 };
    // The stem reads the clip [B, 3, T, H, W] as a channels-last view and writes [B, T', H', W', C0]:
    // the tokens, with no transpose (the same weights and sums as the NCDHW convolution).
    int cl[5] = { 0, 2, 3, 4, 1 };
    scvrl_tensor *s = scvrl_conv3d(ctx, scvrl_permute(ctx, x, cl), mvit__p(m, "conv_proj.weight"), mvit__p(m, "conv_proj.bias"),
                                   stride, pad, 1, SCVRL_LAYOUT_NDHWC);
    int thw[3] = { (int)s->ne[1], (int)s->ne[2], (int)s->ne[3] };
    SCVRL_ASSERT(thw[0] == m->grid[0] && thw[1] == m->grid[1] && thw[2] == m->grid[2], "mvit: stem grid mismatch");
    int64_t L = (int64_t)thw[0] * thw[1] * thw[2];
    scvrl_tensor *tok = scvrl_reshape_3d(ctx, s, B, L, C0);                                   // [B, L, C0]
    int64_t cne[3] = { B, 1, C0 };
    scvrl_tensor *cls = scvrl_expand(ctx, mvit__p(m, "pos_encoding.class_token"), 3, cne);
    scvrl_tensor *xt = scvrl_concat(ctx, cls, tok, 1);                                        // [B, 1+L, C0]
    scvrl_tensor *tp = scvrl_reshape_3d(ctx, mvit__p(m, "pos_encoding.temporal_pos"), thw[0], 1, C0);
    scvrl_tensor *sp = scvrl_reshape_3d(ctx, mvit__p(m, "pos_encoding.spatial_pos"), 1, (int64_t)thw[1] * thw[2], C0);
    scvrl_tensor *pos = scvrl_reshape_2d(ctx, scvrl_add(ctx, tp, sp), L, C0);
    pos = scvrl_concat(ctx, scvrl_reshape_2d(ctx, mvit__p(m, "pos_encoding.class_pos"), 1, C0), pos, 0);
    xt = scvrl_add(ctx, xt, pos);
    for (int i = 0; i < c->depth; i++) xt = mvit__block(ctx, m, i, xt, thw, train, stream_base);
    xt = scvrl_layer_norm(ctx, xt, mvit__p(m, "norm.weight"), mvit__p(m, "norm.bias"), 1e-6f);
    int64_t D = xt->ne[2], N = xt->ne[1];
    scvrl_tensor *f = c->pool_avg ? scvrl_mean(ctx, scvrl_slice(ctx, xt, 1, 1, N - 1), 1, 0)
                                  : scvrl_cont(ctx, scvrl_reshape_2d(ctx, scvrl_slice(ctx, xt, 1, 0, 1), B, D));
    if (logits) *logits = c->num_classes > 0 ? scvrl_linear(ctx, f, mvit__p(m, "head.1.weight"), mvit__p(m, "head.1.bias")) : NULL;
    return f;
}

// ---------------------------------------------------------------------------
// Loading and saving (safetensors, torchvision names; PySlowFast names mapped)
// ---------------------------------------------------------------------------
// PySlowFast -> torchvision suffix renames (MVIT.md section 11), applied after "blocks.N.".
static const char *mvit__sf_map[][2] = {
    { "attn.proj.", "attn.project.0." }, { "attn.norm_q.", "attn.pool_q.norm_act.0." },
    { "attn.norm_k.", "attn.pool_k.norm_act.0." }, { "attn.norm_v.", "attn.pool_v.norm_act.0." },
    { "attn.pool_q.weight", "attn.pool_q.pool.weight" }, { "attn.pool_k.weight", "attn.pool_k.pool.weight" },
    { "attn.pool_v.weight", "attn.pool_v.pool.weight" }, { "mlp.fc1.", "mlp.0." }, { "mlp.fc2.", "mlp.3." },
    { "proj.", "project." },
};
static const char *mvit__sf_top[][2] = {
    { "patch_embed.proj.weight", "conv_proj.weight" }, { "patch_embed.proj.bias", "conv_proj.bias" },
    { "cls_token", "pos_encoding.class_token" }, { "pos_embed_spatial", "pos_encoding.spatial_pos" },
    { "pos_embed_temporal", "pos_encoding.temporal_pos" }, { "pos_embed_class", "pos_encoding.class_pos" },
    { "head.projection.weight", "head.1.weight" }, { "head.projection.bias", "head.1.bias" },
};

// Map a PySlowFast name to torchvision's (into out); returns 1 if it changed.
static int mvit__from_slowfast(const char *sf, char *out, size_t n) {
    for (size_t i = 0; i < sizeof(mvit__sf_top) / sizeof(mvit__sf_top[0]); i++)
        if (!strcmp(sf, mvit__sf_top[i][0])) { snprintf(out, n, "%s", mvit__sf_top[i][1]); return 1; }
    int blk, pos = 0;
    if (sscanf(sf, "blocks.%d.%n", &blk, &pos) == 1 && pos > 0) {
        const char *rest = sf + pos;
        for (size_t i = 0; i < sizeof(mvit__sf_map) / sizeof(mvit__sf_map[0]); i++) {
            size_t k = strlen(mvit__sf_map[i][0]);
            if (!strncmp(rest, mvit__sf_map[i][0], k)) {
                snprintf(out, n, "blocks.%d.%s%s", blk, mvit__sf_map[i][1], rest + k);
                return 1;
            }
        }
    }
    snprintf(out, n, "%s", sf);
    return 0;
}

// Linear resampling along one axis (align_corners=False, as F.interpolate): src [ns][C] -> dst [nd][C].
static void mvit__resample_axis(const float *src, int64_t ns, float *dst, int64_t nd, int64_t inner) {
    for (int64_t i = 0; i < nd; i++) {
        double x = ((double)i + 0.5) * (double)ns / (double)nd - 0.5;
        if (x < 0) x = 0;
        int64_t i0 = (int64_t)x, i1 = i0 + 1 < ns ? i0 + 1 : ns - 1;
        double f = x - (double)i0;
        for (int64_t c = 0; c < inner; c++)
            dst[i * inner + c] = (float)((1.0 - f) * src[i0 * inner + c] + f * src[i1 * inner + c]);
    }
}

// Resample a positional table read as src (shape from the file) into t (the model's shape).
static int mvit__interp_pos(const mvit_model *m, scvrl_tensor *t, const float *src, const int64_t *sshape) {
    int64_t C = t->ne[1];
    if (sshape[1] != C) return -1;
    if (!strcmp(t->name, "pos_encoding.temporal_pos")) {
        mvit__resample_axis(src, sshape[0], scvrl_f32(t), t->ne[0], C);
        return 0;
    }
    int64_t hs = (int64_t)llround(sqrt((double)sshape[0]));
    if (hs * hs != sshape[0]) return -1;                 // square grids only
    int64_t hd = m->grid[1], wd = m->grid[2];
    float *tmp = (float *)malloc((size_t)(hd * hs * C) * sizeof(float));
    if (!tmp) return -1;
    mvit__resample_axis(src, hs, tmp, hd, hs * C);                       // rows
    for (int64_t r = 0; r < hd; r++) mvit__resample_axis(tmp + r * hs * C, hs, scvrl_f32(t) + r * wd * C, wd, C);
    free(tmp);
    return 0;
}

// Read one model tensor from the file (direct, SlowFast-named, or q/k/v parts). 1 found, 0 absent, -1 error.
static int mvit__read_one(const mvit_model *m, scvrl_st_file *f, const char *prefix, scvrl_tensor *t,
                          int flags, char *used, char *err, size_t errlen) {
    char want[256];
    const scvrl_st_entry *e = NULL;
    for (int i = 0; i < f->n && !e; i++) {
        const char *n = f->e[i].name;
        size_t pl = strlen(prefix);
        if (strncmp(n, prefix, pl)) continue;
        mvit__from_slowfast(n + pl, want, sizeof want);
        if (!strcmp(want, t->name)) { e = &f->e[i]; used[i] = 1; }
    }
    int64_t numel = scvrl_nelements(t);
    if (!e) {
        // SlowFast: separate attn.q/k/v -> fused qkv (rows concatenated)
        int blk; char kind[8];
        if (sscanf(t->name, "blocks.%d.attn.qkv.%7s", &blk, kind) != 2) return 0;
        int64_t part = numel / 3;
        for (int j = 0; j < 3; j++) {
            snprintf(want, sizeof want, "%sblocks.%d.attn.%c.%s", prefix, blk, "qkv"[j], kind);
            const scvrl_st_entry *pe = scvrl_st_find(f, want);
            if (!pe) return 0;
            if (pe->numel != part) { snprintf(err, errlen, "%s: %s has %lld values, want %lld", f->path, want, (long long)pe->numel, (long long)part); return -1; }
            if (scvrl_st_read_f32(f, pe, scvrl_f32(t) + j * part, err, errlen)) return -1;
            used[pe - f->e] = 1;
        }
        return 1;
    }
    int same = e->numel == numel;
    if (same && e->ndim == t->ndim) for (int d = 0; d < t->ndim; d++) same &= e->shape[d] == t->ne[d];
    // SlowFast stores pos tables with leading 1s ([1, L, C]); accept equal numel for those
    if (!same && e->numel == numel && !strncmp(t->name, "pos_encoding.", 13)) same = 1;
    if (same) return scvrl_st_read_f32(f, e, scvrl_f32(t), err, errlen) ? -1 : 1;
    char shp[128]; size_t k = 0;
    for (int d = 0; d < e->ndim && k < sizeof shp; d++) k += snprintf(shp + k, sizeof shp - k, d ? "x%lld" : "%lld", (long long)e->shape[d]);
    if ((!strcmp(t->name, "pos_encoding.spatial_pos") || !strcmp(t->name, "pos_encoding.temporal_pos")) && e->ndim >= 2) {
        if (!(flags & MVIT_LOAD_INTERPOLATE_POS)) {
            snprintf(err, errlen, "%s: %s is %s, the model (frames %d, size %d) wants %lldx%lld: the weights were made for another "
                     "clip size; pass --interpolate-pos to resample them", f->path, e->name, shp, m->cfg.frames, m->cfg.size,
                     (long long)t->ne[0], (long long)t->ne[1]);
            return -1;
        }
        float *src = (float *)malloc((size_t)e->numel * sizeof(float));
        int64_t ss[2] = { e->shape[e->ndim - 2], e->shape[e->ndim - 1] };
        int rc = src && !scvrl_st_read_f32(f, e, src, err, errlen) && !mvit__interp_pos(m, t, src, ss);
        free(src);
        if (!rc) { snprintf(err, errlen, "%s: cannot resample %s (%s)", f->path, e->name, shp); return -1; }
        fprintf(stderr, "mvit: resampled %s from %s to %lldx%lld (--interpolate-pos)\n", t->name, shp, (long long)t->ne[0], (long long)t->ne[1]);
        return 1;
    }
    snprintf(err, errlen, "%s: %s has shape %s, the model wants %lld values in shape of %s%s", f->path, e->name, shp,
             (long long)numel, t->name, !strcmp(t->name, "conv_proj.weight") ? " (stem kernel: check --kt 2|3)" : " (check --model)");
    return -1;
}

int mvit_load(mvit_model *m, const char *path, const char *prefix, int flags, char *err, size_t errlen) {
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, errlen)) return -1;
    if (!prefix) prefix = "";
    char *used = (char *)calloc((size_t)f.n + 1, 1);
    int rc = 0, missing = 0;
    char miss[512] = "";
    for (int i = 0; i < m->P.n && !rc; i++) {
        scvrl_tensor *t = m->P.t[i];
        int r = mvit__read_one(m, &f, prefix, t, flags, used, err, errlen);
        if (r < 0) rc = -1;
        else if (r == 0) {
            if ((flags & MVIT_LOAD_ALLOW_MISSING_HEAD) && !strncmp(t->name, "head.", 5)) continue;
            if (missing++ < 6) { size_t k = strlen(miss); snprintf(miss + k, sizeof miss - k, "%s%s", k ? ", " : "", t->name); }
        }
    }
    if (!rc && missing) {
        snprintf(err, errlen, "%s: %d tensor%s missing%s%s: %s%s", path, missing, missing > 1 ? "s" : "",
                 *prefix ? " under prefix " : "", prefix, miss, missing > 6 ? ", ..." : "");
        rc = -1;
    }
    if (!rc && !(flags & MVIT_LOAD_IGNORE_UNEXPECTED)) {
        int unexpected = 0;
        char ux[512] = "";
        for (int i = 0; i < f.n; i++) {
            if (used[i] || strncmp(f.e[i].name, prefix, strlen(prefix))) continue;
            if (!strncmp(f.e[i].name + strlen(prefix), "head.", 5) && m->cfg.num_classes == 0) continue;
            if (unexpected++ < 6) { size_t k = strlen(ux); snprintf(ux + k, sizeof ux - k, "%s%s", k ? ", " : "", f.e[i].name); }
        }
        if (unexpected) {
            snprintf(err, errlen, "%s: %d unexpected tensor%s for %s: %s%s", path, unexpected, unexpected > 1 ? "s" : "",
                     m->cfg.name, ux, unexpected > 6 ? ", ..." : "");
            rc = -1;
        }
    }
    free(used);
    scvrl_st_close(&f);
    return rc;
}

void mvit_add_to_writer(const mvit_model *m, void *writer, const char *prefix) {
    char name[256];
    for (int i = 0; i < m->P.n; i++) {
        scvrl_tensor *t = m->P.t[i];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", t->name);
        scvrl_st_writer_add((scvrl_st_writer *)writer, name, SCVRL_DT_F32, t->ndim, t->ne, t->data);
    }
}

int mvit_save(const mvit_model *m, const char *path, char *err, size_t errlen) {
    return mvit_save_as(m, path, SCVRL_DT_F32, NULL, err, errlen);
}

// The backbone in float32, F16 or BF16 (rounded to nearest even; loading converts back exactly).
int mvit_save_as(const mvit_model *m, const char *path, scvrl_dtype dt, const char *config, char *err, size_t errlen) {
    if (dt != SCVRL_DT_F32 && dt != SCVRL_DT_F16 && dt != SCVRL_DT_BF16) {
        snprintf(err, errlen, "%s: cannot save weights as %s (F32, F16 or BF16)", path, scvrl_dtype_name(dt));
        return -1;
    }
    scvrl_st_writer *w = scvrl_st_writer_new();
    uint16_t *half = dt == SCVRL_DT_F32 ? NULL : (uint16_t *)malloc((size_t)m->P.n_elems * sizeof(uint16_t) + 1);
    if (!w || (dt != SCVRL_DT_F32 && !half)) {
        snprintf(err, errlen, "%s: out of memory", path);
        scvrl_st_writer_free(w); free(half);
        return -1;
    }
    if (dt == SCVRL_DT_F32) mvit_add_to_writer(m, w, "");
    else {
        int64_t at = 0;
        for (int i = 0; i < m->P.n; i++) {
            scvrl_tensor *t = m->P.t[i];
            int64_t n = scvrl_nelements(t);
            const float *x = scvrl_f32(t);
            for (int64_t j = 0; j < n; j++) half[at + j] = dt == SCVRL_DT_F16 ? scvrl_f32_to_f16(x[j]) : scvrl_f32_to_bf16(x[j]);
            scvrl_st_writer_add(w, t->name, dt, t->ndim, t->ne, half + at);
            at += n;
        }
    }
    scvrl_st_writer_meta(w, "model", m->cfg.name);
    char buf[64];
    snprintf(buf, sizeof buf, "%d", m->cfg.kt); scvrl_st_writer_meta(w, "kt", buf);
    snprintf(buf, sizeof buf, "%d", m->cfg.frames); scvrl_st_writer_meta(w, "frames", buf);
    snprintf(buf, sizeof buf, "%d", m->cfg.size); scvrl_st_writer_meta(w, "size", buf);
    if (config) scvrl_st_writer_meta(w, "config", config);
    int rc = scvrl_st_writer_save(w, path, err, errlen);
    scvrl_st_writer_free(w);
    free(half);
    return rc;
}
