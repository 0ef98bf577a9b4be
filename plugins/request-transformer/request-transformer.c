#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/body.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/log.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/yaml.h"

/* request-transformer and request-transformer-advanced: Kong's request shaping (priorities 801
 * and 802; reference §7, docs/plugins.md). Per request: uri, method, headers, body, query
 * string; within each, remove, rename, replace, add, append. Values may hold templates,
 * compiled at load into a small language of our own (no Lua): `$(headers.x)`,
 * `$(headers["x-y"])`, `$(query_params.x)`, `$(uri_captures.x)`, `$(uri_captures[1])`,
 * `$(shared.x)`, quoted literals and `a or b` fallbacks. Every template is rendered against
 * the request as it arrived, before any change, as Kong's are. */

/* ---- templates ---- */

enum term_kind { T_HEADER, T_QUERY, T_CAPTURE_NAME, T_CAPTURE_NUM, T_SHARED, T_LITERAL };

struct term {
    enum term_kind kind;
    struct gw_str arg; /* name, or the literal */
    int num;
};

struct seg {
    struct gw_str lit; /* text, when nterms == 0 */
    struct term *terms;
    size_t nterms; /* an expression: the first term with a value wins */
};

struct tpl {
    struct seg *segs;
    size_t nsegs;
    bool dynamic; /* holds an expression */
    struct gw_str text;
};

struct pair {
    struct gw_str name, new_name; /* new_name: rename */
    struct tpl value;
    char json_type; /* advanced: 's'tring, 'n'umber, 'b'oolean */
};

struct list {
    struct pair *v;
    size_t n;
};

enum { L_HEADERS, L_QUERY, L_BODY, L_KINDS };

struct rt_conf {
    const char *http_method;
    struct list remove[L_KINDS], rename[L_KINDS], replace[L_KINDS], add[L_KINDS], append[L_KINDS];
    struct list allow_body; /* advanced */
    struct tpl uri;
    bool has_uri, advanced, dots_in_keys;
    bool form_to_query; /* http_method GET, HEAD or TRACE: a form body joins the query (Kong) */
};

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* A quoted string at *p ('…' or "…", backslash escapes the quote); NULL when none. */
static const char *quoted(struct gw_arena *a, const char **p, const char *end, struct gw_str *out)
{
    char q = **p, *buf;
    size_t n = 0;
    const char *s = *p + 1;

    buf = gw_arena_alloc(a, (size_t)(end - s) + 1);
    for (; s < end && *s != q; s++) {
        if (*s == '\\' && s + 1 < end)
            s++;
        buf[n++] = *s;
    }
    if (s >= end)
        return "a quoted string is not closed";
    buf[n] = '\0';
    *out = (struct gw_str){buf, n};
    *p = s + 1;
    return NULL;
}

/* One term of an expression. Returns NULL or why it is not supported. */
static const char *parse_term(struct gw_arena *a, const char **p, const char *end, struct term *t)
{
    static const struct {
        const char *name;
        enum term_kind kind;
    } vars[] = {{"headers", T_HEADER},
                {"query_params", T_QUERY},
                {"uri_captures", T_CAPTURE_NAME},
                {"shared", T_SHARED}};
    const char *s = *p;

    if (s < end && (*s == '\'' || *s == '"')) {
        t->kind = T_LITERAL;
        return quoted(a, p, end, &t->arg);
    }
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        size_t n = strlen(vars[i].name);
        if ((size_t)(end - s) <= n || memcmp(s, vars[i].name, n) != 0 || is_ident(s[n]))
            continue;
        s += n;
        t->kind = vars[i].kind;
        if (*s == '.') {
            const char *b = ++s;
            while (s < end && is_ident(*s))
                s++;
            if (s == b)
                return "a name must follow '.'";
            t->arg = gw_arena_str(a, (struct gw_str){b, (size_t)(s - b)});
        } else if (*s == '[') {
            s++;
            skip_ws(&s, end);
            if (s < end && (*s == '\'' || *s == '"')) {
                const char *why = quoted(a, &s, end, &t->arg);
                if (why != NULL)
                    return why;
            } else if (s < end && *s >= '0' && *s <= '9' && t->kind == T_CAPTURE_NAME) {
                t->kind = T_CAPTURE_NUM;
                t->num = 0;
                while (s < end && *s >= '0' && *s <= '9' && t->num < 1000)
                    t->num = t->num * 10 + (*s++ - '0');
            } else {
                return "an index must be a quoted name (or a number for uri_captures)";
            }
            skip_ws(&s, end);
            if (s >= end || *s != ']')
                return "']' expected";
            s++;
        } else {
            return "a variable must be followed by .name or [\"name\"]";
        }
        *p = s;
        return NULL;
    }
    return "only headers, query_params, uri_captures, shared, quoted literals and 'or' are "
           "supported";
}

