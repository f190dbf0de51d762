/*
** text.c: the public face of the text library (wfp/text.h): the parser
** handle, its diagnostics, JSON paths to text positions, the formatter, and
** a loaded program written back as text. Parsing and printing are elsewhere.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"
#include "text_int.h"

#define DEFAULT_MAX_DIAGS 20

wfp_text *wfp_text_new(unsigned max_diags) {
  wfp_text *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  wfp__arena_init(&t->arena);
  t->max_diags = max_diags ? max_diags : DEFAULT_MAX_DIAGS;
  t->status = WFP_EINVAL;
  t->file = "<memory>";
  return t;
}

void wfp_text_free(wfp_text *t) {
  if (!t)
    return;
  cJSON_Delete(t->doc);
  free(t->ir);
  free(t->diags);
  free(t->pos);
  free(t->notes.v);
  wfp__arena_free(&t->arena);
  free(t);
}

void wfp__text_diag(wfp_text *t, int line, int col, const char *fmt, ...) {
  if (t->ndiags >= t->max_diags) {
    t->dropped++;
    return;
  }
  if (t->ndiags == t->diags_cap) {
    size_t cap = t->diags_cap ? t->diags_cap * 2 : 8;
    wfp_diag *d = realloc(t->diags, cap * sizeof *d);
    if (!d) {
      t->oom = true;
      return;
    }
    t->diags = d;
    t->diags_cap = cap;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wfp_diag *d = &t->diags[t->ndiags++];
  d->code = WFP_ESYNTAX;
  d->file = t->file;
  d->path = "";
  d->line = line;
  d->col = col;
  d->msg = wfp__arena_strdup(&t->arena, msg);
  if (!d->msg) {
    t->oom = true;
    d->msg = "out of memory";
  }
}

int wfp_text_parse(wfp_text *t, const char *name, const char *text, size_t len) {
  if (!t || t->used || (!text && len))
    return WFP_EINVAL;
  t->used = true;
  if (name) {
    t->file = wfp__arena_strdup(&t->arena, name);
    if (!t->file) {
      t->file = "<memory>";
      return t->status = WFP_ENOMEM;
    }
  }
  int rc = wfp__text_parse(t, text ? text : "", len);
  if (rc == WFP_OK) {
    wfp__buf b;
    wfp__buf_init(&b);
    wfp__json_write(&b, t->doc, false, -1, 0);
    if (b.oom) {
      wfp__buf_free(&b);
      rc = WFP_ENOMEM;
    } else {
      t->ir = wfp__buf_take(&b, &t->irlen);
    }
  }
  if (rc == WFP_ENOMEM) {
    /* faults found after memory ran out may be its effects: only it is said */
    t->ndiags = 0;
    t->dropped = 0;
    wfp__text_diag(t, 0, 0, "out of memory");
    if (t->ndiags)
      t->diags[0].code = WFP_ENOMEM;
  }
  return t->status = rc;
}

int wfp_text_parse_file(wfp_text *t, const char *path) {
  if (!t || !path || t->used)
    return WFP_EINVAL;
  char *data = NULL;
  size_t len = 0;
  int rrc = wfp__read_file(path, &data, &len);
  if (rrc) {
    t->used = true;
    t->file = wfp__arena_strdup(&t->arena, path);
    if (!t->file)
      t->file = "<file>";
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s", rrc == WFP_ENOMEM ? "" : "cannot read the program: ",
             rrc == WFP_ENOMEM ? "out of memory" : strerror(errno));
    wfp__text_diag(t, 0, 0, "%s", msg);
    if (t->ndiags)
      t->diags[t->ndiags - 1].code = rrc;
    return t->status = rrc;
  }
  int rc = wfp_text_parse(t, path, data, len);
  free(data);
  return rc;
}

size_t wfp_text_diag_count(const wfp_text *t) { return t ? t->ndiags : 0; }

const wfp_diag *wfp_text_diag(const wfp_text *t, size_t i) {
  return t && i < t->ndiags ? &t->diags[i] : NULL;
}

size_t wfp_text_diag_dropped(const wfp_text *t) { return t ? t->dropped : 0; }

const char *wfp_text_ir(const wfp_text *t, size_t *len) {
  if (!t || t->status != WFP_OK)
    return NULL;
  if (len)
    *len = t->irlen;
  return t->ir;
}

