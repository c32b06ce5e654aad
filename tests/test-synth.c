// tests/test-synth.c: the CPU tests of ../shared/SYNTH.md section 5 for the
// synthetic benchmark generator (examples/common/synth.c, vwrite.c):
// identical bytes with 1 or 2 threads; class 2k+1 = class 2k reversed (pairs
// 0-6 exact, 7-8 near); matched marginals (KS); the rejection rule; decoded
// PSNR of mp4 (libavcodec) and JPEG (stb_image) with its spread over classes;
// balanced classes; no label in any file name; frame-index stamps.
#include "test.h"

#include "synth.h"
#include "vwrite.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef SCVRL_STB
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

#ifdef SCVRL_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#endif

#ifdef _OPENMP
#define OMP_PRAGMA(x) _Pragma(#x)
#else
#define OMP_PRAGMA(x)
#endif

#define S_TEST 64
#define T_TEST 24

static char g_tmp[256];

// ------------------------------------------------------------ file helpers

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static unsigned char *read_all(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*n > 0 ? (size_t)*n : 1);
    if (buf && fread(buf, 1, (size_t)*n, f) != (size_t)*n) { free(buf); buf = NULL; }
    fclose(f);
    return buf;
}

// Compares every file under a with its twin under b (recursively); returns the
// number of files compared, or -1 (with the first difference in why).
static long same_tree(const char *a, const char *b, char *why, size_t whylen) {
    if (strlen(a) > 400 || strlen(b) > 400) { snprintf(why, whylen, "path too long"); return -1; }
    DIR *d = opendir(a);
    if (!d) { snprintf(why, whylen, "cannot open %s", a); return -1; }
    long files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char pa[512], pb[512];
        snprintf(pa, sizeof pa, "%.400s/%.100s", a, e->d_name);
        snprintf(pb, sizeof pb, "%.400s/%.100s", b, e->d_name);
        struct stat st;
        stat(pa, &st);
        if (S_ISDIR(st.st_mode)) {
            long k = same_tree(pa, pb, why, whylen);
            if (k < 0) { closedir(d); return -1; }
            files += k;
            continue;
        }
        long na = 0, nb = 0;
        unsigned char *ba = read_all(pa, &na), *bb = read_all(pb, &nb);
        int same = ba && bb && na == nb && !memcmp(ba, bb, (size_t)na);
        free(ba);
        free(bb);
        if (!same) { snprintf(why, whylen, "%.250s and %.250s differ", pa, pb); closedir(d); return -1; }
        files++;
    }
    closedir(d);
    return files;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) { double e = (double)a[i] - b[i]; se += e * e; }
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / n));
}

static int have_format(int f) { return vwrite_available((vwrite_format)f, NULL, 0); }

static synth_dataset small_dataset(const char *out, int format) {
    synth_dataset d = {0};
    d.out = out;
    d.opts = (synth_opts){.size = S_TEST, .frames = T_TEST, .hard = 1, .stamp = 0};
    d.kind = SYNTH_KIND_MOTION;
    d.per_class = 1;
    d.pretrain = 6;
    d.splits = 1 << SYNTH_TRAIN;
    d.seed = 12345;
    d.format = format;
    d.threads = 0;
    return d;
}

// ------------------------------------------------------------ determinism

static void test_threads_memory(void) {
    synth_opts o = {S_TEST, T_TEST, 1, 0};
    size_t vb = (size_t)T_TEST * S_TEST * S_TEST * 3;
    enum { N = 8 };
    uint8_t *buf[2];
    for (int r = 0; r < 2; r++) {
        buf[r] = malloc(N * vb);
#ifdef _OPENMP
        omp_set_num_threads(r + 1);
#endif
        OMP_PRAGMA(omp parallel for schedule(dynamic))
        for (int i = 0; i < N; i++) {
            synth_video v;
            char err[256];
            synth_generate(&o, synth_video_seed(99, SYNTH_VAL, i), (i * 5) % 18, (i * 3) % 16, &v,
                           buf[r] + i * vb, NULL, err, sizeof err);
        }
    }
    test_check(!memcmp(buf[0], buf[1], N * vb), "threads_frames_identical",
               "rendered frames differ between 1 and 2 OpenMP threads");
    free(buf[0]);
    free(buf[1]);
}

