#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/plugin.h"
#include "gw/siphash.h"
#include "gw/router.h"

/* Kong's declarative entities (format 3.0): collected from their top-level and nested forms,
 * validated field by field with Kong's names, types, defaults and messages, given ids,
 * checked for uniqueness, then linked by reference. Every error is reported, with the path
 * and position of the node concerned; validation goes on after an error. */

enum etype {
    E_CERT,
    E_CA,
    E_SNI,
    E_UPSTREAM,
    E_TARGET,
    E_SERVICE,
    E_ROUTE,
    E_CONSUMER,
    E_KEYAUTH,
    E_JWT,
    E_ACL,
    E_PLUGIN,
    E_N,
};

struct etype_info {
    const char *table;   /* Kong's entity table name, also the top-level key */
    const char *fk;      /* the name of a foreign key that references this type */
    const char *keyname; /* endpoint key usable in references, NULL when none */
    size_t size;
};

static const struct etype_info etypes[E_N] = {
    [E_CERT] = {"certificates", "certificate", NULL, sizeof(struct gw_certificate)},
    [E_CA] = {"ca_certificates", "ca_certificate", NULL, sizeof(struct gw_ca_certificate)},
    [E_SNI] = {"snis", "sni", "name", sizeof(struct gw_sni)},
    [E_UPSTREAM] = {"upstreams", "upstream", "name", sizeof(struct gw_upstream)},
    [E_TARGET] = {"targets", "target", NULL, sizeof(struct gw_target)},
    [E_SERVICE] = {"services", "service", "name", sizeof(struct gw_service)},
    [E_ROUTE] = {"routes", "route", "name", sizeof(struct gw_route)},
    [E_CONSUMER] = {"consumers", "consumer", "username", sizeof(struct gw_consumer)},
    [E_KEYAUTH] = {"keyauth_credentials", "keyauth_credential", NULL,
                   sizeof(struct gw_keyauth_credential)},
    [E_JWT] = {"jwt_secrets", "jwt_secret", NULL, sizeof(struct gw_jwt_secret)},
    [E_ACL] = {"acls", "acl", NULL, sizeof(struct gw_acl)},
    [E_PLUGIN] = {"plugins", "plugin", NULL, sizeof(struct gw_plugin_instance)},
};

/* Where each child type may be nested, and which of its foreign keys the parent fills. */
struct nest {
    enum etype parent;
    const char *key;
    enum etype child;
};

static const struct nest nests[] = {
    {E_CERT, "snis", E_SNI},
    {E_CERT, "services", E_SERVICE},
    {E_CERT, "upstreams", E_UPSTREAM},
    {E_UPSTREAM, "targets", E_TARGET},
    {E_SERVICE, "routes", E_ROUTE},
    {E_SERVICE, "plugins", E_PLUGIN},
    {E_ROUTE, "plugins", E_PLUGIN},
    {E_CONSUMER, "keyauth_credentials", E_KEYAUTH},
    {E_CONSUMER, "jwt_secrets", E_JWT},
    {E_CONSUMER, "acls", E_ACL},
    {E_CONSUMER, "plugins", E_PLUGIN},
};

/* The foreign key of a child that its parent fills ("client_certificate" for services
 * nested in certificates, else the parent's usual name). */
static const char *parent_fk(enum etype parent, enum etype child)
{
    if (parent == E_CERT && (child == E_SERVICE || child == E_UPSTREAM))
        return "client_certificate";
    return etypes[parent].fk;
}

/* Field kinds in the per-entity key tables. */
enum fkind {
    K_USE,  /* acted on */
    K_META, /* accepted silently (timestamps, comments) */
    K_WARN, /* a Kong field gatehouse does not act on: accepted with a warning */
    K_NEST, /* nested child entities, handled by collect() */
};

struct fdef {
    const char *name;
    enum fkind kind;
};

struct raw {
    enum etype t;
    const struct gw_yaml *node; /* a MAP (or, for an sni shorthand, a STR) */
    const char *path;
    int parent; /* index in ld->raws, -1 at top level */
    void *obj;
    char *id;          /* the entity's id buffer */
    struct gw_str key; /* endpoint key (name, username...) when set */
};

struct ref {
    size_t raw;
    const char *field;
    const struct gw_yaml *node;
    enum etype target;
    const void **dst;
};

struct ld {
    struct gw_arena *a;
    struct gw_err *err;
    struct gw_snapshot *snap;
    struct raw *raws;
    size_t nraws, capraws;
    struct ref *refs;
    size_t nrefs, caprefs;
    size_t count[E_N], next[E_N];
    void *arrays[E_N];
    struct gw_map *by_id[E_N], *by_key[E_N];
    bool migrate_paths;
    int rc;
};

/* ---- small helpers ------------------------------------------------------------------ */

static const struct gw_yaml *field(const struct raw *r, const char *name)
{
    const struct gw_yaml *n = gw_yaml_get(r->node, name);

    return gw_yaml_is_null(n) ? NULL : n;
}

static char *fpath(struct ld *ld, const struct raw *r, const char *name)
{
    return gw_arena_printf(ld->a, "%s.%s", r->path, name);
}

__attribute__((format(printf, 4, 5))) static void fail(struct ld *ld, const struct gw_yaml *node,
                                                       const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(ld->err, GW_DIAG_ERROR, node != NULL ? node->line : 0, node != NULL ? node->col : 0,
               path, fmt, ap);
    va_end(ap);
    ld->rc = -1;
}

static void check_keys(struct ld *ld, const struct raw *r, const struct fdef *defs)
{
    for (size_t i = 0; i < r->node->n; i++) {
        const struct gw_yaml *k = r->node->pairs[i].key;
        const struct fdef *d = NULL;

        if (gw_str_eqc(k->str, "_comment") || gw_str_eqc(k->str, "_ignore"))
            continue;
        for (const struct fdef *f = defs; f->name != NULL && d == NULL; f++)
            if (gw_str_eqc(k->str, f->name))
                d = f;
        if (d == NULL)
            fail(ld, k, fpath(ld, r, k->str.p), "unknown field");
        else if (d->kind == K_WARN && !gw_yaml_is_null(r->node->pairs[i].val))
            gw_warn_at(ld->err, k, fpath(ld, r, k->str.p), "accepted but not used by gatehouse");
    }
}

/* A string field; vault references resolved when `secret`. Returns false when absent. */
static bool str_field(struct ld *ld, const struct raw *r, const char *name, bool required,
                      bool vault, struct gw_str *out)
{
    const struct gw_yaml *n = field(r, name);

    if (n == NULL) {
        if (required)
            fail(ld, r->node, fpath(ld, r, name), "required field missing");
        return false;
    }
    if (n->type != GW_YAML_STR) {
        fail(ld, n, fpath(ld, r, name), "expected a string");
        return false;
    }
    if (vault) {
        int v = gw_vault_resolve(n->str, fpath(ld, r, name), n, ld->a, ld->err, out);
        if (v < 0) {
            ld->rc = -1;
            return false;
        }
        if (v > 0)
            return true;
    }
    *out = n->str; /* arena-owned, NUL-terminated */
    return true;
}

static void bool_field(struct ld *ld, const struct raw *r, const char *name, bool def, bool *out)
{
    const struct gw_yaml *n = field(r, name);

    *out = def;
    if (n == NULL)
        return;
    if (n->type != GW_YAML_BOOL)
        fail(ld, n, fpath(ld, r, name), "expected a boolean");
    else
        *out = n->v.b;
}

/* Returns false when absent (out = def) or invalid. */
static bool int_field(struct ld *ld, const struct raw *r, const char *name, int64_t min,
                      int64_t max, int64_t def, int64_t *out)
{
    const struct gw_yaml *n = field(r, name);

    *out = def;
    if (n == NULL)
        return false;
    /* The range test comes first: converting an out-of-range double (or NaN) to an integer is
     * undefined behaviour. (double)INT64_MIN is -2^63, exact. */
    if (n->type == GW_YAML_FLOAT && n->v.f >= (double)INT64_MIN && n->v.f < -(double)INT64_MIN &&
        n->v.f == (double)(int64_t)n->v.f) {
        *out = (int64_t)n->v.f; /* JSON writers may emit 5.0 */
    } else if (n->type != GW_YAML_INT) {
        fail(ld, n, fpath(ld, r, name), "expected an integer");
        return false;
    } else {
        *out = n->v.i;
    }
    if (*out < min || *out > max) {
        fail(ld, n, fpath(ld, r, name), "value should be between %lld and %lld", (long long)min,
             (long long)max);
        *out = def;
        return false;
    }
    return true;
}

/* Index of the value in `choices` (NULL-terminated), `def` when absent, -1 when invalid. */
static int choice_of(struct ld *ld, const struct gw_yaml *n, const char *path,
                     const char *const *choices, int def)
{
    char list[512];
    size_t off = 0;

    if (gw_yaml_is_null(n))
        return def;
    if (n->type == GW_YAML_STR)
        for (int i = 0; choices[i] != NULL; i++)
            if (gw_str_eqc(n->str, choices[i]))
                return i;
    list[0] = '\0';
    for (int i = 0; choices[i] != NULL && off < sizeof(list); i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", choices[i]);
    if (n->type != GW_YAML_STR)
        fail(ld, n, path, "expected a string");
    else
        fail(ld, n, path, "expected one of: %s", list);
    return -1;
}

static int enum_field(struct ld *ld, const struct raw *r, const char *name,
                      const char *const *choices, int def)
{
    int v = choice_of(ld, field(r, name), fpath(ld, r, name), choices, def);

    return v < 0 ? def : v;
}

typedef const char *(*str_check)(struct ld *ld, struct gw_str s);

/* An array of strings (a set when `set`: duplicates rejected), each checked by `check`. */
static void strv_field(struct ld *ld, const struct raw *r, const char *name, str_check check,
                       struct gw_strv *out)
{
    const struct gw_yaml *n = field(r, name);

    out->v = NULL;
    out->n = 0;
    if (n == NULL)
        return;
    if (n->type != GW_YAML_SEQ) {
        fail(ld, n, fpath(ld, r, name), "expected an array");
        return;
    }
    out->v = gw_arena_calloc(ld->a, n->n, sizeof(*out->v));
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        const char *msg;
        char *p;

        if (it->type != GW_YAML_STR) {
            fail(ld, it, gw_arena_printf(ld->a, "%s.%s[%zu]", r->path, name, i),
                 "expected a string");
            continue;
        }
        if (check != NULL && (msg = check(ld, it->str)) != NULL) {
            p = gw_arena_printf(ld->a, "%s.%s[%zu]", r->path, name, i);
            fail(ld, it, p, "%s", msg);
            continue;
        }
        out->v[out->n++] = it->str;
    }
}

static void tags_field(struct ld *ld, const struct raw *r, struct gw_strv *out)
{
    strv_field(ld, r, "tags", NULL, out);
}

/* ---- ids ----------------------------------------------------------------------------- */

/* The entity's id: the explicit one, else Kong's uuid5 of `key` (NULL: [ours] fallback). */
static void set_id(struct ld *ld, struct raw *r, const char *key)
{
    const struct gw_yaml *n = field(r, "id");

    if (n != NULL && r->node->type == GW_YAML_MAP) {
        if (n->type != GW_YAML_STR || !gw_uuid_valid(n->str)) {
            fail(ld, n, fpath(ld, r, "id"), "expected a valid UUID");
        } else {
            for (size_t i = 0; i < GW_UUID_LEN; i++)
                r->id[i] = gw_lower(n->str.p[i]);
            r->id[GW_UUID_LEN] = '\0';
            return;
        }
    }
    if (key == NULL)
        key = r->path; /* unreachable for valid entities; keeps ids defined */
    gw_uuid5(etypes[r->t].table, key, strlen(key), r->id);
}

