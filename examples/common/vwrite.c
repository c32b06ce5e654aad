// examples/common/vwrite.c: JPEG frame folders (stb_image_write) and MPEG-4
// intra-only .mp4 files (FFmpeg). See vwrite.h.
#include "vwrite.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef SCVRL_STB
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// stb's JPEG bit writer shifts set bits out of a signed int (benign, but UB
// that -fsanitize=undefined aborts on): exempt that one function. A
// non-prototype declaration takes the attribute without stb's private types.
static void stbiw__jpg_writeBits() __attribute__((no_sanitize("shift")));
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

#ifdef SCVRL_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#endif

static int vwrite__fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int vwrite_available(vwrite_format f, char *err, size_t errlen) {
    if (f == VWRITE_JPG) {
#ifdef SCVRL_STB
        return 1;
#else
        vwrite__fail(err, errlen, "JPEG frame folders need stb_image_write.h: install libstb-dev "
                     "(or set STB_INCLUDE=) and rebuild, or use --format mp4");
        return 0;
#endif
    }
    if (f == VWRITE_MP4) {
#ifdef SCVRL_FFMPEG
        return 1;
#else
        vwrite__fail(err, errlen, "video files (mp4) need FFmpeg: build with FFmpeg "
                     "(libavformat-dev libavcodec-dev libswscale-dev) or use --format jpg");
        return 0;
#endif
    }
    vwrite__fail(err, errlen, "unknown video format %d (use mp4 or jpg)", (int)f);
    return 0;
}

const char *vwrite_extension(vwrite_format f) { return f == VWRITE_MP4 ? ".mp4" : ""; }

int vwrite_parse_format(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "mp4")) return VWRITE_MP4;
    if (!strcmp(s, "jpg") || !strcmp(s, "jpeg")) return VWRITE_JPG;
    return -1;
}

int vwrite_mkdirs(const char *path, char *err, size_t errlen) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return vwrite__fail(err, errlen, "bad folder name '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return vwrite__fail(err, errlen, "cannot create folder %s: %s", buf, strerror(errno));
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return vwrite__fail(err, errlen, "%s exists and is not a folder", buf);
        buf[i] = c;
    }
    return 0;
}

static int vwrite__check_dims(const char *path, int frames, int height, int width, char *err,
                              size_t errlen) {
    if (frames < 1 || height < 1 || width < 1 || height > 16384 || width > 16384)
        return vwrite__fail(err, errlen, "%s: bad video shape %d x %d x %d", path, frames, height,
                            width);
    return 0;
}

int vwrite_jpg_folder(const char *dir, const uint8_t *rgb, int frames, int height, int width,
                      int quality, char *err, size_t errlen) {
#ifdef SCVRL_STB
    if (vwrite__check_dims(dir, frames, height, width, err, errlen)) return -1;
    if (quality < 1 || quality > 100)
        return vwrite__fail(err, errlen, "%s: JPEG quality %d is not in 1..100", dir, quality);
    if (vwrite_mkdirs(dir, err, errlen)) return -1;
    size_t frame_bytes = (size_t)height * width * 3;
    char path[4200];
    for (int t = 0; t < frames; t++) {
        int n = snprintf(path, sizeof path, "%s/%06d.jpg", dir, t + 1);
        if (n < 0 || (size_t)n >= sizeof path)
            return vwrite__fail(err, errlen, "%s: path too long", dir);
        if (!stbi_write_jpg(path, width, height, 3, rgb + (size_t)t * frame_bytes, quality))
            return vwrite__fail(err, errlen, "cannot write %s (disk full or no permission?)",
                                path);
    }
    return 0;
#else
    (void)rgb; (void)frames; (void)height; (void)width; (void)quality;
    char why[400] = {0};
    vwrite_available(VWRITE_JPG, why, sizeof why);
    return vwrite__fail(err, errlen, "%s: %s", dir, why);
#endif
}

