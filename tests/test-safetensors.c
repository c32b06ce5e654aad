// tests/test-safetensors.c: safetensors reading, writing and validation, and the f16/bf16
// conversions, checked against hand-made bytes and against PyTorch (tests/data/torch_dtypes.safetensors,
// made by tests/ref/make_st_fixture.py).
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#define SCVRL_IMPLEMENTATION
#include "scvrl.h"

static char tdir[256];
static char *tpath(const char *name) {          // a path in the test's temporary folder (rotating buffers)
    static char buf[8][512]; static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tdir, name);
    return p;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static long read_bytes(const char *path, void *p, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(p, 1, cap, f);
    fclose(f);
    return (long)n;
}

static int exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

static uint32_t fbits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }

// Builds a file image: 8-byte length + header (padded to 8 with spaces when pad) + data.
static size_t mkfile(uint8_t *out, const char *hdr, int pad, const void *data, size_t dn) {
    size_t n = strlen(hdr), m = pad ? (n + 7) / 8 * 8 : n;
    for (int k = 0; k < 8; k++) out[k] = (uint8_t)((uint64_t)m >> (8 * k));
    memcpy(out + 8, hdr, n);
    memset(out + 8 + n, ' ', m - n);
    if (dn) memcpy(out + 8 + m, data, dn);
    return 8 + m + dn;
}

// ---- dtypes and conversions ----

static void test_dtypes(void) {
    int ok = scvrl_dtype_size(SCVRL_DT_F32) == 4 && scvrl_dtype_size(SCVRL_DT_F16) == 2 &&
             scvrl_dtype_size(SCVRL_DT_BF16) == 2 && scvrl_dtype_size(SCVRL_DT_I32) == 4 &&
             scvrl_dtype_size(SCVRL_DT_I64) == 8 && scvrl_dtype_size(SCVRL_DT_F64) == 8 &&
             scvrl_dtype_size(SCVRL_DT_COUNT) == 0 && strcmp(scvrl_dtype_name(SCVRL_DT_COUNT), "?") == 0;
    for (int t = 0; t < SCVRL_DT_COUNT; t++) ok &= (int)scvrl_dtype_parse(scvrl_dtype_name((scvrl_dtype)t)) == t;
    ok &= scvrl_dtype_parse("f32") == SCVRL_DT_COUNT && scvrl_dtype_parse("U8") == SCVRL_DT_COUNT;
    test_check(ok, "dtype sizes, names, parse", "mismatch");
}

static void test_conversions(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {    // every non-NaN 16-bit value survives 16 -> 32 -> 16
        int f16nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF), bfnan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        if (!f16nan && scvrl_f32_to_f16(scvrl_f16_to_f32((uint16_t)h)) != h) bad++;
        if (!bfnan && scvrl_f32_to_bf16(scvrl_bf16_to_f32((uint16_t)h)) != h) bad++;
        if (f16nan && !isnan(scvrl_f16_to_f32((uint16_t)h))) bad++;
        if (bfnan && !isnan(scvrl_bf16_to_f32((uint16_t)h))) bad++;
    }
    test_check(bad == 0, "f16/bf16 -> f32 -> f16/bf16 is exact for all 65536 patterns", "%d mismatches", bad);
    struct { float x; uint16_t f16, bf16; } c[] = {
        { 1.0f, 0x3C00, 0x3F80 }, { -2.0f, 0xC000, 0xC000 }, { 65504.0f, 0x7BFF, 0x4780 },
        { 65520.0f, 0x7C00, 0x4780 }, { 65519.99f, 0x7BFF, 0x4780 }, { 1e10f, 0x7C00, 0x5015 },
        { 5.9604645e-08f, 0x0001, 0x3380 }, { 2.9802322e-08f, 0x0000, 0x3300 }, { 1.0f + 1.0f / 256, 0x3C04, 0x3F80 },
        { 1.0f + 3.0f / 256, 0x3C0C, 0x3F82 }, { 1.0f + 1.0f / 2048, 0x3C00, 0x3F80 }, { 1.0f + 3.0f / 2048, 0x3C02, 0x3F80 },
        { INFINITY, 0x7C00, 0x7F80 }, { -INFINITY, 0xFC00, 0xFF80 }, { -0.0f, 0x8000, 0x8000 },
    };
    bad = 0;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (scvrl_f32_to_f16(c[i].x) != c[i].f16) { bad++; printf("# f16(%g) = %04x, want %04x\n", c[i].x, scvrl_f32_to_f16(c[i].x), c[i].f16); }
        if (scvrl_f32_to_bf16(c[i].x) != c[i].bf16) { bad++; printf("# bf16(%g) = %04x, want %04x\n", c[i].x, scvrl_f32_to_bf16(c[i].x), c[i].bf16); }
    }
    test_check(bad == 0, "f16/bf16 rounding: ties to even, overflow, subnormals (values from torch)", "%d wrong", bad);
    float qn = NAN, nn = -NAN;
    test_check(scvrl_f32_to_f16(qn) == 0x7E00 && scvrl_f32_to_f16(nn) == 0xFE00 && scvrl_f32_to_bf16(qn) == 0x7FC0 &&
               scvrl_f32_to_bf16(nn) == 0xFFC0 && fbits(scvrl_f16_to_f32(0x7C01)) == 0x7FC02000u,
               "NaN stays NaN with its sign", "f16 %04x bf16 %04x", scvrl_f32_to_f16(qn), scvrl_f32_to_bf16(qn));
}