/* The text of a reference as written, for generated ids (Kong inserts string references as
 * they are, empty when unset, and nothing for an object reference). */
static const char *ref_text_for_id(const struct gw_yaml *n, bool *omit)
{
    *omit = false;
    if (gw_yaml_is_null(n))
        return "";
    if (n->type == GW_YAML_STR)
        return n->str.p;
    *omit = true;
    return "";
}

static const char *parent_id(const struct ld *ld, const struct raw *r, enum etype want)
{
    if (r->parent >= 0 && ld->raws[r->parent].t == want)
        return ld->raws[r->parent].id;
    return NULL;
}

/* ---- references ---------------------------------------------------------------------- */

static void add_ref(struct ld *ld, const struct raw *r, const char *fieldname,
                    const struct gw_yaml *node, enum etype target, const void **dst)
{
    if (ld->nrefs == ld->caprefs) {
        ld->caprefs = ld->caprefs * 2 + 16;
        ld->refs = gw_xrealloc(ld->refs, ld->caprefs * sizeof(*ld->refs));
    }
    ld->refs[ld->nrefs++] = (struct ref){(size_t)(r - ld->raws), fieldname, node, target, dst};
}

/* A foreign key field: filled from the parent when nested, else recorded for resolution. */
static void fk_field(struct ld *ld, struct raw *r, const char *name, enum etype target,
                     const void **dst, bool required)
{
    const struct gw_yaml *n = field(r, name);
    const struct raw *p = r->parent >= 0 ? &ld->raws[r->parent] : NULL;

    if (p != NULL && p->t == target && strcmp(parent_fk(p->t, r->t), name) == 0) {
        *dst = p->obj;
        if (n != NULL) /* it must name the enclosing entity: checked at resolution */
            add_ref(ld, r, name, n, target, NULL);
        return;
    }
    if (n == NULL) {
        if (required)
            fail(ld, r->node, fpath(ld, r, name), "required field missing");
        return;
    }
    if (p != NULL && r->t == E_PLUGIN) {
        fail(ld, n, fpath(ld, r, name),
             "value must be null: a plugin nested in %s takes its scope from it; a plugin "
             "scoped to two entities must be a top-level plugins entry",
             etypes[p->t].table);
        return;
    }
    add_ref(ld, r, name, n, target, dst);
}

static char *ref_repr(struct ld *ld, const struct gw_yaml *n)
{
    if (n->type == GW_YAML_MAP && n->n == 1 && n->pairs[0].val->type == GW_YAML_STR)
        return gw_arena_printf(ld->a, "{\"%s\":\"%s\"}", n->pairs[0].key->str.p,
                               n->pairs[0].val->str.p);
    return gw_arena_printf(ld->a, "%s", n->str.p != NULL ? n->str.p : "?");
}

static void *lookup(struct ld *ld, enum etype t, const struct gw_yaml *n)
{
    struct gw_str s = GW_STR_NULL;
    bool by_id = false, by_key = false;

    if (n->type == GW_YAML_STR) {
        s = n->str;
        by_id = by_key = true;
    } else if (n->type == GW_YAML_MAP && n->n == 1 && n->pairs[0].val->type == GW_YAML_STR) {
        s = n->pairs[0].val->str;
        by_id = gw_str_eqc(n->pairs[0].key->str, "id");
        by_key = etypes[t].keyname != NULL && (gw_str_eqc(n->pairs[0].key->str, "name") ||
                                               gw_str_eqc(n->pairs[0].key->str, etypes[t].keyname));
    }
    if (by_id && gw_uuid_valid(s)) {
        char low[GW_UUID_LEN + 1];
        for (size_t i = 0; i < GW_UUID_LEN; i++)
            low[i] = gw_lower(s.p[i]);
        low[GW_UUID_LEN] = '\0';
        struct raw *r = gw_map_get(ld->by_id[t], (struct gw_str){low, GW_UUID_LEN});
        if (r != NULL)
            return r->obj;
    }
    if (by_key && ld->by_key[t] != NULL) {
        struct raw *r = gw_map_get(ld->by_key[t], s);
        if (r != NULL)
            return r->obj;
    }
    return NULL;
}

static void resolve_refs(struct ld *ld)
{
    for (size_t i = 0; i < ld->nrefs; i++) {
        const struct ref *f = &ld->refs[i];
        const struct raw *r = &ld->raws[f->raw];
        void *obj = lookup(ld, f->target, f->node);

        if (f->dst == NULL && obj != NULL) { /* nested child naming its parent */
            if (obj != ld->raws[r->parent].obj)
                fail(ld, f->node, fpath(ld, r, f->field),
                     "value must be null or name the enclosing %s", etypes[f->target].fk);
            continue;
        }
        if (obj == NULL) {
            fail(ld, f->node, fpath(ld, r, f->field),
                 "invalid reference '%s: %s' (no such entry in '%s')", f->field,
                 ref_repr(ld, f->node), etypes[f->target].table);
            continue;
        }
        *f->dst = obj;
    }
}

/* ---- validators ---------------------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Kong's utf8_name: ASCII letters, digits, `. - _ ~`, and any non-ASCII byte. */
static const char *check_name(struct ld *ld, struct gw_str s)
{
    if (s.len == 0)
        return "length must be at least 1";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x80 && !is_alnum((char)c) && !strchr(".-_~", c))
            return gw_arena_printf(ld->a,
                                   "invalid value '%s': the only accepted ascii characters "
                                   "are alphanumerics or ., -, _, and ~",
                                   s.p);
    }
    return NULL;
}

/* A DNS name or an IP literal (no port). */
static bool valid_hostname(struct gw_str s, bool allow_wildcard)
{
    size_t label = 0, stars = 0;

    if (s.len == 0 || s.len > 253)
        return false;
    if (s.p[0] == '[' || memchr(s.p, ':', s.len) != NULL) { /* IPv6 */
        struct gw_str v6 = s;
        if (s.p[0] == '[') {
            if (s.len < 3 || s.p[s.len - 1] != ']')
                return false;
            v6 = (struct gw_str){s.p + 1, s.len - 2};
        }
        for (size_t i = 0; i < v6.len; i++)
            if (!(is_alnum(v6.p[i]) || v6.p[i] == ':' || v6.p[i] == '.'))
                return false;
        return true;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c == '*') {
            if (!allow_wildcard || ++stars > 1)
                return false;
        } else if (!is_alnum(c) && c != '-' && c != '_') {
            return false;
        }
        if (++label > 63)
            return false;
    }
    return label != 0;
}

static const char *check_host(struct ld *ld, struct gw_str s)
{
    if (!valid_hostname(s, false))
        return gw_arena_printf(ld->a, "invalid hostname: %s", s.p);
    return NULL;
}

/* Kong's wildcard host (route hosts, snis): one `*`, as the leftmost or rightmost label. */
static const char *check_wildcard_name(struct ld *ld, struct gw_str s)
{
    const char *star = memchr(s.p, '*', s.len);

    if (!valid_hostname(s, true))
        return gw_arena_printf(ld->a, "invalid hostname: %s", s.p);
    if (star != NULL) {
        size_t at = (size_t)(star - s.p);
        bool left = at == 0 && s.len > 2 && s.p[1] == '.';
        bool right = at == s.len - 1 && at >= 2 && s.p[at - 1] == '.';
        if (!left && !right)
            return "invalid wildcard: must be placed at leftmost or rightmost label";
    }
    return NULL;
}

/* Route hosts may carry `:port`. */
static const char *check_route_host(struct ld *ld, struct gw_str s)
{
    const char *colon = s.len > 0 && s.p[0] != '[' ? memchr(s.p, ':', s.len) : NULL;
    struct gw_str h = s;

    if (s.len > 0 && s.p[0] == '[') {
        const char *close = memchr(s.p, ']', s.len);
        if (close != NULL && (size_t)(close - s.p) + 1 < s.len)
            colon = close + 1;
    }
    if (colon != NULL) {
        size_t plen = s.len - (size_t)(colon - s.p) - 1;
        long port = 0;
        h.len = (size_t)(colon - s.p);
        if (*colon != ':' || plen == 0 || plen > 5)
            return gw_arena_printf(ld->a, "invalid hostname: %s", s.p);
        for (size_t i = 1; i <= plen; i++) {
            if (colon[i] < '0' || colon[i] > '9')
                return gw_arena_printf(ld->a, "invalid port number: %s", s.p);
            port = port * 10 + (colon[i] - '0');
        }
        if (port > 65535)
            return gw_arena_printf(ld->a, "invalid port number: %s", s.p);
        h = (struct gw_str){gw_arena_strndup(ld->a, s.p, h.len), h.len};
    }
    return check_wildcard_name(ld, h);
}

static const char *check_method(struct ld *ld, struct gw_str s)
{
    if (s.len == 0)
        return "length must be at least 1";
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] < 'A' || s.p[i] > 'Z')
            return gw_arena_printf(ld->a, "invalid value: %s", s.p);
    return NULL;
}

static const char *check_uuid(struct ld *ld, struct gw_str s)
{
    return gw_uuid_valid(s) ? NULL : "expected a valid UUID";
}

/* Service paths: start with `/`, no empty segments. */
static const char *check_service_path(struct gw_str s)
{
    if (s.len == 0 || s.p[0] != '/')
        return "should start with: /";
    for (size_t i = 1; i < s.len; i++)
        if (s.p[i] == '/' && s.p[i - 1] == '/')
            return "must not have empty segments";
    return NULL;
}

/* ---- protocols ----------------------------------------------------------------------- */

static const char *const proto_names[] = {
    "http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss", NULL};
#define PROTO_KONG_OSS "grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"

unsigned gw_proto_parse(struct gw_str name)
{
    for (unsigned i = 0; proto_names[i] != NULL; i++)
        if (gw_str_eqc(name, proto_names[i]))
            return 1u << i;
    return 0;
}

const char *gw_proto_name(unsigned bit)
{
    for (unsigned i = 0; proto_names[i] != NULL; i++)
        if (bit == 1u << i)
            return proto_names[i];
    return "?";
}

#define PROTO_HTTP_SET (GW_PROTO_HTTP | GW_PROTO_HTTPS)
#define PROTO_STREAM_SET (GW_PROTO_TCP | GW_PROTO_TLS | GW_PROTO_UDP)
#define PROTO_GRPC_SET (GW_PROTO_GRPC | GW_PROTO_GRPCS)
#define PROTO_OSS (PROTO_HTTP_SET | PROTO_STREAM_SET | PROTO_GRPC_SET | GW_PROTO_TLS_PASSTHROUGH)

/* A set of protocols; returns the bits (def when absent). */
static unsigned protocols_field(struct ld *ld, const struct raw *r, unsigned def)
{
    const struct gw_yaml *n = field(r, "protocols");
    unsigned bits = 0;

    if (n == NULL)
        return def;
    if (n->type != GW_YAML_SEQ) {
        fail(ld, n, fpath(ld, r, "protocols"), "expected a set");
        return def;
    }
    if (n->n == 0) {
        fail(ld, n, fpath(ld, r, "protocols"), "length must be at least 1");
        return def;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        unsigned b = it->type == GW_YAML_STR ? gw_proto_parse(it->str) : 0;
        if ((b & PROTO_OSS) == 0) {
            fail(ld, it, gw_arena_printf(ld->a, "%s.protocols[%zu]", r->path, i),
                 "expected one of: " PROTO_KONG_OSS);
            continue;
        }
        bits |= b;
    }
    return bits != 0 ? bits : def;
}

