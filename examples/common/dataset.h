// examples/common/dataset.h: dataset lists -> {path, label} items.
//
// Formats:
//   PySlowFast list   a text file, one video per line: `path label` (space or tab
//                     separated, label an integer >= 0), or `path` alone for unlabelled
//                     pretraining lists (label -1; a file is all labelled or all not).
//                     Relative paths are relative to the list's folder. Blank lines and
//                     lines starting with '#' are skipped.
//   class folders     DIR/<class>/<video>: every class folder's videos (files with a video
//                     extension, or frame folders); labels by sorted class name, names kept.
//   UCF101 splits     a folder with classInd.txt (`id name`, 1-based ids) and
//                     trainlist0N.txt (`Class/v_x.avi id`) / testlist0N.txt (`Class/v_x.avi`,
//                     label from the class folder of the path).
//   HMDB51 splits     a folder of <class>_test_splitN.txt files, lines `name.avi 1|2|0`
//                     (train | test | unused); videos at ROOT/<class>/<name>, labels by
//                     sorted class name.
// Errors name the file and line (file:line: what is wrong) and the fix.
#ifndef SCVRL_DATASET_H
#define SCVRL_DATASET_H
#include <stddef.h>
#include <stdint.h>

typedef struct ds_item {
    char *path;  // video file or frame folder
    int label;   // 0-based class, -1 when unlabelled
} ds_item;

typedef struct ds_list {
    ds_item *items;     // [n]
    int64_t n;
    char **classes;     // [n_classes] class names by label (NULL when unknown)
    int n_classes;      // number of classes (PySlowFast lists: max label + 1)
} ds_list;

typedef struct ds_opts {
    const char *root;   // video folder for UCF101/HMDB51 splits (NULL: the split folder)
    int split;          // split number 1..3 (0: 1)
    int train;          // 1: training videos, 0: test videos
} ds_opts;

// PySlowFast list file.
int ds_load_csv(const char *list_path, ds_list *out, char *err, size_t errlen);
// DIR/<class>/<video> layout.
int ds_load_folders(const char *dir, ds_list *out, char *err, size_t errlen);
// UCF101 split folder (classInd.txt, trainlist0N.txt, testlist0N.txt).
int ds_load_ucf101(const char *split_dir, const ds_opts *opts, ds_list *out, char *err,
                   size_t errlen);
// HMDB51 split folder (<class>_test_splitN.txt).
int ds_load_hmdb51(const char *split_dir, const ds_opts *opts, ds_list *out, char *err,
                   size_t errlen);
// Picks the format: a file is a PySlowFast list; a folder with classInd.txt is UCF101,
// one with *_test_split1.txt files HMDB51, any other folder class folders.
int ds_load(const char *path, const ds_opts *opts, ds_list *out, char *err, size_t errlen);
void ds_free(ds_list *l);
// 1 when the file name has a video extension (mp4, avi, webm, mkv, mov, ...), case-insensitive.
int ds_is_video_name(const char *name);

// All loaders return 0, or -1 with the message in err (*out then empty).

#endif
