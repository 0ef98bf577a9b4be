#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/pconf.h"
#include "gw/plugin.h"
#include "gw/req.h"
#include "gw/router.h"
#include "gw/yaml.h"

/* cors: Cross-Origin Resource Sharing as Kong's cors plugin (priority 2000, so a preflight is
 * answered before any authentication; reference §6, docs/plugins.md). The origin rules are
 * compiled once: plain entries are normalised, regex entries compiled with PCRE2 (JIT when
 * available) anchored at both ends, as Kong adjusts them. */

struct cors_origin {
    pcre2_code *re;      /* a regex entry; NULL: plain */
    bool jit, by_host;   /* by_host: matched against the host only (no ':' in the entry) */
    struct gw_str plain; /* a plain entry, normalised */
};

struct cors_conf {
    struct gw_strv origins;
    struct cors_origin *rules;
    bool allow_all;      /* no origins, or exactly ["*"] */
    const char *single;  /* one plain entry: sent verbatim, whatever the Origin */
    bool star_in_list;   /* "*" among several entries */
    const char *methods; /* joined with ',' */
    const char *headers; /* joined, or NULL: echo Access-Control-Request-Headers */
    const char *exposed; /* joined, or NULL */
    const char *max_age; /* as text, or NULL */
    bool credentials, preflight_continue, private_network, allow_origin_absent;
};

struct cors_ctx {
    bool skip; /* a preflight: answered in access, or passed on upstream untouched */
};

/* ---- config ---- */