static const wfp__tpos *find_pos(const wfp_text *t, const char *path, size_t n) {
  size_t lo = 0, hi = t->npos;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const char *s = t->pos[mid].path;
    int c = strncmp(s, path, n);
    if (c == 0 && s[n])
      c = 1;
    if (c == 0)
      return &t->pos[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int wfp_text_locate(const wfp_text *t, const char *path, int *line, int *col) {
  if (!t || t->status != WFP_OK || !path)
    return 0;
  /* the ends of the path's steps: .name, [N], ["key"] */
  size_t ends[256];
  int ne = 0;
  size_t i = path[0] == '$' ? 1 : 0;
  ends[ne++] = i;
  while (path[i] && ne < 256) {
    if (path[i] == '.') {
      i++;
      while (path[i] && path[i] != '.' && path[i] != '[')
        i++;
    } else if (path[i] == '[' && path[i + 1] == '"') {
      i += 2;
      while (path[i] && path[i] != '"') {
        if (path[i] == '\\' && path[i + 1])
          i++;
        i++;
      }
      if (path[i])
        i++;
      if (path[i] == ']')
        i++;
    } else if (path[i] == '[') {
      while (path[i] && path[i] != ']')
        i++;
      if (path[i])
        i++;
    } else {
      break;
    }
    ends[ne++] = i;
  }
  for (int k = ne - 1; k >= 0; k--) {
    const wfp__tpos *p = find_pos(t, path, ends[k]);
    if (p) {
      *line = p->line;
      *col = p->col;
      return 1;
    }
  }
  *line = 1;
  *col = 1;
  return 1;
}

/* The message with the JSON paths it names ("first at $.functions[0]")
** written as text positions ("first at line 1"). */
static const char *map_message(wfp_text *t, const char *msg) {
  if (!strstr(msg, "$.") && !strstr(msg, "$["))
    return msg;
  wfp__buf b;
  wfp__buf_init(&b);
  for (const char *c = msg; *c;) {
    if (c[0] == '$' && (c[1] == '.' || c[1] == '[')) {
      const char *e = c + 1;
      int br = 0;
      bool q = false;
      for (; *e; e++) {
        if (q) {
          if (*e == '\\' && e[1])
            e++;
          else if (*e == '"')
            q = false;
        } else if (*e == '"') {
          q = true;
        } else if (*e == '[') {
          br++;
        } else if (*e == ']') {
          br--;
        } else if (br == 0 && !(*e == '.' || *e == '_' || *e == '$' ||
                                (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
                                (*e >= '0' && *e <= '9'))) {
          break;
        }
      }
      char *path = wfp__arena_strndup(&t->arena, c, (size_t)(e - c));
      int line, col;
      if (path && wfp_text_locate(t, path, &line, &col)) {
        wfp__buf_printf(&b, "line %d", line);
        c = e;
        continue;
      }
    }
    wfp__buf_addc(&b, *c++);
  }
  const char *r = b.oom ? msg : wfp__arena_strndup(&t->arena, b.data ? b.data : "", b.len);
  wfp__buf_free(&b);
  return r ? r : msg;
}

void wfp_text_map_diag(const wfp_text *t, const wfp_diag *in, wfp_diag *out) {
  *out = *in;
  int line, col;
  if (in->path && in->path[0] && in->line <= 0 && wfp_text_locate(t, in->path, &line, &col)) {
    out->line = line;
    out->col = col;
    out->file = t->file;
    /* the arena is the handle's own cache: mapping does not change the parse */
    out->msg = map_message((wfp_text *)t, in->msg ? in->msg : "");
  }
}

int wfp_text_format(const wfp_text *t, char **out, size_t *len) {
  if (!t || !out || t->status != WFP_OK)
    return WFP_EINVAL;
  wfp__buf b;
  wfp__buf_init(&b);
  if (!wfp__text_print(t->doc, &t->notes, &b)) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&b, len);
  return WFP_OK;
}

/* ---- a loaded program, as written ---- */

static bool put(cJSON *o, const char *k, cJSON *v) {
  if (!v)
    return false;
  if (!cJSON_AddItemToObject(o, k, v)) {
    cJSON_Delete(v);
    return false;
  }
  return true;
}

static cJSON *type_json(wfp_tkind k) {
  return cJSON_CreateString(k == WFP_T_STR ? "str" : k == WFP_T_JSON ? "json" : "i64");
}

/* The program as written (not lifted), from its checked AST: every
** function in the file's order, with the fields that make its IDs. */
static cJSON *source_json(const wfp_program *cp) {
  wfp_program *p = (wfp_program *)cp;
  cJSON *prog = cJSON_CreateObject();
  if (!prog)
    return NULL;
  bool ok = put(prog, "version", cJSON_CreateRaw("1"));
  if (p->entry_name && strcmp(p->entry_name, "main") != 0)
    ok = ok && put(prog, "entry", cJSON_CreateString(p->entry_name));
  cJSON *fa = cJSON_CreateArray();
  ok = put(prog, "functions", fa) && ok; /* takes fa, whatever ok */
  for (int i = 0; ok && i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    if (f->is_lambda)
      continue;
    cJSON *j = wfp__func_to_json(p, f, false);
    if (!j) {
      ok = false;
      break;
    }
    cJSON_AddItemToArray(fa, j);
    if (f->id_given)
      ok = ok && put(j, "id", cJSON_CreateString(f->id));
    if (f->meta_nested_in)
      ok = ok && put(j, "nested_in", cJSON_CreateString(f->meta_nested_in));
    if (f->meta_ncaptures) {
      cJSON *c = cJSON_CreateArray();
      ok = put(j, "captures", c) && ok; /* takes c, whatever ok */
      for (int k = 0; ok && k < f->meta_ncaptures && k < f->nparams; k++)
        ok = cJSON_AddItemToArray(c, cJSON_CreateString(f->params[k]->name));
    }
  }
  cJSON *ra = cJSON_CreateArray();
  ok = put(prog, "resources", ra) && ok; /* takes ra, whatever ok */
  for (int i = 0; ok && i < p->nresources; i++) {
    const wfp_resource *r = p->resources[i];
    cJSON *ro = cJSON_CreateObject();
    ok = ro && cJSON_AddItemToArray(ra, ro) && put(ro, "name", cJSON_CreateString(r->name));
    cJSON *pa = cJSON_CreateArray();
    ok = put(ro, "properties", pa) && ok; /* takes pa, whatever ok */
    for (int k = 0; ok && k < r->nprops; k++) {
      cJSON *po = cJSON_CreateObject();
      ok = po && cJSON_AddItemToArray(pa, po) &&
           put(po, "name", cJSON_CreateString(r->prop_names[k])) &&
           put(po, "type", type_json(r->prop_types[k]));
    }
    cJSON *ma = cJSON_CreateArray();
    ok = put(ro, "methods", ma) && ok; /* takes ma, whatever ok */
    for (int k = 0; ok && k < r->nmethods; k++)
      ok = cJSON_AddItemToArray(ma, cJSON_CreateString(r->methods[k]));
  }
  if (!ok) {
    cJSON_Delete(prog);
    return NULL;
  }
  return prog;
}

int wfp_program_to_text(const wfp_program *p, char **out, size_t *len) {
  if (!p || !out || p->status != WFP_OK)
    return WFP_EINVAL;
  cJSON *src = source_json(p);
  if (!src)
    return WFP_ENOMEM;
  wfp__buf b;
  wfp__buf_init(&b);
  bool ok = wfp__text_print(src, NULL, &b);
  cJSON_Delete(src);
  if (!ok) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&b, len);
  return WFP_OK;
}

int wfp_text_format_file(wfp_text *t, const char *path, int *changed) {
  if (changed)
    *changed = 0;
  if (!t || !path)
    return WFP_EINVAL;
  char *data = NULL;
  size_t len = 0;
  int rrc = wfp__read_file(path, &data, &len);
  if (rrc == WFP_ENOMEM)
    return rrc;
  if (rrc)
    return wfp_text_parse_file(t, path); /* reports the failure */
  int rc = wfp_text_parse(t, path, data, len);
  char *fmt = NULL;
  size_t flen = 0;
  if (rc == WFP_OK)
    rc = wfp_text_format(t, &fmt, &flen);
  if (rc == WFP_OK && (flen != len || memcmp(fmt, data, len) != 0)) {
    rc = wfp__write_file_atomic(path, fmt, flen, 0644);
    if (!rc && changed)
      *changed = 1;
  }
  free(fmt);
  free(data);
  return rc;
}

static int write_out(const char *path, char *text, size_t len, int rc) {
  if (rc == WFP_OK)
    rc = wfp__write_file_atomic(path, text, len, 0644); /* WFP_EIO or WFP_ENOMEM */
  free(text);
  return rc;
}

int wfp_program_write_text(const wfp_program *p, const char *path) {
  char *text = NULL;
  size_t len = 0;
  if (!path)
    return WFP_EINVAL;
  int rc = wfp_program_to_text(p, &text, &len);
  return write_out(path, text, len, rc);
}

int wfp_program_write_js(const wfp_program *p, const char *source, const char *path) {
  char *text = NULL;
  size_t len = 0;
  if (!path)
    return WFP_EINVAL;
  int rc = wfp_program_to_js(p, source, &text, &len);
  return write_out(path, text, len, rc);
}
