#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw/arena.h"
#include "gw/http_error.h"
#include "gw/log.h"
#include "gw/metrics.h"
#include "gw/reqid.h"
#include "gw/version.h"
#include "gw/worker.h"
#include "http_int.h"

/* Downstream HTTP/1.1 connections. One request at a time per connection: pipelined requests
 * stay in the input buffer (bounded by the read watermark) until the previous response is
 * done, so responses go out in order. http-parser is paused after the request headers (the
 * body is read only once the upstream can take it) and after each message.
 *
 * Debian's http-parser is built non-strict (reference/dependencies.md §0.1); the guards here:
 * header names must be tokens, bodies are always re-framed upstream (proxy.c), parsing stops
 * after a message that does not keep the connection alive, trailers are dropped, and HTTP/1.1
 * needs exactly one Host. */

#define CONN_READ_HIGH (256 * 1024) /* bytes buffered from a client before reading pauses */
#define CONN_WRITE_LOW (64 * 1024)  /* resume the upstream when the client drained to this */

uint64_t gw_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void conn_free(struct gw_conn *c);
static void conn_feed(struct gw_conn *c);
static void conn_finish_request(struct gw_conn *c);

/* ---- timeouts ----------------------------------------------------------------------- */

/* Reading is the connection's own event (rev); the bufferevent only writes. */
static void conn_reading(struct gw_conn *c, bool on)
{
    struct timeval rd = {(time_t)c->read_timeout, 0};

    if (on && c->reading && c->read_timeout == 0)
        return; /* added already, no timeout to re-arm */
    if (on)
        event_add(c->rev, c->read_timeout != 0 ? &rd : NULL);
    else if (c->reading)
        event_del(c->rev);
    c->reading = on;
}

static void conn_timeouts(struct gw_conn *c, uint32_t read_s)
{
    const struct gw_gateway *g = &c->w->snap->gateway;
    struct timeval wr = {(time_t)g->timeouts.send, 0};

    bufferevent_set_timeouts(c->bev, NULL, &wr);
    if (c->read_timeout != read_s) {
        c->read_timeout = read_s;
        if (c->reading && read_s == 0) {
            /* event_add() with no timeout keeps the one armed: remove the timer alone (no
             * epoll_ctl, as event_del() + event_add() would cost twice per request) */
            event_remove_timer(c->rev);
        } else if (c->reading) {
            conn_reading(c, true); /* re-armed with the new timeout */
        }
    }
}

/* ---- request lifetime --------------------------------------------------------------- */

static struct gw_req *req_new(struct gw_conn *c)
{
    struct gw_req *r = c->spare;
    const struct gw_gateway *g;

    gw_worker_refresh(c->w);
    g = &c->w->snap->gateway;
    if (r != NULL) {
        /* the previous request's object, with its buffers: no allocation per request on a
         * kept-alive connection */
        struct gw_hdrs h = r->hdrs;
        char *url = r->url, *path = r->path_buf;
        size_t path_cap = r->path_cap;
        struct gw_plugins_kept kept = gw_plugins_keep(r);
        c->spare = NULL;
        memset(r, 0, sizeof(*r));
        gw_plugins_restore(r, &kept);
        r->hdrs = h;
        r->url = url;
        r->path_buf = path;
        r->path_cap = path_cap;
        gw_hdrs_reset(&r->hdrs, g->limits.max_header_size, g->limits.max_headers);
    } else {
        r = gw_xcalloc(1, sizeof(*r));
        gw_hdrs_init(&r->hdrs, g->limits.max_header_size, g->limits.max_headers);
    }
    r->conn = c;
    r->snap = c->w->snap;
    gw_snapshot_acquire(r->snap);
    r->t_start = gw_now_ns();
    r->state = REQ_HEAD;
    return r;
}

static void req_dispose(struct gw_req *r)
{
    if (r->body != NULL)
        evbuffer_free(r->body);
    if (r->resp_body != NULL)
        evbuffer_free(r->resp_body);
    gw_plugins_dispose(r);
    gw_hdrs_dispose(&r->hdrs);
    free(r->url);
    free(r->path_buf);
    free(r);
}

/* Ends a request; with `keep`, its object is kept for the connection's next request. */
static void req_free(struct gw_req *r, bool keep)
{
    struct gw_conn *c = r->conn;

    gw_proxy_cancel(r);
    gw_plugins_release(r);
    if (r->body != NULL) {
        evbuffer_free(r->body);
        r->body = NULL;
    }
    if (r->resp_body != NULL) {
        evbuffer_free(r->resp_body);
        r->resp_body = NULL;
    }
    gw_snapshot_release(r->snap);
    r->snap = NULL;
    if (keep && c->spare == NULL) {
        c->spare = r;
        return;
    }
    req_dispose(r);
}

/* ---- connection states for the status listener ---------------------------------------- */

enum { CSTAT_WAITING, CSTAT_READING, CSTAT_WRITING };

/* nginx's stub_status states: reading a request head, writing (a request in progress), or
 * waiting (idle keep-alive, or nothing received yet). */