/* `value` as a template. Returns NULL or why it is not supported. */
static const char *parse_tpl(struct gw_arena *a, struct gw_str value, struct tpl *t)
{
    const char *p = value.p, *end = value.p + value.len, *lit = p;
    size_t cap = 4;

    t->text = value;
    t->segs = gw_arena_calloc(a, cap, sizeof(*t->segs));
    t->nsegs = 0;
    while (p < end) {
        struct seg *sg;
        size_t tcap = 2;
        if (!(p + 1 < end && p[0] == '$' && p[1] == '(')) {
            p++;
            continue;
        }
        if (t->nsegs + 2 > cap) {
            struct seg *ns = gw_arena_calloc(a, cap * 2, sizeof(*ns));
            memcpy(ns, t->segs, cap * sizeof(*ns));
            t->segs = ns;
            cap *= 2;
        }
        if (p > lit)
            t->segs[t->nsegs++].lit = (struct gw_str){lit, (size_t)(p - lit)};
        sg = &t->segs[t->nsegs++];
        sg->terms = gw_arena_calloc(a, tcap, sizeof(*sg->terms));
        p += 2;
        for (;;) {
            const char *why;
            skip_ws(&p, end);
            if (sg->nterms == tcap) {
                struct term *nt = gw_arena_calloc(a, tcap * 2, sizeof(*nt));
                memcpy(nt, sg->terms, tcap * sizeof(*nt));
                sg->terms = nt;
                tcap *= 2;
            }
            why = parse_term(a, &p, end, &sg->terms[sg->nterms++]);
            if (why != NULL)
                return why;
            skip_ws(&p, end);
            if (p + 2 <= end && memcmp(p, "or", 2) == 0 && (p + 2 == end || !is_ident(p[2]))) {
                p += 2;
                continue;
            }
            if (p < end && *p == ')')
                break;
            return "')' or 'or' expected";
        }
        p++;
        lit = p;
        t->dynamic = true;
    }
    if (p > lit) {
        if (t->nsegs == cap) {
            struct seg *ns = gw_arena_calloc(a, cap + 1, sizeof(*ns));
            memcpy(ns, t->segs, cap * sizeof(*ns));
            t->segs = ns;
        }
        t->segs[t->nsegs++].lit = (struct gw_str){lit, (size_t)(p - lit)};
    }
    return NULL;
}

/* The value of one term on the original request; .p == NULL when it has none. */
static struct gw_str term_value(struct gw_req *r, const struct term *t)
{
    switch (t->kind) {
    case T_HEADER:
        return gw_req_header(r, t->arg.p);
    case T_QUERY: {
        struct gw_str v = GW_STR_NULL;
        return gw_req_query_arg(r, t->arg.p, &v) > 0 && v.p != NULL ? v : GW_STR_NULL;
    }
    case T_CAPTURE_NAME:
        return gw_req_uri_capture(r, -1, t->arg.p);
    case T_CAPTURE_NUM:
        return gw_req_uri_capture(r, t->num, NULL);
    case T_SHARED:
        return GW_STR_NULL; /* nothing sets shared values: fallbacks apply */
    case T_LITERAL:
        return t->arg;
    }
    return GW_STR_NULL;
}

static struct gw_str render(struct gw_req *r, const struct tpl *t)
{
    struct gw_str parts[64];
    size_t n = 0, len = 0;
    char *out;

    if (!t->dynamic)
        return t->text;
    for (size_t i = 0; i < t->nsegs && n < 64; i++) {
        struct gw_str v = t->segs[i].lit;
        if (t->segs[i].nterms > 0) {
            v = GW_STR_NULL;
            for (size_t k = 0; k < t->segs[i].nterms && v.p == NULL; k++)
                v = term_value(r, &t->segs[i].terms[k]);
            if (v.p == NULL)
                v = GW_STR_LIT(""); /* [ours] nothing renders as empty text */
        }
        parts[n++] = v;
        len += v.len;
    }
    out = gw_arena_alloc(gw_req_pool(r), len + 1);
    len = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + len, parts[i].p, parts[i].len);
        len += parts[i].len;
    }
    out[len] = '\0';
    return (struct gw_str){out, len};
}

/* ---- config ---- */

static bool header_name_ok(struct gw_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_ident(s.p[i]))
            return false;
    return true;
}

/* One list of `config.<group>.<kind>`: names (remove, allow), `old:new` (rename) or
 * `name:value` (the others). */
static int parse_list(const struct gw_yaml *node, const char *path, const char *group,
                      const char *kind, bool headers, struct list *out, struct gw_arena *a,
                      struct gw_err *err)
{
    const struct gw_yaml *g = gw_yaml_get(node, group), *n = gw_yaml_get(g, kind);
    const char *lpath = gw_arena_printf(a, "%s.%s.%s", path, group, kind);
    bool names_only = strcmp(group, "remove") == 0 || strcmp(group, "allow") == 0;
    bool rename = strcmp(group, "rename") == 0;
    int rc = 0;

