// tests/fuzz/fuzz-video.c: libFuzzer target for the video loader and dataset lists.
//
// The first input byte picks what the rest is fed to:
//   0-3  an encoded video (.mp4 .avi .webm .mkv): vid_open, then frames at several
//        indices in three resize modes
//   4    a frame folder with the bytes as its one JPEG and one PNG image
//   5    a PySlowFast list (ds_load_csv)
//   6    UCF101 split files: bytes up to the first NUL are classInd.txt, the rest
//        trainlist01.txt and testlist01.txt
//   7    an HMDB51 split file (ds_load_hmdb51, train and test)
// Build (needs FFmpeg and stb, as the Makefile finds them):
//   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
//     -D_DEFAULT_SOURCE -DSCVRL_FFMPEG=1 -DSCVRL_STB=1 -I. -Iexamples/common \
//     tests/fuzz/fuzz-video.c examples/common/video.c examples/common/dataset.c \
//     $(pkg-config --cflags --libs libavformat libavcodec libavutil libswscale) -lm -lpthread \
//     -o build/fuzz/fuzz-video
//   build/fuzz/fuzz-video -max_total_time=180 -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
//     build/fuzz/corpus-video tests/fuzz/corpus-video
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "video.h"

static char fz_dir[128];

static void fz_cleanup(void) {
    const char *names[] = {"in.mp4", "in.avi", "in.webm", "in.mkv", "list.txt", "classInd.txt",
                           "trainlist01.txt", "testlist01.txt", "a_test_split1.txt",
                           "frames/1.jpg", "frames/2.png", "frames", "ucf", ""};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir, names[i]);
        remove(p);
    }
}

static const char *fz_path(const char *name) {
    static char p[256];
    if (!fz_dir[0]) {
        snprintf(fz_dir, sizeof fz_dir, "/tmp/scvrl-fuzz-video-XXXXXX");
        if (!mkdtemp(fz_dir)) abort();
        atexit(fz_cleanup);
    }
    snprintf(p, sizeof p, "%s/%s", fz_dir, name);
    return p;
}

static void fz_write(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}

static void fz_read_video(const char *path) {
    char err[512];
    vid_info in;
    vid_reader *v = vid_open(path, &in, err, sizeof err);
    if (!v) return;
    if (in.width <= 0 || in.height <= 0 || in.n_frames <= 0 || !(in.fps > 0)) abort();  // open promises these
    int64_t n = in.n_frames;
    int64_t idx[8] = {0, 1, n / 2, n - 1, n + 5, 3, 1, -4};
    uint8_t out[8 * 24 * 16 * 3];
    vid_read_frames(v, idx, 8, 16, 24, VID_RESIZE_PLAIN, out, err, sizeof err);
    vid_read_frames(v, idx + 2, 4, 24, 16, VID_RESIZE_CROP, out, err, sizeof err);
    vid_read_frames(v, idx + 4, 3, 16, 16, 20, out, err, sizeof err);
    vid_close(v);
}

static void fz_lists(int mode, const uint8_t *d, size_t n) {
    char err[512];
    ds_list l;
    if (mode == 5) {
        fz_write(fz_path("list.txt"), d, n);
        if (ds_load_csv(fz_path("list.txt"), &l, err, sizeof err) == 0) ds_free(&l);
        return;
    }
    if (mode == 6) {
        const uint8_t *z = memchr(d, 0, n);
        size_t k = z ? (size_t)(z - d) : n;
        fz_write(fz_path("classInd.txt"), d, k);
        fz_write(fz_path("trainlist01.txt"), d + (k < n ? k + 1 : n), k < n ? n - k - 1 : 0);
        fz_write(fz_path("testlist01.txt"), d + (k < n ? k + 1 : n), k < n ? n - k - 1 : 0);
        for (int train = 0; train < 2; train++) {
            ds_opts o = {"/videos", 1, train};
            if (ds_load_ucf101(fz_dir, &o, &l, err, sizeof err) == 0) ds_free(&l);
        }
        return;
    }
    fz_write(fz_path("a_test_split1.txt"), d, n);
    for (int train = 0; train < 2; train++) {
        ds_opts o = {NULL, 1, train};
        if (ds_load_hmdb51(fz_dir, &o, &l, err, sizeof err) == 0) ds_free(&l);
    }
    remove(fz_path("a_test_split1.txt"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 8;
    data++;
    size--;
    if (mode < 4) {
        static const char *names[] = {"in.mp4", "in.avi", "in.webm", "in.mkv"};
        fz_write(fz_path(names[mode]), data, size);
        fz_read_video(fz_path(names[mode]));
        remove(fz_path(names[mode]));
    } else if (mode == 4) {
        mkdir(fz_path("frames"), 0755);
        fz_write(fz_path("frames/1.jpg"), data, size);
        fz_write(fz_path("frames/2.png"), data, size);
        fz_read_video(fz_path("frames"));
    } else {
        fz_lists(mode, data, size);
        remove(fz_path("classInd.txt"));
    }
    return 0;
}
