// tests/test-video.c: video decoding and frame folders (examples/common/video.h).
//
// The test makes its own inputs in a temporary folder: videos written with FFmpeg's
// encoders (H.264 with B-frames in MP4, MPEG-4 part 2 in AVI, VP9 in WebM when this
// libavcodec has it, a variable-frame-rate MP4) and JPEG/PNG frame folders written
// with stb_image_write. Every frame carries its index as a barcode (12 bits, 16x16 px
// black/white blocks), so a read frame tells which frame it is.
//
// SCVRL_VIDEO_BENCH=1 also times decoding against `ffmpeg -threads 1 -i F -f null -`.
#include "test.h"
#include "video.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef SCVRL_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#endif

#ifdef SCVRL_STB
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

// ---- barcoded frames -----------------------------------------------------------------

#define FW 160  // test frame width
#define FH 120  // test frame height
#define BITS 12
#define BLK 16                  // barcode block size (px)
#define BX0 ((FW - 6 * BLK) / 2)  // barcode: 2 rows x 6 columns of blocks, centred
#define BY0 ((FH - 2 * BLK) / 2)

static char tmpdir[256];

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int bit_of(int b, int x, int y) {  // block (x, y) holds bit b?
    return (y - BY0) / BLK * 6 + (x - BX0) / BLK == b;
}

// Luma of frame k at (x, y): barcode of k in the centre, a moving gradient around it.
static int frame_luma(int k, int x, int y) {
    if (x >= BX0 && x < BX0 + 6 * BLK && y >= BY0 && y < BY0 + 2 * BLK) {
        int b = (y - BY0) / BLK * 6 + (x - BX0) / BLK;
        (void)bit_of;
        return (k >> (BITS - 1 - b)) & 1 ? 255 : 0;
    }
    return 64 + ((x * 2 + y + k * 3) & 127);
}

// RGB frame k: uint8 [FH][FW][3]; a red patch in the top-left corner.
static void frame_rgb(int k, uint8_t *rgb) {
    for (int y = 0; y < FH; y++)
        for (int x = 0; x < FW; x++) {
            uint8_t *p = rgb + ((size_t)y * FW + x) * 3;
            int l = frame_luma(k, x, y);
            int red = x < 16 && y < 16;
            p[0] = red ? 255 : (uint8_t)l;
            p[1] = red ? 0 : (uint8_t)l;
            p[2] = red ? 0 : (uint8_t)l;
        }
}

// Where a resize mode puts source pixels: output = (src - r0) * scale.
typedef struct geom { double x0, y0, sx, sy; } geom;

static geom geom_of(int oh, int ow, int mode) {
    geom g = {0, 0, (double)ow / FW, (double)oh / FH};
    if (mode < 0) return g;
    double s = mode > 0 ? (double)mode / (FW < FH ? FW : FH) : 0;
    double cover = fmax((double)ow / FW, (double)oh / FH);
    if (s < cover) s = cover;
    g.sx = g.sy = s;
    g.x0 = (FW - ow / s) / 2;
    g.y0 = (FH - oh / s) / 2;
    return g;
}

// Reads the barcode of an RGB image [oh][ow][3] made with geometry g (-1: unreadable).
static int read_code(const uint8_t *img, int oh, int ow, geom g) {
    int k = 0;
    for (int b = 0; b < BITS; b++) {
        double cx = BX0 + (b % 6) * BLK + BLK / 2.0, cy = BY0 + (b / 6) * BLK + BLK / 2.0;
        int ox = (int)((cx - g.x0) * g.sx), oy = (int)((cy - g.y0) * g.sy);
        if (ox < 1 || oy < 1 || ox >= ow - 1 || oy >= oh - 1) return -1;
        int sum = 0;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) sum += img[((size_t)(oy + dy) * ow + ox + dx) * 3 + 1];
        sum /= 9;
        if (sum > 80 && sum < 176) return -1;  // neither black nor white
        k = k * 2 + (sum >= 128);
    }
    return k;
}

