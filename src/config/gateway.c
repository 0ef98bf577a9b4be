#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"
#include "gw/arena.h"
#include "gw/err.h"
#include "gw/log.h"

/* The `gateway:` section: daemon settings, all optional. Defaults are documented in
 * docs/configuration.md and set in gateway_defaults(). */

int gw_parse_hostport(struct gw_str s, int default_port, struct gw_arena *a, struct gw_str *host,
                      uint16_t *port)
{
    struct gw_str h = s, p = GW_STR_NULL;
    long v = 0;

    if (s.len == 0)
        return -1;
    if (s.p[0] == '[') { /* [v6]:port */
        const char *close = memchr(s.p, ']', s.len);
        if (close == NULL || close == s.p + 1)
            return -1;
        h = (struct gw_str){s.p + 1, (size_t)(close - s.p - 1)};
        size_t rest = s.len - (size_t)(close - s.p) - 1;
        if (rest > 0) {
            if (close[1] != ':' || rest == 1)
                return -1;
            p = (struct gw_str){close + 2, rest - 1};
        }
    } else {
        const char *colon = memchr(s.p, ':', s.len);
        if (colon != NULL) {
            if (memchr(colon + 1, ':', s.len - (size_t)(colon - s.p) - 1) != NULL)
                return -1; /* bare IPv6 without brackets: ambiguous */
            h = (struct gw_str){s.p, (size_t)(colon - s.p)};
            p = (struct gw_str){colon + 1, s.len - h.len - 1};
            if (p.len == 0)
                return -1;
        }
    }
    if (p.len != 0) {
        if (p.len > 5)
            return -1;
        for (size_t i = 0; i < p.len; i++) {
            if (p.p[i] < '0' || p.p[i] > '9')
                return -1;
            v = v * 10 + (p.p[i] - '0');
        }
        if (v > 65535)
            return -1;
    } else if (default_port < 0) {
        return -1;
    } else {
        v = default_port;
    }
    if (h.len == 0)
        return -1;
    *host = gw_arena_str(a, h);
    *port = (uint16_t)v;
    return 0;
}

static char *sub(struct gw_arena *a, const char *path, const char *key)
{
    return gw_arena_printf(a, "%s.%s", path, key);
}

static int get_bool(const struct gw_yaml *n, const char *path, bool *out, struct gw_err *err)
{
    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_BOOL)
        return gw_err_at(err, n, path, "expected a boolean");
    *out = n->v.b;
    return 0;
}

static int get_u32(const struct gw_yaml *n, const char *path, uint32_t min, uint32_t max,
                   uint32_t *out, struct gw_err *err)
{
    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_INT)
        return gw_err_at(err, n, path, "expected an integer");
    if (n->v.i < (int64_t)min || n->v.i > (int64_t)max)
        return gw_err_at(err, n, path, "value should be between %u and %u", min, max);
    *out = (uint32_t)n->v.i;
    return 0;
}

/* Sizes: integer bytes, or a string with a k/m/g suffix (1k = 1024). */
static int get_size(const struct gw_yaml *n, const char *path, uint64_t *out, struct gw_err *err)
{
    uint64_t v = 0, mult = 1;
    size_t len;

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type == GW_YAML_INT) {
        if (n->v.i < 0)
            return gw_err_at(err, n, path, "a size cannot be negative");
        *out = (uint64_t)n->v.i;
        return 0;
    }
    if (n->type != GW_YAML_STR || n->str.len == 0)
        return gw_err_at(err, n, path, "expected a size (bytes, or a number with k, m or g)");
    len = n->str.len;
    switch (gw_lower(n->str.p[len - 1])) {
    case 'k':
        mult = 1024, len--;
        break;
    case 'm':
        mult = 1024 * 1024, len--;
        break;
    case 'g':
        mult = 1024ull * 1024 * 1024, len--;
        break;
    default:
        break;
    }
    if (len == 0 || len > 12)
        return gw_err_at(err, n, path, "invalid size '%s'", n->str.p);
    for (size_t i = 0; i < len; i++) {
        if (n->str.p[i] < '0' || n->str.p[i] > '9')
            return gw_err_at(err, n, path, "invalid size '%s'", n->str.p);
        v = v * 10 + (uint64_t)(n->str.p[i] - '0');
    }
    if (v > UINT64_MAX / mult)
        return gw_err_at(err, n, path, "size '%s' is too large", n->str.p);
    *out = v * mult;
    return 0;
}