static bool plain_chars(struct gw_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == ':' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

static const char *join(struct gw_arena *a, const struct gw_strv *v)
{
    const char *out = "";

    for (size_t i = 0; i < v->n; i++)
        out = gw_arena_printf(a, "%s%s%s", out, i > 0 ? "," : "", v->v[i].p);
    return out;
}

/* Kong's normalize_origin (socket.url): `scheme://host[:port]` with the scheme's default port
 * dropped; without "//" the value is kept whole as both domain and host. `domain` and `host`
 * point into `buf` (at least s.len + 1 bytes) or into `s`. */
static void normalize(struct gw_str s, char *buf, struct gw_str *domain, struct gw_str *host)
{
    const char *sep = NULL;
    struct gw_str scheme, auth, h, port = GW_STR_NULL;
    size_t n = 0;

    for (size_t i = 0; i + 2 < s.len && sep == NULL; i++)
        if (s.p[i] == ':' && s.p[i + 1] == '/' && s.p[i + 2] == '/')
            sep = s.p + i;
    if (sep == NULL || sep == s.p) {
        *domain = *host = s;
        return;
    }
    scheme = (struct gw_str){s.p, (size_t)(sep - s.p)};
    auth.p = sep + 3;
    auth.len = 0;
    while (auth.p + auth.len < s.p + s.len && auth.p[auth.len] != '/' && auth.p[auth.len] != '?' &&
           auth.p[auth.len] != '#')
        auth.len++;
    {
        const char *at = memchr(auth.p, '@', auth.len); /* userinfo is not part of it */
        if (at != NULL) {
            auth.len -= (size_t)(at + 1 - auth.p);
            auth.p = at + 1;
        }
    }
    h = auth;
    if (h.len > 0 && h.p[0] == '[') {
        const char *close = memchr(h.p, ']', h.len);
        if (close != NULL) {
            size_t hl = (size_t)(close + 1 - h.p);
            if (hl < h.len && h.p[hl] == ':')
                port = (struct gw_str){h.p + hl + 1, h.len - hl - 1};
            h.len = hl;
        }
    } else {
        const char *colon = memchr(h.p, ':', h.len);
        if (colon != NULL) {
            port = (struct gw_str){colon + 1, h.len - (size_t)(colon + 1 - h.p)};
            h.len = (size_t)(colon - h.p);
        }
    }
    if (h.len == 0) {
        *domain = *host = s;
        return;
    }
    if ((gw_str_eqc(scheme, "http") && gw_str_eqc(port, "80")) ||
        (gw_str_eqc(scheme, "https") && gw_str_eqc(port, "443")))
        port = GW_STR_NULL;
    memcpy(buf, scheme.p, scheme.len);
    n = scheme.len;
    memcpy(buf + n, "://", 3);
    n += 3;
    host->p = buf + n;
    host->len = h.len;
    memcpy(buf + n, h.p, h.len);
    n += h.len;
    if (port.p != NULL) {
        buf[n++] = ':';
        memcpy(buf + n, port.p, port.len);
        n += port.len;
    }
    buf[n] = '\0';
    domain->p = buf;
    domain->len = n;
}

static void free_code(void *p)
{
    pcre2_code_free(p);
}

static const char *check_method(struct gw_str m, struct gw_arena *a)
{
    static const char *const ok[] = {"GET",    "HEAD",    "PUT",   "PATCH",   "POST",
                                     "DELETE", "OPTIONS", "TRACE", "CONNECT", NULL};

    for (const char *const *p = ok; *p != NULL; p++)
        if (gw_str_eqc(m, *p))
            return NULL;
    return "expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, CONNECT";
}

static void *cors_parse(const struct gw_yaml *node, const char *path, struct gw_arena *a,
                        struct gw_err *err)
{
    static const char *const known[] = {"origins",
                                        "methods",
                                        "headers",
                                        "exposed_headers",
                                        "credentials",
                                        "max_age",
                                        "preflight_continue",
                                        "private_network",
                                        "allow_origin_absent",
                                        NULL};
    struct cors_conf *c = gw_arena_zalloc(a, sizeof(*c));
    struct gw_strv methods = {NULL, 0}, headers = {NULL, 0}, exposed = {NULL, 0};
    const struct gw_yaml *ma;
    int rc = 0;

    c->allow_origin_absent = true;
    rc |= gw_pconf_check(node, path, known, a, err);
    rc |= gw_pconf_strv(node, "origins", path, NULL, 0, &c->origins, a, err);
    rc |= gw_pconf_strv(node, "methods", path, check_method, 0, &methods, a, err);
    rc |= gw_pconf_strv(node, "headers", path, NULL, 0, &headers, a, err);
    rc |= gw_pconf_strv(node, "exposed_headers", path, NULL, 0, &exposed, a, err);
    rc |= gw_pconf_bool(node, "credentials", path, &c->credentials, a, err);
    rc |= gw_pconf_bool(node, "preflight_continue", path, &c->preflight_continue, a, err);
    rc |= gw_pconf_bool(node, "private_network", path, &c->private_network, a, err);
    rc |= gw_pconf_bool(node, "allow_origin_absent", path, &c->allow_origin_absent, a, err);
    ma = gw_yaml_get(node, "max_age");
    if (!gw_yaml_is_null(ma)) {
        if (ma->type == GW_YAML_INT)
            c->max_age = gw_arena_printf(a, "%lld", (long long)ma->v.i);
        else if (ma->type == GW_YAML_FLOAT)
            c->max_age = gw_arena_printf(a, "%g", ma->v.f);
        else
            rc = gw_err_at(err, ma, gw_arena_printf(a, "%s.max_age", path), "expected a number");
    }
    for (size_t i = 0; i < headers.n + exposed.n; i++) {
        const struct gw_str *v = i < headers.n ? &headers.v[i] : &exposed.v[i - headers.n];
        if (memchr(v->p, '\r', v->len) != NULL || memchr(v->p, '\n', v->len) != NULL)
            rc = gw_err_at(err, node, path, "header values must not contain line breaks");
    }
    c->rules = gw_arena_calloc(a, c->origins.n + 1, sizeof(*c->rules));
    for (size_t i = 0; i < c->origins.n; i++) {
        struct gw_str o = c->origins.v[i];
        struct cors_origin *ru = &c->rules[i];
        const char *rpath = gw_arena_printf(a, "%s.origins[%zu]", path, i);
        if (gw_str_eqc(o, "*")) {
            c->star_in_list = true;
            continue;
        }
        ru->by_host = memchr(o.p, ':', o.len) == NULL;
        if (plain_chars(o)) {
            char *buf = gw_arena_alloc(a, o.len + 8);
            struct gw_str d, h;
            normalize(o, buf, &d, &h);
            ru->plain = gw_arena_str(a, d);
        } else {
            /* Kong: a trailing '$' is added, a leading '^' dropped, matched anchored */
            const char *pat = o.p;
            size_t len = o.len;
            int ecode;
            PCRE2_SIZE eoff;
            char *src;
            if (len > 0 && pat[0] == '^') {
                pat++;
                len--;
            }
            src = gw_arena_printf(a, "%.*s%s", (int)len, pat,
                                  len > 0 && pat[len - 1] == '$' ? "" : "$");
            ru->re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_UTF, &ecode, &eoff, NULL);
            if (ru->re == NULL) {
                rc = gw_err_at(err, node, rpath, "'%s' is not a valid regex", o.p);
                continue;
            }
            gw_arena_on_free(a, free_code, ru->re);
            ru->jit = pcre2_jit_compile(ru->re, PCRE2_JIT_COMPLETE) == 0;
        }
    }
    if (rc != 0)
        return NULL;
    c->allow_all = c->origins.n == 0 || (c->origins.n == 1 && gw_str_eqc(c->origins.v[0], "*"));
    if (c->origins.n == 1 && !c->allow_all && plain_chars(c->origins.v[0]))
        c->single = c->origins.v[0].p;
    c->methods =
        methods.n > 0 ? join(a, &methods) : "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";
    c->headers = headers.n > 0 ? join(a, &headers) : NULL;
    c->exposed = exposed.n > 0 ? join(a, &exposed) : NULL;
    return c;
}