static int has_substr(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { remove(dir); return; }
    char p[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(p);
        else remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

// ---- checks shared by videos and folders --------------------------------------------

// Expected frame for index i: CFR frames clamp to the last one; VFR (pts != NULL,
// seconds from the first frame) take the last frame shown at (i + 0.5) / fps. Sets
// *alt to a second acceptable answer when the time falls on a frame boundary.
static int expected_frame(int64_t i, int n, const double *pts, double fps, int *alt) {
    *alt = -1;
    if (!pts) return (int)(i < n ? i : n - 1);
    double T = (i + 0.5) / fps;
    int k = 0;
    while (k + 1 < n && pts[k + 1] <= T) k++;
    if (k + 1 < n && fabs(pts[k + 1] - T) < 1e-6) *alt = k + 1;
    if (fabs(pts[k] - T) < 1e-6 && k > 0) *alt = k - 1;
    return k;
}

// Reads 16x4 clips at several starts, native size, and checks each frame's barcode.
static void check_clips(const char *name, vid_reader *v, int n_true, const double *pts) {
    vid_info in = vid_get_info(v);
    int64_t n = in.n_frames;
    int64_t starts[] = {0, 5, 37, n / 2, n - 64, n - 61, n - 20, n - 1, 3};
    uint8_t *buf = malloc((size_t)16 * in.height * in.width * 3);
    char err[512], what[128];
    int bad = 0, checked = 0;
    for (size_t s = 0; s < sizeof starts / sizeof *starts && !bad; s++) {
        int64_t idx[16];
        vid_clip_indices(n, starts[s] < 0 ? 0 : starts[s], 16, 4, idx);
        int r = vid_read_frames(v, idx, 16, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err);
        if (r != 0) { test_fail(name, "clip at %lld: vid_read_frames = %d: %s", (long long)starts[s], r, err); free(buf); return; }
        for (int t = 0; t < 16 && !bad; t++) {
            int alt, want = expected_frame(idx[t], n_true, pts, in.fps, &alt);
            int got = read_code(buf + (size_t)t * in.height * in.width * 3, in.height, in.width, geom_of(FH, FW, -1));
            checked++;
            if (got != want && got != alt) {
                snprintf(what, sizeof what, "clip start %lld frame %d: index %lld decoded as frame %d, want %d",
                         (long long)starts[s], t, (long long)idx[t], got, want);
                bad = 1;
            }
        }
    }
    // Then every frame once, in chunks of 10, front to back.
    for (int64_t s = 0; s < n && !bad; s += 10) {
        int64_t idx[10];
        for (int t = 0; t < 10; t++) idx[t] = s + t;
        int r = vid_read_frames(v, idx, 10, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err);
        if (r != 0) { test_fail(name, "frames %lld..: vid_read_frames = %d: %s", (long long)s, r, err); free(buf); return; }
        for (int t = 0; t < 10 && !bad; t++) {
            int alt, want = expected_frame(idx[t], n_true, pts, in.fps, &alt);
            int got = read_code(buf + (size_t)t * in.height * in.width * 3, in.height, in.width, geom_of(FH, FW, -1));
            checked++;
            if (got != want && got != alt) {
                snprintf(what, sizeof what, "sequential read: index %lld decoded as frame %d, want %d", (long long)idx[t], got, want);
                bad = 1;
            }
        }
    }
    free(buf);
    if (bad) test_fail(name, "%s", what);
    else test_ok(name);
    (void)checked;
}

// Arbitrary order with duplicates and an index past the end: output keeps the order.
static void check_order(const char *name, vid_reader *v, int n_true) {
    vid_info in = vid_get_info(v);
    int64_t idx[7] = {40, 3, 40, 17, 0, 999999, n_true / 2};
    int want[7] = {40, 3, 40, 17, 0, n_true - 1, n_true / 2};
    size_t fsz = (size_t)in.height * in.width * 3;
    uint8_t *buf = malloc(7 * fsz);
    char err[512];
    int r = vid_read_frames(v, idx, 7, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err);
    int ok = r == 0, t = 0, got = 0;
    for (; ok && t < 7; t++) {
        got = read_code(buf + t * fsz, in.height, in.width, geom_of(FH, FW, -1));
        ok = got == want[t];
    }
    if (r) test_fail(name, "vid_read_frames = %d: %s", r, err);
    else test_check(ok, name, "output %d: frame %d, want %d", t - 1, got, want[t - 1]);
    free(buf);
}

// Resize modes: centre crops (cover and short side 128) and a plain resize.
static void check_modes(const char *name, vid_reader *v) {
    struct { int oh, ow, mode; } m[] = {{112, 112, VID_RESIZE_CROP}, {96, 112, 128}, {64, 96, VID_RESIZE_PLAIN},
                                        {112, 144, VID_RESIZE_CROP}, {240, 320, VID_RESIZE_PLAIN}};
    int64_t idx[3] = {9, 2, 30};
    char err[512];
    for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
        size_t fsz = (size_t)m[k].oh * m[k].ow * 3;
        uint8_t *buf = malloc(3 * fsz);
        int r = vid_read_frames(v, idx, 3, m[k].oh, m[k].ow, m[k].mode, buf, err, sizeof err);
        geom g = geom_of(m[k].oh, m[k].ow, m[k].mode);
        for (int t = 0; t < 3 && r == 0; t++) {
            int got = read_code(buf + t * fsz, m[k].oh, m[k].ow, g);
            if (got != idx[t]) {
                test_fail(name, "mode %d %dx%d: frame %lld read as %d", m[k].mode, m[k].ow, m[k].oh,
                          (long long)idx[t], got);
                free(buf);
                return;
            }
        }
        free(buf);
        if (r) { test_fail(name, "mode %d: %s", m[k].mode, err); return; }
    }
    test_ok(name);
}

// The red patch stays red (channel order and colour conversion).
static void check_colour(const char *name, vid_reader *v) {
    vid_info in = vid_get_info(v);
    uint8_t *buf = malloc((size_t)in.height * in.width * 3);
    int64_t i = 1;
    char err[512];
    int r = vid_read_frames(v, &i, 1, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err);
    const uint8_t *p = buf + ((size_t)6 * in.width + 6) * 3;
    test_check(r == 0 && p[0] > 200 && p[1] < 60 && p[2] < 60, name, "pixel (6,6) = %d %d %d, want red (r = %d %s)",
               p[0], p[1], p[2], r, err);
    free(buf);
}

// ---- encoding test videos with FFmpeg ---------------------------------------------------
#ifdef SCVRL_FFMPEG

typedef struct enc_spec {
    const char *file, *codec;  // output name in tmpdir, encoder name
    int n;                     // frames
    AVRational tb, rate;       // encoder time base, nominal frame rate
    const int64_t *pts;        // pts per frame in tb (NULL: start_pts + k)
    int64_t start_pts;
    int bframes, gop, faststart;
} enc_spec;

// YUV 4:2:0 frame k (the barcode in luma; chroma grey but for the red patch).
static void fill_yuv(AVFrame *f, int k) {
    for (int y = 0; y < FH; y++)
        for (int x = 0; x < FW; x++) {
            int red = x < 16 && y < 16, l = frame_luma(k, x, y);
            f->data[0][y * f->linesize[0] + x] = (uint8_t)(red ? 81 : 16 + l * 219 / 255);
        }
    for (int y = 0; y < FH / 2; y++)
        for (int x = 0; x < FW / 2; x++) {
            int red = x < 8 && y < 8;
            f->data[1][y * f->linesize[1] + x] = red ? 90 : 128;
            f->data[2][y * f->linesize[2] + x] = red ? 240 : 128;
        }
}

static int enc_drain(AVFormatContext *oc, AVCodecContext *c, AVStream *st, AVFrame *f) {
    int r = avcodec_send_frame(c, f);
    if (r < 0) return r;
    AVPacket *pkt = av_packet_alloc();
    while ((r = avcodec_receive_packet(c, pkt)) == 0) {
        av_packet_rescale_ts(pkt, c->time_base, st->time_base);
        pkt->stream_index = st->index;
        if ((r = av_interleaved_write_frame(oc, pkt)) < 0) break;
    }
    av_packet_free(&pkt);
    return r == AVERROR(EAGAIN) || r == AVERROR_EOF ? 0 : r;
}

// Opens the encoder of spec; -2 when this libavcodec lacks it.
static int enc_open(const enc_spec *sp, AVFormatContext *oc, AVCodecContext **pc, AVStream **pst) {
    const AVCodec *codec = avcodec_find_encoder_by_name(sp->codec);
    if (!codec) return -2;
    AVStream *st = avformat_new_stream(oc, NULL);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    c->width = FW;
    c->height = FH;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = sp->tb;
    c->framerate = sp->rate;
    c->gop_size = sp->gop;
    c->max_b_frames = sp->bframes;
    c->thread_count = 1;
    if (!strcmp(sp->codec, "libx264")) {
        av_opt_set(c->priv_data, "preset", "veryfast", 0);
        av_opt_set(c->priv_data, "crf", "20", 0);
    } else if (!strcmp(sp->codec, "libvpx-vp9")) {
        av_opt_set(c->priv_data, "deadline", "realtime", 0);
        av_opt_set(c->priv_data, "cpu-used", "8", 0);
        c->bit_rate = 400000;
    } else {
        c->bit_rate = 800000;
    }
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, codec, NULL);
    if (r >= 0) r = avcodec_parameters_from_context(st->codecpar, c);
    st->time_base = sp->tb;
    st->avg_frame_rate = sp->rate;
    *pc = c;
    *pst = st;
    return r < 0 ? -1 : 0;
}