    out->v = NULL;
    out->n = 0;
    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, lpath, "expected an array");
    out->v = gw_arena_calloc(a, n->n + 1, sizeof(*out->v));
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        const char *ipath = gw_arena_printf(a, "%s[%zu]", lpath, i);
        struct pair *pr = &out->v[out->n];
        const char *colon;
        if (it->type != GW_YAML_STR) {
            rc = gw_err_at(err, it, ipath, "expected a string");
            continue;
        }
        colon = names_only ? NULL : memchr(it->str.p, ':', it->str.len);
        pr->name = it->str;
        if (!names_only) {
            if (colon == NULL || colon + 1 == it->str.p + it->str.len) {
                rc = gw_err_at(err, it, ipath, "key '%.*s' has no value",
                               (int)(colon != NULL ? (size_t)(colon - it->str.p) : it->str.len),
                               it->str.p);
                continue;
            }
            pr->name = gw_arena_str(a, (struct gw_str){it->str.p, (size_t)(colon - it->str.p)});
        }
        if (headers && !header_name_ok(pr->name)) {
            rc = gw_err_at(err, it, ipath, "'%.*s' is not a valid header", (int)pr->name.len,
                           pr->name.p);
            continue;
        }
        if (rename) {
            pr->new_name =
                gw_arena_str(a, (struct gw_str){colon + 1, it->str.len - pr->name.len - 1});
            if (headers && !header_name_ok(pr->new_name)) {
                rc = gw_err_at(err, it, ipath, "'%s' is not a valid header", pr->new_name.p);
                continue;
            }
        } else if (!names_only) {
            struct gw_str v =
                gw_arena_str(a, (struct gw_str){colon + 1, it->str.len - pr->name.len - 1});
            const char *why = parse_tpl(a, v, &pr->value);
            if (why != NULL) {
                rc = gw_err_at(err, it, ipath, "value '%s' is not in supported format, error: %s",
                               v.p, why);
                continue;
            }
        }
        pr->json_type = 's';
        out->n++;
    }
    return rc;
}

/* advanced: `<group>.json_types`, parallel to `<group>.body` */
static int parse_json_types(const struct gw_yaml *node, const char *path, const char *group,
                            struct list *body, struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(gw_yaml_get(node, group), "json_types");
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, gw_arena_printf(a, "%s.%s.json_types", path, group),
                         "expected an array");
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        const char *t = it->type == GW_YAML_STR ? it->str.p : "";
        if (strcmp(t, "string") != 0 && strcmp(t, "number") != 0 && strcmp(t, "boolean") != 0) {
            rc = gw_err_at(err, it, gw_arena_printf(a, "%s.%s.json_types[%zu]", path, group, i),
                           "expected one of: string, number, boolean");
            continue;
        }
        if (i < body->n)
            body->v[i].json_type = t[0];
    }
    return rc;
}

static int check_group(const struct gw_yaml *node, const char *path, const char *group,
                       const char *const *keys, struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *g = gw_yaml_get(node, group);

    return gw_pconf_check(g, gw_arena_printf(a, "%s.%s", path, group), keys, a, err);
}

