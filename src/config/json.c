#include <jansson.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"

/* jansson validates and decodes the document but keeps no positions. Since its objects keep
 * insertion order, a small scanner walks the (already validated) text in step with the
 * decoded tree and gives every node its line:column. */

struct scan {
    const char *p, *end;
    unsigned line, col;
    struct gw_arena *a;
    struct gw_err *err;
    unsigned depth;
    bool failed;
};

static void advance(struct scan *s)
{
    if (*s->p == '\n') {
        s->line++;
        s->col = 1;
    } else if (((unsigned char)*s->p & 0xC0) != 0x80) {
        s->col++; /* count characters, not UTF-8 continuation bytes */
    }
    s->p++;
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
        advance(s);
}

static void skip_string(struct scan *s)
{
    advance(s); /* opening quote */
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            advance(s);
        if (s->p < s->end)
            advance(s);
    }
    if (s->p < s->end)
        advance(s);
}

static void skip_scalar(struct scan *s)
{
    while (s->p < s->end && strchr(",]} \t\r\n", *s->p) == NULL)
        advance(s);
}

static void skip_char(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c)
        advance(s);
}

static struct gw_yaml *build(struct scan *s, json_t *j)
{
    struct gw_yaml *y;
    unsigned line, col;

    skip_ws(s);
    line = s->line;
    col = s->col;
    if (++s->depth > GW_YAML_MAX_DEPTH) {
        if (!s->failed)
            gw_err_pos(s->err, line, col, "document nested too deeply (more than 64 levels)");
        s->failed = true;
        return NULL;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        size_t i = 0;

        y = gw_node_new(s->a, GW_YAML_MAP, line, col);
        y->pairs = gw_arena_calloc(s->a, json_object_size(j), sizeof(*y->pairs));
        advance(s); /* { */
        json_object_foreach(j, key, val)
        {
            struct gw_yaml *k;

            skip_ws(s);
            k = gw_node_new(s->a, GW_YAML_STR, s->line, s->col);
            k->str.len = strlen(key);
            k->str.p = gw_arena_strndup(s->a, key, k->str.len);
            skip_string(s);
            skip_char(s, ':');
            y->pairs[i].key = k;
            y->pairs[i].val = build(s, val);
            if (y->pairs[i].val == NULL)
                return NULL;
            skip_char(s, ',');
            i++;
        }
        y->n = i;
        skip_char(s, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);

        y = gw_node_new(s->a, GW_YAML_SEQ, line, col);
        y->items = gw_arena_calloc(s->a, n, sizeof(*y->items));
        advance(s); /* [ */
        for (size_t i = 0; i < n; i++) {
            y->items[i] = build(s, json_array_get(j, i));
            if (y->items[i] == NULL)
                return NULL;
            skip_char(s, ',');
        }
        y->n = n;
        skip_char(s, ']');
        break;
    }
    case JSON_STRING:
        y = gw_node_new(s->a, GW_YAML_STR, line, col);
        y->str.len = json_string_length(j);
        y->str.p = gw_arena_strndup(s->a, json_string_value(j), y->str.len);
        skip_string(s);
        break;
    case JSON_INTEGER:
        y = gw_node_new(s->a, GW_YAML_INT, line, col);
        y->v.i = (int64_t)json_integer_value(j);
        y->str.p = gw_arena_printf(s->a, "%lld", (long long)y->v.i);
        y->str.len = strlen(y->str.p);
        skip_scalar(s);
        break;
    case JSON_REAL:
        y = gw_node_new(s->a, GW_YAML_FLOAT, line, col);
        y->v.f = json_real_value(j);
        y->str.p = gw_arena_printf(s->a, "%.17g", y->v.f);
        y->str.len = strlen(y->str.p);
        skip_scalar(s);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        y = gw_node_new(s->a, GW_YAML_BOOL, line, col);
        y->v.b = json_is_true(j);
        y->str = y->v.b ? GW_STR_LIT("true") : GW_STR_LIT("false");
        skip_scalar(s);
        break;
    default:
        y = gw_node_new(s->a, GW_YAML_NULL, line, col);
        y->str = GW_STR_LIT("null");
        skip_scalar(s);
        break;
    }
    s->depth--;
    return y;
}

struct gw_yaml *gw_yaml_load_json(const char *buf, size_t len, struct gw_arena *a,
                                  struct gw_err *err)
{
    json_error_t je;
    json_t *root;
    struct gw_yaml *y;
    struct scan s = {.p = buf, .end = buf + len, .line = 1, .col = 1, .a = a, .err = err};

    if (len > GW_YAML_MAX_FILE_SIZE) {
        gw_err_pos(err, 0, 0, "document is %zu bytes, more than the %u allowed", len,
                   GW_YAML_MAX_FILE_SIZE);
        return NULL;
    }
    /* Skip a UTF-8 byte-order mark, which jansson refuses. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        buf += 3;
        len -= 3;
        s.p = buf;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (root == NULL) {
        gw_err_pos(err, (unsigned)(je.line > 0 ? je.line : 0),
                   (unsigned)(je.column > 0 ? je.column : 0), "JSON syntax error: %s", je.text);
        return NULL;
    }
    y = build(&s, root);
    json_decref(root);
    return y;
}