// Writes the barcoded video of spec. Returns 0, -2 (encoder missing) or -1.
static int enc_video(const enc_spec *sp, char *path, size_t pathlen) {
    path_in(path, pathlen, sp->file);
    AVFormatContext *oc = NULL;
    AVCodecContext *c = NULL;
    AVStream *st = NULL;
    if (avformat_alloc_output_context2(&oc, NULL, NULL, path) < 0) return -1;
    int r = enc_open(sp, oc, &c, &st);
    AVDictionary *mo = NULL;
    if (sp->faststart) av_dict_set(&mo, "movflags", "+faststart", 0);
    if (r == 0 && avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0) r = -1;
    if (r == 0 && avformat_write_header(oc, &mo) < 0) r = -1;
    av_dict_free(&mo);
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = FW;
    f->height = FH;
    for (int k = 0; r == 0 && k < sp->n; k++) {
        if (av_frame_make_writable(f) < 0 && av_frame_get_buffer(f, 0) < 0) { r = -1; break; }
        fill_yuv(f, k);
        f->pts = sp->pts ? sp->pts[k] : sp->start_pts + k;
        r = enc_drain(oc, c, st, f) < 0 ? -1 : 0;
    }
    if (r == 0) r = enc_drain(oc, c, st, NULL) < 0 || av_write_trailer(oc) < 0 ? -1 : 0;
    av_frame_free(&f);
    avcodec_free_context(&c);
    if (oc->pb) avio_closep(&oc->pb);
    avformat_free_context(oc);
    return r;
}

