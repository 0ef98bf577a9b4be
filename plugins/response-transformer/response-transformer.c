#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/body.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/yaml.h"

/* response-transformer: Kong's response shaping (priority 800; docs/plugins.md). Headers in
 * header_filter; a JSON body in body_filter, collected whole for it. Order, as Kong's: remove,
 * rename, replace, add, append. */

struct item {
    struct gw_str name, value; /* value: rename's new name */
    char type;                 /* json_types: 's'tring, 'n'umber, 'b'oolean */
};

struct items {
    struct item *v;
    size_t n;
};

enum { G_REMOVE, G_RENAME, G_REPLACE, G_ADD, G_APPEND, G_COUNT };

struct rsp_conf {
    struct items headers[G_COUNT], json[G_COUNT];
    bool json_ops;
};

static const char *const GROUPS[G_COUNT] = {"remove", "rename", "replace", "add", "append"};

static bool header_name_ok(struct gw_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int parse_items(const struct gw_yaml *node, const char *path, int g, const char *kind,
                       struct items *out, struct gw_arena *a, struct gw_err *err)
{
    struct gw_strv v = {NULL, 0};
    const char *gpath = gw_arena_printf(a, "%s.%s", path, GROUPS[g]);
    int rc = gw_pconf_strv(gw_yaml_get(node, GROUPS[g]), kind, gpath, NULL, 0, &v, a, err);
    const struct gw_yaml *list = gw_yaml_get(gw_yaml_get(node, GROUPS[g]), kind);

    out->v = gw_arena_calloc(a, v.n + 1, sizeof(*out->v));
    out->n = 0;
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        const char *ipath = gw_arena_printf(a, "%s.%s[%zu]", gpath, kind, i);
        const char *colon = memchr(v.v[i].p, ':', v.v[i].len);
        struct item *it = &out->v[out->n];
        it->type = 's';
        it->name = v.v[i];
        if (g != G_REMOVE) {
            if (colon == NULL || colon + 1 == v.v[i].p + v.v[i].len) {
                rc = gw_err_at(err, list->items[i], ipath, "key '%.*s' has no value",
                               (int)(colon != NULL ? (size_t)(colon - v.v[i].p) : v.v[i].len),
                               v.v[i].p);
                continue;
            }
            it->name = gw_arena_str(a, (struct gw_str){v.v[i].p, (size_t)(colon - v.v[i].p)});
            it->value = gw_arena_str(a, (struct gw_str){colon + 1, v.v[i].len - it->name.len - 1});
        }
        if (strcmp(kind, "headers") == 0 &&
            (!header_name_ok(it->name) || (g == G_RENAME && !header_name_ok(it->value)))) {
            rc = gw_err_at(err, list->items[i], ipath, "'%s' is not a valid header",
                           header_name_ok(it->name) ? it->value.p : it->name.p);
            continue;
        }
        out->n++;
    }
    return rc;
}

static int parse_types(const struct gw_yaml *node, const char *path, int g, struct items *json,
                       struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(gw_yaml_get(node, GROUPS[g]), "json_types");
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, gw_arena_printf(a, "%s.%s.json_types", path, GROUPS[g]),
                         "expected an array");
    for (size_t i = 0; i < n->n; i++) {
        const char *t = n->items[i]->type == GW_YAML_STR ? n->items[i]->str.p : "";
        if (strcmp(t, "string") != 0 && strcmp(t, "number") != 0 && strcmp(t, "boolean") != 0)
            rc = gw_err_at(err, n->items[i],
                           gw_arena_printf(a, "%s.%s.json_types[%zu]", path, GROUPS[g], i),
                           "expected one of: string, number, boolean");
        else if (i < json->n)
            json->v[i].type = t[0];
    }
    return rc;
}

static void *rsp_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                       struct gw_err *err)
{
    static const char *const known[] = {"remove", "rename", "replace", "add", "append", NULL};
    static const char *const plain[] = {"headers", "json", NULL};
    static const char *const typed[] = {"headers", "json", "json_types", NULL};
    struct rsp_conf *c = gw_arena_zalloc(a, sizeof(*c));
    int rc = gw_pconf_check(node, path, known, a, err);

    for (int g = 0; g < G_COUNT; g++) {
        rc |= gw_pconf_check(gw_yaml_get(node, GROUPS[g]),
                             gw_arena_printf(a, "%s.%s", path, GROUPS[g]),
                             g >= G_REPLACE ? typed : plain, a, err);
        rc |= parse_items(node, path, g, "headers", &c->headers[g], a, err);
        rc |= parse_items(node, path, g, "json", &c->json[g], a, err);
        if (g >= G_REPLACE)
            rc |= parse_types(node, path, g, &c->json[g], a, err);
        c->json_ops |= c->json[g].n > 0;
    }
    return rc == 0 ? c : NULL;
}

static void cstr(char *buf, size_t size, struct gw_str s)
{
    snprintf(buf, size, "%.*s", (int)s.len, s.p);
}

static enum gw_rc rsp_header_filter(struct gw_req *r, const void *conf, void *ctx)
{
    const struct rsp_conf *c = conf;
    char name[256], other[256];