/* ---- request time ---- */

static bool provided(struct gw_str origin)
{
    return origin.p != NULL && origin.len > 0;
}

static void add_vary(struct gw_req *r, bool header_filter)
{
    if (header_filter)
        gw_resp_add_header(r, "Vary", GW_STR_LIT("Origin"));
    else
        gw_resp_set_header(r, "Vary", GW_STR_LIT("Origin"));
}

static bool rule_matches(const struct cors_origin *ru, struct gw_str domain, struct gw_str host)
{
    struct gw_str subj = ru->by_host ? host : domain;
    int rc;

    if (ru->re == NULL)
        return gw_str_eq(domain, ru->plain);
    if (ru->jit)
        rc = pcre2_jit_match(ru->re, (PCRE2_SPTR)(subj.p != NULL ? subj.p : ""), subj.len, 0,
                             PCRE2_ANCHORED, (pcre2_match_data *)gw_regex_match_data(), NULL);
    else
        rc = pcre2_match(ru->re, (PCRE2_SPTR)(subj.p != NULL ? subj.p : ""), subj.len, 0,
                         PCRE2_ANCHORED, (pcre2_match_data *)gw_regex_match_data(), NULL);
    return rc >= 0;
}

/* Kong's configure_origin: returns true for "allow all" (ACAO *). */
static bool configure_origin(struct gw_req *r, const struct cors_conf *c, bool header_filter,
                             struct gw_str origin)
{
    if (c->allow_all) {
        gw_resp_set_header(r, "Access-Control-Allow-Origin", GW_STR_LIT("*"));
        return true;
    }
    add_vary(r, header_filter);
    if (c->single != NULL) {
        gw_resp_set_header(r, "Access-Control-Allow-Origin", gw_str_c(c->single));
        return false;
    }
    if (provided(origin)) {
        char stack[512], *buf = origin.len < sizeof(stack) - 8
                                    ? stack
                                    : gw_arena_alloc(gw_req_pool(r), origin.len + 8);
        struct gw_str domain, host;
        if (c->star_in_list) {
            gw_resp_set_header(r, "Access-Control-Allow-Origin", GW_STR_LIT("*"));
            return true;
        }
        normalize(origin, buf, &domain, &host);
        for (size_t i = 0; i < c->origins.n; i++) {
            if (rule_matches(&c->rules[i], domain, host)) {
                gw_resp_set_header(r, "Access-Control-Allow-Origin", domain);
                return false;
            }
        }
    }
    gw_resp_clear_header(r, "Access-Control-Allow-Origin");
    return false;
}