static void *parse_common(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                          struct gw_err *err, bool advanced)
{
    static const char *const oss[] = {"http_method", "remove", "rename", "replace",
                                      "add",         "append", NULL};
    static const char *const adv[] = {"http_method", "remove", "rename",       "replace", "add",
                                      "append",      "allow",  "dots_in_keys", NULL};
    static const char *const kinds[] = {"headers", "querystring", "body", NULL};
    static const char *const kinds_json[] = {"headers", "querystring", "body", "json_types", NULL};
    static const char *const replace_kinds[] = {"headers", "querystring", "body", "uri", NULL};
    static const char *const replace_kinds_json[] = {"headers", "querystring", "body",
                                                     "uri",     "json_types",  NULL};
    static const char *const allow_kinds[] = {"body", NULL};
    static const char *const kind_names[L_KINDS] = {"headers", "querystring", "body"};
    struct rt_conf *c = gw_arena_zalloc(a, sizeof(*c));
    int rc = 0;

    c->advanced = advanced;
    c->dots_in_keys = true;
    rc |= gw_pconf_check(node, path, advanced ? adv : oss, a, err);
    rc |= check_group(node, path, "remove", kinds, a, err);
    rc |= check_group(node, path, "rename", kinds, a, err);
    rc |= check_group(node, path, "replace", advanced ? replace_kinds_json : replace_kinds, a, err);
    rc |= check_group(node, path, "add", advanced ? kinds_json : kinds, a, err);
    rc |= check_group(node, path, "append", advanced ? kinds_json : kinds, a, err);
    if (advanced) {
        rc |= check_group(node, path, "allow", allow_kinds, a, err);
        rc |= gw_pconf_bool(node, "dots_in_keys", path, &c->dots_in_keys, a, err);
        rc |= parse_list(node, path, "allow", "body", false, &c->allow_body, a, err);
    }
    {
        struct gw_str m = GW_STR_NULL;
        rc |= gw_pconf_str(node, "http_method", path, &m, a, err);
        if (m.p != NULL) {
            bool ok = true;
            for (size_t i = 0; i < m.len; i++)
                ok &= m.p[i] >= 'A' && m.p[i] <= 'Z';
            if (!ok)
                rc =
                    gw_err_at(err, gw_yaml_get(node, "http_method"),
                              gw_arena_printf(a, "%s.http_method", path), "invalid value: %s", m.p);
            c->http_method = m.p;
            c->form_to_query =
                gw_str_eqc(m, "GET") || gw_str_eqc(m, "HEAD") || gw_str_eqc(m, "TRACE");
        }
    }
    for (int k = 0; k < L_KINDS; k++) {
        bool h = k == L_HEADERS;
        rc |= parse_list(node, path, "remove", kind_names[k], h, &c->remove[k], a, err);
        rc |= parse_list(node, path, "rename", kind_names[k], h, &c->rename[k], a, err);
        rc |= parse_list(node, path, "replace", kind_names[k], h, &c->replace[k], a, err);
        rc |= parse_list(node, path, "add", kind_names[k], h, &c->add[k], a, err);
        rc |= parse_list(node, path, "append", kind_names[k], h, &c->append[k], a, err);
    }
    if (advanced) {
        rc |= parse_json_types(node, path, "replace", &c->replace[L_BODY], a, err);
        rc |= parse_json_types(node, path, "add", &c->add[L_BODY], a, err);
        rc |= parse_json_types(node, path, "append", &c->append[L_BODY], a, err);
    }
    {
        const struct gw_yaml *u = gw_yaml_get(gw_yaml_get(node, "replace"), "uri");
        if (!gw_yaml_is_null(u)) {
            const char *upath = gw_arena_printf(a, "%s.replace.uri", path);
            if (u->type != GW_YAML_STR) {
                rc = gw_err_at(err, u, upath, "expected a string");
            } else {
                const char *why = parse_tpl(a, gw_arena_str(a, u->str), &c->uri);
                if (why != NULL)
                    rc =
                        gw_err_at(err, u, upath, "value '%s' is not in supported format, error: %s",
                                  u->str.p, why);
                c->has_uri = true;
            }
        }
    }
    return rc == 0 ? c : NULL;
}

static void *rt_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                      struct gw_err *err)
{
    return parse_common(node, path, a, err, false);
}

static void *rta_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                       struct gw_err *err)
{
    return parse_common(node, path, a, err, true);
}

static bool any_body_op(const struct rt_conf *c)
{
    return c->remove[L_BODY].n + c->rename[L_BODY].n + c->replace[L_BODY].n + c->add[L_BODY].n +
               c->append[L_BODY].n + c->allow_body.n >
           0;
}

static bool rt_wants_body(const void *conf)
{
    const struct rt_conf *c = conf;

    return any_body_op(c) || c->form_to_query;
}

/* ---- name/value lists (query strings and forms) ---- */

struct arg {
    struct gw_str name, value; /* value.p == NULL: a flag (`?name`) */
};

struct args {
    struct arg *v;
    size_t n, cap;
};

static void args_push(struct gw_req *r, struct args *x, struct gw_str name, struct gw_str value)
{
    if (x->n == x->cap) {
        struct arg *nv;
        x->cap = x->cap != 0 ? x->cap * 2 : 8;
        nv = gw_arena_calloc(gw_req_pool(r), x->cap, sizeof(*nv));
        if (x->n > 0)
            memcpy(nv, x->v, x->n * sizeof(*nv));
        x->v = nv;
    }
    x->v[x->n].name = name;
    x->v[x->n].value = value;
    x->n++;
}

static void args_parse(struct gw_req *r, struct gw_str text, struct args *x)
{
    struct gw_arena *a = gw_req_pool(r);
    const char *p = text.p, *end = text.p + text.len;

    memset(x, 0, sizeof(*x));
    if (text.p == NULL)
        return;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        struct gw_str k = {p, (size_t)((eq != NULL ? eq : stop) - p)};
        if (stop > p)
            args_push(r, x, gw_urldecode(a, k),
                      eq != NULL ? gw_urldecode(a, (struct gw_str){eq + 1, (size_t)(stop - eq - 1)})
                                 : GW_STR_NULL);
        p = stop + 1;
    }
}

