// examples/common/cli.h - the small command-line kit the example programs share:
// flag tables that parse argv and write their own --help, a progress bar on stderr with
// rate and ETA, human-readable sizes and durations, a monotonic clock and peak RSS.
//
//   static int batch = 8; static const char *out = NULL; static int quiet = 0;
//   static const cli_flag flags[] = {
//       { "--batch", CLI_INT, &batch, "N", "clips per forward", 1, 4096, NULL, 0 },
//       { "--out", CLI_STR, &out, "FILE", "output safetensors file", 0, 0, NULL, CLI_REQUIRED },
//       { "--quiet", CLI_BOOL, &quiet, NULL, "no progress on stderr", 0, 0, NULL, 0 },
//   };
//   cli_spec spec = { "embed", "--out FILE [flags]", "Embeds clips.", flags, 3, NULL, NULL };
//   cli_parse(&spec, argc, argv, 1, NULL, 0);     // exits 0 after --help, 2 on a bad flag
#ifndef SCVRL_CLI_H
#define SCVRL_CLI_H
#include <stdint.h>
#include <stdio.h>

typedef enum { CLI_INT, CLI_INT64, CLI_DOUBLE, CLI_STR, CLI_BOOL, CLI_CHOICE } cli_type;
enum { CLI_REQUIRED = 1, CLI_NO_DEFAULT = 2 };

// One flag. dst points at an int (CLI_INT, CLI_BOOL: set to 1), int64_t, double or const char *
// (CLI_STR, CLI_CHOICE: one of the NULL-terminated `choices`). Numbers are checked against
// [lo, hi] unless lo == hi. The value dst holds before parsing is the default --help shows.
typedef struct {
    const char *name;             // "--batch" (also accepted as --batch=VALUE)
    cli_type type;
    void *dst;
    const char *metavar;          // "N", "FILE" (NULL: from the type)
    const char *help;
    double lo, hi;
    const char *const *choices;   // CLI_CHOICE only
    int flags;                    // CLI_REQUIRED, CLI_NO_DEFAULT
} cli_flag;

typedef struct {
    const char *prog;             // "bench gemm", "embed"
    const char *usage;            // after the program name: "M N K [flags]"
    const char *about;            // a paragraph (may hold newlines); NULL: none
    const cli_flag *flags;
    int n_flags;
    void (*extra_help)(FILE *f);  // printed after the flags (e.g. the model presets); NULL: none
    const char *epilog;           // printed last; NULL: none
} cli_spec;

// Parses argv[first..argc): flags from the table, everything else (and all after "--") as
// positional arguments into pos[0..maxpos). Returns the positional count. --help / -h prints
// the help on stdout and exits 0; an unknown flag, a bad value, a missing required flag or too
// many positionals prints "PROG: why (see PROG --help)" on stderr and exits 2.
int cli_parse(const cli_spec *s, int argc, char **argv, int first, const char **pos, int maxpos);
void cli_help(const cli_spec *s, FILE *f);
// "PROG: message (see PROG --help)" on stderr, exit 2.
void cli_usage_error(const cli_spec *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

// "PROG: message" on stderr, exit 1: for errors in the input or the environment (bad files,
// out of memory), where the message names the file and the fix.
void cli_die(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

// --- time, sizes, memory ---
double cli_now(void);                                       // monotonic seconds
double cli_cpu_now(void);                                   // CPU seconds of the process (all threads)
// "512 B", "1.5 KiB", "37.2 MiB", "1.21 GiB"
const char *cli_fmt_bytes(char *buf, size_t n, double bytes);
// "850 us", "12.3 ms", "4.20 s", "3m 05s", "2h 03m", "3d 04h"
const char *cli_fmt_duration(char *buf, size_t n, double seconds);
// Peak resident set size (VmHWM of /proc/self/status) in bytes; -1 where unknown.
int64_t cli_peak_rss_bytes(void);

// --- progress on stderr ---
// On a terminal, one line redrawn at most 10 times a second:
//   embed [##########..........]  12/24 clips  1.52 clips/s  elapsed 7.9 s  ETA 7.9 s
// elsewhere (logs), a plain line at most every `log_every` seconds (default 10).
typedef struct {
    const char *label, *unit;
    int64_t total, done;
    double start, last, log_every;
    int tty, quiet, drawn;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total, int quiet);
void cli_progress_update(cli_progress *p, int64_t done);   // done is absolute
void cli_progress_finish(cli_progress *p);                // final line (always printed unless quiet)
// Before printing another line to stderr while a bar is drawn: end the bar's line.
void cli_progress_break(cli_progress *p);

#endif
