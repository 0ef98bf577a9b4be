/* Route compilation and matching with Kong 3's traditional_compatible semantics
 * (kong/router/transform.lua, kong/router/atc.lua; restated in docs/routing.md).
 *
 * Compile: every route becomes one sub-route per path group (all regex paths together, prefix
 * paths grouped by length, as split_routes_and_services_by_path does), each with Kong's 64-bit
 * priority. Sub-routes are ranked once (priority, then file order). Routes whose hosts include
 * a plain name are indexed under that name (lower-cased, without port) in a hash table;
 * routes with no hosts or a wildcard host go to one shared list. Both keep rank order.
 *
 * Match: the host bucket of the request and the shared list are merged by rank; the first
 * sub-route whose every rule matches wins, which is the highest-priority match overall. */
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <limits.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/config.h"
#include "gw/err.h"
#include "gw/router.h"
#include "router_int.h"

enum rt_host_kind { RT_HOST_EXACT, RT_HOST_SUFFIX, RT_HOST_PREFIX };

struct rt_host {
    struct gw_str name; /* lower-case, no brackets; wildcard: the fixed part with its dot */
    enum rt_host_kind kind;
    int port; /* -1: any port */
};

struct rt_regex {
    pcre2_code *code;
    bool jit;
    uint32_t ncap;      /* numbered groups, [0] not counted */
    const char **names; /* [ncaptures]: group names, NULL when unnamed */
    struct gw_str lit;  /* literal text every match starts with (may be empty) */
};

struct rt_hval {
    struct gw_str lower; /* plain value, lower-cased */
    struct rt_regex *re; /* `~*` value: case-insensitive, unanchored */
};

struct rt_header {
    struct gw_str name;
    struct rt_hval *vals;
    size_t nvals;
};

struct rt_path {
    struct gw_str prefix; /* prefix path */
    struct rt_regex *re;  /* regex path (then prefix is unused) */
};

struct rt_sub {
    const struct gw_route *route;
    uint64_t priority;
    unsigned index, ord; /* route->index, group number inside the route */
    uint32_t rank;       /* position in the global order, 0 = tried first */
    bool regex;
    const struct gw_str *methods;
    size_t nmethods;
    const struct rt_host *hosts;
    size_t nhosts;
    const struct rt_host *snis;
    size_t nsnis;
    const struct rt_header *headers;
    size_t nheaders;
    const struct rt_path *paths;
    size_t npaths;
    struct gw_str seg; /* first path segment every match has ("/seg/..."); .p NULL: unknown */
};

/* Secondary index of a long candidate list by first path segment: a sub-route is either
 * under its segment or in `generic`; each list keeps rank order. */
struct rt_seg {
    struct gw_str seg; /* .p == NULL: empty slot */
    unsigned long long hash;
    const struct rt_sub **subs;
    size_t n;
};

struct rt_index {
    struct rt_seg *segs;
    size_t mask;
    const struct rt_sub **generic;
    size_t ngeneric;
};

#define RT_INDEX_MIN 16 /* shorter lists are scanned directly */

struct rt_bucket {
    struct gw_str host; /* lower-case; .p == NULL: empty slot */
    unsigned long long hash;
    const struct rt_sub **subs;
    size_t n;
    const struct rt_index *idx; /* NULL when short */
};

struct gw_router {
    struct rt_sub *subs;
    size_t nsubs;
    struct rt_bucket *table;
    size_t mask; /* table size - 1; table == NULL when no plain host exists */
    const struct rt_sub **other;
    size_t nother;
    const struct rt_index *other_idx;
};

/* ---- per-thread PCRE2 match data ---- */

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static _Thread_local pcre2_match_data *md_tls;

