#ifndef GW_CONFIG_INT_H
#define GW_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/config.h"
#include "gw/map.h"
#include "gw/yaml.h"

/* Internals shared by the files of src/config/. */

struct gw_arena;
struct gw_err;

/* A node, zeroed, typed `t`, at line:col (1-based). */
struct gw_yaml *gw_node_new(struct gw_arena *a, enum gw_yaml_type t, unsigned line, unsigned col);

/* Types a plain (unquoted, untagged) scalar with the YAML 1.2 core schema; node->str set. */
void gw_node_resolve_plain(struct gw_yaml *node);

/* Reads a whole file, refusing more than `max` bytes. Returns a malloc'd buffer (NUL-added)
 * or NULL with an error in `err`. */
char *gw_read_file(const char *path, size_t max, size_t *len, struct gw_err *err);

/* Kong's deterministic ids: uuid5(uuid5(NS, namespace), name), as lower-case text. */
void gw_uuid5(const char *namespace_name, const char *name, size_t len, char out[GW_UUID_LEN + 1]);
/* True for a canonical 8-4-4-4-12 hex UUID. */
bool gw_uuid_valid(struct gw_str s);

/* `{vault://env/NAME}` references. Returns 1 and the value (arena copy) when `s` is a
 * reference that resolves, 0 when `s` is not a reference, -1 with an error naming `path` and
 * the variable (never a value) when it cannot be resolved. */
int gw_vault_resolve(struct gw_str s, const char *path, const struct gw_yaml *node,
                     struct gw_arena *a, struct gw_err *err, struct gw_str *out);

/* The `gateway:` section (NULL node: all defaults). Returns 0 or -1 (errors in err). */
int gw_gateway_parse(const struct gw_yaml *node, struct gw_gateway *gw, struct gw_arena *a,
                     struct gw_err *err);

/* Parses "host:port" / "[v6]:port" / "port" forms of listeners and targets. `default_port`
 * < 0 makes the port mandatory. Returns 0 or -1. */
int gw_parse_hostport(struct gw_str s, int default_port, struct gw_arena *a, struct gw_str *host,
                      uint16_t *port);

/* Compiles each route's plugin chain and the consumer-scoped instance index (chain.c).
 * Returns 0 or -1. */
int gw_chain_compile(struct gw_snapshot *snap, struct gw_err *err);

/* Validates Kong's declarative entities of `root` into `snap`. Returns 0 or -1. */
int gw_entities_load(const struct gw_yaml *root, struct gw_snapshot *snap, struct gw_err *err);

#endif
