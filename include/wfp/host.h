/*
** host.h: loading compiled wfp modules (.so) and running invocations on
** them: the stepper protocol of wit/function.wit, the effects a host
** performs (context, messages, timers, queries), limits, traces and
** checkpoints. Running many invocations at once, with handlers of one's
** own: loop.h. It does not compile anything (aot.h does).
**
** Threads: a module may be used by several threads at once (its instances
** come from a pool, one thread at a time each). An environment and its
** invocations are used by one thread at a time; in a loop, by the loop's
** thread. Traps in compiled code come back as WFP_TRAP results; the
** process goes on.
*/
#ifndef WFP_HOST_H
#define WFP_HOST_H

#include "wfp/abi.h"
#include "wfp/wfp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a step, or an invocation, ended. Pending is a status, not an error. */
typedef enum wfp_status { WFP_DONE = 0, WFP_PENDING = 1, WFP_TRAP = 2 } wfp_status;

/*
** The diagnostic of a function that fails before any object exists to own
** one (loading a module, restoring a checkpoint): a wfp_diag and the room
** for its strings. Caller-allocated; the function fills d, whose path and
** msg point into this struct (valid while it lives and is not reused; a
** copy of the struct still points into the original) and whose file is
** borrowed from the caller's argument, or NULL. Format it with
** wfp_diag_format(&x.d, ...).
*/
typedef struct wfp_host_diag {
  wfp_diag d;
  char place[128];
  char text[640];
} wfp_host_diag;

/* ---- modules ---- */

/* A loaded .so. Opaque; wfp_module_load / wfp_module_free. */
typedef struct wfp_module wfp_module;

/*
** Loads the module at path. The file is checked before it is mapped (an
** ELF shared object of this machine whose headers, segments and sections
** lie within the file: a truncated file is refused, not a crash), then
** its descriptor: ABI version, size, and the wasm2c runtime layout it was
** compiled for (WFP_RT_LAYOUT in abi.h). Returns 0, or with diag (may be
** NULL) filled: file the path, path the place in the file ("ELF header",
** "program header 2", "descriptor", or ""), msg what is wrong:
**   WFP_EIO         the file cannot be read
**   WFP_ENOTMODULE  it is not an ELF shared object of this machine, is
**                   truncated, or has no (complete) wfp descriptor
**   WFP_EABI        it was built for another ABI version, or for another
**                   wasm2c runtime layout (other WASM_RT_* options)
**   WFP_ENOMEM, WFP_EINVAL
** Two modules (of the same or of different programs) can be loaded side by
** side. *out is freed with wfp_module_free, after every invocation on it.
*/
WFP_API int wfp_module_load(const char *path, wfp_module **out, wfp_host_diag *diag);
WFP_API void wfp_module_free(wfp_module *m);

/* The descriptor (borrowed; lives as long as the module). */
WFP_API const wfp_module_desc *wfp_module_descriptor_of(const wfp_module *m);
/* The program hash, 16 hex digits (borrowed). */
WFP_API const char *wfp_module_hash(const wfp_module *m);
/* The function an input without "fn" runs, or NULL (borrowed). */
WFP_API const char *wfp_module_entry(const wfp_module *m);
/* The function named name, or whose stable id is name; -1 when none. */
WFP_API int wfp_module_find(const wfp_module *m, const char *name);

/* ---- environments: what effects act on ---- */

/* Context values, messages sent. Opaque; wfp_env_new / wfp_env_free. */
typedef struct wfp_env wfp_env;

/* NULL only when out of memory. */
WFP_API wfp_env *wfp_env_new(void);
WFP_API void wfp_env_free(wfp_env *e);
/* Sets a context key (the key is copied). 0 or WFP_ENOMEM. */
WFP_API int wfp_env_ctx_set(wfp_env *e, const char *key, int64_t v);
/* The same for a key of len bytes (copied whole; no NUL needed). 0,
** WFP_EINVAL (the key is not valid UTF-8), WFP_ENOMEM. */
WFP_API int wfp_env_ctx_setn(wfp_env *e, const char *key, size_t len, int64_t v);
/* 0 and *v when the key is set, WFP_EINVAL when it is not. */
WFP_API int wfp_env_ctx_get(const wfp_env *e, const char *key, int64_t *v);
/* The context in the order keys were first set (borrowed strings). */
WFP_API size_t wfp_env_ctx_count(const wfp_env *e);
WFP_API const char *wfp_env_ctx_key(const wfp_env *e, size_t i);
WFP_API int64_t wfp_env_ctx_value(const wfp_env *e, size_t i);
/* Messages of the environment's invocations, in the order the default sink
** took them (loop.h: a fan-out's rows' messages come in row order when it
** ends); the payload is JSON text. */
WFP_API size_t wfp_env_message_count(const wfp_env *e);
WFP_API const char *wfp_env_message_topic(const wfp_env *e, size_t i);
WFP_API const char *wfp_env_message_payload(const wfp_env *e, size_t i);
/* The SQLite database db_query runs on: the file at path, created when
** missing; NULL or ":memory:" is a private in-memory database, which is
** also what the first db_query opens when none was. The environment owns
** the connection (closed by wfp_env_free or the next open). SQLite is
** loaded (dlopen of libsqlite3.so.0, or of what WFP_SQLITE names) at the
** first open in the process. 0, or an error with a message in err (errlen
** bytes, may be 0): WFP_EIO when SQLite or the file cannot be opened. */
WFP_API int wfp_env_open_db(wfp_env *e, const char *path, char *err, size_t errlen);