static void md_destroy(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_init(void)
{
    (void)pthread_key_create(&md_key, md_destroy);
}

static pcre2_match_data *md_get(void)
{
    if (md_tls == NULL) {
        /* allocated once per thread, released by the key destructor when it exits */
        md_tls = pcre2_match_data_create(GW_ROUTER_MAX_CAPTURES, NULL);
        if (md_tls == NULL)
            abort();
        pthread_once(&md_once, md_key_init);
        (void)pthread_setspecific(md_key, md_tls);
    }
    return md_tls;
}

void *gw_regex_match_data(void)
{
    return md_get();
}

static int rx_exec(const struct rt_regex *re, struct gw_str s, pcre2_match_data *md)
{
    PCRE2_SPTR subj = (PCRE2_SPTR)(s.p != NULL ? s.p : "");

    if (re->jit)
        return pcre2_jit_match(re->code, subj, s.len, 0, 0, md, NULL);
    return pcre2_match(re->code, subj, s.len, 0, 0, md, NULL);
}

/* ---- compile helpers ---- */

static void code_free(void *p)
{
    pcre2_code_free(p);
}

static char *pcre_message(int code, struct gw_arena *a)
{
    PCRE2_UCHAR buf[256];

    if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
        return gw_arena_printf(a, "error %d", code);
    return gw_arena_printf(a, "%s", (const char *)buf);
}

size_t gw_rt_regex_literal_prefix(struct gw_str re, char *buf, size_t cap)
{
    size_t n = 0, i = 0;

    /* any alternation may make the prefix optional: give up rather than parse groups */
    if (memchr(re.p, '|', re.len) != NULL)
        return 0;
    while (i < re.len && n < cap) {
        char c = re.p[i];
        size_t step = 1;

        if (strchr("^$.?*+()[]{", c) != NULL)
            break;
        if (c == '\\') {
            unsigned char e = i + 1 < re.len ? (unsigned char)re.p[i + 1] : 0;

            /* a backslash before a non-alphanumeric printable byte is that byte */
            if (e < 0x21 || e > 0x7e || (e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
                (e >= 'A' && e <= 'Z'))
                break;
            c = (char)e;
            step = 2;
        }
        /* a quantified byte may be absent or repeated: it ends the literal, excluded */
        if (i + step < re.len && strchr("?*+{", re.p[i + step]) != NULL)
            break;
        buf[n++] = c;
        i += step;
    }
    return n;
}

/* Compiles `pat`; on error returns NULL and sets *msg (arena) to PCRE2's message. */
static struct rt_regex *rx_compile(struct gw_str pat, uint32_t opts, struct gw_arena *a,
                                   const char **msg)
{
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)(pat.p != NULL ? pat.p : ""), pat.len, opts, &ecode, &eoff, NULL);
    struct rt_regex *re;
    uint32_t ncap = 0, nnames = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    size_t nslots;

    if (code == NULL) {
        *msg = pcre_message(ecode, a);
        return NULL;
    }
    gw_arena_on_free(a, code_free, code);
    re = gw_arena_zalloc(a, sizeof(*re));
    re->code = code;
    re->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ncap);
    re->ncap = ncap;
    nslots = ncap + 1 < GW_ROUTER_MAX_CAPTURES ? ncap + 1 : GW_ROUTER_MAX_CAPTURES;
    re->names = gw_arena_calloc(a, nslots, sizeof(*re->names));
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &nnames);
    pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < nnames && table != NULL; i++) {
        PCRE2_SPTR e = table + (size_t)i * esize;
        unsigned grp = ((unsigned)e[0] << 8) | e[1];

        if (grp > 0 && grp < nslots)
            re->names[grp] = gw_arena_strndup(a, (const char *)e + 2, strlen((const char *)e + 2));
    }
    if (!(opts & PCRE2_CASELESS)) {
        char *lit = gw_arena_alloc(a, pat.len + 1);

        re->lit.len = gw_rt_regex_literal_prefix(pat, lit, pat.len);
        re->lit.p = lit;
    }
    return re;
}

static struct gw_str lower_dup(struct gw_arena *a, const char *p, size_t len)
{
    char *s = gw_arena_alloc(a, len + 1);

    for (size_t i = 0; i < len; i++)
        s[i] = gw_lower(p[i]);
    s[len] = '\0';
    return (struct gw_str){s, len};
}

