#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gw/arena.h"
#include "gw/body.h"
#include "gw/config.h"
#include "gw/log.h"
#include "gw/req.h"
#include "http_int.h"

/* Running a route's plugin chain (DESIGN.md §4), and the request API plugins use
 * (include/gw/req.h). The access phase walks the chain in order; each plugin's instance is
 * chosen at its turn with the consumer known so far (Kong's lazy lookup). A plugin that answers
 * (gw_req_exit) or fails ends the access phase: the instances of the plugins left are still
 * chosen, so that their log callbacks run on that answer too, as Kong's collecting iterator.
 * The answer itself is written only when the chain has let go of the request, since writing it
 * may finish and recycle the request at once. */

static void *ctx_of(struct gw_req *r, size_t i)
{
    const struct gw_chain_entry *e = &r->route->chain->e[i];

    return e->plugin->ctx_size != 0 ? r->plugin_ctx + e->ctx_off : NULL;
}

/* Chooses the instances of the entries the access phase did not reach. */
static void collect_rest(struct gw_req *r)
{
    const struct gw_chain *ch = r->route->chain;

    for (size_t i = r->plugin_next; i < ch->n; i++)
        r->plugin_sel[i] = gw_chain_select(r->snap, r->route, &ch->e[i], r->consumer, r->conn->tls);
    r->plugin_next = ch->n;
}

/* The access phase ends early at entry `i` with `rc` (GW_DONE or GW_ERROR). */
static void end_access(struct gw_req *r, size_t i, enum gw_rc rc)
{
    const struct gw_chain *ch = r->route->chain;

    collect_rest(r);
    if (rc == GW_DONE && r->exit_status != 0) {
        int status = r->exit_status;
        char *msg = r->exit_message, *hdrs = r->exit_headers;
        bool empty = r->exit_empty, json = r->exit_json && msg != NULL;
        r->exit_message = r->exit_headers = NULL;
        /* each may end the request: the last thing done with it */
        if (empty)
            gw_conn_respond_empty(r, status);
        else if (json)
            gw_conn_respond_json(r, status, msg, hdrs);
        else
            gw_conn_error_headers(r, status, msg, hdrs);
        free(msg);
        free(hdrs);
        return;
    }
    gw_log(GW_LOG_ERROR, "req=%.*s plugin %s: %s", (int)r->id_len, r->id, ch->e[i].plugin->name,
           rc == GW_DONE ? "answered without a response" : "failed");
    gw_conn_error(r, 500, "An unexpected error occurred");
}

static void run_access(struct gw_req *r)
{
    const struct gw_chain *ch = r->route->chain;

    while (r->plugin_next < ch->n) {
        size_t i = r->plugin_next++;
        const struct gw_chain_entry *e = &ch->e[i];
        const struct gw_plugin_instance *p =
            gw_chain_select(r->snap, r->route, e, r->consumer, r->conn->tls);
        enum gw_rc rc;

        r->plugin_sel[i] = p;
        if (p == NULL || e->plugin->access == NULL)
            continue;
        rc = e->plugin->access(r, p->conf, ctx_of(r, i));
        if (rc == GW_OK)
            continue;
        if (rc != GW_AGAIN)
            end_access(r, i, rc);
        return; /* GW_AGAIN: the plugin calls gw_req_resume() */
    }
    gw_proxy_start(r);
}

void gw_plugins_access(struct gw_req *r)
{
    const struct gw_chain *ch = r->route->chain;

    /* buffers of the connection's previous request, grown when this chain needs more */
    if (r->plugin_sel_cap < ch->n) {
        free(r->plugin_sel);
        r->plugin_sel = gw_xcalloc(ch->n, sizeof(*r->plugin_sel));
        r->plugin_sel_cap = ch->n;
    }
    memset(r->plugin_sel, 0, ch->n * sizeof(*r->plugin_sel));
    if (ch->ctx_size != 0) {
        if (r->plugin_ctx_cap < ch->ctx_size) {
            free(r->plugin_ctx);
            r->plugin_ctx = gw_xmalloc(ch->ctx_size);
            r->plugin_ctx_cap = ch->ctx_size;
        }
        memset(r->plugin_ctx, 0, ch->ctx_size);
    }
    r->plugin_next = 0;
    r->plugins_ran = true;
    run_access(r);
}

