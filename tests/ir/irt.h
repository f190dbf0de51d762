/*
** irt.h: helpers shared by the front-end unit tests (tests/ir): loading
** programs written compactly in C, finding diagnostics, reading the IR back.
** It tests nothing itself; include it after <cmocka.h>.
*/
#ifndef WFP_TESTS_IRT_H
#define WFP_TESTS_IRT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "wfp/ir.h"

/*
** Test programs are C string literals with ' where JSON has ", so that they
** stay readable; irt_q turns them into JSON. No program here needs a real '.
** The macros below build the usual pieces; they only concatenate literals.
*/
#define PROG(funcs) "{'version':1,'functions':[" funcs "]}"
#define MAIN(body) PROG(FUNC("main", "", body))
#define FUNC(name, params, body) "{'name':'" name "','params':[" params "],'body':[" body "]}"
#define NESTED(name, parent, params, body)                                     \
  "{'name':'" name "','parent':'" parent "','params':[" params "],'body':[" body "]}"
#define I64(n) "{'op':'lit_i64','value':" #n "}"
#define STR(s) "{'op':'lit_str','value':'" s "'}"
#define VAR(x) "{'op':'var','name':'" x "'}"
#define INPUT "{'op':'input'}"
#define BIN(op, a, b) "{'op':'" op "','a':" a ",'b':" b "}"
#define UN(op, a) "{'op':'" op "','a':" a "}"
#define CALL(fn, args) "{'op':'call','fn':'" fn "','args':[" args "]}"
#define CALL_REF(f, args) "{'op':'call_ref','fn':" f ",'args':[" args "]}"
#define FNREF(name) "{'op':'fn','name':'" name "'}"
#define LAMBDA(params, body) "{'op':'lambda','params':[" params "],'body':[" body "]}"
#define LET(x, e) "{'op':'let','name':'" x "','expr':" e "}"
#define SET(x, e) "{'op':'set','name':'" x "','expr':" e "}"
#define EXPR(e) "{'op':'expr','expr':" e "}"
#define RET(e) "{'op':'return','expr':" e "}"
#define RET_VOID "{'op':'return'}"
#define IF(c, t) "{'op':'if','cond':" c ",'then':[" t "]}"
#define IF_ELSE(c, t, e) "{'op':'if','cond':" c ",'then':[" t "],'else':[" e "]}"
#define WHILE(c, b) "{'op':'while','cond':" c ",'body':[" b "]}"
#define BREAK "{'op':'break'}"
#define CONTINUE "{'op':'continue'}"
#define SLEEP "{'op':'sleep_ms','ms':" I64(1) "}"

/* Returns a malloc'd copy of s with every ' replaced by ". */
char *irt_q(const char *s);

/* Loads text (exact bytes, name "t.json"); never returns NULL. */
wfp_program *irt_load_raw(const char *text, size_t len, const wfp_ir_opts *opts,
                          int *rc);
/* Loads a ' program (irt_q). */
wfp_program *irt_load(const char *qtext, const wfp_ir_opts *opts, int *rc);

/* Prints every diagnostic of p (for failure messages). */
void irt_print_diags(const wfp_program *p);

/* The first diagnostic whose path is path (any path when NULL) and whose
** message contains msg (any message when NULL); NULL if none. */
const wfp_diag *irt_find_diag(const wfp_program *p, const char *path,
                              const char *msg);

/* Loads a ' program and fails the test unless it loads. Free the result. */
wfp_program *irt_ok_at(const char *qtext, const wfp_ir_opts *opts,
                       const char *file, int line);
#define LOAD_OK(q) irt_ok_at((q), NULL, __FILE__, __LINE__)

/* Loads a ' program and fails the test unless the load returns code and
** some diagnostic matches path and msg (as irt_find_diag). */
void irt_refused_at(const char *qtext, const wfp_ir_opts *opts, int code,
                    const char *path, const char *msg, const char *file,
                    int line);
#define REFUSED(q, path, msg)                                                  \
  irt_refused_at((q), NULL, WFP_EPROGRAM, (path), (msg), __FILE__, __LINE__)

/* The ID of the function named name in a loaded program, or NULL. */
const char *irt_id(const wfp_program *p, const char *name);

/* The canonical IR (compact) as a string (caller frees with wfp_free) and
** parsed (caller frees with cJSON_Delete). Fail the test on error. */
char *irt_ir_text(const wfp_program *p);
cJSON *irt_ir(const wfp_program *p);
/* The function object named name in a parsed IR, or NULL. */
cJSON *irt_ir_func(const cJSON *ir, const char *name);

/* Reads a whole file; fails the test when it cannot. Caller frees. */
char *irt_read(const char *path, size_t *len);

/*
** A check that fails today because of a front-end bug listed in the test
** report. While the bug is there the check passes and prints "KNOWN BUG";
** once the behaviour is right it fails, asking for a plain assertion, so
** a fix is noticed. WFP_TEST_STRICT=1 in the environment makes it a plain
** assertion now (to see the suite as it will be).
*/
void irt_known_bug(bool ok, const char *what, const char *file, int line);
#define KNOWN_BUG(ok, what) irt_known_bug((ok), (what), __FILE__, __LINE__)

#endif /* WFP_TESTS_IRT_H */
