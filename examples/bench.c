// examples/bench.c: speed figures of the library (never assertions).
//
//   ./examples/bench gemm 2048 2048 2048 [--trans NT] [--threads 2]   one matmul shape
//   ./examples/bench ops                                              GEMM / linear / attention table
//   ./examples/bench mvit --model mvit-b --batch 1                     MViT forward, forward+backward
//
// Every figure goes through a graph and scvrl_graph_compute, as the programs use the library:
// median of several timed runs after a warm-up, inputs rotated between runs (two or more input
// sets, about 64 MiB in all where the shape allows, so caches do not flatter), and an error
// against a float64 reference of the same inputs. The last line of each subcommand is one JSON
// object for scripts.
#include "scvrl.h"
#include "models/mvit.h"
#include "models/method.h"
#include "cli.h"
#include "dataset.h"
#include "loader.h"
#include "video.h"
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_IN 3
#define BENCH_MAX_SETS 8

static int opt_threads = 0, opt_reps = 0;
static double opt_min_time = 2.0;

// ---------------------------------------------------------------------------
// Timing a graph with rotated inputs
// ---------------------------------------------------------------------------
typedef struct {
    scvrl_ctx *ctx;
    scvrl_graph *g;
    int n_in, nsets;
    scvrl_tensor *in[BENCH_MAX_IN];
    float *sets[BENCH_MAX_IN][BENCH_MAX_SETS];
    scvrl_tensor *out;
} bench_case;

typedef struct { double med_s, best_s; int reps; } bench_time;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// The 1-minute load average (-1 where unknown), with a note on stderr when other processes are
// busy on the cores the figures use (they come out pessimistic then).
static double load_note(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) { if (fscanf(f, "%lf", &l) != 1) l = -1; fclose(f); }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (l > 0.5) fprintf(stderr, "bench: note: load average %.2f on %ld CPUs before the run: other processes compete, "
                                 "figures may be pessimistic\n", l, ncpu);
    if (l > 0.5 * (double)ncpu && !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
        fprintf(stderr, "bench: note: with the CPUs busy, OpenMP threads that spin at barriers while their partner is "
                        "descheduled can cost several times the run time: OMP_WAIT_POLICY=passive (for every program "
                        "compared) avoids it\n");
    return l;
}

static void die_oom(const char *what, double bytes) {
    char b[32];
    fprintf(stderr, "bench: out of memory allocating %s (%s)\n", what, cli_fmt_bytes(b, sizeof b, bytes));
    exit(1);
}

// A new input leaf of the case (data set per run from its input sets).
static scvrl_tensor *case_input(bench_case *c, const char *name, int nd, const int64_t *ne) {
    scvrl_tensor *t = scvrl_new(c->ctx, SCVRL_DT_F32, nd, ne);
    scvrl_set_name(t, "%s", name);
    scvrl_mark_input(t);
    c->in[c->n_in++] = t;
    return t;
}

// Fill the input sets: uniform [-1, 1), a stream per input and set; enough sets for ~64 MiB.
static void case_fill(bench_case *c) {
    double per = 0;
    for (int i = 0; i < c->n_in; i++) per += (double)scvrl_nelements(c->in[i]) * sizeof(float);
    c->nsets = (int)((64.0 * 1048576.0) / (per + 1)) + 1;
    c->nsets = c->nsets < 2 ? 2 : c->nsets > BENCH_MAX_SETS ? BENCH_MAX_SETS : c->nsets;
    for (int i = 0; i < c->n_in; i++)
        for (int s = 0; s < c->nsets; s++) {
            int64_t n = scvrl_nelements(c->in[i]);
            c->sets[i][s] = (float *)malloc((size_t)n * sizeof(float));
            if (!c->sets[i][s]) die_oom("benchmark inputs", (double)n * 4.0);
            scvrl_fill_uniform(c->sets[i][s], n, 7, scvrl_fnv1a64(c->in[i]->name) + (uint64_t)s, -1.0f, 1.0f);
        }
}

static void case_compute(bench_case *c, int set) {
    char err[512];
    for (int i = 0; i < c->n_in; i++) c->in[i]->data = c->sets[i][set];
    if (scvrl_graph_compute(c->g, NULL, err, sizeof err)) { fprintf(stderr, "bench: %s\n", err); exit(1); }
}

// Build the graph of out; time it: one warm-up, then --reps runs (0: at least 3, more until
// --min-time seconds of timed runs, at most 25), rotating the input sets.
static bench_time case_time(bench_case *c) {
    scvrl_mark_output(c->out);
    c->g = scvrl_graph_new();
    scvrl_graph_expand(c->g, c->out);
    case_fill(c);
    case_compute(c, 0);
    double ts[64], total = 0;
    int n = 0, want = opt_reps > 0 ? (opt_reps < 64 ? opt_reps : 64) : 25;
    while (n < want) {
        double t0 = cli_now();
        case_compute(c, (n + 1) % c->nsets);
        ts[n] = cli_now() - t0;
        total += ts[n++];
        if (opt_reps <= 0 && n >= 3 && total >= opt_min_time) break;
    }
    qsort(ts, (size_t)n, sizeof(double), cmp_double);
    bench_time r = { n % 2 ? ts[n / 2] : 0.5 * (ts[n / 2 - 1] + ts[n / 2]), ts[0], n };
    case_compute(c, 0);      // leave the output of set 0 for the error check
    return r;
}

static void case_free(bench_case *c) {
    for (int i = 0; i < c->n_in; i++)
        for (int s = 0; s < c->nsets; s++) free(c->sets[i][s]);
    scvrl_graph_free(c->g);
    scvrl_ctx_free(c->ctx);
}

// Rows checked against the float64 reference: all of them up to 256, else 64 spread evenly.
static int64_t sample_row(int64_t M, int k, int *count) {
    *count = M <= 256 ? (int)M : 64;
    return *count == M ? k : (int64_t)((double)k * (double)(M - 1) / 63.0 + 0.5);
}

// ---------------------------------------------------------------------------
// GEMM and linear
// ---------------------------------------------------------------------------
typedef struct {
    const char *name;
    int64_t M, N, K;
    int tA, tB, linear;       // linear: scvrl_linear(x [M,K], W [N,K]) = x W^T
} gemm_shape;

typedef struct { double gflops, best_gflops, ms, err; int reps; } bench_result;