static void test_encoded(const char *label, const enc_spec *sp, const double *pts_s) {
    char path[512], name[160], err[512];
    double t0 = now_s();
    int r = enc_video(sp, path, sizeof path);
    snprintf(name, sizeof name, "%s: encode", label);
    if (r == -2) { test_skip(name, "this libavcodec has no %s encoder", sp->codec); return; }
    if (r) { test_fail(name, "could not write %s with %s", path, sp->codec); return; }
    test_ok(name);
    vid_info in;
    vid_reader *v = vid_open(path, &in, err, sizeof err);
    snprintf(name, sizeof name, "%s: open and info", label);
    if (!v) { test_fail(name, "%s", err); return; }
    double fps = av_q2d(sp->rate);
    test_check(in.width == FW && in.height == FH && fabs(in.fps - fps) < 0.02 * fps &&
                   llabs(in.n_frames - sp->n) <= 2 && !in.is_folder,
               name, "%dx%d fps %.3f n %lld (want %dx%d fps %.3f n %d)", in.width, in.height, in.fps,
               (long long)in.n_frames, FW, FH, fps, sp->n);
    snprintf(name, sizeof name, "%s: 16x4 clips decode the requested frames", label);
    check_clips(name, v, sp->n, pts_s);
    if (!pts_s) {
        snprintf(name, sizeof name, "%s: caller's order, duplicates, past the end", label);
        check_order(name, v, sp->n);
        snprintf(name, sizeof name, "%s: resize modes", label);
        check_modes(name, v);
    }
    snprintf(name, sizeof name, "%s: colour", label);
    check_colour(name, v);
    vid_close(v);
    printf("# %s: %.2f s\n", label, now_s() - t0);
}

// A fresh reader asked for a clip near the end seeks instead of decoding from the start.
static void test_seek_cost(const char *path, int n) {
    char err[512];
    vid_info in;
    vid_reader *v = vid_open(path, &in, err, sizeof err);
    if (!v) { test_fail("seek: open", "%s", err); return; }
    int64_t idx[16];
    vid_clip_indices(in.n_frames, n - 70, 16, 4, idx);
    uint8_t *buf = malloc((size_t)16 * FH * FW * 3);
    int r = vid_read_frames(v, idx, 16, 32, 32, VID_RESIZE_PLAIN, buf, err, sizeof err);
    vid_stats st = vid_get_stats(v);
    test_check(r == 0 && st.seeks >= 1 && st.frames_decoded < n * 3 / 4, "seek: a clip near the end does not decode from the start",
               "r %d, %lld seeks, %lld of %d frames decoded", r, (long long)st.seeks, (long long)st.frames_decoded, n);
    // Reading forward in small steps reuses the decoder position (no seek).
    int64_t s0 = st.seeks, j = 10;
    r = vid_read_frames(v, &j, 1, 32, 32, VID_RESIZE_PLAIN, buf, err, sizeof err);
    st = vid_get_stats(v);
    int64_t s1 = st.seeks;
    for (j = 11; j < 20 && r == 0; j++) r = vid_read_frames(v, &j, 1, 32, 32, VID_RESIZE_PLAIN, buf, err, sizeof err);
    st = vid_get_stats(v);
    test_check(r == 0 && s1 == s0 + 1 && st.seeks == s1, "seek: forward steps decode on without seeking",
               "r %d, seeks %lld -> %lld -> %lld", r, (long long)s0, (long long)s1, (long long)st.seeks);
    free(buf);
    vid_close(v);
}
#endif  // SCVRL_FFMPEG

// Opening `path` fails (or reading it reports damage) with the file's name in the message.
static void expect_damaged(const char *name, const char *path) {
    char err[512] = "";
    vid_info in;
    vid_reader *v = vid_open(path, &in, err, sizeof err);
    if (!v) {
        test_check(has_substr(err, base_name(path)), name, "message does not name the file: %s", err);
        return;
    }
    // It opened: every frame must still come back (repeats reported), or an error.
    int n = (int)(in.n_frames < 400 ? in.n_frames : 400);
    int64_t *idx = malloc(sizeof(int64_t) * (n + 1));
    for (int i = 0; i <= n; i++) idx[i] = i;
    uint8_t *buf = malloc((size_t)(n + 1) * 32 * 32 * 3);
    int r = vid_read_frames(v, idx, n + 1, 32, 32, VID_RESIZE_PLAIN, buf, err, sizeof err);
    test_check(r == 0 || has_substr(err, base_name(path)), name, "read = %d, message does not name the file: %s", r, err);
    if (r) printf("# %s: %s\n", name, err);
    free(idx);
    free(buf);
    vid_close(v);
}

