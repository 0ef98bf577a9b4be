#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/str.h"

struct gw_arena;
struct gw_err;
struct gw_route;

/* Route matching with the semantics of Kong 3's `traditional_compatible` router
 * (docs/routing.md). The router is compiled once per snapshot from the snapshot's routes and
 * is immutable afterwards; any number of threads may match concurrently. Matching never
 * allocates (regex match data is per thread, created on a thread's first regex match). */
struct gw_router;

#define GW_ROUTER_MAX_CAPTURES 16

/* One request header as the router sees it. */
struct gw_router_header {
    struct gw_str name; /* any case */
    struct gw_str value;
};

struct gw_router_req {
    struct gw_str method;                   /* e.g. "GET" */
    struct gw_str host;                     /* Host header, may carry ":port"; empty if none */
    struct gw_str path;                     /* normalised (gw_path_normalize), no query */
    struct gw_str sni;                      /* TLS server name; empty on plain connections */
    const struct gw_router_header *headers; /* request headers, in order */
    size_t nheaders;
    uint16_t port; /* local port the request arrived on (hosts with ":port") */
    bool tls;      /* the request's scheme is https */
};

struct gw_router_match {
    const struct gw_route *route;
    /* false when the route's protocols exclude the request's scheme: Kong still selects the
     * route and answers 426 or redirects (https_redirect_status_code). */
    bool protocol_ok;
    bool regex;            /* matched by a regex path */
    struct gw_str matched; /* the part of req->path matched by the path rule (empty when
                              the route has no paths) */
    size_t ncaptures;      /* regex: numbered captures, [0] = whole match */
    struct gw_str captures[GW_ROUTER_MAX_CAPTURES]; /* .p == NULL for unset groups */
    /* names of numbered groups, NULL when unnamed ([0] is always NULL) */
    const char *const *capture_names;
};

/* Builds the router over routes[0..n) (the snapshot's route array; `routes[i].index == i`).
 * Regexes are compiled with PCRE2 JIT; an invalid regex is reported in `err` with the
 * route's position. Allocates from `a` and registers cleanups on it. Returns NULL on error. */
struct gw_router *gw_router_compile(const struct gw_route *routes, size_t n, struct gw_arena *a,
                                    struct gw_err *err);

/* Finds the highest-priority route for `req`. Returns true and fills `m` on a match,
 * false when no route matches (Kong: 404 "no Route matched with those values"). */
/* The calling thread's PCRE2 match data (a pcre2_match_data_8 * with room for
 * GW_ROUTER_MAX_CAPTURES groups), created on first use and freed when the thread exits: for
 * other regex users of the request path (cors). */
void *gw_regex_match_data(void);

bool gw_router_match(const struct gw_router *r, const struct gw_router_req *req,
                     struct gw_router_match *m);

/* Validates one route path as Kong does when loading (`~/regex` must compile; a prefix path
 * must start with `/` and be normalised). Returns NULL when valid, else a message allocated
 * from `a` (e.g. "invalid regex: '/(a' (PCRE returned: missing closing parenthesis)"). */
const char *gw_router_check_path(struct gw_str path, struct gw_arena *a);

/* Normalises a request path (no query string) as Kong does before routing: percent-encoded
 * triplets upper-cased, escapes of unreserved characters decoded, dot-segments removed,
 * duplicate slashes merged. `out` must hold at least `len` bytes (the result never grows).
 * Returns the new length, or -1 for an invalid percent-escape or a path not starting with
 * `/` (the caller answers 400). */
long gw_path_normalize(const char *in, size_t len, char *out);

/* Computes the path sent upstream for a matched request, per the route's `strip_path` and
 * `path_handling` and the service's `path` (Kong's rules, docs/routing.md). `req_path` is the
 * normalised request path. Writes at most `cap` bytes to `out`; returns the length needed
 * (which may exceed `cap`: then the caller retries with a larger buffer). */
size_t gw_router_upstream_path(const struct gw_router_match *m, struct gw_str req_path, char *out,
                               size_t cap);

/* Number of (sub)routes after splitting routes with mixed paths (for reports). */
size_t gw_router_size(const struct gw_router *r);

#endif
