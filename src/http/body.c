#include <string.h>

#include "gw/arena.h"
#include "gw/body.h"

static bool ci_contains(struct gw_str s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++) {
        size_t k = 0;
        while (k < n && gw_lower(s.p[i + k]) == needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

enum gw_body_kind gw_body_kind(struct gw_str ct)
{
    if (ct.p == NULL)
        return GW_BODY_OTHER;
    if (ci_contains(ct, "application/x-www-form-urlencoded"))
        return GW_BODY_FORM;
    if (ci_contains(ct, "application/json"))
        return GW_BODY_JSON;
    if (ci_contains(ct, "multipart/form-data"))
        return GW_BODY_MULTIPART;
    return GW_BODY_OTHER;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = gw_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

struct gw_str gw_urldecode(struct gw_arena *a, struct gw_str s)
{
    char *out = gw_arena_alloc(a, s.len + 1);
    size_t n = 0;

    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '%' && i + 2 < s.len && hexval(s.p[i + 1]) >= 0 && hexval(s.p[i + 2]) >= 0) {
            out[n++] = (char)(hexval(s.p[i + 1]) * 16 + hexval(s.p[i + 2]));
            i += 2;
        } else {
            out[n++] = s.p[i] == '+' ? ' ' : s.p[i];
        }
    }
    out[n] = '\0';
    return (struct gw_str){out, n};
}

/* Calls fn for each `name[=value]` of `text`; stops when it returns false. */
struct arg {
    struct gw_str raw, name, value; /* raw: the whole argument; value.p NULL without '=' */
};

static const char *next_arg(const char *p, const char *end, struct arg *x)
{
    const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));

    x->raw = (struct gw_str){p, (size_t)(stop - p)};
    x->name = (struct gw_str){p, (size_t)((eq != NULL ? eq : stop) - p)};
    x->value = eq != NULL ? (struct gw_str){eq + 1, (size_t)(stop - eq - 1)} : GW_STR_NULL;
    return stop + 1;
}

static bool name_is(struct gw_arena *a, struct gw_str raw, struct gw_str want)
{
    if (gw_str_eq(raw, want))
        return true;
    if (memchr(raw.p, '%', raw.len) == NULL && memchr(raw.p, '+', raw.len) == NULL)
        return false;
    return gw_str_eq(gw_urldecode(a, raw), want);
}

size_t gw_urlencoded_get(struct gw_arena *a, struct gw_str text, const char *name,
                         struct gw_str *value)
{
    struct gw_str want = gw_str_c(name);
    size_t count = 0;

    if (text.p == NULL)
        return 0;
    for (const char *p = text.p, *end = text.p + text.len; p < end;) {
        struct arg x;
        p = next_arg(p, end, &x);
        if (x.raw.len == 0 || !name_is(a, x.name, want))
            continue;
        if (count == 0 && value != NULL)
            *value = x.value.p != NULL ? gw_urldecode(a, x.value) : GW_STR_NULL;
        count++;
    }
    return count;
}

struct gw_str gw_urlencoded_remove(struct gw_arena *a, struct gw_str text, struct gw_str name)
{
    char *out;
    size_t n = 0;

    if (text.p == NULL || text.len == 0)
        return text;
    out = gw_arena_alloc(a, text.len + 1);
    for (const char *p = text.p, *end = text.p + text.len; p < end;) {
        struct arg x;
        p = next_arg(p, end, &x);
        if (x.raw.len == 0 || name_is(a, x.name, name))
            continue;
        if (n > 0)
            out[n++] = '&';
        memcpy(out + n, x.raw.p, x.raw.len);
        n += x.raw.len;
    }
    out[n] = '\0';
    return (struct gw_str){out, n};
}

/* ---- multipart/form-data (RFC 7578) ---- */

