// examples/common/video.c: see video.h. Three parts: shared helpers (index order,
// geometry, the C resizer), frame folders (stb_image), encoded videos (FFmpeg).
#include "video.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef SCVRL_STB
// Only the decoders frame folders use: stb picks the decoder by content, and the
// others (BMP, GIF, PSD, HDR, ...) would widen what a damaged file can reach.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_MAX_DIMENSIONS (1 << 15)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#if defined(__clang__)  // stb_image 2.27 overflows ints (harmlessly) on corrupt JPEGs
#pragma clang attribute push(__attribute__((no_sanitize("signed-integer-overflow", "shift"))), apply_to = function)
#endif
#include <stb/stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

#ifdef SCVRL_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <pthread.h>
#endif

#define VID__MAX_PIXELS ((int64_t)1 << 28)  // larger frames are refused (damaged headers)

#ifdef SCVRL_FFMPEG
typedef struct vid__ff {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVStream *st;
    int si;                    // video stream index
    AVPacket *pkt;
    int pkt_pending;           // pkt holds a packet the decoder refused with EAGAIN
    AVFrame *fa, *fb;          // a: candidate frame (time ta), b: the next one (tb)
    int have_a, have_b;
    double ta, tb;
    int64_t errs_a, errs_b;    // decode_errors when a / b was decoded
    int eof, eof_clean;        // decoder drained; the demuxer said end of file
    int64_t pts0;              // timestamp of the first frame (stream time base)
    int64_t last_dts;          // dts of the last packet sent to the decoder
    int64_t key_delay;         // largest pts - dts of a keyframe packet (B-frame delay)
    double dead_from;          // a seek to this time or later found no frame near it
    double last_t;             // time of the last decoded frame (NOPTS fallback)
    int64_t n_header;          // frame count the container claims (0: none)
    struct SwsContext *sws;    // (cropped) frame -> RGB24
    struct SwsContext *sws_mid;  // YUV 4:2:0 crop -> YUV 4:2:0 at the output size
    uint8_t *mid[4];           // that scaled YUV frame
    int mid_ls[4], mid_w, mid_h, mid_fmt;
    const void *sws_key;       // sws as configured for (range, colorspace)
    int sws_range, sws_space;
    uint8_t *tmp;              // RGB scratch for pixel formats swscale cannot crop
    size_t tmp_cap;
} vid__ff;
#endif

struct vid_reader {
    vid_info info;
    vid_stats stats;
    char *path;
    char **files;              // frame folder: image paths in natural order
#ifdef SCVRL_FFMPEG
    vid__ff ff;
#endif
};

static void vid__err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *vid__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

// ---------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------

int vid_clip_indices(int64_t n_frames_total, int64_t start, int T, int stride,
                     int64_t *idx) {
    int clamped = 0;
    int64_t last = n_frames_total > 0 ? n_frames_total - 1 : 0;
    if (start < 0) start = 0;
    for (int t = 0; t < T; t++) {
        int64_t i = start + (int64_t)t * stride;
        if (i > last) { i = last; clamped++; }
        if (i < 0) i = 0;
        idx[t] = i;
    }
    return clamped;
}

void vid_to_float(const uint8_t *in, int T, int H, int W, float *out) {
    const int64_t plane = (int64_t)T * H * W;  // out: [3][T][H][W]
    const float scale = 1.0f / (255.0f * VID_STD), bias = -VID_MEAN / VID_STD;
    for (int64_t p = 0; p < plane; p++) {
        const uint8_t *px = in + p * 3;  // in: [T][H][W][3]
        out[p] = px[0] * scale + bias;
        out[plane + p] = px[1] * scale + bias;
        out[2 * plane + p] = px[2] * scale + bias;
    }
}

// A wanted frame: its index (clamped) and where it goes in the output.
typedef struct vid__req {
    int64_t idx;
    int pos;
} vid__req;

static int vid__req_cmp(const void *a, const void *b) {
    const vid__req *x = a, *y = b;
    if (x->idx != y->idx) return x->idx < y->idx ? -1 : 1;
    return x->pos - y->pos;
}

// reqs [n] sorted by index; indices clamped to [0, last] (last < 0: no upper clamp).
static vid__req *vid__sorted(const int64_t *idx, int n, int64_t last) {
    vid__req *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) return NULL;
    for (int k = 0; k < n; k++) {
        int64_t i = idx[k] < 0 ? 0 : idx[k];
        if (last >= 0 && i > last) i = last;
        r[k].idx = i;
        r[k].pos = k;
    }
    qsort(r, (size_t)n, sizeof *r, vid__req_cmp);
    return r;
}

// The source rectangle (in source pixels, fractional) that a resize mode maps onto
// the dh x dw output.
typedef struct vid__rect {
    double x0, y0, w, h;
} vid__rect;

static vid__rect vid__src_rect(int sw, int sh, int dh, int dw, int mode) {
    vid__rect r = {0, 0, sw, sh};
    if (mode < 0 || dh <= 0 || dw <= 0) return r;  // plain or native
    double s = mode > 0 ? (double)mode / (sw < sh ? sw : sh) : 0.0;
    double cover = fmax((double)dw / sw, (double)dh / sh);
    if (s < cover) s = cover;
    r.w = fmin(dw / s, (double)sw);
    r.h = fmin(dh / s, (double)sh);
    r.x0 = (sw - r.w) / 2;
    r.y0 = (sh - r.h) / 2;
    return r;
}

// Resampling weights along one axis: output o reads src[first[o] + k] * w[o*taps + k]
// for k < count[o]. Bilinear when enlarging, area (box) average when shrinking.
typedef struct vid__axis {
    int *first, *count;
    float *w;
    int taps;
} vid__axis;

static void vid__axis_free(vid__axis *a) {
    free(a->first);
    free(a->count);
    free(a->w);
}

