/*
** util.c: arena, byte buffer, numbers, UTF-8, files and the shared error table.
** Plain C99 plus POSIX for the atomic file write; no global mutable state.
*/
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- version and errors ---- */

static const char *const err_text[] = {
    "success",
#define XX(name, text) text,
    WFP_ERR_MAP(XX)
#undef XX
};
static const char *const err_name[] = {
    "OK",
#define XX(name, text) "E" #name,
    WFP_ERR_MAP(XX)
#undef XX
};

const char *wfp_strerror(int code) {
  if (code > 0 || -code >= (int)WFP__ERR_COUNT)
    return "unknown error";
  return err_text[-code];
}

const char *wfp_err_name(int code) {
  if (code > 0 || -code >= (int)WFP__ERR_COUNT)
    return "EUNKNOWN";
  return err_name[-code];
}

int wfp_exit_code(int code) {
  switch (code) {
  case WFP_OK:
    return 0;
  case WFP_EPROGRAM:
  case WFP_ESYNTAX:
  case WFP_ETRAP:
  case WFP_ECORRUPT:
  case WFP_ELIMIT:
    return 1;
  case WFP_EUSAGE:
  case WFP_EINVAL:
    return 2;
  default:
    return 3;
  }
}

int wfp_diag_format(const wfp_diag *d, char *buf, size_t n) {
  const char *file = d->file ? d->file : "<memory>";
  if (d->line > 0)
    return snprintf(buf, n, "%s:%d:%d: error: %s", file, d->line, d->col,
                    d->msg ? d->msg : "");
  if (d->path && d->path[0])
    return snprintf(buf, n, "%s: %s: error: %s", file, d->path,
                    d->msg ? d->msg : "");
  return snprintf(buf, n, "%s: error: %s", file, d->msg ? d->msg : "");
}

void wfp_free(void *p) { free(p); }

void wfp__assert_fail(const char *what, const char *file, int line) {
  fprintf(stderr, "wfp: internal error: assertion '%s' failed at %s:%d\n", what,
          file, line);
  abort();
}

/* ---- arena ---- */

struct wfp__arena_chunk {
  wfp__arena_chunk *next;
  size_t cap;
  /* data follows, 16-byte aligned */
};
#define CHUNK_HDR ((sizeof(wfp__arena_chunk) + 15u) & ~(size_t)15u)

void wfp__arena_init(wfp__arena *a) { memset(a, 0, sizeof *a); }

void wfp__arena_free(wfp__arena *a) {
  wfp__arena_chunk *c = a->head;
  while (c) {
    wfp__arena_chunk *n = c->next;
    free(c);
    c = n;
  }
  memset(a, 0, sizeof *a);
}

void *wfp__arena_alloc(wfp__arena *a, size_t n) {
  n = (n + 15u) & ~(size_t)15u;
  if (n == 0)
    n = 16;
  if (!a->head || a->cap - a->used < n) {
    size_t cap = n > 32768 ? n : 32768;
    wfp__arena_chunk *c = malloc(CHUNK_HDR + cap);
    if (!c) {
      a->oom = true;
      return NULL;
    }
    c->next = a->head;
    c->cap = cap;
    a->head = c;
    a->used = 0;
    a->cap = cap;
  }
  char *p = (char *)a->head + CHUNK_HDR + a->used;
  a->used += n;
  memset(p, 0, n);
  return p;
}

