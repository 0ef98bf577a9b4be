/* Gateway error responses and request ids. Negotiation cases restate Kong's
 * spec/02-integration/05-proxy/12-error_default_type_spec.lua, t/01-pdk/08-response/13-error.t
 * and spec/01-unit/05-utils_spec.lua (get_mime_type), plus the corners of Kong's Accept regex
 * in kong/tools/http.lua; bodies are Kong's templates byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h> /* cmocka 1.1 needs the four headers above first */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "gw/http_error.h"
#include "gw/reqid.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const type_names[] = {"JSON", "HTML", "XML", "TEXT"};

/* ---- Accept negotiation ---- */

struct neg_case {
    const char *accept;
    size_t len; /* explicit, so cases may hold NUL bytes */
    enum gw_body_type dflt, want;
};

#define N(s, d, w)                                                                                 \
    {                                                                                              \
        (s), sizeof(s) - 1, GW_BODY_##d, GW_BODY_##w                                               \
    }

static void run_neg(const struct neg_case *c, size_t n)
{
    int failures = 0;

    for (size_t i = 0; i < n; i++) {
        enum gw_body_type got =
            gw_error_negotiate((struct gw_str){c[i].accept, c[i].len}, c[i].dflt);
        if (got != c[i].want) {
            print_error("Accept \"%.*s\" (default %s): got %s, want %s\n", (int)c[i].len,
                        c[i].accept, type_names[c[i].dflt], type_names[got], type_names[c[i].want]);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_negotiate_single_types(void **state)
{
    /* get_mime_type()'s supported list (K:spec/01-unit/05-utils_spec.lua). */
    static const struct neg_case c[] = {
        N("application/json", TEXT, JSON),
        N("application/json; charset=utf-8", TEXT, JSON),
        N("application/*", TEXT, JSON),
        N("application/*; charset=utf-8", TEXT, JSON),
        N("text/html", JSON, HTML),
        N("text/plain", JSON, TEXT),
        N("text/*", JSON, TEXT),
        N("text/*; charset=utf-8", JSON, TEXT),
        N("application/xml", JSON, XML),
        N("*/*", TEXT, JSON),
        N("*/*; charset=utf-8", TEXT, JSON),
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_unsupported_gives_default(void **state)
{
    /* Kong: get_mime_type() falls back to its default for these; ours is `dflt`. */
    static const struct neg_case c[] = {
        N("audio/*", HTML, HTML),
        N("text/css", XML, XML),
        N("text/xml", TEXT, TEXT),
        N("application/grpc", HTML, HTML),
        N("video/json", TEXT, TEXT),
        N("json", TEXT, TEXT), /* t/01-pdk/08-response/13-error.t TEST 3 */
        N("default", HTML, HTML),
        N("*/html", TEXT, TEXT),
        N("a/b", HTML, HTML), /* TOKEN needs two bytes */
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_empty_gives_default(void **state)
{
    assert_int_equal(gw_error_negotiate(GW_STR_NULL, GW_BODY_TEXT), GW_BODY_TEXT);
    assert_int_equal(gw_error_negotiate(GW_STR_LIT(""), GW_BODY_HTML), GW_BODY_HTML);
    assert_int_equal(gw_error_negotiate(GW_STR_LIT(" "), GW_BODY_XML), GW_BODY_XML);
    assert_int_equal(gw_error_negotiate(GW_STR_LIT(",,,"), GW_BODY_XML), GW_BODY_XML);
}

static void test_negotiate_kong_q_value_specs(void **state)
{
    static const struct neg_case c[] = {
        /* 12-error_default_type_spec.lua "defaults to 1 when q-value is not specified" */
        N("application/json;q=0.9,text/html,text/plain;q=0.9", JSON, HTML),
        /* ... "picks highest q-value (json)" */
        N("text/plain;q=0.7,application/json;q=0.8,text/html;q=0.5", TEXT, JSON),
        /* 13-error.t TEST 5 "respects accept header priorities" */
        N("text/plain;q=0.3, text/html;q=0.7, text/html;level=1, text/html;level=2;q=0.4, "
          "*/*;q=0.5",
          JSON, HTML),
        N("text/*;q=0.8, application/*;q=0.9", TEXT, JSON),
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_q_zero_excludes(void **state)
{
    static const struct neg_case c[] = {
        N("text/html;q=0", TEXT, TEXT), N("text/html;q=0.000", TEXT, TEXT),
        N("text/html;q=0, application/xml;q=0.001", JSON, XML),
        N("application/json;q=0.0001, text/plain;q=0.", HTML, HTML), /* both read as 0 */
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_ties_go_to_first(void **state)
{
    static const struct neg_case c[] = {
        N("text/html, application/json", JSON, HTML),
        N("application/json, text/html", HTML, JSON),
        N("application/xml;q=0.5, text/plain;q=0.5", JSON, XML),
        /* three decimals only: 0.12345 reads as 0.123, a tie */
        N("application/xml;q=0.12345,text/html;q=0.123", JSON, XML),
        /* "1.5" reads as "1." = 1, a tie with the implicit 1 */
        N("text/html;q=1.5,application/xml", JSON, HTML),
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_unsupported_can_win(void **state)
{
    /* An unsupported range with the highest q wins, and then means "default": Kong answers
     * JSON to "image/png, text/html;q=0.9" although HTML was acceptable. */
    static const struct neg_case c[] = {
        N("image/png, text/html;q=0.9", JSON, JSON), N("text/html;q=0.5, image/png", TEXT, TEXT),
        N("TEXT/HTML", JSON, JSON), /* the regex ignores case, the type table does not */
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_parameter_quirks(void **state)
{
    static const struct neg_case c[] = {
        N("text/html;Q=0.5, application/xml;q=0.4", JSON, HTML),       /* Q ok */
        N("text/html ;  q=0.5 , application/xml;q=0.6", JSON, XML),    /* spaces around ; */
        N("text/html;q=0.1;q=0.9, application/xml;q=0.5", JSON, HTML), /* last q counts */
        N("text/html;level=1;q=0.2, application/xml;q=0.5", JSON, XML),
        /* a parameter fitting neither branch ends the list; q stays 1 */
        N("text/html;q=abc, application/xml;q=0.5", JSON, HTML),
        N("text/html;q = 0.1, application/xml;q=0.5", JSON, HTML),
        N("text/html;x=1;q=0.2, application/xml;q=0.5", JSON, HTML),
        /* nothing after the match is looked at */
        N("text/html garbage;q=0.1, application/xml;q=0.5", JSON, HTML),
        N("text/html;charset=\"utf-8\"", JSON, HTML),
        N("  \t text/html", JSON, HTML),
        N(",,, ,text/html,,", JSON, HTML),
        N("text/html;q=0.5x, application/xml;q=0.4", JSON, HTML),
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_garbage(void **state)
{
    static const struct neg_case c[] = {
        N("\x00\xff;;==,,**//", HTML, HTML),
        N("text/html\x00", JSON, HTML),
        N("\x00text/html", JSON, JSON),
        N("text/\xfftml", XML, XML),
        N(";q=1", XML, XML),
        N("text/html;q=", JSON, HTML),
        N("text/html;", JSON, HTML),
        N("text/", JSON, JSON),
        N("/html", JSON, JSON),
        N("*", TEXT, TEXT),
    };
    run_neg(c, COUNT(c));
}

static void test_negotiate_random_bytes_are_safe(void **state)
{
    static const char alphabet[] = "text/html*;q=0.1, \t\"\xff\x00";
    char buf[256];
    unsigned x = 12345;

    /* Whatever the bytes, the answer is one of the four types; ASan/UBSan watch the reads. */
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (round & 1) ? (char)(x >> 16) : alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
        }
        char *heap = malloc(len + 1); /* exact size, so ASan catches any overread */
        assert_non_null(heap);
        memcpy(heap, buf, len);
        enum gw_body_type t = gw_error_negotiate((struct gw_str){heap, len}, GW_BODY_TEXT);
        free(heap);
        assert_true(t == GW_BODY_JSON || t == GW_BODY_HTML || t == GW_BODY_XML ||
                    t == GW_BODY_TEXT);
    }
}

static void test_negotiate_long_header_is_linear(void **state)
{
    /* 1 MiB of parameters and elements: quadratic work would take minutes here. */
    size_t len = (size_t)1 << 20, i;
    char *big = malloc(len);
    static const char unit[] = "text/html;level=1;q=0.5 ;a=b,";

    assert_non_null(big);
    for (i = 0; i + sizeof(unit) - 1 <= len; i += sizeof(unit) - 1)
        memcpy(big + i, unit, sizeof(unit) - 1);
    memset(big + i, ';', len - i);
    assert_int_equal(gw_error_negotiate((struct gw_str){big, len}, GW_BODY_JSON), GW_BODY_HTML);
    memset(big, ';', len);
    memcpy(big, "text/plain", 10);
    assert_int_equal(gw_error_negotiate((struct gw_str){big, len}, GW_BODY_JSON), GW_BODY_TEXT);
    free(big);
}

static void test_body_type_from_mime(void **state)
{
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("application/json"), GW_BODY_TEXT),
                     GW_BODY_JSON);
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("text/html"), GW_BODY_JSON), GW_BODY_HTML);
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("application/xml"), GW_BODY_JSON),
                     GW_BODY_XML);
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("text/plain"), GW_BODY_JSON), GW_BODY_TEXT);
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("text/xml"), GW_BODY_HTML), GW_BODY_HTML);
    assert_int_equal(gw_body_type_from_mime(GW_STR_NULL, GW_BODY_XML), GW_BODY_XML);
    assert_int_equal(gw_body_type_from_mime(GW_STR_LIT("text/plain; charset=utf-8"), GW_BODY_JSON),
                     GW_BODY_JSON);
}

/* ---- messages and reasons ---- */

struct text_case {
    int status;
    const char *text;
};

static void test_default_messages_kong_table(void **state)
{
    static const struct text_case c[] = {
        {400, "Bad request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not found"},
        {405, "Method not allowed"},
        {408, "Request timeout"},
        {410, "Gone"},
        {411, "Length required"},
        {412, "Precondition failed"},
        {413, "Payload too large"},
        {414, "URI too long"},
        {417, "Expectation failed"},
        {426, "Upgrade required"},
        {429, "Too many requests"},
        {431, "Request header or cookie too large"},
        {494, "Request header or cookie too large"},
        {500, "An unexpected error occurred"},
        {502, "An invalid response was received from the upstream server"},
        {503, "The upstream server is currently unavailable"},
        {504, "The upstream server is timing out"},
        {505, "HTTP version not supported"},
    };
    for (size_t i = 0; i < COUNT(c); i++)
        assert_string_equal(gw_error_default_message(c[i].status), c[i].text);
}

static void test_default_messages_fallback(void **state)
{
    assert_string_equal(gw_error_default_message(419), "The upstream server responded with 419");
    assert_string_equal(gw_error_default_message(100), "The upstream server responded with 100");
    assert_string_equal(gw_error_default_message(200), "The upstream server responded with 200");
    assert_string_equal(gw_error_default_message(509), "The upstream server responded with 509");
    assert_string_equal(gw_error_default_message(599), "The upstream server responded with 599");
    assert_string_equal(gw_error_default_message(600), "An unexpected error occurred");
    assert_string_equal(gw_error_default_message(99), "An unexpected error occurred");
    assert_string_equal(gw_error_default_message(-1), "An unexpected error occurred");
    for (int s = 100; s <= 599; s++)
        assert_non_null(gw_error_default_message(s));
}

static void test_status_reasons(void **state)
{
    static const struct text_case c[] = {
        {200, "OK"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {494, "Unknown"},
        {0, "Unknown"},
        {99, "Unknown"},
        {600, "Unknown"},
        {-404, "Unknown"},
    };
    for (size_t i = 0; i < COUNT(c); i++)
        assert_string_equal(gw_status_reason(c[i].status), c[i].text);
}

/* ---- bodies ---- */

struct body_out {
    const char *ctype;
    char *body; /* NUL-terminated copy, freed by the caller */
    size_t len;
};

static struct body_out render(enum gw_body_type t, struct gw_str msg, struct gw_str id)
{
    struct evbuffer *b = evbuffer_new();
    struct body_out o;

    assert_non_null(b);
    o.ctype = gw_error_body(b, t, msg, id);
    o.len = evbuffer_get_length(b);
    o.body = malloc(o.len + 1);
    assert_non_null(o.body);
    evbuffer_remove(b, o.body, o.len);
    o.body[o.len] = '\0';
    evbuffer_free(b);
    return o;
}

static void expect_body(enum gw_body_type t, const char *msg, const char *id, const char *ctype,
                        const char *body)
{
    struct body_out o = render(t, gw_str_c(msg), gw_str_c(id));

    assert_non_null(o.ctype);
    assert_string_equal(o.ctype, ctype);
    assert_int_equal(o.len, strlen(body));
    assert_string_equal(o.body, body);
    free(o.body);
}

#define RID "0e8a3b8e-2f0c-4d43-9b3a-6a9f6a1d2c3b"

static void test_body_json_exact(void **state)
{
    expect_body(GW_BODY_JSON, "Not found", RID, "application/json; charset=utf-8",
                "{\n  \"message\":\"Not found\",\n  \"request_id\":\"" RID "\"\n}");
}

static void test_body_text_exact(void **state)
{
    expect_body(GW_BODY_TEXT, "The upstream server is timing out", RID, "text/plain; charset=utf-8",
                "The upstream server is timing out\nrequest_id: " RID "\n");
}

static void test_body_html_exact(void **state)
{
    expect_body(GW_BODY_HTML, "Unauthorized", RID, "text/html; charset=utf-8",
                "<!doctype html>\n"
                "<html>\n"
                "  <head>\n"
                "    <meta charset=\"utf-8\">\n"
                "    <title>Error</title>\n"
                "  </head>\n"
                "  <body>\n"
                "    <h1>Error</h1>\n"
                "    <p>Unauthorized.</p>\n"
                "    <p>request_id: " RID "</p>\n"
                "  </body>\n"
                "</html>\n");
}

static void test_body_xml_exact(void **state)
{
    expect_body(GW_BODY_XML, "Forbidden", RID, "application/xml; charset=utf-8",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<error>\n"
                "  <message>Forbidden</message>\n"
                "  <requestid>" RID "</requestid>\n"
                "</error>\n");
}

static void test_body_exit_style_without_request_id(void **state)
{
    /* kong.response.exit(401, { message = "Invalid signature" }), whatever was negotiated */
    expect_body(GW_BODY_JSON, "Invalid signature", "", "application/json; charset=utf-8",
                "{\"message\":\"Invalid signature\"}");
    expect_body(GW_BODY_HTML, "Invalid signature", "", "application/json; charset=utf-8",
                "{\"message\":\"Invalid signature\"}");
}

static void test_body_exit_escapes_like_cjson(void **state)
{
    expect_body(GW_BODY_JSON, "a/b \"q\" \\ \n\t\x01\x1f\x7f\xc3\xa9", "",
                "application/json; charset=utf-8",
                "{\"message\":\"a\\/b \\\"q\\\" \\\\ \\n\\t\\u0001\\u001f\\u007f\xc3\xa9\"}");
}

static void test_body_json_escapes_message(void **state)
{
    /* Kong pastes the message raw; gatehouse keeps the JSON valid, but leaves "/" alone as
     * Kong's template output does. */
    expect_body(GW_BODY_JSON, "say \"hi\" \\ a/b\r\n\b\f\x02", "id-1",
                "application/json; charset=utf-8",
                "{\n  \"message\":\"say \\\"hi\\\" \\\\ a/b\\r\\n\\b\\f\\u0002\",\n"
                "  \"request_id\":\"id-1\"\n}");
}

static void test_body_html_escapes_message(void **state)
{
    expect_body(GW_BODY_HTML, "<b>Tom & \"Jerry's\"</b>\x01", "r<1>", "text/html; charset=utf-8",
                "<!doctype html>\n"
                "<html>\n"
                "  <head>\n"
                "    <meta charset=\"utf-8\">\n"
                "    <title>Error</title>\n"
                "  </head>\n"
                "  <body>\n"
                "    <h1>Error</h1>\n"
                "    <p>&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;\xef\xbf\xbd.</p>\n"
                "    <p>request_id: r&lt;1&gt;</p>\n"
                "  </body>\n"
                "</html>\n");
}

static void test_body_xml_escapes_message(void **state)
{
    expect_body(GW_BODY_XML, "a<b>&'c\"\x1b\td", "x&y", "application/xml; charset=utf-8",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<error>\n"
                "  <message>a&lt;b&gt;&amp;&apos;c&quot;\xef\xbf\xbd\td</message>\n"
                "  <requestid>x&amp;y</requestid>\n"
                "</error>\n");
}

static void test_body_text_is_not_escaped(void **state)
{
    expect_body(GW_BODY_TEXT, "<a & \"b\">/", "id", "text/plain; charset=utf-8",
                "<a & \"b\">/\nrequest_id: id\n");
}

static void test_body_empty_message(void **state)
{
    expect_body(GW_BODY_HTML, "", "id", "text/html; charset=utf-8",
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n"
                "    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n"
                "    <p>.</p>\n    <p>request_id: id</p>\n  </body>\n</html>\n");
    expect_body(GW_BODY_TEXT, "", "id", "text/plain; charset=utf-8", "\nrequest_id: id\n");
}

static void test_body_embedded_nul(void **state)
{
    struct body_out o = render(GW_BODY_JSON, (struct gw_str){"a\0b", 3}, GW_STR_LIT("i"));

    assert_string_equal(o.ctype, "application/json; charset=utf-8");
    assert_int_equal(o.len, strlen("{\n  \"message\":\"a\\u0000b\",\n  \"request_id\":\"i\"\n}"));
    assert_memory_equal(o.body, "{\n  \"message\":\"a\\u0000b\",\n  \"request_id\":\"i\"\n}",
                        o.len);
    free(o.body);
}

static void test_body_unknown_type_is_json(void **state)
{
    expect_body((enum gw_body_type)42, "Bad request", "i", "application/json; charset=utf-8",
                "{\n  \"message\":\"Bad request\",\n  \"request_id\":\"i\"\n}");
}

static void test_body_appends_to_buffer(void **state)
{
    struct evbuffer *b = evbuffer_new();
    char out[128];
    size_t n;

    assert_non_null(b);
    evbuffer_add(b, "HEAD|", 5);
    assert_non_null(gw_error_body(b, GW_BODY_TEXT, GW_STR_LIT("x"), GW_STR_LIT("1")));
    n = evbuffer_get_length(b);
    assert_true(n < sizeof(out));
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    assert_string_equal(out, "HEAD|x\nrequest_id: 1\n");
    evbuffer_free(b);
}

static void test_body_with_default_message_and_new_id(void **state)
{
    char id[GW_REQID_LEN + 1];
    char want[256];

    gw_reqid_new(id);
    snprintf(want, sizeof(want), "{\n  \"message\":\"%s\",\n  \"request_id\":\"%s\"\n}",
             "The upstream server is currently unavailable", id);
    expect_body(gw_error_negotiate(GW_STR_LIT("*/*"), GW_BODY_TEXT), gw_error_default_message(503),
                id, "application/json; charset=utf-8", want);
}

static void test_body_oversized_appends_nothing(void **state)
{
    size_t len = ((size_t)1 << 20) + 1;
    char *big = malloc(len);
    struct evbuffer *b = evbuffer_new();

    assert_non_null(big);
    assert_non_null(b);
    memset(big, '"', len);
    assert_null(gw_error_body(b, GW_BODY_JSON, (struct gw_str){big, len}, GW_STR_LIT("i")));
    assert_int_equal(evbuffer_get_length(b), 0);
    /* just under the limit is fine, and fully escaped */
    assert_non_null(gw_error_body(b, GW_BODY_JSON, (struct gw_str){big, len - 1}, GW_STR_LIT("")));
    assert_int_equal(evbuffer_get_length(b), strlen("{\"message\":\"\"}") + 2 * (len - 1));
    evbuffer_free(b);
    free(big);
}

/* ---- request ids ---- */

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool uuid4_shape(const char *s)
{
    if (strlen(s) != GW_REQID_LEN)
        return false;
    for (int i = 0; i < GW_REQID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex_lower(s[i])) {
            return false;
        }
    }
    return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

static void test_reqid_format(void **state)
{
    char id[GW_REQID_LEN + 1];
    int variants[4] = {0};

    for (int i = 0; i < 4000; i++) {
        memset(id, 'X', sizeof(id));
        gw_reqid_new(id);
        if (!uuid4_shape(id))
            fail_msg("bad id %s", id);
        variants[id[19] == '8' ? 0 : id[19] == '9' ? 1 : id[19] == 'a' ? 2 : 3]++;
        assert_true(gw_reqid_acceptable(gw_str_c(id)));
    }
    for (int v = 0; v < 4; v++) /* all four variant nibbles occur */
        assert_true(variants[v] > 500);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, GW_REQID_LEN);
}

static void assert_all_distinct(char (*ids)[GW_REQID_LEN + 1], size_t n)
{
    qsort(ids, n, sizeof(ids[0]), cmp_id);
    for (size_t i = 1; i < n; i++)
        if (memcmp(ids[i - 1], ids[i], GW_REQID_LEN) == 0)
            fail_msg("duplicate id %s", ids[i]);
}

static void test_reqid_unique_100k(void **state)
{
    size_t n = 100000;
    char(*ids)[GW_REQID_LEN + 1] = malloc(n * sizeof(*ids));

    assert_non_null(ids);
    for (size_t i = 0; i < n; i++)
        gw_reqid_new(ids[i]);
    assert_all_distinct(ids, n);
    free(ids);
}

#define THREADS 4
#define PER_THREAD 25000

static void *gen_ids(void *arg)
{
    char(*ids)[GW_REQID_LEN + 1] = arg;

    for (size_t i = 0; i < PER_THREAD; i++)
        gw_reqid_new(ids[i]);
    return NULL;
}

static void test_reqid_unique_across_threads(void **state)
{
    char(*ids)[GW_REQID_LEN + 1] = malloc(THREADS * PER_THREAD * sizeof(*ids));
    pthread_t t[THREADS];

    assert_non_null(ids);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, gen_ids, ids + (size_t)i * PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (size_t i = 0; i < THREADS * PER_THREAD; i++)
        assert_true(uuid4_shape(ids[i]));
    assert_all_distinct(ids, THREADS * PER_THREAD);
    free(ids);
}

static void test_reqid_fork_reseeds(void **state)
{
    char parent[GW_REQID_LEN + 1], child[GW_REQID_LEN + 1] = {0};
    int fds[2], status;
    pid_t pid;

    gw_reqid_new(parent); /* make sure this thread's generator is seeded before forking */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[GW_REQID_LEN + 1];
        gw_reqid_new(id);
        _exit(write(fds[1], id, GW_REQID_LEN) == GW_REQID_LEN ? 0 : 1);
    }
    close(fds[1]);
    gw_reqid_new(parent); /* the parent's next id: the child must not have produced it */
    assert_int_equal(read(fds[0], child, GW_REQID_LEN), GW_REQID_LEN);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(uuid4_shape(child));
    assert_string_not_equal(parent, child);
}

static void test_reqid_acceptable(void **state)
{
    char max[GW_REQID_MAX_IN + 1];

    memset(max, 'a', sizeof(max));
    assert_true(gw_reqid_acceptable(GW_STR_LIT("a")));
    assert_true(gw_reqid_acceptable(GW_STR_LIT(RID)));
    assert_true(gw_reqid_acceptable(GW_STR_LIT("trace:1234@edge-1/x+y=z_.-")));
    assert_true(gw_reqid_acceptable(GW_STR_LIT("ABCDEF0123456789")));
    assert_true(gw_reqid_acceptable((struct gw_str){max, GW_REQID_MAX_IN}));
}

static void test_reqid_unacceptable(void **state)
{
    char max[GW_REQID_MAX_IN + 1];
    static const char *const bad[] = {
        "a b", "a\"b", "a'b",   "a\nb",  "a\rb", "a\tb", "caf\xc3\xa9", "a,b", "a;b",
        "<x>", "a\\b", "a%20b", "a\x7f", "{id}", "a?b",  "a#b",         "a*b", "(a)",
    };

    memset(max, 'a', sizeof(max));
    assert_false(gw_reqid_acceptable(GW_STR_NULL));
    assert_false(gw_reqid_acceptable(GW_STR_LIT("")));
    assert_false(gw_reqid_acceptable((struct gw_str){max, GW_REQID_MAX_IN + 1}));
    assert_false(gw_reqid_acceptable((struct gw_str){"a\0b", 3}));
    for (size_t i = 0; i < COUNT(bad); i++)
        if (gw_reqid_acceptable(gw_str_c(bad[i])))
            fail_msg("accepted \"%s\"", bad[i]);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_negotiate_single_types),
        cmocka_unit_test(test_negotiate_unsupported_gives_default),
        cmocka_unit_test(test_negotiate_empty_gives_default),
        cmocka_unit_test(test_negotiate_kong_q_value_specs),
        cmocka_unit_test(test_negotiate_q_zero_excludes),
        cmocka_unit_test(test_negotiate_ties_go_to_first),
        cmocka_unit_test(test_negotiate_unsupported_can_win),
        cmocka_unit_test(test_negotiate_parameter_quirks),
        cmocka_unit_test(test_negotiate_garbage),
        cmocka_unit_test(test_negotiate_random_bytes_are_safe),
        cmocka_unit_test(test_negotiate_long_header_is_linear),
        cmocka_unit_test(test_body_type_from_mime),
        cmocka_unit_test(test_default_messages_kong_table),
        cmocka_unit_test(test_default_messages_fallback),
        cmocka_unit_test(test_status_reasons),
        cmocka_unit_test(test_body_json_exact),
        cmocka_unit_test(test_body_text_exact),
        cmocka_unit_test(test_body_html_exact),
        cmocka_unit_test(test_body_xml_exact),
        cmocka_unit_test(test_body_exit_style_without_request_id),
        cmocka_unit_test(test_body_exit_escapes_like_cjson),
        cmocka_unit_test(test_body_json_escapes_message),
        cmocka_unit_test(test_body_html_escapes_message),
        cmocka_unit_test(test_body_xml_escapes_message),
        cmocka_unit_test(test_body_text_is_not_escaped),
        cmocka_unit_test(test_body_empty_message),
        cmocka_unit_test(test_body_embedded_nul),
        cmocka_unit_test(test_body_unknown_type_is_json),
        cmocka_unit_test(test_body_appends_to_buffer),
        cmocka_unit_test(test_body_with_default_message_and_new_id),
        cmocka_unit_test(test_body_oversized_appends_nothing),
        cmocka_unit_test(test_reqid_format),
        cmocka_unit_test(test_reqid_unique_100k),
        cmocka_unit_test(test_reqid_unique_across_threads),
        cmocka_unit_test(test_reqid_fork_reseeds),
        cmocka_unit_test(test_reqid_acceptable),
        cmocka_unit_test(test_reqid_unacceptable),
    };
    return cmocka_run_group_tests_name("http_error", t, NULL, NULL);
}