static bool args_has(const struct args *x, struct gw_str name)
{
    for (size_t i = 0; i < x->n; i++)
        if (gw_str_eq(x->v[i].name, name))
            return true;
    return false;
}

static void args_remove(struct args *x, struct gw_str name)
{
    size_t k = 0;

    for (size_t i = 0; i < x->n; i++)
        if (!gw_str_eq(x->v[i].name, name))
            x->v[k++] = x->v[i];
    x->n = k;
}

/* ngx.escape_uri: everything but A-Z a-z 0-9 - . _ ~ as %XX */
static size_t escape(char *out, struct gw_str s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    return n;
}

static struct gw_str args_encode(struct gw_req *r, const struct args *x)
{
    size_t len = 0, n = 0;
    char *out;

    for (size_t i = 0; i < x->n; i++)
        len += 3 * (x->v[i].name.len + x->v[i].value.len) + 2;
    out = gw_arena_alloc(gw_req_pool(r), len + 1);
    for (size_t i = 0; i < x->n; i++) {
        if (i > 0)
            out[n++] = '&';
        n += escape(out + n, x->v[i].name);
        if (x->v[i].value.p != NULL) {
            out[n++] = '=';
            n += escape(out + n, x->v[i].value);
        }
    }
    out[n] = '\0';
    return (struct gw_str){out, n};
}

/* remove, rename, replace, add, append on a name/value list, with the values rendered */
static void args_apply(struct gw_req *r, const struct rt_conf *c, int k, struct args *x,
                       struct gw_str *const vals[5])
{
    for (size_t i = 0; i < c->remove[k].n; i++)
        args_remove(x, c->remove[k].v[i].name);
    for (size_t i = 0; i < c->rename[k].n; i++) {
        const struct pair *p = &c->rename[k].v[i];
        if (!args_has(x, p->name) || gw_str_eq(p->name, p->new_name))
            continue;
        args_remove(x, p->new_name);
        for (size_t j = 0; j < x->n; j++)
            if (gw_str_eq(x->v[j].name, p->name))
                x->v[j].name = p->new_name;
    }
    for (size_t i = 0; i < c->replace[k].n; i++) {
        const struct pair *p = &c->replace[k].v[i];
        bool first = true;
        size_t w = 0;
        if (!args_has(x, p->name))
            continue;
        for (size_t j = 0; j < x->n; j++) { /* one value, where the first was */
            if (gw_str_eq(x->v[j].name, p->name)) {
                if (!first)
                    continue;
                first = false;
                x->v[j].value = vals[2][i];
            }
            x->v[w++] = x->v[j];
        }
        x->n = w;
    }
    for (size_t i = 0; i < c->add[k].n; i++)
        if (!args_has(x, c->add[k].v[i].name))
            args_push(r, x, c->add[k].v[i].name, vals[3][i]);
    for (size_t i = 0; i < c->append[k].n; i++)
        args_push(r, x, c->append[k].v[i].name, vals[4][i]);
}

/* ---- JSON bodies ---- */

static json_t *json_value(const struct pair *p, struct gw_str v)
{
    if (p->json_type == 'n') {
        char buf[64], *end;
        double d;
        long long ll;
        if (v.len == 0 || v.len >= sizeof(buf))
            return NULL;
        memcpy(buf, v.p, v.len);
        buf[v.len] = '\0';
        ll = strtoll(buf, &end, 10);
        if (*end == '\0')
            return json_integer(ll);
        d = strtod(buf, &end);
        return *end == '\0' ? json_real(d) : NULL;
    }
    if (p->json_type == 'b') {
        if (gw_str_eqc(v, "true"))
            return json_true();
        if (gw_str_eqc(v, "false"))
            return json_false();
        return NULL;
    }
    return json_stringn(v.p, v.len);
}

/* ---- nested JSON paths (advanced, dots_in_keys: false) ----
 * `a.b.c` descends into objects, `list[N]` picks the N-th element (1-based), `list[*]` every
 * element. Each operation applies at every place the path leads to. */

enum { PATH_MAX_SEGS = 16 };

struct path_seg {
    char name[512];
    int index; /* 0: none, -1: [*], N: [N] */
};

/* Splits `s`; returns the number of segments, 0 for a path it cannot read. */
static int path_parse(struct gw_str s, struct path_seg *segs)
{
    int n = 0;
    const char *p = s.p, *end = s.p + s.len;

    while (p < end && n < PATH_MAX_SEGS) {
        size_t k = 0;
        segs[n].index = 0;
        while (p < end && *p != '.' && *p != '[' && k + 1 < sizeof(segs[n].name))
            segs[n].name[k++] = *p++;
        segs[n].name[k] = '\0';
        if (k == 0)
            return 0;
        if (p < end && *p == '[') {
            if (p + 2 < end && p[1] == '*' && p[2] == ']') {
                segs[n].index = -1;
                p += 3;
            } else {
                int v = 0;
                p++;
                while (p < end && *p >= '0' && *p <= '9' && v < 100000)
                    v = v * 10 + (*p++ - '0');
                if (p >= end || *p != ']' || v == 0)
                    return 0;
                segs[n].index = v;
                p++;
            }
        }
        n++;
        if (p < end) {
            if (*p != '.')
                return 0;
            p++;
        }
    }
    return p == end ? n : 0;
}

