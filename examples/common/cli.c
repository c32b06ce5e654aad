// examples/common/cli.c - see cli.h.
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------
// The metavar shown after a flag: the table's, else the choices joined with '|', else by type.
static const char *cli__metavar(const cli_flag *f, char *buf, size_t n) {
    if (f->type == CLI_BOOL) return "";
    if (f->metavar) return f->metavar;
    if (f->type == CLI_CHOICE && f->choices) {
        size_t k = 0;
        buf[0] = 0;
        for (int i = 0; f->choices[i] && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? "|" : "", f->choices[i]);
        return buf;
    }
    return f->type == CLI_DOUBLE ? "X" : f->type == CLI_STR ? "S" : "N";
}

// " (default 8)", " (required)" or "" from the value dst holds now.
static void cli__default(const cli_flag *f, char *buf, size_t n) {
    buf[0] = 0;
    if (f->flags & CLI_REQUIRED) { snprintf(buf, n, " (required)"); return; }
    if (f->flags & CLI_NO_DEFAULT) return;
    switch (f->type) {
    case CLI_INT: snprintf(buf, n, " (default %d)", *(const int *)f->dst); break;
    case CLI_INT64: snprintf(buf, n, " (default %lld)", (long long)*(const int64_t *)f->dst); break;
    case CLI_DOUBLE: snprintf(buf, n, " (default %g)", *(const double *)f->dst); break;
    case CLI_STR:
    case CLI_CHOICE: {
        const char *v = *(const char *const *)f->dst;
        if (v) snprintf(buf, n, " (default %s)", v);
        break;
    }
    case CLI_BOOL: break;
    }
}

void cli_help(const cli_spec *s, FILE *f) {
    fprintf(f, "usage: %s %s\n", s->prog, s->usage ? s->usage : "[flags]");
    if (s->about) fprintf(f, "%s\n", s->about);
    fprintf(f, "\nFlags:\n");
    for (int i = 0; i < s->n_flags; i++) {
        const cli_flag *fl = &s->flags[i];
        char mv[160], head[200], def[200];
        const char *m = cli__metavar(fl, mv, sizeof mv);
        snprintf(head, sizeof head, "%s%s%s", fl->name, *m ? " " : "", m);
        cli__default(fl, def, sizeof def);
        if (strlen(head) <= 22) fprintf(f, "  %-22s %s%s\n", head, fl->help ? fl->help : "", def);
        else fprintf(f, "  %s\n  %-22s %s%s\n", head, "", fl->help ? fl->help : "", def);
    }
    fprintf(f, "  %-22s %s\n", "--help", "this text");
    if (s->extra_help) { fprintf(f, "\n"); s->extra_help(f); }
    if (s->epilog) fprintf(f, "\n%s\n", s->epilog);
}

void cli_usage_error(const cli_spec *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", s->prog);
    va_end(ap);
    exit(2);
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------
static void cli__set(const cli_spec *s, const cli_flag *f, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case CLI_INT:
    case CLI_INT64:
    case CLI_DOUBLE: {
        double x;
        if (f->type == CLI_DOUBLE) x = strtod(v, &end);
        else x = (double)strtoll(v, &end, 10);
        // infinity only where the flag's range allows it (e.g. --beta inf: uniform sampling)
        if (errno || end == v || *end || isnan(x) || (isinf(x) && !(f->hi == INFINITY && x > 0)))
            cli_usage_error(s, "%s needs %s, not '%s'", f->name, f->type == CLI_DOUBLE ? "a number" : "an integer", v);
        if (f->lo != f->hi && (x < f->lo || x > f->hi))
            cli_usage_error(s, "%s must be in %g..%g, not %s", f->name, f->lo, f->hi, v);
        if (f->type == CLI_INT) {
            if (x < -2147483648.0 || x > 2147483647.0) cli_usage_error(s, "%s: %s is out of range", f->name, v);
            *(int *)f->dst = (int)x;
        } else if (f->type == CLI_INT64) *(int64_t *)f->dst = strtoll(v, NULL, 10);
        else *(double *)f->dst = x;
        break;
    }
    case CLI_STR: *(const char **)f->dst = v; break;
    case CLI_CHOICE: {
        for (int i = 0; f->choices && f->choices[i]; i++)
            if (!strcmp(v, f->choices[i])) { *(const char **)f->dst = f->choices[i]; return; }
        char mv[160];
        cli_usage_error(s, "%s must be one of %s, not '%s'", f->name, cli__metavar(f, mv, sizeof mv), v);
    }
    case CLI_BOOL: *(int *)f->dst = 1; break;
    }
}

static const cli_flag *cli__find(const cli_spec *s, const char *arg, size_t len) {
    for (int i = 0; i < s->n_flags; i++)
        if (strlen(s->flags[i].name) == len && !strncmp(s->flags[i].name, arg, len)) return &s->flags[i];
    return NULL;
}