/* ---- entities ------------------------------------------------------------------------ */

/* True when `s` contains `needle` (`s` may hold NUL bytes). */
static bool str_contains(struct gw_str s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; n <= s.len && i <= s.len - n; i++)
        if (memcmp(s.p + i, needle, n) == 0)
            return true;
    return false;
}

static const char *read_pem(struct ld *ld, const struct raw *r, const char *name,
                            struct gw_str *val)
{
    /* PEM text as Kong has it, or [ours] a path to a PEM file. Only a value that could be a
     * path is opened: one line, no NUL (the path must be the whole value), not too long.
     * Anything else is left for the PEM parser to refuse. The value is never quoted for a
     * key field: a mangled private key must not end up in the log. */
    bool secret = strstr(name, "key") != NULL;

    if (val->len > 0 && !str_contains(*val, "-----BEGIN")) {
        struct gw_err ferr;
        size_t len = 0;
        char *buf;

        if (val->len > 4096 || memchr(val->p, '\0', val->len) != NULL ||
            memchr(val->p, '\n', val->len) != NULL)
            return secret ? "invalid key: neither PEM text nor a file name"
                          : "invalid certificate: neither PEM text nor a file name";
        gw_err_init(&ferr, NULL);
        buf = gw_read_file(val->p, 1u << 20, &len, &ferr);
        if (buf == NULL) {
            const char *msg =
                gw_arena_printf(ld->a, "cannot read PEM file%s%.*s%s: %s", secret ? "" : " '",
                                secret ? 0 : (int)val->len, val->p, secret ? "" : "'",
                                ferr.head != NULL ? ferr.head->msg : "error");
            gw_err_dispose(&ferr);
            return msg;
        }
        gw_err_dispose(&ferr);
        *val = (struct gw_str){gw_arena_strndup(ld->a, buf, len), len};
        free(buf);
    }
    (void)r;
    return NULL;
}

static X509 *pem_cert(struct gw_str pem, int *count)
{
    BIO *b = BIO_new_mem_buf(pem.p, (int)pem.len);
    X509 *first = NULL, *x;

    *count = 0;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (first == NULL)
            first = x;
        else
            X509_free(x);
        (*count)++;
    }
    ERR_clear_error();
    BIO_free(b);
    return first;
}

static EVP_PKEY *pem_key(struct gw_str pem)
{
    BIO *b = BIO_new_mem_buf(pem.p, (int)pem.len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

    ERR_clear_error();
    BIO_free(b);
    return k;
}

/* Checks one cert/key pair; messages never quote the key. Returns the key's type or -1. */
static int check_pair(struct ld *ld, const struct raw *r, const char *cname, struct gw_str cert,
                      const char *kname, struct gw_str key)
{
    int count = 0, type = -1;
    X509 *x = pem_cert(cert, &count);
    EVP_PKEY *k = pem_key(key);

    if (x == NULL)
        fail(ld, field(r, cname), fpath(ld, r, cname), "invalid certificate: no PEM certificate");
    if (k == NULL)
        fail(ld, field(r, kname), fpath(ld, r, kname), "invalid key: no PEM private key");
    if (x != NULL && k != NULL) {
        if (X509_check_private_key(x, k) != 1)
            fail(ld, field(r, kname), fpath(ld, r, kname), "certificate does not match key");
        type = EVP_PKEY_get_base_id(k);
    }
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    return type;
}

static void parse_certificate(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {
        {"id", K_USE},          {"cert", K_USE},      {"key", K_USE},        {"cert_alt", K_USE},
        {"key_alt", K_USE},     {"snis", K_NEST},     {"tags", K_USE},       {"created_at", K_META},
        {"updated_at", K_META}, {"services", K_NEST}, {"upstreams", K_NEST}, {NULL, K_USE}};
    struct gw_certificate *c = r->obj;
    const char *msg;
    int t1, t2;

    check_keys(ld, r, defs);
    str_field(ld, r, "cert", true, true, &c->cert);
    str_field(ld, r, "key", true, true, &c->key);
    str_field(ld, r, "cert_alt", false, true, &c->cert_alt);
    str_field(ld, r, "key_alt", false, true, &c->key_alt);
    tags_field(ld, r, &c->tags);
    set_id(ld, r, c->cert.len > 0 ? c->cert.p : NULL);
    if ((msg = read_pem(ld, r, "cert", &c->cert)) != NULL)
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"), "%s", msg);
    if ((msg = read_pem(ld, r, "key", &c->key)) != NULL)
        fail(ld, field(r, "key"), fpath(ld, r, "key"), "%s", msg);
    if (c->cert.len == 0 || c->key.len == 0)
        return;
    t1 = check_pair(ld, r, "cert", c->cert, "key", c->key);
    if ((c->cert_alt.len > 0) != (c->key_alt.len > 0)) {
        fail(ld, r->node, r->path,
             "all or none of these fields must be set: 'cert_alt', 'key_alt'");
    } else if (c->cert_alt.len > 0) {
        if ((msg = read_pem(ld, r, "cert_alt", &c->cert_alt)) != NULL ||
            (msg = read_pem(ld, r, "key_alt", &c->key_alt)) != NULL) {
            fail(ld, field(r, "cert_alt"), fpath(ld, r, "cert_alt"), "%s", msg);
            return;
        }
        t2 = check_pair(ld, r, "cert_alt", c->cert_alt, "key_alt", c->key_alt);
        if (t1 >= 0 && t1 == t2)
            fail(ld, field(r, "key_alt"), fpath(ld, r, "key_alt"),
                 "certificate and alternative certificate need to have different type "
                 "(e.g. RSA and ECDSA)");
    }
}

static void parse_ca_certificate(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {
        {"id", K_USE},          {"cert", K_USE},        {"cert_digest", K_USE}, {"tags", K_USE},
        {"created_at", K_META}, {"updated_at", K_META}, {NULL, K_USE}};
    struct gw_ca_certificate *c = r->obj;
    const char *msg;
    int count = 0;
    X509 *x;

    check_keys(ld, r, defs);
    str_field(ld, r, "cert", true, true, &c->cert);
    str_field(ld, r, "cert_digest", false, false, &c->cert_digest);
    tags_field(ld, r, &c->tags);
    set_id(ld, r, c->cert.len > 0 ? c->cert.p : NULL);
    if (c->cert.len == 0)
        return;
    if ((msg = read_pem(ld, r, "cert", &c->cert)) != NULL) {
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"), "%s", msg);
        return;
    }
    x = pem_cert(c->cert, &count);
    if (x == NULL)
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"), "invalid certificate: no PEM certificate");
    else if (count > 1)
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"),
             "please submit only one certificate at a time");
    else if (X509_check_ca(x) == 0)
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"),
             "certificate does not appear to be a CA "
             "because it is missing the \"CA\" basic "
             "constraint");
    else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        fail(ld, field(r, "cert"), fpath(ld, r, "cert"),
             "certificate expired, \"Not After\" time is in the past");
    X509_free(x);
}

static void parse_sni(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {
        {"id", K_USE},          {"name", K_USE},        {"certificate", K_USE}, {"tags", K_USE},
        {"created_at", K_META}, {"updated_at", K_META}, {NULL, K_USE}};
    struct gw_sni *s = r->obj;
    const char *msg;

    if (r->node->type == GW_YAML_STR) { /* certificates[].snis: [name, ...] shorthand */
        s->name = r->node->str;
        s->certificate = ld->raws[r->parent].obj;
    } else {
        check_keys(ld, r, defs);
        str_field(ld, r, "name", true, false, &s->name);
        fk_field(ld, r, "certificate", E_CERT, (const void **)&s->certificate, true);
        tags_field(ld, r, &s->tags);
    }
    if (s->name.len > 0 && (msg = check_wildcard_name(ld, s->name)) != NULL)
        fail(ld, r->node->type == GW_YAML_STR ? r->node : field(r, "name"),
             r->node->type == GW_YAML_STR ? r->path : fpath(ld, r, "name"), "%s", msg);
    r->key = s->name;
    if (r->node->type == GW_YAML_STR)
        gw_uuid5("snis", s->name.p, s->name.len, r->id);
    else
        set_id(ld, r, s->name.len > 0 ? s->name.p : NULL);
}

/* An upstream name is a host name that services refer to: no IP address, no port. */
static const char *check_upstream_name(struct ld *ld, struct gw_str s)
{
    bool digits_and_dots = true;

    for (size_t i = 0; i < s.len; i++)
        if (!(s.p[i] == '.' || (s.p[i] >= '0' && s.p[i] <= '9')))
            digits_and_dots = false;
    if (memchr(s.p, ':', s.len) != NULL || (s.len > 0 && s.p[0] == '['))
        return "Invalid name; no port allowed";
    if (digits_and_dots)
        return gw_arena_printf(ld->a, "Invalid name ('%s'); no ip addresses allowed", s.p);
    return check_host(ld, s);
}

static const char *const hash_names[] = {"none", "consumer",  "ip",          "header", "cookie",
                                         "path", "query_arg", "uri_capture", NULL};

static void parse_counts(struct ld *ld, const struct gw_yaml *n, const char *path, bool active,
                         bool healthy, struct gw_healthcheck_counts *c)
{
    static const uint16_t active_ok[] = {200, 302};
    static const uint16_t active_bad[] = {429, 404, 500, 501, 502, 503, 504, 505};
    static const uint16_t passive_ok[] = {200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                          300, 301, 302, 303, 304, 305, 306, 307, 308};
    static const uint16_t passive_bad[] = {429, 500, 503};
    const uint16_t *def =
        active ? (healthy ? active_ok : active_bad) : (healthy ? passive_ok : passive_bad);
    size_t ndef = active ? (healthy ? 2 : 8) : (healthy ? 19 : 3);
    struct raw sub = {.node = n, .path = path};
    int64_t v;
    const struct gw_yaml *st;

    c->http_statuses = (uint16_t *)def;
    c->nhttp_statuses = ndef;
    if (n == NULL)
        return;
    if (n->type != GW_YAML_MAP) {
        fail(ld, n, path, "expected a record");
        return;
    }
    {
        static const struct fdef hdefs[] = {
            {"interval", K_USE}, {"successes", K_USE}, {"http_statuses", K_USE}, {NULL, K_USE}};
        static const struct fdef udefs[] = {{"interval", K_USE},      {"http_failures", K_USE},
                                            {"tcp_failures", K_USE},  {"timeouts", K_USE},
                                            {"http_statuses", K_USE}, {NULL, K_USE}};
        static const struct fdef phdefs[] = {
            {"successes", K_USE}, {"http_statuses", K_USE}, {NULL, K_USE}};
        static const struct fdef pudefs[] = {{"http_failures", K_USE},
                                             {"tcp_failures", K_USE},
                                             {"timeouts", K_USE},
                                             {"http_statuses", K_USE},
                                             {NULL, K_USE}};
        check_keys(ld, &sub, active ? (healthy ? hdefs : udefs) : (healthy ? phdefs : pudefs));
    }
    if (active) {
        int_field(ld, &sub, "interval", 0, 65535, 0, &v);
        c->interval = (uint32_t)v;
    }
    if (healthy) {
        int_field(ld, &sub, "successes", 0, 255, 0, &v);
        c->successes = (uint32_t)v;
    } else {
        int_field(ld, &sub, "http_failures", 0, 255, 0, &v);
        c->http_failures = (uint32_t)v;
        int_field(ld, &sub, "tcp_failures", 0, 255, 0, &v);
        c->tcp_failures = (uint32_t)v;
        int_field(ld, &sub, "timeouts", 0, 255, 0, &v);
        c->timeouts = (uint32_t)v;
    }
    st = field(&sub, "http_statuses");
    if (st != NULL) {
        if (st->type != GW_YAML_SEQ) {
            fail(ld, st, fpath(ld, &sub, "http_statuses"), "expected an array");
            return;
        }
        c->http_statuses = gw_arena_calloc(ld->a, st->n, sizeof(uint16_t));
        c->nhttp_statuses = 0;
        for (size_t i = 0; i < st->n; i++) {
            const struct gw_yaml *it = st->items[i];
            if (it->type != GW_YAML_INT || it->v.i < 100 || it->v.i > 999) {
                fail(ld, it, gw_arena_printf(ld->a, "%s.http_statuses[%zu]", path, i),
                     "value should be between 100 and 999");
                continue;
            }
            c->http_statuses[c->nhttp_statuses++] = (uint16_t)it->v.i;
        }
    }
}

