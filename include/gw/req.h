#ifndef GW_REQ_H
#define GW_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "gw/plugin.h"
#include "gw/str.h"

/* What a plugin may read and change of the request it runs for (Kong's PDK: kong.request,
 * kong.service.request, kong.client, kong.response.exit). Every function runs on the
 * request's worker thread, inside a phase callback; none blocks. Strings returned are views
 * valid until the request ends unless said otherwise. */

struct gw_arena;
struct gw_consumer;
struct gw_snapshot;

/* ---- the client's request ---- */

/* The method ("GET"), and the raw query string without '?' (.p == NULL when the target has
 * none). */
struct gw_str gw_req_method(const struct gw_req *r);
struct gw_str gw_req_query(const struct gw_req *r);

/* The first value of header `name`, compared as Kong's kong.request.get_header does:
 * case-insensitive, `_` and `-` alike. .p == NULL when absent. Headers set by earlier plugins
 * are seen; removed ones are not. */
struct gw_str gw_req_header(const struct gw_req *r, const char *name);
/* How many headers are named `name` (same comparison). */
size_t gw_req_header_count(const struct gw_req *r, const char *name);

/* The query argument `name` (exact, case-sensitive, as Kong's): returns how many times it
 * occurs; *value (may be NULL) receives the first occurrence, percent-decoded into the
 * request's pool: "" for `?name=`, .p == NULL for `?name` without '='. */
size_t gw_req_query_arg(struct gw_req *r, const char *name, struct gw_str *value);

/* A capture of the route's regex path: by number (0 = the whole match) or by name (the other
 * argument NULL / -1). .p == NULL when there is none. */
struct gw_str gw_req_uri_capture(const struct gw_req *r, int index, const char *name);

/* The request's pool: freed when the request ends. */
struct gw_arena *gw_req_pool(struct gw_req *r);
const struct gw_snapshot *gw_req_snapshot(const struct gw_req *r);
/* The request id (X-Request-Id), for log lines. */
struct gw_str gw_req_id(const struct gw_req *r);

/* The request body, when a plugin of the route reads it (gw_plugin.wants_body): read whole
 * before the access phase, contiguous, "" when the request has none. .p == NULL when the
 * body is not read (it streams to the upstream). Valid until gw_req_set_body(). */
struct gw_str gw_req_body(struct gw_req *r);

/* ---- the request sent upstream ---- */

/* Replaces the body sent upstream (copied); Content-Length follows. Only where the body is
 * read (gw_req_body() not NULL) or the request has none. */
void gw_req_set_body(struct gw_req *r, struct gw_str body);

/* Sets header `name` to `value` (copied), replacing every header of that name (`_`/`-` alike). */
void gw_req_set_header(struct gw_req *r, const char *name, struct gw_str value);
/* Adds one more `name: value` line (copied), keeping those there. */
void gw_req_add_header(struct gw_req *r, const char *name, struct gw_str value);
/* Removes every header `name` (`_`/`-` alike). */
void gw_req_clear_header(struct gw_req *r, const char *name);
/* Every value of header `name` (`_`/`-` alike), in order: returns how many, fills at most
 * `max` of them into `out`. */
size_t gw_req_header_values(const struct gw_req *r, const char *name, struct gw_str *out,
                            size_t max);
/* The method sent upstream ("POST"; copied). */
void gw_req_set_method(struct gw_req *r, const char *method);
/* The path sent upstream instead of the one the route computes (copied; must start with '/'). */
void gw_req_set_path(struct gw_req *r, struct gw_str path);
/* Replaces the query string sent upstream (copied; empty: no '?'). */
void gw_req_set_query(struct gw_req *r, struct gw_str query);

/* ---- authentication (kong.client.authenticate) ---- */

/* The consumer identified so far, or NULL. */
const struct gw_consumer *gw_req_consumer(const struct gw_req *r);
/* True once a credential was accepted (an anonymous consumer does not count), which makes
 * auth plugins configured with `anonymous` stand aside (Kong's OR). */
bool gw_req_authenticated(const struct gw_req *r);
/* Records who the request is from: the consumer, the credential's id (NULL for none) and
 * whether it is the anonymous fallback. The upstream request then carries X-Consumer-ID,
 * X-Consumer-Custom-ID, X-Consumer-Username, X-Credential-Identifier and
 * X-Anonymous-Consumer accordingly; consumer-scoped plugins that run later use it. */
void gw_req_authenticate(struct gw_req *r, const struct gw_consumer *c, const char *credential_id,
                         bool anonymous);

/* ---- the response (kong.response) ---- */

/* Response headers set in access apply to the answer a plugin gives (gw_req_exit*); set in
 * header_filter, to the response about to be sent (the upstream's or gatehouse's). Framing
 * headers (Content-Length, Transfer-Encoding, Connection) are the core's and are ignored. */
/* The first value of response header `name` (case-insensitive), or .p == NULL. */
struct gw_str gw_resp_header(const struct gw_req *r, const char *name);
/* Replaces every header `name` with one `name: value` (copied). */
void gw_resp_set_header(struct gw_req *r, const char *name, struct gw_str value);
/* Adds one more `name: value` line, keeping those there (Vary). */
void gw_resp_add_header(struct gw_req *r, const char *name, struct gw_str value);
/* Removes every header `name`, the upstream's included. */
void gw_resp_clear_header(struct gw_req *r, const char *name);
/* From header_filter: the response body is collected whole (up to
 * gateway.limits.plugin_body_buffer) and handed once to the body_filter callbacks when it
 * ends, instead of streaming; the response is then sent chunked (to an HTTP/1.0 client, ended
 * by the close). A body over the limit streams on unchanged, with a warning in the log. */
void gw_resp_read_body(struct gw_req *r);

/* ---- answering (kong.response.error, kong.response.exit) ---- */

/* Answers the client with Kong's error body for `status` (`message` NULL: the status' default
 * message) and `headers` (NULL, or "Name: value\r\n" lines). The access chain stops; every
 * selected plugin's log callback still runs. Returns GW_DONE, for `return gw_req_exit(...)`. */
enum gw_rc gw_req_exit(struct gw_req *r, int status, const char *message, const char *headers);
/* Answers `status` with `json` as the body (application/json, copied) and `headers` (NULL, or
 * "Name: value\r\n" lines): Kong's kong.response.exit with a table. Returns GW_DONE. */
enum gw_rc gw_req_exit_json(struct gw_req *r, int status, const char *json, const char *headers);
/* Answers `status` with an empty body and the response headers set so far (a preflight's 200).
 * Returns GW_DONE. */
enum gw_rc gw_req_exit_empty(struct gw_req *r, int status);

/* Resumes the access phase after a callback returned GW_AGAIN: `rc` is what the callback
 * would have returned (GW_OK: the next plugin runs). Exactly once per GW_AGAIN. */
void gw_req_resume(struct gw_req *r, enum gw_rc rc);

#endif
