/* Gateway-generated error responses. The facts (templates, messages, the Accept grammar) come
 * from Kong 3.x: kong/tools/http.lua, kong/pdk/response.lua and kong/error_handlers.lua. */
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "gw/http_error.h"

/* ---- Accept negotiation ---- */

/* Kong matches each Accept element with one PCRE (flags "ajoxi": anchored at the start only,
 * extended, case-insensitive):
 *   ((?:TOKEN|\*) \/ (?:TOKEN|\*))
 *   (?: \s*;\s* q=( 1(?:\.0{0,3}|) | 0(?:\.\d{0,3}|) ) | \s*;\s* TOKEN (?:=[^;]*|) )*
 * with TOKEN = [a-z0-9][a-z0-9-!#$&^_+.]+ (two bytes at least). Nothing after the match is
 * looked at, so "text/html garbage" is text/html, and a parameter that fits neither branch
 * ("q=abc", "q = 0.5", "x=1") silently ends the parameter list. The greedy loop never needs to
 * backtrack (the pattern has no end anchor), so a single forward scan reproduces it exactly. */

static bool is_ws(unsigned char c)
{
    /* PCRE's \s, and the bytes Kong's strip() removes: space and \t \n \v \f \r. */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_token_tail(unsigned char c)
{
    switch (c) {
    case '-':
    case '!':
    case '#':
    case '$':
    case '&':
    case '^':
    case '_':
    case '+':
    case '.':
        return true;
    default:
        return is_alnum(c);
    }
}

/* Length of a TOKEN at p[0..n), or 0. */
static size_t token_len(const unsigned char *p, size_t n)
{
    size_t i;

    if (n < 2 || !is_alnum(p[0]) || !is_token_tail(p[1]))
        return 0;
    for (i = 2; i < n && is_token_tail(p[i]); i++)
        ;
    return i;
}

/* Length of TOKEN or "*" at p[0..n), or 0. */
static size_t range_part_len(const unsigned char *p, size_t n)
{
    size_t t = token_len(p, n);

    if (t > 0)
        return t;
    return n > 0 && p[0] == '*' ? 1 : 0;
}

static size_t skip_ws(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && is_ws(p[i]))
        i++;
    return i;
}

/* The q branch at p[i..n) (just after "q="): sets *q in thousandths and returns the index
 * after the number, or returns 0 when no number is there. Digits past the third decimal are
 * left unread, as the regex leaves them, so "0.12345" is 0.123 and "1.5" is "1." = 1. */
static size_t parse_qvalue(const unsigned char *p, size_t i, size_t n, unsigned *q)
{
    unsigned v = 0, scale = 100;
    size_t k;

    if (i >= n || (p[i] != '0' && p[i] != '1'))
        return 0;
    if (p[i++] == '1') {
        *q = 1000;
        if (i < n && p[i] == '.')
            for (i++, k = 0; k < 3 && i < n && p[i] == '0'; k++)
                i++;
        return i;
    }
    if (i < n && p[i] == '.')
        for (i++, k = 0; k < 3 && i < n && p[i] >= '0' && p[i] <= '9'; k++, scale /= 10)
            v += (unsigned)(p[i++] - '0') * scale;
    *q = v;
    return i;
}

static bool range_is(const unsigned char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    return n == l && memcmp(p, lit, l) == 0;
}

/* Kong's get_mime_type() on a matched media range: the lookup is case-sensitive even though
 * the regex was not. Returns -1 where Kong falls back to its default type. */
static int range_type(const unsigned char *type, size_t tlen, const unsigned char *sub, size_t slen)
{
    if (slen == 1 && sub[0] == '*') {
        if (range_is(type, tlen, "*"))
            return GW_BODY_JSON;
        if (range_is(type, tlen, "application"))
            return GW_BODY_JSON;
        if (range_is(type, tlen, "text"))
            return GW_BODY_TEXT;
        return -1;
    }
    if (range_is(type, tlen, "application")) {
        if (range_is(sub, slen, "json"))
            return GW_BODY_JSON;
        if (range_is(sub, slen, "xml"))
            return GW_BODY_XML;
    } else if (range_is(type, tlen, "text")) {
        if (range_is(sub, slen, "html"))
            return GW_BODY_HTML;
        if (range_is(sub, slen, "plain"))
            return GW_BODY_TEXT;
    }
    return -1;
}