static void test_threads_files(void) {
    int fmts[2] = {SYNTH_MP4, SYNTH_JPG};
    const char *names[2] = {"threads_mp4_identical", "threads_jpg_identical"};
    for (int k = 0; k < 2; k++) {
        char why[600] = "";
        if (!have_format(fmts[k])) {
            vwrite_available((vwrite_format)fmts[k], why, sizeof why);
            test_skip(names[k], "%s", why);
            continue;
        }
        char a[300], b[300], err[600];
        snprintf(a, sizeof a, "%s/thr%d_1", g_tmp, k);
        snprintf(b, sizeof b, "%s/thr%d_2", g_tmp, k);
        int rc = 0;
        for (int r = 0; r < 2 && !rc; r++) {
#ifdef _OPENMP
            omp_set_num_threads(r + 1);
#endif
            synth_dataset d = small_dataset(r ? b : a, fmts[k]);
            d.dump_states = 1;
            rc = synth_write_dataset(&d, NULL, NULL, err, sizeof err);
        }
        if (rc) { test_fail(names[k], "%s", err); continue; }
        long files = same_tree(a, b, why, sizeof why);
        test_check(files > 0, names[k], "%s", why);
        if (files > 0) printf("#   %ld files identical\n", files);
    }
#ifndef _OPENMP
    test_skip("threads_openmp", "built without OpenMP: only one thread was used");
#endif
}

// ------------------------------------------------------------ reversal

static void test_reversal_exact(void) {
    synth_opts o = {S_TEST, T_TEST, 1, 0};
    size_t fb = (size_t)S_TEST * S_TEST * 3, vb = T_TEST * fb;
    uint8_t *a = malloc(vb), *b = malloc(vb);
    int bad = 0, checked = 0;
    char err[256];
    for (int s = 0; s < 3; s++)
        for (int k = 0; k <= 6; k++) {
            synth_video va, vb_;
            uint64_t seed = synth_video_seed(2024, SYNTH_TEST, s * 7 + k);
            synth_generate(&o, seed, 2 * k, (s * 5 + k) % 16, &va, a, NULL, err, sizeof err);
            synth_generate(&o, seed, 2 * k + 1, (s * 5 + k) % 16, &vb_, b, NULL, err, sizeof err);
            for (int t = 0; t < T_TEST; t++)
                if (memcmp(a + t * fb, b + (T_TEST - 1 - t) * fb, fb)) {
                    if (!bad) printf("#   pair %d seed %d: frame %d differs\n", k, s, t);
                    bad++;
                    break;
                }
            checked++;
        }
    test_check(!bad, "reversal_pairs_0_6_exact", "%d of %d videos are not exact reversals", bad, checked);
    free(a);
    free(b);
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

// Pairs 7 and 8: the window multisets (log-scale for 7, position along the
// axis for 8, each minus its window mean) agree up to a fraction of their range.
static void test_reversal_near(void) {
    synth_opts o = {S_TEST, T_TEST, 1, 0};
    int W = synth_window(T_TEST), t0 = (T_TEST - W) / 2;
    double worst[2] = {0, 0};
    char err[256];
    for (int pair = 7; pair <= 8; pair++)
        for (int s = 0; s < 20; s++) {
            float vals[2][64];
            double range = 0;
            for (int c = 0; c < 2; c++) {
                synth_video v;
                synth_state st[T_TEST];
                synth_sample(&o, synth_video_seed(77, SYNTH_TEST, s), 2 * pair + c, 0, &v, err, sizeof err);
                synth_states(&o, &v, st);
                double mean = 0, ex = cos(v.axis), ey = sin(v.axis);
                for (int t = 0; t < W; t++) {
                    const synth_state *q = &st[t0 + t];
                    vals[c][t] = pair == 7 ? q->log_scale : (float)(q->x * ex + q->y * ey);
                    mean += vals[c][t] / W;
                }
                for (int t = 0; t < W; t++) vals[c][t] -= (float)mean;
                qsort(vals[c], W, sizeof(float), cmp_float);
                range = fmax(range, vals[c][W - 1] - vals[c][0]);
            }
            for (int t = 0; t < W; t++)
                worst[pair - 7] = fmax(worst[pair - 7], fabs(vals[0][t] - vals[1][t]) / range);
        }
    printf("#   worst sorted-multiset difference / range: pair 7 %.3f, pair 8 %.3f\n", worst[0], worst[1]);
    test_check(worst[0] < 0.15 && worst[1] < 0.15, "reversal_pairs_7_8_near",
               "window multisets differ by %.3f / %.3f of their range (want < 0.15)", worst[0], worst[1]);
}

// ------------------------------------------------------------ matched marginals

// Two-sample Kolmogorov-Smirnov statistic (sorts both arrays).
static double ks_stat(float *a, int na, float *b, int nb) {
    qsort(a, na, sizeof(float), cmp_float);
    qsort(b, nb, sizeof(float), cmp_float);
    int i = 0, j = 0;
    double d = 0;
    while (i < na && j < nb) {
        float x = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= x) i++;
        while (j < nb && b[j] <= x) j++;
        d = fmax(d, fabs((double)i / na - (double)j / nb));
    }
    return d;
}

