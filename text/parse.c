/*
** parse.c: wfp text -> IR version 1 (a cJSON tree), by recursive descent
** over an on-demand lexer, with the text position of every node and the
** comments the formatter keeps. It checks the syntax only: names, types and
** every other rule of the IR are the checker's (ir/), on the tree it builds.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "text_int.h"

/* The deepest nesting of blocks and expressions the parser follows (the C
** stack bounds it), and the depth of JSON the IR reader takes (ir/parse.c):
** a text program is refused with its position before its IR would be. */
#define MAX_NEST 200
#define IR_MAX_DEPTH 1000

/* ---- tokens ---- */

enum {
  T_EOF = 0, T_ERR, T_NAME, T_RAWNAME, T_INT, T_NUM, T_STR, T_BTICK,
  T_LP, T_RP, T_LB, T_RB, T_LK, T_RK, T_COMMA, T_SEMI, T_COLON, T_DOT,
  T_DOTCALL, T_AT, T_ASSIGN, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_SHL,
  T_SHR, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PCT, T_AMP, T_PIPE, T_CARET,
  T_ANDAND, T_OROR, T_BANG,
  /* keywords */
  K_FN, K_LET, K_IF, K_ELSE, K_WHILE, K_BREAK, K_CONTINUE, K_RETURN, K_TRAP,
  K_TRUE, K_FALSE, K_NULL, K_JSON
};

static const char *const keywords[] = {"fn",     "let",   "if",       "else",
                                       "while",  "break", "continue", "return",
                                       "trap",   "true",  "false",    "null",
                                       "json",   NULL};

static const char *const builtins[] = {"len",     "input",   "sleep",
                                       "get_i64", "get_str", "get_json", NULL};

bool wfp__text_reserved(const char *s) {
  for (int i = 0; keywords[i]; i++)
    if (strcmp(s, keywords[i]) == 0)
      return true;
  return false;
}

bool wfp__text_builtin(const char *s) {
  for (int i = 0; builtins[i]; i++)
    if (strcmp(s, builtins[i]) == 0)
      return true;
  return false;
}

typedef struct tok {
  int k;
  size_t off, end;
  int line, col;
  int nl;        /* line breaks between the previous token and this one */
  int depth;     /* brackets open around it ((, [, {, ${) */
  int nlc;       /* line breaks between the last comment (or token) and it */
  const char *s; /* names, strings (decoded), numbers (as written) */
  size_t n;
} tok;

typedef struct comment {
  size_t off;
  int line, end_line;
  int nl; /* line breaks before it */
  const char *text;
} comment;

typedef struct mark {
  const cJSON *node;
  int line, col;
} mark;

/* notes while parsing, keyed by node; made into path notes at the end */
typedef struct pnote {
  const cJSON *node;
  int kind; /* 0 the node, 1 the end of the block (an array), 2 end of file */
  const char **lead;
  int nlead, cap;
  const char *trail;
  bool blank, gap;
} pnote;

/* what an expression parse gives besides its JSON */
typedef struct X {
  cJSON *j;
  bool paren; /* written in parentheses */
  bool lit;   /* one literal token (a string, or an integer, maybe negated) */
  const char *raw; /* lit integers: the number as written */
} X;

typedef struct Ps {
  wfp_text *t;
  const char *s;
  size_t n, i;
  int line;
  size_t lstart;
  tok cur, prev;
  bool panic, stop, oom;
  bool eof_err; /* a string or comment ran to the end of the file */
  int nest;
  bool nlsig; /* a line break ends the expression here */
  int bdepth; /* brackets open after the current token */
  /* comments */
  comment *cm;
  size_t ncm, cmcap, cnext;
  /* the program being built */
  cJSON *funcs, *ress;
  /* nodes that could not join their parent (out of memory): kept here,
  ** since the parser may still fill them, and freed with the parse */
  cJSON *lost;
  int nfuncs, nres;
  mark *marks;
  size_t nmarks, markcap;
  pnote *notes;
  size_t nnotes, notecap;
  /* methods written as `fn R.m` outside R's block, in order */
  struct flat { const char *res; cJSON *name; } *flats;
  int nflats, flatcap;
} Ps;

/* ---- diagnostics ---- */

static void diag_at(Ps *p, int line, int col, const char *fmt, ...)
    WFP__PRINTF(4, 5);
static void diag_at(Ps *p, int line, int col, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wfp__text_diag(p->t, line, col, "%s", msg);
  if (p->t->ndiags >= p->t->max_diags)
    p->stop = true;
}

static int col_of(Ps *p, size_t off) {
  int c = 1;
  for (size_t k = p->lstart; k < off; k++)
    if (((unsigned char)p->s[k] & 0xC0) != 0x80)
      c++;
  return c;
}

static void lex_err(Ps *p, size_t off, const char *fmt, ...) WFP__PRINTF(3, 4);
static void lex_err(Ps *p, size_t off, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!p->panic)
    diag_at(p, p->line, col_of(p, off), "%s", msg);
  p->panic = true;
}

/* The token as the messages name it. */
static const char *tok_desc(Ps *p, const tok *t, char *buf, size_t n) {
  switch (t->k) {
  case T_EOF: return "the end of the file";
  case T_ERR: return "a bad token";
  case T_NAME: case T_RAWNAME:
    snprintf(buf, n, "'%.*s%.40s'", t->k == T_RAWNAME ? 1 : 0, "#", t->s);
    return buf;
  case T_INT: case T_NUM:
    snprintf(buf, n, "the number %.40s", t->s);
    return buf;
  case T_STR: return "a string";
  case T_BTICK: return "a template string";
  default: {
    size_t len = t->end - t->off;
    if (len > 40)
      len = 40;
    snprintf(buf, n, "'%.*s'", (int)len, p->s + t->off);
    return buf;
  }
  }
}

static void perr(Ps *p, const tok *t, const char *fmt, ...) WFP__PRINTF(3, 4);
static void perr(Ps *p, const tok *t, const char *fmt, ...) {
  if (p->panic || t->k == T_ERR || (t->k == T_EOF && p->eof_err)) {
    p->panic = true;
    return;
  }
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_at(p, t->line, t->col, "%s", msg);
  p->panic = true;
}

/* "expected X, found Y" */
static void expected(Ps *p, const char *what) {
  char b[96];
  perr(p, &p->cur, "expected %s, found %s", what, tok_desc(p, &p->cur, b, sizeof b));
}

/* ---- the lexer ---- */

static char *adup(Ps *p, const char *s, size_t n) {
  char *r = wfp__arena_strndup(&p->t->arena, s, n);
  if (!r)
    p->oom = true;
  return r;
}

static bool is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static int hexv(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void put_utf8(wfp__buf *b, unsigned v) {
  char u[4];
  if (v < 0x80) {
    wfp__buf_addc(b, (char)v);
  } else if (v < 0x800) {
    u[0] = (char)(0xC0 | (v >> 6));
    u[1] = (char)(0x80 | (v & 0x3F));
    wfp__buf_add(b, u, 2);
  } else if (v < 0x10000) {
    u[0] = (char)(0xE0 | (v >> 12));
    u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
    u[2] = (char)(0x80 | (v & 0x3F));
    wfp__buf_add(b, u, 3);
  } else {
    u[0] = (char)(0xF0 | (v >> 18));
    u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((v >> 6) & 0x3F));
    u[3] = (char)(0x80 | (v & 0x3F));
    wfp__buf_add(b, u, 4);
  }
}

/* Length of the UTF-8 character at s[i] when well formed, else 0. */
static size_t utf8_len(const char *s, size_t n, size_t i) {
  unsigned char c = (unsigned char)s[i];
  size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                        : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (!k || i + k > n || !wfp__utf8_valid(s + i, k))
    return 0;
  return k;
}

/*
** Reads string characters up to the closing quote q (or, in a template
** string, up to "${"), decoding escapes into b. Returns 1 at the closing
** quote (consumed), 2 at "${" (consumed), 0 on an error (reported).
*/
static int scan_chars(Ps *p, wfp__buf *b, char q, bool tpl, size_t open, int oline, int ocol) {
  while (p->i < p->n) {
    size_t at = p->i;
    unsigned char c = (unsigned char)p->s[at];
    if (c == (unsigned char)q) {
      p->i++;
      return 1;
    }
    if (tpl && c == '$' && at + 1 < p->n && p->s[at + 1] == '{') {
      p->i += 2;
      return 2;
    }
    if (c == '\n' && tpl) {
      wfp__buf_addc(b, '\n');
      p->i++;
      p->line++;
      p->lstart = p->i;
      continue;
    }
    if (c == 0) {
      lex_err(p, at, "a string may not contain the character U+0000 (NUL)");
      return 0;
    }
    if (c < 0x20) {
      if (c == '\n' || c == '\r')
        lex_err(p, open, "this string is not closed on its line (write a line break as \\n)");
      else
        lex_err(p, at, "control character U+%04X in a string (write it escaped)", c);
      return 0;
    }
    if (c != '\\') {
      size_t k = utf8_len(p->s, p->n, at);
      if (!k) {
        lex_err(p, at, "invalid UTF-8 in a string");
        return 0;
      }
      wfp__buf_add(b, p->s + at, k);
      p->i += k;
      continue;
    }
    if (at + 1 >= p->n)
      break;
    char e = p->s[at + 1];
    p->i += 2;
    switch (e) {
    case '"': case '\'': case '\\': case '/': case '`': case '$':
      wfp__buf_addc(b, e);
      break;
    case 'n': wfp__buf_addc(b, '\n'); break;
    case 'r': wfp__buf_addc(b, '\r'); break;
    case 't': wfp__buf_addc(b, '\t'); break;
    case 'b': wfp__buf_addc(b, '\b'); break;
    case 'f': wfp__buf_addc(b, '\f'); break;
    case 'u': {
      unsigned v = 0;
      for (int k = 0; k < 4; k++) {
        int h = p->i < p->n ? hexv((unsigned char)p->s[p->i]) : -1;
        if (h < 0) {
          lex_err(p, at, "invalid \\u escape (four hex digits expected)");
          return 0;
        }
        v = v * 16 + (unsigned)h;
        p->i++;
      }
      if (v >= 0xD800 && v < 0xDC00) {
        unsigned lo = 0;
        bool ok = p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u';
        for (int k = 0; ok && k < 4; k++) {
          int h = hexv((unsigned char)p->s[p->i + 2 + (size_t)k]);
          ok = h >= 0;
          lo = lo * 16 + (unsigned)(h < 0 ? 0 : h);
        }
        if (!ok || lo < 0xDC00 || lo > 0xDFFF) {
          lex_err(p, at, "a \\u escape of a high surrogate must be followed by a low one");
          return 0;
        }
        p->i += 6;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
      } else if (v >= 0xDC00 && v < 0xE000) {
        lex_err(p, at, "a \\u escape of a lone low surrogate");
        return 0;
      }
      if (v == 0) {
        lex_err(p, at, "a string may not contain the character U+0000 (NUL)");
        return 0;
      }
      put_utf8(b, v);
      break;
    }
    default:
      if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f)
        lex_err(p, at, "unknown escape '\\%c' in a string", e);
      else
        lex_err(p, at, "unknown escape in a string");
      return 0;
    }
  }
  if (!p->panic)
    diag_at(p, oline, ocol, "%s", tpl ? "this template string is not closed" : "this string is not closed");
  p->panic = true;
  p->eof_err = true;
  return 0;
}

