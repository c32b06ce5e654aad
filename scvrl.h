// scvrl.h - tensors, autograd and a CPU backend for video representation learning.
// stb-style single header: in exactly one C file,
//     #define SCVRL_IMPLEMENTATION
//     #include "scvrl.h"
// MIT licensed (see LICENSE).
//
// Table of contents
//   1. Configuration and macros
//   2. Types: dtypes, tensors, the op table
//   3. Random numbers (counter-based)
//   4. Context (tensor arena) and tensor creation
//   5. Op builders (the public graph API)
//   6. Graphs: build, backward, compute
//   7. Parameters and optimizers (flat buffers: AdamW, schedule, clipping, EMA)
//   8. safetensors I/O
//   9. Backends
//  -- implementation (#ifdef SCVRL_IMPLEMENTATION) --
//  10. Helpers: errors, arena, shapes, views
//  11. Random numbers
//  12. Op builders
//  13. CPU kernels: GEMM
//  14. CPU kernels: elementwise, reductions, shape ops
//  15. CPU kernels: conv3d and pooling
//  16. CPU kernels: normalisation, softmax, attention, losses
//  17. Backward rules
//  18. Graph build, backward, memory plan, compute
//  19. Parameters and optimizers
//  20. safetensors
//
// Conventions: shapes in PyTorch order ([N, C, T, H, W]; tokens [N, L, D]), row-major,
// strides in elements, int64_t sizes. Programmer errors (wrong shapes) abort with file and
// line; environment errors (I/O, bad files, out of memory) return -1 and a message.

#ifndef SCVRL_H
#define SCVRL_H

// ============================================================================
// 1. Configuration and macros
// ============================================================================
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef SCVRL_MALLOC
#define SCVRL_MALLOC(n) malloc(n)
#define SCVRL_REALLOC(p, n) realloc(p, n)
#define SCVRL_FREE(p) free(p)
#endif

// Programmer errors: print where and abort. Never used for bad input files.
#define SCVRL_ASSERT(cond, ...) \
    do { if (!(cond)) scvrl__abort(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

#define SCVRL_MAX_DIMS 6
#define SCVRL_MAX_SRC 5
#define SCVRL_MAX_IP 16

#ifdef __cplusplus
extern "C" {
#endif

void scvrl__abort(const char *file, int line, const char *cond, const char *fmt, ...);

// ============================================================================
// 2. Types: dtypes, tensors, the op table
// ============================================================================
typedef enum {
    SCVRL_DT_F32, SCVRL_DT_F16, SCVRL_DT_BF16, SCVRL_DT_I32, SCVRL_DT_I64, SCVRL_DT_F64,
    SCVRL_DT_COUNT
} scvrl_dtype;

size_t      scvrl_dtype_size(scvrl_dtype t);        /* bytes per element; 0 if t is not a dtype */
const char *scvrl_dtype_name(scvrl_dtype t);        /* "F32", "BF16", ...; "?" if t is not a dtype */
scvrl_dtype scvrl_dtype_parse(const char *name);    /* "F32" -> SCVRL_DT_F32; SCVRL_DT_COUNT if unknown */


// The op table. X(NAME, arity, backward-rule): one row per op; the enum, the names, the arity,
// the CPU kernels (scvrl__cpu_NAME) and the backward rules (scvrl__bwd_RULE) are generated from it.
// Rule NONE: not differentiable (fused *_BACK ops, integer ops). Views cost nothing at compute.
#define SCVRL_OPS(X)                                                                            \
    X(LEAF, 0, NONE)              /* input, parameter or constant                            */ \
    X(ADD, 2, ADD)                /* a + b, broadcasting                                      */ \
    X(SUB, 2, SUB)                /* a - b, broadcasting                                      */ \
    X(MUL, 2, MUL)                /* a * b, broadcasting                                      */ \
    X(DIV, 2, DIV)                /* a / b, broadcasting                                      */ \
    X(SCALE, 1, SCALE)            /* x * s + c            fp: s, c                            */ \
    X(RELU, 1, RELU)              /* max(x, 0)                                                */ \
    X(RELU_BACK, 2, NONE)         /* (x, dy) -> dy * (x > 0)                                  */ \
    X(GELU, 1, GELU)              /* exact erf GELU                                           */ \
    X(GELU_BACK, 2, NONE)         /* (x, dy) -> dy * gelu'(x)                                 */ \
    X(MATMUL, 2, MATMUL)          /* batched op(a) @ op(b)   ip: transA, transB               */ \
    X(LINEAR, 3, LINEAR)          /* x @ W^T + b (b may be NULL), W: [out, in]                */ \
    X(CONV3D, 3, CONV3D)          /* ip: stride3 pad3 groups layout; b may be NULL            */ \
    X(CONV3D_BACK_X, 2, NONE)     /* (dy, w) -> dx                                            */ \
    X(CONV3D_BACK_W, 2, NONE)     /* (dy, x) -> dw                                            */ \
    X(MAXPOOL3D, 1, MAXPOOL3D)    /* ip: kernel3 stride3 pad3 layout; padding never wins      */ \
    X(MAXPOOL3D_BACK, 2, NONE)    /* (dy, x) -> dx                                            */ \
    X(LAYER_NORM, 3, LAYER_NORM)  /* over the last dim, biased variance; fp: eps             */ \
    X(LAYER_NORM_BACK, 3, NONE)   /* (dy, x, w) -> dx                                         */ \
    X(LAYER_NORM_BACK_WB, 2, NONE)/* (dy, x) -> [2, D]: dw, db                                */ \
    X(SOFTMAX, 1, SOFTMAX)        /* over the last dim                                        */ \
    X(SOFTMAX_BACK, 2, NONE)      /* (y, dy) -> dx                                            */ \
    X(LOG_SOFTMAX, 1, LOG_SOFTMAX)/* over the last dim                                        */ \
    X(LOG_SOFTMAX_BACK, 2, NONE)  /* (y, dy) -> dx                                            */ \
    X(ATTENTION, 3, ATTENTION)    /* q,k,v [B,h,N,d] -> [B,Nq,h,d]; fp: scale                 */ \
    X(ATTENTION_BACK, 5, NONE)    /* (q, k, v, dout, out) -> flat [dq | dk | dv]              */ \
    X(CROSS_ENTROPY, 2, CROSS_ENTROPY) /* (logits [N,C], target i32 [N]) -> loss [N]          */ \
    X(CROSS_ENTROPY_BACK, 3, NONE)/* (logits, target, dloss) -> dlogits                       */ \
    X(L2_NORMALIZE, 1, L2_NORMALIZE) /* x / max(||x||, eps) over the last dim; fp: eps        */ \
    X(L2_NORMALIZE_BACK, 2, NONE) /* (x, dy) -> dx                                            */ \
    X(SUM_TO, 1, SUM_TO)          /* sum down to a broadcast-compatible shape                 */ \
    X(CONCAT, 2, CONCAT)          /* along ip[0]                                              */ \
    X(SLICE_BACK, 1, SLICE_BACK)  /* zeros of the full shape with x at [start, start+len)     */ \
    X(INDEX_SELECT, 2, INDEX_SELECT) /* gather along ip[0] with i32 indices                   */ \
    X(INDEX_ADD, 2, INDEX_ADD)    /* scatter-add: the backward of INDEX_SELECT                */ \
    X(CONT, 1, CONT)              /* contiguous copy                                          */ \
    X(RESHAPE, 1, RESHAPE)        /* view                                                     */ \
    X(PERMUTE, 1, PERMUTE)        /* view                                                     */ \
    X(SLICE, 1, SLICE)            /* view: ip: dim, start, len                                */ \
    X(EXPAND, 1, EXPAND)          /* view with zero strides                                   */ \
    X(DROPOUT, 1, DROPOUT)        /* ip: stream; fp: p; seed from the graph                   */ \
    X(DROP_PATH, 1, DROP_PATH)    /* per row of dim 0 (row mode); ip: stream; fp: p           */ \
    X(GRAD_ACC, 1, NONE)          /* out (a parameter's gradient buffer) += x                 */

#define SCVRL__OP_ENUM(name, n, b) SCVRL_OP_##name,
typedef enum { SCVRL_OPS(SCVRL__OP_ENUM) SCVRL_OP_COUNT } scvrl_op;
#undef SCVRL__OP_ENUM

enum {
    SCVRL_F_PARAM = 1,      // a parameter: its gradient goes to the flat gradient buffer
    SCVRL_F_GRAD = 2,       // requires grad (set on parameters and everything computed from them)
    SCVRL_F_INPUT = 4,      // filled by the caller before compute
    SCVRL_F_OUTPUT = 8,     // kept after compute (never reused by the memory plan)
    SCVRL_F_EXTERNAL = 16,  // data owned outside the graph (parameters, inputs, constants)
};

typedef enum { SCVRL_LAYOUT_NCDHW = 0, SCVRL_LAYOUT_NDHWC = 1 } scvrl_layout;

typedef struct scvrl_tensor scvrl_tensor;
struct scvrl_tensor {
    scvrl_op op;
    scvrl_dtype type;               // F32 for everything but indices/targets (I32)
    int ndim;
    int64_t ne[SCVRL_MAX_DIMS];     // shape
    int64_t st[SCVRL_MAX_DIMS];     // strides, in elements
    void *data;                     // set for leaves; set by the memory plan otherwise
    scvrl_tensor *src[SCVRL_MAX_SRC];
    scvrl_tensor *view_src;         // the tensor a view looks into (views only)
    int64_t view_offs;              // element offset into view_src's data
    int64_t ip[SCVRL_MAX_IP];       // integer op parameters
    float fp[4];                    // float op parameters
    uint32_t flags;
    scvrl_tensor *grad;             // gradient node (during backward construction)
    void *grad_data;                // parameters: their slice of the flat gradient buffer
    int id;                         // position in its graph
    uint32_t visit;                 // graph traversal mark
    char name[64];
};

const char *scvrl_op_name(scvrl_op op);
int scvrl_op_arity(scvrl_op op);

int64_t scvrl_nelements(const scvrl_tensor *t);
int scvrl_is_contiguous(const scvrl_tensor *t);
static inline float *scvrl_f32(const scvrl_tensor *t) { return (float *)t->data; }

// ============================================================================
// 3. Random numbers (counter-based: a value is a pure function of (seed, stream, index))
// ============================================================================
uint64_t scvrl_mix64(uint64_t z);                                       // splitmix64 finaliser
uint64_t scvrl_rng_u64(uint64_t seed, uint64_t stream, uint64_t i);     // mix(mix(seed ^ mix(stream)) + i)
float scvrl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i);    // top 24 bits: [0, 1)
float scvrl_rng_normal(uint64_t seed, uint64_t stream, uint64_t i);     // Box-Muller on 2i, 2i+1
uint64_t scvrl_fnv1a64(const char *s);                                  // name -> stream
// Fill x[i] = lo + (hi - lo) * uniform(seed, stream, i).
void scvrl_fill_uniform(float *x, int64_t n, uint64_t seed, uint64_t stream, float lo, float hi);

// ============================================================================
// 4. Context (tensor arena) and tensor creation
// ============================================================================
// A context owns tensor structs (and optionally small leaf data) in an arena; scvrl_ctx_reset
// drops them all at once. Model parameters live in a long-lived context; graphs in a per-step one.
typedef struct scvrl_ctx scvrl_ctx;
scvrl_ctx *scvrl_ctx_new(size_t data_bytes);      // data_bytes: room for leaf data owned by the ctx
void scvrl_ctx_free(scvrl_ctx *ctx);
void scvrl_ctx_reset(scvrl_ctx *ctx);
int scvrl_ctx_count(const scvrl_ctx *ctx);       // tensors made so far

// A leaf with no data yet (an input: set ->data before compute, or use scvrl_new_input).
scvrl_tensor *scvrl_new(scvrl_ctx *ctx, scvrl_dtype type, int ndim, const int64_t *ne);
// A leaf whose data is allocated in the context (zeroed).
scvrl_tensor *scvrl_new_data(scvrl_ctx *ctx, scvrl_dtype type, int ndim, const int64_t *ne);
scvrl_tensor *scvrl_new_1d(scvrl_ctx *ctx, scvrl_dtype type, int64_t n0);
scvrl_tensor *scvrl_new_2d(scvrl_ctx *ctx, scvrl_dtype type, int64_t n0, int64_t n1);
scvrl_tensor *scvrl_scalar(scvrl_ctx *ctx, float v);        // a [1] constant
scvrl_tensor *scvrl_set_name(scvrl_tensor *t, const char *fmt, ...);
void scvrl_mark_input(scvrl_tensor *t);
void scvrl_mark_output(scvrl_tensor *t);
void scvrl_mark_param(scvrl_tensor *t);      // requires grad; gradient goes to t's grad buffer

// ============================================================================
// 5. Op builders. Each returns a new node; nothing is computed until scvrl_graph_compute.
// ============================================================================
scvrl_tensor *scvrl_add(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b);
scvrl_tensor *scvrl_sub(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b);
scvrl_tensor *scvrl_mul(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b);
scvrl_tensor *scvrl_div(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b);
scvrl_tensor *scvrl_scale(scvrl_ctx *ctx, scvrl_tensor *x, float s);           // x * s
scvrl_tensor *scvrl_affine(scvrl_ctx *ctx, scvrl_tensor *x, float s, float c); // x * s + c
scvrl_tensor *scvrl_relu(scvrl_ctx *ctx, scvrl_tensor *x);
scvrl_tensor *scvrl_gelu(scvrl_ctx *ctx, scvrl_tensor *x);
// a: [..., M, K] (or [..., K, M] if transA), b: [..., K, N] (or [..., N, K] if transB);
// b may have fewer batch dims (broadcast). -> [..., M, N]
scvrl_tensor *scvrl_matmul(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b, int transA, int transB);
// x: [..., in], w: [out, in], b: [out] or NULL -> [..., out]
scvrl_tensor *scvrl_linear(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b);
// x: [N, Cin, T, H, W] (NCDHW) or [N, T, H, W, Cin] (NDHWC); w: [Cout, Cin/groups, kt, kh, kw];
// b: [Cout] or NULL. Output in the same layout.
scvrl_tensor *scvrl_conv3d(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b,
                           const int stride[3], const int pad[3], int groups, scvrl_layout layout);
scvrl_tensor *scvrl_maxpool3d(scvrl_ctx *ctx, scvrl_tensor *x, const int kernel[3], const int stride[3],
                              const int pad[3], scvrl_layout layout);
// Over the last dim: (x - mean) / sqrt(var + eps) * w + b; w, b: [D] (may be NULL).
scvrl_tensor *scvrl_layer_norm(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b, float eps);
scvrl_tensor *scvrl_softmax(scvrl_ctx *ctx, scvrl_tensor *x);
scvrl_tensor *scvrl_log_softmax(scvrl_ctx *ctx, scvrl_tensor *x);
// q: [B, h, Nq, d], k, v: [B, h, Nk, d] (last dim contiguous; other strides free)
// -> softmax(scale q k^T) v as [B, Nq, h, d] (reshape to [B, Nq, h*d] for free).
scvrl_tensor *scvrl_attention(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *k, scvrl_tensor *v, float scale);
// logits: [N, C], target: i32 [N] -> per-row loss [N] = logsumexp(logits) - logits[target]
scvrl_tensor *scvrl_cross_entropy(scvrl_ctx *ctx, scvrl_tensor *logits, scvrl_tensor *target);
scvrl_tensor *scvrl_l2_normalize(scvrl_ctx *ctx, scvrl_tensor *x, float eps);
// Sum down to shape ne (ndim <= x's; right-aligned like broadcasting).
scvrl_tensor *scvrl_sum_to(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne);
scvrl_tensor *scvrl_sum(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int keepdim);
scvrl_tensor *scvrl_mean(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int keepdim);
scvrl_tensor *scvrl_sum_all(scvrl_ctx *ctx, scvrl_tensor *x);      // -> [1]
scvrl_tensor *scvrl_mean_all(scvrl_ctx *ctx, scvrl_tensor *x);     // -> [1]
scvrl_tensor *scvrl_concat(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b, int dim);
scvrl_tensor *scvrl_slice(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int64_t start, int64_t len);
// idx: i32 [n] -> x with dim `dim` replaced by x[..., idx[j], ...]
scvrl_tensor *scvrl_index_select(scvrl_ctx *ctx, scvrl_tensor *x, int dim, scvrl_tensor *idx);
scvrl_tensor *scvrl_cont(scvrl_ctx *ctx, scvrl_tensor *x);
scvrl_tensor *scvrl_reshape(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne);
scvrl_tensor *scvrl_reshape_2d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1);
scvrl_tensor *scvrl_reshape_3d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1, int64_t n2);
scvrl_tensor *scvrl_reshape_4d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1, int64_t n2, int64_t n3);
scvrl_tensor *scvrl_permute(scvrl_ctx *ctx, scvrl_tensor *x, const int *perm);   // out dim i = x dim perm[i]
scvrl_tensor *scvrl_transpose(scvrl_ctx *ctx, scvrl_tensor *x, int d0, int d1);
scvrl_tensor *scvrl_expand(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne);
// Dropout: zero with probability p, scale kept values by 1/(1-p). The mask is
// uniform(graph seed, stream, flat index) < p, so backward reuses it exactly.
scvrl_tensor *scvrl_dropout(scvrl_ctx *ctx, scvrl_tensor *x, float p, uint64_t stream);
// Drop-path (stochastic depth, row mode): drop whole samples along dim 0.
scvrl_tensor *scvrl_drop_path(scvrl_ctx *ctx, scvrl_tensor *x, float p, uint64_t stream);

// ============================================================================
// 6. Graphs: build, backward, compute
// ============================================================================
typedef struct scvrl_graph {
    int n, cap;
    scvrl_tensor **nodes;       // topological order
    uint64_t seed;              // dropout / drop-path seed for this compute (set per step)
    void *plan;                 // memory plan (private)
} scvrl_graph;

scvrl_graph *scvrl_graph_new(void);
void scvrl_graph_free(scvrl_graph *g);
void scvrl_graph_expand(scvrl_graph *g, scvrl_tensor *t);     // add t and everything it needs
// Append the gradient graph of the scalar `loss` (shape [1]) to g. Gradients of parameters
// are added into their gradient buffers (so call scvrl_params_zero_grad between steps).
void scvrl_graph_backward(scvrl_ctx *ctx, scvrl_graph *g, scvrl_tensor *loss);
typedef struct scvrl_backend scvrl_backend;
// Plan memory (once per graph) and run every node on the backend. 0, or -1 with a message.
int scvrl_graph_compute(scvrl_graph *g, scvrl_backend *be, char *err, size_t errlen);
size_t scvrl_graph_activation_bytes(const scvrl_graph *g);   // size of the planned buffer
// For backends: plan the graph (if its shape changed) and return each node's byte offset in one
// activation buffer (-1: no memory of its own: leaves, views, external outputs) and the size.
const int64_t *scvrl_graph_plan(scvrl_graph *g, size_t *bytes);
// The same layout with each node's bytes per element given (elem[i]; 0: its dtype's), for a backend
// that stores some nodes narrower (the CUDA backend's bf16 activations): offsets into offs (g->n
// entries, -1 where scvrl_graph_plan has -1), returns the buffer size. Computed on every call.
size_t scvrl_graph_plan_sized(scvrl_graph *g, const uint8_t *elem, int64_t *offs);
// The same with birth[i] (NULL: every node's own step): the step at which node i takes its memory
// (<= i: a backend that lets earlier nodes write into i's memory, the CUDA backend's concat
// placement), or -1: node i takes none (it lives inside another node's memory; offs[i] = -1).
size_t scvrl_graph_plan_placed(scvrl_graph *g, const uint8_t *elem, const int *birth, int64_t *offs);
// For backends, after scvrl_graph_plan: fuse[i] != 0 where node i (a LINEAR, a DROP_PATH or a
// LAYER_NORM_BACK) may run with node i+1 (GELU of the LINEAR, or ADD of node i and a contiguous
// tensor of its shape: a residual, or the residual's gradient) as one kernel; see scvrl__fusable.
// NULL when fusion is off (SCVRL_NO_FUSE=1 in the environment, for every backend).
const uint8_t *scvrl_graph_fusable(const scvrl_graph *g);
// For backends: the tensor whose memory a view uses, and the element offset into it.
scvrl_tensor *scvrl_view_base(const scvrl_tensor *t, int64_t *offs);
void scvrl_set_threads(int n);
int scvrl_get_threads(void);

// ============================================================================
// 7. Parameters and optimizers
// ============================================================================
// All parameters of a model in one flat buffer each (weights w, grads g, Adam m and v), in the
// order they were added, so the optimizer, EMA, all-reduce and checkpoints are single passes.
enum { SCVRL_P_NO_DECAY = 1 };
typedef struct scvrl_params {
    scvrl_ctx *ctx;
    int n, cap;
    scvrl_tensor **t;           // parameter tensors (data -> w + offs[i])
    scvrl_tensor **gt;          // gradient tensors (data -> g + offs[i])
    int64_t *offs;
    uint32_t *pflags;           // SCVRL_P_NO_DECAY ...
    int64_t n_elems;
    float *w, *g, *m, *v;       // flat buffers (m, v allocated on first AdamW step)
    int64_t step;               // AdamW steps taken
    scvrl_backend *dev;         // non-NULL: w, g, m, v live on this backend's device (see below)
} scvrl_params;

void scvrl_params_init(scvrl_params *P);
void scvrl_params_free(scvrl_params *P);
// Declare a parameter (before finalize). Returns its tensor (data set at finalize).
scvrl_tensor *scvrl_params_add(scvrl_params *P, const char *name, int ndim, const int64_t *ne, uint32_t pflags);
int scvrl_params_finalize(scvrl_params *P, char *err, size_t errlen);   // allocate the flat buffers
scvrl_tensor *scvrl_params_find(const scvrl_params *P, const char *name);
void scvrl_params_zero_grad(scvrl_params *P);

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} scvrl_adamw_cfg;
scvrl_adamw_cfg scvrl_adamw_default(void);    // lr 1e-4, betas (0.9, 0.999), eps 1e-8, wd 0.05
// One AdamW step over the flat buffers (PyTorch's torch.optim.AdamW semantics).
int scvrl_adamw_step(scvrl_params *P, const scvrl_adamw_cfg *cfg, char *err, size_t errlen);
// Global-norm clipping (torch.nn.utils.clip_grad_norm_): returns the norm before clipping.
double scvrl_clip_grad_norm(scvrl_params *P, double max_norm);
// The pieces, for a norm over several sets: sum of squared gradients (double), g *= c.
double scvrl_grad_sumsq(scvrl_params *P);
void scvrl_grad_scale(scvrl_params *P, float c);
// Linear warm-up from lr_start to lr_peak over warmup steps, then cosine to lr_end at total.
double scvrl_lr_schedule(int64_t step, int64_t warmup, int64_t total, double lr_start, double lr_peak, double lr_end);
// Momentum encoder: dst = m * dst + (1 - m) * src over all weights (same layout), in float32.
void scvrl_ema_update(scvrl_params *dst, const scvrl_params *src, float m);
// Copy weights (same layout).
void scvrl_params_copy(scvrl_params *dst, const scvrl_params *src);
// Device-resident parameters (backends that keep memory, e.g. CUDA; a no-op returning 0 on the
// CPU): scvrl_params_to_device uploads w (and m, v) and from then on graphs read the weights and
// accumulate gradients on the device, and zero_grad, AdamW, clipping, EMA and copy run there
// (EMA and copy need both sets on the same backend). The host buffers are then stale until
// scvrl_params_sync downloads w, m and v (before a checkpoint, or a CPU graph); after changing
// host weights (loading, resuming), scvrl_params_push uploads them. scvrl_params_to_host syncs
// and releases the device copy. Freeing the backend does that for every set bound to it.
int scvrl_params_to_device(scvrl_params *P, scvrl_backend *be, char *err, size_t errlen);
int scvrl_params_sync(scvrl_params *P, char *err, size_t errlen);
int scvrl_params_push(scvrl_params *P, char *err, size_t errlen);
int scvrl_params_to_host(scvrl_params *P, char *err, size_t errlen);

// ============================================================================
// 8. safetensors I/O
// ============================================================================
/* ---- safetensors I/O (declarations) -------------------------------------------------
 * Reads and writes the safetensors format that PyTorch and the `safetensors` package use:
 * an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON mapping each tensor
 * name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
 * buffer that follows the header), an optional "__metadata__" object of string -> string,
 * then the data buffer, which the tensors cover exactly (no holes, no overlaps).
 * Every problem in a file is refused with a message naming the file and the problem. */

#define SCVRL_ST_MAX_DIMS     8
#define SCVRL_ST_MAX_NAME     511                   /* longest tensor name, in bytes */
#define SCVRL_ST_MAX_HEADER   100000000ull          /* largest JSON header (as the safetensors package) */

/* One tensor of a file. Its bytes are f->data[begin .. end) (little-endian). name is
 * NUL-terminated UTF-8, owned by the file. numel is 1 for a 0-d scalar, 0 for an empty tensor. */
typedef struct {
    char *name; scvrl_dtype dtype; int ndim; int64_t shape[SCVRL_ST_MAX_DIMS]; int64_t numel;
    uint64_t begin, end;
} scvrl_st_entry;

/* An open file: e[0..n) in the order the header lists them, meta_key/meta_val[0..n_meta) in
 * header order, data[0..data_size) the data buffer. All owned by the file until scvrl_st_close. */
typedef struct {
    char *path; int n; scvrl_st_entry *e; int n_meta; char **meta_key, **meta_val;
    uint8_t *data; uint64_t data_size; void *priv;
} scvrl_st_file;

/* Opens and validates a file; reads it whole into memory. 0 on success; else -1 with a message
 * in err (may be NULL) naming the file and the problem, and *f left empty (closing it is harmless). */
int  scvrl_st_open(scvrl_st_file *f, const char *path, char *err, size_t errlen);
/* The same from memory: label names the buffer in messages (NULL: "<memory>"). The file keeps a
 * pointer to buf (f->data points into it): buf must stay valid and unchanged until scvrl_st_close.
 * The header is copied, so names and metadata do not point into buf. */
int  scvrl_st_parse(scvrl_st_file *f, const uint8_t *buf, uint64_t len, const char *label,
                    char *err, size_t errlen);
void scvrl_st_close(scvrl_st_file *f);       /* frees what f owns and zeroes it; NULL-safe */
const scvrl_st_entry *scvrl_st_find(const scvrl_st_file *f, const char *name);  /* NULL if absent */
const char *scvrl_st_meta(const scvrl_st_file *f, const char *key);             /* NULL if absent */
/* Converts an entry (any dtype) to float32 into dst[e->numel]: F16/BF16 exactly, F64 rounded
 * to nearest, I32/I64 to the nearest float. 0, or -1 with a message in err. */
int  scvrl_st_read_f32(const scvrl_st_file *f, const scvrl_st_entry *e, float *dst,
                       char *err, size_t errlen);

/* Writer: collects tensors (the name is copied; the data pointer is kept, not copied, and must
 * stay valid until save) and metadata, then saves. add/meta return 0, or -1 when the input is
 * refused (bad dtype, ndim, shape, NULL data, name empty / too long / not UTF-8 / duplicate /
 * "__metadata__"); the first refusal also makes save fail with its message (scvrl_st_writer_error).
 * Data is given in host byte order and written little-endian. Setting a metadata key again
 * replaces its value. */
typedef struct scvrl_st_writer scvrl_st_writer;
scvrl_st_writer *scvrl_st_writer_new(void);                 /* NULL when out of memory */
int  scvrl_st_writer_add(scvrl_st_writer *w, const char *name, scvrl_dtype dt, int ndim,
                         const int64_t *shape, const void *data);
int  scvrl_st_writer_meta(scvrl_st_writer *w, const char *key, const char *val);
/* Saves atomically: writes PATH.tmp.<pid>, fflush, fsync, close, rename over PATH, fsync the
 * directory. Never leaves a half-written PATH; the temporary file is removed on failure.
 * Tensors are written in the order added; "__metadata__" comes first in the header; the header
 * is padded with spaces to a multiple of 8 bytes. 0, or -1 with a message naming PATH. */
int  scvrl_st_writer_save(scvrl_st_writer *w, const char *path, char *err, size_t errlen);
/* The same file as one buffer in *out (*len bytes); free it with SCVRL_FREE (free by default). */
int  scvrl_st_writer_to_memory(scvrl_st_writer *w, uint8_t **out, uint64_t *len,
                               char *err, size_t errlen);
const char *scvrl_st_writer_error(const scvrl_st_writer *w);   /* first refusal, or NULL */
void scvrl_st_writer_free(scvrl_st_writer *w);                  /* NULL-safe */

/* float32 <-> bfloat16 / IEEE half, bit for bit as PyTorch's .bfloat16() / .half() / .float()
 * for every non-NaN value: to-16-bit rounds to nearest even (f16 overflows to infinity, and
 * f16 subnormals are produced). A NaN stays a NaN of the same sign: 0x7FC0 (bf16) and 0x7E00
 * (f16) with the sign bit; f16 -> f32 keeps the payload and sets the quiet bit. */
uint16_t scvrl_f32_to_bf16(float x);
float    scvrl_bf16_to_f32(uint16_t h);
uint16_t scvrl_f32_to_f16(float x);
float    scvrl_f16_to_f32(uint16_t h);

// ============================================================================
// 9. Backends
// ============================================================================
// A backend runs a whole graph. The CPU backend is the oracle; others implement the same ops
// and say which they lack (supports_op) instead of falling back silently mid-graph.
// Parameter operations of a backend with device-resident parameters (section 7).
typedef enum {
    SCVRL_PARAMS_BIND, SCVRL_PARAMS_UNBIND, SCVRL_PARAMS_SYNC, SCVRL_PARAMS_PUSH, SCVRL_PARAMS_ZERO_GRAD,
    SCVRL_PARAMS_ADAMW, SCVRL_PARAMS_CLIP, SCVRL_PARAMS_EMA, SCVRL_PARAMS_COPY, SCVRL_PARAMS_SUMSQ, SCVRL_PARAMS_SCALE_GRAD,
} scvrl_params_op;
struct scvrl_backend {
    const char *name;
    void *priv;
    int (*supports_op)(scvrl_backend *be, const scvrl_tensor *t);
    int (*compute)(scvrl_backend *be, scvrl_graph *g, char *err, size_t errlen);
    void (*free)(scvrl_backend *be);
    // NULL on the CPU. a: the set; b: the source set (EMA, COPY); f: op arguments (ADAMW: lr,
    // beta1, beta2, eps, weight_decay, step_size, bc2_sqrt; CLIP: max_norm; EMA: m; SCALE_GRAD: c);
    // out: CLIP's norm, SUMSQ's sum.
    int (*params)(scvrl_backend *be, scvrl_params_op op, scvrl_params *a, const scvrl_params *b, const float *f,
                  double *out, char *err, size_t errlen);
};
scvrl_backend *scvrl_backend_cpu(void);
void scvrl_backend_free(scvrl_backend *be);
// Compute precision of a GPU backend's matrix products (GEMMs, convolutions, attention): full fp32,
// TF32 tensor cores, or bf16 tensor cores. In bf16 mode the CUDA backend also stores intermediate
// activations as bf16 where every reader has a bf16 path (as PyTorch's autocast keeps them);
// weights, outputs, accumulation, normalisation statistics, softmax, losses, optimizer and EMA stay
// fp32 in every mode. The CPU is fp32.
enum { SCVRL_PREC_FP32 = 0, SCVRL_PREC_TF32 = 1, SCVRL_PREC_BF16 = 2 };
int scvrl_precision_parse(const char *name);    // "fp32" | "tf32" | "bf16" -> SCVRL_PREC_*, else -1
const char *scvrl_precision_name(int prec);     // the inverse ("?" if out of range)
#ifdef SCVRL_CUDA
scvrl_backend *scvrl_backend_cuda(int device, char *err, size_t errlen);
// Sets SCVRL_PREC_*; the default is fp32, or SCVRL_CUDA_PRECISION=fp32|tf32|bf16 from the
// environment (SCVRL_CUDA_TF32=1: tf32). Returns the previous setting, or -1 if be is not the CUDA
// backend or prec is not a SCVRL_PREC_* value.
int scvrl_cuda_set_precision(scvrl_backend *be, int prec);
int scvrl_cuda_get_precision(scvrl_backend *be);     // SCVRL_PREC_*, or -1 if be is not the CUDA backend
/* Device memory the backend holds now (activation arena + parameter/input mirror + scratch; the
 * arenas only grow, so after a run this is its peak). 0 for other backends. */
size_t scvrl_cuda_device_bytes(scvrl_backend *be);
/* BF16 mode: how many nodes the last compute stored as bf16 (intermediate activations whose every
 * reader has a bf16 path; SCVRL_CUDA_BF16_ACT=0: none). 0 for other backends and modes. */
int scvrl_cuda_bf16_nodes(scvrl_backend *be);
/* How many nodes the last compute wrote straight into a concat's memory (their producer writing at
 * the concat's strides instead of a copy; SCVRL_CUDA_CATPLACE=0: none). 0 for other backends. */
int scvrl_cuda_placed_nodes(scvrl_backend *be);
/* How many fusions the last compute ran, each counted once: the plan's pairs (scvrl_graph_fusable:
 * LINEAR + ADD or GELU, DROP_PATH + ADD, LAYER_NORM_BACK + ADD), MViT's pools (conv + CLS concat +
 * norm) and layer-norm backwards run with their weight/bias gradients. 0 for other backends. */
int scvrl_cuda_fused_pairs(scvrl_backend *be);
/* CUDA graph replay: a graph computed again with everything its kernels are launched with unchanged
 * (shapes, memory, parameters, precision, the SCVRL_* environment) is captured on its second compute
 * and replayed from then on as one cudaGraphLaunch; inputs, weights and the graph's seed reach the
 * kernels through device memory, so they may change. On by default (SCVRL_CUDA_GRAPH=0 in the
 * environment: off). on: 1 or 0; returns the previous setting, -1 if be is not the CUDA backend. */
int scvrl_cuda_set_graphs(scvrl_backend *be, int on);
/* How many computes on this backend so far were replays of a captured graph. */
int64_t scvrl_cuda_graph_replays(scvrl_backend *be);
/* Keep the host buffer [host, host + bytes) on the device: uploaded now (again when called again
 * with the same range, after the host contents changed), and input leaves whose data lies in it
 * are read from the device copy with no per-compute upload (as inputs made on the GPU). */
int scvrl_cuda_resident(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen);
void scvrl_cuda_resident_release(scvrl_backend *be, const void *host);
/* The same refresh without waiting: the copy runs on a second stream (the host range is page-locked
 * on first use; if it cannot be, a synchronous refresh) and the next compute that reads the range
 * waits for it on the GPU, not on the host. May be called from a thread other than the computing
 * one, for a range that no compute in flight reads; the host range must not change again until a
 * compute has read it (e.g. a loader thread filling one of two batch buffers while the other is
 * computed, as examples/pretrain does). -1 with a message for a range not registered. */
int scvrl_cuda_resident_async(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen);
/* Refresh part of a registered range, [host + off, host + off + len), in order with the computes
 * (on the backend's stream, after any asynchronous refresh of the range); the host bytes may change
 * again once this returns. For a range that changes a little between computes (e.g. a key queue
 * that gains B rows a step). -1 with a message when the part is not inside a registered range. */
int scvrl_cuda_resident_update(scvrl_backend *be, const void *host, size_t off, size_t len, char *err, size_t errlen);
#endif

#ifdef __cplusplus
}
#endif
#endif // SCVRL_H

// ############################################################################
//                              IMPLEMENTATION
// ############################################################################
#ifdef SCVRL_IMPLEMENTATION
#ifndef SCVRL_IMPLEMENTATION_DONE
#define SCVRL_IMPLEMENTATION_DONE

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// ============================================================================
// 10. Helpers: errors, arena, shapes, views
// ============================================================================
void scvrl__abort(const char *file, int line, const char *cond, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "scvrl: %s:%d: assertion failed: %s: ", file, line, cond);
    va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

static void scvrl__err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap);
}

static void *scvrl__xmalloc(size_t n) {
    void *p = SCVRL_MALLOC(n ? n : 1);
    SCVRL_ASSERT(p, "out of memory allocating %zu bytes", n);
    return p;
}