enum path_op { P_REMOVE, P_RENAME, P_REPLACE, P_ADD, P_APPEND };

/* Applies `op` at the last segment of `segs` under the object `o`. */
static bool path_apply(json_t *o, const struct path_seg *segs, int n, enum path_op op,
                       const char *new_name, const struct pair *p, struct gw_str value)
{
    bool changed = false;
    json_t *next;

    if (!json_is_object(o))
        return false;
    if (n == 1 && segs[0].index == 0) {
        json_t *cur = json_object_get(o, segs[0].name), *v;
        switch (op) {
        case P_REMOVE:
            return json_object_del(o, segs[0].name) == 0;
        case P_RENAME:
            if (cur == NULL || strcmp(new_name, segs[0].name) == 0)
                return false;
            json_incref(cur);
            json_object_del(o, segs[0].name);
            json_object_set_new(o, new_name, cur);
            return true;
        case P_REPLACE:
            if (cur == NULL || (v = json_value(p, value)) == NULL)
                return false;
            json_object_set_new(o, segs[0].name, v);
            return true;
        case P_ADD:
            if (cur != NULL || (v = json_value(p, value)) == NULL)
                return false;
            json_object_set_new(o, segs[0].name, v);
            return true;
        case P_APPEND:
            if ((v = json_value(p, value)) == NULL)
                return false;
            if (cur == NULL) {
                json_object_set_new(o, segs[0].name, v);
            } else if (json_is_array(cur)) {
                json_array_append_new(cur, v);
            } else {
                json_t *arr = json_array();
                json_array_append(arr, cur);
                json_array_append_new(arr, v);
                json_object_set_new(o, segs[0].name, arr);
            }
            return true;
        }
        return false;
    }
    next = json_object_get(o, segs[0].name);
    if (segs[0].index == 0) {
        if (next == NULL && op == P_ADD) { /* add creates the objects on its way */
            next = json_object();
            json_object_set_new(o, segs[0].name, next);
        }
        return n > 1 && path_apply(next, segs + 1, n - 1, op, new_name, p, value);
    }
    if (!json_is_array(next) || n < 2)
        return false; /* an element itself is not a named field */
    if (segs[0].index > 0)
        return path_apply(json_array_get(next, (size_t)segs[0].index - 1), segs + 1, n - 1, op,
                          new_name, p, value);
    for (size_t i = 0; i < json_array_size(next); i++)
        changed |= path_apply(json_array_get(next, i), segs + 1, n - 1, op, new_name, p, value);
    return changed;
}

/* allow.body: true when `name` is to be kept (always, without the list) */
static bool allowed(const struct rt_conf *c, struct gw_str name)
{
    if (c->allow_body.n == 0)
        return true;
    for (size_t i = 0; i < c->allow_body.n; i++)
        if (gw_str_eq(name, c->allow_body.v[i].name))
            return true;
    return false;
}

/* The body operations on a JSON object, in Kong's order; names are top-level keys, or paths
 * with dots_in_keys: false. Then allow.body. */
static bool json_apply(const struct rt_conf *c, json_t *o, struct gw_str *const vals[5])
{
    const struct list *ls[5] = {&c->remove[L_BODY], &c->rename[L_BODY], &c->replace[L_BODY],
                                &c->add[L_BODY], &c->append[L_BODY]};
    bool changed = false;

    for (int g = 0; g < 5; g++) {
        for (size_t i = 0; i < ls[g]->n; i++) {
            const struct pair *p = &ls[g]->v[i];
            struct path_seg segs[PATH_MAX_SEGS];
            char nn[512];
            int n;
            if (c->dots_in_keys) { /* the whole name is one key, dots and all */
                if (p->name.len >= sizeof(segs[0].name))
                    continue;
                memcpy(segs[0].name, p->name.p, p->name.len);
                segs[0].name[p->name.len] = '\0';
                segs[0].index = 0;
                n = 1;
            } else if ((n = path_parse(p->name, segs)) == 0) {
                continue;
            }
            snprintf(nn, sizeof(nn), "%.*s", (int)p->new_name.len,
                     p->new_name.p != NULL ? p->new_name.p : "");
            changed |=
                path_apply(o, segs, n, (enum path_op)g, nn, p, g >= 2 ? vals[g][i] : GW_STR_NULL);
        }
    }
    if (c->allow_body.n > 0) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(o, tmp, k, v)
        {
            if (!allowed(c, gw_str_c(k))) {
                json_object_del(o, k);
                changed = true;
            }
        }
    }
    return changed;
}