/* One Accept element, p[0..n) without the comma: returns false when Kong's regex would not
 * match it; otherwise *type is the mapped type (-1 = Kong's default) and *q its weight. */
static bool parse_element(const unsigned char *p, size_t n, int *type, unsigned *q)
{
    size_t i = skip_ws(p, 0, n), tl, sl, j;
    const unsigned char *t, *s;

    t = p + i;
    tl = range_part_len(t, n - i);
    if (tl == 0)
        return false;
    i += tl;
    if (i >= n || p[i] != '/')
        return false;
    s = p + ++i;
    sl = range_part_len(s, n - i);
    if (sl == 0)
        return false;
    i += sl;
    *type = range_type(t, tl, s, sl);
    *q = 1000;
    /* Each loop is one iteration of the parameter group; i only moves forward. */
    for (;;) {
        j = skip_ws(p, i, n);
        if (j >= n || p[j] != ';')
            break;
        j = skip_ws(p, j + 1, n);
        if (j + 1 < n && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=') {
            size_t e = parse_qvalue(p, j + 2, n, q);
            if (e != 0) {
                i = e;
                continue;
            }
        }
        size_t pl = token_len(p + j, n - j);
        if (pl == 0)
            break;
        j += pl;
        if (j < n && p[j] == '=')
            while (j < n && p[j] != ';')
                j++;
        i = j;
    }
    return true;
}

enum gw_body_type gw_error_negotiate(struct gw_str accept, enum gw_body_type dflt)
{
    const unsigned char *p = (const unsigned char *)accept.p;
    enum gw_body_type best = dflt;
    unsigned max_q = 0;
    size_t start = 0;

    if (p == NULL || accept.len == 0)
        return dflt;
    while (start <= accept.len) {
        const unsigned char *comma =
            start < accept.len ? memchr(p + start, ',', accept.len - start) : NULL;
        size_t end = comma != NULL ? (size_t)(comma - p) : accept.len;
        int type;
        unsigned q;

        if (parse_element(p + start, end - start, &type, &q) && q > max_q) {
            max_q = q;
            best = type < 0 ? dflt : (enum gw_body_type)type;
        }
        start = end + 1;
    }
    return best;
}

enum gw_body_type gw_body_type_from_mime(struct gw_str mime, enum gw_body_type dflt)
{
    if (gw_str_eqc(mime, "application/json"))
        return GW_BODY_JSON;
    if (gw_str_eqc(mime, "text/html"))
        return GW_BODY_HTML;
    if (gw_str_eqc(mime, "application/xml"))
        return GW_BODY_XML;
    if (gw_str_eqc(mime, "text/plain"))
        return GW_BODY_TEXT;
    return dflt;
}

/* ---- status texts ---- */

