#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gw/arena.h"
#include "gw/body.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/log.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/yaml.h"

/* key-auth: an API key in a header or the query string identifies the consumer (Kong's
 * key-auth, priority 1250; docs/plugins.md). Keys are looked up by their SHA-256 and compared
 * in constant time (gw_snapshot_keyauth). */

struct keyauth_conf {
    struct gw_strv key_names;
    bool hide_credentials, key_in_header, key_in_query, key_in_body, run_on_preflight;
    struct gw_str anonymous; /* consumer id or username; empty: none */
    struct gw_str realm;
    const char *www_authenticate; /* the header line sent with every 401 */
};

static void *keyauth_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                           struct gw_err *err)
{
    static const char *const known[] = {"key_names",
                                        "hide_credentials",
                                        "anonymous",
                                        "key_in_header",
                                        "key_in_query",
                                        "key_in_body",
                                        "run_on_preflight",
                                        "realm",
                                        NULL};
    struct keyauth_conf *c = gw_arena_zalloc(a, sizeof(*c));
    int rc = 0;

    c->key_names.v = gw_arena_zalloc(a, sizeof(*c->key_names.v));
    c->key_names.v[0] = GW_STR_LIT("apikey");
    c->key_names.n = 1;
    c->key_in_header = c->key_in_query = c->run_on_preflight = true;
    rc |= gw_pconf_check(node, path, known, a, err);
    rc |= gw_pconf_strv(node, "key_names", path, gw_pconf_header_name, 1, &c->key_names, a, err);
    rc |= gw_pconf_bool(node, "hide_credentials", path, &c->hide_credentials, a, err);
    rc |= gw_pconf_str(node, "anonymous", path, &c->anonymous, a, err);
    rc |= gw_pconf_bool(node, "key_in_header", path, &c->key_in_header, a, err);
    rc |= gw_pconf_bool(node, "key_in_query", path, &c->key_in_query, a, err);
    rc |= gw_pconf_bool(node, "key_in_body", path, &c->key_in_body, a, err);
    rc |= gw_pconf_bool(node, "run_on_preflight", path, &c->run_on_preflight, a, err);
    rc |= gw_pconf_str(node, "realm", path, &c->realm, a, err);
    if (c->realm.len > 0 && (memchr(c->realm.p, '"', c->realm.len) != NULL ||
                             memchr(c->realm.p, '\r', c->realm.len) != NULL ||
                             memchr(c->realm.p, '\n', c->realm.len) != NULL))
        rc = gw_err_at(err, gw_yaml_get(node, "realm"), gw_arena_printf(a, "%s.realm", path),
                       "must not contain '\"' or line breaks");
    if (rc != 0)
        return NULL;
    c->www_authenticate = c->realm.len > 0 ? gw_arena_printf(a,
                                                             "WWW-Authenticate: Key "
                                                             "realm=\"%s\"\r\n",
                                                             c->realm.p)
                                           : "WWW-Authenticate: Key\r\n";
    return c;
}

/* The request body as Kong's kong.request.get_body() sees it: a form, a JSON object or
 * multipart parts; anything else (or a body that does not parse) has no fields. */
struct body {
    bool loaded;
    enum gw_body_kind kind;
    struct gw_str raw;
    json_t *json; /* an object */
    struct gw_part *parts;
    int nparts;
    struct gw_str boundary;
};

static void body_load(struct gw_req *r, struct body *b)
{
    b->loaded = true;
    b->kind = gw_body_kind(gw_req_header(r, "content-type"));
    b->raw = gw_req_body(r);
    if (b->raw.p == NULL || b->raw.len == 0)
        b->kind = GW_BODY_OTHER;
    if (b->kind == GW_BODY_JSON) {
        b->json = json_loadb(b->raw.p, b->raw.len, 0, NULL);
        if (b->json != NULL && !json_is_object(b->json)) {
            json_decref(b->json);
            b->json = NULL;
        }
        if (b->json == NULL)
            b->kind = GW_BODY_OTHER;
    } else if (b->kind == GW_BODY_MULTIPART) {
        b->nparts = gw_multipart_parse(gw_req_pool(r), b->raw, gw_req_header(r, "content-type"),
                                       &b->parts, &b->boundary);
        if (b->nparts < 0)
            b->kind = GW_BODY_OTHER;
    }
}

/* How many values `name` has in the body (2 stands for "more than one": a JSON array or
 * object counts so, as a Lua table does in Kong); *v the first when it is a string. */
static size_t body_get(struct gw_req *r, struct body *b, const char *name, struct gw_str *v)
{
    size_t n = 0;

    *v = GW_STR_NULL;
    switch (b->kind) {
    case GW_BODY_FORM:
        n = gw_urlencoded_get(gw_req_pool(r), b->raw, name, v);
        return n == 1 && v->p == NULL ? 0 : n;
    case GW_BODY_JSON: {
        json_t *x = json_object_get(b->json, name);
        if (json_is_string(x)) {
            *v = gw_arena_str(gw_req_pool(r),
                              (struct gw_str){json_string_value(x), json_string_length(x)});
            return 1;
        }
        return json_is_array(x) || json_is_object(x) ? 2 : 0;
    }
    case GW_BODY_MULTIPART:
        for (int i = 0; i < b->nparts; i++)
            if (gw_str_eqc(b->parts[i].name, name) && n++ == 0)         /* copied: hiding it */
                *v = gw_arena_str(gw_req_pool(r), b->parts[i].content); /* replaces the body */
        return n;
    default:
        return 0;
    }
}