static const struct { const char *s; int k; } puncts[] = {
    {"&&", T_ANDAND}, {"||", T_OROR}, {"==", T_EQ}, {"!=", T_NE},
    {"<=", T_LE},     {">=", T_GE},   {"<<", T_SHL}, {">>", T_SHR},
    {".(", T_DOTCALL}, {"(", T_LP},   {")", T_RP},   {"{", T_LB},
    {"}", T_RB},      {"[", T_LK},    {"]", T_RK},   {",", T_COMMA},
    {";", T_SEMI},    {":", T_COLON}, {".", T_DOT},  {"@", T_AT},
    {"=", T_ASSIGN},  {"<", T_LT},    {">", T_GT},   {"+", T_PLUS},
    {"-", T_MINUS},   {"*", T_STAR},  {"/", T_SLASH}, {"%", T_PCT},
    {"&", T_AMP},     {"|", T_PIPE},  {"^", T_CARET}, {"!", T_BANG},
    {"`", T_BTICK},   {NULL, 0}};

static void add_comment(Ps *p, size_t off, int line, int nl) {
  if (p->ncm == p->cmcap) {
    size_t cap = p->cmcap ? p->cmcap * 2 : 16;
    comment *c = realloc(p->cm, cap * sizeof *c);
    if (!c) {
      p->oom = true;
      return;
    }
    p->cm = c;
    p->cmcap = cap;
  }
  size_t end = p->i;
  while (end > off && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t' ||
                       p->s[end - 1] == '\r' || p->s[end - 1] == '\n'))
    end--;
  comment *c = &p->cm[p->ncm++];
  c->off = off;
  c->line = line;
  c->end_line = p->line;
  c->nl = nl;
  c->text = adup(p, p->s + off, end - off);
}

static void lex(Ps *p);

static void next(Ps *p) {
  p->prev = p->cur;
  lex(p);
  int k = p->cur.k;
  if (k == T_RP || k == T_RB || k == T_RK)
    p->bdepth -= p->bdepth > 0;
  p->cur.depth = p->bdepth;
  if (k == T_LP || k == T_LB || k == T_LK)
    p->bdepth++;
}

static void lex(Ps *p) {
  tok *t = &p->cur;
  int nl = 0, total = 0;
  for (;;) {
    while (p->i < p->n) {
      char c = p->s[p->i];
      if (c == '\n') {
        nl++;
        total++;
        p->line++;
        p->lstart = ++p->i;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        p->i++;
      } else {
        break;
      }
    }
    if (p->i + 1 < p->n && p->s[p->i] == '/' && p->s[p->i + 1] == '/') {
      size_t off = p->i;
      int line = p->line;
      while (p->i < p->n && p->s[p->i] != '\n')
        p->i++;
      if (!wfp__utf8_valid(p->s + off, p->i - off)) {
        p->lstart = p->lstart; /* columns of this line stay as they are */
        lex_err(p, off, "invalid UTF-8 in a comment");
      }
      add_comment(p, off, line, nl);
      nl = 0;
      continue;
    }
    if (p->i + 1 < p->n && p->s[p->i] == '/' && p->s[p->i + 1] == '*') {
      size_t off = p->i;
      int line = p->line;
      size_t ls = p->lstart;
      p->i += 2;
      while (p->i + 1 < p->n && !(p->s[p->i] == '*' && p->s[p->i + 1] == '/')) {
        if (p->s[p->i] == '\n') {
          p->line++;
          p->lstart = p->i + 1;
        }
        p->i++;
      }
      if (p->i + 1 >= p->n) {
        int l = p->line;
        size_t s2 = p->lstart;
        p->line = line;
        p->lstart = ls;
        lex_err(p, off, "this comment is not closed (*/ is missing)");
        p->eof_err = true;
        p->line = l;
        p->lstart = s2;
        p->i = p->n;
        break;
      }
      p->i += 2;
      if (!wfp__utf8_valid(p->s + off, p->i - off))
        lex_err(p, off, "invalid UTF-8 in a comment");
      add_comment(p, off, line, nl);
      nl = 0;
      continue;
    }
    break;
  }
  t->nl = total;
  t->nlc = nl;
  t->off = p->i;
  t->line = p->line;
  t->col = col_of(p, p->i);
  t->s = NULL;
  t->n = 0;
  if (p->i >= p->n) {
    t->k = T_EOF;
    t->end = p->i;
    return;
  }
  unsigned char c = (unsigned char)p->s[p->i];
  if (is_alpha(c)) {
    size_t b = p->i;
    while (p->i < p->n && (is_alpha((unsigned char)p->s[p->i]) || is_digit((unsigned char)p->s[p->i])))
      p->i++;
    t->end = p->i;
    t->s = adup(p, p->s + b, p->i - b);
    t->n = p->i - b;
    t->k = T_NAME;
    for (int k = 0; keywords[k]; k++)
      if (t->s && strcmp(t->s, keywords[k]) == 0)
        t->k = K_FN + k;
    return;
  }
  if (c == '#') {
    size_t b = ++p->i;
    while (p->i < p->n && (is_alpha((unsigned char)p->s[p->i]) ||
                           is_digit((unsigned char)p->s[p->i]) || p->s[p->i] == '-'))
      p->i++;
    t->end = p->i;
    if (p->i == b) {
      lex_err(p, t->off, "expected a name after '#' (#name writes a name that is a keyword or an id)");
      t->k = T_ERR;
      return;
    }
    t->s = adup(p, p->s + b, p->i - b);
    t->n = p->i - b;
    t->k = T_RAWNAME;
    return;
  }
  if (is_digit(c)) {
    size_t b = p->i;
    bool frac = false;
    if (c == '0' && p->i + 1 < p->n && is_digit((unsigned char)p->s[p->i + 1])) {
      lex_err(p, b, "a number cannot start with 0 (write 7, not 07)");
      while (p->i < p->n && is_digit((unsigned char)p->s[p->i]))
        p->i++;
      t->k = T_ERR;
      t->end = p->i;
      return;
    }
    while (p->i < p->n && is_digit((unsigned char)p->s[p->i]))
      p->i++;
    if (p->i + 1 < p->n && p->s[p->i] == '.' && is_digit((unsigned char)p->s[p->i + 1])) {
      frac = true;
      p->i++;
      while (p->i < p->n && is_digit((unsigned char)p->s[p->i]))
        p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
      size_t e = p->i + 1;
      if (e < p->n && (p->s[e] == '+' || p->s[e] == '-'))
        e++;
      if (e < p->n && is_digit((unsigned char)p->s[e])) {
        frac = true;
        p->i = e;
        while (p->i < p->n && is_digit((unsigned char)p->s[p->i]))
          p->i++;
      }
    }
    if (p->i < p->n && is_alpha((unsigned char)p->s[p->i])) {
      lex_err(p, p->i, "unexpected character '%c' after a number", p->s[p->i]);
      while (p->i < p->n && (is_alpha((unsigned char)p->s[p->i]) || is_digit((unsigned char)p->s[p->i])))
        p->i++;
      t->k = T_ERR;
      t->end = p->i;
      return;
    }
    t->k = frac ? T_NUM : T_INT;
    t->end = p->i;
    t->s = adup(p, p->s + b, p->i - b);
    t->n = p->i - b;
    return;
  }
  if (c == '"' || c == '\'') {
    size_t open = p->i++;
    wfp__buf b;
    wfp__buf_init(&b);
    int r = scan_chars(p, &b, (char)c, false, open, p->line, col_of(p, open));
    t->end = p->i;
    if (r != 1) {
      wfp__buf_free(&b);
      t->k = T_ERR;
      /* skip to the end of the line: the rest is the string's */
      while (p->i < p->n && p->s[p->i] != '\n')
        p->i++;
      return;
    }
    if (b.oom)
      p->oom = true;
    t->n = b.len;
    t->s = adup(p, b.data ? b.data : "", b.len);
    wfp__buf_free(&b);
    t->k = T_STR;
    return;
  }
  for (int k = 0; puncts[k].s; k++) {
    size_t len = strlen(puncts[k].s);
    if (p->i + len <= p->n && memcmp(p->s + p->i, puncts[k].s, len) == 0) {
      p->i += len;
      t->end = p->i;
      t->k = puncts[k].k;
      return;
    }
  }
  if (c < 0x80) {
    if (c >= 0x20 && c < 0x7f)
      lex_err(p, p->i, "unexpected character '%c'", c);
    else
      lex_err(p, p->i, "unexpected control character U+%04X", c);
    p->i++;
  } else {
    size_t k = utf8_len(p->s, p->n, p->i);
    if (k)
      lex_err(p, p->i, "unexpected character '%.*s' (outside a string or a comment)", (int)k, p->s + p->i);
    else
      lex_err(p, p->i, "invalid UTF-8");
    p->i += k ? k : 1;
  }
  t->k = T_ERR;
  t->end = p->i;
}

/* ---- building the tree ---- */

static cJSON *chk(Ps *p, cJSON *j) {
  if (!j)
    p->oom = true;
  return j;
}

static void mark_at(Ps *p, const cJSON *j, int line, int col) {
  if (!j)
    return;
  if (p->nmarks == p->markcap) {
    size_t cap = p->markcap ? p->markcap * 2 : 256;
    mark *m = realloc(p->marks, cap * sizeof *m);
    if (!m) {
      p->oom = true;
      return;
    }
    p->marks = m;
    p->markcap = cap;
  }
  p->marks[p->nmarks++] = (mark){j, line, col};
}

