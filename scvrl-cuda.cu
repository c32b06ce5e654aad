// scvrl-cuda.cu - the CUDA backend of scvrl (CUDA runtime + cuBLAS), for Hopper (sm_90) and up.
//
//   scvrl_backend *be = scvrl_backend_cuda(0, err, sizeof err);   // NULL (and a message) if no GPU
//   scvrl_graph_compute(g, be, err, sizeof err);                  // the whole graph on the GPU
//   scvrl_backend_free(be);
//
// Memory scheme (one stream, everything stream-ordered; compute() returns after a synchronize):
//  * Activations: one device arena per backend, laid out by the CPU's memory plan
//    (scvrl_graph_plan: a byte offset per node). It only grows (cudaFree + cudaMalloc when a graph
//    needs more), so a training step never allocates per tensor.
//  * Leaves (inputs, parameters, constants: op LEAF, host data) and external non-leaf nodes
//    (GRAD_ACC: its data is the parameter's slice of the host flat gradient buffer) get a slot in a
//    second device arena, the "mirror", keyed by host pointer (a hash map host ptr -> slot). Each
//    compute packs every leaf into a pinned host staging buffer and uploads it with ONE copy; the
//    GRAD_ACC slots are uploaded too (the kernel does out += x on the device) and downloaded back
//    into the host gradient buffer at the end, so gradients accumulate across graphs exactly as on
//    the CPU. (Re-uploading parameters every step costs ~n_params*4 bytes over PCIe each way;
//    notes/cuda.md says how to keep them resident.)
//  * Outputs (SCVRL_F_OUTPUT nodes that the plan placed in the arena, or views of such): after the
//    kernels, each is downloaded into a pinned host buffer owned by the backend per graph, and
//    t->data (and a view's base->data) points there, so scvrl_f32(out) reads the result as with the
//    CPU backend. The buffer stays valid until the next compute of the same graph on this backend,
//    or until the backend is freed (at most 64 graphs are remembered; the least recently used one
//    is dropped). Non-output planned nodes' ->data are left alone (they have no host copy).
//  * Scratch: one grow-only device buffer for per-op temporaries (im2col columns, attention row
//    statistics, reduction partials); its size is found by a pass over the graph before running.
// Kernels reproduce the CPU kernels of scvrl.h sections 14-16 (same formulas, same reduction
// precision where the CPU uses double); GEMMs go through cuBLAS in fp32, or on TF32 or bf16 tensor
// cores (scvrl_cuda_set_precision, or SCVRL_CUDA_PRECISION=fp32|tf32|bf16 in the environment;
// accumulation stays fp32; BF16 mode also stores intermediate activations as bf16 where every
// reader has a bf16 path: "Activation storage"); in BF16 and TF32 mode attention (forward and
// backward) runs in fused flash-style kernels on bf16 / tf32 tensor cores (see "Fused attention").
// Atomics (not bit-deterministic) are used only by MAXPOOL3D_BACK and by INDEX_ADD with more than
// 4096 indices.
// Fusion: a LINEAR whose only reader is the next node, a residual ADD (scvrl_graph_fusable), runs as
// one cuBLASLt call with beta = 1 into the ADD's buffer (SCVRL_NO_FUSE=1: off, as on the CPU).
// LAYER_NORM_BACK + the residual gradient's ADD likewise run as one kernel (op_ln_back_add), with
// the norm's LAYER_NORM_BACK_WB in the same pass where there is one (plan_ln_wb).
// Concat placement (plan_places): producers that can write at any strides write their output
// straight into the concat that is their only reader (the plan gives it memory from their step).
// MViT's pool (plan_pool_norm): depthwise conv, CLS concat and per-head layer norm in one kernel.
// CUDA graphs (compute_exec): a compute repeated with the same launches is captured once and
// replayed; inputs, weights and the seed reach the kernels through device memory.
// Errors: every CUDA/cuBLAS call is checked; the message names the statement, file and line.

#ifndef SCVRL_CUDA
#define SCVRL_CUDA 1
#endif
#include "scvrl.h"

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>
#include <map>
#include <algorithm>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" int scvrl_cuda_set_precision(scvrl_backend *be, int prec);
extern "C" int scvrl_cuda_get_precision(scvrl_backend *be);
extern "C" size_t scvrl_cuda_device_bytes(scvrl_backend *be);
extern "C" int scvrl_cuda_bf16_nodes(scvrl_backend *be);
extern "C" int scvrl_cuda_placed_nodes(scvrl_backend *be);
extern "C" int scvrl_cuda_fused_pairs(scvrl_backend *be);
extern "C" int scvrl_cuda_set_graphs(scvrl_backend *be, int on);
extern "C" int64_t scvrl_cuda_graph_replays(scvrl_backend *be);
extern "C" int scvrl_cuda_resident(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen);
extern "C" void scvrl_cuda_resident_release(scvrl_backend *be, const void *host);
extern "C" int scvrl_cuda_resident_async(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen);
extern "C" int scvrl_cuda_resident_update(scvrl_backend *be, const void *host, size_t off, size_t len, char *err, size_t errlen);

namespace {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap; va_start(ap, fmt); vsnprintf(err, errlen, fmt, ap); va_end(ap);
}

const char *blas_str(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_?";
    }
}

// The enclosing function has `char *err, size_t errlen` in scope (or R.err / R.errlen via macros).
#define SC_CU(stmt) do { cudaError_t e_ = (stmt); if (e_ != cudaSuccess) { \
        seterr(ERR_, ERRLEN_, "cuda: %s failed at %s:%d: %s (%s)", #stmt, __FILE__, __LINE__, cudaGetErrorString(e_), cudaGetErrorName(e_)); \
        return -1; } } while (0)
#define SC_BLAS(stmt) do { cublasStatus_t s_ = (stmt); if (s_ != CUBLAS_STATUS_SUCCESS) { \
        seterr(ERR_, ERRLEN_, "cuda: %s failed at %s:%d: %s", #stmt, __FILE__, __LINE__, blas_str(s_)); \
        return -1; } } while (0)
#define SC_LAUNCH() SC_CU(cudaGetLastError())

// ---------------------------------------------------------------------------------------------
// Backend state
// ---------------------------------------------------------------------------------------------
struct MirrorSlot { size_t off, bytes; int download; int upload; };

struct GraphOut {            // per-graph pinned host buffer for outputs
    float *host = nullptr; size_t cap = 0; uint64_t used = 0;
};

struct DevParams {           // a parameter set kept on the device (scvrl_params_to_device)
    scvrl_params *P = nullptr;
    float *buf = nullptr;    // one allocation: w, g, m, v (n floats each), then the segment table
    float *w = nullptr, *g = nullptr, *m = nullptr, *v = nullptr;
    int64_t *seg = nullptr;  // start offset of each parameter tensor, sorted
    int *decay = nullptr;    // 1: weight decay applies to that tensor
};

// cuBLASLt plan: descriptors, the algorithm in use, and the heuristic's other candidates (up to 8),
// timed once on the first call's operands when tuned == 0 (lt_tune).
struct LtPlan { cublasLtMatmulDesc_t op; cublasLtMatrixLayout_t a, b, c; cublasLtMatmulAlgo_t algo; int ok;
                cublasLtMatmulAlgo_t cand[8]; int ncand, tuned; };

// A node written into a concat's memory (plan_places): the outermost concat (root), the element
// offset there and the strides of the node's own dims. For a concat that is not placed: root = the
// concat itself, offset 0, its own strides. root -1: neither.
struct Place { int root = -1; int64_t off = 0; int64_t st[SCVRL_MAX_DIMS] = {}; };

struct Cuda {
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;                    // linear layers: GEMM + bias epilogue
    void *lt_ws = nullptr; size_t lt_ws_bytes = 0;    // its workspace
    std::unordered_map<std::string, LtPlan> lt_plans; // by shape, precision and operand alignment
    int prec = SCVRL_PREC_FP32;      // GEMM compute: SCVRL_PREC_FP32, _TF32 or _BF16 (fp32 storage, fp32 accumulation)
    char *act = nullptr; size_t act_cap = 0;          // activation arena
    char *mir = nullptr; size_t mir_cap = 0;          // leaf / external mirror arena
    char *stage = nullptr; size_t stage_cap = 0;      // pinned host staging for the mirror
    char *scratch = nullptr; size_t scratch_cap = 0;  // per-op temporaries
    char *h16 = nullptr; size_t h16_cap = 0;          // bf16 mode: GEMM operands rounded to bf16
    std::vector<char> half;                           // bf16 mode: per node, stored as bf16 (this compute; views: their base's)
    int half_nodes = 0;                               // how many planned nodes the last compute stored as bf16
    std::vector<uint8_t> elem;                        // bf16 nodes: 2 bytes an element, for the sized plan
    std::vector<int64_t> offs_h;                      // the activation offsets planned at those sizes
    std::unordered_map<const void *, size_t> slot_of; // host ptr -> index in slots (rebuilt per compute)
    std::vector<MirrorSlot> slots;
    std::vector<const void *> slot_host;
    std::unordered_map<const scvrl_graph *, GraphOut> outs;
    uint64_t clock = 0;
    std::vector<char *> dptr;                         // per node device pointer (this compute)
    std::vector<cudaEvent_t> prof_ev;                 // SCVRL_PROFILE=1: an event before each node
    std::vector<DevParams> bound;                     // device-resident parameter sets
    struct Resident { const char *host; size_t bytes; char *dev; bool pinned; cudaEvent_t ready; };
    std::vector<Resident> resident;                   // host buffers kept on the device (scvrl_cuda_resident)
    cudaStream_t copy = nullptr;                      // scvrl_cuda_resident_async's uploads
    std::vector<Place> place;                         // concat placement (plan_places): per node, where it writes
    std::vector<int> birth;                           // the plan's step at which each node takes its memory (-1: none)
    std::vector<int> reads;                           // plan_places: source slots reading each node (outputs count 2)
    int placed_nodes = 0;                             // how many nodes the last compute wrote into a concat's memory
    char *lse = nullptr; size_t lse_cap = 0;          // the fused attentions' row statistics, forward -> backward
    std::unordered_map<const scvrl_tensor *, float *> lse_of;   // per ATTENTION node with them (this compute)
    struct PoolNorm { int v, c, l; bool raw; };       // a depthwise pool conv v, its CLS concat c and per-head norm l (plan_pool_norm)
    std::vector<PoolNorm> pnorm;                      // this compute's
    std::vector<int> pn_at;                           // per node: its entry in pnorm (the conv's), else -1
    std::vector<char> done;                           // per node: already run by a fused kernel at an earlier step (this run)
    std::vector<int> lnwb_at;                         // per LAYER_NORM_BACK: its LAYER_NORM_BACK_WB (plan_ln_wb), else -1
    int lnwb_pairs = 0;                               // how many such pairs this compute
    const uint64_t *seed = nullptr;                   // the graph's seed on the device (a word of the mirror)
    size_t seed_off = 0;                              // its offset in the mirror and the staging buffer
    int fused_pairs = 0;                              // fused pairs the last compute ran as one kernel
    struct Exec { cudaGraphExec_t exec; int state; int fused; uint64_t used; };   // state 0: seen once, 1: captured, -1: not capturable
    std::unordered_map<uint64_t, Exec> execs;         // CUDA graphs by run signature (run_signature)
    int graphs = -1;                                  // replay on / off (-1: SCVRL_CUDA_GRAPH, default on)
    int64_t replays = 0;                              // computes that were replays
};

// Frees a resident range: waits for its upload, unpins the host side, frees the device copy.
void resident_free(Cuda::Resident &r) {
    if (r.ready) { cudaEventSynchronize(r.ready); cudaEventDestroy(r.ready); }
    if (r.pinned) cudaHostUnregister((void *)r.host);
    cudaFree(r.dev);
}

// The device address of host memory [p, p + bytes) inside a bound set's weights (or gradients,
// with grad), else nullptr.
char *bound_ptr(Cuda *C, const void *p, size_t bytes, bool grad) {
    const char *h = (const char *)p;
    for (auto &d : C->bound) {
        size_t nb = (size_t)d.P->n_elems * sizeof(float);
        const char *w0 = (const char *)d.P->w, *g0 = (const char *)d.P->g;
        if (h >= w0 && h + bytes <= w0 + nb) return (char *)d.w + (h - w0);
        if (grad && h >= g0 && h + bytes <= g0 + nb) return (char *)d.g + (h - g0);
    }
    if (!grad)
        for (auto &r : C->resident)
            if (h >= r.host && h + bytes <= r.host + r.bytes) {
                if (r.ready) cudaStreamWaitEvent(C->stream, r.ready, 0);   // its last asynchronous upload
                return r.dev + (h - r.host);
            }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// SCVRL_PROFILE=1: GPU milliseconds per op kind (events between nodes, no extra synchronisation),
// and the slowest single nodes, printed to stderr at exit.
// ---------------------------------------------------------------------------------------------
struct ProfNode { double ms; int op; char name[64]; char shape[64]; };
double prof_ms[SCVRL_OP_COUNT];
int64_t prof_n[SCVRL_OP_COUNT];
std::vector<ProfNode> prof_top;                       // the 25 slowest nodes seen
double prof_shape_ms[SCVRL_OP_COUNT][4];              // per op kind: time of the 4 most expensive shapes
char prof_shape[SCVRL_OP_COUNT][4][64];
struct ProfPair { double ms = 0, flops = 0; int64_t n = 0; };
std::map<std::string, ProfPair> prof_pairs;           // every (op, output shape) seen

int prof_on() {
    static int on = -1;
    if (on < 0) { const char *e = getenv("SCVRL_PROFILE"); on = e && (*e == '1' || !strcmp(e, "all")); }
    return on;
}

double prof_host[3];                                  // wall ms: before the first launch, launching, after (sync + copies)
int64_t prof_computes, prof_skipped;
// The first compute of each graph is left out (module loading, cuBLASLt heuristics, first-touch of
// the arenas: a warm-up that the figures should not carry); SCVRL_PROFILE=all keeps it.
bool prof_skip(const scvrl_graph *g) {
    static std::vector<const scvrl_graph *> seen;
    const char *e = getenv("SCVRL_PROFILE");
    if (e && !strcmp(e, "all")) return false;
    if (std::find(seen.begin(), seen.end(), g) != seen.end()) return false;
    seen.push_back(g);
    prof_skipped++;
    return true;
}

double prof_now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

void prof_print() {
    double tot = 0;
    for (int i = 0; i < SCVRL_OP_COUNT; i++) tot += prof_ms[i];
    fprintf(stderr, "scvrl profile (CUDA backend), %.1f ms of GPU time in all over %lld computes (%lld first computes of a graph "
            "left out; SCVRL_PROFILE=all keeps them); host wall time: %.1f ms preparing (mirror, plan, upload), %.1f ms launching, "
            "%.1f ms waiting and copying back\n", tot, (long long)(prof_computes - prof_skipped), (long long)prof_skipped,
            prof_host[0], prof_host[1], prof_host[2]);
    std::vector<int> ord;
    for (int i = 0; i < SCVRL_OP_COUNT; i++) if (prof_n[i]) ord.push_back(i);
    std::sort(ord.begin(), ord.end(), [](int a, int b) { return prof_ms[a] > prof_ms[b]; });
    for (int k : ord)
        fprintf(stderr, "  %-20s %10.2f ms %5.1f%%  %lld calls\n", scvrl_op_name((scvrl_op)k), prof_ms[k],
                tot > 0 ? 100 * prof_ms[k] / tot : 0.0, (long long)prof_n[k]);
    fprintf(stderr, "per op kind, the shapes that cost most (summed over calls):\n");
    for (int k : ord) {
        if (prof_ms[k] < 0.02 * tot) continue;
        fprintf(stderr, "  %-20s", scvrl_op_name((scvrl_op)k));
        int o[4] = { 0, 1, 2, 3 };
        std::sort(o, o + 4, [k](int a, int b) { return prof_shape_ms[k][a] > prof_shape_ms[k][b]; });
        for (int j = 0; j < 4 && prof_shape_ms[k][o[j]] > 0; j++) fprintf(stderr, " %s %.1f ms;", prof_shape[k][o[j]], prof_shape_ms[k][o[j]]);
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "slowest nodes:\n");
    for (auto &p : prof_top) fprintf(stderr, "  %8.3f ms  %-18s %-40s %s\n", p.ms, scvrl_op_name((scvrl_op)p.op), p.name, p.shape);
    std::vector<std::pair<std::string, ProfPair>> pairs(prof_pairs.begin(), prof_pairs.end());
    std::sort(pairs.begin(), pairs.end(), [](const std::pair<std::string, ProfPair> &a, const std::pair<std::string, ProfPair> &b) {
        return a.second.ms > b.second.ms; });
    fprintf(stderr, "costliest (op, shape) pairs (of %zu; ms summed over calls, per call, TFLOP/s of LINEAR products):\n", pairs.size());
    for (size_t j = 0; j < pairs.size() && j < 48; j++) {
        const ProfPair &q = pairs[j].second;
        fprintf(stderr, "  %8.2f ms %5lld calls %7.3f ms  %-44s", q.ms, (long long)q.n, q.ms / (double)q.n, pairs[j].first.c_str());
        if (q.flops > 0) fprintf(stderr, " %6.1f TFLOP/s", q.flops / (q.ms * 1e9));
        fprintf(stderr, "\n");
    }
}

void prof_add(const scvrl_tensor *t, double ms) {
    static int reg = 0;
    if (!reg) { reg = 1; atexit(prof_print); }
    prof_ms[t->op] += ms; prof_n[t->op]++;
    {   // shape table: add to a known shape, else replace the cheapest of the 4
        char sh[64];
        int k = 0; sh[0] = 0;
        // weight gradients and attention gradients are keyed by their first input (dY, q): the output's shape says little
        const scvrl_tensor *r = t->op == SCVRL_OP_CONV3D_BACK_W || t->op == SCVRL_OP_ATTENTION_BACK ? t->src[0] : t;
        for (int d = 0; d < r->ndim && k < 60; d++) k += snprintf(sh + k, sizeof sh - k, d ? "x%lld" : "[%lld", (long long)r->ne[d]);
        if (k < 62) snprintf(sh + k, sizeof sh - k, "]");
        int slot = -1, low = 0;
        for (int j = 0; j < 4; j++) {
            if (!strcmp(prof_shape[t->op][j], sh)) { slot = j; break; }
            if (prof_shape_ms[t->op][j] < prof_shape_ms[t->op][low]) low = j;
        }
        if (slot < 0) { slot = low; snprintf(prof_shape[t->op][slot], 64, "%s", sh); prof_shape_ms[t->op][slot] = 0; }
        prof_shape_ms[t->op][slot] += ms;
    }
    {   // every (op, shape) pair: time, calls, and for LINEAR the products' FLOPs (in features in the key)
        char key[96];
        int k = snprintf(key, sizeof key, "%-14s ", scvrl_op_name(t->op));
        for (int d = 0; d < t->ndim && k < 80; d++) k += snprintf(key + k, sizeof key - k, d ? "x%lld" : "[%lld", (long long)t->ne[d]);
        double fl = 0;
        if (t->op == SCVRL_OP_LINEAR && k < 80) {
            int64_t in = t->src[1]->ne[1];
            k += snprintf(key + k, sizeof key - k, "] in %lld", (long long)in);
            fl = 2.0 * (double)scvrl_nelements(t) * (double)in;
        } else if (k < 90) snprintf(key + k, sizeof key - k, "]");
        ProfPair &q = prof_pairs[key];
        q.ms += ms; q.n++; q.flops += fl;
    }
    if (prof_top.size() >= 25 && ms <= prof_top.back().ms) return;
    ProfNode p; p.ms = ms; p.op = t->op;
    snprintf(p.name, sizeof p.name, "%s", t->name);
    int k = 0; p.shape[0] = 0;
    const scvrl_tensor *r = t->op == SCVRL_OP_CONV3D_BACK_W || t->op == SCVRL_OP_ATTENTION_BACK ? t->src[0] : t;
    for (int d = 0; d < r->ndim && k < 60; d++) k += snprintf(p.shape + k, sizeof p.shape - k, d ? "x%lld" : "[%lld", (long long)r->ne[d]);
    if (k < 62) snprintf(p.shape + k, sizeof p.shape - k, "]");
    prof_top.push_back(p);
    std::sort(prof_top.begin(), prof_top.end(), [](const ProfNode &a, const ProfNode &b) { return a.ms > b.ms; });
    if (prof_top.size() > 25) prof_top.pop_back();
}

// Device allocation helper: out-of-memory says how much and suggests a smaller batch.
int dev_alloc(Cuda *C, void **p, size_t bytes, const char *what, char *err, size_t errlen) {
    (void)C;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaGetLastError();
        cudaMemGetInfo(&fr, &tot);
        seterr(err, errlen, "cuda: out of device memory allocating %.1f MB for %s (%.1f MB free of %.1f MB): "
               "use a smaller batch or clip (%s at %s:%d)", (double)bytes / 1e6, what, (double)fr / 1e6,
               (double)tot / 1e6, cudaGetErrorString(e), __FILE__, __LINE__);
        *p = nullptr;
        return -1;
    }
    return 0;
}

// Grow a device buffer to at least `need` bytes (contents are not kept).
int grow(Cuda *C, char **buf, size_t *cap, size_t need, const char *what, char *err, size_t errlen) {
#define ERR_ err
#define ERRLEN_ errlen
    if (need <= *cap && *buf) return 0;
    if (*buf) { SC_CU(cudaStreamSynchronize(C->stream)); SC_CU(cudaFree(*buf)); *buf = nullptr; *cap = 0; }
    size_t sz = need + need / 8 + 256;
    if (dev_alloc(C, (void **)buf, sz, what, err, errlen)) return -1;
    *cap = sz;
    return 0;
#undef ERR_
#undef ERRLEN_
}

// ---------------------------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------------------------
#define MAXD SCVRL_MAX_DIMS
struct Dims { int nd; int64_t ne[MAXD]; int64_t sa[MAXD]; int64_t sb[MAXD]; };

__device__ __forceinline__ uint64_t d_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// A random stream's key, read on the device: mix64(seed ^ mix64(stream)) (rng_key on the host, the
// CPU's formula) with the graph's seed from device memory, so a replayed CUDA graph draws new masks.
struct RngKey { const uint64_t *seed; uint64_t sk; };
__device__ __forceinline__ uint64_t d_key(RngKey k) { return d_mix64(*k.seed ^ k.sk); }
__device__ __forceinline__ float d_uniform(uint64_t key, uint64_t i) {
    return (float)(d_mix64(key + i) >> 40) * 0x1.0p-24f;
}

__device__ __forceinline__ float d_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float d_gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    return cdf + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

// bf16 activations (BF16 mode, "Activation storage" below): loads widen to float, stores round to
// nearest even; 4-wide versions move 16 (float) or 8 (bf16) bytes.
typedef __nv_bfloat16 bf16;
__device__ __forceinline__ float ldf(const float *p) { return *p; }
__device__ __forceinline__ float ldf(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void stf(float *p, float v) { *p = v; }
__device__ __forceinline__ void stf(bf16 *p, float v) { *p = __float2bfloat16_rn(v); }
// Tensor-core helpers (shared memory addresses, ldmatrix, mma.sync bf16, cp.async): the fused
// attention kernels and the implicit-GEMM stem.
__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void ldsm_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a));
}
// D += A B: m16n8k16, A row-major bf16 (4 regs), B col-major bf16 (2 regs), fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }
__device__ __forceinline__ float bf_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ uint32_t bf_pack(float lo, float hi) {
    __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&p);
}
__device__ __forceinline__ float4 ld4f(const float *p) { return *(const float4 *)p; }
__device__ __forceinline__ float4 ld4f(const bf16 *p) {
    uint2 u = *(const uint2 *)p;
    return make_float4(bf_lo(u.x), bf_hi(u.x), bf_lo(u.y), bf_hi(u.y));
}
__device__ __forceinline__ float2 ld2f(const float *p) { return *(const float2 *)p; }
__device__ __forceinline__ float2 ld2f(const bf16 *p) { uint32_t u = *(const uint32_t *)p; return make_float2(bf_lo(u), bf_hi(u)); }
__device__ __forceinline__ void st4f(float *p, float4 v) { *(float4 *)p = v; }
__device__ __forceinline__ void st4f(bf16 *p, float4 v) { *(uint2 *)p = make_uint2(bf_pack(v.x, v.y), bf_pack(v.z, v.w)); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double warp_sumd(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Block-wide reductions (blockDim a multiple of 32, <= 1024). All threads get the result.
__device__ double block_sumd(double v) {
    __shared__ double sh[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sumd(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double r = 0.0;
    for (int i = 0; i < nw; i++) r += sh[i];
    return r;
}
__device__ float block_maxf(float v) {
    __shared__ float shm[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shm[w] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; i++) r = fmaxf(r, shm[i]);
    return r;
}

#define GRID_STRIDE(i, n) for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

inline unsigned grid_for(int64_t n, int bs = 256) {
    int64_t g = (n + bs - 1) / bs;
    if (g < 1) g = 1;
    if (g > (1 << 20)) g = 1 << 20;
    return (unsigned)g;
}

// ---------------------------------------------------------------------------------------------
// Elementwise kernels
// ---------------------------------------------------------------------------------------------
// Index type I: uint32_t when every element index and offset fits in 31 bits (32-bit division is
// several times cheaper than 64-bit on the GPU), else int64_t. Dims are collapsed on the host first
// (size-1 dims dropped, dims contiguous in every operand merged), so the common contiguous case is
// nd == 1 with unit strides.
template <typename I> struct DimsT { int nd; I ne[MAXD]; I sa[MAXD]; I sb[MAXD]; };
// The dim loops are unrolled over MAXD with constant indices, so the Dims kernel parameter stays in
// parameter space (a loop with a runtime index would copy it to per-thread local memory: 3x slower).
template <typename I> __device__ __forceinline__ void offsT(I i, const DimsT<I> &D, I *oa, I *ob) {
    if (D.nd == 1) { *oa = i * D.sa[0]; *ob = i * D.sb[0]; return; }
    I a = 0, b = 0;
#pragma unroll
    for (int d = MAXD - 1; d > 0; d--)
        if (d < D.nd) { I k = i % D.ne[d]; i /= D.ne[d]; a += k * D.sa[d]; b += k * D.sb[d]; }
    *oa = a + i * D.sa[0]; *ob = b + i * D.sb[0];
}
template <typename I> __device__ __forceinline__ I offs1T(I i, const DimsT<I> &D) {
    if (D.nd == 1) return i * D.sa[0];
    I a = 0;
#pragma unroll
    for (int d = MAXD - 1; d > 0; d--)
        if (d < D.nd) { I k = i % D.ne[d]; i /= D.ne[d]; a += k * D.sa[d]; }
    return a + i * D.sa[0];
}
#define GRID_STRIDE_T(I, i, n) for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (I)gridDim.x * blockDim.x)

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_RELU_BACK, BIN_GELU_BACK };
template <int OP, typename I> __global__ void k_binary(I n, DimsT<I> D, const float *A, const float *B, float *Y) {
    GRID_STRIDE_T(I, i, n) {
        I oa, ob; offsT(i, D, &oa, &ob);
        float x = A[oa], y = B[ob], r;
        if (OP == BIN_ADD) r = x + y;
        else if (OP == BIN_SUB) r = x - y;
        else if (OP == BIN_MUL) r = x * y;
        else if (OP == BIN_DIV) r = x / y;
        else if (OP == BIN_RELU_BACK) r = x > 0.0f ? y : 0.0f;
        else r = y * d_gelu_grad(x);
        Y[i] = r;
    }
}

enum { UN_SCALE, UN_RELU, UN_GELU };
template <int OP, typename I> __global__ void k_unary(I n, DimsT<I> D, const float *X, float *Y, float s, float c) {
    GRID_STRIDE_T(I, i, n) {
        float x = X[offs1T(i, D)], r;
        if (OP == UN_SCALE) r = x * s + c;
        else if (OP == UN_RELU) r = (x > 0.0f || x != x) ? x : 0.0f;
        else r = d_gelu(x);
        Y[i] = r;
    }
}

// GELU and its gradient over contiguous tensors with an operand stored as bf16: 4 elements per
// thread (v4: n a multiple of 4, pointers aligned), else one.
template <typename TI, typename TO> __global__ void k_gelu_c(int64_t n, bool v4, const TI *X, TO *Y) {
    if (v4) {
        GRID_STRIDE(i, n / 4) {
            float4 x = ld4f(X + 4 * i);
            st4f(Y + 4 * i, make_float4(d_gelu(x.x), d_gelu(x.y), d_gelu(x.z), d_gelu(x.w)));
        }
    } else GRID_STRIDE(i, n) stf(Y + i, d_gelu(ldf(X + i)));
}
template <typename TX, typename TO> __global__ void k_gelu_back_c(int64_t n, bool v4, const TX *X, const float *DY, TO *DX) {
    if (v4) {
        GRID_STRIDE(i, n / 4) {
            float4 x = ld4f(X + 4 * i), d = ld4f(DY + 4 * i);
            st4f(DX + 4 * i, make_float4(d.x * d_gelu_grad(x.x), d.y * d_gelu_grad(x.y), d.z * d_gelu_grad(x.z), d.w * d_gelu_grad(x.w)));
        }
    } else GRID_STRIDE(i, n) stf(DX + i, DY[i] * d_gelu_grad(ldf(X + i)));
}

template <typename I> __global__ void k_copy4(I n, DimsT<I> D, const uint32_t *X, uint32_t *Y) {
    GRID_STRIDE_T(I, i, n) Y[i] = X[offs1T(i, D)];
}
// The same 16 bytes at a time (copy_contig: inner dim contiguous, every size and offset a multiple of 4).
template <typename I> __global__ void k_copy16(I n, DimsT<I> D, const float4 *X, float4 *Y) {
    GRID_STRIDE_T(I, i, n) Y[i] = X[offs1T(i, D)];
}
template <typename I> __global__ void k_acc(I n, DimsT<I> D, const float *X, float *Y) {
    GRID_STRIDE_T(I, i, n) Y[i] += X[offs1T(i, D)];
}

__global__ void k_dropout(int64_t n, const float *X, float *Y, RngKey rk, float p, float s) {
    const uint64_t key = d_key(rk);
    GRID_STRIDE(i, n) Y[i] = d_uniform(key, (uint64_t)i) < p ? 0.0f : X[i] * s;
}
template <typename TO> __global__ void k_drop_path(int64_t n, int64_t inner, const float *X, TO *Y, RngKey rk, float p, float s) {
    const uint64_t key = d_key(rk);
    GRID_STRIDE(i, n) {
        int64_t r = i / inner;
        float f = d_uniform(key, (uint64_t)r) < p ? 0.0f : s;
        stf(Y + i, X[i] * f);
    }
}

// bias add: Y[i] += b[(i / inner) % C]
// DROP_PATH fused with the ADD that reads it: Y = O + X * (row kept ? s : 0), the same bits as the two kernels.
__global__ void k_drop_path_add(int64_t n, int64_t inner, const float *X, const float *O, float *Y, RngKey rk, float p, float s) {
    const uint64_t key = d_key(rk);
    GRID_STRIDE(i, n) Y[i] = __fadd_rn(O[i], __fmul_rn(X[i], d_uniform(key, (uint64_t)(i / inner)) < p ? 0.0f : s));
}
// The two above four elements at a time (rows of 4k elements, 16-byte aligned): the same bits.
template <typename TO> __global__ void k_drop_path_v4(int64_t n4, int64_t inner4, const float4 *X, TO *Y, RngKey rk, float p, float s) {
    const uint64_t key = d_key(rk);
    GRID_STRIDE(i, n4) {
        float f = d_uniform(key, (uint64_t)(i / inner4)) < p ? 0.0f : s;
        float4 x = X[i];
        st4f(Y + 4 * i, make_float4(x.x * f, x.y * f, x.z * f, x.w * f));
    }
}
__global__ void k_drop_path_add_v4(int64_t n4, int64_t inner4, const float4 *X, const float4 *O, float4 *Y, RngKey rk, float p, float s) {
    const uint64_t key = d_key(rk);
    GRID_STRIDE(i, n4) {
        float f = d_uniform(key, (uint64_t)(i / inner4)) < p ? 0.0f : s;
        float4 x = X[i], o = O[i];
        Y[i] = make_float4(__fadd_rn(o.x, __fmul_rn(x.x, f)), __fadd_rn(o.y, __fmul_rn(x.y, f)), __fadd_rn(o.z, __fmul_rn(x.z, f)),
                           __fadd_rn(o.w, __fmul_rn(x.w, f)));
    }
}
template <typename T> __global__ void k_bias(int64_t n, int64_t inner, int64_t C, const float *b, T *Y) {
    GRID_STRIDE(i, n) stf(Y + i, ldf(Y + i) + b[(i / inner) % C]);
}

// ---------------------------------------------------------------------------------------------
// Reductions (SUM_TO)
// ---------------------------------------------------------------------------------------------
// Stage 1 of a column sum over the rows of a contiguous [R, C]: block (32, 8) covers 32 columns
// and a chunk of rows; partial[chunk][c] in double.
template <typename TX> __global__ void k_colsum_part(const TX *X, int64_t R, int64_t C, int64_t rows_per, double *part) {
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * rows_per, r1 = r0 + rows_per < R ? r0 + rows_per : R;
    double s = 0.0;
    if (c < C) for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += ldf(X + r * C + c);
    __shared__ double sh[8][33];
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0.0;
        for (int k = 0; k < 8; k++) t += sh[k][threadIdx.x];
        part[(int64_t)blockIdx.y * C + c] = t;
    }
}
// Y[c] = sum over chunks of part[k][c]: 32 columns per block, 8 rows of threads each summing every
// 8th chunk (two interleaved sums), the rows added in a fixed order (deterministic). A thread per
// column summing all nch chunks was a chain of nch loads (~60 us at 682 chunks: most of a layer
// norm's weight gradient at D = 96).
// tC > 0: column c = k * tC + ch is stored transposed, at Y[ch * tK + k] (the depthwise weight
// gradient: partials [chunk][tap][channel], weights [channel][tap]).
__global__ void k_colsum_final(const double *part, int64_t nch, int64_t C, float *Y, int64_t tC = 0, int64_t tK = 0) {
    __shared__ double s[8][32];
    const int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double a0 = 0.0, a1 = 0.0;
    if (c < C) {
        int64_t k = threadIdx.y;
        for (; k + 8 < nch; k += 16) { a0 += part[k * C + c]; a1 += part[(k + 8) * C + c]; }
        if (k < nch) a0 += part[k * C + c];
    }
    s[threadIdx.y][threadIdx.x] = a0 + a1;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0.0;
        for (int i = 0; i < 8; i++) t += s[i][threadIdx.x];
        Y[tC ? (c % tC) * tK + c / tC : c] = (float)t;
    }
}
// The same with 32 threads a column (blockDim (32, 32)), four partials in flight a thread: for many
// partials over few columns (a chain of nch / 8 dependent loads a thread was the time there).
__global__ void k_colsum_final32(const double *part, int64_t nch, int64_t C, float *Y, int64_t tC = 0, int64_t tK = 0) {
    __shared__ double s[32][33];
    const int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    if (c < C) {
        int64_t k = threadIdx.y;
        for (; k + 96 < nch; k += 128) { a0 += part[k * C + c]; a1 += part[(k + 32) * C + c]; a2 += part[(k + 64) * C + c]; a3 += part[(k + 96) * C + c]; }
        for (; k < nch; k += 32) a0 += part[k * C + c];
    }
    s[threadIdx.y][threadIdx.x] = (a0 + a1) + (a2 + a3);
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0.0;
        for (int i = 0; i < 32; i++) t += s[i][threadIdx.x];
        Y[tC ? (c % tC) * tK + c / tC : c] = (float)t;
    }
}
struct RedG { int nd; int64_t one[MAXD]; int64_t ne[MAXD]; int64_t st[MAXD]; int nr; int rd[MAXD]; };
__device__ __forceinline__ int64_t red_base(int64_t o, const RedG &G) {
    int64_t base = 0;
    for (int i = G.nd - 1; i >= 0; i--) { int64_t k = o % G.one[i]; o /= G.one[i]; base += k * G.st[i]; }
    return base;
}
__device__ __forceinline__ int64_t red_off(int64_t q, const RedG &G) {
    int64_t off = 0;
    for (int j = G.nr - 1; j >= 0; j--) { int64_t n = G.ne[G.rd[j]]; int64_t k = q % n; q /= n; off += k * G.st[G.rd[j]]; }
    return off;
}
__global__ void k_sum_general_thread(int64_t nout, int64_t nred, RedG G, const float *X, float *Y) {
    GRID_STRIDE(o, nout) {
        int64_t base = red_base(o, G);
        double s = 0.0;
        for (int64_t q = 0; q < nred; q++) s += X[base + red_off(q, G)];
        Y[o] = (float)s;
    }
}
__global__ void k_sum_general_block(int64_t nred, RedG G, const float *X, float *Y) {
    int64_t o = blockIdx.x;
    int64_t base = red_base(o, G);
    double s = 0.0;
    for (int64_t q = threadIdx.x; q < nred; q += blockDim.x) s += X[base + red_off(q, G)];
    s = block_sumd(s);
    if (threadIdx.x == 0) Y[o] = (float)s;
}

// ---------------------------------------------------------------------------------------------
// Shape ops
// ---------------------------------------------------------------------------------------------
// CONCAT along dim: out [outer, na + nb, inner]
// T: float, or float4 when inner and the three pointers allow it (inner counted in T units).
template <typename I, typename T> __global__ void k_concat(I n, I inner, I na, I nb, const T *A, const T *B, T *Y) {
    GRID_STRIDE_T(I, i, n) {
        I in = i % inner, r = i / inner, d = r % (na + nb), o = r / (na + nb);
        Y[i] = d < na ? A[(o * na + d) * inner + in] : B[(o * nb + d - na) * inner + in];
    }
}
// The same with operands of different storage (bf16 / float): element per thread, converted.
template <typename TA, typename TB, typename TY>
__global__ void k_concat_cvt(int64_t n, int64_t inner, int64_t na, int64_t nb, const TA *A, const TB *B, TY *Y) {
    GRID_STRIDE(i, n) {
        int64_t in = i % inner, r = i / inner, d = r % (na + nb), o = r / (na + nb);
        stf(Y + i, d < na ? ldf(A + (o * na + d) * inner + in) : ldf(B + (o * nb + d - na) * inner + in));
    }
}
// SLICE_BACK: out [outer, full, inner] zeros with x [outer, len, inner] at [start, start+len)
template <typename I, typename T> __global__ void k_slice_back(I n, I inner, I full, I start, I len, const T *X, T *Y) {
    GRID_STRIDE_T(I, i, n) {
        I in = i % inner, r = i / inner, d = r % full, o = r / full;
        Y[i] = (d >= start && d < start + len) ? X[(o * len + d - start) * inner + in] : T{};
    }
}
// E: float, or float4 (four floats a thread: inner a multiple of 4 and both pointers 16-byte
// aligned, e.g. the SCVRL momentum batch's plane gather, rows of H*W floats); n and inner in Es.
template <typename I, typename E> __global__ void k_index_select(I n, I inner, I nsel, I nx, const int32_t *idx, const E *X, E *Y, E nanv) {
    GRID_STRIDE_T(I, i, n) {
        I in = i % inner, r = i / inner, j = r % nsel, o = r / nsel;
        int32_t k = idx[j];
        Y[i] = (k >= 0 && (I)k < nx) ? X[(o * nx + (I)k) * inner + in] : nanv;
    }
}
// INDEX_ADD, deterministic: each output element gathers the dy rows whose index is its row.
__global__ void k_index_add_gather(int64_t n, int64_t inner, int64_t nsel, int64_t nx, const int32_t *idx, const float *D, float *Y) {
    GRID_STRIDE(i, n) {
        int64_t in = i % inner, r = i / inner, k = r % nx, o = r / nx;
        float s = 0.0f;
        for (int64_t j = 0; j < nsel; j++) if (idx[j] == k) s += D[(o * nsel + j) * inner + in];
        Y[i] = s;
    }
}
__global__ void k_index_add_atomic(int64_t n, int64_t inner, int64_t nsel, int64_t nx, const int32_t *idx, const float *D, float *Y) {
    GRID_STRIDE(i, n) {
        int64_t in = i % inner, r = i / inner, j = r % nsel, o = r / nsel;
        int32_t k = idx[j];
        if (k >= 0 && k < nx) atomicAdd(Y + (o * nx + k) * inner + in, D[i]);
    }
}

// ---------------------------------------------------------------------------------------------
// Row kernels: layer norm, softmax, log-softmax, cross-entropy, L2 normalize (one block per row)
// ---------------------------------------------------------------------------------------------
template <typename TX> __device__ __forceinline__ void ln_stats(const TX *x, int64_t D, float eps, float *mean, float *rstd) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += ldf(x + i);
    s = block_sumd(s);
    float mu = (float)(s / (double)D);
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) { double d = (double)ldf(x + i) - mu; v += d * d; }
    v = block_sumd(v);
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(v / (double)D + (double)eps));
}

template <typename TI, typename TO> __global__ void k_layer_norm(int64_t D, const TI *X, const float *W, const float *B, TO *Y, float eps) {
    const TI *x = X + (int64_t)blockIdx.x * D;
    TO *y = Y + (int64_t)blockIdx.x * D;
    float mu, rs;
    ln_stats(x, D, eps, &mu, &rs);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        float v = (ldf(x + i) - mu) * rs;
        stf(y + i, v * (W ? W[i] : 1.0f) + (B ? B[i] : 0.0f));
    }
}
template <typename TX> __global__ void k_layer_norm_back(int64_t D, const float *DY, const TX *X, const float *W, float *DX, float eps) {
    int64_t r = blockIdx.x;
    const TX *x = X + r * D;
    const float *dy = DY + r * D;
    float *dx = DX + r * D, mu, rs;
    ln_stats(x, D, eps, &mu, &rs);
    double sg = 0.0, sgx = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        float gi = dy[i] * (W ? W[i] : 1.0f), xh = (ldf(x + i) - mu) * rs;
        sg += gi; sgx += (double)gi * xh;
    }
    sg = block_sumd(sg); sgx = block_sumd(sgx);
    float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        float gi = dy[i] * (W ? W[i] : 1.0f), xh = (ldf(x + i) - mu) * rs;
        dx[i] = rs * (gi - mg - xh * mgx);
    }
}
// Warp-per-row versions for rows of up to 1024 (MViT's 96..768): 8 rows per block of 256, the
// same two-pass double statistics as ln_stats, no block barriers.
template <typename TX> __device__ __forceinline__ void ln_stats_warp(const TX *x, int D, float eps, float *mean, float *rstd) {
    int lane = threadIdx.x & 31;
    double s = 0.0;
    for (int i = lane; i < D; i += 32) s += ldf(x + i);
    s = warp_sumd(s);
    float mu = (float)(s / (double)D);
    double v = 0.0;
    for (int i = lane; i < D; i += 32) { double d = (double)ldf(x + i) - mu; v += d * d; }
    v = warp_sumd(v);
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(v / (double)D + (double)eps));
}
template <typename TI, typename TO>
__global__ void k_layer_norm_w(int64_t rows, int D, const TI *X, const float *W, const float *B, TO *Y, float eps) {
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    const TI *x = X + r * D;
    TO *y = Y + r * D;
    float mu, rs;
    ln_stats_warp(x, D, eps, &mu, &rs);
    for (int i = threadIdx.x & 31; i < D; i += 32) {
        float v = (ldf(x + i) - mu) * rs;
        stf(y + i, v * (W ? W[i] : 1.0f) + (B ? B[i] : 0.0f));
    }
}
// Row statistics of a row held in registers (k_layer_norm_v4's): mean and 1 / std, sums in double.
template <int NC> __device__ __forceinline__ void ln_stats_v4(const float4 (&v)[NC], int D4, float eps, float *mean, float *rstd) {
    const int lane = threadIdx.x & 31;
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < NC; j++) if (lane + 32 * j < D4) s += (double)v[j].x + (double)v[j].y + (double)v[j].z + (double)v[j].w;
    s = warp_sumd(s);
    const float mu = (float)(s / (double)(4 * D4));
    double q = 0.0;
#pragma unroll
    for (int j = 0; j < NC; j++)
        if (lane + 32 * j < D4) {
            double a = (double)v[j].x - mu, b = (double)v[j].y - mu, c = (double)v[j].z - mu, d = (double)v[j].w - mu;
            q += a * a + b * b + c * c + d * d;
        }
    q = warp_sumd(q);
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(q / (double)(4 * D4) + (double)eps));
}
// A row of 4 D4 elements into a warp's registers (NC groups of four a lane) and its statistics.
template <int NC, typename TX>
__device__ __forceinline__ void ln_row_v4(const TX *row, int D4, float eps, float4 (&v)[NC], float *mu, float *rs) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < NC; j++) {
        int c = lane + 32 * j;
        v[j] = c < D4 ? ld4f(row + 4 * c) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    ln_stats_v4<NC>(v, D4, eps, mu, rs);
}
// Rows of D = 4 D4 <= 1024 with 16-byte aligned rows: a warp per row holds it in registers (read
// once, four elements at a time; the warp-per-row kernel above reads it three times), the same
// double statistics and formulas (the sums in another order). (Four rows a warp, all loaded before
// the first one's statistics, was tried for D = 96 and gave nothing: notes/cuda.md.)
template <int NC, typename TI, typename TO>
__global__ void k_layer_norm_v4(int64_t rows, int D4, const TI *X, const float *W, const float *B, TO *Y, float eps) {
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int lane = threadIdx.x & 31, D = 4 * D4;
    float4 v[NC];
    float mu, rs;
    ln_row_v4<NC>(X + r * D, D4, eps, v, &mu, &rs);
#pragma unroll
    for (int j = 0; j < NC; j++) {
        int c = lane + 32 * j;
        if (c >= D4) continue;
        float4 w = W ? ld4f(W + 4 * c) : make_float4(1.f, 1.f, 1.f, 1.f), b = B ? ld4f(B + 4 * c) : make_float4(0.f, 0.f, 0.f, 0.f);
        st4f(Y + r * D + 4 * c, make_float4((v[j].x - mu) * rs * w.x + b.x, (v[j].y - mu) * rs * w.y + b.y,
                                            (v[j].z - mu) * rs * w.z + b.z, (v[j].w - mu) * rs * w.w + b.w));
    }
}
// A row of x and of dy into a warp's registers, four at a time, both loaded before the statistics
// (twice the bytes in flight).
template <int NC, typename TX>
__device__ __forceinline__ void ln_load_xg(const TX *x, const float *dy, int D4, float4 (&xv)[NC], float4 (&gv)[NC]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < NC; j++) {
        int c = lane + 32 * j;
        xv[j] = c < D4 ? ld4f(x + 4 * c) : make_float4(0.f, 0.f, 0.f, 0.f);
        gv[j] = c < D4 ? ld4f(dy + 4 * c) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
}
// dx of one row held in a warp's registers (x in xv, dy in gv, its statistics mu, rs):
// rs (g - mean(g) - xhat mean(g xhat)), g = dy w (k_layer_norm_back_w's formulas), into the row DX;
// RES (the residual gradient's row of a fused LAYER_NORM_BACK + ADD, or null): DX = RES + dx,
// rounded as the separate ADD (no multiply-add contraction). Overwrites xv and gv.
template <int NC>
__device__ __forceinline__ void ln_back_dx_row(float4 (&xv)[NC], float4 (&gv)[NC], int D4, float mu, float rs, const float *W,
                                               const float *RES, float *DX) {
    const int lane = threadIdx.x & 31, D = 4 * D4;
    double sg = 0.0, sgx = 0.0;
#pragma unroll
    for (int j = 0; j < NC; j++) {
        int c = lane + 32 * j;
        if (c >= D4) continue;
        float4 dy = gv[j], w = W ? ld4f(W + 4 * c) : make_float4(1.f, 1.f, 1.f, 1.f);
        float4 g = make_float4(dy.x * w.x, dy.y * w.y, dy.z * w.z, dy.w * w.w);
        float4 h = make_float4((xv[j].x - mu) * rs, (xv[j].y - mu) * rs, (xv[j].z - mu) * rs, (xv[j].w - mu) * rs);
        sg += (double)g.x + (double)g.y + (double)g.z + (double)g.w;
        sgx += (double)g.x * h.x + (double)g.y * h.y + (double)g.z * h.z + (double)g.w * h.w;
        gv[j] = g; xv[j] = h;
    }
    sg = warp_sumd(sg); sgx = warp_sumd(sgx);
    const float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
#pragma unroll
    for (int j = 0; j < NC; j++) {
        int c = lane + 32 * j;
        if (c >= D4) continue;
        float4 v = make_float4(rs * (gv[j].x - mg - xv[j].x * mgx), rs * (gv[j].y - mg - xv[j].y * mgx),
                               rs * (gv[j].z - mg - xv[j].z * mgx), rs * (gv[j].w - mg - xv[j].w * mgx));
        if (RES) {
            float4 q = ld4f(RES + 4 * c);
            v = make_float4(__fadd_rn(q.x, v.x), __fadd_rn(q.y, v.y), __fadd_rn(q.z, v.z), __fadd_rn(q.w, v.w));
        }
        st4f(DX + 4 * c, v);
    }
}
// The input gradient of such rows: x and dy read once each, four at a time; RES as above.
template <int NC, typename TX>
__global__ void k_layer_norm_back_v4(int64_t rows, int D4, const float *DY, const TX *X, const float *W, const float *RES, float *DX, float eps) {
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int D = 4 * D4;
    float4 xv[NC], gv[NC];
    float mu, rs;
    ln_load_xg<NC>(X + r * D, DY + r * D, D4, xv, gv);
    ln_stats_v4<NC>(xv, D4, eps, &mu, &rs);
    ln_back_dx_row<NC>(xv, gv, D4, mu, rs, W, RES ? RES + r * D : nullptr, DX + r * D);
}
template <typename TX>
__global__ void k_layer_norm_back_w(int64_t rows, int D, const float *DY, const TX *X, const float *W, float *DX, float eps) {
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const TX *x = X + r * D;
    const float *dy = DY + r * D;
    float *dx = DX + r * D, mu, rs;
    ln_stats_warp(x, D, eps, &mu, &rs);
    double sg = 0.0, sgx = 0.0;
    for (int i = lane; i < D; i += 32) {
        float gi = dy[i] * (W ? W[i] : 1.0f), xh = (ldf(x + i) - mu) * rs;
        sg += gi; sgx += (double)gi * xh;
    }
    sg = warp_sumd(sg); sgx = warp_sumd(sgx);
    float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
    for (int i = lane; i < D; i += 32) {
        float gi = dy[i] * (W ? W[i] : 1.0f), xh = (ldf(x + i) - mu) * rs;
        dx[i] = rs * (gi - mg - xh * mgx);
    }
}
template <typename TX> __global__ void k_ln_rowstats_w(int64_t rows, int D, const TX *X, float eps, float2 *st) {
    int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    float mu, rs;
    ln_stats_warp(X + r * D, D, eps, &mu, &rs);
    if ((threadIdx.x & 31) == 0) st[r] = make_float2(mu, rs);
}
template <typename TX> __global__ void k_ln_rowstats(int64_t D, const TX *X, float eps, float2 *st) {
    float mu, rs;
    ln_stats(X + (int64_t)blockIdx.x * D, D, eps, &mu, &rs);
    if (threadIdx.x == 0) st[blockIdx.x] = make_float2(mu, rs);
}
// partial[chunk][2D]: dw (sum dy * xhat) then db (sum dy), over a chunk of rows.
template <typename TX>
__global__ void k_ln_wb_part(int64_t R, int64_t D, int64_t rows_per, const float *DY, const TX *X, const float2 *st, double *part) {
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * rows_per, r1 = r0 + rows_per < R ? r0 + rows_per : R;
    double sw = 0.0, sb = 0.0;
    if (c < D)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
            float2 s = st[r];
            float dy = DY[r * D + c];
            sw += dy * ((ldf(X + r * D + c) - s.x) * s.y);
            sb += dy;
        }
    __shared__ double sh[2][8][33];
    sh[0][threadIdx.y][threadIdx.x] = sw; sh[1][threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && c < D) {
        double a = 0.0, b = 0.0;
        for (int k = 0; k < 8; k++) { a += sh[0][k][threadIdx.x]; b += sh[1][k][threadIdx.x]; }
        part[(int64_t)blockIdx.y * 2 * D + c] = a;
        part[(int64_t)blockIdx.y * 2 * D + D + c] = b;
    }
}

__device__ __forceinline__ float row_max(const float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, x[i]);
    return block_maxf(m);
}
// logsumexp as the CPU: m + log(sum exp(x - m)) (sum in double); -inf for an all -inf row.
__device__ __forceinline__ float row_lse(const float *x, int64_t n) {
    float m = row_max(x, n);
    if (m == -INFINITY) return m;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(x[i] - m);
    s = block_sumd(s);
    return m + (float)log(s);
}
__device__ __forceinline__ void row_softmax(const float *x, float *y, int64_t n) {
    float m = row_max(x, n);
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) { float e = expf(x[i] - m); y[i] = e; s += e; }
    s = block_sumd(s);
    float inv = (float)(1.0 / s);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[i] *= inv;
}
__global__ void k_softmax(int64_t D, const float *X, float *Y) {
    row_softmax(X + (int64_t)blockIdx.x * D, Y + (int64_t)blockIdx.x * D, D);
}
__global__ void k_log_softmax(int64_t D, const float *X, float *Y) {
    const float *x = X + (int64_t)blockIdx.x * D;
    float *y = Y + (int64_t)blockIdx.x * D;
    float l = row_lse(x, D);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) y[i] = x[i] - l;
}
template <int LOGSM> __global__ void k_softmax_back(int64_t D, const float *Yv, const float *DY, float *DX) {
    int64_t r = blockIdx.x;
    const float *y = Yv + r * D, *dy = DY + r * D;
    float *dx = DX + r * D;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += LOGSM ? dy[i] : dy[i] * y[i];
    s = block_sumd(s);
    float sf = (float)s;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dx[i] = LOGSM ? dy[i] - expf(y[i]) * sf : y[i] * (dy[i] - sf);
}
__global__ void k_cross_entropy(int64_t C, const float *X, const int32_t *tg, float *L) {
    int64_t n = blockIdx.x;
    const float *x = X + n * C;
    float l = row_lse(x, C);
    if (threadIdx.x == 0) { int32_t t = tg[n]; L[n] = (t >= 0 && t < C) ? l - x[t] : NAN; }
}
__global__ void k_cross_entropy_back(int64_t C, const float *X, const int32_t *tg, const float *DL, int64_t sdl, float *DX) {
    int64_t n = blockIdx.x;
    float *dx = DX + n * C;
    row_softmax(X + n * C, dx, C);
    __syncthreads();
    int32_t t = tg[n];
    if (threadIdx.x == 0 && t >= 0 && t < C) dx[t] -= 1.0f;
    __syncthreads();
    float d = DL[n * sdl];
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dx[c] *= d;
}
__global__ void k_l2n(int64_t D, const float *X, float *Y, float eps) {
    const float *x = X + (int64_t)blockIdx.x * D;
    float *y = Y + (int64_t)blockIdx.x * D;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += (double)x[i] * x[i];
    s = block_sumd(s);
    float nrm = (float)sqrt(s), inv = 1.0f / ((nrm > eps || nrm != nrm) ? nrm : eps);
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) y[i] = x[i] * inv;
}
__global__ void k_l2n_back(int64_t D, const float *X, const float *DY, float *DX, float eps) {
    int64_t r = blockIdx.x;
    const float *x = X + r * D, *dy = DY + r * D;
    float *dx = DX + r * D;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += (double)x[i] * x[i];
    s = block_sumd(s);
    float nrm = (float)sqrt(s);
    if (nrm <= eps) { for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dx[i] = dy[i] / eps; return; }
    double yd = 0.0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yd += (double)(x[i] / nrm) * dy[i];
    yd = block_sumd(yd);
    float ydf = (float)yd;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dx[i] = (dy[i] - (x[i] / nrm) * ydf) / nrm;
}

// ---------------------------------------------------------------------------------------------
// Conv3d and max pooling
// ---------------------------------------------------------------------------------------------
struct G5 { int64_t N, C, T, H, W, sN, sC, sT, sH, sW; };
struct CP { int64_t kt, kh, kw, st, sh, sw, pt, ph, pw, groups; int layout; };

G5 geom5(const scvrl_tensor *x, int layout) {
    G5 g;
    if (layout == SCVRL_LAYOUT_NCDHW) {
        g.N = x->ne[0]; g.C = x->ne[1]; g.T = x->ne[2]; g.H = x->ne[3]; g.W = x->ne[4];
        g.sN = x->st[0]; g.sC = x->st[1]; g.sT = x->st[2]; g.sH = x->st[3]; g.sW = x->st[4];
    } else {
        g.N = x->ne[0]; g.T = x->ne[1]; g.H = x->ne[2]; g.W = x->ne[3]; g.C = x->ne[4];
        g.sN = x->st[0]; g.sT = x->st[1]; g.sH = x->st[2]; g.sW = x->st[3]; g.sC = x->st[4];
    }
    return g;
}
CP conv_params(const scvrl_tensor *t, const scvrl_tensor *w) {
    CP p;
    p.kt = w->ne[2]; p.kh = w->ne[3]; p.kw = w->ne[4];
    p.st = t->ip[0]; p.sh = t->ip[1]; p.sw = t->ip[2];
    p.pt = t->ip[3]; p.ph = t->ip[4]; p.pw = t->ip[5];
    p.groups = t->ip[6]; p.layout = (int)t->ip[7];
    return p;
}
bool is_dw_last(const CP &p, const G5 &gx, const G5 &gy) {
    return p.layout == SCVRL_LAYOUT_NDHWC && p.groups == gx.C && gy.C == gx.C && gx.sC == 1 && gy.sC == 1;
}

// im2col for samples [n0, n0 + ns): cols[(nl * P + q) * K + k], k = ((ci*kt + a)*kh + b)*kw + e
template <typename TC> __global__ void k_im2col(int64_t total, int64_t n0, G5 gx, G5 gy, CP p, const float *X, TC *cols) {
    int64_t K3 = p.kt * p.kh * p.kw, K = gx.C * K3, P = gy.T * gy.H * gy.W;
    GRID_STRIDE(i, total) {
        int64_t k = i % K, r = i / K, q = r % P, nl = r / P;
        int64_t ci = k / K3, kk = k % K3, a = kk / (p.kh * p.kw), b = (kk / p.kw) % p.kh, e = kk % p.kw;
        int64_t ot = q / (gy.H * gy.W), oh = (q / gy.W) % gy.H, ow = q % gy.W;
        int64_t it = ot * p.st - p.pt + a, ih = oh * p.sh - p.ph + b, iw = ow * p.sw - p.pw + e;
        bool ok = it >= 0 && it < gx.T && ih >= 0 && ih < gx.H && iw >= 0 && iw < gx.W;
        stf(cols + i, ok ? X[(n0 + nl) * gx.sN + ci * gx.sC + it * gx.sT + ih * gx.sH + iw * gx.sW] : 0.0f);
    }
}
// The same with a tap table in shared memory (tab[k] = {a, b, e, offset of (ci, a, b, e) from the
// window's corner}) and int arithmetic: a warp per column row (sample, output position), lanes over
// k (coalesced writes, neighbouring k read neighbouring x). The element-per-thread kernel above
// spends its time in 64-bit divisions (6 per element): 9 ms for the MViT-B stem at B56.
// Column row r of samples from n0: its window's first input coordinates (it0, ih0, iw0; negative
// in the padding) and their offset in the input (through its strides).
__device__ __forceinline__ int64_t im2col_origin(int r, int64_t n0, const G5 &gx, const G5 &gy, const CP &p, int *it0, int *ih0, int *iw0) {
    const int YW = (int)gy.W, YH = (int)gy.H, P = (int)(gy.T * gy.H * gy.W);
    int q = r % P, nl = r / P, ow = q % YW, oh = (q / YW) % YH, ot = q / (YW * YH);
    *it0 = ot * (int)p.st - (int)p.pt; *ih0 = oh * (int)p.sh - (int)p.ph; *iw0 = ow * (int)p.sw - (int)p.pw;
    return (n0 + nl) * gx.sN + *it0 * gx.sT + *ih0 * gx.sH + *iw0 * gx.sW;
}
template <typename TC> __global__ void k_im2col_tab(int rows, int K, int Kp, int64_t n0, G5 gx, G5 gy, CP p, const float *X, TC *cols) {
    extern __shared__ int4 tab[];
    const int K3 = (int)(p.kt * p.kh * p.kw), khw = (int)(p.kh * p.kw), kw = (int)p.kw;
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        int ci = k / K3, kk = k % K3, a = kk / khw, b = (kk / kw) % (int)p.kh, e = kk % kw;
        tab[k] = make_int4(a, b, e, (int)(ci * gx.sC + a * gx.sT + b * gx.sH + e * gx.sW));
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    const unsigned XT = (unsigned)gx.T, XH = (unsigned)gx.H, XW = (unsigned)gx.W;
    for (int r = blockIdx.x * nw + (threadIdx.x >> 5); r < rows; r += gridDim.x * nw) {
        int it0, ih0, iw0;
        const int64_t base = im2col_origin(r, n0, gx, gy, p, &it0, &ih0, &iw0);
        TC *cr = cols + (int64_t)r * Kp;
        for (int k = lane; k < Kp; k += 32) {
            if (k >= K) { stf(cr + k, 0.0f); continue; }      // row padding (bf16 rows of a multiple of 8)
            int4 t = tab[k];
            bool ok = (unsigned)(it0 + t.x) < XT && (unsigned)(ih0 + t.y) < XH && (unsigned)(iw0 + t.z) < XW;
            stf(cr + k, ok ? X[base + t.w] : 0.0f);
        }
    }
}
// The same columns two entries a lane (one 4-byte bf16 pair or 8-byte float pair store; Kp even):
// rows whose window lies inside the input (all but the padded border: 97% of MViT's stem) read the
// tap offsets alone from shared memory, with no bounds tests; border rows test each tap as above.
// The tap-table kernel issued ~15 instructions an entry (the stem's im2col was 85% of its conv,
// instruction-bound at 100% occupancy). SCVRL_CUDA_I2C=tab keeps it.
template <typename TC> __device__ __forceinline__ void st2f(TC *p, float a, float b);
template <> __device__ __forceinline__ void st2f<float>(float *p, float a, float b) { *(float2 *)p = make_float2(a, b); }
template <> __device__ __forceinline__ void st2f<bf16>(bf16 *p, float a, float b) { *(uint32_t *)p = bf_pack(a, b); }
template <typename TC> __global__ void k_im2col_pair(int rows, int K, int Kp, int64_t n0, G5 gx, G5 gy, CP p, const float *X, TC *cols) {
    extern __shared__ int4 tab[];                  // [Kp] taps (a, b, e, offset), then [Kp] offsets alone
    int *off = (int *)(tab + Kp);
    const int K3 = (int)(p.kt * p.kh * p.kw), khw = (int)(p.kh * p.kw), kw = (int)p.kw;
    for (int k = threadIdx.x; k < Kp; k += blockDim.x) {
        int ci = k / K3, kk = k % K3, a = kk / khw, b = (kk / kw) % (int)p.kh, e = kk % kw;
        int o = k < K ? (int)(ci * gx.sC + a * gx.sT + b * gx.sH + e * gx.sW) : 0;
        tab[k] = make_int4(a, b, e, o);
        off[k] = o;
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    const int XT = (int)gx.T, XH = (int)gx.H, XW = (int)gx.W;
    for (int r = blockIdx.x * nw + (threadIdx.x >> 5); r < rows; r += gridDim.x * nw) {
        int it0, ih0, iw0;
        const float *xr = X + im2col_origin(r, n0, gx, gy, p, &it0, &ih0, &iw0);
        TC *cr = cols + (int64_t)r * Kp;
        if (it0 >= 0 && it0 + (int)p.kt <= XT && ih0 >= 0 && ih0 + (int)p.kh <= XH && iw0 >= 0 && iw0 + kw <= XW) {
            for (int k = 2 * lane; k < Kp; k += 64) {
                int2 o = *(const int2 *)(off + k);
                st2f(cr + k, k < K ? xr[o.x] : 0.0f, k + 1 < K ? xr[o.y] : 0.0f);
            }
        } else {
            for (int k = 2 * lane; k < Kp; k += 64) {
                float v[2];
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    int4 t = tab[k + j];
                    bool ok = k + j < K && (unsigned)(it0 + t.x) < (unsigned)XT && (unsigned)(ih0 + t.y) < (unsigned)XH &&
                              (unsigned)(iw0 + t.z) < (unsigned)XW;
                    v[j] = ok ? xr[t.w] : 0.0f;
                }
                st2f(cr + k, v[0], v[1]);
            }
        }
    }
}
bool im2col_pair_on() { const char *e = getenv("SCVRL_CUDA_I2C"); return !(e && !strcmp(e, "tab")); }
// col2im by gathering: each input element sums the column entries that read it.
__global__ void k_col2im(int64_t total, int64_t n0, G5 gx, G5 gy, CP p, const float *dcols, float *DX) {
    int64_t K3 = p.kt * p.kh * p.kw, K = gx.C * K3, P = gy.T * gy.H * gy.W;
    GRID_STRIDE(i, total) {
        int64_t iw = i % gx.W, r = i / gx.W, ih = r % gx.H; r /= gx.H;
        int64_t it = r % gx.T; r /= gx.T;
        int64_t ci = r % gx.C, nl = r / gx.C;
        float acc = 0.0f;
        for (int64_t a = 0; a < p.kt; a++) {
            int64_t tt = it + p.pt - a;
            if (tt < 0 || tt % p.st || tt / p.st >= gy.T) continue;
            for (int64_t b = 0; b < p.kh; b++) {
                int64_t hh = ih + p.ph - b;
                if (hh < 0 || hh % p.sh || hh / p.sh >= gy.H) continue;
                for (int64_t e = 0; e < p.kw; e++) {
                    int64_t ww = iw + p.pw - e;
                    if (ww < 0 || ww % p.sw || ww / p.sw >= gy.W) continue;
                    int64_t q = ((tt / p.st) * gy.H + hh / p.sh) * gy.W + ww / p.sw;
                    acc += dcols[(nl * P + q) * K + ci * K3 + (a * p.kh + b) * p.kw + e];
                }
            }
        }
        DX[(n0 + nl) * gx.sN + ci * gx.sC + it * gx.sT + ih * gx.sH + iw * gx.sW] = acc;
    }
}

// Depthwise channels-last (the MViT pooling conv): thread per output element, channel fastest.
// Depthwise channels-last (MViT's pooling conv): a thread per output (forward) or input (backward,
// a gather: only the kernel taps whose stride divides the distance are visited). Coordinates are
// ints, the element index of type I (uint32_t when the tensor has < 2^31 elements).
template <typename I> __global__ void k_dw_fwd(I total, G5 gx, G5 gy, CP p, const float *X, const float *Wt, const float *bias, float *Y) {
    const int C = (int)gx.C, kt = (int)p.kt, kh = (int)p.kh, kw = (int)p.kw, K3 = kt * kh * kw;
    const int XT = (int)gx.T, XH = (int)gx.H, XW = (int)gx.W;
    GRID_STRIDE_T(I, i, total) {
        I r = i / (I)C;
        int c = (int)(i % (I)C), ow = (int)(r % (I)gy.W); r /= (I)gy.W;
        int oh = (int)(r % (I)gy.H); r /= (I)gy.H;
        int ot = (int)(r % (I)gy.T);
        int64_t n = (int64_t)(r / (I)gy.T);
        float acc = bias ? bias[c] : 0.0f;
        const float *w = Wt + c * K3, *xn = X + n * gx.sN + c;
        for (int a = 0; a < kt; a++) {
            int it = ot * (int)p.st - (int)p.pt + a;
            if (it < 0 || it >= XT) continue;
            for (int b = 0; b < kh; b++) {
                int ih = oh * (int)p.sh - (int)p.ph + b;
                if (ih < 0 || ih >= XH) continue;
                const float *xr = xn + it * gx.sT + ih * gx.sH;
                for (int e = 0; e < kw; e++) {
                    int iw = ow * (int)p.sw - (int)p.pw + e;
                    if (iw < 0 || iw >= XW) continue;
                    acc += xr[iw * gx.sW] * w[(a * kh + b) * kw + e];
                }
            }
        }
        Y[n * gy.sN + ot * gy.sT + oh * gy.sH + ow * gy.sW + c] = acc;
    }
}
template <typename I> __global__ void k_dw_back_x(I total, G5 gx, G5 gy, CP p, const float *DY, const float *Wt, float *DX) {
    const int C = (int)gx.C, kt = (int)p.kt, kh = (int)p.kh, kw = (int)p.kw, K3 = kt * kh * kw;
    const int st = (int)p.st, sh = (int)p.sh, sw = (int)p.sw, YT = (int)gy.T, YH = (int)gy.H, YW = (int)gy.W;
    GRID_STRIDE_T(I, i, total) {
        I r = i / (I)C;
        int c = (int)(i % (I)C), iw = (int)(r % (I)gx.W); r /= (I)gx.W;
        int ih = (int)(r % (I)gx.H); r /= (I)gx.H;
        int it = (int)(r % (I)gx.T);
        int64_t n = (int64_t)(r / (I)gx.T);
        const float *w = Wt + c * K3, *dyn = DY + n * gy.sN + c;
        float acc = 0.0f;
        int ut = it + (int)p.pt, uh = ih + (int)p.ph, uw = iw + (int)p.pw;     // >= 0
        for (int a = ut % st; a < kt && a <= ut; a += st) {
            int tt = (ut - a) / st;
            if (tt >= YT) continue;
            for (int b = uh % sh; b < kh && b <= uh; b += sh) {
                int hh = (uh - b) / sh;
                if (hh >= YH) continue;
                const float *dyr = dyn + tt * gy.sT + hh * gy.sH;
                for (int e = uw % sw; e < kw && e <= uw; e += sw) {
                    int ww = (uw - e) / sw;
                    if (ww >= YW) continue;
                    acc += dyr[ww * gy.sW] * w[(a * kh + b) * kw + e];
                }
            }
        }
        DX[n * gx.sN + it * gx.sT + ih * gx.sH + iw * gx.sW + c] = acc;
    }
}
// Depthwise channels-last, kernel KT x KH x KW (MViT: 3x3x3), VW channels per thread (4: float4
// loads and stores when C, every stride and both pointers are multiples of 4 floats; else 1): a
// flat thread index over (position, channel group), the grid a multiple of C / VW so that a thread
// keeps its group and its K3 x VW weights in registers over its whole grid-stride loop (read in
// place they are K3 words apart across the lanes), one wave of blocks, int offsets (spans < 2^31,
// checked on the host), grid positions by multiply-high division, the taps unrolled with their
// bounds as predicates. With VW = 4 a warp instruction serves 128 channel positions: the index
// arithmetic and the load instructions, not the bytes, bounded the one-channel kernels (MViT-B's
// stage-2 K/V backward-x: 2 ms for 308 MB written). The sums run over the taps in the element-
// per-thread kernels' order (the same bits per channel).
// Division by a runtime constant d as a multiply-high, add and shift (n < 2^31): s = ceil(log2 d),
// m = floor(2^32 (2^s - d) / d) + 1, n / d = (umulhi(n, m) + n) >> s (checked for every d < 2000
// and MViT's grid sizes against plain division). A 32-bit division is ~20 instructions.
struct FDiv { uint32_t d, m, s; };
FDiv fdiv_of(uint32_t d) {
    uint32_t s = 0;
    while (((uint64_t)1 << s) < d) s++;
    return FDiv{ d, (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << s) - d)) / d + 1), s };
}
__device__ __forceinline__ int fdiv(int n, const FDiv &f) { return (int)((__umulhi((uint32_t)n, f.m) + (uint32_t)n) >> f.s); }
struct DwI {
    int XT, XH, XW, YT, YH, YW, xsN, xsT, xsH, xsW, ysN, ysT, ysH, ysW, st, sh, sw, pt, ph, pw;
    FDiv fXT, fXH, fXW, fYT, fYH, fYW;
};
DwI dw_ints(const G5 &gx, const G5 &gy, const CP &p) {
    return DwI{ (int)gx.T, (int)gx.H, (int)gx.W, (int)gy.T, (int)gy.H, (int)gy.W, (int)gx.sN, (int)gx.sT, (int)gx.sH,
                (int)gx.sW, (int)gy.sN, (int)gy.sT, (int)gy.sH, (int)gy.sW, (int)p.st, (int)p.sh, (int)p.sw, (int)p.pt,
                (int)p.ph, (int)p.pw, fdiv_of((uint32_t)gx.T), fdiv_of((uint32_t)gx.H), fdiv_of((uint32_t)gx.W),
                fdiv_of((uint32_t)gy.T), fdiv_of((uint32_t)gy.H), fdiv_of((uint32_t)gy.W) };
}
// Position q of a [N, T, H, W] grid: (n, t, h, w) with three fast divisions.
__device__ __forceinline__ void grid_pos(int q, const FDiv &fT, const FDiv &fH, const FDiv &fW, int *n, int *t, int *h, int *w) {
    int r = fdiv(q, fW);
    *w = q - r * (int)fW.d;
    int r2 = fdiv(r, fH);
    *h = r - r2 * (int)fH.d;
    *n = fdiv(r2, fT);
    *t = r2 - *n * (int)fT.d;
}
// One dim of the backward gather: does tap a of the padded input coordinate u hit an output (which).
__device__ __forceinline__ bool dw_hit(int u, int a, int s, int Y, int *o) {
    int t = u - a;
    *o = t / s;
    return t >= 0 && t - *o * s == 0 && *o < Y;
}
template <int VW> struct DwV;
template <> struct DwV<1> {
    typedef float T;
    template <typename E> static __device__ __forceinline__ T ld(const E *p) { return ldf(p); }
    template <typename E> static __device__ __forceinline__ void st(E *p, T v) { stf(p, v); }
    static __device__ __forceinline__ void fma(T &a, T x, T w) { a += x * w; }
    static __device__ __forceinline__ T gather(const float *p, int step) { return p[0]; }
    static __device__ __forceinline__ T zero() { return 0.0f; }
    static __device__ __forceinline__ float get(T v, int i) { return v; }
};
template <> struct DwV<2> {
    typedef float2 T;
    template <typename E> static __device__ __forceinline__ T ld(const E *p) { return ld2f(p); }
    static __device__ __forceinline__ void fma(T &a, T x, T w) { a.x += x.x * w.x; a.y += x.y * w.y; }
    static __device__ __forceinline__ T zero() { return make_float2(0.0f, 0.0f); }
    static __device__ __forceinline__ float get(T v, int i) { return i ? v.y : v.x; }
};
template <> struct DwV<4> {
    typedef float4 T;
    template <typename E> static __device__ __forceinline__ T ld(const E *p) { return ld4f(p); }
    template <typename E> static __device__ __forceinline__ void st(E *p, T v) { st4f(p, v); }
    static __device__ __forceinline__ void fma(T &a, T x, T w) { a.x += x.x * w.x; a.y += x.y * w.y; a.z += x.z * w.z; a.w += x.w * w.w; }
    static __device__ __forceinline__ T gather(const float *p, int step) { return make_float4(p[0], p[step], p[2 * step], p[3 * step]); }
    static __device__ __forceinline__ T zero() { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
    static __device__ __forceinline__ float get(T v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
};
// WL: the weights are read at each use from a transposed copy [K3][C] (through L1) instead of kept
// in registers (27 x VW of them: 170-180 registers a thread at VW = 4, two blocks per SM).
template <int KT, int KH, int KW, int VW, typename TI = float, typename TO = float, bool WL = false>
__global__ void __launch_bounds__(128) k_dw_fwd_vec(int npos, int CV, DwI d, const TI *X, const float *Wt, const float *bias, TO *Y) {
    typedef DwV<VW> V;
    constexpr int K3 = KT * KH * KW;
    const int tid = blockIdx.x * blockDim.x + threadIdx.x, c = (tid % CV) * VW, pstep = gridDim.x * blockDim.x / CV, C = CV * VW;
    typename V::T w[WL ? 1 : K3];
#pragma unroll
    for (int k = 0; k < (WL ? 0 : K3); k++) w[k] = V::gather(Wt + c * K3 + k, K3);
    const typename V::T b0 = bias ? V::gather(bias + c, 1) : V::zero();
    for (int q = tid / CV; q < npos; q += pstep) {
        int n, ot, oh, ow;
        grid_pos(q, d.fYT, d.fYH, d.fYW, &n, &ot, &oh, &ow);
        int it0 = ot * d.st - d.pt, ih0 = oh * d.sh - d.ph, iw0 = ow * d.sw - d.pw;
        const TI *xn = X + n * d.xsN + c;
        typename V::T acc = b0;
#pragma unroll
        for (int a = 0; a < KT; a++) {
            const bool ta = (unsigned)(it0 + a) < (unsigned)d.XT;
#pragma unroll
            for (int b = 0; b < KH; b++) {
                const bool tb = ta && (unsigned)(ih0 + b) < (unsigned)d.XH;
#pragma unroll
                for (int e = 0; e < KW; e++)
                    if (tb && (unsigned)(iw0 + e) < (unsigned)d.XW)
                        V::fma(acc, V::ld(xn + (it0 + a) * d.xsT + (ih0 + b) * d.xsH + (iw0 + e) * d.xsW),
                               WL ? V::ld(Wt + ((a * KH + b) * KW + e) * C + c) : w[WL ? 0 : (a * KH + b) * KW + e]);
            }
        }
        V::st(Y + n * d.ysN + ot * d.ysT + oh * d.ysH + ow * d.ysW + c, acc);
    }
}
// The 27 taps of a time column (one sample, row, column and channel group, all TT frames): each
// input plane loaded once feeds the three outputs it + 1 - kt it touches, weights from the
// transposed copy [27][C], per output the taps summed in (kh, kw, kt) order.
template <int TT, int VW, typename TI>
__device__ __forceinline__ void dw_tcol_taps(typename DwV<VW>::T (&acc)[TT], const TI *xn, const float *Wt, int C, int c, int ih0, int iw0,
                                             const DwI &d) {
    typedef DwV<VW> V;
#pragma unroll
    for (int b = 0; b < 3; b++) {
        if ((unsigned)(ih0 + b) >= (unsigned)d.XH) continue;
#pragma unroll
        for (int e = 0; e < 3; e++) {
            if ((unsigned)(iw0 + e) >= (unsigned)d.XW) continue;
            const typename V::T w0 = V::ld(Wt + (b * 3 + e) * C + c), w1 = V::ld(Wt + (9 + b * 3 + e) * C + c),
                                w2 = V::ld(Wt + (18 + b * 3 + e) * C + c);
            const TI *xp = xn + (ih0 + b) * d.xsH + (iw0 + e) * d.xsW;
#pragma unroll
            for (int it = 0; it < TT; it++) {
                const typename V::T v = V::ld(xp + it * d.xsT);
                if (it + 1 < TT) V::fma(acc[it + 1], v, w0);
                V::fma(acc[it], v, w1);
                if (it >= 1) V::fma(acc[it - 1], v, w2);
            }
        }
    }
}
// The same conv for 3x3x3 taps with temporal stride 1, padding 1 and TT frames in and out (MViT's
// pools: T = 8 at 16 frames): a thread owns one (sample, row, column, channel group) and all TT
// outputs along time, so that each input plane it reads feeds the three outputs it + 1 - kt (kt =
// 0..2) it touches: 9 (TT + 3) loads for TT outputs instead of 54 TT (27 inputs and 27 weights
// each), read through L2 about 3x less (its bound: each input is otherwise re-read by ~3 outputs of a
// stride-2 pool, ~27 of a stride-1 one). Weights from the transposed copy [27][C]; per output the
// taps are summed in (kh, kw, kt) order, not (kt, kh, kw): the last bits can differ from the CPU.
template <int TT, int VW, typename TI = float, typename TO = float>
__global__ void __launch_bounds__(128) k_dw_fwd_tcol(int npos, int CV, DwI d, const TI *X, const float *Wt, const float *bias, TO *Y) {
    typedef DwV<VW> V;
    const int tid = blockIdx.x * blockDim.x + threadIdx.x, c = (tid % CV) * VW, pstep = gridDim.x * blockDim.x / CV, C = CV * VW;
    const typename V::T b0 = bias ? V::gather(bias + c, 1) : V::zero();
    for (int q = tid / CV; q < npos; q += pstep) {
        int r = fdiv(q, d.fYW), ow = q - r * d.YW, n = fdiv(r, d.fYH), oh = r - n * d.YH;
        const int ih0 = oh * d.sh - d.ph, iw0 = ow * d.sw - d.pw;
        const TI *xn = X + n * d.xsN + c;
        typename V::T acc[TT];
#pragma unroll
        for (int t = 0; t < TT; t++) acc[t] = b0;
        dw_tcol_taps<TT, VW>(acc, xn, Wt, C, c, ih0, iw0, d);
        TO *yp = Y + n * d.ysN + oh * d.ysH + ow * d.ysW + c;
#pragma unroll
        for (int t = 0; t < TT; t++) V::st(yp + t * d.ysT, acc[t]);
    }
}
// MViT's pool, LN_d(concat(CLS, conv(x))) per head, in one kernel (op_pool_norm): the time-column
// depthwise conv above (a thread owns a column's TT frames for four channels) with the layer norm
// over each head's d channels done in the block. A block holds P columns x all C channels (CV = C/4
// threads a column); each output is rounded to the concat's storage type TY as the separate conv
// stores it, written there when Raw is set (training: the norm's backward reads the concat), and
// every (frame, column, head) row is normalised with double statistics (mean, then the squares
// about it, as k_layer_norm_v4) summed from per-thread partials in a fixed order in shared memory.
// Y: the norm's output at the first grid row (the CLS row is k_cls_norm's), strides ys*.
template <typename T> __device__ __forceinline__ float4 round_as(float4 v) { return v; }
template <> __device__ __forceinline__ float4 round_as<bf16>(float4 v) {
    uint2 u = make_uint2(bf_pack(v.x, v.y), bf_pack(v.z, v.w));
    return make_float4(bf_lo(u.x), bf_hi(u.x), bf_lo(u.y), bf_hi(u.y));
}
struct PoolNormY { int64_t sN, sT, sH, sW; };
template <int TT, typename TY>
__global__ void __launch_bounds__(256) k_dw_pool_norm(int npos, int CV, int d4, DwI d, const TY *X, const float *Wt, TY *Raw,
                                                      const float *LW, const float *LB, float eps, TY *Y, PoolNormY ys) {
    extern __shared__ double pn_sm[];
    const int P = blockDim.x / CV, pl = threadIdx.x / CV, cg = threadIdx.x % CV, c = 4 * cg, C = 4 * CV, nh = CV / d4;
    double *part = pn_sm;                                          // [P][TT][CV]
    float *mu = (float *)(pn_sm + P * TT * CV), *rs = mu + P * TT * nh;   // [P][TT][heads]
    const int q = blockIdx.x * P + pl;
    const bool live = pl < P && q < npos;
    float4 acc[TT];
#pragma unroll
    for (int t = 0; t < TT; t++) acc[t] = make_float4(0.f, 0.f, 0.f, 0.f);
    int n = 0, oh = 0, ow = 0;
    if (live) {
        int r = fdiv(q, d.fYW);
        ow = q - r * d.YW; n = fdiv(r, d.fYH); oh = r - n * d.YH;
        const int ih0 = oh * d.sh - d.ph, iw0 = ow * d.sw - d.pw;
        dw_tcol_taps<TT, 4>(acc, X + n * d.xsN + c, Wt, C, c, ih0, iw0, d);
    }
#pragma unroll
    for (int t = 0; t < TT; t++) {
        acc[t] = round_as<TY>(acc[t]);
        if (live && Raw) st4f(Raw + n * d.ysN + t * d.ysT + oh * d.ysH + ow * d.ysW + c, acc[t]);
        if (pl < P) part[(pl * TT + t) * CV + cg] = (double)acc[t].x + (double)acc[t].y + (double)acc[t].z + (double)acc[t].w;
    }
    __syncthreads();
    for (int k = threadIdx.x; k < P * TT * nh; k += blockDim.x) {      // k = (pl, t, head)
        const double *pp = part + (k / nh) * CV + (k % nh) * d4;
        double sum = 0.0;
        for (int j = 0; j < d4; j++) sum += pp[j];
        mu[k] = (float)(sum / (double)(4 * d4));
    }
    __syncthreads();
    const int hd = cg / d4;
#pragma unroll
    for (int t = 0; t < TT; t++)
        if (pl < P) {
            const double m = mu[(pl * TT + t) * nh + hd], a = (double)acc[t].x - m, b = (double)acc[t].y - m, e = (double)acc[t].z - m,
                         f = (double)acc[t].w - m;
            part[(pl * TT + t) * CV + cg] = a * a + b * b + e * e + f * f;
        }
    __syncthreads();
    for (int k = threadIdx.x; k < P * TT * nh; k += blockDim.x) {
        const double *pp = part + (k / nh) * CV + (k % nh) * d4;
        double sq = 0.0;
        for (int j = 0; j < d4; j++) sq += pp[j];
        rs[k] = (float)(1.0 / sqrt(sq / (double)(4 * d4) + (double)eps));
    }
    __syncthreads();
    if (!live) return;
    const int cw = 4 * (cg % d4);
    const float4 w = LW ? ld4f(LW + cw) : make_float4(1.f, 1.f, 1.f, 1.f), b = LB ? ld4f(LB + cw) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int t = 0; t < TT; t++) {
        const float m = mu[(pl * TT + t) * nh + hd], r = rs[(pl * TT + t) * nh + hd];
        const float4 v = acc[t];
        st4f(Y + n * ys.sN + t * ys.sT + oh * ys.sH + ow * ys.sW + c,
             make_float4((v.x - m) * r * w.x + b.x, (v.y - m) * r * w.y + b.y, (v.z - m) * r * w.z + b.z, (v.w - m) * r * w.w + b.w));
    }
}
// The CLS rows of such a pool: a warp per (sample, head) reads the row (X + n xsN, d values of each
// head side by side), rounds it to TY as the concat's copy does, writes it to Raw (when set) and
// its layer norm to Y (row strides rsN and ysN), double statistics as k_layer_norm_v4.
template <typename TY>
__global__ void k_cls_norm(int rows, int nh, int d, const TY *X, int64_t xsN, TY *Raw, int64_t rsN, const float *LW, const float *LB,
                           float eps, TY *Y, int64_t ysN) {
    const int r = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const int n = r / nh, c0 = (r % nh) * d;
    double s = 0.0, q = 0.0;
    for (int i = lane; i < d; i += 32) s += (double)ldf(X + n * xsN + c0 + i);
    const float m = (float)(warp_sumd(s) / (double)d);
    for (int i = lane; i < d; i += 32) { double a = (double)ldf(X + n * xsN + c0 + i) - m; q += a * a; }
    const float rsd = (float)(1.0 / sqrt(warp_sumd(q) / (double)d + (double)eps));
    for (int i = lane; i < d; i += 32) {
        const float v = ldf(X + n * xsN + c0 + i);
        if (Raw) stf(Raw + n * rsN + c0 + i, v);
        stf(Y + n * ysN + c0 + i, (v - m) * rsd * (LW ? LW[i] : 1.0f) + (LB ? LB[i] : 0.0f));
    }
}
// ST, SS: the temporal and spatial (height = width) strides as constants (divisions become shifts);
// 0: read from d at run time.
template <int KT, int KH, int KW, int VW, int ST, int SS, bool WL = false>
__global__ void __launch_bounds__(128) k_dw_back_x_vec(int npos, int CV, DwI d, const float *DY, const float *Wt, float *DX) {
    typedef DwV<VW> V;
    constexpr int K3 = KT * KH * KW;
    const int tid = blockIdx.x * blockDim.x + threadIdx.x, c = (tid % CV) * VW, pstep = gridDim.x * blockDim.x / CV, C = CV * VW;
    const int st = ST ? ST : d.st, sh = SS ? SS : d.sh, sw = SS ? SS : d.sw;
    typename V::T w[WL ? 1 : K3];
#pragma unroll
    for (int k = 0; k < (WL ? 0 : K3); k++) w[k] = V::gather(Wt + c * K3 + k, K3);
    for (int q = tid / CV; q < npos; q += pstep) {
        int n, it, ih, iw;
        grid_pos(q, d.fXT, d.fXH, d.fXW, &n, &it, &ih, &iw);
        const int ut = it + d.pt, uh = ih + d.ph, uw = iw + d.pw;
        const float *dyn = DY + n * d.ysN + c;
        int tt[KT], hh[KH], ww[KW];
        bool vt[KT], vh[KH], vw[KW];
#pragma unroll
        for (int a = 0; a < KT; a++) vt[a] = dw_hit(ut, a, st, d.YT, &tt[a]);
#pragma unroll
        for (int b = 0; b < KH; b++) vh[b] = dw_hit(uh, b, sh, d.YH, &hh[b]);
#pragma unroll
        for (int e = 0; e < KW; e++) vw[e] = dw_hit(uw, e, sw, d.YW, &ww[e]);
        typename V::T acc = V::zero();
#pragma unroll
        for (int a = 0; a < KT; a++)
#pragma unroll
            for (int b = 0; b < KH; b++)
#pragma unroll
                for (int e = 0; e < KW; e++)
                    if (vt[a] && vh[b] && vw[e])
                        V::fma(acc, V::ld(dyn + tt[a] * d.ysT + hh[b] * d.ysH + ww[e] * d.ysW),
                               WL ? V::ld(Wt + ((a * KH + b) * KW + e) * C + c) : w[WL ? 0 : (a * KH + b) * KW + e]);
        V::st(DX + n * d.xsN + it * d.xsT + ih * d.xsH + iw * d.xsW + c, acc);
    }
}
// The backward-x of the same 3x3x3 convs (temporal stride 1, padding 1, TT frames) by time
// columns: a thread owns VW channels of one (sample, row, column) of the input and its TT frames;
// each dY column it reaches through a spatial tap (kh, kw) is loaded once and feeds the three
// temporal taps (dx[it] += dy[ot] w[kt] with it = ot - 1 + kt): TT loads a spatial hit instead of
// 3 TT. SS: the spatial stride (height = width) as a constant, 0: from d. Weights from the
// transposed copy [27][C]; taps summed in (kh, kw, kt) order.
template <int TT, int VW, int SS, typename TO = float>
__global__ void __launch_bounds__(128) k_dw_back_x_tcol(int npos, int CV, DwI d, const float *DY, const float *Wt, TO *DX) {
    typedef DwV<VW> V;
    const int tid = blockIdx.x * blockDim.x + threadIdx.x, c = (tid % CV) * VW, pstep = gridDim.x * blockDim.x / CV, C = CV * VW;
    const int sh = SS ? SS : d.sh, sw = SS ? SS : d.sw;
    for (int q = tid / CV; q < npos; q += pstep) {
        int r = fdiv(q, d.fXW), iw = q - r * d.XW, n = fdiv(r, d.fXH), ih = r - n * d.XH;
        const float *dyn = DY + n * d.ysN + c;
        typename V::T acc[TT];
#pragma unroll
        for (int t = 0; t < TT; t++) acc[t] = V::zero();
#pragma unroll
        for (int b = 0; b < 3; b++) {
            int oh;
            if (!dw_hit(ih + d.ph, b, sh, d.YH, &oh)) continue;
#pragma unroll
            for (int e = 0; e < 3; e++) {
                int ow;
                if (!dw_hit(iw + d.pw, e, sw, d.YW, &ow)) continue;
                const typename V::T w0 = V::ld(Wt + (b * 3 + e) * C + c), w1 = V::ld(Wt + (9 + b * 3 + e) * C + c),
                                    w2 = V::ld(Wt + (18 + b * 3 + e) * C + c);
                const float *dp = dyn + oh * d.ysH + ow * d.ysW;
#pragma unroll
                for (int ot = 0; ot < TT; ot++) {
                    const typename V::T v = V::ld(dp + ot * d.ysT);
                    if (ot >= 1) V::fma(acc[ot - 1], v, w0);
                    V::fma(acc[ot], v, w1);
                    if (ot + 1 < TT) V::fma(acc[ot + 1], v, w2);
                }
            }
        }
        TO *xp = DX + n * d.xsN + ih * d.xsH + iw * d.xsW + c;
#pragma unroll
        for (int t = 0; t < TT; t++) V::st(xp + t * d.xsT, acc[t]);
    }
}
// The weight gradient of the same convs by time columns: a thread owns VW channels of one (sample,
// row, column) of the output at a time with its TT frames: the TT dY values are loaded once, and
// each input plane read through a spatial tap feeds its three temporal taps (9 TT loads of X a
// column instead of 27 TT). A block is R rows of CV threads over a slice of S = CV VW channels
// (blockIdx.y; the last slice may be partial); its rows take the interleaved columns of the block's
// chunk of R per, each row summing in float; then the rows' sums are added in double in row order
// into shared memory (red [27][S]), and the block writes its slice of part[blockIdx.x][27][C]
// (deterministic: the chunks and orders depend only on the shapes).
template <int TT, int VW, typename TX>
__global__ void __launch_bounds__(192) k_dw_back_w_tcol(int ncol, int per, int CV, int C, DwI d, const float *DY, const TX *X, double *part) {
    typedef DwV<VW> V;
    extern __shared__ double red[];
    const int row = threadIdx.x / CV, R = blockDim.x / CV, cs = (threadIdx.x % CV) * VW, S = CV * VW, c0 = blockIdx.y * S, c = c0 + cs;
    const bool on = c < C;
    typename V::T f[27];
#pragma unroll
    for (int k = 0; k < 27; k++) f[k] = V::zero();
    const int q1 = on ? min(ncol, (blockIdx.x + 1) * per * R) : 0;
    for (int q = blockIdx.x * per * R + row; q < q1; q += R) {
        int r = fdiv(q, d.fYW), ow = q - r * d.YW, n = fdiv(r, d.fYH), oh = r - n * d.YH;
        const float *dyp = DY + n * d.ysN + oh * d.ysH + ow * d.ysW + c;
        typename V::T dy[TT];
#pragma unroll
        for (int t = 0; t < TT; t++) dy[t] = V::ld(dyp + t * d.ysT);
        const int ih0 = oh * d.sh - d.ph, iw0 = ow * d.sw - d.pw;
        const TX *xn = X + n * d.xsN + c;
#pragma unroll
        for (int b = 0; b < 3; b++) {
            if ((unsigned)(ih0 + b) >= (unsigned)d.XH) continue;
#pragma unroll
            for (int e = 0; e < 3; e++) {
                if ((unsigned)(iw0 + e) >= (unsigned)d.XW) continue;
                const TX *xp = xn + (ih0 + b) * d.xsH + (iw0 + e) * d.xsW;
#pragma unroll
                for (int it = 0; it < TT; it++) {          // input frame it feeds outputs it + 1 - kt
                    const typename V::T v = V::ld(xp + it * d.xsT);
                    if (it + 1 < TT) V::fma(f[b * 3 + e], v, dy[it + 1]);
                    V::fma(f[9 + b * 3 + e], v, dy[it]);
                    if (it >= 1) V::fma(f[18 + b * 3 + e], v, dy[it - 1]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++) {
        if (row == r)
#pragma unroll
            for (int k = 0; k < 27; k++)
#pragma unroll
                for (int v = 0; v < VW; v++) red[k * S + cs + v] = (r ? red[k * S + cs + v] : 0.0) + (double)V::get(f[k], v);
        __syncthreads();
    }
    const int sw = min(S, C - c0);
    for (int j = threadIdx.x; j < 27 * sw; j += blockDim.x) {
        const int k = j / sw, i = j - k * sw;
        part[((size_t)blockIdx.x * 27 + k) * C + c0 + i] = red[k * S + i];
    }
}
// dw partial sums, any kernel size: thread (chunk, k, c) over the output rows (n, ot, oh) of its
// chunk; double. (The old path: SCVRL_CUDA_CONV=old, and kernels other than 3x3x3.)
__global__ void k_dw_back_w_part(int64_t total, int64_t rows, int64_t rows_per, G5 gx, G5 gy, CP p,
                                 const float *DY, const float *X, double *part) {
    int64_t C = gx.C, K3 = p.kt * p.kh * p.kw;
    GRID_STRIDE(i, total) {
        int64_t c = i % C, k = (i / C) % K3, ch = i / (C * K3);
        int64_t a = k / (p.kh * p.kw), b = (k / p.kw) % p.kh, e = k % p.kw;
        int64_t r0 = ch * rows_per, r1 = r0 + rows_per < rows ? r0 + rows_per : rows;
        double acc = 0.0;
        for (int64_t r = r0; r < r1; r++) {
            int64_t n = r / (gy.T * gy.H), ot = (r / gy.H) % gy.T, oh = r % gy.H;
            int64_t it = ot * p.st - p.pt + a, ih = oh * p.sh - p.ph + b;
            if (it < 0 || it >= gx.T || ih < 0 || ih >= gx.H) continue;
            for (int64_t ow = 0; ow < gy.W; ow++) {
                int64_t iw = ow * p.sw - p.pw + e;
                if (iw < 0 || iw >= gx.W) continue;
                acc += (double)(DY[n * gy.sN + ot * gy.sT + oh * gy.sH + ow * gy.sW + c] *
                                X[n * gx.sN + it * gx.sT + ih * gx.sH + iw * gx.sW + c]);
            }
        }
        part[i] = acc;
    }
}
// dw partial sums, 3x3x3 (every MViT pooling conv): a block of 32 channel lanes x 4 warps per
// (chunk of output positions, slice of 32 channels); each lane keeps the 27 taps' sums of its
// channel in registers (dY read once per position instead of once per tap), float over 16 positions
// then double; the 4 warps' sums are added in a fixed order into part[ch][k][c] (deterministic).
// Int offsets: both tensors have < 2^31 elements (checked on the host).
#define DWW_WARPS 4
template <int KT, int KH, int KW, typename TX>
__global__ void __launch_bounds__(32 * DWW_WARPS, 5) k_dw_back_w_taps(int npos, int per, G5 gx, G5 gy, CP p, const float *DY,
                                                                  const TX *X, double *part, FDiv fYT, FDiv fYH, FDiv fYW) {
    constexpr int K3 = KT * KH * KW;
    __shared__ double red[DWW_WARPS][K3][32];
    const int lane = threadIdx.x, wy = threadIdx.y, C = (int)gx.C, c = blockIdx.y * 32 + lane;
    const bool cok = c < C;
    const int XT = (int)gx.T, XH = (int)gx.H, XW = (int)gx.W;
    const int xsN = (int)gx.sN, xsT = (int)gx.sT, xsH = (int)gx.sH, xsW = (int)gx.sW;
    const int ysN = (int)gy.sN, ysT = (int)gy.sT, ysH = (int)gy.sH, ysW = (int)gy.sW;
    const int q0 = blockIdx.x * per, q1 = min(q0 + per, npos);
    // float sums over 16 positions, then into the warp's double sums in shared memory (kept there,
    // not in 54 more registers: 128 -> fewer registers, more blocks per SM; the same additions)
    float f[K3];
#pragma unroll
    for (int k = 0; k < K3; k++) { f[k] = 0.0f; red[wy][k][lane] = 0.0; }
    int cnt = 0;
    for (int q = q0 + wy; q < q1; q += DWW_WARPS) {
        int n, ot, oh, ow;
        grid_pos(q, fYT, fYH, fYW, &n, &ot, &oh, &ow);
        float dy = cok ? DY[n * ysN + ot * ysT + oh * ysH + ow * ysW + c] : 0.0f;
        int it0 = ot * (int)p.st - (int)p.pt, ih0 = oh * (int)p.sh - (int)p.ph, iw0 = ow * (int)p.sw - (int)p.pw;
        const TX *xn = X + n * xsN + (cok ? c : 0);
#pragma unroll
        for (int a = 0; a < KT; a++) {
            const bool ta = it0 + a >= 0 && it0 + a < XT;
#pragma unroll
            for (int b = 0; b < KH; b++) {
                const bool tb = ta && ih0 + b >= 0 && ih0 + b < XH;
#pragma unroll
                for (int e = 0; e < KW; e++) {
                    if (tb && iw0 + e >= 0 && iw0 + e < XW)
                        f[(a * KH + b) * KW + e] += dy * ldf(xn + (it0 + a) * xsT + (ih0 + b) * xsH + (iw0 + e) * xsW);
                }
            }
        }
        if (++cnt == 16) {
#pragma unroll
            for (int k = 0; k < K3; k++) { red[wy][k][lane] += (double)f[k]; f[k] = 0.0f; }
            cnt = 0;
        }
    }
#pragma unroll
    for (int k = 0; k < K3; k++) red[wy][k][lane] += (double)f[k];
    __syncthreads();
    for (int k = wy; k < K3; k += DWW_WARPS) {
        double s = 0.0;
#pragma unroll
        for (int w = 0; w < DWW_WARPS; w++) s += red[w][k][lane];
        if (cok) part[((size_t)blockIdx.x * K3 + k) * C + c] = s;
    }
}
__global__ void k_dw_back_w_final(int64_t C, int64_t K3, int64_t nch, const double *part, float *DW) {
    GRID_STRIDE(j, C * K3) {
        int64_t c = j % C, k = j / C;
        double s = 0.0;
        for (int64_t ch = 0; ch < nch; ch++) s += part[ch * C * K3 + j];
        DW[c * K3 + k] = (float)s;
    }
}

// Direct convolution, any groups and layout (the simple path).
__global__ void k_conv_direct(int64_t total, G5 gx, G5 gy, CP p, const float *X, const float *Wt, const float *bias, float *Y) {
    int64_t cin_g = gx.C / p.groups, cout_g = gy.C / p.groups;
    GRID_STRIDE(i, total) {
        int64_t ow = i % gy.W, r = i / gy.W, oh = r % gy.H; r /= gy.H;
        int64_t ot = r % gy.T; r /= gy.T;
        int64_t co = r % gy.C, n = r / gy.C, grp = co / cout_g;
        const float *wc = Wt + co * cin_g * p.kt * p.kh * p.kw;
        float acc = bias ? bias[co] : 0.0f;
        for (int64_t ci = 0; ci < cin_g; ci++) {
            const float *xc = X + n * gx.sN + (grp * cin_g + ci) * gx.sC;
            for (int64_t a = 0; a < p.kt; a++) {
                int64_t it = ot * p.st - p.pt + a;
                for (int64_t b = 0; b < p.kh; b++) {
                    int64_t ih = oh * p.sh - p.ph + b;
                    for (int64_t e = 0; e < p.kw; e++) {
                        int64_t iw = ow * p.sw - p.pw + e;
                        if (it < 0 || it >= gx.T || ih < 0 || ih >= gx.H || iw < 0 || iw >= gx.W) continue;
                        acc += xc[it * gx.sT + ih * gx.sH + iw * gx.sW] * wc[((ci * p.kt + a) * p.kh + b) * p.kw + e];
                    }
                }
            }
        }
        Y[n * gy.sN + co * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW] = acc;
    }
}
__global__ void k_conv_direct_back_x(int64_t total, G5 gx, G5 gy, CP p, const float *DY, const float *Wt, float *DX) {
    int64_t cin_g = gx.C / p.groups, cout_g = gy.C / p.groups;
    GRID_STRIDE(i, total) {
        int64_t iw = i % gx.W, r = i / gx.W, ih = r % gx.H; r /= gx.H;
        int64_t it = r % gx.T; r /= gx.T;
        int64_t cig = r % gx.C, n = r / gx.C, grp = cig / cin_g, ci = cig % cin_g;
        float acc = 0.0f;
        for (int64_t a = 0; a < p.kt; a++) {
            int64_t tt = it + p.pt - a;
            if (tt < 0 || tt % p.st || tt / p.st >= gy.T) continue;
            for (int64_t b = 0; b < p.kh; b++) {
                int64_t hh = ih + p.ph - b;
                if (hh < 0 || hh % p.sh || hh / p.sh >= gy.H) continue;
                for (int64_t e = 0; e < p.kw; e++) {
                    int64_t ww = iw + p.pw - e;
                    if (ww < 0 || ww % p.sw || ww / p.sw >= gy.W) continue;
                    for (int64_t co = grp * cout_g; co < (grp + 1) * cout_g; co++)
                        acc += DY[n * gy.sN + co * gy.sC + (tt / p.st) * gy.sT + (hh / p.sh) * gy.sH + (ww / p.sw) * gy.sW] *
                               Wt[(((co * cin_g + ci) * p.kt + a) * p.kh + b) * p.kw + e];
                }
            }
        }
        DX[n * gx.sN + cig * gx.sC + it * gx.sT + ih * gx.sH + iw * gx.sW] = acc;
    }
}
// One block per weight element; reduction over (n, ot, oh, ow) in double.
__global__ void k_conv_direct_back_w(G5 gx, G5 gy, CP p, const float *DY, const float *X, float *DW) {
    int64_t cin_g = gx.C / p.groups, cout_g = gy.C / p.groups, K3 = p.kt * p.kh * p.kw;
    int64_t wi = blockIdx.x;
    int64_t co = wi / (cin_g * K3), ci = (wi / K3) % cin_g, k = wi % K3;
    int64_t a = k / (p.kh * p.kw), b = (k / p.kw) % p.kh, e = k % p.kw, grp = co / cout_g;
    int64_t npos = gy.N * gy.T * gy.H * gy.W;
    double acc = 0.0;
    for (int64_t q = threadIdx.x; q < npos; q += blockDim.x) {
        int64_t ow = q % gy.W, r = q / gy.W, oh = r % gy.H; r /= gy.H;
        int64_t ot = r % gy.T, n = r / gy.T;
        int64_t it = ot * p.st - p.pt + a, ih = oh * p.sh - p.ph + b, iw = ow * p.sw - p.pw + e;
        if (it < 0 || it >= gx.T || ih < 0 || ih >= gx.H || iw < 0 || iw >= gx.W) continue;
        acc += (double)DY[n * gy.sN + co * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW] *
               X[n * gx.sN + (grp * cin_g + ci) * gx.sC + it * gx.sT + ih * gx.sH + iw * gx.sW];
    }
    acc = block_sumd(acc);
    if (threadIdx.x == 0) DW[wi] = (float)acc;
}

struct PP { int64_t k[3], s[3], p[3]; };
// Window argmax as the CPU (padding skipped; a NaN wins at once), as an offset under the strides of
// go (x's own to read it; the contiguous gradient's in the backward, x may be a strided view).
__device__ __forceinline__ int64_t pool_argmax(const float *x, const G5 &gx, const PP &p, int64_t ot, int64_t oh, int64_t ow,
                                               const G5 &go) {
    int64_t bo = -1; bool found = false; float bv = -INFINITY;
    for (int64_t a = 0; a < p.k[0]; a++) {
        int64_t it = ot * p.s[0] - p.p[0] + a;
        if (it < 0 || it >= gx.T) continue;
        for (int64_t b = 0; b < p.k[1]; b++) {
            int64_t ih = oh * p.s[1] - p.p[1] + b;
            if (ih < 0 || ih >= gx.H) continue;
            for (int64_t e = 0; e < p.k[2]; e++) {
                int64_t iw = ow * p.s[2] - p.p[2] + e;
                if (iw < 0 || iw >= gx.W) continue;
                float v = x[it * gx.sT + ih * gx.sH + iw * gx.sW];
                if (!found || v > bv || v != v) { found = true; bo = it * go.sT + ih * go.sH + iw * go.sW; bv = v; if (v != v) return bo; }
            }
        }
    }
    return bo;
}
// Thread per output. CL (channels-last, unit channel stride): the channel is the fastest index,
// so neighbouring threads read neighbouring memory; else the width is.
template <bool CL> __device__ __forceinline__ void pool_out_coords(int64_t i, const G5 &gy, int64_t *n, int64_t *c, int64_t *ot,
                                                                   int64_t *oh, int64_t *ow) {
    if (CL) {
        unsigned C = (unsigned)gy.C, W = (unsigned)gy.W, H = (unsigned)gy.H, T = (unsigned)gy.T;
        if (i < ((int64_t)1 << 32)) {          // 32-bit division where it fits
            unsigned u = (unsigned)i;
            *c = u % C; u /= C; *ow = u % W; u /= W; *oh = u % H; u /= H; *ot = u % T; *n = u / T;
            return;
        }
        *c = i % gy.C; i /= gy.C; *ow = i % gy.W; i /= gy.W; *oh = i % gy.H; i /= gy.H; *ot = i % gy.T; *n = i / gy.T;
    } else {
        *ow = i % gy.W; i /= gy.W; *oh = i % gy.H; i /= gy.H; *ot = i % gy.T; i /= gy.T; *c = i % gy.C; *n = i / gy.C;
    }
}
template <bool CL> __global__ void k_maxpool(int64_t total, G5 gx, G5 gy, PP p, const float *X, float *Y) {
    GRID_STRIDE(i, total) {
        int64_t n, c, ot, oh, ow;
        pool_out_coords<CL>(i, gy, &n, &c, &ot, &oh, &ow);
        const float *xb = X + n * gx.sN + c * gx.sC;
        int64_t o = pool_argmax(xb, gx, p, ot, oh, ow, gx);
        Y[n * gy.sN + c * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW] = o >= 0 ? xb[o] : -INFINITY;
    }
}
// Channels-last, four channels per thread (float4; C, strides and pointers multiples of 4 floats),
// int offsets: each lane keeps its channels' running max with the argmax kernel's rule (the first
// valid element, then strictly larger, a NaN wins and stays), so the values agree with it.
struct PI { int k[3], s[3], p[3]; };
// Output i of the four-channel max-pool kernels: its channel group c and window (n, ot, oh, ow).
__device__ __forceinline__ void mp_pos4(int i, int C4, const DwI &d, int *c, int *n, int *ot, int *oh, int *ow) {
    int r = i / C4;
    *c = (i - r * C4) * 4;
    *ow = r % d.YW; r /= d.YW;
    *oh = r % d.YH; r /= d.YH;
    *ot = r % d.YT; *n = r / d.YT;
}
// The window (ot, oh, ow) over the four channels at xn, the one walk and winner rule of the forward
// and the backward: per channel the winner's value bv and its offset wo = it gT + ih gH + iw gW (the
// caller's strides; the forward passes 0s); false when the window is all padding.
__device__ __forceinline__ bool mp_window4(const float *xn, const DwI &d, const PI &p, int ot, int oh, int ow, int gT, int gH, int gW,
                                           float (&bv)[4], int (&wo)[4]) {
    bool got = false, nan[4] = { false, false, false, false };
    for (int j = 0; j < 4; j++) { bv[j] = -INFINITY; wo[j] = -1; }
    for (int a = 0; a < p.k[0]; a++) {
        int it = ot * p.s[0] - p.p[0] + a;
        if ((unsigned)it >= (unsigned)d.XT) continue;
        for (int b = 0; b < p.k[1]; b++) {
            int ih = oh * p.s[1] - p.p[1] + b;
            if ((unsigned)ih >= (unsigned)d.XH) continue;
            for (int e = 0; e < p.k[2]; e++) {
                int iw = ow * p.s[2] - p.p[2] + e;
                if ((unsigned)iw >= (unsigned)d.XW) continue;
                float4 v4 = *(const float4 *)(xn + it * d.xsT + ih * d.xsH + iw * d.xsW);
                float v[4] = { v4.x, v4.y, v4.z, v4.w };
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (!nan[j] && (!got || v[j] > bv[j] || v[j] != v[j])) { bv[j] = v[j]; nan[j] = v[j] != v[j]; wo[j] = it * gT + ih * gH + iw * gW; }
                got = true;
            }
        }
    }
    return got;
}
__global__ void k_maxpool_v4(int total, int C4, DwI d, PI p, const float *X, float *Y) {
    GRID_STRIDE_T(int, i, total) {
        int c, n, ot, oh, ow, wo[4];
        float bv[4];
        mp_pos4(i, C4, d, &c, &n, &ot, &oh, &ow);
        mp_window4(X + n * d.xsN + c, d, p, ot, oh, ow, 0, 0, 0, bv, wo);
        *(float4 *)(Y + n * d.ysN + ot * d.ysT + oh * d.ysH + ow * d.ysW + c) = make_float4(bv[0], bv[1], bv[2], bv[3]);
    }
}
// MAXPOOL3D_BACK over channels-last views, four channels a thread: each channel's dy added at its
// winner in the zeroed contiguous gradient (strides gs*): one 16-byte atomic when the four channels
// share the winner (sm_90), else four 4-byte ones.
__global__ void k_maxpool_back_v4(int total, int C4, DwI d, PI p, int gsN, int gsT, int gsH, int gsW, const float *X, const float *DY,
                                  float *DX) {
    GRID_STRIDE_T(int, i, total) {
        int c, n, ot, oh, ow, wo[4];
        float bv[4];
        mp_pos4(i, C4, d, &c, &n, &ot, &oh, &ow);
        if (!mp_window4(X + n * d.xsN + c, d, p, ot, oh, ow, gsT, gsH, gsW, bv, wo)) continue;
        const float4 g = *(const float4 *)(DY + n * d.ysN + ot * d.ysT + oh * d.ysH + ow * d.ysW + c);
        float *base = DX + n * gsN + c;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if (wo[0] == wo[1] && wo[0] == wo[2] && wo[0] == wo[3]) { atomicAdd((float4 *)(base + wo[0]), g); continue; }
#endif
        atomicAdd(base + wo[0], g.x); atomicAdd(base + wo[1] + 1, g.y); atomicAdd(base + wo[2] + 2, g.z); atomicAdd(base + wo[3] + 3, g.w);
    }
}
template <bool CL> __global__ void k_maxpool_back(int64_t total, G5 gx, G5 gy, G5 gd, PP p, const float *X, const float *DY, float *DX) {
    GRID_STRIDE(i, total) {
        int64_t n, c, ot, oh, ow;
        pool_out_coords<CL>(i, gy, &n, &c, &ot, &oh, &ow);
        int64_t o = pool_argmax(X + n * gx.sN + c * gx.sC, gx, p, ot, oh, ow, gd);
        if (o >= 0) atomicAdd(DX + n * gd.sN + c * gd.sC + o, DY[n * gy.sN + c * gy.sC + ot * gy.sT + oh * gy.sH + ow * gy.sW]);
    }
}

// Attention geometry: q [B, H, Nq, d], k and v [B, H, Nk, d], each with its own strides (last dim
// contiguous); the kernels are further down (batched cuBLAS GEMMs and row softmax).
struct AttG {
    int64_t B, H, Nq, Nk, d;
    const float *q, *k, *v;          // each stored as bf16 where qh / kh / vh (BF16 mode, fused kernels only)
    int64_t sq[3], sk[3], sv[3];
    float scale;
    bool qh, kh, vh;
};

// ---------------------------------------------------------------------------------------------
// The run: per compute state, and one function per op
// ---------------------------------------------------------------------------------------------
struct Run {
    Cuda *C;
    scvrl_graph *g;
    char *err; size_t errlen;
    cudaStream_t s;
};
#define ERR_ R.err
#define ERRLEN_ R.errlen

inline float *F(Run &R, const scvrl_tensor *t) { return (float *)R.C->dptr[t->id]; }
inline void *P(Run &R, const scvrl_tensor *t) { return (void *)R.C->dptr[t->id]; }
// Is t (or its view base) stored as bf16 in this compute? (BF16 mode, "Activation storage")
inline bool HF(Run &R, const scvrl_tensor *t) { return !R.C->half.empty() && R.C->half[t->id]; }
// f(ti, to) with typed null pointers for an input and an output stored as bf16 (hi, ho) or float;
// TY(ti) is the element type. The ops with bf16 variants dispatch through this.
template <typename Fn> int with_io(bool hi, bool ho, Fn f) {
    if (hi) return ho ? f((const bf16 *)nullptr, (bf16 *)nullptr) : f((const bf16 *)nullptr, (float *)nullptr);
    return ho ? f((const float *)nullptr, (bf16 *)nullptr) : f((const float *)nullptr, (float *)nullptr);
}
#define TY(v) std::remove_const_t<std::remove_pointer_t<decltype(v)>>

// The leaf a tensor's memory comes from, if any (for host-side index checks).
const void *host_of(const scvrl_tensor *t) {
    int64_t o;
    scvrl_tensor *b = scvrl_view_base(t, &o);
    if (b->op != SCVRL_OP_LEAF || !b->data) return nullptr;
    return (const char *)b->data + o * (int64_t)scvrl_dtype_size(t->type);
}

// cuBLAS compute type of a precision for fp32 operands: fp32 exact or TF32 tensor cores (10-bit
// mantissa inputs). bf16 mode rounds the operands to bf16 first (to_bf16 below: cuBLAS's
// 32F_FAST_16BF was measured to give the TF32 kernels' bits on an H100) and then multiplies bf16 x
// bf16 with fp32 accumulation; the pointer-array attention GEMMs stay TF32 in bf16 mode.
static cublasComputeType_t compute_type(int prec) {
    return prec == SCVRL_PREC_FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

// dst[b][r][c] = bf16(src[b * sb + r * ld + c]), round to nearest even: a batch of row-major
// matrices [rows, cols] with leading dimension ld packed contiguously.
__global__ void k_to_bf16(const float *__restrict__ src, int64_t rows, int64_t cols, int64_t ld, int64_t sb, int64_t n,
                          __nv_bfloat16 *__restrict__ dst) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = i % cols, r = (i / cols) % rows, b = i / (cols * rows);
        dst[i] = __float2bfloat16_rn(src[b * sb + r * ld + c]);
    }
}

// The same for contiguous data, four elements per thread.
__global__ void k_to_bf16_flat(int64_t n4, const float4 *__restrict__ src, uint2 *__restrict__ dst) {
    GRID_STRIDE(i, n4) { float4 v = src[i]; dst[i] = make_uint2(bf_pack(v.x, v.y), bf_pack(v.z, v.w)); }
}
// bf16 GEMM operands: a list of fp32 matrix batches to round into the backend's h16 buffer
// (grow-only), each stored [rows, cols] with leading dimension ld and batch stride sb (0: one
// matrix shared by the batch), packed contiguously; operands already stored as bf16 skip this.
struct Pack16 { const float *src; int64_t rows, cols, ld, sb, batch; const void **dst; };
int to_bf16(Run &R, Pack16 *p, int np) {
    int64_t tot = 0;
    for (int i = 0; i < np; i++) tot += (p[i].rows * p[i].cols * (p[i].sb ? p[i].batch : 1) + 63) / 64 * 64;
    if (grow(R.C, &R.C->h16, &R.C->h16_cap, (size_t)tot * 2, "bf16 GEMM operands", R.err, R.errlen)) return -1;
    bf16 *d = (bf16 *)R.C->h16;
    for (int i = 0; i < np; i++) {
        int64_t n = p[i].rows * p[i].cols * (p[i].sb ? p[i].batch : 1);
        bool flat = p[i].ld == p[i].cols && (p[i].sb == p[i].rows * p[i].cols || !p[i].sb || p[i].batch == 1);
        if (flat && n % 4 == 0 && !((uintptr_t)p[i].src & 15))
            k_to_bf16_flat<<<grid_for(n / 4), 256, 0, R.s>>>(n / 4, (const float4 *)p[i].src, (uint2 *)d);
        else
            k_to_bf16<<<grid_for(n), 256, 0, R.s>>>(p[i].src, p[i].rows, p[i].cols, p[i].ld, p[i].sb, n, d);
        SC_LAUNCH();
        *p[i].dst = d;
        d += (n + 63) / 64 * 64;
    }
    return 0;
}

// Row-major batched GEMM through cuBLAS: C[M,N] (ldc) = op(A)[M,K] op(B)[K,N] (+ beta C).
// ah, bh, ch: that operand is stored as bf16 (BF16 mode only; "Activation storage").
int gemm_h(Run &R, int tA, int tB, int64_t M, int64_t N, int64_t K, const void *A, bool ah, int64_t lda, int64_t sA,
           const void *B, bool bh, int64_t ldb, int64_t sB, void *Cm, bool ch, int64_t ldc, int64_t sC, int64_t batch, float beta) {
    if (M <= 0 || N <= 0 || batch <= 0) return 0;
    const size_t es = ch ? 2 : 4;
    if (K <= 0) {
        if (beta == 0.0f) {
            if (ldc == N && sC == M * N) SC_CU(cudaMemsetAsync(Cm, 0, (size_t)(M * N * batch) * es, R.s));
            else for (int64_t bi = 0; bi < batch; bi++) SC_CU(cudaMemset2DAsync((char *)Cm + bi * sC * es, (size_t)ldc * es, 0, (size_t)N * es, (size_t)M, R.s));
        }
        return 0;
    }
    const float alpha = 1.0f;
    cublasComputeType_t ct = compute_type(R.C->prec);
    cublasOperation_t oa = tA ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tB ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (R.C->prec == SCVRL_PREC_BF16) {      // fp32 operands rounded to bf16, packed (ld = stored columns)
        int64_t ra = tA ? K : M, ca = tA ? M : K, rb = tB ? N : K, cb = tB ? K : N;
        const void *a16 = A, *b16 = B;
        Pack16 pk[2];
        int np = 0;
        if (!ah) { pk[np++] = Pack16{ (const float *)A, ra, ca, lda, sA, batch, &a16 }; lda = ca; sA = sA ? ra * ca : 0; }
        if (!bh) { pk[np++] = Pack16{ (const float *)B, rb, cb, ldb, sB, batch, &b16 }; ldb = cb; sB = sB ? rb * cb : 0; }
        if (np && to_bf16(R, pk, np)) return -1;
        SC_BLAS(cublasGemmStridedBatchedEx(R.C->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, b16, CUDA_R_16BF, (int)ldb, (long long)sB,
                                           a16, CUDA_R_16BF, (int)lda, (long long)sA, &beta, Cm, ch ? CUDA_R_16BF : CUDA_R_32F, (int)ldc,
                                           (long long)sC, (int)batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return 0;
    }
    if (batch == 1)
        SC_BLAS(cublasGemmEx(R.C->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F, (int)lda,
                             &beta, Cm, CUDA_R_32F, (int)ldc, ct, CUBLAS_GEMM_DEFAULT));
    else
        SC_BLAS(cublasGemmStridedBatchedEx(R.C->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, (long long)sB,
                                           A, CUDA_R_32F, (int)lda, (long long)sA, &beta, Cm, CUDA_R_32F, (int)ldc, (long long)sC,
                                           (int)batch, ct, CUBLAS_GEMM_DEFAULT));
    return 0;
}
int gemm(Run &R, int tA, int tB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, int64_t sA,
         const float *B, int64_t ldb, int64_t sB, float *Cm, int64_t ldc, int64_t sC, int64_t batch, float beta) {
    return gemm_h(R, tA, tB, M, N, K, A, false, lda, sA, B, false, ldb, sB, Cm, false, ldc, sC, batch, beta);
}

Dims dims1(const scvrl_tensor *out, const scvrl_tensor *x) {
    Dims D; memset(&D, 0, sizeof D);
    D.nd = out->ndim;
    for (int i = 0; i < out->ndim; i++) { D.ne[i] = out->ne[i]; D.sa[i] = x->st[i]; }
    if (D.nd == 0) { D.nd = 1; D.ne[0] = 1; D.sa[0] = 0; }
    return D;
}
void bcast_strides(const scvrl_tensor *x, const scvrl_tensor *out, int64_t *st) {
    for (int i = 0; i < out->ndim; i++) {
        int xi = x->ndim - out->ndim + i;
        st[i] = (xi >= 0 && x->ne[xi] != 1) ? x->st[xi] : 0;
    }
}

// Drop size-1 dims and merge neighbours that are contiguous in both operands (the output is
// contiguous): [B, N, C] with ordinary strides becomes one dim of B*N*C elements.
void dims_collapse(Dims &D) {
    Dims E; memset(&E, 0, sizeof E);
    for (int d = 0; d < D.nd; d++) {
        if (D.ne[d] == 1) continue;
        int k = E.nd - 1;
        if (k >= 0 && E.sa[k] == D.sa[d] * D.ne[d] && E.sb[k] == D.sb[d] * D.ne[d]) {
            E.ne[k] *= D.ne[d]; E.sa[k] = D.sa[d]; E.sb[k] = D.sb[d];
            continue;
        }
        E.ne[E.nd] = D.ne[d]; E.sa[E.nd] = D.sa[d]; E.sb[E.nd] = D.sb[d]; E.nd++;
    }
    if (E.nd == 0) { E.nd = 1; E.ne[0] = 1; }
    D = E;
}
// 1 when n and every offset of both operands fit in 31 bits (non-negative strides).
bool dims_small(const Dims &D, int64_t n) {
    int64_t ma = 0, mb = 0;
    for (int d = 0; d < D.nd; d++) {
        if (D.sa[d] < 0 || D.sb[d] < 0) return false;
        ma += (D.ne[d] - 1) * D.sa[d]; mb += (D.ne[d] - 1) * D.sb[d];
    }
    return n < ((int64_t)1 << 31) && ma < ((int64_t)1 << 31) && mb < ((int64_t)1 << 31);
}
template <typename I> DimsT<I> dims_as(const Dims &D) {
    DimsT<I> E; memset(&E, 0, sizeof E);
    E.nd = D.nd;
    for (int d = 0; d < D.nd; d++) { E.ne[d] = (I)D.ne[d]; E.sa[d] = (I)D.sa[d]; E.sb[d] = (I)D.sb[d]; }
    return E;
}
// Launch K32 (uint32_t indices) where they suffice, else K64, as <<<...>>>(n, dims, args...).
#define LAUNCH_DIMS(K32, K64, D, n, ...) do { \
        Dims D_ = (D); dims_collapse(D_); \
        if (dims_small(D_, (n))) K32<<<grid_for(n), 256, 0, R.s>>>((uint32_t)(n), dims_as<uint32_t>(D_), __VA_ARGS__); \
        else K64<<<grid_for(n), 256, 0, R.s>>>((int64_t)(n), dims_as<int64_t>(D_), __VA_ARGS__); \
        SC_LAUNCH(); } while (0)

// Copy a (possibly strided) tensor into a contiguous buffer.
// 4-byte elements one per thread, or four per thread (k_copy16) when the collapsed inner dim is
// contiguous in the source and every length, stride and both pointers allow 16-byte accesses (MViT's
// q/k/v grid copies: rows of 96 floats; 4-byte copies reached ~0.8 TB/s there).
int copy_contig(Run &R, const scvrl_tensor *x, const void *src, void *dst) {
    int64_t n = scvrl_nelements(x);
    if (!n) return 0;
    Dims D = dims1(x, x);
    dims_collapse(D);
    int l = D.nd - 1;
    bool v4 = D.sa[l] == 1 && D.ne[l] % 4 == 0 && !(((uintptr_t)src | (uintptr_t)dst) & 15);
    for (int d = 0; d < l && v4; d++) v4 = D.sa[d] % 4 == 0;
    if (v4) {
        D.ne[l] /= 4;
        for (int d = 0; d < l; d++) D.sa[d] /= 4;
        LAUNCH_DIMS(k_copy16<uint32_t>, k_copy16<int64_t>, D, n / 4, (const float4 *)src, (float4 *)dst);
        return 0;
    }
    LAUNCH_DIMS(k_copy4<uint32_t>, k_copy4<int64_t>, D, n, (const uint32_t *)src, (uint32_t *)dst);
    return 0;
}

// Matrix operand: usable by cuBLAS in place? (contiguous last dim, a valid leading dimension)
int64_t ld_of(const scvrl_tensor *t) { return t->ne[t->ndim - 2] == 1 ? t->ne[t->ndim - 1] : t->st[t->ndim - 2]; }
bool operand_ok(const scvrl_tensor *t) {
    int nd = t->ndim;
    if (t->ne[nd - 1] != 1 && t->st[nd - 1] != 1) return false;
    int64_t ld = ld_of(t);
    return ld >= (t->ne[nd - 1] > 1 ? t->ne[nd - 1] : 1);
}
// Uniform batch stride over the leading nb dims: returns 1 and *s, or 0.
int batch_stride(const scvrl_tensor *t, int nb, int64_t *s) {
    int64_t expect = -1, span = 1;
    *s = 0;
    for (int i = nb - 1; i >= 0; i--) {
        if (t->ne[i] == 1) continue;
        if (expect < 0) { *s = t->st[i]; expect = t->st[i] * t->ne[i]; span = t->ne[i]; continue; }
        if (t->st[i] != *s * span) return 0;
        span *= t->ne[i];
        expect = *s * span;
    }
    return 1;
}
int64_t batch_offs(const scvrl_tensor *t, int nb, int64_t bi) {
    int64_t o = 0;
    for (int i = nb - 1; i >= 0; i--) { int64_t k = bi % t->ne[i]; bi /= t->ne[i]; o += k * t->st[i]; }
    return o;
}

size_t scratch_matmul(const scvrl_tensor *t) {
    size_t s = 0;
    if (!operand_ok(t->src[0])) s += (size_t)scvrl_nelements(t->src[0]) * 4 + 256;
    if (!operand_ok(t->src[1])) s += (size_t)scvrl_nelements(t->src[1]) * 4 + 256;
    return s;
}

int op_matmul(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *a = t->src[0], *b = t->src[1];
    int tA = (int)t->ip[0], tB = (int)t->ip[1], nd = t->ndim, nb = nd - 2;
    int64_t M = t->ne[nd - 2], N = t->ne[nd - 1], K = tA ? a->ne[a->ndim - 2] : a->ne[a->ndim - 1];
    int64_t nbatch = 1;
    for (int i = 0; i < nb; i++) nbatch *= t->ne[i];
    const float *A = F(R, a), *B = F(R, b);
    scvrl_tensor ac = *a, bc = *b;          // contiguous stand-ins when an operand must be copied
    char *scr = R.C->scratch;
    if (!operand_ok(a)) {
        if (copy_contig(R, a, A, scr)) return -1;
        A = (const float *)scr; scr += ((size_t)scvrl_nelements(a) * 4 + 255) & ~(size_t)255;
        int64_t s = 1;
        for (int i = a->ndim - 1; i >= 0; i--) { ac.st[i] = s; s *= a->ne[i]; }
        a = &ac;
    }
    if (!operand_ok(b)) {
        if (copy_contig(R, b, B, scr)) return -1;
        B = (const float *)scr;
        int64_t s = 1;
        for (int i = b->ndim - 1; i >= 0; i--) { bc.st[i] = s; s *= b->ne[i]; }
        b = &bc;
    }
    int64_t lda = ld_of(a), ldb = ld_of(b), sA = 0, sB = 0;
    float *Cm = F(R, t);
    int okA = batch_stride(a, nb, &sA), okB = b->ndim == 2 ? 1 : batch_stride(b, nb, &sB);
    if (b->ndim == 2) sB = 0;
    bool ah = a == &ac ? false : HF(R, a), bh = b == &bc ? false : HF(R, b);    // stored as bf16 (plan_half: operand_ok)
    if (okA && okB) return gemm_h(R, tA, tB, M, N, K, A, ah, lda, sA, B, bh, ldb, sB, Cm, false, N, M * N, nbatch, 0.0f);
    for (int64_t bi = 0; bi < nbatch; bi++)
        if (gemm_h(R, tA, tB, M, N, K, (const char *)A + batch_offs(a, nb, bi) * (ah ? 2 : 4), ah, lda, 0,
                   (const char *)B + (b->ndim > 2 ? batch_offs(b, nb, bi) : 0) * (bh ? 2 : 4), bh, ldb, 0, Cm + bi * M * N, false, N, 0, 1, 0.0f))
            return -1;
    return 0;
}

// cuBLASLt's heuristic ranks its algorithms by a model, not by the clock: the first call of each
// plan times the heuristic's first (up to) 8 candidates on the call's own operands (a warm-up run,
// then 3 runs between events) and keeps the fastest. Every candidate computes the same product, D
// never overlaps A, B or C (the plan), so the runs are harmless; which candidate wins can differ from
// one process to the next (clock noise), and with it the last bits of a result: SCVRL_CUDA_LT_TUNE=0
// keeps the heuristic's first choice (reproducible bits from run to run).
bool lt_tune_on() { const char *e = getenv("SCVRL_CUDA_LT_TUNE"); return !(e && *e == '0'); }
template <class MM> int lt_tune(Run &R, LtPlan &P, MM mm) {
    cudaEvent_t e0, e1;
    SC_CU(cudaEventCreate(&e0));
    SC_CU(cudaEventCreate(&e1));
    float best = 0;
    int bi = -1;
    for (int k = 0; k < P.ncand; k++) {
        if (mm(&P.cand[k]) != CUBLAS_STATUS_SUCCESS) continue;
        SC_CU(cudaEventRecord(e0, R.s));
        for (int r = 0; r < 3; r++) mm(&P.cand[k]);
        SC_CU(cudaEventRecord(e1, R.s));
        SC_CU(cudaEventSynchronize(e1));
        float ms = 0;
        SC_CU(cudaEventElapsedTime(&ms, e0, e1));
        if (bi < 0 || ms < best) { best = ms; bi = k; }
    }
    cudaEventDestroy(e0); cudaEventDestroy(e1);
    cudaGetLastError();
    if (bi >= 0) P.algo = P.cand[bi];
    P.tuned = 1;
    return 0;
}

// Largest power of two (<= 16) that divides the address: cuBLASLt picks kernels for it.
uint32_t align_of(const void *p) { uintptr_t a = (uintptr_t)p; return a % 16 == 0 ? 16 : a % 8 == 0 ? 8 : a % 4 == 0 ? 4 : 1; }

// Y [rows, out] = X [rows, in] W^T + b (+ A) in one cuBLASLt call (bias in the epilogue; A, a
// contiguous [rows, out] tensor or NULL, through beta = 1: the fused LINEAR + ADD). Column-major
// view: Y^T [out, rows] = op_T(W stored [in, out]) X^T [in, rows]. Plans (descriptors and the
// heuristic's algorithm) are cached per shape, precision, storage and alignment. BF16 mode: W
// (and X, unless xh: stored as bf16 already) rounded to bf16 first; yh: Y stored as bf16 (then the
// bias is rounded to bf16 too, the epilogue's type; no A). gelu: Y = GELU(X W^T + b) with cuBLASLt's
// GELU epilogue (the tanh form: BF16 mode only, see op_linear_gelu). 1: done, 0: no plan (the caller
// falls back to GEMM + bias kernel), -1: error.
int lt_linear(Run &R, int64_t rows, int64_t in, int64_t out, const void *X, const void *W, const float *b, void *Y,
              const float *A = nullptr, bool xh = false, bool yh = false, bool wh = false, bool gelu = false) {
    Cuda *C = R.C;
    char key[160];
    uint32_t ay = A && align_of(A) < align_of(Y) ? align_of(A) : align_of(Y);
    snprintf(key, sizeof key, "%lld,%lld,%lld,%d,%d,%d,%d%d%d%d,%u%u%u%u", (long long)rows, (long long)in, (long long)out, C->prec, b != nullptr,
             A != nullptr, xh, yh, wh, gelu, align_of(X), align_of(W), ay, b ? align_of(b) : 16u);
    auto it = C->lt_plans.find(key);
    if (it == C->lt_plans.end()) {
        LtPlan P;
        memset(&P, 0, sizeof P);
        cublasComputeType_t ct = C->prec == SCVRL_PREC_BF16 ? CUBLAS_COMPUTE_32F : compute_type(C->prec);
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        cublasLtEpilogue_t ep = gelu ? (b ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                     : (b ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
        SC_BLAS(cublasLtMatmulDescCreate(&P.op, ct, CUDA_R_32F));
        SC_BLAS(cublasLtMatmulDescSetAttribute(P.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        SC_BLAS(cublasLtMatmulDescSetAttribute(P.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        SC_BLAS(cublasLtMatmulDescSetAttribute(P.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        cudaDataType_t ty = C->prec == SCVRL_PREC_BF16 ? CUDA_R_16BF : CUDA_R_32F;   // bf16: operands rounded first
        SC_BLAS(cublasLtMatrixLayoutCreate(&P.a, ty, (uint64_t)in, (uint64_t)out, (int64_t)in));
        SC_BLAS(cublasLtMatrixLayoutCreate(&P.b, ty, (uint64_t)in, (uint64_t)rows, (int64_t)in));
        SC_BLAS(cublasLtMatrixLayoutCreate(&P.c, yh ? CUDA_R_16BF : CUDA_R_32F, (uint64_t)out, (uint64_t)rows, (int64_t)out));
        cublasLtMatmulPreference_t pref;
        SC_BLAS(cublasLtMatmulPreferenceCreate(&pref));
        uint32_t aa = align_of(W), ab = align_of(X), ac = ay;
        SC_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &C->lt_ws_bytes, sizeof C->lt_ws_bytes));
        SC_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa));
        SC_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab));
        SC_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof ac));
        SC_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof ac));
        cublasLtMatmulHeuristicResult_t res[8];
        int nres = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(C->lt, P.op, P.a, P.b, P.c, P.c, pref, lt_tune_on() ? 8 : 1, res, &nres);
        cublasLtMatmulPreferenceDestroy(pref);
        P.ok = st == CUBLAS_STATUS_SUCCESS && nres > 0;
        for (int k = 0; P.ok && k < nres; k++) if (res[k].state == CUBLAS_STATUS_SUCCESS) P.cand[P.ncand++] = res[k].algo;
        P.ok = P.ok && P.ncand > 0;
        if (P.ok) P.algo = P.cand[0];
        P.tuned = P.ncand <= 1;
        it = C->lt_plans.emplace(key, P).first;
    }
    LtPlan &P = it->second;
    if (!P.ok) return 0;
    const float alpha = 1.0f, beta = A ? 1.0f : 0.0f;
    const void *w = W, *x = X, *bb = b;
    if (C->prec == SCVRL_PREC_BF16) {
        Pack16 pk[3];
        int np = 0;
        if (!wh) pk[np++] = Pack16{ (const float *)W, out, in, in, 0, 1, &w };
        if (!xh) pk[np++] = Pack16{ (const float *)X, rows, in, in, 0, 1, &x };
        if (yh && b) pk[np++] = Pack16{ b, 1, out, out, 0, 1, &bb };
        if (np && to_bf16(R, pk, np)) return -1;
    }
    if (b) SC_BLAS(cublasLtMatmulDescSetAttribute(P.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bb, sizeof bb));
    auto mm = [&](const cublasLtMatmulAlgo_t *al) {
        return cublasLtMatmul(C->lt, P.op, &alpha, w, P.a, x, P.b, &beta, A ? A : Y, P.c, Y, P.c, al, C->lt_ws, C->lt_ws_bytes, R.s);
    };
    if (!P.tuned && lt_tune(R, P, mm)) return -1;
    SC_BLAS(mm(&P.algo));
    return 1;
}

// LINEAR t and its only consumer u = ADD(t, other) as one cuBLASLt call writing u (the plan's fusion,
// scvrl_graph_fusable). 1: done, 0: not taken (run both nodes), -1: error.
int op_linear_add(Run &R, scvrl_tensor *t, scvrl_tensor *u) {
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2], *o = u->src[0] == t ? u->src[1] : u->src[0];
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    if (rows <= 0 || out <= 0 || in <= 0 || rows >= ((int64_t)1 << 31) || !F(R, o)) return 0;
    return lt_linear(R, rows, in, out, P(R, x), F(R, w), b ? F(R, b) : nullptr, F(R, u), F(R, o), HF(R, x), false);
}

// LINEAR t and its only consumer u = GELU(t) as one cuBLASLt call writing u, BF16 mode only: the
// epilogue's GELU is the tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), within 4.8e-4
// of the erf GELU everywhere (below the bf16 rounding of the values around it). The plan fuses the
// pair only where nothing else reads t (no-grad forwards: eval, the momentum encoder; training keeps
// t for GELU_BACK). SCVRL_CUDA_GELU=erf keeps the two kernels. 1: done, 0: not taken, -1: error.
bool gelu_erf() { const char *e = getenv("SCVRL_CUDA_GELU"); return e && !strcmp(e, "erf"); }
int op_linear_gelu(Run &R, scvrl_tensor *t, scvrl_tensor *u) {
    if (R.C->prec != SCVRL_PREC_BF16 || gelu_erf()) return 0;
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    if (rows <= 0 || out <= 0 || in <= 0 || rows >= ((int64_t)1 << 31)) return 0;
    return lt_linear(R, rows, in, out, P(R, x), F(R, w), b ? F(R, b) : nullptr, P(R, u), nullptr, HF(R, x), HF(R, u), false, true);
}

int op_linear(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    int64_t in = w->ne[1], out = w->ne[0], rows = in ? scvrl_nelements(x) / in : 0;
    if (in == 0) rows = scvrl_nelements(t) / (out ? out : 1);
    bool xh = HF(R, x), yh = HF(R, t);
    if (rows > 0 && out > 0 && in > 0 && rows < ((int64_t)1 << 31)) {
        int rc = lt_linear(R, rows, in, out, P(R, x), F(R, w), b ? F(R, b) : nullptr, P(R, t), nullptr, xh, yh);
        if (rc) return rc < 0 ? -1 : 0;
    }
    if (gemm_h(R, 0, 1, rows, out, in, P(R, x), xh, in, 0, F(R, w), false, in, 0, P(R, t), yh, out, 0, 1, 0.0f)) return -1;
    if (b && rows > 0 && out > 0) {
        if (yh) k_bias<<<grid_for(rows * out), 256, 0, R.s>>>(rows * out, 1, out, F(R, b), (bf16 *)P(R, t));
        else k_bias<<<grid_for(rows * out), 256, 0, R.s>>>(rows * out, 1, out, F(R, b), F(R, t));
        SC_LAUNCH();
    }
    return 0;
}

bool al16p(const void *a, const void *b, const void *c = nullptr) { return !(((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15); }
template <int OP> int binary(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    if (OP == BIN_GELU_BACK && (HF(R, t->src[0]) || HF(R, t)))    // x or dx stored as bf16: all contiguous (plan_half)
        return with_io(HF(R, t->src[0]), HF(R, t), [&](auto tx, auto to) {
            const TY(tx) *X = (const TY(tx) *)P(R, t->src[0]);
            TY(to) *Y = (TY(to) *)P(R, t);
            k_gelu_back_c<<<grid_for(n / 4 + 1), 256, 0, R.s>>>(n, n % 4 == 0 && al16p(F(R, t->src[1]), X, Y), X, F(R, t->src[1]), Y);
            SC_LAUNCH();
            return 0;
        });
    Dims D; memset(&D, 0, sizeof D);
    D.nd = t->ndim;
    for (int i = 0; i < t->ndim; i++) D.ne[i] = t->ne[i];
    bcast_strides(t->src[0], t, D.sa); bcast_strides(t->src[1], t, D.sb);
    if (D.nd == 0) { D.nd = 1; D.ne[0] = 1; }
    auto k32 = k_binary<OP, uint32_t>; auto k64 = k_binary<OP, int64_t>;
    LAUNCH_DIMS(k32, k64, D, n, F(R, t->src[0]), F(R, t->src[1]), F(R, t));
    return 0;
}
template <int OP> int unary(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    if (OP == UN_GELU && (HF(R, t->src[0]) || HF(R, t)))     // bf16 in or out: contiguous input (plan_half)
        return with_io(HF(R, t->src[0]), HF(R, t), [&](auto ti, auto to) {
            const TY(ti) *X = (const TY(ti) *)P(R, t->src[0]);
            TY(to) *Y = (TY(to) *)P(R, t);
            k_gelu_c<<<grid_for(n / 4 + 1), 256, 0, R.s>>>(n, n % 4 == 0 && !(((uintptr_t)X | (uintptr_t)Y) & 15) , X, Y);
            SC_LAUNCH();
            return 0;
        });
    Dims D = dims1(t, t->src[0]);
    auto k32 = k_unary<OP, uint32_t>; auto k64 = k_unary<OP, int64_t>;
    LAUNCH_DIMS(k32, k64, D, n, F(R, t->src[0]), F(R, t), t->fp[0], t->fp[1]);
    return 0;
}

template <typename I, typename TI, typename TO> __global__ void k_copy_cvt(I n, DimsT<I> D, const TI *X, TO *Y) {
    GRID_STRIDE_T(I, i, n) stf(Y + i, ldf(X + offs1T(i, D)));
}
int op_cont(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (n && (HF(R, t->src[0]) || HF(R, t)))      // bf16 in or out: element per thread, converted
        return with_io(HF(R, t->src[0]), HF(R, t), [&](auto ti, auto to) {
            auto k32 = k_copy_cvt<uint32_t, TY(ti), TY(to)>; auto k64 = k_copy_cvt<int64_t, TY(ti), TY(to)>;
            LAUNCH_DIMS(k32, k64, dims1(t, t->src[0]), n, (const TY(ti) *)P(R, t->src[0]), (TY(to) *)P(R, t));
            return 0;
        });
    return copy_contig(R, t->src[0], P(R, t->src[0]), P(R, t));
}

int op_grad_acc(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    LAUNCH_DIMS(k_acc<uint32_t>, k_acc<int64_t>, dims1(t, t->src[0]), n, F(R, t->src[0]), F(R, t));
    return 0;
}

// SUM_TO geometry as the CPU kernel.
struct SumPlan { bool fast; int64_t R, C; RedG G; int64_t nout, nred; };
SumPlan sum_plan(const scvrl_tensor *t) {
    SumPlan sp; memset(&sp, 0, sizeof sp);
    const scvrl_tensor *x = t->src[0];
    int nd = x->ndim, off = x->ndim - t->ndim;
    int64_t one[MAXD];
    for (int i = 0; i < nd; i++) one[i] = i < off ? 1 : t->ne[i - off];
    int lead = 0;
    while (lead < nd && one[lead] == 1) lead++;
    bool tail_ok = true;
    for (int i = lead; i < nd; i++) if (one[i] != x->ne[i]) tail_ok = false;
    sp.nout = scvrl_nelements(t);
    if (tail_ok && scvrl_is_contiguous(x)) {
        sp.fast = true; sp.R = 1; sp.C = 1;
        for (int i = lead; i < nd; i++) sp.C *= x->ne[i];
        for (int i = 0; i < lead; i++) sp.R *= x->ne[i];
        return sp;
    }
    sp.G.nd = nd; sp.G.nr = 0; sp.nred = 1;
    for (int i = 0; i < nd; i++) { sp.G.one[i] = one[i]; sp.G.ne[i] = x->ne[i]; sp.G.st[i] = x->st[i]; }
    for (int i = 0; i < nd; i++) if (one[i] == 1 && x->ne[i] != 1) { sp.G.rd[sp.G.nr++] = i; sp.nred *= x->ne[i]; }
    return sp;
}
int64_t colsum_chunks(int64_t R, int64_t C) {
    int64_t cb = (C + 31) / 32, nch = (R + 63) / 64, cap = 2048 / cb;
    if (cap < 1) cap = 1;
    if (nch > cap) nch = cap;
    if (nch < 1) nch = 1;
    return nch;
}
size_t scratch_sum_to(const scvrl_tensor *t) {
    SumPlan sp = sum_plan(t);
    if (!sp.fast) return 0;
    return (size_t)colsum_chunks(sp.R, sp.C) * (size_t)sp.C * 8;
}
template <typename TX> int colsum(Run &R, const TX *X, int64_t Rr, int64_t C, float *Y) {
    if (!C) return 0;
    int64_t nch = colsum_chunks(Rr, C), per = (Rr + nch - 1) / nch;
    if (per < 1) per = 1;
    double *part = (double *)R.C->scratch;
    dim3 grid((unsigned)((C + 31) / 32), (unsigned)nch), blk(32, 8);
    k_colsum_part<<<grid, blk, 0, R.s>>>(X, Rr, C, per, part);
    SC_LAUNCH();
    k_colsum_final<<<(unsigned)((C + 31) / 32), dim3(32, 8), 0, R.s>>>(part, nch, C, Y);
    SC_LAUNCH();
    return 0;
}
int op_sum_to(Run &R, scvrl_tensor *t) {
    SumPlan sp = sum_plan(t);
    const float *X = F(R, t->src[0]);
    float *Y = F(R, t);
    if (!sp.nout) return 0;
    if (sp.fast) return HF(R, t->src[0]) ? colsum(R, (const bf16 *)P(R, t->src[0]), sp.R, sp.C, Y) : colsum(R, X, sp.R, sp.C, Y);
    if (sp.nred <= 32) k_sum_general_thread<<<grid_for(sp.nout), 256, 0, R.s>>>(sp.nout, sp.nred, sp.G, X, Y);
    else k_sum_general_block<<<(unsigned)sp.nout, 256, 0, R.s>>>(sp.nred, sp.G, X, Y);
    SC_LAUNCH();
    return 0;
}

void index_geom(const scvrl_tensor *x, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1; *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= x->ne[i];
    for (int i = dim + 1; i < x->ndim; i++) *inner *= x->ne[i];
}
// CONCAT four elements a thread, each operand float or bf16 (converted on the way: exact, but for
// float -> bf16, rounded as every bf16 store), int indices with multiply-high divisions: fin divides
// by inner / 4, fd by na + nb. (The element kernels above spend more on 64-bit divisions than on
// moving bytes: MViT's stem concat, bf16 tokens into the fp32 stream, ran at ~3x its memory time.)
template <typename TA, typename TB, typename TY>
__global__ void k_concat4(int n4, FDiv fin, FDiv fd, int na, int nb, const TA *A, const TB *B, TY *Y) {
    const int inner = 4 * (int)fin.d;
    GRID_STRIDE_T(int, i, n4) {
        int r = fdiv(i, fin), in = (i - r * (int)fin.d) * 4, o = fdiv(r, fd), d = r - o * (int)fd.d;
        st4f(Y + 4 * (int64_t)i, d < na ? ld4f(A + (o * na + d) * inner + in) : ld4f(B + (o * nb + d - na) * inner + in));
    }
}
bool concat4_ok(int64_t n, int64_t inner, const void *A, bool ha, const void *B, bool hb, const void *Y, bool hy) {
    const char *e = getenv("SCVRL_CUDA_CAT4");
    if ((e && *e == '0') || n >= ((int64_t)1 << 31) || inner % 4) return false;
    return !((uintptr_t)A & (ha ? 7 : 15)) && !((uintptr_t)B & (hb ? 7 : 15)) && !((uintptr_t)Y & (hy ? 7 : 15));
}

int op_concat(Run &R, scvrl_tensor *t) {
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = scvrl_nelements(t);
    index_geom(t, dim, &outer, &inner);
    if (!n) return 0;
    const float *A = F(R, t->src[0]), *B = F(R, t->src[1]);
    float *Y = F(R, t);
    int64_t na = t->src[0]->ne[dim], nb = t->src[1]->ne[dim];
    bool ha = HF(R, t->src[0]), hb = HF(R, t->src[1]), hy = HF(R, t);
    if (concat4_ok(n, inner, A, ha, B, hb, Y, hy))
        return with_io(ha, hy, [&](auto ta, auto ty) {
            FDiv fin = fdiv_of((uint32_t)(inner / 4)), fd = fdiv_of((uint32_t)(na + nb));
            if (hb) k_concat4<<<grid_for(n / 4), 256, 0, R.s>>>((int)(n / 4), fin, fd, (int)na, (int)nb, (const TY(ta) *)A, (const bf16 *)B, (TY(ty) *)Y);
            else k_concat4<<<grid_for(n / 4), 256, 0, R.s>>>((int)(n / 4), fin, fd, (int)na, (int)nb, (const TY(ta) *)A, B, (TY(ty) *)Y);
            SC_LAUNCH();
            return 0;
        });
    if (ha && hb && hy && n < ((int64_t)1 << 31)) {      // bf16 throughout: a copy of 2-byte elements, 4 at a time when aligned
        if (inner % 4 == 0 && !(((uintptr_t)A | (uintptr_t)B | (uintptr_t)Y) & 7))
            k_concat<uint32_t, uint2><<<grid_for(n / 4), 256, 0, R.s>>>((uint32_t)(n / 4), (uint32_t)(inner / 4), (uint32_t)na, (uint32_t)nb,
                                                                        (const uint2 *)A, (const uint2 *)B, (uint2 *)Y);
        else
            k_concat<uint32_t, uint16_t><<<grid_for(n), 256, 0, R.s>>>((uint32_t)n, (uint32_t)inner, (uint32_t)na, (uint32_t)nb,
                                                                       (const uint16_t *)A, (const uint16_t *)B, (uint16_t *)Y);
        SC_LAUNCH();
        return 0;
    }
    if (ha || hb || hy)
        return with_io(ha, hy, [&](auto ta, auto ty) {
            if (hb) k_concat_cvt<<<grid_for(n), 256, 0, R.s>>>(n, inner, na, nb, (const TY(ta) *)A, (const bf16 *)B, (TY(ty) *)Y);
            else k_concat_cvt<<<grid_for(n), 256, 0, R.s>>>(n, inner, na, nb, (const TY(ta) *)A, B, (TY(ty) *)Y);
            SC_LAUNCH();
            return 0;
        });
    if (inner % 4 == 0 && !(((uintptr_t)A | (uintptr_t)B | (uintptr_t)Y) & 15) && n < ((int64_t)1 << 33))
        k_concat<uint32_t, float4><<<grid_for(n / 4), 256, 0, R.s>>>((uint32_t)(n / 4), (uint32_t)(inner / 4), (uint32_t)na, (uint32_t)nb,
                                                                     (const float4 *)A, (const float4 *)B, (float4 *)Y);
    else if (n < ((int64_t)1 << 31))
        k_concat<uint32_t, float><<<grid_for(n), 256, 0, R.s>>>((uint32_t)n, (uint32_t)inner, (uint32_t)na, (uint32_t)nb, A, B, Y);
    else k_concat<int64_t, float><<<grid_for(n), 256, 0, R.s>>>(n, inner, na, nb, A, B, Y);
    SC_LAUNCH();
    return 0;
}
// --- concat placement (plan_places): the copies that are left ---
// One concat source S (contiguous [outer, len, inner]) into its block of a strided destination:
// Y + o so + d sd + i (inner contiguous there). Four elements a thread when every size, stride and
// both pointers allow, converted on the way as k_concat4.
template <typename TS, typename TY>
__global__ void k_copy_block4(int n4, FDiv fin, FDiv flen, int64_t so, int64_t sd, const TS *S, TY *Y) {
    GRID_STRIDE_T(int, i, n4) {
        int r = fdiv(i, fin), in = (i - r * (int)fin.d) * 4, o = fdiv(r, flen), d = r - o * (int)flen.d;
        st4f(Y + o * so + d * sd + in, ld4f(S + 4 * (int64_t)i));
    }
}
template <typename TS, typename TY>
__global__ void k_copy_block(int64_t n, int64_t inner, int64_t len, int64_t so, int64_t sd, const TS *S, TY *Y) {
    GRID_STRIDE(i, n) {
        int64_t in = i % inner, r = i / inner, d = r % len, o = r / len;
        stf(Y + o * so + d * sd + in, ldf(S + i));
    }
}
// A concat's geometry in a placement: st (its dims' strides) must address [outer, n, inner] as
// o so + d sd + i: the outer dims one stride apart, the inner ones contiguous.
bool cat_geom(const scvrl_tensor *t, const int64_t *st, int64_t *outer, int64_t *inner, int64_t *so, int64_t *sd) {
    int dim = (int)t->ip[0], nd = t->ndim;
    int64_t o = 1, in = 1, want = 1;
    for (int j = nd - 1; j > dim; j--) { if (t->ne[j] != 1 && st[j] != want) return false; want *= t->ne[j]; in *= t->ne[j]; }
    *so = 0;
    int64_t run = -1;
    for (int j = dim - 1; j >= 0; j--) {
        if (t->ne[j] == 1) continue;
        if (run < 0) *so = st[j];
        else if (st[j] != run) return false;
        run = st[j] * t->ne[j];
        o *= t->ne[j];
    }
    *outer = o; *inner = in; *sd = st[dim];
    return true;
}
int copy_block(Run &R, const scvrl_tensor *s, char *Y, bool yh, int64_t outer, int64_t len, int64_t inner, int64_t so, int64_t sd) {
    int64_t n = outer * len * inner;
    if (!n) return 0;
    return with_io(HF(R, s), yh, [&](auto ts, auto ty) {
        const TY(ts) *S = (const TY(ts) *)P(R, s);
        TY(ty) *D = (TY(ty) *)Y;
        const size_t sa = sizeof(TY(ts)) * 4 - 1, ya = sizeof(TY(ty)) * 4 - 1;
        if (inner % 4 == 0 && so % 4 == 0 && sd % 4 == 0 && n < ((int64_t)1 << 31) && inner / 4 < ((int64_t)1 << 31) && len < ((int64_t)1 << 31) &&
            !((uintptr_t)S & sa) && !((uintptr_t)D & ya))
            k_copy_block4<<<grid_for(n / 4), 256, 0, R.s>>>((int)(n / 4), fdiv_of((uint32_t)(inner / 4)), fdiv_of((uint32_t)len), so, sd, S, D);
        else
            k_copy_block<<<grid_for(n), 256, 0, R.s>>>(n, inner, len, so, sd, S, D);
        SC_LAUNCH();
        return 0;
    });
}
bool placed_into(const Cuda *C, const scvrl_tensor *s, int root) {      // s's memory is a node placed into root's
    scvrl_tensor *b = scvrl_view_base(s, nullptr);
    return b->id >= 0 && b->id < (int)C->place.size() && C->place[b->id].root == root && b->id != root;
}
// A concat in a placement (its own memory, or its block of an outer concat's): each source not
// written there by its producer is copied into its block.
int op_concat_placed(Run &R, scvrl_tensor *t) {
    const Place &pl = R.C->place[t->id];
    int dim = (int)t->ip[0];
    int64_t outer, inner, so, sd;
    if (!cat_geom(t, pl.st, &outer, &inner, &so, &sd)) { seterr(R.err, R.errlen, "cuda: concat placement: bad geometry"); return -1; }
    const bool yh = HF(R, t);
    const size_t ye = yh ? 2 : 4;
    int64_t start = 0;
    for (int k = 0; k < 2; k++) {
        const scvrl_tensor *s = t->src[k];
        int64_t len = s->ne[dim];
        if (!placed_into(R.C, s, pl.root) && copy_block(R, s, (char *)P(R, t) + start * sd * (int64_t)ye, yh, outer, len, inner, so, sd)) return -1;
        start += len;
    }
    return 0;
}
// A CONT placed into a concat: the strided copy into its block (its placement's strides): k_copy_cvt
// with the destination's strides too.
template <typename I, typename TI, typename TO> __global__ void k_copy_cvt_to(I n, DimsT<I> D, const TI *X, TO *Y) {
    GRID_STRIDE_T(I, i, n) { I oa, ob; offsT(i, D, &oa, &ob); stf(Y + ob, ldf(X + oa)); }
}
int op_cont_placed(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    Dims D = dims1(t, t->src[0]);
    for (int i = 0; i < t->ndim; i++) D.sb[i] = R.C->place[t->id].st[i];
    return with_io(HF(R, t->src[0]), HF(R, t), [&](auto ti, auto to) {
        auto k32 = k_copy_cvt_to<uint32_t, TY(ti), TY(to)>; auto k64 = k_copy_cvt_to<int64_t, TY(ti), TY(to)>;
        LAUNCH_DIMS(k32, k64, D, n, (const TY(ti) *)P(R, t->src[0]), (TY(to) *)P(R, t));
        return 0;
    });
}
int op_slice_back(Run &R, scvrl_tensor *t) {
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = scvrl_nelements(t);
    index_geom(t, dim, &outer, &inner);
    if (!n) return 0;
    const float *X = F(R, t->src[0]);
    float *Y = F(R, t);
    if (inner % 4 == 0 && !(((uintptr_t)X | (uintptr_t)Y) & 15) && n < ((int64_t)1 << 33))
        k_slice_back<uint32_t, float4><<<grid_for(n / 4), 256, 0, R.s>>>((uint32_t)(n / 4), (uint32_t)(inner / 4), (uint32_t)t->ne[dim],
                                                                         (uint32_t)t->ip[1], (uint32_t)t->src[0]->ne[dim], (const float4 *)X, (float4 *)Y);
    else if (n < ((int64_t)1 << 31))
        k_slice_back<uint32_t, float><<<grid_for(n), 256, 0, R.s>>>((uint32_t)n, (uint32_t)inner, (uint32_t)t->ne[dim], (uint32_t)t->ip[1],
                                                                    (uint32_t)t->src[0]->ne[dim], X, Y);
    else k_slice_back<int64_t, float><<<grid_for(n), 256, 0, R.s>>>(n, inner, t->ne[dim], t->ip[1], t->src[0]->ne[dim], X, Y);
    SC_LAUNCH();
    return 0;
}
int check_indices(Run &R, const scvrl_tensor *idx, int64_t n, int64_t lim, const char *what) {
    const int32_t *h = (const int32_t *)host_of(idx);
    if (!h || !scvrl_is_contiguous(idx)) return 0;      // computed indices: out-of-range gives NaN on the device
    for (int64_t j = 0; j < n; j++)
        if (h[j] < 0 || h[j] >= lim) { seterr(R.err, R.errlen, "%s: index %d out of [0, %lld)", what, h[j], (long long)lim); return -1; }
    return 0;
}
int op_index_select(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[0], *idx = t->src[1];
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = scvrl_nelements(t), ns = t->ne[dim], nx = x->ne[dim];
    index_geom(x, dim, &outer, &inner);
    if (check_indices(R, idx, ns, nx, "index_select")) return -1;
    if (!n) return 0;
    if (inner % 4 == 0 && al16p(F(R, x), F(R, t)) && n < ((int64_t)1 << 31) && scvrl_nelements(x) < ((int64_t)1 << 31)) {
        k_index_select<uint32_t, float4><<<grid_for(n / 4), 256, 0, R.s>>>((uint32_t)(n / 4), (uint32_t)(inner / 4), (uint32_t)ns, (uint32_t)nx,
                                                                          (const int32_t *)P(R, idx), (const float4 *)F(R, x), (float4 *)F(R, t),
                                                                          make_float4(NAN, NAN, NAN, NAN));
        SC_LAUNCH();
        return 0;
    }
    if (n < ((int64_t)1 << 31) && scvrl_nelements(x) < ((int64_t)1 << 31))
        k_index_select<uint32_t, float><<<grid_for(n), 256, 0, R.s>>>((uint32_t)n, (uint32_t)inner, (uint32_t)ns, (uint32_t)nx, (const int32_t *)P(R, idx),
                                                                     F(R, x), F(R, t), NAN);
    else k_index_select<int64_t, float><<<grid_for(n), 256, 0, R.s>>>(n, inner, ns, nx, (const int32_t *)P(R, idx), F(R, x), F(R, t), NAN);
    SC_LAUNCH();
    return 0;
}
int op_index_add(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *dy = t->src[0], *idx = t->src[1];
    int dim = (int)t->ip[0];
    int64_t outer, inner, n = scvrl_nelements(t), ns = dy->ne[dim], nx = t->ne[dim];
    index_geom(t, dim, &outer, &inner);
    if (check_indices(R, idx, ns, nx, "index_add")) return -1;
    if (!n) return 0;
    if (ns <= 4096) {
        k_index_add_gather<<<grid_for(n), 256, 0, R.s>>>(n, inner, ns, nx, (const int32_t *)P(R, idx), F(R, dy), F(R, t));
    } else {
        SC_CU(cudaMemsetAsync(F(R, t), 0, (size_t)n * 4, R.s));
        int64_t nd = scvrl_nelements(dy);
        k_index_add_atomic<<<grid_for(nd), 256, 0, R.s>>>(nd, inner, ns, nx, (const int32_t *)P(R, idx), F(R, dy), F(R, t));
    }
    SC_LAUNCH();
    return 0;
}

RngKey rng_key(const Run &R, uint64_t stream) { return RngKey{ R.C->seed, scvrl_mix64(stream) }; }
int op_dropout(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    float p = t->fp[0];
    k_dropout<<<grid_for(n), 256, 0, R.s>>>(n, F(R, t->src[0]), F(R, t), rng_key(R, (uint64_t)t->ip[0]), p, 1.0f / (1.0f - p));
    SC_LAUNCH();
    return 0;
}
// DROP_PATH t and its only consumer u = ADD(t, other) as one pass writing u (the plan's fusion,
// scvrl_graph_fusable). 1: done, 0: not taken, -1: error.
int op_drop_path_add(Run &R, scvrl_tensor *t, scvrl_tensor *u) {
    const scvrl_tensor *o = u->src[0] == t ? u->src[1] : u->src[0];
    int64_t n = scvrl_nelements(t), rows = t->ne[0];
    if (!n || !rows || !F(R, o)) return 0;
    float p = t->fp[0];
    RngKey key = rng_key(R, (uint64_t)t->ip[0]);
    if ((n / rows) % 4 == 0 && al16p(F(R, t->src[0]), F(R, o), F(R, u)))
        k_drop_path_add_v4<<<grid_for(n / 4), 256, 0, R.s>>>(n / 4, n / rows / 4, (const float4 *)F(R, t->src[0]), (const float4 *)F(R, o),
                                                             (float4 *)F(R, u), key, p, 1.0f / (1.0f - p));
    else
        k_drop_path_add<<<grid_for(n), 256, 0, R.s>>>(n, n / rows, F(R, t->src[0]), F(R, o), F(R, u), key, p, 1.0f / (1.0f - p));
    SC_LAUNCH();
    return 1;
}
int op_drop_path(Run &R, scvrl_tensor *t) {
    int64_t n = scvrl_nelements(t), rows = t->ne[0];
    if (!n) return 0;
    float p = t->fp[0];
    RngKey key = rng_key(R, (uint64_t)t->ip[0]);
    bool v4 = (n / rows) % 4 == 0 && al16p(F(R, t->src[0]), P(R, t));
    if (HF(R, t) && v4) k_drop_path_v4<<<grid_for(n / 4), 256, 0, R.s>>>(n / 4, n / rows / 4, (const float4 *)F(R, t->src[0]), (bf16 *)P(R, t), key, p, 1.0f / (1.0f - p));
    else if (HF(R, t)) k_drop_path<<<grid_for(n), 256, 0, R.s>>>(n, n / rows, F(R, t->src[0]), (bf16 *)P(R, t), key, p, 1.0f / (1.0f - p));
    else if (v4) k_drop_path_v4<<<grid_for(n / 4), 256, 0, R.s>>>(n / 4, n / rows / 4, (const float4 *)F(R, t->src[0]), F(R, t), key, p, 1.0f / (1.0f - p));
    else k_drop_path<<<grid_for(n), 256, 0, R.s>>>(n, n / rows, F(R, t->src[0]), F(R, t), key, p, 1.0f / (1.0f - p));
    SC_LAUNCH();
    return 0;
}

int row_threads(int64_t D) { return D <= 256 ? 64 : D <= 2048 ? 128 : 256; }
int64_t rows_of(const scvrl_tensor *t, int64_t *D) {
    *D = t->ndim ? t->ne[t->ndim - 1] : 1;
    return *D ? scvrl_nelements(t) / *D : 0;
}

// Row kernels launch one block per row: rows beyond the grid limit go in slices.
#define ROW_LAUNCH(KERNEL, Rn, Dn, ...)                                                             \
    do {                                                                                            \
        for (int64_t r0_ = 0; r0_ < (Rn); r0_ += 2147483647LL) {                                     \
            int64_t nr_ = (Rn) - r0_ < 2147483647LL ? (Rn) - r0_ : 2147483647LL;                     \
            KERNEL<<<(unsigned)nr_, row_threads(Dn), 0, R.s>>>(__VA_ARGS__);                        \
            SC_LAUNCH();                                                                            \
        }                                                                                           \
    } while (0)

// f(std::integral_constant<int, NC>) for rows of D4 groups of four (D <= 1024): NC groups a lane of
// the row-in-registers layer-norm kernels (1, 2, 3, 4, 6 or 8: MViT's 96 .. 768 take 1, 2, 3, 6).
template <typename Fn> void by_nc(int D4, Fn f) {
    switch ((D4 + 31) / 32) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: case 6: f(std::integral_constant<int, 6>()); break;
    default: f(std::integral_constant<int, 8>()); break;
    }
}
int op_layer_norm(Run &R, scvrl_tensor *t) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    const scvrl_tensor *w = t->src[1], *b = t->src[2];
    const float *W = w ? F(R, w) : nullptr, *Bv = b ? F(R, b) : nullptr;
    return with_io(HF(R, t->src[0]), HF(R, t), [&](auto ti, auto to) {
        const TY(ti) *X = (const TY(ti) *)P(R, t->src[0]);
        TY(to) *Y = (TY(to) *)P(R, t);
        if (D <= 1024 && D % 4 == 0 && (Rn + 7) / 8 < ((int64_t)1 << 31) && al16p(X, Y, W) && al16p(Bv, nullptr)) {
            unsigned g = (unsigned)((Rn + 7) / 8);
            int D4 = (int)(D / 4);
            by_nc(D4, [&](auto nc) { k_layer_norm_v4<decltype(nc)::value><<<g, 256, 0, R.s>>>(Rn, D4, X, W, Bv, Y, t->fp[0]); });
            SC_LAUNCH();
            return 0;
        }
        if (D <= 1024 && (Rn + 7) / 8 < ((int64_t)1 << 31)) {
            k_layer_norm_w<<<(unsigned)((Rn + 7) / 8), 256, 0, R.s>>>(Rn, (int)D, X, W, Bv, Y, t->fp[0]);
            SC_LAUNCH();
            return 0;
        }
        ROW_LAUNCH(k_layer_norm, Rn, D, D, X, W, Bv, Y, t->fp[0]);
        return 0;
    });
}
// The weight and bias gradients of such rows in one pass: a block of 8 warps takes rpw rows a warp
// (interleaved; about 1056 blocks in all, one wave of 8 an SM: a warp's rows are a chain of
// dependent loads, so the rows are spread over as many warps as run at once), each row read once
// (x and dy, four at a time) with its statistics in registers; a lane sums dy xhat and dy of its
// columns in float over its rows, then the warps add theirs in double in warp order into shared
// memory and the block writes part[block][2D] (dw, db; a fixed order: deterministic).
// DXW: each row's input gradient too (ln_back_dx_row into DX, plus RES), from the same registers:
// LAYER_NORM_BACK and its _WB in one pass over x and dy (op_ln_back_wb).
template <int NC, typename TX, bool DXW = false>
__global__ void __launch_bounds__(256) k_ln_wb_v4(int64_t rows, int rpw, int D4, const float *DY, const TX *X, float eps, double *part,
                                                  const float *W = nullptr, const float *RES = nullptr, float *DX = nullptr) {
    __shared__ double red[2 * 1024];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, D = 4 * D4;
    float4 aw[NC], ab[NC];
#pragma unroll
    for (int j = 0; j < NC; j++) aw[j] = ab[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    const int64_t r0 = (int64_t)blockIdx.x * 8 * rpw;
    for (int i = 0; i < rpw; i++) {
        const int64_t r = r0 + i * 8 + warp;
        if (r >= rows) break;
        float4 xv[NC], gv[NC];
        float mu, rs;
        ln_load_xg<NC>(X + r * D, DY + r * D, D4, xv, gv);
        ln_stats_v4<NC>(xv, D4, eps, &mu, &rs);
#pragma unroll
        for (int j = 0; j < NC; j++) {
            aw[j].x += gv[j].x * ((xv[j].x - mu) * rs); aw[j].y += gv[j].y * ((xv[j].y - mu) * rs);
            aw[j].z += gv[j].z * ((xv[j].z - mu) * rs); aw[j].w += gv[j].w * ((xv[j].w - mu) * rs);
            ab[j].x += gv[j].x; ab[j].y += gv[j].y; ab[j].z += gv[j].z; ab[j].w += gv[j].w;
        }
        if (DXW) ln_back_dx_row<NC>(xv, gv, D4, mu, rs, W, RES ? RES + r * D : nullptr, DX + r * D);
    }
    for (int w = 0; w < 8; w++) {
        if (warp == w)
#pragma unroll
            for (int j = 0; j < NC; j++) {
                int c = 4 * (lane + 32 * j);
                if (c >= D) continue;
                double *o = red + c, *b = red + D + c;
                o[0] = (w ? o[0] : 0.0) + aw[j].x; o[1] = (w ? o[1] : 0.0) + aw[j].y; o[2] = (w ? o[2] : 0.0) + aw[j].z; o[3] = (w ? o[3] : 0.0) + aw[j].w;
                b[0] = (w ? b[0] : 0.0) + ab[j].x; b[1] = (w ? b[1] : 0.0) + ab[j].y; b[2] = (w ? b[2] : 0.0) + ab[j].z; b[3] = (w ? b[3] : 0.0) + ab[j].w;
            }
        __syncthreads();
    }
    for (int c = threadIdx.x; c < 2 * D; c += 256) part[(int64_t)blockIdx.x * 2 * D + c] = red[c];
}
int64_t ln_wb_rpw(int64_t rows) { int64_t r = (rows + 8 * 1056 - 1) / (8 * 1056); return r < 1 ? 1 : r; }
int64_t ln_wb_blocks(int64_t rows) { return (rows + 8 * ln_wb_rpw(rows) - 1) / (8 * ln_wb_rpw(rows)); }
int op_layer_norm_back(Run &R, scvrl_tensor *t) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    const scvrl_tensor *w = t->src[2];
    return with_io(HF(R, t->src[1]), false, [&](auto tx, auto) {
        const TY(tx) *X = (const TY(tx) *)P(R, t->src[1]);
        const float *DY = F(R, t->src[0]), *W = w ? F(R, w) : nullptr;
        if (D <= 1024 && D % 4 == 0 && (Rn + 7) / 8 < ((int64_t)1 << 31) && al16p(X, DY, W) && al16p(F(R, t), nullptr)) {
            unsigned g = (unsigned)((Rn + 7) / 8);
            int D4 = (int)(D / 4);
            float *DX = F(R, t);
            by_nc(D4, [&](auto nc) { k_layer_norm_back_v4<decltype(nc)::value><<<g, 256, 0, R.s>>>(Rn, D4, DY, X, W, nullptr, DX, t->fp[0]); });
            SC_LAUNCH();
            return 0;
        }
        if (D <= 1024 && (Rn + 7) / 8 < ((int64_t)1 << 31)) {
            k_layer_norm_back_w<<<(unsigned)((Rn + 7) / 8), 256, 0, R.s>>>(Rn, (int)D, F(R, t->src[0]), X, w ? F(R, w) : nullptr, F(R, t), t->fp[0]);
            SC_LAUNCH();
            return 0;
        }
        ROW_LAUNCH(k_layer_norm_back, Rn, D, D, F(R, t->src[0]), X, w ? F(R, w) : nullptr, F(R, t), t->fp[0]);
        return 0;
    });
}
// LAYER_NORM_BACK t and its only reader u = ADD(t, r) (the plan's fusion, scvrl_graph_fusable): u =
// r + dx in one pass over the rows (rows of D % 4 == 0 up to 1024, fp32 r and u; else not taken).
// SCVRL_CUDA_LNADD=0 keeps the two kernels. 1: done, 0: not taken, -1: error.
int op_ln_back_add(Run &R, scvrl_tensor *t, scvrl_tensor *u) {
    const char *e = getenv("SCVRL_CUDA_LNADD");
    if (e && *e == '0') return 0;
    const scvrl_tensor *o = u->src[0] == t ? u->src[1] : u->src[0], *w = t->src[2];
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D || D > 1024 || D % 4 || (Rn + 7) / 8 >= ((int64_t)1 << 31) || HF(R, o) || HF(R, u) || !F(R, o)) return 0;
    const float *DY = F(R, t->src[0]), *W = w ? F(R, w) : nullptr, *RES = F(R, o);
    float *DX = F(R, u);
    if (!al16p(P(R, t->src[1]), DY, W) || !al16p(RES, DX)) return 0;
    if (with_io(HF(R, t->src[1]), false, [&](auto tx, auto) {
            const TY(tx) *X = (const TY(tx) *)P(R, t->src[1]);
            by_nc((int)(D / 4), [&](auto nc) {
                k_layer_norm_back_v4<decltype(nc)::value><<<(unsigned)((Rn + 7) / 8), 256, 0, R.s>>>(Rn, (int)(D / 4), DY, X, W, RES, DX, t->fp[0]);
            });
            SC_LAUNCH();
            return 0;
        })) return -1;
    return 1;
}
// LAYER_NORM_BACK t (and the residual ADD u it is fused with, or null) with its LAYER_NORM_BACK_WB
// b (same dy and x; plan_ln_wb) in one pass: k_ln_wb_v4 writes each row's dx (into u with the
// residual added, or t) and the weight and bias partials, then k_colsum_final32 b. The same bits as
// the separate kernels (plan_ln_wb pairs them: SCVRL_CUDA_LNBWB=0 off). 1: done (b is not run), 2:
// done with u too, 0: not taken, -1: error.
int op_ln_back_wb(Run &R, scvrl_tensor *t, scvrl_tensor *u, scvrl_tensor *b) {
    const char *e = getenv("SCVRL_CUDA_LNADD");
    if (u && e && *e == '0') u = nullptr;
    const scvrl_tensor *x = t->src[1], *w = t->src[2], *o = u ? (u->src[0] == t ? u->src[1] : u->src[0]) : nullptr;
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D || D > 1024 || D % 4 || ln_wb_blocks(Rn) >= ((int64_t)1 << 31) || HF(R, t) || (u && (HF(R, u) || HF(R, o) || !F(R, o))))
        return 0;
    const float *DY = F(R, t->src[0]), *W = w ? F(R, w) : nullptr, *RES = o ? F(R, o) : nullptr;
    float *DX = F(R, u ? u : t);
    if (!al16p(P(R, x), DY, W) || !al16p(RES, DX)) return 0;
    const int64_t nb = ln_wb_blocks(Rn);
    double *pw = (double *)R.C->scratch;
    if (with_io(HF(R, x), false, [&](auto tx, auto) {
            by_nc((int)(D / 4), [&](auto nc) {
                k_ln_wb_v4<decltype(nc)::value, TY(tx), true><<<(unsigned)nb, 256, 0, R.s>>>(Rn, (int)ln_wb_rpw(Rn), (int)(D / 4), DY,
                                                                                           (const TY(tx) *)P(R, x), t->fp[0], pw, W, RES, DX);
            });
            SC_LAUNCH();
            return 0;
        })) return -1;
    k_colsum_final32<<<(unsigned)((2 * D + 31) / 32), dim3(32, 32), 0, R.s>>>(pw, nb, 2 * D, F(R, b));
    SC_LAUNCH();
    return u ? 2 : 1;
}
size_t scratch_ln_wb(const scvrl_tensor *t) {
    int64_t D, Rn = rows_of(t->src[1], &D);
    size_t a = (size_t)Rn * sizeof(float2) + 256 + (size_t)colsum_chunks(Rn, D) * 2 * (size_t)D * 8, b = (size_t)ln_wb_blocks(Rn) * 2 * (size_t)D * 8;
    return a > b ? a : b;
}
int op_ln_wb(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[1];
    int64_t D, Rn = rows_of(x, &D);
    if (!D) return 0;
    if (!Rn) { SC_CU(cudaMemsetAsync(F(R, t), 0, (size_t)(2 * D) * 4, R.s)); return 0; }
    float2 *st = (float2 *)R.C->scratch;
    double *part = (double *)(R.C->scratch + (((size_t)Rn * sizeof(float2) + 255) & ~(size_t)255));
    int64_t nch = colsum_chunks(Rn, D), per = (Rn + nch - 1) / nch;
    const char *e = getenv("SCVRL_CUDA_LNWB");       // "old": the statistics pass + the column kernel
    if (D <= 1024 && D % 4 == 0 && ln_wb_blocks(Rn) < ((int64_t)1 << 31) && al16p(P(R, x), F(R, t->src[0])) && !(e && !strcmp(e, "old"))) {
        const int64_t nb = ln_wb_blocks(Rn);
        double *pw = (double *)R.C->scratch;
        if (with_io(HF(R, x), false, [&](auto tx, auto) {
                by_nc((int)(D / 4), [&](auto nc) {
                    k_ln_wb_v4<decltype(nc)::value><<<(unsigned)nb, 256, 0, R.s>>>(Rn, (int)ln_wb_rpw(Rn), (int)(D / 4), F(R, t->src[0]), (const TY(tx) *)P(R, x),
                                                                                  t->fp[0], pw);
                });
                SC_LAUNCH();
                return 0;
            })) return -1;
        k_colsum_final32<<<(unsigned)((2 * D + 31) / 32), dim3(32, 32), 0, R.s>>>(pw, nb, 2 * D, F(R, t));
        SC_LAUNCH();
        return 0;
    }
    if (with_io(HF(R, x), false, [&](auto tx, auto) {
            const TY(tx) *X = (const TY(tx) *)P(R, x);
            if (D <= 1024 && (Rn + 7) / 8 < ((int64_t)1 << 31)) {
                k_ln_rowstats_w<<<(unsigned)((Rn + 7) / 8), 256, 0, R.s>>>(Rn, (int)D, X, t->fp[0], st);
                SC_LAUNCH();
            } else ROW_LAUNCH(k_ln_rowstats, Rn, D, D, X, t->fp[0], st);
            dim3 grid((unsigned)((D + 31) / 32), (unsigned)nch), blk(32, 8);
            k_ln_wb_part<<<grid, blk, 0, R.s>>>(Rn, D, per, F(R, t->src[0]), X, st, part);
            SC_LAUNCH();
            return 0;
        })) return -1;
    k_colsum_final<<<(unsigned)((2 * D + 31) / 32), dim3(32, 8), 0, R.s>>>(part, nch, 2 * D, F(R, t));
    SC_LAUNCH();
    return 0;
}
int op_softmax(Run &R, scvrl_tensor *t, int logsm) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    if (logsm) ROW_LAUNCH(k_log_softmax, Rn, D, D, F(R, t->src[0]), F(R, t));
    else ROW_LAUNCH(k_softmax, Rn, D, D, F(R, t->src[0]), F(R, t));
    return 0;
}
int op_softmax_back(Run &R, scvrl_tensor *t, int logsm) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    if (logsm) ROW_LAUNCH(k_softmax_back<1>, Rn, D, D, F(R, t->src[0]), F(R, t->src[1]), F(R, t));
    else ROW_LAUNCH(k_softmax_back<0>, Rn, D, D, F(R, t->src[0]), F(R, t->src[1]), F(R, t));
    return 0;
}
int op_ce(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[0];
    int64_t N = x->ne[0], C = x->ne[1];
    if (check_indices(R, t->src[1], N, C, "cross_entropy: target")) return -1;
    if (!N) return 0;
    ROW_LAUNCH(k_cross_entropy, N, C, C, F(R, x), (const int32_t *)P(R, t->src[1]), F(R, t));
    return 0;
}
int op_ce_back(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[0];
    int64_t N = x->ne[0], C = x->ne[1];
    if (!N || !C) return 0;
    ROW_LAUNCH(k_cross_entropy_back, N, C, C, F(R, x), (const int32_t *)P(R, t->src[1]), F(R, t->src[2]), t->src[2]->st[0], F(R, t));
    return 0;
}
int op_l2n(Run &R, scvrl_tensor *t) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    ROW_LAUNCH(k_l2n, Rn, D, D, F(R, t->src[0]), F(R, t), t->fp[0]);
    return 0;
}
int op_l2n_back(Run &R, scvrl_tensor *t) {
    int64_t D, Rn = rows_of(t, &D);
    if (!Rn || !D) return 0;
    ROW_LAUNCH(k_l2n_back, Rn, D, D, F(R, t->src[0]), F(R, t->src[1]), F(R, t), t->fp[0]);
    return 0;
}

// --- conv3d ---
const size_t CONV_SCRATCH_CAP = (size_t)256 << 20;       // im2col chunk budget
int64_t conv_chunk(int64_t N, int64_t PK) {
    int64_t per = (int64_t)(CONV_SCRATCH_CAP / 4) / (PK ? PK : 1);
    if (per < 1) per = 1;
    return per < N ? per : N;
}
int64_t dw_chunks(int64_t rows, int64_t KC) {
    int64_t nch = ((int64_t)1 << 18) / (KC ? KC : 1);
    if (nch < 1) nch = 1;
    if (nch > rows) nch = rows;
    return nch < 1 ? 1 : nch;
}
// Conv path switch (SCVRL_CUDA_CONV, read at every call so that the scratch pre-pass and the op
// agree): "old" = the depthwise kernels of session 5 (weights read in place, the weight gradient
// a thread per (chunk, tap, channel)); unset = the kernels above.
bool conv_old() { const char *e = getenv("SCVRL_CUDA_CONV"); return e && !strcmp(e, "old"); }
int64_t g5_span(const G5 &g) { return 1 + (g.N - 1) * g.sN + (g.C - 1) * g.sC + (g.T - 1) * g.sT + (g.H - 1) * g.sH + (g.W - 1) * g.sW; }
// The 3x3x3 weight-gradient kernel applies (int offsets); its chunking: about 10 blocks of 4 warps
// per SM, at least 16 positions per block.
bool dw_w_taps(const CP &p, const G5 &gx, const G5 &gy) {
    return !conv_old() && p.kt == 3 && p.kh == 3 && p.kw == 3 && g5_span(gx) < ((int64_t)1 << 31) &&
           g5_span(gy) < ((int64_t)1 << 31) && gy.N * gy.T * gy.H * gy.W < ((int64_t)1 << 31);
}
void dw_w_geom(const G5 &gx, const G5 &gy, int64_t *nch, int64_t *per) {
    int64_t npos = gy.N * gy.T * gy.H * gy.W, slices = (gx.C + 31) / 32, n = (1320 + slices - 1) / slices;
    if (n > (npos + 15) / 16) n = (npos + 15) / 16;
    if (n < 1) n = 1;
    *per = (npos + n - 1) / n;
    *nch = (npos + *per - 1) / *per;
}
// The time-column weight gradient's geometry: VW channels a thread (2 when C, every stride and both
// pointers allow it), slices of S <= 192 channels (nsl of them), rows of CV = S / VW threads, R rows
// a block (R CV <= 192), `per` columns a row (at least 2; about 3 blocks an SM of 132 in one wave),
// nblk x nsl blocks. Only the shapes decide it (and VW), so the scratch pre-pass sizes the partial
// sums for both VW.
struct DwWT { int VW, CV, R, per, nblk, nsl, ncol; };
DwWT dw_w_tcol_geom(const G5 &gx, const G5 &gy, int vw) {
    DwWT g;
    int S = gx.C <= 192 ? (int)gx.C : 192;
    g.VW = vw; g.CV = (S + vw - 1) / vw; g.R = 192 / g.CV > 1 ? 192 / g.CV : 1;
    g.nsl = (int)((gx.C + g.CV * vw - 1) / (g.CV * vw));
    g.ncol = (int)(gy.N * gy.H * gy.W);
    int64_t rows = (int64_t)396 * g.R;
    g.per = (int)(((int64_t)g.ncol * g.nsl + rows - 1) / rows);
    if (g.per < 2) g.per = 2;
    g.nblk = (g.ncol + g.per * g.R - 1) / (g.per * g.R);
    if (g.nblk < 1) g.nblk = 1;
    return g;
}
// The register-weight kernels apply: 3x3x3 and int offsets.
bool dw_reg(const CP &p, const G5 &gx, const G5 &gy) {
    return !conv_old() && p.kt == 3 && p.kh == 3 && p.kw == 3 && g5_span(gx) < ((int64_t)1 << 31) &&
           g5_span(gy) < ((int64_t)1 << 31);
}
// float4 kernels apply: C, every stride and both pointers multiples of 4 floats.
bool dw_v4(const G5 &gx, const G5 &gy, const void *a, const void *b) {
    return gx.C % 4 == 0 && !((gx.sN | gx.sT | gx.sH | gx.sW | gy.sN | gy.sT | gy.sH | gy.sW) & 3) &&
           !(((uintptr_t)a | (uintptr_t)b) & 15);
}
// Their grid: about 4 blocks of 128 threads per SM, rounded up to a multiple of C / 4 threads.
// One wave: as many blocks as the SMs hold at once at kernel K's register count (the threads stride
// over the work, so a partial second wave would only add a tail). Asked once per kernel (a static,
// initialised thread-safely on first use), not on every launch; a grid-stride loop stays correct
// whatever the count.
// The current device's multiprocessors (132 if it cannot be asked), asked once.
int sm_count() {
    static const int n = [] {
        int dev = 0, sms = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1) sms = 132;
        return sms;
    }();
    return n;
}
template <auto K, int THREADS> int64_t wave_blocks() {
    static const int64_t n = [] {
        int nb = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, K, THREADS, 0) != cudaSuccess || nb < 1) nb = 1;
        return (int64_t)sm_count() * nb;
    }();
    return n;
}
unsigned dw_gridv(int64_t npos, int64_t CV, int64_t cap) {
    int64_t a = 128, b = CV;
    while (b) { int64_t t = a % b; a = b; b = t; }
    int64_t g = CV / a, want = (npos * CV + 127) / 128;       // blocks: a multiple of g
    if (want > cap) want = cap;
    return (unsigned)(((want + g - 1) / g) * g);
}
// Depthwise weights read through L1 from a transposed copy (the default) or kept in registers
// (SCVRL_CUDA_DWW=reg: 27 x 4 of them, 170-180 registers a thread, two blocks per SM). Measured on
// an H100 (bf16 MViT-B train step B16): the backward-x gathers 42.2 -> 11.9 ms per 5 steps (they
// skip most taps, so latency hid nothing at two blocks per SM), the forward 19.4 -> 18.8 ms.
// Read at every call so that the scratch pre-pass and the op agree.
bool dw_wl() { const char *e = getenv("SCVRL_CUDA_DWW"); return !(e && !strcmp(e, "reg")); }
__global__ void k_dw_wt(int64_t C, int K3, const float *W, float *Wt) { GRID_STRIDE(i, C * K3) Wt[(i % K3) * C + i / K3] = W[i]; }
// W [C][27] -> [27][C] in scratch (the depthwise forward and backward-x use no other scratch)
const float *dw_wt(Run &R, const float *W, int64_t C) {
    float *Wt = (float *)R.C->scratch;
    k_dw_wt<<<grid_for(C * 27), 256, 0, R.s>>>(C, 27, W, Wt);
    if (cudaGetLastError() != cudaSuccess) { seterr(R.err, R.errlen, "cuda: depthwise weight transpose failed to launch"); return nullptr; }
    return Wt;
}
template <int TT, int VW, typename TI, typename TO>
int dw_tcol_launch(Run &R, int npos, int CV, const DwI &di, const TI *X, const float *W, const float *B, TO *Y) {
    k_dw_fwd_tcol<TT, VW, TI, TO><<<dw_gridv(npos, CV, wave_blocks<k_dw_fwd_tcol<TT, VW, TI, TO>, 128>()), 128, 0, R.s>>>(npos, CV, di, X, W, B, Y);
    SC_LAUNCH();
    return 0;
}
// The time-column kernels apply (weights transposed, temporal stride 1 and padding 1, T in = T out
// = 2, 4, 8 or 16; SCVRL_CUDA_DWT=0 keeps the per-output kernels, =fwd the time-column forward
// only; bwd: asked for the backward-x or weight-gradient kernel).
int dw_tcol_frames(const DwI &d, bool wl, bool bwd = false) {
    const char *e = getenv("SCVRL_CUDA_DWT");
    if (!wl || (e && *e == '0') || (bwd && e && !strcmp(e, "fwd")) || d.st != 1 || d.pt != 1 || d.XT != d.YT) return 0;
    return d.YT == 2 || d.YT == 4 || d.YT == 8 || d.YT == 16 ? d.YT : 0;
}
template <int VW, typename TI, typename TO>
int dw_fwd_launch(Run &R, int npos, int CV, const DwI &di, const TI *X, const float *W, const float *B, TO *Y, bool wl) {
    switch (dw_tcol_frames(di, wl)) {
    case 2: return dw_tcol_launch<2, VW>(R, npos / 2, CV, di, X, W, B, Y);
    case 4: return dw_tcol_launch<4, VW>(R, npos / 4, CV, di, X, W, B, Y);
    case 8: return dw_tcol_launch<8, VW>(R, npos / 8, CV, di, X, W, B, Y);
    case 16: return dw_tcol_launch<16, VW>(R, npos / 16, CV, di, X, W, B, Y);
    default: break;
    }
    if (wl) k_dw_fwd_vec<3, 3, 3, VW, TI, TO, true><<<dw_gridv(npos, CV, wave_blocks<k_dw_fwd_vec<3, 3, 3, VW, TI, TO, true>, 128>()), 128, 0, R.s>>>(
        npos, CV, di, X, W, B, Y);
    else k_dw_fwd_vec<3, 3, 3, VW, TI, TO, false><<<dw_gridv(npos, CV, wave_blocks<k_dw_fwd_vec<3, 3, 3, VW, TI, TO, false>, 128>()), 128, 0, R.s>>>(
        npos, CV, di, X, W, B, Y);
    SC_LAUNCH();
    return 0;
}
// im2col of samples [n0, n0 + ns) into cols [ns * P, K]: the tap-table kernel when K <= 2048 and
// every offset fits an int (and not SCVRL_CUDA_CONV=old), else the element-per-thread kernel.
// BF16 mode (bf): the columns are written as bf16, the GEMM's operand as it is (no packing pass),
// in rows of Kp >= K (the tap-table kernel pads them with zeros: cols_pitch).
bool im2col_tab_ok(int64_t K, int64_t tot, const G5 &gx) {
    return !conv_old() && K <= 2048 && tot < ((int64_t)1 << 31) && g5_span(gx) < ((int64_t)1 << 31);
}
// W [rows, K] fp32 -> [rows, Kp] bf16, zeros past K
__global__ void k_pad_bf16(int64_t rows, int64_t K, int64_t Kp, const float *W, bf16 *D) {
    GRID_STRIDE(i, rows * Kp) { int64_t k = i % Kp; D[i] = __float2bfloat16_rn(k < K ? W[(i / Kp) * K + k] : 0.0f); }
}
// Row pitch of the columns: bf16 rows padded to a multiple of 8 (16 bytes: cuBLASLt's fast kernels)
int64_t cols_pitch(const G5 &gx, const G5 &gy, const CP &p, int64_t ns, bool bf) {
    int64_t K = gx.C * p.kt * p.kh * p.kw;
    return bf && K >= 8 && im2col_tab_ok(K, ns * gy.T * gy.H * gy.W * ((K + 7) / 8 * 8), gx) ? (K + 7) / 8 * 8 : K;
}
int im2col(Run &R, int64_t n0, int64_t ns, const G5 &gx, const G5 &gy, const CP &p, const float *X, void *cols, bool bf) {
    int64_t K = gx.C * p.kt * p.kh * p.kw, rows = ns * gy.T * gy.H * gy.W, tot = rows * K, Kp = cols_pitch(gx, gy, p, ns, bf);
    if (!tot) return 0;
    return with_io(false, bf, [&](auto, auto tc) {
        TY(tc) *c = (TY(tc) *)cols;
        const bool tab = Kp != K || im2col_tab_ok(K, tot, gx);     // the tap-table kernels apply
        if (tab && Kp % 2 == 0 && im2col_pair_on())
            k_im2col_pair<<<grid_for(rows, 8), 256, (size_t)Kp * (sizeof(int4) + sizeof(int)), R.s>>>((int)rows, (int)K, (int)Kp, n0, gx, gy, p, X, c);
        else if (tab)
            k_im2col_tab<<<grid_for(rows, 8), 256, (size_t)K * sizeof(int4), R.s>>>((int)rows, (int)K, (int)Kp, n0, gx, gy, p, X, c);
        else
            k_im2col<<<grid_for(tot), 256, 0, R.s>>>(tot, n0, gx, gy, p, X, c);
        SC_LAUNCH();
        return 0;
    });
}
size_t scratch_conv(const scvrl_tensor *t) {
    // geometry: x and y by op
    const scvrl_tensor *x, *y, *w;
    CP p;
    if (t->op == SCVRL_OP_CONV3D) { x = t->src[0]; w = t->src[1]; y = t; p = conv_params(t, w); }
    else if (t->op == SCVRL_OP_CONV3D_BACK_X) { x = t; y = t->src[0]; w = t->src[1]; p = conv_params(t, w); }
    else { x = t->src[1]; y = t->src[0]; w = t; p = conv_params(t, t); }
    G5 gx = geom5(x, p.layout), gy = geom5(y, p.layout);
    if (is_dw_last(p, gx, gy)) {
        if (t->op != SCVRL_OP_CONV3D_BACK_W) return dw_wl() ? (size_t)gx.C * 27 * 4 + 256 : 0;
        int64_t K3 = p.kt * p.kh * p.kw, rows = gy.N * gy.T * gy.H, nch, per;
        if (dw_w_taps(p, gx, gy)) {       // the larger of the per-output and the time-column kernels' partial sums
            dw_w_geom(gx, gy, &nch, &per);
            int64_t nb = dw_w_tcol_geom(gx, gy, 1).nblk;
            if (gx.C % 2 == 0 && dw_w_tcol_geom(gx, gy, 2).nblk > nb) nb = dw_w_tcol_geom(gx, gy, 2).nblk;
            return (size_t)(nch > nb ? nch : nb) * (size_t)(K3 * gx.C) * 8;
        }
        return (size_t)dw_chunks(rows, K3 * gx.C) * (size_t)(K3 * gx.C) * 8;
    }
    if (p.groups != 1) return 0;
    (void)w;
    int64_t K = gx.C * p.kt * p.kh * p.kw, P = gy.T * gy.H * gy.W;
    // fp32 columns of a chunk; bf16 ones take at most as much (rows padded to Kp <= K + 7 < 2 K, K >= 8),
    // then the padded bf16 weights [Co, Kp]
    return (size_t)conv_chunk(gx.N, P * K) * (size_t)(P * K) * 4 + (size_t)gy.C * (size_t)(K + 8) * 2 + 512;
}

// --- the stem as an implicit GEMM (BF16 mode) ---
// A dense channels-last conv with few input rows a position (C_in kt kh = 42 or 63 rows of kh = 7,
// kw <= 8 taps: MViT's patch embedding, 3 x kt x 7 x 7 at stride (2, 4, 4)) and C_out = 32, 64,
// 96 or 128, without im2col columns: a block keeps the weights [C_out][K8P 8] as bf16 in shared
// memory (k = j 8 + e, j = (ci kt + a) kh + b, e < 8 the width tap, zero past kw and past K8) and
// walks tiles of RW output rows of one (sample, frame). Per tile it stages the input rows those read
// as bf16 strips (strip (ci kt + a) SR + rr: input frame to st - pt + a, row h0 sh - ph + rr, columns
// from -pw; zero outside the input; a warp a strip, 16-byte loads where the strides allow), and its
// warps, 16 output positions each, multiply them with mma.sync m16n8k16 (fp32 accumulators): the A
// fragments straight from the strips (taps e, e + 1 of a row are adjacent bf16), the B fragments by
// ldmatrix; then the bias and the tile's rows stored at the output's strides (fp32 or bf16). Same
// bf16 operands as the im2col path, fp32 sums in another order. SCVRL_CUDA_STEM=im2col keeps the
// columns and the GEMM.
struct StemG {
    int Ci, T, H, W, To, Ho, Wo, nhb, st, sh, sw, pt, ph, pw, kt, kw, RW, SR, LDS, nstrip, vec;
    int64_t xsN, xsC, xsT, xsH, ysN, ysT, ysH, ysW;
};
template <int K8> struct StemK { static constexpr int K8P = (K8 + 1) / 2 * 2, LDW = K8P * 8 + 8; };
template <int K8, int NT, typename TO>
__global__ void __launch_bounds__(256) k_stem_mma(StemG G, int ntile, const float *X, const float *Wt, const float *bias, TO *Y) {
    constexpr int KH = 7, K8P = StemK<K8>::K8P, LDW = StemK<K8>::LDW;
    extern __shared__ __align__(16) unsigned char st_smem[];
    bf16 *Ws = (bf16 *)st_smem, *Xs = Ws + NT * 8 * LDW, *Zs = Xs + G.nstrip * G.LDS;
    const int tid = threadIdx.x, nth = blockDim.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3, nw = nth >> 5;
    for (int i = tid; i < NT * 8 * K8P * 8; i += nth) {        // W [Co][Ci kt KH][kw] -> Ws [Co][K8P 8]
        int n = i / (K8P * 8), k = i - n * (K8P * 8), j = k >> 3, e = k & 7;
        Ws[n * LDW + k] = __float2bfloat16_rn(j < K8 && e < G.kw ? Wt[((int64_t)n * K8 + j) * G.kw + e] : 0.0f);
    }
    for (int i = tid; i < G.LDS; i += nth) Zs[i] = __float2bfloat16_rn(0.0f);
    // this thread's two output positions of the warp's 16 (rows g and g + 8): row offset in the strips, column
    const int M = G.RW * G.Wo, m0 = warp * 16 + g, m1 = m0 + 8;
    const int r0 = m0 < M ? m0 / G.Wo : 0, w0 = m0 < M ? m0 - (m0 / G.Wo) * G.Wo : 0;
    const int r1 = m1 < M ? m1 / G.Wo : 0, w1 = m1 < M ? m1 - (m1 / G.Wo) * G.Wo : 0;
    const int ro0 = r0 * G.sh * G.LDS, ro1 = r1 * G.sh * G.LDS, co0 = G.sw * w0 + 2 * q, co1 = G.sw * w1 + 2 * q;
    const int kr = (lane & 7) + (lane >> 4) * 8, kc = ((lane >> 3) & 1) * 8;
    for (int tile = blockIdx.x; tile < ntile; tile += gridDim.x) {
        const int hb = tile % G.nhb, rest = tile / G.nhb, to = rest % G.To, n = rest / G.To, h0 = hb * G.RW;
        __syncthreads();                                       // the last tile's strips are read
        // a warp a strip: its input row (if inside the clip) and the row's address
        auto strip_row = [&](int s) -> const float * {
            const int ca = s / G.SR, rr = s - ca * G.SR, c = ca / G.kt, a = ca - c * G.kt;
            const int ti = to * G.st - G.pt + a, hi = h0 * G.sh - G.ph + rr;
            if ((unsigned)ti >= (unsigned)G.T || (unsigned)hi >= (unsigned)G.H) return nullptr;
            return X + n * G.xsN + c * G.xsC + (int64_t)ti * G.xsT + (int64_t)hi * G.xsH;
        };
        if (G.vec) {          // 16-byte loads, two strips (four loads a lane) in flight; W <= 256
            const int W4 = G.W >> 2;
            for (int s0 = warp; s0 < G.nstrip; s0 += 2 * nw) {
                float4 v[2][2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    const int s = s0 + u * nw;
                    const float *xr = s < G.nstrip ? strip_row(s) : nullptr;
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int q4 = lane + 32 * h;
                        v[u][h] = xr && q4 < W4 ? *(const float4 *)(xr + 4 * q4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                    }
                }
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    const int s = s0 + u * nw;
                    if (s >= G.nstrip) break;
                    bf16 *d = Xs + s * G.LDS;
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int col = G.pw + 4 * (lane + 32 * h);
                        if (lane + 32 * h >= W4) continue;
                        const float4 x = v[u][h];
                        if (col < G.LDS) d[col] = __float2bfloat16_rn(x.x);
                        if (col + 1 < G.LDS) d[col + 1] = __float2bfloat16_rn(x.y);
                        if (col + 2 < G.LDS) d[col + 2] = __float2bfloat16_rn(x.z);
                        if (col + 3 < G.LDS) d[col + 3] = __float2bfloat16_rn(x.w);
                    }
                    if (lane < G.pw) d[lane] = __float2bfloat16_rn(0.0f);
                    for (int col = G.pw + G.W + lane; col < G.LDS; col += 32) d[col] = __float2bfloat16_rn(0.0f);
                }
            }
        } else {
            for (int s = warp; s < G.nstrip; s += nw) {
                const float *xr = strip_row(s);
                bf16 *d = Xs + s * G.LDS;
                for (int col = lane; col < G.LDS; col += 32) {
                    const int xi = col - G.pw;
                    d[col] = __float2bfloat16_rn(xr && (unsigned)xi < (unsigned)G.W ? xr[xi] : 0.0f);
                }
            }
        }
        __syncthreads();
        float acc[NT][4];
#pragma unroll
        for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < K8P / 2; kk++) {
            uint32_t af[4];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int j = 2 * kk + h;
                const bf16 *sp = j < K8 ? Xs + ((j / KH) * G.SR + j % KH) * G.LDS : Zs;
                af[2 * h] = *(const uint32_t *)(sp + (j < K8 ? ro0 : 0) + co0);
                af[2 * h + 1] = *(const uint32_t *)(sp + (j < K8 ? ro1 : 0) + co1);
            }
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, smem_u32(Ws + (np * 16 + kr) * LDW + kk * 16 + kc));
                mma_bf16(acc[2 * np], af[0], af[1], af[2], af[3], b0, b1);
                mma_bf16(acc[2 * np + 1], af[0], af[1], af[2], af[3], b2, b3);
            }
        }
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {                          // rows g, g + 8
            const int m = hh ? m1 : m0, r = hh ? r1 : r0, w = hh ? w1 : w0;
            if (m >= M || h0 + r >= G.Ho) continue;
            TO *yp = Y + n * G.ysN + to * G.ysT + (int64_t)(h0 + r) * G.ysH + w * G.ysW;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const int co = t * 8 + 2 * q;
                stf(yp + co, acc[t][2 * hh] + (bias ? bias[co] : 0.0f));
                stf(yp + co + 1, acc[t][2 * hh + 1] + (bias ? bias[co + 1] : 0.0f));
            }
        }
    }
}
bool stem_env() { const char *e = getenv("SCVRL_CUDA_STEM"); return !(e && !strcmp(e, "im2col")); }
// The implicit-GEMM stem applies (BF16 mode, the shapes above, an even width stride: 4-byte A
// fragments; int offsets; output rows of <= 128 positions).
bool stem_ok(int prec, const CP &p, const G5 &gx, const G5 &gy) {
    const int64_t k8 = gx.C * p.kt * p.kh;
    return prec == SCVRL_PREC_BF16 && stem_env() && !conv_old() && p.groups == 1 && p.layout == SCVRL_LAYOUT_NDHWC && gx.sW == 1 && p.sw % 2 == 0 &&
           gy.sC == 1 && p.kh == 7 && p.kw <= 8 && (k8 == 42 || k8 == 63) && (gy.C == 32 || gy.C == 64 || gy.C == 96 || gy.C == 128) &&
           gy.W <= 128 && gy.W >= 1 && g5_span(gx) < ((int64_t)1 << 31) && g5_span(gy) < ((int64_t)1 << 31);
}
template <int K8, int NT, typename TO> int stem_launch(Run &R, const StemG &G, int ntile, int threads, const float *X, const float *W,
                                                       const float *B, TO *Y) {
    const size_t sm = (size_t)NT * 8 * StemK<K8>::LDW * 2 + (size_t)(G.nstrip + 1) * G.LDS * 2;
    auto k = k_stem_mma<K8, NT, TO>;
    SC_CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
    int nb = 0;        // one wave of blocks at this shape's shared memory
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, k, threads, sm) != cudaSuccess || nb < 1) nb = 1;
    const int grid = ntile < sm_count() * nb ? ntile : sm_count() * nb;
    k<<<grid, threads, sm, R.s>>>(G, ntile, X, W, B, Y);
    SC_LAUNCH();
    return 0;
}
int stem_run(Run &R, const scvrl_tensor *t, const CP &p, const G5 &gx, const G5 &gy, const float *X, const float *W, const float *B) {
    StemG G;
    G.Ci = (int)gx.C; G.T = (int)gx.T; G.H = (int)gx.H; G.W = (int)gx.W; G.To = (int)gy.T; G.Ho = (int)gy.H; G.Wo = (int)gy.W;
    G.st = (int)p.st; G.sh = (int)p.sh; G.sw = (int)p.sw; G.pt = (int)p.pt; G.ph = (int)p.ph; G.pw = (int)p.pw; G.kt = (int)p.kt; G.kw = (int)p.kw;
    G.RW = 128 / G.Wo < 1 ? 1 : 128 / G.Wo;
    if (G.RW > G.Ho) G.RW = G.Ho;
    G.nhb = (G.Ho + G.RW - 1) / G.RW;
    G.SR = G.sh * (G.RW - 1) + 7;
    G.LDS = (G.sw * (G.Wo - 1) + 8 + 1) / 2 * 2;
    G.nstrip = G.Ci * G.kt * G.SR;
    G.xsN = gx.sN; G.xsC = gx.sC; G.xsT = gx.sT; G.xsH = gx.sH;
    G.ysN = gy.sN; G.ysT = gy.sT; G.ysH = gy.sH; G.ysW = gy.sW;
    G.vec = G.W % 4 == 0 && G.W <= 256 && G.pw < 32 && !((gx.sN | gx.sC | gx.sT | gx.sH) & 3) && !((uintptr_t)X & 15);
    const int64_t nt = gy.N * gy.T * G.nhb;
    if (nt <= 0) return 0;
    if (nt >= ((int64_t)1 << 31)) { seterr(R.err, R.errlen, "cuda stem: %lld tiles", (long long)nt); return -1; }
    const int threads = (G.RW * G.Wo + 15) / 16 * 32, k8 = (int)(gx.C * p.kt * p.kh);
    return with_io(false, HF(R, t), [&](auto, auto to) {
        TY(to) *Y = (TY(to) *)P(R, t);
#define STEM_NT(K8_) switch (gy.C) { \
        case 32: return stem_launch<K8_, 4>(R, G, (int)nt, threads, X, W, B, Y); \
        case 64: return stem_launch<K8_, 8>(R, G, (int)nt, threads, X, W, B, Y); \
        case 96: return stem_launch<K8_, 12>(R, G, (int)nt, threads, X, W, B, Y); \
        default: return stem_launch<K8_, 16>(R, G, (int)nt, threads, X, W, B, Y); }
        if (k8 == 42) STEM_NT(42)
        STEM_NT(63)
#undef STEM_NT
    });
}

int op_conv(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *x = t->src[0], *w = t->src[1], *b = t->src[2];
    CP p = conv_params(t, w);
    G5 gx = geom5(x, p.layout), gy = geom5(t, p.layout);
    const float *X = F(R, x), *W = F(R, w), *B = b ? F(R, b) : nullptr;
    float *Y = F(R, t);
    int64_t ny = scvrl_nelements(t);
    if (!ny) return 0;
    if (is_dw_last(p, gx, gy)) {
        if (dw_reg(p, gx, gy))      // input and output each float or bf16 (plan_half)
            return with_io(HF(R, x), HF(R, t), [&](auto ti, auto to) {
                int npos = (int)(gy.N * gy.T * gy.H * gy.W);
                DwI di = dw_ints(gx, gy, p);
                const TY(ti) *Xh = (const TY(ti) *)P(R, x);
                TY(to) *Yh = (TY(to) *)P(R, t);
                const bool wl = dw_wl();
                const float *Wu = wl ? dw_wt(R, W, gx.C) : W;
                if (!Wu) return -1;
                return dw_v4(gx, gy, Xh, Yh) ? dw_fwd_launch<4>(R, npos, (int)(gx.C / 4), di, Xh, Wu, B, Yh, wl)
                                             : dw_fwd_launch<1>(R, npos, (int)gx.C, di, Xh, Wu, B, Yh, wl);
            });
        if (ny < ((int64_t)1 << 31)) {
            k_dw_fwd<uint32_t><<<grid_for(ny), 256, 0, R.s>>>((uint32_t)ny, gx, gy, p, X, W, B, Y);
        } else {
            k_dw_fwd<int64_t><<<grid_for(ny), 256, 0, R.s>>>(ny, gx, gy, p, X, W, B, Y);
        }
        SC_LAUNCH();
        return 0;
    }
    if (p.groups != 1) {
        k_conv_direct<<<grid_for(ny), 256, 0, R.s>>>(ny, gx, gy, p, X, W, B, Y);
        SC_LAUNCH();
        return 0;
    }
    if (stem_ok(R.C->prec, p, gx, gy)) return stem_run(R, t, p, gx, gy, X, W, B);
    int64_t K = gx.C * p.kt * p.kh * p.kw, Pp = gy.T * gy.H * gy.W, Co = gy.C;
    int64_t per = conv_chunk(gx.N, Pp * K);
    const bool bf = R.C->prec == SCVRL_PREC_BF16;        // bf16 columns
    void *cols = R.C->scratch;
    const int64_t Kp = cols_pitch(gx, gy, p, per, bf);
    // NDHWC with padded bf16 rows: the weights too, [Co, Kp] bf16 with zeros past K, after the columns
    bf16 *Wp = nullptr;
    if (Kp != K && p.layout != SCVRL_LAYOUT_NCDHW) {
        Wp = (bf16 *)(R.C->scratch + (((size_t)per * Pp * Kp * 2 + 255) & ~(size_t)255));
        k_pad_bf16<<<grid_for(Co * Kp), 256, 0, R.s>>>(Co, K, Kp, W, Wp);
        SC_LAUNCH();
    }
    for (int64_t n0 = 0; n0 < gx.N; n0 += per) {
        int64_t ns = gx.N - n0 < per ? gx.N - n0 : per;
        if (im2col(R, n0, ns, gx, gy, p, X, cols, bf)) return -1;
        if (p.layout == SCVRL_LAYOUT_NCDHW) {
            // Y_n [Co, P] = W [Co, K] cols_n^T
            if (gemm_h(R, 0, 1, Co, Pp, K, W, false, K, 0, cols, bf, Kp, Pp * Kp, Y + n0 * gy.sN, false, Pp, gy.sN, ns, 0.0f)) return -1;
        } else {
            // Y [ns*P, Co] = cols [ns*P, K] W^T (+ b): a linear layer, the bias in cuBLASLt's epilogue
            // (Y contiguous: the chunk's rows are consecutive); padded: over Kp, the pad columns zero
            int rc = ns * Pp < ((int64_t)1 << 31) ? lt_linear(R, ns * Pp, Kp, Co, cols, Wp ? (const void *)Wp : W, B, Y + n0 * gy.sN, nullptr,
                                                              bf, false, Wp != nullptr) : 0;
            if (rc < 0) return -1;
            if (rc) continue;
            if (gemm_h(R, 0, 1, ns * Pp, Co, Kp, cols, bf, Kp, 0, Wp ? (const void *)Wp : W, Wp != nullptr, Kp, 0, Y + n0 * gy.sN, false, Co, 0, 1,
                       0.0f)) return -1;
            if (B) { k_bias<<<grid_for(ns * Pp * Co), 256, 0, R.s>>>(ns * Pp * Co, 1, Co, B, Y + n0 * gy.sN); SC_LAUNCH(); }
        }
    }
    if (B && p.layout == SCVRL_LAYOUT_NCDHW) {
        k_bias<<<grid_for(ny), 256, 0, R.s>>>(ny, Pp, Co, B, Y);
        SC_LAUNCH();
    }
    return 0;
}
// The backward-x gather of a 3x3x3 depthwise conv, VW channels per thread, with the common strides
// (temporal 1, spatial 1, 2, 4, 8) as template constants; WL: weights from the transposed copy.
template <int VW, bool WL> int dw_back_x_run(Run &R, const G5 &gx, const G5 &gy, const CP &p, const float *DY, const float *W, float *DX) {
    int npos = (int)(gx.N * gx.T * gx.H * gx.W), CV = (int)(gx.C / VW);
    dim3 g = dw_gridv(npos, CV, wave_blocks<k_dw_back_x_vec<3, 3, 3, VW, 1, 2, WL>, 128>());
    DwI di = dw_ints(gx, gy, p);
    bool sq = p.st == 1 && p.sh == p.sw;
    if (sq && p.sh == 1) k_dw_back_x_vec<3, 3, 3, VW, 1, 1, WL><<<g, 128, 0, R.s>>>(npos, CV, di, DY, W, DX);
    else if (sq && p.sh == 2) k_dw_back_x_vec<3, 3, 3, VW, 1, 2, WL><<<g, 128, 0, R.s>>>(npos, CV, di, DY, W, DX);
    else if (sq && p.sh == 4) k_dw_back_x_vec<3, 3, 3, VW, 1, 4, WL><<<g, 128, 0, R.s>>>(npos, CV, di, DY, W, DX);
    else if (sq && p.sh == 8) k_dw_back_x_vec<3, 3, 3, VW, 1, 8, WL><<<g, 128, 0, R.s>>>(npos, CV, di, DY, W, DX);
    else k_dw_back_x_vec<3, 3, 3, VW, 0, 0, WL><<<g, 128, 0, R.s>>>(npos, CV, di, DY, W, DX);
    return 0;
}
// The time-column backward-x (dw_tcol_frames applies), spatial strides 1 and 2 as constants; DX
// float, or bf16 when a bf16 concat's placement has it write there (dx_half).
template <int TT, int VW, typename TO> int dw_back_x_tcol(Run &R, const G5 &gx, const DwI &di, const float *DY, const float *Wt, TO *DX) {
    int npos = (int)(gx.N * gx.H * gx.W), CV = (int)(gx.C / VW);
    dim3 g = dw_gridv(npos, CV, wave_blocks<k_dw_back_x_tcol<TT, VW, 2, TO>, 128>());
    if (di.sh == di.sw && di.sh == 1) k_dw_back_x_tcol<TT, VW, 1><<<g, 128, 0, R.s>>>(npos, CV, di, DY, Wt, DX);
    else if (di.sh == di.sw && di.sh == 2) k_dw_back_x_tcol<TT, VW, 2><<<g, 128, 0, R.s>>>(npos, CV, di, DY, Wt, DX);
    else k_dw_back_x_tcol<TT, VW, 0><<<g, 128, 0, R.s>>>(npos, CV, di, DY, Wt, DX);
    SC_LAUNCH();
    return 0;
}
template <int TT, int VW> int dw_back_x_tcol_io(Run &R, const G5 &gx, const DwI &di, const float *DY, const float *Wt, float *DX, bool dx_half) {
    return dx_half ? dw_back_x_tcol<TT, VW>(R, gx, di, DY, Wt, (bf16 *)DX) : dw_back_x_tcol<TT, VW>(R, gx, di, DY, Wt, DX);
}
template <int VW> int dw_back_x_vec(Run &R, const G5 &gx, const G5 &gy, const CP &p, const float *DY, const float *W, float *DX,
                                    bool dx_half = false) {
    if (!dw_wl()) return dw_back_x_run<VW, false>(R, gx, gy, p, DY, W, DX);
    const float *Wt = dw_wt(R, W, gx.C);
    if (!Wt) return -1;
    const DwI di = dw_ints(gx, gy, p);
    switch (dw_tcol_frames(di, true, true)) {
    case 2: return dw_back_x_tcol_io<2, VW>(R, gx, di, DY, Wt, DX, dx_half);
    case 4: return dw_back_x_tcol_io<4, VW>(R, gx, di, DY, Wt, DX, dx_half);
    case 8: return dw_back_x_tcol_io<8, VW>(R, gx, di, DY, Wt, DX, dx_half);
    case 16: return dw_back_x_tcol_io<16, VW>(R, gx, di, DY, Wt, DX, dx_half);
    default: return dw_back_x_run<VW, true>(R, gx, gy, p, DY, Wt, DX);
    }
}
// The backward-x writes bf16 (a bf16 concat's placement, plan_places) only on the time-column kernels.
bool dw_back_x_half_ok(const CP &p, const G5 &gx, const G5 &gy) {
    return is_dw_last(p, gx, gy) && dw_reg(p, gx, gy) && dw_wl() && dw_tcol_frames(dw_ints(gx, gy, p), true, true) != 0;
}
// Applies: the 3x3x3 weight-gradient conditions and the time-column ones.
int dw_w_tcol_frames(const CP &p, const G5 &gx, const G5 &gy) {
    return dw_w_taps(p, gx, gy) ? dw_tcol_frames(dw_ints(gx, gy, p), true, true) : 0;
}
template <typename TX> int dw_back_w_tcol(Run &R, int tt, const G5 &gx, const G5 &gy, const CP &p, const float *DY, const TX *X,
                                          double *part, DwWT *out) {
    bool v2 = gx.C % 2 == 0 && !((gx.sN | gx.sT | gx.sH | gx.sW | gy.sN | gy.sT | gy.sH | gy.sW) & 1) &&
              !((uintptr_t)DY & 7) && !((uintptr_t)X & (2 * sizeof(TX) - 1));
    DwWT g = dw_w_tcol_geom(gx, gy, v2 ? 2 : 1);
    DwI di = dw_ints(gx, gy, p);
    size_t sm = (size_t)27 * g.CV * g.VW * 8;
    dim3 grid((unsigned)g.nblk, (unsigned)g.nsl);
    const int C = (int)gx.C;
#define DWWT_LAUNCH(T_) do { if (v2) k_dw_back_w_tcol<T_, 2, TX><<<grid, g.R * g.CV, sm, R.s>>>(g.ncol, g.per, g.CV, C, di, DY, X, part); \
                             else k_dw_back_w_tcol<T_, 1, TX><<<grid, g.R * g.CV, sm, R.s>>>(g.ncol, g.per, g.CV, C, di, DY, X, part); } while (0)
    switch (tt) {
    case 2: DWWT_LAUNCH(2); break;
    case 4: DWWT_LAUNCH(4); break;
    case 8: DWWT_LAUNCH(8); break;
    default: DWWT_LAUNCH(16); break;
    }
#undef DWWT_LAUNCH
    SC_LAUNCH();
    *out = g;
    return 0;
}
int op_conv_back_x(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *dy = t->src[0], *w = t->src[1];
    CP p = conv_params(t, w);
    G5 gx = geom5(t, p.layout), gy = geom5(dy, p.layout);
    const float *DY = F(R, dy), *W = F(R, w);
    float *DX = F(R, t);
    int64_t nx = scvrl_nelements(t);
    if (!nx) return 0;
    if (is_dw_last(p, gx, gy)) {
        if (dw_reg(p, gx, gy)) {
            const bool xh = HF(R, t);       // only where dw_back_x_half_ok (plan_places)
            if (dw_v4(gx, gy, DY, DX)) { if (dw_back_x_vec<4>(R, gx, gy, p, DY, W, DX, xh)) return -1; }
            else if (dw_back_x_vec<1>(R, gx, gy, p, DY, W, DX, xh)) return -1;
        } else if (nx < ((int64_t)1 << 31)) {
            k_dw_back_x<uint32_t><<<grid_for(nx), 256, 0, R.s>>>((uint32_t)nx, gx, gy, p, DY, W, DX);
        } else {
            k_dw_back_x<int64_t><<<grid_for(nx), 256, 0, R.s>>>(nx, gx, gy, p, DY, W, DX);
        }
        SC_LAUNCH();
        return 0;
    }
    if (p.groups != 1) {
        k_conv_direct_back_x<<<grid_for(nx), 256, 0, R.s>>>(nx, gx, gy, p, DY, W, DX);
        SC_LAUNCH();
        return 0;
    }
    int64_t K = gx.C * p.kt * p.kh * p.kw, Pp = gy.T * gy.H * gy.W, Co = gy.C;
    int64_t per = conv_chunk(gx.N, Pp * K);
    float *dcols = (float *)R.C->scratch;
    for (int64_t n0 = 0; n0 < gx.N; n0 += per) {
        int64_t ns = gx.N - n0 < per ? gx.N - n0 : per;
        if (p.layout == SCVRL_LAYOUT_NCDHW) {
            // dcols_n [P, K] = dy_n^T [P, Co] W [Co, K]
            if (gemm(R, 1, 0, Pp, K, Co, DY + n0 * gy.sN, Pp, gy.sN, W, K, 0, dcols, K, Pp * K, ns, 0.0f)) return -1;
        } else {
            if (gemm(R, 0, 0, ns * Pp, K, Co, DY + n0 * gy.sN, Co, 0, W, K, 0, dcols, K, 0, 1, 0.0f)) return -1;
        }
        int64_t tot = ns * gx.C * gx.T * gx.H * gx.W;
        if (tot) { k_col2im<<<grid_for(tot), 256, 0, R.s>>>(tot, n0, gx, gy, p, dcols, DX); SC_LAUNCH(); }
    }
    return 0;
}
int op_conv_back_w(Run &R, scvrl_tensor *t) {
    const scvrl_tensor *dy = t->src[0], *x = t->src[1];
    CP p = conv_params(t, t);
    G5 gx = geom5(x, p.layout), gy = geom5(dy, p.layout);
    const float *DY = F(R, dy), *X = F(R, x);
    float *DW = F(R, t);
    int64_t nw = scvrl_nelements(t);
    if (!nw) return 0;
    if (is_dw_last(p, gx, gy)) {
        int64_t C = gx.C, K3 = p.kt * p.kh * p.kw, rows = gy.N * gy.T * gy.H;
        if (!rows) { SC_CU(cudaMemsetAsync(DW, 0, (size_t)nw * 4, R.s)); return 0; }
        double *part = (double *)R.C->scratch;
        int64_t nch, per;
        if (int tt = dw_w_tcol_frames(p, gx, gy)) {
            DwWT g;
            if (HF(R, x) ? dw_back_w_tcol(R, tt, gx, gy, p, DY, (const bf16 *)P(R, x), part, &g) : dw_back_w_tcol(R, tt, gx, gy, p, DY, X, part, &g))
                return -1;
            k_colsum_final32<<<(unsigned)((C * K3 + 31) / 32), dim3(32, 32), 0, R.s>>>(part, g.nblk, C * K3, DW, C, K3);
            SC_LAUNCH();
            return 0;
        }
        if (dw_w_taps(p, gx, gy)) {
            dw_w_geom(gx, gy, &nch, &per);
            dim3 grid((unsigned)nch, (unsigned)((C + 31) / 32)), block(32, DWW_WARPS);
            if (HF(R, x))      // x stored as bf16 (plan_half: only on this path)
                k_dw_back_w_taps<3, 3, 3, bf16><<<grid, block, 0, R.s>>>((int)(gy.N * gy.T * gy.H * gy.W), (int)per, gx, gy, p, DY,
                                                                         (const bf16 *)P(R, x), part, fdiv_of((uint32_t)gy.T),
                                                                         fdiv_of((uint32_t)gy.H), fdiv_of((uint32_t)gy.W));
            else
                k_dw_back_w_taps<3, 3, 3, float><<<grid, block, 0, R.s>>>((int)(gy.N * gy.T * gy.H * gy.W), (int)per, gx, gy, p, DY, X,
                                                                          part, fdiv_of((uint32_t)gy.T), fdiv_of((uint32_t)gy.H),
                                                                          fdiv_of((uint32_t)gy.W));
        } else {
            nch = dw_chunks(rows, K3 * C), per = (rows + nch - 1) / nch;
            int64_t tot = nch * K3 * C;
            k_dw_back_w_part<<<grid_for(tot), 256, 0, R.s>>>(tot, rows, per, gx, gy, p, DY, X, part);
        }
        SC_LAUNCH();
        if (dw_w_taps(p, gx, gy)) k_colsum_final<<<(unsigned)((C * K3 + 31) / 32), dim3(32, 8), 0, R.s>>>(part, nch, C * K3, DW, C, K3);
        else k_dw_back_w_final<<<grid_for(C * K3), 256, 0, R.s>>>(C, K3, nch, part, DW);
        SC_LAUNCH();
        return 0;
    }
    if (p.groups != 1) {
        k_conv_direct_back_w<<<(unsigned)nw, 256, 0, R.s>>>(gx, gy, p, DY, X, DW);
        SC_LAUNCH();
        return 0;
    }
    int64_t K = gx.C * p.kt * p.kh * p.kw, Pp = gy.T * gy.H * gy.W, Co = gy.C;
    if (!gx.N || !Pp) { SC_CU(cudaMemsetAsync(DW, 0, (size_t)nw * 4, R.s)); return 0; }
    int64_t per = conv_chunk(gx.N, Pp * K);
    const bool bf = R.C->prec == SCVRL_PREC_BF16;        // bf16 columns
    const int64_t Kp = cols_pitch(gx, gy, p, per, bf);
    void *cols = R.C->scratch;
    for (int64_t n0 = 0; n0 < gx.N; n0 += per) {
        int64_t ns = gx.N - n0 < per ? gx.N - n0 : per;
        if (im2col(R, n0, ns, gx, gy, p, X, cols, bf)) return -1;
        if (p.layout == SCVRL_LAYOUT_NCDHW) {
            // DW [Co, K] += dy_n [Co, P] cols_n [P, K]
            for (int64_t nl = 0; nl < ns; nl++)
                if (gemm_h(R, 0, 0, Co, K, Pp, DY + (n0 + nl) * gy.sN, false, Pp, 0, (char *)cols + nl * Pp * Kp * (bf ? 2 : 4), bf, Kp, 0,
                           DW, false, K, 0, 1, (n0 + nl) > 0 ? 1.0f : 0.0f)) return -1;
        } else {
            // DW [Co, K] += dy^T [Co, ns*P] cols [ns*P, K] (the first K of Kp columns)
            if (gemm_h(R, 1, 0, Co, K, ns * Pp, DY + n0 * gy.sN, false, Co, 0, cols, bf, Kp, 0, DW, false, K, 0, 1, n0 > 0 ? 1.0f : 0.0f)) return -1;
        }
    }
    return 0;
}

PP pool_params(const scvrl_tensor *t) {
    PP p;
    for (int i = 0; i < 3; i++) { p.k[i] = t->ip[i]; p.s[i] = t->ip[3 + i]; p.p[i] = t->ip[6 + i]; }
    return p;
}
int op_maxpool(Run &R, scvrl_tensor *t) {
    int layout = (int)t->ip[9];
    G5 gx = geom5(t->src[0], layout), gy = geom5(t, layout);
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    const float *X = F(R, t->src[0]);
    float *Y = F(R, t);
    if (gx.sC == 1 && gy.sC == 1 && !conv_old() && dw_v4(gx, gy, X, Y) && g5_span(gx) < ((int64_t)1 << 31) &&
        g5_span(gy) < ((int64_t)1 << 31)) {
        PP q = pool_params(t);
        PI pi;
        for (int j = 0; j < 3; j++) { pi.k[j] = (int)q.k[j]; pi.s[j] = (int)q.s[j]; pi.p[j] = (int)q.p[j]; }
        CP cp;
        memset(&cp, 0, sizeof cp);
        k_maxpool_v4<<<grid_for(n / 4), 256, 0, R.s>>>((int)(n / 4), (int)(gx.C / 4), dw_ints(gx, gy, cp), pi, X, Y);
    } else if (gx.sC == 1 && gy.sC == 1) k_maxpool<true><<<grid_for(n), 256, 0, R.s>>>(n, gx, gy, pool_params(t), X, Y);
    else k_maxpool<false><<<grid_for(n), 256, 0, R.s>>>(n, gx, gy, pool_params(t), X, Y);
    SC_LAUNCH();
    return 0;
}
int op_maxpool_back(Run &R, scvrl_tensor *t) {
    int layout = (int)t->ip[9];
    const scvrl_tensor *dy = t->src[0], *x = t->src[1];
    G5 gx = geom5(x, layout), gy = geom5(dy, layout), gd = geom5(t, layout);
    int64_t nx = scvrl_nelements(t), ny = scvrl_nelements(dy);
    if (!nx) return 0;
    SC_CU(cudaMemsetAsync(F(R, t), 0, (size_t)nx * 4, R.s));
    if (!ny) return 0;
    const char *e = getenv("SCVRL_CUDA_POOLB");        // "old": the 64-bit per-element kernel
    if (gx.sC == 1 && gy.sC == 1 && gd.sC == 1 && !(e && !strcmp(e, "old")) && dw_v4(gx, gy, F(R, x), F(R, dy)) &&
        !(((gd.sN | gd.sT | gd.sH | gd.sW) & 3) | ((uintptr_t)F(R, t) & 15)) && g5_span(gx) < ((int64_t)1 << 31) &&
        g5_span(gy) < ((int64_t)1 << 31) && g5_span(gd) < ((int64_t)1 << 31)) {
        PP q = pool_params(t);
        PI pi;
        for (int j = 0; j < 3; j++) { pi.k[j] = (int)q.k[j]; pi.s[j] = (int)q.s[j]; pi.p[j] = (int)q.p[j]; }
        CP cp;
        memset(&cp, 0, sizeof cp);
        k_maxpool_back_v4<<<grid_for(ny / 4), 256, 0, R.s>>>((int)(ny / 4), (int)(gx.C / 4), dw_ints(gx, gy, cp), pi, (int)gd.sN, (int)gd.sT,
                                                             (int)gd.sH, (int)gd.sW, F(R, x), F(R, dy), F(R, t));
        SC_LAUNCH();
        return 0;
    }
    if (gx.sC == 1 && gy.sC == 1) k_maxpool_back<true><<<grid_for(ny), 256, 0, R.s>>>(ny, gx, gy, gd, pool_params(t), F(R, x), F(R, dy), F(R, t));
    else k_maxpool_back<false><<<grid_for(ny), 256, 0, R.s>>>(ny, gx, gy, gd, pool_params(t), F(R, x), F(R, dy), F(R, t));
    SC_LAUNCH();
    return 0;
}

// --- attention ---
AttG att_geom(Run &R, const scvrl_tensor *q, const scvrl_tensor *k, const scvrl_tensor *v, float scale) {
    AttG a;
    a.B = q->ne[0]; a.H = q->ne[1]; a.Nq = q->ne[2]; a.Nk = k->ne[2]; a.d = q->ne[3];
    a.q = F(R, q); a.k = F(R, k); a.v = F(R, v);
    a.qh = HF(R, q); a.kh = HF(R, k); a.vh = HF(R, v);
    for (int i = 0; i < 3; i++) { a.sq[i] = q->st[i]; a.sk[i] = k->st[i]; a.sv[i] = v->st[i]; }
    if (a.Nq == 1) a.sq[2] = a.d;
    if (a.Nk == 1) { a.sk[2] = a.d; a.sv[2] = a.d; }
    a.scale = scale;
    return a;
}

// ---------------------------------------------------------------------------------------------
// Attention through cuBLAS (tensor cores in TF32 mode): per chunk of (b, h) pairs, S = scale Q K^T
// into scratch, a warp-per-row softmax in place, O = P V; the backward recomputes P, then
// dP = dO V^T, dS = P (dP - rowsum(P dP)) scale, dQ = dS K, dK = dS^T Q, dV = P^T dO. Batched GEMMs
// take pointer arrays (q/k/v are strided views of the qkv projection, O is [B, Nq, H, d]), written
// by a small kernel into scratch. Scratch: the arrays, then one or two [chunk, Nq, Nk] buffers,
// with chunk = as many (b, h) pairs as fit in att_limit() bytes (1 GiB; SCVRL_CUDA_ATTN_MB sets it,
// the tests use 1 MB so that every shape runs in several chunks).
// ---------------------------------------------------------------------------------------------
size_t att_limit() {
    static size_t lim = 0;
    if (!lim) { const char *e = getenv("SCVRL_CUDA_ATTN_MB"); long mb = e ? atol(e) : 0; lim = (size_t)(mb > 0 ? mb : 1024) << 20; }
    return lim;
}
#define ATT_NARR 9
struct AttPtrSpec { const char *base[ATT_NARR]; int64_t s0[ATT_NARR], s1[ATT_NARR]; int n; };
// arr[k][j] = base[k] + (b s0[k] + h s1[k]) * 4 bytes for pair j = b H + h, j in [0, BH)
__global__ void k_attn_ptrs(AttPtrSpec P, int64_t BH, int64_t H, const void **arr) {
    GRID_STRIDE(j, BH) {
        int64_t b = j / H, h = j % H;
        for (int k = 0; k < P.n; k++) arr[k * BH + j] = P.base[k] + (b * P.s0[k] + h * P.s1[k]) * 4;
    }
}
// Softmax over each row of S [rows, Nk] in place (scores already scaled); a warp per row.
__global__ void k_row_softmax(int64_t rows, int64_t Nk, float *S) {
    int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (r >= rows) return;
    float *x = S + r * Nk, m = -INFINITY, l = 0.0f;
    for (int64_t j = lane; j < Nk; j += 32) m = fmaxf(m, x[j]);
    m = warp_max(m);
    for (int64_t j = lane; j < Nk; j += 32) { float e = expf(x[j] - m); x[j] = e; l += e; }
    l = warp_sum(l);
    float inv = 1.0f / l;
    for (int64_t j = lane; j < Nk; j += 32) x[j] *= inv;
}
// dS = P (dP - sum_j P dP) scale, in place over dP; a warp per row.
__global__ void k_row_softmax_back(int64_t rows, int64_t Nk, const float *Pm, float *dP, float scale) {
    int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (r >= rows) return;
    const float *p = Pm + r * Nk;
    float *g = dP + r * Nk, D = 0.0f;
    for (int64_t j = lane; j < Nk; j += 32) D += p[j] * g[j];
    D = warp_sum(D);
    for (int64_t j = lane; j < Nk; j += 32) g[j] = p[j] * (g[j] - D) * scale;
}

// Row-major C[i] = alpha op(A[i]) op(B[i]) + beta C[i] for pointer arrays (device) of `batch`.
int gemm_ptrs(Run &R, int tA, int tB, int64_t M, int64_t N, int64_t K, float alpha, const void *const *A, int64_t lda,
              const void *const *B, int64_t ldb, float beta, void *const *Cm, int64_t ldc, int64_t batch) {
    if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) return 0;
    cublasComputeType_t ct = compute_type(R.C->prec);
    cublasOperation_t oa = tA ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tB ? CUBLAS_OP_T : CUBLAS_OP_N;
    SC_BLAS(cublasGemmBatchedEx(R.C->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F,
                                (int)lda, &beta, Cm, CUDA_R_32F, (int)ldc, (int)batch, ct, CUBLAS_GEMM_DEFAULT));
    return 0;
}

// (b, h) pairs per chunk, and the scratch bytes attention needs (nbuf: 1 forward, 2 backward).
int64_t att_chunk(int64_t BH, int64_t Nq, int64_t Nk, int nbuf) {
    size_t per = (size_t)(Nq * Nk) * 4 * (size_t)nbuf;
    int64_t c = per ? (int64_t)(att_limit() / per) : BH;
    return c < 1 ? 1 : c > BH ? BH : c;
}
size_t scratch_attn(const scvrl_tensor *t, int nbuf) {
    const scvrl_tensor *q = t->src[0], *k = t->src[1];
    int64_t BH = q->ne[0] * q->ne[1], Nq = q->ne[2], Nk = k->ne[2], c = att_chunk(BH, Nq, Nk, nbuf);
    return (size_t)(ATT_NARR * BH) * sizeof(void *) + 256 + (size_t)(c * Nq * Nk) * 4 * (size_t)nbuf + 256;
}

// Pointer arrays for operands (base, per-b stride, per-h stride), returned in *arr (ATT_NARR x BH).
int att_ptrs(Run &R, const AttG &a, const AttPtrSpec &P, const void ***arr) {
    *arr = (const void **)R.C->scratch;
    int64_t BH = a.B * a.H;
    k_attn_ptrs<<<grid_for(BH), 256, 0, R.s>>>(P, BH, a.H, *arr);
    SC_LAUNCH();
    return 0;
}
float *att_buf(Run &R, const AttG &a) {
    size_t off = ((size_t)(ATT_NARR * a.B * a.H) * sizeof(void *) + 255) & ~(size_t)255;
    return (float *)(R.C->scratch + off);
}

// S (chunk c0..c0+nc) = scale Q K^T, then P = softmax(S) in place. arr: 0 q, 1 k, 2 S.
int att_probs(Run &R, const AttG &a, const void **arr, int64_t c0, int64_t nc) {
    int64_t BH = a.B * a.H;
    if (gemm_ptrs(R, 0, 1, a.Nq, a.Nk, a.d, a.scale, arr + 0 * BH + c0, a.sq[2], arr + 1 * BH + c0, a.sk[2], 0.0f,
                  (void *const *)(arr + 2 * BH + c0), a.Nk, nc)) return -1;
    int64_t rows = nc * a.Nq;
    k_row_softmax<<<(unsigned)((rows + 7) / 8), 256, 0, R.s>>>(rows, a.Nk, att_buf(R, a));
    SC_LAUNCH();
    return 0;
}

int attn_gemm_fwd(Run &R, const AttG &a, float *O) {
    int64_t BH = a.B * a.H, nc = att_chunk(BH, a.Nq, a.Nk, 1);
    float *S = att_buf(R, a);
    for (int64_t c0 = 0; c0 < BH; c0 += nc) {
        int64_t n = BH - c0 < nc ? BH - c0 : nc;
        AttPtrSpec P;
        memset(&P, 0, sizeof P);
        P.n = 5;
        P.base[0] = (const char *)a.q; P.s0[0] = a.sq[0]; P.s1[0] = a.sq[1];
        P.base[1] = (const char *)a.k; P.s0[1] = a.sk[0]; P.s1[1] = a.sk[1];
        P.base[2] = (const char *)(S - (c0 * a.Nq * a.Nk)); P.s0[2] = a.H * a.Nq * a.Nk; P.s1[2] = a.Nq * a.Nk;
        P.base[3] = (const char *)a.v; P.s0[3] = a.sv[0]; P.s1[3] = a.sv[1];
        P.base[4] = (const char *)O; P.s0[4] = a.Nq * a.H * a.d; P.s1[4] = a.d;          // O [B, Nq, H, d]
        const void **arr;
        if (att_ptrs(R, a, P, &arr)) return -1;
        if (att_probs(R, a, arr, c0, n)) return -1;
        if (gemm_ptrs(R, 0, 0, a.Nq, a.d, a.Nk, 1.0f, arr + 2 * BH + c0, a.Nk, arr + 3 * BH + c0, a.sv[2], 0.0f,
                      (void *const *)(arr + 4 * BH + c0), a.H * a.d, n)) return -1;
    }
    return 0;
}

int attn_gemm_back(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV) {
    int64_t BH = a.B * a.H, nc = att_chunk(BH, a.Nq, a.Nk, 2);
    float *S = att_buf(R, a), *G = S + nc * a.Nq * a.Nk;
    for (int64_t c0 = 0; c0 < BH; c0 += nc) {
        int64_t n = BH - c0 < nc ? BH - c0 : nc;
        AttPtrSpec P;
        memset(&P, 0, sizeof P);
        P.n = 9;
        int64_t sS = a.Nq * a.Nk, off = c0 * sS;
        P.base[0] = (const char *)a.q; P.s0[0] = a.sq[0]; P.s1[0] = a.sq[1];
        P.base[1] = (const char *)a.k; P.s0[1] = a.sk[0]; P.s1[1] = a.sk[1];
        P.base[2] = (const char *)(S - off); P.s0[2] = a.H * sS; P.s1[2] = sS;
        P.base[3] = (const char *)a.v; P.s0[3] = a.sv[0]; P.s1[3] = a.sv[1];
        P.base[4] = (const char *)DO; P.s0[4] = a.Nq * a.H * a.d; P.s1[4] = a.d;         // dO [B, Nq, H, d]
        P.base[5] = (const char *)(G - off); P.s0[5] = a.H * sS; P.s1[5] = sS;
        P.base[6] = (const char *)DQ; P.s0[6] = a.H * a.Nq * a.d; P.s1[6] = a.Nq * a.d;  // [B, H, Nq, d]
        P.base[7] = (const char *)DK; P.s0[7] = a.H * a.Nk * a.d; P.s1[7] = a.Nk * a.d;  // [B, H, Nk, d]
        P.base[8] = (const char *)DV; P.s0[8] = a.H * a.Nk * a.d; P.s1[8] = a.Nk * a.d;
        const void **arr;
        if (att_ptrs(R, a, P, &arr)) return -1;
        const void **q = arr, **k = arr + BH, **Sp = arr + 2 * BH, **v = arr + 3 * BH, **dO = arr + 4 * BH, **Gp = arr + 5 * BH;
        void *const *dq = (void *const *)(arr + 6 * BH), *const *dk = (void *const *)(arr + 7 * BH), *const *dv = (void *const *)(arr + 8 * BH);
        if (att_probs(R, a, arr, c0, n)) return -1;
        // dP = dO V^T  [Nq, Nk]
        if (gemm_ptrs(R, 0, 1, a.Nq, a.Nk, a.d, 1.0f, dO + c0, a.H * a.d, v + c0, a.sv[2], 0.0f, (void *const *)(Gp + c0), a.Nk, n)) return -1;
        int64_t rows = n * a.Nq;
        k_row_softmax_back<<<(unsigned)((rows + 7) / 8), 256, 0, R.s>>>(rows, a.Nk, S, G, a.scale);
        SC_LAUNCH();
        // dV = P^T dO [Nk, d]; dQ = dS K [Nq, d]; dK = dS^T Q [Nk, d]
        if (gemm_ptrs(R, 1, 0, a.Nk, a.d, a.Nq, 1.0f, Sp + c0, a.Nk, dO + c0, a.H * a.d, 0.0f, dv + c0, a.d, n)) return -1;
        if (gemm_ptrs(R, 0, 0, a.Nq, a.d, a.Nk, 1.0f, Gp + c0, a.Nk, k + c0, a.sk[2], 0.0f, dq + c0, a.d, n)) return -1;
        if (gemm_ptrs(R, 1, 0, a.Nk, a.d, a.Nq, 1.0f, Gp + c0, a.Nk, q + c0, a.sq[2], 0.0f, dk + c0, a.d, n)) return -1;
    }
    return 0;
}
// ---------------------------------------------------------------------------------------------
// Fused attention (flash style) on bf16 tensor cores: mma.sync m16n8k16 (bf16 inputs, fp32
// accumulators), online softmax in fp32 (exp2 of log2e-scaled scores), no Nq x Nk matrix in
// memory. Served in BF16 precision for head dims d = 16, 32, ..., 128 (TF32 mode has its own
// tf32 variant, below); fp32 (exact) and other d take the cuBLAS path above. SCVRL_CUDA_ATTN:
// see att_mode().
//  1. k_rows_bf16: K and V of every (b, h) pair to bf16 in scratch, [BH, Nkp, d] contiguous,
//     Nkp = Nk rounded up to the key tile, zero rows beyond Nk (P = 0 there, so V must be finite).
//  2. k_attn_fwd<D>: a block = 4 warps = 64 query rows of one (b, h) pair; Q read from fp32 (any
//     row stride), rounded to bf16 in shared memory, kept in registers as mma A fragments; K/V
//     tiles of 64 keys double-buffered through cp.async; per tile S = Q K^T (fp32 registers),
//     masked beyond Nk, running max / sum per row, P rounded to bf16 straight from the S
//     accumulators (the C layout of two n8 tiles is the A layout of one k16 step), O += P V with
//     V fragments from ldmatrix.trans. O = acc / l written as [B, Nq, H, d].
// ---------------------------------------------------------------------------------------------
#define FA_BQ 64
#define FA_BK 64
#define FA_WARPS 4

// Attention path (SCVRL_CUDA_ATTN, read at every call so that the scratch pre-pass and the op of
// one compute agree; tests switch it): unset or "flash": fused kernels at the mode's precision
// (bf16 kernels in BF16 mode, tf32 kernels in TF32 mode); "gemm": the cuBLAS path in every mode;
// "bf16" / "tf32": that fused kernel in both BF16 and TF32 mode. FP32 mode always takes cuBLAS.
enum { ATT_GEMM = 0, ATT_BF16 = 1, ATT_TF32 = 2 };
int att_mode() {
    const char *e = getenv("SCVRL_CUDA_ATTN");
    if (!e || !*e || !strcmp(e, "flash")) return -1;
    return !strcmp(e, "gemm") ? ATT_GEMM : !strcmp(e, "bf16") ? ATT_BF16 : !strcmp(e, "tf32") ? ATT_TF32 : -1;
}
// Which kernel takes this attention (forward and backward)? Precision, mode and head dim only (so
// that the scratch pre-pass knows); unaligned operands are read with scalar loads.
int att_kind(int prec, int64_t d, int64_t Nq, int64_t Nk) {
    if (prec == SCVRL_PREC_FP32 || !(d >= 16 && d <= 128 && d % 16 == 0 && Nq >= 1 && Nk >= 1)) return ATT_GEMM;
    int m = att_mode();
    return m >= 0 ? m : prec == SCVRL_PREC_BF16 ? ATT_BF16 : ATT_TF32;
}
// 16-byte loads possible: base 16-byte aligned and every stride a multiple of 4 floats
__host__ __device__ inline bool al16(const float *p, const int64_t *s) {
    return !(((uintptr_t)p & 15) | ((s[0] | s[1] | s[2]) & 3));
}
__device__ __forceinline__ float4 ld4(const float *p, bool al) {
    return al ? *(const float4 *)p : make_float4(p[0], p[1], p[2], p[3]);
}
// The same from a row stored as bf16 (h) or float: p is the float view of the base, i the element.
__device__ __forceinline__ float4 ld4h(const float *p, int64_t i, bool al, bool h) {
    if (!h) return ld4(p + i, al);
    const bf16 *q = (const bf16 *)p + i;
    return al ? ld4f(q) : make_float4(ldf(q), ldf(q + 1), ldf(q + 2), ldf(q + 3));
}
int64_t att_nkp(int64_t Nk) { return (Nk + FA_BK - 1) / FA_BK * FA_BK; }
size_t scratch_flash(int64_t BH, int64_t Nk, int64_t d) { return (size_t)(2 * BH * att_nkp(Nk) * d) * 2 + 256; }


// The head sizes the fused kernels take; FA_CALL(D) is the call for one of them.
#define FA_SWITCH_D(d) \
    switch (d) { \
    case 16: return FA_CALL(16); case 32: return FA_CALL(32); case 48: return FA_CALL(48); case 64: return FA_CALL(64); \
    case 80: return FA_CALL(80); case 96: return FA_CALL(96); case 112: return FA_CALL(112); case 128: return FA_CALL(128); \
    default: seterr(R.err, R.errlen, "cuda attention: no fused kernel for d = %lld", (long long)(d)); return -1; \
    }

// S accumulators of a warp (rows g, g + 8; keys j0 + n * 8 + 2 t4 + e % 2) scaled by sl2 (log2
// units), keys past Nk set to -inf.
template <int NT>
__device__ __forceinline__ void fa_mask_scale(float (&s)[NT][4], int64_t j0, int64_t Nk, int t4, float sl2) {
    const bool tail = j0 + NT * 8 > Nk;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float x = s[n][e] * sl2;
            if (tail && j0 + n * 8 + 2 * t4 + (e & 1) >= Nk) x = -INFINITY;
            s[n][e] = x;
        }
}

// One key tile of the forward's online softmax, on a warp's S accumulators s (rows g and g + 8 of
// its 16: elements 0, 1 and 2, 3 of each n8 tile, keys j0 + n * 8 + 2 t4 + e % 2): scale (log2
// units), mask keys past Nk, new row max over the 4 lanes of a row, P = exp2(S - max) in place,
// running sums l and the output accumulators o rescaled. Same for the bf16 and the tf32 kernels.
template <int NT, int ND>
__device__ __forceinline__ void fa_softmax_step(float (&s)[NT][4], float (&o)[ND][4], int64_t j0, int64_t Nk, int t4, float sl2,
                                                float &m0, float &m1, float &l0, float &l1) {
    fa_mask_scale(s, j0, Nk, t4, sl2);
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; n++) { mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1])); mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3])); }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1)); mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1)); mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
    m0 = mn0; m1 = mn1;
    float su0 = 0.f, su1 = 0.f;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        s[n][0] = exp2f(s[n][0] - mn0); s[n][1] = exp2f(s[n][1] - mn0);
        s[n][2] = exp2f(s[n][2] - mn1); s[n][3] = exp2f(s[n][3] - mn1);
        su0 += s[n][0] + s[n][1]; su1 += s[n][2] + s[n][3];
    }
    l0 = l0 * al0 + su0; l1 = l1 * al1 + su1;
#pragma unroll
    for (int n = 0; n < ND; n++) { o[n][0] *= al0; o[n][1] *= al0; o[n][2] *= al1; o[n][3] *= al1; }
}

// The forward's row statistics for the backward (BF16 mode, training graphs): LSE = m + log2 l in
// the kernels' log2 units (l summed over the 4 lanes of a row here), +inf on padded rows (P = 0).
__device__ __forceinline__ void fa_store_lse(float m0, float m1, float l0, float l1, float *L, int64_t r0, int64_t Nq, int t4) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1); l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1); l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    if (t4 == 0) {
        L[r0] = r0 < Nq ? m0 + log2f(l0) : INFINITY;
        L[r0 + 8] = r0 + 8 < Nq ? m1 + log2f(l1) : INFINITY;
    }
}

// The forward's output rows r0 and r0 + 8 of a warp: O[b, r, h, :] = o / l (the row sums l
// reduced over the 4 lanes of a row first); rows past Nq are not written.
template <int D>
__device__ __forceinline__ void fa_store_rows(float (&o)[D / 8][4], float l0, float l1, const AttG &a, float *O, int64_t b, int64_t h,
                                              int64_t r0, int t4, bool oh = false) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1); l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1); l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int64_t r1 = r0 + 8;
    const int64_t e0 = ((b * a.Nq + r0) * a.H + h) * D + 2 * t4, e1 = ((b * a.Nq + r1) * a.H + h) * D + 2 * t4;
    if (oh) {      // O stored as bf16: pairs of bf16 in one 4-byte store
        uint32_t *P0 = (uint32_t *)((bf16 *)O + e0), *P1 = (uint32_t *)((bf16 *)O + e1);
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            if (r0 < a.Nq) P0[n * 4] = bf_pack(o[n][0] * inv0, o[n][1] * inv0);
            if (r1 < a.Nq) P1[n * 4] = bf_pack(o[n][2] * inv1, o[n][3] * inv1);
        }
        return;
    }
    float *O0 = O + e0, *O1 = O + e1;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        if (r0 < a.Nq) *(float2 *)(O0 + n * 8) = make_float2(o[n][0] * inv0, o[n][1] * inv0);
        if (r1 < a.Nq) *(float2 *)(O1 + n * 8) = make_float2(o[n][2] * inv1, o[n][3] * inv1);
    }
}

// Rows of a [B, H, N, d] fp32 operand (strides s0, s1, s2; last dim contiguous) to bf16
// [B H, Np, d] contiguous, rows N..Np-1 zero. A thread per 4 elements; al: 16-byte loads possible.
__global__ void k_rows_bf16(const float *src, int64_t s0, int64_t s1, int64_t s2, int64_t H, int64_t N, int64_t Np, int64_t d,
                            int64_t BH, bool al, __nv_bfloat16 *dst, bool h) {
    int64_t d4 = d / 4, total = BH * Np * d4;
    GRID_STRIDE(i, total) {
        int64_t c = (i % d4) * 4, r = (i / d4) % Np, bh = i / (d4 * Np);
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < N) x = ld4h(src, (bh / H) * s0 + (bh % H) * s1 + r * s2 + c, al, h);
        uint2 o;
        o.x = bf_pack(x.x, x.y); o.y = bf_pack(x.z, x.w);
        *(uint2 *)(dst + i * 4) = o;
    }
}
int rows_bf16(Run &R, const float *src, const int64_t *s, int64_t H, int64_t N, int64_t Np, int64_t d, int64_t BH, __nv_bfloat16 *dst,
              bool h = false) {
    int64_t st[3] = { s[0], s[1], N == 1 ? d : s[2] };
    k_rows_bf16<<<grid_for(BH * Np * d / 4), 256, 0, R.s>>>(src, st[0], st[1], st[2], H, N, Np, d, BH, al16(src, st), dst, h);
    SC_LAUNCH();
    return 0;
}

template <int D> struct FaSmem {
    static constexpr int LD = D + 8;                     // bf16 row stride: 16 B of padding (no ldmatrix bank conflicts)
    static constexpr int Q = FA_BQ * LD, KV = FA_BK * LD;
    static constexpr size_t bytes = (size_t)(Q + 4 * KV) * 2;   // Q, K[2], V[2]
};

template <int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_fwd(AttG a, int64_t nqt, int64_t Nkp, const __nv_bfloat16 *Kb,
                                                            const __nv_bfloat16 *Vb, float *O, bool oh, float *LSE) {
    constexpr int LD = FaSmem<D>::LD, NT = FA_BK / 8, ND = D / 8, KS = D / 16;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)fa_smem, *Ks = Qs + FaSmem<D>::Q, *Vs = Ks + 2 * FaSmem<D>::KV;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * FA_BQ, b = bh / a.H, h = bh % a.H;
    const __nv_bfloat16 *Kg = Kb + bh * Nkp * D, *Vg = Vb + bh * Nkp * D;
    const int ntile = (int)(Nkp / FA_BK);

    // K/V tile loader: 2 x 64 rows x D bf16 in 16-byte pieces
    auto load_kv = [&](int tile, int buf) {
        constexpr int PR = D / 8, TOT = FA_BK * PR;   // 16-byte pieces per row, per tile
        const __nv_bfloat16 *ks = Kg + (int64_t)tile * FA_BK * D, *vs = Vg + (int64_t)tile * FA_BK * D;
        __nv_bfloat16 *kd = Ks + buf * FaSmem<D>::KV, *vd = Vs + buf * FaSmem<D>::KV;
        for (int p = tid; p < TOT; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 8;
            cp_async16(smem_u32(kd + r * LD + c), ks + r * D + c);
            cp_async16(smem_u32(vd + r * LD + c), vs + r * D + c);
        }
        cp_async_commit();
    };
    load_kv(0, 0);
    // Q tile: fp32 rows -> bf16 shared (rows beyond Nq are zero)
    {
        constexpr int PR = D / 4, TOT = FA_BQ * PR;
        const int64_t qb = b * a.sq[0] + h * a.sq[1];
        const bool qal = al16(a.q, a.sq);
        for (int p = tid; p < TOT; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
            if (i0 + r < a.Nq) x = ld4h(a.q, qb + (i0 + r) * a.sq[2] + c, qal, a.qh);
            uint2 o; o.x = bf_pack(x.x, x.y); o.y = bf_pack(x.z, x.w);
            *(uint2 *)(Qs + r * LD + c) = o;
        }
    }
    __syncthreads();
    uint32_t qf[KS][4];
    {
        const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = (lane >> 4) * 8;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) ldsm_x4(qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], smem_u32(Qs + r * LD + ks * 16 + c));
    }
    float o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const float sl2 = a.scale * 1.4426950408889634f;
    // per-lane ldmatrix offsets: K (non-transposed B fragments of two n8 tiles), V (transposed)
    const int kr = (lane & 7) + (lane >> 4) * 8, kc = ((lane >> 3) & 1) * 8;
    const int vr = (lane & 7) + ((lane >> 3) & 1) * 8, vc = (lane >> 4) * 8;

    for (int tile = 0; tile < ntile; tile++) {
        const int buf = tile & 1;
        if (tile + 1 < ntile) { load_kv(tile + 1, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        const __nv_bfloat16 *Kt = Ks + buf * FaSmem<D>::KV, *Vt = Vs + buf * FaSmem<D>::KV;
        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, smem_u32(Kt + (np * 16 + kr) * LD + ks * 16 + kc));
                mma_bf16(s[2 * np], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b0, b1);
                mma_bf16(s[2 * np + 1], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b2, b3);
            }
        }
        fa_softmax_step(s, o, (int64_t)tile * FA_BK, a.Nk, t4, sl2, m0, m1, l0, l1);     // rows g and g + 8 of the warp's 16
        // O += P V, P from the S accumulators (k16 step kk = n8 tiles 2kk and 2kk + 1)
#pragma unroll
        for (int kk = 0; kk < NT / 2; kk++) {
            uint32_t p0 = bf_pack(s[2 * kk][0], s[2 * kk][1]), p1 = bf_pack(s[2 * kk][2], s[2 * kk][3]);
            uint32_t p2 = bf_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), p3 = bf_pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < ND / 2; dp++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3, smem_u32(Vt + (kk * 16 + vr) * LD + dp * 16 + vc));
                mma_bf16(o[2 * dp], p0, p1, p2, p3, b0, b1);
                mma_bf16(o[2 * dp + 1], p0, p1, p2, p3, b2, b3);
            }
        }
        __syncthreads();     // the next iteration's loads overwrite this buffer
    }
    if (LSE) fa_store_lse(m0, m1, l0, l1, LSE + bh * nqt * FA_BQ, i0 + warp * 16 + g, a.Nq, t4);
    fa_store_rows<D>(o, l0, l1, a, O, b, h, i0 + warp * 16 + g, t4, oh);
}

template <int D> int attn_flash_fwd_d(Run &R, const AttG &a, float *O, bool oh, float *LSE) {
    int64_t BH = a.B * a.H, Nkp = att_nkp(a.Nk), nqt = (a.Nq + FA_BQ - 1) / FA_BQ;
    __nv_bfloat16 *Kb = (__nv_bfloat16 *)R.C->scratch, *Vb = Kb + BH * Nkp * D;
    if (rows_bf16(R, a.k, a.sk, a.H, a.Nk, Nkp, D, BH, Kb, a.kh) || rows_bf16(R, a.v, a.sv, a.H, a.Nk, Nkp, D, BH, Vb, a.vh)) return -1;
    SC_CU(cudaFuncSetAttribute(k_attn_fwd<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)FaSmem<D>::bytes));
    int64_t nb = BH * nqt;
    if (nb > 0x7fffffff) { seterr(R.err, R.errlen, "cuda attention: %lld blocks", (long long)nb); return -1; }
    k_attn_fwd<D><<<(unsigned)nb, FA_WARPS * 32, FaSmem<D>::bytes, R.s>>>(a, nqt, Nkp, Kb, Vb, O, oh, LSE);
    SC_LAUNCH();
    return 0;
}
int attn_flash_fwd(Run &R, const AttG &a, float *O, bool oh, float *LSE) {
#define FA_CALL(D) attn_flash_fwd_d<D>(R, a, O, oh, LSE)
    FA_SWITCH_D(a.d)
#undef FA_CALL
}

// ---------------------------------------------------------------------------------------------
// Fused attention backward (same tensor-core recipe, bf16 operands, fp32 accumulation and
// statistics; deterministic, no atomics). Q, dO, K, V are first rounded to bf16 in scratch
// ([BH, Np, d], zero rows past N; the query side padded to 64, the key side to 64). Then
//  A. k_attn_bwd_q<D>: a block = 64 query rows (4 warps x 16). Pass 1 over the key tiles:
//     S = Q K^T and dP = dO V^T, online row max m, sum l = sum exp(S - m) and
//     Du = sum exp(S - m) dP (rescaled like O in the forward), so that LSE = m + log2 l and
//     D = Du / l = rowsum(P dP) come out of one pass; both are stored per row (LSE = +inf, D = 0
//     on padded rows). Pass 2: S and dP again, P = exp2(S - LSE), dS = P (dP - D) scale,
//     dQ += dS K (dS rounded to bf16 straight from the accumulators). dQ written [B, H, Nq, d].
//  B. k_attn_bwd_kv<D>: a block = 64 keys (4 warps x 16), over a range of query tiles of 32:
//     S^T = K Q^T, dP^T = V dO^T (K, V fragments in registers), P^T = exp2(S^T - LSE),
//     dV += P^T dO, dS^T = P^T (dP^T - D) scale, dK += dS^T Q. When there are too few
//     (b, h, key block) triples to fill the GPU, the query range is split and each split
//     writes fp32 partial dK / dV into scratch, summed in a fixed order by k_sum_parts.
// ---------------------------------------------------------------------------------------------
#define FB_QT 32                 // kernel B: queries per tile
#define FB_KT 32                 // kernel A: keys per tile
#define FB_TARGET_BLOCKS 528     // kernel B: split the query range until about this many blocks

struct FbGeom { int64_t BH, Nqp, Nkp, nkb, splits, tps; };
FbGeom fb_geom(int64_t BH, int64_t Nq, int64_t Nk) {
    FbGeom G;
    G.BH = BH; G.Nqp = (Nq + FA_BQ - 1) / FA_BQ * FA_BQ; G.Nkp = att_nkp(Nk); G.nkb = G.Nkp / FA_BQ;
    int64_t nqt = G.Nqp / FB_QT, blocks = BH * G.nkb;
    int64_t sp = (FB_TARGET_BLOCKS + blocks - 1) / blocks, maxsp = nqt / 8 > 1 ? nqt / 8 : 1;    // >= 8 tiles a split
    if (sp > maxsp) sp = maxsp;
    if (sp < 1) sp = 1;
    G.tps = (nqt + sp - 1) / sp;
    G.splits = (nqt + G.tps - 1) / G.tps;
    return G;
}
size_t scratch_flash_back(int64_t BH, int64_t Nq, int64_t Nk, int64_t d) {
    FbGeom G = fb_geom(BH, Nq, Nk);
    size_t b16 = (size_t)(2 * BH * (G.Nqp + G.Nkp) * d) * 2, st = (size_t)(2 * BH * G.Nqp) * 4;
    size_t part = G.splits > 1 ? (size_t)(2 * G.splits * BH * Nk * d) * 4 : 0;
    return b16 + st + part + 1024;
}

// Backward pass 1 over one key tile (kernel A): running row max m, l = sum exp2(S - m) and
// u = sum exp2(S - m) dP, rescaled as the max grows (rows g and g + 8 of the warp's 16).
template <int NT>
__device__ __forceinline__ void fb_stats_step(const float (&s)[NT][4], const float (&dp)[NT][4], float &m0, float &m1, float &l0,
                                              float &l1, float &u0, float &u1) {
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; n++) { mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1])); mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3])); }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1)); mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1)); mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1), al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
    m0 = mn0; m1 = mn1;
    float sl0 = 0.f, sl1 = 0.f, su0 = 0.f, su1 = 0.f;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        float p0 = exp2f(s[n][0] - mn0), p1 = exp2f(s[n][1] - mn0), p2 = exp2f(s[n][2] - mn1), p3 = exp2f(s[n][3] - mn1);
        sl0 += p0 + p1; sl1 += p2 + p3;
        su0 += p0 * dp[n][0] + p1 * dp[n][1]; su1 += p2 * dp[n][2] + p3 * dp[n][3];
    }
    l0 = l0 * al0 + sl0; l1 = l1 * al1 + sl1;
    u0 = u0 * al0 + su0; u1 = u1 * al1 + su1;
}

// End of pass 1: sums over the 4 lanes of a row, m <- LSE = m + log2 l, u <- D = u / l = rowsum(P dP);
// stored per row r0, r0 + 8 (LSE = +inf and D = 0 past Nq).
__device__ __forceinline__ void fb_stats_finish(float &m0, float &m1, float &l0, float &l1, float &u0, float &u1, float *LSE,
                                                float *Dd, int64_t r0, int64_t Nq, int t4) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1); l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1); l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    u0 += __shfl_xor_sync(0xffffffffu, u0, 1); u0 += __shfl_xor_sync(0xffffffffu, u0, 2);
    u1 += __shfl_xor_sync(0xffffffffu, u1, 1); u1 += __shfl_xor_sync(0xffffffffu, u1, 2);
    m0 += log2f(l0); m1 += log2f(l1);
    u0 /= l0; u1 /= l1;
    const int64_t r1 = r0 + 8;
    if (t4 == 0) {
        LSE[r0] = r0 < Nq ? m0 : INFINITY; Dd[r0] = r0 < Nq ? u0 : 0.f;
        LSE[r1] = r1 < Nq ? m1 : INFINITY; Dd[r1] = r1 < Nq ? u1 : 0.f;
    }
}

// Rows r0 and r0 + 8 of a warp's accumulators into X [N, D] (rows past N not written).
template <int D>
__device__ __forceinline__ void fb_store_rows(const float (&acc)[D / 8][4], float *X, int64_t N, int64_t r0, int t4) {
    const int64_t r1 = r0 + 8;
    float *X0 = X + r0 * D + 2 * t4, *X1 = X + r1 * D + 2 * t4;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        if (r0 < N) *(float2 *)(X0 + n * 8) = make_float2(acc[n][0], acc[n][1]);
        if (r1 < N) *(float2 *)(X1 + n * 8) = make_float2(acc[n][2], acc[n][3]);
    }
}

template <int D> struct FbSmemA {
    static constexpr int LD = D + 8;
    static constexpr size_t bytes = (size_t)(2 * FA_BQ * LD + 4 * FB_KT * LD) * 2;    // Q, dO, K[2], V[2]
};
template <int D> struct FbSmemB {
    static constexpr int LD = D + 8;
    static constexpr size_t bytes = (size_t)(2 * FA_BQ * LD + 4 * FB_QT * LD) * 2 + 4 * FB_QT * 4;  // K, V, Q[2], dO[2], LSE[2], D[2]
};

// ONE: LSE and D given (the forward's statistics and rowsum(dO O)): pass 2 only.
template <int D, bool ONE = false>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_bwd_q(int64_t Nq, int64_t Nk, float scale, int64_t nqt, int64_t Nqp, int64_t Nkp,
                                                              const __nv_bfloat16 *Qb, const __nv_bfloat16 *dOb, const __nv_bfloat16 *Kb,
                                                              const __nv_bfloat16 *Vb, float *LSE, float *Dd, float *DQ) {
    constexpr int LD = D + 8, NT = FB_KT / 8, ND = D / 8, KS = D / 16, PR = D / 8;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)fa_smem, *dOs = Qs + FA_BQ * LD, *Ks = dOs + FA_BQ * LD, *Vs = Ks + 2 * FB_KT * LD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * FA_BQ;
    const __nv_bfloat16 *Kg = Kb + bh * Nkp * D, *Vg = Vb + bh * Nkp * D;
    const int ntile = (int)(Nkp / FB_KT), total = ONE ? ntile : 2 * ntile;
    {   // Q and dO tiles (joined to the first K/V group)
        const __nv_bfloat16 *qs = Qb + (bh * Nqp + i0) * D, *ds = dOb + (bh * Nqp + i0) * D;
        for (int p = tid; p < FA_BQ * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 8;
            cp_async16(smem_u32(Qs + r * LD + c), qs + r * D + c);
            cp_async16(smem_u32(dOs + r * LD + c), ds + r * D + c);
        }
    }
    auto load_kv = [&](int tile, int buf) {
        const __nv_bfloat16 *ks = Kg + (int64_t)tile * FB_KT * D, *vs = Vg + (int64_t)tile * FB_KT * D;
        __nv_bfloat16 *kd = Ks + buf * FB_KT * LD, *vd = Vs + buf * FB_KT * LD;
        for (int p = tid; p < FB_KT * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 8;
            cp_async16(smem_u32(kd + r * LD + c), ks + r * D + c);
            cp_async16(smem_u32(vd + r * LD + c), vs + r * D + c);
        }
        cp_async_commit();
    };
    load_kv(0, 0);
    uint32_t qf[KS][4], of[KS][4];
    float dq[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f, u0 = 0.f, u1 = 0.f;    // pass 1 -> LSE (m), D (u)
    if (ONE) {
        const int64_t r0 = bh * Nqp + i0 + warp * 16 + g;
        m0 = LSE[r0]; m1 = LSE[r0 + 8]; u0 = Dd[r0]; u1 = Dd[r0 + 8];
    }
    const float sl2 = scale * 1.4426950408889634f;
    const int kr = (lane & 7) + (lane >> 4) * 8, kc = ((lane >> 3) & 1) * 8;
    const int vr = (lane & 7) + ((lane >> 3) & 1) * 8, vc = (lane >> 4) * 8;

    for (int it = 0; it < total; it++) {
        const int buf = it & 1, tile = it < ntile ? it : it - ntile;
        if (it + 1 < total) { load_kv((it + 1) % ntile, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        if (it == 0) {
            const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = (lane >> 4) * 8;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                ldsm_x4(qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], smem_u32(Qs + r * LD + ks * 16 + c));
                ldsm_x4(of[ks][0], of[ks][1], of[ks][2], of[ks][3], smem_u32(dOs + r * LD + ks * 16 + c));
            }
        }
        const __nv_bfloat16 *Kt = Ks + buf * FB_KT * LD, *Vt = Vs + buf * FB_KT * LD;
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, smem_u32(Kt + (np * 16 + kr) * LD + ks * 16 + kc));
                mma_bf16(s[2 * np], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b0, b1);
                mma_bf16(s[2 * np + 1], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b2, b3);
                ldsm_x4(b0, b1, b2, b3, smem_u32(Vt + (np * 16 + kr) * LD + ks * 16 + kc));
                mma_bf16(dp[2 * np], of[ks][0], of[ks][1], of[ks][2], of[ks][3], b0, b1);
                mma_bf16(dp[2 * np + 1], of[ks][0], of[ks][1], of[ks][2], of[ks][3], b2, b3);
            }
        }
        fa_mask_scale(s, (int64_t)tile * FB_KT, Nk, t4, sl2);
        if (!ONE && it < ntile) {      // pass 1: running statistics
            fb_stats_step(s, dp, m0, m1, l0, l1, u0, u1);
            if (it == ntile - 1) fb_stats_finish(m0, m1, l0, l1, u0, u1, LSE + bh * Nqp, Dd + bh * Nqp, i0 + warp * 16 + g, Nq, t4);
        } else {               // pass 2: dS and dQ += dS K
#pragma unroll
            for (int kk = 0; kk < NT / 2; kk++) {
                float ds[2][4];
#pragma unroll
                for (int h2 = 0; h2 < 2; h2++) {
                    const int n = 2 * kk + h2;
                    ds[h2][0] = exp2f(s[n][0] - m0) * (dp[n][0] - u0) * scale;
                    ds[h2][1] = exp2f(s[n][1] - m0) * (dp[n][1] - u0) * scale;
                    ds[h2][2] = exp2f(s[n][2] - m1) * (dp[n][2] - u1) * scale;
                    ds[h2][3] = exp2f(s[n][3] - m1) * (dp[n][3] - u1) * scale;
                }
                uint32_t a0 = bf_pack(ds[0][0], ds[0][1]), a1 = bf_pack(ds[0][2], ds[0][3]);
                uint32_t a2 = bf_pack(ds[1][0], ds[1][1]), a3 = bf_pack(ds[1][2], ds[1][3]);
#pragma unroll
                for (int dd = 0; dd < ND / 2; dd++) {
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4_t(b0, b1, b2, b3, smem_u32(Kt + (kk * 16 + vr) * LD + dd * 16 + vc));
                    mma_bf16(dq[2 * dd], a0, a1, a2, a3, b0, b1);
                    mma_bf16(dq[2 * dd + 1], a0, a1, a2, a3, b2, b3);
                }
            }
        }
        __syncthreads();
    }
    fb_store_rows<D>(dq, DQ + bh * Nq * D, Nq, i0 + warp * 16 + g, t4);
}

template <int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_bwd_kv(int64_t Nk, float scale, FbGeom G, const __nv_bfloat16 *Qb,
                                                               const __nv_bfloat16 *dOb, const __nv_bfloat16 *Kb, const __nv_bfloat16 *Vb,
                                                               const float *LSE, const float *Dd, float *DK, float *DV, int64_t pstride) {
    constexpr int LD = D + 8, NT = FB_QT / 8, ND = D / 8, KS = D / 16, PR = D / 8;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    __nv_bfloat16 *Ks = (__nv_bfloat16 *)fa_smem, *Vs = Ks + FA_BQ * LD, *Qs = Vs + FA_BQ * LD, *dOs = Qs + 2 * FB_QT * LD;
    float *Ls = (float *)(dOs + 2 * FB_QT * LD), *Ds = Ls + 2 * FB_QT;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t kb = blockIdx.x % G.nkb, sp = (blockIdx.x / G.nkb) % G.splits, bh = blockIdx.x / (G.nkb * G.splits);
    const int64_t j0 = kb * FA_BQ, nqt = G.Nqp / FB_QT, t0 = sp * G.tps, t1 = t0 + G.tps < nqt ? t0 + G.tps : nqt;
    const __nv_bfloat16 *Qg = Qb + bh * G.Nqp * D, *dOg = dOb + bh * G.Nqp * D;
    const float *Lg = LSE + bh * G.Nqp, *Dg = Dd + bh * G.Nqp;
    {
        const __nv_bfloat16 *ks = Kb + (bh * G.Nkp + j0) * D, *vs = Vb + (bh * G.Nkp + j0) * D;
        for (int p = tid; p < FA_BQ * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 8;
            cp_async16(smem_u32(Ks + r * LD + c), ks + r * D + c);
            cp_async16(smem_u32(Vs + r * LD + c), vs + r * D + c);
        }
    }
    auto load_q = [&](int64_t t, int buf) {
        const __nv_bfloat16 *qs = Qg + t * FB_QT * D, *ds = dOg + t * FB_QT * D;
        __nv_bfloat16 *qd = Qs + buf * FB_QT * LD, *dd = dOs + buf * FB_QT * LD;
        for (int p = tid; p < FB_QT * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 8;
            cp_async16(smem_u32(qd + r * LD + c), qs + r * D + c);
            cp_async16(smem_u32(dd + r * LD + c), ds + r * D + c);
        }
        if (tid < FB_QT / 4) cp_async16(smem_u32(Ls + buf * FB_QT + tid * 4), Lg + t * FB_QT + tid * 4);
        else if (tid < FB_QT / 2) cp_async16(smem_u32(Ds + buf * FB_QT + (tid - FB_QT / 4) * 4), Dg + t * FB_QT + (tid - FB_QT / 4) * 4);
        cp_async_commit();
    };
    load_q(t0, 0);
    uint32_t kf[KS][4], vf[KS][4];
    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f;
    const float sl2 = scale * 1.4426950408889634f;
    const int kr = (lane & 7) + (lane >> 4) * 8, kc = ((lane >> 3) & 1) * 8;
    const int vr = (lane & 7) + ((lane >> 3) & 1) * 8, vc = (lane >> 4) * 8;
    for (int64_t t = t0; t < t1; t++) {
        const int buf = (int)((t - t0) & 1);
        if (t + 1 < t1) { load_q(t + 1, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        if (t == t0) {
            const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = (lane >> 4) * 8;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                ldsm_x4(kf[ks][0], kf[ks][1], kf[ks][2], kf[ks][3], smem_u32(Ks + r * LD + ks * 16 + c));
                ldsm_x4(vf[ks][0], vf[ks][1], vf[ks][2], vf[ks][3], smem_u32(Vs + r * LD + ks * 16 + c));
            }
        }
        const __nv_bfloat16 *Qt = Qs + buf * FB_QT * LD, *dOt = dOs + buf * FB_QT * LD;
        const float *Lt = Ls + buf * FB_QT, *Dt = Ds + buf * FB_QT;
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, smem_u32(Qt + (np * 16 + kr) * LD + ks * 16 + kc));
                mma_bf16(s[2 * np], kf[ks][0], kf[ks][1], kf[ks][2], kf[ks][3], b0, b1);
                mma_bf16(s[2 * np + 1], kf[ks][0], kf[ks][1], kf[ks][2], kf[ks][3], b2, b3);
                ldsm_x4(b0, b1, b2, b3, smem_u32(dOt + (np * 16 + kr) * LD + ks * 16 + kc));
                mma_bf16(dp[2 * np], vf[ks][0], vf[ks][1], vf[ks][2], vf[ks][3], b0, b1);
                mma_bf16(dp[2 * np + 1], vf[ks][0], vf[ks][1], vf[ks][2], vf[ks][3], b2, b3);
            }
        }
        // P^T = exp2(S^T scale log2e - LSE[query]), dS^T = P^T (dP^T - D[query]) scale; rows = keys, cols = queries
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int q = n * 8 + 2 * t4 + (e & 1);
                const float p = exp2f(s[n][e] * sl2 - Lt[q]);
                s[n][e] = p;
                dp[n][e] = p * (dp[n][e] - Dt[q]) * scale;
            }
#pragma unroll
        for (int kk = 0; kk < NT / 2; kk++) {
            uint32_t p0 = bf_pack(s[2 * kk][0], s[2 * kk][1]), p1 = bf_pack(s[2 * kk][2], s[2 * kk][3]);
            uint32_t p2 = bf_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), p3 = bf_pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            uint32_t d0 = bf_pack(dp[2 * kk][0], dp[2 * kk][1]), d1 = bf_pack(dp[2 * kk][2], dp[2 * kk][3]);
            uint32_t d2 = bf_pack(dp[2 * kk + 1][0], dp[2 * kk + 1][1]), d3 = bf_pack(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
#pragma unroll
            for (int dd = 0; dd < ND / 2; dd++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3, smem_u32(dOt + (kk * 16 + vr) * LD + dd * 16 + vc));
                mma_bf16(dv[2 * dd], p0, p1, p2, p3, b0, b1);
                mma_bf16(dv[2 * dd + 1], p0, p1, p2, p3, b2, b3);
                ldsm_x4_t(b0, b1, b2, b3, smem_u32(Qt + (kk * 16 + vr) * LD + dd * 16 + vc));
                mma_bf16(dk[2 * dd], d0, d1, d2, d3, b0, b1);
                mma_bf16(dk[2 * dd + 1], d0, d1, d2, d3, b2, b3);
            }
        }
        __syncthreads();
    }
    const int64_t r0 = j0 + warp * 16 + g, r1 = r0 + 8;
    float *K0 = DK + sp * pstride + (bh * Nk + r0) * D + 2 * t4, *K1 = DK + sp * pstride + (bh * Nk + r1) * D + 2 * t4;
    float *V0 = DV + sp * pstride + (bh * Nk + r0) * D + 2 * t4, *V1 = DV + sp * pstride + (bh * Nk + r1) * D + 2 * t4;
#pragma unroll
    for (int n = 0; n < ND; n++) {
        if (r0 < Nk) { *(float2 *)(K0 + n * 8) = make_float2(dk[n][0], dk[n][1]); *(float2 *)(V0 + n * 8) = make_float2(dv[n][0], dv[n][1]); }
        if (r1 < Nk) { *(float2 *)(K1 + n * 8) = make_float2(dk[n][2], dk[n][3]); *(float2 *)(V1 + n * 8) = make_float2(dv[n][2], dv[n][3]); }
    }
}

// out[i] = sum over s of part[s * n + i], in order (4 floats a thread; n a multiple of 4)
__global__ void k_sum_parts(const float *part, int64_t n, int64_t splits, float *out) {
    GRID_STRIDE(i, n / 4) {
        float4 acc = ((const float4 *)part)[i];
        for (int64_t s = 1; s < splits; s++) {
            float4 x = ((const float4 *)(part + s * n))[i];
            acc.x += x.x; acc.y += x.y; acc.z += x.z; acc.w += x.w;
        }
        ((float4 *)out)[i] = acc;
    }
}


// ---------------------------------------------------------------------------------------------
// Fused attention on TF32 tensor cores (TF32 mode): the same three kernels as above with fp32
// operands rounded to tf32 (cvt.rna.tf32.f32; kept as fp32 bit patterns in scratch and shared
// memory) and mma.sync m16n8k8 tf32 x tf32 -> fp32; fp32 accumulators and softmax statistics.
// Differences from the bf16 kernels:
//  - no ldmatrix (it moves 16-bit elements): fragments are single 32-bit shared loads. Rows are
//    padded to D + 4 floats, which makes every pattern used here conflict-free: A / B fragments
//    read (row g, col t4) and transposed B fragments read (row 2 t4 (+1), col g).
//  - P (and dS) go from the S accumulators into an A fragment without shuffles: the accumulator
//    of an n8 tile holds keys 2t4 and 2t4 + 1 of the thread's rows; they are used as k indices
//    t4 and t4 + 4 of one k8 step, and the V (K, dO, Q) rows of that step are read as 2t4 and
//    2t4 + 1 to match (the key order within a step does not matter for the sum).
//  - shared memory per row doubles, so the forward takes key tiles of 32 (keys padded to 32, not
//    64: 393 -> 416) and stages the Q tile through the second K/V buffer; kernel B reads its K / V
//    fragments from shared memory each query tile instead of keeping them in registers.
// ---------------------------------------------------------------------------------------------
#define FT_BK 32                 // forward: keys per tile

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
// D += A B: m16n8k8, A row-major tf32 (4 regs: (g, t4), (g + 8, t4), (g, t4 + 4), (g + 8, t4 + 4)),
// B col-major tf32 (2 regs: (k t4, n g), (k t4 + 4, n g)), fp32 accumulators (g, 2t4 (+1)), (g + 8, ...).
__device__ __forceinline__ void mma_tf32(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// As k_rows_bf16, to tf32-rounded fp32 bit patterns. lay 0: rows as they are; 1 (forward K): within
// each group of 8 columns, column i at 2 (i % 4) + i / 4, so that a B fragment's two words (k t4 and
// t4 + 4) are adjacent; 2 (forward V, Np even): rows 2r and 2r + 1 interleaved into one row of 2d
// ([r][2c + (row & 1)]), so that a transposed B fragment's two words (keys 2t4, 2t4 + 1) are adjacent.
__global__ void k_rows_tf32(const float *src, int64_t s0, int64_t s1, int64_t s2, int64_t H, int64_t N, int64_t Np, int64_t d,
                            int64_t BH, bool al, int lay, uint32_t *dst) {
    int64_t d4 = d / 4, total = BH * Np * d4;
    GRID_STRIDE(i, total) {
        int64_t c = (i % d4) * 4, r = (i / d4) % Np, bh = i / (d4 * Np);
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < N) x = ld4(src + (bh / H) * s0 + (bh % H) * s1 + r * s2 + c, al);
        const uint32_t v[4] = { to_tf32(x.x), to_tf32(x.y), to_tf32(x.z), to_tf32(x.w) };
        if (lay == 0) { *(uint4 *)(dst + i * 4) = make_uint4(v[0], v[1], v[2], v[3]); continue; }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t col = c + j;
            if (lay == 1) dst[(bh * Np + r) * d + (col & ~7) + 2 * (col & 3) + ((col >> 2) & 1)] = v[j];
            else dst[(bh * Np + (r & ~1)) * d + 2 * col + (r & 1)] = v[j];
        }
    }
}
int rows_tf32(Run &R, const float *src, const int64_t *s, int64_t H, int64_t N, int64_t Np, int64_t d, int64_t BH, uint32_t *dst, int lay = 0) {
    int64_t st[3] = { s[0], s[1], N == 1 ? d : s[2] };
    k_rows_tf32<<<grid_for(BH * Np * d / 4), 256, 0, R.s>>>(src, st[0], st[1], st[2], H, N, Np, d, BH, al16(src, st), lay, dst);
    SC_LAUNCH();
    return 0;
}
int64_t att_nkp_tf(int64_t Nk) { return (Nk + FT_BK - 1) / FT_BK * FT_BK; }

template <int D> struct FtSmem {
    // row strides in words, chosen for conflict-free 8-byte fragment loads: K [FT_BK][D + 8] (lay 1),
    // V [FT_BK / 2][2 D + 8] (lay 2); the Q tile [FA_BQ][D + 4] is staged in buffer 1 ([K0 V0 K1 V1])
    static constexpr int LDK = D + 8, LDV = 2 * D + 8, LDQ = D + 4;
    static constexpr int KV = FT_BK * LDK + FT_BK / 2 * LDV, Q = FA_BQ * LDQ;
    static constexpr size_t bytes = (size_t)(KV + (Q > KV ? Q : KV)) * 4;
};

template <int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_fwd_tf(AttG a, int64_t nqt, int64_t Nkp, const uint32_t *Kb,
                                                               const uint32_t *Vb, float *O) {
    constexpr int LDK = FtSmem<D>::LDK, LDV = FtSmem<D>::LDV, LD = FtSmem<D>::LDQ, KV = FtSmem<D>::KV;
    constexpr int NT = FT_BK / 8, ND = D / 8, PR = D / 4;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    uint32_t *sm = (uint32_t *)fa_smem, *Qs = sm + KV;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * FA_BQ, b = bh / a.H, h = bh % a.H;
    const uint32_t *Kg = Kb + bh * Nkp * D, *Vg = Vb + bh * Nkp * D;
    const int ntile = (int)(Nkp / FT_BK);

    auto load_kv = [&](int tile, int buf) {
        const uint32_t *ks = Kg + (int64_t)tile * FT_BK * D, *vs = Vg + (int64_t)tile * FT_BK * D;
        uint32_t *kd = sm + buf * KV, *vd = kd + FT_BK * LDK;
        for (int p = tid; p < FT_BK * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4, rv = p / (2 * PR), cv = (p % (2 * PR)) * 4;
            cp_async16(smem_u32(kd + r * LDK + c), ks + r * D + c);
            cp_async16(smem_u32(vd + rv * LDV + cv), vs + rv * 2 * D + cv);
        }
        cp_async_commit();
    };
    load_kv(0, 0);
    {   // Q tile: fp32 rows -> tf32 in shared memory (buffer 1; rows beyond Nq are zero)
        const float *qb = a.q + b * a.sq[0] + h * a.sq[1];
        const bool qal = al16(a.q, a.sq);
        for (int p = tid; p < FA_BQ * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
            if (i0 + r < a.Nq) x = ld4(qb + (i0 + r) * a.sq[2] + c, qal);
            *(uint4 *)(Qs + r * LD + c) = make_uint4(to_tf32(x.x), to_tf32(x.y), to_tf32(x.z), to_tf32(x.w));
        }
    }
    __syncthreads();
    uint32_t qf[ND][4];
    {
        const uint32_t *q0 = Qs + (warp * 16 + g) * LD + t4, *q1 = q0 + 8 * LD;
#pragma unroll
        for (int ks = 0; ks < ND; ks++) { qf[ks][0] = q0[ks * 8]; qf[ks][1] = q1[ks * 8]; qf[ks][2] = q0[ks * 8 + 4]; qf[ks][3] = q1[ks * 8 + 4]; }
    }
    __syncthreads();         // buffer 1 is loaded next
    float o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const float sl2 = a.scale * 1.4426950408889634f;

    for (int tile = 0; tile < ntile; tile++) {
        const int buf = tile & 1;
        if (tile + 1 < ntile) { load_kv(tile + 1, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        const uint32_t *Kt = sm + buf * KV, *Vt = Kt + FT_BK * LDK;
        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < ND; ks++) {
#pragma unroll
            for (int n = 0; n < NT; n++) {     // K (lay 1): k t4 and t4 + 4 of row g at 2t4, 2t4 + 1
                const uint2 kb = *(const uint2 *)(Kt + (n * 8 + g) * LDK + ks * 8 + 2 * t4);
                mma_tf32(s[n], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], kb.x, kb.y);
            }
        }
        fa_softmax_step(s, o, (int64_t)tile * FT_BK, a.Nk, t4, sl2, m0, m1, l0, l1);
        // O += P V: k8 step kk = the n8 tile kk of S; its k index t4 <-> key 2t4, t4 + 4 <-> key 2t4 + 1
#pragma unroll
        for (int kk = 0; kk < NT; kk++) {
            const uint32_t p0 = to_tf32(s[kk][0]), p1 = to_tf32(s[kk][2]), p2 = to_tf32(s[kk][1]), p3 = to_tf32(s[kk][3]);
            const uint32_t *vp = Vt + (kk * 4 + t4) * LDV + 2 * g;     // V (lay 2): keys 2t4, 2t4 + 1 of column g adjacent
#pragma unroll
            for (int dn = 0; dn < ND; dn++) {
                const uint2 vb = *(const uint2 *)(vp + dn * 16);
                mma_tf32(o[dn], p0, p1, p2, p3, vb.x, vb.y);
            }
        }
        __syncthreads();
    }
    fa_store_rows<D>(o, l0, l1, a, O, b, h, i0 + warp * 16 + g, t4);
}

template <int D> int attn_tf_fwd_d(Run &R, const AttG &a, float *O) {
    int64_t BH = a.B * a.H, Nkp = att_nkp_tf(a.Nk), nqt = (a.Nq + FA_BQ - 1) / FA_BQ;
    uint32_t *Kb = (uint32_t *)R.C->scratch, *Vb = Kb + BH * Nkp * D;
    if (rows_tf32(R, a.k, a.sk, a.H, a.Nk, Nkp, D, BH, Kb, 1) || rows_tf32(R, a.v, a.sv, a.H, a.Nk, Nkp, D, BH, Vb, 2)) return -1;
    SC_CU(cudaFuncSetAttribute(k_attn_fwd_tf<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)FtSmem<D>::bytes));
    int64_t nb = BH * nqt;
    if (nb > 0x7fffffff) { seterr(R.err, R.errlen, "cuda attention: %lld blocks", (long long)nb); return -1; }
    k_attn_fwd_tf<D><<<(unsigned)nb, FA_WARPS * 32, FtSmem<D>::bytes, R.s>>>(a, nqt, Nkp, Kb, Vb, O);
    SC_LAUNCH();
    return 0;
}
size_t scratch_flash_tf(int64_t BH, int64_t Nk, int64_t d) { return (size_t)(2 * BH * att_nkp_tf(Nk) * d) * 4 + 256; }

// Backward, TF32: the bf16 geometry (FbGeom: queries padded to 64, keys to 64), operands in fp32 words.
size_t scratch_flash_back_tf(int64_t BH, int64_t Nq, int64_t Nk, int64_t d) {
    FbGeom G = fb_geom(BH, Nq, Nk);
    size_t w = (size_t)(2 * BH * (G.Nqp + G.Nkp) * d) * 4, st = (size_t)(2 * BH * G.Nqp) * 4;
    size_t part = G.splits > 1 ? (size_t)(2 * G.splits * BH * Nk * d) * 4 : 0;
    return w + st + part + 1024;
}
template <int D> struct FtSmemA {
    static constexpr int LD = D + 4;
    static constexpr size_t bytes = (size_t)(2 * FA_BQ * LD + 4 * FB_KT * LD) * 4;    // Q, dO, [K V][2]
};
template <int D> struct FtSmemB {
    static constexpr int LD = D + 4;
    static constexpr size_t bytes = (size_t)(2 * FA_BQ * LD + 4 * FB_QT * LD) * 4 + 4 * FB_QT * 4;  // K, V, [Q dO][2], LSE[2], D[2]
};

template <int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_bwd_q_tf(int64_t Nq, int64_t Nk, float scale, int64_t nqt, int64_t Nqp, int64_t Nkp,
                                                                 const uint32_t *Qb, const uint32_t *dOb, const uint32_t *Kb,
                                                                 const uint32_t *Vb, float *LSE, float *Dd, float *DQ) {
    constexpr int LD = D + 4, NT = FB_KT / 8, ND = D / 8, PR = D / 4, KV = FB_KT * LD;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    uint32_t *Qs = (uint32_t *)fa_smem, *dOs = Qs + FA_BQ * LD, *KVs = dOs + FA_BQ * LD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t bh = blockIdx.x / nqt, i0 = (blockIdx.x % nqt) * FA_BQ;
    const uint32_t *Kg = Kb + bh * Nkp * D, *Vg = Vb + bh * Nkp * D;
    const int ntile = (int)(Nkp / FB_KT), total = 2 * ntile;
    {   // Q and dO tiles (joined to the first K/V group)
        const uint32_t *qs = Qb + (bh * Nqp + i0) * D, *ds = dOb + (bh * Nqp + i0) * D;
        for (int p = tid; p < FA_BQ * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            cp_async16(smem_u32(Qs + r * LD + c), qs + r * D + c);
            cp_async16(smem_u32(dOs + r * LD + c), ds + r * D + c);
        }
    }
    auto load_kv = [&](int tile, int buf) {
        const uint32_t *ks = Kg + (int64_t)tile * FB_KT * D, *vs = Vg + (int64_t)tile * FB_KT * D;
        uint32_t *kd = KVs + buf * 2 * KV, *vd = kd + KV;
        for (int p = tid; p < FB_KT * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            cp_async16(smem_u32(kd + r * LD + c), ks + r * D + c);
            cp_async16(smem_u32(vd + r * LD + c), vs + r * D + c);
        }
        cp_async_commit();
    };
    load_kv(0, 0);
    uint32_t qf[ND][4], of[ND][4];
    float dq[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f, u0 = 0.f, u1 = 0.f;
    const float sl2 = scale * 1.4426950408889634f;

    for (int it = 0; it < total; it++) {
        const int buf = it & 1, tile = it < ntile ? it : it - ntile;
        if (it + 1 < total) { load_kv((it + 1) % ntile, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        if (it == 0) {
            const int r = (warp * 16 + g) * LD + t4;
#pragma unroll
            for (int ks = 0; ks < ND; ks++) {
                const int c = r + ks * 8;
                qf[ks][0] = Qs[c]; qf[ks][1] = Qs[c + 8 * LD]; qf[ks][2] = Qs[c + 4]; qf[ks][3] = Qs[c + 8 * LD + 4];
                of[ks][0] = dOs[c]; of[ks][1] = dOs[c + 8 * LD]; of[ks][2] = dOs[c + 4]; of[ks][3] = dOs[c + 8 * LD + 4];
            }
        }
        const uint32_t *Kt = KVs + buf * 2 * KV, *Vt = Kt + KV;
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < ND; ks++) {
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const int c = (n * 8 + g) * LD + ks * 8 + t4;
                mma_tf32(s[n], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], Kt[c], Kt[c + 4]);
                mma_tf32(dp[n], of[ks][0], of[ks][1], of[ks][2], of[ks][3], Vt[c], Vt[c + 4]);
            }
        }
        fa_mask_scale(s, (int64_t)tile * FB_KT, Nk, t4, sl2);
        if (it < ntile) {
            fb_stats_step(s, dp, m0, m1, l0, l1, u0, u1);
            if (it == ntile - 1) fb_stats_finish(m0, m1, l0, l1, u0, u1, LSE + bh * Nqp, Dd + bh * Nqp, i0 + warp * 16 + g, Nq, t4);
        } else {               // pass 2: dS and dQ += dS K (k index t4 <-> key 2t4, t4 + 4 <-> 2t4 + 1)
#pragma unroll
            for (int kk = 0; kk < NT; kk++) {
                const float d0 = exp2f(s[kk][0] - m0) * (dp[kk][0] - u0) * scale, d1 = exp2f(s[kk][1] - m0) * (dp[kk][1] - u0) * scale;
                const float d2 = exp2f(s[kk][2] - m1) * (dp[kk][2] - u1) * scale, d3 = exp2f(s[kk][3] - m1) * (dp[kk][3] - u1) * scale;
                const uint32_t a0 = to_tf32(d0), a1 = to_tf32(d2), a2 = to_tf32(d1), a3 = to_tf32(d3);
                const uint32_t *kp = Kt + (kk * 8 + 2 * t4) * LD + g;
#pragma unroll
                for (int dn = 0; dn < ND; dn++) mma_tf32(dq[dn], a0, a1, a2, a3, kp[dn * 8], kp[LD + dn * 8]);
            }
        }
        __syncthreads();
    }
    fb_store_rows<D>(dq, DQ + bh * Nq * D, Nq, i0 + warp * 16 + g, t4);
}

template <int D>
__global__ void __launch_bounds__(FA_WARPS * 32) k_attn_bwd_kv_tf(int64_t Nk, float scale, FbGeom G, const uint32_t *Qb,
                                                                  const uint32_t *dOb, const uint32_t *Kb, const uint32_t *Vb,
                                                                  const float *LSE, const float *Dd, float *DK, float *DV, int64_t pstride) {
    constexpr int LD = D + 4, NT = FB_QT / 8, ND = D / 8, PR = D / 4, QT = FB_QT * LD;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    uint32_t *Ks = (uint32_t *)fa_smem, *Vs = Ks + FA_BQ * LD, *QO = Vs + FA_BQ * LD;     // QO: [Q dO][2]
    float *Ls = (float *)(QO + 4 * QT), *Ds = Ls + 2 * FB_QT;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t kb = blockIdx.x % G.nkb, sp = (blockIdx.x / G.nkb) % G.splits, bh = blockIdx.x / (G.nkb * G.splits);
    const int64_t j0 = kb * FA_BQ, nqt = G.Nqp / FB_QT, t0 = sp * G.tps, t1 = t0 + G.tps < nqt ? t0 + G.tps : nqt;
    const uint32_t *Qg = Qb + bh * G.Nqp * D, *dOg = dOb + bh * G.Nqp * D;
    const float *Lg = LSE + bh * G.Nqp, *Dg = Dd + bh * G.Nqp;
    {
        const uint32_t *ks = Kb + (bh * G.Nkp + j0) * D, *vs = Vb + (bh * G.Nkp + j0) * D;
        for (int p = tid; p < FA_BQ * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            cp_async16(smem_u32(Ks + r * LD + c), ks + r * D + c);
            cp_async16(smem_u32(Vs + r * LD + c), vs + r * D + c);
        }
    }
    auto load_q = [&](int64_t t, int buf) {
        const uint32_t *qs = Qg + t * FB_QT * D, *ds = dOg + t * FB_QT * D;
        uint32_t *qd = QO + buf * 2 * QT, *dd = qd + QT;
        for (int p = tid; p < FB_QT * PR; p += FA_WARPS * 32) {
            int r = p / PR, c = (p % PR) * 4;
            cp_async16(smem_u32(qd + r * LD + c), qs + r * D + c);
            cp_async16(smem_u32(dd + r * LD + c), ds + r * D + c);
        }
        if (tid < FB_QT / 4) cp_async16(smem_u32(Ls + buf * FB_QT + tid * 4), Lg + t * FB_QT + tid * 4);
        else if (tid < FB_QT / 2) cp_async16(smem_u32(Ds + buf * FB_QT + (tid - FB_QT / 4) * 4), Dg + t * FB_QT + (tid - FB_QT / 4) * 4);
        cp_async_commit();
    };
    load_q(t0, 0);
    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f;
    const float sl2 = scale * 1.4426950408889634f;
    const uint32_t *ka = Ks + (warp * 16 + g) * LD + t4, *va = Vs + (warp * 16 + g) * LD + t4;   // A fragments (keys x d)
    for (int64_t t = t0; t < t1; t++) {
        const int buf = (int)((t - t0) & 1);
        if (t + 1 < t1) { load_q(t + 1, buf ^ 1); cp_async_wait<1>(); } else cp_async_wait<0>();
        __syncthreads();
        const uint32_t *Qt = QO + buf * 2 * QT, *dOt = Qt + QT;
        const float *Lt = Ls + buf * FB_QT, *Dt = Ds + buf * FB_QT;
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < ND; ks++) {
            const int c = ks * 8;
            const uint32_t k0 = ka[c], k1 = ka[c + 8 * LD], k2 = ka[c + 4], k3 = ka[c + 8 * LD + 4];
            const uint32_t v0 = va[c], v1 = va[c + 8 * LD], v2 = va[c + 4], v3 = va[c + 8 * LD + 4];
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const int q = (n * 8 + g) * LD + c + t4;
                mma_tf32(s[n], k0, k1, k2, k3, Qt[q], Qt[q + 4]);
                mma_tf32(dp[n], v0, v1, v2, v3, dOt[q], dOt[q + 4]);
            }
        }
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int q = n * 8 + 2 * t4 + (e & 1);
                const float p = exp2f(s[n][e] * sl2 - Lt[q]);
                s[n][e] = p;
                dp[n][e] = p * (dp[n][e] - Dt[q]) * scale;
            }
        // dV += P^T dO, dK += dS^T Q (k index t4 <-> query 2t4, t4 + 4 <-> 2t4 + 1)
#pragma unroll
        for (int kk = 0; kk < NT; kk++) {
            const uint32_t p0 = to_tf32(s[kk][0]), p1 = to_tf32(s[kk][2]), p2 = to_tf32(s[kk][1]), p3 = to_tf32(s[kk][3]);
            const uint32_t d0 = to_tf32(dp[kk][0]), d1 = to_tf32(dp[kk][2]), d2 = to_tf32(dp[kk][1]), d3 = to_tf32(dp[kk][3]);
            const uint32_t *op = dOt + (kk * 8 + 2 * t4) * LD + g, *qp = Qt + (kk * 8 + 2 * t4) * LD + g;
#pragma unroll
            for (int dn = 0; dn < ND; dn++) {
                mma_tf32(dv[dn], p0, p1, p2, p3, op[dn * 8], op[LD + dn * 8]);
                mma_tf32(dk[dn], d0, d1, d2, d3, qp[dn * 8], qp[LD + dn * 8]);
            }
        }
        __syncthreads();
    }
    const int64_t r0 = j0 + warp * 16 + g, r1 = r0 + 8;
    float *K0 = DK + sp * pstride + (bh * Nk + r0) * D + 2 * t4, *K1 = DK + sp * pstride + (bh * Nk + r1) * D + 2 * t4;
    float *V0 = DV + sp * pstride + (bh * Nk + r0) * D + 2 * t4, *V1 = DV + sp * pstride + (bh * Nk + r1) * D + 2 * t4;
#pragma unroll
    for (int n = 0; n < ND; n++) {
        if (r0 < Nk) { *(float2 *)(K0 + n * 8) = make_float2(dk[n][0], dk[n][1]); *(float2 *)(V0 + n * 8) = make_float2(dv[n][0], dv[n][1]); }
        if (r1 < Nk) { *(float2 *)(K1 + n * 8) = make_float2(dk[n][2], dk[n][3]); *(float2 *)(V1 + n * 8) = make_float2(dv[n][2], dv[n][3]); }
    }
}

// The fused backward, for either operand type (T = __nv_bfloat16: the bf16 kernels, uint32_t: tf32
// bit patterns): operands rounded into scratch, kernel A (dQ, row statistics), kernel B (dK, dV,
// fixed-order sums of the query splits).
inline int rows_op(Run &R, const float *src, const int64_t *s, int64_t H, int64_t N, int64_t Np, int64_t d, int64_t BH, __nv_bfloat16 *dst,
                   bool h) {
    return rows_bf16(R, src, s, H, N, Np, d, BH, dst, h);
}
inline int rows_op(Run &R, const float *src, const int64_t *s, int64_t H, int64_t N, int64_t Np, int64_t d, int64_t BH, uint32_t *dst,
                   bool h) {
    (void)h;     // bf16 storage only reaches the bf16 kernels (plan_half)
    return rows_tf32(R, src, s, H, N, Np, d, BH, dst);
}
// The forward's statistics for the backward (bf16 kernels): LSE [BH, Nqp] as the forward wrote it,
// and its output O [B, Nq, H, d] (stored as bf16 where oh) for D = rowsum(dO O).
struct AttStats { float *lse; const float *O; bool oh; };

// dO [B, Nq, H, d] fp32 rows to bf16 [BH, Np, d] (zero past N) and D[bh, r] = sum_c dO O (0 past N):
// a warp per row, four elements a lane (d a multiple of 16, both rows 16-byte aligned).
__global__ void k_rows_bf16_dot(const float *dO, const float *O, bool oh, int64_t H, int64_t N, int64_t Np, int d, int64_t BH,
                                __nv_bfloat16 *dst, float *Dd) {
    const int lane = threadIdx.x & 31;
    const int64_t nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < BH * Np; row += nw) {
        const int64_t bh = row / Np, r = row - bh * Np, e0 = (((bh / H) * N + r) * H + bh % H) * d;
        float acc = 0.f;
        for (int c = lane * 4; c < d; c += 128) {
            float4 x = make_float4(0.f, 0.f, 0.f, 0.f), o = x;
            if (r < N) { x = *(const float4 *)(dO + e0 + c); o = oh ? ld4f((const bf16 *)O + e0 + c) : *(const float4 *)(O + e0 + c); }
            acc += x.x * o.x + x.y * o.y + x.z * o.z + x.w * o.w;
            *(uint2 *)(dst + row * d + c) = make_uint2(bf_pack(x.x, x.y), bf_pack(x.z, x.w));
        }
        acc = warp_sum(acc);
        if (lane == 0) Dd[row] = acc;
    }
}

// st (bf16 kernels only): the forward's LSE and output are there, kernel A runs its second pass
// only (kq1), D comes from rowsum(dO O) while dO is rounded.
template <int D, typename T, typename KA, typename KB>
int attn_back_run(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV, KA kq, size_t smA, KB kkv, size_t smB,
                  const AttStats *st = nullptr, KA kq1 = nullptr) {
    const int64_t BH = a.B * a.H;
    FbGeom G = fb_geom(BH, a.Nq, a.Nk);
    T *Qb = (T *)R.C->scratch, *dOb = Qb + BH * G.Nqp * D, *Kb = dOb + BH * G.Nqp * D, *Vb = Kb + BH * G.Nkp * D;
    float *LSE = (float *)(Vb + BH * G.Nkp * D), *Dd = LSE + BH * G.Nqp, *part = Dd + BH * G.Nqp;
    const int64_t sdo[3] = { a.Nq * a.H * a.d, a.d, a.H * a.d };     // dO [B, Nq, H, d]
    bool one = false;
    if constexpr (std::is_same<T, __nv_bfloat16>::value) {
        if (st && st->lse && kq1) {
            one = true;
            k_rows_bf16_dot<<<grid_for(BH * G.Nqp * 32), 256, 0, R.s>>>(DO, st->O, st->oh, a.H, a.Nq, G.Nqp, D, BH, dOb, Dd);
            SC_LAUNCH();
            LSE = st->lse;
            kq = kq1;
        }
    }
    if (rows_op(R, a.q, a.sq, a.H, a.Nq, G.Nqp, D, BH, Qb, a.qh) || (!one && rows_op(R, DO, sdo, a.H, a.Nq, G.Nqp, D, BH, dOb, false)) ||
        rows_op(R, a.k, a.sk, a.H, a.Nk, G.Nkp, D, BH, Kb, a.kh) || rows_op(R, a.v, a.sv, a.H, a.Nk, G.Nkp, D, BH, Vb, a.vh)) return -1;
    const int64_t nqt = G.Nqp / FA_BQ, nbA = BH * nqt, nbB = BH * G.nkb * G.splits;
    if (nbA > 0x7fffffff || nbB > 0x7fffffff) { seterr(R.err, R.errlen, "cuda attention backward: too many blocks"); return -1; }
    SC_CU(cudaFuncSetAttribute(kq, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smA));
    kq<<<(unsigned)nbA, FA_WARPS * 32, smA, R.s>>>(a.Nq, a.Nk, a.scale, nqt, G.Nqp, G.Nkp, Qb, dOb, Kb, Vb, LSE, Dd, DQ);
    SC_LAUNCH();
    SC_CU(cudaFuncSetAttribute(kkv, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smB));
    const int64_t n = BH * a.Nk * D;
    float *pk = G.splits > 1 ? part : DK, *pv = G.splits > 1 ? part + G.splits * n : DV;
    kkv<<<(unsigned)nbB, FA_WARPS * 32, smB, R.s>>>(a.Nk, a.scale, G, Qb, dOb, Kb, Vb, LSE, Dd, pk, pv, n);
    SC_LAUNCH();
    if (G.splits > 1) {
        k_sum_parts<<<grid_for(n / 4), 256, 0, R.s>>>(pk, n, G.splits, DK);
        SC_LAUNCH();
        k_sum_parts<<<grid_for(n / 4), 256, 0, R.s>>>(pv, n, G.splits, DV);
        SC_LAUNCH();
    }
    return 0;
}
template <int D> int attn_tf_back_d(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV) {
    return attn_back_run<D, uint32_t>(R, a, DO, DQ, DK, DV, k_attn_bwd_q_tf<D>, FtSmemA<D>::bytes, k_attn_bwd_kv_tf<D>, FtSmemB<D>::bytes);
}
template <int D> int attn_flash_back_d(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV, const AttStats *st) {
    return attn_back_run<D, __nv_bfloat16>(R, a, DO, DQ, DK, DV, k_attn_bwd_q<D, false>, FbSmemA<D>::bytes, k_attn_bwd_kv<D>, FbSmemB<D>::bytes,
                                           st, k_attn_bwd_q<D, true>);
}
int attn_flash_back(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV, const AttStats *st) {
#define FA_CALL(D) attn_flash_back_d<D>(R, a, DO, DQ, DK, DV, st)
    FA_SWITCH_D(a.d)
#undef FA_CALL
}
int attn_tf_fwd(Run &R, const AttG &a, float *O) {
#define FA_CALL(D) attn_tf_fwd_d<D>(R, a, O)
    FA_SWITCH_D(a.d)
#undef FA_CALL
}
int attn_tf_back(Run &R, const AttG &a, const float *DO, float *DQ, float *DK, float *DV) {
#define FA_CALL(D) attn_tf_back_d<D>(R, a, DO, DQ, DK, DV)
    FA_SWITCH_D(a.d)
#undef FA_CALL
}

int op_attention(Run &R, scvrl_tensor *t) {
    AttG a = att_geom(R, t->src[0], t->src[1], t->src[2], t->fp[0]);
    float *O = F(R, t);
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    if (!a.Nk) { SC_CU(cudaMemsetAsync(O, 0, (size_t)n * 4, R.s)); return 0; }
    switch (att_kind(R.C->prec, a.d, a.Nq, a.Nk)) {
    case ATT_BF16: {
        auto it = R.C->lse_of.find(t);
        return attn_flash_fwd(R, a, O, HF(R, t), it == R.C->lse_of.end() ? nullptr : it->second);
    }
    case ATT_TF32: return attn_tf_fwd(R, a, O);
    default: return attn_gemm_fwd(R, a, O);
    }
}
int op_attention_back(Run &R, scvrl_tensor *t) {
    AttG a = att_geom(R, t->src[0], t->src[1], t->src[2], t->fp[0]);
    const float *DO = F(R, t->src[3]);
    float *DQ = F(R, t), *DK = DQ + a.B * a.H * a.Nq * a.d, *DV = DK + a.B * a.H * a.Nk * a.d;
    int64_t n = scvrl_nelements(t);
    if (!n) return 0;
    if (!a.Nk || !a.Nq) { SC_CU(cudaMemsetAsync(DQ, 0, (size_t)n * 4, R.s)); return 0; }
    switch (att_kind(R.C->prec, a.d, a.Nq, a.Nk)) {
    case ATT_BF16: {      // with the forward's statistics where this compute's forward kept them (compute_lse)
        auto it = t->src[4] ? R.C->lse_of.find(t->src[4]) : R.C->lse_of.end();
        AttStats st = { nullptr, nullptr, false };
        if (it != R.C->lse_of.end()) st = AttStats{ it->second, F(R, t->src[4]), HF(R, t->src[4]) };
        return attn_flash_back(R, a, DO, DQ, DK, DV, &st);
    }
    case ATT_TF32: return attn_tf_back(R, a, DO, DQ, DK, DV);
    default: return attn_gemm_back(R, a, DO, DQ, DK, DV);
    }
}

size_t scratch_of(const Cuda *C, const scvrl_tensor *t) {
    switch (t->op) {
    case SCVRL_OP_MATMUL: return scratch_matmul(t);
    case SCVRL_OP_SUM_TO: return scratch_sum_to(t);
    case SCVRL_OP_LAYER_NORM_BACK_WB: return scratch_ln_wb(t);
    case SCVRL_OP_CONV3D: case SCVRL_OP_CONV3D_BACK_X: case SCVRL_OP_CONV3D_BACK_W: return scratch_conv(t);
    case SCVRL_OP_ATTENTION_BACK: {
        const scvrl_tensor *q = t->src[0], *k = t->src[1];
        switch (att_kind(C->prec, q->ne[3], q->ne[2], k->ne[2])) {
        case ATT_BF16: return scratch_flash_back(q->ne[0] * q->ne[1], q->ne[2], k->ne[2], q->ne[3]);
        case ATT_TF32: return scratch_flash_back_tf(q->ne[0] * q->ne[1], q->ne[2], k->ne[2], q->ne[3]);
        default: return scratch_attn(t, 2);
        }
    }
    case SCVRL_OP_ATTENTION: {
        const scvrl_tensor *q = t->src[0], *k = t->src[1];
        switch (att_kind(C->prec, q->ne[3], q->ne[2], k->ne[2])) {
        case ATT_BF16: return scratch_flash(q->ne[0] * q->ne[1], k->ne[2], q->ne[3]);
        case ATT_TF32: return scratch_flash_tf(q->ne[0] * q->ne[1], k->ne[2], q->ne[3]);
        default: return scratch_attn(t, 1);
        }
    }
    default: return 0;
    }
}

int run_node(Run &R, scvrl_tensor *t) {
    switch (t->op) {
    case SCVRL_OP_LEAF: case SCVRL_OP_RESHAPE: case SCVRL_OP_PERMUTE: case SCVRL_OP_SLICE: case SCVRL_OP_EXPAND: return 0;
    case SCVRL_OP_ADD: return binary<BIN_ADD>(R, t);
    case SCVRL_OP_SUB: return binary<BIN_SUB>(R, t);
    case SCVRL_OP_MUL: return binary<BIN_MUL>(R, t);
    case SCVRL_OP_DIV: return binary<BIN_DIV>(R, t);
    case SCVRL_OP_RELU_BACK: return binary<BIN_RELU_BACK>(R, t);
    case SCVRL_OP_GELU_BACK: return binary<BIN_GELU_BACK>(R, t);
    case SCVRL_OP_SCALE: return unary<UN_SCALE>(R, t);
    case SCVRL_OP_RELU: return unary<UN_RELU>(R, t);
    case SCVRL_OP_GELU: return unary<UN_GELU>(R, t);
    case SCVRL_OP_MATMUL: return op_matmul(R, t);
    case SCVRL_OP_LINEAR: return op_linear(R, t);
    case SCVRL_OP_CONV3D: return op_conv(R, t);
    case SCVRL_OP_CONV3D_BACK_X: return op_conv_back_x(R, t);
    case SCVRL_OP_CONV3D_BACK_W: return op_conv_back_w(R, t);
    case SCVRL_OP_MAXPOOL3D: return op_maxpool(R, t);
    case SCVRL_OP_MAXPOOL3D_BACK: return op_maxpool_back(R, t);
    case SCVRL_OP_LAYER_NORM: return op_layer_norm(R, t);
    case SCVRL_OP_LAYER_NORM_BACK: return op_layer_norm_back(R, t);
    case SCVRL_OP_LAYER_NORM_BACK_WB: return op_ln_wb(R, t);
    case SCVRL_OP_SOFTMAX: return op_softmax(R, t, 0);
    case SCVRL_OP_SOFTMAX_BACK: return op_softmax_back(R, t, 0);
    case SCVRL_OP_LOG_SOFTMAX: return op_softmax(R, t, 1);
    case SCVRL_OP_LOG_SOFTMAX_BACK: return op_softmax_back(R, t, 1);
    case SCVRL_OP_ATTENTION: return op_attention(R, t);
    case SCVRL_OP_ATTENTION_BACK: return op_attention_back(R, t);
    case SCVRL_OP_CROSS_ENTROPY: return op_ce(R, t);
    case SCVRL_OP_CROSS_ENTROPY_BACK: return op_ce_back(R, t);
    case SCVRL_OP_L2_NORMALIZE: return op_l2n(R, t);
    case SCVRL_OP_L2_NORMALIZE_BACK: return op_l2n_back(R, t);
    case SCVRL_OP_SUM_TO: return op_sum_to(R, t);
    case SCVRL_OP_CONCAT: return op_concat(R, t);
    case SCVRL_OP_SLICE_BACK: return op_slice_back(R, t);
    case SCVRL_OP_INDEX_SELECT: return op_index_select(R, t);
    case SCVRL_OP_INDEX_ADD: return op_index_add(R, t);
    case SCVRL_OP_CONT: return op_cont(R, t);
    case SCVRL_OP_DROPOUT: return op_dropout(R, t);
    case SCVRL_OP_DROP_PATH: return op_drop_path(R, t);
    case SCVRL_OP_GRAD_ACC: return op_grad_acc(R, t);
    default:
        seterr(R.err, R.errlen, "cuda: op %s is not implemented", scvrl_op_name(t->op));
        return -1;
    }
}
#undef ERR_
#undef ERRLEN_

// ---------------------------------------------------------------------------------------------
// The backend vtable
// ---------------------------------------------------------------------------------------------
#define ERR_ err
#define ERRLEN_ errlen

int cuda_supports(scvrl_backend *be, const scvrl_tensor *t) {
    (void)be;
    if (t->op >= SCVRL_OP_COUNT) return 0;
    if (t->op == SCVRL_OP_CONT) return scvrl_dtype_size(t->type) == 4;
    return 1;
}

bool is_external_node(const scvrl_tensor *t) {
    return t->op != SCVRL_OP_LEAF && !t->view_src && (t->flags & SCVRL_F_EXTERNAL);
}

// ---------------------------------------------------------------------------------------------
// Activation storage (BF16 mode). Intermediate nodes whose every reader has a bf16 variant are
// stored as bf16 (half the bytes, in the first half of their planned fp32 slot), as PyTorch's
// autocast keeps activations: layer-norm, GELU, linear, depthwise-conv, concat, copy and fused-
// attention outputs. Inputs, parameters, outputs, external nodes and gradients (every other op's
// output) stay fp32, so are every sum, statistic and loss; readers widen to fp32 and GEMMs take
// bf16 operands as they are (no packing pass). SCVRL_CUDA_BF16_ACT=0 stores everything as fp32
// (the earlier bf16 mode: operands rounded per product). Decided per compute, before the kernels:
// a node is a candidate if its op can write bf16; any reader without a bf16 read path vetoes it;
// views share their base's storage.
// ---------------------------------------------------------------------------------------------
bool half_env() { const char *e = getenv("SCVRL_CUDA_BF16_ACT"); return !(e && !strcmp(e, "0")); }
bool dw_half_ok(const scvrl_tensor *t) {         // CONV3D t on the register-weight depthwise kernels
    CP p = conv_params(t, t->src[1]);
    G5 gx = geom5(t->src[0], p.layout), gy = geom5(t, p.layout);
    return is_dw_last(p, gx, gy) && dw_reg(p, gx, gy);
}
bool dw_w_half_ok(const scvrl_tensor *t) {       // CONV3D_BACK_W t on the 27-tap weight-gradient kernel
    CP p = conv_params(t, t);
    G5 gx = geom5(t->src[1], p.layout), gy = geom5(t->src[0], p.layout);
    return is_dw_last(p, gx, gy) && dw_w_taps(p, gx, gy);
}
bool att_half_ok(const Cuda *C, const scvrl_tensor *t) {
    const scvrl_tensor *q = t->src[0], *k = t->src[1];
    return att_kind(C->prec, q->ne[3], q->ne[2], k->ne[2]) == ATT_BF16;
}
bool gelu_back_contig(const scvrl_tensor *t) {   // GELU_BACK on the contiguous kernel (x, dy, dx all of n elements)
    const scvrl_tensor *x = t->src[0], *dy = t->src[1];
    return scvrl_is_contiguous(x) && scvrl_is_contiguous(dy) && scvrl_nelements(x) == scvrl_nelements(t) &&
           scvrl_nelements(dy) == scvrl_nelements(t);
}
bool writes_half(const Cuda *C, const scvrl_tensor *t) {
    switch (t->op) {
    case SCVRL_OP_LINEAR: case SCVRL_OP_LAYER_NORM: case SCVRL_OP_CONCAT: case SCVRL_OP_CONT: return true;
    case SCVRL_OP_GELU: return scvrl_is_contiguous(t->src[0]);
    case SCVRL_OP_GELU_BACK: return gelu_back_contig(t);
    case SCVRL_OP_DROP_PATH: return scvrl_is_contiguous(t->src[0]);
    case SCVRL_OP_CONV3D: return dw_half_ok(t);
    case SCVRL_OP_ATTENTION: return att_half_ok(C, t);
    default: return false;
    }
}
bool reads_half(const Cuda *C, const scvrl_tensor *t, int k) {
    const scvrl_tensor *s = t->src[k];
    switch (t->op) {
    case SCVRL_OP_LINEAR: case SCVRL_OP_LAYER_NORM: case SCVRL_OP_GELU: return k == 0 && scvrl_is_contiguous(s);
    case SCVRL_OP_CONCAT: case SCVRL_OP_CONT: return true;
    case SCVRL_OP_CONV3D: return k == 0 && dw_half_ok(t);
    case SCVRL_OP_ATTENTION: case SCVRL_OP_ATTENTION_BACK: return (k < 3 || (k == 4 && t->op == SCVRL_OP_ATTENTION_BACK)) && att_half_ok(C, t);
    case SCVRL_OP_MATMUL: return operand_ok(s);
    case SCVRL_OP_GELU_BACK: return k == 0 && gelu_back_contig(t);
    case SCVRL_OP_SUM_TO: return sum_plan(t).fast;
    case SCVRL_OP_LAYER_NORM_BACK: case SCVRL_OP_LAYER_NORM_BACK_WB: return k == 1 && scvrl_is_contiguous(s);
    case SCVRL_OP_CONV3D_BACK_W: return k == 1 && dw_w_half_ok(t);
    default: return false;
    }
}
void plan_half(Cuda *C, scvrl_graph *g, const int64_t *offs) {
    int n = g->n;
    std::vector<char> &h = C->half;
    h.assign((size_t)n, 0);
    C->half_nodes = 0;
    if (C->prec != SCVRL_PREC_BF16 || !half_env()) return;
    auto base = [&](const scvrl_tensor *t) {
        scvrl_tensor *b = scvrl_view_base(t, nullptr);
        return b->id >= 0 && b->id < n && g->nodes[b->id] == b ? b->id : -1;
    };
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (t->view_src || t->op == SCVRL_OP_LEAF || is_external_node(t) || (t->flags & SCVRL_F_OUTPUT) || offs[i] < 0 ||
            t->type != SCVRL_DT_F32 || !scvrl_nelements(t)) continue;
        h[i] = writes_half(C, t);
    }
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (t->view_src) { int b = base(t); if (b >= 0 && (t->flags & SCVRL_F_OUTPUT)) h[b] = 0; continue; }
        if (t->op == SCVRL_OP_LEAF) continue;
        for (int k = 0; k < SCVRL_MAX_SRC; k++) {
            if (!t->src[k]) continue;
            int b = base(t->src[k]);
            if (b >= 0 && h[b] && !reads_half(C, t, k)) h[b] = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        if (g->nodes[i]->view_src) { int b = base(g->nodes[i]); h[i] = b >= 0 ? h[b] : 0; }
        else C->half_nodes += h[i];
    }
}

// ---------------------------------------------------------------------------------------------
// Concat placement (SCVRL_CUDA_CATPLACE=0: off). MViT joins the CLS row to each pooled grid (q, k,
// v and the skip path's max pool) with a CONCAT, and its backward joins the gradients of those
// parts (CLS row + grid, then q, k and v of one projection) with more: each a full copy. A concat
// source that nothing else reads, whose producer can write its output at any strides (a depthwise
// conv or its backward-x, a max pool, a CONT, another concat), is written by that producer straight
// into the concat's memory, recursively into the outermost concat's ("root"), and the concats copy
// only their other sources. The plan gives the root its memory at the first such producer's step
// (scvrl_graph_plan_placed) and the placed nodes none; they take the root's storage (bf16 / fp32):
// the same bits as the copies, except where a node stored as bf16 went into an fp32 concat (the
// CLS row of the skip path's concat, the CLS row's gradient into an fp32 gradient): that node is
// now written at fp32, one bf16 rounding fewer (MViT-B's bf16 forward vs the float64 fixture:
// 5.95e-3 -> 5.46e-3).
// ---------------------------------------------------------------------------------------------
bool cat_place_env() { const char *e = getenv("SCVRL_CUDA_CATPLACE"); return !(e && *e == '0'); }

// Strides ns for shape nn (nd dims) addressing the same elements in the same order as shape on (od
// dims) at strides os (a reshape of a strided block); false where none can (dims merged across a
// gap). Walks the chunks of dims that are contiguous among themselves from the innermost.
bool reshape_strides(int od, const int64_t *on, const int64_t *os, int nd, const int64_t *nn, int64_t *ns) {
    int v = nd - 1;
    int64_t base = os[od - 1], tn = 1, vn = 1;
    for (int d = od - 1; d >= 0; d--) {
        tn *= on[d];
        if (d > 0 && (on[d - 1] == 1 || os[d - 1] == tn * base)) continue;     // the chunk goes on
        while (v >= 0 && (vn < tn || nn[v] == 1)) { ns[v] = vn * base; vn *= nn[v]; v--; }
        if (vn != tn) return false;
        if (d > 0) { base = os[d - 1]; tn = 1; vn = 1; }
    }
    while (v >= 0 && nn[v] == 1) { ns[v] = base; v--; }
    return v == -1;
}

// Can node x write its output at strides st (into a root stored as bf16 when half)? The same path
// tests as its op's, on the placed geometry.
bool can_place(const Cuda *C, scvrl_tensor *x, const int64_t *st, bool half) {
    int64_t keep[SCVRL_MAX_DIMS];
    memcpy(keep, x->st, sizeof keep);
    memcpy(x->st, st, sizeof keep);
    bool ok = false;
    switch (x->op) {
    case SCVRL_OP_CONCAT: { int64_t o, i, so, sd; ok = cat_geom(x, st, &o, &i, &so, &sd); break; }
    case SCVRL_OP_CONT: ok = x->src[0]->type == SCVRL_DT_F32; break;
    case SCVRL_OP_CONV3D: {
        CP p = conv_params(x, x->src[1]);
        G5 gx = geom5(x->src[0], p.layout), gy = geom5(x, p.layout);
        ok = (is_dw_last(p, gx, gy) && dw_reg(p, gx, gy)) || stem_ok(C->prec, p, gx, gy);
        break;
    }
    case SCVRL_OP_CONV3D_BACK_X: {
        CP p = conv_params(x, x->src[1]);
        G5 gx = geom5(x, p.layout), gy = geom5(x->src[0], p.layout);
        ok = is_dw_last(p, gx, gy) && dw_reg(p, gx, gy) && (!half || dw_back_x_half_ok(p, gx, gy));
        break;
    }
    case SCVRL_OP_MAXPOOL3D: ok = !half; break;
    default: break;
    }
    memcpy(x->st, keep, sizeof keep);
    return ok;
}

bool is_placed(const Cuda *C, int i) { return i < (int)C->place.size() && C->place[i].root >= 0 && C->place[i].root != i; }

// C->place, C->birth (after plan_half); the placed nodes take their root's storage.
// The node of g whose memory t uses (t's view base; *o: the element offset into it), or -1.
int graph_base(const scvrl_graph *g, const scvrl_tensor *t, int64_t *o) {
    scvrl_tensor *b = scvrl_view_base(t, o);
    return b->id >= 0 && b->id < g->n && g->nodes[b->id] == b ? b->id : -1;
}
void plan_places(Cuda *C, scvrl_graph *g) {
    int n = g->n;
    C->place.assign((size_t)n, Place());
    C->birth.clear();
    C->placed_nodes = 0;
    if (!cat_place_env()) return;
    auto base = [&](const scvrl_tensor *t, int64_t *o) { return graph_base(g, t, o); };
    std::vector<int> &reads = C->reads;            // source slots of non-view nodes, by base (outputs count 2)
    reads.assign((size_t)n, 0);
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (t->flags & SCVRL_F_OUTPUT) { int b = base(t, nullptr); if (b >= 0) reads[b] += 2; }
        if (t->view_src) continue;
        for (int k = 0; k < SCVRL_MAX_SRC; k++) if (t->src[k]) { int b = base(t->src[k], nullptr); if (b >= 0) reads[b]++; }
    }
    for (int i = n - 1; i >= 0; i--) {            // outer concats first: their placement is known before their sources'
        scvrl_tensor *c = g->nodes[i];
        if (c->op != SCVRL_OP_CONCAT || c->view_src || !scvrl_nelements(c) || c->type != SCVRL_DT_F32) continue;
        Place &pc = C->place[i];
        if (pc.root < 0) { pc.root = i; pc.off = 0; memcpy(pc.st, c->st, sizeof pc.st); }
        const int dim = (int)c->ip[0];
        int64_t start = 0;
        for (int k = 0; k < 2; k++) {
            scvrl_tensor *s = c->src[k];
            int64_t o = 0, off = pc.off + start * pc.st[dim];
            int b = base(s, &o);
            start += s->ne[dim];
            if (b < 0 || b == i) continue;
            scvrl_tensor *x = g->nodes[b];
            if (o || reads[b] != 1 || x->op == SCVRL_OP_LEAF || (x->flags & SCVRL_F_EXTERNAL) || x->type != SCVRL_DT_F32 ||
                scvrl_nelements(x) != scvrl_nelements(s) || !scvrl_is_contiguous(s) || C->place[b].root >= 0) continue;
            int64_t st[SCVRL_MAX_DIMS] = {};
            if (!reshape_strides(s->ndim, s->ne, pc.st, x->ndim, x->ne, st) || !can_place(C, x, st, C->half.size() && C->half[pc.root])) continue;
            Place &px = C->place[b];
            px.root = pc.root; px.off = off;
            memcpy(px.st, st, sizeof st);
            C->placed_nodes++;
        }
    }
    std::vector<char> used((size_t)n, 0);         // roots something is placed into; the other concats run as before
    for (int i = 0; i < n; i++) if (is_placed(C, i)) used[C->place[i].root] = 1;
    for (int i = 0; i < n; i++) if (C->place[i].root == i && !used[i]) C->place[i].root = -1;
    if (!C->placed_nodes) return;
    C->birth.resize((size_t)n);
    for (int i = 0; i < n; i++) C->birth[i] = i;
    for (int i = 0; i < n; i++) {
        int r = C->place[i].root;
        if (r < 0 || r == i) continue;
        C->birth[i] = -1;
        if (C->birth[r] > i) C->birth[r] = i;
        if (!C->half.empty()) C->half[i] = C->half[r];
    }
    if (!C->half.empty()) {                        // views share their base's storage; recount (placed nodes included)
        C->half_nodes = 0;
        for (int i = 0; i < n; i++) {
            if (g->nodes[i]->view_src) { int b = base(g->nodes[i], nullptr); C->half[i] = b >= 0 ? C->half[b] : 0; }
            else C->half_nodes += C->half[i];
        }
    }
}
// ---------------------------------------------------------------------------------------------
// Pool + norm fusion (SCVRL_CUDA_POOLNORM=0: off). MViT pools q, k and v as LN_d(concat(CLS,
// conv(x))) per head: with the conv placed into the concat, one kernel (k_dw_pool_norm, plus
// k_cls_norm for the CLS rows) computes the conv, writes it into the concat only when something
// other than the norm reads the concat (training: the norm's backward), and writes the norm; the
// concat and the norm are then not run. The norm's output takes its memory from the conv's step.
// Taken where the conv is 3x3x3 depthwise channels-last without bias, temporal stride 1 and padding
// 1 over 2, 4, 8 or 16 frames (the time-column kernel's case), C = 4k <= 1024 channels in heads of
// d = 4k, and x, the concat and the norm are stored alike (all fp32 or all bf16).
// ---------------------------------------------------------------------------------------------
bool pool_norm_env() { const char *e = getenv("SCVRL_CUDA_POOLNORM"); return !(e && *e == '0'); }
void plan_pool_norm(Cuda *C, scvrl_graph *g) {
    C->pnorm.clear();
    C->pn_at.assign((size_t)g->n, -1);
    if (!C->placed_nodes || !pool_norm_env() || !dw_wl()) return;   // (placement ran: C->reads is this graph's)
    const int n = g->n;
    auto base = [&](const scvrl_tensor *t, int64_t *o) { return graph_base(g, t, o); };
    auto hf = [&](int i) { return i >= 0 && !C->half.empty() && C->half[i]; };
    for (int l = 0; l < n; l++) {
        scvrl_tensor *tl = g->nodes[l];
        if (tl->op != SCVRL_OP_LAYER_NORM || tl->view_src || tl->type != SCVRL_DT_F32 || !scvrl_is_contiguous(tl->src[0])) continue;
        int64_t o = 0;
        const int c = base(tl->src[0], &o);
        if (c < 0 || o || C->place[c].root != c || scvrl_nelements(g->nodes[c]) != scvrl_nelements(tl)) continue;
        const scvrl_tensor *tc = g->nodes[c];
        if (tc->op != SCVRL_OP_CONCAT || tc->ndim != 3 || tc->ip[0] != 1 || tc->src[0]->ne[1] != 1 || tc->src[0]->st[2] != 1) continue;
        const int v = base(tc->src[1], nullptr), x = v >= 0 ? base(g->nodes[v]->src[0], nullptr) : -1, cls = base(tc->src[0], nullptr);
        if (v < 0 || !is_placed(C, v) || C->place[v].root != c) continue;
        const scvrl_tensor *tv = g->nodes[v];
        if (tv->op != SCVRL_OP_CONV3D || tv->src[2]) continue;
        CP p = conv_params(tv, tv->src[1]);
        G5 gx = geom5(tv->src[0], p.layout), gy = geom5(tv, p.layout);
        const int64_t Cc = tc->ne[2], d = tl->ne[tl->ndim - 1];
        if (!is_dw_last(p, gx, gy) || !dw_reg(p, gx, gy) || p.st != 1 || p.pt != 1 || gx.T != gy.T ||
            (gy.T != 2 && gy.T != 4 && gy.T != 8 && gy.T != 16) || gx.C != Cc || Cc % 4 || Cc > 1024 || d % 4 || Cc % d) continue;
        const bool h = hf(c);
        if (hf(l) != h || hf(x) != h || hf(cls) != h) continue;
        C->pn_at[v] = (int)C->pnorm.size();
        C->pnorm.push_back(Cuda::PoolNorm{ v, c, l, C->reads[c] > 1 });
        if (C->birth[l] > v) C->birth[l] = v;          // the norm is written at the conv's step
    }
}
// Threads a block aims at (SCVRL_CUDA_PN_THREADS, default 128): fewer columns a block, more blocks
// over the SMs at small batches (a training step's stage-1 pools have ~800 columns).
int pn_threads() { const char *e = getenv("SCVRL_CUDA_PN_THREADS"); int v = e ? atoi(e) : 0; return v >= 32 && v <= 256 ? v : 128; }
// The fused pool of entry e at its conv's step. 1: done (the concat and the norm are then not
// run), 0: not taken (alignment: the nodes run as usual), -1: error.
int op_pool_norm(Run &R, const Cuda::PoolNorm &e) {
    Cuda *C = R.C;
    char *err = R.err;                             // for SC_LAUNCH here
    size_t errlen = R.errlen;
    scvrl_tensor *tv = R.g->nodes[e.v], *tc = R.g->nodes[e.c], *tl = R.g->nodes[e.l];
    const scvrl_tensor *x = tv->src[0], *cls = tc->src[0];
    int64_t keep[SCVRL_MAX_DIMS];
    memcpy(keep, tv->st, sizeof keep);
    memcpy(tv->st, C->place[e.v].st, sizeof keep);
    CP p = conv_params(tv, tv->src[1]);
    G5 gx = geom5(x, p.layout), gy = geom5(tv, p.layout);
    memcpy(tv->st, keep, sizeof keep);
    const int64_t Cc = gx.C, d = tl->ne[tl->ndim - 1], rows1 = tc->ne[1];
    const int CV = (int)(Cc / 4), d4 = (int)(d / 4), nh = (int)(Cc / d), TT = (int)gy.T, PB = CV >= pn_threads() ? 1 : pn_threads() / CV;
    const size_t smem = (size_t)PB * TT * CV * 8 + (size_t)2 * PB * TT * nh * 4;
    const int64_t cols = gy.N * gy.H * gy.W;
    // the CLS rows: a view read in place (the concat would copy it: written here when raw), or a
    // copy placed into the concat's first row by its own step (read there at the concat's strides)
    const bool cls_placed = is_placed(C, cls->id);
    const int64_t csN = cls_placed ? C->place[cls->id].st[0] : cls->st[0];
    if (cls_placed && C->place[cls->id].st[2] != 1) return 0;
    if (smem > 48 * 1024 || !dw_v4(gx, gy, P(R, x), P(R, tv)) || cols >= ((int64_t)1 << 31) || ((uintptr_t)P(R, tl) & 15) ||
        (tl->src[1] && ((uintptr_t)F(R, tl->src[1]) & 15)) || (tl->src[2] && ((uintptr_t)F(R, tl->src[2]) & 15))) return 0;
    const DwI di = dw_ints(gx, gy, p);
    const float *Wt = dw_wt(R, F(R, tv->src[1]), Cc), *LW = tl->src[1] ? F(R, tl->src[1]) : nullptr, *LB = tl->src[2] ? F(R, tl->src[2]) : nullptr;
    if (!Wt) return -1;
    const PoolNormY ys{ rows1 * Cc, gy.H * gy.W * Cc, gy.W * Cc, Cc };
    const unsigned grid = (unsigned)((cols + PB - 1) / PB);
    if (with_io(HF(R, tc), HF(R, tc), [&](auto ty, auto) {
            typedef TY(ty) T;
            T *Y = (T *)P(R, tl), *Raw = e.raw ? (T *)P(R, tv) : nullptr;
            const T *X = (const T *)P(R, x);
#define PN_LAUNCH(TT_) k_dw_pool_norm<TT_, T><<<grid, (unsigned)(PB * CV), smem, R.s>>>((int)cols, CV, d4, di, X, Wt, Raw, LW, LB, tl->fp[0], Y + Cc, ys)
            switch (TT) { case 2: PN_LAUNCH(2); break; case 4: PN_LAUNCH(4); break; case 8: PN_LAUNCH(8); break; default: PN_LAUNCH(16); break; }
#undef PN_LAUNCH
            SC_LAUNCH();
            const int rows = (int)(gy.N * nh);
            k_cls_norm<T><<<(unsigned)((rows + 7) / 8), 256, 0, R.s>>>(rows, nh, (int)d, (const T *)P(R, cls), csN,
                                                                      e.raw && !cls_placed ? (T *)P(R, tc) : nullptr, tc->st[0], LW, LB,
                                                                      tl->fp[0], Y, rows1 * Cc);
            SC_LAUNCH();
            return 0;
        })) return -1;
    return 1;
}

// LAYER_NORM_BACK + LAYER_NORM_BACK_WB (SCVRL_CUDA_LNBWB=0: off): a layer norm's input gradient
// and its weight and bias gradients read the same dy and x; where the _WB comes later (always, in
// the engine's backward graphs) both run at the LAYER_NORM_BACK's step in one pass (op_ln_back_wb)
// and the _WB's output takes its memory from that step.
void plan_ln_wb(Cuda *C, scvrl_graph *g) {
    const int n = g->n;
    C->lnwb_at.assign((size_t)n, -1);
    C->lnwb_pairs = 0;
    const char *e = getenv("SCVRL_CUDA_LNBWB"), *e2 = getenv("SCVRL_CUDA_LNWB");
    if ((e && *e == '0') || (e2 && !strcmp(e2, "old"))) return;       // off, or the _WB's earlier kernels asked for
    std::map<std::pair<const void *, const void *>, int> wb;
    for (int i = 0; i < n; i++) {
        const scvrl_tensor *t = g->nodes[i];
        if (t->op == SCVRL_OP_LAYER_NORM_BACK_WB && !t->view_src) wb[{ t->src[0], t->src[1] }] = i;
    }
    if (wb.empty()) return;
    if (!C->placed_nodes) { C->birth.resize((size_t)n); for (int i = 0; i < n; i++) C->birth[i] = i; }
    for (int i = 0; i < n; i++) {
        const scvrl_tensor *t = g->nodes[i];
        if (t->op != SCVRL_OP_LAYER_NORM_BACK || t->view_src) continue;
        auto it = wb.find({ t->src[0], t->src[1] });
        if (it == wb.end() || it->second < i || g->nodes[it->second]->fp[0] != t->fp[0]) continue;
        C->lnwb_at[i] = it->second;
        if (C->birth[it->second] > i) C->birth[it->second] = i;
        C->lnwb_pairs++;
    }
}

// Runs node t at its placement: a placed producer with its output strides set to the placement's
// for the call, a concat copying the sources not placed into it.
int run_placed(Run &R, scvrl_tensor *t) {
    const Cuda *C = R.C;
    if (t->op == SCVRL_OP_CONCAT && t->id < (int)C->place.size() && C->place[t->id].root >= 0) return op_concat_placed(R, t);
    if (!is_placed(C, t->id)) return run_node(R, t);
    if (t->op == SCVRL_OP_CONT) return op_cont_placed(R, t);
    int64_t keep[SCVRL_MAX_DIMS];
    memcpy(keep, t->st, sizeof keep);
    memcpy(t->st, C->place[t->id].st, sizeof keep);
    int rc = run_node(R, t);
    memcpy(t->st, keep, sizeof keep);
    return rc;
}

// One compute, in six steps (each a function below): the plan (where each node lives), the mirror
// (leaves and external nodes by host pointer), scratch, device pointers, upload + run, downloads.
// 0. the activation plan; BF16 mode: which nodes are stored as bf16, then the plan again at their
// 2 bytes an element. *offs: each node's offset in the arena (-1: none).
int compute_plan(Cuda *C, scvrl_graph *g, const int64_t **offs, char *err, size_t errlen) {
    size_t act_bytes = 0;
    int n = g->n;
    *offs = scvrl_graph_plan(g, &act_bytes);
    plan_half(C, g, *offs);
    plan_places(C, g);
    plan_pool_norm(C, g);
    plan_ln_wb(C, g);
    const bool births = C->placed_nodes || C->lnwb_pairs;
    if (C->half_nodes || births) {
        C->elem.assign((size_t)n, 0);
        for (int i = 0; i < n; i++) if (!C->half.empty() && C->half[i] && !g->nodes[i]->view_src) C->elem[i] = 2;
        C->offs_h.resize((size_t)n + 1);
        act_bytes = scvrl_graph_plan_placed(g, C->elem.data(), births ? C->birth.data() : nullptr, C->offs_h.data());
        *offs = C->offs_h.data();
    }
    return grow(C, &C->act, &C->act_cap, act_bytes, "the activation arena", err, errlen);
}

// 0b. Attention statistics (BF16 mode): each fused ATTENTION whose ATTENTION_BACK (src[4]) is in
// the same graph keeps its rows' LSE [B H, Nq rounded to 64] in the lse arena for the backward,
// which then skips its first pass over the keys (SCVRL_CUDA_ATTN_LSE=0: the backward's own two
// passes). Read at every compute.
int compute_lse(Cuda *C, scvrl_graph *g, char *err, size_t errlen) {
    C->lse_of.clear();
    const char *e = getenv("SCVRL_CUDA_ATTN_LSE");
    if (e && *e == '0') return 0;
    std::vector<std::pair<const scvrl_tensor *, size_t>> want;
    size_t bytes = 0;
    for (int i = 0; i < g->n; i++) {
        const scvrl_tensor *t = g->nodes[i], *f = t->src[4];
        if (t->op != SCVRL_OP_ATTENTION_BACK || !f || f->op != SCVRL_OP_ATTENTION || f->id < 0 || f->id >= g->n || g->nodes[f->id] != f) continue;
        const scvrl_tensor *q = f->src[0], *k = f->src[1];
        if (att_kind(C->prec, q->ne[3], q->ne[2], k->ne[2]) != ATT_BF16 || !k->ne[2]) continue;
        want.push_back({ f, bytes });
        bytes += ((size_t)(q->ne[0] * q->ne[1]) * (size_t)((q->ne[2] + FA_BQ - 1) / FA_BQ * FA_BQ) * 4 + 255) & ~(size_t)255;
    }
    if (!bytes) return 0;
    if (grow(C, &C->lse, &C->lse_cap, bytes, "the attention statistics", err, errlen)) return -1;
    for (auto &w : want) C->lse_of[w.first] = (float *)(C->lse + w.second);
    return 0;
}

// A pinned host buffer *p of at least want bytes: when it must grow, the old one is freed (after
// the stream's pending copies when sync) and ask bytes are allocated; out of memory is an error.
int pinned_grow(Cuda *C, void **p, size_t *cap, size_t want, size_t ask, bool sync, const char *what, char *err, size_t errlen) {
    if (*cap >= want) return 0;
    if (*p) {
        if (sync) SC_CU(cudaStreamSynchronize(C->stream));
        SC_CU(cudaFreeHost(*p));
        *p = nullptr; *cap = 0;
    }
    cudaError_t e = cudaMallocHost(p, ask);
    if (e != cudaSuccess) {
        cudaGetLastError();
        seterr(err, errlen, "cuda: out of pinned host memory allocating %.1f MB %s (%s)", (double)ask / 1e6, what, cudaGetErrorString(e));
        *p = nullptr;
        return -1;
    }
    *cap = ask;
    return 0;
}

// 1. mirror slots for leaves and external nodes, keyed by host pointer (none for those inside a
// bound parameter set or a resident range: bptr), and the pinned staging buffer they pack into.
int compute_mirror(Cuda *C, scvrl_graph *g, std::vector<int> &slot_id, std::vector<char *> &bptr, size_t *mir_bytes,
                   char *err, size_t errlen) {
    int n = g->n;
    C->slot_of.clear(); C->slots.clear(); C->slot_host.clear();
    slot_id.assign((size_t)n, -1);
    bptr.assign((size_t)n, nullptr);
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        bool leaf = t->op == SCVRL_OP_LEAF, ext = is_external_node(t);
        if (!leaf && !ext) continue;
        size_t bytes = (size_t)scvrl_nelements(t) * scvrl_dtype_size(t->type);
        if (!t->data) {
            if (bytes == 0) continue;
            seterr(err, errlen, "%s tensor '%s' has no data (set ->data before compute)", leaf ? "input" : "external", t->name);
            return -1;
        }
        if ((!C->bound.empty() || !C->resident.empty()) && (bptr[i] = bound_ptr(C, t->data, bytes, t->op == SCVRL_OP_GRAD_ACC))) continue;
        auto it = C->slot_of.find(t->data);
        int sid;
        if (it == C->slot_of.end()) {
            sid = (int)C->slots.size();
            C->slot_of[t->data] = (size_t)sid;
            C->slots.push_back(MirrorSlot{0, bytes, 0, 0});
            C->slot_host.push_back(t->data);
        } else {
            sid = (int)it->second;
            if (C->slots[sid].bytes < bytes) C->slots[sid].bytes = bytes;
        }
        if (ext) { C->slots[sid].download = 1; if (t->op == SCVRL_OP_GRAD_ACC) C->slots[sid].upload = 1; }
        if (leaf) C->slots[sid].upload = 1;
        slot_id[i] = sid;
    }
    size_t mb = 0;
    for (auto &s : C->slots) { s.off = mb; mb += (s.bytes + 255) & ~(size_t)255; }
    C->seed_off = mb;                              // the graph's seed: uploaded with the leaves
    mb += 256;
    *mir_bytes = mb;
    if (grow(C, &C->mir, &C->mir_cap, mb, "the parameter/input mirror", err, errlen)) return -1;
    C->seed = (const uint64_t *)(C->mir + C->seed_off);
    return pinned_grow(C, (void **)&C->stage, &C->stage_cap, mb, mb + mb / 8 + 256, false, "of staging", err, errlen);
}

// 3. device pointers (views of bf16-stored bases step 2 bytes per element)
int compute_pointers(Cuda *C, scvrl_graph *g, const int64_t *offs, const std::vector<int> &slot_id,
                     const std::vector<char *> &bptr, char *err, size_t errlen) {
    int n = g->n;
    C->dptr.assign((size_t)n, nullptr);
    if (C->placed_nodes)           // placed nodes: in their root's memory (the root is no view and has its own)
        for (int i = 0; i < n; i++) {
            if (!is_placed(C, i)) continue;
            int r = C->place[i].root;
            if (offs[r] < 0) { seterr(err, errlen, "cuda: concat placement: '%s' has no memory", g->nodes[r]->name); return -1; }
            C->dptr[i] = C->act + offs[r] + C->place[i].off * (C->half.size() && C->half[r] ? 2 : 4);
        }
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (C->dptr[i]) continue;
        if (t->view_src) {
            int64_t o;
            scvrl_tensor *b = scvrl_view_base(t, &o);
            if (b->id < 0 || b->id >= n || g->nodes[b->id] != b) {
                seterr(err, errlen, "cuda: view '%s' looks into a tensor that is not in the graph", t->name);
                return -1;
            }
            C->dptr[i] = C->dptr[b->id] ? C->dptr[b->id] + o * (C->half[i] ? 2 : (int64_t)scvrl_dtype_size(t->type)) : nullptr;
        } else if (bptr[i]) {
            C->dptr[i] = bptr[i];
        } else if (slot_id[i] >= 0) {
            C->dptr[i] = C->mir + C->slots[slot_id[i]].off;
        } else if (offs[i] >= 0) {
            C->dptr[i] = C->act + offs[i];
        }
    }
    return 0;
}

// 5. the nodes in order (fused pairs as one kernel); prof: an event before each node (compute_profile reads them)
int compute_run(Cuda *C, scvrl_graph *g, int prof, char *err, size_t errlen) {
    int n = g->n;
    Run R{C, g, err, errlen, C->stream};
    if (prof) {
        while ((int)C->prof_ev.size() < n + 1) { cudaEvent_t e; SC_CU(cudaEventCreate(&e)); C->prof_ev.push_back(e); }
    }
    const uint8_t *fuse = scvrl_graph_fusable(g);   // LINEAR / DROP_PATH + residual ADD pairs (NULL: SCVRL_NO_FUSE=1)
    C->fused_pairs = 0;
    C->done.assign((size_t)n, 0);
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (prof) SC_CU(cudaEventRecord(C->prof_ev[i], C->stream));
        if (t->view_src || t->op == SCVRL_OP_LEAF || C->done[i]) continue;
        if (!C->pnorm.empty() && C->pn_at[i] >= 0) {   // the pool conv with its concat and norm (plan_pool_norm)
            const Cuda::PoolNorm &e = C->pnorm[C->pn_at[i]];
            int rc = op_pool_norm(R, e);
            if (rc < 0) return -1;
            if (rc > 0) { C->done[e.c] = C->done[e.l] = 1; C->fused_pairs++; continue; }
        }
        if (C->lnwb_pairs && C->lnwb_at[i] >= 0) {      // LAYER_NORM_BACK (+ its residual ADD) with its _WB (plan_ln_wb)
            scvrl_tensor *u = fuse && fuse[i] && C->dptr[i + 1] ? g->nodes[i + 1] : nullptr;
            int rc = op_ln_back_wb(R, t, u, g->nodes[C->lnwb_at[i]]);
            if (rc < 0) return -1;
            if (rc > 0) {
                C->done[C->lnwb_at[i]] = 1;
                C->fused_pairs++;
                if (rc == 2) {                             // the ADD was written too
                    if (prof) SC_CU(cudaEventRecord(C->prof_ev[i + 1], C->stream));
                    C->fused_pairs++;
                    i++;
                }
                continue;
            }
        }
        if (!C->dptr[i] && scvrl_nelements(t) > 0) { seterr(err, errlen, "cuda: node '%s' (%s) has no memory", t->name, scvrl_op_name(t->op)); return -1; }
        if (fuse && fuse[i] && C->dptr[i + 1]) {   // LINEAR, DROP_PATH or LAYER_NORM_BACK + (residual) ADD, LINEAR + GELU (BF16 mode)
            scvrl_tensor *u = g->nodes[i + 1];
            int rc = u->op == SCVRL_OP_GELU ? op_linear_gelu(R, t, u)
                   : t->op == SCVRL_OP_DROP_PATH ? op_drop_path_add(R, t, u)
                   : t->op == SCVRL_OP_LAYER_NORM_BACK ? op_ln_back_add(R, t, u) : op_linear_add(R, t, u);
            if (rc < 0) return -1;
            if (rc > 0) {
                if (prof) SC_CU(cudaEventRecord(C->prof_ev[i + 1], C->stream));   // the ADD's / GELU's time is in the first node's
                C->fused_pairs++;
                i++;
                continue;
            }
        }
        if (C->placed_nodes ? run_placed(R, t) : run_node(R, t)) {
            size_t k = strlen(err ? err : "");
            if (err && k + 1 < errlen) snprintf(err + k, errlen - k, " (node %d '%s', op %s)", i, t->name, scvrl_op_name(t->op));
            return -1;
        }
    }
    return 0;
}

// SCVRL_PROFILE: wait for the last node, add each node's time between its events to the profile
int compute_profile(Cuda *C, scvrl_graph *g, char *err, size_t errlen) {
    int n = g->n;
    SC_CU(cudaEventRecord(C->prof_ev[n], C->stream));
    SC_CU(cudaEventSynchronize(C->prof_ev[n]));
    if (prof_skip(g)) return 0;
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (t->view_src || t->op == SCVRL_OP_LEAF) continue;
        float ms = 0;
        SC_CU(cudaEventElapsedTime(&ms, C->prof_ev[i], C->prof_ev[i + 1]));
        prof_add(t, ms);
    }
    return 0;
}

// The graph's pinned output buffer of at least bytes (an LRU of 64 graphs).
int graph_out(Cuda *C, const scvrl_graph *g, size_t bytes, GraphOut **out, char *err, size_t errlen) {
    auto it = C->outs.find(g);
    if (it == C->outs.end()) {
        if (C->outs.size() >= 64) {      // forget the least recently used graph
            auto old = C->outs.begin();
            for (auto j = C->outs.begin(); j != C->outs.end(); ++j) if (j->second.used < old->second.used) old = j;
            if (old->second.host) SC_CU(cudaFreeHost(old->second.host));
            C->outs.erase(old);
        }
        it = C->outs.emplace(g, GraphOut()).first;
    }
    GraphOut *go = &it->second;
    go->used = ++C->clock;
    *out = go;
    return pinned_grow(C, (void **)&go->host, &go->cap, bytes, bytes, true, "for outputs", err, errlen);
}

// 6. downloads: external slots (gradients) back into host memory, the planned bases of OUTPUT
// nodes into the graph's pinned buffer (their ->data, and their views', point there after)
int compute_download(Cuda *C, scvrl_graph *g, const int64_t *offs, char *err, size_t errlen) {
    int n = g->n, any_down = 0;
    for (auto &s : C->slots) if (s.download) { any_down = 1; SC_CU(cudaMemcpyAsync(C->stage + s.off, C->mir + s.off, s.bytes, cudaMemcpyDeviceToHost, C->stream)); }
    std::vector<int> out_base;
    size_t out_bytes = 0;
    std::vector<size_t> out_off((size_t)n, 0);
    std::vector<char> is_base((size_t)n, 0);
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (!(t->flags & SCVRL_F_OUTPUT)) continue;
        scvrl_tensor *b = scvrl_view_base(t, nullptr);
        if (b->id < 0 || b->id >= n || g->nodes[b->id] != b || offs[b->id] < 0 || is_base[b->id]) continue;
        is_base[b->id] = 1;
        out_base.push_back(b->id);
        out_off[b->id] = out_bytes;
        out_bytes += ((size_t)scvrl_nelements(b) * scvrl_dtype_size(b->type) + 63) & ~(size_t)63;
    }
    GraphOut *go = nullptr;
    if (!out_base.empty()) {
        if (graph_out(C, g, out_bytes, &go, err, errlen)) return -1;
        for (int id : out_base) {
            scvrl_tensor *b = g->nodes[id];
            size_t bytes = (size_t)scvrl_nelements(b) * scvrl_dtype_size(b->type);
            if (bytes) SC_CU(cudaMemcpyAsync((char *)go->host + out_off[id], C->dptr[id], bytes, cudaMemcpyDeviceToHost, C->stream));
        }
    }
    SC_CU(cudaStreamSynchronize(C->stream));
    SC_CU(cudaGetLastError());
    if (any_down) {
        int ns = (int)C->slots.size();
        for (int s = 0; s < ns; s++)
            if (C->slots[s].download) memcpy((void *)C->slot_host[s], C->stage + C->slots[s].off, C->slots[s].bytes);
    }
    if (go) for (int id : out_base) g->nodes[id]->data = (char *)go->host + out_off[id];
    for (int i = 0; i < n; i++) {
        scvrl_tensor *t = g->nodes[i];
        if (!(t->flags & SCVRL_F_OUTPUT) || !t->view_src) continue;
        int64_t o;
        scvrl_tensor *b = scvrl_view_base(t, &o);
        if (b->data) t->data = (char *)b->data + o * (int64_t)scvrl_dtype_size(t->type);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// CUDA graph replay (scvrl_cuda_set_graphs; SCVRL_CUDA_GRAPH=0: off). Step 5 (the kernels) of a
// compute whose run signature was seen before is captured once (cudaStreamBeginCapture around
// compute_run) and replayed from then on with one cudaGraphLaunch; the first compute of a signature
// runs as usual, so graphs computed once pay no capture. The signature hashes everything a launch
// depends on: per node its op, dtype, shape, strides, parameters, flags, storage (bf16, placement,
// fusion) and the device pointers of it and its sources; the backend's buffers and precision; the
// SCVRL_* environment (the kernel switches). What changes from step to step reaches the kernels
// through device memory (leaves and parameters in the mirror / bound buffers, the seed in the
// mirror: RngKey). Host-side index checks run before each replay. A capture that fails (a buffer
// that had to grow during the run, say) marks the signature as not capturable; it runs uncaptured.
// ---------------------------------------------------------------------------------------------
bool graphs_on(Cuda *C) {
    if (C->graphs < 0) { const char *e = getenv("SCVRL_CUDA_GRAPH"); C->graphs = !(e && *e == '0'); }
    return C->graphs == 1;
}
struct SigHash {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    void w(uint64_t v) { h = (h ^ v) * 0x100000001B3ull; h ^= h >> 29; }
    void p(const void *q) { w((uint64_t)(uintptr_t)q); }
    void bytes(const void *q, size_t n) {
        const unsigned char *c = (const unsigned char *)q;
        for (size_t i = 0; i < n; i += 8) { uint64_t v = 0; memcpy(&v, c + i, n - i < 8 ? n - i : 8); w(v); }
    }
};
uint64_t run_signature(const Cuda *C, const scvrl_graph *g) {
    SigHash H;
    const int n = g->n;
    const uint8_t *fuse = scvrl_graph_fusable(g);
    H.w((uint64_t)n); H.w((uint64_t)C->prec);
    H.p(C->act); H.p(C->mir); H.p(C->scratch); H.p(C->h16); H.p(C->lse); H.p(C->lt_ws);
    for (char **e = environ; e && *e; e++) if (!strncmp(*e, "SCVRL_", 6)) H.bytes(*e, strlen(*e));
    for (int i = 0; i < n; i++) {
        const scvrl_tensor *t = g->nodes[i];
        H.w(((uint64_t)t->op << 40) ^ ((uint64_t)t->type << 32) ^ ((uint64_t)t->ndim << 24) ^ t->flags);
        H.bytes(t->ne, (size_t)t->ndim * 8); H.bytes(t->st, (size_t)t->ndim * 8);
        H.bytes(t->ip, sizeof t->ip); H.bytes(t->fp, sizeof t->fp);
        H.p(C->dptr[i]);
        H.w(((uint64_t)(fuse ? fuse[i] : 0) << 8) | (uint64_t)(C->half.size() ? C->half[i] : 0));
        if (i < (int)C->place.size() && C->place[i].root >= 0) { H.w((uint64_t)C->place[i].root); H.w((uint64_t)C->place[i].off); H.bytes(C->place[i].st, sizeof C->place[i].st); }
        for (int k = 0; k < SCVRL_MAX_SRC; k++) {
            const scvrl_tensor *s = t->src[k];
            H.p(s && s->id >= 0 && s->id < n && g->nodes[s->id] == s ? C->dptr[s->id] : (const char *)s);
        }
        if (t->op == SCVRL_OP_ATTENTION) { auto it = C->lse_of.find(t); H.p(it == C->lse_of.end() ? nullptr : it->second); }
    }
    return H.h;
}
// The host-side index checks of the graph's INDEX_SELECT / INDEX_ADD nodes (a replay skips the ops' own).
int replay_checks(Cuda *C, scvrl_graph *g, char *err, size_t errlen) {
    Run R{C, g, err, errlen, C->stream};
    for (int i = 0; i < g->n; i++) {
        const scvrl_tensor *t = g->nodes[i];
        if (t->op == SCVRL_OP_INDEX_SELECT && check_indices(R, t->src[1], t->ne[t->ip[0]], t->src[0]->ne[t->ip[0]], "index_select")) return -1;
        if (t->op == SCVRL_OP_INDEX_ADD && check_indices(R, t->src[1], t->src[0]->ne[t->ip[0]], t->ne[t->ip[0]], "index_add")) return -1;
    }
    return 0;
}
// Captures compute_run into e; false (and e.state -1) where the run cannot be captured.
bool capture(Cuda *C, scvrl_graph *g, Cuda::Exec &e, char *err, size_t errlen) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamBeginCapture(C->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) { cudaGetLastError(); e.state = -1; return false; }
    int rc = compute_run(C, g, 0, err, errlen);
    cudaError_t ce = cudaStreamEndCapture(C->stream, &graph);
    if (!rc && ce == cudaSuccess && graph) ce = cudaGraphInstantiate(&e.exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (rc || ce != cudaSuccess || !graph) {
        cudaGetLastError();
        if (err && errlen) err[0] = 0;
        e.exec = nullptr; e.state = -1;
        return false;
    }
    e.state = 1; e.fused = C->fused_pairs;
    return true;
}
// 5 with replay: the kernels as a captured graph where possible, else compute_run.
int compute_exec(Cuda *C, scvrl_graph *g, int prof, char *err, size_t errlen) {
    if (prof || !graphs_on(C)) return compute_run(C, g, prof, err, errlen);
    const uint64_t key = run_signature(C, g);
    auto it = C->execs.find(key);
    if (it == C->execs.end()) {                   // first sight: remember it (at most 32, the least recently used go)
        if (C->execs.size() >= 32) {
            auto old = C->execs.begin();
            for (auto j = C->execs.begin(); j != C->execs.end(); ++j) if (j->second.used < old->second.used) old = j;
            if (old->second.exec) SC_CU(cudaGraphExecDestroy(old->second.exec));
            C->execs.erase(old);
        }
        C->execs[key] = Cuda::Exec{ nullptr, 0, 0, ++C->clock };
        return compute_run(C, g, 0, err, errlen);
    }
    Cuda::Exec &e = it->second;
    e.used = ++C->clock;
    if (e.state < 0 || (e.state == 0 && !capture(C, g, e, err, errlen))) return compute_run(C, g, 0, err, errlen);
    if (replay_checks(C, g, err, errlen)) return -1;
    SC_CU(cudaGraphLaunch(e.exec, C->stream));
    C->fused_pairs = e.fused;
    C->replays++;
    return 0;
}

int cuda_compute(scvrl_backend *be, scvrl_graph *g, char *err, size_t errlen) {
    Cuda *C = (Cuda *)be->priv;
    const int prof = prof_on();
    double pt0 = prof ? prof_now_ms() : 0, pt1 = 0, pt2 = 0;
    SC_CU(cudaSetDevice(C->device));
    const int64_t *offs = nullptr;
    std::vector<int> slot_id;
    std::vector<char *> bptr;          // device-resident parameters and their gradients
    size_t mir_bytes = 0, scr = 0;
    if (compute_plan(C, g, &offs, err, errlen) || compute_lse(C, g, err, errlen) ||
        compute_mirror(C, g, slot_id, bptr, &mir_bytes, err, errlen)) return -1;
    // 2. scratch: the most any node asks for
    for (int i = 0; i < g->n; i++) { size_t s = scratch_of(C, g->nodes[i]); if (s > scr) scr = s; }
    if (grow(C, &C->scratch, &C->scratch_cap, scr, "scratch", err, errlen)) return -1;
    if (compute_pointers(C, g, offs, slot_id, bptr, err, errlen)) return -1;
    // 4. upload: pack into pinned staging, one copy
    int ns = (int)C->slots.size();
    #pragma omp parallel for schedule(dynamic) if (mir_bytes > ((size_t)1 << 22))
    for (int s = 0; s < ns; s++)
        if (C->slots[s].upload) memcpy(C->stage + C->slots[s].off, C->slot_host[s], C->slots[s].bytes);
    memcpy(C->stage + C->seed_off, &g->seed, sizeof g->seed);
    SC_CU(cudaMemcpyAsync(C->mir, C->stage, mir_bytes, cudaMemcpyHostToDevice, C->stream));
    if (prof) pt1 = prof_now_ms();
    if (compute_exec(C, g, prof, err, errlen)) return -1;
    if (prof) {
        pt2 = prof_now_ms();
        if (compute_profile(C, g, err, errlen)) return -1;
    }
    if (compute_download(C, g, offs, err, errlen)) return -1;
    if (prof) {
        prof_host[0] += pt1 - pt0; prof_host[1] += pt2 - pt1; prof_host[2] += prof_now_ms() - pt2;
        prof_computes++;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Device-resident parameters: AdamW, clipping, EMA over the flat buffers (the CPU's formulas,
// operation for operation without fused multiply-adds, so results equal the CPU's bit for bit
// given the same gradients)
// ---------------------------------------------------------------------------------------------
__global__ void k_adamw(int64_t n, int nseg, const int64_t *seg, const int *decay, float *w, const float *g, float *m,
                        float *v, float lr, float b1, float b2, float eps, float wd, float step_size, float bc2_sqrt) {
    float dec = __fsub_rn(1.0f, __fmul_rn(lr, wd)), c1 = __fsub_rn(1.0f, b1), c2 = __fsub_rn(1.0f, b2);
    GRID_STRIDE(j, n) {
        int lo = 0, hi = nseg - 1;                 // the tensor holding element j: last seg start <= j
        while (lo < hi) { int mid = (lo + hi + 1) >> 1; if (seg[mid] <= j) lo = mid; else hi = mid - 1; }
        float gj = g[j], wj = decay[lo] ? __fmul_rn(w[j], dec) : w[j];
        float mj = __fadd_rn(__fmul_rn(b1, m[j]), __fmul_rn(c1, gj));
        float vj = __fadd_rn(__fmul_rn(b2, v[j]), __fmul_rn(__fmul_rn(c2, gj), gj));
        float den = __fadd_rn(__fdiv_rn(sqrtf(vj), bc2_sqrt), eps);
        w[j] = __fsub_rn(wj, __fmul_rn(step_size, __fdiv_rn(mj, den)));
        m[j] = mj; v[j] = vj;
    }
}
__global__ void k_sumsq(int64_t n, const float *g, double *part) {
    double s = 0.0;
    GRID_STRIDE(j, n) s += (double)g[j] * g[j];
    s = block_sumd(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
__global__ void k_scale_inplace(int64_t n, float *g, float c) { GRID_STRIDE(j, n) g[j] = __fmul_rn(g[j], c); }
__global__ void k_ema(int64_t n, float *d, const float *s, float m) {
    float c = __fsub_rn(1.0f, m);
    GRID_STRIDE(j, n) d[j] = __fadd_rn(__fmul_rn(m, d[j]), __fmul_rn(c, s[j]));
}

DevParams *find_bound(Cuda *C, const scvrl_params *P) {
    for (auto &d : C->bound) if (d.P == P) return &d;
    return nullptr;
}

int params_bind(Cuda *C, scvrl_params *P, char *err, size_t errlen) {
    int64_t n = P->n_elems;
    DevParams d;
    d.P = P;
    size_t bytes = (size_t)(4 * n) * sizeof(float) + (size_t)(P->n + 1) * (sizeof(int64_t) + sizeof(int)) + 256;
    if (dev_alloc(C, (void **)&d.buf, bytes, "device-resident parameters", err, errlen)) return -1;
    d.w = d.buf; d.g = d.w + n; d.m = d.g + n; d.v = d.m + n;
    d.seg = (int64_t *)(((uintptr_t)(d.v + n) + 15) & ~(uintptr_t)15);
    d.decay = (int *)(d.seg + P->n + 1);
    std::vector<int64_t> seg((size_t)P->n + 1, 0);
    std::vector<int> dec((size_t)P->n + 1, 0);
    for (int i = 0; i < P->n; i++) { seg[i] = P->offs[i]; dec[i] = !(P->pflags[i] & SCVRL_P_NO_DECAY); }
    SC_CU(cudaMemcpy(d.seg, seg.data(), seg.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
    SC_CU(cudaMemcpy(d.decay, dec.data(), dec.size() * sizeof(int), cudaMemcpyHostToDevice));
    SC_CU(cudaMemcpy(d.w, P->w, (size_t)n * 4, cudaMemcpyHostToDevice));
    SC_CU(cudaMemcpy(d.g, P->g, (size_t)n * 4, cudaMemcpyHostToDevice));
    if (P->m) {
        SC_CU(cudaMemcpy(d.m, P->m, (size_t)n * 4, cudaMemcpyHostToDevice));
        SC_CU(cudaMemcpy(d.v, P->v, (size_t)n * 4, cudaMemcpyHostToDevice));
    } else SC_CU(cudaMemset(d.m, 0, (size_t)(2 * n) * 4));
    C->bound.push_back(d);
    return 0;
}

int params_op(scvrl_backend *be, scvrl_params_op op, scvrl_params *a, const scvrl_params *b, const float *f, double *out,
              char *err, size_t errlen) {
    Cuda *C = (Cuda *)be->priv;
    SC_CU(cudaSetDevice(C->device));
    if (op == SCVRL_PARAMS_BIND) return params_bind(C, a, err, errlen);
    DevParams *d = find_bound(C, a);
    if (!d) { seterr(err, errlen, "cuda: parameter set is not on this device"); return -1; }
    size_t nb = (size_t)a->n_elems * 4;
    int64_t n = a->n_elems;
    cudaStream_t s = C->stream;
    switch (op) {
    case SCVRL_PARAMS_UNBIND:
        SC_CU(cudaStreamSynchronize(s));
        cudaFree(d->buf);
        C->bound.erase(C->bound.begin() + (d - C->bound.data()));
        return 0;
    case SCVRL_PARAMS_SYNC:
        SC_CU(cudaStreamSynchronize(s));
        SC_CU(cudaMemcpy(a->w, d->w, nb, cudaMemcpyDeviceToHost));
        SC_CU(cudaMemcpy(a->g, d->g, nb, cudaMemcpyDeviceToHost));
        if (a->m) { SC_CU(cudaMemcpy(a->m, d->m, nb, cudaMemcpyDeviceToHost)); SC_CU(cudaMemcpy(a->v, d->v, nb, cudaMemcpyDeviceToHost)); }
        return 0;
    case SCVRL_PARAMS_PUSH:
        SC_CU(cudaStreamSynchronize(s));
        SC_CU(cudaMemcpy(d->w, a->w, nb, cudaMemcpyHostToDevice));
        SC_CU(cudaMemcpy(d->g, a->g, nb, cudaMemcpyHostToDevice));
        if (a->m) { SC_CU(cudaMemcpy(d->m, a->m, nb, cudaMemcpyHostToDevice)); SC_CU(cudaMemcpy(d->v, a->v, nb, cudaMemcpyHostToDevice)); }
        else SC_CU(cudaMemsetAsync(d->m, 0, 2 * nb, s));
        return 0;
    case SCVRL_PARAMS_ZERO_GRAD:
        SC_CU(cudaMemsetAsync(d->g, 0, nb, s));
        return 0;
    case SCVRL_PARAMS_ADAMW:
        if (n) {
            k_adamw<<<grid_for(n), 256, 0, s>>>(n, a->n, d->seg, d->decay, d->w, d->g, d->m, d->v, f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
            SC_LAUNCH();
        }
        return 0;
    case SCVRL_PARAMS_SCALE_GRAD:
        if (n) { k_scale_inplace<<<grid_for(n), 256, 0, s>>>(n, d->g, f[0]); SC_LAUNCH(); }
        return 0;
    case SCVRL_PARAMS_SUMSQ: case SCVRL_PARAMS_CLIP: {
        unsigned nbk = grid_for(n) < 1024 ? grid_for(n) : 1024;
        double *part = (double *)C->lt_ws;          // the cuBLASLt workspace is free between ops
        k_sumsq<<<nbk, 256, 0, s>>>(n, d->g, part);
        SC_LAUNCH();
        std::vector<double> h(nbk);
        SC_CU(cudaMemcpyAsync(h.data(), part, nbk * sizeof(double), cudaMemcpyDeviceToHost, s));
        SC_CU(cudaStreamSynchronize(s));
        double sum = 0.0;
        for (double x : h) sum += x;
        if (op == SCVRL_PARAMS_SUMSQ) { if (out) *out = sum; return 0; }
        double norm = sqrt(sum);
        float coef = (float)((double)f[0] / (norm + 1e-6));
        if (coef < 1.0f && n) { k_scale_inplace<<<grid_for(n), 256, 0, s>>>(n, d->g, coef); SC_LAUNCH(); }
        if (out) *out = norm;
        return 0;
    }
    case SCVRL_PARAMS_EMA: case SCVRL_PARAMS_COPY: {
        DevParams *src = find_bound(C, b);
        if (!src) { seterr(err, errlen, "cuda: the source parameter set is not on this device"); return -1; }
        if (op == SCVRL_PARAMS_COPY) { SC_CU(cudaMemcpyAsync(d->w, src->w, nb, cudaMemcpyDeviceToDevice, s)); return 0; }
        if (n) { k_ema<<<grid_for(n), 256, 0, s>>>(n, d->w, src->w, f[0]); SC_LAUNCH(); }
        return 0;
    }
    default:
        seterr(err, errlen, "cuda: unknown parameter operation %d", (int)op);
        return -1;
    }
}

void cuda_free(scvrl_backend *be) {
    if (!be) return;
    Cuda *C = (Cuda *)be->priv;
    if (C) {
        cudaSetDevice(C->device);
        if (C->stream) cudaStreamSynchronize(C->stream);
        while (!C->bound.empty()) {              // hand every bound set back to the host, up to date
            scvrl_params *P = C->bound.back().P;
            char e[256];
            if (scvrl_params_to_host(P, e, sizeof e)) { fprintf(stderr, "scvrl: %s\n", e); C->bound.pop_back(); P->dev = nullptr; }
        }
        if (C->act) cudaFree(C->act);
        if (C->h16) cudaFree(C->h16);
        if (C->mir) cudaFree(C->mir);
        if (C->scratch) cudaFree(C->scratch);
        if (C->lse) cudaFree(C->lse);
        if (C->stage) cudaFreeHost(C->stage);
        for (auto &kv : C->execs) if (kv.second.exec) cudaGraphExecDestroy(kv.second.exec);
        for (cudaEvent_t e : C->prof_ev) cudaEventDestroy(e);
        for (auto &r : C->resident) resident_free(r);
        if (C->copy) cudaStreamDestroy(C->copy);
        for (auto &kv : C->outs) if (kv.second.host) cudaFreeHost(kv.second.host);
        if (C->blas) cublasDestroy(C->blas);
        if (C->lt) cublasLtDestroy(C->lt);
        if (C->lt_ws) cudaFree(C->lt_ws);
        if (C->stream) cudaStreamDestroy(C->stream);
        delete C;
    }
    free(be);
}

int cuda_init(Cuda *C, int device, char *err, size_t errlen) {
    int count = 0;
    SC_CU(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count) {
        seterr(err, errlen, "cuda: device %d does not exist (%d visible)", device, count);
        return -1;
    }
    C->device = device;
    SC_CU(cudaSetDevice(device));
    SC_CU(cudaStreamCreateWithFlags(&C->stream, cudaStreamNonBlocking));
    SC_BLAS(cublasCreate(&C->blas));
    SC_BLAS(cublasSetStream(C->blas, C->stream));
    SC_BLAS(cublasLtCreate(&C->lt));
    C->lt_ws_bytes = (size_t)32 << 20;
    if (dev_alloc(C, &C->lt_ws, C->lt_ws_bytes, "the cuBLASLt workspace", err, errlen)) return -1;
    const char *e = getenv("SCVRL_CUDA_TF32"), *p = getenv("SCVRL_CUDA_PRECISION");
    if (e && atoi(e) != 0) C->prec = SCVRL_PREC_TF32;
    if (p && *p) {
        int v = scvrl_precision_parse(p);
        if (v < 0) { seterr(err, errlen, "cuda: SCVRL_CUDA_PRECISION='%s' is not fp32, tf32 or bf16", p); return -1; }
        C->prec = v;
    }
    return 0;
}

} // namespace

extern "C" scvrl_backend *scvrl_backend_cuda(int device, char *err, size_t errlen) {
    Cuda *C = new Cuda();
    if (cuda_init(C, device, err, errlen)) {
        cudaGetLastError();
        if (C->blas) cublasDestroy(C->blas);
        if (C->lt) cublasLtDestroy(C->lt);
        if (C->lt_ws) cudaFree(C->lt_ws);
        if (C->stream) cudaStreamDestroy(C->stream);
        delete C;
        return nullptr;
    }
    scvrl_backend *be = (scvrl_backend *)calloc(1, sizeof(scvrl_backend));
    if (!be) { seterr(err, errlen, "cuda: out of host memory"); delete C; return nullptr; }
    be->name = "cuda";
    be->priv = C;
    be->supports_op = cuda_supports;
    be->compute = cuda_compute;
    be->free = cuda_free;
    be->params = params_op;
    return be;
}

extern "C" int scvrl_cuda_resident(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) { seterr(err, errlen, "scvrl_cuda_resident: not the CUDA backend"); return -1; }
    Cuda *C = (Cuda *)be->priv;
    SC_CU(cudaSetDevice(C->device));
    for (auto &r : C->resident)
        if (r.host == (const char *)host && r.bytes == bytes) {         // known: upload the new contents
            if (r.ready) SC_CU(cudaEventSynchronize(r.ready));         // after any asynchronous one
            SC_CU(cudaMemcpyAsync(r.dev, host, bytes, cudaMemcpyHostToDevice, C->stream));
            SC_CU(cudaStreamSynchronize(C->stream));
            return 0;
        }
    Cuda::Resident r = { (const char *)host, bytes, nullptr, false, nullptr };
    if (dev_alloc(C, (void **)&r.dev, bytes ? bytes : 1, "a resident input", err, errlen)) return -1;
    SC_CU(cudaMemcpy(r.dev, host, bytes, cudaMemcpyHostToDevice));
    C->resident.push_back(r);
    return 0;
}

extern "C" void scvrl_cuda_resident_release(scvrl_backend *be, const void *host) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return;
    Cuda *C = (Cuda *)be->priv;
    cudaSetDevice(C->device);
    cudaStreamSynchronize(C->stream);
    for (size_t i = 0; i < C->resident.size(); i++)
        if (C->resident[i].host == (const char *)host) { resident_free(C->resident[i]); C->resident.erase(C->resident.begin() + i); return; }
}

extern "C" int scvrl_cuda_resident_async(scvrl_backend *be, const void *host, size_t bytes, char *err, size_t errlen) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) { seterr(err, errlen, "scvrl_cuda_resident_async: not the CUDA backend"); return -1; }
    Cuda *C = (Cuda *)be->priv;
    SC_CU(cudaSetDevice(C->device));
    for (auto &r : C->resident) {
        if (r.host != (const char *)host || r.bytes != bytes) continue;
        if (!r.pinned) {              // page-locked once, so that the copy is truly asynchronous
            if (cudaHostRegister((void *)host, bytes, cudaHostRegisterDefault) != cudaSuccess) {
                cudaGetLastError();   // not pinnable (e.g. already registered): a synchronous refresh
                return scvrl_cuda_resident(be, host, bytes, err, errlen);
            }
            r.pinned = true;
        }
        if (!C->copy) SC_CU(cudaStreamCreateWithFlags(&C->copy, cudaStreamNonBlocking));
        if (!r.ready) SC_CU(cudaEventCreateWithFlags(&r.ready, cudaEventDisableTiming));
        SC_CU(cudaMemcpyAsync(r.dev, host, bytes, cudaMemcpyHostToDevice, C->copy));
        SC_CU(cudaEventRecord(r.ready, C->copy));
        return 0;
    }
    seterr(err, errlen, "scvrl_cuda_resident_async: %zu bytes at %p were not registered with scvrl_cuda_resident", bytes, host);
    return -1;
}

extern "C" int scvrl_cuda_resident_update(scvrl_backend *be, const void *host, size_t off, size_t len, char *err, size_t errlen) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) { seterr(err, errlen, "scvrl_cuda_resident_update: not the CUDA backend"); return -1; }
    Cuda *C = (Cuda *)be->priv;
    SC_CU(cudaSetDevice(C->device));
    for (auto &r : C->resident) {
        if (r.host != (const char *)host || off > r.bytes || len > r.bytes - off) continue;
        if (!len) return 0;
        if (r.ready) SC_CU(cudaStreamWaitEvent(C->stream, r.ready, 0));
        SC_CU(cudaMemcpyAsync(r.dev + off, (const char *)host + off, len, cudaMemcpyHostToDevice, C->stream));
        if (r.pinned) SC_CU(cudaStreamSynchronize(C->stream));   // page-locked: the copy reads the host bytes later
        return 0;
    }
    seterr(err, errlen, "scvrl_cuda_resident_update: bytes %zu..%zu of %p are not inside a range registered with scvrl_cuda_resident",
           off, off + len, host);
    return -1;
}

extern "C" size_t scvrl_cuda_device_bytes(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return 0;
    Cuda *C = (Cuda *)be->priv;
    return C->act_cap + C->mir_cap + C->scratch_cap;
}

extern "C" int scvrl_cuda_bf16_nodes(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return 0;
    return ((Cuda *)be->priv)->half_nodes;
}
extern "C" int scvrl_cuda_placed_nodes(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return 0;
    return ((Cuda *)be->priv)->placed_nodes;
}
extern "C" int scvrl_cuda_fused_pairs(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return 0;
    return ((Cuda *)be->priv)->fused_pairs;
}
extern "C" int scvrl_cuda_set_graphs(scvrl_backend *be, int on) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return -1;
    Cuda *C = (Cuda *)be->priv;
    int old = graphs_on(C) ? 1 : 0;
    C->graphs = on ? 1 : 0;
    return old;
}
extern "C" int64_t scvrl_cuda_graph_replays(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return 0;
    return ((Cuda *)be->priv)->replays;
}
extern "C" int scvrl_cuda_get_precision(scvrl_backend *be) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return -1;
    return ((Cuda *)be->priv)->prec;
}

extern "C" int scvrl_cuda_set_precision(scvrl_backend *be, int prec) {
    if (!be || !be->name || strcmp(be->name, "cuda") != 0) return -1;
    if (prec < SCVRL_PREC_FP32 || prec > SCVRL_PREC_BF16) return -1;
    Cuda *C = (Cuda *)be->priv;
    int old = C->prec;
    C->prec = prec;
    return old;
}