// max |C - C64| / max |C64| over the sampled rows of op(A) op(B), in float64.
static double gemm_error(const gemm_shape *s, const float *A, const float *B, const float *C) {
    int64_t M = s->M, N = s->N, K = s->K, lda = s->tA ? M : K, ldb = s->tB ? K : N;
    double *r = (double *)malloc((size_t)N * sizeof(double)), maxd = 0, maxr = 0;
    if (!r) die_oom("the reference row", (double)N * 8.0);
    int cnt;
    sample_row(M, 0, &cnt);
    for (int k = 0; k < cnt; k++) {
        int64_t i = sample_row(M, k, &cnt);
        for (int64_t j = 0; j < N; j++) r[j] = 0;
        for (int64_t p = 0; p < K; p++) {
            double a = s->tA ? A[p * lda + i] : A[i * lda + p];
            for (int64_t j = 0; j < N; j++) r[j] += a * (double)(s->tB ? B[j * ldb + p] : B[p * ldb + j]);
        }
        for (int64_t j = 0; j < N; j++) {
            maxd = fmax(maxd, fabs((double)C[i * N + j] - r[j]));
            maxr = fmax(maxr, fabs(r[j]));
        }
    }
    free(r);
    return maxr > 0 ? maxd / maxr : maxd;
}

static bench_result run_gemm(const gemm_shape *s) {
    bench_case c = { 0 };
    c.ctx = scvrl_ctx_new(0);
    int64_t ane[2] = { s->tA ? s->K : s->M, s->tA ? s->M : s->K };
    int64_t bne[2] = { s->tB ? s->N : s->K, s->tB ? s->K : s->N };
    scvrl_tensor *a = case_input(&c, "A", 2, ane), *b = case_input(&c, "B", 2, bne);
    c.out = s->linear ? scvrl_linear(c.ctx, a, b, NULL) : scvrl_matmul(c.ctx, a, b, s->tA, s->tB);
    bench_time t = case_time(&c);
    double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    bench_result r = { flop / t.med_s / 1e9, flop / t.best_s / 1e9, t.med_s * 1e3, 0, t.reps };
    r.err = gemm_error(s, c.sets[0][0], c.sets[1][0], scvrl_f32(c.out));
    case_free(&c);
    return r;
}

// ---------------------------------------------------------------------------
// Attention: q [1, 1, Nq, d], k, v [1, 1, Nk, d]
// ---------------------------------------------------------------------------
// max |O - O64| / max |O64| over sampled query rows (softmax in float64).
static double attention_error(int64_t Nq, int64_t Nk, int64_t d, const float *q, const float *k, const float *v,
                              const float *o) {
    double *p = (double *)malloc((size_t)Nk * sizeof(double)), *r = (double *)malloc((size_t)d * sizeof(double));
    if (!p || !r) die_oom("the reference row", (double)(Nk + d) * 8.0);
    double scale = 1.0 / sqrt((double)d), maxd = 0, maxr = 0;
    int cnt;
    sample_row(Nq, 0, &cnt);
    for (int s = 0; s < cnt; s++) {
        int64_t i = sample_row(Nq, s, &cnt);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < Nk; j++) {
            double dot = 0;
            for (int64_t c = 0; c < d; c++) dot += (double)q[i * d + c] * k[j * d + c];
            p[j] = dot * scale;
            mx = fmax(mx, p[j]);
        }
        for (int64_t j = 0; j < Nk; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (int64_t c = 0; c < d; c++) r[c] = 0;
        for (int64_t j = 0; j < Nk; j++)
            for (int64_t c = 0; c < d; c++) r[c] += p[j] / sum * v[j * d + c];
        for (int64_t c = 0; c < d; c++) {
            maxd = fmax(maxd, fabs((double)o[i * d + c] - r[c]));
            maxr = fmax(maxr, fabs(r[c]));
        }
    }
    free(p); free(r);
    return maxr > 0 ? maxd / maxr : maxd;
}

static bench_result run_attention(int64_t Nq, int64_t Nk, int64_t d) {
    bench_case c = { 0 };
    c.ctx = scvrl_ctx_new(0);
    int64_t qne[4] = { 1, 1, Nq, d }, kne[4] = { 1, 1, Nk, d };
    scvrl_tensor *q = case_input(&c, "q", 4, qne), *k = case_input(&c, "k", 4, kne), *v = case_input(&c, "v", 4, kne);
    c.out = scvrl_attention(c.ctx, q, k, v, (float)(1.0 / sqrt((double)d)));
    bench_time t = case_time(&c);
    double flop = 4.0 * (double)Nq * (double)Nk * (double)d;
    bench_result r = { flop / t.med_s / 1e9, flop / t.best_s / 1e9, t.med_s * 1e3, 0, t.reps };
    r.err = attention_error(Nq, Nk, d, c.sets[0][0], c.sets[1][0], c.sets[2][0], scvrl_f32(c.out));
    case_free(&c);
    return r;
}

// ---------------------------------------------------------------------------
// Subcommands: gemm, ops
// ---------------------------------------------------------------------------
#define TIMING_FLAGS                                                                                         \
    { "--threads", CLI_INT, &opt_threads, "N", "OpenMP threads (0: all)", 0, 4096, NULL, 0 },                \
    { "--reps", CLI_INT, &opt_reps, "N", "timed runs per figure (0: >= 3, until --min-time, <= 25)", 0, 64, NULL, 0 }, \
    { "--min-time", CLI_DOUBLE, &opt_min_time, "S", "seconds of timed runs per figure when --reps is 0", 0, 3600, NULL, 0 }

static const char *gemm_about =
    "GFLOP/s (2*M*N*K per call, median of the timed runs) of scvrl_matmul through a graph, and\n"
    "max_rel_err = max |C - C64| / max |C64| against a float64 product of the same inputs\n"
    "(all rows up to 256, else 64 rows spread evenly). Inputs are uniform in [-1, 1).";

// "NT", "tn", "AB", "A", "B", "none" -> transA, transB
static int parse_trans(const char *s, int *tA, int *tB) {
    if (!strcmp(s, "none") || !strcmp(s, "")) { *tA = *tB = 0; return 0; }
    if (!strcmp(s, "A") || !strcmp(s, "B") || !strcmp(s, "AB")) {
        *tA = strchr(s, 'A') != NULL; *tB = strchr(s, 'B') != NULL;
        return 0;
    }
    if (strlen(s) != 2) return -1;
    for (int i = 0; i < 2; i++) {
        char ch = s[i] == 'n' ? 'N' : s[i] == 't' ? 'T' : s[i];
        if (ch != 'N' && ch != 'T') return -1;
        *(i ? tB : tA) = ch == 'T';
    }
    return 0;
}