static const char *const reasons[500] = {
    [100 - 100] = "Continue",
    [101 - 100] = "Switching Protocols",
    [102 - 100] = "Processing",
    [103 - 100] = "Early Hints",
    [200 - 100] = "OK",
    [201 - 100] = "Created",
    [202 - 100] = "Accepted",
    [203 - 100] = "Non-Authoritative Information",
    [204 - 100] = "No Content",
    [205 - 100] = "Reset Content",
    [206 - 100] = "Partial Content",
    [207 - 100] = "Multi-Status",
    [208 - 100] = "Already Reported",
    [226 - 100] = "IM Used",
    [300 - 100] = "Multiple Choices",
    [301 - 100] = "Moved Permanently",
    [302 - 100] = "Found",
    [303 - 100] = "See Other",
    [304 - 100] = "Not Modified",
    [305 - 100] = "Use Proxy",
    [307 - 100] = "Temporary Redirect",
    [308 - 100] = "Permanent Redirect",
    [400 - 100] = "Bad Request",
    [401 - 100] = "Unauthorized",
    [402 - 100] = "Payment Required",
    [403 - 100] = "Forbidden",
    [404 - 100] = "Not Found",
    [405 - 100] = "Method Not Allowed",
    [406 - 100] = "Not Acceptable",
    [407 - 100] = "Proxy Authentication Required",
    [408 - 100] = "Request Timeout",
    [409 - 100] = "Conflict",
    [410 - 100] = "Gone",
    [411 - 100] = "Length Required",
    [412 - 100] = "Precondition Failed",
    [413 - 100] = "Content Too Large",
    [414 - 100] = "URI Too Long",
    [415 - 100] = "Unsupported Media Type",
    [416 - 100] = "Range Not Satisfiable",
    [417 - 100] = "Expectation Failed",
    [421 - 100] = "Misdirected Request",
    [422 - 100] = "Unprocessable Content",
    [423 - 100] = "Locked",
    [424 - 100] = "Failed Dependency",
    [425 - 100] = "Too Early",
    [426 - 100] = "Upgrade Required",
    [428 - 100] = "Precondition Required",
    [429 - 100] = "Too Many Requests",
    [431 - 100] = "Request Header Fields Too Large",
    [451 - 100] = "Unavailable For Legal Reasons",
    [500 - 100] = "Internal Server Error",
    [501 - 100] = "Not Implemented",
    [502 - 100] = "Bad Gateway",
    [503 - 100] = "Service Unavailable",
    [504 - 100] = "Gateway Timeout",
    [505 - 100] = "HTTP Version Not Supported",
    [506 - 100] = "Variant Also Negotiates",
    [507 - 100] = "Insufficient Storage",
    [508 - 100] = "Loop Detected",
    [510 - 100] = "Not Extended",
    [511 - 100] = "Network Authentication Required",
};

const char *gw_status_reason(int status)
{
    const char *r = status >= 100 && status <= 599 ? reasons[status - 100] : NULL;

    return r != NULL ? r : "Unknown";
}

/* Kong formats "The upstream server responded with %d" at run time and caches it; a static
 * table gives the same text with no allocation and no shared mutable state. */
#define UP(a, b, c) "The upstream server responded with " #a #b #c
#define UP10(a, b)                                                                                 \
    UP(a, b, 0), UP(a, b, 1), UP(a, b, 2), UP(a, b, 3), UP(a, b, 4), UP(a, b, 5), UP(a, b, 6),     \
        UP(a, b, 7), UP(a, b, 8), UP(a, b, 9)
#define UP100(a)                                                                                   \
    UP10(a, 0), UP10(a, 1), UP10(a, 2), UP10(a, 3), UP10(a, 4), UP10(a, 5), UP10(a, 6),            \
        UP10(a, 7), UP10(a, 8), UP10(a, 9)

static const char *const upstream_responded[500] = {UP100(1), UP100(2), UP100(3), UP100(4),
                                                    UP100(5)};

static const char *const messages[500] = {
    /* kong.response.error()'s HTTP_ERROR_MESSAGES, K:kong/pdk/response.lua */
    [400 - 100] = "Bad request",
    [401 - 100] = "Unauthorized",
    [402 - 100] = "Payment required",
    [403 - 100] = "Forbidden",
    [404 - 100] = "Not found",
    [405 - 100] = "Method not allowed",
    [406 - 100] = "Not acceptable",
    [407 - 100] = "Proxy authentication required",
    [408 - 100] = "Request timeout",
    [409 - 100] = "Conflict",
    [410 - 100] = "Gone",
    [411 - 100] = "Length required",
    [412 - 100] = "Precondition failed",
    [413 - 100] = "Payload too large",
    [414 - 100] = "URI too long",
    [415 - 100] = "Unsupported media type",
    [416 - 100] = "Range not satisfiable",
    [417 - 100] = "Expectation failed",
    [418 - 100] = "I'm a teapot",
    [421 - 100] = "Misdirected request",
    [422 - 100] = "Unprocessable entity",
    [423 - 100] = "Locked",
    [424 - 100] = "Failed dependency",
    [425 - 100] = "Too early",
    [426 - 100] = "Upgrade required",
    [428 - 100] = "Precondition required",
    [429 - 100] = "Too many requests",
    /* Kong's table says "Request header fields too large", but Kong never sends 431: an
     * oversize header block is nginx's 494, answered as 400 with the text below. gatehouse
     * answers that case with 431, so it keeps the text clients of Kong see. */
    [431 - 100] = "Request header or cookie too large",
    [451 - 100] = "Unavailable for legal reasons",
    [494 - 100] = "Request header or cookie too large",
    [500 - 100] = "An unexpected error occurred",
    [501 - 100] = "Not implemented",
    [502 - 100] = "An invalid response was received from the upstream server",
    [503 - 100] = "The upstream server is currently unavailable",
    [504 - 100] = "The upstream server is timing out",
    [505 - 100] = "HTTP version not supported",
    [506 - 100] = "Variant also negotiates",
    [507 - 100] = "Insufficient storage",
    [508 - 100] = "Loop detected",
    [510 - 100] = "Not extended",
    [511 - 100] = "Network authentication required",
};