// Asymptotic p-value (Stephens' small-sample correction).
static double ks_p(double d, int na, int nb) {
    double ne = (double)na * nb / (na + nb), l = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * d, s = 0;
    for (int k = 1; k < 100; k++) s += 2.0 * ((k & 1) ? 1 : -1) * exp(-2.0 * k * k * l * l);
    return s < 0 ? 0 : s > 1 ? 1 : s;
}

// One frame per video (a hashed random index, so samples are independent),
// 400 videos per class; each class against all others for x, y, log-scale and
// angle. 72 tests: the family-wise (Bonferroni) p must exceed 0.01. Also checks
// the rejection rule on every video.
static void test_marginals(void) {
    enum { N = 400, C = SYNTH_MOTION_CLASSES, K = 4 };
    synth_opts o = {S_TEST, T_TEST, 1, 0};
    float *val = malloc(sizeof(float) * K * C * N), *a = malloc(sizeof(float) * N),
          *b = malloc(sizeof(float) * C * N);
    int rule_bad = 0;
    char err[256];
    for (int m = 0; m < C; m++)
        for (int i = 0; i < N; i++) {
            synth_video v;
            synth_state st[T_TEST];
            uint64_t seed = synth_video_seed(31337, SYNTH_TRAIN, (int64_t)m * N + i);
            synth_sample(&o, seed, m, (int)(synth_splitmix64(seed) % 16), &v, err, sizeof err);
            synth_states(&o, &v, st);
            int good = 0;
            for (int t = 0; t < T_TEST; t++) good += st[t].visible >= 0.6f;
            rule_bad += 4 * good < 3 * T_TEST;
            int t = (int)(synth_splitmix64(seed ^ 0xF00D) % T_TEST);
            float x[K] = {st[t].x, st[t].y, st[t].log_scale, st[t].angle};
            for (int k = 0; k < K; k++) val[((size_t)k * C + m) * N + i] = x[k];
        }
    test_check(!rule_bad, "rejection_rule", "%d videos break >= 60%% visible in >= 75%% of frames", rule_bad);
    const char *names[K] = {"x", "y", "log_scale", "angle"};
    double minp = 1, maxd = 0;
    int worst_k = 0, worst_m = 0;
    for (int k = 0; k < K; k++)
        for (int m = 0; m < C; m++) {
            int nb = 0;
            memcpy(a, val + ((size_t)k * C + m) * N, sizeof(float) * N);
            for (int c = 0; c < C; c++)
                if (c != m) { memcpy(b + nb, val + ((size_t)k * C + c) * N, sizeof(float) * N); nb += N; }
            double d = ks_stat(a, N, b, nb), p = ks_p(d, N, nb);
            maxd = fmax(maxd, d);
            if (p < minp) { minp = p; worst_k = k; worst_m = m; }
        }
    double fw = fmin(1.0, minp * K * C);
    printf("#   KS, %d videos/class, 1 frame each: max D %.3f, min p %.3g (%s, class %d), family-wise p %.3g\n",
           N, maxd, minp, names[worst_k], worst_m, fw);
    test_check(fw > 0.01, "matched_marginals_ks", "family-wise p %.3g <= 0.01 (%s of class %s)", fw,
               names[worst_k], synth_motion_name(worst_m));
    free(val);
    free(a);
    free(b);
}

// ------------------------------------------------------------ codecs