#define SCVRL__OP_NAME(name, n, b) #name,
#define SCVRL__OP_ARITY(name, n, b) n,
static const char *scvrl__op_names[] = { SCVRL_OPS(SCVRL__OP_NAME) };
static const int scvrl__op_arity[] = { SCVRL_OPS(SCVRL__OP_ARITY) };
#undef SCVRL__OP_NAME
#undef SCVRL__OP_ARITY
_Static_assert(sizeof(scvrl__op_names) / sizeof(scvrl__op_names[0]) == SCVRL_OP_COUNT, "op table");

const char *scvrl_op_name(scvrl_op op) { return op < SCVRL_OP_COUNT ? scvrl__op_names[op] : "?"; }
int scvrl_op_arity(scvrl_op op) { return op < SCVRL_OP_COUNT ? scvrl__op_arity[op] : 0; }

static int scvrl__is_view_op(scvrl_op op) {
    return op == SCVRL_OP_RESHAPE || op == SCVRL_OP_PERMUTE || op == SCVRL_OP_SLICE || op == SCVRL_OP_EXPAND;
}


int64_t scvrl_nelements(const scvrl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

int scvrl_is_contiguous(const scvrl_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->ne[i] != 1 && t->st[i] != s) return 0;
        s *= t->ne[i];
    }
    return 1;
}

static void scvrl__set_contig_strides(scvrl_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) { t->st[i] = s; s *= t->ne[i]; }
}

static int scvrl__same_shape(const scvrl_tensor *a, const scvrl_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

static void scvrl__shape_str(const scvrl_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++) k += snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->ne[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

// --- context: an arena of tensor structs (chunks, never moved) plus optional leaf data ---
typedef struct scvrl__chunk { struct scvrl__chunk *next; size_t used, cap; } scvrl__chunk;
struct scvrl_ctx {
    scvrl__chunk *head;
    int count;
};

static void *scvrl__ctx_alloc(scvrl_ctx *ctx, size_t n) {
    n = (n + 63) & ~(size_t)63;
    scvrl__chunk *c = ctx->head;
    if (!c || c->used + n > c->cap) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        c = (scvrl__chunk *)scvrl__xmalloc(sizeof(scvrl__chunk) + 64 + cap);
        c->next = ctx->head; c->used = 0; c->cap = cap;
        ctx->head = c;
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)(c + 1) + 63) & ~(uintptr_t)63);
    void *p = base + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

scvrl_ctx *scvrl_ctx_new(size_t data_bytes) {
    (void)data_bytes;  // chunks grow on demand
    scvrl_ctx *ctx = (scvrl_ctx *)scvrl__xmalloc(sizeof(scvrl_ctx));
    ctx->head = NULL; ctx->count = 0;
    return ctx;
}

void scvrl_ctx_reset(scvrl_ctx *ctx) {
    scvrl__chunk *c = ctx->head;
    while (c) { scvrl__chunk *n = c->next; SCVRL_FREE(c); c = n; }
    ctx->head = NULL; ctx->count = 0;
}

void scvrl_ctx_free(scvrl_ctx *ctx) {
    if (!ctx) return;
    scvrl_ctx_reset(ctx);
    SCVRL_FREE(ctx);
}

int scvrl_ctx_count(const scvrl_ctx *ctx) { return ctx->count; }

static scvrl_tensor *scvrl__new_node(scvrl_ctx *ctx, scvrl_op op, scvrl_dtype type, int ndim, const int64_t *ne) {
    SCVRL_ASSERT(ndim >= 0 && ndim <= SCVRL_MAX_DIMS, "ndim %d out of range", ndim);
    scvrl_tensor *t = (scvrl_tensor *)scvrl__ctx_alloc(ctx, sizeof(scvrl_tensor));
    t->op = op; t->type = type; t->ndim = ndim;
    for (int i = 0; i < ndim; i++) { SCVRL_ASSERT(ne[i] >= 0, "negative size"); t->ne[i] = ne[i]; }
    scvrl__set_contig_strides(t);
    t->id = -1;
    ctx->count++;
    return t;
}

scvrl_tensor *scvrl_new(scvrl_ctx *ctx, scvrl_dtype type, int ndim, const int64_t *ne) {
    scvrl_tensor *t = scvrl__new_node(ctx, SCVRL_OP_LEAF, type, ndim, ne);
    t->flags |= SCVRL_F_EXTERNAL;
    return t;
}

scvrl_tensor *scvrl_new_data(scvrl_ctx *ctx, scvrl_dtype type, int ndim, const int64_t *ne) {
    scvrl_tensor *t = scvrl_new(ctx, type, ndim, ne);
    t->data = scvrl__ctx_alloc(ctx, (size_t)scvrl_nelements(t) * scvrl_dtype_size(type));
    return t;
}

scvrl_tensor *scvrl_new_1d(scvrl_ctx *ctx, scvrl_dtype type, int64_t n0) { return scvrl_new_data(ctx, type, 1, &n0); }
scvrl_tensor *scvrl_new_2d(scvrl_ctx *ctx, scvrl_dtype type, int64_t n0, int64_t n1) {
    int64_t ne[2] = { n0, n1 };
    return scvrl_new_data(ctx, type, 2, ne);
}
scvrl_tensor *scvrl_scalar(scvrl_ctx *ctx, float v) {
    scvrl_tensor *t = scvrl_new_1d(ctx, SCVRL_DT_F32, 1);
    scvrl_f32(t)[0] = v;
    return t;
}

scvrl_tensor *scvrl_set_name(scvrl_tensor *t, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vsnprintf(t->name, sizeof(t->name), fmt, ap); va_end(ap);
    return t;
}
void scvrl_mark_input(scvrl_tensor *t) { t->flags |= SCVRL_F_INPUT | SCVRL_F_EXTERNAL; }
void scvrl_mark_output(scvrl_tensor *t) { t->flags |= SCVRL_F_OUTPUT; }
void scvrl_mark_param(scvrl_tensor *t) { t->flags |= SCVRL_F_PARAM | SCVRL_F_GRAD | SCVRL_F_EXTERNAL; }

// The base tensor whose memory a (chain of) view(s) uses, and the element offset into it.
static scvrl_tensor *scvrl__view_base(const scvrl_tensor *t, int64_t *offs) {
    int64_t o = 0;
    while (t->view_src) { o += t->view_offs; t = t->view_src; }
    if (offs) *offs = o;
    return (scvrl_tensor *)t;
}

// ============================================================================
// 11. Random numbers
// ============================================================================
uint64_t scvrl_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
uint64_t scvrl_rng_u64(uint64_t seed, uint64_t stream, uint64_t i) {
    return scvrl_mix64(scvrl_mix64(seed ^ scvrl_mix64(stream)) + i);
}
static inline uint64_t scvrl__rng_key(uint64_t seed, uint64_t stream) { return scvrl_mix64(seed ^ scvrl_mix64(stream)); }
static inline float scvrl__rng_uniform_k(uint64_t key, uint64_t i) {
    return (float)(scvrl_mix64(key + i) >> 40) * 0x1.0p-24f;
}
float scvrl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    return scvrl__rng_uniform_k(scvrl__rng_key(seed, stream), i);
}
float scvrl_rng_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t k = scvrl__rng_key(seed, stream);
    double u1 = ((double)(scvrl_mix64(k + 2 * i) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(scvrl_mix64(k + 2 * i + 1) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
uint64_t scvrl_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 0x100000001b3ull; }
    return h;
}
void scvrl_fill_uniform(float *x, int64_t n, uint64_t seed, uint64_t stream, float lo, float hi) {
    uint64_t k = scvrl__rng_key(seed, stream);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * scvrl__rng_uniform_k(k, (uint64_t)i);
}

// ============================================================================
// 12. Op builders
// ============================================================================
static uint32_t scvrl__grad_flag(const scvrl_tensor *a, const scvrl_tensor *b, const scvrl_tensor *c) {
    return ((a && (a->flags & SCVRL_F_GRAD)) || (b && (b->flags & SCVRL_F_GRAD)) ||
            (c && (c->flags & SCVRL_F_GRAD))) ? SCVRL_F_GRAD : 0;
}

static scvrl_tensor *scvrl__op(scvrl_ctx *ctx, scvrl_op op, int ndim, const int64_t *ne,
                               scvrl_tensor *a, scvrl_tensor *b, scvrl_tensor *c) {
    scvrl_tensor *t = scvrl__new_node(ctx, op, SCVRL_DT_F32, ndim, ne);
    t->src[0] = a; t->src[1] = b; t->src[2] = c;
    t->flags |= scvrl__grad_flag(a, b, c);
    return t;
}

static void scvrl__check_f32(const scvrl_tensor *t, const char *what) {
    SCVRL_ASSERT(t->type == SCVRL_DT_F32, "%s: expected an F32 tensor, got %s", what, scvrl_dtype_name(t->type));
}

// Make x contiguous if it is not (a CONT node), else return x.
static scvrl_tensor *scvrl__contig(scvrl_ctx *ctx, scvrl_tensor *x) {
    return scvrl_is_contiguous(x) ? x : scvrl_cont(ctx, x);
}

// Broadcast shape of a and b (numpy rules, right-aligned).
static int scvrl__broadcast(const scvrl_tensor *a, const scvrl_tensor *b, int64_t *ne) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t na = ia >= 0 ? a->ne[ia] : 1, nb = ib >= 0 ? b->ne[ib] : 1;
        if (na != nb && na != 1 && nb != 1) {
            char sa[96], sb[96];
            scvrl__shape_str(a, sa, sizeof sa); scvrl__shape_str(b, sb, sizeof sb);
            SCVRL_ASSERT(0, "shapes %s and %s do not broadcast", sa, sb);
        }
        ne[i] = na == 1 ? nb : na;
    }
    return nd;
}

static scvrl_tensor *scvrl__binary(scvrl_ctx *ctx, scvrl_op op, scvrl_tensor *a, scvrl_tensor *b) {
    scvrl__check_f32(a, scvrl_op_name(op)); scvrl__check_f32(b, scvrl_op_name(op));
    int64_t ne[SCVRL_MAX_DIMS];
    int nd = scvrl__broadcast(a, b, ne);
    return scvrl__op(ctx, op, nd, ne, a, b, NULL);
}
scvrl_tensor *scvrl_add(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b) { return scvrl__binary(ctx, SCVRL_OP_ADD, a, b); }
scvrl_tensor *scvrl_sub(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b) { return scvrl__binary(ctx, SCVRL_OP_SUB, a, b); }
scvrl_tensor *scvrl_mul(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b) { return scvrl__binary(ctx, SCVRL_OP_MUL, a, b); }
scvrl_tensor *scvrl_div(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b) { return scvrl__binary(ctx, SCVRL_OP_DIV, a, b); }

scvrl_tensor *scvrl_affine(scvrl_ctx *ctx, scvrl_tensor *x, float s, float c) {
    scvrl__check_f32(x, "scale");
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_SCALE, x->ndim, x->ne, x, NULL, NULL);
    t->fp[0] = s; t->fp[1] = c;
    return t;
}
scvrl_tensor *scvrl_scale(scvrl_ctx *ctx, scvrl_tensor *x, float s) { return scvrl_affine(ctx, x, s, 0.0f); }

static scvrl_tensor *scvrl__unary(scvrl_ctx *ctx, scvrl_op op, scvrl_tensor *x) {
    scvrl__check_f32(x, scvrl_op_name(op));
    return scvrl__op(ctx, op, x->ndim, x->ne, x, NULL, NULL);
}
scvrl_tensor *scvrl_relu(scvrl_ctx *ctx, scvrl_tensor *x) { return scvrl__unary(ctx, SCVRL_OP_RELU, x); }
scvrl_tensor *scvrl_gelu(scvrl_ctx *ctx, scvrl_tensor *x) { return scvrl__unary(ctx, SCVRL_OP_GELU, x); }
scvrl_tensor *scvrl_cont(scvrl_ctx *ctx, scvrl_tensor *x) {
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_CONT, x->ndim, x->ne, x, NULL, NULL);
    t->type = x->type;
    return t;
}

// Rows of a matrix operand must have a contiguous last dim and one stride for the row dim;
// batch dims must collapse to a single stride. Returns 1 if usable without a copy.
static int scvrl__matrix_ok(const scvrl_tensor *t) {
    if (t->ndim < 2) return 0;
    if (t->st[t->ndim - 1] != 1 && t->ne[t->ndim - 1] != 1) return 0;
    // batch dims: each stride = next stride * next size (collapsible)
    int nb = t->ndim - 2;
    for (int i = 0; i + 1 < nb; i++)
        if (t->ne[i] != 1 && t->st[i] != t->st[i + 1] * t->ne[i + 1]) return 0;
    return 1;
}

scvrl_tensor *scvrl_matmul(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b, int transA, int transB) {
    scvrl__check_f32(a, "matmul"); scvrl__check_f32(b, "matmul");
    SCVRL_ASSERT(a->ndim >= 2 && b->ndim >= 2, "matmul needs matrices");
    if (!scvrl__matrix_ok(a)) a = scvrl_cont(ctx, a);
    if (!scvrl__matrix_ok(b)) b = scvrl_cont(ctx, b);
    int64_t M = transA ? a->ne[a->ndim - 1] : a->ne[a->ndim - 2];
    int64_t Ka = transA ? a->ne[a->ndim - 2] : a->ne[a->ndim - 1];
    int64_t Kb = transB ? b->ne[b->ndim - 1] : b->ne[b->ndim - 2];
    int64_t N = transB ? b->ne[b->ndim - 2] : b->ne[b->ndim - 1];
    SCVRL_ASSERT(Ka == Kb, "matmul inner sizes differ: %lld vs %lld", (long long)Ka, (long long)Kb);
    SCVRL_ASSERT(b->ndim == 2 || b->ndim == a->ndim, "matmul: b must be 2-D or have a's batch dims");
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < a->ndim - 2; i++) {
        ne[i] = a->ne[i];
        if (b->ndim == a->ndim) SCVRL_ASSERT(b->ne[i] == a->ne[i], "matmul batch dims differ");
    }
    ne[a->ndim - 2] = M; ne[a->ndim - 1] = N;
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_MATMUL, a->ndim, ne, a, b, NULL);
    t->ip[0] = transA; t->ip[1] = transB;
    return t;
}

scvrl_tensor *scvrl_linear(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b) {
    scvrl__check_f32(x, "linear"); scvrl__check_f32(w, "linear");
    SCVRL_ASSERT(w->ndim == 2 && x->ndim >= 1 && x->ne[x->ndim - 1] == w->ne[1],
                 "linear: x last dim %lld != weight in %lld", (long long)x->ne[x->ndim - 1], (long long)w->ne[1]);
    SCVRL_ASSERT(!b || (b->ndim == 1 && b->ne[0] == w->ne[0]), "linear: bias shape");
    x = scvrl__contig(ctx, x);
    w = scvrl__contig(ctx, w);
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) ne[i] = x->ne[i];
    ne[x->ndim - 1] = w->ne[0];
    return scvrl__op(ctx, SCVRL_OP_LINEAR, x->ndim, ne, x, w, b);
}

// Logical 5-D geometry of a conv/pool input: (N, C, T, H, W) whatever the layout.
static void scvrl__geom5(const scvrl_tensor *x, scvrl_layout layout, int64_t g[5]) {
    SCVRL_ASSERT(x->ndim == 5, "conv3d/maxpool3d: input must be 5-D");
    if (layout == SCVRL_LAYOUT_NCDHW) { for (int i = 0; i < 5; i++) g[i] = x->ne[i]; }
    else { g[0] = x->ne[0]; g[1] = x->ne[4]; g[2] = x->ne[1]; g[3] = x->ne[2]; g[4] = x->ne[3]; }
}

static void scvrl__set_out5(int64_t ne[5], scvrl_layout layout, int64_t n, int64_t c, const int64_t o[3]) {
    if (layout == SCVRL_LAYOUT_NCDHW) { ne[0] = n; ne[1] = c; ne[2] = o[0]; ne[3] = o[1]; ne[4] = o[2]; }
    else { ne[0] = n; ne[1] = o[0]; ne[2] = o[1]; ne[3] = o[2]; ne[4] = c; }
}

scvrl_tensor *scvrl_conv3d(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b,
                           const int stride[3], const int pad[3], int groups, scvrl_layout layout) {
    scvrl__check_f32(x, "conv3d"); scvrl__check_f32(w, "conv3d");
    // The input may be any view (MViT pools q/k/v straight from the projection's output, and its stem
    // reads the NCDHW clip as NDHWC): every backend reads it through its strides, never copies it.
    w = scvrl__contig(ctx, w);
    int64_t g[5]; scvrl__geom5(x, layout, g);
    SCVRL_ASSERT(w->ndim == 5, "conv3d: weight must be [Cout, Cin/groups, kt, kh, kw]");
    SCVRL_ASSERT(groups >= 1 && g[1] % groups == 0 && w->ne[0] % groups == 0 && w->ne[1] * groups == g[1],
                 "conv3d: channels %lld, weight [%lld, %lld, ...], groups %d do not fit",
                 (long long)g[1], (long long)w->ne[0], (long long)w->ne[1], groups);
    SCVRL_ASSERT(!b || (b->ndim == 1 && b->ne[0] == w->ne[0]), "conv3d: bias shape");
    int64_t o[3];
    for (int i = 0; i < 3; i++) {
        o[i] = (g[2 + i] + 2 * pad[i] - w->ne[2 + i]) / stride[i] + 1;
        SCVRL_ASSERT(o[i] >= 1 && stride[i] >= 1 && pad[i] >= 0, "conv3d: empty output");
    }
    int64_t ne[5]; scvrl__set_out5(ne, layout, g[0], w->ne[0], o);
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_CONV3D, 5, ne, x, w, b);
    for (int i = 0; i < 3; i++) { t->ip[i] = stride[i]; t->ip[3 + i] = pad[i]; }
    t->ip[6] = groups; t->ip[7] = layout;
    return t;
}

scvrl_tensor *scvrl_maxpool3d(scvrl_ctx *ctx, scvrl_tensor *x, const int kernel[3], const int stride[3],
                              const int pad[3], scvrl_layout layout) {
    scvrl__check_f32(x, "maxpool3d");
    // x may be any view (MViT's skip pool reads the grid tokens of [B, 1+L, C] in place): backends
    // read it through its strides; the backward's dx is contiguous, winners mapped onto it.
    int64_t g[5]; scvrl__geom5(x, layout, g);
    int64_t o[3];
    for (int i = 0; i < 3; i++) {
        SCVRL_ASSERT(pad[i] * 2 <= kernel[i], "maxpool3d: padding must be at most half the kernel");
        o[i] = (g[2 + i] + 2 * pad[i] - kernel[i]) / stride[i] + 1;
        SCVRL_ASSERT(o[i] >= 1, "maxpool3d: empty output");
    }
    int64_t ne[5]; scvrl__set_out5(ne, layout, g[0], g[1], o);
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_MAXPOOL3D, 5, ne, x, NULL, NULL);
    for (int i = 0; i < 3; i++) { t->ip[i] = kernel[i]; t->ip[3 + i] = stride[i]; t->ip[6 + i] = pad[i]; }
    t->ip[9] = layout;
    return t;
}

scvrl_tensor *scvrl_layer_norm(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *w, scvrl_tensor *b, float eps) {
    scvrl__check_f32(x, "layer_norm");
    x = scvrl__contig(ctx, x);
    int64_t D = x->ne[x->ndim - 1];
    SCVRL_ASSERT(!w || (w->ndim == 1 && w->ne[0] == D), "layer_norm: weight shape");
    SCVRL_ASSERT(!b || (b->ndim == 1 && b->ne[0] == D), "layer_norm: bias shape");
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_LAYER_NORM, x->ndim, x->ne, x, w, b);
    t->fp[0] = eps;
    return t;
}

scvrl_tensor *scvrl_softmax(scvrl_ctx *ctx, scvrl_tensor *x) { return scvrl__unary(ctx, SCVRL_OP_SOFTMAX, scvrl__contig(ctx, x)); }
scvrl_tensor *scvrl_log_softmax(scvrl_ctx *ctx, scvrl_tensor *x) { return scvrl__unary(ctx, SCVRL_OP_LOG_SOFTMAX, scvrl__contig(ctx, x)); }

// Attention operands: 4-D with a contiguous last dim (any other strides).
static scvrl_tensor *scvrl__attn_operand(scvrl_ctx *ctx, scvrl_tensor *t) {
    SCVRL_ASSERT(t->ndim == 4, "attention: operands must be [B, h, N, d]");
    return (t->st[3] == 1 || t->ne[3] == 1) ? t : scvrl_cont(ctx, t);
}

scvrl_tensor *scvrl_attention(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *k, scvrl_tensor *v, float scale) {
    scvrl__check_f32(q, "attention"); scvrl__check_f32(k, "attention"); scvrl__check_f32(v, "attention");
    q = scvrl__attn_operand(ctx, q); k = scvrl__attn_operand(ctx, k); v = scvrl__attn_operand(ctx, v);
    SCVRL_ASSERT(q->ne[0] == k->ne[0] && q->ne[1] == k->ne[1] && q->ne[3] == k->ne[3] && scvrl__same_shape(k, v),
                 "attention: q [B,h,Nq,d], k and v [B,h,Nk,d] must agree");
    int64_t ne[4] = { q->ne[0], q->ne[2], q->ne[1], q->ne[3] };
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_ATTENTION, 4, ne, q, k, v);
    t->fp[0] = scale;
    return t;
}

scvrl_tensor *scvrl_cross_entropy(scvrl_ctx *ctx, scvrl_tensor *logits, scvrl_tensor *target) {
    scvrl__check_f32(logits, "cross_entropy");
    SCVRL_ASSERT(logits->ndim == 2 && target->type == SCVRL_DT_I32 && target->ndim == 1 &&
                 target->ne[0] == logits->ne[0], "cross_entropy: logits [N, C], target i32 [N]");
    logits = scvrl__contig(ctx, logits);
    return scvrl__op(ctx, SCVRL_OP_CROSS_ENTROPY, 1, logits->ne, logits, target, NULL);
}

scvrl_tensor *scvrl_l2_normalize(scvrl_ctx *ctx, scvrl_tensor *x, float eps) {
    scvrl_tensor *t = scvrl__unary(ctx, SCVRL_OP_L2_NORMALIZE, scvrl__contig(ctx, x));
    t->fp[0] = eps;
    return t;
}

scvrl_tensor *scvrl_sum_to(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne) {
    scvrl__check_f32(x, "sum_to");
    SCVRL_ASSERT(ndim <= x->ndim, "sum_to: target has more dims");
    for (int i = 0; i < ndim; i++) {
        int64_t nx = x->ne[x->ndim - ndim + i];
        SCVRL_ASSERT(ne[i] == nx || ne[i] == 1, "sum_to: %lld does not reduce to %lld", (long long)nx, (long long)ne[i]);
    }
    return scvrl__op(ctx, SCVRL_OP_SUM_TO, ndim, ne, x, NULL, NULL);
}

scvrl_tensor *scvrl_sum(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int keepdim) {
    if (dim < 0) dim += x->ndim;
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) ne[i] = i == dim ? 1 : x->ne[i];
    scvrl_tensor *s = scvrl_sum_to(ctx, x, x->ndim, ne);
    if (keepdim) return s;
    int k = 0;
    for (int i = 0; i < x->ndim; i++) if (i != dim) ne[k++] = x->ne[i];
    if (k == 0) { ne[0] = 1; k = 1; }
    return scvrl_reshape(ctx, s, k, ne);
}
scvrl_tensor *scvrl_mean(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int keepdim) {
    if (dim < 0) dim += x->ndim;
    return scvrl_scale(ctx, scvrl_sum(ctx, x, dim, keepdim), 1.0f / (float)x->ne[dim]);
}
scvrl_tensor *scvrl_sum_all(scvrl_ctx *ctx, scvrl_tensor *x) { int64_t one = 1; return scvrl_sum_to(ctx, x, 1, &one); }
scvrl_tensor *scvrl_mean_all(scvrl_ctx *ctx, scvrl_tensor *x) {
    return scvrl_scale(ctx, scvrl_sum_all(ctx, x), 1.0f / (float)scvrl_nelements(x));
}

scvrl_tensor *scvrl_concat(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b, int dim) {
    scvrl__check_f32(a, "concat"); scvrl__check_f32(b, "concat");
    if (dim < 0) dim += a->ndim;
    SCVRL_ASSERT(a->ndim == b->ndim && dim >= 0 && dim < a->ndim, "concat: ranks differ");
    a = scvrl__contig(ctx, a); b = scvrl__contig(ctx, b);
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        SCVRL_ASSERT(i == dim || a->ne[i] == b->ne[i], "concat: sizes differ in dim %d", i);
        ne[i] = i == dim ? a->ne[i] + b->ne[i] : a->ne[i];
    }
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_CONCAT, a->ndim, ne, a, b, NULL);
    t->ip[0] = dim;
    return t;
}

// --- views ---
static scvrl_tensor *scvrl__view(scvrl_ctx *ctx, scvrl_op op, scvrl_tensor *x, int ndim, const int64_t *ne) {
    scvrl_tensor *t = scvrl__op(ctx, op, ndim, ne, x, NULL, NULL);
    t->type = x->type;
    t->view_src = x;
    return t;
}

scvrl_tensor *scvrl_slice(scvrl_ctx *ctx, scvrl_tensor *x, int dim, int64_t start, int64_t len) {
    if (dim < 0) dim += x->ndim;
    SCVRL_ASSERT(dim >= 0 && dim < x->ndim && start >= 0 && len >= 0 && start + len <= x->ne[dim],
                 "slice [%lld, %lld) out of range %lld", (long long)start, (long long)(start + len), (long long)x->ne[dim]);
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) ne[i] = i == dim ? len : x->ne[i];
    scvrl_tensor *t = scvrl__view(ctx, SCVRL_OP_SLICE, x, x->ndim, ne);
    for (int i = 0; i < x->ndim; i++) t->st[i] = x->st[i];
    t->view_offs = start * x->st[dim];
    t->ip[0] = dim; t->ip[1] = start; t->ip[2] = len;
    return t;
}

scvrl_tensor *scvrl_permute(scvrl_ctx *ctx, scvrl_tensor *x, const int *perm) {
    int64_t ne[SCVRL_MAX_DIMS];
    int seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        SCVRL_ASSERT(perm[i] >= 0 && perm[i] < x->ndim && !(seen & (1 << perm[i])), "permute: bad permutation");
        seen |= 1 << perm[i];
        ne[i] = x->ne[perm[i]];
    }
    scvrl_tensor *t = scvrl__view(ctx, SCVRL_OP_PERMUTE, x, x->ndim, ne);
    for (int i = 0; i < x->ndim; i++) { t->st[i] = x->st[perm[i]]; t->ip[i] = perm[i]; }
    return t;
}

scvrl_tensor *scvrl_transpose(scvrl_ctx *ctx, scvrl_tensor *x, int d0, int d1) {
    int perm[SCVRL_MAX_DIMS];
    if (d0 < 0) d0 += x->ndim;
    if (d1 < 0) d1 += x->ndim;
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[d0] = d1; perm[d1] = d0;
    return scvrl_permute(ctx, x, perm);
}

// Strides for viewing x as shape ne without a copy (PyTorch's view rule: dims may be split or
// merged only inside runs that are contiguous in memory). Returns 1 and fills st on success.
static int scvrl__view_strides(const scvrl_tensor *x, int ndim, const int64_t *ne, int64_t *st) {
    if (x->ndim == 0) { for (int i = 0; i < ndim; i++) st[i] = 1; return 1; }
    int vd = ndim - 1;
    int64_t base = x->st[x->ndim - 1], tn = 1, vn = 1;
    for (int td = x->ndim - 1; td >= 0; td--) {
        tn *= x->ne[td];
        if (td == 0 || (x->ne[td - 1] != 1 && x->st[td - 1] != tn * base)) {
            while (vd >= 0 && (vn < tn || ne[vd] == 1)) { st[vd] = vn * base; vn *= ne[vd]; vd--; }
            if (vn != tn) return 0;
            if (td > 0) { base = x->st[td - 1]; tn = 1; vn = 1; }
        }
    }
    return vd == -1;
}

scvrl_tensor *scvrl_reshape(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= ne[i];
    SCVRL_ASSERT(n == scvrl_nelements(x), "reshape: %lld elements into %lld", (long long)scvrl_nelements(x), (long long)n);
    int64_t st[SCVRL_MAX_DIMS];
    if (n == 0 || !scvrl__view_strides(x, ndim, ne, st)) {
        x = scvrl_cont(ctx, x);
        scvrl_tensor *t = scvrl__view(ctx, SCVRL_OP_RESHAPE, x, ndim, ne);
        return t;
    }
    scvrl_tensor *t = scvrl__view(ctx, SCVRL_OP_RESHAPE, x, ndim, ne);
    for (int i = 0; i < ndim; i++) t->st[i] = st[i];
    return t;
}
scvrl_tensor *scvrl_reshape_2d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1) {
    int64_t ne[2] = { n0, n1 }; return scvrl_reshape(ctx, x, 2, ne);
}
scvrl_tensor *scvrl_reshape_3d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1, int64_t n2) {
    int64_t ne[3] = { n0, n1, n2 }; return scvrl_reshape(ctx, x, 3, ne);
}
scvrl_tensor *scvrl_reshape_4d(scvrl_ctx *ctx, scvrl_tensor *x, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    int64_t ne[4] = { n0, n1, n2, n3 }; return scvrl_reshape(ctx, x, 4, ne);
}

scvrl_tensor *scvrl_expand(scvrl_ctx *ctx, scvrl_tensor *x, int ndim, const int64_t *ne) {
    SCVRL_ASSERT(ndim >= x->ndim, "expand: fewer dims");
    scvrl_tensor *t = scvrl__view(ctx, SCVRL_OP_EXPAND, x, ndim, ne);
    for (int i = 0; i < ndim; i++) {
        int xi = x->ndim - ndim + i;
        int64_t nx = xi >= 0 ? x->ne[xi] : 1;
        SCVRL_ASSERT(nx == ne[i] || nx == 1, "expand: %lld to %lld", (long long)nx, (long long)ne[i]);
        t->st[i] = (xi >= 0 && nx == ne[i]) ? x->st[xi] : 0;
    }
    return t;
}

scvrl_tensor *scvrl_index_select(scvrl_ctx *ctx, scvrl_tensor *x, int dim, scvrl_tensor *idx) {
    scvrl__check_f32(x, "index_select");
    if (dim < 0) dim += x->ndim;
    SCVRL_ASSERT(idx->type == SCVRL_DT_I32 && idx->ndim == 1, "index_select: indices must be i32 [n]");
    x = scvrl__contig(ctx, x);
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) ne[i] = i == dim ? idx->ne[0] : x->ne[i];
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_INDEX_SELECT, x->ndim, ne, x, idx, NULL);
    t->ip[0] = dim;
    return t;
}

static scvrl_tensor *scvrl__index_add(scvrl_ctx *ctx, scvrl_tensor *dy, int dim, scvrl_tensor *idx, int64_t full) {
    dy = scvrl__contig(ctx, dy);
    int64_t ne[SCVRL_MAX_DIMS];
    for (int i = 0; i < dy->ndim; i++) ne[i] = i == dim ? full : dy->ne[i];
    scvrl_tensor *t = scvrl__op(ctx, SCVRL_OP_INDEX_ADD, dy->ndim, ne, dy, idx, NULL);
    t->ip[0] = dim;
    return t;
}

static scvrl_tensor *scvrl__rng_op(scvrl_ctx *ctx, scvrl_op op, scvrl_tensor *x, float p, uint64_t stream) {
    SCVRL_ASSERT(p >= 0.0f && p < 1.0f, "dropout probability %g not in [0, 1)", (double)p);
    scvrl_tensor *t = scvrl__unary(ctx, op, scvrl__contig(ctx, x));
    t->fp[0] = p;
    t->ip[0] = (int64_t)stream;
    return t;
}
scvrl_tensor *scvrl_dropout(scvrl_ctx *ctx, scvrl_tensor *x, float p, uint64_t stream) {
    return p == 0.0f ? x : scvrl__rng_op(ctx, SCVRL_OP_DROPOUT, x, p, stream);
}
scvrl_tensor *scvrl_drop_path(scvrl_ctx *ctx, scvrl_tensor *x, float p, uint64_t stream) {
    return p == 0.0f ? x : scvrl__rng_op(ctx, SCVRL_OP_DROP_PATH, x, p, stream);
}

// ============================================================================
// 13. CPU kernels: GEMM
// ============================================================================
#ifdef _OPENMP
static int scvrl__in_parallel(void) { return omp_in_parallel(); }
static int scvrl__nthreads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }
#else
static int scvrl__in_parallel(void) { return 0; }
static int scvrl__nthreads(void) { return 1; }
#endif
void scvrl_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}
int scvrl_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// --- begin GEMM ---
// ---------------------------------------------------------------------------
// scvrl__sgemm: deterministic row-major float32 GEMM for the CPU backend.
//
//   C[M,N] = (accumulate ? C : 0) + op(A)[M,K] * op(B)[K,N]
//   op(A) = transA ? A^T (A stored [K,M], row stride lda) : A (stored [M,K], row stride lda)
//   op(B) = transB ? B^T (B stored [N,K], row stride ldb) : B (stored [K,N], row stride ldb)
//
// GotoBLAS/BLIS structure: op(B) is packed into KC x NC blocks of NR-wide panels (shared by the
// threads), op(A) into MC x KC blocks of MR-tall panels (per work item), and a register-blocked
// micro-kernel computes MR x NR tiles of C (AVX-512: 14x32 with 28 zmm accumulators; AVX2+FMA:
// 6x16 with 12 ymm accumulators; otherwise portable C, 4x16). The loop around the micro-kernel
// keeps one A micro-panel in L1 while the B panels of the block stream from L2/L3.
//
// Threads: per (NC, KC) block the team packs B together (dynamic loop over panels), then takes
// work items (row chunks of about M / (3 * threads), or row x column chunks when M is small)
// with a dynamic schedule, so a thread slowed by other load does not hold the others up.
//
// Determinism: every C element is the chain c = c + a_k * b_k for k = 0, 1, ..., K-1 in that
// order, started from C (accumulate) or from 0, rounded after every step (one fused multiply-add
// per step with AVX2/AVX-512; a multiply and an add in the portable path). Partial sums are
// carried through C between K blocks, so the result does not depend on the blocking, on the
// tile an element lands in, or on the number of threads: it is bit-identical for any thread
// count. K is never split across threads.
//
// Threads: outside an OpenMP parallel region the call uses omp_get_max_threads() threads
// (fewer for small problems, about 2 MFLOP per thread at least); inside one (omp_in_parallel())
// it runs in the calling thread. Any thread may call it (the buffer pool is lock-free).
// ---------------------------------------------------------------------------
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
// Unoptimised builds (-O0, e.g. DEBUG=1) would run the intrinsics kernels ~12x slower: with GCC,
// compile this section at -O2 anyway (popped again at the end of the section).
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#pragma GCC push_options
#pragma GCC optimize("O2")
#define SCVRL__GEMM_POP_OPTIONS 1
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#define SCVRL__GEMM_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SCVRL__GEMM_AVX2 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SCVRL__GEMM_INLINE static inline __attribute__((always_inline))
#define SCVRL__GEMM_PREFETCHW(addr) __builtin_prefetch((const void *)(addr), 1, 3)
#else
#define SCVRL__GEMM_INLINE static inline
#define SCVRL__GEMM_PREFETCHW(addr) ((void)(addr))
#endif

#if defined(SCVRL__GEMM_AVX512)
#define SCVRL__GEMM_MR 14
#define SCVRL__GEMM_NR 32
#elif defined(SCVRL__GEMM_AVX2)
#define SCVRL__GEMM_MR 6
#define SCVRL__GEMM_NR 16
#else
#define SCVRL__GEMM_MR 4
#define SCVRL__GEMM_NR 16
#endif