/* ---- multipart bodies: rename, remove, replace, add (Kong's order; no append) ---- */

static struct gw_str part_head(struct gw_req *r, struct gw_str name)
{
    return gw_str_c(gw_arena_printf(gw_req_pool(r),
                                    "Content-Disposition: form-data; name=\"%.*s\"\r\n\r\n",
                                    (int)name.len, name.p));
}

static void multipart_apply(struct gw_req *r, const struct rt_conf *c, struct gw_str body,
                            struct gw_str ct, struct gw_str *const vals[5])
{
    struct gw_part *parts, *v;
    struct gw_str boundary;
    int n = gw_multipart_parse(gw_req_pool(r), body, ct, &parts, &boundary);
    size_t cap, k;

    if (n < 0)
        return;
    cap = (size_t)n + c->add[L_BODY].n + 1;
    v = gw_arena_calloc(gw_req_pool(r), cap, sizeof(*v));
    memcpy(v, parts, (size_t)n * sizeof(*v));
    k = (size_t)n;
    for (size_t i = 0; i < c->rename[L_BODY].n; i++)
        for (size_t j = 0; j < k; j++)
            if (gw_str_eq(v[j].name, c->rename[L_BODY].v[i].name)) {
                v[j].name = c->rename[L_BODY].v[i].new_name;
                v[j].head = part_head(r, v[j].name);
            }
    for (size_t i = 0; i < c->remove[L_BODY].n; i++) {
        size_t w = 0;
        for (size_t j = 0; j < k; j++)
            if (!gw_str_eq(v[j].name, c->remove[L_BODY].v[i].name))
                v[w++] = v[j];
        k = w;
    }
    for (size_t i = 0; i < c->replace[L_BODY].n; i++)
        for (size_t j = 0; j < k; j++)
            if (gw_str_eq(v[j].name, c->replace[L_BODY].v[i].name))
                v[j].content = vals[2][i];
    for (size_t i = 0; i < c->add[L_BODY].n; i++) {
        bool have = false;
        for (size_t j = 0; j < k && !have; j++)
            have = gw_str_eq(v[j].name, c->add[L_BODY].v[i].name);
        if (!have) {
            v[k].name = c->add[L_BODY].v[i].name;
            v[k].head = part_head(r, v[k].name);
            v[k].content = vals[3][i];
            k++;
        }
    }
    {
        size_t w = 0;
        for (size_t j = 0; j < k; j++)
            if (allowed(c, v[j].name))
                v[w++] = v[j];
        k = w;
    }
    gw_req_set_body(r, gw_multipart_build(gw_req_pool(r), boundary, v, k));
}

/* ---- access ---- */

/* Every value of list kind `k`, rendered on the request as it arrived. */
static void render_lists(struct gw_req *r, const struct rt_conf *c, int k, struct gw_str *vals[5])
{
    const struct list *ls[5] = {&c->remove[k], &c->rename[k], &c->replace[k], &c->add[k],
                                &c->append[k]};

    for (int g = 0; g < 5; g++) {
        vals[g] = gw_arena_calloc(gw_req_pool(r), ls[g]->n + 1, sizeof(**vals));
        if (g >= 2)
            for (size_t i = 0; i < ls[g]->n; i++)
                vals[g][i] = render(r, &ls[g]->v[i].value);
    }
}

static bool is_host(struct gw_str name)
{
    return gw_str_caseeq(name, GW_STR_LIT("host"));
}

static void transform_headers(struct gw_req *r, const struct rt_conf *c, struct gw_str *vals[5])
{
    const int k = L_HEADERS;
    char name[256], other[256];
    struct gw_str values[32];

#define CSTR(buf, s) (snprintf(buf, sizeof(buf), "%.*s", (int)(s).len, (s).p) < (int)sizeof(buf))
    for (size_t i = 0; i < c->remove[k].n; i++)
        if (CSTR(name, c->remove[k].v[i].name))
            gw_req_clear_header(r, name);
    for (size_t i = 0; i < c->rename[k].n; i++) {
        const struct pair *p = &c->rename[k].v[i];
        size_t n;
        if (!CSTR(name, p->name) || !CSTR(other, p->new_name))
            continue;
        n = gw_req_header_values(r, name, values, 32);
        if (n == 0)
            continue;
        if (n > 32)
            n = 32;
        for (size_t j = 0; j < n; j++) /* copied: clearing may reuse their place */
            values[j] = gw_arena_str(gw_req_pool(r), values[j]);
        gw_req_clear_header(r, name);
        gw_req_clear_header(r, other);
        for (size_t j = 0; j < n; j++)
            gw_req_add_header(r, other, values[j]);
    }
    for (size_t i = 0; i < c->replace[k].n; i++) {
        const struct pair *p = &c->replace[k].v[i];
        if (!CSTR(name, p->name))
            continue;
        if (is_host(p->name) || gw_req_header(r, name).p != NULL)
            gw_req_set_header(r, name, vals[2][i]);
    }
    for (size_t i = 0; i < c->add[k].n; i++) {
        const struct pair *p = &c->add[k].v[i];
        if (!is_host(p->name) && CSTR(name, p->name) && gw_req_header(r, name).p == NULL)
            gw_req_add_header(r, name, vals[3][i]);
    }
    for (size_t i = 0; i < c->append[k].n; i++)
        if (CSTR(name, c->append[k].v[i].name))
            gw_req_add_header(r, name, vals[4][i]);
#undef CSTR
}

