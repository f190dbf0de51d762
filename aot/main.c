/*
** main.c: wfp-aot, the compiler's command line. It parses options and calls
** the aot library (wfp/aot.h); every decision lives there. Exit codes: 0
** compiled, 1 program refused, 2 usage, 3 environment or toolchain,
** 128 + the signal when SIGINT or SIGTERM cancelled the compilation.
*/
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wfp/aot.h"
#include "wfp/text.h"

static const char usage_line[] =
    "usage: wfp-aot [options] program.json|program.wfp\n"
    "       wfp-aot --fmt program.wfp";

/* SIGINT and SIGTERM cancel the compilation (its tools are killed, its
** temporary directory removed, nothing written); main exits with 128 + the
** signal's number, as a shell reports a process the signal ended. */
static wfp_aot *volatile running;
static volatile sig_atomic_t caught;

static void on_signal(int sig) {
  caught = sig;
  wfp_aot_cancel(running);
}

static void help(void) {
  printf("%s\n\n"
         "Compiles a wfp program (IR version 1, JSON; or wfp text, a file whose\n"
         "name ends in .wfp) to a native module that wfp-host runs: check,\n"
         "assign IDs, lift, Binaryen, wasm2c, cc.\n\n"
         "Options:\n"
         "  -o PATH          write the module to PATH (default: func.so)\n"
         "  --entry NAME     the function an input without \"fn\" runs\n"
         "                   (default: main, when the program has one)\n"
         "  -O0 -O1 -O2 -O3  optimization level of Binaryen and the C compiler\n"
         "                   (default: -O2)\n"
         "  --emit-ir FILE   write the canonical IR (IDs assigned, nested\n"
         "                   functions and lambdas lifted)\n"
         "  --emit-wasm FILE write the optimized core WebAssembly module\n"
         "  --emit-c DIR     write the wasm2c output and the descriptor glue\n"
         "  --emit-wit FILE  write the WIT world the module implements\n"
         "  --emit-text FILE write the program in wfp text syntax (.wfp)\n"
         "  --emit-js FILE   write the lifted program as a JavaScript module that\n"
         "                   wfp-run.mjs runs in Node\n"
         "  --fmt FILE.wfp   rewrite a text program in canonical layout (comments\n"
         "                   kept) and build nothing\n"
         "  --check          check the program and write only the --emit-*\n"
         "                   files asked for; build no module\n"
         "  --time           print the time of each stage on stderr\n"
         "  --help           print this help and exit\n"
         "  --version        print the version and exit\n\n"
         "Environment: CC (the C compiler; default clang where installed, else\n"
         "cc), WFP_WASM2C (default wasm2c), TMPDIR, WFP_CACHE_DIR (the objects\n"
         "of compiled C, kept by content; default $XDG_CACHE_HOME/wfp or\n"
         "~/.cache/wfp; empty: none),\n"
         "WFP_CACHE_MAX (its size limit, least recently used out first;\n"
         "default 256M; 0: none).\n"
         "Every output is written atomically, and nothing is written when the\n"
         "program is refused or a stage fails.\n"
         "Exit status: 0 compiled, 1 program refused, 2 usage error,\n"
         "3 environment or toolchain error, 130 or 143 interrupted by SIGINT\n"
         "or SIGTERM (nothing written).\n",
         usage_line);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Prints diagnostics, at text positions when t is the program's text. */
typedef const wfp_diag *(*diag_at_fn)(const void *src, size_t i);
static const wfp_diag *aot_diag(const void *src, size_t i) { return wfp_aot_diag(src, i); }
static const wfp_diag *prog_diag(const void *src, size_t i) { return wfp_program_diag(src, i); }
static const wfp_diag *text_diag(const void *src, size_t i) { return wfp_text_diag(src, i); }

static void print_diags(const void *src, diag_at_fn at, size_t n, size_t dropped,
                        const wfp_text *t) {
  char line[2048];
  for (size_t k = 0; k < n; k++) {
    wfp_diag d = *at(src, k);
    if (t)
      wfp_text_map_diag(t, at(src, k), &d);
    /* a deep fault has a long path: print it whole */
    int len = wfp_diag_format(&d, line, sizeof line);
    char *big = len >= (int)sizeof line ? malloc((size_t)len + 1) : NULL;
    if (big)
      wfp_diag_format(&d, big, (size_t)len + 1);
    fprintf(stderr, "%s\n", big ? big : line);
    free(big);
  }
  if (dropped)
    fprintf(stderr, "wfp-aot: %zu more error%s not shown\n", dropped, dropped == 1 ? "" : "s");
  else if (n >= 20)
    fprintf(stderr, "wfp-aot: stopped after %zu errors\n", n);
}

/* wfp-aot --fmt FILE */
static int format_file(const char *path) {
  wfp_text *t = wfp_text_new(0);
  if (!t) {
    fprintf(stderr, "wfp-aot: error: out of memory\n");
    return 3;
  }
  int changed = 0;
  int rc = wfp_text_format_file(t, path, &changed);
  if (rc == WFP_EIO && wfp_text_diag_count(t) == 0)
    fprintf(stderr, "%s: error: cannot write the formatted program: %s\n", path, strerror(errno));
  else if (rc)
    print_diags(t, text_diag, wfp_text_diag_count(t), wfp_text_diag_dropped(t), NULL);
  if (rc == WFP_ENOMEM && !wfp_text_diag_count(t))
    fprintf(stderr, "wfp-aot: error: out of memory\n");
  if (rc == WFP_ESYNTAX)
    fprintf(stderr, "wfp-aot: nothing written\n");
  wfp_text_free(t);
  return wfp_exit_code(rc);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "wfp-aot: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s\nTry 'wfp-aot --help'.\n", usage_line);
  return 2;
}

