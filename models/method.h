// models/method.h - the SCVRL (and CVRL) method on the engine, without data loading: the online
// and momentum encoders with their projection heads, the key queue, the two graphs of a training
// step (built once, replayed) and the step itself. examples/pretrain feeds it batches;
// examples/bench scvrl times it on random clips.
//
//   scm_state S; scm_graphs G;
//   scm_init(&S, &cfg, &mvit_cfg, err, n);  scm_build(&G, &S, &cfg);
//   scm_to_device(&S, be, err, n);             // CUDA: weights, EMA and optimizer on the GPU
//   per step: fill G.xm [x_p; x_pv], G.shuf, G.xo [x_a] (see scm_graphs), then
//   scm_step(&S, &G, &cfg, be, vids, lr, &stats, err, n);
#ifndef SCVRL_MODELS_METHOD_H
#define SCVRL_MODELS_METHOD_H

#include "scvrl.h"
#include "models/mvit.h"
#include "models/contrast.h"

typedef struct {
    int temporal;            // 1: SCVRL (L_T + lambda L_V); 0: CVRL (L_V only)
    int ce;                  // temporal loss: a shuffled / ordered classifier (Table 8c) instead of InfoNCE
    int shared_head;         // one head for both losses (Table 8b)
    int nt, frames, size, batch, momentum_droppath;
    int64_t queue;
    double tau, lambda_v, momentum, wd, clip_grad;
    uint64_t seed;
} scm_cfg;

typedef struct {
    mvit_model on, mo;            // online and momentum backbones
    scvrl_params H, Hm;           // heads (head_t, head_v or the shared "head", head_ce), momentum copies
    con_queue Q;
    scvrl_backend *qbe;           // CUDA: the queue's keys are kept on this backend's device (scm_to_device)
    int D, temporal, ce, shared;
    const char *ht, *hv;          // head names for L_T and L_V
    int64_t step, epoch_seen;
} scm_state;

// The two graphs of a step: the momentum encoder (no gradients) on [x_p; shuffles; x_pv], then the
// online encoder, the losses and the backward pass. Inputs to fill per step: xm [2B clips: x_p
// then x_pv] (B with CVRL or the CE loss), shuf (i32 [B*NT*T]: frame t of shuffle j of sample b is
// x_p[b] frame shuf[(b*NT + j)*T + t]), xo [B clips x_a; 3B with the CE loss: x_a, x_p, one shuffle].
typedef struct {
    scvrl_ctx *ctx;
    scvrl_graph *gm, *go;
    scvrl_tensor *xm, *kt, *kv;                 // momentum input, keys [B*(1+NT),128], [B,128]
    scvrl_tensor *shuf, *planes;                // planes: the momentum batch's gather, made from shuf (internal)
    scvrl_tensor *xo, *kp, *kn, *kpv, *queue, *mask, *ce_tgt;   // online inputs
    scvrl_tensor *loss, *loss_t, *loss_v, *lg_t, *lg_v;
    int64_t B, Bm, clip;                        // clip: floats per clip
} scm_graphs;

typedef struct { double loss, loss_t, loss_v, acc_t, acc_v, lr, sec; int64_t masked; } scm_stats;

int scm_init(scm_state *S, const scm_cfg *c, const mvit_config *mc, char *err, size_t errlen);
void scm_free(scm_state *S);
void scm_build(scm_graphs *G, scm_state *S, const scm_cfg *c);
void scm_free_graphs(scm_graphs *G);
// Keep the four parameter sets on be's device (a no-op on the CPU), and the key queue too (each
// step's pushed rows copied after it; the host copy stays current); scm_sync brings the parameters'
// host copies up to date (before a checkpoint or a CPU graph). Free the state (scm_free) before be.
int scm_to_device(scm_state *S, scvrl_backend *be, char *err, size_t errlen);
int scm_sync(scm_state *S, char *err, size_t errlen);
// One optimisation step on the filled inputs: EMA of the momentum encoder, momentum keys, the
// losses and gradients, clipping, AdamW at lr, enqueue. vids: the batch's video ids (queue masking).
// A non-finite loss returns -1 with a message (nothing updated).
int scm_step(scm_state *S, scm_graphs *G, const scm_cfg *c, scvrl_backend *be, const int64_t *vids, double lr,
             scm_stats *st, char *err, size_t errlen);
// The joint gradient norm of backbone and heads, clipped to max_norm when above (0: no clipping).
double scm_clip_grads(scm_state *S, double max_norm);

#endif