static void parse_healthchecks(struct ld *ld, const struct raw *r, struct gw_healthchecks *h)
{
    static const char *const types[] = {"http", "https", "tcp", "grpc", "grpcs", NULL};
    static const struct fdef hc_defs[] = {
        {"active", K_USE}, {"passive", K_USE}, {"threshold", K_USE}, {NULL, K_USE}};
    static const struct fdef a_defs[] = {
        {"type", K_USE},      {"timeout", K_USE},   {"concurrency", K_USE},
        {"http_path", K_USE}, {"https_sni", K_USE}, {"https_verify_certificate", K_USE},
        {"headers", K_USE},   {"healthy", K_USE},   {"unhealthy", K_USE},
        {NULL, K_USE}};
    static const struct fdef p_defs[] = {
        {"type", K_USE}, {"healthy", K_USE}, {"unhealthy", K_USE}, {NULL, K_USE}};
    const struct gw_yaml *n = field(r, "healthchecks");
    struct raw hc = {.node = n, .path = fpath(ld, r, "healthchecks")};
    struct raw act, pas;
    int64_t v;

    memset(h, 0, sizeof(*h));
    h->active.timeout = 1;
    h->active.concurrency = 10;
    h->active.http_path = GW_STR_LIT("/");
    h->active.https_verify_certificate = true;
    if (n != NULL && n->type != GW_YAML_MAP) {
        fail(ld, n, hc.path, "expected a record");
        n = NULL;
    }
    if (n != NULL)
        check_keys(ld, &hc, hc_defs);
    act = (struct raw){.node = n != NULL ? field(&hc, "active") : NULL,
                       .path = gw_arena_printf(ld->a, "%s.active", hc.path)};
    pas = (struct raw){.node = n != NULL ? field(&hc, "passive") : NULL,
                       .path = gw_arena_printf(ld->a, "%s.passive", hc.path)};
    if (act.node != NULL && act.node->type != GW_YAML_MAP) {
        fail(ld, act.node, act.path, "expected a record");
        act.node = NULL;
    }
    if (pas.node != NULL && pas.node->type != GW_YAML_MAP) {
        fail(ld, pas.node, pas.path, "expected a record");
        pas.node = NULL;
    }
    if (act.node != NULL) {
        const struct gw_yaml *t, *hd;
        check_keys(ld, &act, a_defs);
        h->active.type = (unsigned)enum_field(ld, &act, "type", types, 0);
        t = field(&act, "timeout");
        if (t != NULL) {
            double d = t->type == GW_YAML_INT ? (double)t->v.i : t->v.f;
            /* Written so that NaN fails too. */
            if ((t->type != GW_YAML_INT && t->type != GW_YAML_FLOAT) || !(d >= 0 && d <= 65535))
                fail(ld, t, fpath(ld, &act, "timeout"), "value should be between 0 and 65535");
            else
                h->active.timeout = d;
        }
        int_field(ld, &act, "concurrency", 1, 2147483648LL, 10, &v);
        h->active.concurrency = (uint32_t)v;
        str_field(ld, &act, "http_path", false, false, &h->active.http_path);
        str_field(ld, &act, "https_sni", false, false, &h->active.https_sni);
        bool_field(ld, &act, "https_verify_certificate", true, &h->active.https_verify_certificate);
        hd = field(&act, "headers");
        if (hd != NULL && hd->type != GW_YAML_MAP) {
            fail(ld, hd, fpath(ld, &act, "headers"), "expected a map");
        } else if (hd != NULL) {
            struct raw hr = {.node = hd, .path = fpath(ld, &act, "headers")};
            h->active.nheaders = hd->n;
            h->active.header_names = gw_arena_calloc(ld->a, hd->n, sizeof(struct gw_str));
            h->active.header_values = gw_arena_calloc(ld->a, hd->n, sizeof(struct gw_strv));
            for (size_t i = 0; i < hd->n; i++) {
                h->active.header_names[i] = hd->pairs[i].key->str;
                strv_field(ld, &hr, hd->pairs[i].key->str.p, NULL, &h->active.header_values[i]);
            }
        }
        parse_counts(ld, field(&act, "healthy"), fpath(ld, &act, "healthy"), true, true,
                     &h->active.healthy);
        parse_counts(ld, field(&act, "unhealthy"), fpath(ld, &act, "unhealthy"), true, false,
                     &h->active.unhealthy);
    } else {
        parse_counts(ld, NULL, NULL, true, true, &h->active.healthy);
        parse_counts(ld, NULL, NULL, true, false, &h->active.unhealthy);
    }
    if (pas.node != NULL) {
        static const char *const ptypes[] = {"http", "https", "tcp", "grpc", "grpcs", NULL};
        check_keys(ld, &pas, p_defs);
        h->passive.type = (unsigned)enum_field(ld, &pas, "type", ptypes, 0);
        parse_counts(ld, field(&pas, "healthy"), fpath(ld, &pas, "healthy"), false, true,
                     &h->passive.healthy);
        parse_counts(ld, field(&pas, "unhealthy"), fpath(ld, &pas, "unhealthy"), false, false,
                     &h->passive.unhealthy);
    } else {
        parse_counts(ld, NULL, NULL, false, true, &h->passive.healthy);
        parse_counts(ld, NULL, NULL, false, false, &h->passive.unhealthy);
    }
    if (n != NULL) {
        const struct gw_yaml *t = field(&hc, "threshold");
        if (t != NULL) {
            double d = t->type == GW_YAML_INT ? (double)t->v.i : t->v.f;
            if ((t->type != GW_YAML_INT && t->type != GW_YAML_FLOAT) || !(d >= 0 && d <= 100))
                fail(ld, t, fpath(ld, &hc, "threshold"), "value should be between 0 and 100");
            else
                h->threshold = d;
        }
    }
}

