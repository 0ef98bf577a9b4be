#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/arena.h"
#include "gw/http_error.h"
#include "gw/log.h"
#include "gw/map.h"
#include "gw/version.h"
#include "gw/worker.h"
#include "http_int.h"

/* Forwarding a request upstream: pick a target (weighted round-robin over the upstream's
 * targets, or the service's host), resolve it without blocking (evdns, cached per worker),
 * take a keep-alive connection from this worker's pool or connect, send the request head,
 * stream the body re-framed, then parse the response with http-parser and stream it back.
 * Connect failures and timeouts move to the next target, up to the service's `retries`. */

#define UP_WRITE_HIGH (256 * 1024) /* request body buffered towards the upstream, at most */
#define UP_WRITE_LOW (64 * 1024)
#define CLIENT_OUT_HIGH (256 * 1024) /* response bytes waiting for the client, at most */

struct gw_pool;

struct gw_upconn {
    struct gw_worker *w;
    struct bufferevent *bev;
    struct gw_pool *pool;
    struct gw_req *req; /* NULL while idle in the pool */
    http_parser parser;
    struct gw_hdrs hdrs;
    unsigned nreq;
    bool connected, reused, got_bytes, head_done, msg_done, keepalive, feeding, dead;
    bool read_paused, tunnel;
    struct event *rev; /* reads, once connected (gw_bev_read; the bufferevent writes) */
    uint32_t read_ms;  /* read timeout, 0 = none */
    bool reading;
    struct gw_upconn *next;                /* idle list */
    struct gw_upconn *all_prev, *all_next; /* every connection of the worker */
};

struct gw_pool {
    char key[INET6_ADDRSTRLEN + 8];
    struct gw_upconn *idle;
    size_t nidle;
};

/* Per-worker state kept across requests and reloads. */
struct gw_upstream_pools {
    struct gw_arena *arena;
    struct gw_map *pools;  /* "ip:port" -> struct gw_pool */
    struct gw_map *rr;     /* upstream id -> struct rr_state */
    struct gw_map *dns;    /* host -> struct dns_entry */
    struct gw_upconn *all; /* every upstream connection, busy or idle */
};

struct rr_state {
    uint64_t generation;
    size_t n;
    int64_t *cur;
};

#define DNS_NEGATIVE_NS (5ull * 1000000000ull)

struct dns_entry {
    const char *name;
    struct sockaddr_storage addrs[8];
    socklen_t lens[8];
    size_t n, next;
    uint64_t expires; /* ns */
    bool pending;
    struct dns_waiter *waiters;
};

struct dns_waiter {
    struct gw_req *req;
    struct dns_waiter *next;
};

static void up_free(struct gw_upconn *u);
static void try_connect(struct gw_req *r);
static void fail_request(struct gw_req *r, int status, const char *why);

/* ---- per-worker tables ---------------------------------------------------------------- */

static struct gw_upstream_pools *pools_of(struct gw_worker *w)
{
    if (w->pools == NULL) {
        w->pools = gw_xcalloc(1, sizeof(*w->pools));
        w->pools->arena = gw_arena_new();
        w->pools->pools = gw_map_new(w->pools->arena, 64, false);
        w->pools->rr = gw_map_new(w->pools->arena, 64, false);
        w->pools->dns = gw_map_new(w->pools->arena, 64, true);
    }
    return w->pools;
}

static struct gw_pool *pool_get(struct gw_worker *w, const char *key)
{
    struct gw_upstream_pools *ps = pools_of(w);
    struct gw_pool *p = gw_map_get(ps->pools, gw_str_c(key));

    if (p == NULL) {
        p = gw_arena_zalloc(ps->arena, sizeof(*p));
        snprintf(p->key, sizeof(p->key), "%s", key);
        gw_map_put(ps->pools, gw_str_c(p->key), p);
    }
    return p;
}

void gw_upstream_pools_free(struct gw_worker *w)
{
    struct gw_upstream_pools *ps = w->pools;

    if (ps == NULL)
        return;
    while (ps->all != NULL) {
        struct gw_upconn *u = ps->all;
        if (u->req != NULL) {
            u->req->up = NULL;
            u->req = NULL;
        }
        up_free(u);
    }
    gw_arena_free(ps->arena);
    free(ps);
    w->pools = NULL;
}

/* ---- target choice ---------------------------------------------------------------------- */

static void rr_state_free(void *p)
{
    free(((struct rr_state *)p)->cur);
}

/* Smooth weighted round-robin (nginx's): each pick adds every weight to its counter, takes
 * the largest and subtracts the total from it. State per worker and upstream. */
static const struct gw_target *pick_target(struct gw_req *r, const struct gw_upstream *u)
{
    struct gw_upstream_pools *ps = pools_of(r->conn->w);
    struct rr_state *st = gw_map_get(ps->rr, (struct gw_str){u->id, GW_UUID_LEN});
    int64_t total = 0;
    size_t best = SIZE_MAX;

    if (st == NULL) {
        char *key = gw_arena_strndup(ps->arena, u->id, GW_UUID_LEN);
        st = gw_arena_zalloc(ps->arena, sizeof(*st));
        gw_map_put(ps->rr, (struct gw_str){key, GW_UUID_LEN}, st);
        gw_arena_on_free(ps->arena, rr_state_free, st);
    }
    if (st->generation != r->snap->generation || st->n != u->ntargets) {
        free(st->cur);
        st->cur = gw_xcalloc(u->ntargets != 0 ? u->ntargets : 1, sizeof(*st->cur));
        st->n = u->ntargets;
        st->generation = r->snap->generation;
    }
    for (size_t i = 0; i < u->ntargets; i++) {
        if (u->targets[i].weight == 0)
            continue;
        st->cur[i] += u->targets[i].weight;
        total += u->targets[i].weight;
        if (best == SIZE_MAX || st->cur[i] > st->cur[best])
            best = i;
    }
    if (best == SIZE_MAX)
        return NULL;
    st->cur[best] -= total;
    return &u->targets[best];
}