char *wfp__arena_strndup(wfp__arena *a, const char *s, size_t n) {
  char *p = wfp__arena_alloc(a, n + 1);
  if (p) {
    if (n)
      memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

char *wfp__arena_strdup(wfp__arena *a, const char *s) {
  return wfp__arena_strndup(a, s, strlen(s));
}

char *wfp__arena_printf(wfp__arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *p = wfp__arena_alloc(a, (size_t)n + 1);
  if (!p)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

/* ---- buf ---- */

void wfp__buf_init(wfp__buf *b) { memset(b, 0, sizeof *b); }

void wfp__buf_free(wfp__buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

bool wfp__buf_reserve(wfp__buf *b, size_t extra) {
  if (b->oom)
    return false;
  if (extra > SIZE_MAX / 2 - b->len) {
    b->oom = true;
    return false;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  p[b->len] = 0; /* the data is a string even before anything is added */
  b->data = p;
  b->cap = cap;
  return true;
}

void wfp__buf_add(wfp__buf *b, const void *p, size_t n) {
  if (!wfp__buf_reserve(b, n))
    return;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
}

void wfp__buf_adds(wfp__buf *b, const char *s) { wfp__buf_add(b, s, strlen(s)); }

void wfp__buf_addc(wfp__buf *b, char c) { wfp__buf_add(b, &c, 1); }

void wfp__buf_printf(wfp__buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !wfp__buf_reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void wfp__buf_add_i64(wfp__buf *b, int64_t v) {
  char tmp[24];
  wfp__buf_add(b, tmp, wfp__fmt_i64(tmp, v));
}

void wfp__buf_add_jstr(wfp__buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  wfp__buf_addc(b, '"');
  size_t run = 0; /* start of the pending run of plain bytes */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    wfp__buf_add(b, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': wfp__buf_add(b, "\\\"", 2); break;
    case '\\': wfp__buf_add(b, "\\\\", 2); break;
    case '\n': wfp__buf_add(b, "\\n", 2); break;
    case '\r': wfp__buf_add(b, "\\r", 2); break;
    case '\t': wfp__buf_add(b, "\\t", 2); break;
    case '\b': wfp__buf_add(b, "\\b", 2); break;
    case '\f': wfp__buf_add(b, "\\f", 2); break;
    default: {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      wfp__buf_add(b, e, 6);
    }
    }
  }
  wfp__buf_add(b, s + run, n - run);
  wfp__buf_addc(b, '"');
}

char *wfp__buf_take(wfp__buf *b, size_t *len) {
  char *p = b->data;
  if (len)
    *len = b->len;
  if (!p)
    p = calloc(1, 1);
  memset(b, 0, sizeof *b);
  return p;
}

/* ---- numbers ---- */

size_t wfp__fmt_i64(char *out, int64_t v) {
  char tmp[24];
  size_t n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t k = 0;
  if (v < 0)
    out[k++] = '-';
  while (n)
    out[k++] = tmp[--n];
  out[k] = 0;
  return k;
}

bool wfp__parse_i64(const char *s, size_t n, int64_t *v) {
  size_t i = 0;
  bool neg = false;
  if (i < n && s[i] == '-') {
    neg = true;
    i++;
  }
  if (i >= n)
    return false;
  if (s[i] == '0' && i + 1 < n)
    return false;
  uint64_t u = 0;
  uint64_t lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (u > (lim - d) / 10)
      return false;
    u = u * 10 + d;
  }
  if (neg && u == 0 && n == 2)
    return false; /* "-0" is not a canonical integer */
  *v = neg ? (int64_t)(0 - u) : (int64_t)u;
  return true;
}

/* ---- base64 ---- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wfp__buf_add_base64(wfp__buf *b, const void *data, size_t n) {
  const unsigned char *p = data;
  if (!wfp__buf_reserve(b, (n + 2) / 3 * 4))
    return;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    char o[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
    wfp__buf_add(b, o, 4);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    char o[4] = {b64[v >> 18], b64[(v >> 12) & 63], '=', '='};
    wfp__buf_add(b, o, 4);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    char o[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], '='};
    wfp__buf_add(b, o, 4);
  }
}

static int b64v(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

bool wfp__base64_decode(const char *s, size_t n, wfp__buf *out) {
  if (n % 4)
    return false;
  for (size_t i = 0; i < n; i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad)
        return false;
      v[k] = b64v(s[i + k]);
      if (v[k] < 0)
        return false;
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                 (uint32_t)v[3];
    unsigned char o[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
                          (unsigned char)w};
    /* padding bits must be zero: one encoding per byte string */
    if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF)))
      return false;
    wfp__buf_add(out, o, (size_t)(3 - pad));
  }
  return !out->oom;
}