void gw_req_resume(struct gw_req *r, enum gw_rc rc)
{
    if (rc == GW_OK)
        run_access(r);
    else
        end_access(r, r->plugin_next - 1, rc);
}

void gw_plugins_header_filter(struct gw_req *r, const struct gw_hdrs *up)
{
    const struct gw_chain *ch = r->route != NULL ? r->route->chain : NULL;

    if (ch == NULL || !r->plugins_ran || !ch->header_filter)
        return;
    r->resp_up = up;
    for (size_t i = 0; i < r->plugin_next; i++) {
        const struct gw_plugin_instance *p = r->plugin_sel[i];
        if (p != NULL && ch->e[i].plugin->header_filter != NULL &&
            ch->e[i].plugin->header_filter(r, p->conf, ctx_of(r, i)) != GW_OK)
            gw_log(GW_LOG_ERROR, "req=%.*s plugin %s: header_filter failed", (int)r->id_len, r->id,
                   ch->e[i].plugin->name); /* the response is under way: it goes on */
    }
    r->resp_up = NULL;
}

void gw_plugins_body_filter(struct gw_req *r, struct evbuffer *body)
{
    const struct gw_chain *ch = r->route != NULL ? r->route->chain : NULL;

    if (ch == NULL || !r->plugins_ran)
        return;
    for (size_t i = 0; i < r->plugin_next; i++) {
        const struct gw_plugin_instance *p = r->plugin_sel[i];
        if (p != NULL && ch->e[i].plugin->body_filter != NULL &&
            ch->e[i].plugin->body_filter(r, p->conf, ctx_of(r, i), body, true) != GW_OK)
            gw_log(GW_LOG_ERROR, "req=%.*s plugin %s: body_filter failed", (int)r->id_len, r->id,
                   ch->e[i].plugin->name); /* what it left in the body is sent */
    }
}

void gw_plugins_log(struct gw_req *r)
{
    const struct gw_chain *ch = r->route != NULL ? r->route->chain : NULL;

    if (ch == NULL || !r->plugins_ran)
        return;
    for (size_t i = 0; i < r->plugin_next; i++) {
        const struct gw_plugin_instance *p = r->plugin_sel[i];
        if (p != NULL && ch->e[i].plugin->log != NULL)
            ch->e[i].plugin->log(r, p->conf, ctx_of(r, i));
    }
}

void gw_plugins_release(struct gw_req *r)
{
    r->plugins_ran = false;
    r->plugin_next = 0;
    r->nup_add = r->nresp_add = r->nresp_clear = 0;
    free(r->exit_message);
    free(r->exit_headers);
    r->exit_message = r->exit_headers = NULL;
    if (r->pool != NULL)
        gw_arena_reset(r->pool); /* kept: the next request on the connection reuses it */
}

struct gw_plugins_kept gw_plugins_keep(const struct gw_req *r)
{
    struct gw_plugins_kept k = {
        r->pool,     r->plugin_sel, r->plugin_ctx,  r->plugin_sel_cap, r->plugin_ctx_cap, r->up_add,
        r->resp_add, r->capup_add,  r->capresp_add, r->resp_clear,     r->capresp_clear};

    return k;
}

void gw_plugins_restore(struct gw_req *r, const struct gw_plugins_kept *k)
{
    r->pool = k->pool;
    r->plugin_sel = k->sel;
    r->plugin_ctx = k->ctx;
    r->plugin_sel_cap = k->sel_cap;
    r->plugin_ctx_cap = k->ctx_cap;
    r->up_add = k->up_add;
    r->capup_add = k->up_add_cap;
    r->resp_add = k->resp_add;
    r->capresp_add = k->resp_add_cap;
    r->resp_clear = k->resp_clear;
    r->capresp_clear = k->resp_clear_cap;
}