/* Rejects keys of `map` not in `known` (NULL-terminated). */
static int check_keys(const struct gw_yaml *map, const char *path, const char *const *known,
                      struct gw_arena *a, struct gw_err *err)
{
    int rc = 0;

    for (size_t i = 0; i < map->n; i++) {
        const struct gw_yaml *k = map->pairs[i].key;
        bool ok = false;
        for (const char *const *kn = known; *kn != NULL && !ok; kn++)
            ok = gw_str_eqc(k->str, *kn);
        if (!ok)
            rc = gw_err_at(err, k, sub(a, path, k->str.p), "unknown field");
    }
    return rc;
}

/* Listeners bind IP addresses (0.0.0.0 and :: for all interfaces), not host names. */
static int check_ip(struct gw_str addr, const struct gw_yaml *n, const char *path,
                    struct gw_err *err)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];

    if (addr.len < sizeof(buf)) {
        memcpy(buf, addr.p, addr.len);
        buf[addr.len] = '\0';
        if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
            return 0;
    }
    return gw_err_at(err, n, path, "listen address '%.*s' is not an IP address", (int)addr.len,
                     addr.p);
}

static int parse_listen_entry(const struct gw_yaml *n, const char *path, struct gw_listen *l,
                              struct gw_arena *a, struct gw_err *err)
{
    static const char *const keys[] = {"address", "port", "ssl", "proxy_protocol", NULL};
    const struct gw_yaml *addr, *port;
    uint32_t p = 0;
    int rc = 0;

    memset(l, 0, sizeof(*l));
    if (n->type == GW_YAML_STR || n->type == GW_YAML_INT) {
        struct gw_str s = n->str;
        char buf[16];
        bool digits = n->str.len > 0 && n->str.len <= 5;
        for (size_t i = 0; i < n->str.len && digits; i++)
            digits = n->str.p[i] >= '0' && n->str.p[i] <= '9';
        if (n->type == GW_YAML_INT || digits) { /* a bare port, quoted or not */
            snprintf(buf, sizeof(buf), "0.0.0.0:%.5s", n->str.p);
            s = gw_str_c(buf);
        }
        if (gw_parse_hostport(s, -1, a, &l->address, &l->port) != 0)
            return gw_err_at(err, n, path,
                             "invalid listen address '%s': expected ip:port or [v6]:port",
                             n->str.p);
        return check_ip(l->address, n, path, err);
    }
    if (n->type != GW_YAML_MAP)
        return gw_err_at(err, n, path, "expected a \"host:port\" string or an object");
    rc |= check_keys(n, path, keys, a, err);
    addr = gw_yaml_get(n, "address");
    port = gw_yaml_get(n, "port");
    if (gw_yaml_is_null(addr)) {
        l->address = GW_STR_LIT("0.0.0.0");
    } else if (addr->type != GW_YAML_STR || addr->str.len == 0) {
        rc = gw_err_at(err, addr, sub(a, path, "address"), "expected a string");
    } else {
        struct gw_str s = addr->str;
        if (s.len > 2 && s.p[0] == '[' && s.p[s.len - 1] == ']')
            s = (struct gw_str){s.p + 1, s.len - 2};
        l->address = gw_arena_str(a, s);
        rc |= check_ip(l->address, addr, sub(a, path, "address"), err);
    }
    if (gw_yaml_is_null(port))
        rc = gw_err_at(err, n, sub(a, path, "port"), "required field missing");
    else if (get_u32(port, sub(a, path, "port"), 0, 65535, &p, err) != 0)
        rc = -1;
    l->port = (uint16_t)p;
    rc |= get_bool(gw_yaml_get(n, "ssl"), sub(a, path, "ssl"), &l->ssl, err);
    rc |= get_bool(gw_yaml_get(n, "proxy_protocol"), sub(a, path, "proxy_protocol"),
                   &l->proxy_protocol, err);
    return rc;
}

static int parse_listen(const struct gw_yaml *n, const char *path, bool allow_off,
                        struct gw_listen **out, size_t *nout, struct gw_arena *a,
                        struct gw_err *err)
{
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0; /* keep the default */
    if (allow_off && ((n->type == GW_YAML_STR && gw_str_eqc(n->str, "off")) ||
                      (n->type == GW_YAML_BOOL && !n->v.b))) {
        *out = NULL;
        *nout = 0;
        return 0;
    }
    if (n->type != GW_YAML_SEQ) { /* a single entry */
        *out = gw_arena_zalloc(a, sizeof(**out));
        *nout = 1;
        return parse_listen_entry(n, path, *out, a, err);
    }
    if (n->n == 0)
        return gw_err_at(err, n, path, "at least one listener is required%s",
                         allow_off ? " (or off)" : "");
    *out = gw_arena_calloc(a, n->n, sizeof(**out));
    *nout = n->n;
    for (size_t i = 0; i < n->n; i++)
        rc |= parse_listen_entry(n->items[i], gw_arena_printf(a, "%s[%zu]", path, i), &(*out)[i], a,
                                 err);
    return rc;
}