static void test_damaged(void) {
    char p[512];
    path_in(p, sizeof p, "missing.mp4");
    expect_damaged("damaged: missing path", p);
    path_in(p, sizeof p, "empty.mp4");
    write_bytes(p, "", 0);
    expect_damaged("damaged: zero-byte file", p);
    uint8_t junk[20000];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) { s = s * 1664525u + 1013904223u; junk[i] = (uint8_t)(s >> 24); }
    path_in(p, sizeof p, "random.mp4");
    write_bytes(p, junk, sizeof junk);
    expect_damaged("damaged: random bytes", p);
    const char *text = "this is a text file, not a video\n";
    path_in(p, sizeof p, "notes.avi");
    write_bytes(p, text, strlen(text));
    expect_damaged("damaged: text file", p);
#ifndef SCVRL_FFMPEG
    char err[512];
    vid_info in;
    vid_reader *v = vid_open(p, &in, err, sizeof err);
    test_check(!v && has_substr(err, "FFmpeg") && has_substr(err, "make deps"), "no FFmpeg: the message says how to get it", "%s", err);
    vid_close(v);
#endif
}

#ifdef SCVRL_FFMPEG
// Copies the first `keep` bytes of src to dst; optionally scrambles a middle run.
static int copy_damaged(const char *src, const char *dst, double keep, int scramble) {
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    if (scramble)
        for (long i = n / 2; i < n / 2 + 3000 && i < n; i++) b[i] = (uint8_t)(i * 7919 >> 3);
    int r = got == (size_t)n ? write_bytes(dst, b, (size_t)(n * keep)) : -1;
    free(b);
    return r;
}

static void test_damaged_videos(const char *mp4, const char *mp4_fast, const char *avi) {
    char p[512];
    path_in(p, sizeof p, "cut.mp4");
    if (!copy_damaged(mp4, p, 0.5, 0)) expect_damaged("damaged: mp4 cut at 50%", p);
    path_in(p, sizeof p, "cut-faststart.mp4");
    if (!copy_damaged(mp4_fast, p, 0.5, 0)) expect_damaged("damaged: faststart mp4 cut at 50%", p);
    path_in(p, sizeof p, "scrambled.mp4");
    if (!copy_damaged(mp4_fast, p, 1.0, 1)) expect_damaged("damaged: mp4 with broken packets", p);
    path_in(p, sizeof p, "cut.avi");
    if (!copy_damaged(avi, p, 0.5, 0)) expect_damaged("damaged: avi cut at 50%", p);
    path_in(p, sizeof p, "scrambled.avi");
    if (!copy_damaged(avi, p, 1.0, 1)) expect_damaged("damaged: avi with broken packets", p);
}

static void test_videos(void) {
    char mp4[512], mp4f[512], avi[512];
    enc_spec h264 = {"h264.mp4", "libx264", 120, {1, 90000}, {30000, 1001}, NULL, 0, 3, 12, 0};
    // 90 kHz time base at 29.97 fps: pts are multiples of 3003; the stream starts at 0.5 s.
    static int64_t pts90[120];
    for (int k = 0; k < 120; k++) pts90[k] = 45000 + (int64_t)k * 3003;
    h264.pts = pts90;
    test_encoded("h264 mp4 (B-frames, 90 kHz, start 0.5 s)", &h264, NULL);
    path_in(mp4, sizeof mp4, h264.file);
    enc_spec fast = h264;
    fast.file = "h264-faststart.mp4";
    fast.faststart = 1;
    enc_video(&fast, mp4f, sizeof mp4f);
    enc_spec m4 = {"mpeg4.avi", "mpeg4", 100, {1, 25}, {25, 1}, NULL, 0, 0, 10, 0};
    test_encoded("mpeg4 avi", &m4, NULL);
    path_in(avi, sizeof avi, m4.file);
    enc_spec vp9 = {"vp9.webm", "libvpx-vp9", 90, {1, 1000}, {30, 1}, NULL, 0, 0, 15, 0};
    static int64_t ptsw[90];
    for (int k = 0; k < 90; k++) ptsw[k] = 2000 + (k * 1000 + 15) / 30;  // starts at 2 s, ms rounding
    vp9.pts = ptsw;
    test_encoded("vp9 webm (start 2 s)", &vp9, NULL);
    // Variable frame rate: durations cycle 20, 33, 67, 40, 100 ms.
    static int64_t ptsv[150];
    static double ptsv_s[150];
    const int dur[5] = {20, 33, 67, 40, 100};
    for (int k = 0; k < 150; k++) {
        ptsv[k] = k ? ptsv[k - 1] + dur[k % 5] : 0;
        ptsv_s[k] = ptsv[k] / 1000.0;
    }
    double avg = 149 / ptsv_s[149];
    enc_spec vfr = {"vfr.mp4", "libx264", 150, {1, 1000}, {(int)llround(avg * 1000), 1000}, ptsv, 0, 2, 30, 0};
    test_encoded("h264 mp4 variable frame rate", &vfr, ptsv_s);
    test_seek_cost(mp4, 120);
    test_damaged_videos(mp4, mp4f, avi);
}
#endif  // SCVRL_FFMPEG

