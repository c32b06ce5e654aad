// models/contrast.h - the SCVRL pieces on top of a backbone: projection heads, the two InfoNCE
// losses (temporal: shuffled negatives; visual: a MoCo queue), the key queue and its masks.
//
//   q = l2n(head(f)), k = l2n(head_m(f_m))            heads: Linear(D,2048)-ReLU-Linear(2048,128)
//   L_T = CE([q_T.k_p, q_T.k_n[0..N_T)] / tau, 0)      per sample, N_T shuffled copies of x_p
//   L_V = CE([q_V.k_pv, q_V.queue[0..K)] / tau, 0)     keys of the anchor's own video masked out
#ifndef SCVRL_CONTRAST_H
#define SCVRL_CONTRAST_H
#include "scvrl.h"

#define CON_HIDDEN 2048
#define CON_DIM 128

// A projection head: Linear(D, 2048) - ReLU - Linear(2048, 128), parameters named
// "<prefix>.0.weight", "<prefix>.0.bias", "<prefix>.2.weight", "<prefix>.2.bias".
void con_head_declare(scvrl_params *P, const char *prefix, int D);
void con_head_init(scvrl_params *P, const char *prefix, uint64_t seed);   // PyTorch Linear default init
scvrl_tensor *con_head(scvrl_ctx *ctx, const scvrl_params *P, const char *prefix, scvrl_tensor *f);  // [N,D] -> [N,128]

// InfoNCE with one positive and per-sample negatives:
// q: [B, C], kp: [B, C], kn: [B, N, C] -> per-sample loss [B]; *logits (optional) gets [B, 1+N].
scvrl_tensor *con_infonce_per_sample(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *kp, scvrl_tensor *kn,
                                     float tau, scvrl_tensor **logits);
// InfoNCE with shared negatives (a queue): q: [B, C], kp: [B, C], queue: [K, C],
// mask: [B, K] added to the negative logits (0 or -inf) or NULL -> per-sample loss [B].
scvrl_tensor *con_infonce_queue(scvrl_ctx *ctx, scvrl_tensor *q, scvrl_tensor *kp, scvrl_tensor *queue,
                                scvrl_tensor *mask, float tau, scvrl_tensor **logits);

// Top-1 contrastive accuracy of logits [B, 1+N] (column 0 the positive): the share of rows whose
// positive is strictly above every negative (ties count as misses).
double con_accuracy(const float *logits, int64_t B, int64_t n);

// The key queue: K keys of C floats with the video id of each (-1: initial random keys).
typedef struct {
    int64_t K, C, ptr;
    float *keys;       // [K, C]
    int64_t *ids;      // [K]
} con_queue;
// Random unit vectors (counter RNG from seed), ids -1, ptr 0. 0 or -1 (out of memory).
int con_queue_init(con_queue *q, int64_t K, int64_t C, uint64_t seed);
void con_queue_free(con_queue *q);
// Overwrite the B oldest keys with keys [B, C] and their ids; ptr advances modulo K.
void con_queue_push(con_queue *q, const float *keys, const int64_t *ids, int64_t B);
// mask [B, K]: -inf where the queue key comes from the anchor's own video, else 0.
// Returns how many keys were masked in total.
int64_t con_queue_mask(const con_queue *q, const int64_t *anchor_ids, int64_t B, float *mask);

#endif