static void print_result_json(const char *name, const gemm_shape *s, const bench_result *r, int first) {
    printf("%s{\"name\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"gflops\":%.2f,\"gflops_best\":%.2f,\"ms\":%.3f,"
           "\"reps\":%d,\"max_rel_err\":%.3e}", first ? "" : ",", name, (long long)s->M, (long long)s->N, (long long)s->K,
           r->gflops, r->best_gflops, r->ms, r->reps, r->err);
}

static int cmd_gemm(int argc, char **argv) {
    const char *trans = "NN";
    const cli_flag flags[] = {
        { "--trans", CLI_STR, &trans, "XY", "NN | NT | TN | TT (A, B: N plain, T transposed; also A, B, AB, none)", 0, 0, NULL, 0 },
        TIMING_FLAGS,
    };
    cli_spec spec = { "bench gemm", "M N K [flags]", gemm_about, flags, (int)(sizeof flags / sizeof *flags), NULL,
                      "example: bench gemm 2048 2048 2048 --threads 2" };
    const char *pos[3];
    if (cli_parse(&spec, argc, argv, 2, pos, 3) != 3) cli_usage_error(&spec, "needs three sizes M N K");
    gemm_shape s = { "gemm", 0, 0, 0, 0, 0, 0 };
    int64_t *dims[3] = { &s.M, &s.N, &s.K };
    for (int i = 0; i < 3; i++) {
        char *end;
        long long v = strtoll(pos[i], &end, 10);
        if (*end || end == pos[i] || v < 1 || v > (1ll << 20)) cli_usage_error(&spec, "%c must be an integer in 1..1048576, not '%s'", "MNK"[i], pos[i]);
        *dims[i] = v;
    }
    if (parse_trans(trans, &s.tA, &s.tB)) cli_usage_error(&spec, "--trans must be NN, NT, TN or TT, not '%s'", trans);
    scvrl_set_threads(opt_threads);
    char tr[3] = { s.tA ? 'T' : 'N', s.tB ? 'T' : 'N', 0 };
    double load = load_note();
    bench_result r = run_gemm(&s);
    printf("gemm M=%lld N=%lld K=%lld trans=%s threads=%d: %.1f GFLOP/s (best %.1f), %.3f ms median of %d, max_rel_err %.2e\n",
           (long long)s.M, (long long)s.N, (long long)s.K, tr, scvrl_get_threads(), r.gflops, r.best_gflops, r.ms, r.reps, r.err);
    printf("{\"bench\":\"gemm\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"trans\":\"%s\",\"threads\":%d,\"gflops\":%.2f,"
           "\"gflops_best\":%.2f,\"ms\":%.3f,\"reps\":%d,\"max_rel_err\":%.3e,\"load1\":%.2f}\n", (long long)s.M,
           (long long)s.N, (long long)s.K, tr, scvrl_get_threads(), r.gflops, r.best_gflops, r.ms, r.reps, r.err, load);
    return 0;
}

static int cmd_ops(int argc, char **argv) {
    const cli_flag flags[] = { TIMING_FLAGS };
    cli_spec spec = { "bench ops", "[flags]",
                      "The GEMM and attention table: 1024^3, 2048^3 (scvrl_matmul); MViT-B's linear shapes\n"
                      "(scvrl_linear, x W^T): stage-1 qkv 25089x96 -> 288 and stage-3 mlp.0 1569x384 -> 1536;\n"
                      "stage-1 attention q [1,1,25089,96], k/v [1,1,393,96] (GFLOP counted as 4*Nq*Nk*d).\n"
                      "Errors: max |y - y64| / max |y64| on sampled rows against float64.",
                      flags, 3, NULL, NULL };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    scvrl_set_threads(opt_threads);
    static const gemm_shape shapes[] = {
        { "matmul 1024^3", 1024, 1024, 1024, 0, 0, 0 },
        { "matmul 2048^3", 2048, 2048, 2048, 0, 0, 0 },
        { "linear qkv s1 (x W^T)", 25089, 288, 96, 0, 1, 1 },
        { "linear mlp.0 s3 (x W^T)", 1569, 1536, 384, 0, 1, 1 },
    };
    const int ns = (int)(sizeof shapes / sizeof *shapes);
    bench_result res[5];
    gemm_shape att = { "attention s1", 25089, 393, 96, 0, 0, 0 };
    double load = load_note();
    printf("threads %d\n%-26s %7s %6s %6s %10s %8s %6s %10s\n", scvrl_get_threads(), "op", "M/Nq", "N/Nk", "K/d",
           "GFLOP/s", "best", "ms", "max_rel_err");
    for (int i = 0; i <= ns; i++) {
        const gemm_shape *s = i < ns ? &shapes[i] : &att;
        res[i] = i < ns ? run_gemm(s) : run_attention(att.M, att.N, att.K);
        printf("%-26s %7lld %6lld %6lld %10.1f %8.1f %6.0f %10.2e\n", s->name, (long long)s->M, (long long)s->N,
               (long long)s->K, res[i].gflops, res[i].best_gflops, res[i].ms, res[i].err);
        fflush(stdout);
    }
    printf("{\"bench\":\"ops\",\"threads\":%d,\"load1\":%.2f,\"results\":[", scvrl_get_threads(), load);
    for (int i = 0; i <= ns; i++) print_result_json(i < ns ? shapes[i].name : att.name, i < ns ? &shapes[i] : &att, &res[i], i == 0);
    printf("]}\n");
    return 0;
}

// ---------------------------------------------------------------------------
// Subcommand: mvit
// ---------------------------------------------------------------------------
typedef struct { const char *file, *preset; int kt, frames, size, batch; } mvit_fixture;

static const mvit_fixture fixtures[] = {
    { "mvit_tiny_kt2_8x64", "mvit-tiny", 2, 8, 64, 2 }, { "mvit_s_kt2_8x64", "mvit-s", 2, 8, 64, 2 },
    { "mvit_b_kt2_8x64", "mvit-b", 2, 8, 64, 2 },       { "mvit_b_kt3_8x64", "mvit-b", 3, 8, 64, 2 },
    { "mvit_b_kt2_16x224", "mvit-b", 2, 16, 224, 1 },
};

