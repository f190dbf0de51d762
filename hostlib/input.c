/*
** input.c: building an invocation's input ({"fn", "args", "self"}) from
** what a user gives: whole JSON, a function name, arguments as text typed
** by their parameters, a resource instance to create. Checked against the
** module, with one diagnostic per refusal. It runs nothing (invoke.c does).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

typedef struct text_kv {
  char *name, *text;
  size_t nlen, tlen;
} text_kv;

struct wfp_input {
  const wfp_module *m;
  char *json; /* wfp_input_set_json's, or NULL */
  size_t json_len;
  char *fn; /* wfp_input_set_fn's, or NULL */
  char *args; /* wfp_input_set_args's, or NULL */
  size_t args_len;
  text_kv *targs; /* wfp_input_add_arg's, in order */
  size_t ntargs;
  char *res; /* wfp_input_set_new's resource, or NULL */
  text_kv *props;
  size_t nprops;
  bool has_self;
  uint64_t self;
  /* the last refusal */
  wfp_diag diag;
  bool failed;
  wfp__buf msg, path;
};

wfp_input *wfp_input_new(const wfp_module *m) {
  if (!m)
    return NULL;
  wfp_input *in = calloc(1, sizeof *in);
  if (in)
    in->m = m;
  return in;
}

static void free_kvs(text_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].name);
    free(kv[i].text);
  }
  free(kv);
}

void wfp_input_free(wfp_input *in) {
  if (!in)
    return;
  free(in->json);
  free(in->fn);
  free(in->args);
  free_kvs(in->targs, in->ntargs);
  free(in->res);
  free_kvs(in->props, in->nprops);
  wfp__buf_free(&in->msg);
  wfp__buf_free(&in->path);
  free(in);
}

const wfp_diag *wfp_input_diag(const wfp_input *in) {
  return in && in->failed ? &in->diag : NULL;
}

/* ---- diagnostics ---- */

static void begin(wfp_input *in) {
  in->failed = false;
  in->msg.len = 0;
  in->msg.oom = false;
  in->path.len = 0;
  in->path.oom = false;
}

/* Appends user text to a message: at most 64 bytes of it, control
** characters and bytes that are not UTF-8 as '?', so that the message
** stays one line of valid text. */
static void quote(wfp__buf *b, const char *s, size_t n) {
  size_t i = 0;
  while (i < n && i < 64) {
    unsigned char c = (unsigned char)s[i];
    size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (c < 0x20 || c == 0x7f || k > n - i || !wfp__utf8_valid(s + i, k)) {
      wfp__buf_addc(b, '?');
      i++;
      continue;
    }
    wfp__buf_add(b, s + i, k);
    i += k;
  }
  if (i < n)
    wfp__buf_adds(b, "...");
}

/* The refusal, in pieces: fmt's %s take NUL-terminated strings, %q a
** (const char *, size_t) pair of user text, quoted as above. */
static int refuse(wfp_input *in, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  in->msg.len = 0;
  for (const char *p = fmt; *p; p++) {
    if (p[0] == '%' && p[1] == 's') {
      wfp__buf_adds(&in->msg, va_arg(ap, const char *));
      p++;
    } else if (p[0] == '%' && p[1] == 'q') {
      const char *s = va_arg(ap, const char *);
      size_t n = va_arg(ap, size_t);
      quote(&in->msg, s, n);
      p++;
    } else {
      wfp__buf_addc(&in->msg, *p);
    }
  }
  va_end(ap);
  wfp__buf_addc(&in->path, 0);
  wfp__buf_addc(&in->msg, 0);
  if (in->msg.oom || in->path.oom)
    code = WFP_ENOMEM;
  in->failed = true;
  in->diag.code = code;
  in->diag.file = "input";
  in->diag.path = in->path.oom ? "" : in->path.data;
  in->diag.line = in->diag.col = 0;
  in->diag.msg = in->msg.oom ? "out of memory" : in->msg.data;
  return code;
}

static int oom(wfp_input *in) { return refuse(in, WFP_ENOMEM, "out of memory"); }

/* the JSON path of a member of args or of the input */
static void path_to(wfp_input *in, const char *top, const char *name, size_t n) {
  in->path.len = 0;
  wfp__buf_adds(&in->path, "$");
  if (top) {
    wfp__buf_addc(&in->path, '.');
    wfp__buf_adds(&in->path, top);
  }
  if (name) {
    wfp__buf_addc(&in->path, '.');
    quote(&in->path, name, n);
  }
}

