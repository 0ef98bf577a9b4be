#ifndef GW_HTTP_INT_H
#define GW_HTTP_INT_H

#include <http_parser.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gw/config.h"
#include "gw/reqid.h"
#include "gw/router.h"
#include "gw/str.h"

/* Internals of the HTTP/1.1 proxy: downstream connections (conn.c), the request they carry,
 * upstream connections and their pools (upstream.c) and the forwarding logic (proxy.c). All
 * of it runs on one worker's loop thread. */

struct bufferevent;
struct event;
struct evbuffer;
struct gw_worker;
struct gw_worker_listener;
struct gw_arena;
struct gw_upconn;

struct gw_hdr {
    struct gw_str name, value;
};

/* A growable header list whose bytes live in `buf` (one allocation per message). Offsets are
 * kept while parsing, since `buf` moves when it grows. */
struct gw_hdrs {
    char *buf;
    size_t len, cap, limit; /* limit: most bytes allowed (431 / 502 beyond) */
    struct {
        uint32_t name_off, name_len, value_off, value_len;
    } * ent;
    size_t n, capn, maxn;
    bool in_value;
};

void gw_hdrs_init(struct gw_hdrs *h, size_t limit, size_t maxn);
void gw_hdrs_dispose(struct gw_hdrs *h);
/* Empties the list for the next message, keeping its buffers (a kept-alive connection). */
void gw_hdrs_reset(struct gw_hdrs *h, size_t limit, size_t maxn);
/* Appends a piece of a name or a value. Returns -1 when a limit is exceeded. */
int gw_hdrs_field(struct gw_hdrs *h, const char *p, size_t n);
int gw_hdrs_value(struct gw_hdrs *h, const char *p, size_t n);
/* The i-th header as views into buf (valid until the next append). */
struct gw_hdr gw_hdrs_at(const struct gw_hdrs *h, size_t i);
/* First value of `name` (case-insensitive), or .p == NULL. */
struct gw_str gw_hdrs_get(const struct gw_hdrs *h, const char *name);
/* Removes every header whose name eq(name, want) says is `want` (order kept). */
void gw_hdrs_remove_if(struct gw_hdrs *h, bool (*eq)(struct gw_str, struct gw_str),
                       struct gw_str want);
/* Number of headers named `name`. */
size_t gw_hdrs_count(const struct gw_hdrs *h, const char *name);
/* True when a comma-separated header value contains `token` (case-insensitive). */
bool gw_token_list_has(struct gw_str value, const char *token);

enum gw_req_state {
    REQ_HEAD,    /* reading the request line and headers */
    REQ_PENDING, /* headers read: routing, connecting upstream; body not read yet */
    REQ_BODY,    /* forwarding the request body */
    REQ_SENT,    /* request fully read (and forwarded, when proxied) */
};

struct gw_req {
    struct gw_conn *conn;
    struct gw_snapshot *snap; /* own reference */
    char id[GW_REQID_MAX_IN + 1];
    size_t id_len;
    enum gw_req_state state;
    /* request line */
    char *url; /* raw request target, NUL-terminated */
    size_t url_len;
    unsigned method;             /* enum http_method */
    unsigned short major, minor; /* HTTP version */
    struct gw_str path;          /* normalised path (own buffer) */
    char *path_buf;
    size_t path_cap;
    struct gw_str query; /* raw query string without '?', into url */
    struct gw_str host;  /* Host header or authority of an absolute-form target */
    struct gw_hdrs hdrs;
    /* framing */
    bool chunked, has_length, keepalive, expect_continue, upgrade, head;
    uint64_t content_length;
    /* routing */
    struct gw_router_match match;
    const struct gw_route *route;
    const struct gw_service *service;
    /* response */
    int status;
    bool resp_started, resp_done, resp_chunked, close_after;
    bool local_response; /* gatehouse answered, not the upstream (metrics' source label) */
    struct gw_upconn *up;
    char target[INET6_ADDRSTRLEN + 8]; /* "ip:port" of the peer used */
    struct gw_str pick_host;           /* target of the current try (into the snapshot) */
    uint16_t pick_port;
    void *dns_wait; /* waiting for a name resolution (proxy.c) */
    unsigned tries;
    bool stale_retried; /* the one transparent retry on a closed pooled connection is used */
    /* accounting */
    /* a body read whole for plugins before the access phase (chain->wants_body) */
    struct evbuffer *body;
    bool buffering;  /* reading it */
    bool body_ready; /* read: the access phase is due */
    /* plugins (plugins.c) */
    const struct gw_plugin_instance **plugin_sel; /* per chain entry: the instance chosen */
    char *plugin_ctx;                             /* the plugins' per-request contexts */
    size_t plugin_sel_cap, plugin_ctx_cap;        /* kept for the connection's next request */
    bool plugins_ran;                             /* the access phase started */
    size_t plugin_next;                           /* the next chain entry for access */
    struct gw_arena *pool;                        /* per-request allocations; NULL until used */
    struct gw_hdr *up_add;                        /* headers set for the upstream */
    size_t nup_add, capup_add;
    struct gw_str up_query; /* the query sent upstream when up_query_set */
    bool up_query_set;
    const char *up_method;              /* the method sent upstream when set */
    struct gw_str up_path;              /* the path sent upstream when .p != NULL */
    const struct gw_consumer *consumer; /* authenticated (or anonymous) consumer */
    const char *credential_id;
    bool anonymous;
    int exit_status; /* gw_req_exit(): the answer the chain writes once it lets go */
    bool exit_empty; /* gw_req_exit_empty(): no body */
    bool exit_json;  /* gw_req_exit_json(): exit_message is the JSON body */
    char *exit_message, *exit_headers;
    /* response header edits (gw_resp_*): lines to add, and names removed from the upstream's */
    struct gw_hdr *resp_add;
    size_t nresp_add, capresp_add;
    struct gw_str *resp_clear;
    size_t nresp_clear, capresp_clear;
    const struct gw_hdrs *resp_up; /* the upstream's headers while header_filter runs */
    bool resp_collect;             /* gw_resp_read_body(): the body is collected for body_filter */
    struct evbuffer *resp_body;    /* ... here */
    uint64_t head_bytes;           /* request line and headers as received */
    uint64_t bytes_in, bytes_out;  /* request body (and tunnelled bytes) in; all bytes out */
    uint64_t t_start, t_peer, t_upstream_sent, t_first_byte, t_done; /* monotonic ns */
};