const char *gw_error_default_message(int status)
{
    if (status < 100 || status > 599)
        return messages[500 - 100];
    return messages[status - 100] != NULL ? messages[status - 100]
                                          : upstream_responded[status - 100];
}

/* ---- bodies ---- */

enum esc {
    ESC_NONE,  /* text/plain: bytes as they are */
    ESC_JSON,  /* inside a JSON string: what JSON requires, "/" left alone (Kong's template) */
    ESC_CJSON, /* lua-cjson's encoder: also "/" -> "\/" and DEL -> "\u007f" */
    ESC_HTML,
    ESC_XML,
};

/* Fields longer than this are refused: no real message or id comes near it, and it keeps the
 * escaped length (at most 6 bytes per input byte) far from overflow. */
#define FIELD_MAX ((size_t)1 << 20)

/* The replacement for byte c under mode m, or NULL when c is copied. `tmp` holds \u00XX. */
static const char *esc_seq(enum esc m, unsigned char c, char tmp[8])
{
    static const char hex[] = "0123456789abcdef";

    switch (m) {
    case ESC_NONE:
        return NULL;
    case ESC_JSON:
    case ESC_CJSON:
        switch (c) {
        case '"':
            return "\\\"";
        case '\\':
            return "\\\\";
        case '\b':
            return "\\b";
        case '\f':
            return "\\f";
        case '\n':
            return "\\n";
        case '\r':
            return "\\r";
        case '\t':
            return "\\t";
        case '/':
            return m == ESC_CJSON ? "\\/" : NULL;
        default:
            if (c < 0x20 || (c == 0x7f && m == ESC_CJSON)) {
                memcpy(tmp, "\\u00", 4);
                tmp[4] = hex[c >> 4];
                tmp[5] = hex[c & 0xf];
                tmp[6] = '\0';
                return tmp;
            }
            return NULL;
        }
    case ESC_HTML:
    case ESC_XML:
        switch (c) {
        case '&':
            return "&amp;";
        case '<':
            return "&lt;";
        case '>':
            return "&gt;";
        case '"':
            return "&quot;";
        case '\'':
            return m == ESC_XML ? "&apos;" : "&#39;";
        case '\t':
        case '\n':
        case '\r':
            return NULL;
        default:
            /* C0 controls cannot appear in XML 1.0 at all, not even as references; HTML
             * rejects most of them too. U+FFFD keeps the page well-formed. */
            return c < 0x20 ? "\xef\xbf\xbd" : NULL;
        }
    }
    return NULL;
}

static size_t esc_len(enum esc m, struct gw_str s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t n = 0;
    char tmp[8];

    for (size_t i = 0; i < s.len; i++) {
        const char *r = esc_seq(m, p[i], tmp);
        n += r != NULL ? strlen(r) : 1;
    }
    return n;
}