static void conn_stat(struct gw_conn *c)
{
    struct gw_worker_stats *st = &c->w->stats;
    unsigned now;

    if (c->req == NULL && (c->state == CONN_IDLE || c->state == CONN_CLOSING))
        now = c->state == CONN_IDLE ? CSTAT_WAITING : CSTAT_WRITING;
    else if (c->state == CONN_ACTIVE && c->req != NULL && c->req->state == REQ_HEAD &&
             !c->req->resp_started)
        now = CSTAT_READING;
    else
        now = CSTAT_WRITING;
    if (now == c->stat)
        return;
    if (c->stat == CSTAT_READING)
        gw_stat_sub(&st->reading, 1);
    else if (c->stat == CSTAT_WRITING)
        gw_stat_sub(&st->writing, 1);
    if (now == CSTAT_READING)
        gw_stat_add(&st->reading, 1);
    else if (now == CSTAT_WRITING)
        gw_stat_add(&st->writing, 1);
    c->stat = (unsigned char)now;
}

/* A finished request goes to the access log and the metrics. */
static void req_account(struct gw_worker *w, struct gw_req *r)
{
    gw_stat_add(&w->stats.requests, 1);
    gw_plugins_log(r);
    gw_access_log_request(w, r);
    if (r->snap->gateway.metrics)
        gw_req_metrics_record(w, r);
}

/* ---- parser callbacks ---------------------------------------------------------------- */

static bool is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr(extra, ch) != NULL);
}

static struct gw_conn *conn_of(http_parser *p)
{
    return p->data;
}

static int reject(struct gw_conn *c, int status)
{
    if (c->error_status == 0)
        c->error_status = status;
    return -1;
}

static void header_deadline_cb(evutil_socket_t fd, short what, void *arg);

static int on_message_begin(http_parser *p)
{
    struct gw_conn *c = conn_of(p);
    struct timeval tv = {(time_t)c->w->snap->gateway.timeouts.client_header, 0};

    if (c->req == NULL)
        c->req = req_new(c);
    c->state = CONN_ACTIVE;
    conn_stat(c);
    conn_timeouts(c, c->w->snap->gateway.timeouts.client_header);
    /* The whole header section must arrive within client_header, not just each piece of it
     * (a client sending a byte now and then would otherwise hold the connection). */
    if (c->hdr_deadline == NULL)
        c->hdr_deadline = evtimer_new(c->w->base, header_deadline_cb, c);
    evtimer_add(c->hdr_deadline, &tv);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;
    uint64_t max = r->snap->gateway.limits.max_uri_length;

    if (r->url_len + n > max)
        return reject(c, 414);
    r->url = gw_xrealloc(r->url, r->url_len + n + 1);
    memcpy(r->url + r->url_len, at, n);
    r->url_len += n;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;

    if (r->state != REQ_HEAD)
        return 0; /* trailers of a chunked body: dropped */
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)at[i]))
            return reject(c, 400);
    if (gw_hdrs_field(&r->hdrs, at, n) != 0)
        return reject(c, 431);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;

    if (r->state != REQ_HEAD)
        return 0;
    if (gw_hdrs_value(&r->hdrs, at, n) != 0)
        return reject(c, 431);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;

    if (r->url_len + r->hdrs.len > r->snap->gateway.limits.max_header_size)
        return reject(c, 431);
    /* http-parser checks this only after on_headers_complete, once the request would
     * already be on its way upstream: a Transfer-Encoding not ending in chunked is refused
     * here (request smuggling, RFC 9112 §6.3). */
    if (p->uses_transfer_encoding && !(p->flags & F_CHUNKED))
        return reject(c, 400);
    evtimer_del(c->hdr_deadline);
    r->state = REQ_PENDING;
    conn_stat(c);
    r->method = p->method;
    r->major = p->http_major;
    r->minor = p->http_minor;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    r->content_length = r->has_length ? p->content_length : 0;
    r->keepalive = http_should_keep_alive(p) != 0;
    r->head = p->method == HTTP_HEAD;
    http_parser_pause(p, 1);
    c->parser_paused = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;
    uint64_t max = r->snap->gateway.limits.max_body_size;

    r->bytes_in += n;
    if (max != 0 && r->bytes_in > max)
        return reject(c, 413);
    if (r->buffering) {
        if (evbuffer_get_length(r->body) + n > r->snap->gateway.limits.plugin_body_buffer)
            return reject(c, 413);
        evbuffer_add(r->body, at, n);
        return 0;
    }
    if (r->up != NULL && !r->resp_done)
        gw_proxy_body(r, at, n);
    /* else: answered locally; the rest of the body is read and dropped */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct gw_conn *c = conn_of(p);
    struct gw_req *r = c->req;

    r->state = REQ_SENT;
    /* the whole request is in: the client may stay silent while the upstream answers
     * (client_body times the gaps between body reads only, as nginx's) */
    conn_timeouts(c, 0);
    if (r->buffering) {
        r->buffering = false;
        r->body_ready = true; /* conn_feed() runs the access phase once the parser let go */
    }
    if (r->up != NULL && !r->resp_done)
        gw_proxy_body_end(r);
    http_parser_pause(p, 1);
    c->parser_paused = true;
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- responses ----------------------------------------------------------------------- */

struct evbuffer *gw_conn_output(struct gw_req *r)
{
    return bufferevent_get_output(r->conn->bev);
}

