// examples/common/dataset.c: see dataset.h.
#include "dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DS__MAX_LIST_BYTES ((long)1 << 30)

static void ds__err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *ds__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void ds_free(ds_list *l) {
    if (!l) return;
    for (int64_t i = 0; i < l->n; i++) free(l->items[i].path);
    free(l->items);
    for (int c = 0; c < l->n_classes && l->classes; c++) free(l->classes[c]);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

// Joins folder and relative path (an absolute path, or dir "", is kept as is).
static char *ds__join(const char *dir, const char *rel) {
    if (rel[0] == '/' || !dir || !dir[0]) return ds__strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    return p;
}

// The folder part of a file path ("." when it has none).
static char *ds__dirname(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return ds__strdup(".");
    size_t n = s == path ? 1 : (size_t)(s - path);
    char *d = malloc(n + 1);
    if (d) { memcpy(d, path, n); d[n] = 0; }
    return d;
}

// Appends an item that takes ownership of path. Returns 0 or -1 (out of memory).
static int ds__push(ds_list *l, char *path, int label, int64_t *cap) {
    if (!path) return -1;
    if (l->n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 1024;
        ds_item *ni = realloc(l->items, (size_t)nc * sizeof *ni);
        if (!ni) { free(path); return -1; }
        l->items = ni;
        *cap = nc;
    }
    l->items[l->n].path = path;
    l->items[l->n++].label = label;
    return 0;
}

// Reads a whole text file (NUL-terminated). NULL with a message on failure.
static char *ds__read_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ds__err(err, errlen, "%s: cannot open the list (%s): check the path", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && n <= DS__MAX_LIST_BYTES && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = 0;
    }
    fclose(f);
    if (!buf) ds__err(err, errlen, "%s: cannot read the list (%s): check that it is a readable "
                      "text file under 1 GiB", path, n > DS__MAX_LIST_BYTES ? "too large" : "read error");
    return buf;
}

// Next line of *cur (modified in place): trimmed, CR stripped; NULL at the end.
static char *ds__next_line(char **cur) {
    char *s = *cur;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    *cur = nl ? nl + 1 : s + strlen(s);
    if (nl) *nl = 0;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (isspace((unsigned char)*s)) s++;
    return s;
}

// Parses a whole string as an integer. Returns 0 on success.
static int ds__parse_int(const char *s, long *v) {
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return s[0] && !*end && !errno && *v >= -2147483647L && *v <= 2147483647L ? 0 : -1;
}

// Splits `line` into path and trailing integer label at its last blank run. Returns
// 1 with a label, 0 without one (no blank), -1 when the last field is not an integer.
static int ds__split_label(char *line, long *label) {
    char *sp = NULL;
    for (char *p = line; *p; p++)
        if (*p == ' ' || *p == '\t') sp = p;
    if (!sp) return 0;
    if (ds__parse_int(sp + 1, label)) return -1;
    while (sp > line && (sp[-1] == ' ' || sp[-1] == '\t')) sp--;
    *sp = 0;
    return 1;
}

// ---- PySlowFast lists -----------------------------------------------------------------

static int ds__csv_line(ds_list *l, int64_t *cap, const char *list_path, int lineno, char *line,
                        const char *dir, int *labelled, int *first_line, char *err, size_t errlen) {
    long label = -1;
    int has = ds__split_label(line, &label);
    if (has < 0 || (has && label < -1)) {
        ds__err(err, errlen, "%s:%d: `%s`: the last field is not a label: write `path label` "
                "(label an integer >= 0) or `path` alone", list_path, lineno, line);
        return -1;
    }
    if (!line[0]) {
        ds__err(err, errlen, "%s:%d: no path before the label: write `path label`", list_path, lineno);
        return -1;
    }
    if (*labelled < 0) { *labelled = has; *first_line = lineno; }
    if (*labelled != has) {
        ds__err(err, errlen, "%s:%d: %s, but line %d %s: label every line or none", list_path,
                lineno, has ? "has a label" : "has no label", *first_line, has ? "has none" : "has one");
        return -1;
    }
    if (ds__push(l, ds__join(dir, line), (int)label, cap)) {
        ds__err(err, errlen, "%s:%d: out of memory", list_path, lineno);
        return -1;
    }
    if (label + 1 > l->n_classes) l->n_classes = (int)(label + 1);
    return 0;
}