/* ---- JSON ---- */

static size_t json_ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

static int json_hex4(const char *s, size_t i, size_t n) {
  if (n - i < 4)
    return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; k++) {
    char c = s[k];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* The end of the string starting at s[i] == '"', or 0. */
static size_t json_string(const char *s, size_t i, size_t n) {
  for (i++; i < n; i++) {
    if (s[i] == '"')
      return i + 1;
    if (s[i] != '\\')
      continue;
    if (++i >= n)
      return 0;
    if (s[i] != 'u') {
      if (!strchr("\"\\/bfnrt", s[i]) || !s[i])
        return 0;
      continue;
    }
    int c = json_hex4(s, i + 1, n);
    if (c < 0 || (c >= 0xDC00 && c <= 0xDFFF))
      return 0;
    i += 4;
    if (c >= 0xD800 && c <= 0xDBFF) {
      /* a high surrogate needs its low one */
      if (n - i < 3 || s[i + 1] != '\\' || s[i + 2] != 'u')
        return 0;
      int d = json_hex4(s, i + 3, n);
      if (d < 0xDC00 || d > 0xDFFF)
        return 0;
      i += 6;
    }
  }
  return 0;
}

static size_t json_number(const char *s, size_t i, size_t n) {
  if (i < n && s[i] == '-')
    i++;
  if (i < n && s[i] == '0') {
    i++;
  } else if (i < n && s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  } else {
    return 0;
  }
  if (i < n && s[i] == '.') {
    size_t d = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == d)
      return 0;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == d)
      return 0;
  }
  return i;
}

bool wfp__json_valid(const char *s, size_t n, int max_depth) {
  uint8_t stack[512]; /* a bit per level: 1 object, 0 array */
  int depth = 0;
  if (max_depth < 0 || max_depth > (int)sizeof stack * 8)
    return false;
  size_t i = json_ws(s, 0, n);
  for (;;) {
    /* a value */
    if (i >= n)
      return false;
    char c = s[i];
    if (c == '{' || c == '[') {
      if (depth == max_depth)
        return false;
      if (c == '{')
        stack[depth / 8] |= (uint8_t)(1u << depth % 8);
      else
        stack[depth / 8] &= (uint8_t) ~(1u << depth % 8);
      depth++;
      i = json_ws(s, i + 1, n);
      if (i < n && s[i] == (c == '{' ? '}' : ']')) {
        depth--;
        i++;
      } else if (c == '{') {
        /* the first key */
        size_t e = i < n && s[i] == '"' ? json_string(s, i, n) : 0;
        if (!e)
          return false;
        i = json_ws(s, e, n);
        if (i >= n || s[i] != ':')
          return false;
        i = json_ws(s, i + 1, n);
        continue;
      } else {
        continue;
      }
    } else if (c == '"') {
      size_t e = json_string(s, i, n);
      if (!e)
        return false;
      i = e;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t e = json_number(s, i, n);
      if (!e)
        return false;
      i = e;
    } else if (n - i >= 4 && (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
      i += 4;
    } else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
      i += 5;
    } else {
      return false;
    }
    /* after a value: the end, a closing bracket, or the next member */
    for (;;) {
      i = json_ws(s, i, n);
      if (depth == 0)
        return i == n;
      bool obj = (stack[(depth - 1) / 8] >> (depth - 1) % 8) & 1;
      if (i < n && s[i] == (obj ? '}' : ']')) {
        depth--;
        i++;
        continue;
      }
      if (i >= n || s[i] != ',')
        return false;
      i = json_ws(s, i + 1, n);
      if (obj) {
        size_t e = i < n && s[i] == '"' ? json_string(s, i, n) : 0;
        if (!e)
          return false;
        i = json_ws(s, e, n);
        if (i >= n || s[i] != ':')
          return false;
        i = json_ws(s, i + 1, n);
      }
      break;
    }
  }
}

