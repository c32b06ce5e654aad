// examples/synth.c: writes the synthetic motion / appearance benchmark of
// ../shared/SYNTH.md (generator: examples/common/synth.c).
//
//   ./examples/synth --out data/synth                      # CPU-test size
//   ./examples/synth --out data/synth112 --size 112 --frames 48 --per-class 100
//       --pretrain 4000 --format jpg                       # GPU study
//
// Layout: DIR/{train,val,test,pretrain}/NAME.mp4 (or NAME/000001.jpg ...) with
// NAME 16 hex digits of a hash of the video seed (no label in any name). CSV
// paths are relative to DIR: set PySlowFast's DATA.PATH_PREFIX to DIR.
#include "synth.h"
#include "vwrite.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef SCVRL_FFMPEG
#define SYNTH_DEFAULT_FORMAT "mp4"
#else
#define SYNTH_DEFAULT_FORMAT "jpg"
#endif

static void usage(FILE *f) {
    fprintf(f,
        "usage: synth --out DIR [flags]\n"
        "Writes the synthetic benchmark of SYNTH.md: videos with opaque names, the lists\n"
        "{train,val,test}_{motion,appearance}.csv and train/val/test.csv (PySlowFast \"path label\",\n"
        "paths relative to DIR), pretrain.csv (paths only), meta.csv (all latents) and, with\n"
        "--dump-states, states.csv (per-frame target states).\n"
        "  --out DIR          output folder (required; created)\n"
        "  --kind K           motion | appearance: the labels of train/val/test.csv (default motion)\n"
        "  --classes N        use the first N classes of the kind (default all: 18 motion, 16 appearance)\n"
        "  --per-class N      videos per class in each of train, val, test (default 4)\n"
        "  --frames N         frames per video; the centred window is 2N/3 (default 24)\n"
        "  --size N           frame size S, S x S pixels (default 64; the GPU study uses 112)\n"
        "  --seed N           global seed (default 1)\n"
        "  --format F         mp4 (MPEG-4 intra, qscale 2) | jpg (JPEG q95 frame folders)\n"
        "                     (default %s; mp4 needs a build with FFmpeg)\n"
        "  --stamp            write each frame's index as a barcode (decode tests only: leaks order)\n"
        "  --hard N           0 | 1 | 2: noise, distractors, camouflage (default 1)\n"
        "  --threads N        OpenMP threads (default 0: all)\n"
        "  --dump-states      also write states.csv\n"
        "  --pretrain N       unlabelled pretraining videos, own seed stream (default 72)\n"
        "  --splits LIST      comma list of train,val,test, or none (default train,val,test)\n"
        "  --quiet            no progress on stderr\n"
        "  --help             this text\n",
        SYNTH_DEFAULT_FORMAT);
}

static void die_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "synth: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see synth --help)\n");
    exit(2);
}

static long parse_int(const char *flag, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs an integer in %ld..%ld, not '%%s'", flag, lo, hi);
        die_usage(msg, s ? s : "");
    }
    return v;
}

static int parse_splits(const char *s) {
    if (!strcmp(s, "none")) return 0;
    int mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "train")) mask |= 1 << SYNTH_TRAIN;
        else if (!strcmp(tok, "val")) mask |= 1 << SYNTH_VAL;
        else if (!strcmp(tok, "test")) mask |= 1 << SYNTH_TEST;
        else die_usage("--splits: unknown split '%s' (train, val, test or none)", tok);
    }
    if (!mask) die_usage("--splits: empty list '%s'", s);
    return mask;
}