void gw_plugins_dispose(struct gw_req *r)
{
    gw_plugins_release(r);
    free(r->plugin_sel);
    free(r->plugin_ctx);
    free(r->up_add);
    free(r->resp_add);
    free(r->resp_clear);
    gw_arena_free(r->pool);
    r->plugin_sel = NULL;
    r->plugin_ctx = NULL;
    r->up_add = r->resp_add = NULL;
    r->resp_clear = NULL;
    r->pool = NULL;
    r->plugin_sel_cap = r->plugin_ctx_cap = r->capup_add = r->capresp_add = r->capresp_clear = 0;
}

/* ---- the request API ------------------------------------------------------------------- */

/* Kong's header names: case-insensitive, `_` and `-` alike. */
static bool name_eq(struct gw_str a, struct gw_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        char x = gw_lower(a.p[i]), y = gw_lower(b.p[i]);
        if (x == '_')
            x = '-';
        if (y == '_')
            y = '-';
        if (x != y)
            return false;
    }
    return true;
}

struct gw_str gw_req_method(const struct gw_req *r)
{
    return gw_str_c(http_method_str(r->method));
}

struct gw_str gw_req_query(const struct gw_req *r)
{
    return r->up_query_set ? r->up_query : r->query;
}

struct gw_str gw_req_id(const struct gw_req *r)
{
    return (struct gw_str){r->id, r->id_len};
}

struct gw_arena *gw_req_pool(struct gw_req *r)
{
    if (r->pool == NULL)
        r->pool = gw_arena_new();
    return r->pool;
}

const struct gw_snapshot *gw_req_snapshot(const struct gw_req *r)
{
    return r->snap;
}

struct gw_str gw_req_header(const struct gw_req *r, const char *name)
{
    struct gw_str want = gw_str_c(name);

    for (size_t i = 0; i < r->nup_add; i++) /* set by a plugin: replaces the client's */
        if (name_eq(r->up_add[i].name, want))
            return r->up_add[i].value;
    for (size_t i = 0; i < r->hdrs.n; i++) {
        struct gw_hdr h = gw_hdrs_at(&r->hdrs, i);
        if (name_eq(h.name, want))
            return h.value;
    }
    return GW_STR_NULL;
}

size_t gw_req_header_count(const struct gw_req *r, const char *name)
{
    struct gw_str want = gw_str_c(name);
    size_t n = 0;

    for (size_t i = 0; i < r->nup_add; i++)
        n += name_eq(r->up_add[i].name, want);
    for (size_t i = 0; i < r->hdrs.n; i++)
        n += name_eq(gw_hdrs_at(&r->hdrs, i).name, want);
    return n;
}

void gw_req_clear_header(struct gw_req *r, const char *name)
{
    struct gw_str want = gw_str_c(name);
    size_t k = 0;

    gw_hdrs_remove_if(&r->hdrs, name_eq, want);
    for (size_t i = 0; i < r->nup_add; i++)
        if (!name_eq(r->up_add[i].name, want))
            r->up_add[k++] = r->up_add[i];
    r->nup_add = k;
}

void gw_req_add_header(struct gw_req *r, const char *name, struct gw_str value)
{
    struct gw_arena *a = gw_req_pool(r);

    if (value.p == NULL)
        value = GW_STR_LIT("");
    if (value.len > 0 &&
        (memchr(value.p, '\r', value.len) != NULL || memchr(value.p, '\n', value.len) != NULL))
        return; /* never a header line break from a value */
    if (r->nup_add == r->capup_add) {
        r->capup_add = r->capup_add != 0 ? r->capup_add * 2 : 4;
        r->up_add = gw_xrealloc(r->up_add, r->capup_add * sizeof(*r->up_add));
    }
    r->up_add[r->nup_add].name = gw_arena_str(a, gw_str_c(name));
    r->up_add[r->nup_add].value = gw_arena_str(a, value);
    r->nup_add++;
}