static int parse_trusted_ips(const struct gw_yaml *n, struct gw_gateway *gw, struct gw_arena *a,
                             struct gw_err *err)
{
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0;
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, "gateway.trusted_ips", "expected an array of CIDRs");
    gw->trusted_ips = gw_arena_calloc(a, n->n, sizeof(*gw->trusted_ips));
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        if (it->type != GW_YAML_STR ||
            gw_cidr_parse(it->str, &gw->trusted_ips[gw->ntrusted_ips]) != 0) {
            rc = gw_err_at(err, it, gw_arena_printf(a, "gateway.trusted_ips[%zu]", i),
                           "invalid address or CIDR '%s'", it->str.p != NULL ? it->str.p : "");
            continue;
        }
        gw->ntrusted_ips++;
    }
    return rc;
}

/* `headers`: `off`, or a list of groups (Kong's `headers` setting). */
static int parse_headers(const struct gw_yaml *n, struct gw_gateway *gw, struct gw_err *err)
{
    static const char *const groups[] = {"server_tokens", "latency_tokens", "request_id", NULL};
    int rc = 0;

    if (gw_yaml_is_null(n))
        return 0;
    if ((n->type == GW_YAML_STR && gw_str_eqc(n->str, "off")) ||
        (n->type == GW_YAML_BOOL && !n->v.b)) {
        gw->headers = 0;
        return 0;
    }
    if (n->type != GW_YAML_SEQ)
        return gw_err_at(err, n, "gateway.headers", "expected off or a list of groups");
    gw->headers = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct gw_yaml *it = n->items[i];
        unsigned bit = 0;
        for (unsigned g = 0; groups[g] != NULL && bit == 0; g++)
            if (it->type == GW_YAML_STR && gw_str_eqc(it->str, groups[g]))
                bit = 1u << g;
        if (bit == 0)
            rc = gw_err_at(err, it, "gateway.headers",
                           "expected one of: server_tokens, latency_tokens, request_id");
        gw->headers |= bit;
    }
    return rc;
}

static void gateway_defaults(struct gw_gateway *gw, struct gw_arena *a)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(gw, 0, sizeof(*gw));
    gw->listen = gw_arena_zalloc(a, sizeof(*gw->listen));
    gw->listen[0].address = GW_STR_LIT("0.0.0.0");
    gw->listen[0].port = 8000;
    gw->nlisten = 1;
    gw->status_listen = gw_arena_zalloc(a, sizeof(*gw->status_listen));
    gw->status_listen[0].address = GW_STR_LIT("127.0.0.1");
    gw->status_listen[0].port = 8100;
    gw->nstatus_listen = 1;
    gw->workers = cpus > 0 ? (unsigned)cpus : 1;
    gw->limits.max_header_size = 32 * 1024;
    gw->limits.max_headers = 100;
    gw->limits.max_body_size = 0;
    gw->timeouts.client_header = 60;
    gw->timeouts.client_body = 60;
    gw->timeouts.keepalive = 60;
    gw->timeouts.shutdown = 10;
    gw->timeouts.shutdown_grace = 0;
    gw->metrics = true;
    gw->limits.max_uri_length = 8 * 1024;
    gw->limits.max_connections = 10000;
    gw->limits.plugin_body_buffer = 8u << 20;
    gw->timeouts.send = 60;
    gw->access_log = GW_STR_LIT("stdout");
    gw->log_level = GW_LOG_NOTICE;
    gw->headers = GW_HEADERS_SERVER_TOKENS | GW_HEADERS_LATENCY_TOKENS | GW_HEADERS_REQUEST_ID;
    gw->error_default_type = GW_STR_LIT("application/json");
    gw->upstream_keepalive.pool_size = 512;
    gw->upstream_keepalive.max_requests = 10000;
    gw->upstream_keepalive.idle_timeout = 60;
    gw->dns.refresh = 30;
}