// Cache blocking (elements). KC: depth of one packed block; MC: rows of op(A) packed per thread
// (a multiple of MR); NC: columns of op(B) per packed block (a multiple of NR).
#ifndef SCVRL__GEMM_KC
#define SCVRL__GEMM_KC 512
#endif
#ifndef SCVRL__GEMM_MC
#define SCVRL__GEMM_MC (SCVRL__GEMM_MR * 32)
#endif
#ifndef SCVRL__GEMM_NC
#define SCVRL__GEMM_NC (SCVRL__GEMM_NR * 32)
#endif

// ----------------------------------------------------------------------------- micro-kernels
// kc steps of the tile update on packed panels a ([kc][MR]) and b ([kc][NR]); c is the tile's
// top-left element, m <= MR rows and n <= NR columns of it are live. load: start the chains from
// C (else from 0).
#if defined(SCVRL__GEMM_AVX512)

#define SCVRL__K5_DECL(i) __m512 c##i##_0, c##i##_1;
#define SCVRL__K5_INIT(i) \
    if (MR_ > i) { \
        if (load) { c##i##_0 = _mm512_maskz_loadu_ps(m0, c + (i) * ldc); \
                    c##i##_1 = _mm512_maskz_loadu_ps(m1, c + (i) * ldc + 16); } \
        else { c##i##_0 = _mm512_setzero_ps(); c##i##_1 = _mm512_setzero_ps(); } }
#define SCVRL__K5_STEP(i) \
    if (MR_ > i) { __m512 av = _mm512_set1_ps(a[i]); \
        c##i##_0 = _mm512_fmadd_ps(av, b0, c##i##_0); c##i##_1 = _mm512_fmadd_ps(av, b1, c##i##_1); }
#define SCVRL__K5_STORE(i) \
    if (MR_ > i) { _mm512_mask_storeu_ps(c + (i) * ldc, m0, c##i##_0); \
                   _mm512_mask_storeu_ps(c + (i) * ldc + 16, m1, c##i##_1); }
#define SCVRL__K5_BIAS(i) \
    if (MR_ > i) { c##i##_0 = _mm512_add_ps(c##i##_0, bc0); c##i##_1 = _mm512_add_ps(c##i##_1, bc1); }
#define SCVRL__K5_RBIAS(i) \
    if (MR_ > i) { __m512 rb = _mm512_set1_ps(rbias[i]); \
                   c##i##_0 = _mm512_add_ps(c##i##_0, rb); c##i##_1 = _mm512_add_ps(c##i##_1, rb); }
#define SCVRL__K5_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

SCVRL__GEMM_INLINE void scvrl__ukr_body(const int MR_, int64_t kc, const float *a, const float *b,
                                        float *c, int64_t ldc, int n, int load, const float *cn,
                                        const float *bias, const float *rbias) {
    for (int i = 0; i < MR_; i++) {  // next tile's C (a hint: the address may lie past the matrix)
        uintptr_t r = (uintptr_t)cn + (uintptr_t)(i * ldc) * sizeof(float);
        SCVRL__GEMM_PREFETCHW(r);
        SCVRL__GEMM_PREFETCHW(r + 64);
    }
    __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFF : ((1u << n) - 1u));
    __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFF : n <= 16 ? 0 : ((1u << (n - 16)) - 1u));
    SCVRL__K5_ALL(SCVRL__K5_DECL)
    SCVRL__K5_ALL(SCVRL__K5_INIT)
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        SCVRL__K5_ALL(SCVRL__K5_STEP)
        a += SCVRL__GEMM_MR;
        b += SCVRL__GEMM_NR;
    }
    if (bias) {
        __m512 bc0 = _mm512_maskz_loadu_ps(m0, bias), bc1 = _mm512_maskz_loadu_ps(m1, bias + 16);
        SCVRL__K5_ALL(SCVRL__K5_BIAS)
    }
    if (rbias) { SCVRL__K5_ALL(SCVRL__K5_RBIAS) }
    SCVRL__K5_ALL(SCVRL__K5_STORE)
}
#undef SCVRL__K5_DECL
#undef SCVRL__K5_INIT
#undef SCVRL__K5_STEP
#undef SCVRL__K5_STORE
#undef SCVRL__K5_BIAS
#undef SCVRL__K5_RBIAS
#undef SCVRL__K5_ALL

#elif defined(SCVRL__GEMM_AVX2)

#define SCVRL__K2_DECL(i) __m256 c##i##_0, c##i##_1;
#define SCVRL__K2_INIT(i) \
    if (MR_ > i) { \
        if (load) { c##i##_0 = _mm256_maskload_ps(c + (i) * ldc, m0); \
                    c##i##_1 = _mm256_maskload_ps(c + (i) * ldc + 8, m1); } \
        else { c##i##_0 = _mm256_setzero_ps(); c##i##_1 = _mm256_setzero_ps(); } }
#define SCVRL__K2_STEP(i) \
    if (MR_ > i) { __m256 av = _mm256_broadcast_ss(a + i); \
        c##i##_0 = _mm256_fmadd_ps(av, b0, c##i##_0); c##i##_1 = _mm256_fmadd_ps(av, b1, c##i##_1); }
#define SCVRL__K2_STORE(i) \
    if (MR_ > i) { _mm256_maskstore_ps(c + (i) * ldc, m0, c##i##_0); \
                   _mm256_maskstore_ps(c + (i) * ldc + 8, m1, c##i##_1); }
#define SCVRL__K2_BIAS(i) \
    if (MR_ > i) { c##i##_0 = _mm256_add_ps(c##i##_0, bc0); c##i##_1 = _mm256_add_ps(c##i##_1, bc1); }
#define SCVRL__K2_RBIAS(i) \
    if (MR_ > i) { __m256 rb = _mm256_set1_ps(rbias[i]); \
                   c##i##_0 = _mm256_add_ps(c##i##_0, rb); c##i##_1 = _mm256_add_ps(c##i##_1, rb); }
#define SCVRL__K2_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5)

SCVRL__GEMM_INLINE void scvrl__ukr_body(const int MR_, int64_t kc, const float *a, const float *b,
                                        float *c, int64_t ldc, int n, int load, const float *cn,
                                        const float *bias, const float *rbias) {
    for (int i = 0; i < MR_; i++) {  // next tile's C (a hint: the address may lie past the matrix)
        uintptr_t r = (uintptr_t)cn + (uintptr_t)(i * ldc) * sizeof(float);
        SCVRL__GEMM_PREFETCHW(r);
        SCVRL__GEMM_PREFETCHW(r + 32);
    }
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), iota);
    SCVRL__K2_ALL(SCVRL__K2_DECL)
    SCVRL__K2_ALL(SCVRL__K2_INIT)
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        SCVRL__K2_ALL(SCVRL__K2_STEP)
        a += SCVRL__GEMM_MR;
        b += SCVRL__GEMM_NR;
    }
    if (bias) {
        __m256 bc0 = _mm256_maskload_ps(bias, m0), bc1 = _mm256_maskload_ps(bias + 8, m1);
        SCVRL__K2_ALL(SCVRL__K2_BIAS)
    }
    if (rbias) { SCVRL__K2_ALL(SCVRL__K2_RBIAS) }
    SCVRL__K2_ALL(SCVRL__K2_STORE)
}
#undef SCVRL__K2_BIAS
#undef SCVRL__K2_RBIAS
#undef SCVRL__K2_DECL
#undef SCVRL__K2_INIT
#undef SCVRL__K2_STEP
#undef SCVRL__K2_STORE
#undef SCVRL__K2_ALL

#else

SCVRL__GEMM_INLINE void scvrl__ukr_body(const int MR_, int64_t kc, const float *a, const float *b,
                                        float *c, int64_t ldc, int n, int load, const float *cn,
                                        const float *bias, const float *rbias) {
    (void)cn;
    float acc[SCVRL__GEMM_MR][SCVRL__GEMM_NR];
    for (int i = 0; i < MR_; i++)
        for (int j = 0; j < SCVRL__GEMM_NR; j++) acc[i][j] = (load && j < n) ? c[i * ldc + j] : 0.0f;
    for (int64_t k = 0; k < kc; k++) {
        for (int i = 0; i < MR_; i++) {
            float av = a[i];
            for (int j = 0; j < SCVRL__GEMM_NR; j++) {
                float p = av * b[j];
                acc[i][j] = acc[i][j] + p;
            }
        }
        a += SCVRL__GEMM_MR;
        b += SCVRL__GEMM_NR;
    }
    for (int i = 0; i < MR_; i++)
        for (int j = 0; j < n; j++)
            c[i * ldc + j] = bias ? acc[i][j] + bias[j] : rbias ? acc[i][j] + rbias[i] : acc[i][j];
}

#endif

// One tile; m (1..MR) is dispatched to a specialised copy so that dead rows cost nothing.
// bias (n values) is added to every row, rbias (m values) to every column, after the last step.
static void scvrl__gemm_ukr(int m, int n, int64_t kc, const float *a, const float *b, float *c,
                            int64_t ldc, int load, const float *cn, const float *bias, const float *rbias) {
    switch (m) {
#if SCVRL__GEMM_MR > 13
    case 14: scvrl__ukr_body(14, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 13: scvrl__ukr_body(13, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 12: scvrl__ukr_body(12, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 11: scvrl__ukr_body(11, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 10: scvrl__ukr_body(10, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 9: scvrl__ukr_body(9, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 8: scvrl__ukr_body(8, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 7: scvrl__ukr_body(7, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
#endif
#if SCVRL__GEMM_MR > 5
    case 6: scvrl__ukr_body(6, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 5: scvrl__ukr_body(5, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
#endif
    case 4: scvrl__ukr_body(4, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 3: scvrl__ukr_body(3, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    case 2: scvrl__ukr_body(2, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    default: scvrl__ukr_body(1, kc, a, b, c, ldc, n, load, cn, bias, rbias); break;
    }
}

// ----------------------------------------------------------------------------- packing
#if defined(SCVRL__GEMM_AVX512)
// In-register 16x16 transpose of __m512 variables r0..r15: afterwards r<c> lane i = (old) r<i> lane c.
#define SCVRL__GEMM_TR16 \
    do { \
        __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1); \
        __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3); \
        __m512 t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5); \
        __m512 t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7); \
        __m512 t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9); \
        __m512 t10 = _mm512_unpacklo_ps(r10, r11), t11 = _mm512_unpackhi_ps(r10, r11); \
        __m512 t12 = _mm512_unpacklo_ps(r12, r13), t13 = _mm512_unpackhi_ps(r12, r13); \
        __m512 t14 = _mm512_unpacklo_ps(r14, r15), t15 = _mm512_unpackhi_ps(r14, r15); \
        __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE); \
        __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE); \
        __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE); \
        __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE); \
        __m512 u8 = _mm512_shuffle_ps(t8, t10, 0x44), u9 = _mm512_shuffle_ps(t8, t10, 0xEE); \
        __m512 u10 = _mm512_shuffle_ps(t9, t11, 0x44), u11 = _mm512_shuffle_ps(t9, t11, 0xEE); \
        __m512 u12 = _mm512_shuffle_ps(t12, t14, 0x44), u13 = _mm512_shuffle_ps(t12, t14, 0xEE); \
        __m512 u14 = _mm512_shuffle_ps(t13, t15, 0x44), u15 = _mm512_shuffle_ps(t13, t15, 0xEE); \
        __m512 w0_0 = _mm512_shuffle_f32x4(u0, u4, 0x44), w0_1 = _mm512_shuffle_f32x4(u0, u4, 0xEE); \
        __m512 w0_2 = _mm512_shuffle_f32x4(u8, u12, 0x44), w0_3 = _mm512_shuffle_f32x4(u8, u12, 0xEE); \
        r0 = _mm512_shuffle_f32x4(w0_0, w0_2, 0x88); r4 = _mm512_shuffle_f32x4(w0_0, w0_2, 0xDD); \
        r8 = _mm512_shuffle_f32x4(w0_1, w0_3, 0x88); r12 = _mm512_shuffle_f32x4(w0_1, w0_3, 0xDD); \
        __m512 w1_0 = _mm512_shuffle_f32x4(u1, u5, 0x44), w1_1 = _mm512_shuffle_f32x4(u1, u5, 0xEE); \
        __m512 w1_2 = _mm512_shuffle_f32x4(u9, u13, 0x44), w1_3 = _mm512_shuffle_f32x4(u9, u13, 0xEE); \
        r1 = _mm512_shuffle_f32x4(w1_0, w1_2, 0x88); r5 = _mm512_shuffle_f32x4(w1_0, w1_2, 0xDD); \
        r9 = _mm512_shuffle_f32x4(w1_1, w1_3, 0x88); r13 = _mm512_shuffle_f32x4(w1_1, w1_3, 0xDD); \
        __m512 w2_0 = _mm512_shuffle_f32x4(u2, u6, 0x44), w2_1 = _mm512_shuffle_f32x4(u2, u6, 0xEE); \
        __m512 w2_2 = _mm512_shuffle_f32x4(u10, u14, 0x44), w2_3 = _mm512_shuffle_f32x4(u10, u14, 0xEE); \
        r2 = _mm512_shuffle_f32x4(w2_0, w2_2, 0x88); r6 = _mm512_shuffle_f32x4(w2_0, w2_2, 0xDD); \
        r10 = _mm512_shuffle_f32x4(w2_1, w2_3, 0x88); r14 = _mm512_shuffle_f32x4(w2_1, w2_3, 0xDD); \
        __m512 w3_0 = _mm512_shuffle_f32x4(u3, u7, 0x44), w3_1 = _mm512_shuffle_f32x4(u3, u7, 0xEE); \
        __m512 w3_2 = _mm512_shuffle_f32x4(u11, u15, 0x44), w3_3 = _mm512_shuffle_f32x4(u11, u15, 0xEE); \
        r3 = _mm512_shuffle_f32x4(w3_0, w3_2, 0x88); r7 = _mm512_shuffle_f32x4(w3_0, w3_2, 0xDD); \
        r11 = _mm512_shuffle_f32x4(w3_1, w3_3, 0x88); r15 = _mm512_shuffle_f32x4(w3_1, w3_3, 0xDD); \
    } while (0)

// Transposing copy: nrow (1..16) rows of src (row stride ld), kc contiguous elements each, to
// dst[k*dstride + i] for i < 16 (rows >= nrow give 0), storing the lanes in smask.
static void scvrl__gemm_pack_tr(const float *src, int64_t ld, int nrow, int64_t kc, float *dst,
                                int64_t dstride, __mmask16 smask) {
#define SCVRL__TR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define SCVRL__TR_PTR(i) const float *s##i = src + ((i) < nrow ? (i) : 0) * ld; \
    const __mmask16 e##i = (i) < nrow ? 0xFFFF : 0;
#define SCVRL__TR_LOAD(i) __m512 r##i = _mm512_maskz_loadu_ps(e##i & lm, s##i + k);
#define SCVRL__TR_STORE(i) _mm512_mask_storeu_ps(dst + (k + (i)) * dstride, smask, r##i);
#define SCVRL__TR_STORE_TAIL(i) if ((i) < rem) _mm512_mask_storeu_ps(dst + (k + (i)) * dstride, smask, r##i);
    SCVRL__TR_ROWS(SCVRL__TR_PTR)
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        const __mmask16 lm = 0xFFFF;
        SCVRL__TR_ROWS(SCVRL__TR_LOAD)
        SCVRL__GEMM_TR16;
        SCVRL__TR_ROWS(SCVRL__TR_STORE)
    }
    if (k < kc) {
        const int rem = (int)(kc - k);
        const __mmask16 lm = (__mmask16)((1u << rem) - 1u);
        SCVRL__TR_ROWS(SCVRL__TR_LOAD)
        SCVRL__GEMM_TR16;
        SCVRL__TR_ROWS(SCVRL__TR_STORE_TAIL)
    }
#undef SCVRL__TR_ROWS
#undef SCVRL__TR_PTR
#undef SCVRL__TR_LOAD
#undef SCVRL__TR_STORE
#undef SCVRL__TR_STORE_TAIL
}
#endif

// Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into MR-tall panels [kc][MR] (panel ir
// at ap + ir*kc), zero-padded.
static void scvrl__gemm_pack_a(int transA, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                               int64_t kc, float *ap) {
    const int MR = SCVRL__GEMM_MR;
    if (transA) {  // element (i, k) at A[k*lda + i]: read each stored row once, left to right
        for (int64_t k = 0; k < kc; k++) {
            const float *s = A + (p0 + k) * lda + i0;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                int m = (int)(mc - ir < MR ? mc - ir : MR);
                float *d = ap + ir * kc + k * MR;
#if defined(SCVRL__GEMM_AVX512)
                _mm512_mask_storeu_ps(d, (__mmask16)((1u << MR) - 1u),
                                      _mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1u), s + ir));
#else
                int i = 0;
                for (; i < m; i++) d[i] = s[ir + i];
                for (; i < MR; i++) d[i] = 0.0f;
#endif
            }
        }
        return;
    }
    for (int64_t ir = 0; ir < mc; ir += MR) {  // element (i, k) at A[i*lda + k]
        int m = (int)(mc - ir < MR ? mc - ir : MR);
        float *dst = ap + ir * kc;
        const float *src = A + (i0 + ir) * lda + p0;
#if defined(SCVRL__GEMM_AVX512)
        scvrl__gemm_pack_tr(src, lda, m, kc, dst, MR, (__mmask16)((1u << MR) - 1u));
#else
        for (int i = 0; i < m; i++) {
            const float *s = src + i * lda;
            for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = s[k];
        }
        for (int i = m; i < MR; i++)
            for (int64_t k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
#endif
    }
}

// Packs NR-wide panels [jp0, jp1) of columns [j0, j0+nc) x depth [p0, p0+kc) of op(B) into
// [kc][NR] panels, zero-padded. Panel jp starts at bp + jp*NR*kc.
static void scvrl__gemm_pack_b(int transB, const float *B, int64_t ldb, int64_t j0, int64_t nc,
                               int64_t p0, int64_t kc, float *bp, int64_t jp0, int64_t jp1) {
    const int NR = SCVRL__GEMM_NR;
    for (int64_t jp = jp0; jp < jp1; jp++) {
        int64_t jr = jp * NR;
        int n = (int)(nc - jr < NR ? nc - jr : NR);
        float *dst = bp + jr * kc;
        if (!transB) {  // element (k, j) at B[k*ldb + j]
            const float *src = B + p0 * ldb + j0 + jr;
#if defined(SCVRL__GEMM_AVX512)
            __mmask16 m0 = (__mmask16)(n >= 16 ? 0xFFFF : ((1u << n) - 1u));
            __mmask16 m1 = (__mmask16)(n >= 32 ? 0xFFFF : n <= 16 ? 0 : ((1u << (n - 16)) - 1u));
            for (int64_t k = 0; k < kc; k++) {
                const float *s = src + k * ldb;
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
#else
            for (int64_t k = 0; k < kc; k++) {
                const float *s = src + k * ldb;
                float *d = dst + k * NR;
                int j = 0;
                for (; j < n; j++) d[j] = s[j];
                for (; j < NR; j++) d[j] = 0.0f;
            }
#endif
        } else {  // element (k, j) at B[j*ldb + k]
            const float *src = B + (j0 + jr) * ldb + p0;
#if defined(SCVRL__GEMM_AVX512)
            scvrl__gemm_pack_tr(src, ldb, n < 16 ? n : 16, kc, dst, NR, 0xFFFF);
            if (n > 16) scvrl__gemm_pack_tr(src + 16 * ldb, ldb, n - 16, kc, dst + 16, NR, 0xFFFF);
            else for (int64_t k = 0; k < kc; k++) _mm512_store_ps(dst + k * NR + 16, _mm512_setzero_ps());
#else
            for (int j = 0; j < n; j++) {
                const float *s = src + j * ldb;
                for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = s[k];
            }
            for (int j = n; j < NR; j++)
                for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
#endif
        }
    }
}

// ----------------------------------------------------------------------------- driver
// An epilogue called on each finished tile (after its last K step and the bias): c is the tile's
// top-left element, rows [i0, i0+m) and columns [j0, j0+n) of C.
typedef void (*scvrl__gemm_epi_fn)(const void *ectx, float *c, int64_t ldc, int64_t i0, int64_t j0, int m, int n);

typedef struct {
    int transA, transB, accumulate;
    int64_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    const float *bias, *rbias;   // added after the last K block: bias[j] to column j, rbias[i] to row i
    scvrl__gemm_epi_fn epi;      // then this, if not NULL
    const void *ectx;
    float *bpack;      // shared packed B block: up to KC x NC
    int64_t kcb;       // depth of the K blocks (the last may be shorter)
    int64_t mcs;       // rows per work item (multiple of MR, <= MC)
    int64_t tn;        // column groups per NC block
} scvrl__gemm_args;

// Packing buffers come from a small process-wide pool of blocks kept between calls: a fresh
// malloc of a few MiB per call would be returned to the system by free() and cost page faults
// on every call. Blocks are taken and given back with atomic exchanges (any thread may call
// scvrl__sgemm); at most SCVRL__GEMM_POOL blocks of at most SCVRL__GEMM_POOL_MAX bytes each are
// kept (still reachable through the pool, not leaked); scvrl__gemm_pool_release() frees them.
#ifndef SCVRL__GEMM_POOL
#define SCVRL__GEMM_POOL 16
#endif
#define SCVRL__GEMM_POOL_MAX ((size_t)64 << 20)
#if !defined(__STDC_NO_ATOMICS__) && SCVRL__GEMM_POOL > 0
#include <stdatomic.h>
#define SCVRL__GEMM_HAVE_POOL 1
static _Atomic(size_t *) scvrl__gemm_pool[SCVRL__GEMM_POOL];
#endif

// A block is [capacity, offset to the malloc pointer, ...: 64 bytes][data]; returns the
// 64-byte aligned data.
static float *scvrl__gemm_get(size_t bytes, size_t **blk) {
    if (bytes < 64) bytes = 64;
#ifdef SCVRL__GEMM_HAVE_POOL
    for (int attempt = 0; attempt < 4; attempt++) {  // best fit: the smallest block that is big enough
        int best = -1;
        size_t *bp = NULL;
        for (int i = 0; i < SCVRL__GEMM_POOL; i++) {
            size_t *p = atomic_load_explicit(&scvrl__gemm_pool[i], memory_order_acquire);
            if (p && p[0] >= bytes && (!bp || p[0] < bp[0])) { best = i; bp = p; }
        }
        if (best < 0) break;
        if (atomic_compare_exchange_strong(&scvrl__gemm_pool[best], &bp, (size_t *)NULL)) {
            *blk = bp;
            return (float *)(void *)((char *)bp + 64);
        }
    }
#endif
    char *raw = (char *)malloc(bytes + 128);
    if (!raw) { *blk = NULL; return NULL; }
    size_t *q = (size_t *)(void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    q[0] = bytes;                          // capacity of the data part
    q[1] = (size_t)((char *)q - raw);      // offset back to what malloc returned
    *blk = q;
    return (float *)(void *)((char *)q + 64);
}

static void scvrl__gemm_blk_free(size_t *blk) {
    if (blk) free((char *)blk - blk[1]);
}

static void scvrl__gemm_put(size_t *blk) {
    if (!blk) return;
#ifdef SCVRL__GEMM_HAVE_POOL
    if (blk[0] <= SCVRL__GEMM_POOL_MAX) {
        for (int i = 0; i < SCVRL__GEMM_POOL; i++) {
            size_t *e = NULL;
            if (atomic_compare_exchange_strong(&scvrl__gemm_pool[i], &e, blk)) return;
        }
        for (int i = 0; i < SCVRL__GEMM_POOL; i++) {  // full: displace a smaller block
            size_t *e = atomic_load_explicit(&scvrl__gemm_pool[i], memory_order_relaxed);
            if (e && e[0] < blk[0] && atomic_compare_exchange_strong(&scvrl__gemm_pool[i], &e, blk)) {
                blk = e;
                break;
            }
        }
    }
#endif
    scvrl__gemm_blk_free(blk);
}

// Frees the pooled packing buffers (optional, e.g. at shutdown; sgemm refills the pool as needed).
static void scvrl__gemm_pool_release(void) {
#ifdef SCVRL__GEMM_HAVE_POOL
    for (int i = 0; i < SCVRL__GEMM_POOL; i++)
        scvrl__gemm_blk_free(atomic_exchange(&scvrl__gemm_pool[i], (size_t *)NULL));
#endif
}

// One work item of the (jc, pc) step: rows [ic, ic+mc) x NR-panels [q0, q1) of the B block.
static void scvrl__gemm_item(const scvrl__gemm_args *g, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
                             int64_t ic, int64_t mc, int64_t q0, int64_t q1, float *apack) {
    const int64_t MR = SCVRL__GEMM_MR, NR = SCVRL__GEMM_NR;
    const int64_t ldc = g->ldc;
    int load = g->accumulate || pc > 0, last = pc + kc == g->K;
    scvrl__gemm_pack_a(g->transA, g->A, g->lda, ic, mc, pc, kc, apack);
    // A micro-panel stays in L1 while the B panels stream from L2/L3
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int m = (int)(mc - ir < MR ? mc - ir : MR);
        float *ct = g->C + (ic + ir) * ldc + jc;
        for (int64_t q = q0; q < q1; q++) {
            int64_t jr = q * NR;
            int n = (int)(nc - jr < NR ? nc - jr : NR);
            const float *cn = q + 1 < q1 ? ct + jr + NR : ir + MR < mc ? ct + MR * ldc + q0 * NR : ct;
            scvrl__gemm_ukr(m, n, kc, apack + ir * kc, g->bpack + jr * kc, ct + jr, ldc, load, cn,
                            last && g->bias ? g->bias + jc + jr : NULL, last && g->rbias ? g->rbias + ic + ir : NULL);
            if (last && g->epi) g->epi(g->ectx, ct + jr, ldc, ic + ir, jc + jr, m, n);
        }
    }
}

// Runs the whole product; with nt > 1 it must be called by every thread of the current team
// (work is shared with orphaned worksharing loops, whose implicit barriers order the steps).
static void scvrl__gemm_worker(const scvrl__gemm_args *g, int nt, float *apack) {
    const int64_t NR = SCVRL__GEMM_NR;
    const int64_t M = g->M, N = g->N, K = g->K;
    for (int64_t jc = 0; jc < N; jc += SCVRL__GEMM_NC) {
        int64_t nc = N - jc < SCVRL__GEMM_NC ? N - jc : SCVRL__GEMM_NC;
        int64_t npan = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < K; pc += g->kcb) {
            int64_t kc = K - pc < g->kcb ? K - pc : g->kcb;
            if (nt > 1) {
#ifdef _OPENMP
                const int64_t tn = g->tn, nitems = ((M + g->mcs - 1) / g->mcs) * tn;
#pragma omp for schedule(dynamic, 1)
                for (int64_t q = 0; q < npan; q++)
                    scvrl__gemm_pack_b(g->transB, g->B, g->ldb, jc, nc, pc, kc, g->bpack, q, q + 1);
                // (implicit barrier: the B block is complete)
#pragma omp for schedule(dynamic, 1)
                for (int64_t it = 0; it < nitems; it++) {
                    int64_t rc = it / tn, cg = it % tn, ic = rc * g->mcs;
                    int64_t mc = M - ic < g->mcs ? M - ic : g->mcs;
                    scvrl__gemm_item(g, jc, nc, pc, kc, ic, mc, npan * cg / tn, npan * (cg + 1) / tn, apack);
                }
                // (implicit barrier: the B block may be overwritten)
#endif
            } else {
                scvrl__gemm_pack_b(g->transB, g->B, g->ldb, jc, nc, pc, kc, g->bpack, 0, npan);
                for (int64_t ic = 0; ic < M; ic += g->mcs) {
                    int64_t mc = M - ic < g->mcs ? M - ic : g->mcs;
                    scvrl__gemm_item(g, jc, nc, pc, kc, ic, mc, 0, npan, apack);
                }
            }
        }
    }
}

// scvrl__sgemm with epilogues: after the last K step, bias[j] (N values, or NULL) is added to
// column j, rbias[i] (M values, or NULL) to row i (the same bits as the plain product followed by
// that add), then epi (if not NULL) runs on the finished tile.
static void scvrl__sgemm_ex(int transA, int transB, int64_t M, int64_t N, int64_t K,
                            const float *A, int64_t lda, const float *B, int64_t ldb,
                            float *C, int64_t ldc, int accumulate, const float *bias, const float *rbias,
                            scvrl__gemm_epi_fn epi, const void *ectx) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                float c = accumulate ? C[i * ldc + j] : 0.0f;
                C[i * ldc + j] = bias ? c + bias[j] : rbias ? c + rbias[i] : c;
            }
        if (epi) for (int64_t i = 0; i < M; i++) epi(ectx, C + i * ldc, ldc, i, 0, 1, (int)N);
        return;
    }
    const int64_t MR = SCVRL__GEMM_MR, NR = SCVRL__GEMM_NR;
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel()) nt = omp_get_max_threads();
#endif
    // small problems: fewer threads (the result does not depend on the thread count)
    double flops = 2.0 * (double)M * (double)N * (double)K;
    if (flops < 2e6 * nt) nt = (int)(flops / 2e6) + 1;
    int64_t nmr = (M + MR - 1) / MR;
    int64_t npan = ((N < SCVRL__GEMM_NC ? N : SCVRL__GEMM_NC) + NR - 1) / NR;
    if (nt > nmr * npan) nt = (int)(nmr * npan);
    if (nt < 1) nt = 1;

    scvrl__gemm_args g;
    g.transA = transA; g.transB = transB; g.accumulate = accumulate;
    g.M = M; g.N = N; g.K = K; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.A = A; g.B = B; g.C = C; g.bias = bias; g.rbias = bias ? NULL : rbias; g.epi = epi; g.ectx = ectx;
    {   // K blocks of (almost) equal depth, at most KC
        int64_t nkb = (K + SCVRL__GEMM_KC - 1) / SCVRL__GEMM_KC;
        g.kcb = (K + nkb - 1) / nkb;
    }
    // Work items: about 3 per thread (dynamic scheduling evens out the rest), rows first.
    g.tn = 1;
    if (nt == 1) {
        g.mcs = nmr * MR < SCVRL__GEMM_MC ? nmr * MR : SCVRL__GEMM_MC;
    } else {
        int64_t want = 3 * (int64_t)nt;
        int64_t per = (nmr + want - 1) / want;  // micro-rows per item
        if (per * MR > SCVRL__GEMM_MC) per = SCVRL__GEMM_MC / MR;
        if (per < 1) per = 1;
        g.mcs = per * MR;
        int64_t nrc = (nmr + per - 1) / per;
        if (nrc < want) {  // few rows: split the columns too
            g.tn = (want + nrc - 1) / nrc;
            if (g.tn > npan) g.tn = npan;
        }
    }
    int64_t ncmax = N < SCVRL__GEMM_NC ? ((N + NR - 1) / NR) * NR : SCVRL__GEMM_NC;
    size_t *bblk;
    g.bpack = scvrl__gemm_get((size_t)(g.kcb * ncmax) * sizeof(float), &bblk);
    size_t abytes = (size_t)(g.kcb * g.mcs) * sizeof(float);
    if (!g.bpack) abort();  // out of memory (a few MiB at most)
    if (nt <= 1) {
        size_t *ablk;
        float *ap = scvrl__gemm_get(abytes, &ablk);
        if (!ap) abort();
        scvrl__gemm_worker(&g, 1, ap);
        scvrl__gemm_put(ablk);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        {
            size_t *ablk;
            float *ap = scvrl__gemm_get(abytes, &ablk);
            if (!ap) abort();
            // the worksharing loops need the whole team; a team smaller than asked still works
            scvrl__gemm_worker(&g, omp_get_num_threads(), ap);
            scvrl__gemm_put(ablk);
        }
#endif
    }
    scvrl__gemm_put(bblk);
}

static void scvrl__sgemm_bias(int transA, int transB, int64_t M, int64_t N, int64_t K,
                              const float *A, int64_t lda, const float *B, int64_t ldb,
                              float *C, int64_t ldc, int accumulate, const float *bias, const float *rbias) {
    scvrl__sgemm_ex(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, rbias, NULL, NULL);
}
static void scvrl__sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t lda, const float *B, int64_t ldb,
                         float *C, int64_t ldc, int accumulate) {
    scvrl__sgemm_ex(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL, NULL, NULL, NULL);
}

#ifdef SCVRL__GEMM_POP_OPTIONS
#pragma GCC pop_options
#undef SCVRL__GEMM_POP_OPTIONS
#endif
// --- end GEMM ---

// ============================================================================
// 14. CPU kernels: elementwise, reductions, shape ops
// ============================================================================
typedef void (*scvrl__kernel_fn)(scvrl_tensor *t, const scvrl_graph *g);

// Offset of row r (all dims but the last) for shape ne and strides st.
static inline int64_t scvrl__row_offs(int64_t r, int nd, const int64_t *ne, const int64_t *st) {
    int64_t o = 0;
    for (int i = nd - 2; i >= 0; i--) { int64_t k = r % ne[i]; r /= ne[i]; o += k * st[i]; }
    return o;
}

// Strides of x aligned to out's dims (right-aligned), zero where x broadcasts.
static void scvrl__bcast_strides(const scvrl_tensor *x, const scvrl_tensor *out, int64_t *st) {
    for (int i = 0; i < out->ndim; i++) {
        int xi = x->ndim - out->ndim + i;
        st[i] = (xi >= 0 && x->ne[xi] != 1) ? x->st[xi] : 0;
    }
}

static void scvrl__cpu_LEAF(scvrl_tensor *t, const scvrl_graph *g) { (void)t; (void)g; }
static void scvrl__cpu_RESHAPE(scvrl_tensor *t, const scvrl_graph *g) { (void)t; (void)g; }
static void scvrl__cpu_PERMUTE(scvrl_tensor *t, const scvrl_graph *g) { (void)t; (void)g; }
static void scvrl__cpu_SLICE(scvrl_tensor *t, const scvrl_graph *g) { (void)t; (void)g; }
static void scvrl__cpu_EXPAND(scvrl_tensor *t, const scvrl_graph *g) { (void)t; (void)g; }

// y = f(a, b) elementwise with broadcasting; y contiguous.
#define SCVRL__BINARY_LOOP(EXPR)                                                              \
    do {                                                                                      \
        const scvrl_tensor *a_ = t->src[0], *b_ = t->src[1];                                  \
        int nd = t->ndim;                                                                     \
        int64_t sa[SCVRL_MAX_DIMS], sb[SCVRL_MAX_DIMS];                                       \
        scvrl__bcast_strides(a_, t, sa); scvrl__bcast_strides(b_, t, sb);                     \
        int64_t inner = nd ? t->ne[nd - 1] : 1, n = scvrl_nelements(t);                       \
        int64_t rows = inner ? n / inner : 0, ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0; \
        const float *A = (const float *)a_->data, *B = (const float *)b_->data;               \
        float *Y = (float *)t->data;                                                          \
        _Pragma("omp parallel for schedule(static) if (n > 32768)")                            \
        for (int64_t r = 0; r < rows; r++) {                                                  \
            const float *pa = A + scvrl__row_offs(r, nd, t->ne, sa);                          \
            const float *pb = B + scvrl__row_offs(r, nd, t->ne, sb);                          \
            float *py = Y + r * inner;                                                        \
            for (int64_t i = 0; i < inner; i++) { float x = pa[i * ia], y = pb[i * ib]; py[i] = (EXPR); } \
        }                                                                                     \
    } while (0)

static void scvrl__cpu_ADD(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(x + y); }
static void scvrl__cpu_SUB(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(x - y); }
static void scvrl__cpu_MUL(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(x * y); }
static void scvrl__cpu_DIV(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(x / y); }

static inline float scvrl__gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
static inline float scvrl__gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    return cdf + x * 0.39894228040143268f * expf(-0.5f * x * x);
}
// Row kernels with an AVX-512 path (16 lanes; the tail and other CPUs use libm): y = exp(x), and
// y = GELU(x) = x Phi(x) with Phi from erfc (Numerical Recipes' erfcc, 1.2e-7 in exact arithmetic;
// in float 2e-6 relative in the far tail). exp: Cephes' reduction and polynomial (about 1e-7).
#if defined(__AVX512F__)
static inline __m512 scvrl__exp16(__m512 x) {
    __m512 lo = _mm512_set1_ps(-87.33654f), xc = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.72283f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(xc, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_add_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f));
    __m512 y = _mm512_scalef_ps(p, n);                                   // p * 2^n
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), _mm512_setzero_ps());   // exp(-inf) = 0
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);                // NaN stays NaN
}
static inline __m512 scvrl__gelu16(__m512 x) {
    __m512 u = _mm512_mul_ps(x, _mm512_set1_ps(-0.70710678118654752f));             // Phi(x) = erfc(u) / 2
    __m512 z = _mm512_abs_ps(u), one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_mul_ps(_mm512_set1_ps(0.5f), z)));
    static const float c[9] = { -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f,
                                0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f };
    __m512 p = _mm512_set1_ps(0.17087277f);
    for (int i = 0; i < 8; i++) p = _mm512_add_ps(_mm512_mul_ps(p, t), _mm512_set1_ps(c[i]));
    p = _mm512_add_ps(_mm512_mul_ps(p, t), _mm512_set1_ps(c[8]));
    __m512 a = _mm512_mul_ps(t, scvrl__exp16(_mm512_sub_ps(p, _mm512_mul_ps(z, z))));
    __m512 e = _mm512_mask_sub_ps(a, _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_set1_ps(2.0f), a);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), e);
}
#endif
static void scvrl__exp_row(const float *x, float *y, int64_t n, float sub) {
    int64_t i = 0;
#if defined(__AVX512F__)
    __m512 s = _mm512_set1_ps(sub);
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, scvrl__exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
#endif
    for (; i < n; i++) y[i] = expf(x[i] - sub);
}
static void scvrl__gelu_row(const float *x, float *y, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, scvrl__gelu16(_mm512_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = scvrl__gelu(x[i]);
}

static void scvrl__cpu_RELU_BACK(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(x > 0.0f ? y : 0.0f); }
static void scvrl__cpu_GELU_BACK(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__BINARY_LOOP(y * scvrl__gelu_grad(x)); }

// y = f(x) elementwise; x any strides, y contiguous.
#define SCVRL__UNARY_LOOP(EXPR)                                                               \
    do {                                                                                      \
        const scvrl_tensor *x_ = t->src[0];                                                   \
        int nd = t->ndim;                                                                     \
        int64_t inner = nd ? t->ne[nd - 1] : 1, n = scvrl_nelements(t);                       \
        int64_t rows = inner ? n / inner : 0, ix = nd ? x_->st[nd - 1] : 0;                   \
        const float *X = (const float *)x_->data;                                             \
        float *Y = (float *)t->data;                                                          \
        _Pragma("omp parallel for schedule(static) if (n > 32768)")                            \
        for (int64_t r = 0; r < rows; r++) {                                                  \
            const float *px = X + scvrl__row_offs(r, nd, x_->ne, x_->st);                      \
            float *py = Y + r * inner;                                                        \
            for (int64_t i = 0; i < inner; i++) { float x = px[i * ix]; py[i] = (EXPR); }     \
        }                                                                                     \
    } while (0)

static void scvrl__cpu_SCALE(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g; float s = t->fp[0], c = t->fp[1];
    SCVRL__UNARY_LOOP(x * s + c);
}
static void scvrl__cpu_RELU(scvrl_tensor *t, const scvrl_graph *g) { (void)g; SCVRL__UNARY_LOOP(x > 0.0f || x != x ? x : 0.0f); }
static void scvrl__cpu_GELU(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    if (scvrl_is_contiguous(t->src[0])) {
        const float *X = (const float *)t->src[0]->data;
        float *Y = (float *)t->data;
        int64_t n = scvrl_nelements(t), nb = (n + 4095) / 4096;
        #pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t b = 0; b < nb; b++) scvrl__gelu_row(X + b * 4096, Y + b * 4096, b == nb - 1 ? n - b * 4096 : 4096);
        return;
    }
    SCVRL__UNARY_LOOP(scvrl__gelu(x));
}

static void scvrl__cpu_CONT(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x_ = t->src[0];
    int nd = t->ndim;
    int64_t inner = nd ? t->ne[nd - 1] : 1, n = scvrl_nelements(t);
    int64_t rows = inner ? n / inner : 0, ix = nd ? x_->st[nd - 1] : 0;
    const uint32_t *X = (const uint32_t *)x_->data;   // F32 and I32 alike: 4-byte copies
    uint32_t *Y = (uint32_t *)t->data;
    SCVRL_ASSERT(scvrl_dtype_size(t->type) == 4, "cont: 4-byte types only");
#if defined(SCVRL__GEMM_AVX512)
    if (nd >= 2 && ix != 1 && x_->st[nd - 2] == 1 && n > 0) {
        // a transpose of the last two dims: 16 x 16 tiles through registers (bits moved unchanged).
        // Rows i (dim nd-2) of y are contiguous in x; y's column j is x's row j, stride ix.
        const int64_t R = t->ne[nd - 2], RB = 256, nrb = (R + RB - 1) / RB, ncb = (inner + 15) / 16;
        const int64_t outer = rows / R, items = outer * nrb * ncb;
        #pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t it = 0; it < items; it++) {
            int64_t o = it / (nrb * ncb), rb = (it / ncb) % nrb, cb = it % ncb;
            int64_t r0 = rb * RB, j0 = cb * 16;
            int64_t kc = R - r0 < RB ? R - r0 : RB, nj = inner - j0 < 16 ? inner - j0 : 16;
            const uint32_t *src = X + scvrl__row_offs(o * R + r0, nd, x_->ne, x_->st) + j0 * ix;
            scvrl__gemm_pack_tr((const float *)(const void *)src, ix, (int)nj, kc,
                                (float *)(void *)(Y + (o * R + r0) * inner + j0), inner, (__mmask16)((1u << nj) - 1u));
        }
        return;
    }
#endif
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const uint32_t *px = X + scvrl__row_offs(r, nd, x_->ne, x_->st);
        uint32_t *py = Y + r * inner;
        if (ix == 1) memcpy(py, px, (size_t)inner * 4);
        else for (int64_t i = 0; i < inner; i++) py[i] = px[i * ix];
    }
}

