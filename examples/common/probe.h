// examples/common/probe.h - evaluation of frozen (or fine-tuned) video features: the linear probe
// of ../shared SYNTH.md section 7 and the paper (standardised features, full-batch multinomial
// logistic regression with L2 chosen by 5-fold cross-validation), multi-view score averaging,
// kNN, top-1 / pair accuracy, stratified label subsets, the per-video shuffles of the shuffle
// test, feature extraction through callbacks with progress and ETA, a feature cache, and the MViT
// encoder that eval and retrieve share.
//
// Classifier. Features are standardised with the training set's mean and standard deviation
// (kept in the model), then the objective
//     J(W, b) = (1/n) sum_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + (l2 / 2) ||W||^2
// (the bias is not regularised) is minimised in double precision by L-BFGS (memory 10,
// backtracking Armijo line search) until the largest gradient entry is below tol. The
// optimisation runs in the eigenbasis of the training covariance (a rotation: the problem is
// unchanged) with a diagonal preconditioner 1/sqrt(s lambda_k + l2), and only over directions
// the training features span (W is exactly zero in the others). Every sum
// runs in a fixed order (threads split rows or classes, never one reduction), so results do
// not depend on the thread count: the probe is deterministic. l2 comes from a grid by
// stratified k-fold cross-validation on the training set (folds from a seeded shuffle per
// class; the grid is walked from strong to weak regularisation with warm starts; the best mean
// held-out accuracy wins, ties going to the lower held-out log-loss), then the model is refit
// on the whole training set.
//
// Views. A clip set holds V views per video (temporal x spatial, see loader.h); scores are
// averaged over views after a softmax per view (PySlowFast's multi-view testing).
//
// Shuffle test (SCVRL Table 2). Each test video gets one fixed non-identity permutation of its
// T/g frame groups, drawn from (seed, the video's file name), so every checkpoint meets the
// same shuffles; the permutation is applied to every view of that video.
#ifndef SCVRL_PROBE_H
#define SCVRL_PROBE_H
#include <stddef.h>
#include <stdint.h>
#include "scvrl.h"
#include "models/mvit.h"
#include "loader.h"

// ---- 1. Linear classifier -------------------------------------------------------------------

typedef struct {
    int max_iter;      // L-BFGS iterations per fit (1000)
    double tol;        // stop when max |dJ/dW| < tol (1e-5)
    int history;       // L-BFGS memory (10)
    int threads;       // OpenMP threads (<= 0: the default); results do not depend on it
} probe_fit_opts;
probe_fit_opts probe_fit_defaults(void);

typedef struct {
    int D, C;          // feature width, classes
    double *W, *b;     // [C][D], [C] (on standardised features)
    double *mean, *std;// [D] standardisation (NULL: none)
    double l2;         // the regulariser used
    int iters;         // L-BFGS iterations of the last fit
    double loss;       // objective at the end of the last fit
} probe_linear;

// Allocates a zero model (no standardisation). 0, or -1 when out of memory.
int probe_linear_alloc(probe_linear *m, int D, int C);
void probe_linear_free(probe_linear *m);

// Symmetric eigendecomposition (Householder tridiagonalisation + implicit QL): A [n][n] (row-major,
// symmetric) is replaced by the eigenvectors as columns (A[k][i]: component k of vector i), w [n]
// gets the eigenvalues in descending order. 0, or -1 (no convergence, no memory).
int probe_eigh(double *A, int n, double *w);

// Mean and standard deviation (biased; 1 where it is below 1e-8) of X [n][D] over rows.
void probe_standardize_fit(const float *X, int64_t n, int D, double *mean, double *std);

// Fits W, b on X [n][D] (already standardised, or raw) and labels y in [0, C), starting from
// the model's current W, b (warm start). 0, or -1 with a message (bad label, no memory).
int probe_linear_fit(probe_linear *m, const float *X, const int *y, int64_t n, double l2,
                     const probe_fit_opts *o, char *err, size_t errlen);
// J(W, b) of a model on X, y (for tests and reports).
double probe_linear_objective(const probe_linear *m, const float *X, const int *y, int64_t n, double l2);

// Stratified fold of every row: fold[i] in [0, k). Rows of a class are shuffled by seed and
// dealt round robin, each class starting where the last one stopped.
void probe_folds(const int *y, int64_t n, int C, int k, uint64_t seed, int *fold);

typedef struct {
    const double *grid;  // l2 values (any order; walked from largest to smallest)
    int n_grid;          // 1: no cross-validation
    int folds;           // 5
    uint64_t seed;       // fold assignment
    probe_fit_opts fit;
    int quiet;           // no lines on stderr
} probe_cv_opts;
probe_cv_opts probe_cv_defaults(void);   // the default grid 1e-5, 1e-4, 1e-3, 1e-2, 1e-1