#ifdef SCVRL_FFMPEG
// Decodes path with libavformat/libavcodec and converts to RGB24 with
// swscale: rgb[max_frames][H][W][3]. Returns the number of frames, or -1.
static int decode_mp4(const char *path, uint8_t *rgb, int max_frames, int H, int W) {
    AVFormatContext *fc = NULL;
    AVCodecContext *cc = NULL;
    const AVCodec *codec = NULL;
    struct SwsContext *sws = NULL;
    AVFrame *fr = av_frame_alloc();
    AVPacket *pk = av_packet_alloc();
    int n = -1, si = -1, eof = 0;
    if (!fr || !pk || avformat_open_input(&fc, path, NULL, NULL) < 0) goto done;
    if (avformat_find_stream_info(fc, NULL) < 0) goto done;
    if ((si = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0) goto done;
    cc = avcodec_alloc_context3(codec);
    if (!cc || avcodec_parameters_to_context(cc, fc->streams[si]->codecpar) < 0) goto done;
    cc->thread_count = 1;
    if (avcodec_open2(cc, codec, NULL) < 0) goto done;
    n = 0;
    while (!eof) {
        if (av_read_frame(fc, pk) < 0) {
            eof = 1;
            avcodec_send_packet(cc, NULL);
        } else {
            if (pk->stream_index == si) avcodec_send_packet(cc, pk);
            av_packet_unref(pk);
        }
        while (avcodec_receive_frame(cc, fr) == 0) {
            if (n < max_frames && fr->width == W && fr->height == H) {
                if (!sws)
                    sws = sws_getContext(W, H, fr->format, W, H, AV_PIX_FMT_RGB24,
                                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
                uint8_t *dst[1] = {rgb + (size_t)n * H * W * 3};
                int ls[1] = {3 * W};
                if (sws) sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, H, dst, ls);
            }
            n++;
        }
    }
done:
    sws_freeContext(sws);
    avcodec_free_context(&cc);
    avformat_close_input(&fc);
    av_frame_free(&fr);
    av_packet_free(&pk);
    return n;
}
#endif

#ifdef SCVRL_STB
// Reads dir/000001.jpg ... into rgb[frames][H][W][3]; returns frames read.
static int read_jpg_folder(const char *dir, uint8_t *rgb, int frames, int H, int W) {
    for (int t = 0; t < frames; t++) {
        char path[700];
        snprintf(path, sizeof path, "%.600s/%06d.jpg", dir, t + 1);
        int w, h, c;
        unsigned char *img = stbi_load(path, &w, &h, &c, 3);
        if (!img || w != W || h != H) { stbi_image_free(img); return t; }
        memcpy(rgb + (size_t)t * H * W * 3, img, (size_t)H * W * 3);
        stbi_image_free(img);
    }
    return frames;
}
#endif

// Encodes v (rgb) as fmt under g_tmp and decodes it back into out; returns
// frames decoded (-1 on error) or -2 when this build lacks the format.
static int round_trip(int fmt, const uint8_t *rgb, uint8_t *out, int T, int S, char *err, size_t errlen) {
    char path[600];
    snprintf(path, sizeof path, "%s/rt%s", g_tmp, fmt == SYNTH_MP4 ? ".mp4" : "");
    if (!have_format(fmt)) return -2;
    if (vwrite_video((vwrite_format)fmt, path, rgb, T, S, S, err, errlen)) return -1;
#ifdef SCVRL_FFMPEG
    if (fmt == SYNTH_MP4) return decode_mp4(path, out, T, S, S);
#endif
#ifdef SCVRL_STB
    if (fmt == SYNTH_JPG) return read_jpg_folder(path, out, T, S, S);
#endif
    (void)out;
    snprintf(err, errlen, "no decoder for format %d in this build", fmt);
    return -1;
}

// Luma (BT.601 Y) PSNR, the figure codecs report.
static double psnr_luma(const uint8_t *a, const uint8_t *b, size_t pixels) {
    double se = 0;
    for (size_t i = 0; i < pixels; i++) {
        double ya = 0.299 * a[3 * i] + 0.587 * a[3 * i + 1] + 0.114 * a[3 * i + 2];
        double yb = 0.299 * b[3 * i] + 0.587 * b[3 * i + 1] + 0.114 * b[3 * i + 2];
        se += (ya - yb) * (ya - yb);
    }
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / pixels));
}