/* The body sent upstream without `name` (hide_credentials), in the same format. */
static void body_hide(struct gw_req *r, struct body *b, const char *name)
{
    struct gw_arena *a = gw_req_pool(r);

    switch (b->kind) {
    case GW_BODY_FORM:
        gw_req_set_body(r, gw_urlencoded_remove(a, b->raw, gw_str_c(name)));
        break;
    case GW_BODY_JSON: {
        char *text;
        json_object_del(b->json, name);
        text = json_dumps(b->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text != NULL) {
            gw_req_set_body(r, gw_str_c(text));
            free(text);
        }
        break;
    }
    case GW_BODY_MULTIPART: {
        int k = 0;
        for (int i = 0; i < b->nparts; i++)
            if (!gw_str_eqc(b->parts[i].name, name))
                b->parts[k++] = b->parts[i];
        b->nparts = k;
        gw_req_set_body(r, gw_multipart_build(a, b->boundary, b->parts, (size_t)k));
        break;
    }
    default:
        break;
    }
}

enum keyauth_result { KA_OK, KA_NO_KEY, KA_DUPLICATE, KA_INVALID };

static enum keyauth_result authenticate(struct gw_req *r, const struct keyauth_conf *c,
                                        struct body *b)
{
    struct gw_str key = GW_STR_NULL;
    const struct gw_keyauth_credential *cred;
    struct gw_arena *a = gw_req_pool(r);

    for (size_t i = 0; i < c->key_names.n && key.p == NULL; i++) {
        const char *name = c->key_names.v[i].p;
        size_t count = 0;
        bool flag = false; /* `?name` without a value: not a string, but found (Kong's `true`) */
        struct gw_str v = GW_STR_NULL;
        if (c->key_in_header) {
            count = gw_req_header_count(r, name);
            if (count > 0)
                v = gw_req_header(r, name);
        }
        if (count == 0 && c->key_in_query) {
            count = gw_urlencoded_get(a, gw_req_query(r), name, &v);
            if (count == 1 && v.p == NULL) {
                count = 0;
                flag = true;
            }
        }
        if (count == 0 && !flag && c->key_in_body) {
            if (!b->loaded)
                body_load(r, b);
            count = body_get(r, b, name, &v);
        }
        if (count > 1)
            return KA_DUPLICATE;
        if (count == 1) {
            key = v;
            if (c->hide_credentials) {
                gw_req_set_query(r, gw_urlencoded_remove(a, gw_req_query(r), c->key_names.v[i]));
                gw_req_clear_header(r, name);
                if (c->key_in_body) {
                    if (!b->loaded)
                        body_load(r, b);
                    body_hide(r, b, name);
                }
            }
        }
    }
    if (key.p == NULL || key.len == 0)
        return KA_NO_KEY;
    cred = gw_snapshot_keyauth(gw_req_snapshot(r), key);
    if (cred == NULL || (cred->expires_at != 0 && (int64_t)time(NULL) >= cred->expires_at))
        return KA_INVALID;
    gw_req_authenticate(r, cred->consumer, cred->id, false);
    return KA_OK;
}

static enum gw_rc keyauth_access(struct gw_req *r, const void *conf, void *ctx)
{
    const struct keyauth_conf *c = conf;
    enum keyauth_result res;
    const struct gw_consumer *anon;
    struct body b = {0};

    if (!c->run_on_preflight && gw_str_eqc(gw_req_method(r), "OPTIONS"))
        return GW_OK;
    if (c->anonymous.len > 0 && gw_req_authenticated(r))
        return GW_OK; /* another auth plugin already succeeded: logical OR */
    res = authenticate(r, c, &b);
    if (b.json != NULL)
        json_decref(b.json);
    if (res == KA_OK)
        return GW_OK;
    if (c->anonymous.len > 0) {
        anon = gw_snapshot_consumer_ref(gw_req_snapshot(r), c->anonymous);
        if (anon == NULL) {
            char msg[512];
            snprintf(msg, sizeof(msg), "anonymous consumer %s is configured but doesn't exist",
                     c->anonymous.p);
            gw_log(GW_LOG_ERROR, "req=%.*s key-auth: %s", (int)gw_req_id(r).len, gw_req_id(r).p,
                   msg);
            return gw_req_exit(r, 500, msg, NULL);
        }
        gw_req_authenticate(r, anon, NULL, true);
        return GW_OK;
    }
    return gw_req_exit(r, 401,
                       res == KA_DUPLICATE ? "Duplicate API key found"
                       : res == KA_NO_KEY  ? "No API key found in request"
                                           : "Unauthorized",
                       c->www_authenticate);
}

static bool keyauth_wants_body(const void *conf)
{
    return ((const struct keyauth_conf *)conf)->key_in_body;
}

static const struct gw_strv *keyauth_query_secrets(const void *conf)
{
    const struct keyauth_conf *c = conf;

    return c->key_in_query ? &c->key_names : NULL;
}

const struct gw_plugin gw_plugin_key_auth = {
    .name = "key-auth",
    .priority = 1250,
    .consumer_scoped = false,
    .parse = keyauth_parse,
    .query_secrets = keyauth_query_secrets,
    .wants_body = keyauth_wants_body,
    .access = keyauth_access,
};