static void configure_credentials(struct gw_req *r, const struct cors_conf *c, bool allow_all,
                                  bool header_filter, struct gw_str origin)
{
    if (!c->credentials)
        return;
    if (!allow_all) {
        gw_resp_set_header(r, "Access-Control-Allow-Credentials", GW_STR_LIT("true"));
        return;
    }
    /* ACAO cannot be '*' with credentials: the request's Origin instead */
    if (provided(origin)) {
        add_vary(r, header_filter);
        gw_resp_set_header(r, "Access-Control-Allow-Origin", origin);
        gw_resp_set_header(r, "Access-Control-Allow-Credentials", GW_STR_LIT("true"));
    }
}

static enum gw_rc cors_access(struct gw_req *r, const void *conf, void *ctxp)
{
    const struct cors_conf *c = conf;
    struct cors_ctx *ctx = ctxp;
    struct gw_str origin = gw_req_header(r, "origin");
    struct gw_str acrh;
    bool all;

    if (!gw_str_eqc(gw_req_method(r), "OPTIONS") || !provided(origin) ||
        gw_req_header(r, "access-control-request-method").p == NULL)
        return GW_OK;
    ctx->skip = true;
    if (c->preflight_continue)
        return GW_OK;
    all = configure_origin(r, c, false, origin);
    configure_credentials(r, c, all, false, origin);
    acrh = gw_req_header(r, "access-control-request-headers");
    if (c->headers != NULL)
        gw_resp_set_header(r, "Access-Control-Allow-Headers", gw_str_c(c->headers));
    else if (acrh.p != NULL)
        gw_resp_set_header(r, "Access-Control-Allow-Headers", acrh);
    gw_resp_set_header(r, "Access-Control-Allow-Methods", gw_str_c(c->methods));
    if (c->max_age != NULL)
        gw_resp_set_header(r, "Access-Control-Max-Age", gw_str_c(c->max_age));
    if (c->private_network &&
        gw_str_eqc(gw_req_header(r, "access-control-request-private-network"), "true"))
        gw_resp_set_header(r, "Access-Control-Allow-Private-Network", GW_STR_LIT("true"));
    return gw_req_exit_empty(r, 200);
}

static enum gw_rc cors_header_filter(struct gw_req *r, const void *conf, void *ctxp)
{
    const struct cors_conf *c = conf;
    const struct cors_ctx *ctx = ctxp;
    struct gw_str origin;
    bool all;

    if (ctx->skip)
        return GW_OK;
    origin = gw_req_header(r, "origin");
    if (!provided(origin) && !c->allow_origin_absent)
        return GW_OK;
    all = configure_origin(r, c, true, origin);
    configure_credentials(r, c, all, true, origin);
    if (c->exposed != NULL)
        gw_resp_set_header(r, "Access-Control-Expose-Headers", gw_str_c(c->exposed));
    return GW_OK;
}

const struct gw_plugin gw_plugin_cors = {
    .name = "cors",
    .priority = 2000,
    .ctx_size = sizeof(struct cors_ctx),
    .consumer_scoped = false,
    .parse = cors_parse,
    .access = cors_access,
    .header_filter = cors_header_filter,
};