static void mark_tok(Ps *p, const cJSON *j, const tok *t) { mark_at(p, j, t->line, t->col); }

/* v kept aside: its parent is missing, or adding it failed (linking into
** an array allocates nothing) */
static void lose(Ps *p, cJSON *v) {
  if (v)
    cJSON_AddItemToArray(p->lost, v);
}

static void put(Ps *p, cJSON *o, const char *k, cJSON *v) {
  if (!o || !v) {
    p->oom = p->oom || (!v && !p->panic);
    lose(p, v);
    return;
  }
  /* the key is copied: that can fail */
  if (!cJSON_AddItemToObject(o, k, v)) {
    p->oom = true;
    lose(p, v);
  }
}

static void push(Ps *p, cJSON *a, cJSON *v) {
  if (!a || !v) {
    p->oom = p->oom || (!v && !p->panic);
    lose(p, v);
    return;
  }
  cJSON_AddItemToArray(a, v);
}

static cJSON *jstr(Ps *p, const char *s) { return chk(p, cJSON_CreateString(s ? s : "")); }
static cJSON *jraw(Ps *p, const char *s) { return chk(p, cJSON_CreateRaw(s ? s : "null")); }

static cJSON *op_node(Ps *p, const char *op, const tok *at) {
  cJSON *o = chk(p, cJSON_CreateObject());
  put(p, o, "op", jstr(p, op));
  if (at)
    mark_tok(p, o, at);
  return o;
}

/* a name token's value as a JSON string, marked at the token */
static cJSON *name_item(Ps *p, const tok *t) {
  cJSON *j = jstr(p, t->s);
  mark_tok(p, j, t);
  return j;
}

/* ---- notes (comments, blank lines) ---- */

static pnote *new_note(Ps *p, const cJSON *node, int kind) {
  if (p->nnotes == p->notecap) {
    size_t cap = p->notecap ? p->notecap * 2 : 32;
    pnote *n = realloc(p->notes, cap * sizeof *n);
    if (!n) {
      p->oom = true;
      return NULL;
    }
    p->notes = n;
    p->notecap = cap;
  }
  pnote *n = &p->notes[p->nnotes++];
  memset(n, 0, sizeof *n);
  n->node = node;
  n->kind = kind;
  return n;
}

static void note_add_lead(Ps *p, pnote *n, const char *text) {
  if (!n || !text)
    return;
  if (n->nlead == n->cap) {
    int cap = n->cap ? n->cap * 2 : 4;
    const char **v = wfp__arena_alloc(&p->t->arena, sizeof *v * (size_t)cap);
    if (!v) {
      p->oom = true;
      return;
    }
    if (n->nlead)
      memcpy(v, n->lead, sizeof *v * (size_t)n->nlead);
    n->lead = v;
    n->cap = cap;
  }
  n->lead[n->nlead++] = text;
}

/* The start of an item: the comments before it, and whether a blank line
** comes before them. Call with cur on the item's first token. */
typedef struct start {
  size_t c0, c1; /* comments [c0, c1) lead the item */
  bool blank;
  bool gap;      /* a blank line between those comments and the item */
  int d0;        /* the depth of brackets of its first token */
  size_t off;    /* and where that token is */
} start;

static start item_start(Ps *p) {
  start s = {p->cnext, p->cnext, false, false, p->cur.depth, p->cur.off};
  while (p->cnext < p->ncm && p->cm[p->cnext].off < p->cur.off)
    p->cnext++;
  s.c1 = p->cnext;
  int nl = s.c0 < s.c1 ? p->cm[s.c0].nl : p->cur.nl;
  s.blank = nl >= 2;
  s.gap = s.c0 < s.c1 && p->cur.nlc >= 2;
  return s;
}

/* The end of an item whose node is j: comments inside it join the leading
** ones, and a comment after its last token on the same line trails it. */
static void item_end(Ps *p, const start *s, const cJSON *j) {
  if (!j)
    return;
  size_t inner0 = p->cnext;
  while (p->cnext < p->ncm && p->cm[p->cnext].off < p->prev.end)
    p->cnext++;
  const char *trail = NULL;
  if (p->cnext < p->ncm && p->cm[p->cnext].line == p->prev.line &&
      p->cm[p->cnext].off < p->cur.off && p->cm[p->cnext].nl == 0) {
    trail = p->cm[p->cnext].text;
    p->cnext++;
  }
  if (s->c0 == s->c1 && inner0 == p->cnext - (trail ? 1 : 0) && !trail && !s->blank)
    return;
  pnote *n = new_note(p, j, 0);
  if (!n)
    return;
  n->blank = s->blank;
  n->gap = s->gap;
  for (size_t k = s->c0; k < s->c1; k++)
    note_add_lead(p, n, p->cm[k].text);
  for (size_t k = inner0; k < p->cnext - (trail ? 1 : 0); k++)
    note_add_lead(p, n, p->cm[k].text);
  n->trail = trail;
}

/* Comments before the closing brace of block arr. */
static void block_end(Ps *p, const cJSON *arr, int kind) {
  size_t c0 = p->cnext;
  while (p->cnext < p->ncm && (kind == 2 || p->cm[p->cnext].off < p->cur.off))
    p->cnext++;
  if (c0 == p->cnext)
    return;
  pnote *n = new_note(p, arr, kind);
  for (size_t k = c0; n && k < p->cnext; k++)
    note_add_lead(p, n, p->cm[k].text);
  if (n)
    n->blank = p->cm[c0].nl >= 2;
}

/* ---- token helpers ---- */

static bool is_word(const tok *t) { return t->k == T_NAME || (t->k >= K_FN && t->k <= K_JSON); }

static bool is_ctx(Ps *p, const char *w) {
  return p->cur.k == T_NAME && strcmp(p->cur.s, w) == 0;
}

static bool accept(Ps *p, int k) {
  if (p->cur.k != k)
    return false;
  next(p);
  return true;
}

static bool expect(Ps *p, int k, const char *what) {
  if (accept(p, k))
    return true;
  expected(p, what);
  return false;
}

/* a name: an identifier, or #name */
static bool name_tok(Ps *p, tok *out, const char *what) {
  if (p->cur.k == T_NAME || p->cur.k == T_RAWNAME) {
    *out = p->cur;
    next(p);
    return true;
  }
  if (p->cur.k >= K_FN && p->cur.k <= K_JSON) {
    perr(p, &p->cur, "'%s' is a keyword: write #%s for %s of that name", p->cur.s,
         p->cur.s, what);
    return false;
  }
  char b[64];
  snprintf(b, sizeof b, "%s", what);
  expected(p, b);
  return false;
}

/* Skips what remains of a faulty item, to the start of the next one: a
** line break or ';' at the depth of brackets where the item began (d0), or
** the bracket that closes that level. start is where the item began. */
static void sync(Ps *p, bool top, int d0, size_t from) {
  while (p->cur.k != T_EOF && !p->stop) {
    bool moved = p->cur.off != from;
    if (p->cur.depth < d0)
      break;
    bool closer = p->cur.k == T_RP || p->cur.k == T_RB || p->cur.k == T_RK;
    if (p->cur.depth == d0 && moved && !closer) {
      if (top) {
        if (p->cur.nl && (p->cur.k == K_FN || p->cur.k == T_AT ||
                          is_ctx(p, "resource") || is_ctx(p, "entry")))
          break;
      } else if (p->cur.nl) {
        break;
      }
      if (p->cur.k == T_SEMI) {
        next(p);
        break;
      }
    }
    next(p);
  }
  p->panic = false;
}

/* ---- expressions ---- */

static X parse_expr(Ps *p);
static cJSON *parse_lambda(Ps *p, const tok *at);
static cJSON *parse_tpl_value(Ps *p);

static X xnone(void) { X x = {NULL, false, false, NULL}; return x; }
static X xof(cJSON *j) { X x = {j, false, false, NULL}; return x; }

static bool enter(Ps *p) {
  if (++p->nest > MAX_NEST) {
    perr(p, &p->cur, "nesting too deep (more than %d levels of blocks and expressions)", MAX_NEST);
    p->nest--;
    return false;
  }
  return true;
}
static void leave(Ps *p) { p->nest--; }

/* a lit_i64 node for the decimal text s (with its sign) */
static cJSON *lit_i64(Ps *p, const char *s, const tok *at) {
  int64_t v;
  if (!wfp__parse_i64(s, strlen(s), &v)) {
    perr(p, at, "integer %s is out of the i64 range (-9223372036854775808 to 9223372036854775807)", s);
    return NULL;
  }
  cJSON *o = op_node(p, "lit_i64", at);
  char tmp[24];
  wfp__fmt_i64(tmp, v);
  put(p, o, "value", v >= -9007199254740992LL && v <= 9007199254740992LL ? jraw(p, tmp) : jstr(p, tmp));
  return o;
}

/* Comma-separated expressions up to the closing token; line breaks free. */
static cJSON *expr_list(Ps *p, int close, const char *what) {
  cJSON *a = chk(p, cJSON_CreateArray());
  bool saved = p->nlsig;
  p->nlsig = false;
  while (p->cur.k != close && !p->panic) {
    X e = parse_expr(p);
    if (!e.j)
      break;
    push(p, a, e.j);
    if (!accept(p, T_COMMA))
      break;
  }
  if (!p->panic && !accept(p, close))
    expected(p, what);
  p->nlsig = saved;
  return a;
}

/* "key" of an effect: a literal string */
static cJSON *lit_string_arg(Ps *p, const char *what) {
  if (p->cur.k != T_STR) {
    char b[128];
    snprintf(b, sizeof b, "%s (a literal string)", what);
    expected(p, b);
    return NULL;
  }
  cJSON *j = jstr(p, p->cur.s);
  mark_tok(p, j, &p->cur);
  next(p);
  return j;
}

static bool arg_sep(Ps *p) {
  if (accept(p, T_COMMA))
    return true;
  expected(p, "','");
  return false;
}

static bool close_args(Ps *p) {
  accept(p, T_COMMA);
  return expect(p, T_RP, "')'");
}