static void scvrl__cpu_GRAD_ACC(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x_ = t->src[0];
    int nd = t->ndim;
    int64_t inner = nd ? t->ne[nd - 1] : 1, n = scvrl_nelements(t);
    int64_t rows = inner ? n / inner : 0, ix = nd ? x_->st[nd - 1] : 0;
    const float *X = (const float *)x_->data;
    float *Y = (float *)t->data;
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *px = X + scvrl__row_offs(r, nd, x_->ne, x_->st);
        float *py = Y + r * inner;
        for (int64_t i = 0; i < inner; i++) py[i] += px[i * ix];
    }
}

// Sum over leading rows: y[c] = sum_r x[r, c] (x contiguous [R, C]); fixed 256-row blocks
// summed in double and combined in block order, so the result never depends on threads.
static void scvrl__sum_rows(const float *x, int64_t R, int64_t C, float *y) {
    const int64_t BR = 256;
    int64_t nb = (R + BR - 1) / BR;
    double *part = (double *)scvrl__xmalloc((size_t)(nb * C) * sizeof(double));
    #pragma omp parallel for schedule(static) if (R * C > 32768)
    for (int64_t b = 0; b < nb; b++) {
        double *p = part + b * C;
        for (int64_t c = 0; c < C; c++) p[c] = 0.0;
        int64_t r1 = (b + 1) * BR < R ? (b + 1) * BR : R;
        for (int64_t r = b * BR; r < r1; r++)
            for (int64_t c = 0; c < C; c++) p[c] += x[r * C + c];
    }
    for (int64_t c = 0; c < C; c++) {
        double s = 0.0;
        for (int64_t b = 0; b < nb; b++) s += part[b * C + c];
        y[c] = (float)s;
    }
    SCVRL_FREE(part);
}

static void scvrl__cpu_SUM_TO(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    int nd = x->ndim, off = x->ndim - t->ndim;
    int64_t one[SCVRL_MAX_DIMS];        // output shape padded to x's rank
    for (int i = 0; i < nd; i++) one[i] = i < off ? 1 : t->ne[i - off];
    float *Y = (float *)t->data;
    const float *X = (const float *)x->data;
    // fast path: x contiguous, reduced dims are exactly a leading block
    int lead = 0;
    while (lead < nd && one[lead] == 1) lead++;
    int tail_ok = 1;
    for (int i = lead; i < nd; i++) if (one[i] != x->ne[i]) tail_ok = 0;
    if (tail_ok && scvrl_is_contiguous(x)) {
        int64_t C = 1, R = 1;
        for (int i = lead; i < nd; i++) C *= x->ne[i];
        for (int i = 0; i < lead; i++) R *= x->ne[i];
        scvrl__sum_rows(X, R, C, Y);
        return;
    }
    // general: for each output element, sum its reduction set in a fixed order (double)
    int rd[SCVRL_MAX_DIMS], nr = 0;
    int64_t nred = 1;
    for (int i = 0; i < nd; i++) if (one[i] == 1 && x->ne[i] != 1) { rd[nr++] = i; nred *= x->ne[i]; }
    int64_t nout = scvrl_nelements(t);
    #pragma omp parallel for schedule(static) if (nout * nred > 32768)
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = 0, r = o;
        for (int i = nd - 1; i >= 0; i--) {
            int64_t k = r % one[i]; r /= one[i];
            base += k * x->st[i];
        }
        double s = 0.0;
        for (int64_t q = 0; q < nred; q++) {
            int64_t qq = q, off2 = 0;
            for (int j = nr - 1; j >= 0; j--) { int64_t k = qq % x->ne[rd[j]]; qq /= x->ne[rd[j]]; off2 += k * x->st[rd[j]]; }
            s += X[base + off2];
        }
        Y[o] = (float)s;
    }
}

// Copy a contiguous src block-wise into a slab of a contiguous dst along dim.
static void scvrl__copy_slab(float *dst, const int64_t *dne, const float *src, const int64_t *sne, int nd,
                             int dim, int64_t start, int add) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++) outer *= sne[i];
    for (int i = dim + 1; i < nd; i++) inner *= sne[i];
    int64_t sl = sne[dim] * inner, dl = dne[dim] * inner;
    #pragma omp parallel for schedule(static) if (outer * sl > 32768)
    for (int64_t o = 0; o < outer; o++) {
        float *d = dst + o * dl + start * inner;
        const float *s = src + o * sl;
        if (add) for (int64_t i = 0; i < sl; i++) d[i] += s[i];
        else memcpy(d, s, (size_t)sl * sizeof(float));
    }
}

static void scvrl__cpu_CONCAT(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *a = t->src[0], *b = t->src[1];
    int dim = (int)t->ip[0];
    scvrl__copy_slab((float *)t->data, t->ne, (const float *)a->data, a->ne, t->ndim, dim, 0, 0);
    scvrl__copy_slab((float *)t->data, t->ne, (const float *)b->data, b->ne, t->ndim, dim, a->ne[dim], 0);
}

static void scvrl__cpu_SLICE_BACK(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    memset(t->data, 0, (size_t)scvrl_nelements(t) * sizeof(float));
    scvrl__copy_slab((float *)t->data, t->ne, (const float *)x->data, x->ne, t->ndim, (int)t->ip[0], t->ip[1], 0);
}

static void scvrl__index_geom(const scvrl_tensor *x, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1; *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= x->ne[i];
    for (int i = dim + 1; i < x->ndim; i++) *inner *= x->ne[i];
}

static void scvrl__cpu_INDEX_SELECT(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    const int32_t *idx = (const int32_t *)t->src[1]->data;
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = t->ne[dim], nx = x->ne[dim];
    scvrl__index_geom(x, dim, &outer, &inner);
    for (int64_t j = 0; j < n; j++) SCVRL_ASSERT(idx[j] >= 0 && idx[j] < nx, "index_select: index %d out of [0, %lld)", idx[j], (long long)nx);
    const float *X = (const float *)x->data;
    float *Y = (float *)t->data;
    #pragma omp parallel for schedule(static) if (outer * n * inner > 32768)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            memcpy(Y + (o * n + j) * inner, X + (o * nx + idx[j]) * inner, (size_t)inner * sizeof(float));
}

static void scvrl__cpu_INDEX_ADD(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *dy = t->src[0];
    const int32_t *idx = (const int32_t *)t->src[1]->data;
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = dy->ne[dim], nx = t->ne[dim];
    scvrl__index_geom(t, dim, &outer, &inner);
    const float *D = (const float *)dy->data;
    float *Y = (float *)t->data;
    memset(Y, 0, (size_t)scvrl_nelements(t) * sizeof(float));
    #pragma omp parallel for schedule(static) if (outer * n * inner > 32768)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++) {
            float *y = Y + (o * nx + idx[j]) * inner;
            const float *d = D + (o * n + j) * inner;
            for (int64_t i = 0; i < inner; i++) y[i] += d[i];
        }
}

static void scvrl__cpu_DROPOUT(scvrl_tensor *t, const scvrl_graph *g) {
    const float *X = (const float *)t->src[0]->data;
    float *Y = (float *)t->data;
    float p = t->fp[0], s = 1.0f / (1.0f - p);
    uint64_t key = scvrl__rng_key(g->seed, (uint64_t)t->ip[0]);
    int64_t n = scvrl_nelements(t);
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) Y[i] = scvrl__rng_uniform_k(key, (uint64_t)i) < p ? 0.0f : X[i] * s;
}

// Drop-path rows of t's input into Y: Y = x * f per row (f = 0 or 1/(1-p), one draw per row), or,
// with O (the DROP_PATH fused with its only consumer, ADD(t, o): see scvrl__fusable), Y = o + x * f:
// the same bits as the two kernels (the product, then one addition), without t's buffer.
static void scvrl__drop_path_rows(const scvrl_tensor *t, const float *O, float *Y, const scvrl_graph *g) {
    const float *X = (const float *)t->src[0]->data;
    float p = t->fp[0], s = 1.0f / (1.0f - p);
    uint64_t key = scvrl__rng_key(g->seed, (uint64_t)t->ip[0]);
    int64_t rows = t->ne[0], inner = rows ? scvrl_nelements(t) / rows : 0;
    for (int64_t r = 0; r < rows; r++) {
        float f = scvrl__rng_uniform_k(key, (uint64_t)r) < p ? 0.0f : s;
        const float *x = X + r * inner;
        float *y = Y + r * inner;
        if (O) {
            const float *o = O + r * inner;
            #pragma omp parallel for schedule(static) if (inner > 32768)
            for (int64_t i = 0; i < inner; i++) y[i] = o[i] + x[i] * f;
        } else {
            #pragma omp parallel for schedule(static) if (inner > 32768)
            for (int64_t i = 0; i < inner; i++) y[i] = x[i] * f;
        }
    }
}
static void scvrl__cpu_DROP_PATH(scvrl_tensor *t, const scvrl_graph *g) { scvrl__drop_path_rows(t, NULL, (float *)t->data, g); }
static void scvrl__cpu_drop_path_add(scvrl_tensor *t, scvrl_tensor *u, const scvrl_graph *g) {
    scvrl__drop_path_rows(t, (const float *)(u->src[0] == t ? u->src[1] : u->src[0])->data, (float *)u->data, g);
}

// --- matmul and linear ---
// Offset of batch bi over the leading nb dims of t.
static int64_t scvrl__batch_offs(const scvrl_tensor *t, int nb, int64_t bi) {
    int64_t o = 0;
    for (int i = nb - 1; i >= 0; i--) { int64_t k = bi % t->ne[i]; bi /= t->ne[i]; o += k * t->st[i]; }
    return o;
}
// Row stride of the stored matrix in the last two dims.
static int64_t scvrl__ld(const scvrl_tensor *t) {
    return t->ne[t->ndim - 2] == 1 ? t->ne[t->ndim - 1] : t->st[t->ndim - 2];
}

static void scvrl__cpu_MATMUL(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *a = t->src[0], *b = t->src[1];
    int tA = (int)t->ip[0], tB = (int)t->ip[1], nd = t->ndim;
    int64_t M = t->ne[nd - 2], N = t->ne[nd - 1];
    int64_t K = tA ? a->ne[a->ndim - 2] : a->ne[a->ndim - 1];
    int64_t lda = scvrl__ld(a), ldb = scvrl__ld(b), nbatch = 1;
    for (int i = 0; i < nd - 2; i++) nbatch *= t->ne[i];
    const float *A = (const float *)a->data, *B = (const float *)b->data;
    float *C = (float *)t->data;
    int par_batch = nbatch >= 2 * scvrl__nthreads() && M * N * K < (1 << 22);
    #pragma omp parallel for schedule(dynamic) if (par_batch)
    for (int64_t bi = 0; bi < nbatch; bi++) {
        const float *pa = A + scvrl__batch_offs(a, nd - 2, bi);
        const float *pb = B + (b->ndim > 2 ? scvrl__batch_offs(b, nd - 2, bi) : 0);
        scvrl__sgemm(tA, tB, M, N, K, pa, lda, pb, ldb, C + bi * M * N, N, 0);
    }
}

static void scvrl__cpu_LINEAR(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    scvrl__sgemm_bias(0, 1, rows, out, in, (const float *)x->data, in, (const float *)w->data, in, (float *)t->data, out, 0,
                      b ? (const float *)b->data : NULL, NULL);
}

// LINEAR fused with its only consumer, the next node (see scvrl__fusable): GELU of it, or ADD of
// it and a tensor of the same shape. The GEMM writes into the consumer's buffer and finishes each
// tile there with the consumer's operation, the same bits as the two kernels one after the other
// (GELU: the vector form on all but the tensor's last n % 16 elements, as scvrl__cpu_GELU).
typedef struct { int gelu; const float *other; int64_t N, lim; } scvrl__lin_epi;

static void scvrl__lin_epi_fn(const void *ectx, float *c, int64_t ldc, int64_t i0, int64_t j0, int m, int n) {
    const scvrl__lin_epi *e = (const scvrl__lin_epi *)ectx;
    for (int i = 0; i < m; i++) {
        float *r = c + i * ldc;
        int64_t f0 = (i0 + i) * e->N + j0;     // flat index of r[0] in the output
        if (!e->gelu) {
            const float *o = e->other + f0;
            int j = 0;
#if defined(__AVX512F__)
            for (; j + 16 <= n; j += 16) _mm512_storeu_ps(r + j, _mm512_add_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(o + j)));
#endif
            for (; j < n; j++) r[j] = r[j] + o[j];
            continue;
        }
#if defined(__AVX512F__)
        for (int j = 0; j < n; j += 16) {
            int wd = n - j < 16 ? n - j : 16;
            int64_t fj = f0 + j;
            int wv = fj >= e->lim ? 0 : fj + wd <= e->lim ? wd : (int)(e->lim - fj);
            if (wv) {
                __mmask16 mk = (__mmask16)((1u << wv) - 1u);
                _mm512_mask_storeu_ps(r + j, mk, scvrl__gelu16(_mm512_maskz_loadu_ps(mk, r + j)));
            }
            for (int q = wv; q < wd; q++) r[j + q] = scvrl__gelu(r[j + q]);
        }
#else
        for (int j = 0; j < n; j++) r[j] = scvrl__gelu(r[j]);
#endif
    }
}

static void scvrl__cpu_linear_fused(scvrl_tensor *t, scvrl_tensor *u) {
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    scvrl__lin_epi e;
    e.gelu = u->op == SCVRL_OP_GELU;
    e.other = e.gelu ? NULL : (const float *)(u->src[0] == t ? u->src[1] : u->src[0])->data;
    e.N = out; e.lim = (rows * out) & ~(int64_t)15;
    scvrl__sgemm_ex(0, 1, rows, out, in, (const float *)x->data, in, (const float *)w->data, in, (float *)u->data, out, 0,
                    b ? (const float *)b->data : NULL, NULL, scvrl__lin_epi_fn, &e);
}

// ============================================================================
// 15. CPU kernels: conv3d and pooling
// ============================================================================
// 5-D geometry of a conv/pool operand in either layout: sizes and element strides.
typedef struct { int64_t N, C, T, H, W, sN, sC, sT, sH, sW; } scvrl__g5;

static scvrl__g5 scvrl__geom(const scvrl_tensor *x, int layout) {
    scvrl__g5 g;
    if (layout == SCVRL_LAYOUT_NCDHW) {
        g.N = x->ne[0]; g.C = x->ne[1]; g.T = x->ne[2]; g.H = x->ne[3]; g.W = x->ne[4];
        g.sN = x->st[0]; g.sC = x->st[1]; g.sT = x->st[2]; g.sH = x->st[3]; g.sW = x->st[4];
    } else {
        g.N = x->ne[0]; g.T = x->ne[1]; g.H = x->ne[2]; g.W = x->ne[3]; g.C = x->ne[4];
        g.sN = x->st[0]; g.sT = x->st[1]; g.sH = x->st[2]; g.sW = x->st[3]; g.sC = x->st[4];
    }
    return g;
}

typedef struct { int64_t kt, kh, kw, st, sh, sw, pt, ph, pw; int64_t groups; int layout; } scvrl__convp;

static scvrl__convp scvrl__conv_params(const scvrl_tensor *t, const scvrl_tensor *w) {
    scvrl__convp p;
    p.kt = w->ne[2]; p.kh = w->ne[3]; p.kw = w->ne[4];
    p.st = t->ip[0]; p.sh = t->ip[1]; p.sw = t->ip[2];
    p.pt = t->ip[3]; p.ph = t->ip[4]; p.pw = t->ip[5];
    p.groups = t->ip[6]; p.layout = (int)t->ip[7];
    return p;
}

// im2col for one sample: cols[p][k], p over output positions, k = ((ci*kt + a)*kh + b)*kw + c.
static void scvrl__im2col(const float *x, const scvrl__g5 *gx, const scvrl__g5 *gy, const scvrl__convp *p, float *cols) {
    int64_t K = gx->C * p->kt * p->kh * p->kw, P = gy->T * gy->H * gy->W;
    #pragma omp parallel for schedule(static) if (P * K > 32768)
    for (int64_t q = 0; q < P; q++) {
        int64_t ot = q / (gy->H * gy->W), oh = (q / gy->W) % gy->H, ow = q % gy->W;
        float *c = cols + q * K;
        int64_t iw0 = ow * p->sw - p->pw;
        int inside_w = iw0 >= 0 && iw0 + p->kw <= gx->W;      // the whole kernel row is in the input
        for (int64_t ci = 0; ci < gx->C; ci++)
            for (int64_t a = 0; a < p->kt; a++) {
                int64_t it = ot * p->st - p->pt + a;
                for (int64_t b = 0; b < p->kh; b++, c += p->kw) {
                    int64_t ih = oh * p->sh - p->ph + b;
                    if (it < 0 || it >= gx->T || ih < 0 || ih >= gx->H) {
                        for (int64_t e = 0; e < p->kw; e++) c[e] = 0.0f;
                        continue;
                    }
                    const float *xr = x + ci * gx->sC + it * gx->sT + ih * gx->sH;
                    if (inside_w && gx->sW == 1) {
                        for (int64_t e = 0; e < p->kw; e++) c[e] = xr[iw0 + e];
                        continue;
                    }
                    for (int64_t e = 0; e < p->kw; e++) {
                        int64_t iw = iw0 + e;
                        c[e] = iw >= 0 && iw < gx->W ? xr[iw * gx->sW] : 0.0f;
                    }
                }
            }
    }
}

// col2im for one sample: dx[ci][i] += dcols[p][k] for every (p, k) that reads i. Threads own channels.
static void scvrl__col2im(const float *dcols, const scvrl__g5 *gx, const scvrl__g5 *gy, const scvrl__convp *p, float *dx) {
    int64_t K3 = p->kt * p->kh * p->kw, K = gx->C * K3, P = gy->T * gy->H * gy->W;
    #pragma omp parallel for schedule(static) if (P * K > 32768)
    for (int64_t ci = 0; ci < gx->C; ci++) {
        for (int64_t it = 0; it < gx->T; it++)
            for (int64_t ih = 0; ih < gx->H; ih++)
                for (int64_t iw = 0; iw < gx->W; iw++) dx[ci * gx->sC + it * gx->sT + ih * gx->sH + iw * gx->sW] = 0.0f;
        for (int64_t q = 0; q < P; q++) {
            int64_t ot = q / (gy->H * gy->W), oh = (q / gy->W) % gy->H, ow = q % gy->W;
            const float *c = dcols + q * K + ci * K3;
            for (int64_t a = 0; a < p->kt; a++) {
                int64_t it = ot * p->st - p->pt + a;
                for (int64_t b = 0; b < p->kh; b++) {
                    int64_t ih = oh * p->sh - p->ph + b;
                    for (int64_t e = 0; e < p->kw; e++, c++) {
                        int64_t iw = ow * p->sw - p->pw + e;
                        if (it >= 0 && it < gx->T && ih >= 0 && ih < gx->H && iw >= 0 && iw < gx->W)
                            dx[ci * gx->sC + it * gx->sT + ih * gx->sH + iw * gx->sW] += *c;
                    }
                }
            }
        }
    }
}

// Direct convolution for any groups and layout (the slow, simple path).
static void scvrl__conv_direct(const float *X, const scvrl__g5 *gx, const float *Wt, const float *bias,
                               float *Y, const scvrl__g5 *gy, const scvrl__convp *p) {
    int64_t cin_g = gx->C / p->groups, cout_g = gy->C / p->groups, rows = gy->N * gy->C * gy->T;
    #pragma omp parallel for schedule(static) if (rows * gy->H * gy->W > 4096)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gy->C * gy->T), co = (r / gy->T) % gy->C, ot = r % gy->T, grp = co / cout_g;
        const float *wc = Wt + co * cin_g * p->kt * p->kh * p->kw;
        for (int64_t oh = 0; oh < gy->H; oh++)
            for (int64_t ow = 0; ow < gy->W; ow++) {
                float acc = bias ? bias[co] : 0.0f;
                for (int64_t ci = 0; ci < cin_g; ci++) {
                    const float *xc = X + n * gx->sN + (grp * cin_g + ci) * gx->sC;
                    for (int64_t a = 0; a < p->kt; a++) {
                        int64_t it = ot * p->st - p->pt + a;
                        for (int64_t b = 0; b < p->kh; b++) {
                            int64_t ih = oh * p->sh - p->ph + b;
                            for (int64_t e = 0; e < p->kw; e++) {
                                int64_t iw = ow * p->sw - p->pw + e;
                                if (it < 0 || it >= gx->T || ih < 0 || ih >= gx->H || iw < 0 || iw >= gx->W) continue;
                                acc += xc[it * gx->sT + ih * gx->sH + iw * gx->sW] *
                                       wc[((ci * p->kt + a) * p->kh + b) * p->kw + e];
                            }
                        }
                    }
                }
                Y[n * gy->sN + co * gy->sC + ot * gy->sT + oh * gy->sH + ow * gy->sW] = acc;
            }
    }
}

// Depthwise weights transposed to [k][C] so the channel loop is contiguous.
static float *scvrl__dw_weights_t(const float *W, int64_t C, int64_t K3) {
    float *wt = (float *)scvrl__xmalloc((size_t)(C * K3) * sizeof(float));
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < K3; k++) wt[k * C + c] = W[c * K3 + k];
    return wt;
}

// Depthwise conv, channels last (the MViT pooling conv): vectorised over channels. Per output
// position, each channel's sum starts from the bias and adds x * w tap by tap in (a, b, e) order,
// a product rounded and then an add (no fused multiply-add), the same in every path. Threads own
// output rows (n, ot, oh); the AVX-512 path keeps 64 channels in registers over all the taps.
static void scvrl__conv_dw_ndhwc(const float *X, const scvrl__g5 *gx, const float *W, const float *bias,
                                 float *Y, const scvrl__g5 *gy, const scvrl__convp *p) {
    int64_t C = gx->C, K3 = p->kt * p->kh * p->kw, rows = gy->N * gy->T * gy->H;
    float *wt = scvrl__dw_weights_t(W, C, K3);
    #pragma omp parallel for schedule(static) if (rows * gy->W * C > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gy->T * gy->H), ot = (r / gy->H) % gy->T, oh = r % gy->H;
        int64_t xoff[64], woff[64];          // the valid taps of one output position
        int use_list = K3 <= 64;
        for (int64_t ow = 0; ow < gy->W; ow++) {
            float *y = Y + n * gy->sN + ot * gy->sT + oh * gy->sH + ow * gy->sW;
            int nt = 0;
            if (use_list) {
                for (int64_t a = 0; a < p->kt; a++) {
                    int64_t it = ot * p->st - p->pt + a;
                    if (it < 0 || it >= gx->T) continue;
                    for (int64_t b = 0; b < p->kh; b++) {
                        int64_t ih = oh * p->sh - p->ph + b;
                        if (ih < 0 || ih >= gx->H) continue;
                        for (int64_t e = 0; e < p->kw; e++) {
                            int64_t iw = ow * p->sw - p->pw + e;
                            if (iw < 0 || iw >= gx->W) continue;
                            xoff[nt] = n * gx->sN + it * gx->sT + ih * gx->sH + iw * gx->sW;
                            woff[nt] = ((a * p->kh + b) * p->kw + e) * C;
                            nt++;
                        }
                    }
                }
            }
#if defined(__AVX512F__)
            if (use_list) {
                for (int64_t c0 = 0; c0 < C; c0 += 64) {
                    int64_t rem = C - c0;
                    __mmask16 m0 = (__mmask16)(rem >= 16 ? 0xFFFF : (1u << rem) - 1u);
                    __mmask16 m1 = (__mmask16)(rem >= 32 ? 0xFFFF : rem <= 16 ? 0 : (1u << (rem - 16)) - 1u);
                    __mmask16 m2 = (__mmask16)(rem >= 48 ? 0xFFFF : rem <= 32 ? 0 : (1u << (rem - 32)) - 1u);
                    __mmask16 m3 = (__mmask16)(rem >= 64 ? 0xFFFF : rem <= 48 ? 0 : (1u << (rem - 48)) - 1u);
                    __m512 y0, y1, y2, y3;
                    if (bias) {
                        y0 = _mm512_maskz_loadu_ps(m0, bias + c0); y1 = _mm512_maskz_loadu_ps(m1, bias + c0 + 16);
                        y2 = _mm512_maskz_loadu_ps(m2, bias + c0 + 32); y3 = _mm512_maskz_loadu_ps(m3, bias + c0 + 48);
                    } else { y0 = y1 = y2 = y3 = _mm512_setzero_ps(); }
                    for (int k = 0; k < nt; k++) {
                        const float *x = X + xoff[k] + c0, *w = wt + woff[k] + c0;
                        y0 = _mm512_add_ps(y0, _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, x), _mm512_maskz_loadu_ps(m0, w)));
                        y1 = _mm512_add_ps(y1, _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m1, w + 16)));
                        y2 = _mm512_add_ps(y2, _mm512_mul_ps(_mm512_maskz_loadu_ps(m2, x + 32), _mm512_maskz_loadu_ps(m2, w + 32)));
                        y3 = _mm512_add_ps(y3, _mm512_mul_ps(_mm512_maskz_loadu_ps(m3, x + 48), _mm512_maskz_loadu_ps(m3, w + 48)));
                    }
                    _mm512_mask_storeu_ps(y + c0, m0, y0); _mm512_mask_storeu_ps(y + c0 + 16, m1, y1);
                    _mm512_mask_storeu_ps(y + c0 + 32, m2, y2); _mm512_mask_storeu_ps(y + c0 + 48, m3, y3);
                }
                continue;
            }
#endif
            for (int64_t c = 0; c < C; c++) y[c] = bias ? bias[c] : 0.0f;
            if (use_list) {
                for (int k = 0; k < nt; k++) {
                    const float *x = X + xoff[k], *w = wt + woff[k];
                    for (int64_t c = 0; c < C; c++) y[c] += x[c] * w[c];
                }
                continue;
            }
            for (int64_t a = 0; a < p->kt; a++) {
                int64_t it = ot * p->st - p->pt + a;
                if (it < 0 || it >= gx->T) continue;
                for (int64_t b = 0; b < p->kh; b++) {
                    int64_t ih = oh * p->sh - p->ph + b;
                    if (ih < 0 || ih >= gx->H) continue;
                    for (int64_t e = 0; e < p->kw; e++) {
                        int64_t iw = ow * p->sw - p->pw + e;
                        if (iw < 0 || iw >= gx->W) continue;
                        const float *x = X + n * gx->sN + it * gx->sT + ih * gx->sH + iw * gx->sW;
                        const float *w = wt + ((a * p->kh + b) * p->kw + e) * C;
                        for (int64_t c = 0; c < C; c++) y[c] += x[c] * w[c];
                    }
                }
            }
        }
    }
    SCVRL_FREE(wt);
}

static int scvrl__is_dw_last(const scvrl__convp *p, const scvrl__g5 *gx, const scvrl__g5 *gy) {
    return p->layout == SCVRL_LAYOUT_NDHWC && p->groups == gx->C && gy->C == gx->C && gx->sC == 1 && gy->sC == 1;
}

static void scvrl__cpu_CONV3D(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    scvrl__convp p = scvrl__conv_params(t, w);
    scvrl__g5 gx = scvrl__geom(x, p.layout), gy = scvrl__geom(t, p.layout);
    const float *X = (const float *)x->data, *W = (const float *)w->data, *B = b ? (const float *)b->data : NULL;
    float *Y = (float *)t->data;
    if (scvrl__is_dw_last(&p, &gx, &gy)) { scvrl__conv_dw_ndhwc(X, &gx, W, B, Y, &gy, &p); return; }
    if (p.groups != 1) { scvrl__conv_direct(X, &gx, W, B, Y, &gy, &p); return; }
    int64_t K = gx.C * p.kt * p.kh * p.kw, P = gy.T * gy.H * gy.W;
    size_t *cblk;         // (from the GEMM's buffer pool: no fresh pages on every call)
    float *cols = scvrl__gemm_get((size_t)(P * K) * sizeof(float), &cblk);
    SCVRL_ASSERT(cols, "conv3d: out of memory");
    for (int64_t n = 0; n < gx.N; n++) {
        scvrl__im2col(X + n * gx.sN, &gx, &gy, &p, cols);
        float *yn = Y + n * gy.sN;
        if (p.layout == SCVRL_LAYOUT_NCDHW) scvrl__sgemm_bias(0, 1, gy.C, P, K, W, K, cols, K, yn, P, 0, NULL, B);
        else scvrl__sgemm_bias(0, 1, P, gy.C, K, cols, K, W, K, yn, gy.C, 0, B, NULL);
    }
    scvrl__gemm_put(cblk);
}

// dx by gathering: each input element sums the taps that read it (no write conflicts).
static void scvrl__conv_direct_back_x(const float *DY, const scvrl__g5 *gy, const float *W, float *DX,
                                      const scvrl__g5 *gx, const scvrl__convp *p) {
    int64_t cin_g = gx->C / p->groups, cout_g = gy->C / p->groups, rows = gx->N * gx->C * gx->T;
    #pragma omp parallel for schedule(static) if (rows * gx->H * gx->W > 4096)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gx->C * gx->T), cig = (r / gx->T) % gx->C, it = r % gx->T;
        int64_t grp = cig / cin_g, ci = cig % cin_g;
        for (int64_t ih = 0; ih < gx->H; ih++)
            for (int64_t iw = 0; iw < gx->W; iw++) {
                float acc = 0.0f;
                for (int64_t a = 0; a < p->kt; a++) {
                    int64_t tt = it + p->pt - a;
                    if (tt < 0 || tt % p->st || tt / p->st >= gy->T) continue;
                    for (int64_t b = 0; b < p->kh; b++) {
                        int64_t hh = ih + p->ph - b;
                        if (hh < 0 || hh % p->sh || hh / p->sh >= gy->H) continue;
                        for (int64_t e = 0; e < p->kw; e++) {
                            int64_t ww = iw + p->pw - e;
                            if (ww < 0 || ww % p->sw || ww / p->sw >= gy->W) continue;
                            for (int64_t co = grp * cout_g; co < (grp + 1) * cout_g; co++)
                                acc += DY[n * gy->sN + co * gy->sC + (tt / p->st) * gy->sT + (hh / p->sh) * gy->sH + (ww / p->sw) * gy->sW] *
                                       W[(((co * cin_g + ci) * p->kt + a) * p->kh + b) * p->kw + e];
                        }
                    }
                }
                DX[n * gx->sN + cig * gx->sC + it * gx->sT + ih * gx->sH + iw * gx->sW] = acc;
            }
    }
}