int cli_parse(const cli_spec *s, int argc, char **argv, int first, const char **pos, int maxpos) {
    int npos = 0, only_pos = 0;
    char *seen = (char *)calloc((size_t)s->n_flags + 1, 1);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        int is_flag = !only_pos && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.';
        if (is_flag && !strcmp(a, "--")) { only_pos = 1; continue; }
        if (!is_flag) {
            if (npos >= maxpos) cli_usage_error(s, "unexpected argument '%s'", a);
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { cli_help(s, stdout); exit(0); }
        const char *eq = strchr(a, '=');
        const cli_flag *f = cli__find(s, a, eq ? (size_t)(eq - a) : strlen(a));
        if (!f) cli_usage_error(s, "unknown flag '%s'", a);
        seen[f - s->flags] = 1;
        if (f->type == CLI_BOOL) {
            if (eq) cli_usage_error(s, "%s takes no value", f->name);
            cli__set(s, f, NULL);
        } else if (eq) cli__set(s, f, eq + 1);
        else if (i + 1 < argc) cli__set(s, f, argv[++i]);
        else cli_usage_error(s, "%s needs a value", f->name);
    }
    for (int i = 0; i < s->n_flags; i++)
        if ((s->flags[i].flags & CLI_REQUIRED) && !seen[i]) {
            free(seen);
            cli_usage_error(s, "%s is required", s->flags[i].name);
        }
    free(seen);
    return npos;
}

// ---------------------------------------------------------------------------
// Time, sizes, memory
// ---------------------------------------------------------------------------
double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cli_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *cli_fmt_bytes(char *buf, size_t n, double bytes) {
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    int u = 0;
    double v = bytes < 0 ? -bytes : bytes;
    while (v >= 1024.0 && u < 5) { v /= 1024.0; u++; }
    if (bytes < 0) v = -v;
    if (u == 0) snprintf(buf, n, "%.0f B", v);
    else snprintf(buf, n, fabs(v) < 10 ? "%.2f %s" : "%.1f %s", v, unit[u]);
    return buf;
}

const char *cli_fmt_duration(char *buf, size_t n, double s) {
    if (!(s == s)) { snprintf(buf, n, "?"); return buf; }
    if (s < 0) s = 0;
    if (s < 1e-3) snprintf(buf, n, "%.0f us", s * 1e6);
    else if (s < 1.0) snprintf(buf, n, "%.1f ms", s * 1e3);
    else if (s < 10.0) snprintf(buf, n, "%.2f s", s);
    else if (s < 60.0) snprintf(buf, n, "%.1f s", s);
    else {
        long long t = (long long)(s + 0.5);
        if (t < 3600) snprintf(buf, n, "%lldm %02llds", t / 60, t % 60);
        else if (t < 86400) snprintf(buf, n, "%lldh %02lldm", t / 3600, t % 3600 / 60);
        else snprintf(buf, n, "%lldd %02lldh", t / 86400, t % 86400 / 3600);
    }
    return buf;
}

int64_t cli_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) { kb = strtoll(line + 6, NULL, 10); break; }
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

// ---------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------
void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total, int quiet) {
    memset(p, 0, sizeof(*p));
    p->label = label; p->unit = unit; p->total = total; p->quiet = quiet;
    p->start = cli_now();
    p->last = p->start;
    p->log_every = 10.0;
    p->tty = isatty(2);
}

static void cli__progress_draw(cli_progress *p, double now) {
    double el = now - p->start, rate = el > 0 ? (double)p->done / el : 0.0;
    char e1[32], e2[32];
    cli_fmt_duration(e1, sizeof e1, el);
    if (p->done > 0 && rate > 0) cli_fmt_duration(e2, sizeof e2, (double)(p->total - p->done) / rate);
    else snprintf(e2, sizeof e2, "?");
    if (p->tty) {
        char bar[21];
        int fill = p->total > 0 ? (int)(20 * p->done / p->total) : 0;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.3g %s/s  elapsed %s  ETA %s\033[K", p->label, bar,
                (long long)p->done, (long long)p->total, p->unit, rate, p->unit, e1, e2);
        p->drawn = 1;
    } else {
        fprintf(stderr, "%s: %lld/%lld %s, %.3g %s/s, elapsed %s, ETA %s\n", p->label, (long long)p->done,
                (long long)p->total, p->unit, rate, p->unit, e1, e2);
    }
    fflush(stderr);
    p->last = now;
}

void cli_progress_update(cli_progress *p, int64_t done) {
    p->done = done;
    if (p->quiet || done >= p->total) return;     // the final state is cli_progress_finish's
    double now = cli_now();
    if (now - p->last < (p->tty ? 0.1 : p->log_every) && !(p->tty && !p->drawn)) return;
    cli__progress_draw(p, now);
}

void cli_progress_break(cli_progress *p) {
    if (p->tty && p->drawn) { fputc('\n', stderr); p->drawn = 0; }
}

void cli_progress_finish(cli_progress *p) {
    if (p->quiet) return;
    double el = cli_now() - p->start;
    char e[32];
    if (p->tty && p->drawn) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s: %lld %s in %s (%.3g %s/s)\n", p->label, (long long)p->done, p->unit,
            cli_fmt_duration(e, sizeof e, el), el > 0 ? (double)p->done / el : 0.0, p->unit);
    p->drawn = 0;
}

void cli_die(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}
