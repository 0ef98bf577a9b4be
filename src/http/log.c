#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw/access_log.h"
#include "gw/arena.h"
#include "gw/worker.h"
#include "http_int.h"

/* The access log: one JSON object per request, written from a per-worker buffer with
 * write(2) in whole lines. The descriptor is shared: the main thread reopens it in place with
 * dup2() (SIGUSR1, or a new path on reload), so workers never see it closed. */

#define ALOG_BUF 65536
#define ALOG_FLUSH_AT 49152

struct gw_access_log {
    char buf[ALOG_BUF];
    size_t len;
};

static atomic_int alog_fd = -1;

void gw_access_log_set_fd(int fd)
{
    atomic_store(&alog_fd, fd);
}

int gw_access_log_fd(void)
{
    return atomic_load(&alog_fd);
}

void gw_access_log_flush(struct gw_worker *w)
{
    struct gw_access_log *l = w->alog;
    int fd = atomic_load(&alog_fd);
    size_t off = 0;

    if (l == NULL || l->len == 0)
        return;
    while (fd >= 0 && off < l->len) {
        ssize_t n = write(fd, l->buf + off, l->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk must not stop the proxy: the lines are dropped */
        off += (size_t)n;
    }
    l->len = 0;
}

void gw_access_log_free(struct gw_worker *w)
{
    gw_access_log_flush(w);
    free(w->alog);
    w->alog = NULL;
}

struct out {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void putc_(struct out *o, char c)
{
    put(o, &c, 1);
}

static void put_json_str(struct out *o, struct gw_str s)
{
    static const char hex[] = "0123456789abcdef";

    putc_(o, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\') {
            putc_(o, '\\');
            putc_(o, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, e, 6); /* bytes, not characters: the line stays valid JSON */
        } else {
            putc_(o, (char)c);
        }
    }
    putc_(o, '"');
}

static bool is_credential_param(struct gw_str name, const struct gw_strv *more)
{
    static const char *const names[] = {"apikey", "jwt", "access_token", NULL};

    for (const char *const *n = names; *n != NULL; n++)
        if (gw_str_caseeq(name, gw_str_c(*n)))
            return true;
    for (size_t i = 0; i < more->n; i++)
        if (gw_str_caseeq(name, more->v[i]))
            return true;
    return false;
}

/* The query string with the values of credential parameters replaced. */
static void put_query(struct out *o, struct gw_str q, const struct gw_strv *more)
{
    char tmp[1024];
    struct out t = {tmp, 0, sizeof(tmp), false};
    size_t i = 0;

    while (i < q.len) {
        size_t s = i, eq = SIZE_MAX;
        while (i < q.len && q.p[i] != '&') {
            if (q.p[i] == '=' && eq == SIZE_MAX)
                eq = i;
            i++;
        }
        if (eq != SIZE_MAX && is_credential_param((struct gw_str){q.p + s, eq - s}, more)) {
            put(&t, q.p + s, eq - s + 1);
            put(&t, "REDACTED", 8);
        } else {
            put(&t, q.p + s, i - s);
        }
        if (i < q.len) {
            putc_(&t, '&');
            i++;
        }
    }
    if (t.overflow) {
        put_json_str(o, GW_STR_LIT("(query too long to log)"));
        return;
    }
    put_json_str(o, (struct gw_str){tmp, t.len});
}

static void put_num(struct out *o, const char *key, unsigned long long v)
{
    char b[64];
    int n = snprintf(b, sizeof(b), ",\"%s\":%llu", key, v);

    put(o, b, (size_t)n);
}

static void put_ms(struct out *o, const char *key, uint64_t from, uint64_t to)
{
    char b[64];
    int n;

    if (from == 0 || to < from) {
        n = snprintf(b, sizeof(b), ",\"%s\":null", key);
    } else {
        n = snprintf(b, sizeof(b), ",\"%s\":%.3f", key, (double)(to - from) / 1e6);
    }
    put(o, b, (size_t)n);
}

void gw_access_log_request(struct gw_worker *w, const struct gw_req *r)
{
    struct gw_access_log *l;
    char line[8192], when[40];
    struct out o = {line, 0, sizeof(line) - 1, false};
    struct timespec ts;
    struct tm tm;

    if (atomic_load(&alog_fd) < 0)
        return;
    if (w->alog == NULL)
        w->alog = gw_xcalloc(1, sizeof(*w->alog));
    l = w->alog;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + 19, sizeof(when) - 19, ".%03ldZ", ts.tv_nsec / 1000000);

    put(&o, "{\"time\":", 8);
    put_json_str(&o, gw_str_c(when));
    put(&o, ",\"request_id\":", 14);
    put_json_str(&o, (struct gw_str){r->id, r->id_len});
    put(&o, ",\"client\":", 10);
    put_json_str(&o, gw_str_c(r->conn->peer_ip));
    put(&o, ",\"method\":", 10);
    put_json_str(&o, gw_str_c(r->state == REQ_HEAD ? "" : http_method_str(r->method)));
    put(&o, ",\"path\":", 8);
    {
        struct gw_str path = r->path.p != NULL ? r->path : GW_STR_LIT("");
        if (path.len > 1024) /* long paths are cut: the line must stay whole */
            path.len = 1024;
        put_json_str(&o, path);
    }
    put(&o, ",\"query\":", 9);
    put_query(&o, r->query, &r->snap->secret_query_args);
    put_num(&o, "status", (unsigned long long)r->status);
    put_num(&o, "bytes_in", (unsigned long long)r->bytes_in);
    put_num(&o, "bytes_out", (unsigned long long)r->bytes_out);
    put_ms(&o, "latency_ms", r->t_start, r->t_done);
    put_ms(&o, "upstream_latency_ms", r->t_upstream_sent, r->t_first_byte);
    put_ms(&o, "gateway_latency_ms", r->t_start, r->t_peer != 0 ? r->t_peer : r->t_done);
    put(&o, ",\"route\":", 9);
    if (r->route != NULL)
        put_json_str(&o, r->route->name.len > 0 ? r->route->name
                                                : (struct gw_str){r->route->id, GW_UUID_LEN});
    else
        put(&o, "null", 4);
    put(&o, ",\"service\":", 11);
    if (r->service != NULL)
        put_json_str(&o, r->service->name.len > 0 ? r->service->name
                                                  : (struct gw_str){r->service->id, GW_UUID_LEN});
    else
        put(&o, "null", 4);
    put(&o, ",\"target\":", 10);
    if (r->target[0] != '\0')
        put_json_str(&o, gw_str_c(r->target));
    else
        put(&o, "null", 4);
    put(&o, "}\n", 2);
    if (o.overflow)
        return; /* a line over 8 KiB cannot happen with the limits on paths and queries */
    if (l->len + o.len > ALOG_BUF)
        gw_access_log_flush(w);
    memcpy(l->buf + l->len, line, o.len);
    l->len += o.len;
    if (l->len >= ALOG_FLUSH_AT)
        gw_access_log_flush(w);
}
