/*
** http.c: the service's HTTP/1.1 server: uv_tcp connections on the loop's
** libuv loop, requests read with nodejs/http-parser, one request at a time
** per connection (pipelined ones wait in the connection's buffer), answers
** now or later. Every request it cannot take gets a JSON error: 400
** malformed, 408 too slow, 413 body too large (decided from its
** Content-Length before the body is read), 414 URL too long, 431 headers
** too large, 503 too many connections. Not here: what a route does (api.c).
*/
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <uv.h>

#include "http.h"
#include "util.h"

#define READ_CHUNK 65536
#define MAX_URL 8192

typedef struct conn conn;

typedef struct req_int {
  wfp_http_req r; /* first: the handler's view */
  conn *c;        /* NULL once the connection went */
  char *method, *path, *query, *body, *idem;
} req_int;

enum { T_NONE, T_REQUEST, T_IDLE };

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  http_parser p;
  wfp_http *h;
  conn *prev, *next;
  wfp__buf url, body, hf, hv, pend;
  int hstate; /* 0: none, 1: a header's name, 2: its value */
  char *idem;
  size_t header_bytes;
  bool expect_continue;
  bool complete;     /* a whole request waits to be handed over */
  bool failed;       /* answered with an error: close after the answer */
  bool keep_alive;   /* the client keeps the connection for more */
  bool dead;         /* closing */
  bool reading;
  int timer_mode;
  int closed; /* handles closed, of 2 */
  req_int *req; /* handed to the handler, not answered */
};

struct wfp_http {
  uv_loop_t *uv;
  uv_tcp_t listener;
  wfp_http_opts o;
  wfp_http_handler fn;
  void *ud;
  conn *conns;
  unsigned nconns;
  uint64_t counts[6];
  char addr[80];
  bool closing, listener_closed;
  char rbuf[READ_CHUNK];
};

static const char *reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

static void conn_close(conn *c);
static void feed(conn *c, const char *data, size_t n);
static void start_reading(conn *c);

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

static void set_timer(conn *c, int mode) {
  c->timer_mode = mode;
  uint64_t ms = mode == T_REQUEST ? c->h->o.request_timeout_ms
                : mode == T_IDLE  ? c->h->o.idle_timeout_ms
                                  : 0;
  if (!ms)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- writing ---- */

typedef struct wreq {
  uv_write_t w;
  conn *c;
  bool close_after;
  char data[];
} wreq;

static void after_answer(conn *c);

static void on_written(uv_write_t *w, int status) {
  wreq *wr = (wreq *)w;
  conn *c = wr->c;
  bool close_after = wr->close_after;
  free(wr);
  if (c->dead)
    return;
  if (status < 0 || close_after) {
    conn_close(c);
    return;
  }
  after_answer(c);
}

/* Writes an answer; with close_after, the connection closes once it left. */
static void write_bytes(conn *c, const char *head, size_t hn, const char *body, size_t bn,
                        bool close_after) {
  wreq *wr = malloc(sizeof *wr + hn + bn);
  if (!wr) {
    conn_close(c);
    return;
  }
  memcpy(wr->data, head, hn);
  if (bn)
    memcpy(wr->data + hn, body, bn);
  wr->c = c;
  wr->close_after = close_after;
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)(hn + bn));
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(wr);
    conn_close(c);
  }
}

static void on_interim_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void send_answer(conn *c, int status, const char *ctype, const char *body, size_t len,
                        bool close_after) {
  wfp_http *h = c->h;
  if (status >= 100 && status < 600)
    h->counts[status / 100]++;
  char head[512];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\n%s\r\n",
                    status, reason(status), ctype, len,
                    close_after ? "Connection: close\r\n"
                    : c->p.http_minor == 0 ? "Connection: keep-alive\r\n"
                                           : "");
  write_bytes(c, head, (size_t)hn, body, len, close_after);
}

