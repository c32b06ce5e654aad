// examples/common/video.h: read frames from encoded videos (FFmpeg) and frame folders
// (JPEG/PNG through stb_image), by frame index, as RGB uint8.
//
// Build switches (the Makefile sets them when it finds the libraries):
//   SCVRL_FFMPEG  encoded videos through libavformat/libavcodec/libswscale (any
//                 container and codec that FFmpeg reads). Without it, vid_open on a
//                 video file returns an error that says how to get FFmpeg.
//   SCVRL_STB     frame folders through stb_image (Debian's libstb-dev). Without it,
//                 vid_open on a folder returns an error that says how to get stb.
//
// Frame indices. Index i is the frame shown at time i / fps after the first frame,
// where fps is vid_info.fps: the output for index i is the last decoded frame whose
// presentation time is <= (i + 0.5) / fps. For constant-frame-rate video that is
// exactly the i-th frame in display order; for variable frame rate, B-frames, odd
// time bases and streams that start at a non-zero time it is the frame on screen at
// that instant. Indices < 0 read frame 0; indices past the end read the last frame
// that decodes.
//
// Threads: a vid_reader is used by one thread at a time; callers parallelise over
// videos (one reader per video per thread). The decoder itself runs single-threaded
// unless vid_opts.threads says otherwise.
//
// FFmpeg's log: the first vid_open installs a process-wide av_log callback that prints
// nothing and counts errors (decode errors show in vid_stats and in messages); set
// SCVRL_AV_LOG=1 in the environment to see FFmpeg's own messages as well.
//
// Damaged input never crashes or hangs a reader (decode loops are bounded): a file that
// does not open or yields no frame is an error; frames lost inside a stream repeat the
// last good frame and vid_read_frames reports how many (see its return value).
#ifndef SCVRL_VIDEO_H
#define SCVRL_VIDEO_H
#include <stddef.h>
#include <stdint.h>

typedef struct vid_reader vid_reader;

typedef struct vid_info {
    int64_t n_frames;    // number of frame indices; exact for folders, an estimate from
                         // the container for streams until the end has been decoded
    int n_frames_exact;  // 1 when n_frames is exact
    double fps;          // frames per second (folders: vid_opts.folder_fps)
    int width, height;   // frame size in pixels (the first frame's for folders)
    double duration;     // seconds (n_frames / fps for folders)
    int is_folder;       // 1 for a frame folder, 0 for an encoded video
    char codec[32];      // "h264", "vp9", ... ("jpeg"/"png" for folders)
} vid_info;

typedef struct vid_opts {
    double folder_fps;   // frame rate given to frame folders (<= 0: 30)
    int threads;         // decoder threads per reader (<= 0: 1)
} vid_opts;

typedef struct vid_stats {
    int64_t frames_decoded;  // frames the decoder produced (or images loaded)
    int64_t seeks;           // seeks done
    int64_t decode_errors;   // broken packets / frames / images seen
    int64_t repeated;        // output frames that had to repeat an earlier frame
} vid_stats;

// Resize modes (the `mode` argument of vid_read_frames).
//   mode > 0            scale so the short side is `mode` pixels (or more, so that the
//                       frame still covers out_h x out_w), then centre crop out_h x out_w
//   VID_RESIZE_CROP     the same with the smallest scale that covers out_h x out_w
//   VID_RESIZE_PLAIN    plain resize to out_h x out_w (aspect ratio not kept)
//   VID_RESIZE_NATIVE   the frame's own size: out_h and out_w must be 0 (or equal to
//                       vid_info height/width); frames of another size are scaled to it
enum { VID_RESIZE_CROP = 0, VID_RESIZE_PLAIN = -1, VID_RESIZE_NATIVE = -2 };

// torchvision's video preset: x = (rgb / 255 - mean) / std.
#define VID_MEAN 0.45f
#define VID_STD 0.225f

// Opens an encoded video file or a frame folder (a directory of .jpg/.jpeg/.png
// files, in natural name order: frame2 before frame10). Fills *info. Returns NULL
// with a message naming the file, what failed and the fix in err.
vid_reader *vid_open(const char *path, vid_info *info, char *err, size_t errlen);
// The same with options (opts may be NULL: defaults).
vid_reader *vid_open_ex(const char *path, const vid_opts *opts, vid_info *info,
                        char *err, size_t errlen);
void vid_close(vid_reader *v);

// Current info (n_frames becomes exact once the reader has decoded to the end).
vid_info vid_get_info(const vid_reader *v);
vid_stats vid_get_stats(const vid_reader *v);

// Reads the n frames idx[0..n) (any order, duplicates allowed) into
// out: uint8 [n][out_h][out_w][3] RGB, in the caller's order (VID_RESIZE_NATIVE:
// [n][info.height][info.width][3]). The decoder visits the indices in ascending
// order, seeking to the keyframe before a wanted frame only when that is ahead of
// where it is. Returns 0 on success; > 0 when that many output frames repeat an
// earlier frame because the input is damaged (err then holds a warning); < 0 on
// error (err names the file, what failed and the fix; out is undefined).
int vid_read_frames(vid_reader *v, const int64_t *idx, int n, int out_h, int out_w,
                    int mode, uint8_t *out, char *err, size_t errlen);

// Clip indices: idx[t] = start + t * stride for t in [0, T), clamped to
// [0, n_frames_total - 1]. Returns how many indices were clamped at the end.
int vid_clip_indices(int64_t n_frames_total, int64_t start, int T, int stride,
                     int64_t *idx);

// in: uint8 [T][H][W][3] -> out: float [3][T][H][W], (x / 255 - VID_MEAN) / VID_STD.
void vid_to_float(const uint8_t *in, int T, int H, int W, float *out);

// Resizes one RGB image: src uint8 [sh][sw][3] -> dst uint8 [dh][dw][3] with `mode`
// as above (VID_RESIZE_NATIVE acts as VID_RESIZE_PLAIN). Bilinear when enlarging, area
// average when shrinking. Used for frame folders; exposed for callers that crop.
// Returns 0, or -1 when out of memory (dst untouched).
int vid_resize_rgb(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw,
                   int mode);

#endif
