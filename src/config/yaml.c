#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/map.h"

/* libyaml's document API gives a graph of nodes (aliases are edges to the anchored node, so
 * `a: &x [*x]` is a cycle). It is turned into our tree here, expanding aliases, with three
 * bounds for untrusted input: depth, total expanded nodes (billion laughs) and cycles. */

struct conv {
    yaml_document_t *doc;
    struct gw_arena *a;
    struct gw_err *err;
    unsigned char *on_stack; /* per libyaml node index: being converted (cycle detection) */
    size_t nodes;            /* expanded so far */
    bool failed;
};

char *gw_read_file(const char *path, size_t max, size_t *len, struct gw_err *err)
{
    /* O_NONBLOCK: opening a FIFO named by a config value must not hang the loader until
     * someone writes to it; it is refused below like every other non-regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f;
    struct stat st;
    char *buf;
    size_t n;

    if (fd < 0) {
        gw_err_pos(err, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gw_err_pos(err, 0, 0, "not a regular file");
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "rb");
    if (f == NULL) {
        gw_err_pos(err, 0, 0, "cannot open: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max) {
        gw_err_pos(err, 0, 0, "file is %lld bytes, more than the %zu allowed",
                   (long long)st.st_size, max);
        fclose(f);
        return NULL;
    }
    buf = gw_xmalloc((size_t)st.st_size + 1);
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f) || n != (size_t)st.st_size) {
        gw_err_pos(err, 0, 0, "read error");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static struct gw_yaml *convert(struct conv *c, int index, unsigned depth);

static unsigned line_of(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

static unsigned col_of(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.column + 1;
}

static struct gw_yaml *fail(struct conv *c, const yaml_node_t *n, const char *msg)
{
    if (!c->failed)
        gw_err_pos(c->err, line_of(n), col_of(n), "%s", msg);
    c->failed = true;
    return NULL;
}

static bool scalar_is_plain(const yaml_node_t *n)
{
    /* Quoted and block scalars, and explicitly tagged ones, are strings. libyaml gives plain
     * scalars the default string tag, so an explicit `!!str` cannot be told apart; a plain
     * scalar tagged anything else is left as libyaml typed it (a string). */
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (n->tag == NULL || strcmp((const char *)n->tag, YAML_DEFAULT_SCALAR_TAG) == 0);
}

static struct gw_yaml *convert_scalar(struct conv *c, const yaml_node_t *n)
{
    struct gw_yaml *y = gw_node_new(c->a, GW_YAML_STR, line_of(n), col_of(n));

    y->str.p = gw_arena_strndup(c->a, (const char *)n->data.scalar.value, n->data.scalar.length);
    y->str.len = n->data.scalar.length;
    if (scalar_is_plain(n))
        gw_node_resolve_plain(y);
    return y;
}

static struct gw_yaml *convert_seq(struct conv *c, const yaml_node_t *n, unsigned depth)
{
    struct gw_yaml *y = gw_node_new(c->a, GW_YAML_SEQ, line_of(n), col_of(n));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);

    y->items = gw_arena_calloc(c->a, count, sizeof(*y->items));
    for (size_t i = 0; i < count; i++) {
        y->items[i] = convert(c, n->data.sequence.items.start[i], depth + 1);
        if (y->items[i] == NULL)
            return NULL;
    }
    y->n = count;
    return y;
}

/* The keys of one mapping being built, for duplicate detection. A scan is enough for the
 * usual handful of keys; past that, a hash map keeps a wide mapping from costing quadratic
 * time (a 64 MiB document may hold millions of keys). */
#define SMALL_MAP 8

struct keyset {
    struct gw_yaml *map;
    struct gw_map *index; /* NULL while the mapping is small */
};

static void keyset_index(struct conv *c, struct keyset *ks, size_t expected)
{
    ks->index = gw_map_new(c->a, expected, false);
    for (size_t i = 0; i < ks->map->n; i++)
        gw_map_put(ks->index, ks->map->pairs[i].key->str, ks->map->pairs[i].key);
}

/* The key node already present under `key`, or NULL. */
static const struct gw_yaml *keyset_find(const struct keyset *ks, struct gw_str key)
{
    if (ks->index != NULL)
        return gw_map_get(ks->index, key);
    for (size_t i = 0; i < ks->map->n; i++)
        if (gw_str_eq(ks->map->pairs[i].key->str, key))
            return ks->map->pairs[i].key;
    return NULL;
}

/* Appends a pair (the caller has checked that the key is new and that there is room). */
static void keyset_add(struct conv *c, struct keyset *ks, struct gw_yaml *k, struct gw_yaml *v)
{
    ks->map->pairs[ks->map->n].key = k;
    ks->map->pairs[ks->map->n].val = v;
    ks->map->n++;
    if (ks->index != NULL)
        gw_map_put(ks->index, k->str, k);
    else if (ks->map->n > SMALL_MAP)
        keyset_index(c, ks, ks->map->n * 2);
}

static bool is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && scalar_is_plain(k) && k->data.scalar.length == 2 &&
           memcmp(k->data.scalar.value, "<<", 2) == 0;
}

