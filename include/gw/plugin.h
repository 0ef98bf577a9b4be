#ifndef GW_PLUGIN_H
#define GW_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

struct gw_arena;
struct gw_err;
struct gw_yaml;
struct gw_snapshot;
struct gw_req;
struct gw_strv;
struct evbuffer;

/* What a phase callback tells the core (STYLE.md §4). */
enum gw_rc {
    GW_OK = 0,     /* go on: next plugin, then next phase */
    GW_DONE = 1,   /* a response was produced (e.g. 401); skip to the response phases */
    GW_AGAIN = 2,  /* suspended; the plugin calls gw_req_resume() exactly once later */
    GW_ERROR = -1, /* internal failure; the core replies 500 and logs with request context */
};

/* A compiled-in plugin: one constant descriptor, listed in plugins/registry.c. */
struct gw_plugin {
    const char *name; /* the `name` of a `plugins:` entry */
    int priority;     /* Kong's number: higher runs first */
    size_t ctx_size;  /* per-request scratch, zeroed; 0 = none */
    /* true when the plugin may be scoped to a consumer (Kong's schemas without no_consumer) */
    bool consumer_scoped;

    /* Config time, main thread: file I/O allowed, no network I/O. `node` is the plugin's
     * `config` map (NULL when absent: defaults apply). `path` names it in messages
     * (`services[0].plugins[1].config`). Allocate from `a` only; return NULL after adding at
     * least one error to `err`. */
    void *(*parse)(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                   struct gw_err *err);
    int (*init)(void *conf, struct gw_snapshot *snap, struct gw_err *err); /* optional */
    void (*destroy)(void *conf);                                           /* optional */
    /* optional: the query arguments that carry credentials under `conf` (key-auth's key
     * names): the access log redacts their values */
    const struct gw_strv *(*query_secrets)(const void *conf);
    /* optional: true when this configuration reads or rewrites the request body; the body is
     * then read whole (up to gateway.limits.plugin_body_buffer) before the access phase */
    bool (*wants_body)(const void *conf);

    /* Request time, on the worker's loop thread; never block. Any may be NULL. access runs
     * after routing; header_filter on every response of the route before its head is sent
     * (the upstream's or gatehouse's own); body_filter once with the whole upstream body
     * (`last` true) when a plugin asked for it in header_filter (gw_resp_read_body), and may
     * rewrite `chunk`; log when the request ends. rewrite is reserved: this build does not run
     * it, and refuses to load a plugin that has one. */
    enum gw_rc (*rewrite)(struct gw_req *req, const void *conf, void *ctx);
    enum gw_rc (*access)(struct gw_req *req, const void *conf, void *ctx);
    enum gw_rc (*header_filter)(struct gw_req *req, const void *conf, void *ctx);
    enum gw_rc (*body_filter)(struct gw_req *req, const void *conf, void *ctx,
                              struct evbuffer *chunk, bool last);
    void (*log)(struct gw_req *req, const void *conf, void *ctx);
};

/* The registry: NULL-terminated, in no particular order (the core sorts by priority). */
extern const struct gw_plugin *const gw_plugins[];

/* Looks a plugin up by name; NULL when it is not compiled in. */
const struct gw_plugin *gw_plugin_find(const char *name, size_t len);

#endif
