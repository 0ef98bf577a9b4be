#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_req.h"
#include "gw/arena.h"
#include "gw/router.h"

static unsigned method_of(const char *m)
{
    static const struct {
        const char *name;
        unsigned v;
    } map[] = {{"GET", HTTP_GET},         {"POST", HTTP_POST},   {"PUT", HTTP_PUT},
               {"DELETE", HTTP_DELETE},   {"HEAD", HTTP_HEAD},   {"PATCH", HTTP_PATCH},
               {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE}, {NULL, 0}};

    for (size_t i = 0; map[i].name != NULL; i++)
        if (strcmp(map[i].name, m) == 0)
            return map[i].v;
    return HTTP_GET;
}

struct gw_req *fr_new(struct gw_snapshot *snap, const char *method, const char *target,
                      const char *const *headers, const char *body)
{
    struct gw_conn *c = gw_xcalloc(1, sizeof(*c));
    struct gw_req *r = gw_xcalloc(1, sizeof(*r));
    const char *q = strchr(target, '?');
    struct gw_router_header rh[64];
    struct gw_router_req rq;
    size_t n = 0;

    r->conn = c;
    r->snap = snap;
    gw_snapshot_acquire(snap);
    r->method = method_of(method);
    r->url = gw_xstrdup(target);
    r->url_len = strlen(target);
    r->path_buf = gw_xmalloc(r->url_len + 1);
    memcpy(r->path_buf, target, q != NULL ? (size_t)(q - target) : r->url_len);
    r->path_buf[q != NULL ? (size_t)(q - target) : r->url_len] = '\0';
    r->path = gw_str_c(r->path_buf);
    if (q != NULL)
        r->query = (struct gw_str){r->url + (q - target) + 1, strlen(q + 1)};
    memcpy(r->id, "test-request", 13);
    r->id_len = 12;
    gw_hdrs_init(&r->hdrs, 65536, 100);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        const char *colon = strchr(headers[i], ':'), *v = colon + 1;
        while (*v == ' ')
            v++;
        gw_hdrs_field(&r->hdrs, headers[i], (size_t)(colon - headers[i]));
        gw_hdrs_value(&r->hdrs, v, strlen(v));
    }
    r->host = gw_hdrs_get(&r->hdrs, "host");
    if (body != NULL) {
        r->body = evbuffer_new();
        evbuffer_add(r->body, body, strlen(body));
        r->has_length = true;
        r->content_length = strlen(body);
    }
    for (n = 0; n < r->hdrs.n && n < 64; n++) {
        struct gw_hdr h = gw_hdrs_at(&r->hdrs, n);
        rh[n] = (struct gw_router_header){h.name, h.value};
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = gw_str_c(method);
    rq.host = r->host.p != NULL ? r->host : GW_STR_NULL;
    rq.path = r->path;
    rq.headers = rh;
    rq.nheaders = n;
    rq.port = 8000;
    if (gw_router_match(snap->router, &rq, &r->match)) {
        r->route = r->match.route;
        r->service = r->route->service;
    }
    return r;
}

void fr_free(struct gw_req *r)
{
    gw_plugins_dispose(r);
    if (r->body != NULL)
        evbuffer_free(r->body);
    gw_hdrs_dispose(&r->hdrs);
    gw_snapshot_release(r->snap);
    free(r->url);
    free(r->path_buf);
    free(r->conn);
    free(r);
}

enum gw_rc fr_access(struct gw_req *r)
{
    const struct gw_chain *ch = r->route != NULL ? r->route->chain : NULL;

    if (ch == NULL)
        return GW_OK;
    r->plugin_sel = gw_xcalloc(ch->n, sizeof(*r->plugin_sel));
    r->plugin_ctx = ch->ctx_size != 0 ? gw_xcalloc(1, ch->ctx_size) : NULL;
    r->plugin_sel_cap = ch->n;
    r->plugin_ctx_cap = ch->ctx_size;
    r->plugins_ran = true;
    for (size_t i = 0; i < ch->n; i++) {
        const struct gw_chain_entry *e = &ch->e[i];
        const struct gw_plugin_instance *p =
            gw_chain_select(r->snap, r->route, e, r->consumer, false);
        void *ctx = e->plugin->ctx_size != 0 ? r->plugin_ctx + e->ctx_off : NULL;
        enum gw_rc rc;
        r->plugin_sel[i] = p;
        r->plugin_next = i + 1;
        if (p == NULL || e->plugin->access == NULL)
            continue;
        rc = e->plugin->access(r, p->conf, ctx);
        if (rc != GW_OK)
            return rc;
    }
    return GW_OK;
}

void fr_header_filter(struct gw_req *r, int status)
{
    r->status = status;
    gw_plugins_header_filter(r, NULL);
}

const char *fr_up_header(const struct gw_req *r, const char *name, size_t k)
{
    for (size_t i = 0; i < r->nup_add; i++)
        if (gw_str_caseeq(r->up_add[i].name, gw_str_c(name)) && k-- == 0)
            return r->up_add[i].value.p;
    return NULL;
}

const char *fr_resp_header(const struct gw_req *r, const char *name)
{
    for (size_t i = 0; i < r->nresp_add; i++)
        if (gw_str_caseeq(r->resp_add[i].name, gw_str_c(name)))
            return r->resp_add[i].value.p;
    return NULL;
}
