// test-grad: every differentiable op of the table against central finite differences.
// The test walks the op table: a differentiable op with no case here fails the test.
#define SCVRL_IMPLEMENTATION
#include "scvrl.h"
#include "test.h"

#define MAXIN 4
typedef struct {
    const char *name;
    scvrl_op op;                        // the op this case covers
    int nin;
    int nd[MAXIN];
    int64_t ne[MAXIN][SCVRL_MAX_DIMS];
    int grad_mask;                      // which inputs to check (bit i)
    scvrl_tensor *(*build)(scvrl_ctx *ctx, scvrl_tensor **in);
    double tol;
} gcase;

static int32_t g_idx[8] = { 2, 0, 1, 1, 3 };   // for index_select / index_add / cross-entropy targets

static scvrl_tensor *i32_const(scvrl_ctx *ctx, int n) {
    scvrl_tensor *t = scvrl_new_1d(ctx, SCVRL_DT_I32, n);
    memcpy(t->data, g_idx, (size_t)n * sizeof(int32_t));
    return t;
}

static scvrl_tensor *b_add(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_add(c, x[0], x[1]); }
static scvrl_tensor *b_sub(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_sub(c, x[0], x[1]); }
static scvrl_tensor *b_mul(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_mul(c, x[0], x[1]); }
static scvrl_tensor *b_div(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_div(c, x[0], scvrl_affine(c, x[1], 0.5f, 2.0f)); }
static scvrl_tensor *b_scale(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_affine(c, x[0], -1.7f, 0.3f); }
static scvrl_tensor *b_relu(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_relu(c, x[0]); }
static scvrl_tensor *b_gelu(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_gelu(c, x[0]); }
static scvrl_tensor *b_mm00(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_matmul(c, x[0], x[1], 0, 0); }
static scvrl_tensor *b_mm11(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_matmul(c, x[0], x[1], 1, 1); }
static scvrl_tensor *b_mm_bcast(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_matmul(c, x[0], x[1], 0, 1); }
static scvrl_tensor *b_mm_bcast_ta(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_matmul(c, x[0], x[1], 1, 0); }
static scvrl_tensor *b_linear(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_linear(c, x[0], x[1], x[2]); }
static scvrl_tensor *b_conv(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 2, 2, 1 }, p[3] = { 0, 1, 1 };
    return scvrl_conv3d(c, x[0], x[1], x[2], s, p, 1, SCVRL_LAYOUT_NCDHW);
}
static scvrl_tensor *b_conv_g2(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 1, 2, 1 }, p[3] = { 1, 0, 1 };
    return scvrl_conv3d(c, x[0], x[1], x[2], s, p, 2, SCVRL_LAYOUT_NCDHW);
}
static scvrl_tensor *b_conv_dw(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 1, 2, 2 }, p[3] = { 1, 1, 1 };
    return scvrl_conv3d(c, x[0], x[1], NULL, s, p, 4, SCVRL_LAYOUT_NDHWC);
}
// depthwise on a channels-last view (channels 4..7 of 12, as MViT's pooling of q/k/v in place)
static scvrl_tensor *b_conv_dw_view(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 1, 2, 2 }, p[3] = { 1, 1, 1 };
    scvrl_tensor *v = scvrl_slice(c, x[0], 4, 4, 4);
    return scvrl_conv3d(c, v, x[1], NULL, s, p, 4, SCVRL_LAYOUT_NDHWC);
}
// channels-last convolution of NCDHW data through a permuted view (MViT's stem)
static scvrl_tensor *b_conv_last_view(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 2, 1, 2 }, p[3] = { 0, 1, 0 }, perm[5] = { 0, 2, 3, 4, 1 };
    return scvrl_conv3d(c, scvrl_permute(c, x[0], perm), x[1], x[2], s, p, 1, SCVRL_LAYOUT_NDHWC);
}
static scvrl_tensor *b_conv_last(scvrl_ctx *c, scvrl_tensor **x) {
    int s[3] = { 2, 1, 2 }, p[3] = { 0, 1, 0 };
    return scvrl_conv3d(c, x[0], x[1], x[2], s, p, 1, SCVRL_LAYOUT_NDHWC);
}
static scvrl_tensor *b_pool(scvrl_ctx *c, scvrl_tensor **x) {
    int k[3] = { 1, 3, 3 }, s[3] = { 1, 2, 2 }, p[3] = { 0, 1, 1 };
    return scvrl_maxpool3d(c, x[0], k, s, p, SCVRL_LAYOUT_NDHWC);
}
static scvrl_tensor *b_pool_cf(scvrl_ctx *c, scvrl_tensor **x) {
    int k[3] = { 2, 3, 2 }, s[3] = { 2, 2, 1 }, p[3] = { 1, 1, 0 };
    return scvrl_maxpool3d(c, x[0], k, s, p, SCVRL_LAYOUT_NCDHW);
}
// MViT's skip pool: the grid tokens of [N, 1+T*H*W, C] pooled in place (a strided view, no copy),
// here also 3 of 5 channels, so that the input's strides differ from its gradient's
static scvrl_tensor *b_pool_view(scvrl_ctx *c, scvrl_tensor **x) {
    int k[3] = { 1, 3, 3 }, s[3] = { 1, 2, 2 }, p[3] = { 0, 1, 1 };
    int64_t g5[5] = { x[0]->ne[0], 2, 5, 4, 3 };
    scvrl_tensor *v = scvrl_slice(c, scvrl_slice(c, x[0], 1, 1, 40), 2, 1, 3);
    return scvrl_maxpool3d(c, scvrl_reshape(c, v, 5, g5), k, s, p, SCVRL_LAYOUT_NDHWC);
}
static scvrl_tensor *b_ln(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_layer_norm(c, x[0], x[1], x[2], 1e-6f); }
// x + LN(x): the layer norm's input gradient joins the residual's (LAYER_NORM_BACK + ADD, fused)
static scvrl_tensor *b_ln_res(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_add(c, x[0], scvrl_layer_norm(c, x[0], x[1], x[2], 1e-6f)); }
static scvrl_tensor *b_softmax(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_softmax(c, x[0]); }
static scvrl_tensor *b_logsm(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_log_softmax(c, x[0]); }
static scvrl_tensor *b_attn(scvrl_ctx *c, scvrl_tensor **x) {
    // q from a permuted (strided) view, as MViT's qkv split gives
    int perm[4] = { 0, 2, 1, 3 };
    return scvrl_attention(c, scvrl_permute(c, x[0], perm), x[1], x[2], 0.6f);
}
static scvrl_tensor *b_ce(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_cross_entropy(c, x[0], i32_const(c, 4)); }
static scvrl_tensor *b_l2n(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_l2_normalize(c, x[0], 1e-12f); }
static scvrl_tensor *b_sum_to(scvrl_ctx *c, scvrl_tensor **x) { int64_t ne[3] = { 3, 1, 4 }; return scvrl_sum_to(c, x[0], 3, ne); }
static scvrl_tensor *b_sum_mid(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_mean(c, x[0], 1, 0); }
static scvrl_tensor *b_concat(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_concat(c, x[0], x[1], 1); }
static scvrl_tensor *b_slice_back(scvrl_ctx *c, scvrl_tensor **x) {
    int64_t ne[3] = { 2, 7, 3 };
    scvrl_tensor *t = scvrl__op(c, SCVRL_OP_SLICE_BACK, 3, ne, x[0], NULL, NULL);
    t->ip[0] = 1; t->ip[1] = 2; t->ip[2] = 4;
    return t;
}
static scvrl_tensor *b_isel(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_index_select(c, x[0], 1, i32_const(c, 5)); }
static scvrl_tensor *b_iadd(scvrl_ctx *c, scvrl_tensor **x) { return scvrl__index_add(c, x[0], 1, i32_const(c, 5), 4); }
static scvrl_tensor *b_cont(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_cont(c, scvrl_transpose(c, x[0], 0, 2)); }
static scvrl_tensor *b_reshape(scvrl_ctx *c, scvrl_tensor **x) {
    return scvrl_mul(c, scvrl_reshape_2d(c, x[0], 6, 4), scvrl_reshape_2d(c, x[0], 6, 4));
}
static scvrl_tensor *b_permute(scvrl_ctx *c, scvrl_tensor **x) {
    int perm[3] = { 2, 0, 1 };
    return scvrl_gelu(c, scvrl_permute(c, x[0], perm));
}
static scvrl_tensor *b_slice(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_gelu(c, scvrl_slice(c, x[0], 1, 1, 2)); }
// Gradients of adjacent slices merge into one SLICE_BACK of a concat (scvrl__grad_sum): slices
// [3,5) then [1,3) (out of order: a partial merge) then [5,7) (covering the rest), one used twice.
static scvrl_tensor *b_slices_merge(scvrl_ctx *c, scvrl_tensor **x) {
    scvrl_tensor *a = scvrl_slice(c, x[0], 1, 3, 2), *b = scvrl_slice(c, x[0], 1, 1, 2), *d = scvrl_slice(c, x[0], 1, 5, 2);
    scvrl_tensor *y = scvrl_add(c, scvrl_mul(c, scvrl_gelu(c, a), b), scvrl_affine(c, d, 1.5f, 0.0f));
    return scvrl_mul(c, y, d);
}
static scvrl_tensor *b_expand(scvrl_ctx *c, scvrl_tensor **x) {
    int64_t ne[3] = { 3, 2, 4 };
    return scvrl_mul(c, scvrl_expand(c, x[0], 3, ne), scvrl_expand(c, x[0], 3, ne));
}
static scvrl_tensor *b_dropout(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_dropout(c, x[0], 0.3f, 77); }
static scvrl_tensor *b_droppath(scvrl_ctx *c, scvrl_tensor **x) { return scvrl_drop_path(c, x[0], 0.4f, 78); }