/*
** Limits of the effects a host performs (docs/cli.md, "Effects"):
**   WFP_DB_QUERY_FUEL_MAX  the fuel one db_query may use: a unit per 1,000
**                          SQLite virtual-machine instructions, counted in
**                          the invocation's fuel; a query stops sooner when
**                          the invocation's own limit is reached
**   WFP_DB_RESULT_MAX      the bytes of a query's answer (its rows as JSON,
**                          or the results of a fan-out), and the longest
**                          string or blob the database holds
**   WFP_SLEEP_MAX_MS       the longest sleep_ms a host performs (a day)
** Past one of them the effect fails and the invocation traps, naming it.
*/
#define WFP_DB_QUERY_FUEL_MAX 10000
#define WFP_DB_RESULT_MAX (16 * 1024 * 1024)
#define WFP_SLEEP_MAX_MS 86400000

/*
** Resource instances: objects of a resource of a module, whose properties
** methods read and write (self_get, self_set). An invocation runs on the
** instance its input names ({"self": handle}).
**
** wfp_env_instance_new creates an instance of module m's resource with
** every property at its zero value (0, "", null) and gives its handle
** (1, 2, ... in creation order). 0, WFP_EINVAL (no such resource),
** WFP_ENOMEM.
*/
WFP_API int wfp_env_instance_new(wfp_env *e, const wfp_module *m,
                                 const char *resource, uint64_t *handle);
/* The same with a given handle (not in use; at most 2^53), for a host
** that keeps instances elsewhere and builds the environment again (a
** durable store); later new instances get larger handles. 0, WFP_EINVAL
** (no such resource, a handle in use or out of range), WFP_ENOMEM. */
WFP_API int wfp_env_instance_restore(wfp_env *e, const wfp_module *m,
                                     const char *resource, uint64_t handle);
/* Sets a property from JSON text of its type (i64: an integer, str: a
** string, json: any value); the text is copied. 0, WFP_EINVAL (no such
** instance or property, or a value of another type), WFP_ENOMEM. */
WFP_API int wfp_env_instance_set(wfp_env *e, uint64_t handle, const char *prop,
                                 const char *json);
/* A property's value as compact JSON text, or NULL. Borrowed, valid until
** the property is set again or the environment is freed. */
WFP_API const char *wfp_env_instance_get(const wfp_env *e, uint64_t handle,
                                         const char *prop);
/* The instances, in creation order, and their properties (borrowed). */
WFP_API size_t wfp_env_instance_count(const wfp_env *e);
WFP_API uint64_t wfp_env_instance_handle(const wfp_env *e, size_t i);
WFP_API const char *wfp_env_instance_resource(const wfp_env *e, uint64_t handle);
WFP_API size_t wfp_env_instance_prop_count(const wfp_env *e, uint64_t handle);
WFP_API const char *wfp_env_instance_prop_name(const wfp_env *e, uint64_t handle,
                                               size_t i);
WFP_API const char *wfp_env_instance_prop_value(const wfp_env *e, uint64_t handle,
                                                size_t i);

/* ---- inputs: what an invocation runs (CONTRACT section 3) ---- */

