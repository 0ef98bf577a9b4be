/* Request path normalisation and the upstream path join (Kong's `kong/tools/uri.lua`
 * normalize() and `kong/router/utils.lua` get_upstream_uri_v0 / the traditional router's v1
 * rule, restated in docs/routing.md). Nothing here allocates. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "gw/config.h"
#include "gw/router.h"
#include "router_int.h"

int gw_rt_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Removes dot-segments and merges duplicate slashes in place, following the step order of
 * Kong's normalize(uri, true) so that odd inputs (`/a/..b`, `/a//../b`) give the same result.
 * Every kept segment starts with '/', so dropping the last one means going back to the last
 * '/' written. The write position never passes the read position. */
static size_t remove_dot_segments(char *s, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        size_t left = n - r;
        const char *p = s + r;

        if (left == 2 && p[0] == '/' && p[1] == '.') {
            /* "/." at the end: becomes "/" */
            r += 1;
            s[r] = '/';
        } else if (left == 3 && p[0] == '/' && p[1] == '.' && p[2] == '.') {
            /* "/.." at the end: "/" after dropping the last segment */
            r += 2;
            s[r] = '/';
            while (w > 0 && s[--w] != '/')
                ;
        } else if ((left == 1 && p[0] == '.') || (left == 2 && p[0] == '.' && p[1] == '.')) {
            r = n;
        } else if (left >= 3 && p[0] == '.' && p[1] == '.' && p[2] == '/') {
            r += 3;
        } else if (left >= 2 && p[0] == '.' && p[1] == '/') {
            r += 2;
        } else if (left >= 3 && p[0] == '/' && p[1] == '.' && p[2] == '/') {
            r += 2;
        } else if (left >= 4 && p[0] == '/' && p[1] == '.' && p[2] == '.' && p[3] == '/') {
            r += 3;
            while (w > 0 && s[--w] != '/')
                ;
        } else if (left >= 2 && p[0] == '/' && p[1] == '/') {
            r += 1;
        } else {
            /* copy one segment: the first byte, then up to the next '/' */
            size_t e = r + 1;

            while (e < n && s[e] != '/')
                e++;
            memmove(s + w, s + r, e - r);
            w += e - r;
            r = e;
        }
    }
    return w;
}

long gw_path_normalize(const char *in, size_t len, char *out)
{
    size_t w = 0;
    bool dots = false, slashes = false;

    if (len == 0 || in[0] != '/')
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return -1;
            hi = gw_rt_hexval(in[i + 1]);
            lo = gw_rt_hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (is_unreserved((unsigned char)c)) {
                out[w++] = c;
            } else {
                /* reserved and other bytes stay escaped, in upper case */
                out[w++] = '%';
                out[w++] = "0123456789ABCDEF"[hi];
                out[w++] = "0123456789ABCDEF"[lo];
                c = '%';
            }
            i += 2;
        } else {
            out[w++] = c;
        }
        if (c == '.')
            dots = true;
        else if (c == '/' && w >= 2 && out[w - 2] == '/')
            slashes = true;
    }
    if (dots || slashes)
        w = remove_dot_segments(out, w);
    return (long)w;
}

/* Appends to a bounded buffer while counting the full length. */
struct rt_out {
    char *p;
    size_t cap, len;
};

static void out_put(struct rt_out *o, const char *p, size_t n)
{
    if (o->len < o->cap) {
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;

        memcpy(o->p + o->len, p, k);
    }
    o->len += n;
}

static void out_str(struct rt_out *o, struct gw_str s)
{
    out_put(o, s.p, s.len);
}

/* Kong's sanitize_uri_postfix: a remainder starting with a dot-segment loses it. */
static struct gw_str sanitize_postfix(struct gw_str s)
{
    if ((s.len == 1 && s.p[0] == '.') || (s.len == 2 && s.p[0] == '.' && s.p[1] == '.'))
        return (struct gw_str){s.p + s.len, 0};
    if (s.len >= 2 && s.p[0] == '.' && s.p[1] == '/')
        return (struct gw_str){s.p + 2, s.len - 2};
    if (s.len >= 3 && s.p[0] == '.' && s.p[1] == '.' && s.p[2] == '/')
        return (struct gw_str){s.p + 3, s.len - 3};
    return s;
}

static bool ends_with_slash(struct gw_str s)
{
    return s.len > 0 && s.p[s.len - 1] == '/';
}

static void join_v0(struct rt_out *o, bool strip, struct gw_str base, struct gw_str req,
                    struct gw_str post)
{
    struct gw_str base_trim = {base.p, base.len > 0 ? base.len - 1 : 0};

    if (ends_with_slash(base)) {
        if (!strip) {
            out_str(o, base);
            out_put(o, req.p + 1, req.len - 1);
        } else if (post.len == 0) {
            if (base.len == 1 || ends_with_slash(req))
                out_str(o, base);
            else
                out_str(o, base_trim);
        } else if (post.p[0] == '/') {
            out_str(o, base_trim);
            out_str(o, post);
        } else {
            out_str(o, base);
            out_str(o, post);
        }
        return;
    }
    if (!strip) {
        out_str(o, base);
        if (!(req.len == 1 && req.p[0] == '/'))
            out_str(o, req);
    } else if (post.len == 0) {
        out_str(o, base);
        if (req.len > 1 && ends_with_slash(req))
            out_put(o, "/", 1);
    } else {
        out_str(o, base);
        if (post.p[0] != '/')
            out_put(o, "/", 1);
        out_str(o, post);
    }
}

/* path_handling v1 (Kong's traditional router only; the ATC flavours apply v0 to every
 * route): plain concatenation, one slash dropped where two would meet. */
static void join_v1(struct rt_out *o, bool strip, struct gw_str base, struct gw_str req,
                    struct gw_str post)
{
    if (!strip) {
        out_str(o, base);
        out_put(o, req.p + 1, req.len - 1);
    } else if (ends_with_slash(base) && post.len > 0 && post.p[0] == '/') {
        out_put(o, base.p, base.len - 1);
        out_str(o, post);
    } else {
        out_str(o, base);
        out_str(o, post);
    }
}

size_t gw_router_upstream_path(const struct gw_router_match *m, struct gw_str req_path, char *out,
                               size_t cap)
{
    struct rt_out o = {out, cap, 0};
    const struct gw_route *route = m->route;
    struct gw_str base = GW_STR_LIT("/");
    size_t plen = m->matched.len > 0 ? m->matched.len : 1;
    struct gw_str post;

    if (route->service != NULL && route->service->path.len > 0)
        base = route->service->path;
    if (req_path.len == 0)
        req_path = GW_STR_LIT("/");
    if (plen > req_path.len)
        plen = req_path.len;
    /* without a path rule Kong's prefix is "/": the remainder is the path minus its slash */
    post = sanitize_postfix((struct gw_str){req_path.p + plen, req_path.len - plen});
    if (route->path_handling == GW_PATH_V1)
        join_v1(&o, route->strip_path, base, req_path, post);
    else
        join_v0(&o, route->strip_path, base, req_path, post);
    return o.len;
}