// dw by direct sums (any groups, any layout): each weight element owned by one thread.
static void scvrl__conv_direct_back_w(const float *DY, const scvrl__g5 *gy, const float *X, const scvrl__g5 *gx,
                                      float *DW, const scvrl__convp *p) {
    int64_t cin_g = gx->C / p->groups, cout_g = gy->C / p->groups, K3 = p->kt * p->kh * p->kw;
    int64_t nw = gy->C * cin_g * K3;
    #pragma omp parallel for schedule(static) if (nw * gy->N * gy->T * gy->H * gy->W > 32768)
    for (int64_t wi = 0; wi < nw; wi++) {
        int64_t co = wi / (cin_g * K3), ci = (wi / K3) % cin_g, k = wi % K3;
        int64_t a = k / (p->kh * p->kw), b = (k / p->kw) % p->kh, e = k % p->kw, grp = co / cout_g;
        double acc = 0.0;
        for (int64_t n = 0; n < gy->N; n++)
            for (int64_t ot = 0; ot < gy->T; ot++) {
                int64_t it = ot * p->st - p->pt + a;
                if (it < 0 || it >= gx->T) continue;
                for (int64_t oh = 0; oh < gy->H; oh++) {
                    int64_t ih = oh * p->sh - p->ph + b;
                    if (ih < 0 || ih >= gx->H) continue;
                    for (int64_t ow = 0; ow < gy->W; ow++) {
                        int64_t iw = ow * p->sw - p->pw + e;
                        if (iw < 0 || iw >= gx->W) continue;
                        acc += (double)DY[n * gy->sN + co * gy->sC + ot * gy->sT + oh * gy->sH + ow * gy->sW] *
                               X[n * gx->sN + (grp * cin_g + ci) * gx->sC + it * gx->sT + ih * gx->sH + iw * gx->sW];
                    }
                }
            }
        DW[wi] = (float)acc;
    }
}

// Depthwise channels-last backward: dx by gathering, vectorised over channels.
static void scvrl__conv_dw_ndhwc_back_x(const float *DY, const scvrl__g5 *gy, const float *W, float *DX,
                                        const scvrl__g5 *gx, const scvrl__convp *p) {
    int64_t C = gx->C, K3 = p->kt * p->kh * p->kw, rows = gx->N * gx->T * gx->H;
    float *wt = scvrl__dw_weights_t(W, C, K3);
    #pragma omp parallel for schedule(static) if (rows * gx->W * C > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gx->T * gx->H), it = (r / gx->H) % gx->T, ih = r % gx->H;
        for (int64_t iw = 0; iw < gx->W; iw++) {
            float *dx = DX + n * gx->sN + it * gx->sT + ih * gx->sH + iw * gx->sW;
            for (int64_t c = 0; c < C; c++) dx[c] = 0.0f;
            for (int64_t a = 0; a < p->kt; a++) {
                int64_t tt = it + p->pt - a;
                if (tt < 0 || tt % p->st || tt / p->st >= gy->T) continue;
                for (int64_t b = 0; b < p->kh; b++) {
                    int64_t hh = ih + p->ph - b;
                    if (hh < 0 || hh % p->sh || hh / p->sh >= gy->H) continue;
                    for (int64_t e = 0; e < p->kw; e++) {
                        int64_t ww = iw + p->pw - e;
                        if (ww < 0 || ww % p->sw || ww / p->sw >= gy->W) continue;
                        const float *dy = DY + n * gy->sN + (tt / p->st) * gy->sT + (hh / p->sh) * gy->sH + (ww / p->sw) * gy->sW;
                        const float *w = wt + ((a * p->kh + b) * p->kw + e) * C;
                        for (int64_t c = 0; c < C; c++) dx[c] += dy[c] * w[c];
                    }
                }
            }
        }
    }
    SCVRL_FREE(wt);
}

// Depthwise channels-last dw: per output row partial sums [k][C], combined in row order.
static void scvrl__conv_dw_ndhwc_back_w(const float *DY, const scvrl__g5 *gy, const float *X, const scvrl__g5 *gx,
                                        float *DW, const scvrl__convp *p) {
    int64_t C = gx->C, K3 = p->kt * p->kh * p->kw, rows = gy->N * gy->T * gy->H;
    float *part = (float *)scvrl__xmalloc((size_t)(rows * K3 * C) * sizeof(float));
    #pragma omp parallel for schedule(static) if (rows * gy->W * C * K3 > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gy->T * gy->H), ot = (r / gy->H) % gy->T, oh = r % gy->H;
        float *pr = part + r * K3 * C;
        memset(pr, 0, (size_t)(K3 * C) * sizeof(float));
        for (int64_t ow = 0; ow < gy->W; ow++) {
            const float *dy = DY + n * gy->sN + ot * gy->sT + oh * gy->sH + ow * gy->sW;
            for (int64_t a = 0; a < p->kt; a++) {
                int64_t it = ot * p->st - p->pt + a;
                if (it < 0 || it >= gx->T) continue;
                for (int64_t b = 0; b < p->kh; b++) {
                    int64_t ih = oh * p->sh - p->ph + b;
                    if (ih < 0 || ih >= gx->H) continue;
                    for (int64_t e = 0; e < p->kw; e++) {
                        int64_t iw = ow * p->sw - p->pw + e;
                        if (iw < 0 || iw >= gx->W) continue;
                        const float *x = X + n * gx->sN + it * gx->sT + ih * gx->sH + iw * gx->sW;
                        float *acc = pr + ((a * p->kh + b) * p->kw + e) * C;
                        for (int64_t c = 0; c < C; c++) acc[c] += dy[c] * x[c];
                    }
                }
            }
        }
    }
    #pragma omp parallel for schedule(static) if (K3 * C * rows > 32768)
    for (int64_t j = 0; j < K3 * C; j++) {
        double s = 0.0;
        for (int64_t r = 0; r < rows; r++) s += part[r * K3 * C + j];
        int64_t k = j / C, c = j % C;
        DW[c * K3 + k] = (float)s;
    }
    SCVRL_FREE(part);
}

static void scvrl__cpu_CONV3D_BACK_X(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *dy = t->src[0], *w = t->src[1];
    scvrl__convp p = scvrl__conv_params(t, w);
    scvrl__g5 gx = scvrl__geom(t, p.layout), gy = scvrl__geom(dy, p.layout);
    const float *DY = (const float *)dy->data, *W = (const float *)w->data;
    float *DX = (float *)t->data;
    if (scvrl__is_dw_last(&p, &gx, &gy)) { scvrl__conv_dw_ndhwc_back_x(DY, &gy, W, DX, &gx, &p); return; }
    if (p.groups != 1) { scvrl__conv_direct_back_x(DY, &gy, W, DX, &gx, &p); return; }
    int64_t K = gx.C * p.kt * p.kh * p.kw, P = gy.T * gy.H * gy.W;
    float *dcols = (float *)scvrl__xmalloc((size_t)(P * K) * sizeof(float));
    for (int64_t n = 0; n < gx.N; n++) {
        const float *dyn = DY + n * gy.sN;
        if (p.layout == SCVRL_LAYOUT_NCDHW) scvrl__sgemm(1, 0, P, K, gy.C, dyn, P, W, K, dcols, K, 0);
        else scvrl__sgemm(0, 0, P, K, gy.C, dyn, gy.C, W, K, dcols, K, 0);
        scvrl__col2im(dcols, &gx, &gy, &p, DX + n * gx.sN);
    }
    SCVRL_FREE(dcols);
}

static void scvrl__cpu_CONV3D_BACK_W(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *dy = t->src[0], *x = t->src[1];
    scvrl__convp p = scvrl__conv_params(t, t);
    scvrl__g5 gx = scvrl__geom(x, p.layout), gy = scvrl__geom(dy, p.layout);
    const float *DY = (const float *)dy->data, *X = (const float *)x->data;
    float *DW = (float *)t->data;
    if (scvrl__is_dw_last(&p, &gx, &gy)) { scvrl__conv_dw_ndhwc_back_w(DY, &gy, X, &gx, DW, &p); return; }
    if (p.groups != 1) { scvrl__conv_direct_back_w(DY, &gy, X, &gx, DW, &p); return; }
    int64_t K = gx.C * p.kt * p.kh * p.kw, P = gy.T * gy.H * gy.W;
    float *cols = (float *)scvrl__xmalloc((size_t)(P * K) * sizeof(float));
    for (int64_t n = 0; n < gx.N; n++) {
        scvrl__im2col(X + n * gx.sN, &gx, &gy, &p, cols);
        const float *dyn = DY + n * gy.sN;
        if (p.layout == SCVRL_LAYOUT_NCDHW) scvrl__sgemm(0, 0, gy.C, K, P, dyn, P, cols, K, DW, K, n > 0);
        else scvrl__sgemm(1, 0, gy.C, K, P, dyn, gy.C, cols, K, DW, K, n > 0);
    }
    if (gx.N == 0) memset(DW, 0, (size_t)scvrl_nelements(t) * sizeof(float));
    SCVRL_FREE(cols);
}

// --- max pooling (padding never wins: padded cells are skipped, as -inf) ---
typedef struct { int64_t k[3], s[3], p[3]; int layout; } scvrl__poolp;
static scvrl__poolp scvrl__pool_params(const scvrl_tensor *t) {
    scvrl__poolp p;
    for (int i = 0; i < 3; i++) { p.k[i] = t->ip[i]; p.s[i] = t->ip[3 + i]; p.p[i] = t->ip[6 + i]; }
    p.layout = (int)t->ip[9];
    return p;
}

// The window maximum of output (ot, oh, ow) (first valid tap, then strictly greater, a NaN wins and
// stays) as an offset from the sample/channel base under the strides sT, sH, sW (x's own for
// reading it, the gradient's when x is a strided view), -1 if the window has no valid tap.
static inline int64_t scvrl__pool_argmax_to(const float *x, const scvrl__g5 *gx, const scvrl__poolp *p,
                                            int64_t ot, int64_t oh, int64_t ow, int64_t sT, int64_t sH, int64_t sW) {
    int64_t bo = -1; int found = 0; float bv = -INFINITY;
    for (int64_t a = 0; a < p->k[0]; a++) {
        int64_t it = ot * p->s[0] - p->p[0] + a;
        if (it < 0 || it >= gx->T) continue;
        for (int64_t b = 0; b < p->k[1]; b++) {
            int64_t ih = oh * p->s[1] - p->p[1] + b;
            if (ih < 0 || ih >= gx->H) continue;
            for (int64_t e = 0; e < p->k[2]; e++) {
                int64_t iw = ow * p->s[2] - p->p[2] + e;
                if (iw < 0 || iw >= gx->W) continue;
                float v = x[it * gx->sT + ih * gx->sH + iw * gx->sW];
                if (!found || v > bv || v != v) { found = 1; bo = it * sT + ih * sH + iw * sW; bv = v; if (v != v) return bo; }
            }
        }
    }
    return bo;
}
static inline int64_t scvrl__pool_argmax(const float *x, const scvrl__g5 *gx, const scvrl__poolp *p,
                                         int64_t ot, int64_t oh, int64_t ow) {
    return scvrl__pool_argmax_to(x, gx, p, ot, oh, ow, gx->sT, gx->sH, gx->sW);
}

// Channels last (the MViT skip pool): threads own output rows (n, ot, oh), channels are contiguous.
// Per channel the same rule as scvrl__pool_argmax: the first valid tap, replaced by a later one
// that is greater or NaN, and a NaN is kept. Returns 0 (not done) if a window has > 64 taps.
static int scvrl__maxpool_ndhwc(const float *X, const scvrl__g5 *gx, float *Y, const scvrl__g5 *gy, const scvrl__poolp *p) {
    int64_t C = gx->C, rows = gy->N * gy->T * gy->H;
    if (p->k[0] * p->k[1] * p->k[2] > 64) return 0;
    #pragma omp parallel for schedule(static) if (rows * gy->W * C > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / (gy->T * gy->H), ot = (r / gy->H) % gy->T, oh = r % gy->H;
        int64_t xoff[64];
        for (int64_t ow = 0; ow < gy->W; ow++) {
            float *y = Y + n * gy->sN + ot * gy->sT + oh * gy->sH + ow * gy->sW;
            int nt = 0;
            for (int64_t a = 0; a < p->k[0]; a++) {
                int64_t it = ot * p->s[0] - p->p[0] + a;
                if (it < 0 || it >= gx->T) continue;
                for (int64_t b = 0; b < p->k[1]; b++) {
                    int64_t ih = oh * p->s[1] - p->p[1] + b;
                    if (ih < 0 || ih >= gx->H) continue;
                    for (int64_t e = 0; e < p->k[2]; e++) {
                        int64_t iw = ow * p->s[2] - p->p[2] + e;
                        if (iw < 0 || iw >= gx->W) continue;
                        xoff[nt++] = n * gx->sN + it * gx->sT + ih * gx->sH + iw * gx->sW;
                    }
                }
            }
            if (nt == 0) { for (int64_t c = 0; c < C; c++) y[c] = -INFINITY; continue; }
            int64_t c = 0;
#if defined(__AVX512F__)
            for (; c < C; c += 16) {
                __mmask16 m = (__mmask16)(C - c >= 16 ? 0xFFFF : (1u << (C - c)) - 1u);
                __m512 best = _mm512_maskz_loadu_ps(m, X + xoff[0] + c);
                for (int k = 1; k < nt; k++) {
                    __m512 v = _mm512_maskz_loadu_ps(m, X + xoff[k] + c);
                    __mmask16 up = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                    up &= (__mmask16)~_mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
                    best = _mm512_mask_mov_ps(best, up, v);
                }
                _mm512_mask_storeu_ps(y + c, m, best);
            }
#endif
            for (; c < C; c++) {
                float bv = X[xoff[0] + c];
                for (int k = 1; k < nt && bv == bv; k++) {
                    float v = X[xoff[k] + c];
                    if (v > bv || v != v) bv = v;
                }
                y[c] = bv;
            }
        }
    }
    return 1;
}

static void scvrl__cpu_MAXPOOL3D(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    scvrl__poolp p = scvrl__pool_params(t);
    scvrl__g5 gx = scvrl__geom(x, p.layout), gy = scvrl__geom(t, p.layout);
    const float *X = (const float *)x->data;
    float *Y = (float *)t->data;
    if (p.layout == SCVRL_LAYOUT_NDHWC && gx.sC == 1 && gy.sC == 1 && scvrl__maxpool_ndhwc(X, &gx, Y, &gy, &p)) return;
    int64_t planes = gy.N * gy.C;
    #pragma omp parallel for schedule(static) if (planes * gy.T * gy.H * gy.W > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t n = pl / gy.C, c = pl % gy.C;
        const float *xb = X + n * gx.sN + c * gx.sC;
        for (int64_t ot = 0; ot < gy.T; ot++)
            for (int64_t oh = 0; oh < gy.H; oh++)
                for (int64_t ow = 0; ow < gy.W; ow++)
                    Y[n * gy.sN + c * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW] =
                        xb[scvrl__pool_argmax(xb, &gx, &p, ot, oh, ow)];
    }
}

// Backward: each (sample, channel) plane is owned by one thread, so scatters never collide.
static void scvrl__cpu_MAXPOOL3D_BACK(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *dy = t->src[0], *x = t->src[1];
    scvrl__poolp p = scvrl__pool_params(t);
    scvrl__g5 gx = scvrl__geom(x, p.layout), gy = scvrl__geom(dy, p.layout), gd = scvrl__geom(t, p.layout);
    const float *X = (const float *)x->data, *DY = (const float *)dy->data;
    float *DX = (float *)t->data;
    memset(DX, 0, (size_t)scvrl_nelements(t) * sizeof(float));
    int64_t planes = gy.N * gy.C;
    #pragma omp parallel for schedule(static) if (planes * gy.T * gy.H * gy.W > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t n = pl / gy.C, c = pl % gy.C;
        const float *xb = X + n * gx.sN + c * gx.sC;
        float *db = DX + n * gd.sN + c * gd.sC;
        for (int64_t ot = 0; ot < gy.T; ot++)
            for (int64_t oh = 0; oh < gy.H; oh++)
                for (int64_t ow = 0; ow < gy.W; ow++)
                    db[scvrl__pool_argmax_to(xb, &gx, &p, ot, oh, ow, gd.sT, gd.sH, gd.sW)] +=
                        DY[n * gy.sN + c * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW];
    }
}

// ============================================================================
// 16. CPU kernels: normalisation, softmax, attention, losses
// ============================================================================
static inline int64_t scvrl__rows(const scvrl_tensor *t, int64_t *D) {
    *D = t->ndim ? t->ne[t->ndim - 1] : 1;
    return *D ? scvrl_nelements(t) / *D : 0;
}

// Row mean and 1/sqrt(var + eps), two passes in float (as PyTorch's CPU kernel, up to order).
// (AVX-512: the sums in four 8-lane double accumulators, then added up in a fixed order.)
static inline void scvrl__ln_stats(const float *x, int64_t D, float eps, float *mean, float *rstd) {
    double s = 0.0, v = 0.0;
    int64_t i = 0;
#if defined(__AVX512F__)
    if (D >= 32) {
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 32 <= D; i += 32) {
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
            a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)));
            a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)));
        }
        s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    }
#endif
    for (; i < D; i++) s += x[i];
    float mu = (float)(s / (double)D);
    i = 0;
#if defined(__AVX512F__)
    if (D >= 32) {
        __m512d m = _mm512_set1_pd((double)mu), a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, d;
        for (; i + 32 <= D; i += 32) {
            d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), m); a0 = _mm512_add_pd(a0, _mm512_mul_pd(d, d));
            d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), m); a1 = _mm512_add_pd(a1, _mm512_mul_pd(d, d));
            d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), m); a2 = _mm512_add_pd(a2, _mm512_mul_pd(d, d));
            d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)), m); a3 = _mm512_add_pd(a3, _mm512_mul_pd(d, d));
        }
        v = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    }
#endif
    for (; i < D; i++) { double d = (double)x[i] - mu; v += d * d; }
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(v / (double)D + (double)eps));
}

static void scvrl__cpu_LAYER_NORM(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    int64_t D, R = scvrl__rows(t, &D);
    const float *X = (const float *)x->data, *Wt = w ? (const float *)w->data : NULL, *B = b ? (const float *)b->data : NULL;
    float *Y = (float *)t->data, eps = t->fp[0];
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = X + r * D;
        float *yr = Y + r * D, mu, rs;
        scvrl__ln_stats(xr, D, eps, &mu, &rs);
        int64_t i = 0;
#if defined(__AVX512F__)
        __m512 vm = _mm512_set1_ps(mu), vr = _mm512_set1_ps(rs), one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
        for (; i + 16 <= D; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + i), vm), vr);
            v = _mm512_mul_ps(v, Wt ? _mm512_loadu_ps(Wt + i) : one);
            _mm512_storeu_ps(yr + i, _mm512_add_ps(v, B ? _mm512_loadu_ps(B + i) : zero));
        }
#endif
        for (; i < D; i++) {
            float v = (xr[i] - mu) * rs;
            yr[i] = v * (Wt ? Wt[i] : 1.0f) + (B ? B[i] : 0.0f);
        }
    }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w.
// dx of LAYER_NORM_BACK t into DX, plus RES (the other operand of a fused gradient ADD) if not NULL:
// RES[i] + dx[i], the same float as the separate ADD.
static void scvrl__ln_back_rows(const scvrl_tensor *t, const float *RES, float *DX) {
    const scvrl_tensor *dy = t->src[0], *x = t->src[1], *w = t->src[2];
    int64_t D, R = scvrl__rows(t, &D);
    const float *DY = (const float *)dy->data, *X = (const float *)x->data, *Wt = w ? (const float *)w->data : NULL;
    float eps = t->fp[0];
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = X + r * D, *dr = DY + r * D;
        float *o = DX + r * D, mu, rs;
        scvrl__ln_stats(xr, D, eps, &mu, &rs);
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = 0; i < D; i++) {
            float gi = dr[i] * (Wt ? Wt[i] : 1.0f), xh = (xr[i] - mu) * rs;
            sg += gi; sgx += (double)gi * xh;
        }
        float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
        const float *res = RES ? RES + r * D : NULL;
        for (int64_t i = 0; i < D; i++) {
            float gi = dr[i] * (Wt ? Wt[i] : 1.0f), xh = (xr[i] - mu) * rs, v = rs * (gi - mg - xh * mgx);
            o[i] = res ? res[i] + v : v;
        }
    }
}
static void scvrl__cpu_LAYER_NORM_BACK(scvrl_tensor *t, const scvrl_graph *g) { (void)g; scvrl__ln_back_rows(t, NULL, (float *)t->data); }
// LAYER_NORM_BACK t and its only reader u = ADD(t, r) (the plan's fusion): u = r + dx in one pass.
static void scvrl__cpu_ln_back_add(scvrl_tensor *t, scvrl_tensor *u) {
    scvrl__ln_back_rows(t, (const float *)(u->src[0] == t ? u->src[1] : u->src[0])->data, (float *)u->data);
}

// [2, D]: row 0 = sum_r dy * xhat (dw), row 1 = sum_r dy (db); fixed 64-row blocks in double.
static void scvrl__cpu_LAYER_NORM_BACK_WB(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *dy = t->src[0], *x = t->src[1];
    int64_t D, R = scvrl__rows(x, &D);
    const int64_t BR = 64;
    int64_t nb = (R + BR - 1) / BR;
    const float *DY = (const float *)dy->data, *X = (const float *)x->data;
    float eps = t->fp[0];
    double *part = (double *)scvrl__xmalloc((size_t)(nb * 2 * D) * sizeof(double));
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t bi = 0; bi < nb; bi++) {
        double *pw = part + bi * 2 * D, *pb = pw + D;
        for (int64_t i = 0; i < 2 * D; i++) pw[i] = 0.0;
        int64_t r1 = (bi + 1) * BR < R ? (bi + 1) * BR : R;
        for (int64_t r = bi * BR; r < r1; r++) {
            const float *xr = X + r * D, *dr = DY + r * D;
            float mu, rs;
            scvrl__ln_stats(xr, D, eps, &mu, &rs);
            for (int64_t i = 0; i < D; i++) { pw[i] += dr[i] * ((xr[i] - mu) * rs); pb[i] += dr[i]; }
        }
    }
    float *O = (float *)t->data;
    for (int64_t i = 0; i < 2 * D; i++) {
        double s = 0.0;
        for (int64_t bi = 0; bi < nb; bi++) s += part[bi * 2 * D + i];
        O[i] = (float)s;
    }
    SCVRL_FREE(part);
}

static inline void scvrl__softmax_row(const float *x, float *y, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0.0;
    scvrl__exp_row(x, y, n, m);
    for (int64_t i = 0; i < n; i++) s += y[i];
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

static inline float scvrl__logsumexp(const float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) return m;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += expf(x[i] - m);
    return m + (float)log(s);
}

static void scvrl__cpu_SOFTMAX(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    int64_t D, R = scvrl__rows(t, &D);
    const float *X = (const float *)t->src[0]->data;
    float *Y = (float *)t->data;
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) scvrl__softmax_row(X + r * D, Y + r * D, D);
}

static void scvrl__cpu_LOG_SOFTMAX(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    int64_t D, R = scvrl__rows(t, &D);
    const float *X = (const float *)t->src[0]->data;
    float *Y = (float *)t->data;
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        float l = scvrl__logsumexp(X + r * D, D);
        for (int64_t i = 0; i < D; i++) Y[r * D + i] = X[r * D + i] - l;
    }
}

// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
static void scvrl__softmax_back(scvrl_tensor *t, int logsm) {
    const scvrl_tensor *y = t->src[0], *dy = t->src[1];
    int64_t D, R = scvrl__rows(t, &D);
    const float *Yp = (const float *)y->data, *DY = (const float *)dy->data;
    float *DX = (float *)t->data;
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        const float *yr = Yp + r * D, *dr = DY + r * D;
        float *o = DX + r * D;
        double s = 0.0;
        for (int64_t i = 0; i < D; i++) s += logsm ? dr[i] : dr[i] * yr[i];
        float sf = (float)s;
        for (int64_t i = 0; i < D; i++) o[i] = logsm ? dr[i] - expf(yr[i]) * sf : yr[i] * (dr[i] - sf);
    }
}
static void scvrl__cpu_SOFTMAX_BACK(scvrl_tensor *t, const scvrl_graph *g) { (void)g; scvrl__softmax_back(t, 0); }
static void scvrl__cpu_LOG_SOFTMAX_BACK(scvrl_tensor *t, const scvrl_graph *g) { (void)g; scvrl__softmax_back(t, 1); }

static void scvrl__cpu_CROSS_ENTROPY(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    const int32_t *tg = (const int32_t *)t->src[1]->data;
    int64_t N = x->ne[0], C = x->ne[1];
    const float *X = (const float *)x->data;
    float *L = (float *)t->data;
    for (int64_t n = 0; n < N; n++) SCVRL_ASSERT(tg[n] >= 0 && tg[n] < C, "cross_entropy: target %d not in [0, %lld)", tg[n], (long long)C);
    #pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) L[n] = scvrl__logsumexp(X + n * C, C) - X[n * C + tg[n]];
}

static void scvrl__cpu_CROSS_ENTROPY_BACK(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    const scvrl_tensor *x = t->src[0];
    const int32_t *tg = (const int32_t *)t->src[1]->data;
    const float *DL = (const float *)t->src[2]->data;
    int64_t N = x->ne[0], C = x->ne[1], sdl = t->src[2]->st[0];
    const float *X = (const float *)x->data;
    float *DX = (float *)t->data;
    #pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        scvrl__softmax_row(X + n * C, DX + n * C, C);
        DX[n * C + tg[n]] -= 1.0f;
        float d = DL[n * sdl];
        for (int64_t c = 0; c < C; c++) DX[n * C + c] *= d;
    }
}

static void scvrl__cpu_L2_NORMALIZE(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    int64_t D, R = scvrl__rows(t, &D);
    const float *X = (const float *)t->src[0]->data;
    float *Y = (float *)t->data, eps = t->fp[0];
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        double s = 0.0;
        for (int64_t i = 0; i < D; i++) s += (double)X[r * D + i] * X[r * D + i];
        float nrm = (float)sqrt(s), inv = 1.0f / (nrm > eps || nrm != nrm ? nrm : eps);   // NaN stays NaN, as torch
        for (int64_t i = 0; i < D; i++) Y[r * D + i] = X[r * D + i] * inv;
    }
}

// y = x / n (n = ||x|| > eps): dx = (dy - y (y . dy)) / n; else dx = dy / eps.
static void scvrl__cpu_L2_NORMALIZE_BACK(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    int64_t D, R = scvrl__rows(t, &D);
    const float *X = (const float *)t->src[0]->data, *DY = (const float *)t->src[1]->data;
    float *DX = (float *)t->data, eps = t->fp[0];
    #pragma omp parallel for schedule(static) if (R * D > 32768)
    for (int64_t r = 0; r < R; r++) {
        const float *x = X + r * D, *dy = DY + r * D;
        double s = 0.0, yd = 0.0;
        for (int64_t i = 0; i < D; i++) s += (double)x[i] * x[i];
        float nrm = (float)sqrt(s);
        if (nrm <= eps) { for (int64_t i = 0; i < D; i++) DX[r * D + i] = dy[i] / eps; continue; }   // (NaN falls through)
        for (int64_t i = 0; i < D; i++) yd += (double)(x[i] / nrm) * dy[i];
        for (int64_t i = 0; i < D; i++) DX[r * D + i] = (dy[i] - (x[i] / nrm) * (float)yd) / nrm;
    }
}

// --- attention: softmax(scale q k^T) v without materialising the whole matrix ---
#define SCVRL__ATT_QB 64
#define SCVRL__ATT_KB 128

typedef struct {
    int64_t B, H, Nq, Nk, d;
    const float *q, *k, *v;            // bases
    int64_t sq[3], sk[3], sv[3];       // strides of dims b, h, n (last dim contiguous)
    float scale;
} scvrl__attn;

static scvrl__attn scvrl__attn_geom(const scvrl_tensor *q, const scvrl_tensor *k, const scvrl_tensor *v, float scale) {
    scvrl__attn a;
    a.B = q->ne[0]; a.H = q->ne[1]; a.Nq = q->ne[2]; a.Nk = k->ne[2]; a.d = q->ne[3];
    a.q = (const float *)q->data; a.k = (const float *)k->data; a.v = (const float *)v->data;
    for (int i = 0; i < 3; i++) { a.sq[i] = q->st[i]; a.sk[i] = k->st[i]; a.sv[i] = v->st[i]; }
    if (a.Nq == 1) a.sq[2] = a.d;
    if (a.Nk == 1) { a.sk[2] = a.d; a.sv[2] = a.d; }
    a.scale = scale;
    return a;
}

// S[i, :] = scale * q_i . k_j for a block of query rows; returns nothing, S is [mb, Nk].
static void scvrl__attn_scores(const scvrl__attn *a, int64_t b, int64_t h, int64_t i0, int64_t mb, float *S) {
    const float *Q = a->q + b * a->sq[0] + h * a->sq[1] + i0 * a->sq[2];
    const float *K = a->k + b * a->sk[0] + h * a->sk[1];
    scvrl__sgemm(0, 1, mb, a->Nk, a->d, Q, a->sq[2], K, a->sk[2], S, a->Nk, 0);
    for (int64_t i = 0; i < mb * a->Nk; i++) S[i] *= a->scale;
}

// Forward, on the GEMM's packed panels and micro-kernel (section 13), transposed so that the
// softmax runs down columns: per (b, h), K is packed once as MR-key panels ([d][MR]) and V^T as
// MR-channel panels ([Nk][MR]); per block of SCVRL__ATT_FQB queries (NR-query panels of Q^T):
//   S^T = K Q^T, micro-kernel tiles of MR keys x NR queries (depth d), stored [Nk][NR] per panel,
//     which is the packed layout of the next product's B operand;
//   per query (column): s *= scale, m = max s, p = exp(s - m), z = sum p (in double), p *= 1/z;
//   O^T = V^T P^T, tiles of MR channels x NR queries (depth Nk), written to O transposed.
// Every element goes through the same chain of operations as the plain per-row path (sgemm chains
// for S and for P V, scvrl__softmax_row between), so the result is bit-identical to it, and it
// does not depend on the thread count.
#define SCVRL__ATT_FQB (2 * SCVRL__GEMM_NR)

// Column softmax of one [Nk][NR] panel of scores, in place (normalised: the same operations, in
// the same order per element, as scvrl__softmax_row on the scaled scores; inv is scratch).
static void scvrl__attn_softmax_cols(float *S, int64_t Nk, float scale, float *inv) {
    const int NR = SCVRL__GEMM_NR;
#if defined(SCVRL__GEMM_AVX512)
    __m512 sc = _mm512_set1_ps(scale), m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    for (int64_t j = 0; j < Nk; j++) {
        float *r = S + j * NR;
        __m512 s0 = _mm512_mul_ps(_mm512_load_ps(r), sc), s1 = _mm512_mul_ps(_mm512_load_ps(r + 16), sc);
        _mm512_store_ps(r, s0); _mm512_store_ps(r + 16, s1);
        m0 = _mm512_max_ps(m0, s0); m1 = _mm512_max_ps(m1, s1);
    }
    __m512d z0 = _mm512_setzero_pd(), z1 = z0, z2 = z0, z3 = z0;
    const int64_t nv = Nk & ~(int64_t)15;      // as scvrl__exp_row: the last Nk % 16 through expf
    for (int64_t j = 0; j < Nk; j++) {
        float *r = S + j * NR;
        __m512 p0, p1;
        if (j < nv) {
            p0 = scvrl__exp16(_mm512_sub_ps(_mm512_load_ps(r), m0));
            p1 = scvrl__exp16(_mm512_sub_ps(_mm512_load_ps(r + 16), m1));
            _mm512_store_ps(r, p0); _mm512_store_ps(r + 16, p1);
        } else {
            float m[32];
            _mm512_storeu_ps(m, m0); _mm512_storeu_ps(m + 16, m1);
            for (int i = 0; i < 32; i++) r[i] = expf(r[i] - m[i]);
            p0 = _mm512_load_ps(r); p1 = _mm512_load_ps(r + 16);
        }
        z0 = _mm512_add_pd(z0, _mm512_cvtps_pd(_mm512_castps512_ps256(p0)));
        z1 = _mm512_add_pd(z1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p0), 1))));
        z2 = _mm512_add_pd(z2, _mm512_cvtps_pd(_mm512_castps512_ps256(p1)));
        z3 = _mm512_add_pd(z3, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p1), 1))));
    }
    double z[32];
    _mm512_storeu_pd(z, z0); _mm512_storeu_pd(z + 8, z1); _mm512_storeu_pd(z + 16, z2); _mm512_storeu_pd(z + 24, z3);
    for (int i = 0; i < NR; i++) inv[i] = (float)(1.0 / z[i]);
    __m512 i0 = _mm512_loadu_ps(inv), i1 = _mm512_loadu_ps(inv + 16);
    for (int64_t j = 0; j < Nk; j++) {
        float *r = S + j * NR;
        _mm512_store_ps(r, _mm512_mul_ps(_mm512_load_ps(r), i0)); _mm512_store_ps(r + 16, _mm512_mul_ps(_mm512_load_ps(r + 16), i1));
    }
#else
    float m[SCVRL__GEMM_NR];
    double z[SCVRL__GEMM_NR];
    for (int i = 0; i < NR; i++) { m[i] = -INFINITY; z[i] = 0.0; }
    for (int64_t j = 0; j < Nk; j++)
        for (int i = 0; i < NR; i++) { float v = S[j * NR + i] * scale; S[j * NR + i] = v; m[i] = v > m[i] ? v : m[i]; }
    for (int64_t j = 0; j < Nk; j++)
        for (int i = 0; i < NR; i++) { float p = expf(S[j * NR + i] - m[i]); S[j * NR + i] = p; z[i] += p; }
    for (int i = 0; i < NR; i++) inv[i] = (float)(1.0 / z[i]);
    for (int64_t j = 0; j < Nk; j++)
        for (int i = 0; i < NR; i++) S[j * NR + i] *= inv[i];
#endif
}