/*
** An invocation's input under construction, {"fn": ..., "args": ...,
** "self": ...}, checked against a module: the command line's --input,
** --fn, --arg and --new build it, and so can a batch line or a request to
** a service. Opaque; wfp_input_new / wfp_input_free.
**
** Setters copy what they are given and check its form only; the checks
** against the module, the conversions and the creation of an instance
** happen in wfp_input_finish. A call that fails returns its code and keeps
** a diagnostic (wfp_input_diag) until the next call on the builder:
**   WFP_EUSAGE  refused: not strict JSON (RFC 8259: UTF-8, one value, no
**               trailing text, numbers without leading zeros), nested more
**               than WFP_JSON_MAX_DEPTH deep, a value that does not convert
**               to its parameter's or property's type, a function,
**               parameter, resource or property the module does not have,
**               a method without its instance
**   WFP_EINVAL  misuse (NULL where a value is needed)
**   WFP_ENOMEM
*/
typedef struct wfp_input wfp_input;

/* A builder of inputs for module m (borrowed: m must outlive it). NULL
** when out of memory or m is NULL. */
WFP_API wfp_input *wfp_input_new(const wfp_module *m);
/* Frees the builder and its diagnostic. NULL is a no-op. */
WFP_API void wfp_input_free(wfp_input *in);

/* The whole input, JSON text of an object (len bytes, copied). The other
** setters replace its "fn", "args" and "self"; alone, it is the input as
** given, for the program to read. */
WFP_API int wfp_input_set_json(wfp_input *in, const char *json, size_t len);
/* "fn": a function's name or stable id (NUL-terminated, copied). */
WFP_API int wfp_input_set_fn(wfp_input *in, const char *fn);
/* "args": JSON text of an object of parameter names to values, or of an
** array of values in parameter order (len bytes, copied). */
WFP_API int wfp_input_set_args(wfp_input *in, const char *json, size_t len);
/* args.NAME from text (both copied; lengths in bytes, no NUL needed),
** converted to the parameter's type when the input is finished: i64 a
** decimal integer, str the text itself (valid UTF-8), json JSON text, fn a
** function value as an output shows it ({"fn": ID, "args": [...]}). Adds
** to an "args" object; a later NAME replaces an earlier one. */
WFP_API int wfp_input_add_arg(wfp_input *in, const char *name, size_t name_len,
                              const char *text, size_t text_len);
/* An instance to create and run on: spec is "RESOURCE[:PROP=VALUE,...]"
** (len bytes, copied), values converted like wfp_input_add_arg's (a value
** cannot hold ','), other properties at their zero values. Sets "self". */
WFP_API int wfp_input_set_new(wfp_input *in, const char *spec, size_t len);
/* "self": the handle of an instance that exists in the environment. */
WFP_API int wfp_input_set_self(wfp_input *in, uint64_t handle);

/*
** Checks and writes the input. The function (set, the input's "fn", or the
** module's entry) must exist; added arguments must be its parameters and
** convert; a method needs an instance, and an instance a method of its
** resource. Then the instance of wfp_input_set_new is created in e (e may
** be NULL when there is none). *out gets the input, NUL-terminated JSON
** text to free with wfp_free, *len (may be NULL) its length. Returns 0,
** WFP_EUSAGE, WFP_EINVAL or WFP_ENOMEM, with the diagnostic.
*/
WFP_API int wfp_input_finish(wfp_input *in, wfp_env *e, char **out, size_t *len);

/* Creates the instance of wfp_input_set_new in e, without running
** anything on it (a batch whose lines name it: {"self": handle}); *handle
** gets its handle. 0, WFP_EUSAGE (no such resource or property, a value
** that does not convert), WFP_EINVAL (no wfp_input_set_new), WFP_ENOMEM,
** with the diagnostic. */
WFP_API int wfp_input_new_instance(wfp_input *in, wfp_env *e, uint64_t *handle);

/* The diagnostic of the last failed call, or NULL after a success:
** file "input", path the JSON path of the fault in the input ("$.args.n",
** or ""), msg one line. Borrowed: valid until the next call on in. */
WFP_API const wfp_diag *wfp_input_diag(const wfp_input *in);

/* ---- invocations ---- */

/* One invocation of a function. Opaque; wfp_invocation_new / _free. */
typedef struct wfp_invocation wfp_invocation;

/*
** Starts an invocation of module m in environment e (both borrowed: they
** must outlive it) with input JSON text (copied; {"fn": ..., "args": ...,
** "self": handle}, CONTRACT section 3). Nothing runs yet. 0, WFP_EINVAL
** (also: a "self" that is not a handle), WFP_ENOMEM.
*/
WFP_API int wfp_invocation_new(wfp_module *m, wfp_env *e, const char *input,
                               size_t len, wfp_invocation **out);
WFP_API void wfp_invocation_free(wfp_invocation *inv);