static void parse_upstream(struct ld *ld, struct raw *r)
{
    static const char *const algos[] = {"round-robin", "consistent-hashing", "least-connections",
                                        "latency", NULL};
    static const struct fdef defs[] = {{"id", K_USE},
                                       {"name", K_USE},
                                       {"algorithm", K_USE},
                                       {"hash_on", K_USE},
                                       {"hash_fallback", K_USE},
                                       {"hash_on_header", K_USE},
                                       {"hash_fallback_header", K_USE},
                                       {"hash_on_cookie", K_USE},
                                       {"hash_on_cookie_path", K_USE},
                                       {"hash_on_query_arg", K_USE},
                                       {"hash_fallback_query_arg", K_USE},
                                       {"hash_on_uri_capture", K_USE},
                                       {"hash_fallback_uri_capture", K_USE},
                                       {"slots", K_USE},
                                       {"healthchecks", K_USE},
                                       {"host_header", K_USE},
                                       {"client_certificate", K_USE},
                                       {"use_srv_name", K_WARN},
                                       {"tags", K_USE},
                                       {"targets", K_NEST},
                                       {"created_at", K_META},
                                       {"updated_at", K_META},
                                       {NULL, K_USE}};
    struct gw_upstream *u = r->obj;
    const char *msg;
    int64_t v;

    check_keys(ld, r, defs);
    if (str_field(ld, r, "name", true, false, &u->name) &&
        (msg = check_upstream_name(ld, u->name)) != NULL)
        fail(ld, field(r, "name"), fpath(ld, r, "name"), "%s", msg);
    r->key = u->name;
    set_id(ld, r, u->name.len > 0 ? u->name.p : NULL);
    u->algorithm = (enum gw_lb_algorithm)enum_field(ld, r, "algorithm", algos, 0);
    u->hash_on = (enum gw_hash_on)enum_field(ld, r, "hash_on", hash_names, 0);
    u->hash_fallback = (enum gw_hash_on)enum_field(ld, r, "hash_fallback", hash_names, 0);
    str_field(ld, r, "hash_on_header", false, false, &u->hash_on_header);
    str_field(ld, r, "hash_fallback_header", false, false, &u->hash_fallback_header);
    str_field(ld, r, "hash_on_cookie", false, false, &u->hash_on_cookie);
    u->hash_on_cookie_path = GW_STR_LIT("/");
    str_field(ld, r, "hash_on_cookie_path", false, false, &u->hash_on_cookie_path);
    str_field(ld, r, "hash_on_query_arg", false, false, &u->hash_on_query_arg);
    str_field(ld, r, "hash_fallback_query_arg", false, false, &u->hash_fallback_query_arg);
    str_field(ld, r, "hash_on_uri_capture", false, false, &u->hash_on_uri_capture);
    str_field(ld, r, "hash_fallback_uri_capture", false, false, &u->hash_fallback_uri_capture);
    int_field(ld, r, "slots", 10, 65536, 10000, &v);
    u->slots = (uint32_t)v;
    if (str_field(ld, r, "host_header", false, false, &u->host_header) &&
        (msg = check_host(ld, u->host_header)) != NULL)
        fail(ld, field(r, "host_header"), fpath(ld, r, "host_header"), "%s", msg);
    fk_field(ld, r, "client_certificate", E_CERT, (const void **)&u->client_certificate, false);
    tags_field(ld, r, &u->tags);
    parse_healthchecks(ld, r, &u->healthchecks);

    /* Kong's shorthands: least-connections and latency clear hash_on; otherwise an explicit
     * hash_on picks the algorithm (none: round-robin, anything else: consistent-hashing). */
    if (u->algorithm == GW_LB_LEAST_CONNECTIONS || u->algorithm == GW_LB_LATENCY)
        u->hash_on = GW_HASH_NONE;
    else if (field(r, "hash_on") != NULL)
        u->algorithm = u->hash_on == GW_HASH_NONE ? GW_LB_ROUND_ROBIN : GW_LB_CONSISTENT_HASHING;
    /* Kong's hashing rules (upstreams.lua entity_checks). */
    if ((u->hash_on == GW_HASH_NONE || u->hash_on == GW_HASH_COOKIE) &&
        u->hash_fallback != GW_HASH_NONE)
        fail(ld, field(r, "hash_fallback"), fpath(ld, r, "hash_fallback"),
             "must be 'none' when 'hash_on' is 'none' or 'cookie'");
    if (u->hash_on == u->hash_fallback && u->hash_on != GW_HASH_NONE &&
        u->hash_on != GW_HASH_HEADER && u->hash_on != GW_HASH_QUERY_ARG &&
        u->hash_on != GW_HASH_URI_CAPTURE)
        fail(ld, field(r, "hash_fallback"), fpath(ld, r, "hash_fallback"),
             "values of these fields must be distinct: 'hash_on', 'hash_fallback'");
    if (u->hash_on == GW_HASH_HEADER && u->hash_on_header.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_on_header"), "required field missing");
    if (u->hash_fallback == GW_HASH_HEADER && u->hash_fallback_header.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_fallback_header"), "required field missing");
    if (u->hash_on == GW_HASH_COOKIE && u->hash_on_cookie.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_on_cookie"), "required field missing");
    if (u->hash_on == GW_HASH_QUERY_ARG && u->hash_on_query_arg.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_on_query_arg"), "required field missing");
    if (u->hash_fallback == GW_HASH_QUERY_ARG && u->hash_fallback_query_arg.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_fallback_query_arg"), "required field missing");
    if (u->hash_on == GW_HASH_URI_CAPTURE && u->hash_on_uri_capture.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_on_uri_capture"), "required field missing");
    if (u->hash_fallback == GW_HASH_URI_CAPTURE && u->hash_fallback_uri_capture.len == 0)
        fail(ld, r->node, fpath(ld, r, "hash_fallback_uri_capture"), "required field missing");
}

static void parse_target(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {
        {"id", K_USE},   {"target", K_USE},      {"weight", K_USE},      {"upstream", K_USE},
        {"tags", K_USE}, {"created_at", K_META}, {"updated_at", K_META}, {NULL, K_USE}};
    struct gw_target *t = r->obj;
    const char *up;
    struct gw_str raw = GW_STR_NULL;
    bool omit = false;
    int64_t w;
    char *key;

    check_keys(ld, r, defs); /* `upstream` is resolved in link_entities() */
    if (str_field(ld, r, "target", true, false, &raw)) {
        if (gw_parse_hostport(raw, 8000, ld->a, &t->host, &t->port) != 0 ||
            !valid_hostname(t->host, false))
            fail(ld, field(r, "target"), fpath(ld, r, "target"),
                 "Invalid target ('%s'); not a "
                 "valid hostname or ip address",
                 raw.p);
        else
            t->target = gw_str_c(gw_arena_printf(
                ld->a, memchr(t->host.p, ':', t->host.len) != NULL ? "[%s]:%u" : "%s:%u", t->host.p,
                t->port));
    }
    int_field(ld, r, "weight", 0, 65535, 100, &w);
    t->weight = (uint32_t)w;
    tags_field(ld, r, &t->tags);
    up = parent_id(ld, r, E_UPSTREAM);
    if (up == NULL)
        up = ref_text_for_id(field(r, "upstream"), &omit);
    key = omit ? gw_arena_printf(ld->a, "targets:*:%s", raw.p)
               : gw_arena_printf(ld->a, "targets:*:%s:%s", up, raw.p);
    set_id(ld, r, raw.len > 0 ? key : NULL);
}

/* Parses `url` into the service's protocol/host/port/path. Returns 0 or -1. */
static int parse_url(struct ld *ld, const struct raw *r, struct gw_str url, struct gw_service *s)
{
    const char *p = url.p, *end = url.p + url.len, *sep, *hs, *he;
    struct gw_str scheme = GW_STR_NULL, host;
    long port = -1;

    sep = strstr(p, "://");
    if (sep != NULL) {
        scheme = (struct gw_str){p, (size_t)(sep - p)};
        p = sep + 3;
    }
    hs = p;
    if (*p == '[') {
        he = strchr(p, ']');
        if (he == NULL)
            return -1;
        host = (struct gw_str){p + 1, (size_t)(he - p - 1)};
        p = he + 1;
    } else {
        while (p < end && *p != ':' && *p != '/' && *p != '?' && *p != '#')
            p++;
        host = (struct gw_str){hs, (size_t)(p - hs)};
    }
    if (p < end && *p == ':') {
        port = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            port = port * 10 + (*p++ - '0');
            if (port > 65535)
                return -1;
        }
    }
    if (host.len == 0)
        return -1;
    if (scheme.len > 0) {
        s->protocol = gw_proto_parse(scheme);
        if ((s->protocol & PROTO_OSS) == 0) {
            fail(ld, field(r, "url"), fpath(ld, r, "url"), "expected one of: " PROTO_KONG_OSS);
            return 0;
        }
    } else {
        s->protocol = port == 443 ? GW_PROTO_HTTPS : GW_PROTO_HTTP;
    }
    s->host = gw_arena_str(ld->a, host);
    s->port = (uint16_t)(port >= 0 ? port : (s->protocol == GW_PROTO_HTTPS ? 443 : 80));
    if (p < end && *p == '/') {
        const char *q = p;
        while (q < end && *q != '?' && *q != '#')
            q++;
        s->path = gw_arena_str(ld->a, (struct gw_str){p, (size_t)(q - p)});
    }
    return 0;
}

static void parse_service(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {{"id", K_USE},
                                       {"name", K_USE},
                                       {"url", K_USE},
                                       {"protocol", K_USE},
                                       {"host", K_USE},
                                       {"port", K_USE},
                                       {"path", K_USE},
                                       {"retries", K_USE},
                                       {"connect_timeout", K_USE},
                                       {"write_timeout", K_USE},
                                       {"read_timeout", K_USE},
                                       {"tls_verify", K_USE},
                                       {"tls_verify_depth", K_USE},
                                       {"ca_certificates", K_USE},
                                       {"client_certificate", K_USE},
                                       {"enabled", K_USE},
                                       {"tags", K_USE},
                                       {"routes", K_NEST},
                                       {"plugins", K_NEST},
                                       {"created_at", K_META},
                                       {"updated_at", K_META},
                                       {NULL, K_USE}};
    struct gw_service *s = r->obj;
    struct gw_str url;
    const char *msg;
    int64_t v;

    check_keys(ld, r, defs);
    s->pos = (struct gw_pos){r->node->line, r->node->col};
    if (str_field(ld, r, "name", false, false, &s->name) && (msg = check_name(ld, s->name)) != NULL)
        fail(ld, field(r, "name"), fpath(ld, r, "name"), "%s", msg);
    r->key = s->name;
    set_id(ld, r, s->name.len > 0 ? s->name.p : NULL);
    s->protocol = GW_PROTO_HTTP;
    s->port = 80;
    if (str_field(ld, r, "url", false, false, &url)) {
        static const char *const parts[] = {"protocol", "host", "port", "path", NULL};
        for (const char *const *pt = parts; *pt != NULL; pt++)
            if (field(r, *pt) != NULL)
                fail(ld, field(r, *pt), fpath(ld, r, *pt),
                     "cannot be set together with 'url' (url sets protocol, host, port and "
                     "path)");
        if (parse_url(ld, r, url, s) != 0)
            fail(ld, field(r, "url"), fpath(ld, r, "url"), "invalid url '%s'", url.p);
    } else {
        const struct gw_yaml *pn = field(r, "protocol");
        if (pn != NULL) {
            unsigned b = pn->type == GW_YAML_STR ? gw_proto_parse(pn->str) : 0;
            if ((b & PROTO_OSS) == 0)
                fail(ld, pn, fpath(ld, r, "protocol"), "expected one of: " PROTO_KONG_OSS);
            else
                s->protocol = b;
        }
        str_field(ld, r, "host", true, false, &s->host);
        if (int_field(ld, r, "port", 0, 65535, 80, &v))
            s->port = (uint16_t)v;
        str_field(ld, r, "path", false, false, &s->path);
    }
    if (s->host.len > 0 && (msg = check_host(ld, s->host)) != NULL)
        fail(ld, field(r, "host") != NULL ? field(r, "host") : field(r, "url"),
             fpath(ld, r, field(r, "host") != NULL ? "host" : "url"), "%s", msg);
    if (s->path.len > 0 && (msg = check_service_path(s->path)) != NULL)
        fail(ld, field(r, "path") != NULL ? field(r, "path") : field(r, "url"),
             fpath(ld, r, field(r, "path") != NULL ? "path" : "url"), "%s", msg);
    int_field(ld, r, "retries", 0, 32767, 5, &v);
    s->retries = (uint32_t)v;
    int_field(ld, r, "connect_timeout", 1, 2147483646, 60000, &v);
    s->connect_timeout = (uint32_t)v;
    int_field(ld, r, "write_timeout", 1, 2147483646, 60000, &v);
    s->write_timeout = (uint32_t)v;
    int_field(ld, r, "read_timeout", 1, 2147483646, 60000, &v);
    s->read_timeout = (uint32_t)v;
    s->tls_verify = -1;
    if (field(r, "tls_verify") != NULL) {
        bool b;
        bool_field(ld, r, "tls_verify", false, &b);
        s->tls_verify = b;
    }
    s->tls_verify_depth = -1;
    if (int_field(ld, r, "tls_verify_depth", 0, 64, -1, &v))
        s->tls_verify_depth = (int)v;
    bool_field(ld, r, "enabled", true, &s->enabled);
    tags_field(ld, r, &s->tags);
    fk_field(ld, r, "client_certificate", E_CERT, (const void **)&s->client_certificate, false);
    {
        struct gw_strv ids;
        strv_field(ld, r, "ca_certificates", check_uuid, &ids);
        s->ca_certificates = gw_arena_calloc(ld->a, ids.n, sizeof(*s->ca_certificates));
        s->nca_certificates = ids.n;
        for (size_t i = 0; i < ids.n; i++) {
            struct gw_yaml *node = field(r, "ca_certificates")->items[i];
            add_ref(ld, r, gw_arena_printf(ld->a, "ca_certificates[%zu]", i), node, E_CA,
                    (const void **)&s->ca_certificates[i]);
        }
    }
    /* Kong's conditional checks on protocol. */
    if (s->protocol & (PROTO_STREAM_SET | PROTO_GRPC_SET)) {
        if (s->path.len > 0 && field(r, "path") != NULL)
            fail(ld, field(r, "path"), fpath(ld, r, "path"), "value must be null");
    }
    if (!(s->protocol & (GW_PROTO_HTTPS | GW_PROTO_TLS))) {
        static const char *const tls_only[] = {"client_certificate", "tls_verify",
                                               "tls_verify_depth", "ca_certificates", NULL};
        for (const char *const *f = tls_only; *f != NULL; f++)
            if (field(r, *f) != NULL)
                fail(ld, field(r, *f), fpath(ld, r, *f),
                     "value must be null (only for protocols https and tls)");
    }
    if (!(s->protocol & PROTO_HTTP_SET))
        gw_warn_at(ld->err, r->node, r->path,
                   "protocol '%s' is not proxied by gatehouse (HTTP and HTTPS only)",
                   gw_proto_name(s->protocol));
}

static const char *check_route_path(struct ld *ld, struct gw_str s)
{
    return gw_router_check_path(s, ld->a);
}

/* Kong's 1.1/2.1 -> 3.0 migration: a path with characters outside [A-Za-z0-9.-_~/%] was a
 * regex and gets the `~` prefix. */
static struct gw_str migrate_path(struct ld *ld, struct gw_str p)
{
    for (size_t i = 0; i < p.len; i++) {
        char c = p.p[i];
        if (!is_alnum(c) && !strchr(".-_~/%", c))
            return gw_str_c(gw_arena_printf(ld->a, "~%s", p.p));
    }
    return p;
}

static void parse_route(struct ld *ld, struct raw *r)
{
    static const char *const handling[] = {"v0", "v1", NULL};
    static const struct fdef defs[] = {{"id", K_USE},
                                       {"name", K_USE},
                                       {"service", K_USE},
                                       {"protocols", K_USE},
                                       {"methods", K_USE},
                                       {"hosts", K_USE},
                                       {"paths", K_USE},
                                       {"headers", K_USE},
                                       {"snis", K_USE},
                                       {"sources", K_USE},
                                       {"destinations", K_USE},
                                       {"strip_path", K_USE},
                                       {"preserve_host", K_USE},
                                       {"regex_priority", K_USE},
                                       {"path_handling", K_USE},
                                       {"https_redirect_status_code", K_USE},
                                       {"request_buffering", K_USE},
                                       {"response_buffering", K_USE},
                                       {"tags", K_USE},
                                       {"plugins", K_NEST},
                                       {"created_at", K_META},
                                       {"updated_at", K_META},
                                       {NULL, K_USE}};
    struct gw_route *rt = r->obj;
    const struct gw_yaml *n;
    const char *msg;
    int64_t v;

    check_keys(ld, r, defs);
    rt->pos = (struct gw_pos){r->node->line, r->node->col};
    if (field(r, "expression") != NULL || field(r, "priority") != NULL)
        return; /* reported as unknown fields: the expressions router is not supported */
    if (str_field(ld, r, "name", false, false, &rt->name) &&
        (msg = check_name(ld, rt->name)) != NULL)
        fail(ld, field(r, "name"), fpath(ld, r, "name"), "%s", msg);
    r->key = rt->name;
    set_id(ld, r, rt->name.len > 0 ? rt->name.p : NULL);
    fk_field(ld, r, "service", E_SERVICE, (const void **)&rt->service, false);
    rt->protocols = protocols_field(ld, r, GW_PROTO_HTTP | GW_PROTO_HTTPS);
    strv_field(ld, r, "methods", check_method, &rt->methods);
    strv_field(ld, r, "hosts", check_route_host, &rt->hosts);
    strv_field(ld, r, "snis", check_wildcard_name, &rt->snis);
    /* paths: migrate first (1.1/2.1), then validate, as Kong does. */
    n = field(r, "paths");
    if (n != NULL && n->type != GW_YAML_SEQ) {
        fail(ld, n, fpath(ld, r, "paths"), "expected an array");
    } else if (n != NULL) {
        rt->paths.v = gw_arena_calloc(ld->a, n->n, sizeof(struct gw_str));
        for (size_t i = 0; i < n->n; i++) {
            const struct gw_yaml *it = n->items[i];
            const char *p = gw_arena_printf(ld->a, "%s.paths[%zu]", r->path, i);
            struct gw_str s;
            if (it->type != GW_YAML_STR) {
                fail(ld, it, p, "expected a string");
                continue;
            }
            s = ld->migrate_paths ? migrate_path(ld, it->str) : it->str;
            if ((msg = check_route_path(ld, s)) != NULL) {
                fail(ld, it, p, "%s", msg);
                continue;
            }
            rt->paths.v[rt->paths.n++] = s;
        }
    }
    n = field(r, "headers");
    if (n != NULL && n->type != GW_YAML_MAP) {
        fail(ld, n, fpath(ld, r, "headers"), "expected a map");
    } else if (n != NULL) {
        struct raw hr = {.node = n, .path = fpath(ld, r, "headers")};
        rt->headers = gw_arena_calloc(ld->a, n->n, sizeof(*rt->headers));
        for (size_t i = 0; i < n->n; i++) {
            struct gw_str name = n->pairs[i].key->str;
            struct gw_route_header *h = &rt->headers[rt->nheaders];
            char *lower = gw_arena_strndup(ld->a, name.p, name.len);
            for (size_t j = 0; j < name.len; j++)
                lower[j] = gw_lower(lower[j]);
            if (gw_str_eqc((struct gw_str){lower, name.len}, "host")) {
                fail(ld, n->pairs[i].key, fpath(ld, &hr, name.p),
                     "cannot contain 'host' header, which must be specified in the 'hosts' "
                     "attribute");
                continue;
            }
            if (n->pairs[i].val->type == GW_YAML_STR) { /* a single value */
                h->values.v = gw_arena_alloc(ld->a, sizeof(struct gw_str));
                h->values.v[0] = n->pairs[i].val->str;
                h->values.n = 1;
            } else {
                strv_field(ld, &hr, name.p, NULL, &h->values);
            }
            h->name = (struct gw_str){lower, name.len};
            rt->nheaders++;
        }
    }
    bool_field(ld, r, "strip_path", true, &rt->strip_path);
    bool_field(ld, r, "preserve_host", false, &rt->preserve_host);
    bool_field(ld, r, "request_buffering", true, &rt->request_buffering);
    bool_field(ld, r, "response_buffering", true, &rt->response_buffering);
    int_field(ld, r, "regex_priority", INT64_MIN, INT64_MAX, 0, &rt->regex_priority);
    rt->path_handling = (enum gw_path_handling)enum_field(ld, r, "path_handling", handling, 0);
    if (rt->path_handling == GW_PATH_V1)
        gw_warn_at(ld->err, field(r, "path_handling"), fpath(ld, r, "path_handling"),
                   "v1 is deprecated (Kong 3 routers apply v0); gatehouse applies v1 as "
                   "documented in docs/routing.md");
    rt->https_redirect_status_code = 426;
    if (int_field(ld, r, "https_redirect_status_code", 0, 999, 426, &v)) {
        if (v != 426 && v != 301 && v != 302 && v != 307 && v != 308)
            fail(ld, field(r, "https_redirect_status_code"),
                 fpath(ld, r, "https_redirect_status_code"),
                 "expected one of: 426, 301, 302, 307, 308");
        else
            rt->https_redirect_status_code = (uint16_t)v;
    }
    tags_field(ld, r, &rt->tags);

    /* Kong's entity checks. */
    if ((rt->protocols & PROTO_HTTP_SET) && (rt->protocols & ~PROTO_HTTP_SET))
        fail(ld, field(r, "protocols"), fpath(ld, r, "protocols"),
             "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp'), "
             "('tls_passthrough'), ('grpc', 'grpcs')");
    if (rt->protocols & (PROTO_HTTP_SET | PROTO_GRPC_SET)) {
        bool https = (rt->protocols & (GW_PROTO_HTTPS | GW_PROTO_GRPCS)) != 0;
        if (rt->methods.n == 0 && rt->hosts.n == 0 && rt->nheaders == 0 && rt->paths.n == 0 &&
            (!https || rt->snis.n == 0) && field(r, "methods") == NULL &&
            field(r, "hosts") == NULL && field(r, "headers") == NULL && field(r, "paths") == NULL &&
            (!https || field(r, "snis") == NULL))
            fail(ld, r->node, r->path,
                 https ? "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when "
                         "'protocols' is 'https'"
                       : "must set one of 'methods', 'hosts', 'headers', 'paths' when "
                         "'protocols' is 'http'");
        if (!https && rt->snis.n > 0)
            fail(ld, field(r, "snis"), fpath(ld, r, "snis"),
                 "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
                 "'tls_passthrough'");
    }
    for (int i = 0; i < 2; i++) {
        const char *f = i == 0 ? "sources" : "destinations";
        if (field(r, f) != NULL && (rt->protocols & (PROTO_HTTP_SET | PROTO_GRPC_SET)))
            fail(ld, field(r, f), fpath(ld, r, f),
                 "cannot set '%s' when 'protocols' is 'grpc', 'grpcs', 'http' or 'https'", f);
    }
    if (!(rt->protocols & PROTO_HTTP_SET))
        gw_warn_at(ld->err, r->node, r->path,
                   "route protocols are not served by gatehouse (HTTP and HTTPS only): the "
                   "route is ignored");
}

static void parse_consumer(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {{"id", K_USE},
                                       {"username", K_USE},
                                       {"custom_id", K_USE},
                                       {"tags", K_USE},
                                       {"keyauth_credentials", K_NEST},
                                       {"jwt_secrets", K_NEST},
                                       {"acls", K_NEST},
                                       {"plugins", K_NEST},
                                       {"created_at", K_META},
                                       {"updated_at", K_META},
                                       {"type", K_META},
                                       {NULL, K_USE}};
    struct gw_consumer *c = r->obj;

    check_keys(ld, r, defs);
    str_field(ld, r, "username", false, false, &c->username);
    str_field(ld, r, "custom_id", false, false, &c->custom_id);
    if (field(r, "username") == NULL && field(r, "custom_id") == NULL)
        fail(ld, r->node, r->path,
             "at least one of these fields must be non-empty: 'custom_id', 'username'");
    tags_field(ld, r, &c->tags);
    r->key = c->username;
    set_id(ld, r, c->username.len > 0 ? c->username.p : NULL);
    if (c->username.len == 0 && field(r, "id") == NULL) { /* [ours] stable id from custom_id */
        /* Built by length, not printed: a custom_id may hold a NUL byte. */
        size_t len = sizeof("custom_id:") - 1 + c->custom_id.len;
        char *k = gw_arena_alloc(ld->a, len + 1);
        memcpy(k, "custom_id:", sizeof("custom_id:") - 1);
        if (c->custom_id.len > 0)
            memcpy(k + sizeof("custom_id:") - 1, c->custom_id.p, c->custom_id.len);
        k[len] = '\0';
        gw_uuid5("consumers", k, len, r->id);
    }
}

static void parse_keyauth(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {{"id", K_USE},  {"consumer", K_USE}, {"key", K_USE},
                                       {"ttl", K_USE}, {"tags", K_USE},     {"created_at", K_META},
                                       {NULL, K_USE}};
    struct gw_keyauth_credential *k = r->obj;
    size_t pos;

    check_keys(ld, r, defs);
    fk_field(ld, r, "consumer", E_CONSUMER, (const void **)&k->consumer, true);
    str_field(ld, r, "key", true, true, &k->key);
    int_field(ld, r, "ttl", 0, 100000000, 0, &k->ttl);
    tags_field(ld, r, &k->tags);
    /* [ours] never derive an id from the secret key: consumer reference + position among the
     * credentials (slots are filled in collection order). */
    pos = (size_t)(k - (struct gw_keyauth_credential *)ld->arrays[E_KEYAUTH]);
    {
        bool omit;
        const char *c = parent_id(ld, r, E_CONSUMER);
        if (c == NULL)
            c = ref_text_for_id(field(r, "consumer"), &omit);
        set_id(ld, r, gw_arena_printf(ld->a, "%s:%zu", c, pos));
    }
}

static void free_pkey(void *k)
{
    EVP_PKEY_free(k);
}

static void parse_jwt_secret(struct ld *ld, struct raw *r)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384", "ES512", "PS256",
                                       "PS384", "PS512", "EdDSA", NULL};
    static const struct fdef defs[] = {
        {"id", K_USE},     {"consumer", K_USE},    {"key", K_USE},
        {"secret", K_USE}, {"algorithm", K_USE},   {"rsa_public_key", K_USE},
        {"tags", K_USE},   {"created_at", K_META}, {NULL, K_USE}};
    struct gw_jwt_secret *j = r->obj;
    int alg;

    check_keys(ld, r, defs);
    fk_field(ld, r, "consumer", E_CONSUMER, (const void **)&j->consumer, true);
    str_field(ld, r, "key", true, false, &j->key);
    str_field(ld, r, "secret", false, true, &j->secret);
    alg = enum_field(ld, r, "algorithm", algs, 0);
    j->algorithm = gw_str_c(algs[alg]);
    str_field(ld, r, "rsa_public_key", false, true, &j->rsa_public_key);
    tags_field(ld, r, &j->tags);
    /* Kong requires the public key for RS*, PS* and EdDSA (not ES*, whose tokens then never
     * verify: the plugin fails closed). */
    if (((alg >= 3 && alg <= 5) || alg >= 9) && j->rsa_public_key.len == 0)
        fail(ld, r->node, fpath(ld, r, "rsa_public_key"),
             "required field missing (algorithm %s needs a public key)", algs[alg]);
    if (alg < 3 && j->secret.len == 0)
        fail(ld, r->node, fpath(ld, r, "secret"),
             "required field missing: gatehouse does not generate secrets");
    if (j->rsa_public_key.len > 0) { /* parsed once, here: the jwt plugin verifies with it */
        BIO *b = BIO_new_mem_buf(j->rsa_public_key.p, (int)j->rsa_public_key.len);
        EVP_PKEY *k = b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        ERR_clear_error();
        if (k == NULL) {
            fail(ld, field(r, "rsa_public_key"), fpath(ld, r, "rsa_public_key"), "invalid key");
        } else {
            j->pkey = k;
            gw_arena_on_free(ld->a, free_pkey, k);
        }
    }
    r->key = j->key;
    set_id(ld, r, j->key.len > 0 ? j->key.p : NULL);
}

static void parse_acl(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {{"id", K_USE},   {"consumer", K_USE},    {"group", K_USE},
                                       {"tags", K_USE}, {"created_at", K_META}, {NULL, K_USE}};
    struct gw_acl *acl = r->obj;
    const char *c;
    bool omit = false;

    check_keys(ld, r, defs);
    fk_field(ld, r, "consumer", E_CONSUMER, (const void **)&acl->consumer, true);
    str_field(ld, r, "group", true, false, &acl->group);
    tags_field(ld, r, &acl->tags);
    c = parent_id(ld, r, E_CONSUMER);
    if (c == NULL)
        c = ref_text_for_id(field(r, "consumer"), &omit);
    set_id(ld, r,
           acl->group.len > 0
               ? gw_arena_printf(ld->a, omit ? "acls:*:%.0s%s" : "acls:*:%s:%s", c, acl->group.p)
               : NULL);
}

static char *known_plugins(struct ld *ld)
{
    char *list = "";

    for (size_t i = 0; gw_plugins[i] != NULL; i++)
        list = gw_arena_printf(ld->a, "%s%s%s", list, i ? ", " : "", gw_plugins[i]->name);
    return list[0] != '\0' ? list : "none";
}

static void parse_plugin(struct ld *ld, struct raw *r)
{
    static const struct fdef defs[] = {
        {"id", K_USE},          {"name", K_USE},      {"config", K_USE},
        {"enabled", K_USE},     {"protocols", K_USE}, {"service", K_USE},
        {"route", K_USE},       {"consumer", K_USE},  {"instance_name", K_USE},
        {"tags", K_USE},        {"ordering", K_WARN}, {"created_at", K_META},
        {"updated_at", K_META}, {NULL, K_USE}};
    static const char *const scopes[] = {"route", "service", "consumer"};
    struct gw_plugin_instance *p = r->obj;
    const struct gw_yaml *conf;
    char *key;
    const char *msg;

    check_keys(ld, r, defs);
    p->pos = (struct gw_pos){r->node->line, r->node->col};
    str_field(ld, r, "name", true, false, &p->name);
    if (str_field(ld, r, "instance_name", false, false, &p->instance_name) &&
        (msg = check_name(ld, p->instance_name)) != NULL)
        fail(ld, field(r, "instance_name"), fpath(ld, r, "instance_name"), "%s", msg);
    bool_field(ld, r, "enabled", true, &p->enabled);
    p->protocols = protocols_field(ld, r, GW_PROTO_GRPC | GW_PROTO_GRPCS | PROTO_HTTP_SET);
    tags_field(ld, r, &p->tags);
    fk_field(ld, r, "service", E_SERVICE, (const void **)&p->service, false);
    fk_field(ld, r, "route", E_ROUTE, (const void **)&p->route, false);
    fk_field(ld, r, "consumer", E_CONSUMER, (const void **)&p->consumer, false);

    /* Kong's cache key: plugins:<ws>:<name>:<route>:<service>:<consumer>. */
    key = gw_arena_printf(ld->a, "plugins:*:%s", p->name.p != NULL ? p->name.p : "");
    for (size_t i = 0; i < 3; i++) {
        const char *pid = parent_id(ld, r, i == 0 ? E_ROUTE : i == 1 ? E_SERVICE : E_CONSUMER);
        bool omit = false;
        const char *v = pid != NULL ? pid : ref_text_for_id(field(r, scopes[i]), &omit);
        if (!omit)
            key = gw_arena_printf(ld->a, "%s:%s", key, v);
    }
    set_id(ld, r, p->name.len > 0 ? key : NULL);

    if (p->name.len == 0)
        return;
    p->plugin = gw_plugin_find(p->name.p, p->name.len);
    if (p->plugin == NULL) {
        fail(ld, field(r, "name"), fpath(ld, r, "name"),
             "plugin '%s' not enabled: gatehouse has no such plugin (compiled in: %s)", p->name.p,
             known_plugins(ld));
        return;
    }
    conf = field(r, "config");
    if (conf != NULL && conf->type != GW_YAML_MAP) {
        fail(ld, conf, fpath(ld, r, "config"), "expected a record");
        return;
    }
    if (!p->plugin->consumer_scoped && field(r, "consumer") != NULL)
        fail(ld, field(r, "consumer"), fpath(ld, r, "consumer"), "value must be null");
    if (!p->plugin->consumer_scoped && r->parent >= 0 && ld->raws[r->parent].t == E_CONSUMER)
        fail(ld, r->node, r->path, "plugin '%s' cannot be scoped to a consumer", p->name.p);
    p->conf = p->plugin->parse(conf, fpath(ld, r, "config"), ld->a, ld->err);
    if (p->conf == NULL)
        ld->rc = -1;
}

typedef void (*parse_fn)(struct ld *ld, struct raw *r);

static const parse_fn parsers[E_N] = {
    [E_CERT] = parse_certificate,  [E_CA] = parse_ca_certificate, [E_SNI] = parse_sni,
    [E_UPSTREAM] = parse_upstream, [E_TARGET] = parse_target,     [E_SERVICE] = parse_service,
    [E_ROUTE] = parse_route,       [E_CONSUMER] = parse_consumer, [E_KEYAUTH] = parse_keyauth,
    [E_JWT] = parse_jwt_secret,    [E_ACL] = parse_acl,           [E_PLUGIN] = parse_plugin,
};

/* ---- collection ---------------------------------------------------------------------- */

static void collect(struct ld *ld, enum etype t, const struct gw_yaml *seq, const char *path,
                    int parent)
{
    if (gw_yaml_is_null(seq))
        return;
    if (seq->type != GW_YAML_SEQ) {
        fail(ld, seq, path, "expected an array");
        return;
    }
    for (size_t i = 0; i < seq->n; i++) {
        const struct gw_yaml *it = seq->items[i];
        char *p = gw_arena_printf(ld->a, "%s[%zu]", path, i);
        int self;

        if (it->type != GW_YAML_MAP && !(t == E_SNI && parent >= 0 && it->type == GW_YAML_STR)) {
            fail(ld, it, p, "expected a record");
            continue;
        }
        if (ld->nraws == ld->capraws) {
            ld->capraws = ld->capraws * 2 + 64;
            ld->raws = gw_xrealloc(ld->raws, ld->capraws * sizeof(*ld->raws));
        }
        self = (int)ld->nraws++;
        ld->raws[self] = (struct raw){.t = t, .node = it, .path = p, .parent = parent};
        ld->count[t]++;
        if (it->type != GW_YAML_MAP)
            continue;
        for (size_t k = 0; k < sizeof(nests) / sizeof(nests[0]); k++)
            if (nests[k].parent == t)
                collect(ld, nests[k].child, gw_yaml_get(it, nests[k].key),
                        gw_arena_printf(ld->a, "%s.%s", p, nests[k].key), self);
    }
}

static struct gw_str *id_view(struct ld *ld, const struct raw *r)
{
    struct gw_str *s = gw_arena_alloc(ld->a, sizeof(*s));

    *s = (struct gw_str){r->id, GW_UUID_LEN};
    return s;
}

static void index_entities(struct ld *ld)
{
    struct gw_map *custom_ids = gw_map_new(ld->a, ld->count[E_CONSUMER], false);
    struct gw_map *keyauth_keys = gw_map_new(ld->a, ld->count[E_KEYAUTH], false);

    for (int t = 0; t < E_N; t++) {
        ld->by_id[t] = gw_map_new(ld->a, ld->count[t], false);
        if (etypes[t].keyname != NULL || t == E_JWT)
            ld->by_key[t] = gw_map_new(ld->a, ld->count[t], false);
    }
    for (size_t i = 0; i < ld->nraws; i++) {
        struct raw *r = &ld->raws[i];
        const char *table = etypes[r->t].table;
        struct raw *dup = gw_map_put(ld->by_id[r->t], *id_view(ld, r), r);

        /* A generated id collides when the key it derives from does: that is reported once,
         * below or in link_entities(), in terms of the key. */
        if (dup != NULL && field(r, "id") != NULL)
            fail(ld, field(r, "id"), fpath(ld, r, "id"),
                 "uniqueness violation: '%s' entity with primary key set to '%s' already "
                 "declared",
                 table, r->id);
        else if (dup != NULL && r->t == E_ACL)
            fail(ld, field(r, "group"), fpath(ld, r, "group"),
                 "uniqueness violation: the consumer is already in group '%s' (%s)",
                 ((struct gw_acl *)r->obj)->group.p, dup->path);
        if (r->key.len > 0 && ld->by_key[r->t] != NULL &&
            gw_map_put(ld->by_key[r->t], r->key, r) != NULL) {
            const char *kn = r->t == E_JWT ? "key" : etypes[r->t].keyname;
            fail(ld, field(r, kn) != NULL ? field(r, kn) : r->node, fpath(ld, r, kn),
                 "uniqueness violation: '%s' entity with %s set to '%s' already declared", table,
                 kn, r->key.p);
        }
        if (r->t == E_CONSUMER) {
            struct gw_consumer *c = r->obj;
            if (c->custom_id.len > 0 && gw_map_put(custom_ids, c->custom_id, r) != NULL)
                fail(ld, field(r, "custom_id"), fpath(ld, r, "custom_id"),
                     "uniqueness violation: 'consumers' entity with custom_id set to '%s' "
                     "already declared",
                     c->custom_id.p);
        }
        if (r->t == E_KEYAUTH) {
            struct gw_keyauth_credential *k = r->obj;
            /* Never print the key itself: it is a secret. */
            if (k->key.len > 0 && gw_map_put(keyauth_keys, k->key, r) != NULL)
                fail(ld, field(r, "key"), fpath(ld, r, "key"),
                     "uniqueness violation: 'keyauth_credentials' entity with the same key "
                     "already declared");
        }
    }
}

/* After references: per-type checks across entities, and the snapshot's indexes. */
static void link_entities(struct ld *ld)
{
    struct gw_snapshot *s = ld->snap;

    s->upstream_by_name = gw_map_new(ld->a, s->nupstreams, false);
    for (size_t i = 0; i < s->nupstreams; i++)
        if (s->upstreams[i].name.len > 0)
            gw_map_put(s->upstream_by_name, s->upstreams[i].name, &s->upstreams[i]);
    for (size_t i = 0; i < s->nservices; i++)
        s->services[i].upstream = gw_map_get(s->upstream_by_name, s->services[i].host);

    /* Targets: grouped under their upstream; one target string per upstream. */
    for (size_t i = 0; i < ld->nraws; i++) {
        const struct raw *r = &ld->raws[i];
        struct gw_target *t = r->obj;
        const struct gw_upstream *u;
        if (r->t != E_TARGET)
            continue;
        u = r->parent >= 0 ? ld->raws[r->parent].obj : NULL;
        if (u == NULL && field(r, "upstream") != NULL)
            u = lookup(ld, E_UPSTREAM, field(r, "upstream"));
        if (u == NULL) {
            if (field(r, "upstream") == NULL)
                fail(ld, r->node, fpath(ld, r, "upstream"), "required field missing");
            else
                fail(ld, field(r, "upstream"), fpath(ld, r, "upstream"),
                     "invalid reference 'upstream: %s' (no such entry in 'upstreams')",
                     ref_repr(ld, field(r, "upstream")));
            continue;
        }
        if (r->parent >= 0 && field(r, "upstream") != NULL &&
            lookup(ld, E_UPSTREAM, field(r, "upstream")) != u)
            fail(ld, field(r, "upstream"), fpath(ld, r, "upstream"),
                 "value must be null or name the enclosing upstream");
        struct gw_upstream *mu = (struct gw_upstream *)u;
        for (size_t j = 0; j < mu->ntargets; j++)
            if (t->target.len > 0 && gw_str_eq(mu->targets[j].target, t->target))
                fail(ld, field(r, "target"), fpath(ld, r, "target"),
                     "uniqueness violation: 'targets' entity with target set to '%s' already "
                     "declared in upstream '%s'",
                     t->target.p, mu->name.p);
        if (mu->targets == NULL)
            mu->targets = gw_arena_calloc(ld->a, ld->count[E_TARGET], sizeof(*mu->targets));
        mu->targets[mu->ntargets++] = *t;
    }

    for (size_t i = 0; i < s->nroutes; i++) {
        struct gw_route *rt = &s->routes[i];
        rt->ignored =
            !(rt->protocols & PROTO_HTTP_SET) || (rt->service != NULL && !rt->service->enabled);
    }

    /* One plugin per name and scope, whatever the ids say (Kong's cache key). */
    {
        struct gw_map *scopes = gw_map_new(ld->a, s->nplugins, false);
        for (size_t i = 0; i < ld->nraws; i++) {
            const struct raw *r = &ld->raws[i];
            const struct gw_plugin_instance *p = r->obj, *dup;
            char *key;
            if (r->t != E_PLUGIN || p->name.len == 0)
                continue;
            key = gw_arena_printf(ld->a, "%s:%s:%s:%s", p->name.p,
                                  p->route != NULL ? p->route->id : "",
                                  p->service != NULL ? p->service->id : "",
                                  p->consumer != NULL ? p->consumer->id : "");
            dup = gw_map_put(scopes, gw_str_c(key), (void *)p);
            if (dup != NULL)
                fail(ld, field(r, "name"), fpath(ld, r, "name"),
                     "uniqueness violation: plugin '%s' is already configured for the same "
                     "scope (line %u)",
                     p->name.p, dup->pos.line);
        }
    }

    s->consumer_by_id = gw_map_new(ld->a, s->nconsumers, false);
    s->consumer_by_username = gw_map_new(ld->a, s->nconsumers, false);
    s->consumer_by_custom_id = gw_map_new(ld->a, s->nconsumers, false);
    for (size_t i = 0; i < s->nconsumers; i++) {
        struct gw_consumer *c = &s->consumers[i];
        gw_map_put(s->consumer_by_id, (struct gw_str){c->id, GW_UUID_LEN}, c);
        if (c->username.len > 0)
            gw_map_put(s->consumer_by_username, c->username, c);
        if (c->custom_id.len > 0)
            gw_map_put(s->consumer_by_custom_id, c->custom_id, c);
    }
    s->jwt_by_key = gw_map_new(ld->a, s->njwt_secrets, false);
    for (size_t i = 0; i < s->njwt_secrets; i++)
        if (s->jwt_secrets[i].key.len > 0)
            gw_map_put(s->jwt_by_key, s->jwt_secrets[i].key, &s->jwt_secrets[i]);
    /* Indexed by a keyed hash of the key (a secret random SipHash key per process): the
     * table's layout and lookup times tell nothing about the keys; the key itself is then
     * compared in constant time (gw_snapshot_keyauth). Two keys with the same 64-bit hash
     * (a chance of 2^-64 per pair) would leave the second unusable, never confuse them. */
    s->keyauth_by_hash = gw_map_new(ld->a, s->nkeyauth_credentials, false);
    for (size_t i = 0; i < s->nkeyauth_credentials; i++) {
        struct gw_keyauth_credential *k = &s->keyauth_credentials[i];
        if (k->key.len > 0) {
            gw_keyauth_digest(k->key, k->digest);
            k->keyhash = gw_siphash24(gw_siphash_process_key(), k->key.p, k->key.len);
            gw_map_put(s->keyauth_by_hash,
                       (struct gw_str){(const char *)&k->keyhash, sizeof(k->keyhash)}, k);
        }
    }
}

static int cmp_position(const void *a, const void *b)
{
    const struct raw *x = *(const struct raw *const *)a, *y = *(const struct raw *const *)b;

    if (x->node->line != y->node->line)
        return x->node->line < y->node->line ? -1 : 1;
    return x->node->col < y->node->col ? -1 : x->node->col > y->node->col;
}

/* Routes are stored in the order they are written in the file, whether nested or top level:
 * that order is the router's last tie-break (route->index). */
static void place_routes_in_file_order(struct ld *ld)
{
    struct raw **order = gw_xcalloc(ld->count[E_ROUTE], sizeof(*order));
    size_t n = 0;

    for (size_t i = 0; i < ld->nraws; i++)
        if (ld->raws[i].t == E_ROUTE)
            order[n++] = &ld->raws[i];
    qsort(order, n, sizeof(*order), cmp_position);
    for (size_t i = 0; i < n; i++) {
        order[i]->obj = (char *)ld->arrays[E_ROUTE] + i * sizeof(struct gw_route);
        order[i]->id = order[i]->obj;
        ((struct gw_route *)order[i]->obj)->index = (unsigned)i;
    }
    free(order);
}

int gw_entities_load(const struct gw_yaml *root, struct gw_snapshot *snap, struct gw_err *err)
{
    static const char *const meta[] = {"_format_version", "_transform", "_comment", "_ignore",
                                       "_workspace",      "gateway",    NULL};
    static const char *const unsupported[] = {"vaults",
                                              "key_sets",
                                              "keys",
                                              "filter_chains",
                                              "parameters",
                                              "workspaces",
                                              "tags",
                                              "clustering_data_planes",
                                              "basicauth_credentials",
                                              "hmacauth_credentials",
                                              "oauth2_credentials",
                                              "mtls_auth_credentials",
                                              NULL};
    struct ld ld = {.a = snap->arena, .err = err, .snap = snap};
    const struct gw_yaml *fv;
    void **arrays[E_N] = {
        [E_CERT] = (void **)&snap->certificates,
        [E_CA] = (void **)&snap->ca_certificates,
        [E_SNI] = (void **)&snap->snis,
        [E_UPSTREAM] = (void **)&snap->upstreams,
        [E_TARGET] = NULL,
        [E_SERVICE] = (void **)&snap->services,
        [E_ROUTE] = (void **)&snap->routes,
        [E_CONSUMER] = (void **)&snap->consumers,
        [E_KEYAUTH] = (void **)&snap->keyauth_credentials,
        [E_JWT] = (void **)&snap->jwt_secrets,
        [E_ACL] = (void **)&snap->acls,
        [E_PLUGIN] = (void **)&snap->plugins,
    };
    size_t *counts[E_N] = {
        [E_CERT] = &snap->ncertificates,
        [E_CA] = &snap->nca_certificates,
        [E_SNI] = &snap->nsnis,
        [E_UPSTREAM] = &snap->nupstreams,
        [E_TARGET] = NULL,
        [E_SERVICE] = &snap->nservices,
        [E_ROUTE] = &snap->nroutes,
        [E_CONSUMER] = &snap->nconsumers,
        [E_KEYAUTH] = &snap->nkeyauth_credentials,
        [E_JWT] = &snap->njwt_secrets,
        [E_ACL] = &snap->nacls,
        [E_PLUGIN] = &snap->nplugins,
    };
    if (root == NULL || root->type != GW_YAML_MAP)
        return gw_err_at(err, root, NULL,
                         "failed parsing declarative configuration: expected an object");
    fv = gw_yaml_get(root, "_format_version");
    if (fv == NULL)
        gw_err_at(err, root, "_format_version", "required field missing");
    else if (fv->type != GW_YAML_STR)
        gw_err_at(err, fv, "_format_version", "expected a string");
    else if (gw_str_eqc(fv->str, "1.1") || gw_str_eqc(fv->str, "2.1"))
        ld.migrate_paths = true;
    else if (!gw_str_eqc(fv->str, "3.0"))
        gw_err_at(err, fv, "_format_version",
                  "unsupported format version '%s': expected \"3.0\" (or \"1.1\" / \"2.1\", "
                  "migrated as Kong does)",
                  fv->str.p);
    if (fv == NULL || fv->type != GW_YAML_STR)
        ld.rc = -1;
    {
        const struct gw_yaml *tr = gw_yaml_get(root, "_transform");
        if (tr != NULL && tr->type != GW_YAML_BOOL)
            fail(&ld, tr, "_transform", "expected a boolean");
    }

    /* Top-level keys: metadata, entity arrays, or known-but-unsupported Kong entities. */
    for (size_t i = 0; i < root->n; i++) {
        const struct gw_yaml *k = root->pairs[i].key;
        bool known = false;
        for (const char *const *m = meta; *m != NULL && !known; m++)
            known = gw_str_eqc(k->str, *m);
        for (int t = 0; t < E_N && !known; t++)
            known = gw_str_eqc(k->str, etypes[t].table);
        for (const char *const *u = unsupported; *u != NULL && !known; u++) {
            if (gw_str_eqc(k->str, *u)) {
                known = true;
                if (!gw_yaml_is_null(root->pairs[i].val))
                    gw_warn_at(err, k, k->str.p, "Kong entity not supported by gatehouse: ignored");
            }
        }
        if (!known)
            fail(&ld, k, k->str.p, "unknown field");
    }
    for (int t = 0; t < E_N; t++)
        collect(&ld, (enum etype)t, gw_yaml_get(root, etypes[t].table), etypes[t].table, -1);

    /* Arrays with exact sizes, then every entity in collection order (parents first). */
    for (int t = 0; t < E_N; t++) {
        ld.arrays[t] = gw_arena_calloc(ld.a, ld.count[t], etypes[t].size);
        if (arrays[t] != NULL) {
            *arrays[t] = ld.arrays[t];
            *counts[t] = ld.count[t];
        }
    }
    for (size_t i = 0; i < ld.nraws; i++) {
        struct raw *r = &ld.raws[i];
        if (r->t == E_ROUTE)
            continue;
        r->obj = (char *)ld.arrays[r->t] + ld.next[r->t]++ * etypes[r->t].size;
        r->id = (char *)r->obj; /* every entity struct starts with its id */
    }
    place_routes_in_file_order(&ld);
    for (size_t i = 0; i < ld.nraws; i++)
        parsers[ld.raws[i].t](&ld, &ld.raws[i]);
    index_entities(&ld);
    resolve_refs(&ld);
    link_entities(&ld);
    free(ld.raws);
    free(ld.refs);
    return ld.rc != 0 || err->nerr > 0 ? -1 : 0;
}
