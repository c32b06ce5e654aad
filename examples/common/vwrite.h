// examples/common/vwrite.h: writing a video given as uint8 RGB frames
// [T][H][W][3], as
//   VWRITE_JPG  a folder of JPEG q95 frames DIR/000001.jpg ... (stb_image_write,
//               4:4:4 chroma at quality > 90; needs SCVRL_STB), or
//   VWRITE_MP4  MPEG-4 part 2, intra only (gop 1), fixed qscale 2, yuv420p, in
//               .mp4 (libavformat/libavcodec/libswscale; needs SCVRL_FFMPEG).
// Output is deterministic (one encoder thread, bit-exact flags), so the bytes
// depend only on the frames. Every function returns 0, or -1 with a message
// naming the file in err (never exits). This .c file holds the one
// STB_IMAGE_WRITE_IMPLEMENTATION of the library.
#ifndef SCVRL_VWRITE_H
#define SCVRL_VWRITE_H
#include <stddef.h>
#include <stdint.h>

typedef enum { VWRITE_JPG = 0, VWRITE_MP4 = 1 } vwrite_format;

#define VWRITE_JPG_QUALITY 95
#define VWRITE_MP4_QSCALE 2
#define VWRITE_MP4_FPS 30

// 1 when this build can write the format, else 0 and why in err (may be NULL).
int vwrite_available(vwrite_format f, char *err, size_t errlen);
// ".mp4" for VWRITE_MP4, "" for VWRITE_JPG (a folder).
const char *vwrite_extension(vwrite_format f);
// Parse "mp4" / "jpg" (also "jpeg"); returns -1 when unknown.
int vwrite_parse_format(const char *s);
// mkdir -p path (mode 0777 & umask).
int vwrite_mkdirs(const char *path, char *err, size_t errlen);

// Frame folder: dir/000001.jpg ... dir/%06d.jpg (dir is created). quality 1..100.
int vwrite_jpg_folder(const char *dir, const uint8_t *rgb, int frames, int height,
                      int width, int quality, char *err, size_t errlen);
// MPEG-4 part 2 intra-only .mp4 at constant qscale (2..31) and fps; height and
// width must be even. Written to path.part, then renamed to path.
int vwrite_mp4(const char *path, const uint8_t *rgb, int frames, int height, int width,
               int fps, int qscale, char *err, size_t errlen);
// Either of the above with the defaults (q95; qscale 2, 30 fps). path is the
// folder (jpg) or the file name including ".mp4".
int vwrite_video(vwrite_format f, const char *path, const uint8_t *rgb, int frames,
                 int height, int width, char *err, size_t errlen);
#endif