/* Adds the pairs of `src` (a map) that `dst` lacks: YAML merge keys, explicit keys win. */
static void merge_into(struct conv *c, struct keyset *dst, size_t *cap, const struct gw_yaml *src)
{
    for (size_t i = 0; i < src->n; i++) {
        if (keyset_find(dst, src->pairs[i].key->str) != NULL)
            continue;
        if (dst->map->n == *cap) {
            struct gw_yaml_pair *grown = gw_arena_calloc(c->a, *cap * 2 + 4, sizeof(*grown));
            if (dst->map->n != 0)
                memcpy(grown, dst->map->pairs, dst->map->n * sizeof(*grown));
            dst->map->pairs = grown;
            *cap = *cap * 2 + 4;
        }
        keyset_add(c, dst, src->pairs[i].key, src->pairs[i].val);
    }
}

static struct gw_yaml *convert_map(struct conv *c, const yaml_node_t *n, unsigned depth)
{
    struct gw_yaml *y = gw_node_new(c->a, GW_YAML_MAP, line_of(n), col_of(n));
    yaml_node_pair_t *p0 = n->data.mapping.pairs.start;
    size_t count = (size_t)(n->data.mapping.pairs.top - p0), cap = count;
    struct keyset ks = {.map = y};
    struct gw_yaml *merges[16];
    size_t nmerges = 0;

    y->pairs = gw_arena_calloc(c->a, cap, sizeof(*y->pairs));
    if (count > SMALL_MAP)
        keyset_index(c, &ks, count);
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *kn = yaml_document_get_node(c->doc, p0[i].key);
        struct gw_yaml *k, *v;
        const struct gw_yaml *dup;

        if (kn == NULL || kn->type != YAML_SCALAR_NODE)
            return fail(c, kn != NULL ? kn : n, "mapping keys must be scalars");
        if (is_merge_key(kn)) {
            v = convert(c, p0[i].value, depth + 1);
            if (v == NULL)
                return NULL;
            if (v->type == GW_YAML_MAP && nmerges < 16) {
                merges[nmerges++] = v;
            } else if (v->type == GW_YAML_SEQ && v->n + nmerges <= 16) {
                for (size_t j = 0; j < v->n; j++) {
                    if (v->items[j]->type != GW_YAML_MAP)
                        return fail(c, kn, "a merge key (<<) needs a mapping or a list of them");
                    merges[nmerges++] = v->items[j];
                }
            } else {
                return fail(c, kn, "a merge key (<<) needs a mapping or a list of them");
            }
            continue;
        }
        k = convert_scalar(c, kn);
        c->nodes++;
        dup = keyset_find(&ks, k->str);
        if (dup != NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "duplicate key '%.60s' (first at line %u)", k->str.p,
                     dup->line);
            return fail(c, kn, msg);
        }
        v = convert(c, p0[i].value, depth + 1);
        if (v == NULL)
            return NULL;
        keyset_add(c, &ks, k, v);
    }
    for (size_t i = 0; i < nmerges; i++)
        merge_into(c, &ks, &cap, merges[i]);
    return y;
}

static struct gw_yaml *convert(struct conv *c, int index, unsigned depth)
{
    yaml_node_t *n = yaml_document_get_node(c->doc, index);
    struct gw_yaml *y = NULL;

    if (n == NULL)
        return NULL;
    if (depth > GW_YAML_MAX_DEPTH)
        return fail(c, n, "document nested too deeply (more than 64 levels)");
    if (++c->nodes > GW_YAML_MAX_NODES)
        return fail(c, n, "document too large after alias expansion");
    if (c->on_stack[index])
        return fail(c, n, "alias refers to a node that contains it (cycle)");
    c->on_stack[index] = 1;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        y = convert_scalar(c, n);
        break;
    case YAML_SEQUENCE_NODE:
        y = convert_seq(c, n, depth);
        break;
    case YAML_MAPPING_NODE:
        y = convert_map(c, n, depth);
        break;
    default:
        y = fail(c, n, "empty node");
        break;
    }
    c->on_stack[index] = 0;
    return y;
}

struct gw_yaml *gw_yaml_load_yaml(const char *buf, size_t len, struct gw_arena *a,
                                  struct gw_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    struct gw_yaml *root = NULL;
    struct conv c = {.doc = &doc, .a = a, .err = err};

    if (len > GW_YAML_MAX_FILE_SIZE) {
        gw_err_pos(err, 0, 0, "document is %zu bytes, more than the %u allowed", len,
                   GW_YAML_MAX_FILE_SIZE);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        gw_err_pos(err, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        gw_err_pos(err, (unsigned)parser.problem_mark.line + 1,
                   (unsigned)parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                   parser.problem != NULL ? parser.problem : "unknown",
                   parser.context != NULL ? " " : "", parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    if (yaml_document_get_root_node(&doc) == NULL) {
        /* An empty file (or only comments): an empty document. */
        root = gw_node_new(a, GW_YAML_NULL, 1, 1);
        root->str = GW_STR_LIT("");
    } else {
        size_t count = (size_t)(doc.nodes.top - doc.nodes.start);
        c.on_stack = gw_xcalloc(count + 2, 1);
        root = convert(&c, 1, 0);
        free(c.on_stack);
        if (root != NULL && yaml_parser_load(&parser, &extra)) {
            if (yaml_document_get_root_node(&extra) != NULL) {
                gw_err_pos(err, (unsigned)extra.start_mark.line + 1,
                           (unsigned)extra.start_mark.column + 1,
                           "more than one YAML document in the file");
                root = NULL;
            }
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return root;
}