/* ---- UTF-8 ---- */

bool wfp__utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* ---- files ---- */

int wfp__read_file(const char *path, char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return WFP_EIO;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    if (S_ISDIR(st.st_mode))
      errno = EISDIR;
    fclose(f);
    return WFP_EIO;
  }
  wfp__buf b;
  wfp__buf_init(&b);
  /* a regular file's size is known: one allocation, not one per doubling */
  if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX / 4)
    wfp__buf_reserve(&b, (size_t)st.st_size);
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
    wfp__buf_add(&b, tmp, n);
  int err = ferror(f);
  fclose(f);
  if (err || b.oom) {
    wfp__buf_free(&b);
    if (!err)
      errno = ENOMEM;
    return err ? WFP_EIO : WFP_ENOMEM;
  }
  *data = wfp__buf_take(&b, len);
  if (!*data) {
    errno = ENOMEM;
    return WFP_ENOMEM;
  }
  return WFP_OK;
}

/* Writes to what is not a regular file (a terminal, a pipe, /dev/stdout):
** there is nothing to rename over, so the bytes go there directly. */
static int write_direct(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_TRUNC);
  if (fd < 0)
    return WFP_EIO;
  const char *p = data;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      close(fd);
      errno = e;
      return WFP_EIO;
    }
    p += w;
    len -= (size_t)w;
  }
  return close(fd) == 0 ? WFP_OK : WFP_EIO;
}

int wfp__file_prepare(wfp__staged *s, const char *path) {
  memset(s, 0, sizeof *s);
  /* a symbolic link is followed: the file it names is replaced, not the
  ** link (and a link to a device, like /dev/stdout, is written through) */
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) {
      errno = EISDIR;
      return WFP_EIO;
    }
    /* nothing to rename over: the bytes go there directly, at commit */
    if (!(s->dst = strdup(path))) {
      errno = ENOMEM;
      return WFP_ENOMEM;
    }
    return WFP_OK;
  }
  char *dst = NULL;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    dst = realpath(path, NULL);
    if (!dst && errno == ENOMEM)
      return WFP_ENOMEM;
    if (!dst) {
      /* a dangling link: create what it names */
      char target[4096];
      ssize_t n = readlink(path, target, sizeof target - 1);
      if (n > 0) {
        target[n] = 0;
        const char *slash = strrchr(path, '/');
        size_t dl = target[0] != '/' && slash ? (size_t)(slash - path) + 1 : 0;
        dst = malloc(dl + (size_t)n + 1);
        if (!dst) {
          errno = ENOMEM;
          return WFP_ENOMEM;
        }
        memcpy(dst, path, dl);
        memcpy(dst + dl, target, (size_t)n + 1);
      }
    }
  }
  if (!dst && !(dst = strdup(path))) {
    errno = ENOMEM;
    return WFP_ENOMEM;
  }
  size_t plen = strlen(dst);
  s->tmp = malloc(plen + 32);
  if (!s->tmp) {
    free(dst);
    errno = ENOMEM;
    return WFP_ENOMEM;
  }
  snprintf(s->tmp, plen + 32, "%s.tmp.XXXXXX", dst);
  s->dst = dst;
  return WFP_OK;
}

/* The signals that end a process by default and that a user or a system
** sends to stop it: held while a temporary file exists, so that they end
** the process only once it is renamed or removed. Several files may be
** staged at once (wfp-aot's outputs): the calling thread's mask is set by
** the first and given back by the last. */
static __thread int held_files;
static __thread sigset_t held_old;

static void hold_signals(void) {
  if (held_files++)
    return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGXFSZ); /* a write past the file size limit fails instead */
  pthread_sigmask(SIG_BLOCK, &set, &held_old);
}

static void release_signals(void) {
  if (held_files > 0 && --held_files == 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &held_old, NULL);
    errno = e;
  }
}