/* Parses up to 5 decimal digits as a port; -1 when not a port. */
static int parse_port(const char *p, size_t len)
{
    int v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

/* Splits "host[:port]" (or "[v6]:port") like Kong's split_host_port; brackets are dropped
 * so that "[::1]" and "::1" compare equal. */
static struct gw_str split_host(struct gw_str h, int *port)
{
    *port = -1;
    if (h.len > 0 && h.p[0] == '[') {
        const char *end = memchr(h.p, ']', h.len);

        if (end != NULL) {
            size_t in = (size_t)(end - h.p);

            if (in + 1 < h.len && h.p[in + 1] == ':')
                *port = parse_port(end + 2, h.len - in - 2);
            return (struct gw_str){h.p + 1, in - 1};
        }
        return h;
    }
    const char *colon = memchr(h.p, ':', h.len);

    if (colon != NULL) {
        size_t at = (size_t)(colon - h.p);
        int pt = parse_port(colon + 1, h.len - at - 1);

        if (pt >= 0) {
            *port = pt;
            return (struct gw_str){h.p, at};
        }
    }
    return h;
}

static void compile_host(struct gw_str raw, bool sni, struct gw_arena *a, struct rt_host *out)
{
    struct gw_str h = raw;

    out->port = -1;
    if (!sni)
        h = split_host(raw, &out->port);
    else if (h.len > 1 && h.p[h.len - 1] == '.' && h.p[0] != '*')
        h.len--; /* the last dot of an FQDN SNI is not used for routing (Kong) */
    if (h.len > 0 && h.p[0] == '*') {
        out->kind = RT_HOST_SUFFIX;
        h.p++;
        h.len--;
        if (sni && h.len > 1 && h.p[h.len - 1] == '.')
            h.len--;
    } else if (h.len > 0 && h.p[h.len - 1] == '*') {
        out->kind = RT_HOST_PREFIX;
        h.len--;
    } else {
        out->kind = RT_HOST_EXACT;
    }
    out->name = lower_dup(a, h.p, h.len);
}

static bool is_regex_path(struct gw_str p)
{
    return p.len > 0 && p.p[0] == '~';
}

uint64_t gw_rt_priority(const struct gw_route *route, const struct gw_str *paths, size_t npaths)
{
    uint64_t w = 0, prio;
    bool plain = route->hosts.n > 0, regex = false;
    uint64_t hc = route->nheaders > 255 ? 255 : route->nheaders;
    uint64_t len = 0, rp = 0;

    w += route->methods.n > 0;
    w += route->hosts.n > 0;
    w += route->nheaders > 0;
    w += route->snis.n > 0;
    w += npaths > 0;
    for (size_t i = 0; i < route->hosts.n && plain; i++)
        if (memchr(route->hosts.v[i].p, '*', route->hosts.v[i].len) != NULL)
            plain = false;
    if (npaths > 0) {
        regex = is_regex_path(paths[0]);
        if (!regex)
            len = paths[0].len;
    }
    if (regex) {
        int64_t v = route->regex_priority;

        if (v < INT32_MIN)
            v = INT32_MIN;
        if (v > INT32_MAX)
            v = INT32_MAX;
        rp = (uint64_t)(v - (int64_t)INT32_MIN);
    }
    prio = (w << GW_RT_WEIGHT_SHIFT) | (hc << GW_RT_HEADERS_SHIFT) |
           (rp << GW_RT_REGEX_PRIO_SHIFT) | (len & GW_RT_LENGTH_MASK);
    if (plain)
        prio |= 1ull << GW_RT_PLAIN_HOST_BIT;
    if (regex)
        prio |= 1ull << GW_RT_REGEX_BIT;
    return prio;
}

static void route_err(struct gw_err *err, const struct gw_route *r, const char *path,
                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_err_vat(err, GW_DIAG_ERROR, r->pos.line, r->pos.col, path, fmt, ap);
    va_end(ap);
}

static int sub_cmp(const void *x, const void *y)
{
    const struct rt_sub *a = *(const struct rt_sub *const *)x;
    const struct rt_sub *b = *(const struct rt_sub *const *)y;

    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if (a->ord != b->ord)
        return a->ord < b->ord ? -1 : 1;
    return 0;
}

static struct rt_bucket *bucket_find(const struct gw_router *r, struct gw_str host,
                                     unsigned long long hash)
{
    if (r->table == NULL)
        return NULL;
    for (size_t i = hash & r->mask;; i = (i + 1) & r->mask) {
        struct rt_bucket *b = &r->table[i];

        if (b->host.p == NULL)
            return NULL;
        if (b->hash == hash && gw_str_caseeq(b->host, host))
            return b;
    }
}

static struct rt_bucket *bucket_get(struct gw_router *r, struct gw_str host)
{
    unsigned long long hash = gw_hash(host.p, host.len, true);
    size_t i = hash & r->mask;

    for (;; i = (i + 1) & r->mask) {
        struct rt_bucket *b = &r->table[i];

        if (b->host.p == NULL) {
            b->host = host;
            b->hash = hash;
            return b;
        }
        if (b->hash == hash && gw_str_caseeq(b->host, host))
            return b;
    }
}

/* Compiles the rules shared by all sub-routes of one route. Returns the number of errors. */
static int compile_route_rules(const struct gw_route *rt, struct gw_arena *a, struct rt_sub *tmpl,
                               struct gw_err *err)
{
    int nerr = 0;
    struct rt_host *hosts = NULL, *snis = NULL;
    struct rt_header *hdrs = NULL;

    tmpl->route = rt;
    tmpl->index = rt->index;
    tmpl->methods = rt->methods.v;
    tmpl->nmethods = rt->methods.n;
    if (rt->hosts.n > 0)
        hosts = gw_arena_calloc(a, rt->hosts.n, sizeof(*hosts));
    for (size_t i = 0; i < rt->hosts.n; i++)
        compile_host(rt->hosts.v[i], false, a, &hosts[i]);
    if (rt->snis.n > 0)
        snis = gw_arena_calloc(a, rt->snis.n, sizeof(*snis));
    for (size_t i = 0; i < rt->snis.n; i++)
        compile_host(rt->snis.v[i], true, a, &snis[i]);
    if (rt->nheaders > 0)
        hdrs = gw_arena_calloc(a, rt->nheaders, sizeof(*hdrs));
    for (size_t i = 0; i < rt->nheaders; i++) {
        const struct gw_route_header *h = &rt->headers[i];

        hdrs[i].name = h->name;
        hdrs[i].nvals = h->values.n;
        hdrs[i].vals =
            gw_arena_calloc(a, h->values.n > 0 ? h->values.n : 1, sizeof(struct rt_hval));
        for (size_t j = 0; j < h->values.n; j++) {
            struct gw_str v = h->values.v[j];

            if (v.len >= 2 && v.p[0] == '~' && v.p[1] == '*') {
                const char *msg = NULL;
                struct gw_str pat = {v.p + 2, v.len - 2};

                hdrs[i].vals[j].re = rx_compile(pat, PCRE2_CASELESS, a, &msg);
                if (hdrs[i].vals[j].re == NULL) {
                    char *path = gw_arena_printf(a, "routes[%u].headers.%.*s[%zu]", rt->index,
                                                 (int)h->name.len, h->name.p, j);

                    route_err(err, rt, path, "invalid regex: '%.*s' (PCRE returned: %s)",
                              (int)pat.len, pat.p, msg);
                    nerr++;
                }
            } else {
                hdrs[i].vals[j].lower = lower_dup(a, v.p, v.len);
            }
        }
    }
    tmpl->hosts = hosts;
    tmpl->nhosts = rt->hosts.n;
    tmpl->snis = snis;
    tmpl->nsnis = rt->snis.n;
    tmpl->headers = hdrs;
    tmpl->nheaders = rt->nheaders;
    return nerr;
}

static size_t common_len(struct gw_str a, struct gw_str b)
{
    size_t n = 0;

    while (n < a.len && n < b.len && a.p[n] == b.p[n])
        n++;
    return n;
}

/* The literal start shared by every path of the sub-route, cut to its first segment. */
static struct gw_str sub_segment(const struct rt_sub *s)
{
    struct gw_str head = GW_STR_NULL;
    const char *slash;

    for (size_t i = 0; i < s->npaths; i++) {
        struct gw_str h = s->regex ? s->paths[i].re->lit : s->paths[i].prefix;

        if (i == 0)
            head = h;
        else
            head.len = common_len(head, h);
    }
    if (head.len < 3 || head.p[0] != '/')
        return GW_STR_NULL;
    slash = memchr(head.p + 1, '/', head.len - 1);
    if (slash == NULL || slash == head.p + 1)
        return GW_STR_NULL;
    return (struct gw_str){head.p + 1, (size_t)(slash - head.p - 1)};
}

static struct rt_seg *seg_slot(struct rt_seg *segs, size_t mask, struct gw_str seg,
                               unsigned long long hash, bool insert)
{
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct rt_seg *e = &segs[i];

        if (e->seg.p == NULL) {
            if (!insert)
                return NULL;
            e->seg = seg;
            e->hash = hash;
            return e;
        }
        if (e->hash == hash && gw_str_eq(e->seg, seg))
            return e;
    }
}