static void scvrl__cpu_ATTENTION(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    scvrl__attn a = scvrl__attn_geom(t->src[0], t->src[1], t->src[2], t->fp[0]);
    float *O = (float *)t->data;           // [B, Nq, H, d]
    const int64_t MR = SCVRL__GEMM_MR, NR = SCVRL__GEMM_NR, QB = SCVRL__ATT_FQB;
    const int64_t B = a.B, H = a.H, Nq = a.Nq, Nk = a.Nk, d = a.d, BH = B * H;
    if (BH == 0 || Nq == 0 || d == 0) return;
    if (Nk == 0) { memset(O, 0, (size_t)(B * Nq * H * d) * sizeof(float)); return; }
    const int64_t kpan = (Nk + MR - 1) / MR, vpan = (d + MR - 1) / MR;
    const int64_t ksz = kpan * MR * d, vsz = vpan * MR * Nk;          // floats per (b, h)
    size_t *pblk;
    float *pk = scvrl__gemm_get((size_t)(BH * (ksz + vsz)) * sizeof(float), &pblk);
    SCVRL_ASSERT(pk, "attention: out of memory");
    float *pv = pk + BH * ksz;
    const int64_t nqb = (Nq + QB - 1) / QB, tasks = BH * nqb;
    #pragma omp parallel if (tasks > 1 && (double)Nq * Nk * d > 1e5)
    {
        #pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < BH; bh++) {
            int64_t b = bh / H, h = bh % H;
            scvrl__gemm_pack_a(0, a.k + b * a.sk[0] + h * a.sk[1], a.sk[2], 0, Nk, 0, d, pk + bh * ksz);
            scvrl__gemm_pack_a(1, a.v + b * a.sv[0] + h * a.sv[1], a.sv[2], 0, d, 0, Nk, pv + bh * vsz);
        }
        // (implicit barrier: the panels are complete)
        size_t *wblk;
        const int64_t np = QB / NR;
        float *qp = scvrl__gemm_get((size_t)(np * NR * d + np * NR * Nk + vpan * MR * NR + NR) * sizeof(float), &wblk);
        SCVRL_ASSERT(qp, "attention: out of memory");
        float *S = qp + np * NR * d, *Ot = S + np * NR * Nk, *inv = Ot + vpan * MR * NR;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / nqb, b = bh / H, h = bh % H, i0 = (task % nqb) * QB;
            int64_t mb = Nq - i0 < QB ? Nq - i0 : QB, npan = (mb + NR - 1) / NR;
            const float *Kp = pk + bh * ksz, *Vp = pv + bh * vsz;
            scvrl__gemm_pack_b(1, a.q + b * a.sq[0] + h * a.sq[1], a.sq[2], i0, mb, 0, d, qp, 0, npan);
            for (int64_t p = 0; p < npan; p++) {
                const float *Qp = qp + p * NR * d;
                float *Sp = S + p * NR * Nk;
                for (int64_t kp = 0; kp < kpan; kp++) {
                    int m = (int)(Nk - kp * MR < MR ? Nk - kp * MR : MR);
                    float *c = Sp + kp * MR * NR;
                    scvrl__gemm_ukr(m, (int)NR, d, Kp + kp * MR * d, Qp, c, NR, 0, c + MR * NR, NULL, NULL);
                }
                scvrl__attn_softmax_cols(Sp, Nk, a.scale, inv);
                for (int64_t cp = 0; cp < vpan; cp++) {
                    int m = (int)(d - cp * MR < MR ? d - cp * MR : MR);
                    float *c = Ot + cp * MR * NR;
                    scvrl__gemm_ukr(m, (int)NR, Nk, Vp + cp * MR * Nk, Sp, c, NR, 0, c + MR * NR, NULL, NULL);
                }
                int64_t nv = mb - p * NR < NR ? mb - p * NR : NR;
                for (int64_t i = 0; i < nv; i++) {
                    float *o = O + ((b * Nq + i0 + p * NR + i) * H + h) * d;
                    for (int64_t c = 0; c < d; c++) o[c] = Ot[c * NR + i];
                }
            }
        }
        scvrl__gemm_put(wblk);
    }
    scvrl__gemm_put(pblk);
}

// Backward, two passes (flash-attention style, deterministic):
//  A) per query block: P, dP = dO V^T, D = rowsum(P * dP), dS = P (dP - D), dQ = scale dS K;
//     keeps row logsumexp L and D.
//  B) per key block: P = exp(S - L), dV = P^T dO, dK = scale dS^T Q.
static void scvrl__attn_back_q(const scvrl__attn *a, const float *DO, float *DQ, float *Lse, float *Dv) {
    int64_t nqb = (a->Nq + SCVRL__ATT_QB - 1) / SCVRL__ATT_QB, tasks = a->B * a->H * nqb, Nk = a->Nk ? a->Nk : 1;
    #pragma omp parallel
    {
        float *S = (float *)scvrl__xmalloc((size_t)(SCVRL__ATT_QB * Nk) * sizeof(float));
        float *dP = (float *)scvrl__xmalloc((size_t)(SCVRL__ATT_QB * Nk) * sizeof(float));
        #pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / nqb, b = bh / a->H, h = bh % a->H, i0 = (task % nqb) * SCVRL__ATT_QB;
            int64_t mb = a->Nq - i0 < SCVRL__ATT_QB ? a->Nq - i0 : SCVRL__ATT_QB;
            scvrl__attn_scores(a, b, h, i0, mb, S);
            const float *dOb = DO + ((b * a->Nq + i0) * a->H + h) * a->d;     // rows stride H*d
            const float *V = a->v + b * a->sv[0] + h * a->sv[1];
            const float *K = a->k + b * a->sk[0] + h * a->sk[1];
            scvrl__sgemm(0, 1, mb, a->Nk, a->d, dOb, a->H * a->d, V, a->sv[2], dP, a->Nk, 0);
            for (int64_t i = 0; i < mb; i++) {
                float *s = S + i * a->Nk, *dp = dP + i * a->Nk;
                float l = scvrl__logsumexp(s, a->Nk);
                double dd = 0.0;
                for (int64_t j = 0; j < a->Nk; j++) { s[j] = expf(s[j] - l); dd += (double)s[j] * dp[j]; }
                Lse[bh * a->Nq + i0 + i] = l;
                Dv[bh * a->Nq + i0 + i] = (float)dd;
                for (int64_t j = 0; j < a->Nk; j++) dp[j] = s[j] * (dp[j] - (float)dd) * a->scale;
            }
            scvrl__sgemm(0, 0, mb, a->d, a->Nk, dP, a->Nk, K, a->sk[2], DQ + (bh * a->Nq + i0) * a->d, a->d, 0);
        }
        SCVRL_FREE(S); SCVRL_FREE(dP);
    }
}

static void scvrl__attn_back_kv(const scvrl__attn *a, const float *DO, const float *Lse, const float *Dv, float *DK, float *DV) {
    int64_t nkb = (a->Nk + SCVRL__ATT_KB - 1) / SCVRL__ATT_KB, tasks = a->B * a->H * nkb;
    #pragma omp parallel
    {
        float *P = (float *)scvrl__xmalloc((size_t)(SCVRL__ATT_QB * SCVRL__ATT_KB) * sizeof(float));
        float *dP = (float *)scvrl__xmalloc((size_t)(SCVRL__ATT_QB * SCVRL__ATT_KB) * sizeof(float));
        #pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / nkb, b = bh / a->H, h = bh % a->H, j0 = (task % nkb) * SCVRL__ATT_KB;
            int64_t nb = a->Nk - j0 < SCVRL__ATT_KB ? a->Nk - j0 : SCVRL__ATT_KB;
            const float *K = a->k + b * a->sk[0] + h * a->sk[1] + j0 * a->sk[2];
            const float *V = a->v + b * a->sv[0] + h * a->sv[1] + j0 * a->sv[2];
            float *dK = DK + (bh * a->Nk + j0) * a->d, *dV = DV + (bh * a->Nk + j0) * a->d;
            for (int64_t i0 = 0; i0 < a->Nq; i0 += SCVRL__ATT_QB) {
                int64_t mb = a->Nq - i0 < SCVRL__ATT_QB ? a->Nq - i0 : SCVRL__ATT_QB;
                const float *Q = a->q + b * a->sq[0] + h * a->sq[1] + i0 * a->sq[2];
                const float *dOb = DO + ((b * a->Nq + i0) * a->H + h) * a->d;
                scvrl__sgemm(0, 1, mb, nb, a->d, Q, a->sq[2], K, a->sk[2], P, nb, 0);
                scvrl__sgemm(0, 1, mb, nb, a->d, dOb, a->H * a->d, V, a->sv[2], dP, nb, 0);
                for (int64_t i = 0; i < mb; i++) {
                    float l = Lse[bh * a->Nq + i0 + i], dd = Dv[bh * a->Nq + i0 + i];
                    for (int64_t j = 0; j < nb; j++) {
                        float p = expf(P[i * nb + j] * a->scale - l);
                        P[i * nb + j] = p;
                        dP[i * nb + j] = p * (dP[i * nb + j] - dd) * a->scale;
                    }
                }
                scvrl__sgemm(1, 0, nb, a->d, mb, P, nb, dOb, a->H * a->d, dV, a->d, i0 > 0);
                scvrl__sgemm(1, 0, nb, a->d, mb, dP, nb, Q, a->sq[2], dK, a->d, i0 > 0);
            }
            if (a->Nq == 0) { memset(dK, 0, (size_t)(nb * a->d) * 4); memset(dV, 0, (size_t)(nb * a->d) * 4); }
        }
        SCVRL_FREE(P); SCVRL_FREE(dP);
    }
}

static void scvrl__cpu_ATTENTION_BACK(scvrl_tensor *t, const scvrl_graph *g) {
    (void)g;
    scvrl__attn a = scvrl__attn_geom(t->src[0], t->src[1], t->src[2], t->fp[0]);
    const float *DO = (const float *)t->src[3]->data;     // [B, Nq, H, d] contiguous
    float *DQ = (float *)t->data, *DK = DQ + a.B * a.H * a.Nq * a.d, *DV = DK + a.B * a.H * a.Nk * a.d;
    float *Lse = (float *)scvrl__xmalloc((size_t)(a.B * a.H * a.Nq + 1) * 2 * sizeof(float));
    float *Dv = Lse + a.B * a.H * a.Nq + 1;
    scvrl__attn_back_q(&a, DO, DQ, Lse, Dv);
    scvrl__attn_back_kv(&a, DO, Lse, Dv, DK, DV);
    SCVRL_FREE(Lse);
}

// ============================================================================
// 17. Backward rules: each adds the gradients of t's sources, built from other ops.
// ============================================================================
typedef void (*scvrl__bwd_fn)(scvrl_ctx *ctx, scvrl_tensor *t);

// x->grad += g (reducing g to x's shape where x was broadcast).
// a + b for gradient accumulation. Two SLICE_BACKs of adjacent ranges of the same dim (the
// gradients of q, k and v sliced from one qkv tensor, say) become one SLICE_BACK of their concat,
// or the concat itself once it covers the dim: one pass instead of zero-filled copies and adds.
// Exact: the adds it replaces only add zeros.
static scvrl_tensor *scvrl__grad_sum(scvrl_ctx *ctx, scvrl_tensor *a, scvrl_tensor *b) {
    if (a->op == SCVRL_OP_SLICE_BACK && b->op == SCVRL_OP_SLICE_BACK && !a->view_src && !b->view_src &&
        a->ip[0] == b->ip[0] && scvrl__same_shape(a, b)) {
        int dim = (int)a->ip[0];
        int64_t la = a->src[0]->ne[dim], lb = b->src[0]->ne[dim];
        scvrl_tensor *lo = a->ip[1] + la == b->ip[1] ? a : b->ip[1] + lb == a->ip[1] ? b : NULL;
        if (lo) {
            scvrl_tensor *hi = lo == a ? b : a;
            scvrl_tensor *cat = scvrl_concat(ctx, lo->src[0], hi->src[0], dim);
            if (lo->ip[1] == 0 && la + lb == a->ne[dim]) return cat;
            scvrl_tensor *d = scvrl__op(ctx, SCVRL_OP_SLICE_BACK, a->ndim, a->ne, cat, NULL, NULL);
            d->ip[0] = dim; d->ip[1] = lo->ip[1]; d->ip[2] = la + lb;
            return d;
        }
    }
    return scvrl_add(ctx, a, b);
}

static void scvrl__acc(scvrl_ctx *ctx, scvrl_tensor *x, scvrl_tensor *g) {
    if (!x || !(x->flags & SCVRL_F_GRAD)) return;
    if (!scvrl__same_shape(x, g)) {
        if (scvrl_nelements(x) == scvrl_nelements(g) && x->ndim <= g->ndim) {
            int same = 1;      // same trailing sizes up to leading ones: a reshape suffices
            for (int i = 0; i < g->ndim - x->ndim; i++) if (g->ne[i] != 1) same = 0;
            g = same ? scvrl_reshape(ctx, g, x->ndim, x->ne) : scvrl_sum_to(ctx, g, x->ndim, x->ne);
        } else {
            g = scvrl_sum_to(ctx, g, x->ndim, x->ne);
        }
    }
    x->grad = x->grad ? scvrl__grad_sum(ctx, x->grad, g) : g;
}

static scvrl_tensor *scvrl__op2(scvrl_ctx *ctx, scvrl_op op, const scvrl_tensor *shape_of,
                                scvrl_tensor *a, scvrl_tensor *b, scvrl_tensor *c, scvrl_tensor *d) {
    scvrl_tensor *r = scvrl__op(ctx, op, shape_of->ndim, shape_of->ne, a, b, c);
    r->src[3] = d;
    r->flags &= ~(uint32_t)SCVRL_F_GRAD;    // fused backward ops are not differentiated again
    return r;
}

static void scvrl__bwd_NONE(scvrl_ctx *ctx, scvrl_tensor *t) {
    (void)ctx;
    SCVRL_ASSERT(0, "op %s has no gradient (second-order gradients are not supported)", scvrl_op_name(t->op));
}
static void scvrl__bwd_ADD(scvrl_ctx *ctx, scvrl_tensor *t) { scvrl__acc(ctx, t->src[0], t->grad); scvrl__acc(ctx, t->src[1], t->grad); }
static void scvrl__bwd_SUB(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], t->grad);
    if (t->src[1]->flags & SCVRL_F_GRAD) scvrl__acc(ctx, t->src[1], scvrl_scale(ctx, t->grad, -1.0f));
}
static void scvrl__bwd_MUL(scvrl_ctx *ctx, scvrl_tensor *t) {
    if (t->src[0]->flags & SCVRL_F_GRAD) scvrl__acc(ctx, t->src[0], scvrl_mul(ctx, t->grad, t->src[1]));
    if (t->src[1]->flags & SCVRL_F_GRAD) scvrl__acc(ctx, t->src[1], scvrl_mul(ctx, t->grad, t->src[0]));
}
static void scvrl__bwd_DIV(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *a = t->src[0], *b = t->src[1];
    if (a->flags & SCVRL_F_GRAD) scvrl__acc(ctx, a, scvrl_div(ctx, t->grad, b));
    if (b->flags & SCVRL_F_GRAD) scvrl__acc(ctx, b, scvrl_scale(ctx, scvrl_mul(ctx, t->grad, scvrl_div(ctx, t, b)), -1.0f));
}
static void scvrl__bwd_SCALE(scvrl_ctx *ctx, scvrl_tensor *t) { scvrl__acc(ctx, t->src[0], scvrl_scale(ctx, t->grad, t->fp[0])); }
static void scvrl__bwd_RELU(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl__op2(ctx, SCVRL_OP_RELU_BACK, t, t->src[0], t->grad, NULL, NULL));
}
static void scvrl__bwd_GELU(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl__op2(ctx, SCVRL_OP_GELU_BACK, t, t->src[0], t->grad, NULL, NULL));
}

static void scvrl__bwd_MATMUL(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *a = t->src[0], *b = t->src[1], *dc = t->grad;
    int tA = (int)t->ip[0], tB = (int)t->ip[1];
    if (a->flags & SCVRL_F_GRAD)
        scvrl__acc(ctx, a, tA ? scvrl_transpose(ctx, scvrl_matmul(ctx, dc, b, 0, !tB), -1, -2)
                              : scvrl_matmul(ctx, dc, b, 0, !tB));
    if (b->flags & SCVRL_F_GRAD) {
        if (b->ndim == 2 && a->ndim > 2 && !tA) {      // shared weight: flatten the batch into rows
            int64_t K = a->ne[a->ndim - 1], M = scvrl_nelements(a) / K, N = dc->ne[dc->ndim - 1];
            scvrl_tensor *a2 = scvrl_reshape_2d(ctx, a, M, K), *d2 = scvrl_reshape_2d(ctx, dc, M, N);
            scvrl__acc(ctx, b, tB ? scvrl_matmul(ctx, d2, a2, 1, 0) : scvrl_matmul(ctx, a2, d2, 1, 0));
        } else {
            scvrl__acc(ctx, b, tB ? scvrl_matmul(ctx, dc, a, 1, tA) : scvrl_matmul(ctx, a, dc, !tA, 0));
        }
    }
}

static void scvrl__bwd_LINEAR(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2], *dy = t->grad;
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    if (x->flags & SCVRL_F_GRAD) scvrl__acc(ctx, x, scvrl_matmul(ctx, dy, w, 0, 0));
    scvrl_tensor *d2 = scvrl_reshape_2d(ctx, dy, rows, out);
    if (w->flags & SCVRL_F_GRAD) scvrl__acc(ctx, w, scvrl_matmul(ctx, d2, scvrl_reshape_2d(ctx, x, rows, in), 1, 0));
    if (b && (b->flags & SCVRL_F_GRAD)) scvrl__acc(ctx, b, scvrl_sum_to(ctx, d2, 1, &out));
}

static void scvrl__bwd_CONV3D(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2], *dy = scvrl__contig(ctx, t->grad);
    if (x->flags & SCVRL_F_GRAD) {
        scvrl_tensor *dx = scvrl__op2(ctx, SCVRL_OP_CONV3D_BACK_X, x, dy, w, NULL, NULL);
        memcpy(dx->ip, t->ip, sizeof(t->ip));
        scvrl__acc(ctx, x, dx);
    }
    if (w->flags & SCVRL_F_GRAD) {
        scvrl_tensor *dw = scvrl__op2(ctx, SCVRL_OP_CONV3D_BACK_W, w, dy, x, NULL, NULL);
        memcpy(dw->ip, t->ip, sizeof(t->ip));
        scvrl__acc(ctx, w, dw);
    }
    if (b && (b->flags & SCVRL_F_GRAD)) {
        int64_t C = b->ne[0], ne[4] = { C, 1, 1, 1 };
        if (t->ip[7] == SCVRL_LAYOUT_NCDHW) scvrl__acc(ctx, b, scvrl_reshape(ctx, scvrl_sum_to(ctx, dy, 4, ne), 1, &C));
        else scvrl__acc(ctx, b, scvrl_sum_to(ctx, dy, 1, &C));
    }
}

static void scvrl__bwd_MAXPOOL3D(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0];
    scvrl_tensor *dx = scvrl__op2(ctx, SCVRL_OP_MAXPOOL3D_BACK, x, scvrl__contig(ctx, t->grad), x, NULL, NULL);
    memcpy(dx->ip, t->ip, sizeof(t->ip));
    scvrl__acc(ctx, x, dx);
}

static void scvrl__bwd_LAYER_NORM(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2], *dy = scvrl__contig(ctx, t->grad);
    if (x->flags & SCVRL_F_GRAD) {
        scvrl_tensor *dx = scvrl__op2(ctx, SCVRL_OP_LAYER_NORM_BACK, x, dy, x, w, NULL);
        dx->fp[0] = t->fp[0];
        scvrl__acc(ctx, x, dx);
    }
    if ((w && (w->flags & SCVRL_F_GRAD)) || (b && (b->flags & SCVRL_F_GRAD))) {
        int64_t D = x->ne[x->ndim - 1], ne[2] = { 2, D };
        scvrl_tensor *wb = scvrl__op(ctx, SCVRL_OP_LAYER_NORM_BACK_WB, 2, ne, dy, x, NULL);
        wb->flags &= ~(uint32_t)SCVRL_F_GRAD;
        wb->fp[0] = t->fp[0];
        if (w) scvrl__acc(ctx, w, scvrl_reshape(ctx, scvrl_slice(ctx, wb, 0, 0, 1), 1, &D));
        if (b) scvrl__acc(ctx, b, scvrl_reshape(ctx, scvrl_slice(ctx, wb, 0, 1, 1), 1, &D));
    }
}

static void scvrl__bwd_SOFTMAX(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl__op2(ctx, SCVRL_OP_SOFTMAX_BACK, t, t, scvrl__contig(ctx, t->grad), NULL, NULL));
}
static void scvrl__bwd_LOG_SOFTMAX(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl__op2(ctx, SCVRL_OP_LOG_SOFTMAX_BACK, t, t, scvrl__contig(ctx, t->grad), NULL, NULL));
}

static void scvrl__bwd_ATTENTION(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *q = t->src[0], *k = t->src[1], *v = t->src[2];
    int64_t nq = scvrl_nelements(q), nk = scvrl_nelements(k), n = nq + 2 * nk;
    scvrl_tensor *ab = scvrl__op(ctx, SCVRL_OP_ATTENTION_BACK, 1, &n, q, k, v);
    ab->src[3] = scvrl__contig(ctx, t->grad);
    ab->src[4] = t;          // the forward's output: a backend may take rowsum(dout * out) from it (CPU: unused)
    ab->flags &= ~(uint32_t)SCVRL_F_GRAD;
    ab->fp[0] = t->fp[0];
    int64_t qs[4] = { q->ne[0], q->ne[1], q->ne[2], q->ne[3] }, ks[4] = { k->ne[0], k->ne[1], k->ne[2], k->ne[3] };
    scvrl__acc(ctx, q, scvrl_reshape(ctx, scvrl_slice(ctx, ab, 0, 0, nq), 4, qs));
    scvrl__acc(ctx, k, scvrl_reshape(ctx, scvrl_slice(ctx, ab, 0, nq, nk), 4, ks));
    scvrl__acc(ctx, v, scvrl_reshape(ctx, scvrl_slice(ctx, ab, 0, nq + nk, nk), 4, ks));
}

static void scvrl__bwd_CROSS_ENTROPY(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0];
    scvrl__acc(ctx, x, scvrl__op2(ctx, SCVRL_OP_CROSS_ENTROPY_BACK, x, x, t->src[1], t->grad, NULL));
}
static void scvrl__bwd_L2_NORMALIZE(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *dx = scvrl__op2(ctx, SCVRL_OP_L2_NORMALIZE_BACK, t, t->src[0], scvrl__contig(ctx, t->grad), NULL, NULL);
    dx->fp[0] = t->fp[0];
    scvrl__acc(ctx, t->src[0], dx);
}
static void scvrl__bwd_SUM_TO(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0];
    scvrl__acc(ctx, x, scvrl_expand(ctx, t->grad, x->ndim, x->ne));
}
static void scvrl__bwd_CONCAT(scvrl_ctx *ctx, scvrl_tensor *t) {
    int dim = (int)t->ip[0];
    scvrl_tensor *a = t->src[0], *b = t->src[1];
    scvrl__acc(ctx, a, scvrl_slice(ctx, t->grad, dim, 0, a->ne[dim]));
    scvrl__acc(ctx, b, scvrl_slice(ctx, t->grad, dim, a->ne[dim], b->ne[dim]));
}
static void scvrl__bwd_SLICE(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *x = t->src[0];
    scvrl_tensor *d = scvrl__op(ctx, SCVRL_OP_SLICE_BACK, x->ndim, x->ne, scvrl__contig(ctx, t->grad), NULL, NULL);
    d->ip[0] = t->ip[0]; d->ip[1] = t->ip[1]; d->ip[2] = t->ip[2];
    scvrl__acc(ctx, x, d);
}
static void scvrl__bwd_SLICE_BACK(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl_slice(ctx, t->grad, (int)t->ip[0], t->ip[1], t->ip[2]));
}
static void scvrl__bwd_INDEX_SELECT(scvrl_ctx *ctx, scvrl_tensor *t) {
    int dim = (int)t->ip[0];
    scvrl__acc(ctx, t->src[0], scvrl__index_add(ctx, t->grad, dim, t->src[1], t->src[0]->ne[dim]));
}
static void scvrl__bwd_INDEX_ADD(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl_index_select(ctx, t->grad, (int)t->ip[0], t->src[1]));
}
static void scvrl__bwd_CONT(scvrl_ctx *ctx, scvrl_tensor *t) { scvrl__acc(ctx, t->src[0], t->grad); }
static void scvrl__bwd_RESHAPE(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl_reshape(ctx, t->grad, t->src[0]->ndim, t->src[0]->ne));
}
static void scvrl__bwd_PERMUTE(scvrl_ctx *ctx, scvrl_tensor *t) {
    int inv[SCVRL_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) inv[t->ip[i]] = i;
    scvrl__acc(ctx, t->src[0], scvrl_permute(ctx, t->grad, inv));
}
static void scvrl__bwd_EXPAND(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl__acc(ctx, t->src[0], scvrl_sum_to(ctx, t->grad, t->src[0]->ndim, t->src[0]->ne));
}
static void scvrl__bwd_rng(scvrl_ctx *ctx, scvrl_tensor *t) {
    scvrl_tensor *d = scvrl__op(ctx, t->op, t->ndim, t->ne, scvrl__contig(ctx, t->grad), NULL, NULL);
    d->fp[0] = t->fp[0]; d->ip[0] = t->ip[0];
    scvrl__acc(ctx, t->src[0], d);
}
static void scvrl__bwd_DROPOUT(scvrl_ctx *ctx, scvrl_tensor *t) { scvrl__bwd_rng(ctx, t); }
static void scvrl__bwd_DROP_PATH(scvrl_ctx *ctx, scvrl_tensor *t) { scvrl__bwd_rng(ctx, t); }

// ============================================================================
// 18. Graph build, backward, memory plan, compute
// ============================================================================
#define SCVRL__BWD_ENTRY(name, n, b) scvrl__bwd_##b,
static const scvrl__bwd_fn scvrl__bwd_table[] = { SCVRL_OPS(SCVRL__BWD_ENTRY) };
#undef SCVRL__BWD_ENTRY
#define SCVRL__CPU_ENTRY(name, n, b) scvrl__cpu_##name,
static const scvrl__kernel_fn scvrl__cpu_table[] = { SCVRL_OPS(SCVRL__CPU_ENTRY) };
#undef SCVRL__CPU_ENTRY

typedef struct { size_t bytes; void *buf; size_t buf_cap; int planned_n; int64_t *offs; uint8_t *fuse; } scvrl__plan;
static uint32_t scvrl__visit_epoch = 0;

scvrl_graph *scvrl_graph_new(void) {
    scvrl_graph *g = (scvrl_graph *)scvrl__xmalloc(sizeof(scvrl_graph));
    memset(g, 0, sizeof(*g));
    g->plan = scvrl__xmalloc(sizeof(scvrl__plan));
    memset(g->plan, 0, sizeof(scvrl__plan));
    return g;
}

void scvrl_graph_free(scvrl_graph *g) {
    if (!g) return;
    scvrl__plan *p = (scvrl__plan *)g->plan;
    if (p) { SCVRL_FREE(p->buf); SCVRL_FREE(p->offs); SCVRL_FREE(p->fuse); }
    SCVRL_FREE(p);
    SCVRL_FREE(g->nodes);
    SCVRL_FREE(g);
}

static void scvrl__graph_push(scvrl_graph *g, scvrl_tensor *t) {
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->nodes = (scvrl_tensor **)SCVRL_REALLOC(g->nodes, (size_t)g->cap * sizeof(scvrl_tensor *));
        SCVRL_ASSERT(g->nodes, "out of memory growing a graph");
    }
    t->id = g->n;
    g->nodes[g->n++] = t;
}

// Iterative depth-first post-order from t over nodes not yet in g (marked with the graph's epoch).
static void scvrl__graph_visit(scvrl_graph *g, scvrl_tensor *root, uint32_t mark) {
    if (root->visit == mark) return;
    int cap = 256, sp = 0;
    scvrl_tensor **stk = (scvrl_tensor **)scvrl__xmalloc((size_t)cap * sizeof(*stk));
    int *ci = (int *)scvrl__xmalloc((size_t)cap * sizeof(int));
    stk[sp] = root; ci[sp] = 0; sp++;
    root->visit = mark;
    while (sp) {
        scvrl_tensor *t = stk[sp - 1];
        if (ci[sp - 1] < SCVRL_MAX_SRC) {
            scvrl_tensor *s = t->src[ci[sp - 1]++];
            if (s && s->visit != mark) {
                s->visit = mark;
                if (sp == cap) {
                    cap *= 2;
                    stk = (scvrl_tensor **)SCVRL_REALLOC(stk, (size_t)cap * sizeof(*stk));
                    ci = (int *)SCVRL_REALLOC(ci, (size_t)cap * sizeof(int));
                    SCVRL_ASSERT(stk && ci, "out of memory");
                }
                stk[sp] = s; ci[sp] = 0; sp++;
            }
        } else {
            scvrl__graph_push(g, t);
            sp--;
        }
    }
    SCVRL_FREE(stk); SCVRL_FREE(ci);
}

// A fresh mark per traversal; nodes already in g get it, so only new nodes are appended.
// (Graph building is single-threaded.)
static uint32_t scvrl__graph_mark(scvrl_graph *g) {
    uint32_t m = ++scvrl__visit_epoch;
    for (int i = 0; i < g->n; i++) g->nodes[i]->visit = m;
    return m;
}

void scvrl_graph_expand(scvrl_graph *g, scvrl_tensor *t) {
    uint32_t m = scvrl__graph_mark(g);
    scvrl__graph_visit(g, t, m);
    ((scvrl__plan *)g->plan)->planned_n = -1;
}

void scvrl_graph_backward(scvrl_ctx *ctx, scvrl_graph *g, scvrl_tensor *loss) {
    SCVRL_ASSERT(loss->id >= 0 && loss->id < g->n && g->nodes[loss->id] == loss, "backward: loss is not in the graph");
    SCVRL_ASSERT(scvrl_nelements(loss) == 1, "backward: loss must have one element");
    int n = g->n;
    for (int i = 0; i < n; i++) g->nodes[i]->grad = NULL;
    scvrl_mark_output(loss);
    if (!(loss->flags & SCVRL_F_GRAD)) return;     // nothing depends on a parameter
    scvrl_tensor *one = scvrl_new_data(ctx, SCVRL_DT_F32, loss->ndim, loss->ne);
    scvrl_f32(one)[0] = 1.0f;
    loss->grad = one;
    for (int i = n - 1; i >= 0; i--) {
        scvrl_tensor *t = g->nodes[i];
        if (!t->grad || !(t->flags & SCVRL_F_GRAD) || t->op == SCVRL_OP_LEAF) continue;
        scvrl__bwd_table[t->op](ctx, t);
    }
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (!(t->flags & SCVRL_F_PARAM) || !t->grad) continue;
        SCVRL_ASSERT(t->grad_data, "parameter %s has no gradient buffer (scvrl_params_finalize)", t->name);
        scvrl_tensor *acc = scvrl__op(ctx, SCVRL_OP_GRAD_ACC, t->ndim, t->ne, t->grad, NULL, NULL);
        acc->flags = SCVRL_F_EXTERNAL | SCVRL_F_OUTPUT;
        acc->data = t->grad_data;
        scvrl_set_name(acc, "grad:%s", t->name);
        scvrl_graph_expand(g, acc);
    }
}

// --- memory plan: best-fit over a free list, by last use ---
typedef struct { size_t off, size; } scvrl__blk;

static size_t scvrl__plan_alloc(scvrl__blk *fl, int *nfl, size_t *top, size_t size) {
    int best = -1;
    for (int i = 0; i < *nfl; i++)
        if (fl[i].size >= size && (best < 0 || fl[i].size < fl[best].size)) best = i;
    if (best < 0) {
        // grow: extend a free block that ends at the top, else take fresh space
        for (int i = 0; i < *nfl; i++)
            if (fl[i].off + fl[i].size == *top) {
                size_t off = fl[i].off;
                *top = off + size;
                fl[i] = fl[--(*nfl)];
                return off;
            }
        size_t off = *top;
        *top += size;
        return off;
    }
    size_t off = fl[best].off;
    fl[best].off += size; fl[best].size -= size;
    if (fl[best].size == 0) fl[best] = fl[--(*nfl)];
    return off;
}

static void scvrl__plan_free(scvrl__blk *fl, int *nfl, size_t off, size_t size) {
    // coalesce with neighbours
    for (int i = 0; i < *nfl; i++) {
        if (fl[i].off + fl[i].size == off) { off = fl[i].off; size += fl[i].size; fl[i] = fl[--(*nfl)]; i = -1; continue; }
        if (off + size == fl[i].off) { size += fl[i].size; fl[i] = fl[--(*nfl)]; i = -1; continue; }
    }
    fl[(*nfl)++] = (scvrl__blk){ off, size };
}

static int scvrl__needs_alloc(const scvrl_tensor *t) {
    return !(t->flags & SCVRL_F_EXTERNAL) && !t->view_src && t->op != SCVRL_OP_LEAF;
}

// Node i (a LINEAR, a DROP_PATH or a LAYER_NORM_BACK) and node i+1 may run as one kernel
// (scvrl__cpu_linear_fused, scvrl__cpu_drop_path_add, scvrl__cpu_ln_back_add) when i's output is
// read by nothing but i+1 (uses: source slots of all nodes, views included, that reach i) and is
// no graph output, and i+1 is GELU of it (LINEAR only) or ADD of it and a contiguous tensor of its
// shape (the residual adds of a transformer block, with drop-path between them in training; in the
// backward, a layer norm's input gradient added to the residual stream's: scvrl__grad_sum's ADD).
// The plan then keeps the buffers freed at step i alive through step i+1, so that i+1's buffer
// never overlaps i's inputs (a valid plan for every backend; the CPU and CUDA backends fuse).
static int scvrl__fusable(const scvrl_graph *g, int i, const int *uses) {
    if (i + 1 >= g->n) return 0;
    const scvrl_tensor *t = g->nodes[i], *u = g->nodes[i + 1];
    if (t->op != SCVRL_OP_LINEAR && t->op != SCVRL_OP_DROP_PATH && t->op != SCVRL_OP_LAYER_NORM_BACK) return 0;
    if (t->view_src || (t->flags & (SCVRL_F_OUTPUT | SCVRL_F_EXTERNAL)) || uses[i] != 1) return 0;
    if (t->type != SCVRL_DT_F32 || u->type != SCVRL_DT_F32 || u->view_src || (u->flags & SCVRL_F_EXTERNAL)) return 0;
    if (!scvrl__same_shape(t, u)) return 0;
    if (u->op == SCVRL_OP_GELU) return t->op == SCVRL_OP_LINEAR && u->src[0] == t;
    if (u->op != SCVRL_OP_ADD || (u->src[0] == t) == (u->src[1] == t)) return 0;
    const scvrl_tensor *o = u->src[0] == t ? u->src[1] : u->src[0];
    return o->type == SCVRL_DT_F32 && scvrl__same_shape(o, u) && scvrl_is_contiguous(o);
}

// Lays out every allocated node in one buffer (offs[i], -1 for none) and returns its size: a node
// takes memory from its step (birth[i] when given: earlier, or -1 for none) until its last reader
// (or forever if an output); a fused pair's frees wait for the pair's second step. elem: bytes per
// element of each node (NULL or 0: its dtype's), so that a backend storing some nodes narrower can
// plan them at their size.
static size_t scvrl__plan_layout(scvrl_graph *g, const uint8_t *fuse, const uint8_t *elem, const int *birth, int64_t *offs) {
    int n = g->n;
    for (int i = 0; i < n; i++) offs[i] = -1;
    int *last = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int));
    for (int i = 0; i < n; i++) last[i] = i;
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        for (int s = 0; s < SCVRL_MAX_SRC; s++) {
            if (!t->src[s]) continue;
            scvrl_tensor *b = scvrl__view_base(t->src[s], NULL);
            if (b->id >= 0 && b->id < n && g->nodes[b->id] == b && last[b->id] < i) last[b->id] = i;
        }
        if (t->flags & SCVRL_F_OUTPUT) {
            scvrl_tensor *b = scvrl__view_base(t, NULL);
            if (b->id >= 0 && b->id < n && g->nodes[b->id] == b) last[b->id] = n;
        }
    }
    // free lists: at step i, release the bases whose last use is i
    int *order = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int)), *head = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int));
    int *border = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int)), *bhead = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int));
    for (int i = 0; i <= n; i++) head[i] = bhead[i] = -1;
    for (int i = 0; i < n; i++) { order[i] = head[last[i]]; head[last[i]] = i; }
    for (int i = n - 1; i >= 0; i--) {          // the nodes taking their memory at each step, in node order
        int b = birth ? birth[i] : i;
        if (b >= 0 && b <= i) { border[i] = bhead[b]; bhead[b] = i; }
    }
    scvrl__blk *fl = (scvrl__blk *)scvrl__xmalloc(((size_t)n + 1) * sizeof(scvrl__blk));
    int nfl = 0;
    size_t top = 0;
#define SCVRL__NODE_BYTES(u, k) \
    ((((size_t)scvrl_nelements(u) * (elem && elem[k] ? (size_t)elem[k] : scvrl_dtype_size((u)->type)) + 63) & ~(size_t)63))
    for (int i = 0; i < n; i++) {
        for (int j = bhead[i]; j >= 0; j = border[j]) {
            scvrl_tensor *u = g->nodes[j];
            if (scvrl__needs_alloc(u)) {
                size_t sz = SCVRL__NODE_BYTES(u, j);
                offs[j] = (int64_t)scvrl__plan_alloc(fl, &nfl, &top, sz ? sz : 64);
            }
        }
        if (fuse[i]) continue;                     // step i's frees wait for step i+1
        for (int step = i > 0 && fuse[i - 1] ? i - 1 : i; step <= i; step++)
            for (int j = head[step]; j >= 0; j = order[j]) {
                scvrl_tensor *u = g->nodes[j];
                if (scvrl__needs_alloc(u) && offs[j] >= 0) {
                    size_t sz = SCVRL__NODE_BYTES(u, j);
                    scvrl__plan_free(fl, &nfl, (size_t)offs[j], sz ? sz : 64);
                }
            }
    }