static bool parse_ip(struct gw_str host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    if (host.len == 0 || host.len >= sizeof(buf))
        return false;
    memcpy(buf, host.p, host.len);
    buf[host.len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *len = sizeof(*s4);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *len = sizeof(*s6);
        return true;
    }
    return false;
}

/* The request's target for this try: host and port (views into the snapshot). */
static int choose(struct gw_req *r)
{
    const struct gw_service *s = r->service;

    if (s->upstream != NULL) {
        const struct gw_target *t = pick_target(r, s->upstream);
        if (t == NULL)
            return -1;
        r->pick_host = t->host;
        r->pick_port = t->port;
    } else {
        r->pick_host = s->host;
        r->pick_port = s->port;
    }
    return 0;
}

/* ---- DNS ------------------------------------------------------------------------------ */

static void dns_done(int result, struct evutil_addrinfo *res, void *arg)
{
    struct dns_entry *e = arg;
    struct dns_waiter *wt = e->waiters;

    e->pending = false;
    e->waiters = NULL;
    if (result != 0 && e->n == 0)
        gw_log(GW_LOG_WARN, "dns: cannot resolve %s: %s", e->name, evutil_gai_strerror(result));
    if (result == 0 && res != NULL) {
        size_t n = 0;
        for (struct evutil_addrinfo *ai = res; ai != NULL && n < 8; ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            memcpy(&e->addrs[n], ai->ai_addr, ai->ai_addrlen);
            e->lens[n] = (socklen_t)ai->ai_addrlen;
            n++;
        }
        if (n > 0) { /* keep the last good answer when a refresh fails */
            e->n = n;
            e->expires = 0; /* set by the first waiter below */
        }
        evutil_freeaddrinfo(res);
    }
    if (e->n == 0) /* a failed first lookup is remembered briefly: no lookup per request */
        e->expires = gw_now_ns() + DNS_NEGATIVE_NS;
    while (wt != NULL) {
        struct dns_waiter *next = wt->next;
        struct gw_req *r = wt->req;
        free(wt);
        r->dns_wait = NULL;
        if (e->expires == 0)
            e->expires = gw_now_ns() + (uint64_t)r->snap->gateway.dns.refresh * 1000000000ull;
        if (r->up == NULL && r->conn != NULL) {
            if (e->n == 0)
                fail_request(r, 503, "name resolution failed");
            else
                try_connect(r);
        }
        wt = next;
    }
}

/* ---- upstream connections --------------------------------------------------------------- */

static void up_rev_cb(evutil_socket_t fd, short what, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);

static void up_reading(struct gw_upconn *u, bool on)
{
    struct timeval rd = {(time_t)(u->read_ms / 1000), (suseconds_t)(u->read_ms % 1000) * 1000};

    if (u->rev == NULL)
        return; /* not connected yet */
    if (on)
        event_add(u->rev, u->read_ms != 0 ? &rd : NULL);
    else if (u->reading)
        event_del(u->rev);
    u->reading = on;
}

static void up_timeouts(struct gw_upconn *u, uint32_t read_ms, uint32_t write_ms)
{
    struct timeval wr = {(time_t)(write_ms / 1000), (suseconds_t)(write_ms % 1000) * 1000};

    bufferevent_set_timeouts(u->bev, NULL, write_ms != 0 ? &wr : NULL);
    u->read_ms = read_ms;
    if (u->reading)
        up_reading(u, true); /* re-armed with the new timeout */
}

static bool is_hop_by_hop(struct gw_str name, struct gw_str connection)
{
    static const char *const hop[] = {"connection", "keep-alive",     "proxy-connection",
                                      "te",         "trailer",        "transfer-encoding",
                                      "upgrade",    "content-length", NULL};

    for (const char *const *h = hop; *h != NULL; h++)
        if (gw_str_caseeq(name, gw_str_c(*h)))
            return true;
    /* Proxy-* are hop-by-hop, and a bare `Proxy` header is dropped too (httpoxy) */
    if (name.len >= 5 && gw_str_caseeq((struct gw_str){name.p, 5}, GW_STR_LIT("proxy")) &&
        (name.len == 5 || name.p[5] == '-'))
        return true;
    if (connection.p != NULL) {
        char tmp[128];
        if (name.len < sizeof(tmp)) {
            memcpy(tmp, name.p, name.len);
            tmp[name.len] = '\0';
            if (gw_token_list_has(connection, tmp))
                return true;
        }
    }
    return false;
}

static bool is_forwarding_header(struct gw_str name)
{
    static const char *const fwd[] = {"host",
                                      "expect",
                                      "via",
                                      "x-forwarded-for",
                                      "x-forwarded-proto",
                                      "x-forwarded-host",
                                      "x-forwarded-port",
                                      "x-forwarded-path",
                                      "x-forwarded-prefix",
                                      "x-real-ip",
                                      "x-request-id",
                                      NULL};

    for (const char *const *h = fwd; *h != NULL; h++)
        if (gw_str_caseeq(name, gw_str_c(*h)))
            return true;
    return false;
}