size_t gw_conn_output_pending(struct gw_req *r)
{
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev));
}

void gw_conn_resp_head(struct gw_req *r, struct evbuffer *head)
{
    r->resp_started = true;
    conn_stat(r->conn);
    r->bytes_out += evbuffer_get_length(head);
    bufferevent_write_buffer(r->conn->bev, head);
}

void gw_conn_resp_head_written(struct gw_req *r, size_t len)
{
    r->resp_started = true;
    conn_stat(r->conn);
    r->bytes_out += len;
}

static void write_body(struct gw_req *r, const char *p, size_t n);

void gw_conn_resp_body(struct gw_req *r, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (r->resp_collect) { /* for body_filter, within plugin_body_buffer */
        size_t have;
        if (r->resp_body == NULL)
            r->resp_body = evbuffer_new();
        have = evbuffer_get_length(r->resp_body);
        if (have + n <= r->snap->gateway.limits.plugin_body_buffer) {
            evbuffer_add(r->resp_body, p, n);
            return;
        }
        gw_log(GW_LOG_WARN,
               "req=%.*s response body over plugin_body_buffer: sent without its body_filter",
               (int)r->id_len, r->id);
        r->resp_collect = false;
        if (have > 0)
            write_body(r, (const char *)evbuffer_pullup(r->resp_body, -1), have);
        evbuffer_drain(r->resp_body, have);
    }
    write_body(r, p, n);
}

static void write_body(struct gw_req *r, const char *p, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);

    if (n == 0)
        return;
    if (r->resp_chunked) {
        char hex[24];
        int l = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        evbuffer_add(out, hex, (size_t)l);
        evbuffer_add(out, p, n);
        evbuffer_add(out, "\r\n", 2);
        r->bytes_out += (size_t)l + n + 2;
    } else {
        evbuffer_add(out, p, n);
        r->bytes_out += n;
    }
}

void gw_conn_resp_done(struct gw_req *r, bool ok)
{
    struct gw_conn *c = r->conn;

    if (r->resp_collect) { /* the whole body is in: the plugins rewrite it, then it goes */
        r->resp_collect = false;
        if (r->resp_body == NULL)
            r->resp_body = evbuffer_new();
        if (ok) {
            size_t n;
            gw_plugins_body_filter(r, r->resp_body);
            n = evbuffer_get_length(r->resp_body);
            if (n > 0)
                write_body(r, (const char *)evbuffer_pullup(r->resp_body, -1), n);
        }
        evbuffer_drain(r->resp_body, evbuffer_get_length(r->resp_body));
    }

    if (r->resp_chunked && ok) {
        evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
        r->bytes_out += 5;
    }
    gw_bev_flush(c->bev);
    r->resp_done = true;
    r->t_done = gw_now_ns();
    if (!ok)
        r->close_after = true;
    if (r->up != NULL)
        gw_proxy_detach(r, ok && r->state == REQ_SENT);
    if (r->state != REQ_SENT && !r->close_after) {
        /* Answered before the whole request arrived: a small rest is read and dropped, a big
         * or unknown one ends the connection (as nginx's lingering close, without waiting). */
        if (r->chunked || r->content_length - r->bytes_in > 65536)
            r->close_after = true;
    }
    if (r->state == REQ_SENT || r->close_after)
        conn_finish_request(c);
    else if (c->parser_paused) { /* read the rest of the small body, then finish */
        http_parser_pause(&c->parser, 0);
        c->parser_paused = false;
        conn_timeouts(c, r->snap->gateway.timeouts.client_body);
        conn_feed(c);
    }
}

static void add_common_headers(struct gw_req *r, struct evbuffer *h, bool proxied)
{
    unsigned groups = r->snap->gateway.headers;
    uint64_t now = gw_now_ns();

    if (groups & GW_HEADERS_SERVER_TOKENS && !proxied)
        evbuffer_add_printf(h, "Server: gatehouse/%s\r\n", GW_VERSION);
    if (groups & GW_HEADERS_REQUEST_ID && r->id_len > 0)
        evbuffer_add_printf(h, "X-Request-Id: %.*s\r\n", (int)r->id_len, r->id);
    if (groups & GW_HEADERS_LATENCY_TOKENS && !proxied)
        evbuffer_add_printf(h, "X-Gatehouse-Response-Latency: %llu\r\n",
                            (unsigned long long)((now - r->t_start) / 1000000));
}