int wfp__file_write(wfp__staged *s, const void *data, size_t len, int mode) {
  if (!s->tmp) {
    /* written at commit */
    s->data = data;
    s->len = len;
    return WFP_OK;
  }
  hold_signals();
  int fd = mkstemp(s->tmp);
  if (fd < 0) {
    release_signals();
    return WFP_EIO;
  }
  /* locked while it is being written: wfp__remove_stale_temps leaves it */
  flock(fd, LOCK_EX);
  s->written = true;
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      goto fail;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0)
    goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  return WFP_OK;
fail : {
  int e = errno;
  if (fd >= 0)
    close(fd);
  unlink(s->tmp);
  s->written = false;
  release_signals();
  errno = e;
  return WFP_EIO;
}
}

/* Is name base + ".tmp." + the six letters or digits of mkstemp? */
static bool temp_of(const char *name, const char *base, size_t bl) {
  if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0 ||
      strlen(name + bl + 5) != 6)
    return false;
  for (const char *p = name + bl + 5; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
      return false;
  return true;
}

int wfp__remove_stale_temps(const char *path) {
  /* a symbolic link's file is written next to the file it names */
  char *real = realpath(path, NULL);
  const char *p = real ? real : path;
  const char *slash = strrchr(p, '/');
  char *dir = slash ? (slash == p ? strdup("/") : strndup(p, (size_t)(slash - p))) : strdup(".");
  const char *base = slash ? slash + 1 : p;
  DIR *d = dir ? opendir(dir) : NULL;
  int removed = d ? 0 : -1;
  struct dirent *ent;
  while (d && (ent = readdir(d)) != NULL) {
    if (!temp_of(ent->d_name, base, strlen(base)))
      continue;
    int fd = openat(dirfd(d), ent->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
      continue;
    /* a regular file that no writer holds, and still the one named so */
    struct stat a, b;
    if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        fstatat(dirfd(d), ent->d_name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev && unlinkat(dirfd(d), ent->d_name, 0) == 0)
      removed++;
    close(fd);
  }
  if (d)
    closedir(d);
  free(dir);
  free(real);
  return removed;
}

int wfp__file_stage(wfp__staged *s, const char *path, const void *data, size_t len,
                    int mode) {
  int rc = wfp__file_prepare(s, path);
  if (rc == WFP_OK && (rc = wfp__file_write(s, data, len, mode)) != WFP_OK)
    wfp__file_discard(s);
  return rc;
}

int wfp__file_commit(wfp__staged *s) {
  int rc = WFP_OK;
  if (s->tmp) {
    if (rename(s->tmp, s->dst) != 0) {
      int e = errno;
      unlink(s->tmp);
      errno = e;
      rc = WFP_EIO;
    }
  } else if (s->dst) {
    rc = write_direct(s->dst, s->data, s->len);
  }
  if (s->written)
    release_signals();
  int e = errno;
  free(s->tmp);
  free(s->dst);
  memset(s, 0, sizeof *s);
  errno = e;
  return rc;
}

void wfp__file_discard(wfp__staged *s) {
  int e = errno;
  if (s->written) {
    unlink(s->tmp);
    release_signals();
  }
  free(s->tmp);
  free(s->dst);
  memset(s, 0, sizeof *s);
  errno = e;
}

int wfp__write_file_atomic(const char *path, const void *data, size_t len,
                           int mode) {
  wfp__staged s;
  int rc = wfp__file_stage(&s, path, data, len, mode);
  return rc ? rc : wfp__file_commit(&s);
}

const char *wfp__opt_valued(const char *const *names, int argc, char **argv, int *i,
                            const char **value) {
  const char *a = argv[*i];
  *value = NULL;
  for (const char *const *q = names; *q; q++) {
    size_t n = strlen(*q);
    if (strncmp(a, *q, n) == 0 && (a[n] == 0 || a[n] == '=')) {
      if (a[n] == '=')
        *value = a + n + 1;
      else if (*i + 1 < argc)
        *value = argv[++*i];
      return *q;
    }
  }
  return NULL;
}
