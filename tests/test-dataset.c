// tests/test-dataset.c: dataset lists (examples/common/dataset.h), each format parsed
// from files written in a temporary folder.
#include "test.h"
#include "dataset.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void put(const char *rel, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "wb");
    if (!f) { printf("# cannot write %s\n", p); return; }
    fputs(text, f);
    fclose(f);
}

static void mk(const char *rel) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    mkdir(p, 0755);
}

static const char *tp(const char *rel) {  // path in tmpdir (rotating buffers)
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s%s%s", tmpdir, rel[0] ? "/" : "", rel);
    return buf[k];
}

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

// Items equal the expected (path relative to tmpdir unless absolute, label) pairs.
static int items_are(const ds_list *l, int n, const char *const *paths, const int *labels, char *why, size_t wl) {
    if (l->n != n) { snprintf(why, wl, "%lld items, want %d", (long long)l->n, n); return 0; }
    for (int i = 0; i < n; i++) {
        const char *want = paths[i][0] == '/' ? paths[i] : tp(paths[i]);
        if (strcmp(l->items[i].path, want) || l->items[i].label != labels[i]) {
            snprintf(why, wl, "item %d: %s %d, want %s %d", i, l->items[i].path, l->items[i].label, want, labels[i]);
            return 0;
        }
    }
    return 1;
}

static void expect_error(const char *name, int r, const char *err, const char *where) {
    test_check(r != 0 && strstr(err, where), name, "r = %d, message `%s` does not contain `%s`", r, err, where);
}

static void test_csv(void) {
    char err[512], why[512];
    ds_list l;
    put("list.csv", "a.mp4 0\nsub/b.mp4 3\n/abs/c.mp4 1\n\n# a comment\n  d e.mp4\t2\r\n");
    int r = ds_load_csv(tp("list.csv"), &l, err, sizeof err);
    const char *p1[] = {"a.mp4", "sub/b.mp4", "/abs/c.mp4", "d e.mp4"};
    const int l1[] = {0, 3, 1, 2};
    test_check(r == 0 && items_are(&l, 4, p1, l1, why, sizeof why) && l.n_classes == 4 && !l.classes,
               "csv: labelled list, relative/absolute paths, comments, CRLF, tab", "r %d: %s %s", r, err, why);
    ds_free(&l);
    put("unlabelled.txt", "x.mp4\nclips/y.webm\n");
    r = ds_load(tp("unlabelled.txt"), NULL, &l, err, sizeof err);
    const char *p2[] = {"x.mp4", "clips/y.webm"};
    const int l2[] = {-1, -1};
    test_check(r == 0 && items_are(&l, 2, p2, l2, why, sizeof why) && l.n_classes == 0,
               "csv: unlabelled pretraining list (label -1), through ds_load", "r %d: %s %s", r, err, why);
    ds_free(&l);
    put("bad-label.csv", "a.mp4 0\nb.mp4 zz\n");
    r = ds_load_csv(tp("bad-label.csv"), &l, err, sizeof err);
    expect_error("csv: a non-integer label gives file:line", r, err, "bad-label.csv:2");
    put("mixed.csv", "a.mp4 0\n\nb.mp4\n");
    r = ds_load_csv(tp("mixed.csv"), &l, err, sizeof err);
    expect_error("csv: labelled and unlabelled lines mixed give file:line", r, err, "mixed.csv:3");
    put("negative.csv", "a.mp4 -4\n");
    r = ds_load_csv(tp("negative.csv"), &l, err, sizeof err);
    expect_error("csv: a negative label gives file:line", r, err, "negative.csv:1");
    put("empty.csv", "# nothing\n\n");
    r = ds_load_csv(tp("empty.csv"), &l, err, sizeof err);
    expect_error("csv: an empty list is an error naming it", r, err, "empty.csv");
    r = ds_load_csv(tp("no-such-list.csv"), &l, err, sizeof err);
    expect_error("csv: a missing list is an error naming it", r, err, "no-such-list.csv");
    test_check(l.n == 0 && l.items == NULL, "csv: a failed load leaves the list empty", "n %lld", (long long)l.n);
}

static void test_folders(void) {
    char err[512], why[512];
    ds_list l;
    mk("classes");
    mk("classes/dog");
    mk("classes/cat");
    mk("classes/emu");
    mk("classes/.hidden");
    mk("classes/dog/frames_0001");
    put("classes/dog/1.mp4", "x");
    put("classes/dog/0.MKV", "x");
    put("classes/cat/x.avi", "x");
    put("classes/cat/readme.txt", "not a video");
    put("classes/.hidden/h.mp4", "x");
    put("classes/notes.txt", "top-level file");
    int r = ds_load(tp("classes"), NULL, &l, err, sizeof err);
    const char *p[] = {"classes/cat/x.avi", "classes/dog/0.MKV", "classes/dog/1.mp4", "classes/dog/frames_0001"};
    const int lab[] = {0, 1, 1, 1};
    int names_ok = r == 0 && l.n_classes == 3 && !strcmp(l.classes[0], "cat") && !strcmp(l.classes[1], "dog") &&
                   !strcmp(l.classes[2], "emu");
    test_check(r == 0 && items_are(&l, 4, p, lab, why, sizeof why) && names_ok,
               "folders: DIR/class/video, labels by sorted class name, frame folders, others skipped",
               "r %d: %s %s (classes %d)", r, err, why, l.n_classes);
    ds_free(&l);
    mk("noclasses");
    put("noclasses/a.mp4", "x");
    r = ds_load_folders(tp("noclasses"), &l, err, sizeof err);
    expect_error("folders: no class folders is an error naming the folder", r, err, "noclasses");
    mk("novideos");
    mk("novideos/a");
    r = ds_load_folders(tp("novideos"), &l, err, sizeof err);
    expect_error("folders: class folders without videos is an error", r, err, "novideos");
}