/* A response gatehouse writes itself; `body` may be empty. */
static void respond(struct gw_req *r, int status, const char *content_type, struct evbuffer *body,
                    const char *extra_headers)
{
    struct evbuffer *h = evbuffer_new();
    size_t blen = body != NULL ? evbuffer_get_length(body) : 0;

    r->status = status;
    r->local_response = true;
    gw_plugins_header_filter(r, NULL);
    r->resp_collect = false; /* gatehouse's own answers are not rewritten by body_filter */
    if (r->state != REQ_SENT && (r->chunked || r->content_length > 65536))
        r->close_after = true;
    if (!r->keepalive)
        r->close_after = true;
    evbuffer_add_printf(h, "HTTP/1.1 %d %s\r\n", status, gw_status_reason(status));
    add_common_headers(r, h, false);
    if (content_type != NULL)
        evbuffer_add_printf(h, "Content-Type: %s\r\n", content_type);
    evbuffer_add_printf(h, "Content-Length: %zu\r\n", blen);
    if (extra_headers != NULL)
        evbuffer_add(h, extra_headers, strlen(extra_headers));
    for (size_t i = 0; i < r->nresp_add; i++) /* set by plugins */
        gw_out_hdr(h, r->resp_add[i].name, r->resp_add[i].value);
    if (r->close_after)
        evbuffer_add(h, "Connection: close\r\n", 19);
    evbuffer_add(h, "\r\n", 2);
    gw_conn_resp_head(r, h);
    evbuffer_free(h);
    if (blen > 0 && !r->head) {
        r->bytes_out += blen;
        bufferevent_write_buffer(r->conn->bev, body);
    }
    gw_conn_resp_done(r, true);
}

static void respond_error(struct gw_req *r, int status, const char *message,
                          const char *extra_headers)
{
    struct evbuffer *body = evbuffer_new();
    const struct gw_gateway *g = &r->snap->gateway;
    enum gw_body_type t;
    const char *ctype;

    if (r->resp_started) { /* too late for a clean answer: cut the connection */
        gw_conn_resp_done(r, false);
        evbuffer_free(body);
        return;
    }
    t = gw_error_negotiate(gw_hdrs_get(&r->hdrs, "accept"),
                           gw_body_type_from_mime(g->error_default_type, GW_BODY_JSON));
    ctype = gw_error_body(body, t,
                          gw_str_c(message != NULL ? message : gw_error_default_message(status)),
                          (struct gw_str){r->id, r->id_len});
    respond(r, status, ctype, body, extra_headers);
    evbuffer_free(body);
}

void gw_conn_error(struct gw_req *r, int status, const char *message)
{
    respond_error(r, status, message, NULL);
}

void gw_conn_respond_empty(struct gw_req *r, int status)
{
    respond(r, status, NULL, NULL, NULL);
}

void gw_conn_respond_json(struct gw_req *r, int status, const char *json, const char *headers)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, json, strlen(json));
    respond(r, status, "application/json; charset=utf-8", b, headers);
    evbuffer_free(b);
}

void gw_conn_error_headers(struct gw_req *r, int status, const char *message,
                           const char *extra_headers)
{
    respond_error(r, status, message, extra_headers);
}

/* ---- dispatch after the request headers ---------------------------------------------- */

static void set_request_id(struct gw_req *r)
{
    struct gw_str in = gw_hdrs_get(&r->hdrs, "x-request-id");

    if (r->conn->trusted && in.p != NULL && gw_reqid_acceptable(in) && in.len < sizeof(r->id)) {
        memcpy(r->id, in.p, in.len);
        r->id_len = in.len;
    } else {
        gw_reqid_new(r->id);
        r->id_len = GW_UUID_LEN;
    }
}

/* Splits the target into path and query; absolute-form targets give the host. */
static int parse_target(struct gw_req *r)
{
    struct http_parser_url u;
    const char *path = r->url;
    size_t plen = r->url_len;
    long n;

    if (r->url_len > 0 && r->url[0] != '/') {
        if (r->method == HTTP_CONNECT)
            return -1;
        http_parser_url_init(&u);
        if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0 ||
            !(u.field_set & (1 << UF_HOST)))
            return -1;
        r->host = (struct gw_str){r->url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len};
        if (u.field_set & (1 << UF_PATH)) {
            path = r->url + u.field_data[UF_PATH].off;
            plen = (size_t)(r->url + r->url_len - path);
        } else {
            path = "/";
            plen = 1;
        }
    }
    if (plen == 0 || path[0] != '/')
        return -1;
    {
        const char *q = memchr(path, '?', plen);
        const char *hash = memchr(path, '#', plen);
        size_t end = hash != NULL ? (size_t)(hash - path) : plen;
        size_t pend = q != NULL && (size_t)(q - path) < end ? (size_t)(q - path) : end;
        if (q != NULL && (size_t)(q - path) < end)
            r->query = (struct gw_str){q + 1, end - pend - 1};
        if (r->path_cap < pend + 1) {
            free(r->path_buf);
            r->path_buf = gw_xmalloc(pend + 1);
            r->path_cap = pend + 1;
        }
        n = gw_path_normalize(path, pend, r->path_buf);
        if (n < 0)
            return -1;
        r->path_buf[n] = '\0';
        r->path = (struct gw_str){r->path_buf, (size_t)n};
    }
    return 0;
}

/* The headers that say who the request is from are gatehouse's to set (after
 * authentication), never the client's: removed on every route [ours]. */
static bool is_consumer_header(struct gw_str name, struct gw_str unused)
{
#define N(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct gw_str names[] = {
        N("x-consumer-id"),           N("x-consumer-custom-id"), N("x-consumer-username"),
        N("x-credential-identifier"), N("x-anonymous-consumer"), N("x-consumer-groups"),
        N("x-authenticated-groups"),
    };
#undef N

    if (name.len < 13 || (name.p[0] != 'x' && name.p[0] != 'X'))
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gw_str_caseeq(name, names[i]))
            return true;
    return false;
}