static int vid__axis_make(vid__axis *a, int n_out, int n_src, double x0, double len) {
    double scale = len / n_out;  // source pixels per output pixel
    a->taps = scale > 1 ? (int)ceil(scale) + 2 : 2;
    a->first = malloc((size_t)n_out * sizeof(int));
    a->count = malloc((size_t)n_out * sizeof(int));
    a->w = calloc((size_t)n_out * a->taps, sizeof(float));
    if (!a->first || !a->count || !a->w) { vid__axis_free(a); return -1; }
    for (int o = 0; o < n_out; o++) {
        float *w = a->w + (size_t)o * a->taps;
        if (scale <= 1) {
            double c = x0 + (o + 0.5) * scale - 0.5;
            int i0 = (int)floor(c);
            double f = c - i0;
            if (i0 < 0) { i0 = 0; f = 0; }
            if (i0 >= n_src - 1) { i0 = n_src - 1; f = 0; }
            a->first[o] = i0;
            a->count[o] = f > 0 ? 2 : 1;
            w[0] = (float)(1 - f);
            w[1] = (float)f;
            continue;
        }
        double lo = x0 + o * scale, hi = lo + scale, sum = 0;
        int i0 = (int)floor(lo), i1 = (int)ceil(hi);
        if (i0 < 0) i0 = 0;
        if (i1 > n_src) i1 = n_src;
        if (i1 <= i0) i1 = i0 + 1;
        if (i1 - i0 > a->taps) i1 = i0 + a->taps;
        for (int i = i0; i < i1; i++) {
            double ov = fmin(hi, i + 1.0) - fmax(lo, (double)i);
            w[i - i0] = (float)(ov > 0 ? ov : 0);
            sum += w[i - i0];
        }
        for (int i = 0; i < i1 - i0; i++) w[i] = sum > 0 ? (float)(w[i] / sum) : 1.0f / (i1 - i0);
        a->first[o] = i0;
        a->count[o] = i1 - i0;
    }
    return 0;
}

// Resizes the source rectangle r of src [sh][sw][3] onto dst [dh][dw][3].
static int vid__resize_rect(const uint8_t *src, int sh, int sw, vid__rect r, uint8_t *dst,
                            int dh, int dw) {
    vid__axis ax = {0}, ay = {0};
    if (vid__axis_make(&ax, dw, sw, r.x0, r.w) || vid__axis_make(&ay, dh, sh, r.y0, r.h)) {
        vid__axis_free(&ax);
        return -1;
    }
    int y_lo = ay.first[0], y_hi = ay.first[dh - 1] + ay.count[dh - 1];  // rows used
    float *tmp = malloc((size_t)(y_hi - y_lo) * dw * 3 * sizeof(float));  // [rows][dw][3]
    if (!tmp) { vid__axis_free(&ax); vid__axis_free(&ay); return -1; }
    for (int y = y_lo; y < y_hi; y++) {  // horizontal pass
        const uint8_t *row = src + (size_t)y * sw * 3;
        float *t = tmp + (size_t)(y - y_lo) * dw * 3;
        for (int o = 0; o < dw; o++) {
            const float *w = ax.w + (size_t)o * ax.taps;
            const uint8_t *p = row + (size_t)ax.first[o] * 3;
            float c0 = 0, c1 = 0, c2 = 0;
            for (int k = 0; k < ax.count[o]; k++, p += 3) {
                c0 += w[k] * p[0]; c1 += w[k] * p[1]; c2 += w[k] * p[2];
            }
            t[o * 3] = c0; t[o * 3 + 1] = c1; t[o * 3 + 2] = c2;
        }
    }
    for (int o = 0; o < dh; o++) {  // vertical pass
        const float *w = ay.w + (size_t)o * ay.taps;
        uint8_t *d = dst + (size_t)o * dw * 3;
        for (int x = 0; x < dw * 3; x++) {
            float c = 0;
            for (int k = 0; k < ay.count[o]; k++)
                c += w[k] * tmp[(size_t)(ay.first[o] + k - y_lo) * dw * 3 + x];
            c = c + 0.5f;
            d[x] = (uint8_t)(c < 0 ? 0 : c > 255 ? 255 : c);
        }
    }
    free(tmp);
    vid__axis_free(&ax);
    vid__axis_free(&ay);
    return 0;
}

int vid_resize_rgb(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw,
                   int mode) {
    if (mode == VID_RESIZE_NATIVE) mode = VID_RESIZE_PLAIN;
    if (mode == VID_RESIZE_PLAIN && sh == dh && sw == dw) {
        memcpy(dst, src, (size_t)sh * sw * 3);
        return 0;
    }
    return vid__resize_rect(src, sh, sw, vid__src_rect(sw, sh, dh, dw, mode), dst, dh, dw);
}