static char *esc_put(char *w, enum esc m, struct gw_str s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    char tmp[8];

    for (size_t i = 0; i < s.len; i++) {
        const char *r = esc_seq(m, p[i], tmp);
        if (r == NULL) {
            *w++ = (char)p[i];
        } else {
            size_t l = strlen(r);
            memcpy(w, r, l);
            w += l;
        }
    }
    return w;
}

/* A body is literal text around (at most) two escaped fields. */
struct part {
    const char *lit; /* NULL: the part is `field` */
    struct gw_str field;
    enum esc mode;
};

#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), {NULL, 0}, ESC_NONE                                                                   \
    }
#define FIELD(f, m)                                                                                \
    {                                                                                              \
        NULL, (f), (m)                                                                             \
    }

static const char *put_parts(struct evbuffer *out, const struct part *parts, size_t n,
                             const char *ctype)
{
    struct evbuffer_iovec v;
    size_t total = 0;
    char *w;

    for (size_t i = 0; i < n; i++) {
        if (parts[i].lit != NULL) {
            total += strlen(parts[i].lit);
        } else {
            if (parts[i].field.len > FIELD_MAX || (parts[i].field.len > 0 && !parts[i].field.p))
                return NULL;
            total += esc_len(parts[i].mode, parts[i].field);
        }
    }
    /* One contiguous reservation, committed whole: the body is appended entirely or not at
     * all, and it is written once with no intermediate copy. */
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) != 1 || v.iov_len < total)
        return NULL;
    w = v.iov_base;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].lit != NULL) {
            size_t l = strlen(parts[i].lit);
            memcpy(w, parts[i].lit, l);
            w += l;
        } else {
            w = esc_put(w, parts[i].mode, parts[i].field);
        }
    }
    v.iov_len = total;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return NULL;
    return ctype;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *gw_error_body(struct evbuffer *out, enum gw_body_type t, struct gw_str message,
                          struct gw_str request_id)
{
    if (request_id.len == 0) {
        const struct part exit_body[] = {LIT("{\"message\":\""), FIELD(message, ESC_CJSON),
                                         LIT("\"}")};
        return put_parts(out, exit_body, COUNT(exit_body), "application/json; charset=utf-8");
    }
    switch (t) {
    case GW_BODY_HTML: {
        const struct part html[] = {LIT("<!doctype html>\n"
                                        "<html>\n"
                                        "  <head>\n"
                                        "    <meta charset=\"utf-8\">\n"
                                        "    <title>Error</title>\n"
                                        "  </head>\n"
                                        "  <body>\n"
                                        "    <h1>Error</h1>\n"
                                        "    <p>"),
                                    FIELD(message, ESC_HTML),
                                    LIT(".</p>\n"
                                        "    <p>request_id: "),
                                    FIELD(request_id, ESC_HTML),
                                    LIT("</p>\n"
                                        "  </body>\n"
                                        "</html>\n")};
        return put_parts(out, html, COUNT(html), "text/html; charset=utf-8");
    }
    case GW_BODY_XML: {
        const struct part xml[] = {LIT("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                       "<error>\n"
                                       "  <message>"),
                                   FIELD(message, ESC_XML),
                                   LIT("</message>\n"
                                       "  <requestid>"),
                                   FIELD(request_id, ESC_XML),
                                   LIT("</requestid>\n"
                                       "</error>\n")};
        return put_parts(out, xml, COUNT(xml), "application/xml; charset=utf-8");
    }
    case GW_BODY_TEXT: {
        const struct part text[] = {FIELD(message, ESC_NONE), LIT("\nrequest_id: "),
                                    FIELD(request_id, ESC_NONE), LIT("\n")};
        return put_parts(out, text, COUNT(text), "text/plain; charset=utf-8");
    }
    case GW_BODY_JSON:
    default: {
        const struct part json[] = {LIT("{\n"
                                        "  \"message\":\""),
                                    FIELD(message, ESC_JSON),
                                    LIT("\",\n"
                                        "  \"request_id\":\""),
                                    FIELD(request_id, ESC_JSON), LIT("\"\n}")};
        return put_parts(out, json, COUNT(json), "application/json; charset=utf-8");
    }
    }
}