static void strip_consumer_headers(struct gw_req *r)
{
    for (size_t i = 0; i < r->hdrs.n; i++)
        if (is_consumer_header(gw_hdrs_at(&r->hdrs, i).name, GW_STR_NULL)) {
            gw_hdrs_remove_if(&r->hdrs, is_consumer_header, GW_STR_NULL);
            return;
        }
}

static void dispatch(struct gw_req *r)
{
    struct gw_conn *c = r->conn;
    struct gw_router_header rh_stack[64], *rh;
    struct gw_router_req rq;
    size_t nhost = gw_hdrs_count(&r->hdrs, "host");
    struct gw_str expect;
    bool found;

    set_request_id(r);
    conn_timeouts(c, 0); /* waiting for the upstream: the client may stay silent */
    if (r->snap->gateway.timeouts.keepalive == 0)
        r->close_after = true; /* keep-alive off: said in the response (Connection: close) */
    if ((r->major == 1 && r->minor >= 1 && nhost != 1) || nhost > 1) {
        gw_conn_error(r, 400, "Bad request");
        return;
    }
    if (parse_target(r) != 0) {
        gw_conn_error(r, 400, "Bad request");
        return;
    }
    if (r->host.p == NULL)
        r->host = gw_hdrs_get(&r->hdrs, "host");
    expect = gw_hdrs_get(&r->hdrs, "expect");
    if (expect.p != NULL) {
        if (!gw_str_caseeq(expect, GW_STR_LIT("100-continue"))) {
            gw_conn_error(r, 417, NULL);
            return;
        }
        r->expect_continue = r->major == 1 && r->minor >= 1;
    }
    if (r->method == HTTP_TRACE) {
        gw_conn_error(r, 405, NULL);
        return;
    }
    if (r->snap->gateway.limits.max_body_size != 0 && r->has_length &&
        r->content_length > r->snap->gateway.limits.max_body_size) {
        r->close_after = true;
        gw_conn_error(r, 413, NULL);
        return;
    }
    if (c->parser.upgrade) {
        struct gw_str up = gw_hdrs_get(&r->hdrs, "upgrade");
        r->upgrade = up.p != NULL && !gw_token_list_has(up, "h2c");
        /* the parser stops at an upgrade request: what follows is not HTTP to it, so the
         * connection ends with this request unless it becomes a tunnel */
        r->close_after = true;
    }

    strip_consumer_headers(r);
    /* the router reads the headers as views: on the stack for the usual request */
    rh = r->hdrs.n <= 64 ? rh_stack : gw_xcalloc(r->hdrs.n, sizeof(*rh));
    for (size_t i = 0; i < r->hdrs.n; i++) {
        struct gw_hdr h = gw_hdrs_at(&r->hdrs, i);
        rh[i] = (struct gw_router_header){h.name, h.value};
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = gw_str_c(http_method_str(r->method));
    rq.host = r->host.p != NULL ? r->host : GW_STR_NULL;
    rq.path = r->path;
    rq.headers = rh;
    rq.nheaders = r->hdrs.n;
    rq.port = c->local_port;
    rq.tls = c->tls;
    found = gw_router_match(r->snap->router, &rq, &r->match);
    if (rh != rh_stack)
        free(rh);
    if (!found) {
        gw_conn_error(r, 404, "no Route matched with those values");
        return;
    }
    r->route = r->match.route;
    r->service = r->route->service;
    if (!r->match.protocol_ok) {
        unsigned code = r->route->https_redirect_status_code;
        if (code == 426) {
            respond_error(r, 426, "Please use HTTPS protocol",
                          "Connection: Upgrade\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n");
        } else {
            char *loc = gw_xmalloc(r->host.len + r->url_len + 32);
            sprintf(loc, "Location: https://%.*s%s\r\n", (int)r->host.len, r->host.p,
                    r->url[0] == '/' ? r->url : "/");
            respond(r, (int)code, NULL, NULL, loc);
            free(loc);
        }
        return;
    }
    if (r->service == NULL) {
        gw_conn_error(r, 503, "no Service found with those values");
        return;
    }
    if (r->route->chain == NULL) {
        gw_proxy_start(r);
        return;
    }
    if (r->route->chain->wants_body && (r->chunked || r->content_length > 0) && !r->upgrade) {
        /* a plugin reads the body: all of it first, within plugin_body_buffer */
        if (r->has_length && r->content_length > r->snap->gateway.limits.plugin_body_buffer) {
            r->close_after = true;
            gw_conn_error(r, 413, NULL);
            return;
        }
        r->body = evbuffer_new();
        r->buffering = true;
        gw_conn_body_resume(r); /* on_message_complete() then sets body_ready */
        return;
    }
    gw_plugins_access(r); /* then the proxy, unless a plugin answers */
}

/* The proxy is ready for the body (or there is none): read on. */
void gw_conn_body_resume(struct gw_req *r)
{
    struct gw_conn *c = r->conn;

    if (r->state == REQ_PENDING) {
        r->state = REQ_BODY;
        if (r->expect_continue && (r->chunked || r->content_length > 0)) {
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
            gw_bev_flush(c->bev);
        }
        conn_timeouts(c, r->snap->gateway.timeouts.client_body);
        if (c->parser_paused) {
            http_parser_pause(&c->parser, 0);
            c->parser_paused = false;
        }
    }
    if (!c->feeding)
        conn_feed(c);
}

/* ---- the read loop ------------------------------------------------------------------- */

/* Looks for a line folded with leading whitespace (obs-fold) in the header section part of
 * `p`; http-parser would accept it. `c->hdr_tail` carries the last bytes seen across reads;
 * scanning stops at the empty line that ends the headers, so bodies are never scanned. */
static bool has_obs_fold(struct gw_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (c->hdr_tail == 2) /* after the end of the header section */
            return false;
        if (ch == '\n') {
            c->hdr_tail = c->hdr_tail == 1 ? 2 : 1; /* LF right after LF (or CRLF): the end */
            continue;
        }
        if (ch == '\r')
            continue; /* CR does not change the state: CRLF counts as LF */
        if (c->hdr_tail == 1 && (ch == ' ' || ch == '\t'))
            return true;
        c->hdr_tail = 0;
    }
    return false;
}