// Decoded vs source PSNR, the mean over 12 scenes per class; the same 12 video
// seeds for every class, so the spread between classes isolates the motion.
// Checked: luma PSNR >= 38 dB, and a spread <= 0.3 dB in luma and in RGB. RGB
// PSNR is reported, not bounded: 4:2:0 (mp4) drops the chroma half of the
// per-channel pixel noise and smears coloured edges at 64 x 64 (about 32 dB
// for mp4, 36-37 dB for JPEG q95 4:4:4, at any speed).
static void test_psnr(int fmt, const char *name, const char *skip_why) {
    enum { SEEDS = 12, C = SYNTH_MOTION_CLASSES };
    synth_opts o = {S_TEST, T_TEST, 1, 0};
    size_t vb = (size_t)T_TEST * S_TEST * S_TEST * 3;
    uint8_t *rgb = malloc(vb), *dec = malloc(vb);
    double lo[2] = {1e9, 1e9}, hi[2] = {-1e9, -1e9}, worst = 1e9;
    char err[600];
    for (int m = 0; m < C; m++) {
        double cls[2] = {0, 0};
        for (int s = 0; s < SEEDS; s++) {
            synth_video v;
            synth_generate(&o, synth_video_seed(555, SYNTH_TEST, s), m, (5 * s) % 16, &v, rgb, NULL, err, sizeof err);
            int n = round_trip(fmt, rgb, dec, T_TEST, S_TEST, err, sizeof err);
            if (n == -2) { test_skip(name, "%s", skip_why); goto out; }
            if (n != T_TEST) { test_fail(name, "round trip gave %d of %d frames: %s", n, T_TEST, n < 0 ? err : ""); goto out; }
            double y = psnr_luma(rgb, dec, vb / 3);
            cls[0] += y / SEEDS;
            cls[1] += psnr(rgb, dec, vb) / SEEDS;
            worst = fmin(worst, y);
        }
        for (int k = 0; k < 2; k++) { lo[k] = fmin(lo[k], cls[k]); hi[k] = fmax(hi[k], cls[k]); }
    }
    printf("#   %s: class-mean luma PSNR %.2f..%.2f dB (spread %.2f, worst video %.2f); RGB %.2f..%.2f (spread %.2f)\n",
           name, lo[0], hi[0], hi[0] - lo[0], worst, lo[1], hi[1], hi[1] - lo[1]);
    test_check(lo[0] >= 38.0 && hi[0] - lo[0] <= 0.3 && hi[1] - lo[1] <= 0.3, name,
               "luma PSNR %.2f..%.2f dB (want >= 38, spread <= 0.3), RGB spread %.2f dB (want <= 0.3)",
               lo[0], hi[0], hi[1] - lo[1]);
out:
    free(rgb);
    free(dec);
}

static void test_codecs(void) {
    char why_mp4[400] = "", why_jpg[400] = "";
    vwrite_available(VWRITE_MP4, why_mp4, sizeof why_mp4);
    vwrite_available(VWRITE_JPG, why_jpg, sizeof why_jpg);
#ifndef SCVRL_FFMPEG
    snprintf(why_mp4, sizeof why_mp4, "built without FFmpeg: cannot encode or decode mp4");
#endif
#ifndef SCVRL_STB
    snprintf(why_jpg, sizeof why_jpg, "built without stb: cannot write or read JPEG");
#endif
    test_psnr(SYNTH_MP4, "psnr_mp4_q2_intra", why_mp4);
    test_psnr(SYNTH_JPG, "psnr_jpg_q95", why_jpg);
}

// The barcode survives raw frames, mp4 q2 and JPEG q95; plain frames give -1.
static void test_stamp(void) {
    synth_opts o = {S_TEST, T_TEST, 2, 1};
    size_t fb = (size_t)S_TEST * S_TEST * 3, vb = T_TEST * fb;
    uint8_t *rgb = malloc(vb), *dec = malloc(vb), *plain = malloc(vb);
    synth_video v;
    char err[600];
    synth_generate(&o, synth_video_seed(8, SYNTH_VAL, 3), 9, 3, &v, rgb, NULL, err, sizeof err);
    o.stamp = 0;
    synth_generate(&o, synth_video_seed(8, SYNTH_VAL, 3), 9, 3, &v, plain, NULL, err, sizeof err);
    int bad = 0, false_pos = 0;
    for (int t = 0; t < T_TEST; t++) {
        bad += synth_read_stamp(rgb + t * fb, S_TEST, S_TEST) != t;
        false_pos += synth_read_stamp(plain + t * fb, S_TEST, S_TEST) != -1;
    }
    test_check(!bad && !false_pos, "stamp_raw", "%d frames misread, %d plain frames read as stamped", bad, false_pos);
    int fmts[2] = {SYNTH_MP4, SYNTH_JPG};
    const char *names[2] = {"stamp_mp4", "stamp_jpg"};
    for (int k = 0; k < 2; k++) {
        int n = round_trip(fmts[k], rgb, dec, T_TEST, S_TEST, err, sizeof err);
        if (n == -2) { test_skip(names[k], "this build cannot write or read %s", k ? "JPEG" : "mp4"); continue; }
        bad = 0;
        for (int t = 0; t < n; t++) bad += synth_read_stamp(dec + t * fb, S_TEST, S_TEST) != t;
        test_check(n == T_TEST && !bad, names[k], "%d frames back, %d misread (%s)", n, bad, n < 0 ? err : "");
    }
    free(rgb);
    free(dec);
    free(plain);
}

