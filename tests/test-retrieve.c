// test-retrieve: examples/retrieve as a subprocess on a constructed index (clips of a few synthetic
// videos): a query clip of video X finds another clip of X first; the index cache is reused; the
// grid PNG has the documented size; a missing query, a non-video file and a too-short video give a
// message naming the file and a non-zero exit; without --index, a synthetic index is generated once
// and reused. Skipped when examples/retrieve is not built.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "scvrl.h"
#include "synth.h"
#include "vwrite.h"
#include "test.h"
#ifdef SCVRL_STB
#include <stb/stb_image.h>
#endif

static const char *bin = "examples/retrieve";
enum { NV = 4, TV = 48, S = 64, CLIP = 16, THUMB = 32, K = 3 };

static int sh(const char *cmd) { int rc = system(cmd); return rc == -1 ? -1 : WEXITSTATUS(rc); }

static int slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) { buf[0] = 0; return -1; }
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
    return 0;
}

// Videos v0..v3 (different appearance and motion), each cut into clips [0,16), [16,32), [32,48)
// listed in index.csv; the query is frames [8, 24) of video 2.
static int make_index(const char *dir, vwrite_format fmt, char *err, size_t errlen) {
    synth_opts o = { S, TV, 1, 0 };
    uint8_t *rgb = (uint8_t *)malloc((size_t)TV * S * S * 3);
    char path[1024], list[1024];
    snprintf(list, sizeof list, "%s/index.csv", dir);
    FILE *f = fopen(list, "w");
    int rc = !rgb || !f ? -1 : 0;
    for (int v = 0; v < NV && !rc; v++) {
        synth_video sv;
        rc = synth_generate(&o, synth_video_seed(99, SYNTH_VAL, v), (5 * v) % SYNTH_MOTION_CLASSES, (5 * v + 2) % SYNTH_APPEARANCE_CLASSES,
                            &sv, rgb, NULL, err, errlen);
        for (int c = 0; c < TV / CLIP && !rc; c++) {
            snprintf(path, sizeof path, "%s/v%d_c%d%s", dir, v, c, vwrite_extension(fmt));
            rc = vwrite_video(fmt, path, rgb + (size_t)c * CLIP * S * S * 3, CLIP, S, S, err, errlen);
            fprintf(f, "v%d_c%d%s %d\n", v, c, vwrite_extension(fmt), v);
        }
        if (!rc && v == 2) {
            snprintf(path, sizeof path, "%s/query%s", dir, vwrite_extension(fmt));
            rc = vwrite_video(fmt, path, rgb + (size_t)8 * S * S * 3, CLIP, S, S, err, errlen);
            snprintf(path, sizeof path, "%s/short%s", dir, vwrite_extension(fmt));
            if (!rc) rc = vwrite_video(fmt, path, rgb, 4, S, S, err, errlen);
        }
    }
    if (f) fclose(f);
    free(rgb);
    return rc;
}

static void test_search(const char *dir, const char *ext) {
    char cmd[4096], out[8192], errs[8192], p[1024];
    snprintf(cmd, sizeof cmd, "%s %s/query%s --index %s/index.csv --k %d --grid %s/grid.png --thumb %d > %s/out.txt 2> %s/err.txt",
             bin, dir, ext, dir, K, dir, THUMB, dir, dir);
    int rc = sh(cmd);
    snprintf(p, sizeof p, "%s/out.txt", dir); slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/err.txt", dir); slurp(p, errs, sizeof errs);
    int lines = 0, rank = 0;
    double sim = 0;
    char first[1024] = "";
    for (char *s = out; *s; s++) lines += *s == '\n';
    sscanf(out, "%d %lf %1023s", &rank, &sim, first);
    char name[1200];
    snprintf(name, sizeof name, "retrieve: a clip of video 2 finds another clip of video 2 first (%s, %.4f); %d neighbours, one per line", first, sim, lines);
    test_check(rc == 0 && rank == 1 && strstr(first, "/v2_c") && lines == K, name, "rc %d, stdout:\n%s\nstderr:\n%s", rc, out, errs);
    test_check(rc == 0 && !strstr(errs, "no trained model"), "retrieve: without --weights the shipped models/scvrl-tiny-synth.safetensors loads",
               "stderr:\n%s", errs);
    snprintf(p, sizeof p, "%s/index.csv.index.safetensors", dir);
    struct stat st;
    test_check(!stat(p, &st) && strstr(errs, "0 cached") && strstr(errs, "12 to embed"), "retrieve: the index is embedded once and cached beside the list",
               "no cache file or wrong counts:\n%s", errs);
    snprintf(cmd, sizeof cmd, "%s %s/query%s --index %s/index.csv --k %d > %s/out2.txt 2> %s/err2.txt", bin, dir, ext, dir, K, dir, dir);
    rc = sh(cmd);
    char out2[8192];
    snprintf(p, sizeof p, "%s/out2.txt", dir); slurp(p, out2, sizeof out2);
    snprintf(p, sizeof p, "%s/err2.txt", dir); slurp(p, errs, sizeof errs);
    test_check(rc == 0 && strstr(errs, "12 cached") && strstr(errs, "0 to embed") && !strcmp(out, out2),
               "retrieve: a second search reads every feature from the cache, same answer", "stderr:\n%s", errs);
#ifdef SCVRL_STB
    int w = 0, h = 0, c = 0;
    snprintf(p, sizeof p, "%s/grid.png", dir);
    unsigned char *img = stbi_load(p, &w, &h, &c, 3);
    int ew = 6 + 28 + 3 * (THUMB + 6) + 140 + 6, eh = 6 + (K + 1) * (THUMB + 6);
    snprintf(name, sizeof name, "retrieve: grid PNG is %dx%d (query + %d rows of first/middle/last frames and a bar)", w, h, K);
    test_check(img && w == ew && h == eh, name, "expected %dx%d", ew, eh);
    stbi_image_free(img);
#else
    test_skip("retrieve: grid PNG size", "built without stb (libstb-dev)");
#endif
}