// ---- round trips ----

static int same_entry(const scvrl_st_entry *e, const char *name, scvrl_dtype dt, int ndim, const int64_t *shape) {
    if (!e || strcmp(e->name, name) || e->dtype != dt || e->ndim != ndim) return 0;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) { if (e->shape[d] != shape[d]) return 0; n *= shape[d]; }
    return e->numel == n && e->end - e->begin == (uint64_t)n * scvrl_dtype_size(dt);
}

static void test_roundtrip_dtypes(void) {
    // per dtype: a [2,3] tensor, a 0-d scalar, a [0] and a [3,0,2] empty tensor
    static const double vals[6] = { 1.5, -2.0, 0.0, 3.0, -7.0, 100.0 };
    uint8_t raw[SCVRL_DT_COUNT][6 * 8], sc[SCVRL_DT_COUNT][8];
    int64_t s23[2] = { 2, 3 }, s0[1] = { 0 }, s302[3] = { 3, 0, 2 };
    char err[512], name[64];
    scvrl_st_writer *w = scvrl_st_writer_new();
    int ok = w != NULL;
    for (int t = 0; t < SCVRL_DT_COUNT && ok; t++) {
        size_t sz = scvrl_dtype_size((scvrl_dtype)t);
        for (int i = 0; i < 7; i++) {
            double v = i < 6 ? vals[i] : 42.0;
            uint8_t *o = i < 6 ? raw[t] + i * sz : sc[t];
            float f = (float)v; int32_t i32 = (int32_t)v; int64_t i64 = (int64_t)v;
            uint16_t h = t == SCVRL_DT_F16 ? scvrl_f32_to_f16(f) : scvrl_f32_to_bf16(f);
            if (t == SCVRL_DT_F32) memcpy(o, &f, 4); else if (t == SCVRL_DT_F64) memcpy(o, &v, 8);
            else if (t == SCVRL_DT_I32) memcpy(o, &i32, 4); else if (t == SCVRL_DT_I64) memcpy(o, &i64, 8);
            else memcpy(o, &h, 2);
        }
        const char *dn = scvrl_dtype_name((scvrl_dtype)t);
        snprintf(name, sizeof name, "m.%s", dn); ok &= scvrl_st_writer_add(w, name, (scvrl_dtype)t, 2, s23, raw[t]) == 0;
        snprintf(name, sizeof name, "s.%s", dn); ok &= scvrl_st_writer_add(w, name, (scvrl_dtype)t, 0, NULL, sc[t]) == 0;
        snprintf(name, sizeof name, "z.%s", dn); ok &= scvrl_st_writer_add(w, name, (scvrl_dtype)t, 1, s0, NULL) == 0;
        snprintf(name, sizeof name, "e.%s", dn); ok &= scvrl_st_writer_add(w, name, (scvrl_dtype)t, 3, s302, raw[t]) == 0;
    }
    const char *path = tpath("dtypes.safetensors");
    ok &= scvrl_st_writer_save(w, path, err, sizeof err) == 0;
    test_check(ok, "write every dtype (2-d, 0-d scalar, zero-size)", "%s", err);
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, sizeof err)) { test_fail("read every dtype back", "%s", err); scvrl_st_writer_free(w); return; }
    int bad = 0;
    for (int t = 0; t < SCVRL_DT_COUNT; t++) {
        const char *dn = scvrl_dtype_name((scvrl_dtype)t);
        size_t sz = scvrl_dtype_size((scvrl_dtype)t);
        float out[6];
        snprintf(name, sizeof name, "m.%s", dn);
        const scvrl_st_entry *e = scvrl_st_find(&f, name);
        if (!same_entry(e, name, (scvrl_dtype)t, 2, s23) || memcmp(f.data + e->begin, raw[t], 6 * sz)) { bad++; continue; }
        if (scvrl_st_read_f32(&f, e, out, err, sizeof err)) { bad++; continue; }
        int integer = t == SCVRL_DT_I32 || t == SCVRL_DT_I64;
        for (int i = 0; i < 6; i++) if (out[i] != (float)(integer ? (double)(int64_t)vals[i] : vals[i])) bad++;
        snprintf(name, sizeof name, "s.%s", dn);
        e = scvrl_st_find(&f, name);
        if (!same_entry(e, name, (scvrl_dtype)t, 0, NULL) || e->numel != 1 || scvrl_st_read_f32(&f, e, out, err, sizeof err) ||
            out[0] != 42.0f) bad++;
        snprintf(name, sizeof name, "z.%s", dn);
        e = scvrl_st_find(&f, name);
        if (!same_entry(e, name, (scvrl_dtype)t, 1, s0) || e->numel != 0 || scvrl_st_read_f32(&f, e, NULL, err, sizeof err)) bad++;
        snprintf(name, sizeof name, "e.%s", dn);
        e = scvrl_st_find(&f, name);
        if (!same_entry(e, name, (scvrl_dtype)t, 3, s302) || e->numel != 0) bad++;
    }
    // header order is the order added
    for (int i = 0; i < f.n && i < 4; i++) if (strncmp(f.e[i].name, &"m.F32s.F32z.F32e.F32"[5 * i], 5)) bad++;
    test_check(bad == 0 && f.n == 4 * SCVRL_DT_COUNT && f.n_meta == 0, "read every dtype back: entries, raw bytes, f32 values",
               "%d wrong (n %d)", bad, f.n);
    // header is padded to 8; the data holds 6 + 1 values of each dtype
    uint64_t hn = 0;
    uint8_t head[8];
    read_bytes(path, head, 8);
    for (int k = 0; k < 8; k++) hn |= (uint64_t)head[k] << (8 * k);
    test_check(hn % 8 == 0 && f.data_size == 7 * (4 + 2 + 2 + 4 + 8 + 8), "header padded to a multiple of 8, data size",
               "header length %llu, data %llu", (unsigned long long)hn, (unsigned long long)f.data_size);
    scvrl_st_close(&f);
    scvrl_st_writer_free(w);
}