typedef struct {
    double start, last;
    int tty, quiet;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void progress(void *ctx, int64_t done, int64_t total) {
    progress_state *p = ctx;
    double t = now_s();
    if (p->quiet || (done < total && t - p->last < (p->tty ? 0.5 : 5.0))) return;
    p->last = t;
    double rate = done / (t - p->start + 1e-9);
    fprintf(stderr, "%ssynth: %lld/%lld videos, %.1f videos/s, ETA %.0f s%s", p->tty ? "\r" : "",
            (long long)done, (long long)total, rate, (total - done) / (rate + 1e-9),
            p->tty && done < total ? "   " : "\n");
}

// Parses argv into d; exits 2 on a bad flag, 0 after --help.
static void parse_args(int argc, char **argv, synth_dataset *d, int *quiet) {
    const char *format = SYNTH_DEFAULT_FORMAT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        static const char *valued[] = {"--out", "--kind", "--classes", "--per-class", "--frames",
                                       "--size", "--hard", "--threads", "--pretrain", "--splits",
                                       "--format", "--seed"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--stamp")) { d->opts.stamp = 1; takes = 0; }
        else if (!strcmp(a, "--dump-states")) { d->dump_states = 1; takes = 0; }
        else if (!strcmp(a, "--quiet")) { *quiet = 1; takes = 0; }
        else if (!known) die_usage("unknown flag '%s'", a);
        else if (!next) die_usage("%s needs a value", a);
        else if (!strcmp(a, "--out")) d->out = next;
        else if (!strcmp(a, "--kind")) {
            if (!strcmp(next, "motion")) d->kind = SYNTH_KIND_MOTION;
            else if (!strcmp(next, "appearance")) d->kind = SYNTH_KIND_APPEARANCE;
            else die_usage("--kind must be motion or appearance, not '%s'", next);
        }
        else if (!strcmp(a, "--classes")) d->classes = (int)parse_int(a, next, 2, 18);
        else if (!strcmp(a, "--per-class")) d->per_class = (int)parse_int(a, next, 1, 1000000);
        else if (!strcmp(a, "--frames")) d->opts.frames = (int)parse_int(a, next, 6, 4096);
        else if (!strcmp(a, "--size")) d->opts.size = (int)parse_int(a, next, 16, 1024);
        else if (!strcmp(a, "--hard")) d->opts.hard = (int)parse_int(a, next, 0, 2);
        else if (!strcmp(a, "--threads")) d->threads = (int)parse_int(a, next, 0, 4096);
        else if (!strcmp(a, "--pretrain")) d->pretrain = (int)parse_int(a, next, 0, 100000000);
        else if (!strcmp(a, "--splits")) d->splits = parse_splits(next);
        else if (!strcmp(a, "--format")) format = next;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            d->seed = strtoull(next, &end, 0);
            if (errno || end == next || *end || next[0] == '-')
                die_usage("--seed needs a non-negative integer, not '%s'", next);
        }
        else die_usage("unknown flag '%s'", a);
        i += takes;
    }
    if (!d->out) die_usage("%s--out DIR is required", "");
    d->format = vwrite_parse_format(format);
    if (d->format < 0) die_usage("--format must be mp4 or jpg, not '%s'", format);
}

int main(int argc, char **argv) {
    synth_dataset d = {0};
    d.opts = (synth_opts){.size = 64, .frames = 24, .hard = 1, .stamp = 0};
    d.kind = SYNTH_KIND_MOTION;
    d.per_class = 4;
    d.pretrain = 72;
    d.splits = (1 << SYNTH_TRAIN) | (1 << SYNTH_VAL) | (1 << SYNTH_TEST);
    d.seed = 1;
    int quiet = 0;
    parse_args(argc, argv, &d, &quiet);
    char why[600];
    if (synth_check_dataset(&d, why, sizeof why)) {
        fprintf(stderr, "synth: %s (see synth --help)\n", why);
        return 2;
    }
    int64_t total = 0;
    for (int s = 0; s < SYNTH_SPLITS; s++) total += synth_split_count(&d, s);
    progress_state p = {now_s(), 0.0, isatty(2), quiet};
    char err[1024];
    if (synth_write_dataset(&d, progress, &p, err, sizeof err)) {
        fprintf(stderr, "%ssynth: error: %s\n", p.tty && !quiet ? "\n" : "", err);
        return 1;
    }
    double dt = now_s() - p.start;
    printf("synth: wrote %lld videos (%s, %dx%d, %d frames, hard %d) to %s in %.1f s (%.1f videos/s)\n",
           (long long)total, d.format == SYNTH_MP4 ? "mp4" : "jpg", d.opts.size, d.opts.size,
           d.opts.frames, d.opts.hard, d.out, dt, total / (dt + 1e-9));
    return 0;
}