static void test_errors(const char *dir, const char *ext) {
    char cmd[4096], errs[8192], p[1024];
    snprintf(p, sizeof p, "%s/err3.txt", dir);
    snprintf(cmd, sizeof cmd, "%s %s/no-such-video.mp4 --index %s/index.csv > /dev/null 2> %s", bin, dir, dir, p);
    int rc = sh(cmd);
    slurp(p, errs, sizeof errs);
    test_check(rc != 0 && strstr(errs, "no-such-video.mp4") && strstr(errs, "No such file"), "retrieve: a missing query is named, exit non-zero",
               "rc %d: %s", rc, errs);
    snprintf(cmd, sizeof cmd, "echo 'not a video' > %s/notes.mp4 && %s %s/notes.mp4 --index %s/index.csv > /dev/null 2> %s", dir, bin, dir, dir, p);
    rc = sh(cmd);
    slurp(p, errs, sizeof errs);
    test_check(rc != 0 && strstr(errs, "notes.mp4") && strstr(errs, "cannot read the query"), "retrieve: a file that is not a video is named, exit non-zero",
               "rc %d: %s", rc, errs);
    snprintf(cmd, sizeof cmd, "%s %s/short%s --index %s/index.csv > /dev/null 2> %s", bin, dir, ext, dir, p);
    rc = sh(cmd);
    slurp(p, errs, sizeof errs);
    test_check(rc != 0 && strstr(errs, "short") && strstr(errs, "too short"), "retrieve: a 4-frame query is too short for the model's clips, exit non-zero",
               "rc %d: %s", rc, errs);
    snprintf(cmd, sizeof cmd, "%s --help > /dev/null", bin);
    test_check(sh(cmd) == 0, "retrieve: --help", "non-zero exit");
}

// No --index: a small synthetic index of the default model's kind (36 videos, 112 px) is generated
// once under ./data/retrieve-index-112 of the working directory, searched, and reused.
static void test_default_index(const char *dir, const char *ext) {
    char cmd[4096], out[8192], errs[8192], p[1024], abin[1024];
    if (!realpath(bin, abin)) { test_fail("retrieve: default index", "realpath(%s) failed", bin); return; }
    snprintf(cmd, sizeof cmd, "mkdir -p %s/cwd && cd %s/cwd && %s %s/query%s > out.txt 2> err.txt", dir, dir, abin, dir, ext);
    int rc = sh(cmd), lines = 0, listed = 0;
    snprintf(p, sizeof p, "%s/cwd/out.txt", dir); slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/cwd/err.txt", dir); slurp(p, errs, sizeof errs);
    for (char *s = out; *s; s++) lines += *s == '\n';
    char list[8192];
    snprintf(p, sizeof p, "%s/cwd/data/retrieve-index-112/val.csv", dir);
    if (!slurp(p, list, sizeof list)) for (char *s = list; *s; s++) listed += *s == '\n';
    test_check(rc == 0 && lines == 5 && listed == 36 && strstr(errs, "generating a small synthetic index") && strstr(out, "retrieve-index-112/val/"),
               "retrieve: without --index a 36-video synthetic index is generated once (112 px, the default model's kind) and searched, 5 neighbours",
               "rc %d, %d lines, %d listed\nstdout:\n%s\nstderr:\n%s", rc, lines, listed, out, errs);
    snprintf(cmd, sizeof cmd, "cd %s/cwd && %s %s/query%s > out2.txt 2> err2.txt", dir, abin, dir, ext);
    rc = sh(cmd);
    snprintf(p, sizeof p, "%s/cwd/err2.txt", dir); slurp(p, errs, sizeof errs);
    test_check(rc == 0 && !strstr(errs, "generating") && strstr(errs, "36 cached"), "retrieve: the generated index and its features are reused",
               "rc %d, stderr:\n%s", rc, errs);
}

int main(void) {
    if (access(bin, X_OK)) { test_skip("retrieve", "%s is not built (make examples/retrieve)", bin); return test_done(); }
    vwrite_format fmt = vwrite_available(VWRITE_MP4, NULL, 0) ? VWRITE_MP4 : VWRITE_JPG;
    char err[512];
    if (!vwrite_available(fmt, err, sizeof err)) { test_skip("retrieve", "cannot write videos: %s", err); return test_done(); }
    char dir[] = "/tmp/scvrl-test-retrieve-XXXXXX", cmd[1200];
    if (!mkdtemp(dir)) { test_fail("retrieve", "mkdtemp failed"); return test_done(); }
    if (make_index(dir, fmt, err, sizeof err)) test_fail("retrieve: constructed index", "%s", err);
    else {
        const char *ext = vwrite_extension(fmt);
        test_search(dir, ext);
        test_errors(dir, ext);
        test_default_index(dir, ext);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    return test_done();
}