static const struct rt_index *index_build(struct gw_arena *a, const struct rt_sub *const *subs,
                                          size_t n)
{
    struct rt_index *x;
    size_t size = 16;

    if (n < RT_INDEX_MIN)
        return NULL;
    while (size < n * 2)
        size *= 2;
    x = gw_arena_zalloc(a, sizeof(*x));
    x->segs = gw_arena_calloc(a, size, sizeof(*x->segs));
    x->mask = size - 1;
    for (size_t i = 0; i < n; i++) {
        struct gw_str seg = subs[i]->seg;

        if (seg.p == NULL)
            x->ngeneric++;
        else
            seg_slot(x->segs, x->mask, seg, gw_hash(seg.p, seg.len, false), true)->n++;
    }
    for (size_t i = 0; i <= x->mask; i++) {
        if (x->segs[i].seg.p != NULL) {
            x->segs[i].subs = gw_arena_calloc(a, x->segs[i].n, sizeof(void *));
            x->segs[i].n = 0;
        }
    }
    x->generic = gw_arena_calloc(a, x->ngeneric > 0 ? x->ngeneric : 1, sizeof(void *));
    x->ngeneric = 0;
    for (size_t i = 0; i < n; i++) {
        struct gw_str seg = subs[i]->seg;

        if (seg.p == NULL) {
            x->generic[x->ngeneric++] = subs[i];
        } else {
            struct rt_seg *e =
                seg_slot(x->segs, x->mask, seg, gw_hash(seg.p, seg.len, false), false);

            e->subs[e->n++] = subs[i];
        }
    }
    return x;
}

