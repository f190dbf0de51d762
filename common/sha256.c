/*
** sha256.c: SHA-256 (FIPS 180-4), for content-hash IDs, program hashes and
** checkpoint checksums, and HMAC-SHA-256 (RFC 2104) for signed checkpoints.
** Written from the standards; checked against their test vectors in
** tests/common. The compression itself has no secret-dependent branches or
** indexes; comparing MACs is left to wfp__equal_ct.
*/
#include <string.h>

#include "util.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress(uint32_t h[8], const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5],
           g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = hh + S1 + ch + K[i] + w[i];
    uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

void wfp__sha256_init(wfp__sha256 *s) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                 0xa54ff53a, 0x510e527f, 0x9b05688c,
                                 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof iv);
  s->total = 0;
  s->fill = 0;
}

void wfp__sha256_update(wfp__sha256 *s, const void *data, size_t n) {
  const uint8_t *p = data;
  s->total += n;
  if (s->fill) {
    size_t take = 64 - s->fill < n ? 64 - s->fill : n;
    memcpy(s->block + s->fill, p, take);
    s->fill += take;
    p += take;
    n -= take;
    if (s->fill < 64)
      return;
    compress(s->h, s->block);
    s->fill = 0;
  }
  while (n >= 64) {
    compress(s->h, p);
    p += 64;
    n -= 64;
  }
  if (n) {
    memcpy(s->block, p, n);
    s->fill = n;
  }
}

void wfp__sha256_final(wfp__sha256 *s, uint8_t out[32]) {
  uint64_t bits = s->total * 8;
  uint8_t pad = 0x80;
  wfp__sha256_update(s, &pad, 1);
  pad = 0;
  while (s->fill != 56)
    wfp__sha256_update(s, &pad, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)(bits >> (56 - 8 * i));
  wfp__sha256_update(s, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(s->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)s->h[i];
  }
}

void wfp__sha256_buf(const void *p, size_t n, uint8_t out[32]) {
  wfp__sha256 s;
  wfp__sha256_init(&s);
  wfp__sha256_update(&s, p, n);
  wfp__sha256_final(&s, out);
}

void wfp__hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                      uint8_t out[32]) {
  /* RFC 2104: H((K ^ opad) || H((K ^ ipad) || msg)), K padded to a block,
  ** hashed first when longer than one */
  uint8_t k[64] = {0}, pad[64], inner[32];
  if (klen > sizeof k)
    wfp__sha256_buf(key, klen, k);
  else if (klen)
    memcpy(k, key, klen);
  wfp__sha256 s;
  for (int i = 0; i < 64; i++)
    pad[i] = (uint8_t)(k[i] ^ 0x36);
  wfp__sha256_init(&s);
  wfp__sha256_update(&s, pad, sizeof pad);
  wfp__sha256_update(&s, msg, n);
  wfp__sha256_final(&s, inner);
  for (int i = 0; i < 64; i++)
    pad[i] = (uint8_t)(k[i] ^ 0x5c);
  wfp__sha256_init(&s);
  wfp__sha256_update(&s, pad, sizeof pad);
  wfp__sha256_update(&s, inner, sizeof inner);
  wfp__sha256_final(&s, out);
}

bool wfp__equal_ct(const void *a, const void *b, size_t n) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t d = 0;
  for (size_t i = 0; i < n; i++)
    d |= (uint8_t)(x[i] ^ y[i]);
  return d == 0;
}

void wfp__hex(const uint8_t *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = 0;
}