static void test_roundtrip_strings(void) {
    char err[512], ctl[40], longname[SCVRL_ST_MAX_NAME + 2];
    float v = 1.0f;
    int64_t one[1] = { 1 };
    for (int i = 1; i < 32; i++) ctl[i - 1] = (char)i;
    ctl[31] = 0x7F; ctl[32] = '\0';
    memset(longname, 'n', SCVRL_ST_MAX_NAME); longname[SCVRL_ST_MAX_NAME] = '\0';
    const char *names[] = { "quote\"d", "back\\slash", "new\nline\ttab", ctl, "sl/ash", "\xc3\xbcn\xc3\xaf\xe2\x9c\x93 \xf0\x9f\x98\x80",
                            "{\"a\":1}", "__metadata", longname, " " };
    const char *keys[] = { "k\"q", "k\\b", "ctl", "uni\xc3\xa9", "empty", "json" };
    const char *vals[] = { "v\"q\\", "\\\\\\", ctl, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "", "{\"lr\": 1e-4, \"x\": [1, 2]}" };
    int nn = (int)(sizeof names / sizeof names[0]), nk = (int)(sizeof keys / sizeof keys[0]);
    scvrl_st_writer *w = scvrl_st_writer_new();
    for (int i = 0; i < nn; i++) scvrl_st_writer_add(w, names[i], SCVRL_DT_F32, 1, one, &v);
    for (int i = 0; i < nk; i++) scvrl_st_writer_meta(w, keys[i], i == 0 ? "replaced later" : vals[i]);
    scvrl_st_writer_meta(w, keys[0], vals[0]);
    const char *path = tpath("strings.safetensors");
    int rc = scvrl_st_writer_save(w, path, err, sizeof err);
    test_check(rc == 0 && !scvrl_st_writer_error(w), "write names and metadata needing escapes", "%s", err);
    scvrl_st_writer_free(w);
    scvrl_st_file f;
    if (scvrl_st_open(&f, path, err, sizeof err)) { test_fail("names and metadata round trip", "%s", err); return; }
    int bad = f.n != nn || f.n_meta != nk;
    for (int i = 0; i < nn && !bad; i++) if (!scvrl_st_find(&f, names[i]) || strcmp(f.e[i].name, names[i])) bad = 1 + i;
    for (int i = 0; i < nk && !bad; i++) {
        const char *m = scvrl_st_meta(&f, keys[i]);
        if (!m || strcmp(m, vals[i]) || strcmp(f.meta_key[i], keys[i])) bad = 100 + i;
    }
    test_check(!bad, "names and metadata round trip (quotes, backslashes, control chars, UTF-8, 511-byte name)",
               "first mismatch %d (n %d, n_meta %d)", bad, f.n, f.n_meta);
    test_check(!scvrl_st_find(&f, "nope") && !scvrl_st_meta(&f, "nope") && !scvrl_st_meta(&f, "quote\"d"),
               "find/meta of an absent name give NULL", "found something");
    scvrl_st_close(&f);
    scvrl_st_close(&f);   // closing twice is harmless
    test_ok("close twice");
}

// ---- the reference layout, byte for byte ----