/* Refuses text that is not strict JSON, naming where it is not. The value
** goes inside around levels of arrays and objects (the input around an
** argument, the answer to self_get around a property): with them, it may
** nest WFP_JSON_MAX_DEPTH levels, as the guest reads it. */
static int check_json(wfp_input *in, const char *what, const char *s, size_t n,
                      unsigned around, const char *around_what) {
  size_t at = 0;
  const char *why = "";
  if (wfp__json_check(s, n, WFP_JSON_MAX_DEPTH - around, &at, &why) == WFP_OK)
    return WFP_OK;
  char pos[160];
  if (why == wfp__json_too_deep) {
    snprintf(pos, sizeof pos, "%s%s%smore than %d levels (WFP_JSON_MAX_DEPTH), at byte %zu",
             around ? "with " : "", around ? around_what : "", around ? ", " : "",
             WFP_JSON_MAX_DEPTH, at);
    return refuse(in, WFP_EUSAGE, "%s: '%q' nests too deep: %s", what, s, n, pos);
  }
  snprintf(pos, sizeof pos, ", at byte %zu", at);
  return refuse(in, WFP_EUSAGE, "%s: '%q' is not JSON (%s%s)", what, s, n, why, pos);
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    if (n)
      memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

/* ---- setters: the form of what they get ---- */

int wfp_input_set_json(wfp_input *in, const char *json, size_t len) {
  if (!in || (!json && len))
    return WFP_EINVAL;
  begin(in);
  int rc = check_json(in, "the input", json ? json : "", len, 0, "");
  if (rc)
    return rc;
  size_t i = wfp__json_ws(json, 0, len);
  if (json[i] != '{')
    return refuse(in, WFP_EUSAGE, "the input must be a JSON object, not '%q'", json, len);
  char *c = dupn(json, len);
  if (!c)
    return oom(in);
  free(in->json);
  in->json = c;
  in->json_len = len;
  return WFP_OK;
}

int wfp_input_set_fn(wfp_input *in, const char *fn) {
  if (!in || !fn)
    return WFP_EINVAL;
  begin(in);
  path_to(in, "fn", NULL, 0);
  if (!wfp__utf8_valid(fn, strlen(fn)))
    return refuse(in, WFP_EUSAGE, "the function name '%q' is not valid UTF-8", fn, strlen(fn));
  char *c = strdup(fn);
  if (!c)
    return oom(in);
  free(in->fn);
  in->fn = c;
  return WFP_OK;
}

int wfp_input_set_args(wfp_input *in, const char *json, size_t len) {
  if (!in || (!json && len))
    return WFP_EINVAL;
  begin(in);
  path_to(in, "args", NULL, 0);
  int rc = check_json(in, "the arguments", json ? json : "", len, 1, "the input around them");
  if (rc)
    return rc;
  size_t i = wfp__json_ws(json, 0, len);
  if (json[i] != '{' && json[i] != '[' && json[i] != 'n')
    return refuse(in, WFP_EUSAGE, "the arguments must be a JSON object or array, not '%q'",
                  json, len);
  char *c = dupn(json, len);
  if (!c)
    return oom(in);
  free(in->args);
  in->args = c;
  in->args_len = len;
  return WFP_OK;
}

static int add_kv(wfp_input *in, text_kv **kv, size_t *n, const char *name, size_t nlen,
                  const char *text, size_t tlen) {
  text_kv *g = realloc(*kv, (*n + 1) * sizeof *g);
  if (!g)
    return oom(in);
  *kv = g;
  text_kv *e = &g[*n];
  e->name = dupn(name, nlen);
  e->text = dupn(text, tlen);
  e->nlen = nlen;
  e->tlen = tlen;
  if (!e->name || !e->text) {
    free(e->name);
    free(e->text);
    return oom(in);
  }
  (*n)++;
  return WFP_OK;
}

int wfp_input_add_arg(wfp_input *in, const char *name, size_t name_len, const char *text,
                      size_t text_len) {
  if (!in || !name || (!text && text_len))
    return WFP_EINVAL;
  begin(in);
  return add_kv(in, &in->targs, &in->ntargs, name, name_len, text ? text : "", text_len);
}

int wfp_input_set_new(wfp_input *in, const char *spec, size_t len) {
  if (!in || (!spec && len))
    return WFP_EINVAL;
  begin(in);
  path_to(in, "self", NULL, 0);
  spec = spec ? spec : "";
  const char *colon = memchr(spec, ':', len);
  size_t rn = colon ? (size_t)(colon - spec) : len;
  if (rn == 0)
    return refuse(in, WFP_EUSAGE, "an instance is RESOURCE[:PROP=VALUE,...], not '%q'", spec,
                  len);
  text_kv *props = NULL;
  size_t nprops = 0;
  char *res = dupn(spec, rn);
  if (!res)
    return oom(in);
  /* the properties: PROP=VALUE items separated by ',' */
  const char *p = colon ? colon + 1 : NULL, *end = spec + len;
  while (p && p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    if (!eq || eq == p) {
      free(res);
      free_kvs(props, nprops);
      return refuse(in, WFP_EUSAGE, "an instance is RESOURCE[:PROP=VALUE,...], not '%q'",
                    spec, len);
    }
    if (add_kv(in, &props, &nprops, p, (size_t)(eq - p), eq + 1, (size_t)(stop - eq - 1))) {
      free(res);
      free_kvs(props, nprops);
      return WFP_ENOMEM;
    }
    p = comma ? comma + 1 : NULL;
  }
  free(in->res);
  free_kvs(in->props, in->nprops);
  in->res = res;
  in->props = props;
  in->nprops = nprops;
  return WFP_OK;
}

int wfp_input_set_self(wfp_input *in, uint64_t handle) {
  if (!in || handle == 0 || handle > 9007199254740992ull)
    return WFP_EINVAL;
  begin(in);
  in->has_self = true;
  in->self = handle;
  return WFP_OK;
}

/* ---- finishing: the module's view ---- */

/* text converted to type ty as JSON, appended to out; what names the
** value ("argument 'n'") in a refusal */
static int convert(wfp_input *in, uint8_t ty, const char *what, const char *text, size_t n,
                   unsigned around, const char *around_what, wfp__buf *out) {
  if (ty == WFP_TY_I64) {
    int64_t v;
    if (!wfp__parse_i64(text, n, &v))
      return refuse(in, WFP_EUSAGE, "%s: '%q' is not an i64 (a decimal integer)", what, text,
                    n);
    wfp__buf_add(out, text, n);
  } else if (ty == WFP_TY_STR) {
    if (!wfp__utf8_valid(text, n))
      return refuse(in, WFP_EUSAGE, "%s: '%q' is not valid UTF-8 text", what, text, n);
    wfp__buf_add_jstr(out, text, n);
  } else if (ty == WFP_TY_JSON || ty == WFP_TY_FN) {
    int rc = check_json(in, what, text, n, around, around_what);
    if (rc)
      return rc;
    size_t s = wfp__json_ws(text, 0, n), e = n;
    while (e > s && strchr(" \t\r\n", text[e - 1]))
      e--;
    if (ty == WFP_TY_FN) {
      /* a function value as an invocation outputs it */
      bool fn_ok = false, args_ok = false;
      wfp__json_mem m;
      size_t i = text[s] == '{' ? s : n;
      while (i < n && (i = wfp__json_member(text, i, n, &m)) != 0) {
        if (wfp__json_key_is(text, &m, "fn", 2))
          fn_ok = text[m.val] == '"';
        else if (wfp__json_key_is(text, &m, "args", 4))
          args_ok = text[m.val] == '[';
      }
      if (!fn_ok || !args_ok)
        return refuse(in, WFP_EUSAGE,
                      "%s: '%q' is not a function value ({\"fn\": \"<id>\", \"args\": "
                      "[captured values]})",
                      what, text, n);
    }
    wfp__buf_add(out, text + s, e - s);
  } else {
    return refuse(in, WFP_EUSAGE, "%s: a value of this type cannot be given", what);
  }
  return out->oom ? oom(in) : WFP_OK;
}

/* "argument 'name'" or "property 'name'", for messages */
static const char *naming(wfp__buf *b, const char *kind, const char *name, size_t n) {
  b->len = 0;
  wfp__buf_adds(b, kind);
  wfp__buf_adds(b, " '");
  quote(b, name, n);
  wfp__buf_addc(b, '\'');
  return b->oom ? kind : b->data;
}

/* The member of the checked object s named key, or NULL. */
static bool member(const char *s, size_t n, const char *key, wfp__json_mem *out) {
  size_t i = wfp__json_ws(s, 0, n);
  if (i >= n || s[i] != '{')
    return false;
  bool found = false;
  wfp__json_mem m;
  while ((i = wfp__json_member(s, i, n, &m)) != 0)
    if (wfp__json_key_is(s, &m, key, strlen(key))) {
      *out = m; /* the last one, as a JSON reader that keeps one would */
      found = true;
    }
  return found;
}

typedef struct built {
  wfp__buf args; /* the new "args" text, when it changes */
  bool args_changed;
  wfp__buf props; /* scratch */
  wfp__buf name;  /* scratch */
  char **prop_json; /* converted property values, per in->props */
} built;

/* The function the input runs: its index, or a refusal. */
static int resolve_fn(wfp_input *in, const char *base, size_t blen, int *fi) {
  const char *fname = in->fn;
  wfp__buf dec;
  wfp__buf_init(&dec);
  wfp__json_mem m;
  if (!fname && member(base, blen, "fn", &m) && base[m.val] != 'n') {
    path_to(in, "fn", NULL, 0);
    if (base[m.val] != '"')
      return refuse(in, WFP_EUSAGE, "the input's \"fn\" must be a function name or id, not "
                                    "'%q'", base + m.val, m.val_end - m.val);
    wfp__json_string(base, m.val, blen, &dec);
    wfp__buf_addc(&dec, 0);
    if (dec.oom) {
      wfp__buf_free(&dec);
      return oom(in);
    }
    fname = dec.data;
  }
  if (!fname)
    fname = wfp_module_entry(in->m);
  int rc = WFP_OK;
  path_to(in, "fn", NULL, 0);
  if (!fname)
    rc = refuse(in, WFP_EUSAGE, "no function to run: the input names none and the module has "
                                "no entry function");
  else if ((*fi = wfp_module_find(in->m, fname)) < 0)
    rc = refuse(in, WFP_EUSAGE, "no function '%q' in this module", fname, strlen(fname));
  wfp__buf_free(&dec);
  return rc;
}

/* The arguments: --arg values converted and merged into the args given. */
static int build_args(wfp_input *in, const char *base, size_t blen, const wfp_abi_func *f,
                      built *b) {
  const char *src = in->args;
  size_t sn = in->args_len;
  wfp__json_mem m;
  if (!src && member(base, blen, "args", &m)) {
    src = base + m.val;
    sn = m.val_end - m.val;
  }
  if (!in->ntargs)
    return WFP_OK;
  size_t i = src ? wfp__json_ws(src, 0, sn) : 0;
  if (src && src[i] != '{' && src[i] != 'n') {
    path_to(in, "args", NULL, 0);
    return refuse(in, WFP_EUSAGE, "an argument by name cannot be added to an \"args\" array");
  }
  b->args_changed = true;
  wfp__buf_addc(&b->args, '{');
  bool first = true;
  /* the given members that no added argument replaces */
  if (src && src[i] == '{') {
    while ((i = wfp__json_member(src, i, sn, &m)) != 0) {
      bool replaced = false;
      for (size_t t = 0; t < in->ntargs && !replaced; t++)
        replaced = wfp__json_key_is(src, &m, in->targs[t].name, in->targs[t].nlen);
      if (replaced)
        continue;
      if (!first)
        wfp__buf_addc(&b->args, ',');
      first = false;
      wfp__buf_add(&b->args, src + m.key, m.key_end - m.key);
      wfp__buf_addc(&b->args, ':');
      wfp__buf_add(&b->args, src + m.val, m.val_end - m.val);
    }
  }
  for (size_t t = 0; t < in->ntargs; t++) {
    const text_kv *a = &in->targs[t];
    bool later = false; /* the last of one name wins */
    for (size_t u = t + 1; u < in->ntargs && !later; u++)
      later = in->targs[u].nlen == a->nlen && memcmp(in->targs[u].name, a->name, a->nlen) == 0;
    int k = -1;
    for (uint32_t p = 0; p < f->nparams && k < 0; p++)
      if (strlen(f->param_names[p]) == a->nlen && memcmp(f->param_names[p], a->name, a->nlen) == 0)
        k = (int)p;
    path_to(in, "args", a->name, a->nlen);
    if (k < 0)
      return refuse(in, WFP_EUSAGE, "function '%s' has no parameter '%q'", f->name, a->name,
                    a->nlen);
    if (later)
      continue;
    if (!first)
      wfp__buf_addc(&b->args, ',');
    first = false;
    wfp__buf_add_jstr(&b->args, a->name, a->nlen);
    wfp__buf_addc(&b->args, ':');
    int rc = convert(in, f->param_types[k], naming(&b->name, "argument", a->name, a->nlen),
                     a->text, a->tlen, 2, "the input around it", &b->args);
    if (rc)
      return rc;
  }
  wfp__buf_addc(&b->args, '}');
  return b->args.oom ? oom(in) : WFP_OK;
}

/* The instance to create: its resource and converted properties. */
static int build_instance(wfp_input *in, const wfp_abi_resource **rout, built *b) {
  const wfp_module_desc *d = wfp_module_descriptor_of(in->m);
  const wfp_abi_resource *r = NULL;
  for (uint32_t i = 0; i < d->nresources && !r; i++)
    if (strcmp(d->resources[i].name, in->res) == 0)
      r = &d->resources[i];
  path_to(in, "self", NULL, 0);
  if (!r)
    return refuse(in, WFP_EUSAGE, "this module has no resource '%q'", in->res, strlen(in->res));
  *rout = r;
  b->prop_json = calloc(in->nprops + 1, sizeof *b->prop_json);
  if (!b->prop_json)
    return oom(in);
  for (size_t i = 0; i < in->nprops; i++) {
    const text_kv *p = &in->props[i];
    int k = -1;
    for (uint32_t q = 0; q < r->nprops && k < 0; q++)
      if (strlen(r->prop_names[q]) == p->nlen && memcmp(r->prop_names[q], p->name, p->nlen) == 0)
        k = (int)q;
    if (k < 0)
      return refuse(in, WFP_EUSAGE, "resource '%s' has no property '%q'", r->name, p->name,
                    p->nlen);
    b->props.len = 0;
    b->props.oom = false;
    int rc = convert(in, r->prop_types[k], naming(&b->name, "property", p->name, p->nlen),
                     p->text, p->tlen, 1, "the answer to self_get around it", &b->props);
    if (rc)
      return rc;
    if (!(b->prop_json[i] = dupn(b->props.data, b->props.len)))
      return oom(in);
  }
  return WFP_OK;
}

/* Appends the output: the given members that stay, then the new ones. */
static void assemble(wfp_input *in, const char *base, size_t blen, const built *b,
                     uint64_t self, wfp__buf *out) {
  wfp__buf_addc(out, '{');
  bool first = true;
  size_t i = wfp__json_ws(base, 0, blen);
  wfp__json_mem m;
  while ((i = wfp__json_member(base, i, blen, &m)) != 0) {
    if ((in->fn && wfp__json_key_is(base, &m, "fn", 2)) ||
        ((in->args || b->args_changed) && wfp__json_key_is(base, &m, "args", 4)) ||
        (self && wfp__json_key_is(base, &m, "self", 4)))
      continue;
    if (!first)
      wfp__buf_addc(out, ',');
    first = false;
    wfp__buf_add(out, base + m.key, m.key_end - m.key);
    wfp__buf_addc(out, ':');
    wfp__buf_add(out, base + m.val, m.val_end - m.val);
  }
  if (in->fn) {
    wfp__buf_adds(out, first ? "\"fn\":" : ",\"fn\":");
    wfp__buf_add_jstr(out, in->fn, strlen(in->fn));
    first = false;
  }
  if (in->args || b->args_changed) {
    wfp__buf_adds(out, first ? "\"args\":" : ",\"args\":");
    if (b->args_changed)
      wfp__buf_add(out, b->args.data, b->args.len);
    else {
      size_t s = wfp__json_ws(in->args, 0, in->args_len), e = in->args_len;
      while (e > s && strchr(" \t\r\n", in->args[e - 1]))
        e--;
      wfp__buf_add(out, in->args + s, e - s);
    }
    first = false;
  }
  if (self)
    wfp__buf_printf(out, first ? "\"self\":%llu" : ",\"self\":%llu", (unsigned long long)self);
  wfp__buf_addc(out, '}');
}

static int finish(wfp_input *in, wfp_env *e, built *b, wfp__buf *out) {
  const char *base = in->json ? in->json : "{}";
  size_t blen = in->json ? in->json_len : 2;
  /* a whole input alone is the program's to read: it goes as given */
  if (in->json && !in->fn && !in->args && !in->ntargs && !in->res && !in->has_self) {
    wfp__buf_add(out, in->json, in->json_len);
    return out->oom ? oom(in) : WFP_OK;
  }
  int fi = -1;
  int rc = resolve_fn(in, base, blen, &fi);
  if (rc)
    return rc;
  const wfp_abi_func *f = &wfp_module_descriptor_of(in->m)->funcs[fi];
  if ((rc = build_args(in, base, blen, f, b)) != 0)
    return rc;
  /* the instance it runs on: one to create, a handle given, or the
  ** input's "self" */
  const wfp_abi_resource *r = NULL;
  if (in->res && (rc = build_instance(in, &r, b)) != 0)
    return rc;
  const char *on = r ? r->name : in->has_self ? wfp_env_instance_resource(e, in->self) : NULL;
  wfp__json_mem m;
  bool self_given = in->res || in->has_self ||
                    (member(base, blen, "self", &m) && base[m.val] != 'n');
  path_to(in, "self", NULL, 0);
  if (f->resource && !self_given)
    return refuse(in, WFP_EUSAGE,
                  "'%s' is a method of '%s': give the instance it runs on (\"self\", or "
                  "--new %s)",
                  f->name, f->resource, f->resource);
  if (on && (!f->resource || strcmp(f->resource, on) != 0))
    return refuse(in, WFP_EUSAGE, "'%s' is not a method of '%s'", f->name, on);
  uint64_t self = in->has_self ? in->self : 0;
  if (r) {
    if (!e)
      return refuse(in, WFP_EINVAL, "an instance needs an environment to live in");
    rc = wfp_env_instance_new(e, in->m, r->name, &self);
    for (size_t i = 0; !rc && i < in->nprops; i++)
      rc = wfp_env_instance_set(e, self, in->props[i].name, b->prop_json[i]);
    if (rc)
      return rc == WFP_ENOMEM ? oom(in) : refuse(in, rc, "the instance: %s", wfp_strerror(rc));
  }
  assemble(in, base, blen, b, self, out);
  if (out->oom)
    return oom(in);
  /* what went in was checked piece by piece; the whole is what the guest
  ** reads */
  path_to(in, NULL, NULL, 0);
  return check_json(in, "the input", out->data, out->len, 0, "");
}

int wfp_input_finish(wfp_input *in, wfp_env *e, char **out, size_t *len) {
  if (!in || !out)
    return WFP_EINVAL;
  *out = NULL;
  if (len)
    *len = 0;
  begin(in);
  built b;
  memset(&b, 0, sizeof b);
  wfp__buf text;
  wfp__buf_init(&text);
  int rc = finish(in, e, &b, &text);
  wfp__buf_free(&b.args);
  wfp__buf_free(&b.props);
  wfp__buf_free(&b.name);
  for (size_t i = 0; b.prop_json && i < in->nprops; i++)
    free(b.prop_json[i]);
  free(b.prop_json);
  if (rc) {
    wfp__buf_free(&text);
    return rc;
  }
  *out = wfp__buf_take(&text, len);
  return *out ? WFP_OK : oom(in);
}

int wfp_input_new_instance(wfp_input *in, wfp_env *e, uint64_t *handle) {
  if (!in || !e || !handle || !in->res)
    return WFP_EINVAL;
  begin(in);
  built b;
  memset(&b, 0, sizeof b);
  const wfp_abi_resource *r = NULL;
  int rc = build_instance(in, &r, &b);
  if (!rc) {
    rc = wfp_env_instance_new(e, in->m, r->name, handle);
    for (size_t i = 0; !rc && i < in->nprops; i++)
      rc = wfp_env_instance_set(e, *handle, in->props[i].name, b.prop_json[i]);
    if (rc)
      rc = rc == WFP_ENOMEM ? oom(in) : refuse(in, rc, "the instance: %s", wfp_strerror(rc));
  }
  wfp__buf_free(&b.args);
  wfp__buf_free(&b.props);
  wfp__buf_free(&b.name);
  for (size_t i = 0; b.prop_json && i < in->nprops; i++)
    free(b.prop_json[i]);
  free(b.prop_json);
  return rc;
}

int wfp__input_default_self(wfp_input *in, const wfp_env *e, uint64_t handle) {
  if (!in->json || in->has_self || in->fn || in->res)
    return WFP_OK;
  wfp__json_mem mm;
  if (member(in->json, in->json_len, "self", &mm))
    return WFP_OK;
  const char *res = wfp_env_instance_resource(e, handle);
  int fi = -1;
  begin(in);
  if (!res || resolve_fn(in, in->json, in->json_len, &fi) != WFP_OK) {
    begin(in); /* not this function's business: finish says what is wrong */
    return WFP_OK;
  }
  const wfp_abi_func *f = &wfp_module_descriptor_of(in->m)->funcs[fi];
  if (f->resource && strcmp(f->resource, res) == 0) {
    in->has_self = true;
    in->self = handle;
  }
  return WFP_OK;
}