int gw_gateway_parse(const struct gw_yaml *node, struct gw_gateway *gw, struct gw_arena *a,
                     struct gw_err *err)
{
    static const char *const keys[] = {"listen",
                                       "status_listen",
                                       "workers",
                                       "limits",
                                       "timeouts",
                                       "access_log",
                                       "log_level",
                                       "trusted_ips",
                                       "headers",
                                       "error_default_type",
                                       "upstream_keepalive",
                                       "dns",
                                       "metrics",
                                       NULL};
    static const char *const limit_keys[] = {
        "max_header_size",    "max_headers", "max_body_size", "max_uri_length", "max_connections",
        "plugin_body_buffer", NULL};
    static const char *const timeout_keys[] = {
        "client_header", "client_body", "keepalive", "send", "shutdown", "shutdown_grace", NULL};
    const struct gw_yaml *n;
    int rc = 0;

    gateway_defaults(gw, a);
    if (gw_yaml_is_null(node))
        return 0;
    if (node->type != GW_YAML_MAP)
        return gw_err_at(err, node, "gateway", "expected an object");
    rc |= check_keys(node, "gateway", keys, a, err);
    rc |= parse_listen(gw_yaml_get(node, "listen"), "gateway.listen", false, &gw->listen,
                       &gw->nlisten, a, err);
    rc |= parse_listen(gw_yaml_get(node, "status_listen"), "gateway.status_listen", true,
                       &gw->status_listen, &gw->nstatus_listen, a, err);
    rc |= get_u32(gw_yaml_get(node, "workers"), "gateway.workers", 1, 1024, &gw->workers, err);