struct gw_router *gw_router_compile(const struct gw_route *routes, size_t n, struct gw_arena *a,
                                    struct gw_err *err)
{
    struct gw_router *r = gw_arena_zalloc(a, sizeof(*r));
    size_t cap = 0, nexact = 0;
    int nerr = 0;
    struct rt_sub **sorted;

    for (size_t i = 0; i < n; i++)
        cap += routes[i].paths.n > 0 ? routes[i].paths.n : 1;
    r->subs = gw_arena_calloc(a, cap > 0 ? cap : 1, sizeof(*r->subs));

    for (size_t i = 0; i < n; i++) {
        const struct gw_route *rt = &routes[i];
        struct rt_sub tmpl = {0};
        size_t np = rt->paths.n;

        if (rt->ignored)
            continue;
        nerr += compile_route_rules(rt, a, &tmpl, err);
        if (np == 0) {
            tmpl.priority = gw_rt_priority(rt, NULL, 0);
            r->subs[r->nsubs++] = tmpl;
            continue;
        }
        /* group paths: all regexes together, prefixes by length, in order of first use */
        size_t *key = gw_xmalloc(np * sizeof(*key));
        bool *done = gw_xcalloc(np, sizeof(*done));
        unsigned ord = 0;

        for (size_t j = 0; j < np; j++)
            key[j] = is_regex_path(rt->paths.v[j]) ? 0 : rt->paths.v[j].len;
        for (size_t j = 0; j < np; j++) {
            struct rt_sub *s;
            struct rt_path *paths;
            struct gw_str *group;
            size_t cnt = 0;

            if (done[j])
                continue;
            for (size_t k = j; k < np; k++)
                cnt += !done[k] && key[k] == key[j];
            paths = gw_arena_calloc(a, cnt, sizeof(*paths));
            group = gw_xmalloc(cnt * sizeof(*group));
            s = &r->subs[r->nsubs++];
            *s = tmpl;
            s->ord = ord++;
            s->regex = key[j] == 0;
            s->paths = paths;
            s->npaths = cnt;
            cnt = 0;
            for (size_t k = j; k < np; k++) {
                struct gw_str p = rt->paths.v[k];

                if (done[k] || key[k] != key[j])
                    continue;
                done[k] = true;
                group[cnt] = p;
                if (s->regex) {
                    const char *msg = NULL;
                    struct gw_str pat = {p.p + 1, p.len - 1};

                    paths[cnt].re = rx_compile(pat, PCRE2_ANCHORED, a, &msg);
                    if (paths[cnt].re == NULL) {
                        char *path = gw_arena_printf(a, "routes[%u].paths[%zu]", rt->index, k);

                        route_err(err, rt, path, "invalid regex: '%.*s' (PCRE returned: %s)",
                                  (int)pat.len, pat.p, msg);
                        nerr++;
                    }
                } else {
                    paths[cnt].prefix = p;
                }
                cnt++;
            }
            s->priority = gw_rt_priority(rt, group, cnt);
            free(group);
        }
        free(key);
        free(done);
    }
    if (nerr > 0)
        return NULL;