// Relative error ||f - ref|| / ||ref|| of the first clips' features against the float64 fixture
// made for this config (tests/data, next to the program or the working directory); -1: none.
static double fixture_error(const mvit_config *cfg, const float *feat, int64_t B, const char *argv0, char *which, size_t n) {
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        const mvit_fixture *fx = &fixtures[i];
        if (strcmp(fx->preset, cfg->name) || fx->kt != cfg->kt || fx->frames != cfg->frames || fx->size != cfg->size) continue;
        char path[1024], dir[900];
        snprintf(dir, sizeof dir, "%s", argv0);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        scvrl_st_file f;
        snprintf(path, sizeof path, "tests/data/%s.safetensors", fx->file);
        if (scvrl_st_open(&f, path, NULL, 0)) {
            snprintf(path, sizeof path, "%s/../tests/data/%s.safetensors", dir, fx->file);
            if (scvrl_st_open(&f, path, NULL, 0)) return -1;
        }
        const scvrl_st_entry *e = scvrl_st_find(&f, cfg->pool_avg ? "features_avg" : "features");
        int64_t D = mvit_width(cfg), nb = B < fx->batch ? B : fx->batch;
        double num = 0, den = 0;
        if (!e || e->numel < nb * D) { scvrl_st_close(&f); return -1; }
        for (int64_t j = 0; j < nb * D; j++) {
            double r;
            if (e->dtype == SCVRL_DT_F64) memcpy(&r, f.data + e->begin + 8 * j, 8);
            else { float v; memcpy(&v, f.data + e->begin + 4 * j, 4); r = v; }
            num += (feat[j] - r) * (feat[j] - r);
            den += r * r;
        }
        snprintf(which, n, "%s (%lld clip%s)", path, (long long)nb, nb > 1 ? "s" : "");
        scvrl_st_close(&f);
        return den > 0 ? sqrt(num / den) : sqrt(num);
    }
    return -1;
}

typedef struct {
    const char *model, *device, *inputs, *precision;
    int kt, frames, size, batch, warmup, fwd_only;
    double load;             // 1-minute load average before the run
} mvit_opts;

// Time a built graph: warm-up runs, then --reps runs (0: 3, fewer if they pass 30 s); the median
// seconds, the fastest in *best, the mean CPU seconds of the process (all threads) in *cpu.
// The input x alternates between the data sets xs[0..nx) from run to run. train: a full training
// step per run (new drop-path seed, zeroed gradients, the graph, then AdamW on the parameters).
static double time_graph(scvrl_graph *g, scvrl_backend *be, mvit_model *m, int train, int warmup, scvrl_tensor *x,
                         float *const *xs, int nx, double *best, double *cpu) {
    char err[512];
    double ts[64], total = 0, cpu_total = 0;
    int nt = 0, reps = opt_reps > 0 ? (opt_reps < 64 ? opt_reps : 64) : 3;
    scvrl_adamw_cfg opt = scvrl_adamw_default();
    for (int r = 0; r < warmup + reps; r++) {
        g->seed = (uint64_t)r + 1;
        x->data = xs[r % nx];
        double t0 = cli_now(), c0 = cli_cpu_now();
        if (train) scvrl_params_zero_grad(&m->P);
        if (scvrl_graph_compute(g, be, err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); exit(1); }
        if (train && scvrl_adamw_step(&m->P, &opt, err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); exit(1); }
        double dt = cli_now() - t0, dc = cli_cpu_now() - c0;
        fprintf(stderr, "bench mvit: %s run %d/%d: %.3f s%s\n", train ? "train step" : "forward", r + 1,
                warmup + reps, dt, r < warmup ? " (warm-up)" : "");
        if (r < warmup) continue;
        ts[nt++] = dt;
        total += dt;
        cpu_total += dc;
        if (opt_reps <= 0 && total >= 30.0) break;
    }
    qsort(ts, (size_t)nt, sizeof(double), cmp_double);
    *best = ts[0];
    *cpu = cpu_total / nt;
    return nt % 2 ? ts[nt / 2] : 0.5 * (ts[nt / 2 - 1] + ts[nt / 2]);
}

static const char *const precisions[] = { "bf16", "tf32", "fp32", NULL };

// The backend, and the precision it computes in ("fp32" on the CPU; SCVRL_CUDA_PRECISION overrides
// the flag on the GPU).
static scvrl_backend *mvit_backend(const char *device, const char *precision, const char **actual) {
    char err[512];
    scvrl_backend *be = probe_backend(device, precision, err, sizeof err);
    if (!be) { fprintf(stderr, "bench: --device %s: %s\n", device, err); exit(strcmp(device, "cpu") ? 1 : 2); }
    *actual = "fp32";
#ifdef SCVRL_CUDA
    if (strcmp(device, "cpu")) *actual = scvrl_precision_name(scvrl_cuda_get_precision(be));
#endif
    return be;
}

// What bench mvit measures: seconds per clip (median and fastest; fwdbwd < 0: not measured),
// planned activation bytes of each graph, and the forward's error against a fixture (< 0: none).
typedef struct {
    double fwd, fwd_best, fwd_cpu, fwdbwd, fwdbwd_best, fwdbwd_cpu, err;
    size_t act_f, act_t;
    char which[1100];
    size_t gpu_bytes;        // device memory the CUDA backend holds after the runs (0: CPU)
    int bf16_nodes;          // BF16 mode: nodes of the last graph stored as bf16
    long long replays;       // computes replayed as captured CUDA graphs
} mvit_figures;