typedef struct {
    double cv_acc[32], cv_loss[32];   // mean held-out accuracy / log-loss per grid value
    int best;                          // index into the grid
    double l2, train_acc;
} probe_cv_result;

// The whole probe: standardise X [n][D] (statistics into m), choose l2 by cross-validation,
// refit on all rows. m is allocated here (free with probe_linear_free). X is not modified.
int probe_linear_train(probe_linear *m, const float *X, const int *y, int64_t n, int D, int C,
                       const probe_cv_opts *o, probe_cv_result *r, char *err, size_t errlen);

// Logits of X [n][views][D] (raw features: m's standardisation applied), then the mean over
// views of the per-view softmax: prob [n][C]. logits (may be NULL) gets [n][views][C].
int probe_linear_predict(const probe_linear *m, const float *X, int64_t n, int views, double *prob,
                         double *logits, char *err, size_t errlen);

// ---- 2. Scores and metrics ------------------------------------------------------------------

// prob[i][c] = mean over v of softmax(scores[i][v][:])[c]; scores: [n][V][C].
void probe_views_average(const double *scores, int64_t n, int V, int C, double *prob);
// Index of the largest of x[0..C) (ties: the first).
int probe_argmax(const double *x, int C);
// Share of rows whose true class is among the k highest scores (ties count against).
double probe_topk(const double *scores, const int *y, int64_t n, int C, int k);
// Pair accuracy over the reversal pairs (2p, 2p+1), p < n_pairs: share of rows with label in a
// pair whose true class scores strictly above its partner. pair_acc (may be NULL): [n_pairs].
// Returns NAN when no row has a paired label.
double probe_pair_accuracy(const double *scores, const int *y, int64_t n, int C, int n_pairs,
                           double *pair_acc);
// Per-class accuracy of predictions pred[n] against y: acc [C] (NAN for absent classes),
// count [C] (may be NULL).
void probe_per_class(const int *pred, const int *y, int64_t n, int C, double *acc, int64_t *count);
// Confusion matrix of predictions pred[n] against y: conf [C][C] (row: true class, column:
// predicted), counts; rows whose label or prediction is outside [0, C) are left out.
void probe_confusion(const int *pred, const int *y, int64_t n, int C, int64_t *conf);

// kNN: cosine similarity of each query to every reference, the k most similar references vote
// with weight exp(sim / T) for their class: scores [nq][C]. Ties in similarity: lower index
// first. ref [nr][D], q [nq][D]. 0, or -1 when out of memory.
int probe_knn(const float *ref, const int *yref, int64_t nr, const float *q, int64_t nq, int D, int C,
              int k, double T, double *scores, char *err, size_t errlen);

// Stratified subset: for each class, round(frac * n_c) rows (at least 1, at most n_c), chosen by a
// seeded shuffle per class whose prefixes are taken, so smaller fractions are subsets of larger
// ones. idx: [n] out, ascending. Returns the count.
int64_t probe_subset(const int *y, int64_t n, int C, double frac, uint64_t seed, int64_t *idx);

// ---- 3. Shuffles ----------------------------------------------------------------------------

// The fixed shuffle of one video: a non-identity permutation of the T/g groups from (seed, the
// file name of path, i.e. after the last '/'). perm: [T/g]. 0, or -1 with a message.
int probe_video_perm(uint64_t seed, const char *path, int T, int g, int *perm, char *err, size_t errlen);

// ---- 4. Feature extraction ------------------------------------------------------------------

// One clip of item i, view v, as float [3][T][H][W]. 0, or -1 with a message naming the file.
typedef int (*probe_clip_fn)(void *ctx, int64_t i, int v, float *clip, char *err, size_t errlen);
// Features of n clips [n][3][T][H][W] into feats [n][D]. 0, or -1 with a message.
typedef int (*probe_embed_fn)(void *ctx, const float *clips, int n, float *feats, char *err, size_t errlen);

typedef struct {
    int64_t n;              // items
    int views;              // views per item
    int T;                  // frames per clip; a clip is [3][T][hw]
    int64_t hw;             // pixels per frame
    int D;                  // feature width
    int batch;              // clips per embed call
    probe_clip_fn clip; void *clip_ctx;
    probe_embed_fn embed; void *embed_ctx;
    const int *perms;       // NULL: ordered; else [n][T/group] group permutation of each item
    int group;              // frames per group (perms only)
    int skip_bad;           // 1: an item that cannot be read gets valid 0 (zero features) and a warning
    const char *label;      // progress label ("features")
    int quiet;              // no progress on stderr
} probe_extract_opts;