/* ctx.get, ctx.set, msg.send, db.query, self.prop: cur is after the '.' */
static X parse_namespace(Ps *p, const tok *ns) {
  tok m = p->cur;
  if (!is_word(&m)) {
    expected(p, "a name after '.'");
    return xnone();
  }
  next(p);
  bool saved = p->nlsig;
  X r = xnone();
  if (strcmp(ns->s, "self") == 0) {
    cJSON *o = op_node(p, "self_get", &m);
    put(p, o, "property", name_item(p, &m));
    return xof(o);
  }
  const char *what = NULL;
  if (strcmp(ns->s, "ctx") == 0 && strcmp(m.s, "get") == 0)
    what = "ctx_get_i64";
  else if (strcmp(ns->s, "ctx") == 0 && strcmp(m.s, "set") == 0)
    what = "ctx_set_i64";
  else if (strcmp(ns->s, "msg") == 0 && strcmp(m.s, "send") == 0)
    what = "msg_send";
  else if (strcmp(ns->s, "db") == 0 && strcmp(m.s, "query") == 0)
    what = "db_query";
  if (!what) {
    perr(p, &m, "unknown effect '%s.%s' (the effects are ctx.get, ctx.set, msg.send, db.query, sleep and self.PROPERTY)",
         ns->s, m.s);
    return xnone();
  }
  if (!expect(p, T_LP, "'('"))
    return xnone();
  p->nlsig = false;
  cJSON *o = op_node(p, what, ns);
  if (strcmp(what, "ctx_get_i64") == 0) {
    put(p, o, "key", lit_string_arg(p, "the context key"));
  } else if (strcmp(what, "ctx_set_i64") == 0) {
    put(p, o, "key", lit_string_arg(p, "the context key"));
    if (!p->panic && arg_sep(p)) {
      X v = parse_expr(p);
      put(p, o, "value", v.j);
    }
  } else if (strcmp(what, "msg_send") == 0) {
    put(p, o, "topic", lit_string_arg(p, "the topic"));
    if (!p->panic && arg_sep(p)) {
      X v = parse_expr(p);
      put(p, o, "payload", v.j);
    }
  } else {
    put(p, o, "sql", lit_string_arg(p, "the SQL text"));
    if (!p->panic && accept(p, T_COMMA) && p->cur.k != T_RP) {
      if (p->cur.k == T_LK) {
        next(p);
        cJSON *ps = expr_list(p, T_RK, "']'");
        if (cJSON_GetArraySize(ps))
          put(p, o, "params", ps);
        else
          cJSON_Delete(ps);
        if (!p->panic && accept(p, T_COMMA) && p->cur.k != T_RP) {
          X e = parse_expr(p);
          put(p, o, "each", e.j);
        }
      } else {
        X e = parse_expr(p);
        put(p, o, "each", e.j);
      }
    }
  }
  if (!p->panic)
    close_args(p);
  p->nlsig = saved;
  r.j = o;
  if (p->panic) {
    cJSON_Delete(o);
    return xnone();
  }
  return r;
}

/* len(x), input(), sleep(ms), get_*(from, path...): cur is after '(' */
static X parse_builtin(Ps *p, const tok *b) {
  bool saved = p->nlsig;
  p->nlsig = false;
  cJSON *o = NULL;
  if (strcmp(b->s, "input") == 0) {
    o = op_node(p, "input", b);
  } else if (strcmp(b->s, "len") == 0 || strcmp(b->s, "sleep") == 0) {
    bool len = b->s[0] == 'l';
    o = op_node(p, len ? "len" : "sleep_ms", b);
    X a = parse_expr(p);
    put(p, o, len ? "a" : "ms", a.j);
  } else {
    o = op_node(p, b->s, b);
    X from = parse_expr(p);
    put(p, o, "from", from.j);
    cJSON *path = chk(p, cJSON_CreateArray());
    while (!p->panic && accept(p, T_COMMA) && p->cur.k != T_RP) {
      if (p->cur.k == T_STR) {
        cJSON *k = jstr(p, p->cur.s);
        mark_tok(p, k, &p->cur);
        push(p, path, k);
      } else if (p->cur.k == T_INT) {
        cJSON *k = jraw(p, p->cur.s);
        mark_tok(p, k, &p->cur);
        push(p, path, k);
      } else {
        perr(p, &p->cur, "a path step of %s is a literal string (a key) or integer (an index)", b->s);
        break;
      }
      next(p);
    }
    put(p, o, "path", path);
  }
  if (!p->panic)
    expect(p, T_RP, "')'");
  p->nlsig = saved;
  if (p->panic) {
    cJSON_Delete(o);
    return xnone();
  }
  return xof(o);
}

/* `...${e}...`: cur is the backtick */
static X parse_template_string(Ps *p) {
  tok open = p->cur;
  cJSON *o = op_node(p, "concat", &open);
  cJSON *parts = chk(p, cJSON_CreateArray());
  put(p, o, "parts", parts);
  p->i = open.end;
  for (;;) {
    wfp__buf b;
    wfp__buf_init(&b);
    int line = p->line, col = col_of(p, p->i);
    int r = scan_chars(p, &b, '`', true, open.off, open.line, open.col);
    if (r == 0) {
      wfp__buf_free(&b);
      cJSON_Delete(o);
      next(p);
      return xnone();
    }
    if (b.len) {
      cJSON *s = op_node(p, "lit_str", NULL);
      mark_at(p, s, line, col);
      put(p, s, "value", jstr(p, adup(p, b.data, b.len)));
      push(p, parts, s);
    }
    wfp__buf_free(&b);
    if (r == 1)
      break;
    /* ${ expression } */
    p->bdepth++;
    bool saved = p->nlsig;
    p->nlsig = false;
    next(p);
    X e = parse_expr(p);
    p->nlsig = saved;
    if (!e.j || p->cur.k != T_RB) {
      if (e.j)
        expected(p, "'}' closing '${'");
      cJSON_Delete(e.j);
      cJSON_Delete(o);
      return xnone();
    }
    push(p, parts, e.j);
    p->i = p->cur.end; /* the string goes on right after the '}' */
  }
  next(p);
  return xof(o);
}

/* a JSON value with no expressions (the value of `json ...`) */
static cJSON *parse_json_value(Ps *p) {
  tok t = p->cur;
  cJSON *v = NULL;
  if (!enter(p))
    return NULL;
  switch (t.k) {
  case T_STR: v = jstr(p, t.s); next(p); break;
  case T_INT: case T_NUM: v = jraw(p, t.s); next(p); break;
  case K_TRUE: v = chk(p, cJSON_CreateTrue()); next(p); break;
  case K_FALSE: v = chk(p, cJSON_CreateFalse()); next(p); break;
  case K_NULL: v = chk(p, cJSON_CreateNull()); next(p); break;
  case T_MINUS: {
    next(p);
    if (p->cur.k != T_INT && p->cur.k != T_NUM) {
      expected(p, "a number after '-'");
      break;
    }
    char *s = wfp__arena_printf(&p->t->arena, "-%s", p->cur.s);
    v = jraw(p, s);
    next(p);
    break;
  }
  case T_LK: {
    next(p);
    v = chk(p, cJSON_CreateArray());
    while (p->cur.k != T_RK && !p->panic) {
      cJSON *e = parse_json_value(p);
      if (!e)
        break;
      push(p, v, e);
      if (!accept(p, T_COMMA))
        break;
    }
    if (!p->panic)
      expect(p, T_RK, "']'");
    break;
  }
  case T_LB: {
    next(p);
    v = chk(p, cJSON_CreateObject());
    while (p->cur.k != T_RB && !p->panic) {
      tok k = p->cur;
      if (k.k != T_STR && !is_word(&k) && k.k != T_RAWNAME) {
        expected(p, "a key (a name or a string)");
        break;
      }
      next(p);
      if (!expect(p, T_COLON, "':'"))
        break;
      cJSON *e = parse_json_value(p);
      if (!e)
        break;
      if (cJSON_GetObjectItemCaseSensitive(v, k.s)) {
        perr(p, &k, "duplicate key '%s' in this object", k.s);
        cJSON_Delete(e);
        break;
      }
      mark_tok(p, e, &k);
      put(p, v, k.s, e);
      if (!accept(p, T_COMMA))
        break;
    }
    if (!p->panic)
      expect(p, T_RB, "'}'");
    break;
  }
  default:
    if (t.k == T_NAME || t.k == T_RAWNAME || t.k == T_LP || t.k == T_BTICK)
      perr(p, &t, "a JSON literal holds no expressions: write a template ({...} or json(...)) to compute a value");
    else
      expected(p, "a JSON value");
  }
  leave(p);
  if (p->panic) {
    cJSON_Delete(v);
    return NULL;
  }
  if (v)
    mark_tok(p, v, &t);
  return v;
}

/* { key: value, ... } or [ value, ... ] of a template (cur on the bracket) */
static cJSON *parse_tpl_struct(Ps *p) {
  bool obj = p->cur.k == T_LB;
  tok open = p->cur;
  bool saved = p->nlsig;
  p->nlsig = false;
  next(p);
  cJSON *v = chk(p, obj ? cJSON_CreateObject() : cJSON_CreateArray());
  mark_tok(p, v, &open);
  int close = obj ? T_RB : T_RK;
  while (p->cur.k != close && !p->panic) {
    if (obj) {
      tok k = p->cur;
      if (k.k != T_STR && !is_word(&k) && k.k != T_RAWNAME) {
        expected(p, "a key (a name or a string)");
        break;
      }
      next(p);
      if (!expect(p, T_COLON, "':'"))
        break;
      if (strcmp(k.s, "op") == 0) {
        perr(p, &k, "a template object cannot have the key 'op' (the IR reads such an object as an expression): write this object as a JSON literal, json {...}");
        break;
      }
      if (cJSON_GetObjectItemCaseSensitive(v, k.s)) {
        perr(p, &k, "duplicate key '%s' in this object", k.s);
        break;
      }
      cJSON *e = parse_tpl_value(p);
      if (!e)
        break;
      put(p, v, k.s, e);
    } else {
      cJSON *e = parse_tpl_value(p);
      if (!e)
        break;
      push(p, v, e);
    }
    if (!accept(p, T_COMMA))
      break;
  }
  if (!p->panic)
    expect(p, close, obj ? "',' or '}'" : "',' or ']'");
  p->nlsig = saved;
  if (p->panic) {
    cJSON_Delete(v);
    return NULL;
  }
  return v;
}

typedef struct binop { int k; int prec; const char *op; } binop;
static const binop binops[] = {
    {T_OROR, 1, "or"},  {T_ANDAND, 2, "and"}, {T_EQ, 3, "eq"},   {T_NE, 3, "ne"},
    {T_LT, 3, "lt"},    {T_LE, 3, "le"},      {T_GT, 3, "gt"},   {T_GE, 3, "ge"},
    {T_PIPE, 4, "bor"}, {T_CARET, 5, "bxor"}, {T_AMP, 6, "band"}, {T_SHL, 7, "shl"},
    {T_SHR, 7, "shr"},  {T_PLUS, 8, "add"},   {T_MINUS, 8, "sub"}, {T_STAR, 9, "mul"},
    {T_SLASH, 9, "div"}, {T_PCT, 9, "rem"},   {0, 0, NULL}};

