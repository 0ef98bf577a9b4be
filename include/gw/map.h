#ifndef GW_MAP_H
#define GW_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "gw/str.h"

struct gw_arena;

/* A string -> pointer hash map (open addressing), allocated in an arena and freed with it.
 * Keys are borrowed views that must live as long as the map. Lookups never allocate and may
 * run from any thread once building is over. */
struct gw_map;

/* `nocase`: keys compare ASCII case-insensitively (host and header names). */
struct gw_map *gw_map_new(struct gw_arena *a, size_t expected, bool nocase);

/* Inserts `key`; when it is already present, keeps the old value and returns it, else NULL.
 * `val` must not be NULL. */
void *gw_map_put(struct gw_map *m, struct gw_str key, void *val);

void *gw_map_get(const struct gw_map *m, struct gw_str key);

#endif