static void conn_feed(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (c->feeding)
        return;
    c->feeding = true;
    while (!c->dead && c->state != CONN_CLOSING && c->state != CONN_TUNNEL) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (c->req != NULL && c->req->state == REQ_BODY && !c->req->buffering &&
            gw_proxy_body_blocked(c->req))
            break; /* the upstream's write callback resumes us */
        if (c->parser_paused || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if ((c->req == NULL || c->req->state == REQ_HEAD) &&
            has_obs_fold(c, v.iov_base, v.iov_len)) {
            c->error_status = 400; /* obs-fold (RFC 9112 §5.2): refused, never unfolded */
            n = 0;
            e = HPE_OK;
        } else {
            bool head = c->req == NULL || c->req->state == REQ_HEAD;
            n = http_parser_execute(&c->parser, &parser_settings, v.iov_base, v.iov_len);
            e = HTTP_PARSER_ERRNO(&c->parser);
            if (head && c->req != NULL) /* the parser pauses at the end of the head */
                c->req->head_bytes += n;
        }
        evbuffer_drain(in, n);
        if (c->req != NULL && c->req->up != NULL)
            gw_proxy_flush(c->req); /* the body parsed so far, in one write */
        if (c->error_status != 0 || (e != HPE_OK && e != HPE_PAUSED)) {
            int status = c->error_status != 0       ? c->error_status
                         : e == HPE_HEADER_OVERFLOW ? 431
                                                    : 400;
            if (c->req == NULL) /* nothing parsed: make a request to answer */
                c->req = req_new(c);
            if (c->req->id_len == 0)
                set_request_id(c->req);
            c->req->close_after = true;
            c->req->keepalive = false;
            if (c->req->up != NULL && status == 413 && c->req->resp_started)
                gw_conn_resp_done(c->req, false);
            else
                gw_conn_error(c->req, status, NULL);
            break;
        }
        if (e == HPE_PAUSED && c->req != NULL && c->req->state == REQ_PENDING &&
            c->req->id_len == 0) {
            dispatch(c->req); /* may answer at once, or start the proxy */
            continue;
        }
        if (e == HPE_PAUSED && c->req != NULL && c->req->body_ready) {
            c->req->body_ready = false;
            conn_timeouts(c, 0);       /* waiting for the upstream now */
            gw_plugins_access(c->req); /* the body is whole: plugins, then the proxy */
            continue;
        }
        if (c->req != NULL && c->req->state == REQ_SENT && c->req->resp_done) {
            conn_finish_request(c); /* answered early; the rest of its body is now read */
            continue;
        }
        if (n == 0 && e == HPE_OK)
            break;
    }
    c->feeding = false;
    if (c->dead) {
        conn_free(c);
        return;
    }
    /* back-pressure: no reading while much is buffered (pipelined requests, or a body the
     * upstream is slow to take) */
    if (c->state != CONN_CLOSING && c->state != CONN_TUNNEL)
        conn_reading(c, evbuffer_get_length(in) < CONN_READ_HIGH);
}

/* ---- PROXY protocol (v1 text, v2 binary) ------------------------------------------------ */

static void set_peer(struct gw_conn *c, const struct sockaddr *sa, socklen_t len)
{
    memcpy(&c->peer, sa, len);
    c->peerlen = len;
    c->peer_ip[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    c->trusted =
        gw_cidr_match(c->w->snap->gateway.trusted_ips, c->w->snap->gateway.ntrusted_ips, sa);
}

/* v1: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", at most 107 bytes. */
static int proxy_v1(struct gw_conn *c, struct evbuffer *in)
{
    char line[108], proto[8], src[48], dst[48];
    unsigned sport, dport;
    struct evbuffer_ptr eol = evbuffer_search(in, "\r\n", 2, NULL);
    size_t n;

    if (eol.pos < 0)
        return evbuffer_get_length(in) >= sizeof(line) ? -1 : 0;
    n = (size_t)eol.pos;
    if (n + 2 > sizeof(line) - 1) /* 107 bytes at most, CRLF included */
        return -1;
    evbuffer_remove(in, line, n + 2);
    line[n] = '\0';
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0)
        return 1; /* the balancer's own connection: keep the socket's peer */
    if (sscanf(line, "PROXY %7s %47s %47s %u %u", proto, src, dst, &sport, &dport) != 5 ||
        sport > 65535 || dport > 65535)
        return -1;
    if (strcmp(proto, "TCP4") == 0) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sport)};
        if (inet_pton(AF_INET, src, &sin.sin_addr) != 1)
            return -1;
        set_peer(c, (struct sockaddr *)&sin, sizeof(sin));
    } else if (strcmp(proto, "TCP6") == 0) {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)sport)};
        if (inet_pton(AF_INET6, src, &sin6.sin6_addr) != 1)
            return -1;
        set_peer(c, (struct sockaddr *)&sin6, sizeof(sin6));
    } else {
        return -1;
    }
    return 1;
}

