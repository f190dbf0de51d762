/*
** http_load.c: wfp-bench-http, the HTTP load of bench/service.sh: N
** requests over T kept-alive connections (a thread each), one at a time per
** connection; prints the throughput, latency percentiles and the status
** codes. A measuring tool: it asserts nothing.
**
** usage: wfp-bench-http PORT METHOD PATH BODY N T
** BODY "-" sends none; the text "{i}" in PATH or BODY becomes the request's
** number (0..N-1).
*/
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, total, nthreads;
static const char *method, *path, *body;
static int next_req;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *lat; /* ns, per request */
static int codes[600];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* s with every "{i}" replaced by i, into out (n bytes). */
static size_t subst(const char *s, int i, char *out, size_t n) {
  size_t k = 0;
  for (const char *p = s; *p && k + 24 < n; p++) {
    if (p[0] == '{' && p[1] == 'i' && p[2] == '}') {
      k += (size_t)snprintf(out + k, n - k, "%d", i);
      p += 2;
    } else {
      out[k++] = *p;
    }
  }
  out[k] = 0;
  return k;
}

static int connect_to(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* One response: its status, or -1 when the connection closed. */
static int read_response(int fd, char *buf, size_t cap) {
  size_t got = 0;
  char *end = NULL;
  while (!end) {
    ssize_t r = read(fd, buf + got, cap - got - 1);
    if (r <= 0)
      return -1;
    got += (size_t)r;
    buf[got] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  int status = atoi(buf + 9);
  const char *cl = strcasestr(buf, "content-length:");
  size_t len = cl ? (size_t)atol(cl + 15) : 0;
  size_t have = got - (size_t)(end + 4 - buf);
  while (have < len) {
    char sink[65536];
    ssize_t r = read(fd, sink, len - have < sizeof sink ? len - have : sizeof sink);
    if (r <= 0)
      return -1;
    have += (size_t)r;
  }
  return status;
}

static void *worker(void *arg) {
  (void)arg;
  int fd = connect_to();
  static __thread char req[1 << 16], resp[1 << 16], p[4096], b[1 << 15];
  for (;;) {
    pthread_mutex_lock(&mu);
    int i = next_req < total ? next_req++ : -1;
    pthread_mutex_unlock(&mu);
    if (i < 0)
      break;
    subst(path, i, p, sizeof p);
    size_t bl = strcmp(body, "-") ? subst(body, i, b, sizeof b) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, p, bl, bl ? b : "");
    uint64_t t0 = now_ns();
    if (write(fd, req, (size_t)n) != n) {
      perror("write");
      exit(1);
    }
    int st = read_response(fd, resp, sizeof resp);
    if (st < 0) { /* closed: again on a new connection */
      close(fd);
      fd = connect_to();
      if (write(fd, req, (size_t)n) != n || (st = read_response(fd, resp, sizeof resp)) < 0) {
        fprintf(stderr, "wfp-bench-http: the server closed the connection\n");
        exit(1);
      }
    }
    lat[i] = now_ns() - t0;
    pthread_mutex_lock(&mu);
    if (st >= 0 && st < 600)
      codes[st]++;
    pthread_mutex_unlock(&mu);
  }
  close(fd);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: wfp-bench-http PORT METHOD PATH BODY N THREADS\n");
    return 2;
  }
  port = atoi(argv[1]);
  method = argv[2];
  path = argv[3];
  body = argv[4];
  total = atoi(argv[5]);
  nthreads = atoi(argv[6]);
  if (total <= 0 || nthreads <= 0 || !(lat = calloc((size_t)total, sizeof *lat)))
    return 2;
  pthread_t *t = calloc((size_t)nthreads, sizeof *t);
  uint64_t t0 = now_ns();
  for (int i = 0; i < nthreads; i++)
    pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < nthreads; i++)
    pthread_join(t[i], NULL);
  double secs = (double)(now_ns() - t0) / 1e9;
  qsort(lat, (size_t)total, sizeof *lat, cmp);
  printf("requests %d seconds %.3f per_second %.0f p50_us %.1f p90_us %.1f p99_us %.1f "
         "max_us %.1f",
         total, secs, total / secs, lat[total / 2] / 1e3, lat[total * 9 / 10] / 1e3,
         lat[(size_t)total * 99 / 100] / 1e3, lat[total - 1] / 1e3);
  for (int c = 0; c < 600; c++)
    if (codes[c])
      printf(" status_%d %d", c, codes[c]);
  printf("\n");
  free(t);
  free(lat);
  return 0;
}
