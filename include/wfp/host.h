/*
** host.h: loading compiled wfp modules (.so) and running invocations on
** them: the stepper loop of wit/function.wit, the effects a host performs
** (context, messages, timers), limits, traces and checkpoints. It does not
** compile anything (aot.h does).
**
** Threads: a module, its environments and invocations are used by one
** thread at a time. Traps in compiled code come back as WFP_TRAP results;
** the process goes on.
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

/* ---- modules ---- */

/* A loaded .so. Opaque; wfp_module_load / wfp_module_free. */
typedef struct wfp_module wfp_module;

/*
** Loads the module at path. On failure writes one line into err (when
** errlen > 0) and returns
**   WFP_EIO         the file cannot be read
**   WFP_ENOTMODULE  it is not a shared object, or has no wfp descriptor
**   WFP_EABI        it was built for another ABI version
**   WFP_ENOMEM
** Two modules (of the same or of different programs) can be loaded side by
** side. *out is freed with wfp_module_free, after every invocation on it.
*/
WFP_API int wfp_module_load(const char *path, wfp_module **out, char *err,
                            size_t errlen);
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
/* 0 and *v when the key is set, WFP_EINVAL when it is not. */
WFP_API int wfp_env_ctx_get(const wfp_env *e, const char *key, int64_t *v);
/* The context in the order keys were first set (borrowed strings). */
WFP_API size_t wfp_env_ctx_count(const wfp_env *e);
WFP_API const char *wfp_env_ctx_key(const wfp_env *e, size_t i);
WFP_API int64_t wfp_env_ctx_value(const wfp_env *e, size_t i);
/* Messages in the order they were sent; the payload is JSON text. */
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
** invocation ended, or its effect was not performed yet) or when out of
** memory (WFP_ENOMEM: no instance could be made, or the step's result
** could not be kept, or, with a trace, the step ran but its trace line
** could not be made). A trap in the compiled code is a WFP_TRAP result.
*/
WFP_API int wfp_invocation_step(wfp_invocation *inv);

/* Performs the pending effect on the environment; the next step resumes
** with its result. 0, WFP_EINVAL (nothing pending), WFP_ENOMEM (with a
** trace, also when the effect was performed but its trace line could not
** be made). */
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

/*
** Steps and performs until the invocation ends, or until it took
** max_steps steps (0: no limit), which ends it with a trap. Returns
** WFP_DONE or WFP_TRAP, or a negative WFP_E*.
*/
WFP_API int wfp_invocation_run(wfp_invocation *inv, uint64_t max_steps);
/* The step limit of the invocations a db_query with each starts (each row
** runs as its own invocation, inside wfp_invocation_perform, with this
** limit and this invocation's fuel limits; 0: none). wfp_invocation_run
** sets it to its own limit. 0 or WFP_EINVAL. */
WFP_API int wfp_invocation_set_max_steps(wfp_invocation *inv, uint64_t max_steps);

/* The output JSON after WFP_DONE, the message after WFP_TRAP; else NULL.
** Borrowed, valid until the invocation is freed. */
WFP_API const char *wfp_invocation_output(const wfp_invocation *inv);
WFP_API const char *wfp_invocation_trap_message(const wfp_invocation *inv);
/* The instance the invocation runs on (its input's "self"), or 0. */
WFP_API uint64_t wfp_invocation_self(const wfp_invocation *inv);
/* Steps taken so far (a restored invocation counts those before it). */
WFP_API uint64_t wfp_invocation_steps(const wfp_invocation *inv);
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
** pending effect and its environment (context, messages, resource
** instances, steps, fuel used and the fuel limits) as bytes
** that wfp_invocation_restore turns back into the same invocation, in this
** process or another. *out is freed with wfp_free. 0, WFP_EINVAL (nothing
** pending), WFP_ENOMEM.
**
** wfp_invocation_restore replaces the context, messages and instances of e
** with the checkpoint's. Returns 0, or with one line in err:
**   WFP_ECORRUPT  truncated, tampered with, or not a checkpoint
**   WFP_EFOREIGN  written for another program (err names both hashes)
**   WFP_ENOMEM
*/
WFP_API int wfp_invocation_checkpoint(const wfp_invocation *inv, char **out,
                                      size_t *len);
WFP_API int wfp_invocation_restore(wfp_module *m, wfp_env *e, const char *data,
                                   size_t len, wfp_invocation **out, char *err,
                                   size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* WFP_HOST_H */