static const unsigned char proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                               0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int proxy_v2(struct gw_conn *c, struct evbuffer *in)
{
    unsigned char hdr[16 + 216];
    size_t len;

    if (evbuffer_get_length(in) < 16)
        return 0;
    evbuffer_copyout(in, hdr, 16);
    if ((hdr[12] & 0xF0) != 0x20)
        return -1; /* version 2 only */
    len = ((size_t)hdr[14] << 8) | hdr[15];
    if (len > 216 + 2048)
        return -1;
    if (evbuffer_get_length(in) < 16 + len)
        return 0;
    if (len <= 216) {
        evbuffer_remove(in, hdr, 16 + len);
    } else { /* TLVs we do not read: skip them */
        evbuffer_remove(in, hdr, 16 + 216);
        evbuffer_drain(in, len - 216);
    }
    if ((hdr[12] & 0x0F) == 0x00)
        return 1; /* LOCAL: health check from the balancer itself */
    if ((hdr[12] & 0x0F) != 0x01)
        return -1;
    if ((hdr[13] >> 4) == 0x1 && len >= 12) { /* AF_INET */
        struct sockaddr_in sin = {.sin_family = AF_INET};
        memcpy(&sin.sin_addr, hdr + 16, 4);
        memcpy(&sin.sin_port, hdr + 24, 2);
        set_peer(c, (struct sockaddr *)&sin, sizeof(sin));
    } else if ((hdr[13] >> 4) == 0x2 && len >= 36) { /* AF_INET6 */
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
        memcpy(&sin6.sin6_addr, hdr + 16, 16);
        memcpy(&sin6.sin6_port, hdr + 48, 2);
        set_peer(c, (struct sockaddr *)&sin6, sizeof(sin6));
    }
    /* AF_UNSPEC or AF_UNIX: keep the socket's peer */
    return 1;
}

/* Reads the PROXY protocol header that a balancer sends first. Returns 1 when done, 0 when
 * more bytes are needed, -1 when the connection must be closed. */
static int proxy_header(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    unsigned char first[12];
    size_t have = evbuffer_get_length(in);

    evbuffer_copyout(in, first, have < 12 ? have : 12);
    if (memcmp(first, "PROXY ", have < 6 ? have : 6) == 0)
        return have < 6 ? 0 : proxy_v1(c, in);
    if (memcmp(first, proxy_v2_sig, have < 12 ? have : 12) != 0)
        return -1;
    return have < 12 ? 0 : proxy_v2(c, in);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;

    if (c->proxy_protocol) {
        int rc = proxy_header(c);
        if (rc < 0) {
            gw_log(GW_LOG_WARN, "client %s: invalid PROXY protocol header: closed", c->peer_ip);
            conn_free(c);
            return;
        }
        if (rc == 0)
            return;
        c->proxy_protocol = false;
    }

    if (c->state == CONN_IDLE && c->req == NULL)
        conn_timeouts(c, c->w->snap->gateway.timeouts.client_header);
    conn_feed(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void tunnel_read_down(struct bufferevent *bev, void *arg);

static void conn_rev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    int n;

    if (what & EV_TIMEOUT) {
        conn_event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, c);
        return;
    }
    n = gw_bev_read(c->bev, 16384);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_event_cb(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
        return;
    }
    if (n < 0)
        return;
    if (c->state == CONN_TUNNEL) {
        tunnel_read_down(c->bev, c);
        return;
    }
    conn_read_cb(c->bev, c); /* may free c */
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE); /* until gw_bev_flush() needs it again */

    if (c->state == CONN_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            conn_free(c);
        return;
    }
    if (c->req != NULL && c->req->up != NULL)
        gw_proxy_resp_resume(c->req);
}

static void header_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    struct gw_req *r = c->req;

    if (r == NULL || r->state != REQ_HEAD || r->resp_started)
        return;
    if (r->id_len == 0)
        set_request_id(r);
    r->close_after = true;
    r->keepalive = false;
    gw_conn_error(r, 408, NULL);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct gw_conn *c = arg;

    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->req != NULL &&
        c->state == CONN_ACTIVE && !c->req->resp_started &&
        (c->req->state == REQ_HEAD || c->req->state == REQ_BODY)) {
        /* a client too slow with its request: 408, then close */
        if (c->req->id_len == 0)
            set_request_id(c->req);
        c->req->close_after = true;
        c->req->keepalive = false;
        gw_conn_error(c->req, 408, NULL);
        return;
    }
    conn_free(c); /* EOF, error, idle keep-alive timeout, or a client that stopped reading */
}

