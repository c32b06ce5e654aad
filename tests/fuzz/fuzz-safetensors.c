// tests/fuzz/fuzz-safetensors.c: libFuzzer target for the safetensors reader.
// Feeds the bytes to scvrl_st_parse; when they parse, reads every tensor as f32, looks every
// name and metadata key up, and checks that writing the file back (scvrl_st_writer_to_memory)
// gives bytes that parse to the same tensors and metadata.
//   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz-safetensors.c -o /tmp/fuzz-st -lm
//   /tmp/fuzz-st -max_total_time=180 -max_len=4096 tests/fuzz/corpus-safetensors
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCVRL_IMPLEMENTATION
#include "scvrl.h"

static void die(const char *what, const char *err) {
    fprintf(stderr, "fuzz-safetensors: %s: %s\n", what, err);
    abort();
}

// Writes f back through the writer and checks the copy parses to the same content.
static void roundtrip(const scvrl_st_file *f) {
    char err[512];
    scvrl_st_writer *w = scvrl_st_writer_new();
    scvrl_st_file g;
    uint8_t *buf = NULL;
    uint64_t len = 0;
    if (!w) die("writer", "out of memory");
    for (int i = 0; i < f->n; i++) {
        const scvrl_st_entry *e = &f->e[i];
        if (scvrl_st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, f->data + e->begin)) die("writer_add", scvrl_st_writer_error(w));
    }
    for (int i = 0; i < f->n_meta; i++)
        if (scvrl_st_writer_meta(w, f->meta_key[i], f->meta_val[i])) die("writer_meta", scvrl_st_writer_error(w));
    if (scvrl_st_writer_to_memory(w, &buf, &len, err, sizeof err)) die("writer_to_memory", err);
    if (len < 8 || buf[0] % 8) die("writer_to_memory", "header length is not a multiple of 8");
    if (scvrl_st_parse(&g, buf, len, "roundtrip", err, sizeof err)) die("re-parse", err);
    if (g.n != f->n || g.n_meta != f->n_meta) die("round trip", "counts differ");
    for (int i = 0; i < f->n; i++) {
        const scvrl_st_entry *a = &f->e[i], *b = &g.e[i];
        if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim || a->numel != b->numel ||
            memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) || a->end - a->begin != b->end - b->begin ||
            memcmp(f->data + a->begin, g.data + b->begin, (size_t)(a->end - a->begin)))
            die("round trip", a->name);
    }
    for (int i = 0; i < f->n_meta; i++) {
        const char *v = scvrl_st_meta(&g, f->meta_key[i]);
        if (!v || strcmp(v, f->meta_val[i])) die("round trip metadata", f->meta_key[i]);
    }
    scvrl_st_close(&g);
    SCVRL_FREE(buf);
    scvrl_st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    scvrl_st_file f;
    char err[512];
    if (scvrl_st_parse(&f, data, size, "fuzz.safetensors", err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.safetensors: ", 18) != 0) die("error message does not name the file", err);
        if (f.n || f.e || f.priv || f.path) die("failed parse left state behind", err);
        return 0;
    }
    uint64_t covered = 0;
    for (int i = 0; i < f.n; i++) {
        const scvrl_st_entry *e = &f.e[i];
        if (e->end > f.data_size || e->begin > e->end) die("entry out of bounds", e->name);
        covered += e->end - e->begin;
        if (scvrl_st_find(&f, e->name) != e) die("find", e->name);
        float *dst = (float *)malloc((size_t)e->numel * sizeof(float) + 1);
        if (!dst) die("malloc", e->name);
        if (scvrl_st_read_f32(&f, e, dst, err, sizeof err)) die("read_f32", err);
        free(dst);
    }
    if (covered != f.data_size) die("coverage", "tensors do not cover the data exactly");
    for (int i = 0; i < f.n_meta; i++)
        if (scvrl_st_meta(&f, f.meta_key[i]) != f.meta_val[i]) die("meta lookup", f.meta_key[i]);
    roundtrip(&f);
    scvrl_st_close(&f);
    return 0;
}
