#ifndef GW_YAML_H
#define GW_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/str.h"

struct gw_arena;
struct gw_err;

/* One node of a configuration document, whether it was read from YAML (libyaml) or JSON
 * (jansson). Scalars are typed with the YAML 1.2 core schema: a plain `true` is a bool, `12` an
 * int, `~`/`null`/empty a null; a quoted scalar is always a string. Every node keeps the
 * line:column (1-based) where it starts. Documents are immutable once loaded and live in the
 * arena given to the loader. */
enum gw_yaml_type {
    GW_YAML_NULL,
    GW_YAML_BOOL,
    GW_YAML_INT,
    GW_YAML_FLOAT,
    GW_YAML_STR,
    GW_YAML_SEQ,
    GW_YAML_MAP,
};

struct gw_yaml_pair;

struct gw_yaml {
    enum gw_yaml_type type;
    unsigned line, col;
    struct gw_str str; /* scalars: the text (NUL-terminated); strings: the value */
    union {
        bool b;
        int64_t i;
        double f;
    } v;
    size_t n;                   /* SEQ and MAP: number of items / pairs */
    struct gw_yaml **items;     /* SEQ */
    struct gw_yaml_pair *pairs; /* MAP, in document order; keys are unique */
};

struct gw_yaml_pair {
    struct gw_yaml *key; /* always a scalar; key->str is the name */
    struct gw_yaml *val;
};

/* Limits applied to untrusted documents. */
#define GW_YAML_MAX_FILE_SIZE (64u << 20) /* bytes */
#define GW_YAML_MAX_DEPTH 64u
#define GW_YAML_MAX_NODES (1u << 20) /* after alias expansion: ~90 MiB of nodes at most */

/* Parses a document from memory (`buf` need not be NUL-terminated) into nodes allocated
 * from `a`. Returns the root node or NULL with errors in `err`. YAML: anchors, aliases and
 * merge keys (`<<`) are expanded; alias cycles, depth and expansion are bounded; duplicate
 * keys are errors; an empty document gives a NULL node. JSON: duplicate keys are errors.
 * (gw_snapshot_load() picks the parser from the file name, as Kong does.) */
struct gw_yaml *gw_yaml_load_yaml(const char *buf, size_t len, struct gw_arena *a,
                                  struct gw_err *err);
struct gw_yaml *gw_yaml_load_json(const char *buf, size_t len, struct gw_arena *a,
                                  struct gw_err *err);

/* Value of key `name` in a MAP, or NULL (also NULL when `map` is not a MAP). */
const struct gw_yaml *gw_yaml_get(const struct gw_yaml *map, const char *name);

/* True for a scalar that is not a string (null, bool, int, float). */
static inline bool gw_yaml_is_null(const struct gw_yaml *n)
{
    return n == NULL || n->type == GW_YAML_NULL;
}

#endif