#define S1(a) 1, { a }
static const gcase cases[] = {
    { "add_bcast", SCVRL_OP_ADD, 2, { 3, 2 }, { { 2, 3, 4 }, { 3, 1 } }, 3, b_add, 2e-3 },
    { "sub_bcast", SCVRL_OP_SUB, 2, { 2, 3 }, { { 3, 4 }, { 2, 1, 4 } }, 3, b_sub, 2e-3 },
    { "mul_bcast", SCVRL_OP_MUL, 2, { 3, 1 }, { { 2, 3, 4 }, { 4 } }, 3, b_mul, 2e-3 },
    { "div_bcast", SCVRL_OP_DIV, 2, { 2, 2 }, { { 3, 4 }, { 1, 4 } }, 3, b_div, 2e-3 },
    { "scale", SCVRL_OP_SCALE, 1, { 2 }, { { 3, 5 } }, 1, b_scale, 2e-3 },
    { "relu", SCVRL_OP_RELU, 1, { 2 }, { { 4, 5 } }, 1, b_relu, 2e-3 },
    { "gelu", SCVRL_OP_GELU, 1, { 2 }, { { 4, 5 } }, 1, b_gelu, 2e-3 },
    { "matmul_nn_batched", SCVRL_OP_MATMUL, 2, { 3, 3 }, { { 2, 3, 5 }, { 2, 5, 4 } }, 3, b_mm00, 2e-3 },
    { "matmul_tt_batched", SCVRL_OP_MATMUL, 2, { 3, 3 }, { { 2, 5, 3 }, { 2, 4, 5 } }, 3, b_mm11, 2e-3 },
    { "matmul_nt_shared_b", SCVRL_OP_MATMUL, 2, { 3, 2 }, { { 2, 3, 5 }, { 4, 5 } }, 3, b_mm_bcast, 2e-3 },
    { "matmul_tn_shared_b", SCVRL_OP_MATMUL, 2, { 3, 2 }, { { 2, 5, 3 }, { 5, 4 } }, 3, b_mm_bcast_ta, 2e-3 },
    { "linear", SCVRL_OP_LINEAR, 3, { 3, 2, 1 }, { { 2, 3, 5 }, { 4, 5 }, { 4 } }, 7, b_linear, 2e-3 },
    { "conv3d_ncdhw", SCVRL_OP_CONV3D, 3, { 5, 5, 1 }, { { 2, 3, 5, 5, 4 }, { 4, 3, 2, 3, 3 }, { 4 } }, 7, b_conv, 2e-3 },
    { "conv3d_groups2", SCVRL_OP_CONV3D, 3, { 5, 5, 1 }, { { 1, 4, 3, 5, 3 }, { 6, 2, 3, 3, 2 }, { 6 } }, 7, b_conv_g2, 2e-3 },
    { "conv3d_depthwise_ndhwc", SCVRL_OP_CONV3D, 2, { 5, 5 }, { { 2, 3, 5, 4, 4 }, { 4, 1, 3, 3, 3 } }, 3, b_conv_dw, 2e-3 },
    { "conv3d_depthwise_view", SCVRL_OP_CONV3D, 2, { 5, 5 }, { { 2, 3, 5, 4, 12 }, { 4, 1, 3, 3, 3 } }, 3, b_conv_dw_view, 2e-3 },
    { "conv3d_ndhwc_view", SCVRL_OP_CONV3D, 3, { 5, 5, 1 }, { { 1, 2, 4, 3, 5 }, { 3, 2, 2, 3, 1 }, { 3 } }, 7, b_conv_last_view, 2e-3 },
    { "conv3d_ndhwc", SCVRL_OP_CONV3D, 3, { 5, 5, 1 }, { { 1, 4, 3, 5, 2 }, { 3, 2, 2, 3, 1 }, { 3 } }, 7, b_conv_last, 2e-3 },
    { "maxpool3d_ndhwc", SCVRL_OP_MAXPOOL3D, 1, { 5 }, { { 2, 2, 5, 4, 3 } }, 1, b_pool, 2e-3 },
    { "maxpool3d_ncdhw", SCVRL_OP_MAXPOOL3D, 1, { 5 }, { { 1, 2, 3, 5, 4 } }, 1, b_pool_cf, 2e-3 },
    { "maxpool3d_view", SCVRL_OP_MAXPOOL3D, 1, { 3 }, { { 2, 41, 6 } }, 1, b_pool_view, 2e-3 },
    { "layer_norm", SCVRL_OP_LAYER_NORM, 3, { 3, 1, 1 }, { { 2, 3, 6 }, { 6 }, { 6 } }, 7, b_ln, 2e-3 },
    { "layer_norm + residual", SCVRL_OP_LAYER_NORM, 3, { 3, 1, 1 }, { { 2, 3, 8 }, { 8 }, { 8 } }, 7, b_ln_res, 2e-3 },
    { "softmax", SCVRL_OP_SOFTMAX, 1, { 2 }, { { 3, 6 } }, 1, b_softmax, 2e-3 },
    { "log_softmax", SCVRL_OP_LOG_SOFTMAX, 1, { 2 }, { { 3, 6 } }, 1, b_logsm, 2e-3 },
    { "attention", SCVRL_OP_ATTENTION, 3, { 4, 4, 4 }, { { 2, 5, 2, 3 }, { 2, 2, 4, 3 }, { 2, 2, 4, 3 } }, 7, b_attn, 2e-3 },
    { "cross_entropy", SCVRL_OP_CROSS_ENTROPY, 1, { 2 }, { { 4, 5 } }, 1, b_ce, 2e-3 },
    { "l2_normalize", SCVRL_OP_L2_NORMALIZE, 1, { 2 }, { { 3, 5 } }, 1, b_l2n, 2e-3 },
    { "sum_to", SCVRL_OP_SUM_TO, 1, { 3 }, { { 3, 5, 4 } }, 1, b_sum_to, 2e-3 },
    { "mean_dim", SCVRL_OP_SUM_TO, 1, { 3 }, { { 3, 5, 4 } }, 1, b_sum_mid, 2e-3 },
    { "concat", SCVRL_OP_CONCAT, 2, { 3, 3 }, { { 2, 3, 4 }, { 2, 2, 4 } }, 3, b_concat, 2e-3 },
    { "slice_back", SCVRL_OP_SLICE_BACK, 1, { 3 }, { { 2, 4, 3 } }, 1, b_slice_back, 2e-3 },
    { "index_select", SCVRL_OP_INDEX_SELECT, 1, { 3 }, { { 2, 4, 3 } }, 1, b_isel, 2e-3 },
    { "index_add", SCVRL_OP_INDEX_ADD, 1, { 3 }, { { 2, 5, 3 } }, 1, b_iadd, 2e-3 },
    { "cont", SCVRL_OP_CONT, 1, { 3 }, { { 2, 3, 4 } }, 1, b_cont, 2e-3 },
    { "reshape", SCVRL_OP_RESHAPE, 1, { 3 }, { { 2, 3, 4 } }, 1, b_reshape, 2e-3 },
    { "permute", SCVRL_OP_PERMUTE, 1, { 3 }, { { 2, 3, 4 } }, 1, b_permute, 2e-3 },
    { "slice", SCVRL_OP_SLICE, 1, { 3 }, { { 2, 4, 3 } }, 1, b_slice, 2e-3 },
    { "slices, merged gradients", SCVRL_OP_SLICE, 1, { 3 }, { { 2, 7, 3 } }, 1, b_slices_merge, 2e-3 },
    { "expand", SCVRL_OP_EXPAND, 1, { 2 }, { { 2, 1 } }, 1, b_expand, 2e-3 },
    { "dropout", SCVRL_OP_DROPOUT, 1, { 2 }, { { 4, 6 } }, 1, b_dropout, 2e-3 },
    { "drop_path", SCVRL_OP_DROP_PATH, 1, { 3 }, { { 5, 2, 3 } }, 1, b_droppath, 2e-3 },
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

// Random input values kept away from ReLU kinks and from max-pool ties.
static void fill_input(float *x, int64_t n, uint64_t stream) {
    for (int64_t i = 0; i < n; i++) {
        float u = scvrl_rng_uniform(3, stream, (uint64_t)i) * 2.0f - 1.0f;
        x[i] = u + (u >= 0 ? 0.05f : -0.05f) + 0.001f * (float)(i % 97);
    }
}

static double loss_value(scvrl_graph *g, scvrl_tensor *loss) {
    char err[256];
    if (scvrl_graph_compute(g, NULL, err, sizeof err)) { printf("compute failed: %s\n", err); return NAN; }
    return scvrl_f32(loss)[0];
}

static void run_case(const gcase *c) {
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    scvrl_tensor *in[MAXIN];
    float *gbuf[MAXIN];
    for (int i = 0; i < c->nin; i++) {
        in[i] = scvrl_new_data(ctx, SCVRL_DT_F32, c->nd[i], c->ne[i]);
        scvrl_set_name(in[i], "in%d", i);
        fill_input(scvrl_f32(in[i]), scvrl_nelements(in[i]), 100 + (uint64_t)i + 7 * (uint64_t)c->op);
        gbuf[i] = (float *)calloc((size_t)scvrl_nelements(in[i]), sizeof(float));
        if (c->grad_mask & (1 << i)) { scvrl_mark_param(in[i]); in[i]->grad_data = gbuf[i]; }
    }
    scvrl_tensor *out = c->build(ctx, in);
    scvrl_tensor *r = scvrl_new_data(ctx, SCVRL_DT_F32, out->ndim, out->ne);
    fill_input(scvrl_f32(r), scvrl_nelements(r), 999);
    scvrl_tensor *loss = scvrl_sum_all(ctx, scvrl_mul(ctx, out, r));
    scvrl_graph *g = scvrl_graph_new();
    g->seed = 1234;
    scvrl_graph_expand(g, loss);
    scvrl_graph_backward(ctx, g, loss);
    loss_value(g, loss);
    double worst = 0.0;
    int ok = 1;
    float *an_all[MAXIN];      // analytic gradients, saved before finite differences re-run the graph
    for (int i = 0; i < c->nin; i++) {
        an_all[i] = (float *)malloc((size_t)scvrl_nelements(in[i]) * sizeof(float));
        memcpy(an_all[i], gbuf[i], (size_t)scvrl_nelements(in[i]) * sizeof(float));
    }
    for (int i = 0; i < c->nin && ok; i++) {
        if (!(c->grad_mask & (1 << i))) continue;
        int64_t n = scvrl_nelements(in[i]);
        float *x = scvrl_f32(in[i]);
        double *an = (double *)malloc((size_t)n * sizeof(double)), *fd = (double *)malloc((size_t)n * sizeof(double));
        for (int64_t j = 0; j < n; j++) an[j] = an_all[i][j];
        for (int64_t j = 0; j < n; j++) {
            float x0 = x[j], h = c->op == SCVRL_OP_MAXPOOL3D ? 1e-3f : 1e-2f;
            x[j] = x0 + h; double lp = loss_value(g, loss);
            x[j] = x0 - h; double lm = loss_value(g, loss);
            x[j] = x0;
            fd[j] = (lp - lm) / (2.0 * (double)h);
        }
        double num = 0, den = 0;
        for (int64_t j = 0; j < n; j++) { num += (an[j] - fd[j]) * (an[j] - fd[j]); den += fd[j] * fd[j]; }
        double rel = sqrt(num / (den > 0 ? den : 1e-30));
        if (!(rel <= c->tol)) { ok = 0; worst = rel; printf("  input %d: rel err %.3g (tol %.3g)\n", i, rel, c->tol); }
        else if (rel > worst) worst = rel;
        free(an); free(fd);
    }
    char name[128];
    snprintf(name, sizeof name, "grad %s (%s): rel err %.2e", c->name, scvrl_op_name(c->op), worst);
    test_check(ok, name, "finite differences disagree");
    for (int i = 0; i < c->nin; i++) { free(gbuf[i]); free(an_all[i]); }
    scvrl_graph_free(g);
    scvrl_ctx_free(ctx);
}

// Ops with a backward rule of their own must have a case; LEAF and fused *_BACK ops are exempt
// (the latter are exercised by the cases of their forward ops).
#define RULE_IS_NONE(name, n, b) [SCVRL_OP_##name] = (sizeof(#b) == 5 && !strcmp(#b, "NONE")),
static void check_coverage(void) {
    int none[SCVRL_OP_COUNT] = { SCVRL_OPS(RULE_IS_NONE) };
    for (int op = 0; op < SCVRL_OP_COUNT; op++) {
        if (op == SCVRL_OP_LEAF || none[op]) continue;
        int found = 0;
        for (int i = 0; i < NCASES; i++) if (cases[i].op == (scvrl_op)op) found = 1;
        char name[96];
        snprintf(name, sizeof name, "coverage %s", scvrl_op_name((scvrl_op)op));
        test_check(found, name, "differentiable op without a gradient test");
    }
}

int main(void) {
    check_coverage();
    for (int i = 0; i < NCASES; i++) run_case(&cases[i]);
    return test_done();
}