int ds_load_csv(const char *list_path, ds_list *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char *buf = ds__read_file(list_path, err, errlen);
    if (!buf) return -1;
    char *dir = ds__dirname(list_path), *cur = buf, *line;
    int64_t cap = 0;
    int lineno = 0, labelled = -1, first = 0, r = dir ? 0 : -1;
    while (r == 0 && (line = ds__next_line(&cur))) {
        lineno++;
        if (!line[0] || line[0] == '#') continue;
        r = ds__csv_line(out, &cap, list_path, lineno, line, dir, &labelled, &first, err, errlen);
    }
    free(buf);
    free(dir);
    if (r == 0 && out->n == 0) {
        ds__err(err, errlen, "%s: the list has no videos: write one `path label` (or `path`) per line",
                list_path);
        r = -1;
    }
    if (r) ds_free(out);
    return r;
}

// ---- class folders --------------------------------------------------------------------

static int ds__strcmp_q(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ds_is_video_name(const char *name) {
    static const char *ext[] = {"mp4", "avi", "webm", "mkv", "mov", "m4v", "mpg", "mpeg", "flv",
                                "wmv", "ogv", "3gp", "ts", "mts", "m2ts", "gif"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t k = 0; k < sizeof ext / sizeof *ext; k++) {
        size_t i = 0;
        while (ext[k][i] && tolower((unsigned char)dot[1 + i]) == ext[k][i]) i++;
        if (!ext[k][i] && !dot[1 + i]) return 1;
    }
    return 0;
}

// Sorted names of the entries of dir (hidden ones skipped) that are folders (want_dir)
// or video files / frame folders (!want_dir). NULL with *n = -1 when dir cannot be read.
static char **ds__list_dir(const char *dir, int want_dir, int *n) {
    DIR *d = opendir(dir);
    *n = -1;
    if (!d) return NULL;
    char **names = NULL;
    int cnt = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *full = ds__join(dir, e->d_name);
        struct stat sb;
        int is_dir = full && stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(full);
        if (want_dir ? !is_dir : !(is_dir || ds_is_video_name(e->d_name))) continue;
        if (cnt == cap) {
            char **nn = realloc(names, (size_t)(cap = cap ? cap * 2 : 64) * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if (!(names[cnt] = ds__strdup(e->d_name))) break;
        cnt++;
    }
    closedir(d);
    if (cnt) qsort(names, (size_t)cnt, sizeof *names, ds__strcmp_q);
    *n = cnt;
    return names;
}

static void ds__free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int ds_load_folders(const char *dir, ds_list *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int nc;
    char **classes = ds__list_dir(dir, 1, &nc);
    if (nc < 0) {
        ds__err(err, errlen, "%s: cannot read the folder (%s): check the path", dir, strerror(errno));
        return -1;
    }
    if (nc == 0) {
        ds__err(err, errlen, "%s: no class folders: expected DIR/<class>/<video>", dir);
        free(classes);
        return -1;
    }
    out->classes = classes;
    out->n_classes = nc;
    int64_t cap = 0;
    for (int c = 0; c < nc; c++) {
        char *cdir = ds__join(dir, classes[c]);
        int nv = -1;
        char **vids = cdir ? ds__list_dir(cdir, 0, &nv) : NULL;
        for (int i = 0; i < nv; i++)
            if (ds__push(out, ds__join(cdir, vids[i]), c, &cap)) nv = -2;
        ds__free_names(vids, nv > 0 ? nv : 0);
        free(cdir);
        if (nv == -2 || !cdir) {
            ds__err(err, errlen, "%s: out of memory listing videos", dir);
            ds_free(out);
            return -1;
        }
    }
    if (out->n == 0) {
        ds__err(err, errlen, "%s: the class folders hold no videos (files .mp4 .avi .webm .mkv "
                ".mov ..., or frame folders): expected DIR/<class>/<video>", dir);
        ds_free(out);
        return -1;
    }
    return 0;
}

// ---- UCF101 ---------------------------------------------------------------------------

// classInd.txt: `id name` with 1-based ids -> out->classes.
static int ds__ucf_classes(const char *split_dir, ds_list *out, char *err, size_t errlen) {
    char *path = ds__join(split_dir, "classInd.txt");
    char *buf = path ? ds__read_file(path, err, errlen) : NULL;
    char *cur = buf, *line;
    int lineno = 0, r = buf ? 0 : -1;
    while (r == 0 && (line = ds__next_line(&cur))) {
        lineno++;
        if (!line[0] || line[0] == '#') continue;
        char *sp = line;
        while (*sp && *sp != ' ' && *sp != '\t') sp++;
        char *name = sp;
        while (*name == ' ' || *name == '\t') name++;
        if (*sp) *sp = 0;
        long id;
        if (ds__parse_int(line, &id) || id < 1 || id > 100000 || !name[0]) {
            ds__err(err, errlen, "%s:%d: expected `id name` with id >= 1 (as `1 ApplyEyeMakeup`)", path, lineno);
            r = -1;
        } else if (id <= out->n_classes && out->classes[id - 1]) {
            ds__err(err, errlen, "%s:%d: class id %ld appears twice: give each class one id", path, lineno, id);
            r = -1;
        } else if (id > out->n_classes) {
            char **nc = realloc(out->classes, (size_t)id * sizeof *nc);
            if (!nc) { ds__err(err, errlen, "%s: out of memory", path); r = -1; break; }
            for (long k = out->n_classes; k < id; k++) nc[k] = NULL;
            out->classes = nc;
            out->n_classes = (int)id;
        }
        if (r == 0 && !(out->classes[id - 1] = ds__strdup(name))) r = -1;
    }
    for (int c = 0; r == 0 && c < out->n_classes; c++)
        if (!out->classes[c]) {
            ds__err(err, errlen, "%s: class id %d is missing: ids must run 1..%d", path, c + 1, out->n_classes);
            r = -1;
        }
    if (r == 0 && out->n_classes == 0) {
        ds__err(err, errlen, "%s: no classes: expected lines `id name`", path);
        r = -1;
    }
    free(buf);
    free(path);
    return r;
}

static int ds__class_of(const ds_list *l, const char *name, size_t len) {
    for (int c = 0; c < l->n_classes; c++)
        if (strlen(l->classes[c]) == len && !strncmp(l->classes[c], name, len)) return c;
    return -1;
}

// One split-list line: `Class/v_x.avi [id]`.
static int ds__ucf_line(ds_list *out, int64_t *cap, const char *path, int lineno, char *line,
                        const char *root, char *err, size_t errlen) {
    long id = 0;
    int has = ds__split_label(line, &id), label = -1;
    if (has < 0 || (has && (id < 1 || id > out->n_classes))) {
        ds__err(err, errlen, "%s:%d: `%s`: expected `Class/video.avi` or `Class/video.avi id` with "
                "id in 1..%d (classInd.txt)", path, lineno, line, out->n_classes);
        return -1;
    }
    const char *slash = strchr(line, '/');
    int folder = slash ? ds__class_of(out, line, (size_t)(slash - line)) : -1;
    label = has ? (int)id - 1 : folder;
    if (label < 0) {
        ds__err(err, errlen, "%s:%d: `%s`: no label and its folder is not a class of "
                "classInd.txt: write `Class/video.avi`", path, lineno, line);
        return -1;
    }
    if (ds__push(out, ds__join(root, line), label, cap)) {
        ds__err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

int ds_load_ucf101(const char *split_dir, const ds_opts *opts, ds_list *out, char *err,
                   size_t errlen) {
    memset(out, 0, sizeof *out);
    int split = opts && opts->split > 0 ? opts->split : 1, train = opts ? opts->train : 1;
    const char *root = opts && opts->root ? opts->root : split_dir;
    if (ds__ucf_classes(split_dir, out, err, errlen)) { ds_free(out); return -1; }
    char name[64];
    snprintf(name, sizeof name, "%slist%02d.txt", train ? "train" : "test", split);
    char *path = ds__join(split_dir, name);
    char *buf = path ? ds__read_file(path, err, errlen) : NULL, *cur = buf, *line;
    int lineno = 0, r = buf ? 0 : -1;
    int64_t cap = 0;
    while (r == 0 && (line = ds__next_line(&cur))) {
        lineno++;
        if (line[0] && line[0] != '#') r = ds__ucf_line(out, &cap, path, lineno, line, root, err, errlen);
    }
    if (r == 0 && out->n == 0) {
        ds__err(err, errlen, "%s: no videos in the split list", path);
        r = -1;
    }
    free(buf);
    free(path);
    if (r) ds_free(out);
    return r;
}

// ---- HMDB51 ---------------------------------------------------------------------------

// Sorted class names from the files `<class>_test_split<split>.txt` of dir.
static char **ds__hmdb_classes(const char *dir, int split, int *n) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_test_split%d.txt", split);
    size_t sl = strlen(suffix);
    char **names = NULL;
    DIR *d = opendir(dir);
    *n = d ? 0 : -1;
    int cap = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) || e->d_name[0] == '.') continue;
        if (*n == cap) {
            char **nn = realloc(names, (size_t)(cap = cap ? cap * 2 : 64) * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if (!(names[*n] = malloc(len - sl + 1))) break;
        memcpy(names[*n], e->d_name, len - sl);
        names[(*n)++][len - sl] = 0;
    }
    if (d) closedir(d);
    if (*n > 0) qsort(names, (size_t)*n, sizeof *names, ds__strcmp_q);
    return names;
}

// Reads one class's split file: `name.avi 1|2|0`.
static int ds__hmdb_file(ds_list *out, int64_t *cap, const char *dir, int c, int split, int want,
                         const char *root, char *err, size_t errlen) {
    char name[600];
    snprintf(name, sizeof name, "%s_test_split%d.txt", out->classes[c], split);
    char *path = ds__join(dir, name), *cdir = ds__join(root, out->classes[c]);
    char *buf = path && cdir ? ds__read_file(path, err, errlen) : NULL, *cur = buf, *line;
    int lineno = 0, r = buf ? 0 : -1;
    while (r == 0 && (line = ds__next_line(&cur))) {
        lineno++;
        if (!line[0] || line[0] == '#') continue;
        long id;
        if (ds__split_label(line, &id) != 1 || id < 0 || id > 2 || !line[0]) {
            ds__err(err, errlen, "%s:%d: expected `video.avi 1|2|0` (train|test|unused)", path, lineno);
            r = -1;
        } else if (id == want && ds__push(out, ds__join(cdir, line), c, cap)) {
            ds__err(err, errlen, "%s: out of memory", path);
            r = -1;
        }
    }
    free(buf);
    free(path);
    free(cdir);
    return r;
}

int ds_load_hmdb51(const char *split_dir, const ds_opts *opts, ds_list *out, char *err,
                   size_t errlen) {
    memset(out, 0, sizeof *out);
    int split = opts && opts->split > 0 ? opts->split : 1, train = opts ? opts->train : 1;
    const char *root = opts && opts->root ? opts->root : split_dir;
    int nc;
    out->classes = ds__hmdb_classes(split_dir, split, &nc);
    if (nc <= 0) {
        ds__err(err, errlen, "%s: no <class>_test_split%d.txt files: give the folder of HMDB51's "
                "split files (testTrainMulti_7030_splits)", split_dir, split);
        ds__free_names(out->classes, nc > 0 ? nc : 0);
        out->classes = NULL;
        return -1;
    }
    out->n_classes = nc;
    int64_t cap = 0;
    for (int c = 0; c < nc; c++)
        if (ds__hmdb_file(out, &cap, split_dir, c, split, train ? 1 : 2, root, err, errlen)) {
            ds_free(out);
            return -1;
        }
    if (out->n == 0) {
        ds__err(err, errlen, "%s: split %d lists no %s videos", split_dir, split, train ? "training" : "test");
        ds_free(out);
        return -1;
    }
    return 0;
}

// ---- format detection -----------------------------------------------------------------

int ds_load(const char *path, const ds_opts *opts, ds_list *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        ds__err(err, errlen, "%s: cannot open (%s): check the path of the dataset list or folder",
                path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) return ds_load_csv(path, out, err, errlen);
    char *ci = ds__join(path, "classInd.txt");
    int ucf = ci && stat(ci, &sb) == 0;
    free(ci);
    if (ucf) return ds_load_ucf101(path, opts, out, err, errlen);
    int nh;
    char **h = ds__hmdb_classes(path, opts && opts->split > 0 ? opts->split : 1, &nh);
    ds__free_names(h, nh > 0 ? nh : 0);
    if (nh > 0) return ds_load_hmdb51(path, opts, out, err, errlen);
    return ds_load_folders(path, out, err, errlen);
}