#ifdef SCVRL_FFMPEG
// One encoder: container, stream, codec, conversion and the scratch frame.
typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *codec;
    AVStream *stream;
    struct SwsContext *sws;
    AVFrame *frame;
    AVPacket *packet;
    int opened;  // 1 after avio_open
} vwrite__enc;

static int vwrite__averr(char *err, size_t errlen, const char *path, const char *what, int rc) {
    char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, msg, sizeof msg);
    return vwrite__fail(err, errlen, "%s: %s failed: %s", path, what, msg);
}

static void vwrite__enc_free(vwrite__enc *e) {
    if (e->fmt && e->opened) avio_closep(&e->fmt->pb);
    avformat_free_context(e->fmt);
    avcodec_free_context(&e->codec);
    sws_freeContext(e->sws);
    av_frame_free(&e->frame);
    av_packet_free(&e->packet);
    memset(e, 0, sizeof *e);
}

// Sets up codec context (intra only, fixed qscale, bit-exact), stream, file.
static int vwrite__enc_open(vwrite__enc *e, const char *path, const char *tmp, int height,
                            int width, int fps, int qscale, char *err, size_t errlen) {
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) return vwrite__fail(err, errlen, "%s: this FFmpeg has no MPEG-4 encoder", path);
    int rc = avformat_alloc_output_context2(&e->fmt, NULL, "mp4", tmp);
    if (rc < 0 || !e->fmt) return vwrite__averr(err, errlen, path, "creating the mp4 muxer", rc);
    e->fmt->flags |= AVFMT_FLAG_BITEXACT;
    e->stream = avformat_new_stream(e->fmt, NULL);
    e->codec = avcodec_alloc_context3(codec);
    e->frame = av_frame_alloc();
    e->packet = av_packet_alloc();
    if (!e->stream || !e->codec || !e->frame || !e->packet)
        return vwrite__fail(err, errlen, "%s: out of memory", path);
    AVCodecContext *c = e->codec;
    c->width = width;
    c->height = height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    c->gop_size = 1;  // intra only: no GOP-phase quality pattern, no speed-dependent error
    c->max_b_frames = 0;
    c->thread_count = 1;
    c->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;
    c->global_quality = FF_QP2LAMBDA * qscale;
    c->qmin = c->qmax = qscale;
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_range = AVCOL_RANGE_MPEG;
    if (e->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((rc = avcodec_open2(c, codec, NULL)) < 0)
        return vwrite__averr(err, errlen, path, "opening the MPEG-4 encoder", rc);
    if ((rc = avcodec_parameters_from_context(e->stream->codecpar, c)) < 0)
        return vwrite__averr(err, errlen, path, "copying codec parameters", rc);
    e->stream->time_base = c->time_base;
    e->frame->format = AV_PIX_FMT_YUV420P;
    e->frame->width = width;
    e->frame->height = height;
    if ((rc = av_frame_get_buffer(e->frame, 0)) < 0)
        return vwrite__averr(err, errlen, path, "allocating a frame", rc);
    e->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    if (!e->sws) return vwrite__fail(err, errlen, "%s: cannot set up RGB -> YUV conversion", path);
    if ((rc = avio_open(&e->fmt->pb, tmp, AVIO_FLAG_WRITE)) < 0)
        return vwrite__averr(err, errlen, tmp, "opening for writing", rc);
    e->opened = 1;
    if ((rc = avformat_write_header(e->fmt, NULL)) < 0)
        return vwrite__averr(err, errlen, path, "writing the mp4 header", rc);
    return 0;
}