// Output size for a read: native mode takes the reader's frame size.
static int vid__out_size(const vid_reader *v, int *oh, int *ow, int *mode, char *err,
                         size_t errlen) {
    if (*mode == VID_RESIZE_NATIVE || (*oh == 0 && *ow == 0)) {
        if ((*oh && *oh != v->info.height) || (*ow && *ow != v->info.width)) {
            vid__err(err, errlen, "%s: VID_RESIZE_NATIVE reads %dx%d frames but %dx%d was asked: "
                     "pass out_h = out_w = 0, or use VID_RESIZE_PLAIN", v->path,
                     v->info.width, v->info.height, *ow, *oh);
            return -1;
        }
        *oh = v->info.height;
        *ow = v->info.width;
        *mode = VID_RESIZE_PLAIN;
        return 0;
    }
    if (*oh <= 0 || *ow <= 0 || (int64_t)*oh * *ow > VID__MAX_PIXELS) {
        vid__err(err, errlen, "%s: bad output size %dx%d: pass out_h, out_w > 0 (or 0, 0 with "
                 "VID_RESIZE_NATIVE)", v->path, *ow, *oh);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------
// Frame folders
// ---------------------------------------------------------------------------------
#ifdef SCVRL_STB

static int vid__is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    char ext[8] = {0};
    for (int i = 0; i < 7 && dot[1 + i]; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

// Natural order: runs of digits compare by value, so frame2 < frame10.
static int vid__natcmp(const char *a, const char *b) {
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t na = 0, nb = 0;
            while (isdigit((unsigned char)a[na])) na++;
            while (isdigit((unsigned char)b[nb])) nb++;
            if (na != nb) return na < nb ? -1 : 1;
            int c = strncmp(a, b, na);
            if (c) return c;
            a += na;
            b += nb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int vid__natcmp_q(const void *a, const void *b) {
    int c = vid__natcmp(*(char *const *)a, *(char *const *)b);
    return c ? c : strcmp(*(char *const *)a, *(char *const *)b);
}

// Lists the images of folder `dir` into v->files (full paths, natural order).
static int vid__list_folder(vid_reader *v, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        vid__err(err, errlen, "%s: cannot open the frame folder (%s): check the path and its "
                 "permissions", dir, strerror(errno));
        return -1;
    }
    size_t n = 0, cap = 0, dl = strlen(dir);
    char **files = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        if (!vid__is_image_name(e->d_name)) continue;
        if (n == cap) {
            char **nf = realloc(files, (cap = cap ? cap * 2 : 256) * sizeof *nf);
            if (!nf) break;
            files = nf;
        }
        size_t len = dl + strlen(e->d_name) + 2;
        if (!(files[n] = malloc(len))) break;
        snprintf(files[n++], len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
    }
    closedir(d);
    v->files = files;
    v->info.n_frames = (int64_t)n;
    if (n) qsort(files, n, sizeof *files, vid__natcmp_q);
    if (!n) {
        vid__err(err, errlen, "%s: the folder holds no .jpg/.jpeg/.png frames: a frame folder "
                 "holds one image per frame (e.g. 000001.jpg); give a video file or such a "
                 "folder", dir);
        return -1;
    }
    return 0;
}

// Checks the Huffman tables (DHT segments) of a JPEG: stb_image 2.27 writes past its
// tables when a DHT declares more than 256 codes. stb reads anything that is not a PNG
// as a JPEG (fill bytes before SOI included), so every non-PNG file is scanned.
// Returns 1 when the tables are sane.
static int vid__jpeg_tables_ok(const uint8_t *b, size_t n) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 8 && !memcmp(b, png_sig, 8)) return 1;
    size_t i = 0;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) { i++; continue; }  // entropy-coded data between markers
        uint8_t m = b[i + 1];
        if (m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD8) || m == 0x01) { i++; continue; }
        if (m == 0xD9) break;
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3], end = i + 2 + len;
        if (len < 2) return 0;
        if (m == 0xC4) {
            for (size_t t = i + 4; t < end && t < n;) {
                size_t codes = 0;
                for (size_t k = 1; k <= 16 && t + k < n; k++) codes += b[t + k];
                if (codes > 256) return 0;
                t += 17 + codes;
            }
        }
        i = end;
    }
    return 1;
}