/* "--name VALUE" or "--name=VALUE"; advances *i. NULL when not this option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name,
                             int *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] != 0)
    return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  wfp_aot_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.opt_level = -1;
  const char *input = NULL, *emit_text = NULL, *emit_js = NULL, *fmt = NULL;
  int check = 0, timing = 0, options_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int missing = 0;
    const char *v;
    if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
      if (input)
        return usage_error("more than one program given ('%s')", a);
      input = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      options_done = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help();
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("wfp-aot %s (IR version 1, ABI version 1)\n", WFP_VERSION_STRING);
      return 0;
    } else if (strcmp(a, "-o") == 0) {
      if (i + 1 >= argc)
        return usage_error("option '%s' needs a value", a);
      o.output = argv[++i];
    } else if (strncmp(a, "-o", 2) == 0 && a[2] != 'O') {
      o.output = a + 2;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o.opt_level = a[2] - '0';
    } else if ((v = opt_value(argc, argv, &i, "--entry", &missing))) {
      o.entry = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-ir", &missing))) {
      o.emit_ir = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-wasm", &missing))) {
      o.emit_wasm = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-c", &missing))) {
      o.emit_c = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-wit", &missing))) {
      o.emit_wit = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-text", &missing))) {
      emit_text = v;
    } else if ((v = opt_value(argc, argv, &i, "--emit-js", &missing))) {
      emit_js = v;
    } else if ((v = opt_value(argc, argv, &i, "--fmt", &missing))) {
      fmt = v;
    } else if (strcmp(a, "--check") == 0) {
      check = 1;
    } else if (strcmp(a, "--time") == 0) {
      timing = 1;
    } else if (missing) {
      return usage_error("option '%s' needs a value", a);
    } else {
      return usage_error("unknown option '%s'", a);
    }
    if (missing)
      return usage_error("option '%s' needs a value", a);
  }
  if (fmt) {
    if (input || argc != 3 - (strchr(argv[1], '=') != NULL))
      return usage_error("%s", "--fmt takes one file and no other option or program");
    if (!*fmt)
      return usage_error("%s", "--fmt needs a file name");
    return format_file(fmt);
  }
  if (!input)
    return usage_error("%s", "no program given");
  if (check && o.output)
    return usage_error("%s", "--check builds no module; drop -o");
  if (o.entry && !*o.entry)
    return usage_error("%s", "--entry needs a function name");
  if (!check && !o.output)
    o.output = "func.so";
  if ((o.output && !*o.output) || (o.emit_ir && !*o.emit_ir) ||
      (o.emit_wasm && !*o.emit_wasm) || (o.emit_c && !*o.emit_c) ||
      (o.emit_wit && !*o.emit_wit) || (emit_text && !*emit_text) ||
      (emit_js && !*emit_js))
    return usage_error("%s", "an output path is empty");

  /* a text program: its IR, and the text positions of the IR's paths */
  wfp_text *t = NULL;
  const char *ir = NULL;
  size_t irlen = 0;
  if (ends_with(input, ".wfp")) {
    t = wfp_text_new(0);
    if (!t) {
      fprintf(stderr, "wfp-aot: error: out of memory\n");
      return 3;
    }
    int rc = wfp_text_parse_file(t, input);
    if (rc) {
      print_diags(t, text_diag, wfp_text_diag_count(t), wfp_text_diag_dropped(t), NULL);
      if (rc == WFP_ENOMEM && !wfp_text_diag_count(t))
        fprintf(stderr, "wfp-aot: error: out of memory\n");
      fprintf(stderr, "wfp-aot: nothing written\n");
      wfp_text_free(t);
      return wfp_exit_code(rc);
    }
    ir = wfp_text_ir(t, &irlen);
  }

  /* the front end once more, for the outputs the aot library does not make */
  wfp_program *prog = NULL;
  if (emit_text || emit_js) {
    wfp_ir_opts io = {sizeof io, o.entry, 0};
    prog = wfp_program_new(&io);
    int rc = !prog ? WFP_ENOMEM
             : t   ? wfp_program_load_mem(prog, input, ir, irlen)
                   : wfp_program_load_file(prog, input);
    if (rc) {
      if (prog)
        print_diags(prog, prog_diag, wfp_program_diag_count(prog),
                    wfp_program_diag_dropped(prog), t);
      else
        fprintf(stderr, "wfp-aot: error: out of memory\n");
      fprintf(stderr, "wfp-aot: nothing written\n");
      wfp_program_free(prog);
      wfp_text_free(t);
      return wfp_exit_code(rc);
    }
  }

  /* --emit-text and --emit-js made now, and their files prepared (every
  ** allocation done): after the compilation, which writes its own outputs,
  ** they are written and renamed, which cannot run out of memory */
  struct {
    const char *path;
    char *data;
    size_t len;
    wfp__staged st;
    bool prepared;
  } extra[2] = {{emit_text, NULL, 0, {0}, false}, {emit_js, NULL, 0, {0}, false}};
  int xrc = WFP_OK;
  for (int k = 0; k < 2 && !xrc; k++) {
    if (!extra[k].path)
      continue;
    xrc = k == 0 ? wfp_program_to_text(prog, &extra[k].data, &extra[k].len)
                 : wfp_program_to_js(prog, input, &extra[k].data, &extra[k].len);
    if (!xrc && !(xrc = wfp__file_prepare(&extra[k].st, extra[k].path)))
      extra[k].prepared = true;
    else if (xrc != WFP_ENOMEM)
      fprintf(stderr, "wfp-aot: error: cannot write %s: %s\n", extra[k].path,
              xrc == WFP_EIO ? strerror(errno) : wfp_strerror(xrc));
  }
  wfp_aot *c = xrc ? NULL : wfp_aot_new(&o);
  if (!c) {
    if (!xrc || xrc == WFP_ENOMEM)
      fprintf(stderr, "wfp-aot: error: out of memory\n");
    fprintf(stderr, "wfp-aot: nothing written\n");
    for (int k = 0; k < 2; k++) {
      if (extra[k].prepared)
        wfp__file_discard(&extra[k].st);
      wfp_free(extra[k].data);
    }
    wfp_program_free(prog);
    wfp_text_free(t);
    return xrc ? wfp_exit_code(xrc) : 3;
  }
  running = c;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: waits return at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = t ? wfp_aot_compile_mem(c, input, ir, irlen) : wfp_aot_compile_file(c, input);
  if (rc == WFP_ECANCELED) {
    int sig = caught;
    fprintf(stderr, "wfp-aot: interrupted by %s: nothing written\n",
            sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal");
    running = NULL;
    for (int k = 0; k < 2; k++) {
      if (extra[k].prepared)
        wfp__file_discard(&extra[k].st);
      wfp_free(extra[k].data);
    }
    wfp_aot_free(c);
    wfp_program_free(prog);
    wfp_text_free(t);
    return 128 + (sig ? sig : SIGTERM);
  }
  if (rc) {
    print_diags(c, aot_diag, wfp_aot_diag_count(c), wfp_aot_diag_dropped(c), t);
    fprintf(stderr, "wfp-aot: nothing written\n");
  }
  for (int k = 0; k < 2; k++) {
    if (!extra[k].prepared)
      continue;
    if (!rc && !wfp__file_write(&extra[k].st, extra[k].data, extra[k].len, 0644)) {
      if (wfp__file_commit(&extra[k].st))
        rc = WFP_EIO;
    } else {
      /* the compilation failed, or this write did */
      wfp__file_discard(&extra[k].st);
      if (!rc)
        rc = WFP_EIO;
      else
        continue;
    }
    if (rc)
      fprintf(stderr, "wfp-aot: error: cannot write %s: %s\n", extra[k].path,
              strerror(errno));
  }
  for (int k = 0; k < 2; k++)
    wfp_free(extra[k].data);
  if (timing) {
    static const char *const names[] = {"front end", "codegen", "wasm2c", "cc"};
    for (int s = 0; s < WFP_AOT_STAGE_COUNT; s++)
      fprintf(stderr, "wfp-aot: %-9s %8.3f ms\n", names[s],
              wfp_aot_stage_seconds(c, (wfp_aot_stage)s) * 1e3);
    int units = 0, reused = 0;
    wfp_aot_cache_stats(c, &units, &reused);
    if (units)
      fprintf(stderr, "wfp-aot: cache     %d of %d C units reused\n", reused, units);
  }
  running = NULL;
  wfp_aot_free(c);
  wfp_program_free(prog);
  wfp_text_free(t);
  return wfp_exit_code(rc);
}