// feats: [n][views][D]; valid (may be NULL unless skip_bad): [n]. Clips load in parallel
// (OpenMP), embedding runs batch by batch in item order. 0, or -1 with a message.
int probe_extract(const probe_extract_opts *o, float *feats, uint8_t *valid, char *err, size_t errlen);

// ---- 5. Shuffle evaluation ------------------------------------------------------------------

typedef struct {
    double acc_ordered, acc_shuffled, drop;     // top-1 (fractions); drop = ordered - shuffled
    double pair_ordered, pair_shuffled;         // pair accuracy (NAN without pairs)
    double changed;                             // share of test clips whose prediction changes
    double l2;
} probe_shuffle_result;

// Linear probe on the ordered training features Xtr [ntr][D], scored on the ordered and the
// shuffled test features Xo, Xs [nte][views][D]. n_pairs > 0: also the pair accuracy.
int probe_shuffle_eval(const float *Xtr, const int *ytr, int64_t ntr, const float *Xo, const float *Xs,
                       const int *yte, int64_t nte, int views, int D, int C, int n_pairs,
                       const probe_cv_opts *cv, probe_shuffle_result *r, char *err, size_t errlen);

// ---- 6. Feature cache -----------------------------------------------------------------------

// A safetensors file holding "features" [n][views][D] (float32) and "valid" (I32 [n]) with the
// key in its metadata. load: 0 hit (arrays filled), 1 absent or for another key, -1 error.
int probe_cache_load(const char *path, const char *key, int64_t n, int views, int D, float *feats,
                     uint8_t *valid, char *err, size_t errlen);
int probe_cache_save(const char *path, const char *key, const char *about, int64_t n, int views, int D,
                     const float *feats, const uint8_t *valid, char *err, size_t errlen);
// "size:mtime_ns" of a file or folder ("missing" if it does not exist), for cache keys.
void probe_file_stamp(const char *path, char *out, size_t n);

// ---- 7. The MViT encoder --------------------------------------------------------------------

typedef struct {
    const char *weights;    // pretraining checkpoint, bare state_dict, or NULL (random init)
    const char *encoder;    // "online" (default) or "momentum" (pretraining checkpoints)
    const char *model;      // preset; NULL: the checkpoint's, else mvit-b
    int kt, frames, stride, size;   // 0: the checkpoint's, else 2, 16, 4, 224
    const char *pool;       // "cls" | "avg"; NULL: the checkpoint's, else cls
    int classes;            // > 0: a classifier head of this many classes (fine-tuning)
    int interpolate;        // resample positional tables made for another clip size
    const char *device;     // "cpu" (default) or "cuda"
    const char *precision;  // GPU matrix products: "fp32" | "tf32" | "bf16"; NULL: bf16 (the CPU is fp32)
    int batch;              // clips per forward (graph size)
    uint64_t seed;          // random init
    int quiet;
} probe_encoder_opts;

typedef struct {
    mvit_model m;
    mvit_config cfg;
    int stride, D, batch, classes, logits;   // logits: embed returns logits instead of features
    scvrl_backend *be;
    scvrl_ctx *ctx;
    scvrl_graph *g;
    scvrl_tensor *x, *f, *lg;
    char ident[1024];       // identity for cache keys: weights path, stamp, encoder, config
    char desc[512];         // one line for people
    int random_init;
} probe_encoder;

// Reads the checkpoint's config (pretrain's "config" metadata or mvit_save's keys) to fill what
// the options leave open, builds the model and loads the weights (the online encoder under bare
// names, or "momentum."; torchvision or PySlowFast names), or initialises randomly with a
// warning. A classifier head (classes > 0) starts from trunc-normal(0.02), bias 0, unless the
// file holds head.1.* of that shape. 0, or -1 with a message naming the file and the fix.
int probe_encoder_open(probe_encoder *e, const probe_encoder_opts *o, char *err, size_t errlen);
// probe_embed_fn: ctx is a probe_encoder. Features [n][D] (or logits [n][classes] when e->logits).
int probe_encoder_embed(void *ctx, const float *clips, int n, float *out, char *err, size_t errlen);
void probe_encoder_close(probe_encoder *e);
// The backend for a device name ("cpu", "cuda") and, for the GPU, a compute precision ("fp32",
// "tf32", "bf16"; NULL: bf16); NULL with a message when unavailable. Every program opens its
// backend here.
scvrl_backend *probe_backend(const char *device, const char *precision, char *err, size_t errlen);

// Evaluation clips of a list through ld_eval_clip: view v = (temporal v / nsv, spatial v % nsv),
// mirrored views appended when flip (views = ntv * nsv * (flip ? 2 : 1)).
typedef struct {
    const ld_loader *L;
    int ntv, nsv, flip;
} probe_eval_clips;
int probe_eval_clip(void *ctx, int64_t i, int v, float *clip, char *err, size_t errlen);   // probe_clip_fn

#endif