size_t gw_req_header_values(const struct gw_req *r, const char *name, struct gw_str *out,
                            size_t max)
{
    struct gw_str want = gw_str_c(name);
    size_t n = 0;

    for (size_t i = 0; i < r->hdrs.n; i++) {
        struct gw_hdr h = gw_hdrs_at(&r->hdrs, i);
        if (name_eq(h.name, want) && n++ < max)
            out[n - 1] = h.value;
    }
    for (size_t i = 0; i < r->nup_add; i++)
        if (name_eq(r->up_add[i].name, want) && n++ < max)
            out[n - 1] = r->up_add[i].value;
    return n;
}

void gw_req_set_method(struct gw_req *r, const char *method)
{
    r->up_method = gw_arena_strndup(gw_req_pool(r), method, strlen(method));
}

void gw_req_set_path(struct gw_req *r, struct gw_str path)
{
    if (path.len == 0 || path.p[0] != '/')
        return;
    r->up_path = gw_arena_str(gw_req_pool(r), path);
}

struct gw_str gw_req_uri_capture(const struct gw_req *r, int index, const char *name)
{
    const struct gw_router_match *m = &r->match;

    if (!m->regex)
        return GW_STR_NULL;
    if (name != NULL) {
        for (size_t i = 1; i < m->ncaptures; i++)
            if (m->capture_names != NULL && m->capture_names[i] != NULL &&
                strcmp(m->capture_names[i], name) == 0)
                return m->captures[i];
        return GW_STR_NULL;
    }
    return index >= 0 && (size_t)index < m->ncaptures ? m->captures[index] : GW_STR_NULL;
}

void gw_req_set_header(struct gw_req *r, const char *name, struct gw_str value)
{
    if (value.len > 0 &&
        (memchr(value.p, '\r', value.len) != NULL || memchr(value.p, '\n', value.len) != NULL))
        return;
    gw_req_clear_header(r, name);
    gw_req_add_header(r, name, value);
}

struct gw_str gw_req_body(struct gw_req *r)
{
    size_t n;

    if (r->body == NULL)
        return r->chunked || r->content_length > 0 ? GW_STR_NULL : GW_STR_LIT("");
    n = evbuffer_get_length(r->body);
    return n == 0 ? GW_STR_LIT("") : (struct gw_str){(const char *)evbuffer_pullup(r->body, -1), n};
}

void gw_req_set_body(struct gw_req *r, struct gw_str body)
{
    if (r->body == NULL) {
        if (r->chunked || r->content_length > 0)
            return; /* streaming: not ours to change */
        r->body = evbuffer_new();
    }
    {
        /* `body` may be a view into the old one: copied before that is freed */
        struct evbuffer *nb = evbuffer_new();
        evbuffer_add(nb, body.p, body.len);
        evbuffer_free(r->body);
        r->body = nb;
    }
}

void gw_req_set_query(struct gw_req *r, struct gw_str query)
{
    if (query.p == NULL)
        query = GW_STR_LIT("");
    r->up_query = gw_arena_str(gw_req_pool(r), query);
    r->up_query_set = true;
}

size_t gw_req_query_arg(struct gw_req *r, const char *name, struct gw_str *value)
{
    return gw_urlencoded_get(gw_req_pool(r), gw_req_query(r), name, value);
}

const struct gw_consumer *gw_req_consumer(const struct gw_req *r)
{
    return r->consumer;
}

bool gw_req_authenticated(const struct gw_req *r)
{
    return r->consumer != NULL && !r->anonymous;
}

void gw_req_authenticate(struct gw_req *r, const struct gw_consumer *c, const char *credential_id,
                         bool anonymous)
{
    r->consumer = c;
    r->credential_id = credential_id;
    r->anonymous = anonymous;
}