static void transform_body(struct gw_req *r, const struct rt_conf *c, struct gw_str *vals[5])
{
    struct gw_str ct = gw_req_header(r, "content-type");
    enum gw_body_kind kind = gw_body_kind(ct);
    struct gw_str body = gw_req_body(r);

    if (!any_body_op(c) || kind == GW_BODY_OTHER || body.p == NULL)
        return;
    if (kind == GW_BODY_JSON) {
        json_t *o = body.len == 0 ? json_object() : json_loadb(body.p, body.len, 0, NULL);
        if (o == NULL || !json_is_object(o)) { /* not an object: forwarded as it came */
            json_decref(o);
            return;
        }
        if (json_apply(c, o, vals)) {
            char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (text != NULL)
                gw_req_set_body(r, gw_str_c(text));
            free(text);
        }
        json_decref(o);
    } else if (kind == GW_BODY_FORM) {
        struct args x;
        args_parse(r, body, &x);
        args_apply(r, c, L_BODY, &x, vals);
        {
            size_t w = 0;
            for (size_t j = 0; j < x.n; j++)
                if (allowed(c, x.v[j].name))
                    x.v[w++] = x.v[j];
            x.n = w;
        }
        gw_req_set_body(r, args_encode(r, &x));
    } else {
        multipart_apply(r, c, body, ct, vals);
    }
}

static enum gw_rc rt_access(struct gw_req *r, const void *conf, void *ctx)
{
    const struct rt_conf *c = conf;
    struct gw_str *hv[5], *qv[5], *bv[5], uri = GW_STR_NULL;
    bool query_ops = c->remove[L_QUERY].n + c->rename[L_QUERY].n + c->replace[L_QUERY].n +
                         c->add[L_QUERY].n + c->append[L_QUERY].n >
                     0;

    /* templates first, all on the request as it arrived */
    render_lists(r, c, L_HEADERS, hv);
    render_lists(r, c, L_QUERY, qv);
    render_lists(r, c, L_BODY, bv);
    if (c->has_uri)
        uri = render(r, &c->uri);

    if (c->has_uri && uri.len > 0)
        gw_req_set_path(r, uri.p[0] == '/' ? uri
                                           : gw_str_c(gw_arena_printf(gw_req_pool(r), "/%.*s",
                                                                      (int)uri.len, uri.p)));
    if (c->http_method != NULL) {
        gw_req_set_method(r, c->http_method);
        if (c->form_to_query && gw_body_kind(gw_req_header(r, "content-type")) == GW_BODY_FORM) {
            /* Kong: the form's parameters join the query string */
            struct gw_str body = gw_req_body(r);
            struct args q, f;
            if (body.p != NULL && body.len > 0) {
                args_parse(r, gw_req_query(r), &q);
                args_parse(r, body, &f);
                for (size_t i = 0; i < f.n; i++)
                    args_push(r, &q, f.v[i].name, f.v[i].value);
                gw_req_set_query(r, args_encode(r, &q));
            }
        }
    }
    transform_headers(r, c, hv);
    transform_body(r, c, bv);
    if (query_ops) {
        struct args q;
        args_parse(r, gw_req_query(r), &q);
        args_apply(r, c, L_QUERY, &q, qv);
        gw_req_set_query(r, args_encode(r, &q));
    }
    return GW_OK;
}

const struct gw_plugin gw_plugin_request_transformer = {
    .name = "request-transformer",
    .priority = 801,
    .consumer_scoped = true,
    .parse = rt_parse,
    .wants_body = rt_wants_body,
    .access = rt_access,
};

const struct gw_plugin gw_plugin_request_transformer_advanced = {
    .name = "request-transformer-advanced",
    .priority = 802,
    .consumer_scoped = true,
    .parse = rta_parse,
    .wants_body = rt_wants_body,
    .access = rt_access,
};
