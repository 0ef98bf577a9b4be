#ifndef GW_CIDR_H
#define GW_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gw/str.h"

/* An IPv4 or IPv6 network: `10.0.0.0/8`, `::1/128`, or a single address. IPv4-mapped IPv6
 * peers (::ffff:a.b.c.d) match IPv4 networks. */
struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* bits */
};

/* Parses `s`; returns 0, or -1 when it is not an address or network. */
int gw_cidr_parse(struct gw_str s, struct gw_cidr *out);

/* True when `sa` (AF_INET or AF_INET6) is inside one of set[0..n). */
bool gw_cidr_match(const struct gw_cidr *set, size_t n, const struct sockaddr *sa);

#endif