// ---- frame folders -------------------------------------------------------------------
#ifdef SCVRL_STB
// stb_image_write's JPEG encoder shifts signed ints past their range, which the
// sanitizer build (SANITIZE=1) aborts on: there JPEG frames come from FFmpeg's MJPEG
// encoder (or, without FFmpeg, the JPEG folder test is skipped).
#if defined(__SANITIZE_ADDRESS__)
#define JPEG_BY_STB 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JPEG_BY_STB 0
#endif
#endif
#ifndef JPEG_BY_STB
#define JPEG_BY_STB 1
#endif

#ifdef SCVRL_FFMPEG
// RGB [FH][FW][3] -> JPEG file through libavcodec's MJPEG encoder (full-range BT.601).
static int write_jpeg_ff(const char *path, const uint8_t *rgb) {
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *c = codec ? avcodec_alloc_context3(codec) : NULL;
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int r = -1;
    if (!c || !f || !pkt) goto done;
    c->width = f->width = FW;
    c->height = f->height = FH;
    c->pix_fmt = f->format = AV_PIX_FMT_YUVJ420P;
    c->time_base = (AVRational){1, 25};
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 2;
    if (avcodec_open2(c, codec, NULL) < 0 || av_frame_get_buffer(f, 0) < 0) goto done;
    for (int y = 0; y < FH; y++)
        for (int x = 0; x < FW; x++) {
            const uint8_t *p = rgb + ((size_t)y * FW + x) * 3;
            f->data[0][y * f->linesize[0] + x] = (uint8_t)lrint(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]);
            if (x % 2 || y % 2) continue;
            double u = 128 - 0.168736 * p[0] - 0.331264 * p[1] + 0.5 * p[2];
            double v = 128 + 0.5 * p[0] - 0.418688 * p[1] - 0.081312 * p[2];
            f->data[1][y / 2 * f->linesize[1] + x / 2] = (uint8_t)fmin(255, fmax(0, lrint(u)));
            f->data[2][y / 2 * f->linesize[2] + x / 2] = (uint8_t)fmin(255, fmax(0, lrint(v)));
        }
    f->pts = 0;
    if (avcodec_send_frame(c, f) < 0 || avcodec_send_frame(c, NULL) < 0 || avcodec_receive_packet(c, pkt) < 0) goto done;
    r = write_bytes(path, pkt->data, (size_t)pkt->size);
done:
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
    return r;
}
#endif

// Writes n barcoded frames frame_1 ... frame_n (not zero-padded) as PNG or JPEG.
static int write_folder(const char *dir, int n, int png) {
    mkdir(dir, 0755);
    uint8_t *rgb = malloc((size_t)FH * FW * 3);
    char p[600];
    int r = 0;
    for (int k = 0; k < n && r == 0; k++) {
        frame_rgb(k, rgb);
        snprintf(p, sizeof p, "%s/frame_%d.%s", dir, k + 1, png ? "png" : "jpg");
        if (png) r = !stbi_write_png(p, FW, FH, 3, rgb, FW * 3);
        else if (JPEG_BY_STB) r = !stbi_write_jpg(p, FW, FH, 3, rgb, 95);
        else {
#ifdef SCVRL_FFMPEG
            r = write_jpeg_ff(p, rgb);
#else
            r = -2;
#endif
        }
    }
    free(rgb);
    return r;
}