// Reads an image file into memory (NULL with the reason in err).
static uint8_t *vid__read_image_file(const char *path, int *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (f && n > 0 && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    if (!buf) {
        vid__err(err, errlen, "%s: cannot read the image (%s)", path,
                 !f ? strerror(errno) : n == 0 ? "empty file" : "read error or too large");
        return NULL;
    }
    if (!vid__jpeg_tables_ok(buf, (size_t)n)) {
        vid__err(err, errlen, "%s: corrupt JPEG (bad Huffman table)", path);
        free(buf);
        return NULL;
    }
    *len = (int)n;
    return buf;
}

// Loads an image as RGB: uint8 [*h][*w][3], NULL with the reason in err.
static uint8_t *vid__load_image(const char *path, int *w, int *h, char *err, size_t errlen) {
    int len, c;
    uint8_t *buf = vid__read_image_file(path, &len, err, errlen), *img = NULL;
    if (!buf) return NULL;
    if (!stbi_info_from_memory(buf, len, w, h, &c))
        vid__err(err, errlen, "%s: not a readable JPEG/PNG image (%s)", path, stbi_failure_reason());
    else if ((int64_t)*w * *h > VID__MAX_PIXELS)
        vid__err(err, errlen, "%s: image of %dx%d is too large", path, *w, *h);
    else if (!(img = stbi_load_from_memory(buf, len, w, h, &c, 3)))
        vid__err(err, errlen, "%s: cannot decode the image (%s)", path, stbi_failure_reason());
    free(buf);
    return img;
}

// Width and height of an image file (0 with the reason in err when unreadable).
static int vid__image_info(const char *path, int *w, int *h, char *err, size_t errlen) {
    int len, c, ok = 0;
    uint8_t *buf = vid__read_image_file(path, &len, err, errlen);
    if (buf && !(ok = stbi_info_from_memory(buf, len, w, h, &c)))
        vid__err(err, errlen, "%s: not a readable JPEG/PNG image (%s)", path, stbi_failure_reason());
    free(buf);
    return ok;
}
#endif

static int vid__open_folder(vid_reader *v, const char *dir, double fps, char *err,
                            size_t errlen) {
#ifndef SCVRL_STB
    (void)v; (void)fps;
    vid__err(err, errlen, "%s: frame folders need stb_image, and this build has none: install "
             "it (`make deps`, Debian's libstb-dev, or STB_INCLUDE=folder) and rebuild", dir);
    return -1;
#else
    if (vid__list_folder(v, dir, err, errlen)) return -1;
    int w = 0, h = 0;
    char why[400];
    if (!vid__image_info(v->files[0], &w, &h, why, sizeof why)) {
        vid__err(err, errlen, "%s: replace or delete the file", why);
        return -1;
    }
    if ((int64_t)w * h > VID__MAX_PIXELS) {
        vid__err(err, errlen, "%s: image of %dx%d is too large: resize the frames", v->files[0], w, h);
        return -1;
    }
    const char *dot = strrchr(v->files[0], '.');
    int png = dot && tolower((unsigned char)dot[1]) == 'p';
    snprintf(v->info.codec, sizeof v->info.codec, "%s", png ? "png" : "jpeg");
    v->info.width = w;
    v->info.height = h;
    v->info.fps = fps;
    v->info.n_frames_exact = 1;
    v->info.duration = (double)v->info.n_frames / fps;
    v->info.is_folder = 1;
    return 0;
#endif
}

#ifdef SCVRL_STB
// Loads frame file i and resizes it into dst [oh][ow][3]. Returns 0, or -1 (damaged
// image: reason in err), or -2 (out of memory).
static int vid__folder_frame(vid_reader *v, int64_t i, int oh, int ow, int mode,
                             uint8_t *dst, char *err, size_t errlen) {
    int w, h;
    uint8_t *img = vid__load_image(v->files[i], &w, &h, err, errlen);  // [h][w][3]
    v->stats.frames_decoded++;
    if (!img) return -1;
    int r = vid_resize_rgb(img, h, w, dst, oh, ow, mode);
    stbi_image_free(img);
    return r ? -2 : 0;
}

// Reads sorted requests; a damaged image repeats the nearest good frame before it
// (after it, for a damaged start). Returns the number of repeated output frames.
static int vid__folder_read(vid_reader *v, const vid__req *rq, int n, int oh, int ow,
                            int mode, uint8_t *out, char *err, size_t errlen) {
    size_t fsz = (size_t)oh * ow * 3;
    int bad = 0, last_good = -1;
    char why[512] = "";
    unsigned char *ok = calloc((size_t)n + 1, 1);  // ok[k]: request k holds its frame
    if (!ok) { vid__err(err, errlen, "%s: out of memory", v->path); return -1; }
    for (int k = 0; k < n; k++) {
        uint8_t *dst = out + fsz * rq[k].pos;
        if (k > 0 && rq[k].idx == rq[k - 1].idx) {
            if (ok[k - 1]) memcpy(dst, out + fsz * rq[k - 1].pos, fsz);
            ok[k] = ok[k - 1];
        } else {
            int r = vid__folder_frame(v, rq[k].idx, oh, ow, mode, dst, why, sizeof why);
            if (r == -2) {
                vid__err(err, errlen, "%s: out of memory resizing a frame to %dx%d",
                         v->files[rq[k].idx], ow, oh);
                free(ok);
                return -1;
            }
            ok[k] = r == 0;
            if (r) v->stats.decode_errors++;
        }
        if (ok[k]) last_good = k;
        else if (last_good >= 0) memcpy(dst, out + fsz * rq[last_good].pos, fsz);
        bad += !ok[k];
    }
    int first_good = 0;
    while (first_good < n && !ok[first_good]) first_good++;
    free(ok);
    if (bad && first_good == n) {
        vid__err(err, errlen, "%s: no requested frame could be read (%s): replace the damaged "
                 "images or remove the folder from the list", v->path, why);
        return -1;
    }
    for (int k = 0; k < first_good; k++)  // damaged start: repeat the first good frame
        memcpy(out + fsz * rq[k].pos, out + fsz * rq[first_good].pos, fsz);
    if (bad) {
        v->stats.repeated += bad;
        vid__err(err, errlen, "%s: %d of %d frames repeat a neighbouring frame because images "
                 "are damaged (%s): replace those images", v->path, bad, n, why);
    }
    return bad;
}
#endif

// ---------------------------------------------------------------------------------
// Encoded videos (FFmpeg)
// ---------------------------------------------------------------------------------
#ifdef SCVRL_FFMPEG

#define VID__MAX_IDLE_PACKETS 4096   // video packets in a row that yield no frame: give up
#define VID__MAX_LOOP (1L << 24)     // bound on any decode loop

// FFmpeg's log goes through this callback: errors are counted per thread (decoding
// runs on the caller's thread with threads = 1) and the last one kept for messages;
// nothing is printed unless SCVRL_AV_LOG is set in the environment.
static _Thread_local int64_t vid__tl_errors;
static _Thread_local char vid__tl_msg[160];
static int vid__log_verbose;
static pthread_once_t vid__once = PTHREAD_ONCE_INIT;

static void vid__log_cb(void *avcl, int level, const char *fmt, va_list vl) {
    if (vid__log_verbose) {
        va_list cp;
        va_copy(cp, vl);
        av_log_default_callback(avcl, level, fmt, cp);
        va_end(cp);
    }
    if (level > AV_LOG_ERROR) return;
    vid__tl_errors++;
    vsnprintf(vid__tl_msg, sizeof vid__tl_msg, fmt, vl);
    size_t n = strlen(vid__tl_msg);
    while (n && (vid__tl_msg[n - 1] == '\n' || vid__tl_msg[n - 1] == ' ')) vid__tl_msg[--n] = 0;
}

static void vid__ff_init(void) {
    vid__log_verbose = getenv("SCVRL_AV_LOG") != NULL;
    av_log_set_callback(vid__log_cb);
}

static const char *vid__averr(int code, char *buf) {
    av_strerror(code, buf, AV_ERROR_MAX_STRING_SIZE);
    return buf;
}

static void vid__ff_close(vid__ff *s) {
    av_frame_free(&s->fa);
    av_frame_free(&s->fb);
    av_packet_free(&s->pkt);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fmt);
    sws_freeContext(s->sws);
    sws_freeContext(s->sws_mid);
    av_freep(&s->mid[0]);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

static double vid__ff_frame_time(vid_reader *v, const AVFrame *f) {
    vid__ff *s = &v->ff;
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = f->pts;
    if (ts == AV_NOPTS_VALUE) return s->last_t + 1.0 / v->info.fps;
    return (double)(ts - s->pts0) * av_q2d(s->st->time_base);
}

// Sends the next video packet to the decoder (or the end-of-stream flush). Returns 0,
// or 1 when the demuxer has nothing more.
static int vid__ff_feed(vid_reader *v) {
    vid__ff *s = &v->ff;
    char e[AV_ERROR_MAX_STRING_SIZE];
    if (!s->pkt_pending) {
        for (long again = 0;; again++) {
            int r = av_read_frame(s->fmt, s->pkt);
            if (r == AVERROR(EAGAIN) && again < 1000) continue;
            if (r < 0) {
                if (r != AVERROR_EOF) {
                    v->stats.decode_errors++;
                    snprintf(vid__tl_msg, sizeof vid__tl_msg, "reading: %s", vid__averr(r, e));
                } else {
                    s->eof_clean = 1;
                }
                avcodec_send_packet(s->dec, NULL);  // drain
                return 1;
            }
            if (s->pkt->stream_index == s->si) break;
            av_packet_unref(s->pkt);
        }
    }
    int64_t dts = s->pkt->dts != AV_NOPTS_VALUE ? s->pkt->dts : s->pkt->pts;
    if ((s->pkt->flags & AV_PKT_FLAG_KEY) && s->pkt->pts != AV_NOPTS_VALUE &&
        s->pkt->dts != AV_NOPTS_VALUE && s->pkt->pts - s->pkt->dts > s->key_delay)
        s->key_delay = s->pkt->pts - s->pkt->dts;
    int r = avcodec_send_packet(s->dec, s->pkt);
    s->pkt_pending = r == AVERROR(EAGAIN);
    if (s->pkt_pending) return 0;
    if (dts != AV_NOPTS_VALUE) s->last_dts = dts;
    av_packet_unref(s->pkt);
    if (r < 0) v->stats.decode_errors++;  // a broken packet: go on with the next
    return 0;
}

// Decodes the next frame in display order into f, with its time in *t. Returns 1, or
// 0 at the end of the stream (or when the stream stops yielding frames).
static int vid__ff_next(vid_reader *v, AVFrame *f, double *t) {
    vid__ff *s = &v->ff;
    int demux_done = 0;
    int64_t e0 = vid__tl_errors;
    long idle = 0;
    for (long it = 0; it < VID__MAX_LOOP; it++) {
        int r = avcodec_receive_frame(s->dec, f);
        if (r == 0) {
            v->stats.decode_errors += vid__tl_errors - e0;
            v->stats.frames_decoded++;
            *t = vid__ff_frame_time(v, f);
            s->last_t = *t;
            return 1;
        }
        if (r == AVERROR_EOF) break;
        if (r != AVERROR(EAGAIN)) {  // a decode error: the decoder goes on
            v->stats.decode_errors++;
            if (++idle > VID__MAX_IDLE_PACKETS) break;
            continue;
        }
        if (demux_done || idle++ > VID__MAX_IDLE_PACKETS) break;
        demux_done = vid__ff_feed(v);
    }
    v->stats.decode_errors += vid__tl_errors - e0;
    s->eof = 1;
    return 0;
}

static void vid__ff_swap(vid__ff *s) {  // b becomes a
    AVFrame *t = s->fa;
    s->fa = s->fb;
    s->fb = t;
    s->ta = s->tb;
    s->errs_a = s->errs_b;
    s->have_a = 1;
    s->have_b = 0;
}

// Decodes forward until frame a is the last frame with time <= T (or the first frame
// decoded, when it comes after T). Returns 0, or -1 when no frame decodes.
static int vid__ff_advance(vid_reader *v, double T) {
    vid__ff *s = &v->ff;
    for (long it = 0; it < VID__MAX_LOOP; it++) {
        if (s->have_b) {
            if (s->have_a && s->tb > T) return 0;
            vid__ff_swap(s);
            continue;
        }
        if (s->eof) return s->have_a ? 0 : -1;
        if (vid__ff_next(v, s->fb, &s->tb)) {
            s->have_b = 1;
            s->errs_b = v->stats.decode_errors;
        }
    }
    return s->have_a ? 0 : -1;
}

// Seeks to the keyframe at or before time t (seconds from the first frame; t < 0: the
// start) and resets the decoder.
static int vid__ff_seek(vid_reader *v, double t) {
    vid__ff *s = &v->ff;
    double tb = av_q2d(s->st->time_base);
    int64_t ts = t <= 0 ? s->pts0 : s->pts0 + (int64_t)floor(t / tb);
    if (t < 0 && s->st->start_time != AV_NOPTS_VALUE && s->st->start_time < ts)
        ts = s->st->start_time;
    int r = av_seek_frame(s->fmt, s->si, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(s->fmt, s->si, INT64_MIN, ts, ts, 0);
    if (r < 0) r = av_seek_frame(s->fmt, -1, 0, AVSEEK_FLAG_BYTE | AVSEEK_FLAG_BACKWARD);
    avcodec_flush_buffers(s->dec);
    if (s->pkt_pending) av_packet_unref(s->pkt);
    s->pkt_pending = s->have_a = s->have_b = s->eof = s->eof_clean = 0;
    s->last_dts = AV_NOPTS_VALUE;
    v->stats.seeks++;
    return r;
}

// Whether reaching time t from the current position should seek rather than decode
// forward: seek when a keyframe at or before t lies beyond the packets already read.
static int vid__ff_should_seek(vid_reader *v, double t, double T) {
    vid__ff *s = &v->ff;
    if (!s->have_a && !(s->have_b && s->tb <= T)) return 1;  // fresh: only b decoded
    if (s->have_a && s->ta > T) return 1;
    // At a clean end frame a answers every later time; after a damaged stretch a seek
    // may land on a keyframe past it (unless one already found nothing there).
    if (s->eof) return !s->eof_clean && t > s->ta + 1.0 / v->info.fps && t < s->dead_from;
    if (s->last_dts == AV_NOPTS_VALUE) return 0;
    // Index timestamps may be dts (MP4): a keyframe shown after t can be listed before it.
    int64_t ts = s->pts0 + (int64_t)floor(t / av_q2d(s->st->time_base)) - s->key_delay;
    if (avformat_index_get_entries_count(s->st) > 0) {
        const AVIndexEntry *e = avformat_index_get_entry_from_timestamp(s->st, ts, AVSEEK_FLAG_BACKWARD);
        return e && e->timestamp > s->last_dts;
    }
    return t - (s->have_a ? s->ta : s->tb) > 5.0;  // no index: seek only for long jumps
}

// Makes frame a the frame for index i (see video.h). Returns 0 or -1.
static int vid__ff_goto(vid_reader *v, int64_t i) {
    vid__ff *s = &v->ff;
    double fps = v->info.fps, T = (i + 0.5) / fps, t = i / fps;
    if (!vid__ff_should_seek(v, t, T)) return vid__ff_advance(v, T);
    double back = 0;
    for (int attempt = 0; attempt < 12; attempt++) {
        double target = t - back;
        int at_start = target <= 0;
        vid__ff_seek(v, at_start ? -1.0 : target);
        int r = vid__ff_advance(v, T);
        if (r == 0 && s->ta <= T + 1e-9) {
            if (s->eof && !s->eof_clean && s->ta + 1.5 / fps < T && t < s->dead_from) s->dead_from = t;
            return 0;
        }
        if (at_start) return r;  // nothing earlier exists: keep the first frame
        back = back > 0 ? back * 4 : 1.0;  // landed after the frame: seek further back
    }
    vid__ff_seek(v, -1.0);
    return vid__ff_advance(v, T);
}

// Converts frame f to RGB through the scratch buffer, then resizes rect r in C: for
// pixel formats whose planes cannot be cropped by pointer offsets (palette, bit-packed).
static int vid__ff_convert_slow(vid_reader *v, const AVFrame *f, vid__rect r, int oh,
                               int ow, uint8_t *dst) {
    vid__ff *s = &v->ff;
    size_t need = (size_t)f->width * f->height * 3;
    if (need > s->tmp_cap) {
        uint8_t *t = realloc(s->tmp, need);
        if (!t) return -1;
        s->tmp = t;
        s->tmp_cap = need;
    }
    s->sws = sws_getCachedContext(s->sws, f->width, f->height, f->format, f->width, f->height,
                                  AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    s->sws_key = NULL;
    if (!s->sws) return -1;
    uint8_t *d[4] = {s->tmp};
    int ls[4] = {f->width * 3};
    sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, d, ls);
    return vid__resize_rect(s->tmp, f->height, f->width, r, dst, oh, ow);
}

// Sets the YUV range and matrix of the frame on the scaler (only when they change).
static void vid__ff_colorspace(vid__ff *s, const AVFrame *f, const AVPixFmtDescriptor *d) {
    if (d->flags & AV_PIX_FMT_FLAG_RGB) return;
    int range = f->color_range == AVCOL_RANGE_JPEG || !strncmp(d->name, "yuvj", 4);
    int space = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)f->colorspace;
    if (s->sws_key == s->sws && s->sws_range == range && s->sws_space == space) return;
    const int *dst_coef = sws_getCoefficients(SWS_CS_DEFAULT);
    sws_setColorspaceDetails(s->sws, sws_getCoefficients(space), range, dst_coef, 1, 0,
                             1 << 16, 1 << 16);
    s->sws_key = s->sws;
    s->sws_range = range;
    s->sws_space = space;
}

// Scales a YUV 4:2:0 crop (planes src, strides ls, cw x ch) to s->mid at ow x oh, in
// the same format: swscale's SIMD scalers for planar YUV plus its unscaled YUV -> RGB
// converter are 3-4x faster than one scaling YUV -> RGB24 pass. Area averaging when
// shrinking 2x or more (no aliasing), bilinear otherwise.
static int vid__ff_scale_yuv(vid__ff *s, const uint8_t *const src[4], const int ls[4], int cw,
                             int ch, int fmt, int oh, int ow) {
    if (!s->mid[0] || s->mid_w != ow || s->mid_h != oh || s->mid_fmt != fmt) {
        av_freep(&s->mid[0]);
        if (av_image_alloc(s->mid, s->mid_ls, ow, oh, fmt, 64) < 0) return -1;
        s->mid_w = ow;
        s->mid_h = oh;
        s->mid_fmt = fmt;
    }
    int flags = cw >= 2 * ow && ch >= 2 * oh ? SWS_AREA : SWS_BILINEAR;
    s->sws_mid = sws_getCachedContext(s->sws_mid, cw, ch, fmt, ow, oh, fmt, flags, NULL, NULL, NULL);
    if (!s->sws_mid) return -1;
    return sws_scale(s->sws_mid, src, ls, 0, ch, s->mid, s->mid_ls) > 0 ? 0 : -1;
}

// Frame f -> dst uint8 [oh][ow][3] with resize `mode` (not native). swscale reads only
// the source rectangle that the mode keeps (plane pointers offset to the crop).
static int vid__ff_convert(vid_reader *v, const AVFrame *f, int oh, int ow, int mode,
                           uint8_t *dst) {
    vid__ff *s = &v->ff;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (!d || f->width <= 0 || f->height <= 0) return -1;
    vid__rect r = vid__src_rect(f->width, f->height, oh, ow, mode);
    if (d->flags & (AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL))
        return vid__ff_convert_slow(v, f, r, oh, ow, dst);
    int cw = (int)lround(r.w), ch = (int)lround(r.h);
    cw = cw < 1 ? 1 : cw > f->width ? f->width : cw;
    ch = ch < 1 ? 1 : ch > f->height ? f->height : ch;
    int x0 = ((f->width - cw) / 2) & ~((1 << d->log2_chroma_w) - 1);
    int y0 = ((f->height - ch) / 2) & ~((1 << d->log2_chroma_h) - 1);
    int steps[4];
    av_image_fill_max_pixsteps(steps, NULL, d);
    const uint8_t *src[4] = {0};
    for (int p = 0; p < 4 && f->data[p]; p++) {
        int chroma = p == 1 || p == 2;
        int sx = chroma ? d->log2_chroma_w : 0, sy = chroma ? d->log2_chroma_h : 0;
        src[p] = f->data[p] + (ptrdiff_t)(y0 >> sy) * f->linesize[p] + (ptrdiff_t)(x0 >> sx) * steps[p];
    }
    const int *ls = f->linesize;
    int fmt = f->format;
    if ((fmt == AV_PIX_FMT_YUV420P || fmt == AV_PIX_FMT_YUVJ420P) && (cw != ow || ch != oh)) {
        if (vid__ff_scale_yuv(s, src, ls, cw, ch, fmt, oh, ow)) return -1;
        for (int p = 0; p < 4; p++) src[p] = s->mid[p];
        ls = s->mid_ls;
        cw = ow;
        ch = oh;
    }
    int flags = cw >= 2 * ow && ch >= 2 * oh ? SWS_AREA : SWS_BILINEAR;
    s->sws = sws_getCachedContext(s->sws, cw, ch, fmt, ow, oh, AV_PIX_FMT_RGB24, flags, NULL,
                                  NULL, NULL);
    if (!s->sws) return -1;
    vid__ff_colorspace(s, f, d);
    uint8_t *dp[4] = {dst};
    int dl[4] = {ow * 3};
    return sws_scale(s->sws, src, ls, 0, ch, dp, dl) > 0 ? 0 : -1;
}

// After frame a was chosen for index i: records the exact frame count at a clean end
// and tells whether a repeats an older frame because frames after it were damaged.
static int vid__ff_after_goto(vid_reader *v, int64_t i) {
    vid__ff *s = &v->ff;
    double fps = v->info.fps, T = (i + 0.5) / fps;
    if (s->eof && !s->have_b && s->eof_clean && !v->info.n_frames_exact) {
        double last = ceil(s->ta * fps - 0.5);
        v->info.n_frames = (int64_t)(last > 0 ? last : 0) + 1;
        v->info.n_frames_exact = 1;
    }
    int64_t errs_after = s->have_b ? s->errs_b : v->stats.decode_errors;
    int damaged = errs_after > s->errs_a || (s->eof && !s->eof_clean);
    return damaged && T - s->ta > 1.5 / fps;
}

static int vid__ff_read(vid_reader *v, const vid__req *rq, int n, int oh, int ow, int mode,
                        uint8_t *out, char *err, size_t errlen) {
    size_t fsz = (size_t)oh * ow * 3;
    int repeated = 0;
    int64_t errs0 = v->stats.decode_errors;
    vid__tl_msg[0] = 0;  // messages below are this read's own
    for (int k = 0; k < n; k++) {
        uint8_t *dst = out + fsz * rq[k].pos;
        if (k > 0 && rq[k].idx == rq[k - 1].idx) {
            memcpy(dst, out + fsz * rq[k - 1].pos, fsz);
            continue;
        }
        if (vid__ff_goto(v, rq[k].idx)) {
            vid__err(err, errlen, "%s: no frame decodes near frame %lld (%s): the file is "
                     "damaged; re-encode it (ffmpeg -i FILE -c:v libx264 out.mp4) or remove it "
                     "from the list", v->path, (long long)rq[k].idx,
                     vid__tl_msg[0] ? vid__tl_msg : "no decodable data");
            return -1;
        }
        repeated += vid__ff_after_goto(v, rq[k].idx);
        if (vid__ff_convert(v, v->ff.fa, oh, ow, mode, dst)) {
            vid__err(err, errlen, "%s: cannot convert a %dx%d %s frame to RGB (out of memory?)",
                     v->path, v->ff.fa->width, v->ff.fa->height,
                     av_get_pix_fmt_name(v->ff.fa->format) ? av_get_pix_fmt_name(v->ff.fa->format) : "?");
            return -1;
        }
    }
    if (repeated) {
        v->stats.repeated += repeated;
        vid__err(err, errlen, "%s: %d of %d frames repeat the last good frame: %lld decode "
                 "errors (%s); the file is damaged: re-encode or replace it", v->path, repeated,
                 n, (long long)(v->stats.decode_errors - errs0),
                 vid__tl_msg[0] ? vid__tl_msg : "broken packets");
    }
    return repeated;
}

// Opens the container, picks the best video stream and opens its decoder.
static int vid__ff_open_decoder(vid_reader *v, const char *path, int threads, char *err,
                                size_t errlen) {
    vid__ff *s = &v->ff;
    char e[AV_ERROR_MAX_STRING_SIZE];
    int r = avformat_open_input(&s->fmt, path, NULL, NULL);
    if (r < 0) {
        vid__err(err, errlen, "%s: cannot open as a video (%s): check that it is a complete "
                 "video file (ffprobe FILE), re-download or re-encode it", path, vid__averr(r, e));
        return -1;
    }
    if ((r = avformat_find_stream_info(s->fmt, NULL)) < 0) {
        vid__err(err, errlen, "%s: cannot read the stream headers (%s): the file is damaged or "
                 "truncated; re-download or re-encode it", path, vid__averr(r, e));
        return -1;
    }
    const AVCodec *codec = NULL;
    s->si = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (s->si < 0 || !codec) {
        vid__err(err, errlen, "%s: %s: give a file with a video stream, or re-encode it with a "
                 "common codec (ffmpeg -i FILE -c:v libx264 out.mp4)", path,
                 s->si == AVERROR_DECODER_NOT_FOUND ? "this FFmpeg has no decoder for its video codec"
                                                    : "no video stream");
        return -1;
    }
    s->st = s->fmt->streams[s->si];
    for (unsigned k = 0; k < s->fmt->nb_streams; k++)
        if ((int)k != s->si) s->fmt->streams[k]->discard = AVDISCARD_ALL;
    if (!(s->dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(s->dec, s->st->codecpar) < 0) {
        vid__err(err, errlen, "%s: out of memory opening the decoder", path);
        return -1;
    }
    s->dec->thread_count = threads;
    s->dec->pkt_timebase = s->st->time_base;
    if ((r = avcodec_open2(s->dec, codec, NULL)) < 0) {
        vid__err(err, errlen, "%s: cannot open the %s decoder (%s): re-encode the video "
                 "(ffmpeg -i FILE -c:v libx264 out.mp4)", path, codec->name, vid__averr(r, e));
        return -1;
    }
    snprintf(v->info.codec, sizeof v->info.codec, "%s", codec->name);
    return 0;
}

// Frame rate, frame count and duration from the container.
static void vid__ff_probe_info(vid_reader *v) {
    vid__ff *s = &v->ff;
    AVRational q = s->st->avg_frame_rate;
    double fps = q.num > 0 && q.den > 0 ? av_q2d(q) : 0;
    if (!(fps > 0.1 && fps < 1000)) {
        q = s->st->r_frame_rate;
        fps = q.num > 0 && q.den > 0 ? av_q2d(q) : 0;
    }
    if (!(fps > 0.1 && fps < 1000)) fps = 30;
    double dur = 0;
    if (s->st->duration != AV_NOPTS_VALUE && s->st->duration > 0)
        dur = s->st->duration * av_q2d(s->st->time_base);
    else if (s->fmt->duration != AV_NOPTS_VALUE && s->fmt->duration > 0) {
        dur = s->fmt->duration / (double)AV_TIME_BASE;  // Matroska, MP4: counted from 0
        if (s->fmt->start_time != AV_NOPTS_VALUE && s->fmt->start_time > 0 &&
            s->fmt->start_time < s->fmt->duration)
            dur -= s->fmt->start_time / (double)AV_TIME_BASE;
    }
    int64_t n = s->st->nb_frames > 0 ? s->st->nb_frames : (int64_t)llround(dur * fps);
    s->n_header = n;
    v->info.fps = fps;
    v->info.n_frames = n;
    v->info.duration = dur > 0 ? dur : n / fps;
    v->info.width = s->dec->width > 0 ? s->dec->width : s->st->codecpar->width;
    v->info.height = s->dec->height > 0 ? s->dec->height : s->st->codecpar->height;
}

// Counts video packets (no decoding) when the container tells no length, then
// returns to the start.
static void vid__ff_count_packets(vid_reader *v) {
    vid__ff *s = &v->ff;
    int64_t n = 0;
    for (long it = 0; it < VID__MAX_LOOP && av_read_frame(s->fmt, s->pkt) >= 0; it++) {
        n += s->pkt->stream_index == s->si;
        av_packet_unref(s->pkt);
    }
    v->info.n_frames = n;
    v->info.duration = n / v->info.fps;
    vid__ff_seek(v, -1.0);
}

static int vid__ff_open(vid_reader *v, const char *path, int threads, char *err, size_t errlen) {
    vid__ff *s = &v->ff;
    pthread_once(&vid__once, vid__ff_init);
    vid__tl_msg[0] = 0;
    s->pts0 = 0;
    s->last_dts = AV_NOPTS_VALUE;
    s->dead_from = INFINITY;
    if (vid__ff_open_decoder(v, path, threads, err, errlen)) return -1;
    if (!(s->pkt = av_packet_alloc()) || !(s->fa = av_frame_alloc()) || !(s->fb = av_frame_alloc())) {
        vid__err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    vid__ff_probe_info(v);
    if (v->info.n_frames <= 0) vid__ff_count_packets(v);
    // The first decoded frame fixes time 0 (and proves the file decodes).
    double t0;
    if (!vid__ff_next(v, s->fb, &t0)) {
        vid__err(err, errlen, "%s: no video frame decodes (%s): the file is damaged, truncated "
                 "or not a video; re-encode it or remove it from the list", path,
                 vid__tl_msg[0] ? vid__tl_msg : "no decodable data");
        return -1;
    }
    int64_t ts = s->fb->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = s->fb->pts;
    s->pts0 = ts == AV_NOPTS_VALUE ? 0 : ts;
    s->tb = s->last_t = 0;
    s->have_b = 1;
    s->errs_b = v->stats.decode_errors;
    if (s->fb->width > 0 && s->fb->height > 0) {
        v->info.width = s->fb->width;
        v->info.height = s->fb->height;
    }
    if (v->info.width <= 0 || v->info.height <= 0 ||
        (int64_t)v->info.width * v->info.height > VID__MAX_PIXELS) {
        vid__err(err, errlen, "%s: bad frame size %dx%d: the file is damaged; re-encode it",
                 path, v->info.width, v->info.height);
        return -1;
    }
    if (v->info.n_frames <= 0) v->info.n_frames = 1;
    return 0;
}
#endif  // SCVRL_FFMPEG

// ---------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------

vid_reader *vid_open(const char *path, vid_info *info, char *err, size_t errlen) {
    return vid_open_ex(path, NULL, info, err, errlen);
}

// Opens an encoded file (checks common to both builds, then FFmpeg).
static int vid__open_file(vid_reader *v, const char *path, const struct stat *sb, int threads,
                          char *err, size_t errlen) {
    if (sb->st_size == 0) {
        vid__err(err, errlen, "%s: empty file (0 bytes): the download or copy is incomplete; "
                 "fetch it again or remove it from the list", path);
        return -1;
    }
#ifdef SCVRL_FFMPEG
    return vid__ff_open(v, path, threads, err, errlen);
#else
    (void)v; (void)threads;
    vid__err(err, errlen, "%s: reading video files needs a build with FFmpeg (`make deps`, "
             "then `make`); or give a frame folder (a directory of JPEG/PNG frames, e.g. "
             "written by examples/synth)", path);
    return -1;
#endif
}

vid_reader *vid_open_ex(const char *path, const vid_opts *opts, vid_info *info, char *err,
                        size_t errlen) {
    double fps = opts && opts->folder_fps > 0 ? opts->folder_fps : 30.0;
    int threads = opts && opts->threads > 0 ? opts->threads : 1;
    if (err && errlen) err[0] = 0;
    if (!path || !path[0]) {
        vid__err(err, errlen, "(empty path): no video given: pass a video file or frame folder");
        return NULL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        vid__err(err, errlen, "%s: cannot open (%s): check the path (list paths are relative "
                 "to the list's folder)", path, strerror(errno));
        return NULL;
    }
    vid_reader *v = calloc(1, sizeof *v);
    if (!v || !(v->path = vid__strdup(path))) {
        free(v);
        vid__err(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    int r = S_ISDIR(sb.st_mode) ? vid__open_folder(v, path, fps, err, errlen)
                                : vid__open_file(v, path, &sb, threads, err, errlen);
    if (r) {
        vid_close(v);
        return NULL;
    }
    if (info) *info = v->info;
    return v;
}

void vid_close(vid_reader *v) {
    if (!v) return;
#ifdef SCVRL_FFMPEG
    if (!v->info.is_folder) vid__ff_close(&v->ff);
#endif
    if (v->files)
        for (int64_t i = 0; i < v->info.n_frames; i++) free(v->files[i]);
    free(v->files);
    free(v->path);
    free(v);
}

vid_info vid_get_info(const vid_reader *v) { return v->info; }

vid_stats vid_get_stats(const vid_reader *v) { return v->stats; }

int vid_read_frames(vid_reader *v, const int64_t *idx, int n, int out_h, int out_w, int mode,
                    uint8_t *out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!v || n < 0 || (n > 0 && (!idx || !out))) {
        vid__err(err, errlen, "%s: vid_read_frames: bad arguments (n = %d)", v ? v->path : "?", n);
        return -1;
    }
    if (n == 0) return 0;
    if (vid__out_size(v, &out_h, &out_w, &mode, err, errlen)) return -1;
    int64_t last = v->info.n_frames_exact ? v->info.n_frames - 1 : -1;
    vid__req *rq = vid__sorted(idx, n, last);
    if (!rq) {
        vid__err(err, errlen, "%s: out of memory", v->path);
        return -1;
    }
    int r = -1;
    if (v->info.is_folder) {
#ifdef SCVRL_STB
        r = vid__folder_read(v, rq, n, out_h, out_w, mode, out, err, errlen);
#endif
    } else {
#ifdef SCVRL_FFMPEG
        r = vid__ff_read(v, rq, n, out_h, out_w, mode, out, err, errlen);
#endif
    }
    free(rq);
    return r;
}
