#include <string.h>

#include "gw/arena.h"
#include "gw/err.h"
#include "gw/pconf.h"
#include "gw/yaml.h"

static const char *sub(struct gw_arena *a, const char *path, const char *key)
{
    return gw_arena_printf(a, "%s.%s", path, key);
}

int gw_pconf_check(const struct gw_yaml *node, const char *path, const char *const *known,
                   struct gw_arena *a, struct gw_err *err)
{
    int rc = 0;

    if (gw_yaml_is_null(node))
        return 0;
    if (node->type != GW_YAML_MAP)
        return gw_err_at(err, node, path, "expected a record");
    for (size_t i = 0; i < node->n; i++) {
        const struct gw_yaml *k = node->pairs[i].key;
        bool ok = false;
        for (const char *const *p = known; *p != NULL && !ok; p++)
            ok = gw_str_eqc(k->str, *p);
        if (!ok)
            rc = gw_err_at(err, k, sub(a, path, k->str.p), "unknown field");
    }
    return rc;
}

int gw_pconf_bool(const struct gw_yaml *node, const char *key, const char *path, bool *out,
                  struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(node, key);

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_BOOL)
        return gw_err_at(err, n, sub(a, path, key), "expected a boolean");
    *out = n->v.b;
    return 0;
}

int gw_pconf_str(const struct gw_yaml *node, const char *key, const char *path, struct gw_str *out,
                 struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(node, key);

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_STR)
        return gw_err_at(err, n, sub(a, path, key), "expected a string");
    if (n->str.len == 0)
        return gw_err_at(err, n, sub(a, path, key), "length must be at least 1");
    *out = gw_arena_str(a, n->str);
    return 0;
}

int gw_pconf_int(const struct gw_yaml *node, const char *key, const char *path, int64_t min,
                 int64_t max, int64_t *out, struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(node, key);

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_INT)
        return gw_err_at(err, n, sub(a, path, key), "expected an integer");
    if (n->v.i < min || n->v.i > max)
        return gw_err_at(err, n, sub(a, path, key), "value should be between %lld and %lld",
                         (long long)min, (long long)max);
    *out = n->v.i;
    return 0;
}

int gw_pconf_strv(const struct gw_yaml *node, const char *key, const char *path,
                  const char *(*check)(struct gw_str item, struct gw_arena *a), size_t min_items,
                  struct gw_strv *out, struct gw_arena *a, struct gw_err *err)
{
    const struct gw_yaml *n = gw_yaml_get(node, key);
    struct gw_strv v;
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, sub(a, path, key), "expected an array");
    if (n->n < min_items)
        return gw_err_at(err, n, sub(a, path, key), "length must be at least %zu", min_items);
    v.n = n->n;
    v.v = gw_arena_calloc(a, n->n != 0 ? n->n : 1, sizeof(*v.v));
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        const char *why;
        if (it->type != GW_YAML_STR) {
            rc = gw_err_at(err, it, gw_arena_printf(a, "%s.%s[%zu]", path, key, i),
                           "expected a string");
            continue;
        }
        why = check != NULL ? check(it->str, a) : NULL;
        if (why != NULL) {
            rc = gw_err_at(err, it, gw_arena_printf(a, "%s.%s[%zu]", path, key, i), "%s", why);
            continue;
        }
        v.v[i] = gw_arena_str(a, it->str);
    }
    if (rc == 0)
        *out = v;
    return rc;
}

const char *gw_pconf_header_name(struct gw_str item, struct gw_arena *a)
{
    if (item.len == 0)
        return "length must be at least 1";
    for (size_t i = 0; i < item.len; i++) {
        char c = item.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return gw_arena_printf(a,
                                   "bad header name '%s', allowed characters are A-Z, a-z, 0-9, "
                                   "'_', and '-'",
                                   item.p);
    }
    return NULL;
}
