#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/yaml.h"

const struct gw_yaml *gw_yaml_get(const struct gw_yaml *map, const char *name)
{
    size_t len = strlen(name);

    if (map == NULL || map->type != GW_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        const struct gw_str k = map->pairs[i].key->str;
        if (k.len == len && memcmp(k.p, name, len) == 0)
            return map->pairs[i].val;
    }
    return NULL;
}

struct gw_yaml *gw_node_new(struct gw_arena *a, enum gw_yaml_type t, unsigned line, unsigned col)
{
    struct gw_yaml *n = gw_arena_zalloc(a, sizeof(*n));

    n->type = t;
    n->line = line;
    n->col = col;
    return n;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static bool all_digits(const char *p, size_t n, int base)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = base == 8 ? (c >= '0' && c <= '7')
                  : base == 10
                      ? (c >= '0' && c <= '9')
                      : ((c >= '0' && c <= '9') || (gw_lower(c) >= 'a' && gw_lower(c) <= 'f'));
        if (!ok)
            return false;
    }
    return true;
}

static bool parse_int(const char *s, size_t n, int64_t *out)
{
    int base = 10;
    bool neg = false;
    uint64_t v = 0, limit;

    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        n--;
    } else if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        s += 2;
        n -= 2;
    }
    if (!all_digits(s, n, base))
        return false;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] <= '9' ? s[i] - '0' : gw_lower(s[i]) - 'a' + 10);
        if (v > (limit - d) / (uint64_t)base)
            return false; /* out of range: stays a float or a string */
        v = v * (uint64_t)base + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool is_float(const char *s, size_t n)
{
    size_t i = 0, digits = 0;

    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n;
}

static bool one_of(const char *s, size_t n, const char *const *words)
{
    for (; *words != NULL; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    return false;
}

void gw_node_resolve_plain(struct gw_yaml *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = node->str.p;
    size_t n = node->str.len;

    node->type = GW_YAML_STR;
    if (one_of(s, n, nulls)) {
        node->type = GW_YAML_NULL;
    } else if (one_of(s, n, trues) || one_of(s, n, falses)) {
        node->type = GW_YAML_BOOL;
        node->v.b = s[0] == 't' || s[0] == 'T';
    } else if (parse_int(s, n, &node->v.i)) {
        node->type = GW_YAML_INT;
    } else if (is_float(s, n)) {
        node->type = GW_YAML_FLOAT;
        node->v.f = strtod(s, NULL);
    } else if (one_of(s, n, infs)) {
        node->type = GW_YAML_FLOAT;
        node->v.f = __builtin_inf();
    } else if (one_of(s, n, ninfs)) {
        node->type = GW_YAML_FLOAT;
        node->v.f = -__builtin_inf();
    } else if (one_of(s, n, nans)) {
        node->type = GW_YAML_FLOAT;
        node->v.f = __builtin_nan("");
    }
}