/* The request head sent upstream (DESIGN.md §1, reference §1.6). */
static void write_request_head(struct gw_req *r, struct gw_upconn *u)
{
    struct evbuffer *out = bufferevent_get_output(u->bev);
    const struct gw_route *rt = r->route;
    const struct gw_service *s = r->service;
    struct gw_str conn_hdr = gw_hdrs_get(&r->hdrs, "connection");
    bool trusted = r->conn->trusted;
    char pathbuf[1024], *path = pathbuf;
    size_t plen = r->up_path.p != NULL
                      ? 0
                      : gw_router_upstream_path(&r->match, r->path, pathbuf, sizeof(pathbuf));
    struct gw_str xff = gw_hdrs_get(&r->hdrs, "x-forwarded-for");
    struct gw_str via = gw_hdrs_get(&r->hdrs, "via");
    struct gw_str host_only = r->host;
    struct gw_str plugin_host = GW_STR_NULL;
    const char *proto = r->conn->tls ? "https" : "http";

    if (r->up_path.p != NULL) { /* a plugin chose it */
        path = (char *)r->up_path.p;
        plen = r->up_path.len;
    } else if (plen > sizeof(pathbuf)) {
        path = gw_xmalloc(plen);
        gw_router_upstream_path(&r->match, r->path, path, plen);
    }
    {
        struct gw_str q = r->up_query_set ? r->up_query : r->query; /* a plugin may change it */
        bool any = r->up_query_set ? q.len > 0 : q.p != NULL;
        evbuffer_add_printf(out, "%s %.*s%s%.*s HTTP/1.1\r\n",
                            r->up_method != NULL ? r->up_method : http_method_str(r->method),
                            (int)plen, path, any ? "?" : "", any ? (int)q.len : 0, any ? q.p : "");
    }
    if (path != pathbuf && path != r->up_path.p)
        free(path);

    /* Host: the client's with preserve_host, else the upstream's host_header, else the
     * target (with its port when not the scheme's default), as Kong. */
    for (size_t i = 0; i < r->nup_add; i++) /* a plugin's Host wins */
        if (gw_str_caseeq(r->up_add[i].name, GW_STR_LIT("host")))
            plugin_host = r->up_add[i].value;
    if (plugin_host.p != NULL) {
        gw_out_hdr(out, GW_STR_LIT("Host"), plugin_host);
    } else if (rt->preserve_host && r->host.p != NULL) {
        gw_out_hdr(out, GW_STR_LIT("Host"), r->host);
    } else if (s->upstream != NULL && s->upstream->host_header.len > 0) {
        evbuffer_add_printf(out, "Host: %s\r\n", s->upstream->host_header.p);
    } else {
        bool v6 = memchr(r->pick_host.p, ':', r->pick_host.len) != NULL;
        bool dflt = (s->protocol == GW_PROTO_HTTPS && r->pick_port == 443) ||
                    (s->protocol != GW_PROTO_HTTPS && r->pick_port == 80);
        evbuffer_add_printf(out, v6 ? "Host: [%.*s]" : "Host: %.*s", (int)r->pick_host.len,
                            r->pick_host.p);
        if (!dflt)
            evbuffer_add_printf(out, ":%u", r->pick_port);
        evbuffer_add(out, "\r\n", 2);
    }
    for (size_t i = 0; i < r->hdrs.n; i++) {
        struct gw_hdr h = gw_hdrs_at(&r->hdrs, i);
        if (is_hop_by_hop(h.name, conn_hdr) || is_forwarding_header(h.name))
            continue;
        gw_out_hdr(out, h.name, h.value);
    }
    for (size_t i = 0; i < r->nup_add; i++) /* set by plugins; Host went first */
        if (!gw_str_caseeq(r->up_add[i].name, GW_STR_LIT("host")))
            gw_out_hdr(out, r->up_add[i].name, r->up_add[i].value);
    if (r->consumer != NULL) { /* who the request is from, once a plugin said so */
        gw_out_hdr(out, GW_STR_LIT("X-Consumer-ID"), gw_str_c(r->consumer->id));
        if (r->consumer->custom_id.len > 0)
            gw_out_hdr(out, GW_STR_LIT("X-Consumer-Custom-ID"), r->consumer->custom_id);
        if (r->consumer->username.len > 0)
            gw_out_hdr(out, GW_STR_LIT("X-Consumer-Username"), r->consumer->username);
        if (r->credential_id != NULL)
            gw_out_hdr(out, GW_STR_LIT("X-Credential-Identifier"), gw_str_c(r->credential_id));
        if (r->anonymous)
            gw_out_hdr(out, GW_STR_LIT("X-Anonymous-Consumer"), GW_STR_LIT("true"));
    }
    /* X-Forwarded-For is always appended to (nginx's $proxy_add_x_forwarded_for). */
    if (xff.p != NULL)
        evbuffer_add_printf(out, "X-Forwarded-For: %.*s, %s\r\n", (int)xff.len, xff.p,
                            r->conn->peer_ip);
    else
        gw_out_hdr(out, GW_STR_LIT("X-Forwarded-For"), gw_str_c(r->conn->peer_ip));
    if (host_only.p != NULL) { /* without the port */
        const char *colon = host_only.len > 0 && host_only.p[0] != '['
                                ? memchr(host_only.p, ':', host_only.len)
                                : NULL;
        if (colon != NULL)
            host_only.len = (size_t)(colon - host_only.p);
    }
    {
        static const char *const names[] = {"x-forwarded-proto",  "x-forwarded-host",
                                            "x-forwarded-port",   "x-forwarded-path",
                                            "x-forwarded-prefix", "x-real-ip"};
        static const char *const pretty[] = {"X-Forwarded-Proto",  "X-Forwarded-Host",
                                             "X-Forwarded-Port",   "X-Forwarded-Path",
                                             "X-Forwarded-Prefix", "X-Real-IP"};
        for (size_t i = 0; i < 6; i++) {
            struct gw_str in = trusted ? gw_hdrs_get(&r->hdrs, names[i]) : GW_STR_NULL;
            if (in.p != NULL) {
                gw_out_hdr(out, gw_str_c(pretty[i]), in);
                continue;
            }
            switch (i) {
            case 0:
                gw_out_hdr(out, GW_STR_LIT("X-Forwarded-Proto"), gw_str_c(proto));
                break;
            case 1:
                if (host_only.p != NULL)
                    gw_out_hdr(out, GW_STR_LIT("X-Forwarded-Host"), host_only);
                break;
            case 2:
                gw_out_hdr_u64(out, GW_STR_LIT("X-Forwarded-Port"), r->conn->local_port);
                break;
            case 3:
                gw_out_hdr(out, GW_STR_LIT("X-Forwarded-Path"), r->path);
                break;
            case 4:
                if (rt->strip_path && !r->match.regex && r->match.matched.len > 1)
                    evbuffer_add_printf(out, "X-Forwarded-Prefix: %.*s\r\n",
                                        (int)r->match.matched.len, r->match.matched.p);
                break;
            default:
                gw_out_hdr(out, GW_STR_LIT("X-Real-IP"), gw_str_c(r->conn->peer_ip));
                break;
            }
        }
    }
    gw_out_hdr(out, GW_STR_LIT("X-Request-Id"), (struct gw_str){r->id, r->id_len});
    if (via.p != NULL)
        evbuffer_add_printf(out, "Via: %.*s, 1.1 gatehouse\r\n", (int)via.len, via.p);
    else
        evbuffer_add(out, "Via: 1.1 gatehouse\r\n", 20);
    if (r->upgrade) {
        struct gw_str up = gw_hdrs_get(&r->hdrs, "upgrade");
        evbuffer_add_printf(out, "Connection: upgrade\r\nUpgrade: %.*s\r\n", (int)up.len, up.p);
    }
    if (r->body != NULL) { /* read whole for plugins, maybe rewritten: sent with its length */
        size_t n = evbuffer_get_length(r->body);
        gw_out_hdr_u64(out, GW_STR_LIT("Content-Length"), n);
        evbuffer_add(out, "\r\n", 2);
        if (n > 0) /* a copy: a retry sends it again */
            evbuffer_add(out, evbuffer_pullup(r->body, -1), n);
        return;
    }
    if (r->chunked)
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    else if (r->has_length)
        gw_out_hdr_u64(out, GW_STR_LIT("Content-Length"), r->content_length);
    evbuffer_add(out, "\r\n", 2);
}

