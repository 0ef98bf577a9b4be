#ifndef GW_ROUTER_INT_H
#define GW_ROUTER_INT_H

/* Internals of src/router shared by normalize.c, router.c and the unit tests. */

#include <stddef.h>
#include <stdint.h>

#include "gw/str.h"

struct gw_route;

/* Bit layout of Kong's traditional_compatible priority (kong/router/transform.lua
 * get_priority), most significant first. */
#define GW_RT_WEIGHT_SHIFT 61      /* 3 bits: number of non-empty match fields */
#define GW_RT_PLAIN_HOST_BIT 60    /* hosts set and none has a wildcard */
#define GW_RT_HEADERS_SHIFT 52     /* 8 bits: header names, capped at 255 */
#define GW_RT_REGEX_BIT 51         /* the (sub)route's paths are regexes */
#define GW_RT_REGEX_PRIO_SHIFT 19  /* 32 bits: regex_priority (regex routes only) */
#define GW_RT_LENGTH_MASK 0x7FFFFu /* 19 bits: length of the prefix paths */

/* Priority of `route` restricted to paths[0..npaths) (one group after splitting: all regexes,
 * or prefixes of one length). regex_priority is clamped to the int32 range and offset by 2^31
 * so that negative values still order below zero inside the 32-bit field [ours: Kong's
 * arithmetic lets a negative value overflow into the upper fields]. */
uint64_t gw_rt_priority(const struct gw_route *route, const struct gw_str *paths, size_t npaths);

/* Value of one hex digit, -1 when `c` is not one. */
int gw_rt_hexval(char c);

/* Length of the literal text every match of `re` (no `~`, anchored) must start with; 0 when
 * none can be proved. Used to skip PCRE2 calls for regex paths that cannot match. */
size_t gw_rt_regex_literal_prefix(struct gw_str re, char *buf, size_t cap);

#endif