#undef SCVRL__NODE_BYTES
    SCVRL_FREE(last); SCVRL_FREE(order); SCVRL_FREE(head); SCVRL_FREE(border); SCVRL_FREE(bhead); SCVRL_FREE(fl);
    return top;
}

static void scvrl__graph_plan(scvrl_graph *g) {
    scvrl__plan *P = (scvrl__plan *)g->plan;
    int n = g->n;
    for (int i = 0; i < n; i++) g->nodes[i]->id = i;
    SCVRL_FREE(P->offs);
    SCVRL_FREE(P->fuse);
    P->offs = (int64_t *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int64_t));
    P->fuse = (uint8_t *)scvrl__xmalloc((size_t)n + 1);
    int *uses = (int *)scvrl__xmalloc(((size_t)n + 1) * sizeof(int));
    for (int i = 0; i < n; i++) uses[i] = 0;
    for (int i = 0; i < n; i++)
        for (int s = 0; s < SCVRL_MAX_SRC; s++) {
            if (!g->nodes[i]->src[s]) continue;
            scvrl_tensor *b = scvrl__view_base(g->nodes[i]->src[s], NULL);
            if (b->id >= 0 && b->id < n && g->nodes[b->id] == b) uses[b->id]++;
        }
    for (int i = 0; i < n; i++) P->fuse[i] = (uint8_t)scvrl__fusable(g, i, uses);
    SCVRL_FREE(uses);
    P->bytes = scvrl__plan_layout(g, P->fuse, NULL, NULL, P->offs);
    P->planned_n = n;
}

size_t scvrl_graph_activation_bytes(const scvrl_graph *g) { return ((const scvrl__plan *)g->plan)->bytes; }

const int64_t *scvrl_graph_plan(scvrl_graph *g, size_t *bytes) {
    scvrl__plan *P = (scvrl__plan *)g->plan;
    if (P->planned_n != g->n) scvrl__graph_plan(g);
    for (int i = 0; i < g->n; i++) g->nodes[i]->id = i;
    if (bytes) *bytes = P->bytes;
    return P->offs;
}
size_t scvrl_graph_plan_sized(scvrl_graph *g, const uint8_t *elem, int64_t *offs) {
    scvrl__plan *P = (scvrl__plan *)g->plan;
    if (P->planned_n != g->n) scvrl__graph_plan(g);
    for (int i = 0; i < g->n; i++) g->nodes[i]->id = i;
    return scvrl__plan_layout(g, P->fuse, elem, NULL, offs);
}
size_t scvrl_graph_plan_placed(scvrl_graph *g, const uint8_t *elem, const int *birth, int64_t *offs) {
    scvrl__plan *P = (scvrl__plan *)g->plan;
    if (P->planned_n != g->n) scvrl__graph_plan(g);
    for (int i = 0; i < g->n; i++) g->nodes[i]->id = i;
    return scvrl__plan_layout(g, P->fuse, elem, birth, offs);
}
// LINEAR + GELU/ADD and DROP_PATH + ADD fusion (scvrl__fusable), for every backend: -1 until read from SCVRL_NO_FUSE (=1: off).
static int scvrl__fuse = -1;
const uint8_t *scvrl_graph_fusable(const scvrl_graph *g) {
    if (scvrl__fuse < 0) { const char *e = getenv("SCVRL_NO_FUSE"); scvrl__fuse = !(e && *e == '1'); }
    return scvrl__fuse ? ((const scvrl__plan *)g->plan)->fuse : NULL;
}
scvrl_tensor *scvrl_view_base(const scvrl_tensor *t, int64_t *offs) { return scvrl__view_base(t, offs); }

// Plan (once per graph shape) and point every node at its memory. 0, or -1 on out of memory.
static int scvrl__graph_bind(scvrl_graph *g, char *err, size_t errlen) {
    scvrl__plan *P = (scvrl__plan *)g->plan;
    if (P->planned_n != g->n) scvrl__graph_plan(g);
    if (P->buf_cap < P->bytes) {
        SCVRL_FREE(P->buf);
        P->buf = SCVRL_MALLOC(P->bytes + 64);
        if (!P->buf) {
            P->buf_cap = 0;
            scvrl__err(err, errlen, "out of memory: the graph needs %.1f MB of activations; use a smaller batch or clip",
                       (double)P->bytes / 1e6);
            return -1;
        }
        P->buf_cap = P->bytes;
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)P->buf + 63) & ~(uintptr_t)63);
    for (int i = 0; i < g->n; i++) {
        scvrl_tensor *t = g->nodes[i];
        t->id = i;
        if (scvrl__needs_alloc(t)) t->data = base + P->offs[i];
    }
    return 0;
}

static void scvrl__resolve_view(scvrl_tensor *t) {
    int64_t offs;
    scvrl_tensor *b = scvrl__view_base(t, &offs);
    t->data = b->data ? (uint8_t *)b->data + offs * (int64_t)scvrl_dtype_size(t->type) : NULL;
}

