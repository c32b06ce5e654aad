// models/mvit.h - MViT v1 video transformer (torchvision's mvit_v1_b and smaller presets of the
// same code) on the scvrl engine, with torchvision's parameter names and shapes.
//
//   x [B, 3, T, H, W] -> stem conv (kt x 7 x 7, stride 2x4x4) -> tokens [B, 1 + T/2*H/4*W/4, C0]
//   -> blocks (pooling attention, MLP) -> final LayerNorm -> CLS (or token mean) [B, D]
//   -> optional head Linear(D, classes).
#ifndef SCVRL_MVIT_H
#define SCVRL_MVIT_H
#include "scvrl.h"

#define MVIT_MAX_BLOCKS 24

typedef struct {
    int heads, c_in, c_out;
    int q_stride[3];      // {0,0,0}: no Q pooling in this block
    int kv_stride[3];     // K/V pooling stride (kernel 3x3x3 always)
} mvit_block_cfg;

typedef struct {
    char name[32];
    int depth;
    mvit_block_cfg blocks[MVIT_MAX_BLOCKS];
    int kt;               // stem temporal kernel: 2 (SCVRL: stride 2, padding 0) or 3 (padding 1)
    int frames, size;     // input T and H = W
    int num_classes;      // 0: no head
    float drop_path;      // maximum stochastic-depth rate (block i: rate * i / (depth - 1))
    int pool_avg;         // 0: CLS token output; 1: mean of the grid tokens (Table 8d ablation)
} mvit_config;

// Presets: "mvit-b" (torchvision mvit_v1_b), "mvit-s", "mvit-tiny", "mvit-micro". Sets depth and blocks and the
// defaults kt 2, frames 16, size 224, classes 0, drop_path 0.2. Returns 0, or -1 if unknown.
int mvit_preset(const char *name, mvit_config *cfg);
void mvit_print_presets(FILE *f);
int mvit_width(const mvit_config *cfg);            // D, the output width
// Checks frames/size (even T >= 2, H multiple of 32); 0 or -1 with a message.
int mvit_check_config(const mvit_config *cfg, char *err, size_t errlen);

typedef struct {
    mvit_config cfg;
    scvrl_params P;       // every parameter in torchvision's state_dict order
    int grid[3];          // token grid after the stem (T/2, H/4, W/4)
} mvit_model;

int mvit_init(mvit_model *m, const mvit_config *cfg, char *err, size_t errlen);
void mvit_free(mvit_model *m);
// Training initialisation as torchvision: trunc-normal(0.02) linear weights and pos tables,
// zero biases, LayerNorm weight 1; conv weights Kaiming-uniform like PyTorch's default.
void mvit_init_weights(mvit_model *m, uint64_t seed);
// The fixture recipe shared with tests/ref/make_fixtures.py (see tests/ref/README.md).
void mvit_fixture_weights(mvit_model *m, uint64_t seed);

// Build the forward graph. x: [B, 3, T, H, W]. train: drop-path on (streams from stream_base).
// Returns features [B, D] (after the final norm); *logits (if not NULL) gets [B, classes] or NULL.
scvrl_tensor *mvit_forward(scvrl_ctx *ctx, const mvit_model *m, scvrl_tensor *x, int train,
                           uint64_t stream_base, scvrl_tensor **logits);

enum {
    MVIT_LOAD_INTERPOLATE_POS = 1,   // resample positional tables made for another size
    MVIT_LOAD_ALLOW_MISSING_HEAD = 2, // a checkpoint without head.1.* keeps the current head
    MVIT_LOAD_IGNORE_UNEXPECTED = 4,  // extra tensors (other prefixes) are not an error
};
// Load weights from a safetensors file: torchvision names (optionally under `prefix`, e.g.
// "momentum."), or PySlowFast names (mapped, q/k/v concatenated). Missing, unexpected or
// mis-shaped tensors are reported by name. 0, or -1 with a message naming the file.
int mvit_load(mvit_model *m, const char *path, const char *prefix, int flags, char *err, size_t errlen);
// Write every parameter (torchvision names, with `prefix`) to a safetensors writer.
void mvit_add_to_writer(const mvit_model *m, void *writer, const char *prefix);
int mvit_save(const mvit_model *m, const char *path, char *err, size_t errlen);
// The same in dt = F32, F16 or BF16 (smaller files; loading converts to float32), with an
// optional "config" metadata string ("model=mvit-tiny kt=2 frames=8 stride=2 size=64 pool=cls",
// what eval and retrieve read for their defaults).
int mvit_save_as(const mvit_model *m, const char *path, scvrl_dtype dt, const char *config, char *err, size_t errlen);

#endif