static void mvit_report(const mvit_opts *o, const mvit_model *m, const mvit_figures *r) {
    double wbytes = (double)m->P.n_elems * sizeof(float);            // weights; as much again for gradients
    double peak = fmax((double)r->act_f + wbytes, r->fwdbwd >= 0 ? (double)r->act_t + 2.0 * wbytes : 0.0) / 1048576.0;
    int64_t rss = cli_peak_rss_bytes();
    char b1[32], b2[32], b3[32], b4[32], d1[32], d2[32];
    printf("model %s kt %d, %dx%dx%d, batch %d, threads %d, device %s%s\n", o->model, o->kt, o->frames, o->size, o->size,
           o->batch, scvrl_get_threads(), o->device, strcmp(o->device, "cpu") ? (strcmp(o->inputs, "device") ? ", inputs uploaded every run" : ", inputs on the GPU") : "");
    printf("forward (eval):             %s per clip (fastest %s; %.2f CPU s)\n", cli_fmt_duration(d1, sizeof d1, r->fwd),
           cli_fmt_duration(d2, sizeof d2, r->fwd_best), r->fwd_cpu);
    if (r->fwdbwd >= 0)
        printf("train step (fwd+bwd+AdamW): %s per clip (fastest %s; %.2f CPU s)\n", cli_fmt_duration(d1, sizeof d1, r->fwdbwd),
               cli_fmt_duration(d2, sizeof d2, r->fwdbwd_best), r->fwdbwd_cpu);
    if (r->fwdbwd >= 0) cli_fmt_bytes(b2, sizeof b2, (double)r->act_t); else snprintf(b2, sizeof b2, "-");
    printf("memory: activations %s (forward) / %s (train), weights %s (+ as much for gradients in training),\n"
           "        planned peak %.1f MiB, peak RSS %s\n", cli_fmt_bytes(b1, sizeof b1, (double)r->act_f), b2,
           cli_fmt_bytes(b3, sizeof b3, wbytes), peak, cli_fmt_bytes(b4, sizeof b4, (double)rss));
    if (r->err >= 0) printf("forward vs float64 fixture %s: relative error %.3e\n", r->which, r->err);
    else printf("forward vs float64 fixture: n/a (no fixture for this config)\n");
    char e[32], fb[32], fbb[32], fbc[32];
    if (r->err >= 0) snprintf(e, sizeof e, "%.3e", r->err); else snprintf(e, sizeof e, "\"n/a\"");
    snprintf(fb, sizeof fb, r->fwdbwd >= 0 ? "%.4f" : "null", r->fwdbwd);
    snprintf(fbb, sizeof fbb, r->fwdbwd >= 0 ? "%.4f" : "null", r->fwdbwd_best);
    snprintf(fbc, sizeof fbc, r->fwdbwd >= 0 ? "%.4f" : "null", r->fwdbwd_cpu);
    const char *prec = o->precision;
    char tc[32];
    snprintf(tc, sizeof tc, r->fwdbwd > 0 ? "%.2f" : "null", r->fwdbwd > 0 ? 1.0 / r->fwdbwd : 0.0);
    if (r->gpu_bytes) printf("GPU memory held by the backend (peak): %.1f MiB\n", (double)r->gpu_bytes / 1048576.0);
    if (r->bf16_nodes) printf("bf16 activations: %d nodes of the last graph (SCVRL_CUDA_BF16_ACT=0: none)\n", r->bf16_nodes);
    printf("{\"bench\":\"mvit\",\"model\":\"%s\",\"kt\":%d,\"frames\":%d,\"size\":%d,\"batch\":%d,\"threads\":%d,"
           "\"device\":\"%s\",\"inputs\":\"%s\",\"precision\":\"%s\",\"fwd_s_per_clip\":%.4f,\"fwdbwd_s_per_clip\":%s,\"fwd_best_s_per_clip\":%.4f,"
           "\"fwdbwd_best_s_per_clip\":%s,\"fwd_cpu_s_per_clip\":%.4f,\"fwdbwd_cpu_s_per_clip\":%s,\"fwd_clips_per_s\":%.2f,"
           "\"train_clips_per_s\":%s,\"peak_mb\":%.1f,\"peak_gpu_mb\":%.1f,\"rss_peak_mb\":%.1f,\"act_fwd_mb\":%.1f,\"act_train_mb\":%.1f,"
           "\"max_rel_err\":%s,\"graph_replays\":%lld,\"load1\":%.2f}\n", o->model, o->kt, o->frames, o->size, o->batch, scvrl_get_threads(), o->device, strcmp(o->device, "cpu") ? o->inputs : "host", prec,
           r->fwd, fb, r->fwd_best, fbb, r->fwd_cpu, fbc, 1.0 / r->fwd, tc, peak, (double)r->gpu_bytes / 1048576.0,
           (double)rss / 1048576.0, (double)r->act_f / 1048576.0, (double)r->act_t / 1048576.0, e, r->replays, o->load);
}

// The input leaf x [B, 3, T, S, S] over xdata.
static scvrl_tensor *mvit_input(scvrl_ctx *ctx, const mvit_opts *o, float *xdata) {
    int64_t xne[5] = { o->batch, 3, o->frames, o->size, o->size };
    scvrl_tensor *x = scvrl_new(ctx, SCVRL_DT_F32, 5, xne);
    scvrl_mark_input(x);
    x->data = xdata;
    return x;
}

// Forward (eval) and the train step (drop-path, loss = mean of squared features, backward, AdamW).
// xs: nx input sets, alternated between runs; the error is of a forward of set 0.
static void mvit_measure(const mvit_opts *o, mvit_model *m, scvrl_backend *be, float *const *xs, int nx, const char *argv0) {
    mvit_figures r = { 0, 0, 0, -1, -1, 0, -1, 0, 0, "", 0, 0, 0 };
    char err[512];
    if (scvrl_params_to_device(&m->P, be, err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); exit(1); }
    scvrl_ctx *ctx = scvrl_ctx_new(0);
    scvrl_tensor *x = mvit_input(ctx, o, xs[0]);
    scvrl_tensor *f = mvit_forward(ctx, m, x, 0, 0, NULL);
    scvrl_mark_output(f);
    scvrl_graph *g = scvrl_graph_new();
    scvrl_graph_expand(g, f);
    r.fwd = time_graph(g, be, m, 0, o->warmup, x, xs, nx, &r.fwd_best, &r.fwd_cpu) / o->batch;
    r.fwd_best /= o->batch;
    r.fwd_cpu /= o->batch;
    r.act_f = scvrl_graph_activation_bytes(g);
    x->data = xs[0];
    if (scvrl_graph_compute(g, be, err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); exit(1); }
    r.err = fixture_error(&m->cfg, scvrl_f32(f), o->batch, argv0, r.which, sizeof r.which);
    scvrl_graph_free(g);
    scvrl_ctx_reset(ctx);
    if (!o->fwd_only) {
        x = mvit_input(ctx, o, xs[0]);
        f = mvit_forward(ctx, m, x, 1, 1000, NULL);
        scvrl_tensor *loss = scvrl_mean_all(ctx, scvrl_mul(ctx, f, f));
        g = scvrl_graph_new();
        scvrl_graph_expand(g, loss);
        scvrl_graph_backward(ctx, g, loss);
        r.fwdbwd = time_graph(g, be, m, 1, o->warmup, x, xs, nx, &r.fwdbwd_best, &r.fwdbwd_cpu) / o->batch;
        r.fwdbwd_best /= o->batch;
        r.fwdbwd_cpu /= o->batch;
        r.act_t = scvrl_graph_activation_bytes(g);
        scvrl_graph_free(g);
    }
    scvrl_ctx_free(ctx);
#ifdef SCVRL_CUDA
    r.gpu_bytes = scvrl_cuda_device_bytes(be);
    r.bf16_nodes = scvrl_cuda_bf16_nodes(be);
    r.replays = (long long)scvrl_cuda_graph_replays(be);
#endif
    mvit_report(o, m, &r);
}

