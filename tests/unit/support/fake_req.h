#ifndef GW_TEST_FAKE_REQ_H
#define GW_TEST_FAKE_REQ_H

#include "gw/config.h"
#include "gw/plugin.h"
#include "http/http_int.h"

/* A request as the connection code hands it to the plugins, without sockets: parsed from
 * `method`, `target` ("/path?query"), `headers` ("Name: value", NULL-terminated, may be NULL)
 * and `body` (NULL: none), routed with `snap`'s router (NULL when nothing matched). The
 * request holds a reference to `snap`; fr_free() releases it. */
struct gw_req *fr_new(struct gw_snapshot *snap, const char *method, const char *target,
                      const char *const *headers, const char *body);
void fr_free(struct gw_req *r);

/* The access phase of the route's chain as gw_plugins_access() runs it, without the proxy or
 * the answer: returns GW_OK when every plugin let the request through, else the first other
 * code (r->exit_status / exit_message then hold a plugin's answer). */
enum gw_rc fr_access(struct gw_req *r);

/* The header_filter phase on gatehouse's own answer with `status`. */
void fr_header_filter(struct gw_req *r, int status);

/* Value of the k-th (0-based) header `name` set for the upstream (r->up_add), or NULL. */
const char *fr_up_header(const struct gw_req *r, const char *name, size_t k);
/* Value of response header `name` set by plugins (r->resp_add), or NULL. */
const char *fr_resp_header(const struct gw_req *r, const char *name);

#endif
