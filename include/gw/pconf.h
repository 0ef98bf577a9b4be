#ifndef GW_PCONF_H
#define GW_PCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/config.h"
#include "gw/str.h"

/* Helpers for plugins' config parsers (gw_plugin.parse): typed fields of a `config` map, with
 * Kong's messages. Every error names `path.field` (and `[i]` for list items) at the node's
 * line:column. A missing or null field leaves *out as it was: set defaults first. Each returns
 * 0, or -1 after adding an error. Config time, main thread; strings are copied into `a`. */

struct gw_arena;
struct gw_err;
struct gw_yaml;

/* `node` must be a map (or null: all defaults) whose keys are all in `known` (NULL-terminated);
 * each other key is an error `unknown field`. */
int gw_pconf_check(const struct gw_yaml *node, const char *path, const char *const *known,
                   struct gw_arena *a, struct gw_err *err);

int gw_pconf_bool(const struct gw_yaml *node, const char *key, const char *path, bool *out,
                  struct gw_arena *a, struct gw_err *err);
int gw_pconf_str(const struct gw_yaml *node, const char *key, const char *path, struct gw_str *out,
                 struct gw_arena *a, struct gw_err *err);
int gw_pconf_int(const struct gw_yaml *node, const char *key, const char *path, int64_t min,
                 int64_t max, int64_t *out, struct gw_arena *a, struct gw_err *err);
/* A list of strings; `check` (may be NULL) returns NULL for a good item or the message for a
 * bad one. `min_items`: fewer is an error (Kong's `length must be at least N`). */
int gw_pconf_strv(const struct gw_yaml *node, const char *key, const char *path,
                  const char *(*check)(struct gw_str item, struct gw_arena *a), size_t min_items,
                  struct gw_strv *out, struct gw_arena *a, struct gw_err *err);

/* Kong's typedefs.header_name: A-Z a-z 0-9 '_' '-'. For gw_pconf_strv. */
const char *gw_pconf_header_name(struct gw_str item, struct gw_arena *a);

#endif