// Sends one frame (or NULL to flush) and writes every packet that comes out.
static int vwrite__enc_send(vwrite__enc *e, const AVFrame *f, const char *path, char *err,
                            size_t errlen) {
    int rc = avcodec_send_frame(e->codec, f);
    if (rc < 0) return vwrite__averr(err, errlen, path, "encoding a frame", rc);
    for (;;) {
        rc = avcodec_receive_packet(e->codec, e->packet);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return vwrite__averr(err, errlen, path, "encoding a frame", rc);
        av_packet_rescale_ts(e->packet, e->codec->time_base, e->stream->time_base);
        e->packet->stream_index = e->stream->index;
        rc = av_interleaved_write_frame(e->fmt, e->packet);
        av_packet_unref(e->packet);
        if (rc < 0) return vwrite__averr(err, errlen, path, "writing a packet", rc);
    }
}

static int vwrite__mp4_frames(vwrite__enc *e, const char *path, const uint8_t *rgb, int frames,
                              int height, int width, char *err, size_t errlen) {
    size_t frame_bytes = (size_t)height * width * 3;
    for (int t = 0; t < frames; t++) {
        int rc = av_frame_make_writable(e->frame);
        if (rc < 0) return vwrite__averr(err, errlen, path, "making a frame writable", rc);
        const uint8_t *src[1] = {rgb + (size_t)t * frame_bytes};
        const int stride[1] = {3 * width};
        sws_scale(e->sws, src, stride, 0, height, e->frame->data, e->frame->linesize);
        e->frame->pts = t;
        e->frame->quality = e->codec->global_quality;
        e->frame->pict_type = AV_PICTURE_TYPE_I;
        if (vwrite__enc_send(e, e->frame, path, err, errlen)) return -1;
    }
    if (vwrite__enc_send(e, NULL, path, err, errlen)) return -1;
    int rc = av_write_trailer(e->fmt);
    if (rc < 0) return vwrite__averr(err, errlen, path, "writing the mp4 trailer", rc);
    return 0;
}
#endif

int vwrite_mp4(const char *path, const uint8_t *rgb, int frames, int height, int width, int fps,
               int qscale, char *err, size_t errlen) {
#ifdef SCVRL_FFMPEG
    if (vwrite__check_dims(path, frames, height, width, err, errlen)) return -1;
    if ((height | width) & 1)
        return vwrite__fail(err, errlen, "%s: MPEG-4 4:2:0 needs an even size, not %d x %d",
                            path, width, height);
    if (qscale < 1 || qscale > 31 || fps < 1)
        return vwrite__fail(err, errlen, "%s: bad qscale %d or fps %d", path, qscale, fps);
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.part", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return vwrite__fail(err, errlen, "%s: path too long", path);
    vwrite__enc e;
    memset(&e, 0, sizeof e);
    int rc = vwrite__enc_open(&e, path, tmp, height, width, fps, qscale, err, errlen);
    if (rc == 0) rc = vwrite__mp4_frames(&e, path, rgb, frames, height, width, err, errlen);
    if (rc == 0 && e.opened) {
        e.opened = 0;
        int c = avio_closep(&e.fmt->pb);
        if (c < 0) rc = vwrite__averr(err, errlen, tmp, "closing", c);
    }
    vwrite__enc_free(&e);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = vwrite__fail(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != 0) remove(tmp);
    return rc;
#else
    (void)rgb; (void)frames; (void)height; (void)width; (void)fps; (void)qscale;
    char why[400] = {0};
    vwrite_available(VWRITE_MP4, why, sizeof why);
    return vwrite__fail(err, errlen, "%s: %s", path, why);
#endif
}

int vwrite_video(vwrite_format f, const char *path, const uint8_t *rgb, int frames, int height,
                 int width, char *err, size_t errlen) {
    if (f == VWRITE_MP4)
        return vwrite_mp4(path, rgb, frames, height, width, VWRITE_MP4_FPS, VWRITE_MP4_QSCALE,
                          err, errlen);
    if (f == VWRITE_JPG)
        return vwrite_jpg_folder(path, rgb, frames, height, width, VWRITE_JPG_QUALITY, err,
                                 errlen);
    return vwrite__fail(err, errlen, "%s: unknown video format %d (use mp4 or jpg)", path, (int)f);
}