static void test_ucf(void) {
    char err[512], why[512];
    ds_list l;
    mk("ucf");
    put("ucf/classInd.txt", "1 ApplyEyeMakeup\r\n2 Archery\r\n3 BabyCrawling\r\n");
    put("ucf/trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2\n");
    put("ucf/testlist01.txt", "BabyCrawling/v_BabyCrawling_g01_c01.avi\nArchery/v_Archery_g02_c01.avi\n");
    put("ucf/trainlist02.txt", "Archery/v_Archery_g01_c01.avi 2\nArchery/v_Archery_g03_c01.avi 9\n");
    put("ucf/testlist02.txt", "Archery/v_Archery_g02_c01.avi\nNoSuchClass/v_x.avi\n");
    ds_opts o = {"/data/UCF-101", 1, 1};
    int r = ds_load(tp("ucf"), &o, &l, err, sizeof err);
    const char *p1[] = {"/data/UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "/data/UCF-101/Archery/v_Archery_g01_c01.avi"};
    const int l1[] = {0, 1};
    test_check(r == 0 && items_are(&l, 2, p1, l1, why, sizeof why) && l.n_classes == 3 && !strcmp(l.classes[2], "BabyCrawling"),
               "ucf101: trainlist01 with 1-based ids, root folder", "r %d: %s %s", r, err, why);
    ds_free(&l);
    o.train = 0;
    r = ds_load_ucf101(tp("ucf"), &o, &l, err, sizeof err);
    const char *p2[] = {"/data/UCF-101/BabyCrawling/v_BabyCrawling_g01_c01.avi", "/data/UCF-101/Archery/v_Archery_g02_c01.avi"};
    const int l2[] = {2, 1};
    test_check(r == 0 && items_are(&l, 2, p2, l2, why, sizeof why), "ucf101: testlist01 labels from the class folder",
               "r %d: %s %s", r, err, why);
    ds_free(&l);
    o.split = 2;
    o.train = 1;
    r = ds_load_ucf101(tp("ucf"), &o, &l, err, sizeof err);
    expect_error("ucf101: a class id out of range gives file:line", r, err, "trainlist02.txt:2");
    o.train = 0;
    r = ds_load_ucf101(tp("ucf"), &o, &l, err, sizeof err);
    expect_error("ucf101: an unknown class folder gives file:line", r, err, "testlist02.txt:2");
    o.split = 3;
    r = ds_load_ucf101(tp("ucf"), &o, &l, err, sizeof err);
    expect_error("ucf101: a missing split file is an error naming it", r, err, "testlist03.txt");
    mk("ucfbad");
    put("ucfbad/classInd.txt", "1 A\n1 B\n");
    r = ds_load_ucf101(tp("ucfbad"), NULL, &l, err, sizeof err);
    expect_error("ucf101: a duplicate class id gives file:line", r, err, "classInd.txt:2");
}

static void test_hmdb(void) {
    char err[512], why[512];
    ds_list l;
    mk("hmdb");
    put("hmdb/cartwheel_test_split1.txt", "d.avi 2 \ne.avi 1 \n");
    put("hmdb/brush_hair_test_split1.txt", "a.avi 1\nb.avi 2\nc.avi 0\n");
    put("hmdb/brush_hair_test_split2.txt", "a.avi 1\nf.avi 7\n");
    put("hmdb/cartwheel_test_split2.txt", "d.avi 1\n");
    ds_opts o = {"/data/hmdb51", 1, 1};
    int r = ds_load(tp("hmdb"), &o, &l, err, sizeof err);
    const char *p1[] = {"/data/hmdb51/brush_hair/a.avi", "/data/hmdb51/cartwheel/e.avi"};
    const int l1[] = {0, 1};
    test_check(r == 0 && items_are(&l, 2, p1, l1, why, sizeof why) && l.n_classes == 2 && !strcmp(l.classes[0], "brush_hair"),
               "hmdb51: split 1 train (id 1), classes by sorted name", "r %d: %s %s", r, err, why);
    ds_free(&l);
    o.train = 0;
    r = ds_load_hmdb51(tp("hmdb"), &o, &l, err, sizeof err);
    const char *p2[] = {"/data/hmdb51/brush_hair/b.avi", "/data/hmdb51/cartwheel/d.avi"};
    const int l2[] = {0, 1};
    test_check(r == 0 && items_are(&l, 2, p2, l2, why, sizeof why), "hmdb51: split 1 test (id 2), unused (0) left out",
               "r %d: %s %s", r, err, why);
    ds_free(&l);
    o.split = 2;
    r = ds_load_hmdb51(tp("hmdb"), &o, &l, err, sizeof err);
    expect_error("hmdb51: a bad split id gives file:line", r, err, "brush_hair_test_split2.txt:2");
    o.split = 3;
    r = ds_load_hmdb51(tp("hmdb"), &o, &l, err, sizeof err);
    expect_error("hmdb51: no split files is an error naming the folder", r, err, "hmdb");
    r = ds_load(tp("missing-dataset"), NULL, &l, err, sizeof err);
    expect_error("ds_load: a missing path is an error naming it", r, err, "missing-dataset");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/scvrl-test-dataset-XXXXXX");
    if (!mkdtemp(tmpdir)) { test_fail("setup", "cannot make a temporary folder"); return test_done(); }
    test_csv();
    test_folders();
    test_ucf();
    test_hmdb();
    remove_tree(tmpdir);
    return test_done();
}
