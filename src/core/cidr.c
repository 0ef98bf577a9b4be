#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gw/cidr.h"

int gw_cidr_parse(struct gw_str s, struct gw_cidr *out)
{
    char buf[64];
    const char *slash;
    size_t alen;
    unsigned max, prefix = 0;

    if (s.len == 0 || s.len >= sizeof(buf))
        return -1;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    slash = strchr(buf, '/');
    alen = slash != NULL ? (size_t)(slash - buf) : s.len;
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    if (slash == NULL) {
        prefix = max;
    } else {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max)
            return -1;
    }
    out->prefix = prefix;
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xFF << (8 - rest))) == 0;
}

bool gw_cidr_match(const struct gw_cidr *set, size_t n, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    const uint8_t *v4 = NULL, *v6 = NULL;

    if (sa->sa_family == AF_INET) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        v6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(v6, mapped, 12) == 0)
            v4 = v6 + 12;
    }
    for (size_t i = 0; i < n; i++) {
        if (set[i].family == AF_INET && v4 != NULL && prefix_eq(set[i].addr, v4, set[i].prefix))
            return true;
        if (set[i].family == AF_INET6 && v6 != NULL && prefix_eq(set[i].addr, v6, set[i].prefix))
            return true;
    }
    return false;
}