static void up_attach(struct gw_req *r, struct gw_upconn *u)
{
    const struct gw_service *s = r->service;

    u->req = r;
    r->up = u;
    u->got_bytes = u->head_done = u->msg_done = false;
    u->nreq++;
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    gw_hdrs_reset(&u->hdrs, r->snap->gateway.limits.max_header_size,
                  r->snap->gateway.limits.max_headers);
    bufferevent_setcb(u->bev, NULL, up_write_cb, up_event_cb, u);
    bufferevent_setwatermark(u->bev, EV_WRITE, UP_WRITE_LOW, 0);
    if (u->connected) {
        up_timeouts(u, s->read_timeout, s->write_timeout);
        write_request_head(r, u);
        r->t_upstream_sent = gw_now_ns();
        up_reading(u, true);
        gw_bev_flush(u->bev);
        gw_conn_body_resume(r);
    } else {
        up_timeouts(u, 0, s->connect_timeout); /* libevent times a connect as a write */
        write_request_head(r, u);              /* queued until connected */
    }
}

/* Takes an idle pooled connection that is still open, if any. */
static struct gw_upconn *pool_take(struct gw_pool *p)
{
    while (p->idle != NULL) {
        struct gw_upconn *u = p->idle;
        p->idle = u->next;
        p->nidle--;
        u->next = NULL;
        u->reused = true;
        return u;
    }
    return NULL;
}

/* "ip:port" / "[ip6]:port": the pool key and the target in logs. */
static void format_key(const struct sockaddr_storage *ss, uint16_t port, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    size_t n;

    if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip + 1, sizeof(ip) - 1);
        ip[0] = '[';
        n = strlen(ip);
        ip[n++] = ']';
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
        n = strlen(ip);
    }
    if (n + 7 > cap)
        n = cap - 7;
    memcpy(out, ip, n);
    out[n++] = ':';
    {
        char digits[6];
        size_t d = sizeof(digits);
        unsigned v = port;
        do {
            digits[--d] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        memcpy(out + n, digits + d, sizeof(digits) - d);
        n += sizeof(digits) - d;
    }
    out[n] = '\0';
}