static const char *find(const char *p, const char *end, const char *needle, size_t n)
{
    for (; p + n <= end; p++)
        if (p[0] == needle[0] && memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

/* The boundary parameter of a Content-Type, unquoted. */
static struct gw_str boundary_of(struct gw_str ct)
{
    for (size_t i = 0; i + 9 <= ct.len; i++) {
        size_t k = 0;
        while (k < 9 && gw_lower(ct.p[i + k]) == "boundary="[k])
            k++;
        if (k == 9) {
            const char *p = ct.p + i + 9, *end = ct.p + ct.len, *q;
            if (p < end && *p == '"') {
                q = memchr(p + 1, '"', (size_t)(end - p - 1));
                return q != NULL ? (struct gw_str){p + 1, (size_t)(q - p - 1)} : GW_STR_NULL;
            }
            for (q = p; q < end && *q != ';' && *q != ' ' && *q != '\t'; q++)
                ;
            return (struct gw_str){p, (size_t)(q - p)};
        }
    }
    return GW_STR_NULL;
}

/* name="..." of the Content-Disposition line in a part's head */
static struct gw_str part_name(struct gw_str head)
{
    const char *end = head.p + head.len;

    for (const char *line = head.p; line < end;) {
        const char *eol = find(line, end, "\r\n", 2);
        struct gw_str l = {line, (size_t)((eol != NULL ? eol : end) - line)};
        if (l.len > 20 &&
            gw_str_caseeq((struct gw_str){l.p, 20}, GW_STR_LIT("content-disposition:"))) {
            for (size_t i = 20; i + 5 < l.len; i++) {
                if ((i == 20 || l.p[i - 1] == ';' || l.p[i - 1] == ' ') &&
                    memcmp(l.p + i, "name=", 5) == 0) {
                    const char *v = l.p + i + 5, *lend = l.p + l.len, *q;
                    if (v < lend && *v == '"') {
                        q = memchr(v + 1, '"', (size_t)(lend - v - 1));
                        if (q != NULL)
                            return (struct gw_str){v + 1, (size_t)(q - v - 1)};
                    } else {
                        for (q = v; q < lend && *q != ';'; q++)
                            ;
                        return (struct gw_str){v, (size_t)(q - v)};
                    }
                }
            }
        }
        if (eol == NULL)
            break;
        line = eol + 2;
    }
    return GW_STR_LIT("");
}

int gw_multipart_parse(struct gw_arena *a, struct gw_str body, struct gw_str content_type,
                       struct gw_part **parts, struct gw_str *boundary)
{
    struct gw_str b = boundary_of(content_type);
    const char *end = body.p + body.len, *p;
    char *delim;
    size_t dlen, n = 0, cap = 8;
    struct gw_part *v;

    if (b.len == 0 || b.len > 70 || body.p == NULL)
        return -1;
    dlen = b.len + 4; /* CRLF "--" boundary */
    delim = gw_arena_alloc(a, dlen + 1);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, b.p, b.len);
    /* the first delimiter may start the body without its CRLF */
    if (body.len >= dlen - 2 && memcmp(body.p, delim + 2, dlen - 2) == 0)
        p = body.p + dlen - 2;
    else if ((p = find(body.p, end, delim, dlen)) != NULL)
        p += dlen;
    else
        return -1;
    v = gw_arena_calloc(a, cap, sizeof(*v));
    for (;;) {
        const char *head_end, *next;
        if (p + 2 <= end && memcmp(p, "--", 2) == 0)
            break; /* the close delimiter */
        if (p + 2 > end || memcmp(p, "\r\n", 2) != 0)
            return -1;
        p += 2;
        head_end = find(p, end, "\r\n\r\n", 4);
        if (head_end == NULL && !(p + 2 <= end && memcmp(p, "\r\n", 2) == 0))
            return -1;
        next = find(p, end, delim, dlen);
        if (next == NULL)
            return -1;
        if (n == cap) {
            struct gw_part *nv = gw_arena_calloc(a, cap * 2, sizeof(*nv));
            memcpy(nv, v, cap * sizeof(*v));
            v = nv;
            cap *= 2;
        }
        if (p + 2 <= end && memcmp(p, "\r\n", 2) == 0) { /* a part without headers */
            v[n].head = (struct gw_str){p, 2};
            v[n].content = (struct gw_str){p + 2, (size_t)(next - p - 2)};
        } else {
            if (head_end > next)
                return -1;
            v[n].head = (struct gw_str){p, (size_t)(head_end + 4 - p)};
            v[n].content = (struct gw_str){head_end + 4, (size_t)(next - head_end - 4)};
        }
        v[n].name = part_name(v[n].head);
        n++;
        p = next + dlen;
    }
    *parts = v;
    *boundary = b;
    return (int)n;
}

struct gw_str gw_multipart_build(struct gw_arena *a, struct gw_str boundary,
                                 const struct gw_part *parts, size_t n)
{
    size_t len = boundary.len + 6, off = 0;
    char *out;

    for (size_t i = 0; i < n; i++)
        len += boundary.len + 6 + parts[i].head.len + parts[i].content.len;
    out = gw_arena_alloc(a, len + 1);
    for (size_t i = 0; i < n; i++) {
        memcpy(out + off, "--", 2);
        off += 2;
        memcpy(out + off, boundary.p, boundary.len);
        off += boundary.len;
        memcpy(out + off, "\r\n", 2);
        off += 2;
        memcpy(out + off, parts[i].head.p, parts[i].head.len);
        off += parts[i].head.len;
        memcpy(out + off, parts[i].content.p, parts[i].content.len);
        off += parts[i].content.len;
        memcpy(out + off, "\r\n", 2);
        off += 2;
    }
    memcpy(out + off, "--", 2);
    off += 2;
    memcpy(out + off, boundary.p, boundary.len);
    off += boundary.len;
    memcpy(out + off, "--\r\n", 4);
    off += 4;
    out[off] = '\0';
    return (struct gw_str){out, off};
}