    n = gw_yaml_get(node, "limits");
    if (!gw_yaml_is_null(n)) {
        uint64_t hs = gw->limits.max_header_size;
        if (n->type != GW_YAML_MAP)
            rc = gw_err_at(err, n, "gateway.limits", "expected an object");
        else
            rc |= check_keys(n, "gateway.limits", limit_keys, a, err);
        rc |=
            get_size(gw_yaml_get(n, "max_header_size"), "gateway.limits.max_header_size", &hs, err);
        if (hs < 1024 || hs > 1024 * 1024)
            rc = gw_err_at(err, gw_yaml_get(n, "max_header_size"), "gateway.limits.max_header_size",
                           "value should be between 1k and 1m");
        else
            gw->limits.max_header_size = hs;
        rc |= get_u32(gw_yaml_get(n, "max_headers"), "gateway.limits.max_headers", 1, 10000,
                      &gw->limits.max_headers, err);
        rc |= get_size(gw_yaml_get(n, "max_body_size"), "gateway.limits.max_body_size",
                       &gw->limits.max_body_size, err);
        {
            const struct gw_yaml *un = gw_yaml_get(n, "max_uri_length");
            uint64_t ul = gw->limits.max_uri_length;
            if (gw_yaml_is_null(un) && ul > gw->limits.max_header_size)
                ul = gw->limits.max_header_size; /* the default follows a smaller header limit */
            rc |= get_size(un, "gateway.limits.max_uri_length", &ul, err);
            if (ul < 256 || ul > gw->limits.max_header_size)
                rc = gw_err_at(err, un != NULL ? un : n, "gateway.limits.max_uri_length",
                               "value should be between 256 and max_header_size");
            else
                gw->limits.max_uri_length = ul;
        }
        rc |= get_u32(gw_yaml_get(n, "max_connections"), "gateway.limits.max_connections", 1,
                      10000000, &gw->limits.max_connections, err);
        {
            const struct gw_yaml *pb = gw_yaml_get(n, "plugin_body_buffer");
            uint64_t v = gw->limits.plugin_body_buffer;
            rc |= get_size(pb, "gateway.limits.plugin_body_buffer", &v, err);
            if (v < 1024 || v > (1ull << 30))
                rc = gw_err_at(err, pb, "gateway.limits.plugin_body_buffer",
                               "value should be between 1k and 1g");
            else
                gw->limits.plugin_body_buffer = v;
        }
    }
    n = gw_yaml_get(node, "timeouts");
    if (!gw_yaml_is_null(n)) {
        if (n->type != GW_YAML_MAP)
            rc = gw_err_at(err, n, "gateway.timeouts", "expected an object");
        else
            rc |= check_keys(n, "gateway.timeouts", timeout_keys, a, err);
        rc |= get_u32(gw_yaml_get(n, "client_header"), "gateway.timeouts.client_header", 1, 86400,
                      &gw->timeouts.client_header, err);
        rc |= get_u32(gw_yaml_get(n, "client_body"), "gateway.timeouts.client_body", 1, 86400,
                      &gw->timeouts.client_body, err);
        rc |= get_u32(gw_yaml_get(n, "keepalive"), "gateway.timeouts.keepalive", 0, 86400,
                      &gw->timeouts.keepalive, err);
        rc |= get_u32(gw_yaml_get(n, "send"), "gateway.timeouts.send", 1, 86400, &gw->timeouts.send,
                      err);
        rc |= get_u32(gw_yaml_get(n, "shutdown"), "gateway.timeouts.shutdown", 0, 86400,
                      &gw->timeouts.shutdown, err);
        rc |= get_u32(gw_yaml_get(n, "shutdown_grace"), "gateway.timeouts.shutdown_grace", 0, 3600,
                      &gw->timeouts.shutdown_grace, err);
    }
    n = gw_yaml_get(node, "access_log");
    if (!gw_yaml_is_null(n)) {
        if (n->type == GW_YAML_BOOL && !n->v.b)
            gw->access_log = GW_STR_NULL;
        else if (n->type != GW_YAML_STR || n->str.len == 0)
            rc = gw_err_at(err, n, "gateway.access_log", "expected a path, stdout or off");
        else if (gw_str_eqc(n->str, "off"))
            gw->access_log = GW_STR_NULL;
        else
            gw->access_log = gw_arena_str(a, n->str);
    }
    n = gw_yaml_get(node, "metrics");
    if (!gw_yaml_is_null(n)) {
        if (n->type == GW_YAML_BOOL)
            gw->metrics = n->v.b;
        else if (n->type == GW_YAML_STR && (gw_str_eqc(n->str, "on") || gw_str_eqc(n->str, "off")))
            gw->metrics = gw_str_eqc(n->str, "on");
        else
            rc = gw_err_at(err, n, "gateway.metrics", "expected on or off");
    }
    n = gw_yaml_get(node, "log_level");
    if (!gw_yaml_is_null(n)) {
        enum gw_log_level lvl;
        if (n->type != GW_YAML_STR || gw_log_level_parse(n->str.p, &lvl) != 0)
            rc = gw_err_at(err, n, "gateway.log_level",
                           "expected one of: error, warn, notice, info, debug");
        else
            gw->log_level = (int)lvl;
    }
    rc |= parse_trusted_ips(gw_yaml_get(node, "trusted_ips"), gw, a, err);
    rc |= parse_headers(gw_yaml_get(node, "headers"), gw, err);
    n = gw_yaml_get(node, "error_default_type");
    if (!gw_yaml_is_null(n)) {
        static const char *const types[] = {"application/json", "text/html", "application/xml",
                                            "text/plain", NULL};
        bool ok = false;
        for (const char *const *t = types; *t != NULL && !ok; t++)
            ok = n->type == GW_YAML_STR && gw_str_eqc(n->str, *t);
        if (!ok)
            rc = gw_err_at(err, n, "gateway.error_default_type",
                           "expected one of: application/json, text/html, application/xml, "
                           "text/plain");
        else
            gw->error_default_type = gw_arena_str(a, n->str);
    }
    n = gw_yaml_get(node, "upstream_keepalive");
    if (!gw_yaml_is_null(n)) {
        static const char *const ka_keys[] = {"pool_size", "max_requests", "idle_timeout", NULL};
        if (n->type != GW_YAML_MAP)
            rc = gw_err_at(err, n, "gateway.upstream_keepalive", "expected an object");
        else
            rc |= check_keys(n, "gateway.upstream_keepalive", ka_keys, a, err);
        rc |= get_u32(gw_yaml_get(n, "pool_size"), "gateway.upstream_keepalive.pool_size", 0,
                      1000000, &gw->upstream_keepalive.pool_size, err);
        rc |= get_u32(gw_yaml_get(n, "max_requests"), "gateway.upstream_keepalive.max_requests", 0,
                      100000000, &gw->upstream_keepalive.max_requests, err);
        rc |= get_u32(gw_yaml_get(n, "idle_timeout"), "gateway.upstream_keepalive.idle_timeout", 0,
                      86400, &gw->upstream_keepalive.idle_timeout, err);
    }
    n = gw_yaml_get(node, "dns");
    if (!gw_yaml_is_null(n)) {
        static const char *const dns_keys[] = {"refresh", NULL};
        if (n->type != GW_YAML_MAP)
            rc = gw_err_at(err, n, "gateway.dns", "expected an object");
        else
            rc |= check_keys(n, "gateway.dns", dns_keys, a, err);
        rc |= get_u32(gw_yaml_get(n, "refresh"), "gateway.dns.refresh", 1, 86400, &gw->dns.refresh,
                      err);
    }
    return rc != 0 ? -1 : 0;
}