/* ---- finishing ----------------------------------------------------------------------- */

static void conn_finish_request(struct gw_conn *c)
{
    struct gw_req *r = c->req;
    /* keepalive: 0 turns keep-alive off, as nginx's keepalive_timeout 0 */
    bool close = r->close_after || !r->keepalive || r->snap->gateway.timeouts.keepalive == 0;

    gw_bev_flush(c->bev);
    if (r->t_done == 0)
        r->t_done = gw_now_ns();
    req_account(c->w, r);
    c->req = NULL;
    c->requests++;
    req_free(r, !close);
    if (close || c->w->stop_accepting) {
        c->state = CONN_CLOSING;
        conn_stat(c);
        conn_reading(c, false);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            if (c->feeding)
                c->dead = true;
            else
                conn_free(c);
        }
        return;
    }
    c->state = CONN_IDLE;
    conn_stat(c);
    c->error_status = 0;
    c->hdr_tail = 0; /* the next request's header section starts */
    conn_timeouts(c, c->w->snap->gateway.timeouts.keepalive);
    if (c->parser_paused) {
        http_parser_pause(&c->parser, 0);
        c->parser_paused = false;
    }
    if (!c->feeding && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_feed(c); /* a pipelined request is waiting */
}

/* ---- tunnelling (WebSocket and other upgrades after a 101) ----------------------------- */

static void tunnel_read_down(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;

    if (c->req != NULL)
        c->req->bytes_in += evbuffer_get_length(bufferevent_get_input(bev));
    bufferevent_write_buffer(c->tunnel_peer, bufferevent_get_input(bev));
    gw_bev_flush(c->tunnel_peer);
    if (evbuffer_get_length(bufferevent_get_output(c->tunnel_peer)) > CONN_READ_HIGH)
        conn_reading(c, false); /* the upstream is slow: gw_conn_tunnel_resume() resumes */
}

void gw_conn_tunnel_resume(struct gw_req *r)
{
    struct gw_conn *c = r->conn;

    if (c->state == CONN_TUNNEL && !c->reading &&
        evbuffer_get_length(bufferevent_get_output(c->tunnel_peer)) <= CONN_WRITE_LOW)
        conn_reading(c, true);
}

void gw_conn_tunnel(struct gw_req *r, struct bufferevent *upstream)
{
    struct gw_conn *c = r->conn;

    c->state = CONN_TUNNEL;
    conn_stat(c);
    c->tunnel_peer = upstream;
    conn_timeouts(c, 0);
    conn_reading(c, true);
    /* whatever the client sent after its request head goes to the upstream now */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        bufferevent_write_buffer(upstream, bufferevent_get_input(c->bev));
        gw_bev_flush(upstream);
    }
}

/* ---- connection lifetime ------------------------------------------------------------- */

void gw_conn_accept(const struct gw_worker_listener *l, int fd, const struct sockaddr *sa,
                    int salen)
{
    struct gw_worker *w = l->w;
    struct gw_conn *c = gw_xcalloc(1, sizeof(*c));
    int one = 1;

    c->w = w;
    c->tls = l->ssl;
    c->proxy_protocol = l->proxy_protocol;
    c->local_port = l->port; /* known from the listener: no getsockname() per connection */
    set_peer(c, sa, (socklen_t)salen);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    gw_stat_add(&w->stats.accepted, 1);
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    gw_stat_add(&w->stats.handled, 1);
    gw_stat_add(&w->stats.active, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CONN_IDLE;
    c->stat = CSTAT_WAITING;
    bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb, c);
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_rev_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, CONN_WRITE_LOW, 0);
    conn_timeouts(c, w->snap->gateway.timeouts.client_header);
    /* EV_WRITE only while output waits (gw_bev_flush); a new bufferevent has it on; reads
     * are rev's */
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    conn_reading(c, true);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
}

static void conn_free(struct gw_conn *c)
{
    struct gw_worker *w = c->w;

    if (c->feeding) {
        c->dead = true;
        return;
    }
    if (c->req != NULL) {
        struct gw_req *r = c->req;
        c->req = NULL;
        if (r->state != REQ_HEAD || r->resp_started) {
            if (r->status == 0)
                r->status = 499; /* the client went away first (nginx's code) */
            if (r->t_done == 0)
                r->t_done = gw_now_ns();
            req_account(w, r);
        }
        req_free(r, false);
    }
    c->state = CONN_IDLE; /* no longer counted as reading or writing */
    conn_stat(c);
    gw_stat_sub(&w->stats.active, 1);
    if (c->spare != NULL)
        req_dispose(c->spare);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    if (c->hdr_deadline != NULL)
        event_free(c->hdr_deadline);
    event_free(c->rev);
    bufferevent_free(c->bev);
    free(c);
    gw_worker_maybe_done(w);
}

void gw_conn_close_idle(struct gw_worker *w)
{
    for (struct gw_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE && c->req == NULL)
            conn_free(c);
    }
}

void gw_conn_close_all(struct gw_worker *w)
{
    while (w->conns != NULL)
        conn_free(w->conns);
}