static void try_connect(struct gw_req *r)
{
    struct gw_worker *w = r->conn->w;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char key[INET6_ADDRSTRLEN + 8];
    struct gw_pool *pool;
    struct gw_upconn *u;

    if (!parse_ip(r->pick_host, r->pick_port, &ss, &sslen)) {
        struct gw_upstream_pools *ps = pools_of(w);
        struct dns_entry *e = gw_map_get(ps->dns, r->pick_host);
        uint64_t now = gw_now_ns();

        if (e == NULL) {
            char *name = gw_arena_strndup(ps->arena, r->pick_host.p, r->pick_host.len);
            e = gw_arena_zalloc(ps->arena, sizeof(*e));
            e->name = name;
            gw_map_put(ps->dns, (struct gw_str){name, r->pick_host.len}, e);
        }
        if (e->n == 0 && !e->pending && e->expires != 0 && now < e->expires) {
            fail_request(r, 503, "name resolution failed");
            return;
        }
        if (e->n == 0 || now >= e->expires) {
            /* The first resolution waits; a refresh runs while the old answer is used. The
             * waiter is queued before asking: evdns may answer at once (hosts file). */
            bool wait = e->n == 0;
            if (wait) {
                struct dns_waiter *wt = gw_xcalloc(1, sizeof(*wt));
                wt->req = r;
                wt->next = e->waiters;
                e->waiters = wt;
                r->dns_wait = e;
            }
            if (!e->pending) {
                struct evutil_addrinfo hints;
                memset(&hints, 0, sizeof(hints));
                hints.ai_family = AF_UNSPEC;
                hints.ai_socktype = SOCK_STREAM;
                e->pending = true;
                if (e->n != 0)
                    e->expires = now + (uint64_t)r->snap->gateway.dns.refresh * 1000000000ull;
                evdns_getaddrinfo(w->dns, e->name, NULL, &hints, dns_done, e);
            }
            if (wait)
                return; /* resumed by dns_done() (perhaps already), or cancelled */
        }
        memcpy(&ss, &e->addrs[e->next % e->n], sizeof(ss));
        sslen = e->lens[e->next % e->n];
        e->next++;
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(r->pick_port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(r->pick_port);
    }
    format_key(&ss, r->pick_port, key, sizeof(key));
    memcpy(r->target, key, strlen(key) + 1);
    if (r->t_peer == 0)
        r->t_peer = gw_now_ns();
    pool = pool_get(w, key);
    u = r->stale_retried ? NULL : pool_take(pool); /* after a stale one: a fresh connection */
    if (u != NULL) {
        up_attach(r, u);
        return;
    }
    u = gw_xcalloc(1, sizeof(*u));
    u->w = w;
    u->pool = pool;
    u->all_next = pools_of(w)->all;
    if (u->all_next != NULL)
        u->all_next->all_prev = u;
    pools_of(w)->all = u;
    u->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (u->bev == NULL) {
        free(u);
        fail_request(r, 502, NULL);
        return;
    }
    up_attach(r, u);
    if (bufferevent_socket_connect(u->bev, (struct sockaddr *)&ss, (int)sslen) != 0) {
        /* immediate failure (e.g. no route): treated like a refused connection */
        up_event_cb(u->bev, BEV_EVENT_ERROR, u);
        return;
    }
}

static void next_try(struct gw_req *r)
{
    if (choose(r) != 0) {
        fail_request(r, 503, "failure to get a peer from the ring-balancer");
        return;
    }
    try_connect(r);
}

void gw_proxy_start(struct gw_req *r)
{
    if (r->service->protocol != GW_PROTO_HTTP) {
        gw_log(GW_LOG_ERROR, "req=%.*s service=%s: %s upstreams are not supported yet",
               (int)r->id_len, r->id, r->service->name.len ? r->service->name.p : r->service->id,
               gw_proto_name(r->service->protocol));
        fail_request(r, 502, NULL);
        return;
    }
    r->tries = 1;
    next_try(r);
}

static void fail_request(struct gw_req *r, int status, const char *why)
{
    if (r->up != NULL) {
        struct gw_upconn *u = r->up;
        r->up = NULL;
        u->req = NULL;
        up_free(u);
    }
    r->status = status;
    gw_conn_error(r, status, why);
}

/* A connection attempt failed (refused, timed out, reset before any response byte). */
static void connect_failed(struct gw_upconn *u, bool timeout)
{
    struct gw_req *r = u->req;
    const struct gw_service *s = r->service;

    gw_log(GW_LOG_WARN, "req=%.*s upstream %s: %s (try %u of %u)", (int)r->id_len, r->id, r->target,
           timeout ? "connect timed out" : "connect failed", r->tries, s->retries + 1);
    r->up = NULL;
    u->req = NULL;
    up_free(u);
    if (r->tries <= s->retries && !r->resp_started && r->bytes_in == 0) {
        r->tries++;
        next_try(r);
        return;
    }
    fail_request(r, timeout ? 504 : 502, NULL);
}

/* The upstream failed the request: before the response started, the client gets `status`
 * (502, 504); after, the client connection is cut, since the response cannot be finished. */
static void upstream_failed(struct gw_upconn *u, int status)
{
    struct gw_req *r = u->req;

    if (!r->resp_started) {
        fail_request(r, status, NULL);
        return;
    }
    r->up = NULL;
    u->req = NULL;
    up_free(u);
    gw_conn_resp_done(r, false);
}

/* ---- response parsing ------------------------------------------------------------------- */

static struct gw_upconn *up_of(http_parser *p)
{
    return p->data;
}

static int up_on_header_field(http_parser *p, const char *at, size_t n)
{
    return gw_hdrs_field(&up_of(p)->hdrs, at, n) != 0 ? -1 : 0;
}

static int up_on_header_value(http_parser *p, const char *at, size_t n)
{
    return gw_hdrs_value(&up_of(p)->hdrs, at, n) != 0 ? -1 : 0;
}

static int up_on_headers_complete(http_parser *p)
{
    struct gw_upconn *u = up_of(p);
    struct gw_req *r = u->req;
    unsigned status = p->status_code;
    unsigned groups = r->snap->gateway.headers;
    struct evbuffer *h;
    size_t head_start;
    struct gw_str conn_hdr;
    bool has_server = false, no_body;

    if (status >= 100 && status < 200 && status != 101) {
        gw_hdrs_reset(&u->hdrs, r->snap->gateway.limits.max_header_size,
                      r->snap->gateway.limits.max_headers); /* interim 100/103: not forwarded */
        return 0;
    }
    if (status == 101 && !r->upgrade)
        return -1; /* a 101 nobody asked for is an invalid response */
    r->t_first_byte = gw_now_ns();
    r->status = (int)status;
    u->head_done = true;
    no_body = r->head || status == 204 || status == 304 || status == 101;
    r->resp_chunked = false;
    if (!no_body && !(p->flags & F_CONTENTLENGTH)) {
        if (r->major == 1 && r->minor >= 1)
            r->resp_chunked = true;
        else
            r->close_after = true; /* HTTP/1.0 client: the end of the body is the close */
    }
    if (!r->keepalive)
        r->close_after = true;
    if (r->state != REQ_SENT && status != 101)
        r->close_after = true; /* answered before the request body ended */

    gw_plugins_header_filter(r, &u->hdrs); /* plugins see and edit the head first */
    if (r->resp_collect && (no_body || status == 101))
        r->resp_collect = false;
    if (r->resp_collect) { /* a plugin rewrites the body: its length is not known yet */
        if (r->major == 1 && r->minor >= 1)
            r->resp_chunked = true;
        else
            r->close_after = true;
    }
    h = gw_conn_output(r); /* the head goes straight to the client's output */
    head_start = evbuffer_get_length(h);
    conn_hdr = gw_hdrs_get(&u->hdrs, "connection");
    {
        const char *reason = gw_status_reason((int)status);
        char line[64];
        size_t rl = strlen(reason);
        memcpy(line, "HTTP/1.1 ", 9);
        line[9] = (char)('0' + status / 100 % 10);
        line[10] = (char)('0' + status / 10 % 10);
        line[11] = (char)('0' + status % 10);
        line[12] = ' ';
        evbuffer_add(h, line, 13);
        evbuffer_add(h, reason, rl);
        evbuffer_add(h, "\r\n", 2);
    }
    for (size_t i = 0; i < u->hdrs.n; i++) {
        struct gw_hdr x = gw_hdrs_at(&u->hdrs, i);
        if (is_hop_by_hop(x.name, conn_hdr) || gw_str_caseeq(x.name, GW_STR_LIT("via")))
            continue;
        if (r->nresp_clear > 0 && !gw_resp_keep(r, x.name))
            continue;
        if (gw_str_caseeq(x.name, GW_STR_LIT("server")))
            has_server = true;
        gw_out_hdr(h, x.name, x.value);
    }
    for (size_t i = 0; i < r->nresp_add; i++)
        gw_out_hdr(h, r->resp_add[i].name, r->resp_add[i].value);
    if (groups & GW_HEADERS_SERVER_TOKENS) {
        struct gw_str via = gw_hdrs_get(&u->hdrs, "via");
        if (via.p != NULL)
            evbuffer_add_printf(h, "Via: %.*s, 1.1 gatehouse\r\n", (int)via.len, via.p);
        else
            evbuffer_add(h, "Via: 1.1 gatehouse\r\n", 20);
        if (!has_server)
            evbuffer_add(h, "Server: gatehouse/" GW_VERSION "\r\n",
                         sizeof("Server: gatehouse/" GW_VERSION "\r\n") - 1);
    } else {
        struct gw_str via = gw_hdrs_get(&u->hdrs, "via");
        if (via.p != NULL)
            evbuffer_add_printf(h, "Via: %.*s\r\n", (int)via.len, via.p);
    }
    if (groups & GW_HEADERS_REQUEST_ID)
        gw_out_hdr(h, GW_STR_LIT("X-Request-Id"), (struct gw_str){r->id, r->id_len});
    if (groups & GW_HEADERS_LATENCY_TOKENS) {
        gw_out_hdr_u64(h, GW_STR_LIT("X-Gatehouse-Upstream-Latency"),
                       (r->t_first_byte - r->t_upstream_sent) / 1000000);
        gw_out_hdr_u64(h, GW_STR_LIT("X-Gatehouse-Proxy-Latency"),
                       (r->t_peer - r->t_start) / 1000000);
    }
    if (status == 101) {
        struct gw_str up = gw_hdrs_get(&u->hdrs, "upgrade");
        evbuffer_add_printf(h, "Connection: upgrade\r\nUpgrade: %.*s\r\n", (int)up.len, up.p);
    } else if (r->resp_chunked) {
        evbuffer_add(h, "Transfer-Encoding: chunked\r\n", 28);
    } else if ((p->flags & F_CONTENTLENGTH) && !r->resp_collect) {
        gw_out_hdr_u64(h, GW_STR_LIT("Content-Length"), p->content_length);
    }
    if (r->close_after && status != 101)
        evbuffer_add(h, "Connection: close\r\n", 19);
    evbuffer_add(h, "\r\n", 2);
    gw_conn_resp_head_written(r, evbuffer_get_length(h) - head_start);
    if (status == 101) {
        /* not paused here: http-parser would leave the header block's last LF unread; it
         * ends the message itself and stops, the rest is the new protocol */
        u->tunnel = true;
        return 0;
    }
    return r->head ? 1 : 0;
}

static int up_on_body(http_parser *p, const char *at, size_t n)
{
    struct gw_upconn *u = up_of(p);

    gw_conn_resp_body(u->req, at, n);
    return 0;
}

static int up_on_message_complete(http_parser *p)
{
    struct gw_upconn *u = up_of(p);

    if (!u->head_done)
        return 0; /* an interim 1xx */
    u->msg_done = true;
    u->keepalive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings up_settings = {
    .on_header_field = up_on_header_field,
    .on_header_value = up_on_header_value,
    .on_headers_complete = up_on_headers_complete,
    .on_body = up_on_body,
    .on_message_complete = up_on_message_complete,
};

/* ---- tunnel ------------------------------------------------------------------------------ */

static void tunnel_read_up(struct bufferevent *bev, void *arg)
{
    struct gw_upconn *u = arg;

    if (u->req != NULL) {
        u->req->bytes_out += evbuffer_get_length(bufferevent_get_input(bev));
        bufferevent_write_buffer(u->req->conn->bev, bufferevent_get_input(bev));
        gw_bev_flush(u->req->conn->bev);
        if (gw_conn_output_pending(u->req) > CLIENT_OUT_HIGH) {
            up_reading(u, false); /* the client is slow: gw_proxy_resp_resume() resumes */
            u->read_paused = true;
        }
    }
}

/* The upstream took what the client sent through the tunnel: the client may send more. */
static void tunnel_write_up(struct bufferevent *bev, void *arg)
{
    struct gw_upconn *u = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
    if (u->req != NULL)
        gw_conn_tunnel_resume(u->req);
}

static void tunnel_event_up(struct bufferevent *bev, short what, void *arg)
{
    struct gw_upconn *u = arg;
    struct gw_req *r = u->req;

    if (r != NULL)
        gw_conn_resp_done(r, false); /* closes the client side once flushed */
}

static void start_tunnel(struct gw_upconn *u)
{
    struct gw_req *r = u->req;
    struct evbuffer *in = bufferevent_get_input(u->bev);

    up_timeouts(u, 0, 0);
    bufferevent_setcb(u->bev, NULL, tunnel_write_up, tunnel_event_up, u);
    bufferevent_setwatermark(u->bev, EV_WRITE, UP_WRITE_LOW, 0);
    up_reading(u, true);
    gw_conn_tunnel(r, u->bev);
    if (evbuffer_get_length(in) > 0)
        tunnel_read_up(u->bev, u);
}

/* ---- upstream callbacks ------------------------------------------------------------------- */

static void up_feed(struct gw_upconn *u)
{
    struct evbuffer *in = bufferevent_get_input(u->bev);

    u->feeding = true;
    while (u->req != NULL && !u->msg_done && !u->tunnel) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (gw_conn_output_pending(u->req) > CLIENT_OUT_HIGH) {
            up_reading(u, false); /* the client write callback resumes */
            u->read_paused = true;
            break;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        u->got_bytes = true;
        n = http_parser_execute(&u->parser, &up_settings, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        gw_bev_flush(u->req->conn->bev); /* what this read gave the client, in one write */
        e = HTTP_PARSER_ERRNO(&u->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            struct gw_req *r = u->req;
            gw_log(GW_LOG_ERROR, "req=%.*s upstream %s: invalid response (%s)", (int)r->id_len,
                   r->id, r->target, http_errno_name(e));
            u->feeding = false;
            upstream_failed(u, 502);
            return;
        }
        if (n == 0 && e == HPE_OK)
            break;
    }
    u->feeding = false;
    if (u->req != NULL && u->tunnel) {
        start_tunnel(u);
        return;
    }
    if (u->req != NULL && u->msg_done)
        gw_conn_resp_done(u->req, true); /* detaches (pools or frees) this connection */
}

static void up_rev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_upconn *u = arg;
    int n;

    if (u->req == NULL) { /* idle in the pool: data, a close or the idle timeout ends it */
        up_free(u);
        return;
    }
    if (what & EV_TIMEOUT) {
        up_event_cb(u->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, u);
        return;
    }
    n = gw_bev_read(u->bev, 16384);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        if (u->tunnel)
            tunnel_event_up(u->bev, BEV_EVENT_EOF, u);
        else
            up_event_cb(u->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), u);
        return;
    }
    if (n < 0)
        return;
    if (u->tunnel)
        tunnel_read_up(u->bev, u);
    else
        up_feed(u);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_upconn *u = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE); /* until gw_bev_flush() needs it again */

    if (u->req != NULL && u->req->state == REQ_BODY)
        gw_conn_body_resume(u->req);
}