    sorted = gw_arena_calloc(a, r->nsubs > 0 ? r->nsubs : 1, sizeof(*sorted));
    for (size_t i = 0; i < r->nsubs; i++) {
        r->subs[i].seg = sub_segment(&r->subs[i]);
        sorted[i] = &r->subs[i];
        for (size_t j = 0; j < r->subs[i].nhosts; j++)
            nexact += r->subs[i].hosts[j].kind == RT_HOST_EXACT;
    }
    qsort(sorted, r->nsubs, sizeof(*sorted), sub_cmp);
    for (size_t i = 0; i < r->nsubs; i++)
        sorted[i]->rank = (uint32_t)i;

    /* exact-host table at most half full; lists are filled in rank order */
    if (nexact > 0) {
        size_t size = 16;

        while (size < nexact * 2)
            size *= 2;
        r->table = gw_arena_calloc(a, size, sizeof(*r->table));
        r->mask = size - 1;
    }
    /* pass 1 counts, pass 2 fills: a sub-route is listed once per distinct bucket */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (size_t i = 0; r->table != NULL && i <= r->mask; i++) {
                if (r->table[i].host.p != NULL) {
                    r->table[i].subs = gw_arena_calloc(a, r->table[i].n, sizeof(void *));
                    r->table[i].n = 0;
                }
            }
            r->other = gw_arena_calloc(a, r->nother > 0 ? r->nother : 1, sizeof(void *));
            r->nother = 0;
        }
        for (size_t i = 0; i < r->nsubs; i++) {
            const struct rt_sub *s = sorted[i];
            bool wild = s->nhosts == 0;

            for (size_t j = 0; j < s->nhosts; j++) {
                struct rt_bucket *b;

                if (s->hosts[j].kind != RT_HOST_EXACT) {
                    wild = true;
                    continue;
                }
                b = bucket_get(r, s->hosts[j].name);
                if (pass == 0) {
                    /* count only once per sub-route: hosts may repeat with other ports */
                    bool seen = false;

                    for (size_t k = 0; k < j && !seen; k++)
                        seen = s->hosts[k].kind == RT_HOST_EXACT &&
                               gw_str_eq(s->hosts[k].name, s->hosts[j].name);
                    b->n += !seen;
                } else if (b->n == 0 || b->subs[b->n - 1] != s) {
                    b->subs[b->n++] = s;
                }
            }
            if (wild) {
                if (pass == 1)
                    r->other[r->nother] = s;
                r->nother++;
            }
        }
    }
    for (size_t i = 0; r->table != NULL && i <= r->mask; i++)
        if (r->table[i].host.p != NULL)
            r->table[i].idx = index_build(a, r->table[i].subs, r->table[i].n);
    r->other_idx = index_build(a, r->other, r->nother);
    return r;
}

size_t gw_router_size(const struct gw_router *r)
{
    return r != NULL ? r->nsubs : 0;
}

/* ---- matching ---- */

struct rt_ctx {
    const struct gw_router_req *req;
    struct gw_str host; /* without port and brackets */
    int port;           /* Host header port, else the local port */
};

static bool caseeq_tail(struct gw_str s, struct gw_str suffix)
{
    return s.len >= suffix.len &&
           gw_str_caseeq((struct gw_str){s.p + s.len - suffix.len, suffix.len}, suffix);
}

static bool caseeq_head(struct gw_str s, struct gw_str prefix)
{
    return s.len >= prefix.len && gw_str_caseeq((struct gw_str){s.p, prefix.len}, prefix);
}

static bool name_match(const struct rt_host *h, struct gw_str name)
{
    switch (h->kind) {
    case RT_HOST_SUFFIX:
        return caseeq_tail(name, h->name);
    case RT_HOST_PREFIX:
        return caseeq_head(name, h->name);
    default:
        return gw_str_caseeq(name, h->name);
    }
}