static int cmd_mvit(int argc, char **argv) {
    static const char *devices[] = { "cpu", "cuda", NULL };
    mvit_opts o = { "mvit-b", "cpu", "device", "bf16", 2, 16, 224, 1, 1, 0, -1 };
    static const char *inputs[] = { "device", "host", NULL };
    const cli_flag flags[] = {
        { "--model", CLI_STR, &o.model, "NAME", "model preset (table below)", 0, 0, NULL, 0 },
        { "--batch", CLI_INT, &o.batch, "N", "clips per forward", 1, 4096, NULL, 0 },
        { "--frames", CLI_INT, &o.frames, "T", "frames per clip (even)", 2, 4096, NULL, 0 },
        { "--size", CLI_INT, &o.size, "S", "frame height = width (multiple of 32)", 32, 4096, NULL, 0 },
        { "--kt", CLI_INT, &o.kt, "K", "stem temporal kernel: 2 (SCVRL) or 3 (torchvision)", 2, 3, NULL, 0 },
        { "--device", CLI_CHOICE, &o.device, NULL, "backend (cuda needs a CUDA build)", 0, 0, devices, 0 },
        { "--precision", CLI_CHOICE, &o.precision, NULL, "GPU precision: bf16 (bf16 tensor cores and bf16 activations, fp32 weights, sums and losses), tf32 (tf32 tensor cores, fp32 activations) or fp32 (SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
        { "--threads", CLI_INT, &opt_threads, "N", "OpenMP threads (0: all)", 0, 4096, NULL, 0 },
        { "--reps", CLI_INT, &opt_reps, "N", "timed runs of each graph (0: 3, fewer past 30 s)", 0, 64, NULL, 0 },
        { "--warmup", CLI_INT, &o.warmup, "N", "untimed runs before them", 0, 64, NULL, 0 },
        { "--fwd-only", CLI_BOOL, &o.fwd_only, NULL, "skip the train-step figure", 0, 0, NULL, 0 },
        { "--inputs", CLI_CHOICE, &o.inputs, NULL, "cuda: input clips kept on the GPU (as PyTorch's baseline) or uploaded every run", 0, 0, inputs, 0 },
    };
    cli_spec spec = { "bench mvit", "[flags]",
                      "Seconds per clip of the MViT forward (eval) and of a train step (forward in train mode with\n"
                      "drop-path, loss = mean of squared features, backward, AdamW); inputs: two sets alternated\n"
                      "(on the GPU with --device cuda unless --inputs host); memory: planned activations + parameters and gradients\n"
                      "(peak_mb) and the process's peak RSS (VmHWM); max_rel_err: the forward's relative error\n"
                      "against the float64 fixture in tests/data when one matches the config, else \"n/a\".\n"
                      "Weights: mvit_fixture_weights(1234); input: 2*rng_uniform(99, fnv1a64(\"input\"), i) - 1.",
                      flags, (int)(sizeof flags / sizeof *flags), mvit_print_presets, NULL };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    mvit_config cfg;
    if (mvit_preset(o.model, &cfg)) cli_usage_error(&spec, "unknown --model '%s' (mvit-b, mvit-s, mvit-tiny, mvit-micro)", o.model);
    cfg.kt = o.kt; cfg.frames = o.frames; cfg.size = o.size;
    char err[512];
    if (mvit_check_config(&cfg, err, sizeof err)) cli_usage_error(&spec, "%s", err);
    scvrl_backend *be = mvit_backend(o.device, o.precision, &o.precision);
    scvrl_set_threads(opt_threads);
    mvit_model m;
    if (mvit_init(&m, &cfg, err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); return 1; }
    mvit_fixture_weights(&m, 1234);
    int64_t n = (int64_t)o.batch * 3 * o.frames * o.size * o.size;
    float *xs[2];
    for (int k = 0; k < 2; k++) {           // two input sets, alternated between runs
        xs[k] = (float *)malloc((size_t)n * sizeof(float));
        if (!xs[k]) die_oom("the input clips", (double)n * 4.0);
        uint64_t st = scvrl_fnv1a64(k ? "input2" : "input");
        #pragma omp parallel for
        for (int64_t i = 0; i < n; i++) xs[k][i] = 2.0f * scvrl_rng_uniform(99, st, (uint64_t)i) - 1.0f;
    }
#ifdef SCVRL_CUDA
    if (strcmp(o.device, "cpu") && !strcmp(o.inputs, "device"))
        for (int k = 0; k < 2; k++)
            if (scvrl_cuda_resident(be, xs[k], (size_t)n * sizeof(float), err, sizeof err)) { fprintf(stderr, "bench mvit: %s\n", err); return 1; }
#endif
    o.load = load_note();
    mvit_measure(&o, &m, be, xs, 2, argv[0]);
    free(xs[0]); free(xs[1]);
    mvit_free(&m);
    if (strcmp(o.device, "cpu")) scvrl_backend_free(be);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// bench data: decoded frames/s (every frame of each video, the decoder's default flags), the same
// through `ffmpeg -threads 1 -i F -f null -` when the CLI is there, and pretraining samples/s
// (two clips decoded, three augmented views, the shuffles) with --threads workers.
// ---------------------------------------------------------------------------------------------
static double bench_decode_all(const ds_list *L, int64_t *frames) {
    double t0 = cli_now();
    *frames = 0;
    for (int64_t i = 0; i < L->n; i++) {
        char err[512];
        vid_info info;
        vid_reader *r = vid_open(L->items[i].path, &info, err, sizeof err);
        if (!r) { fprintf(stderr, "bench data: %s\n", err); continue; }
        uint8_t *buf = (uint8_t *)malloc((size_t)info.width * info.height * 3 * 16);
        for (int64_t f0 = 0; buf && f0 < info.n_frames; f0 += 16) {
            int64_t idx[16]; int n = 0;
            for (; n < 16 && f0 + n < info.n_frames; n++) idx[n] = f0 + n;
            if (vid_read_frames(r, idx, n, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err) < 0) break;
            *frames += n;
        }
        free(buf);
        vid_close(r);
    }
    return cli_now() - t0;
}

static double bench_ffmpeg(const ds_list *L) {
    if (system("command -v ffmpeg >/dev/null 2>&1")) return NAN;
    double t0 = cli_now();
    for (int64_t i = 0; i < L->n; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "ffmpeg -v quiet -threads 1 -i '%s' -f null - </dev/null", L->items[i].path);
        if (system(cmd)) return NAN;
    }
    return cli_now() - t0;
}

static int cmd_data(int argc, char **argv) {
    const char *list = NULL;
    int threads = 0, frames = 16, stride = 4, size = 224;
    const cli_flag flags[] = {
        { "--list", CLI_STR, &list, "LIST", "videos (CSV, folder per class, split files)", 0, 0, NULL, CLI_REQUIRED },
        { "--threads", CLI_INT, &threads, "N", "loader workers for samples/s (0: all cores)", 0, 4096, NULL, 0 },
        { "--frames", CLI_INT, &frames, "T", "frames per clip", 2, 256, NULL, 0 },
        { "--stride", CLI_INT, &stride, "S", "frame step", 1, 64, NULL, 0 },
        { "--size", CLI_INT, &size, "PX", "crop size", 16, 1024, NULL, 0 },
    };
    cli_spec spec = { "bench data", "--list LIST [flags]", "Decoding and loading speed of the data pipeline.", flags,
                      (int)(sizeof flags / sizeof *flags), NULL, NULL };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    if (threads > 0) scvrl_set_threads(threads);
    ds_list L;
    char err[1024];
    if (ds_load(list, NULL, &L, err, sizeof err)) { fprintf(stderr, "bench data: %s\n", err); return 1; }
    int64_t nf;
    double td = bench_decode_all(&L, &nf), tf = bench_ffmpeg(&L);
    ld_loader ld;
    ld_init(&ld, &L, frames, stride, size, 1);
    ld.beta = INFINITY;
    int64_t clip = 3LL * frames * size * size, n = L.n < 64 ? L.n : 64, ok = 0;
    double t0 = cli_now();
    #pragma omp parallel reduction(+ : ok)
    {
        float *x = (float *)malloc((size_t)(3 * clip) * sizeof(float));
        #pragma omp for schedule(dynamic)
        for (int64_t i = 0; i < n; i++) {
            char e2[512];
            // as examples/pretrain loads: x_a, x_p, x_pv (the shuffles are gathered from x_p in the graph)
            ok += x && !ld_pretrain_sample(&ld, i, 0, (uint64_t)i, x, x + clip, NULL, x + 2 * clip, e2, sizeof e2);
        }
        free(x);
    }
    double ts = cli_now() - t0;
    printf("decode (1 thread): %lld frames of %lld videos in %.2f s: %.0f frames/s", (long long)nf, (long long)L.n, td, nf / td);
    if (isfinite(tf)) printf("; ffmpeg -threads 1 -f null: %.2f s, %.0f frames/s; ratio %.2f\n", tf, nf / tf, tf / td);
    else printf("; ffmpeg CLI not found\n");
    printf("pretraining samples (%d threads): %lld in %.2f s: %.1f samples/s = %.1f augmented clips/s\n", scvrl_get_threads(),
           (long long)ok, ts, ok / ts, 3 * ok / ts);
    printf("{\"bench\":\"data\",\"frames_per_s\":%.1f,\"ffmpeg_frames_per_s\":%.1f,\"clips_per_s\":%.2f,\"samples_per_s\":%.2f,\"threads\":%d}\n",
           nf / td, isfinite(tf) ? nf / tf : 0.0, 3 * ok / ts, ok / ts, scvrl_get_threads());
    ld_free(&ld);
    ds_free(&L);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// bench scvrl: the full SCVRL training step of models/method.c (EMA, momentum encoder on x_p, the
// N_T shuffles and x_pv, online encoder on x_a with both losses and backward, AdamW, enqueue) on
// random clips: two input sets alternated between steps, kept on the GPU with --device cuda (as
// PyTorch's baseline makes its clips there).
// ---------------------------------------------------------------------------------------------
static void scvrl_fill_inputs(scm_graphs *G, const scm_cfg *c, float *xm[2], float *xo[2]) {
    int64_t nm = scvrl_nelements(G->xm), no = scvrl_nelements(G->xo);
    for (int k = 0; k < 2; k++) {
        xm[k] = (float *)malloc((size_t)nm * sizeof(float));
        xo[k] = (float *)malloc((size_t)no * sizeof(float));
        if (!xm[k] || !xo[k]) die_oom("the input clips", (double)(nm + no) * 4.0);
        #pragma omp parallel for
        for (int64_t i = 0; i < nm; i++) xm[k][i] = 2.0f * scvrl_rng_uniform(99, 10 + k, (uint64_t)i) - 1.0f;
        #pragma omp parallel for
        for (int64_t i = 0; i < no; i++) xo[k][i] = 2.0f * scvrl_rng_uniform(99, 20 + k, (uint64_t)i) - 1.0f;
    }
    if (G->shuf) {            // shuffle j of x_p[b]: its frame groups of 2 rotated by 1 + j mod (groups - 1), never the identity
        int32_t *sh = (int32_t *)G->shuf->data;                  // (rows b*T + frame of x_p, as pretrain fills them)
        int T = c->frames, ng = T / 2;
        for (int64_t b = 0; b < G->B; b++)
            for (int j = 0; j < c->nt; j++)
                for (int t = 0; t < T; t++) sh[(b * c->nt + j) * T + t] = (int32_t)(b * T + ((t / 2 + 1 + j % (ng - 1)) % ng) * 2 + t % 2);
    }
}

static int cmd_scvrl(int argc, char **argv) {
    static const char *devices[] = { "cpu", "cuda", NULL };
    const char *model = "mvit-b", *device = "cpu", *precision = "bf16";
    int batch = 8, frames = 16, size = 224, nt = 12, warmup = 1;
    int64_t queue = 65536;
    const cli_flag flags[] = {
        { "--model", CLI_STR, &model, "NAME", "model preset (table below)", 0, 0, NULL, 0 },
        { "--batch", CLI_INT, &batch, "N", "samples per step", 1, 4096, NULL, 0 },
        { "--frames", CLI_INT, &frames, "T", "frames per clip (even)", 2, 4096, NULL, 0 },
        { "--size", CLI_INT, &size, "S", "frame height = width (multiple of 32)", 32, 4096, NULL, 0 },
        { "--nt", CLI_INT, &nt, "N", "shuffled negatives per sample", 1, 64, NULL, 0 },
        { "--queue", CLI_INT64, &queue, "K", "keys in the queue", 1, 1 << 24, NULL, 0 },
        { "--device", CLI_CHOICE, &device, NULL, "backend (cuda needs a CUDA build)", 0, 0, devices, 0 },
        { "--precision", CLI_CHOICE, &precision, NULL, "GPU precision: bf16 (bf16 tensor cores and bf16 activations, fp32 weights, sums and losses), tf32 (tf32 tensor cores, fp32 activations) or fp32 (SCVRL_CUDA_PRECISION overrides)", 0, 0, precisions, 0 },
        { "--threads", CLI_INT, &opt_threads, "N", "OpenMP threads (0: all)", 0, 4096, NULL, 0 },
        { "--reps", CLI_INT, &opt_reps, "N", "timed steps (0: 5, fewer past 30 s)", 0, 64, NULL, 0 },
        { "--warmup", CLI_INT, &warmup, "N", "untimed steps before them", 0, 64, NULL, 0 },
    };
    cli_spec spec = { "bench scvrl", "[flags]",
                      "Samples/s of the full SCVRL training step (models/method.c): per sample one online forward +\n"
                      "backward (x_a) and 2 + N_T momentum forwards (x_p, its shuffles, x_pv), InfoNCE over the\n"
                      "shuffles and over the queue, AdamW, EMA. Random clips, two sets alternated.",
                      flags, (int)(sizeof flags / sizeof *flags), mvit_print_presets, NULL };
    cli_parse(&spec, argc, argv, 2, NULL, 0);
    mvit_config mc;
    if (mvit_preset(model, &mc)) cli_usage_error(&spec, "unknown --model '%s' (mvit-b, mvit-s, mvit-tiny, mvit-micro)", model);
    mc.frames = frames; mc.size = size;
    char err[1024];
    if (mvit_check_config(&mc, err, sizeof err)) cli_usage_error(&spec, "%s", err);
    const char *prec = precision;
    scvrl_backend *be = mvit_backend(device, precision, &prec);
    scvrl_set_threads(opt_threads);
    scm_cfg c = { 1, 0, 0, nt, frames, size, batch, 0, queue, 0.1, 1.0, 0.999, 0.05, 0.0, 1 };
    scm_state S;
    scm_graphs G;
    if (scm_init(&S, &c, &mc, err, sizeof err)) { fprintf(stderr, "bench scvrl: %s\n", err); return 1; }
    scm_build(&G, &S, &c);
    if (scm_to_device(&S, be, err, sizeof err)) { fprintf(stderr, "bench scvrl: %s\n", err); return 1; }
    float *xm[2], *xo[2];
    scvrl_fill_inputs(&G, &c, xm, xo);
#ifdef SCVRL_CUDA
    for (int k = 0; k < 2 && strcmp(device, "cpu"); k++)
        if (scvrl_cuda_resident(be, xm[k], (size_t)scvrl_nelements(G.xm) * 4, err, sizeof err) ||
            scvrl_cuda_resident(be, xo[k], (size_t)scvrl_nelements(G.xo) * 4, err, sizeof err)) { fprintf(stderr, "bench scvrl: %s\n", err); return 1; }
#endif
    double load = load_note(), ts[64], total = 0;
    int64_t vids[4096];
    for (int b = 0; b < batch; b++) vids[b] = b;
    int nts = 0, reps = opt_reps > 0 ? opt_reps : 5;
    scm_stats st;
    for (int r = 0; r < warmup + reps; r++) {
        G.xm->data = xm[r % 2]; G.xo->data = xo[r % 2];
        double t0 = cli_now();
        if (scm_step(&S, &G, &c, be, vids, 1e-4, &st, err, sizeof err)) { fprintf(stderr, "bench scvrl: %s\n", err); return 1; }
        double dt = cli_now() - t0;
        fprintf(stderr, "bench scvrl: step %d/%d: %.3f s, loss %.4f%s\n", r + 1, warmup + reps, dt, st.loss, r < warmup ? " (warm-up)" : "");
        if (r < warmup) continue;
        ts[nts++] = dt; total += dt;
        if (opt_reps <= 0 && total >= 30.0) break;
    }
    qsort(ts, (size_t)nts, sizeof(double), cmp_double);
    double med = nts % 2 ? ts[nts / 2] : 0.5 * (ts[nts / 2 - 1] + ts[nts / 2]);
    size_t gpu = 0;
    long long replays = 0;
#ifdef SCVRL_CUDA
    gpu = scvrl_cuda_device_bytes(be);
    replays = (long long)scvrl_cuda_graph_replays(be);
#endif
    printf("SCVRL step: %s kt %d, %dx%dx%d, batch %d, N_T %d, queue %lld, device %s (%s)\n", model, mc.kt, frames, size, size,
           batch, nt, (long long)queue, device, prec);
    printf("  %.3f s per step (fastest %.3f), %.2f samples/s, %d momentum + %d online clips per step\n", med, ts[0],
           batch / med, batch * (2 + nt), batch);
    if (gpu) printf("  GPU memory held by the backend (peak): %.1f MiB\n", (double)gpu / 1048576.0);
    printf("{\"bench\":\"scvrl\",\"model\":\"%s\",\"frames\":%d,\"size\":%d,\"batch\":%d,\"nt\":%d,\"queue\":%lld,"
           "\"device\":\"%s\",\"precision\":\"%s\",\"step_s\":%.4f,\"scvrl_samples_per_s\":%.3f,\"peak_gpu_mb\":%.1f,"
           "\"graph_replays\":%lld,\"load1\":%.2f}\n", model, frames, size, batch, nt, (long long)queue, device, prec, med, batch / med,
           (double)gpu / 1048576.0, replays, load);
    scm_free_graphs(&G);
    scm_free(&S);
    if (strcmp(device, "cpu")) scvrl_backend_free(be);
    for (int k = 0; k < 2; k++) { free(xm[k]); free(xo[k]); }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench SUBCOMMAND [flags]   (bench SUBCOMMAND --help for its flags)\n"
               "Speed figures of the library; the last line of each is one JSON object.\n"
               "  gemm M N K   GFLOP/s and error of scvrl_matmul on one shape (--trans NN|NT|TN|TT)\n"
               "  ops          GEMM, MViT-B linear and attention shapes: a table\n"
               "  mvit         MViT forward and train-step seconds per clip, memory, fixture error\n"
               "  scvrl        the full SCVRL training step: samples/s, GPU memory\n"
               "  data         decoded frames/s (vs ffmpeg -threads 1) and pretraining samples/s of a list\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "gemm")) return cmd_gemm(argc, argv);
    if (!strcmp(argv[1], "ops")) return cmd_ops(argc, argv);
    if (!strcmp(argv[1], "mvit")) return cmd_mvit(argc, argv);
    if (!strcmp(argv[1], "scvrl")) return cmd_scvrl(argc, argv);
    if (!strcmp(argv[1], "data")) return cmd_data(argc, argv);
    fprintf(stderr, "bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