static bool idempotent(unsigned method)
{
    return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
           method == HTTP_PUT || method == HTTP_DELETE;
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct gw_upconn *u = arg;
    struct gw_req *r = u->req;

    if (r == NULL) { /* idle in the pool: closed by the peer or timed out */
        up_free(u);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        const struct gw_service *s = r->service;
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        u->connected = true;
        up_timeouts(u, s->read_timeout, s->write_timeout);
        r->t_upstream_sent = gw_now_ns();
        /* reads are rev's; the head queued meanwhile goes out on EV_WRITE */
        u->rev = event_new(u->w->base, bufferevent_getfd(bev), EV_READ | EV_PERSIST, up_rev_cb, u);
        up_reading(u, true);
        gw_conn_body_resume(r);
        return;
    }
    if (!u->connected) {
        connect_failed(u, (what & BEV_EVENT_TIMEOUT) != 0);
        return;
    }
    if ((what & BEV_EVENT_EOF) && u->head_done && !u->msg_done && !u->parser.upgrade) {
        /* a close-delimited body ends with the connection */
        http_parser_execute(&u->parser, &up_settings, NULL, 0);
        if (u->msg_done) {
            u->keepalive = false;
            gw_conn_resp_done(r, true);
            return;
        }
    }
    if (!u->got_bytes && u->reused && !r->stale_retried && !(what & BEV_EVENT_TIMEOUT) &&
        idempotent(r->method) && !r->chunked && r->content_length == 0) {
        r->stale_retried = true;
        /* a kept-alive connection the upstream had closed: one transparent retry */
        r->up = NULL;
        u->req = NULL;
        up_free(u);
        try_connect(r);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        gw_log(GW_LOG_WARN, "req=%.*s upstream %s: timed out", (int)r->id_len, r->id, r->target);
        upstream_failed(u, 504);
        return;
    }
    gw_log(GW_LOG_WARN, "req=%.*s upstream %s: connection closed before the response ended",
           (int)r->id_len, r->id, r->target);
    upstream_failed(u, 502);
}

