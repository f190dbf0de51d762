/*
** http.h: the service's HTTP/1.1 server, on the loop's libuv loop with
** nodejs/http-parser: connections, keep-alive and pipelining, limits
** (body, header and URL sizes, connections, timeouts), and a JSON error
** for every request it cannot take. Not here: the routes (api.c).
**
** Threads: everything runs on the loop's thread.
*/
#ifndef WFP_SVC_HTTP_H
#define WFP_SVC_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct wfp_http wfp_http;

/* A request, handed to the handler once it is whole. Its strings are
** NUL-terminated and live as long as the request. */
typedef struct wfp_http_req {
  const char *method; /* "GET", "POST", ... */
  const char *path;   /* the URL's path, not decoded */
  const char *query;  /* the URL's query, not decoded ("" when none) */
  const char *body;   /* the body ("" when none) */
  size_t body_len;
  const char *idem_key; /* the Idempotency-Key header, or NULL */
  void *user;           /* the handler's, for a deferred answer */
} wfp_http_req;

/* Called for each request; it answers with wfp_http_respond, now or
** later (a request whose connection went meanwhile is answered all the
** same: the answer is dropped). */
typedef void (*wfp_http_handler)(void *ud, wfp_http_req *req);

typedef struct wfp_http_opts {
  size_t max_body;          /* bytes of a body (413 past it) */
  size_t max_header;        /* bytes of the request line and headers (431) */
  unsigned max_connections; /* open at once (503 for the others) */
  uint64_t request_timeout_ms; /* from a request's first byte to its end (408) */
  uint64_t idle_timeout_ms;    /* a kept-alive connection without a request */
} wfp_http_opts;

/*
** Listens on host:port (host a numeric IPv4 or IPv6 address or a name;
** port 0: a free one) on uv_loop (a uv_loop_t *). 0 and *out, or a
** negative WFP_E* with a message in err.
*/
int wfp_http_listen(void *uv_loop, const char *host, int port, const wfp_http_opts *o,
                    wfp_http_handler fn, void *ud, wfp_http **out, char *err, size_t errlen);
/* The address it listens on, as "HOST:PORT" ("[::1]:8080" for IPv6). */
const char *wfp_http_address(const wfp_http *h);

/*
** Answers req with status, a content type and body[0..len) (copied), then
** frees req. A connection that asked to close, or an error after which its
** bytes cannot be trusted (status >= 400 with close set), is closed.
*/
void wfp_http_respond(wfp_http_req *req, int status, const char *ctype, const char *body,
                      size_t len);
/* The same with {"error": MESSAGE}. */
void wfp_http_error(wfp_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Requests answered, by class (1xx..5xx: index 1..5), for metrics. */
uint64_t wfp_http_count(const wfp_http *h, int cls);
/* Connections open now. */
unsigned wfp_http_connections(const wfp_http *h);

/* Stops listening and closes every connection (requests in flight are
** answered into the void). The server is freed once libuv closed its
** handles: run the loop after. NULL is a no-op. */
void wfp_http_close(wfp_http *h);

/* Percent-decodes s[0..n) ('+' is a space) into out (n + 1 bytes); false
** when malformed or it holds a NUL. */
int wfp_http_decode(const char *s, size_t n, char *out);
/* The value of the query parameter name in query (decoded, malloc), or
** NULL when absent; *bad set when malformed. */
char *wfp_http_param(const char *query, const char *name, int *bad);

#endif /* WFP_SVC_HTTP_H */