    for (size_t i = 0; i < c->headers[G_REMOVE].n; i++) {
        cstr(name, sizeof(name), c->headers[G_REMOVE].v[i].name);
        gw_resp_clear_header(r, name);
    }
    for (size_t i = 0; i < c->headers[G_RENAME].n; i++) {
        struct gw_str v;
        cstr(name, sizeof(name), c->headers[G_RENAME].v[i].name);
        cstr(other, sizeof(other), c->headers[G_RENAME].v[i].value);
        v = gw_resp_header(r, name);
        if (v.p == NULL)
            continue;
        v = gw_arena_str(gw_req_pool(r), v); /* clearing may drop what it points into */
        gw_resp_clear_header(r, name);
        gw_resp_set_header(r, other, v);
    }
    for (size_t i = 0; i < c->headers[G_REPLACE].n; i++) {
        cstr(name, sizeof(name), c->headers[G_REPLACE].v[i].name);
        if (gw_resp_header(r, name).p != NULL)
            gw_resp_set_header(r, name, c->headers[G_REPLACE].v[i].value);
    }
    for (size_t i = 0; i < c->headers[G_ADD].n; i++) {
        cstr(name, sizeof(name), c->headers[G_ADD].v[i].name);
        if (gw_resp_header(r, name).p == NULL)
            gw_resp_add_header(r, name, c->headers[G_ADD].v[i].value);
    }
    for (size_t i = 0; i < c->headers[G_APPEND].n; i++) {
        cstr(name, sizeof(name), c->headers[G_APPEND].v[i].name);
        gw_resp_add_header(r, name, c->headers[G_APPEND].v[i].value);
    }
    /* JSON bodies are rewritten whole: collected for body_filter (Content-Length goes) */
    if (c->json_ops && gw_body_kind(gw_resp_header(r, "content-type")) == GW_BODY_JSON)
        gw_resp_read_body(r);
    return GW_OK;
}

/* Kong's json_value: a number that does not parse is left out; a boolean is `true` or false */
static json_t *typed_value(const struct item *it)
{
    if (it->type == 'n') {
        char buf[64], *end;
        double d;
        long long ll;
        if (it->value.len == 0 || it->value.len >= sizeof(buf))
            return NULL;
        cstr(buf, sizeof(buf), it->value);
        ll = strtoll(buf, &end, 10);
        if (*end == '\0')
            return json_integer(ll);
        d = strtod(buf, &end);
        return *end == '\0' ? json_real(d) : NULL;
    }
    if (it->type == 'b')
        return json_boolean(gw_str_eqc(it->value, "true"));
    return json_stringn(it->value.p, it->value.len);
}

static enum gw_rc rsp_body_filter(struct gw_req *r, const void *conf, void *ctx,
                                  struct evbuffer *chunk, bool last)
{
    const struct rsp_conf *c = conf;
    size_t len = evbuffer_get_length(chunk);
    json_t *o;
    char key[512], other[512], *text;

    if (!last || !c->json_ops || len == 0)
        return GW_OK;
    o = json_loadb((const char *)evbuffer_pullup(chunk, -1), len, 0, NULL);
    if (!json_is_object(o)) { /* not a JSON object: sent as it came */
        json_decref(o);
        return GW_OK;
    }
    for (size_t i = 0; i < c->json[G_REMOVE].n; i++) {
        cstr(key, sizeof(key), c->json[G_REMOVE].v[i].name);
        json_object_del(o, key);
    }
    for (size_t i = 0; i < c->json[G_RENAME].n; i++) {
        json_t *v;
        cstr(key, sizeof(key), c->json[G_RENAME].v[i].name);
        cstr(other, sizeof(other), c->json[G_RENAME].v[i].value);
        if ((v = json_object_get(o, key)) == NULL)
            continue;
        json_incref(v);
        json_object_del(o, key);
        json_object_set_new(o, other, v);
    }
    for (size_t i = 0; i < c->json[G_REPLACE].n; i++) {
        json_t *v;
        cstr(key, sizeof(key), c->json[G_REPLACE].v[i].name);
        if (json_object_get(o, key) != NULL && (v = typed_value(&c->json[G_REPLACE].v[i])))
            json_object_set_new(o, key, v);
    }
    for (size_t i = 0; i < c->json[G_ADD].n; i++) {
        json_t *v;
        cstr(key, sizeof(key), c->json[G_ADD].v[i].name);
        if (json_object_get(o, key) == NULL && (v = typed_value(&c->json[G_ADD].v[i])))
            json_object_set_new(o, key, v);
    }
    for (size_t i = 0; i < c->json[G_APPEND].n; i++) { /* Kong: always a list afterwards */
        json_t *v, *cur;
        cstr(key, sizeof(key), c->json[G_APPEND].v[i].name);
        if ((v = typed_value(&c->json[G_APPEND].v[i])) == NULL)
            continue;
        cur = json_object_get(o, key);
        if (json_is_array(cur)) {
            json_array_append_new(cur, v);
        } else {
            json_t *arr = json_array();
            if (json_is_string(cur))
                json_array_append(arr, cur);
            json_array_append_new(arr, v);
            json_object_set_new(o, key, arr);
        }
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL)
        return GW_ERROR;
    evbuffer_drain(chunk, len);
    evbuffer_add(chunk, text, strlen(text));
    free(text);
    return GW_OK;
}

const struct gw_plugin gw_plugin_response_transformer = {
    .name = "response-transformer",
    .priority = 800,
    .consumer_scoped = true,
    .parse = rsp_parse,
    .header_filter = rsp_header_filter,
    .body_filter = rsp_body_filter,
};