/* ---- request body ------------------------------------------------------------------------ */

void gw_proxy_body(struct gw_req *r, const char *p, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(r->up->bev);

    if (r->chunked) {
        char hex[24];
        int l = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        evbuffer_add(out, hex, (size_t)l);
        evbuffer_add(out, p, n);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, p, n);
    }
}

void gw_proxy_body_end(struct gw_req *r)
{
    if (r->chunked)
        evbuffer_add(bufferevent_get_output(r->up->bev), "0\r\n\r\n", 5);
}

void gw_proxy_flush(struct gw_req *r)
{
    if (r->up != NULL && r->up->connected)
        gw_bev_flush(r->up->bev);
}

bool gw_proxy_body_blocked(struct gw_req *r)
{
    return r->up == NULL || !r->up->connected ||
           evbuffer_get_length(bufferevent_get_output(r->up->bev)) > UP_WRITE_HIGH;
}

void gw_proxy_resp_resume(struct gw_req *r)
{
    struct gw_upconn *u = r->up;

    if (u != NULL && u->read_paused && gw_conn_output_pending(r) <= CLIENT_OUT_HIGH) {
        u->read_paused = false;
        up_reading(u, true);
        if (!u->feeding && !u->tunnel)
            up_feed(u);
    }
}

/* ---- pooling ------------------------------------------------------------------------------ */