static bool headers_match(const struct rt_sub *s, const struct gw_router_req *req)
{
    for (size_t i = 0; i < s->nheaders; i++) {
        const struct rt_header *h = &s->headers[i];
        bool found = false;

        for (size_t k = 0; k < req->nheaders && !found; k++) {
            const struct gw_router_header *rh = &req->headers[k];

            if (!gw_str_caseeq(rh->name, h->name))
                continue;
            for (size_t j = 0; j < h->nvals && !found; j++) {
                if (h->vals[j].re != NULL)
                    found = rx_exec(h->vals[j].re, rh->value, md_get()) >= 0;
                else
                    found = gw_str_caseeq(h->vals[j].lower, rh->value);
            }
        }
        if (!found)
            return false;
    }
    return true;
}

static bool sub_match(const struct rt_sub *s, const struct rt_ctx *c, struct gw_router_match *m)
{
    const struct gw_router_req *req = c->req;
    struct gw_str path = req->path;
    struct gw_str matched = {path.p, 0};
    bool ok;

    if (s->nmethods > 0) {
        ok = false;
        for (size_t i = 0; i < s->nmethods && !ok; i++)
            ok = gw_str_eq(s->methods[i], req->method);
        if (!ok)
            return false;
    }
    if (s->nhosts > 0) {
        ok = false;
        for (size_t i = 0; i < s->nhosts && !ok; i++)
            ok = (s->hosts[i].port < 0 || s->hosts[i].port == c->port) &&
                 name_match(&s->hosts[i], c->host);
        if (!ok)
            return false;
    }
    if (req->tls && s->nsnis > 0) {
        ok = false;
        for (size_t i = 0; i < s->nsnis && !ok; i++)
            ok = name_match(&s->snis[i], req->sni);
        if (!ok)
            return false;
    }
    if (!s->regex && s->npaths > 0) {
        size_t len = s->paths[0].prefix.len; /* one length per group */

        if (path.len < len)
            return false;
        ok = false;
        for (size_t i = 0; i < s->npaths && !ok; i++)
            ok = memcmp(path.p, s->paths[i].prefix.p, len) == 0;
        if (!ok)
            return false;
        matched.len = len;
    }
    if (s->nheaders > 0 && !headers_match(s, req))
        return false;
    if (s->regex) {
        pcre2_match_data *md = md_get();
        const struct rt_regex *re = NULL;
        int rc = -1;

        for (size_t i = 0; i < s->npaths; i++) {
            re = s->paths[i].re;
            if (re->lit.len > 0 &&
                (path.len < re->lit.len || memcmp(path.p, re->lit.p, re->lit.len) != 0))
                continue;
            rc = rx_exec(re, path, md);
            if (rc >= 0)
                break;
        }
        if (rc < 0)
            return false;

        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t nset = rc == 0 ? GW_ROUTER_MAX_CAPTURES : (size_t)rc;
        size_t n = re->ncap + 1 < GW_ROUTER_MAX_CAPTURES ? re->ncap + 1 : GW_ROUTER_MAX_CAPTURES;

        for (size_t i = 0; i < n; i++) {
            if (i < nset && ov[2 * i] != PCRE2_UNSET)
                m->captures[i] = (struct gw_str){path.p + ov[2 * i], ov[2 * i + 1] - ov[2 * i]};
            else
                m->captures[i] = GW_STR_NULL;
        }
        m->ncaptures = n;
        m->capture_names = re->names;
        matched = (struct gw_str){path.p + ov[0], ov[1] - ov[0]};
    } else {
        m->ncaptures = 0;
        m->capture_names = NULL;
    }
    m->route = s->route;
    m->regex = s->regex;
    m->matched = matched;
    /* Kong answers 426 / redirects only for https-only routes reached over plain http */
    m->protocol_ok = !((s->route->protocols & GW_PROTO_HTTPS) &&
                       !(s->route->protocols & GW_PROTO_HTTP) && !req->tls);
    return true;
}

struct rt_stream {
    const struct rt_sub *const *p;
    size_t n;
};

/* Adds the streams of one candidate list: the whole list, or (indexed) the sub-routes under
 * the request's first path segment plus those without a known segment. */
static size_t add_streams(struct rt_stream *st, size_t k, const struct rt_sub *const *subs,
                          size_t n, const struct rt_index *x, struct gw_str seg,
                          unsigned long long seghash)
{
    if (x == NULL) {
        if (n > 0)
            st[k++] = (struct rt_stream){subs, n};
        return k;
    }
    if (seg.len > 0) {
        const struct rt_seg *e = seg_slot(x->segs, x->mask, seg, seghash, false);

        if (e != NULL)
            st[k++] = (struct rt_stream){e->subs, e->n};
    }
    if (x->ngeneric > 0)
        st[k++] = (struct rt_stream){x->generic, x->ngeneric};
    return k;
}