/* ---- response headers ---- */

static bool framing(const char *name)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection",
                                        "keep-alive",     "upgrade",           NULL};

    for (const char *const *n = names; *n != NULL; n++)
        if (gw_str_caseeq(gw_str_c(name), gw_str_c(*n)))
            return true;
    return false;
}

bool gw_resp_keep(const struct gw_req *r, struct gw_str name)
{
    for (size_t i = 0; i < r->nresp_clear; i++)
        if (gw_str_caseeq(r->resp_clear[i], name))
            return false;
    return true;
}

struct gw_str gw_resp_header(const struct gw_req *r, const char *name)
{
    struct gw_str want = gw_str_c(name);

    for (size_t i = 0; i < r->nresp_add; i++)
        if (gw_str_caseeq(r->resp_add[i].name, want))
            return r->resp_add[i].value;
    if (r->resp_up != NULL && gw_resp_keep(r, want))
        return gw_hdrs_get(r->resp_up, name);
    return GW_STR_NULL;
}

void gw_resp_clear_header(struct gw_req *r, const char *name)
{
    struct gw_str want = gw_str_c(name);
    size_t k = 0;

    if (framing(name))
        return;
    for (size_t i = 0; i < r->nresp_add; i++)
        if (!gw_str_caseeq(r->resp_add[i].name, want))
            r->resp_add[k++] = r->resp_add[i];
    r->nresp_add = k;
    if (!gw_resp_keep(r, want))
        return;
    if (r->nresp_clear == r->capresp_clear) {
        r->capresp_clear = r->capresp_clear != 0 ? r->capresp_clear * 2 : 4;
        r->resp_clear = gw_xrealloc(r->resp_clear, r->capresp_clear * sizeof(*r->resp_clear));
    }
    r->resp_clear[r->nresp_clear++] = gw_arena_str(gw_req_pool(r), want);
}

void gw_resp_add_header(struct gw_req *r, const char *name, struct gw_str value)
{
    struct gw_arena *a = gw_req_pool(r);

    if (framing(name) || (value.len > 0 && (memchr(value.p, '\r', value.len) != NULL ||
                                            memchr(value.p, '\n', value.len) != NULL)))
        return; /* never a header line break from a value */
    if (r->nresp_add == r->capresp_add) {
        r->capresp_add = r->capresp_add != 0 ? r->capresp_add * 2 : 8;
        r->resp_add = gw_xrealloc(r->resp_add, r->capresp_add * sizeof(*r->resp_add));
    }
    r->resp_add[r->nresp_add].name = gw_arena_str(a, gw_str_c(name));
    r->resp_add[r->nresp_add].value = gw_arena_str(a, value);
    r->nresp_add++;
}

void gw_resp_set_header(struct gw_req *r, const char *name, struct gw_str value)
{
    gw_resp_clear_header(r, name);
    gw_resp_add_header(r, name, value);
}

void gw_resp_read_body(struct gw_req *r)
{
    r->resp_collect = true;
}

enum gw_rc gw_req_exit_json(struct gw_req *r, int status, const char *json, const char *headers)
{
    gw_req_exit(r, status, json, headers);
    r->exit_json = true;
    return GW_DONE;
}

enum gw_rc gw_req_exit_empty(struct gw_req *r, int status)
{
    gw_req_exit(r, status, NULL, NULL);
    r->exit_empty = true;
    return GW_DONE;
}

enum gw_rc gw_req_exit(struct gw_req *r, int status, const char *message, const char *headers)
{
    free(r->exit_message);
    free(r->exit_headers);
    r->exit_json = r->exit_empty = false;
    r->exit_status = status;
    r->exit_message = message != NULL ? gw_xstrdup(message) : NULL;
    r->exit_headers = headers != NULL ? gw_xstrdup(headers) : NULL;
    return GW_DONE;
}