enum gw_conn_state {
    CONN_IDLE,   /* waiting for a request (keep-alive) */
    CONN_ACTIVE, /* a request is in progress */
    CONN_TUNNEL, /* upgraded: bytes copied both ways */
    CONN_CLOSING /* flushing the last response, then closed */
};

struct gw_conn {
    struct gw_worker *w;
    struct bufferevent *bev;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    char peer_ip[INET6_ADDRSTRLEN];
    uint16_t local_port;
    bool tls;
    bool trusted;        /* the peer is in gateway.trusted_ips */
    bool proxy_protocol; /* a PROXY protocol header is still expected */
    enum gw_conn_state state;
    unsigned char stat; /* the state counted in the worker's stats (conn.c) */
    http_parser parser;
    bool parser_paused;     /* the parser stops after headers and after each message */
    bool feeding;           /* inside conn_feed(): frees are deferred */
    bool dead;              /* freed once the current feed returns */
    int error_status;       /* set by a parser callback that rejects the request */
    unsigned char hdr_tail; /* obs-fold scan: 0 in a line, 1 after a line end, 2 headers done */
    struct gw_req *req;     /* the request being read or answered */
    struct gw_req *spare;   /* the last request's object, reused by the next one */
    struct bufferevent *tunnel_peer; /* the upstream, once tunnelling */
    struct event *hdr_deadline;      /* timeouts.client_header for a whole header section */
    struct event *rev;               /* reads (not the bufferevent's: see gw_bev_read) */
    uint32_t read_timeout;           /* seconds, 0 = none */
    bool reading;                    /* rev is added */
    unsigned requests;
    struct gw_conn *prev, *next;
};

/* conn.c */
/* A new downstream connection accepted on `l`; with its `proxy_protocol` the first bytes must be a
 * PROXY protocol v1 or v2 header, whose source address becomes the client's. */
void gw_conn_accept(const struct gw_worker_listener *l, int fd, const struct sockaddr *sa,
                    int salen);
/* Closes idle keep-alive connections (shutdown). */
void gw_conn_close_idle(struct gw_worker *w);
/* Closes every connection (drain deadline passed). */
void gw_conn_close_all(struct gw_worker *w);

/* Called by proxy.c: response headers are in `head` (status line included, ends with an empty
 * line); the body follows through gw_conn_resp_body(). */
void gw_conn_resp_head(struct gw_req *r, struct evbuffer *head);
/* Same, when the head was written straight into gw_conn_output(): `len` bytes of it. */
void gw_conn_resp_head_written(struct gw_req *r, size_t len);
/* Writes a piece of the response body (framed as announced). */
void gw_conn_resp_body(struct gw_req *r, const char *p, size_t n);
/* The response is complete (or failed: `ok` false closes the client connection). */
void gw_conn_resp_done(struct gw_req *r, bool ok);
/* Answers `status` with an empty body and the headers plugins set (plugins.c's exits). May
 * finish and recycle the request before it returns. */
void gw_conn_respond_empty(struct gw_req *r, int status);
/* Same with `json` as an application/json body. */
void gw_conn_respond_json(struct gw_req *r, int status, const char *json, const char *headers);
/* Answers with a gateway-generated error (Kong's bodies, type from Accept). May finish and
 * recycle the request before it returns: nothing may touch `r` afterwards. */