static void test_reference_bytes(void) {
    // the safetensors README example: {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t buf[256], *mem = NULL;
    float two[2] = { 1.0f, -2.5f }, out[2];
    char err[512];
    int64_t s2[1] = { 2 };
    uint64_t mlen = 0;
    size_t n = mkfile(buf, hdr, 0, two, 8);
    scvrl_st_file f;
    int rc = scvrl_st_parse(&f, buf, n, "example.safetensors", err, sizeof err);
    const scvrl_st_entry *e = rc ? NULL : scvrl_st_find(&f, "a");
    rc = rc || !e || e->dtype != SCVRL_DT_F32 || e->ndim != 1 || e->shape[0] != 2 || e->begin != 0 || e->end != 8 ||
         scvrl_st_read_f32(&f, e, out, err, sizeof err) || out[0] != 1.0f || out[1] != -2.5f;
    test_check(!rc, "read the reference example header (unpadded, 54 bytes)", "%s", err);
    scvrl_st_close(&f);
    // what we write for the same tensor is exactly that header, padded with spaces to 56
    scvrl_st_writer *w = scvrl_st_writer_new();
    scvrl_st_writer_add(w, "a", SCVRL_DT_F32, 1, s2, two);
    rc = scvrl_st_writer_to_memory(w, &mem, &mlen, err, sizeof err);
    n = mkfile(buf, hdr, 1, two, 8);
    test_check(rc == 0 && mlen == n && memcmp(mem, buf, n) == 0, "writer output equals the reference bytes", "rc %d len %llu", rc,
               (unsigned long long)mlen);
    const char *path = tpath("ref.safetensors");
    uint8_t disk[256];
    rc = scvrl_st_writer_save(w, path, err, sizeof err);
    test_check(rc == 0 && read_bytes(path, disk, sizeof disk) == (long)n && memcmp(disk, buf, n) == 0,
               "saved file equals to_memory bytes", "%s", err);
    SCVRL_FREE(mem);
    scvrl_st_writer_free(w);
    // metadata first, whitespace and key order as another writer might produce them
    static const char hdr2[] = " { \"b\" : {\"shape\":[1, 2], \"data_offsets\":[8,12],\"dtype\":\"BF16\"},\n"
                               "\"__metadata__\":{\"format\":\"pt\"}, \"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}\t";
    uint8_t data[12] = { 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x3F, 0x40, 0xC0 };
    n = mkfile(buf, hdr2, 1, data, 12);
    rc = scvrl_st_parse(&f, buf, n, "order.safetensors", err, sizeof err);
    float o3[2] = { 0, 0 };
    rc = rc || f.n != 2 || strcmp(f.e[0].name, "b") || !scvrl_st_meta(&f, "format") || strcmp(scvrl_st_meta(&f, "format"), "pt") ||
         scvrl_st_read_f32(&f, scvrl_st_find(&f, "a"), o3, err, sizeof err) || o3[0] != -2.0f ||
         scvrl_st_read_f32(&f, scvrl_st_find(&f, "b"), o3, err, sizeof err) || o3[0] != 1.0f || o3[1] != -3.0f;
    test_check(!rc, "whitespace, any field order, tensors out of data order, metadata in the middle", "%s", err);
    scvrl_st_close(&f);
    n = mkfile(buf, "{}", 1, NULL, 0);
    rc = scvrl_st_parse(&f, buf, n, "empty.safetensors", err, sizeof err);
    test_check(rc == 0 && f.n == 0 && f.data_size == 0, "a file with no tensors", "%s", err);
    scvrl_st_close(&f);
}

// ---- refusals ----

static int refused(const char *hdr, const void *data, size_t dn, const char *want, const char *label) {
    uint8_t buf[4096];
    char err[512] = "";
    size_t n = mkfile(buf, hdr, 1, data, dn);
    const char *path = tpath(label);
    scvrl_st_file f;
    write_bytes(path, buf, n);
    int rc = scvrl_st_open(&f, path, err, sizeof err);
    int ok = rc == -1 && strstr(err, path) == err && strstr(err, want) && f.n == 0 && f.e == NULL && f.priv == NULL;
    if (!ok) printf("# %s: rc %d, message: %s (want \"%s\")\n", label, rc, err, want);
    scvrl_st_close(&f);
    remove(path);
    return ok;
}