static void test_folders(void) {
    char jdir[512], pdir[512], edir[512], err[512], p[600];
    path_in(jdir, sizeof jdir, "frames-jpg");
    path_in(pdir, sizeof pdir, "frames-png");
    int wj = write_folder(jdir, 70, 0);
    const char *ext = wj == -2 ? "png" : "jpg";
    if (wj == -2) {
        test_skip("folder jpg", "sanitizer build without FFmpeg: stb_image_write's JPEG encoder trips UBSan");
        wj = write_folder(jdir, 70, 1);  // the same checks on PNG frames
    }
    if (wj || write_folder(pdir, 20, 1)) { test_fail("folder: write frames", "could not write frames in %s", tmpdir); return; }
    vid_info in;
    vid_reader *v = vid_open(jdir, &in, err, sizeof err);
    if (!v) { test_fail("folder: open", "%s", err); return; }
    test_check(in.n_frames == 70 && in.n_frames_exact && in.fps == 30 && in.width == FW && in.height == FH &&
                   in.is_folder && fabs(in.duration - 70 / 30.0) < 1e-9,
               "folder: info (70 frames, 30 fps default)", "n %lld fps %g %dx%d", (long long)in.n_frames, in.fps, in.width, in.height);
    check_clips("folder jpg: 16x4 clips (natural name order)", v, 70, NULL);
    check_order("folder jpg: caller's order, duplicates, past the end", v, 70);
    check_modes("folder jpg: resize modes", v);
    check_colour("folder jpg: colour", v);
    vid_close(v);
    vid_opts o = {25.0, 1};
    v = vid_open_ex(pdir, &o, &in, err, sizeof err);
    test_check(v && in.fps == 25 && in.n_frames == 20 && !strcmp(in.codec, "png"), "folder png: opens with fps 25", "%s", err);
    if (v) check_clips("folder png: 16x4 clips (short folder clamps)", v, 20, NULL);
    vid_close(v);
    // A damaged image repeats its neighbour with a warning that names the folder.
    snprintf(p, sizeof p, "%s/frame_8.%s", jdir, ext);
    write_bytes(p, "not a jpeg", 10);
    v = vid_open(jdir, &in, err, sizeof err);
    int64_t idx[4] = {6, 7, 8, 7};
    uint8_t *buf = malloc((size_t)4 * FH * FW * 3);
    int r = v ? vid_read_frames(v, idx, 4, 0, 0, VID_RESIZE_NATIVE, buf, err, sizeof err) : -1;
    int c1 = r > 0 ? read_code(buf + (size_t)FH * FW * 3, FH, FW, geom_of(FH, FW, -1)) : -9;
    test_check(r == 2 && c1 == 6 && has_substr(err, "frame_8."), "folder: damaged image repeats a neighbour, with a warning",
               "r %d, frame %d, message: %s", r, c1, err);
    vid_close(v);
    free(buf);
    // A JPEG whose Huffman table declares 16 x 255 codes (stb_image 2.27 would write past
    // its tables): refused with the file named.
    char hdir[512];
    path_in(hdir, sizeof hdir, "bad-huffman");
    mkdir(hdir, 0755);
    // (stb also takes 0xFF fill bytes before the start-of-image marker.)
    uint8_t jpg[2 + 2 + 4 + 17 + 2] = {0xFF, 0xFF, 0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    memset(jpg + 9, 0xFF, 16);
    jpg[25] = 0xFF;
    jpg[26] = 0xD9;
    snprintf(p, sizeof p, "%s/0001.jpg", hdir);
    write_bytes(p, jpg, sizeof jpg);
    v = vid_open(hdir, &in, err, sizeof err);
    test_check(!v && has_substr(err, "0001.jpg") && has_substr(err, "Huffman"), "folder: a JPEG with an oversized Huffman table is refused",
               "%s", v ? "opened" : err);
    vid_close(v);
    path_in(edir, sizeof edir, "empty-folder");
    mkdir(edir, 0755);
    v = vid_open(edir, &in, err, sizeof err);
    test_check(!v && has_substr(err, "empty-folder"), "folder: empty folder is an error naming it", "%s", err);
    vid_close(v);
}
#endif

// ---- helpers without any decoder -----------------------------------------------------
static void test_helpers(void) {
    int64_t idx[16];
    int c = vid_clip_indices(50, 0, 16, 4, idx);
    test_check(c == 3 && idx[0] == 0 && idx[12] == 48 && idx[13] == 49 && idx[15] == 49, "clip indices clamp at the end",
               "clamped %d, idx[12..15] = %lld %lld %lld %lld", c, (long long)idx[12], (long long)idx[13], (long long)idx[14], (long long)idx[15]);
    c = vid_clip_indices(100, -7, 4, 2, idx);
    test_check(c == 0 && idx[0] == 0 && idx[3] == 6, "clip indices: negative start reads from 0", "idx %lld..%lld", (long long)idx[0], (long long)idx[3]);
    uint8_t in[2 * 2 * 3 * 3];  // [T=2][H=2][W=3][3]
    for (int i = 0; i < (int)sizeof in; i++) in[i] = (uint8_t)(i * 7);
    float out[sizeof in];
    vid_to_float(in, 2, 2, 3, out);
    double maxerr = 0;
    for (int t = 0; t < 2; t++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                for (int ch = 0; ch < 3; ch++) {
                    double want = (in[((t * 2 + y) * 3 + x) * 3 + ch] / 255.0 - 0.45) / 0.225;
                    maxerr = fmax(maxerr, fabs(out[((ch * 2 + t) * 2 + y) * 3 + x] - want));
                }
    test_check(maxerr < 1e-5, "to_float: [T][H][W][3] -> [3][T][H][W], mean 0.45 std 0.225", "max error %g", maxerr);
    uint8_t src[4 * 8 * 3], dst[2 * 4 * 3];  // 8x4 -> 4x2 area average
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++)
            for (int ch = 0; ch < 3; ch++) src[(y * 8 + x) * 3 + ch] = (uint8_t)(x % 2 ? 200 : 100);
    vid_resize_rgb(src, 4, 8, dst, 2, 4, VID_RESIZE_PLAIN);
    test_check(dst[0] == 150 && dst[sizeof dst - 1] == 150, "resize: shrinking averages areas", "got %d %d", dst[0], dst[sizeof dst - 1]);
}

#ifdef SCVRL_FFMPEG
// SCVRL_VIDEO_BENCH=1: our single-thread decode vs the ffmpeg CLI on a 640x360 video.
static void bench(void) {
    if (!getenv("SCVRL_VIDEO_BENCH")) return;
    char path[512], cmd[1200], err[512];
    printf("# bench: encoding 640x360 h264 (x264 fast, 3 B-frames) ...\n");
    path_in(path, sizeof path, "bench.mp4");
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 -t 10 -c:v libx264 "
             "-preset fast -bf 3 -g 60 -pix_fmt yuv420p %s", path);
    if (system(cmd) != 0) { printf("# bench: ffmpeg CLI unavailable\n"); return; }
    // CPU seconds (user + system; the machine may be busy, so wall time is not used):
    // ffmpeg -benchmark prints "bench: utime=...s stime=...s rtime=...s" for its decoding.
    double cli = 1e30, ours[3] = {1e30, 1e30, 1e30};
    const int modes[][3] = {{0, 0, VID_RESIZE_NATIVE}, {224, 224, 256}, {112, 112, VID_RESIZE_CROP}};
    int64_t n = 0;
    for (int rep = 0; rep < 3; rep++) {
        snprintf(cmd, sizeof cmd, "ffmpeg -benchmark -threads 1 -i %s -f null - 2>&1", path);
        FILE *pf = popen(cmd, "r");
        char line[512];
        double ut = 0, st = 0;
        while (pf && fgets(line, sizeof line, pf)) {
            char *u = strstr(line, "utime="), *sy = strstr(line, "stime=");
            if (u) ut = atof(u + 6);
            if (sy) st = atof(sy + 6);
        }
        if (pf) pclose(pf);
        if (ut > 0 && ut + st < cli) cli = ut + st;
        for (int m = 0; m < 3; m++) {
            vid_info in;
            vid_reader *v = vid_open(path, &in, err, sizeof err);
            if (!v) { printf("# bench: %s\n", err); return; }
            int oh = modes[m][0] ? modes[m][0] : in.height, ow = modes[m][1] ? modes[m][1] : in.width;
            uint8_t *buf = malloc((size_t)16 * oh * ow * 3);
            int64_t idx[16];
            double c0 = cpu_s();
            for (int64_t s = 0; s < in.n_frames; s += 16) {
                for (int k = 0; k < 16; k++) idx[k] = s + k;
                vid_read_frames(v, idx, 16, modes[m][0], modes[m][1], modes[m][2], buf, err, sizeof err);
            }
            double c = cpu_s() - c0;
            if (c < ours[m]) ours[m] = c;
            n = vid_get_stats(v).frames_decoded;
            free(buf);
            vid_close(v);
        }
    }
    if (cli >= 1e30) { printf("# bench: no timing from the ffmpeg CLI\n"); return; }
    printf("# bench: ffmpeg -threads 1 -i F -f null -: %.0f frames/s (CPU, best of 3)\n", n / cli);
    for (int m = 0; m < 3; m++)
        printf("# bench: vid_read_frames, all %lld frames to RGB %s: %.0f frames/s (CPU, best of 3): ratio %.2f\n",
               (long long)n, m == 0 ? "640x360 native" : m == 1 ? "short side 256, crop 224" : "crop 112",
               n / ours[m], cli / ours[m]);
}
#endif

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/scvrl-test-video-XXXXXX");
    if (!mkdtemp(tmpdir)) { test_fail("setup", "cannot make a temporary folder"); return test_done(); }
    double t0 = now_s();
#ifdef SCVRL_FFMPEG
    av_log_set_level(AV_LOG_ERROR);  // quiet encoders (the reader counts decoder errors itself)
#endif
    test_helpers();
#ifdef SCVRL_FFMPEG
    test_videos();
    bench();
#else
    test_skip("encoded videos (h264 mp4, mpeg4 avi, vp9 webm, vfr mp4, damaged files)", "built without FFmpeg");
#endif
    test_damaged();
#ifdef SCVRL_STB
    test_folders();
#else
    char err[512];
    vid_info in;
    vid_reader *v = vid_open(tmpdir, &in, err, sizeof err);
    test_check(!v && has_substr(err, "stb"), "no stb: a folder gives an error that says how to get stb", "%s", err);
    vid_close(v);
    test_skip("frame folders", "built without stb_image (libstb-dev)");
#endif
    printf("# total %.1f s\n", now_s() - t0);
    if (!getenv("SCVRL_TEST_KEEP")) remove_tree(tmpdir);
    else printf("# kept %s\n", tmpdir);
    return test_done();
}