void gw_conn_error(struct gw_req *r, int status, const char *message);
/* Same with extra response headers ("Name: value\r\n" lines, or NULL). */
void gw_conn_error_headers(struct gw_req *r, int status, const char *message,
                           const char *extra_headers);
/* Request body flow control, driven by the upstream side. */
void gw_conn_body_resume(struct gw_req *r);
/* Switches to tunnelling (after a 101). */
void gw_conn_tunnel(struct gw_req *r, struct bufferevent *upstream);
/* The upstream drained what the client sent through the tunnel: read the client again. */
void gw_conn_tunnel_resume(struct gw_req *r);
struct evbuffer *gw_conn_output(struct gw_req *r);
size_t gw_conn_output_pending(struct gw_req *r);

/* proxy.c */
/* Headers complete and routed: pick a target, connect, send the request head. */
void gw_proxy_start(struct gw_req *r);
/* A piece of request body / its end, already de-framed. */
void gw_proxy_body(struct gw_req *r, const char *p, size_t n);
void gw_proxy_body_end(struct gw_req *r);
/* True when the upstream cannot take more body now (back-pressure). */
bool gw_proxy_body_blocked(struct gw_req *r);
/* The request is finished: release the upstream connection (to the pool when reusable). */
void gw_proxy_detach(struct gw_req *r, bool reusable);
/* The request is being freed: drop anything the proxy still does for it. */
void gw_proxy_cancel(struct gw_req *r);
/* The client drained its output: resume reading the upstream response. */
void gw_proxy_resp_resume(struct gw_req *r);

/* Frees the worker's upstream connections and tables (worker exit). */
void gw_upstream_pools_free(struct gw_worker *w);

/* Writes the access log line of a finished request (log.c). */
void gw_access_log_request(struct gw_worker *w, const struct gw_req *r);

/* The plugin chain (plugins.c). gw_plugins_access() runs the route's chain (route->chain
 * not NULL) and then starts the proxy, or answers; gw_plugins_log() runs the log callbacks of
 * the instances chosen; gw_plugins_release() ends the request's plugin state (its buffers stay,
 * emptied, for reuse). */
void gw_plugins_access(struct gw_req *r);
/* Runs the header_filter callbacks on the response about to be written: the upstream's
 * headers `up` (NULL for gatehouse's own answer). Afterwards the head is written with
 * gw_resp_keep() deciding on each of `up`'s headers and r->resp_add appended. */
void gw_plugins_header_filter(struct gw_req *r, const struct gw_hdrs *up);
/* False for an upstream header a plugin removed or replaced. */
bool gw_resp_keep(const struct gw_req *r, struct gw_str name);
/* Runs the body_filter callbacks on the whole collected response body. */
void gw_plugins_body_filter(struct gw_req *r, struct evbuffer *body);
void gw_plugins_log(struct gw_req *r);
void gw_plugins_release(struct gw_req *r);

/* The buffers of a finished request's plugin state, emptied, that the connection's next
 * request reuses (gw_plugins_keep() before the request object is cleared, then
 * gw_plugins_restore()); gw_plugins_dispose() frees them. */
struct gw_plugins_kept {
    struct gw_arena *pool;
    const struct gw_plugin_instance **sel;
    char *ctx;
    size_t sel_cap, ctx_cap;
    struct gw_hdr *up_add, *resp_add;
    size_t up_add_cap, resp_add_cap;
    struct gw_str *resp_clear;
    size_t resp_clear_cap;
};
struct gw_plugins_kept gw_plugins_keep(const struct gw_req *r);
void gw_plugins_restore(struct gw_req *r, const struct gw_plugins_kept *k);
void gw_plugins_dispose(struct gw_req *r);

/* Request metrics (req_metrics.c). gw_req_metrics_register() runs once on the main thread
 * before the workers start; gw_req_metrics_record() counts a finished request in the
 * worker's shard; gw_req_metrics_free() drops the worker's cached handles (worker exit). */
void gw_req_metrics_register(void);
void gw_req_metrics_record(struct gw_worker *w, const struct gw_req *r);
void gw_req_metrics_free(struct gw_worker *w);

/* Sends what `bev` holds now (writev) and enables EV_WRITE only for a remainder; the write
 * callback turns EV_WRITE off again once the output is empty (hdrs.c). */
void gw_bev_flush(struct bufferevent *bev);
/* One readv into `bev`'s input, at most `room` bytes: >0 read, 0 end of stream, -1 error. */
int gw_bev_read(struct bufferevent *bev, size_t room);
/* Appends "name: value\r\n" (hdrs.c). */
void gw_out_hdr(struct evbuffer *b, struct gw_str name, struct gw_str value);
void gw_out_hdr_u64(struct evbuffer *b, struct gw_str name, unsigned long long v);
/* Flushes what the request wrote towards its upstream (proxy.c). */
void gw_proxy_flush(struct gw_req *r);

/* time */
uint64_t gw_now_ns(void);

#endif