static void test_refusals(void) {
    static const uint8_t z[64];
    struct { const char *name, *hdr; size_t dn; const char *want; } c[] = {
        { "bad JSON: missing brace", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "not valid JSON" },
        { "bad JSON: trailing comma", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],}}", 4, "not valid JSON" },
        { "bad JSON: single quotes", "{'a':1}", 0, "not valid JSON" },
        { "bad JSON: leading zero", "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, "not valid JSON" },
        { "bad JSON: garbage after", "{} x", 0, "after the JSON object" },
        { "bad JSON: bad escape", "{\"a\\q\":1}", 0, "invalid escape" },
        { "bad JSON: lone surrogate", "{\"\\ud800\":1}", 0, "surrogate" },
        { "bad JSON: raw control char", "{\"a\tb\":1}", 0, "control character" },
        { "bad JSON: invalid UTF-8", "{\"a\xc0\xaf\":1}", 0, "UTF-8" },
        { "bad JSON: \\u0000", "{\"a\\u0000\":1}", 0, "NUL" },
        { "bad JSON: empty", "", 0, "not valid JSON" },
        { "header not an object", "[1,2]", 0, "not a JSON object" },
        { "bad dtype", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "dtype \"U8\" is not supported" },
        { "dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" must be a string" },
        { "missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing field \"dtype\"" },
        { "missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing field \"data_offsets\"" },
        { "unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown field" },
        { "field twice", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "given twice" },
        { "negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "is negative" },
        { "fractional shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "not an integer" },
        { "exponent shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, "not an integer" },
        { "string shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "not a number" },
        { "shape not array", "{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "must be an array" },
        { "too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "more than 8" },
        { "huge dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}", 4, "too large" },
        { "shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows" },
        { "bytes overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8, "needs" },
        { "wrong byte count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "hold 4 bytes but F32 shape [2] needs 2 x 4" },
        { "offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end of the data (4 bytes" },
        { "offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "end before they begin" },
        { "offsets 3 numbers", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "must be [begin, end]" },
        { "offset negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "data_offsets[0] is negative" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
          12, "'a' and 'b' overlap" },
        { "same offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
          4, "overlap" },
        { "empty inside another", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
          8, "overlap" },
        { "hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
          12, "hole in the data: bytes [4, 8)" },
        { "hole at start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole in the data: bytes [0, 4)" },
        { "trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "cover only the first 4" },
        { "duplicate name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
          8, "'a' appears twice" },
        { "duplicate after unescape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
          8, "appears twice" },
        { "metadata not object", "{\"__metadata__\":[\"a\"]}", 0, "must be an object" },
        { "metadata non-string", "{\"__metadata__\":{\"step\":100}}", 0, "\"step\" is not a string" },
        { "metadata nested", "{\"__metadata__\":{\"cfg\":{\"a\":\"b\"}}}", 0, "\"cfg\" is not a string" },
        { "metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "appears twice" },
        { "metadata key twice", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "\"k\" appears twice" },
        { "entry not object", "{\"a\":[1]}", 0, "expected an object" },
        { "empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name" },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "bad-%02zu.safetensors", i);
        if (!refused(c[i].hdr, z, c[i].dn, c[i].want, label)) { bad++; printf("#   (case \"%s\")\n", c[i].name); }
    }
    test_check(bad == 0, "malformed headers refused with the file name and the problem", "%d of %zu not", bad, sizeof c / sizeof c[0]);

    // name length limit, and nesting depth limit
    char hdr[2048];
    int k = snprintf(hdr, sizeof hdr, "{\"");
    for (int i = 0; i < SCVRL_ST_MAX_NAME + 1; i++) hdr[k++] = 'x';
    snprintf(hdr + k, sizeof hdr - (size_t)k, "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    test_check(refused(hdr, z, 4, "512 bytes long", "longname.safetensors"), "a 512-byte name is refused", "accepted");
    k = snprintf(hdr, sizeof hdr, "{\"a\":");
    for (int i = 0; i < 200; i++) hdr[k++] = '[';
    for (int i = 0; i < 200; i++) hdr[k++] = ']';
    snprintf(hdr + k, sizeof hdr - (size_t)k, "}");
    test_check(refused(hdr, z, 0, "nested too deeply", "deep.safetensors"), "nesting deeper than 64 refused", "accepted");
}

static void test_bad_lengths(void) {
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t buf[256], big[16];
    float two[2] = { 1, 2 };
    char err[512], label[64];
    scvrl_st_file f;
    size_t n = mkfile(buf, hdr, 1, two, 8);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        snprintf(label, sizeof label, "runs/cut-%zu.safetensors", cut);
        err[0] = '\0';
        if (scvrl_st_parse(&f, buf, cut, label, err, sizeof err) != -1 || strncmp(err, label, strlen(label))) {
            bad++;
            printf("# cut %zu: %s\n", cut, err);
        }
        scvrl_st_close(&f);
    }
    test_check(bad == 0, "truncated at every cut point: refused, file named", "%d cut points accepted", bad);
    scvrl_st_parse(&f, buf, 30, "runs/x.safetensors", err, sizeof err);
    test_check(strcmp(err, "runs/x.safetensors: truncated: header says 56 bytes, file has 22 after the length") == 0,
               "truncation message", "%s", err);
    memcpy(big, buf, 16);
    big[0] = 0x00; big[1] = 0xE2; big[2] = 0x05; big[3] = 0x06;      // ~101 MB
    int rc = scvrl_st_parse(&f, big, sizeof big, "big.safetensors", err, sizeof err);
    test_check(rc == -1 && strstr(err, "big.safetensors: header length 101048832 is absurd"), "absurd header length refused", "%s", err);
    memset(big, 0xFF, 8);
    rc = scvrl_st_parse(&f, big, sizeof big, "ff.safetensors", err, sizeof err);
    test_check(rc == -1 && strstr(err, "absurd"), "header length 2^64-1 refused", "%s", err);
    big[0] = 200; memset(big + 1, 0, 7);
    rc = scvrl_st_parse(&f, big, sizeof big, "long.safetensors", err, sizeof err);
    test_check(rc == -1 && strstr(err, "header says 200 bytes, file has 8"), "header length past the end refused", "%s", err);
    rc = scvrl_st_parse(&f, NULL, 0, NULL, err, sizeof err);
    test_check(rc == -1 && strstr(err, "<memory>: truncated"), "NULL buffer refused", "%s", err);
    rc = scvrl_st_open(&f, tpath("missing.safetensors"), err, sizeof err);
    test_check(rc == -1 && strstr(err, "missing.safetensors: cannot open: No such file"), "missing file refused", "%s", err);
    rc = scvrl_st_open(&f, tdir, err, sizeof err);
    test_check(rc == -1 && strstr(err, "not a regular file"), "a folder refused", "%s", err);
    rc = scvrl_st_parse(&f, buf, n, "ok", NULL, 0);   // err may be NULL
    scvrl_st_entry forged = f.e[0];
    forged.end = 16; forged.numel = 4; forged.shape[0] = 4;
    float out[4];
    test_check(rc == 0 && scvrl_st_read_f32(&f, &forged, out, err, sizeof err) == -1 && strstr(err, "does not match"),
               "read_f32 refuses an entry that is not within the file", "%s", err);
    scvrl_st_close(&f);
}

// ---- writer refusals and atomic save ----

static void test_writer_refusals(void) {
    char err[512], bad[4] = { 'a', (char)0xFF, 'b', 0 };
    float v[4] = { 0 };
    int64_t s1[1] = { 1 }, sneg[1] = { -1 }, s9[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    scvrl_st_writer *w = scvrl_st_writer_new();
    int r = 0;
    r += scvrl_st_writer_add(w, "ok", SCVRL_DT_F32, 1, s1, v) == 0;
    r += scvrl_st_writer_add(w, "ok", SCVRL_DT_F32, 1, s1, v) == -1;
    r += scvrl_st_writer_add(w, "d", SCVRL_DT_COUNT, 1, s1, v) == -1;
    r += scvrl_st_writer_add(w, "n", SCVRL_DT_F32, 9, s9, v) == -1;
    r += scvrl_st_writer_add(w, "neg", SCVRL_DT_F32, 1, sneg, v) == -1;
    r += scvrl_st_writer_add(w, "null", SCVRL_DT_F32, 1, s1, NULL) == -1;
    r += scvrl_st_writer_add(w, "", SCVRL_DT_F32, 1, s1, v) == -1;
    r += scvrl_st_writer_add(w, "__metadata__", SCVRL_DT_F32, 1, s1, v) == -1;
    r += scvrl_st_writer_add(w, bad, SCVRL_DT_F32, 1, s1, v) == -1;
    r += scvrl_st_writer_meta(w, "k", bad) == -1;
    test_check(r == 10 && strstr(scvrl_st_writer_error(w), "'ok' added twice"), "writer refuses bad tensors and keeps the first reason",
               "%d of 10, %s", r, scvrl_st_writer_error(w));
    const char *path = tpath("refused.safetensors");
    int rc = scvrl_st_writer_save(w, path, err, sizeof err);
    test_check(rc == -1 && strstr(err, path) == err && strstr(err, "not saved: tensor name 'ok' added twice") && !exists(path),
               "save after a refusal fails and writes nothing", "%s", err);
    scvrl_st_writer_free(w);
}

static int write_one(const char *path, float val, char *err, size_t errlen, int n) {
    static float data[4096];
    int64_t s[1] = { n };
    for (int i = 0; i < n; i++) data[i] = val;
    scvrl_st_writer *w = scvrl_st_writer_new();
    scvrl_st_writer_add(w, "w", SCVRL_DT_F32, 1, s, data);
    scvrl_st_writer_meta(w, "v", "x");
    int rc = scvrl_st_writer_save(w, path, err, errlen);
    scvrl_st_writer_free(w);
    return rc;
}

static int holds(const char *path, float val) {       // path is a valid file whose "w" is all val
    scvrl_st_file f;
    char err[512];
    float out[4096];
    if (scvrl_st_open(&f, path, err, sizeof err)) return 0;
    const scvrl_st_entry *e = scvrl_st_find(&f, "w");
    int ok = e && e->numel <= 4096 && scvrl_st_read_f32(&f, e, out, err, sizeof err) == 0;
    for (int64_t i = 0; ok && i < e->numel; i++) ok = out[i] == val;
    scvrl_st_close(&f);
    return ok;
}

static void test_atomic_save(void) {
    char err[512], tmp[600], sub[300];
    const char *path = tpath("atomic.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int rc = write_one(path, 1.0f, err, sizeof err, 4);
    rc |= write_one(path, 2.0f, err, sizeof err, 8);
    test_check(rc == 0 && holds(path, 2.0f) && !exists(tmp), "save over an existing file replaces it, no temporary left", "%s", err);

    // a read-only folder. Root ignores permissions, so then a child process that became "nobody" tries.
    snprintf(sub, sizeof sub, "%s", tpath("ro"));
    mkdir(sub, 0755);
    char rop[400], rotmp[500];
    snprintf(rop, sizeof rop, "%s/model.safetensors", sub);
    snprintf(rotmp, sizeof rotmp, "%s.tmp.%ld", rop, (long)getpid());
    write_one(rop, 1.0f, err, sizeof err, 4);
    chmod(sub, 0555);
    if (geteuid() != 0) {
        rc = write_one(rop, 3.0f, err, sizeof err, 4);
        test_check(rc == -1 && strstr(err, rop) == err && strstr(err, "Permission denied") && holds(rop, 1.0f) && !exists(rotmp),
                   "save into a read-only folder fails, old file intact", "rc %d: %s", rc, err);
    } else {
        chmod(tdir, 0755);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {   // child: 0 when saving failed as it should
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
            rc = write_one(rop, 3.0f, err, sizeof err, 4);
            _exit(rc == -1 && strstr(err, rop) == err && strstr(err, "Permission denied") ? 0 : 1);
        }
        int st = -1;
        if (pid > 0) waitpid(pid, &st, 0);
        chmod(tdir, 0700);
        if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2)
            test_skip("save into a read-only folder fails, old file intact", "running as root and cannot become nobody");
        else
            test_check(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && holds(rop, 1.0f) && !exists(rotmp),
                       "save into a read-only folder fails, old file intact (as nobody)", "child status %d", st);
    }
    chmod(sub, 0755);

    // the temporary file cannot be created (a folder is in its way): fails, old file intact
    mkdir(tmp, 0755);
    rc = write_one(path, 3.0f, err, sizeof err, 4);
    test_check(rc == -1 && strstr(err, path) == err && strstr(err, "cannot create") && holds(path, 2.0f),
               "temporary file not creatable: fails, old file intact", "rc %d: %s", rc, err);
    rmdir(tmp);

    // the disk fills up mid-write (RLIMIT_FSIZE works for root too): fails, old intact, temporary removed
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old; lim.rlim_cur = 2000;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        rc = write_one(path, 4.0f, err, sizeof err, 4096);
        setrlimit(RLIMIT_FSIZE, &old);
        test_check(rc == -1 && strstr(err, path) == err && strstr(err, "not saved: writing") && holds(path, 2.0f) && !exists(tmp),
                   "write failure mid-file: fails, old file intact, temporary removed", "rc %d: %s", rc, err);
    } else test_skip("write failure mid-file", "setrlimit(RLIMIT_FSIZE) failed: %s", strerror(errno));
    signal(SIGXFSZ, prev);

    // rename fails (PATH is a folder): fails, temporary removed
    const char *dirpath = tpath("adir.safetensors");
    char dtmp[600];
    snprintf(dtmp, sizeof dtmp, "%s.tmp.%ld", dirpath, (long)getpid());
    mkdir(dirpath, 0755);
    rc = write_one(dirpath, 1.0f, err, sizeof err, 4);
    test_check(rc == -1 && strstr(err, "cannot rename") && !exists(dtmp), "rename failure: fails, temporary removed", "rc %d: %s", rc, err);
    rmdir(dirpath);
    rc = write_one(tpath("no/such/folder/x.safetensors"), 1.0f, err, sizeof err, 4);
    test_check(rc == -1 && strstr(err, "no/such/folder/x.safetensors: not saved: cannot create"), "save into a missing folder fails",
               "%s", err);
    // a relative path (no folder part) saves in the current folder
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(tdir) == 0) {
        rc = write_one("rel.safetensors", 5.0f, err, sizeof err, 4);
        int ok = rc == 0 && holds("rel.safetensors", 5.0f);
        if (chdir(cwd) != 0) ok = 0;
        test_check(ok, "save to a bare file name", "%s", err);
    }
}

// ---- against PyTorch ----

static uint64_t fnv1a_u32(const uint32_t *v, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) { h ^= (v[i] >> (8 * k)) & 0xFF; h *= 0x100000001B3ull; }
    return h;
}

static int read_all(const scvrl_st_file *f, const char *name, float *out, int64_t *n) {
    char err[512];
    const scvrl_st_entry *e = scvrl_st_find(f, name);
    if (!e || e->numel > 4096 || scvrl_st_read_f32(f, e, out, err, sizeof err)) { printf("# %s: missing or unreadable\n", name); return -1; }
    *n = e->numel;
    return 0;
}

static int bits_equal(const float *a, const float *b, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (fbits(a[i]) != fbits(b[i])) { printf("# %s[%lld]: %08x, torch %08x\n", what, (long long)i, fbits(a[i]), fbits(b[i])); return 0; }
    return 1;
}

static void test_torch_fixture(void) {
    static const char *cands[] = { "tests/data/torch_dtypes.safetensors", "../tests/data/torch_dtypes.safetensors", "data/torch_dtypes.safetensors" };
    static float src[4096], a[4096], b[4096];
    static uint32_t all[65536];
    char err[512] = "";
    scvrl_st_file f;
    int rc = -1;
    for (size_t i = 0; i < 3 && rc; i++) rc = scvrl_st_open(&f, cands[i], err, sizeof err);
    if (rc) { test_fail("read the PyTorch fixture", "%s (run from the repository root)", err); return; }
    test_check(f.n == 14 && f.n_meta == 4 && strcmp(scvrl_st_meta(&f, "format"), "pt") == 0, "read the PyTorch fixture",
               "n %d n_meta %d", f.n, f.n_meta);
    int64_t n = 0, m = 0;
    int ok = read_all(&f, "src", src, &n) == 0;
    ok = ok && read_all(&f, "src_f16", a, &m) == 0 && read_all(&f, "src_f16_f32", b, &m) == 0 && bits_equal(a, b, m, "f16->f32");
    const scvrl_st_entry *e = scvrl_st_find(&f, "src_f16");
    for (int64_t i = 0; ok && i < n; i++)
        if (scvrl_f32_to_f16(src[i]) != scvrl__st_ld16(f.data + e->begin + 2 * i)) {
            printf("# f16(%g): %04x, torch %04x\n", src[i], scvrl_f32_to_f16(src[i]), scvrl__st_ld16(f.data + e->begin + 2 * i)); ok = 0;
        }
    test_check(ok, "f16 both ways bit-exact with torch", "mismatch");
    ok = read_all(&f, "src_bf16", a, &m) == 0 && read_all(&f, "src_bf16_f32", b, &m) == 0 && bits_equal(a, b, m, "bf16->f32");
    e = scvrl_st_find(&f, "src_bf16");
    for (int64_t i = 0; ok && i < n; i++)
        if (scvrl_f32_to_bf16(src[i]) != scvrl__st_ld16(f.data + e->begin + 2 * i)) {
            printf("# bf16(%g): %04x, torch %04x\n", src[i], scvrl_f32_to_bf16(src[i]), scvrl__st_ld16(f.data + e->begin + 2 * i)); ok = 0;
        }
    test_check(ok, "bf16 both ways bit-exact with torch", "mismatch");
    ok = read_all(&f, "src_f64", a, &m) == 0 && bits_equal(a, src, n, "f64->f32");
    ok = ok && read_all(&f, "ints_i32", a, &m) == 0 && read_all(&f, "ints_i32_f32", b, &m) == 0 && bits_equal(a, b, m, "i32->f32");
    ok = ok && read_all(&f, "ints_i64", a, &m) == 0 && read_all(&f, "ints_i64_f32", b, &m) == 0 && bits_equal(a, b, m, "i64->f32");
    test_check(ok, "F64/I32/I64 -> f32 as torch", "mismatch");
    for (uint32_t h = 0; h < 65536; h++) all[h] = fbits(scvrl_f16_to_f32((uint16_t)h));
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a_u32(all, 65536));
    test_check(strcmp(hex, scvrl_st_meta(&f, "f16_all_fnv1a")) == 0, "f16 -> f32 of all 65536 patterns equals torch (hash)", "%s vs %s",
               hex, scvrl_st_meta(&f, "f16_all_fnv1a"));
    for (uint32_t h = 0; h < 65536; h++) all[h] = fbits(scvrl_bf16_to_f32((uint16_t)h));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a_u32(all, 65536));
    test_check(strcmp(hex, scvrl_st_meta(&f, "bf16_all_fnv1a")) == 0, "bf16 -> f32 of all 65536 patterns equals torch (hash)", "%s vs %s",
               hex, scvrl_st_meta(&f, "bf16_all_fnv1a"));
    const scvrl_st_entry *sc = scvrl_st_find(&f, "scalar"), *em = scvrl_st_find(&f, "empty"), *mat = scvrl_st_find(&f, "mat");
    const scvrl_st_entry *uni = scvrl_st_find(&f, "\xc3\xbcn\xc3\xaf\xe2\x9c\x93 \xf0\x9f\x98\x80");
    const char *tricky = scvrl_st_meta(&f, "tricky \"string\"");
    ok = sc && sc->ndim == 0 && sc->numel == 1 && em && em->ndim == 2 && em->numel == 0 && mat && mat->shape[1] == 3 && uni &&
         tricky && strcmp(tricky, "back\\slash\nnew line\ttab \xc3\xa9") == 0;
    static const double mat_ref[6] = { 1.0, -2.0, 0.5, 3.0, 1e-3, -7.25 };   // bf16 keeps 8 significant bits
    ok = ok && scvrl_st_read_f32(&f, mat, a, err, sizeof err) == 0 && a[0] == 1.0f && a[5] == -7.25f &&
         test_rel_err_f(a, mat_ref, 6) < 1e-3;
    ok = ok && scvrl_st_read_f32(&f, uni, a, err, sizeof err) == 0 && a[0] == 1.25f && a[1] == -4.0f;
    test_check(ok, "fixture: 0-d, empty, 2-d, \\u-escaped name (surrogate pair), escaped metadata", "mismatch %s", err);
    scvrl_st_close(&f);
}

static void cleanup(void) {
    DIR *d = opendir(tdir);
    struct dirent *de;
    char p[1024];
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tdir, de->d_name);
        if (remove(p) != 0) {   // a folder with files in it (ro/)
            char q[1400];
            DIR *s = opendir(p);
            struct dirent *se;
            while (s && (se = readdir(s))) {
                if (strcmp(se->d_name, ".") && strcmp(se->d_name, "..")) { snprintf(q, sizeof q, "%s/%s", p, se->d_name); remove(q); }
            }
            if (s) closedir(s);
            remove(p);
        }
    }
    if (d) closedir(d);
    rmdir(tdir);
}

int main(void) {
    snprintf(tdir, sizeof tdir, "/tmp/scvrl-test-st-XXXXXX");
    if (!mkdtemp(tdir)) { test_fail("temporary folder", "%s", strerror(errno)); return test_done(); }
    test_dtypes();
    test_conversions();
    test_roundtrip_dtypes();
    test_roundtrip_strings();
    test_reference_bytes();
    test_refusals();
    test_bad_lengths();
    test_writer_refusals();
    test_atomic_save();
    test_torch_fixture();
    cleanup();
    return test_done();
}