static void pool_remove(struct gw_upconn *u)
{
    struct gw_pool *p = u->pool;

    for (struct gw_upconn **pp = &p->idle; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            p->nidle--;
            return;
        }
    }
}

void gw_proxy_detach(struct gw_req *r, bool reusable)
{
    struct gw_upconn *u = r->up;
    const struct gw_gateway *g = &r->snap->gateway;

    if (u == NULL)
        return;
    r->up = NULL;
    u->req = NULL;
    if (!reusable || !u->msg_done || !u->keepalive || u->tunnel || u->read_paused ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) > 0 ||
        evbuffer_get_length(bufferevent_get_output(u->bev)) > 0 ||
        u->pool->nidle >= g->upstream_keepalive.pool_size ||
        (g->upstream_keepalive.max_requests != 0 &&
         u->nreq >= g->upstream_keepalive.max_requests)) {
        up_free(u);
        return;
    }
    bufferevent_setcb(u->bev, NULL, NULL, up_event_cb, u);
    up_timeouts(u, g->upstream_keepalive.idle_timeout * 1000, 0);
    up_reading(u, true); /* whatever comes (data, close, the idle timeout) ends it */
    u->next = u->pool->idle;
    u->pool->idle = u;
    u->pool->nidle++;
}

void gw_proxy_cancel(struct gw_req *r)
{
    struct dns_entry *e = r->dns_wait;

    if (e != NULL) {
        for (struct dns_waiter **pp = &e->waiters; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->req == r) {
                struct dns_waiter *wt = *pp;
                *pp = wt->next;
                free(wt);
                break;
            }
        }
        r->dns_wait = NULL;
    }
    gw_proxy_detach(r, false);
}

static void up_free(struct gw_upconn *u)
{
    if (u->req == NULL && u->connected) {
        /* idle in its pool, perhaps */
        pool_remove(u);
    }
    if (u->all_prev != NULL)
        u->all_prev->all_next = u->all_next;
    else
        u->w->pools->all = u->all_next;
    if (u->all_next != NULL)
        u->all_next->all_prev = u->all_prev;
    gw_hdrs_dispose(&u->hdrs);
    if (u->rev != NULL)
        event_free(u->rev);
    bufferevent_free(u->bev);
    free(u);
}