bool gw_router_match(const struct gw_router *r, const struct gw_router_req *req,
                     struct gw_router_match *m)
{
    struct rt_ctx c = {req, GW_STR_NULL, req->port};
    int hport;
    const struct rt_bucket *b = NULL;
    struct rt_stream st[4];
    size_t k = 0;
    struct gw_str seg = GW_STR_NULL;
    unsigned long long seghash = 0;

    if (req->host.len > 0) {
        c.host = split_host(req->host, &hport);
        if (hport >= 0)
            c.port = hport; /* Kong's net.dst.port: the Host header's port first */
        b = bucket_find(r, c.host, gw_hash(c.host.p, c.host.len, true));
    }
    if ((r->other_idx != NULL || (b != NULL && b->idx != NULL)) && req->path.len > 1) {
        const char *e = memchr(req->path.p + 1, '/', req->path.len - 1);

        seg.p = req->path.p + 1;
        seg.len = e != NULL ? (size_t)(e - seg.p) : req->path.len - 1;
        seghash = gw_hash(seg.p, seg.len, false);
    }
    if (b != NULL)
        k = add_streams(st, k, b->subs, b->n, b->idx, seg, seghash);
    k = add_streams(st, k, r->other, r->nother, r->other_idx, seg, seghash);

    /* k-way merge by rank; a sub-route listed in two streams is tried once */
    for (;;) {
        const struct rt_sub *s = NULL;

        for (size_t i = 0; i < k; i++)
            if (st[i].n > 0 && (s == NULL || st[i].p[0]->rank < s->rank))
                s = st[i].p[0];
        if (s == NULL)
            return false;
        for (size_t i = 0; i < k; i++) {
            if (st[i].n > 0 && st[i].p[0] == s) {
                st[i].p++;
                st[i].n--;
            }
        }
        if (sub_match(s, &c, m))
            return true;
    }
}

const char *gw_router_check_path(struct gw_str path, struct gw_arena *a)
{
    bool regex = path.len > 0 && path.p[0] == '~';
    struct gw_str body = regex ? (struct gw_str){path.p + 1, path.len - 1} : path;

    if (body.len == 0 || body.p[0] != '/')
        return "should start with: / (fixed path) or ~/ (regex path)";
    for (size_t i = 0; i + 1 < path.len; i++)
        if (path.p[i] == '/' && path.p[i + 1] == '/')
            return "must not have empty segments";
    /* Kong replaces valid escapes by "___", then reports the first '%' left with up to two
     * bytes after it */
    for (size_t i = 0; i < path.len; i++) {
        if (path.p[i] != '%')
            continue;
        if (i + 2 < path.len && gw_rt_hexval(path.p[i + 1]) >= 0 &&
            gw_rt_hexval(path.p[i + 2]) >= 0) {
            i += 2;
            continue;
        }
        char show[3];
        size_t k = 0;

        show[k++] = '%';
        for (size_t j = i + 1; j < path.len && k < 3; j++) {
            /* a valid escape right after the bad '%' shows as "___" */
            bool esc = path.p[j] == '%' && j + 2 < path.len && gw_rt_hexval(path.p[j + 1]) >= 0 &&
                       gw_rt_hexval(path.p[j + 2]) >= 0;

            if (esc) {
                while (k < 3)
                    show[k++] = '_';
                break;
            }
            show[k++] = path.p[j];
        }
        return gw_arena_printf(a, "invalid url-encoded value: '%.*s'", (int)k, show);
    }
    if (!regex) {
        char *norm = gw_arena_alloc(a, path.len + 1);
        long n = gw_path_normalize(path.p, path.len, norm);

        if (n < 0)
            return "should start with: / (fixed path) or ~/ (regex path)";
        if ((size_t)n != path.len || memcmp(norm, path.p, path.len) != 0)
            return gw_arena_printf(a, "non-normalized path, consider use '%.*s' instead", (int)n,
                                   norm);
        return NULL;
    }

    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)body.p, body.len, PCRE2_ANCHORED, &ecode, &eoff, NULL);

    if (code == NULL)
        return gw_arena_printf(a, "invalid regex: '%.*s' (PCRE returned: %s)", (int)body.len,
                               body.p, pcre_message(ecode, a));
    pcre2_code_free(code);
    return NULL;
}