/*
** Runs one step. Returns WFP_DONE, WFP_TRAP, or WFP_PENDING: the step
** suspended on an effect, which stays pending (not yet performed) until
** wfp_invocation_perform. Negative WFP_E* on misuse (WFP_EINVAL: the
** invocation ended, its effect was not performed yet, or it is in a loop)
** or when out of memory (WFP_ENOMEM: no instance could be made, or the
** step's result could not be kept, or, with a trace, the step ran but its
** trace line could not be made). A spent fuel or time limit ends it with a
** trap before the step. A trap in the compiled code is a WFP_TRAP result.
*/
WFP_API int wfp_invocation_step(wfp_invocation *inv);

/* Performs the pending effect with the built-in handlers (loop.h) on the
** environment, waiting for it (a sleep, a query, a fan-out's rows, which
** run concurrently); the next step resumes with its result. When the
** effect spent a limit (a fan-out's rows), the invocation ends with a trap
** here. 0, WFP_EINVAL (nothing pending, or in a loop), WFP_ENOMEM (also
** when the effect was performed but its message could not be kept, or,
** with a trace, its trace line could not be made). */
WFP_API int wfp_invocation_perform(wfp_invocation *inv);

/*
** Fuel: loops and calls consume it (one unit per loop iteration and per
** call of a function that calls). A step gets at most per_step units
** (0: 1,000,000) and returns pending(yield) when they run out, so that one
** invocation never holds the host for long; max_total (0: no limit) ends
** the invocation with a trap once it has used that much. 0, WFP_EINVAL.
*/
WFP_API int wfp_invocation_set_fuel(wfp_invocation *inv, uint64_t max_total,
                                    uint64_t per_step);
/* Fuel used so far (a restored invocation counts what it used before). */
WFP_API uint64_t wfp_invocation_fuel_used(const wfp_invocation *inv);

/* The fuel limits in force (wfp_invocation_set_fuel, or a restored
** checkpoint's): max_total and per_step as set, 0 meaning none and the
** default. Either pointer may be NULL. */
WFP_API void wfp_invocation_fuel_limits(const wfp_invocation *inv, uint64_t *max_total,
                                        uint64_t *per_step);

/*
** Other limits, each a trap when reached ("time limit reached (N ms)",
** "memory limit reached (N bytes)"), and carried by checkpoints:
**   time    wall-clock milliseconds from the invocation's first start in a
**           loop (or first step); a sleep ends early for it, other effects
**           finish first. A restored invocation keeps its start time.
**   memory  bytes of linear memory the instance of any of its steps may
**           grow to (its rows' too): a grow past it fails, and a step that
**           then traps traps with this message.
** 0: none. 0, or WFP_EINVAL.
*/
WFP_API int wfp_invocation_set_time_limit(wfp_invocation *inv, uint64_t ms);
WFP_API uint64_t wfp_invocation_time_limit(const wfp_invocation *inv);
WFP_API int wfp_invocation_set_memory_limit(wfp_invocation *inv, uint64_t bytes);
WFP_API uint64_t wfp_invocation_memory_limit(const wfp_invocation *inv);

/*
** Steps and performs until the invocation ends, or until it took
** max_steps steps, which ends it with a trap. max_steps 0 keeps the
** invocation's own limit (wfp_invocation_set_max_steps, or a restored
** checkpoint's; none for a new invocation); any other value replaces it.
** It runs the invocation on the calling thread: as a loop with one worker
** would (loop.h), and in one of its own once an effect needs it (a sleep,
** a query). Returns WFP_DONE or WFP_TRAP, or a negative WFP_E*.
*/
WFP_API int wfp_invocation_run(wfp_invocation *inv, uint64_t max_steps);
/* The step limit: wfp_invocation_run, or a loop, ends the invocation with
** a trap once it took this many steps (counting those before a restore;
** 0: none). The rows of its fan-outs (db_query with each: each row runs
** as an invocation of its own, concurrently) count toward its step and
** fuel limits, and a limit they spend traps this invocation. A checkpoint
** carries it. 0 or WFP_EINVAL. */
WFP_API int wfp_invocation_set_max_steps(wfp_invocation *inv, uint64_t max_steps);
/* The step limit in force (0: none). */
WFP_API uint64_t wfp_invocation_max_steps(const wfp_invocation *inv);

