/*
** test_common.c: unit tests of the shared helpers in common/ (SHA-256, hex,
** base64, i64 parse/format, UTF-8 check, JSON string escaping, atomic write,
** the strict JSON scanner in both its modes).
** Not covered here: the arena and file reading beyond what these use.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "util.h"

/* ---- SHA-256 ---- */

static void sha_hex(const void *p, size_t n, char out[65]) {
  uint8_t h[32];
  wfp__sha256_buf(p, n, h);
  wfp__hex(h, 32, out);
}

/* FIPS 180-4 examples (NIST CSRC "SHA256.pdf" and "SHA2_Additional"). */
static void sha256_nist_vectors(void **state) {
  (void)state;
  char hex[65];
  sha_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  /* the 448-bit message: the padding no longer fits its block */
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha_hex(m448, strlen(m448), hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  sha_hex(m896, strlen(m896), hex);
  assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* RFC 4231 test cases 1 to 4, 6 and 7: short, long and hashed keys, a
** message longer than a block. (Case 5 is a truncated MAC: not used.) */
static void hmac_sha256_rfc4231_vectors(void **state) {
  (void)state;
  static const struct {
    const char *key;
    size_t klen;
    const char *msg;
    size_t mlen;
    const char *mac;
  } v[] = {
      {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
       "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", 4, "what do ya want for nothing?", 28,
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {NULL, 20, NULL, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19",
       25, NULL, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {NULL, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {NULL, 131,
       "This is a test using a larger than block-size key and a larger than "
       "block-size data. The key needs to be hashed before being used by the "
       "HMAC algorithm.",
       152, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint8_t key[131], msg[152], mac[32];
    char hex[65];
    /* the cases without text: key 0xaa..., message 0xdd... or 0xcd... */
    memset(key, 0xaa, sizeof key);
    if (v[i].key)
      memcpy(key, v[i].key, v[i].klen);
    memset(msg, i == 3 ? 0xcd : 0xdd, sizeof msg);
    if (v[i].msg)
      memcpy(msg, v[i].msg, v[i].mlen);
    wfp__hmac_sha256(key, v[i].klen, msg, v[i].mlen, mac);
    wfp__hex(mac, 32, hex);
    assert_string_equal(hex, v[i].mac);
  }
  assert_true(wfp__equal_ct("abc", "abc", 3));
  assert_false(wfp__equal_ct("abc", "abd", 3));
  assert_false(wfp__equal_ct("xbc", "abc", 3));
}

/* One million 'a' fed in odd-sized chunks, so that updates straddle block
** boundaries in every possible way (the buffering path is what breaks). */
static void sha256_million_a_chunked(void **state) {
  (void)state;
  static char a[1000];
  memset(a, 'a', sizeof a);
  static const size_t sizes[] = {1, 3, 7, 63, 64, 65, 127, 999, 13, 0};
  wfp__sha256 s;
  wfp__sha256_init(&s);
  size_t left = 1000000, k = 0;
  while (left) {
    size_t n = sizes[k++ % (sizeof sizes / sizeof *sizes)];
    if (n > left)
      n = left;
    wfp__sha256_update(&s, a, n);
    left -= n;
  }
  uint8_t h[32];
  char hex[65];
  wfp__sha256_final(&s, h);
  wfp__hex(h, 32, hex);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the 55/56/64-byte padding boundaries, one byte at a time
** and in one call; the expected digests are cross-checked with an
** independent SHA-256 implementation. */
static void sha256_padding_boundaries(void **state) {
  (void)state;
  static const struct {
    size_t n;
    const char *hex;
  } v[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
      {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
      {129, "c12cb024a2e5551cca0e08fce8f1c5e314555cc3fef6329ee994a3db752166ae"},
  };
  char a[200];
  memset(a, 'a', sizeof a);
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    char hex[65];
    sha_hex(a, v[i].n, hex);
    assert_string_equal(hex, v[i].hex);
    wfp__sha256 s;
    wfp__sha256_init(&s);
    for (size_t k = 0; k < v[i].n; k++)
      wfp__sha256_update(&s, a, 1);
    uint8_t h[32];
    wfp__sha256_final(&s, h);
    wfp__hex(h, 32, hex);
    assert_string_equal(hex, v[i].hex);
  }
}

static void hex_lowercase(void **state) {
  (void)state;
  const uint8_t b[] = {0x00, 0x0f, 0xf0, 0xff, 0xa5, 0x5a};
  char out[13];
  memset(out, 'x', sizeof out);
  wfp__hex(b, sizeof b, out);
  assert_string_equal(out, "000ff0ffa55a");
  wfp__hex(b, 0, out);
  assert_string_equal(out, "");
}

/* ---- base64 ---- */

/* Encodes into a buffer that already holds a prefix, as real callers do,
** and returns the encoding alone as a C string (caller frees). The prefix
** also sidesteps an empty buffer's data, which is not a C string when
** nothing was appended. */
static char *b64(const void *p, size_t n) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_addc(&b, '<');
  wfp__buf_add_base64(&b, p, n);
  assert_false(b.oom);
  assert_int_equal(b.len, 1 + (n + 2) / 3 * 4);
  char *r = strdup(b.data + 1);
  wfp__buf_free(&b);
  assert_non_null(r);
  return r;
}

/* Decodes s; returns false on refusal. out gets the bytes (caller frees). */
static bool unb64(const char *s, wfp__buf *out) {
  wfp__buf_init(out);
  return wfp__base64_decode(s, strlen(s), out);
}

static void base64_rfc4648_vectors(void **state) {
  (void)state;
  static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    char *e = b64(plain[i], strlen(plain[i]));
    assert_string_equal(e, enc[i]);
    free(e);
    wfp__buf d;
    assert_true(unb64(enc[i], &d));
    assert_int_equal(d.len, strlen(plain[i]));
    if (d.len)
      assert_memory_equal(d.data, plain[i], d.len);
    wfp__buf_free(&d);
  }
}

static void base64_round_trip(void **state) {
  (void)state;
  unsigned char bytes[300];
  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (unsigned char)(i * 7 + 3); /* every byte value, shuffled */
  for (size_t n = 0; n <= sizeof bytes; n++) {
    char *e = b64(bytes, n);
    assert_int_equal(strlen(e), (n + 2) / 3 * 4);
    wfp__buf d;
    assert_true(unb64(e, &d));
    assert_int_equal(d.len, n);
    if (n)
      assert_memory_equal(d.data, bytes, n);
    wfp__buf_free(&d);
    free(e);
  }
}

static void base64_rejects(void **state) {
  (void)state;
  static const char *const bad[] = {
      /* length not a multiple of 4 */
      "Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg=",
      /* characters outside the standard alphabet (URL-safe ones too) */
      "Zm9v!A==", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9v\tg==",
      /* padding in the wrong place */
      "====", "Z===", "Zg=A", "Zm=v", "Zg==Zg==", "=Zm9",
      /* padding bits not zero: a second spelling of the same bytes */
      "Zh==", "Zm9=", "Zm+=", "AB==",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    wfp__buf d;
    bool ok = unb64(bad[i], &d);
    wfp__buf_free(&d);
    if (ok)
      fail_msg("base64 decoder accepted \"%s\"", bad[i]);
  }
  /* a NUL inside the counted length is not a base64 character either */
  wfp__buf d;
  wfp__buf_init(&d);
  assert_false(wfp__base64_decode("Zg\0=", 4, &d));
  wfp__buf_free(&d);
}

/* ---- i64 ---- */

static bool parse(const char *s, int64_t *v) { return wfp__parse_i64(s, strlen(s), v); }

static void parse_i64_accepts(void **state) {
  (void)state;
  int64_t v = 1;
  assert_true(parse("0", &v));
  assert_true(v == 0);
  assert_true(parse("9223372036854775807", &v));
  assert_true(v == INT64_MAX);
  assert_true(parse("-9223372036854775808", &v));
  assert_true(v == INT64_MIN);
  assert_true(parse("-1", &v));
  assert_true(v == -1);
  assert_true(parse("1234567890", &v));
  assert_true(v == 1234567890);
  /* the length bounds the text: no NUL needed */
  assert_true(wfp__parse_i64("12345", 3, &v));
  assert_true(v == 123);
}

static void parse_i64_refuses(void **state) {
  (void)state;
  static const char *const bad[] = {
      "9223372036854775808",  /* INT64_MAX + 1 */
      "-9223372036854775809", /* INT64_MIN - 1 */
      "18446744073709551616", "99999999999999999999",
      "-0",                    /* not canonical */
      "00", "007", "-01",      /* leading zeros */
      "+1", "", "-", " 1", "1 ", "1a", "0x10", "1.0", "1e3", "--1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int64_t v = 42;
    if (parse(bad[i], &v))
      fail_msg("wfp__parse_i64 accepted \"%s\" as %lld", bad[i], (long long)v);
  }
  int64_t v;
  assert_false(wfp__parse_i64("1\0", 2, &v)); /* an embedded NUL is not a digit */
  assert_false(wfp__parse_i64(NULL, 0, &v));
}

static void fmt_i64_values(void **state) {
  (void)state;
  static const struct {
    int64_t v;
    const char *s;
  } t[] = {
      {0, "0"},
      {-1, "-1"},
      {10, "10"},
      {-10, "-10"},
      {INT64_MAX, "9223372036854775807"},
      {INT64_MIN, "-9223372036854775808"},
      {INT64_MIN + 1, "-9223372036854775807"},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    char out[24];
    memset(out, 'x', sizeof out);
    size_t n = wfp__fmt_i64(out, t[i].v);
    assert_string_equal(out, t[i].s);
    assert_int_equal(n, strlen(t[i].s));
    /* and back */
    int64_t back;
    assert_true(wfp__parse_i64(out, n, &back));
    assert_true(back == t[i].v);
  }
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_add_i64(&b, INT64_MIN);
  wfp__buf_addc(&b, ',');
  wfp__buf_add_i64(&b, 7);
  assert_string_equal(b.data, "-9223372036854775808,7");
  wfp__buf_free(&b);
}

/* ---- UTF-8 ---- */

static void utf8_valid_sequences(void **state) {
  (void)state;
  static const char *const good[] = {
      "", "plain ascii",
      "\xC2\x80",         /* U+0080, smallest 2-byte */
      "\xDF\xBF",         /* U+07FF */
      "\xE0\xA0\x80",     /* U+0800, smallest 3-byte */
      "\xED\x9F\xBF",     /* U+D7FF, just below the surrogates */
      "\xEE\x80\x80",     /* U+E000, just above them */
      "\xEF\xBF\xBF",     /* U+FFFF */
      "\xF0\x90\x80\x80", /* U+10000, smallest 4-byte */
      "\xF4\x8F\xBF\xBF", /* U+10FFFF, the last code point */
      "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", /* mixed: a é € 😀 z */
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (!wfp__utf8_valid(good[i], strlen(good[i])))
      fail_msg("valid UTF-8 #%zu refused", i);
  /* U+0000 is well-formed UTF-8 (the IR refuses it elsewhere) */
  assert_true(wfp__utf8_valid("a\0b", 3));
}

static void utf8_invalid_sequences(void **state) {
  (void)state;
  static const char *const bad[] = {
      /* overlongs */
      "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xF0\x80\x80\x80",
      "\xF0\x8F\xBF\xBF",
      /* surrogates */
      "\xED\xA0\x80", "\xED\xBF\xBF", "\xED\xA0\x80\xED\xB0\x80",
      /* beyond U+10FFFF, and bytes that never start a sequence */
      "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF",
      /* lone continuation bytes */
      "\x80", "a\xBFz",
      /* truncated sequences, at the end and followed by ASCII */
      "\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xE2\x82" "A", "\xF0\x9F" "AB",
      /* a continuation byte that is not one */
      "\xC3\x28", "\xE2\x28\xA1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (wfp__utf8_valid(bad[i], strlen(bad[i])))
      fail_msg("invalid UTF-8 #%zu accepted", i);
  /* the length cuts a valid sequence */
  assert_false(wfp__utf8_valid("\xC3\xA9", 1));
  assert_false(wfp__utf8_valid("\xF0\x9F\x98\x80", 3));
}

/* ---- JSON string escaping ---- */

static void buf_add_jstr_escapes(void **state) {
  (void)state;
  static const char in[] = "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f/\xC3\xA9\0end";
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_add_jstr(&b, in, sizeof in - 1);
  /* the escapes JSON has short forms for, \u00XX for other controls, and
  ** everything else (DEL, '/', UTF-8) as is */
  assert_string_equal(b.data,
                      "\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f/\xC3\xA9\\u0000end\"");
  wfp__buf_free(&b);
  wfp__buf_init(&b);
  wfp__buf_add_jstr(&b, "", 0);
  assert_string_equal(b.data, "\"\"");
  wfp__buf_free(&b);
}

/* ---- atomic file write ---- */

typedef struct tmpdir {
  char path[PATH_MAX];
} tmpdir;

static void tmpdir_make(tmpdir *t) {
  const char *base = getenv("TMPDIR");
  snprintf(t->path, sizeof t->path, "%s/wfp-test-common.XXXXXX",
           base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(t->path));
}

/* Names of the entries of dir, sorted, joined with ','. */
static char *listing(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    assert_true(n < 64);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *x = names[j];
      names[j] = names[j - 1];
      names[j - 1] = x;
    }
  wfp__buf b;
  wfp__buf_init(&b);
  for (int i = 0; i < n; i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_adds(&b, names[i]);
    free(names[i]);
  }
  return wfp__buf_take(&b, NULL);
}

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static void expect_file(const char *path, const char *content, int mode) {
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(wfp__read_file(path, &data, &len), WFP_OK);
  assert_int_equal(len, strlen(content));
  assert_memory_equal(data, content, len);
  free(data);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, mode);
}

static void write_atomic_writes_and_replaces(void **state) {
  (void)state;
  tmpdir t;
  tmpdir_make(&t);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/out.bin", t.path);

  assert_int_equal(wfp__write_file_atomic(path, "first", 5, 0644), WFP_OK);
  expect_file(path, "first", 0644);
  char *ls = listing(t.path);
  assert_string_equal(ls, "out.bin"); /* no temporary left behind */
  free(ls);

  /* replacing: new content and mode, still one file */
  assert_int_equal(wfp__write_file_atomic(path, "second, longer", 14, 0755), WFP_OK);
  expect_file(path, "second, longer", 0755);
  ls = listing(t.path);
  assert_string_equal(ls, "out.bin");
  free(ls);

  /* an empty file is a file too */
  assert_int_equal(wfp__write_file_atomic(path, "", 0, 0600), WFP_OK);
  expect_file(path, "", 0600);
  rm_tree(t.path);
}

static void write_atomic_failures_leave_nothing(void **state) {
  (void)state;
  tmpdir t;
  tmpdir_make(&t);
  char path[PATH_MAX + 32];

  /* into a directory that does not exist */
  snprintf(path, sizeof path, "%s/missing/out.bin", t.path);
  errno = 0;
  assert_int_equal(wfp__write_file_atomic(path, "x", 1, 0644), WFP_EIO);
  assert_int_equal(errno, ENOENT);
  char *ls = listing(t.path);
  assert_string_equal(ls, "");
  free(ls);

  /* a directory in the way */
  snprintf(path, sizeof path, "%s/target", t.path);
  assert_int_equal(mkdir(path, 0755), 0);
  errno = 0;
  assert_int_equal(wfp__write_file_atomic(path, "x", 1, 0644), WFP_EIO);
  assert_int_not_equal(errno, 0);
  ls = listing(t.path);
  assert_string_equal(ls, "target");
  free(ls);
  rm_tree(t.path);
}

/* The temporary exists and the write into it fails (the file size limit):
** the temporary goes, and the file it was to replace stays as it was. */
static void write_atomic_failed_write_cleans_up(void **state) {
  (void)state;
  tmpdir t;
  tmpdir_make(&t);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/out.bin", t.path);
  assert_int_equal(wfp__write_file_atomic(path, "old", 3, 0644), WFP_OK);

  static char big[4096];
  memset(big, 'b', sizeof big);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG, not a signal */
  struct rlimit saved, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small = saved;
  small.rlim_cur = 100;
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  errno = 0;
  int rc = wfp__write_file_atomic(path, big, sizeof big, 0644);
  int err = errno;
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);

  assert_int_equal(rc, WFP_EIO);
  assert_int_equal(err, EFBIG);
  char *ls = listing(t.path);
  assert_string_equal(ls, "out.bin");
  free(ls);
  expect_file(path, "old", 0644);
  rm_tree(t.path);
}

/* ---- the strict JSON scanner (json.c): one reader, two modes ---- */

/* The tree keeps decoded strings with their length (U+0000 included),
** numbers as their text, members in order with their decoded names. */
static void json_tree_shape(void **state) {
  (void)state;
  static const char t[] = " {\"a\\u0000b\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\\u0000\"],"
                          "\"n\":null,\"t\":true,\"f\":false,\"o\":{}} ";
  wfp__arena a;
  wfp__arena_init(&a);
  wfp__jv *v = NULL;
  size_t at = 99;
  const char *why = NULL;
  assert_int_equal(wfp__json_parse(t, sizeof t - 1, 8, &a, &v, &at, &why), 0);
  assert_int_equal(v->type, WFP__J_OBJ);
  assert_int_equal(v->count, 5);
  wfp__jv *arr = v->first;
  assert_int_equal(arr->keylen, 3);
  assert_memory_equal(arr->key, "a\0b", 3);
  assert_int_equal(arr->type, WFP__J_ARR);
  assert_int_equal(arr->count, 3);
  assert_int_equal(arr->first->type, WFP__J_NUM);
  assert_int_equal(arr->first->n, 1);
  assert_memory_equal(arr->first->next->s, "-2.5e3", 6);
  wfp__jv *str = arr->first->next->next;
  assert_int_equal(str->type, WFP__J_STR);
  assert_int_equal(str->n, 8);
  assert_memory_equal(str->s, "x\xc3\xa9\xf0\x9f\x98\x80\0", 8);
  int types[] = {WFP__J_NULL, WFP__J_TRUE, WFP__J_FALSE, WFP__J_OBJ};
  wfp__jv *m = arr->next;
  for (int i = 0; i < 4; i++, m = m->next)
    assert_int_equal(m->type, types[i]);
  assert_null(m);
  wfp__arena_free(&a);
}

/* Both modes refuse the same text at the same byte for the same reason. */
static void json_both_modes_refuse_alike(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t at;
    const char *why;
  } bad[] = {
      {"{\"a\":01}", 5, "a number with a leading zero"},
      {"[1,]", 3, "not a JSON value"},
      {"[\"\\ud800\"]", 2, "a \\u escape of a lone high surrogate"},
      {"\"\xff\"", 1, "invalid UTF-8 in a string"},
      {"[[[1]]]", 2, "nested too deep"},
      {"{\"a\" 1}", 5, "expected ':'"},
      {"1 2", 2, "text after the value"},
      {"", 0, "unexpected end of the text"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = strlen(bad[i].text), at1 = 0, at2 = 0;
    const char *w1 = NULL, *w2 = NULL;
    wfp__arena a;
    wfp__arena_init(&a);
    wfp__jv *v = NULL;
    assert_int_equal(wfp__json_check(bad[i].text, n, 2, &at1, &w1), WFP_ESYNTAX);
    assert_int_equal(wfp__json_parse(bad[i].text, n, 2, &a, &v, &at2, &w2), WFP_ESYNTAX);
    assert_int_equal(at1, bad[i].at);
    assert_int_equal(at2, bad[i].at);
    assert_string_equal(w1, bad[i].why);
    assert_string_equal(w2, bad[i].why);
    wfp__arena_free(&a);
  }
}

/* JSON the host reads with cJSON: text wfp__json_valid accepts is text
** cJSON reads (so a failure there can only be memory), and RFC 8259's
** refusals are refused. */
static void json_valid_vs_cjson(void **state) {
  (void)state;
  static const char *const good[] = {
      "0", "-0", "1.5e3", "-12.25E-2", "true", "false", "null", "\"\"",
      " [1, 2 , {\"a\" : [ ]}]\n", "{}", "[]", "\"\\u00e9\\ud83d\\ude00\\n\\/\"",
      "{\"a\":{\"b\":{\"c\":[null,true,\"x\"]}}}", "\"caf\xc3\xa9\"", "1e400"};
  static const char *const bad[] = {
      "", " ", "01", "1.", ".5", "+1", "1e", "-", "tru", "nul", "[1,]", "{\"a\":1,}",
      "[1 2]", "{\"a\" 1}", "{a:1}", "\"abc", "\"\\x\"", "\"\\u12\"",
      "\"\\udc00\"", "\"\\ud800\"", "\"\\ud800\\u0041\"", "[1] 2", "{\"a\":1}}",
      "[", "]", "{", "{\"a\"", "{\"a\":", "[1,", "\t[1]\f"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t n = strlen(good[i]);
    assert_true(wfp__json_valid(good[i], n, 1000));
    cJSON *j = cJSON_ParseWithLength(good[i], n);
    assert_non_null(j);
    cJSON_Delete(j);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(wfp__json_valid(bad[i], strlen(bad[i]), 1000));
  /* cJSON's nesting limit (1000) is the limit */
  static char deep[2 * 1001 + 1];
  for (int d = 1000; d <= 1001; d++) {
    memset(deep, '[', (size_t)d);
    memset(deep + d, ']', (size_t)d);
    cJSON *j = cJSON_ParseWithLength(deep, 2 * (size_t)d);
    assert_int_equal(wfp__json_valid(deep, 2 * (size_t)d, CJSON_NESTING_LIMIT), j != NULL);
    assert_int_equal(j != NULL, d == 1000);
    cJSON_Delete(j);
  }
  /* a lone surrogate escape is one cJSON refuses too */
  assert_null(cJSON_ParseWithLength("\"\\ud800\"", 8));
}

/* Outputs that appear together: staged ones are invisible until committed,
** and discarded ones leave nothing. */
static void staged_files_commit_or_vanish(void **state) {
  (void)state;
  tmpdir t;
  tmpdir_make(&t);
  char a[PATH_MAX + 16], b[PATH_MAX + 16];
  snprintf(a, sizeof a, "%s/a.out", t.path);
  snprintf(b, sizeof b, "%s/b.out", t.path);
  assert_int_equal(wfp__write_file_atomic(b, "old", 3, 0644), WFP_OK);
  wfp__staged sa, sb;
  assert_int_equal(wfp__file_stage(&sa, a, "new a", 5, 0644), WFP_OK);
  assert_int_equal(wfp__file_stage(&sb, b, "new b", 5, 0600), WFP_OK);
  expect_file(b, "old", 0644); /* nothing replaced yet */
  assert_int_equal(access(a, F_OK), -1);
  assert_int_equal(wfp__file_commit(&sa), WFP_OK);
  assert_int_equal(wfp__file_commit(&sb), WFP_OK);
  expect_file(a, "new a", 0644);
  expect_file(b, "new b", 0600);
  char *ls = listing(t.path);
  assert_string_equal(ls, "a.out,b.out");
  free(ls);
  /* discarded: no temporary, the old file as it was */
  assert_int_equal(wfp__file_stage(&sa, a, "newer", 5, 0644), WFP_OK);
  wfp__file_discard(&sa);
  expect_file(a, "new a", 0644);
  ls = listing(t.path);
  assert_string_equal(ls, "a.out,b.out");
  free(ls);
  rm_tree(t.path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sha256_nist_vectors),
      cmocka_unit_test(sha256_million_a_chunked),
      cmocka_unit_test(hmac_sha256_rfc4231_vectors),
      cmocka_unit_test(sha256_padding_boundaries),
      cmocka_unit_test(hex_lowercase),
      cmocka_unit_test(base64_rfc4648_vectors),
      cmocka_unit_test(base64_round_trip),
      cmocka_unit_test(base64_rejects),
      cmocka_unit_test(parse_i64_accepts),
      cmocka_unit_test(parse_i64_refuses),
      cmocka_unit_test(fmt_i64_values),
      cmocka_unit_test(utf8_valid_sequences),
      cmocka_unit_test(utf8_invalid_sequences),
      cmocka_unit_test(buf_add_jstr_escapes),
      cmocka_unit_test(write_atomic_writes_and_replaces),
      cmocka_unit_test(write_atomic_failures_leave_nothing),
      cmocka_unit_test(write_atomic_failed_write_cleans_up),
      cmocka_unit_test(json_tree_shape),
      cmocka_unit_test(json_both_modes_refuse_alike),
      cmocka_unit_test(json_valid_vs_cjson),
      cmocka_unit_test(staged_files_commit_or_vanish),
  };
  return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