// SCVRL_PROFILE=1: seconds per op kind of every CPU compute, printed to stderr at exit; =2 also
// prints one line per node (op, ms, shapes; "nc": a non-contiguous source) as it runs.
// SCVRL_PROFILE_CPU=1: time with the calling thread's CPU clock (meaningful with one thread on a
// loaded machine) instead of the wall clock.
static double scvrl__prof_s[SCVRL_OP_COUNT];
static int64_t scvrl__prof_n[SCVRL_OP_COUNT];
static void scvrl__prof_print(void) {
    double tot = 0;
    for (int i = 0; i < SCVRL_OP_COUNT; i++) tot += scvrl__prof_s[i];
    fprintf(stderr, "scvrl profile (CPU backend), %.3f s in all:\n", tot);
    for (int k = 0; k < SCVRL_OP_COUNT; k++) {
        int best = -1;
        for (int i = 0; i < SCVRL_OP_COUNT; i++)
            if (scvrl__prof_n[i] >= 0 && scvrl__prof_s[i] > 0 && (best < 0 || scvrl__prof_s[i] > scvrl__prof_s[best])) best = i;
        if (best < 0) break;
        fprintf(stderr, "  %-20s %8.3f s %5.1f%%  %lld calls\n", scvrl_op_name((scvrl_op)best), scvrl__prof_s[best],
                100 * scvrl__prof_s[best] / tot, (long long)scvrl__prof_n[best]);
        scvrl__prof_n[best] = -1;
    }
}
static int scvrl__prof_cpu;   // SCVRL_PROFILE_CPU=1: the calling thread's CPU time (single-thread runs)
static double scvrl__now(void) {
    struct timespec ts;
    clock_gettime(scvrl__prof_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int scvrl__cpu_compute(scvrl_backend *be, scvrl_graph *g, char *err, size_t errlen) {
    (void)be;
    if (scvrl__graph_bind(g, err, errlen)) return -1;
    const uint8_t *fuse = scvrl_graph_fusable(g);   // LINEAR + GELU/ADD, DROP_PATH + ADD pairs (NULL: SCVRL_NO_FUSE=1)
    static int prof = -1;
    if (prof < 0) { const char *e = getenv("SCVRL_PROFILE"); prof = e && (*e == '1' || *e == '2') ? *e - '0' : 0; e = getenv("SCVRL_PROFILE_CPU"); scvrl__prof_cpu = e && *e == '1'; if (prof) atexit(scvrl__prof_print); }
    for (int i = 0; i < g->n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (t->view_src) { scvrl__resolve_view(t); continue; }
        if (t->op == SCVRL_OP_LEAF) {
            if (!t->data && scvrl_nelements(t) > 0) {
                scvrl__err(err, errlen, "input tensor '%s' has no data (set ->data before compute)", t->name);
                return -1;
            }
            continue;
        }
        double t0 = prof ? scvrl__now() : 0;
        if (fuse && fuse[i]) {
            if (t->op == SCVRL_OP_DROP_PATH) scvrl__cpu_drop_path_add(t, g->nodes[i + 1], g);
            else if (t->op == SCVRL_OP_LAYER_NORM_BACK) scvrl__cpu_ln_back_add(t, g->nodes[i + 1]);
            else scvrl__cpu_linear_fused(t, g->nodes[i + 1]);
            if (prof == 2) fprintf(stderr, "node (fused with %s)\n", scvrl_op_name(g->nodes[i + 1]->op));
            i++;                          // (t stays the LINEAR in the profile)
        } else scvrl__cpu_table[t->op](t, g);
        if (prof) {
            double dt = scvrl__now() - t0;
            scvrl__prof_s[t->op] += dt; scvrl__prof_n[t->op]++;
            if (prof == 2) {
                fprintf(stderr, "node %-14s %9.3f ms [", scvrl_op_name(t->op), 1e3 * dt);
                for (int d = 0; d < t->ndim; d++) fprintf(stderr, "%s%lld", d ? "," : "", (long long)t->ne[d]);
                fprintf(stderr, "]");
                for (int s = 0; s < SCVRL_MAX_SRC && t->src[s]; s++) {
                    fprintf(stderr, " src%d[", s);
                    for (int d = 0; d < t->src[s]->ndim; d++) fprintf(stderr, "%s%lld", d ? "," : "", (long long)t->src[s]->ne[d]);
                    fprintf(stderr, "]%s", scvrl_is_contiguous(t->src[s]) ? "" : "nc");
                }
                fprintf(stderr, "\n");
            }
        }
    }
    return 0;
}

static int scvrl__cpu_supports(scvrl_backend *be, const scvrl_tensor *t) { (void)be; (void)t; return 1; }
static void scvrl__cpu_free(scvrl_backend *be) { (void)be; }

int scvrl_precision_parse(const char *name) {
    static const char *const names[] = { "fp32", "tf32", "bf16" };
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *scvrl_precision_name(int prec) {
    return prec == SCVRL_PREC_FP32 ? "fp32" : prec == SCVRL_PREC_TF32 ? "tf32" : prec == SCVRL_PREC_BF16 ? "bf16" : "?";
}

scvrl_backend *scvrl_backend_cpu(void) {
    static scvrl_backend cpu = { "cpu", NULL, scvrl__cpu_supports, scvrl__cpu_compute, scvrl__cpu_free, NULL };
    return &cpu;
}
void scvrl_backend_free(scvrl_backend *be) { if (be && be->free) be->free(be); }

int scvrl_graph_compute(scvrl_graph *g, scvrl_backend *be, char *err, size_t errlen) {
    if (!be) be = scvrl_backend_cpu();
    for (int i = 0; i < g->n; i++)
        if (!be->supports_op(be, g->nodes[i])) {
            scvrl__err(err, errlen, "backend %s does not support op %s (node '%s')", be->name,
                       scvrl_op_name(g->nodes[i]->op), g->nodes[i]->name);
            return -1;
        }
    return be->compute(be, g, err, errlen);
}

// ============================================================================
// 19. Parameters and optimizers
// ============================================================================
void scvrl_params_init(scvrl_params *P) {
    memset(P, 0, sizeof(*P));
    P->ctx = scvrl_ctx_new(0);
}

void scvrl_params_free(scvrl_params *P) {
    if (!P) return;
    if (P->dev) P->dev->params(P->dev, SCVRL_PARAMS_UNBIND, P, NULL, NULL, NULL, NULL, 0);
    scvrl_ctx_free(P->ctx);
    SCVRL_FREE(P->t); SCVRL_FREE(P->gt); SCVRL_FREE(P->offs); SCVRL_FREE(P->pflags);
    SCVRL_FREE(P->w); SCVRL_FREE(P->g); SCVRL_FREE(P->m); SCVRL_FREE(P->v);
    memset(P, 0, sizeof(*P));
}

scvrl_tensor *scvrl_params_add(scvrl_params *P, const char *name, int ndim, const int64_t *ne, uint32_t pflags) {
    SCVRL_ASSERT(!P->w, "scvrl_params_add after finalize (%s)", name);
    SCVRL_ASSERT(!scvrl_params_find(P, name), "duplicate parameter name %s", name);
    if (P->n == P->cap) {
        P->cap = P->cap ? 2 * P->cap : 64;
        P->t = (scvrl_tensor **)SCVRL_REALLOC(P->t, (size_t)P->cap * sizeof(*P->t));
        P->gt = (scvrl_tensor **)SCVRL_REALLOC(P->gt, (size_t)P->cap * sizeof(*P->gt));
        P->offs = (int64_t *)SCVRL_REALLOC(P->offs, (size_t)P->cap * sizeof(*P->offs));
        P->pflags = (uint32_t *)SCVRL_REALLOC(P->pflags, (size_t)P->cap * sizeof(*P->pflags));
        SCVRL_ASSERT(P->t && P->gt && P->offs && P->pflags, "out of memory");
    }
    scvrl_tensor *t = scvrl_new(P->ctx, SCVRL_DT_F32, ndim, ne);
    scvrl_mark_param(t);
    scvrl_set_name(t, "%s", name);
    scvrl_tensor *gt = scvrl_new(P->ctx, SCVRL_DT_F32, ndim, ne);
    scvrl_set_name(gt, "grad:%s", name);
    P->t[P->n] = t; P->gt[P->n] = gt;
    P->offs[P->n] = P->n_elems;
    P->pflags[P->n] = pflags;
    // keep every tensor 16-float aligned in the flat buffer
    P->n_elems += (scvrl_nelements(t) + 15) & ~(int64_t)15;
    P->n++;
    return t;
}

int scvrl_params_finalize(scvrl_params *P, char *err, size_t errlen) {
    size_t bytes = (size_t)(P->n_elems ? P->n_elems : 1) * sizeof(float);
    P->w = (float *)calloc(1, bytes);
    P->g = (float *)calloc(1, bytes);
    if (!P->w || !P->g) {
        scvrl__err(err, errlen, "out of memory allocating %.1f MB of parameters", 2.0 * (double)bytes / 1e6);
        return -1;
    }
    for (int i = 0; i < P->n; i++) {
        P->t[i]->data = P->w + P->offs[i];
        P->t[i]->grad_data = P->g + P->offs[i];
        P->gt[i]->data = P->g + P->offs[i];
    }
    return 0;
}

scvrl_tensor *scvrl_params_find(const scvrl_params *P, const char *name) {
    for (int i = 0; i < P->n; i++) if (!strcmp(P->t[i]->name, name)) return P->t[i];
    return NULL;
}

// A device operation that has no error path in the API (zero_grad, EMA, copy): a failure of the
// device is fatal, with its message.
static void scvrl__dev_op(scvrl_params_op op, scvrl_params *a, const scvrl_params *b, const float *f, double *out) {
    char err[512] = "";
    if (a->dev->params(a->dev, op, a, b, f, out, err, sizeof err)) {
        fprintf(stderr, "scvrl: device parameter operation failed: %s\n", err);
        abort();
    }
}

void scvrl_params_zero_grad(scvrl_params *P) {
    if (P->dev) { scvrl__dev_op(SCVRL_PARAMS_ZERO_GRAD, P, NULL, NULL, NULL); return; }
    memset(P->g, 0, (size_t)P->n_elems * sizeof(float));
}

int scvrl_params_to_device(scvrl_params *P, scvrl_backend *be, char *err, size_t errlen) {
    if (!be || !be->params || P->dev == be) return 0;
    if (P->dev && scvrl_params_to_host(P, err, errlen)) return -1;
    if (be->params(be, SCVRL_PARAMS_BIND, P, NULL, NULL, NULL, err, errlen)) return -1;
    P->dev = be;
    return 0;
}
static int scvrl__host_state(scvrl_params *P, char *err, size_t errlen) {      // m, v on the host
    if (P->m) return 0;
    size_t bytes = (size_t)(P->n_elems ? P->n_elems : 1) * sizeof(float);
    P->m = (float *)calloc(1, bytes);
    P->v = (float *)calloc(1, bytes);
    if (!P->m || !P->v) { scvrl__err(err, errlen, "out of memory allocating AdamW state"); return -1; }
    return 0;
}
int scvrl_params_sync(scvrl_params *P, char *err, size_t errlen) {
    if (!P->dev) return 0;
    if (P->step > 0 && scvrl__host_state(P, err, errlen)) return -1;
    return P->dev->params(P->dev, SCVRL_PARAMS_SYNC, P, NULL, NULL, NULL, err, errlen);
}
int scvrl_params_push(scvrl_params *P, char *err, size_t errlen) {
    return P->dev ? P->dev->params(P->dev, SCVRL_PARAMS_PUSH, P, NULL, NULL, NULL, err, errlen) : 0;
}
int scvrl_params_to_host(scvrl_params *P, char *err, size_t errlen) {
    if (!P->dev) return 0;
    if (scvrl_params_sync(P, err, errlen)) return -1;
    int rc = P->dev->params(P->dev, SCVRL_PARAMS_UNBIND, P, NULL, NULL, NULL, err, errlen);
    P->dev = NULL;
    return rc;
}

scvrl_adamw_cfg scvrl_adamw_default(void) {
    scvrl_adamw_cfg c = { 1e-4f, 0.9f, 0.999f, 1e-8f, 0.05f };
    return c;
}

// torch.optim.AdamW (single-tensor path): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
int scvrl_adamw_step(scvrl_params *P, const scvrl_adamw_cfg *c, char *err, size_t errlen) {
    if (!P->dev && scvrl__host_state(P, err, errlen)) return -1;
    P->step++;
    float bc1 = 1.0f - powf(c->beta1, (float)P->step), bc2 = 1.0f - powf(c->beta2, (float)P->step);
    float step_size = c->lr / bc1, bc2_sqrt = sqrtf(bc2);
    if (P->dev) {
        float f[7] = { c->lr, c->beta1, c->beta2, c->eps, c->weight_decay, step_size, bc2_sqrt };
        return P->dev->params(P->dev, SCVRL_PARAMS_ADAMW, P, NULL, f, NULL, err, errlen);
    }
    for (int i = 0; i < P->n; i++) {
        int64_t o = P->offs[i], n = scvrl_nelements(P->t[i]);
        float decay = (P->pflags[i] & SCVRL_P_NO_DECAY) ? 1.0f : 1.0f - c->lr * c->weight_decay;
        float *w = P->w + o, *g = P->g + o, *m = P->m + o, *v = P->v + o;
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t j = 0; j < n; j++) {
            w[j] *= decay;
            m[j] = c->beta1 * m[j] + (1.0f - c->beta1) * g[j];
            v[j] = c->beta2 * v[j] + (1.0f - c->beta2) * g[j] * g[j];
            float den = sqrtf(v[j]) / bc2_sqrt + c->eps;
            w[j] -= step_size * (m[j] / den);
        }
    }
    return 0;
}

double scvrl_clip_grad_norm(scvrl_params *P, double max_norm) {
    if (P->dev) {
        float f[1] = { (float)max_norm };
        double norm = 0;
        scvrl__dev_op(SCVRL_PARAMS_CLIP, P, NULL, f, &norm);
        return norm;
    }
    double s = 0.0;
    for (int i = 0; i < P->n; i++) {
        const float *g = P->g + P->offs[i];
        int64_t n = scvrl_nelements(P->t[i]);
        double si = 0.0;
        for (int64_t j = 0; j < n; j++) si += (double)g[j] * g[j];
        s += si;
    }
    double norm = sqrt(s);
    float coef = (float)(max_norm / (norm + 1e-6));
    if (coef < 1.0f) {
        #pragma omp parallel for schedule(static) if (P->n_elems > 65536)
        for (int64_t j = 0; j < P->n_elems; j++) P->g[j] *= coef;
    }
    return norm;
}

double scvrl_grad_sumsq(scvrl_params *P) {
    double s = 0.0;
    if (P->dev) { scvrl__dev_op(SCVRL_PARAMS_SUMSQ, P, NULL, NULL, &s); return s; }
    for (int64_t j = 0; j < P->n_elems; j++) s += (double)P->g[j] * P->g[j];
    return s;
}
void scvrl_grad_scale(scvrl_params *P, float c) {
    if (P->dev) { float f[1] = { c }; scvrl__dev_op(SCVRL_PARAMS_SCALE_GRAD, P, NULL, f, NULL); return; }
    for (int64_t j = 0; j < P->n_elems; j++) P->g[j] *= c;
}

double scvrl_lr_schedule(int64_t step, int64_t warmup, int64_t total, double lr_start, double lr_peak, double lr_end) {
    if (step < warmup) return lr_start + (lr_peak - lr_start) * (double)step / (double)warmup;
    if (total <= warmup) return lr_peak;
    double t = (double)(step - warmup) / (double)(total - warmup);
    if (t > 1.0) t = 1.0;
    return lr_end + 0.5 * (lr_peak - lr_end) * (1.0 + cos(3.14159265358979323846 * t));
}

void scvrl_ema_update(scvrl_params *dst, const scvrl_params *src, float m) {
    SCVRL_ASSERT(dst->n_elems == src->n_elems, "ema: parameter layouts differ");
    SCVRL_ASSERT(dst->dev == src->dev, "ema: one parameter set is on a device, the other not (scvrl_params_to_device both)");
    if (dst->dev) { float f[1] = { m }; scvrl__dev_op(SCVRL_PARAMS_EMA, dst, src, f, NULL); return; }
    float *d = dst->w;
    const float *s = src->w;
    #pragma omp parallel for schedule(static) if (dst->n_elems > 65536)
    for (int64_t j = 0; j < dst->n_elems; j++) d[j] = m * d[j] + (1.0f - m) * s[j];
}

void scvrl_params_copy(scvrl_params *dst, const scvrl_params *src) {
    SCVRL_ASSERT(dst->n_elems == src->n_elems, "copy: parameter layouts differ");
    SCVRL_ASSERT(dst->dev == src->dev, "copy: one parameter set is on a device, the other not (scvrl_params_to_device both)");
    if (dst->dev) { scvrl__dev_op(SCVRL_PARAMS_COPY, dst, src, NULL, NULL); return; }
    memcpy(dst->w, src->w, (size_t)src->n_elems * sizeof(float));
}

// ============================================================================
// 20. safetensors
// ============================================================================
/* ---- safetensors I/O (implementation) ---------------------------------------------------
 * Needs POSIX declarations (open, read, fstat, fsync, fileno, getpid): build with
 * -D_POSIX_C_SOURCE=200809L, or define it before the first #include. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SCVRL_MALLOC
#define SCVRL_MALLOC(n) malloc(n)
#endif
#ifndef SCVRL_REALLOC
#define SCVRL_REALLOC(p, n) realloc(p, n)
#endif
#ifndef SCVRL_FREE
#define SCVRL_FREE(p) free(p)
#endif

#define SCVRL__ST_MAX_DEPTH 64      /* JSON nesting the parser accepts (safetensors needs 3) */

/* ---- small helpers ---- */

/* Writes "label: message" into err (when err and errlen are set); returns -1. */
static int scvrl__st_fail(char *err, size_t errlen, const char *label, const char *fmt, ...) {
    if (!err || errlen == 0) return -1;
    int k = snprintf(err, errlen, "%s: ", label ? label : "<memory>");
    if (k < 0) k = 0;
    if ((size_t)k < errlen) {
        va_list ap; va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *scvrl__st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)SCVRL_MALLOC(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int scvrl__st_host_le(void) { const uint16_t one = 1; uint8_t b; memcpy(&b, &one, 1); return b == 1; }

static uint16_t scvrl__st_ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t scvrl__st_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t scvrl__st_ld64(const uint8_t *p) { return scvrl__st_ld32(p) | (uint64_t)scvrl__st_ld32(p + 4) << 32; }

/* Length of the valid UTF-8 sequence at s[0..n) (strict: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 when it is not one. */
static size_t scvrl__st_utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++) if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* ---- dtypes and 16-bit float conversions ---- */

static const char *const scvrl__st_dt_names[SCVRL_DT_COUNT] = { "F32", "F16", "BF16", "I32", "I64", "F64" };
static const size_t scvrl__st_dt_sizes[SCVRL_DT_COUNT] = { 4, 2, 2, 4, 8, 8 };

size_t scvrl_dtype_size(scvrl_dtype t) { return (unsigned)t < SCVRL_DT_COUNT ? scvrl__st_dt_sizes[t] : 0; }
const char *scvrl_dtype_name(scvrl_dtype t) { return (unsigned)t < SCVRL_DT_COUNT ? scvrl__st_dt_names[t] : "?"; }
scvrl_dtype scvrl_dtype_parse(const char *name) {
    for (int i = 0; name && i < SCVRL_DT_COUNT; i++)
        if (strcmp(name, scvrl__st_dt_names[i]) == 0) return (scvrl_dtype)i;
    return SCVRL_DT_COUNT;
}

static uint32_t scvrl__st_f2u(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float scvrl__st_u2f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

uint16_t scvrl_f32_to_bf16(float x) {
    uint32_t u = scvrl__st_f2u(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)(((u >> 16) & 0x8000u) | 0x7FC0u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float scvrl_bf16_to_f32(uint16_t h) { return scvrl__st_u2f((uint32_t)h << 16); }

uint16_t scvrl_f32_to_f16(float x) {
    uint32_t u = scvrl__st_f2u(x), sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);        /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);       /* >= 65520 (and inf): inf */
    if (a >= 0x38800000u) {                                          /* normal: >= 2^-14 */
        uint32_t m = a - (112u << 23);                               /* rebias 127 -> 15 */
        return (uint16_t)(sign | ((m + 0xFFFu + ((m >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign;                     /* <= 2^-25: ties to 0 */
    uint32_t mant = (a & 0x7FFFFFu) | 0x800000u, shift = 126u - (a >> 23);   /* in 2^-24 units */
    uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

float scvrl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 31) return scvrl__st_u2f(sign | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-08f;               /* m * 2^-24, exact */
        return scvrl__st_u2f(sign | scvrl__st_f2u(v));
    }
    return scvrl__st_u2f(sign | ((e + 112u) << 23) | (m << 13));
}

/* ---- a small strict JSON parser (RFC 8259) into a flat tree ----
 * Strings are unescaped in place in the (mutable) header copy, each NUL-terminated where its
 * opening quote was: an unescaped string is never longer than its quoted form. */

enum { SCVRL__ST_JNULL, SCVRL__ST_JBOOL, SCVRL__ST_JNUM, SCVRL__ST_JSTR, SCVRL__ST_JARR, SCVRL__ST_JOBJ };
#define SCVRL__ST_NONE 0xFFFFFFFFu

typedef struct {
    uint8_t type;
    uint32_t next, child;   /* next sibling, first child (SCVRL__ST_NONE when absent) */
    uint32_t pos, len;      /* string: unescaped text at buf+pos (len bytes + NUL); number: raw text */
    uint32_t key, keylen;   /* for an object member: its unescaped key at buf+key */
} scvrl__st_jv;

typedef struct {
    char *buf; size_t n, i;
    scvrl__st_jv *v; uint32_t nv, cap;
    const char *msg; size_t at;  /* first error and where */
} scvrl__st_jp;

static int scvrl__st_jerr(scvrl__st_jp *p, const char *msg) { if (!p->msg) { p->msg = msg; p->at = p->i; } return -1; }

static void scvrl__st_jws(scvrl__st_jp *p) {
    while (p->i < p->n && (p->buf[p->i] == ' ' || p->buf[p->i] == '\t' || p->buf[p->i] == '\n' || p->buf[p->i] == '\r')) p->i++;
}

static uint32_t scvrl__st_jnew(scvrl__st_jp *p, uint8_t type) {
    if (p->nv == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 64;
        scvrl__st_jv *v = cap > p->cap ? (scvrl__st_jv *)SCVRL_REALLOC(p->v, (size_t)cap * sizeof *v) : NULL;
        if (!v) { scvrl__st_jerr(p, "out of memory"); return SCVRL__ST_NONE; }
        p->v = v; p->cap = cap;
    }
    scvrl__st_jv *v = &p->v[p->nv];
    memset(v, 0, sizeof *v);
    v->type = type; v->next = v->child = SCVRL__ST_NONE; v->pos = (uint32_t)p->i;
    return p->nv++;
}

static int scvrl__st_jhex4(scvrl__st_jp *p, size_t at, uint32_t *out) {
    uint32_t v = 0;
    if (at + 4 > p->n) return -1;
    for (size_t k = at; k < at + 4; k++) {
        char c = p->buf[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* At a backslash p->buf[*r]: decodes one escape, writes its UTF-8 at p->buf[*w]. */
static int scvrl__st_jescape(scvrl__st_jp *p, size_t *r, size_t *w) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char *b = p->buf;
    uint32_t cp, lo;
    if (*r + 1 >= p->n) { p->i = *r; return scvrl__st_jerr(p, "unterminated string"); }
    const char *k = b[*r + 1] ? strchr(from, b[*r + 1]) : NULL;
    if (k) { b[(*w)++] = to[k - from]; *r += 2; return 0; }
    if (b[*r + 1] != 'u') { p->i = *r; return scvrl__st_jerr(p, "invalid escape in string"); }
    p->i = *r;
    if (scvrl__st_jhex4(p, *r + 2, &cp)) return scvrl__st_jerr(p, "\\u must be followed by 4 hex digits");
    *r += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return scvrl__st_jerr(p, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (*r + 1 >= p->n || b[*r] != '\\' || b[*r + 1] != 'u' || scvrl__st_jhex4(p, *r + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return scvrl__st_jerr(p, "high surrogate in \\u escape not followed by a low one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *r += 6;
    }
    if (cp == 0) return scvrl__st_jerr(p, "\\u0000 (NUL) in a string is not supported");
    if (cp < 0x80) b[(*w)++] = (char)cp;
    else if (cp < 0x800) { b[(*w)++] = (char)(0xC0 | (cp >> 6)); b[(*w)++] = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        b[(*w)++] = (char)(0xE0 | (cp >> 12)); b[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[(*w)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        b[(*w)++] = (char)(0xF0 | (cp >> 18)); b[(*w)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[(*w)++] = (char)(0x80 | (cp & 0x3F));
    }
    return 0;
}

/* At an opening quote: unescapes the string in place, at buf + *pos, *len bytes. */
static int scvrl__st_jstring(scvrl__st_jp *p, uint32_t *pos, uint32_t *len) {
    size_t start = p->i, w = p->i, r = p->i + 1;
    uint8_t *u = (uint8_t *)p->buf;
    for (;;) {
        if (r >= p->n) { p->i = start; return scvrl__st_jerr(p, "unterminated string"); }
        uint8_t c = u[r];
        if (c == '"') break;
        if (c < 0x20) { p->i = r; return scvrl__st_jerr(p, "control character in string (must be escaped)"); }
        if (c == '\\') { if (scvrl__st_jescape(p, &r, &w)) return -1; continue; }
        size_t k = scvrl__st_utf8_len(u + r, p->n - r);
        if (!k) { p->i = r; return scvrl__st_jerr(p, "string is not valid UTF-8"); }
        while (k--) u[w++] = u[r++];
    }
    p->buf[w] = '\0';
    *pos = (uint32_t)start; *len = (uint32_t)(w - start);
    p->i = r + 1;
    return 0;
}

static int scvrl__st_jnumber(scvrl__st_jp *p, uint32_t node) {
    const char *b = p->buf;
    size_t i = p->i, n = p->n;
#define SCVRL__ST_DIG(k) ((k) < n && b[k] >= '0' && b[k] <= '9')
    if (i < n && b[i] == '-') i++;
    if (!SCVRL__ST_DIG(i)) return scvrl__st_jerr(p, "invalid number");
    if (b[i] == '0') i++; else while (SCVRL__ST_DIG(i)) i++;
    if (i < n && b[i] == '.') {
        i++;
        if (!SCVRL__ST_DIG(i)) { p->i = i; return scvrl__st_jerr(p, "invalid number: digits must follow '.'"); }
        while (SCVRL__ST_DIG(i)) i++;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-')) i++;
        if (!SCVRL__ST_DIG(i)) { p->i = i; return scvrl__st_jerr(p, "invalid number: digits must follow the exponent"); }
        while (SCVRL__ST_DIG(i)) i++;
    }
#undef SCVRL__ST_DIG
    p->v[node].len = (uint32_t)(i - p->i);
    p->i = i;
    return 0;
}

static uint32_t scvrl__st_jvalue(scvrl__st_jp *p, int depth);

/* At '[' or '{': parses the members into children of node. */
static int scvrl__st_jcontainer(scvrl__st_jp *p, uint32_t node, int depth) {
    int obj = p->buf[p->i] == '{';
    char close = obj ? '}' : ']';
    uint32_t last = SCVRL__ST_NONE;
    if (depth >= SCVRL__ST_MAX_DEPTH) return scvrl__st_jerr(p, "nested too deeply");
    p->i++; scvrl__st_jws(p);
    if (p->i < p->n && p->buf[p->i] == close) { p->i++; return 0; }
    for (;;) {
        uint32_t key = 0, keylen = 0, child;
        if (obj) {
            if (p->i >= p->n || p->buf[p->i] != '"') return scvrl__st_jerr(p, "expected a string key");
            if (scvrl__st_jstring(p, &key, &keylen)) return -1;
            scvrl__st_jws(p);
            if (p->i >= p->n || p->buf[p->i] != ':') return scvrl__st_jerr(p, "expected ':' after an object key");
            p->i++; scvrl__st_jws(p);
        }
        if ((child = scvrl__st_jvalue(p, depth + 1)) == SCVRL__ST_NONE) return -1;
        p->v[child].key = key; p->v[child].keylen = keylen;
        if (last == SCVRL__ST_NONE) p->v[node].child = child; else p->v[last].next = child;
        last = child;
        scvrl__st_jws(p);
        if (p->i < p->n && p->buf[p->i] == ',') { p->i++; scvrl__st_jws(p); continue; }
        if (p->i < p->n && p->buf[p->i] == close) { p->i++; return 0; }
        return scvrl__st_jerr(p, obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
}

static uint32_t scvrl__st_jvalue(scvrl__st_jp *p, int depth) {
    static const char *const lit[] = { "null", "false", "true" };
    if (p->i >= p->n) { scvrl__st_jerr(p, "unexpected end of header"); return SCVRL__ST_NONE; }
    char c = p->buf[p->i];
    uint32_t node;
    if (c == '{' || c == '[') {
        if ((node = scvrl__st_jnew(p, c == '{' ? SCVRL__ST_JOBJ : SCVRL__ST_JARR)) == SCVRL__ST_NONE) return node;
        return scvrl__st_jcontainer(p, node, depth) ? SCVRL__ST_NONE : node;
    }
    if (c == '"') {
        uint32_t pos, len;
        if ((node = scvrl__st_jnew(p, SCVRL__ST_JSTR)) == SCVRL__ST_NONE) return node;
        if (scvrl__st_jstring(p, &pos, &len)) return SCVRL__ST_NONE;
        p->v[node].pos = pos; p->v[node].len = len;
        return node;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if ((node = scvrl__st_jnew(p, SCVRL__ST_JNUM)) == SCVRL__ST_NONE) return node;
        return scvrl__st_jnumber(p, node) ? SCVRL__ST_NONE : node;
    }
    for (int k = 0; k < 3; k++) {
        size_t len = strlen(lit[k]);
        if (p->n - p->i >= len && memcmp(p->buf + p->i, lit[k], len) == 0) {
            if ((node = scvrl__st_jnew(p, k ? SCVRL__ST_JBOOL : SCVRL__ST_JNULL)) == SCVRL__ST_NONE) return node;
            p->i += len;
            return node;
        }
    }
    scvrl__st_jerr(p, "expected a value (object, array, string, number, true, false or null)");
    return SCVRL__ST_NONE;
}

/* ---- the safetensors schema over the parsed JSON ---- */

typedef struct {
    uint8_t *owned;                       /* the file's bytes (scvrl_st_open), else NULL */
    char *hdr;                            /* the header copy that names and metadata point into */
    const scvrl_st_entry **by_name;       /* entries sorted by name, for scvrl_st_find */
    char ***meta_by_key;                  /* pointers to f->meta_key slots, sorted by key */
} scvrl__st_priv;

typedef struct {
    scvrl_st_file *f; scvrl__st_jp *p; const char *label; char *err; size_t errlen;
} scvrl__st_ctx;

/* Reads a JSON number node as a non-negative integer; *why says what is wrong. */
static int scvrl__st_juint(const scvrl__st_jp *p, const scvrl__st_jv *v, uint64_t max, uint64_t *out, const char **why) {
    const char *s = p->buf + v->pos;
    uint64_t x = 0;
    if (v->type != SCVRL__ST_JNUM) { *why = "is not a number"; return -1; }
    if (s[0] == '-') { *why = "is negative"; return -1; }
    for (uint32_t k = 0; k < v->len; k++)
        if (s[k] == '.' || s[k] == 'e' || s[k] == 'E') { *why = "is not an integer"; return -1; }
    for (uint32_t k = 0; k < v->len; k++) {
        uint64_t d = (uint64_t)(s[k] - '0');
        if (x > (max - d) / 10) { *why = "is too large"; return -1; }
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* "[2, 3, 4]" into buf, for messages. */
static const char *scvrl__st_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = 0;
    buf[0] = '\0';
    k += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static int scvrl__st_jshape(scvrl__st_ctx *c, const scvrl__st_jv *v, scvrl_st_entry *e) {
    const char *why = NULL;
    uint64_t x;
    if (v->type != SCVRL__ST_JARR)
        return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': \"shape\" must be an array of integers", e->name);
    e->ndim = 0;
    for (uint32_t k = v->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) {
        if (e->ndim == SCVRL_ST_MAX_DIMS)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': shape has more than %d dimensions",
                                  e->name, SCVRL_ST_MAX_DIMS);
        if (scvrl__st_juint(c->p, &c->p->v[k], (uint64_t)INT64_MAX, &x, &why)) {
            const scvrl__st_jv *d = &c->p->v[k];
            int shown = d->type == SCVRL__ST_JNUM ? (int)(d->len > 40 ? 40 : d->len) : 0;
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': shape dimension %d %s%s%.*s%s", e->name, e->ndim,
                                  why, shown ? " (" : "", shown, c->p->buf + d->pos, shown ? ")" : "");
        }
        e->shape[e->ndim++] = (int64_t)x;
    }
    return 0;
}

static int scvrl__st_joffsets(scvrl__st_ctx *c, const scvrl__st_jv *v, scvrl_st_entry *e) {
    const char *why = NULL;
    uint64_t o[2];
    int k = 0;
    if (v->type == SCVRL__ST_JARR)
        for (uint32_t j = v->child; j != SCVRL__ST_NONE; j = c->p->v[j].next) k++;
    if (k != 2)
        return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': \"data_offsets\" must be [begin, end]", e->name);
    k = 0;
    for (uint32_t j = v->child; j != SCVRL__ST_NONE; j = c->p->v[j].next, k++)
        if (scvrl__st_juint(c->p, &c->p->v[j], UINT64_MAX, &o[k], &why))
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': data_offsets[%d] %s", e->name, k, why);
    e->begin = o[0]; e->end = o[1];
    return 0;
}

/* Checks an entry's dtype, shape and offsets against each other and the data size. */
static int scvrl__st_check_entry(scvrl__st_ctx *c, scvrl_st_entry *e) {
    char sh[200];
    uint64_t size = scvrl__st_dt_sizes[e->dtype], numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        uint64_t s = (uint64_t)e->shape[d];
        if (s && numel > (uint64_t)INT64_MAX / s)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': shape %s overflows (too many elements)",
                                  e->name, scvrl__st_shape_str(sh, sizeof sh, e->ndim, e->shape));
        numel *= s;
    }
    e->numel = (int64_t)numel;
    if (e->begin > e->end)
        return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': data_offsets [%llu, %llu] end before they begin",
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (numel > UINT64_MAX / size || numel * size != e->end - e->begin)
        return scvrl__st_fail(c->err, c->errlen, c->label,
                              "tensor '%.200s': data_offsets [%llu, %llu] hold %llu bytes but %s shape %s needs %llu x %llu",
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                              (unsigned long long)(e->end - e->begin), scvrl__st_dt_names[e->dtype],
                              scvrl__st_shape_str(sh, sizeof sh, e->ndim, e->shape), (unsigned long long)numel,
                              (unsigned long long)size);
    if (e->end > c->f->data_size)
        return scvrl__st_fail(c->err, c->errlen, c->label,
                              "tensor '%.200s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes; truncated file?)",
                              e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                              (unsigned long long)c->f->data_size);
    return 0;
}

/* One "name": {"dtype", "shape", "data_offsets"} member. */
static int scvrl__st_jentry(scvrl__st_ctx *c, const scvrl__st_jv *v, scvrl_st_entry *e) {
    int seen[3] = { 0, 0, 0 };
    if (v->type != SCVRL__ST_JOBJ)
        return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': expected an object {\"dtype\", \"shape\", \"data_offsets\"}", e->name);
    for (uint32_t k = v->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) {
        const scvrl__st_jv *m = &c->p->v[k];
        const char *key = c->p->buf + m->key;
        int which = strcmp(key, "dtype") == 0 ? 0 : strcmp(key, "shape") == 0 ? 1 : strcmp(key, "data_offsets") == 0 ? 2 : -1;
        if (which < 0)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': unknown field \"%.60s\"", e->name, key);
        if (seen[which]++)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': field \"%s\" given twice", e->name, key);
        if (which == 0) {
            if (m->type != SCVRL__ST_JSTR)
                return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': \"dtype\" must be a string", e->name);
            e->dtype = scvrl_dtype_parse(c->p->buf + m->pos);
            if (e->dtype == SCVRL_DT_COUNT)
                return scvrl__st_fail(c->err, c->errlen, c->label,
                                      "tensor '%.200s': dtype \"%.40s\" is not supported (F32, F16, BF16, I32, I64, F64 are)",
                                      e->name, c->p->buf + m->pos);
        } else if (which == 1) {
            if (scvrl__st_jshape(c, m, e)) return -1;
        } else if (scvrl__st_joffsets(c, m, e)) return -1;
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor '%.200s': missing field \"%s\"", e->name,
                                  k == 0 ? "dtype" : k == 1 ? "shape" : "data_offsets");
    return scvrl__st_check_entry(c, e);
}

static int scvrl__st_jmeta(scvrl__st_ctx *c, const scvrl__st_jv *v) {
    scvrl_st_file *f = c->f;
    int n = 0;
    if (v->type != SCVRL__ST_JOBJ)
        return scvrl__st_fail(c->err, c->errlen, c->label, "\"__metadata__\" must be an object of strings");
    for (uint32_t k = v->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) n++;
    f->meta_key = (char **)SCVRL_MALLOC((size_t)(n ? n : 1) * sizeof(char *));
    f->meta_val = (char **)SCVRL_MALLOC((size_t)(n ? n : 1) * sizeof(char *));
    if (!f->meta_key || !f->meta_val) return scvrl__st_fail(c->err, c->errlen, c->label, "out of memory");
    for (uint32_t k = v->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) {
        const scvrl__st_jv *m = &c->p->v[k];
        if (m->type != SCVRL__ST_JSTR)
            return scvrl__st_fail(c->err, c->errlen, c->label, "__metadata__ value of \"%.200s\" is not a string",
                                  c->p->buf + m->key);
        f->meta_key[f->n_meta] = c->p->buf + m->key;
        f->meta_val[f->n_meta++] = c->p->buf + m->pos;
    }
    return 0;
}

static int scvrl__st_cmp_name(const void *a, const void *b) {
    return strcmp((*(const scvrl_st_entry *const *)a)->name, (*(const scvrl_st_entry *const *)b)->name);
}
static int scvrl__st_cmp_key(const void *a, const void *b) { return strcmp(**(char **const *)a, **(char **const *)b); }
static int scvrl__st_cmp_off(const void *a, const void *b) {
    const scvrl_st_entry *x = *(const scvrl_st_entry *const *)a, *y = *(const scvrl_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorted indexes for lookups; refuses duplicate names and keys. */
static int scvrl__st_index(scvrl__st_ctx *c, scvrl__st_priv *pv) {
    scvrl_st_file *f = c->f;
    pv->by_name = (const scvrl_st_entry **)SCVRL_MALLOC((size_t)(f->n ? f->n : 1) * sizeof *pv->by_name);
    pv->meta_by_key = (char ***)SCVRL_MALLOC((size_t)(f->n_meta ? f->n_meta : 1) * sizeof *pv->meta_by_key);
    if (!pv->by_name || !pv->meta_by_key) return scvrl__st_fail(c->err, c->errlen, c->label, "out of memory");
    for (int i = 0; i < f->n; i++) pv->by_name[i] = &f->e[i];
    qsort(pv->by_name, (size_t)f->n, sizeof *pv->by_name, scvrl__st_cmp_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(pv->by_name[i - 1]->name, pv->by_name[i]->name) == 0)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor name '%.200s' appears twice", pv->by_name[i]->name);
    for (int i = 0; i < f->n_meta; i++) pv->meta_by_key[i] = &f->meta_key[i];
    qsort(pv->meta_by_key, (size_t)f->n_meta, sizeof *pv->meta_by_key, scvrl__st_cmp_key);
    for (int i = 1; i < f->n_meta; i++)
        if (strcmp(*pv->meta_by_key[i - 1], *pv->meta_by_key[i]) == 0)
            return scvrl__st_fail(c->err, c->errlen, c->label, "__metadata__ key \"%.200s\" appears twice",
                                  *pv->meta_by_key[i]);
    return 0;
}

/* The tensors must cover the data buffer exactly: no holes, no overlaps, nothing after. */
static int scvrl__st_coverage(scvrl__st_ctx *c) {
    scvrl_st_file *f = c->f;
    const scvrl_st_entry **o = (const scvrl_st_entry **)SCVRL_MALLOC((size_t)(f->n ? f->n : 1) * sizeof *o);
    uint64_t at = 0;
    const char *prev = NULL;
    int rc = 0;
    if (!o) return scvrl__st_fail(c->err, c->errlen, c->label, "out of memory");
    for (int i = 0; i < f->n; i++) o[i] = &f->e[i];
    qsort(o, (size_t)f->n, sizeof *o, scvrl__st_cmp_off);
    for (int i = 0; i < f->n && !rc; i++) {
        if (o[i]->begin < at)
            rc = scvrl__st_fail(c->err, c->errlen, c->label, "tensors '%.200s' and '%.200s' overlap (data_offsets %llu < %llu)",
                                prev, o[i]->name, (unsigned long long)o[i]->begin, (unsigned long long)at);
        else if (o[i]->begin > at)
            rc = scvrl__st_fail(c->err, c->errlen, c->label, "hole in the data: bytes [%llu, %llu) belong to no tensor",
                                (unsigned long long)at, (unsigned long long)o[i]->begin);
        at = o[i]->end; prev = o[i]->name;
    }
    SCVRL_FREE(o);
    if (!rc && at != f->data_size)
        rc = scvrl__st_fail(c->err, c->errlen, c->label, "the data has %llu bytes but the tensors cover only the first %llu",
                            (unsigned long long)f->data_size, (unsigned long long)at);
    return rc;
}

/* Walks the parsed header (root object) into f. */
static int scvrl__st_schema(scvrl__st_ctx *c) {
    scvrl_st_file *f = c->f;
    const scvrl__st_jv *root = &c->p->v[0];
    int n = 0, meta = 0;
    if (root->type != SCVRL__ST_JOBJ)
        return scvrl__st_fail(c->err, c->errlen, c->label, "header is not a JSON object");
    for (uint32_t k = root->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) n++;
    f->e = (scvrl_st_entry *)SCVRL_MALLOC((size_t)(n ? n : 1) * sizeof *f->e);
    if (!f->e) return scvrl__st_fail(c->err, c->errlen, c->label, "out of memory");
    for (uint32_t k = root->child; k != SCVRL__ST_NONE; k = c->p->v[k].next) {
        const scvrl__st_jv *m = &c->p->v[k];
        char *name = c->p->buf + m->key;
        if (strcmp(name, "__metadata__") == 0) {
            if (meta++) return scvrl__st_fail(c->err, c->errlen, c->label, "\"__metadata__\" appears twice");
            if (scvrl__st_jmeta(c, m)) return -1;
            continue;
        }
        scvrl_st_entry *e = &f->e[f->n];
        memset(e, 0, sizeof *e);
        e->name = name;
        if (m->keylen == 0) return scvrl__st_fail(c->err, c->errlen, c->label, "a tensor has an empty name");
        if (m->keylen > SCVRL_ST_MAX_NAME)
            return scvrl__st_fail(c->err, c->errlen, c->label, "tensor name '%.60s...' is %u bytes long (at most %d)",
                                  name, (unsigned)m->keylen, SCVRL_ST_MAX_NAME);
        if (scvrl__st_jentry(c, m, e)) return -1;
        f->n++;
    }
    return 0;
}

/* ---- reading ---- */

/* Parses buf[0..len) into f. owned: buf was allocated for f (freed on failure). */
static int scvrl__st_parse_buf(scvrl_st_file *f, const uint8_t *buf, uint64_t len, const char *label, uint8_t *owned,
                               char *err, size_t errlen) {
    scvrl__st_priv *pv = (scvrl__st_priv *)SCVRL_MALLOC(sizeof *pv);
    scvrl__st_jp p;
    scvrl__st_ctx c = { f, &p, label, err, errlen };
    uint64_t n;
    int rc = -1;
    memset(&p, 0, sizeof p);
    memset(f, 0, sizeof *f);
    f->path = scvrl__st_strdup(label);
    if (!pv || !f->path) { SCVRL_FREE(pv); SCVRL_FREE(owned); scvrl_st_close(f); return scvrl__st_fail(err, errlen, label, "out of memory"); }
    memset(pv, 0, sizeof *pv);
    pv->owned = owned;
    f->priv = pv;
    if (len < 8) {
        rc = scvrl__st_fail(err, errlen, label, "truncated: %llu bytes, too short for the 8-byte header length (not a safetensors file?)",
                            (unsigned long long)len);
        goto done;
    }
    n = scvrl__st_ld64(buf);
    if (n > SCVRL_ST_MAX_HEADER) {
        rc = scvrl__st_fail(err, errlen, label, "header length %llu is absurd (more than %llu bytes; not a safetensors file?)",
                            (unsigned long long)n, SCVRL_ST_MAX_HEADER);
        goto done;
    }
    if (n > len - 8) {
        rc = scvrl__st_fail(err, errlen, label, "truncated: header says %llu bytes, file has %llu after the length",
                            (unsigned long long)n, (unsigned long long)(len - 8));
        goto done;
    }
    if (!(pv->hdr = (char *)SCVRL_MALLOC((size_t)n + 1))) { rc = scvrl__st_fail(err, errlen, label, "out of memory"); goto done; }
    memcpy(pv->hdr, buf + 8, (size_t)n);
    pv->hdr[n] = '\0';
    f->data = (uint8_t *)(uintptr_t)(buf + 8 + n);
    f->data_size = len - 8 - n;
    p.buf = pv->hdr; p.n = (size_t)n;
    scvrl__st_jws(&p);
    if (scvrl__st_jvalue(&p, 0) != SCVRL__ST_NONE) {
        scvrl__st_jws(&p);
        if (p.i != p.n) scvrl__st_jerr(&p, "unexpected data after the JSON object");
    }
    if (p.msg) {
        if (strcmp(p.msg, "out of memory") == 0) rc = scvrl__st_fail(err, errlen, label, "out of memory parsing the header");
        else rc = scvrl__st_fail(err, errlen, label, "header is not valid JSON (at byte %zu of %llu): %s", p.at,
                                 (unsigned long long)n, p.msg);
        goto done;
    }
    rc = scvrl__st_schema(&c);
    if (!rc) rc = scvrl__st_index(&c, pv);
    if (!rc) rc = scvrl__st_coverage(&c);
done:
    SCVRL_FREE(p.v);
    if (rc) scvrl_st_close(f);
    return rc;
}

int scvrl_st_parse(scvrl_st_file *f, const uint8_t *buf, uint64_t len, const char *label, char *err, size_t errlen) {
    static const uint8_t empty[1] = { 0 };
    return scvrl__st_parse_buf(f, buf ? buf : empty, buf ? len : 0, label ? label : "<memory>", NULL, err, errlen);
}

int scvrl_st_open(scvrl_st_file *f, const char *path, char *err, size_t errlen) {
    struct stat st;
    uint8_t *buf;
    size_t got = 0, size;
    int fd;
    memset(f, 0, sizeof *f);
    if (!path) return scvrl__st_fail(err, errlen, "<no path>", "cannot open: path is NULL");
    if ((fd = open(path, O_RDONLY)) < 0) return scvrl__st_fail(err, errlen, path, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return scvrl__st_fail(err, errlen, path, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) { close(fd); return scvrl__st_fail(err, errlen, path, "not a regular file"); }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX - 1) { close(fd); return scvrl__st_fail(err, errlen, path, "file too large"); }
    size = (size_t)st.st_size;
    if (!(buf = (uint8_t *)SCVRL_MALLOC(size ? size : 1))) {
        close(fd);
        return scvrl__st_fail(err, errlen, path, "out of memory reading %zu bytes", size);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got > (1u << 30) ? (1u << 30) : size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd); SCVRL_FREE(buf);
            return scvrl__st_fail(err, errlen, path, "read failed after %zu of %zu bytes: %s", got, size,
                                  r < 0 ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    return scvrl__st_parse_buf(f, buf, size, path, buf, err, errlen);
}

void scvrl_st_close(scvrl_st_file *f) {
    if (!f) return;
    scvrl__st_priv *pv = (scvrl__st_priv *)f->priv;
    if (pv) {
        SCVRL_FREE(pv->owned); SCVRL_FREE(pv->hdr); SCVRL_FREE((void *)pv->by_name); SCVRL_FREE(pv->meta_by_key);
        SCVRL_FREE(pv);
    }
    SCVRL_FREE(f->path); SCVRL_FREE(f->e); SCVRL_FREE(f->meta_key); SCVRL_FREE(f->meta_val);
    memset(f, 0, sizeof *f);
}

const scvrl_st_entry *scvrl_st_find(const scvrl_st_file *f, const char *name) {
    const scvrl__st_priv *pv = f ? (const scvrl__st_priv *)f->priv : NULL;
    scvrl_st_entry key;
    const scvrl_st_entry *kp = &key, **hit;
    if (!pv || !name || !pv->by_name) return NULL;
    key.name = (char *)(uintptr_t)name;
    hit = (const scvrl_st_entry **)bsearch(&kp, pv->by_name, (size_t)f->n, sizeof *pv->by_name, scvrl__st_cmp_name);
    return hit ? *hit : NULL;
}

const char *scvrl_st_meta(const scvrl_st_file *f, const char *key) {
    const scvrl__st_priv *pv = f ? (const scvrl__st_priv *)f->priv : NULL;
    char *k = (char *)(uintptr_t)key, **kp = &k, ***hit;
    if (!pv || !key || !pv->meta_by_key) return NULL;
    hit = (char ***)bsearch(&kp, pv->meta_by_key, (size_t)f->n_meta, sizeof *pv->meta_by_key, scvrl__st_cmp_key);
    return hit ? f->meta_val[*hit - f->meta_key] : NULL;
}

int scvrl_st_read_f32(const scvrl_st_file *f, const scvrl_st_entry *e, float *dst, char *err, size_t errlen) {
    const char *label = f && f->path ? f->path : "<memory>";
    if (!f || !e || (!dst && e->numel > 0)) return scvrl__st_fail(err, errlen, label, "scvrl_st_read_f32: NULL argument");
    size_t sz = scvrl_dtype_size(e->dtype), n = (size_t)e->numel;
    if (!sz || e->numel < 0 || e->begin > e->end || e->end > f->data_size || (e->end - e->begin) / sz != (uint64_t)e->numel ||
        (e->end - e->begin) % sz)
        return scvrl__st_fail(err, errlen, label, "tensor '%.200s': entry does not match this file's data", e->name ? e->name : "?");
    const uint8_t *p = f->data + e->begin;
    switch (e->dtype) {
    case SCVRL_DT_F32:
        if (scvrl__st_host_le()) { if (n) memcpy(dst, p, n * 4); }
        else for (size_t i = 0; i < n; i++) dst[i] = scvrl__st_u2f(scvrl__st_ld32(p + 4 * i));
        break;
    case SCVRL_DT_F16: for (size_t i = 0; i < n; i++) dst[i] = scvrl_f16_to_f32(scvrl__st_ld16(p + 2 * i)); break;
    case SCVRL_DT_BF16: for (size_t i = 0; i < n; i++) dst[i] = scvrl_bf16_to_f32(scvrl__st_ld16(p + 2 * i)); break;
    case SCVRL_DT_I32:
        for (size_t i = 0; i < n; i++) { uint32_t u = scvrl__st_ld32(p + 4 * i); int32_t v; memcpy(&v, &u, 4); dst[i] = (float)v; }
        break;
    case SCVRL_DT_I64:
        for (size_t i = 0; i < n; i++) { uint64_t u = scvrl__st_ld64(p + 8 * i); int64_t v; memcpy(&v, &u, 8); dst[i] = (float)v; }
        break;
    case SCVRL_DT_F64:
        for (size_t i = 0; i < n; i++) { uint64_t u = scvrl__st_ld64(p + 8 * i); double v; memcpy(&v, &u, 8); dst[i] = (float)v; }
        break;
    default: return scvrl__st_fail(err, errlen, label, "tensor '%.200s': bad dtype", e->name);
    }
    return 0;
}

/* ---- writing ---- */

typedef struct { char *name; scvrl_dtype dt; int ndim; int64_t shape[SCVRL_ST_MAX_DIMS]; uint64_t nbytes; const void *data; } scvrl__st_wt;

struct scvrl_st_writer {
    scvrl__st_wt *t; int n, cap;
    char **mk, **mv; int n_meta, cap_meta;
    char err[320];
};

scvrl_st_writer *scvrl_st_writer_new(void) {
    scvrl_st_writer *w = (scvrl_st_writer *)SCVRL_MALLOC(sizeof *w);
    if (w) memset(w, 0, sizeof *w);
    return w;
}

void scvrl_st_writer_free(scvrl_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) SCVRL_FREE(w->t[i].name);
    for (int i = 0; i < w->n_meta; i++) { SCVRL_FREE(w->mk[i]); SCVRL_FREE(w->mv[i]); }
    SCVRL_FREE(w->t); SCVRL_FREE(w->mk); SCVRL_FREE(w->mv); SCVRL_FREE(w);
}

const char *scvrl_st_writer_error(const scvrl_st_writer *w) { return w && w->err[0] ? w->err : NULL; }

/* Records the writer's first refusal; returns -1. */
static int scvrl__st_wfail(scvrl_st_writer *w, const char *fmt, ...) {
    if (w && !w->err[0]) {
        va_list ap; va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int scvrl__st_utf8_ok(const char *s) {
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s);
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = scvrl__st_utf8_len(u + i, n - i))) return 0;
    return 1;
}

int scvrl_st_writer_add(scvrl_st_writer *w, const char *name, scvrl_dtype dt, int ndim, const int64_t *shape, const void *data) {
    uint64_t numel = 1;
    if (!w) return -1;
    if (!name || !name[0]) return scvrl__st_wfail(w, "a tensor has an empty name");
    if (strlen(name) > SCVRL_ST_MAX_NAME) return scvrl__st_wfail(w, "tensor name '%.60s...' is longer than %d bytes", name, SCVRL_ST_MAX_NAME);
    if (!scvrl__st_utf8_ok(name)) return scvrl__st_wfail(w, "tensor name '%.200s' is not valid UTF-8", name);
    if (strcmp(name, "__metadata__") == 0) return scvrl__st_wfail(w, "a tensor cannot be named \"__metadata__\"");
    if ((unsigned)dt >= SCVRL_DT_COUNT) return scvrl__st_wfail(w, "tensor '%.200s': bad dtype %d", name, (int)dt);
    if (ndim < 0 || ndim > SCVRL_ST_MAX_DIMS || (ndim > 0 && !shape))
        return scvrl__st_wfail(w, "tensor '%.200s': ndim %d (0..%d, with a shape)", name, ndim, SCVRL_ST_MAX_DIMS);
    for (int d = 0; d < ndim; d++) {   /* the limits the reader applies */
        if (shape[d] < 0) return scvrl__st_wfail(w, "tensor '%.200s': negative dimension %lld", name, (long long)shape[d]);
        if (shape[d] && numel > (uint64_t)INT64_MAX / (uint64_t)shape[d])
            return scvrl__st_wfail(w, "tensor '%.200s': shape has too many elements", name);
        numel *= (uint64_t)shape[d];
    }
    if (numel > UINT64_MAX / scvrl__st_dt_sizes[dt])
        return scvrl__st_wfail(w, "tensor '%.200s': shape has too many bytes", name);
    if (numel && !data) return scvrl__st_wfail(w, "tensor '%.200s': data is NULL", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return scvrl__st_wfail(w, "tensor name '%.200s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        scvrl__st_wt *t = (scvrl__st_wt *)SCVRL_REALLOC(w->t, (size_t)cap * sizeof *t);
        if (!t) return scvrl__st_wfail(w, "out of memory");
        w->t = t; w->cap = cap;
    }
    scvrl__st_wt *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = scvrl__st_strdup(name))) return scvrl__st_wfail(w, "out of memory");
    t->dt = dt; t->ndim = ndim; t->nbytes = numel * scvrl__st_dt_sizes[dt]; t->data = data;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    w->n++;
    return 0;
}

int scvrl_st_writer_meta(scvrl_st_writer *w, const char *key, const char *val) {
    if (!w) return -1;
    if (!key || !val) return scvrl__st_wfail(w, "metadata key or value is NULL");
    if (!scvrl__st_utf8_ok(key) || !scvrl__st_utf8_ok(val))
        return scvrl__st_wfail(w, "metadata \"%.200s\": key or value is not valid UTF-8", key);
    char *v = scvrl__st_strdup(val);
    if (!v) return scvrl__st_wfail(w, "out of memory");
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->mk[i], key) == 0) { SCVRL_FREE(w->mv[i]); w->mv[i] = v; return 0; }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? w->cap_meta * 2 : 8;
        char **mk = (char **)SCVRL_REALLOC(w->mk, (size_t)cap * sizeof(char *));
        if (mk) w->mk = mk;
        char **mv = mk ? (char **)SCVRL_REALLOC(w->mv, (size_t)cap * sizeof(char *)) : NULL;
        if (mv) w->mv = mv;
        if (!mk || !mv) { SCVRL_FREE(v); return scvrl__st_wfail(w, "out of memory"); }
        w->cap_meta = cap;
    }
    if (!(w->mk[w->n_meta] = scvrl__st_strdup(key))) { SCVRL_FREE(v); return scvrl__st_wfail(w, "out of memory"); }
    w->mv[w->n_meta++] = v;
    return 0;
}

/* A growing byte buffer for the header. */
typedef struct { char *p; size_t n, cap; int oom; } scvrl__st_buf;

static void scvrl__st_put(scvrl__st_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = (char *)SCVRL_REALLOC(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void scvrl__st_puts(scvrl__st_buf *b, const char *s) { scvrl__st_put(b, s, strlen(s)); }

/* s as a JSON string: quotes, backslashes and control characters escaped; UTF-8 kept. */
static void scvrl__st_put_jstr(scvrl__st_buf *b, const char *s) {
    scvrl__st_put(b, "\"", 1);
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        char esc[8];
        const char *k = *u < 0x20 ? strchr("\b\f\n\r\t", *u) : NULL;
        if (*u == '"' || *u == '\\') { esc[0] = '\\'; esc[1] = (char)*u; scvrl__st_put(b, esc, 2); }
        else if (k) { esc[0] = '\\'; esc[1] = "bfnrt"[k - "\b\f\n\r\t"]; scvrl__st_put(b, esc, 2); }
        else if (*u < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *u); scvrl__st_put(b, esc, 6); }
        else scvrl__st_put(b, (const char *)u, 1);
    }
    scvrl__st_put(b, "\"", 1);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static int scvrl__st_header(scvrl_st_writer *w, scvrl__st_buf *b, uint64_t *data_size) {
    char num[64];
    uint64_t off = 0;
    memset(b, 0, sizeof *b);
    scvrl__st_put(b, "{", 1);
    if (w->n_meta) {
        scvrl__st_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) scvrl__st_put(b, ",", 1);
            scvrl__st_put_jstr(b, w->mk[i]); scvrl__st_put(b, ":", 1); scvrl__st_put_jstr(b, w->mv[i]);
        }
        scvrl__st_put(b, "}", 1);
    }
    for (int i = 0; i < w->n; i++) {
        const scvrl__st_wt *t = &w->t[i];
        if (i || w->n_meta) scvrl__st_put(b, ",", 1);
        scvrl__st_put_jstr(b, t->name);
        scvrl__st_puts(b, ":{\"dtype\":\""); scvrl__st_puts(b, scvrl__st_dt_names[t->dt]); scvrl__st_puts(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) { snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]); scvrl__st_puts(b, num); }
        if (off + t->nbytes < off) return -1;
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + t->nbytes));
        scvrl__st_puts(b, num);
        off += t->nbytes;
    }
    scvrl__st_put(b, "}", 1);
    while (!b->oom && b->n % 8) scvrl__st_put(b, " ", 1);
    *data_size = off;
    return b->oom ? -1 : 0;
}

static void scvrl__st_le64(uint8_t *o, uint64_t v) { for (int k = 0; k < 8; k++) o[k] = (uint8_t)(v >> (8 * k)); }

/* Copies a tensor's bytes to out, little-endian. */
static void scvrl__st_copy_le(uint8_t *out, const scvrl__st_wt *t) {
    size_t sz = scvrl__st_dt_sizes[t->dt];
    if (!t->nbytes) return;
    memcpy(out, t->data, (size_t)t->nbytes);
    if (scvrl__st_host_le()) return;
    for (uint64_t i = 0; i < t->nbytes; i += sz)
        for (size_t a = 0, z = sz - 1; a < z; a++, z--) { uint8_t x = out[i + a]; out[i + a] = out[i + z]; out[i + z] = x; }
}

static int scvrl__st_prepare(scvrl_st_writer *w, scvrl__st_buf *b, uint64_t *data_size, const char *label, char *err, size_t errlen) {
    if (!w) return scvrl__st_fail(err, errlen, label, "not saved: writer is NULL");
    if (w->err[0]) return scvrl__st_fail(err, errlen, label, "not saved: %s", w->err);
    if (scvrl__st_header(w, b, data_size)) {
        int oom = b->oom;
        SCVRL_FREE(b->p);
        return scvrl__st_fail(err, errlen, label, "not saved: %s", oom ? "out of memory" : "total data size overflows 64 bits");
    }
    if (b->n > SCVRL_ST_MAX_HEADER) {
        SCVRL_FREE(b->p);
        return scvrl__st_fail(err, errlen, label, "not saved: header of %zu bytes exceeds the %llu-byte limit readers accept",
                              b->n, SCVRL_ST_MAX_HEADER);
    }
    return 0;
}

int scvrl_st_writer_to_memory(scvrl_st_writer *w, uint8_t **out, uint64_t *len, char *err, size_t errlen) {
    scvrl__st_buf b;
    uint64_t data_size;
    if (!out || !len) return scvrl__st_fail(err, errlen, "<memory>", "not saved: NULL output");
    *out = NULL; *len = 0;
    if (scvrl__st_prepare(w, &b, &data_size, "<memory>", err, errlen)) return -1;
    uint64_t total = 8 + b.n + data_size;
    uint8_t *o = total <= SIZE_MAX ? (uint8_t *)SCVRL_MALLOC((size_t)total) : NULL;
    if (!o) { SCVRL_FREE(b.p); return scvrl__st_fail(err, errlen, "<memory>", "not saved: out of memory (%llu bytes)", (unsigned long long)total); }
    scvrl__st_le64(o, b.n);
    memcpy(o + 8, b.p, b.n);
    uint64_t at = 8 + b.n;
    for (int i = 0; i < w->n; i++) { scvrl__st_copy_le(o + at, &w->t[i]); at += w->t[i].nbytes; }
    SCVRL_FREE(b.p);
    *out = o; *len = total;
    return 0;
}

/* Writes the whole file to fp; returns 0 or an errno value. */
static int scvrl__st_write_all(FILE *fp, const scvrl_st_writer *w, const scvrl__st_buf *b) {
    uint8_t len8[8], chunk[1 << 16];
    scvrl__st_le64(len8, b->n);
    if (fwrite(len8, 1, 8, fp) != 8 || fwrite(b->p, 1, b->n, fp) != b->n) return errno ? errno : EIO;
    for (int i = 0; i < w->n; i++) {
        const scvrl__st_wt *t = &w->t[i];
        if (scvrl__st_host_le() || scvrl__st_dt_sizes[t->dt] == 1) {
            if (t->nbytes && fwrite(t->data, 1, (size_t)t->nbytes, fp) != t->nbytes) return errno ? errno : EIO;
            continue;
        }
        for (uint64_t at = 0; at < t->nbytes; at += sizeof chunk) {   /* big-endian host: swap in chunks */
            scvrl__st_wt part = *t;
            part.data = (const uint8_t *)t->data + at;
            part.nbytes = t->nbytes - at < sizeof chunk ? t->nbytes - at : sizeof chunk;
            scvrl__st_copy_le(chunk, &part);
            if (fwrite(chunk, 1, (size_t)part.nbytes, fp) != part.nbytes) return errno ? errno : EIO;
        }
    }
    if (fflush(fp) != 0) return errno ? errno : EIO;
    if (fsync(fileno(fp)) != 0 && errno != EINVAL) return errno;
    return 0;
}

/* fsync the folder holding path, so the rename is durable. 0 or an errno value. */
static int scvrl__st_sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    char *dir = (char *)SCVRL_MALLOC(n + 2);
    int fd, rc = 0;
    if (!dir) return ENOMEM;
    if (!slash) strcpy(dir, ".");
    else if (n == 0) strcpy(dir, "/");
    else { memcpy(dir, path, n); dir[n] = '\0'; }
    fd = open(dir, O_RDONLY);
    SCVRL_FREE(dir);
    if (fd < 0) return 0;   /* cannot open the folder to sync it: the file is in place all the same */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EBADF && errno != EROFS) rc = errno;
    close(fd);
    return rc;
}

int scvrl_st_writer_save(scvrl_st_writer *w, const char *path, char *err, size_t errlen) {
    scvrl__st_buf b;
    uint64_t data_size;
    char *tmp;
    FILE *fp;
    int e;
    if (!path || !path[0]) return scvrl__st_fail(err, errlen, "<no path>", "not saved: empty path");
    if (scvrl__st_prepare(w, &b, &data_size, path, err, errlen)) return -1;
    size_t tn = strlen(path) + 32;
    if (!(tmp = (char *)SCVRL_MALLOC(tn))) { SCVRL_FREE(b.p); return scvrl__st_fail(err, errlen, path, "not saved: out of memory"); }
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    if (!(fp = fopen(tmp, "wb"))) {
        e = errno;
        scvrl__st_fail(err, errlen, path, "not saved: cannot create %s: %s (is the folder there and writable?)", tmp, strerror(e));
        SCVRL_FREE(tmp); SCVRL_FREE(b.p);
        return -1;
    }
    errno = 0;
    e = scvrl__st_write_all(fp, w, &b);
    SCVRL_FREE(b.p);
    if (fclose(fp) != 0 && !e) e = errno ? errno : EIO;
    if (e) {
        remove(tmp);
        scvrl__st_fail(err, errlen, path, "not saved: writing %s failed: %s (disk full?); the old file, if any, is untouched",
                       tmp, strerror(e));
        SCVRL_FREE(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        scvrl__st_fail(err, errlen, path, "not saved: cannot rename %s over it: %s", tmp, strerror(e));
        SCVRL_FREE(tmp);
        return -1;
    }
    SCVRL_FREE(tmp);
    if ((e = scvrl__st_sync_dir(path)) != 0)
        return scvrl__st_fail(err, errlen, path, "written, but syncing its folder failed: %s", strerror(e));
    return 0;
}

#endif // SCVRL_IMPLEMENTATION_DONE
#endif // SCVRL_IMPLEMENTATION