static const binop *binop_of(int k) {
  for (int i = 0; binops[i].op; i++)
    if (binops[i].k == k)
      return &binops[i];
  return NULL;
}

static X parse_postfix(Ps *p, X x);
static X parse_bin_from(Ps *p, int minprec, X left);

/* Would the token after a literal continue an expression? */
static bool continues(Ps *p) {
  return binop_of(p->cur.k) || p->cur.k == T_DOTCALL;
}

/* One value of a template: literal JSON structure, or an expression. A
** literal number or string alone is structure (any JSON number, beyond the
** i64 range too); in parentheses, or with an operator, an expression. */
static cJSON *parse_tpl_value(Ps *p) {
  tok t = p->cur;
  cJSON *v = NULL;
  if (!enter(p))
    return NULL;
  if (t.k == T_LB || t.k == T_LK) {
    v = parse_tpl_struct(p);
  } else if (t.k == K_TRUE || t.k == K_FALSE || t.k == K_NULL || t.k == T_NUM) {
    v = parse_json_value(p);
  } else if (t.k == T_INT || t.k == T_STR ||
             (t.k == T_MINUS && (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'))) {
    /* a literal token (a '-' right before digits belongs to it) */
    const char *raw = t.s;
    if (t.k == T_MINUS) {
      next(p);
      raw = wfp__arena_printf(&p->t->arena, "-%s", p->cur.s ? p->cur.s : "");
      if (p->cur.k == T_NUM) {
        v = jraw(p, raw);
        mark_tok(p, v, &t);
        next(p);
        leave(p);
        return v;
      }
    }
    tok lt = p->cur;
    next(p);
    if (!continues(p)) {
      v = lt.k == T_STR ? jstr(p, lt.s) : jraw(p, raw);
      mark_tok(p, v, &t);
    } else {
      X left;
      if (lt.k == T_STR) {
        cJSON *o = op_node(p, "lit_str", &t);
        put(p, o, "value", jstr(p, lt.s));
        left = xof(o);
      } else {
        left = xof(lit_i64(p, raw, &t));
      }
      X e = parse_bin_from(p, 1, parse_postfix(p, left));
      v = e.j;
    }
  } else {
    X e = parse_expr(p);
    v = e.j;
  }
  leave(p);
  return v;
}

static X parse_primary(Ps *p) {
  tok t = p->cur;
  switch (t.k) {
  case T_INT: {
    next(p);
    X x = xof(lit_i64(p, t.s, &t));
    x.lit = true;
    x.raw = t.s;
    return x;
  }
  case T_NUM:
    perr(p, &t, "%s is not an integer: a number with a fraction or an exponent is JSON (write json %s, or put it in a template)",
         t.s, t.s);
    return xnone();
  case T_STR: {
    next(p);
    cJSON *o = op_node(p, "lit_str", &t);
    put(p, o, "value", jstr(p, t.s));
    X x = xof(o);
    x.lit = true;
    return x;
  }
  case T_BTICK:
    return parse_template_string(p);
  case K_TRUE: case K_FALSE: case K_NULL:
    perr(p, &t, "'%s' is a JSON value, not an i64: write json %s (or 1 and 0 for a condition)", t.s, t.s);
    return xnone();
  case T_LP: {
    bool saved = p->nlsig;
    p->nlsig = false;
    next(p);
    X e = parse_expr(p);
    p->nlsig = saved;
    if (!e.j)
      return e;
    if (!expect(p, T_RP, "')'")) {
      cJSON_Delete(e.j);
      return xnone();
    }
    e.paren = true;
    return e;
  }
  case T_LB: case T_LK: {
    cJSON *o = op_node(p, "json", &t);
    put(p, o, "value", parse_tpl_struct(p));
    if (p->panic) {
      cJSON_Delete(o);
      return xnone();
    }
    return xof(o);
  }
  case K_JSON: {
    next(p);
    if (p->cur.k == T_LP) {
      bool saved = p->nlsig;
      p->nlsig = false;
      next(p);
      cJSON *o = op_node(p, "json", &t);
      put(p, o, "value", parse_tpl_value(p));
      if (!p->panic)
        expect(p, T_RP, "')'");
      p->nlsig = saved;
      if (p->panic) {
        cJSON_Delete(o);
        return xnone();
      }
      return xof(o);
    }
    cJSON *o = op_node(p, "lit_json", &t);
    put(p, o, "value", parse_json_value(p));
    if (p->panic) {
      cJSON_Delete(o);
      return xnone();
    }
    return xof(o);
  }
  case K_FN: {
    next(p);
    if (p->cur.k == T_LP)
      return xof(parse_lambda(p, &t));
    tok name;
    if (!name_tok(p, &name, "a function name or '(' after 'fn'"))
      return xnone();
    cJSON *o = op_node(p, "fn", &t);
    put(p, o, "name", name_item(p, &name));
    if (is_ctx(p, "with") && !p->cur.nl) {
      next(p);
      if (!expect(p, T_LP, "'(' after 'with'")) {
        cJSON_Delete(o);
        return xnone();
      }
      put(p, o, "captures", expr_list(p, T_RP, "')'"));
    }
    if (p->panic) {
      cJSON_Delete(o);
      return xnone();
    }
    return xof(o);
  }
  case T_NAME: case T_RAWNAME: {
    next(p);
    if (t.k == T_NAME && p->cur.k == T_DOT &&
        (strcmp(t.s, "ctx") == 0 || strcmp(t.s, "msg") == 0 ||
         strcmp(t.s, "db") == 0 || strcmp(t.s, "self") == 0)) {
      next(p);
      return parse_namespace(p, &t);
    }
    if (p->cur.k == T_LP) {
      next(p);
      if (t.k == T_NAME && wfp__text_builtin(t.s))
        return parse_builtin(p, &t);
      cJSON *o = op_node(p, "call", &t);
      put(p, o, "fn", name_item(p, &t));
      put(p, o, "args", expr_list(p, T_RP, "',' or ')'"));
      if (p->panic) {
        cJSON_Delete(o);
        return xnone();
      }
      return xof(o);
    }
    cJSON *o = op_node(p, "var", &t);
    put(p, o, "name", name_item(p, &t));
    return xof(o);
  }
  case T_EOF:
    expected(p, "an expression");
    return xnone();
  default: {
    if (t.k >= K_FN && t.k <= K_JSON) {
      perr(p, &t, "'%s' is a keyword: it cannot start an expression (write #%s for a name)", t.s, t.s);
      return xnone();
    }
    expected(p, "an expression");
    return xnone();
  }
  }
}

static X parse_postfix(Ps *p, X x) {
  while (x.j && p->cur.k == T_DOTCALL && !(p->nlsig && p->cur.nl)) {
    tok at = p->cur;
    next(p);
    cJSON *o = op_node(p, "call_ref", &at);
    put(p, o, "fn", x.j);
    put(p, o, "args", expr_list(p, T_RP, "',' or ')'"));
    if (p->panic) {
      cJSON_Delete(o);
      return xnone();
    }
    x = xof(o);
  }
  return x;
}

static X parse_unary(Ps *p) {
  tok t = p->cur;
  if (!enter(p))
    return xnone();
  X r;
  if (t.k == T_MINUS || t.k == T_BANG) {
    next(p);
    if (t.k == T_MINUS && p->cur.k == T_INT) {
      /* -5 is the literal -5; -(5) is neg of 5 */
      tok n = p->cur;
      next(p);
      char *s = wfp__arena_printf(&p->t->arena, "-%s", n.s);
      r = xof(lit_i64(p, s, &t));
      r.lit = true;
      r.raw = s;
      r = parse_postfix(p, r);
    } else {
      X a = parse_unary(p);
      if (!a.j) {
        leave(p);
        return a;
      }
      cJSON *o = op_node(p, t.k == T_MINUS ? "neg" : "not", &t);
      put(p, o, "a", a.j);
      r = xof(o);
    }
  } else {
    r = parse_postfix(p, parse_primary(p));
  }
  leave(p);
  return r;
}

static X parse_bin_from(Ps *p, int minprec, X left) {
  while (left.j) {
    const binop *b = binop_of(p->cur.k);
    if (!b || b->prec < minprec || (p->nlsig && p->cur.nl))
      break;
    tok at = p->cur;
    next(p);
    if (!enter(p)) {
      cJSON_Delete(left.j);
      return xnone();
    }
    X right = parse_unary(p);
    while (right.j) {
      const binop *b2 = binop_of(p->cur.k);
      if (!b2 || b2->prec <= b->prec || (p->nlsig && p->cur.nl))
        break;
      right = parse_bin_from(p, b->prec + 1, right);
    }
    leave(p);
    if (!right.j) {
      cJSON_Delete(left.j);
      return xnone();
    }
    cJSON *o = op_node(p, b->op, &at);
    put(p, o, "a", left.j);
    put(p, o, "b", right.j);
    left = xof(o);
  }
  return left;
}

static X parse_expr(Ps *p) {
  if (!enter(p))
    return xnone();
  X x = parse_bin_from(p, 1, parse_unary(p));
  leave(p);
  if (p->panic && x.j) {
    cJSON_Delete(x.j);
    return xnone();
  }
  return x;
}

/* ---- parameters, lambdas ---- */

static const char *type_word(Ps *p) {
  const tok *t = &p->cur;
  if (t->k == K_FN)
    return "fn";
  if (t->k == K_JSON)
    return "json";
  if (t->k == T_NAME && (strcmp(t->s, "i64") == 0 || strcmp(t->s, "str") == 0))
    return t->s;
  char b[96];
  perr(p, t, "unknown type %s (the types are i64, str, json and fn)", tok_desc(p, t, b, sizeof b));
  return NULL;
}

/* (a, b: str, ...): cur on '(' */
static cJSON *parse_params(Ps *p) {
  cJSON *a = chk(p, cJSON_CreateArray());
  if (!expect(p, T_LP, "'('"))
    return a;
  bool saved = p->nlsig;
  p->nlsig = false;
  while (p->cur.k != T_RP && !p->panic) {
    tok n;
    if (!name_tok(p, &n, "a parameter name"))
      break;
    cJSON *o = chk(p, cJSON_CreateObject());
    mark_tok(p, o, &n);
    put(p, o, "name", name_item(p, &n));
    const char *ty = "i64";
    tok tt = n;
    if (accept(p, T_COLON)) {
      tt = p->cur;
      ty = type_word(p);
      if (!ty) {
        cJSON_Delete(o);
        break;
      }
      next(p);
    }
    cJSON *tj = jstr(p, ty);
    mark_tok(p, tj, &tt);
    put(p, o, "type", tj);
    push(p, a, o);
    if (!accept(p, T_COMMA))
      break;
  }
  if (!p->panic)
    expect(p, T_RP, "',' or ')'");
  p->nlsig = saved;
  return a;
}

/* per-function context of the statement parser */
typedef struct fctx {
  const char *name;  /* the named function whose body this is, or NULL */
  bool lambda;       /* in a lambda (or a block of one) */
  bool top;          /* at the top level of a named function's body */
} fctx;

static cJSON *parse_block_in(Ps *p, fctx *fc);

static cJSON *parse_lambda(Ps *p, const tok *at) {
  cJSON *o = op_node(p, "lambda", at);
  put(p, o, "params", parse_params(p));
  if (p->panic) {
    cJSON_Delete(o);
    return NULL;
  }
  fctx fc = {NULL, true, false};
  put(p, o, "body", parse_block_in(p, &fc));
  if (p->panic) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* ---- functions ---- */

typedef struct attrs {
  cJSON *id, *nested_in, *captures;
} attrs;

static cJSON *parse_function(Ps *p, const start *st, attrs *at, const char *res,
                             const char *parent, bool nested);

/* @id("x") @nested_in(name) @captures(a, b) */
static bool parse_attrs(Ps *p, attrs *a) {
  memset(a, 0, sizeof *a);
  while (p->cur.k == T_AT) {
    tok at = p->cur;
    next(p);
    if (p->cur.k != T_NAME) {
      expected(p, "an attribute name after '@' (id, nested_in or captures)");
      return false;
    }
    tok n = p->cur;
    next(p);
    if (!expect(p, T_LP, "'('"))
      return false;
    if (strcmp(n.s, "id") == 0 && !a->id) {
      if (p->cur.k != T_STR) {
        expected(p, "the id as a string (@id(\"...\"))");
        return false;
      }
      a->id = jstr(p, p->cur.s);
      mark_tok(p, a->id, &p->cur);
      next(p);
    } else if (strcmp(n.s, "nested_in") == 0 && !a->nested_in) {
      tok f;
      if (!name_tok(p, &f, "a function name"))
        return false;
      a->nested_in = name_item(p, &f);
    } else if (strcmp(n.s, "captures") == 0 && !a->captures) {
      a->captures = chk(p, cJSON_CreateArray());
      mark_tok(p, a->captures, &at);
      while (p->cur.k != T_RP && !p->panic) {
        tok f;
        if (!name_tok(p, &f, "a parameter name"))
          return false;
        push(p, a->captures, name_item(p, &f));
        if (!accept(p, T_COMMA))
          break;
      }
    } else {
      if (strcmp(n.s, "id") == 0 || strcmp(n.s, "nested_in") == 0 || strcmp(n.s, "captures") == 0)
        perr(p, &n, "attribute @%s given twice", n.s);
      else
        perr(p, &n, "unknown attribute @%s (the attributes are @id, @nested_in and @captures)", n.s);
      return false;
    }
    if (!expect(p, T_RP, "')'"))
      return false;
  }
  return true;
}

static void free_attrs(attrs *a) {
  cJSON_Delete(a->id);
  cJSON_Delete(a->nested_in);
  cJSON_Delete(a->captures);
  memset(a, 0, sizeof *a);
}

/* ---- statements ---- */

static cJSON *parse_if(Ps *p, fctx *fc) {
  tok at = p->cur;
  next(p);
  cJSON *o = op_node(p, "if", &at);
  bool saved = p->nlsig;
  p->nlsig = false; /* the condition ends at its '{' */
  X c = parse_expr(p);
  p->nlsig = saved;
  put(p, o, "cond", c.j);
  if (p->panic) {
    cJSON_Delete(o);
    return NULL;
  }
  if (p->cur.k != T_LB) {
    expected(p, "'{' after the condition");
    cJSON_Delete(o);
    return NULL;
  }
  fctx sub = *fc;
  sub.top = false;
  fc = &sub;
  put(p, o, "then", parse_block_in(p, fc));
  if (!p->panic && p->cur.k == K_ELSE && !p->cur.nl) {
    next(p);
    if (p->cur.k == K_IF) {
      cJSON *e = chk(p, cJSON_CreateArray());
      start st = item_start(p);
      cJSON *inner = parse_if(p, fc);
      if (inner) {
        push(p, e, inner);
        item_end(p, &st, inner);
      }
      put(p, o, "else", e);
    } else if (p->cur.k == T_LB) {
      cJSON *e = parse_block_in(p, fc);
      if (cJSON_GetArraySize(e))
        put(p, o, "else", e);
      else
        cJSON_Delete(e);
    } else {
      expected(p, "'{' or 'if' after 'else'");
    }
  }
  if (p->panic) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* One statement, or NULL (a fault was reported, or a nested function was
** declared: *decl is set then). */
static cJSON *parse_stmt(Ps *p, fctx *fc, bool *decl) {
  tok t = p->cur;
  *decl = false;
  switch (t.k) {
  case K_LET: {
    next(p);
    tok n;
    if (!name_tok(p, &n, "a variable name after 'let'"))
      return NULL;
    if (!expect(p, T_ASSIGN, "'=' after the variable name"))
      return NULL;
    X e = parse_expr(p);
    if (!e.j)
      return NULL;
    cJSON *o = op_node(p, "let", &t);
    put(p, o, "name", name_item(p, &n));
    put(p, o, "expr", e.j);
    return o;
  }
  case K_IF:
    return parse_if(p, fc);
  case K_WHILE: {
    next(p);
    cJSON *o = op_node(p, "while", &t);
    bool saved = p->nlsig;
    p->nlsig = false;
    X c = parse_expr(p);
    p->nlsig = saved;
    put(p, o, "cond", c.j);
    if (!p->panic && p->cur.k != T_LB)
      expected(p, "'{' after the condition");
    if (p->panic) {
      cJSON_Delete(o);
      return NULL;
    }
    fctx sub = *fc;
    sub.top = false;
    put(p, o, "body", parse_block_in(p, &sub));
    if (p->panic) {
      cJSON_Delete(o);
      return NULL;
    }
    return o;
  }
  case K_BREAK: case K_CONTINUE:
    next(p);
    return op_node(p, t.k == K_BREAK ? "break" : "continue", &t);
  case K_RETURN: {
    next(p);
    cJSON *o = op_node(p, "return", &t);
    if (p->cur.k != T_RB && p->cur.k != T_SEMI && p->cur.k != T_EOF && !p->cur.nl) {
      X e = parse_expr(p);
      if (!e.j) {
        cJSON_Delete(o);
        return NULL;
      }
      put(p, o, "expr", e.j);
    }
    return o;
  }
  case K_TRAP: {
    next(p);
    if (p->cur.k != T_STR) {
      expected(p, "the trap message (a literal string)");
      return NULL;
    }
    cJSON *o = op_node(p, "trap", &t);
    cJSON *m = jstr(p, p->cur.s);
    mark_tok(p, m, &p->cur);
    put(p, o, "message", m);
    next(p);
    return o;
  }
  case K_ELSE:
    if (p->prev.k == T_RB)
      perr(p, &t, "'else' goes on the line of the '}' that closes the 'if' block");
    else
      perr(p, &t, "'else' without 'if'");
    return NULL;
  case K_FN: {
    next(p);
    if (p->cur.k == T_NAME || p->cur.k == T_RAWNAME) {
      tok n = p->cur;
      next(p);
      if (p->cur.k == T_LP || p->cur.k == T_DOT) {
        /* a nested function */
        if (fc->lambda) {
          perr(p, &t, "a function cannot be declared inside a lambda (nested functions belong to a named function)");
          return NULL;
        }
        if (!fc->top) {
          perr(p, &t, "a nested function is declared at the top level of its parent's body, not inside a block");
          return NULL;
        }
        if (p->cur.k == T_DOT) {
          perr(p, &p->cur, "a nested function cannot be a method");
          return NULL;
        }
        *decl = true;
        return NULL; /* the caller parses it: see parse_block_in */
      }
      /* an expression that starts with fn NAME */
      cJSON *o = op_node(p, "fn", &t);
      put(p, o, "name", name_item(p, &n));
      if (is_ctx(p, "with") && !p->cur.nl) {
        next(p);
        if (expect(p, T_LP, "'(' after 'with'"))
          put(p, o, "captures", expr_list(p, T_RP, "')'"));
      }
      if (p->panic) {
        cJSON_Delete(o);
        return NULL;
      }
      X x = parse_bin_from(p, 1, parse_postfix(p, xof(o)));
      if (!x.j)
        return NULL;
      cJSON *s = op_node(p, "expr", &t);
      put(p, s, "expr", x.j);
      return s;
    }
    if (p->cur.k != T_LP) {
      expected(p, "a function name or '(' after 'fn'");
      return NULL;
    }
    cJSON *l = parse_lambda(p, &t);
    if (!l)
      return NULL;
    X x = parse_bin_from(p, 1, parse_postfix(p, xof(l)));
    if (!x.j)
      return NULL;
    cJSON *s = op_node(p, "expr", &t);
    put(p, s, "expr", x.j);
    return s;
  }
  default: {
    X e = parse_expr(p);
    if (!e.j)
      return NULL;
    if (p->cur.k == T_ASSIGN) {
      tok eq = p->cur;
      /* out of memory, the node may miss its op */
      const cJSON *opj = cJSON_GetObjectItemCaseSensitive(e.j, "op");
      const char *op = cJSON_IsString(opj) ? opj->valuestring : "";
      if (!e.paren && strcmp(op, "var") == 0) {
        next(p);
        X v = parse_expr(p);
        if (!v.j) {
          cJSON_Delete(e.j);
          return NULL;
        }
        cJSON *o = op_node(p, "set", &t);
        put(p, o, "name", cJSON_DetachItemFromObject(e.j, "name"));
        put(p, o, "expr", v.j);
        cJSON_Delete(e.j);
        return o;
      }
      if (!e.paren && strcmp(op, "self_get") == 0) {
        next(p);
        X v = parse_expr(p);
        if (!v.j) {
          cJSON_Delete(e.j);
          return NULL;
        }
        cJSON *s = op_node(p, "self_set", &t);
        put(p, s, "property", cJSON_DetachItemFromObject(e.j, "property"));
        put(p, s, "value", v.j);
        cJSON_Delete(e.j);
        cJSON *o = op_node(p, "expr", &t);
        put(p, o, "expr", s);
        return o;
      }
      cJSON_Delete(e.j);
      perr(p, &eq, "only a variable or self.PROPERTY can be assigned to");
      return NULL;
    }
    cJSON *o = op_node(p, "expr", &t);
    put(p, o, "expr", e.j);
    return o;
  }
  }
}

static bool stmt_end(Ps *p) {
  if (p->cur.k == T_SEMI) {
    next(p);
    return true;
  }
  if (p->cur.k == T_RB || p->cur.k == T_EOF || p->cur.nl)
    return true;
  expected(p, "a line break or ';' after the statement");
  return false;
}

static cJSON *parse_block_in(Ps *p, fctx *fc) {
  cJSON *a = chk(p, cJSON_CreateArray());
  if (!expect(p, T_LB, "'{'"))
    return a;
  if (!enter(p))
    return a;
  bool saved = p->nlsig;
  p->nlsig = true;
  fctx inner = *fc;
  bool top = fc->top;
  inner.top = false;
  while (p->cur.k != T_RB && p->cur.k != T_EOF && !p->stop) {
    if (p->cur.k == T_SEMI) {
      next(p);
      continue;
    }
    start st = item_start(p);
    bool decl = false;
    fctx use = top ? *fc : inner;
    if (p->cur.k == T_AT) {
      attrs at;
      memset(&at, 0, sizeof at);
      if (!top || fc->lambda) {
        perr(p, &p->cur, "attributes go before a function declaration");
      } else if (parse_attrs(p, &at) && expect(p, K_FN, "'fn' after the attributes")) {
        tok n;
        if (name_tok(p, &n, "the function's name"))
          parse_function(p, &st, &at, NULL, fc->name, true);
      }
      free_attrs(&at);
      if (p->panic)
        sync(p, false, st.d0, st.off);
      continue;
    }
    cJSON *s = parse_stmt(p, top ? &use : &inner, &decl);
    if (decl) {
      /* nested function: p->prev is its name, cur '(' */
      attrs at;
      memset(&at, 0, sizeof at);
      parse_function(p, &st, &at, NULL, fc->name, true);
      if (p->panic)
        sync(p, false, st.d0, st.off);
      continue;
    }
    if (s && stmt_end(p)) {
      push(p, a, s);
      item_end(p, &st, s);
    } else {
      cJSON_Delete(s);
      sync(p, false, st.d0, st.off);
    }
  }
  block_end(p, a, 1);
  p->nlsig = saved;
  leave(p);
  if (!p->stop && !p->panic) {
    if (p->cur.k != T_RB)
      expected(p, "'}'");
    else
      next(p);
  }
  return a;
}

/*
** fn NAME(params) [in PARENT] { body }, cur after NAME (on '(' or '.').
** p->prev is NAME. res: the resource of a method in a block; parent: the
** function a nested declaration is in.
*/
static cJSON *parse_function(Ps *p, const start *st, attrs *at, const char *res,
                             const char *parent, bool nested) {
  tok name = p->prev;
  tok kw = name; /* where the declaration is reported */
  cJSON *f = chk(p, cJSON_CreateObject());
  mark_tok(p, f, &kw);
  int index = p->nfuncs++;
  push(p, p->funcs, f);
  if (at->id) {
    put(p, f, "id", at->id);
    at->id = NULL;
  }
  tok resname = name;
  bool flat_method = false;
  if (p->cur.k == T_DOT) {
    /* fn R.m: a method of R written outside R's block */
    if (res) {
      perr(p, &p->cur, "inside the block of resource '%s', write fn %s(...) without the resource", res, "NAME");
      return NULL;
    }
    next(p);
    tok m;
    if (!name_tok(p, &m, "a method name after '.'"))
      return NULL;
    resname = name;
    name = m;
    flat_method = true;
  }
  put(p, f, "name", name_item(p, &name));
  if (parent) {
    cJSON *pj = jstr(p, parent);
    mark_tok(p, pj, &name);
    put(p, f, "parent", pj);
  }
  if (res) {
    cJSON *r = jstr(p, res);
    mark_tok(p, r, &name);
    put(p, f, "resource", r);
  } else if (flat_method) {
    cJSON *r = name_item(p, &resname);
    put(p, f, "resource", r);
    if (p->nflats == p->flatcap) {
      int cap = p->flatcap ? p->flatcap * 2 : 8;
      struct flat *v = realloc(p->flats, sizeof *v * (size_t)cap);
      if (!v) {
        p->oom = true;
        return NULL;
      }
      p->flats = v;
      p->flatcap = cap;
    }
    p->flats[p->nflats].res = resname.s;
    p->flats[p->nflats].name = name_item(p, &name);
    p->nflats++;
  }
  if (at->nested_in) {
    put(p, f, "nested_in", at->nested_in);
    at->nested_in = NULL;
  }
  if (at->captures) {
    put(p, f, "captures", at->captures);
    at->captures = NULL;
  }
  put(p, f, "params", parse_params(p));
  if (p->panic)
    return NULL;
  if (is_ctx(p, "in")) {
    tok in = p->cur;
    next(p);
    if (nested) {
      perr(p, &in, "a function declared inside '%s' is nested in it: drop 'in'", parent);
      return NULL;
    }
    tok pn;
    if (!name_tok(p, &pn, "the name of the enclosing function after 'in'"))
      return NULL;
    put(p, f, "parent", name_item(p, &pn));
  }
  (void)index;
  if (p->cur.k != T_LB) {
    expected(p, "'{' to start the function body");
    return NULL;
  }
  fctx fc = {name.s, false, true};
  put(p, f, "body", parse_block_in(p, &fc));
  if (!p->panic)
    item_end(p, st, f);
  return f;
}

/* ---- resources ---- */

static void parse_resource(Ps *p, const start *st) {
  tok kw = p->cur;
  next(p);
  tok n;
  if (!name_tok(p, &n, "the resource's name"))
    return;
  cJSON *r = chk(p, cJSON_CreateObject());
  mark_tok(p, r, &kw);
  push(p, p->ress, r);
  p->nres++;
  put(p, r, "name", name_item(p, &n));
  cJSON *props = chk(p, cJSON_CreateArray());
  cJSON *methods = chk(p, cJSON_CreateArray());
  put(p, r, "properties", props);
  put(p, r, "methods", methods);
  if (!expect(p, T_LB, "'{' after the resource's name"))
    return;
  bool explicit_list = false;
  cJSON *inline_methods = chk(p, cJSON_CreateArray());
  bool saved = p->nlsig;
  p->nlsig = true;
  while (p->cur.k != T_RB && p->cur.k != T_EOF && !p->stop) {
    if (accept(p, T_SEMI))
      continue;
    start ms = item_start(p);
    if (p->cur.k == K_FN || p->cur.k == T_AT) {
      attrs at;
      if (!parse_attrs(p, &at)) {
        free_attrs(&at);
        sync(p, false, ms.d0, ms.off);
        continue;
      }
      if (!expect(p, K_FN, "'fn' after the attributes")) {
        free_attrs(&at);
        sync(p, false, ms.d0, ms.off);
        continue;
      }
      tok mn;
      if (!name_tok(p, &mn, "the method's name")) {
        free_attrs(&at);
        sync(p, false, ms.d0, ms.off);
        continue;
      }
      push(p, inline_methods, name_item(p, &mn));
      parse_function(p, &ms, &at, n.s, NULL, false);
      free_attrs(&at);
      if (p->panic)
        sync(p, false, ms.d0, ms.off);
      continue;
    }
    if (is_ctx(p, "methods") && !explicit_list) {
      tok mt = p->cur;
      next(p);
      if (p->cur.k != T_COLON) {
        explicit_list = true;
        while (!p->panic) {
          tok m;
          if (!name_tok(p, &m, "a method name"))
            break;
          push(p, methods, name_item(p, &m));
          if (!accept(p, T_COMMA))
            break;
        }
        if (!p->panic)
          stmt_end(p);
        if (p->panic)
          sync(p, false, ms.d0, ms.off);
        continue;
      }
      /* a property named methods */
      tok pn = mt;
      next(p); /* the ':' */
      cJSON *po = chk(p, cJSON_CreateObject());
      mark_tok(p, po, &pn);
      put(p, po, "name", name_item(p, &pn));
      tok tt = p->cur;
      const char *ty = type_word(p);
      if (ty) {
        next(p);
        cJSON *tj = jstr(p, ty);
        mark_tok(p, tj, &tt);
        put(p, po, "type", tj);
      }
      if (!p->panic && stmt_end(p)) {
        push(p, props, po);
        item_end(p, &ms, po);
      } else {
        cJSON_Delete(po);
        sync(p, false, ms.d0, ms.off);
      }
      continue;
    }
    tok pn;
    if (!name_tok(p, &pn, "a property (name: type), a method (fn) or the methods list")) {
      sync(p, false, ms.d0, ms.off);
      continue;
    }
    cJSON *po = chk(p, cJSON_CreateObject());
    mark_tok(p, po, &pn);
    put(p, po, "name", name_item(p, &pn));
    const char *ty = "i64";
    tok tt = pn;
    if (accept(p, T_COLON)) {
      tt = p->cur;
      ty = type_word(p);
      if (ty)
        next(p);
    }
    if (ty) {
      cJSON *tj = jstr(p, ty);
      mark_tok(p, tj, &tt);
      put(p, po, "type", tj);
    }
    if (!p->panic && stmt_end(p)) {
      push(p, props, po);
      item_end(p, &ms, po);
    } else {
      cJSON_Delete(po);
      sync(p, false, ms.d0, ms.off);
    }
  }
  block_end(p, r, 1);
  p->nlsig = saved;
  if (explicit_list)
    put(p, r, "#explicit", chk(p, cJSON_CreateTrue()));
  if (!explicit_list) {
    cJSON *m;
    while ((m = cJSON_DetachItemFromArray(inline_methods, 0)))
      push(p, methods, m);
  }
  cJSON_Delete(inline_methods);
  if (!p->stop && !p->panic)
    expect(p, T_RB, "'}'");
  if (!p->panic)
    item_end(p, st, r);
}

/* ---- the program ---- */

static cJSON *parse_program(Ps *p) {
  cJSON *prog = chk(p, cJSON_CreateObject());
  mark_at(p, prog, 1, 1);
  put(p, prog, "version", jraw(p, "1"));
  p->funcs = chk(p, cJSON_CreateArray());
  p->ress = chk(p, cJSON_CreateArray());
  cJSON *entry = NULL;
  next(p);
  while (p->cur.k != T_EOF && !p->stop && !p->oom) {
    if (accept(p, T_SEMI))
      continue;
    start st = item_start(p);
    if (is_ctx(p, "entry")) {
      tok kw = p->cur;
      next(p);
      tok n;
      if (name_tok(p, &n, "the entry function's name")) {
        if (entry) {
          perr(p, &kw, "the entry is given twice");
        } else {
          entry = name_item(p, &n);
          item_end(p, &st, entry);
          stmt_end(p);
        }
      }
      if (p->panic)
        sync(p, true, 0, st.off);
      continue;
    }
    if (is_ctx(p, "resource")) {
      parse_resource(p, &st);
      if (p->panic)
        sync(p, true, 0, st.off);
      continue;
    }
    if (p->cur.k == K_FN || p->cur.k == T_AT) {
      attrs at;
      if (parse_attrs(p, &at) && expect(p, K_FN, "'fn' after the attributes")) {
        tok n;
        if (name_tok(p, &n, "the function's name"))
          parse_function(p, &st, &at, NULL, NULL, false);
      }
      free_attrs(&at);
      if (p->panic)
        sync(p, true, 0, st.off);
      continue;
    }
    expected(p, "'fn', 'resource' or 'entry' at the top level");
    sync(p, true, 0, st.off);
  }
  block_end(p, prog, 2);
  if (entry)
    put(p, prog, "entry", entry);
  put(p, prog, "functions", p->funcs);
  /* methods written outside their resource's block join its list (out of
  ** memory, the tree may miss nodes: nothing more is done with it) */
  for (cJSON *r = p->ress && !p->oom ? p->ress->child : NULL; r; r = r->next) {
    const char *rn = cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring;
    cJSON *ms = cJSON_GetObjectItemCaseSensitive(r, "methods");
    bool explicit_list = cJSON_GetObjectItemCaseSensitive(r, "#explicit") != NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(r, "#explicit");
    for (int k = 0; k < p->nflats; k++) {
      if (!p->flats[k].name || !p->flats[k].res || strcmp(p->flats[k].res, rn) != 0)
        continue;
      bool listed = false;
      for (cJSON *m = ms->child; m; m = m->next)
        if (strcmp(m->valuestring, p->flats[k].name->valuestring) == 0)
          listed = true;
      p->flats[k].res = NULL; /* taken, or listed explicitly */
      if (!listed && !explicit_list)
        push(p, ms, p->flats[k].name);
      else
        cJSON_Delete(p->flats[k].name);
      p->flats[k].name = NULL;
    }
  }
  for (int k = 0; k < p->nflats; k++)
    cJSON_Delete(p->flats[k].name);
  put(p, prog, "resources", p->ress);
  p->funcs = p->ress = NULL;
  return prog;
}

/* ---- paths: the positions and notes of the nodes, by JSON path ---- */

static int mark_cmp(const void *a, const void *b) {
  const mark *x = a, *y = b;
  return x->node < y->node ? -1 : x->node > y->node;
}

char *wfp__text_kpath(wfp__arena *a, const char *base, const char *key) {
  bool ident = key[0] != 0;
  for (const char *c = key; *c; c++)
    if (!(is_alpha((unsigned char)*c) || (is_digit((unsigned char)*c) && c != key)))
      ident = false;
  if (ident)
    return wfp__arena_printf(a, "%s.%s", base, key);
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, base);
  wfp__buf_addc(&b, '[');
  wfp__buf_add_jstr(&b, key, strlen(key));
  wfp__buf_addc(&b, ']');
  char *r = b.oom ? NULL : wfp__arena_strndup(a, b.data ? b.data : "", b.len);
  wfp__buf_free(&b);
  return r;
}

typedef struct W {
  Ps *p;
  wfp__tpos *pos;
  size_t npos, cap;
  int deep_line, deep_col; /* where the IR gets too deep */
  bool too_deep;
} W;

static const mark *find_mark(Ps *p, const cJSON *j) {
  mark key = {j, 0, 0};
  return bsearch(&key, p->marks, p->nmarks, sizeof *p->marks, mark_cmp);
}

static void walk(W *w, const cJSON *j, const char *path, int depth, int line, int col) {
  Ps *p = w->p;
  const mark *m = find_mark(p, j);
  if (m) {
    line = m->line;
    col = m->col;
    if (w->npos == w->cap) {
      size_t cap = w->cap ? w->cap * 2 : 256;
      wfp__tpos *v = realloc(w->pos, cap * sizeof *v);
      if (!v) {
        p->oom = true;
        return;
      }
      w->pos = v;
      w->cap = cap;
    }
    w->pos[w->npos++] = (wfp__tpos){path, line, col};
  }
  if (depth > IR_MAX_DEPTH && !w->too_deep) {
    w->too_deep = true;
    w->deep_line = line;
    w->deep_col = col;
  }
  if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
    return;
  int i = 0;
  for (const cJSON *c = j->child; c && !p->oom; c = c->next, i++) {
    const char *cp = cJSON_IsObject(j) ? wfp__text_kpath(&p->t->arena, path, c->string)
                                       : wfp__arena_printf(&p->t->arena, "%s[%d]", path, i);
    if (!cp) {
      p->oom = true;
      return;
    }
    walk(w, c, cp, depth + 1, line, col);
  }
}

static int tpos_cmp(const void *a, const void *b) {
  return strcmp(((const wfp__tpos *)a)->path, ((const wfp__tpos *)b)->path);
}
static int note_cmp(const void *a, const void *b) {
  return strcmp(((const wfp__note *)a)->path, ((const wfp__note *)b)->path);
}

/* Paths of the nodes that notes belong to (a second walk, by node). */
static void note_paths(Ps *p, const cJSON *j, const char *path, const char **paths) {
  for (size_t k = 0; k < p->nnotes; k++)
    if (p->notes[k].node == j && !paths[k])
      paths[k] = path;
  if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
    return;
  int i = 0;
  for (const cJSON *c = j->child; c; c = c->next, i++) {
    if (cJSON_IsObject(j) && c->string && strcmp(c->string, "value") == 0)
      continue; /* no notes inside JSON data */
    const char *cp = cJSON_IsObject(j) ? wfp__text_kpath(&p->t->arena, path, c->string)
                                       : wfp__arena_printf(&p->t->arena, "%s[%d]", path, i);
    if (!cp)
      return;
    note_paths(p, c, cp, paths);
  }
}

int wfp__text_parse(wfp_text *t, const char *src, size_t len) {
  Ps ps;
  memset(&ps, 0, sizeof ps);
  Ps *p = &ps;
  p->t = t;
  p->s = src;
  p->n = len;
  p->line = 1;
  p->nlsig = true;
  if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0)
    p->i = p->lstart = 3;
  if (!(p->lost = cJSON_CreateArray()))
    return WFP_ENOMEM;
  cJSON *prog = parse_program(p);
  int rc = WFP_OK;
  if (p->oom || t->oom) {
    rc = WFP_ENOMEM;
  } else if (t->ndiags || t->dropped) {
    rc = WFP_ESYNTAX;
  } else {
    if (p->nmarks)
      qsort(p->marks, p->nmarks, sizeof *p->marks, mark_cmp);
    W w;
    memset(&w, 0, sizeof w);
    w.p = p;
    walk(&w, prog, "$", 1, 1, 1);
    if (w.too_deep) {
      diag_at(p, w.deep_line, w.deep_col,
              "nesting too deep: the IR of this program would be more than %d levels deep",
              IR_MAX_DEPTH);
      rc = WFP_ESYNTAX;
    }
    if (w.npos) /* none when out of memory (p->oom) */
      qsort(w.pos, w.npos, sizeof *w.pos, tpos_cmp);
    t->pos = w.pos;
    t->npos = w.npos;
    /* notes */
    const char **paths = calloc(p->nnotes + 1, sizeof *paths);
    wfp__note *nv = calloc(p->nnotes + 1, sizeof *nv);
    if (!paths || !nv) {
      p->oom = true;
    } else {
      note_paths(p, prog, "$", paths);
      size_t nn = 0;
      for (size_t k = 0; k < p->nnotes; k++) {
        const pnote *pn = &p->notes[k];
        if (!paths[k] && pn->kind != 2)
          continue;
        const char *path = pn->kind == 0 ? paths[k]
                           : pn->kind == 1 ? wfp__arena_printf(&t->arena, "%s#end", paths[k])
                                           : "#eof";
        nv[nn] = (wfp__note){path, pn->lead, pn->nlead, pn->trail, pn->blank, pn->gap};
        nn++;
      }
      qsort(nv, nn, sizeof *nv, note_cmp);
      t->notes.v = nv;
      t->notes.n = nn;
      nv = NULL;
    }
    free(paths);
    free(nv);
    if (p->oom)
      rc = WFP_ENOMEM;
  }
  if (rc == WFP_OK) {
    t->doc = prog;
    prog = NULL;
  }
  cJSON_Delete(prog);
  cJSON_Delete(p->lost);
  free(p->cm);
  free(p->marks);
  free(p->notes);
  free(p->flats);
  return rc;
}

/* ---- JSON text -> tree with raw numbers (for the printer) ---- */

cJSON *wfp__text_json_value(const char *s, size_t n) {
  wfp_text *t = wfp_text_new(1);
  if (!t)
    return NULL;
  Ps ps;
  memset(&ps, 0, sizeof ps);
  ps.t = t;
  ps.s = s;
  ps.n = n;
  ps.line = 1;
  if (!(ps.lost = cJSON_CreateArray())) {
    wfp_text_free(t);
    return NULL;
  }
  next(&ps);
  cJSON *v = parse_json_value(&ps);
  if (v && (ps.cur.k != T_EOF || t->ndiags || ps.oom)) {
    cJSON_Delete(v);
    v = NULL;
  }
  /* the strings of v are cJSON's own copies: the arena can go */
  cJSON_Delete(ps.lost);
  free(ps.cm);
  free(ps.marks);
  free(ps.notes);
  wfp_text_free(t);
  return v;
}