// ------------------------------------------------------------ data set lists

#define MAX_ROWS 256

typedef struct {
    int n;
    char path[MAX_ROWS][80];
    int label[MAX_ROWS];
} list_t;

// Reads DIR/name ("path label" or "path" lines); returns rows, -1 if unreadable.
static int read_list(const char *dir, const char *name, list_t *l) {
    char p[600], line[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    l->n = 0;
    while (l->n < MAX_ROWS && fgets(line, sizeof line, f)) {
        l->label[l->n] = -1;
        if (sscanf(line, "%79s %d", l->path[l->n], &l->label[l->n]) >= 1) l->n++;
    }
    fclose(f);
    return l->n;
}

// An opaque name: SPLIT/ + 16 hex digits (+ .mp4), with no class name in it.
static int opaque_name(const char *p) {
    const char *slash = strchr(p, '/');
    if (!slash) return 0;
    size_t n = strlen(slash + 1);
    if (n != 16 && !(n == 20 && !strcmp(slash + 17, ".mp4"))) return 0;
    for (int i = 1; i <= 16; i++)
        if (!strchr("0123456789abcdef", slash[i])) return 0;
    for (int m = 0; m < SYNTH_MOTION_CLASSES; m++)
        if (strstr(p, synth_motion_name(m))) return 0;
    return 1;
}

static void check_split_lists(const char *dir, const char *split, int per_class, int *bad_balance,
                              int *bad_names, int *bad_copy) {
    list_t *mo = malloc(sizeof *mo), *ap = malloc(sizeof *ap), *cp = malloc(sizeof *cp);
    char name[64];
    snprintf(name, sizeof name, "%s_motion.csv", split);
    int n = read_list(dir, name, mo);
    snprintf(name, sizeof name, "%s_appearance.csv", split);
    int na = read_list(dir, name, ap);
    snprintf(name, sizeof name, "%s.csv", split);
    int nc = read_list(dir, name, cp);
    int count[SYNTH_MOTION_CLASSES] = {0}, acount[SYNTH_APPEARANCE_CLASSES] = {0};
    if (n != SYNTH_MOTION_CLASSES * per_class || na != n || nc != n) (*bad_balance)++;
    for (int i = 0; i < n && i < na && i < nc; i++) {
        if (mo->label[i] >= 0 && mo->label[i] < SYNTH_MOTION_CLASSES) count[mo->label[i]]++;
        if (ap->label[i] >= 0 && ap->label[i] < SYNTH_APPEARANCE_CLASSES) acount[ap->label[i]]++;
        *bad_names += !opaque_name(mo->path[i]) || strcmp(mo->path[i], ap->path[i]);
        *bad_copy += strcmp(mo->path[i], cp->path[i]) || mo->label[i] != cp->label[i];
    }
    for (int c = 0; c < SYNTH_MOTION_CLASSES; c++) *bad_balance += count[c] != per_class;
    for (int c = 0; c < SYNTH_APPEARANCE_CLASSES; c++)
        *bad_balance += abs(acount[c] * SYNTH_APPEARANCE_CLASSES - n) >= SYNTH_APPEARANCE_CLASSES;
    free(mo);
    free(ap);
    free(cp);
}

static void test_lists(void) {
    int fmt = have_format(SYNTH_MP4) ? SYNTH_MP4 : have_format(SYNTH_JPG) ? SYNTH_JPG : -1;
    if (fmt < 0) {
        test_skip("lists_balanced", "this build writes neither mp4 (FFmpeg) nor JPEG (stb)");
        return;
    }
    char dir[400], err[600];
    snprintf(dir, sizeof dir, "%s/lists", g_tmp);
    synth_dataset d = small_dataset(dir, fmt);
    d.per_class = 2;
    d.pretrain = 10;
    d.splits = 7;
    d.dump_states = 1;
    if (synth_write_dataset(&d, NULL, NULL, err, sizeof err)) { test_fail("lists_written", "%s", err); return; }
    int bad_balance = 0, bad_names = 0, bad_copy = 0;
    const char *splits[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) check_split_lists(dir, splits[s], 2, &bad_balance, &bad_names, &bad_copy);
    test_check(!bad_balance, "lists_balanced", "%d unbalanced counts in the split lists", bad_balance);
    test_check(!bad_copy, "lists_train_csv_is_kind", "%d rows of train/val/test.csv differ from *_motion.csv", bad_copy);
    list_t *l = malloc(sizeof *l);
    int np = read_list(dir, "pretrain.csv", l), unlabelled = 1;
    for (int i = 0; i < np; i++) unlabelled &= l->label[i] == -1 && opaque_name(l->path[i]);
    test_check(np == 10 && unlabelled, "lists_pretrain", "pretrain.csv: %d rows (want 10 unlabelled)", np);
    int nm = read_list(dir, "meta.csv", l), ns = read_list(dir, "states.csv", l);
    test_check(nm == 1 + 18 * 2 * 3 + 10 && ns == MAX_ROWS, "lists_meta_states",
               "meta.csv has %d lines (want %d), states.csv %d", nm, 1 + 18 * 2 * 3 + 10, ns);
    // Names come from (seed, split, index) only: the appearance kind renames nothing.
    char dir2[400];
    snprintf(dir2, sizeof dir2, "%s/lists_app", g_tmp);
    synth_dataset d2 = small_dataset(dir2, fmt);
    d2.kind = SYNTH_KIND_APPEARANCE;
    d2.pretrain = 0;
    d2.seed = d.seed;
    list_t *l2 = malloc(sizeof *l2);
    int n1 = read_list(dir, "train.csv", l);
    int rc = synth_write_dataset(&d2, NULL, NULL, err, sizeof err);
    int n2 = rc ? -1 : read_list(dir2, "train.csv", l2), same = n2 == 16, balanced = 1;
    int count[16] = {0};
    for (int i = 0; i < n2 && i < n1; i++) {
        same &= !strcmp(l->path[i], l2->path[i]);
        if (l2->label[i] >= 0 && l2->label[i] < 16) count[l2->label[i]]++;
    }
    for (int c = 0; c < 16; c++) balanced &= count[c] == 1;
    test_check(!bad_names && same, "no_label_in_names",
               "%d bad names; names %s between kinds (%s)", bad_names, same ? "same" : "differ", rc ? err : "");
    test_check(balanced, "lists_appearance_kind", "appearance train.csv is not one video per class");
    free(l);
    free(l2);
}

// ------------------------------------------------------------ errors

static void test_errors(void) {
    char err[600] = "";
    synth_opts o = {8, T_TEST, 1, 0};
    synth_video v;
    int rc = synth_sample(&o, 1, 0, 0, &v, err, sizeof err);
    test_check(rc == -1 && strstr(err, "size"), "error_bad_size", "rc %d, message '%s'", rc, err);
    synth_dataset d = small_dataset("/tmp/unused", SYNTH_JPG);
    d.classes = 19;
    rc = synth_write_dataset(&d, NULL, NULL, err, sizeof err);
    test_check(rc == -1 && strstr(err, "--classes"), "error_bad_classes", "rc %d, message '%s'", rc, err);
    uint8_t frame[16 * 16 * 3] = {0};
    const char *bad = "/proc/no-such-dir/clip.mp4";
    rc = vwrite_video(VWRITE_MP4, bad, frame, 1, 16, 16, err, sizeof err);
    test_check(rc == -1 && strstr(err, bad), "error_names_file", "rc %d, message '%s'", rc, err);
#ifndef SCVRL_FFMPEG
    test_check(rc == -1 && strstr(err, "FFmpeg") && strstr(err, "--format jpg"), "error_mp4_needs_ffmpeg",
               "message '%s'", err);
#endif
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test-synth-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        test_fail("tmpdir", "cannot create %s: %s", g_tmp, strerror(errno));
        return test_done();
    }
    test_threads_memory();
    test_threads_files();
    test_reversal_exact();
    test_reversal_near();
    test_marginals();
    test_codecs();
    test_stamp();
    test_lists();
    test_errors();
    rm_tree(g_tmp);
    return test_done();
}