/* An error of the connection's own (no request handed over): a JSON
** answer, and the connection closes after it. */
static void conn_error(conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_error(conn *c, int status, const char *fmt, ...) {
  if (c->failed || c->dead)
    return;
  c->failed = true;
  set_timer(c, T_NONE);
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{\"error\":");
  wfp__buf_add_jstr(&b, msg, strlen(msg));
  wfp__buf_adds(&b, "}");
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
  if (b.oom)
    conn_close(c);
  else
    send_answer(c, status, "application/json", b.data, b.len, true);
  wfp__buf_free(&b);
}

/* ---- the parser's callbacks ---- */

static int too_large_header(conn *c, size_t more) {
  c->header_bytes += more;
  if (c->header_bytes > c->h->o.max_header) {
    conn_error(c, 431, "the request line and headers are larger than %zu bytes",
               c->h->o.max_header);
    return 1;
  }
  return 0;
}

static void reset_request(conn *c) {
  c->url.len = c->body.len = c->hf.len = c->hv.len = 0;
  c->hstate = 0;
  free(c->idem);
  c->idem = NULL;
  c->header_bytes = 0;
  c->expect_continue = false;
}

static int on_message_begin(http_parser *p) {
  conn *c = p->data;
  reset_request(c);
  set_timer(c, T_REQUEST);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (too_large_header(c, n))
    return 1;
  if (c->url.len + n > MAX_URL) {
    conn_error(c, 414, "the URL is longer than %d bytes", MAX_URL);
    return 1;
  }
  wfp__buf_add(&c->url, at, n);
  return c->url.oom;
}

static bool header_is(const wfp__buf *b, const char *name) {
  size_t n = strlen(name);
  if (b->len != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char x = b->data[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (x != name[i])
      return false;
  }
  return true;
}

/* A header's name and value are whole: keep the ones the service reads. */
static int header_done(conn *c) {
  if (c->hstate != 2)
    return 0;
  if (header_is(&c->hf, "idempotency-key")) {
    free(c->idem);
    if (!(c->idem = malloc(c->hv.len + 1)))
      return 1;
    memcpy(c->idem, c->hv.len ? c->hv.data : "", c->hv.len);
    c->idem[c->hv.len] = 0;
  } else if (header_is(&c->hf, "expect")) {
    c->expect_continue = c->hv.len == 12 && strncasecmp(c->hv.data, "100-continue", 12) == 0;
  }
  c->hf.len = c->hv.len = 0;
  c->hstate = 0;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (too_large_header(c, n) || header_done(c))
    return 1;
  c->hstate = 1;
  wfp__buf_add(&c->hf, at, n);
  return c->hf.oom;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (too_large_header(c, n))
    return 1;
  c->hstate = 2;
  wfp__buf_add(&c->hv, at, n);
  return c->hv.oom;
}

static int on_headers_complete(http_parser *p) {
  conn *c = p->data;
  if (header_done(c))
    return 1;
  if (p->http_major != 1) {
    conn_error(c, 400, "HTTP/%u.%u is not spoken here (HTTP/1.0 and 1.1 are)", p->http_major,
               p->http_minor);
    return 1;
  }
  /* a body over the limit is refused before it is read */
  if (p->content_length != ULLONG_MAX && p->content_length > c->h->o.max_body) {
    conn_error(c, 413, "the body is larger than %zu bytes", c->h->o.max_body);
    return 1;
  }
  if (c->expect_continue && p->http_minor >= 1) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
    if (!w || uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_interim_written) != 0)
      free(w);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (c->body.len + n > c->h->o.max_body) {
    conn_error(c, 413, "the body is larger than %zu bytes", c->h->o.max_body);
    return 1;
  }
  wfp__buf_add(&c->body, at, n);
  return c->body.oom;
}

static int on_message_complete(http_parser *p) {
  conn *c = p->data;
  set_timer(c, T_NONE);
  c->complete = true;
  c->keep_alive = http_should_keep_alive(p) != 0;
  /* one request at a time: what follows waits for its answer */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- handing a request over ---- */

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

static void dispatch(conn *c) {
  c->complete = false;
  struct http_parser_url u;
  http_parser_url_init(&u);
  const char *url = c->url.len ? c->url.data : "";
  if (c->url.len == 0 || http_parser_parse_url(url, c->url.len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    conn_error(c, 400, "malformed URL");
    return;
  }
  req_int *ri = calloc(1, sizeof *ri);
  if (!ri) {
    conn_close(c);
    return;
  }
  const char *m = http_method_str((enum http_method)c->p.method);
  ri->method = strdup(m);
  ri->path = dupn(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  ri->query = (u.field_set & (1 << UF_QUERY))
                  ? dupn(url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len)
                  : strdup("");
  ri->body = dupn(c->body.len ? c->body.data : "", c->body.len);
  ri->idem = c->idem;
  c->idem = NULL;
  if (!ri->method || !ri->path || !ri->query || !ri->body) {
    free(ri->method);
    free(ri->path);
    free(ri->query);
    free(ri->body);
    free(ri->idem);
    free(ri);
    conn_close(c);
    return;
  }
  ri->r.method = ri->method;
  ri->r.path = ri->path;
  ri->r.query = ri->query;
  ri->r.body = ri->body;
  ri->r.body_len = c->body.len;
  ri->r.idem_key = ri->idem;
  ri->c = c;
  c->req = ri;
  /* large buffers of one request are not kept for the next */
  if (c->body.cap > 65536) {
    wfp__buf_free(&c->body);
    wfp__buf_init(&c->body);
  }
  c->h->fn(c->h->ud, &ri->r);
}

/* After an answer left: the next request on the connection (pipelined
** bytes first), or an idle wait for one. */
static void after_answer(conn *c) {
  if (!c->keep_alive) {
    conn_close(c);
    return;
  }
  http_parser_pause(&c->p, 0);
  if (c->pend.len) {
    wfp__buf b = c->pend;
    wfp__buf_init(&c->pend);
    feed(c, b.data, b.len);
    wfp__buf_free(&b);
    if (c->dead || c->req || c->complete || c->failed)
      return;
  }
  if (!c->timer_mode)
    set_timer(c, T_IDLE);
  start_reading(c);
}

/* Parses bytes: a whole request goes to the handler (the bytes after it
** wait in pend); a malformed one gets a 400. */
static void feed(conn *c, const char *data, size_t n) {
  size_t done = http_parser_execute(&c->p, &settings, data, n);
  if (c->dead || c->failed)
    return;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
  if (e == HPE_PAUSED) {
    if (done < n) {
      wfp__buf_add(&c->pend, data + done, n - done);
      if (c->pend.oom) {
        conn_close(c);
        return;
      }
    }
    if (c->reading) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = false;
    }
    if (c->complete)
      dispatch(c);
    return;
  }
  if (e != HPE_OK) {
    conn_error(c, 400, "malformed HTTP request: %s", http_errno_description(e));
    return;
  }
  if (c->p.upgrade) {
    conn_error(c, 400, "protocol upgrades are not supported");
    return;
  }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *b) {
  (void)want;
  conn *c = hd->data;
  *b = uv_buf_init(c->h->rbuf, sizeof c->h->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  conn *c = s->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->dead || c->failed)
    return;
  if (c->req || c->complete) { /* not expected: reading stops meanwhile */
    wfp__buf_add(&c->pend, b->base, (size_t)nread);
    return;
  }
  if (c->timer_mode == T_IDLE)
    set_timer(c, T_NONE);
  feed(c, b->base, (size_t)nread);
}

static void start_reading(conn *c) {
  if (c->reading || c->dead)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = true;
  else
    conn_close(c);
}

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  int mode = c->timer_mode;
  c->timer_mode = T_NONE;
  if (mode == T_REQUEST)
    conn_error(c, 408, "the request did not arrive within %llu ms",
               (unsigned long long)c->h->o.request_timeout_ms);
  else
    conn_close(c);
}

/* ---- connections ---- */

static void maybe_free_server(wfp_http *h) {
  if (h->closing && h->listener_closed && !h->conns)
    free(h);
}

static void on_conn_closed(uv_handle_t *hd) {
  conn *c = hd->data;
  if (++c->closed < 2)
    return;
  wfp_http *h = c->h;
  if (c->prev)
    c->prev->next = c->next;
  else
    h->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  h->nconns--;
  wfp__buf_free(&c->url);
  wfp__buf_free(&c->body);
  wfp__buf_free(&c->hf);
  wfp__buf_free(&c->hv);
  wfp__buf_free(&c->pend);
  free(c->idem);
  free(c);
  maybe_free_server(h);
}

static void conn_close(conn *c) {
  if (c->dead)
    return;
  c->dead = true;
  if (c->req) { /* answered later, into the void */
    c->req->c = NULL;
    c->req = NULL;
  }
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  wfp_http *h = server->data;
  if (status < 0 || h->closing)
    return;
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->h = h;
  uv_tcp_init(h->uv, &c->tcp);
  uv_timer_init(h->uv, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->next = h->conns;
  if (h->conns)
    h->conns->prev = c;
  h->conns = c;
  h->nconns++;
  wfp__buf_init(&c->url);
  wfp__buf_init(&c->body);
  wfp__buf_init(&c->hf);
  wfp__buf_init(&c->hv);
  wfp__buf_init(&c->pend);
  http_parser_init(&c->p, HTTP_REQUEST);
  c->p.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (h->nconns > h->o.max_connections) {
    conn_error(c, 503, "too many connections (at most %u)", h->o.max_connections);
    return;
  }
  set_timer(c, T_IDLE);
  start_reading(c);
}

/* ---- the server ---- */

int wfp_http_listen(void *uv_loop, const char *host, int port, const wfp_http_opts *o,
                    wfp_http_handler fn, void *ud, wfp_http **out, char *err, size_t errlen) {
  *out = NULL;
  wfp_http *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  h->uv = uv_loop;
  h->o = *o;
  h->fn = fn;
  h->ud = ud;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  uv_getaddrinfo_t gai;
  int rc = uv_getaddrinfo(h->uv, &gai, NULL, host, service, &hints);
  if (rc) {
    snprintf(err, errlen, "cannot resolve '%s': %s", host, uv_strerror(rc));
    free(h);
    return WFP_EIO;
  }
  uv_tcp_init(h->uv, &h->listener);
  h->listener.data = h;
  rc = UV_EINVAL;
  for (struct addrinfo *a = gai.addrinfo; a; a = a->ai_next) {
    rc = uv_tcp_bind(&h->listener, a->ai_addr, 0);
    if (!rc)
      rc = uv_listen((uv_stream_t *)&h->listener, 511, on_connection);
    if (!rc)
      break;
  }
  uv_freeaddrinfo(gai.addrinfo);
  if (rc) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
    h->closing = true;
    uv_close((uv_handle_t *)&h->listener, NULL);
    uv_run(h->uv, UV_RUN_NOWAIT);
    free(h);
    return WFP_EIO;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
  char ip[64] = "";
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    snprintf(h->addr, sizeof h->addr, "[%s]:%d", ip,
             ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    snprintf(h->addr, sizeof h->addr, "%s:%d", ip,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  *out = h;
  return WFP_OK;
}

const char *wfp_http_address(const wfp_http *h) { return h->addr; }
uint64_t wfp_http_count(const wfp_http *h, int cls) {
  return cls >= 1 && cls <= 5 ? h->counts[cls] : 0;
}
unsigned wfp_http_connections(const wfp_http *h) { return h->nconns; }

static void on_listener_closed(uv_handle_t *hd) {
  wfp_http *h = hd->data;
  h->listener_closed = true;
  maybe_free_server(h);
}

void wfp_http_close(wfp_http *h) {
  if (!h || h->closing)
    return;
  h->closing = true;
  uv_close((uv_handle_t *)&h->listener, on_listener_closed);
  for (conn *c = h->conns; c; c = c->next)
    conn_close(c);
}

/* ---- answers ---- */

static void req_free(req_int *ri) {
  free(ri->method);
  free(ri->path);
  free(ri->query);
  free(ri->body);
  free(ri->idem);
  free(ri);
}

void wfp_http_respond(wfp_http_req *req, int status, const char *ctype, const char *body,
                      size_t len) {
  req_int *ri = (req_int *)req;
  conn *c = ri->c;
  if (c && !c->dead) {
    c->req = NULL;
    send_answer(c, status, ctype, body, len, !c->keep_alive);
  }
  req_free(ri);
}

void wfp_http_error(wfp_http_req *req, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{\"error\":");
  wfp__buf_add_jstr(&b, msg, strlen(msg));
  wfp__buf_adds(&b, "}");
  if (b.oom)
    wfp_http_respond(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
  else
    wfp_http_respond(req, status, "application/json", b.data, b.len);
  wfp__buf_free(&b);
}

/* ---- URLs ---- */

static int hexval(char x) {
  if (x >= '0' && x <= '9')
    return x - '0';
  if (x >= 'a' && x <= 'f')
    return x - 'a' + 10;
  if (x >= 'A' && x <= 'F')
    return x - 'A' + 10;
  return -1;
}

int wfp_http_decode(const char *s, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char x = s[i];
    if (x == '+') {
      x = ' ';
    } else if (x == '%') {
      if (i + 2 >= n)
        return 0;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        return 0;
      x = (char)(hi * 16 + lo);
      i += 2;
    }
    if (x == 0)
      return 0;
    out[k++] = x;
  }
  out[k] = 0;
  return 1;
}

char *wfp_http_param(const char *query, const char *name, int *bad) {
  size_t nl = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t kl = eq ? (size_t)(eq - p) : len;
    if (kl == nl && memcmp(p, name, nl) == 0) {
      const char *v = eq ? eq + 1 : p + len;
      size_t vl = eq ? len - kl - 1 : 0;
      char *out = malloc(vl + 1);
      if (!out || !wfp_http_decode(v, vl, out)) {
        free(out);
        *bad = 1;
        return NULL;
      }
      return out;
    }
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}