/* The output JSON after WFP_DONE, the message after WFP_TRAP; else NULL.
** Borrowed, valid until the invocation is freed. */
WFP_API const char *wfp_invocation_output(const wfp_invocation *inv);
WFP_API const char *wfp_invocation_trap_message(const wfp_invocation *inv);
/* The instance the invocation runs on (its input's "self"), or 0. */
WFP_API uint64_t wfp_invocation_self(const wfp_invocation *inv);
/* Steps taken so far (a restored invocation counts those before it). */
WFP_API uint64_t wfp_invocation_steps(const wfp_invocation *inv);
/* The messages the invocation sent (its rows' included, in row order),
** as the default sink of a loop collects them (loop.h); the payload is JSON
** text. Borrowed, valid until the invocation is freed. */
WFP_API size_t wfp_invocation_message_count(const wfp_invocation *inv);
WFP_API const char *wfp_invocation_message_topic(const wfp_invocation *inv, size_t i);
WFP_API const char *wfp_invocation_message_payload(const wfp_invocation *inv, size_t i);
/*
** The report of an invocation (wfp-host --report): one JSON object,
** {"status", "output", "trap", "steps", "fuel", "ctx", "messages",
** "properties"}, with status "done", "trap" or "pending", the context of e
** (the invocation's environment), its messages, and the properties of the
** instance it runs on (null when none). *out is NUL-terminated text
** without a newline, freed with wfp_free; *len (may be NULL) its length.
** 0, WFP_EINVAL, WFP_ENOMEM.
*/
WFP_API int wfp_invocation_report(const wfp_invocation *inv, const wfp_env *e,
                                  char **out, size_t *len);
/* The pending effect as one JSON object ({"effect": "ctx-get-i64", "key":
** "n"}), or NULL when none is pending. Borrowed, valid until the next call. */
WFP_API const char *wfp_invocation_pending_json(wfp_invocation *inv);

/*
** Trace: fn is called with one JSON line (no newline) per step and per
** effect performed. fn may be NULL to stop tracing.
*/
typedef void (*wfp_trace_fn)(void *ud, const char *line);
WFP_API void wfp_invocation_set_trace(wfp_invocation *inv, wfp_trace_fn fn,
                                      void *ud);

/*
** Checkpoints. wfp_invocation_checkpoint writes a pending invocation, its
** pending effect (a sleep with its wake time) and its environment
** (context, messages, resource instances, steps, fuel used, and every
** limit: steps, fuel, fuel per step, time with its start, memory) as bytes that wfp_invocation_restore turns back into the same
** invocation, in this process or another (format: docs/state.md). With a
** checkpoint key set on the environment (wfp_env_set_checkpoint_key) the
** bytes carry an HMAC-SHA-256 under it; else a SHA-256 checksum, which
** catches damage but not a forger. *out is freed with wfp_free. 0,
** WFP_EINVAL (nothing pending), WFP_ENOMEM.
*/
WFP_API int wfp_invocation_checkpoint(const wfp_invocation *inv, char **out,
                                      size_t *len);

/*
** Rebuilds the invocation a checkpoint holds, on module m, in environment
** e. Every field is checked first: the checksum, or with a key set on e the
** MAC (a checkpoint without one is refused, and a signed one needs the
** key); then the program hash, and each field against the module: the
** state bytes' header and checksum, the function the input names, the
** pending effect and its operands, resource instances and their
** properties, message payloads (JSON nested at most WFP_JSON_MAX_DEPTH
** deep), counters and limits in range. Only when all hold does the
** restore replace the context, messages and instances of e, all at once:
** a refused checkpoint leaves e as it was. The database file a checkpoint
** names is opened, when e has none, only if it exists (never created).
** Returns 0 and *out (free with wfp_invocation_free), or with diag (may be
** NULL) filled: path the JSON path of the faulty field ("$.effect.s1",
** "header"), msg what is wrong, file NULL:
**   WFP_ECORRUPT  truncated, tampered with, not a checkpoint, a field that
**                 does not fit the module, or a MAC that does not verify
**   WFP_EFOREIGN  written for another program (msg names both hashes)
**   WFP_EIO       the database file it names cannot be opened
**   WFP_ENOMEM, WFP_EINVAL
*/
WFP_API int wfp_invocation_restore(wfp_module *m, wfp_env *e, const char *data,
                                   size_t len, wfp_invocation **out,
                                   wfp_host_diag *diag);

/*
** The key of the environment's checkpoints: with one set,
** wfp_invocation_checkpoint signs what it writes (HMAC-SHA-256) and
** wfp_invocation_restore accepts only checkpoints whose MAC verifies under
** it, for checkpoints kept where others can write. key (copied) is at
** least 16 bytes (32 random bytes are right for HMAC-SHA-256); NULL
** clears it. 0, WFP_EINVAL (too short), WFP_ENOMEM.
*/
WFP_API int wfp_env_set_checkpoint_key(wfp_env *e, const void *key, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* WFP_HOST_H */
