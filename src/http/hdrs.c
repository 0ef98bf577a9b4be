#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "gw/arena.h"
#include "http_int.h"

void gw_hdrs_init(struct gw_hdrs *h, size_t limit, size_t maxn)
{
    memset(h, 0, sizeof(*h));
    h->limit = limit;
    h->maxn = maxn;
}

void gw_hdrs_reset(struct gw_hdrs *h, size_t limit, size_t maxn)
{
    h->len = 0;
    h->n = 0;
    h->in_value = false;
    h->limit = limit;
    h->maxn = maxn;
    if (h->capn > maxn) /* the entry array must not hold more than maxn from now on */
        h->capn = maxn;
}

void gw_hdrs_dispose(struct gw_hdrs *h)
{
    free(h->buf);
    free(h->ent);
    memset(h, 0, sizeof(*h));
}

static int append(struct gw_hdrs *h, const char *p, size_t n)
{
    /* Limits are checked before growing: the client decides n. */
    if (n > h->limit || h->len + n > h->limit)
        return -1;
    if (h->len + n > h->cap) {
        size_t cap = h->cap != 0 ? h->cap : 1024;
        while (cap < h->len + n)
            cap *= 2;
        if (cap > h->limit)
            cap = h->limit;
        h->buf = gw_xrealloc(h->buf, cap);
        h->cap = cap;
    }
    memcpy(h->buf + h->len, p, n);
    h->len += n;
    return 0;
}

int gw_hdrs_field(struct gw_hdrs *h, const char *p, size_t n)
{
    if (h->n == 0 || h->in_value) { /* a new header */
        if (h->n == h->maxn)
            return -1;
        if (h->n == h->capn) {
            h->capn = h->capn != 0 ? h->capn * 2 : 16;
            if (h->capn > h->maxn)
                h->capn = h->maxn;
            h->ent = gw_xrealloc(h->ent, h->capn * sizeof(*h->ent));
        }
        h->ent[h->n].name_off = (uint32_t)h->len;
        h->ent[h->n].name_len = 0;
        h->ent[h->n].value_off = (uint32_t)h->len;
        h->ent[h->n].value_len = 0;
        h->n++;
        h->in_value = false;
    }
    if (append(h, p, n) != 0)
        return -1;
    h->ent[h->n - 1].name_len += (uint32_t)n;
    h->ent[h->n - 1].value_off = (uint32_t)h->len;
    return 0;
}

int gw_hdrs_value(struct gw_hdrs *h, const char *p, size_t n)
{
    if (h->n == 0)
        return -1;
    h->in_value = true;
    if (append(h, p, n) != 0)
        return -1;
    h->ent[h->n - 1].value_len += (uint32_t)n;
    return 0;
}

struct gw_hdr gw_hdrs_at(const struct gw_hdrs *h, size_t i)
{
    struct gw_hdr r;

    r.name = (struct gw_str){h->buf + h->ent[i].name_off, h->ent[i].name_len};
    r.value = (struct gw_str){h->buf + h->ent[i].value_off, h->ent[i].value_len};
    /* http-parser leaves optional whitespace at the end of values (obs-fold, tabs). */
    while (r.value.len > 0 &&
           (r.value.p[r.value.len - 1] == ' ' || r.value.p[r.value.len - 1] == '\t'))
        r.value.len--;
    return r;
}

struct gw_str gw_hdrs_get(const struct gw_hdrs *h, const char *name)
{
    struct gw_str want = gw_str_c(name);

    for (size_t i = 0; i < h->n; i++) {
        struct gw_hdr x = gw_hdrs_at(h, i);
        if (gw_str_caseeq(x.name, want))
            return x.value;
    }
    return GW_STR_NULL;
}

void gw_hdrs_remove_if(struct gw_hdrs *h, bool (*eq)(struct gw_str, struct gw_str),
                       struct gw_str want)
{
    size_t k = 0;

    /* entries only: the bytes stay where they are, so views into them stay valid */
    for (size_t i = 0; i < h->n; i++)
        if (!eq(gw_hdrs_at(h, i).name, want))
            h->ent[k++] = h->ent[i];
    h->n = k;
}

size_t gw_hdrs_count(const struct gw_hdrs *h, const char *name)
{
    struct gw_str want = gw_str_c(name);
    size_t c = 0;

    for (size_t i = 0; i < h->n; i++)
        if (gw_str_caseeq(gw_hdrs_at(h, i).name, want))
            c++;
    return c;
}

bool gw_token_list_has(struct gw_str v, const char *token)
{
    struct gw_str t = gw_str_c(token);
    size_t i = 0;

    while (i < v.len) {
        size_t s, e;
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (gw_str_caseeq((struct gw_str){v.p + s, e - s}, t))
            return true;
    }
    return false;
}

/* Writes what `bev` has to send now, with one writev(2), and asks the loop for a write event
 * only when the socket does not take it all. bufferevents keep EV_WRITE off in between, so a
 * response that fits in the socket buffer costs no epoll_ctl() at all (libevent 2.1 would
 * add and then delete the write event for every response otherwise). */
void gw_bev_flush(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);

    int n;

    if (evbuffer_get_length(out) == 0 || (bufferevent_get_enabled(bev) & EV_WRITE))
        return; /* nothing to do, or a write event is pending anyway */
    /* A bufferevent keeps the start of its output frozen so that only it drains it; it
     * unfreezes it the same way around its own writes. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        bufferevent_enable(bev, EV_WRITE); /* the bufferevent reports the error */
        return;
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(bev, EV_WRITE);
}

/* Header writers for the hot path: one evbuffer_add per header line, no printf parsing. */
void gw_out_hdr(struct evbuffer *b, struct gw_str name, struct gw_str value)
{
    char line[512];

    if (name.len + value.len + 4 <= sizeof(line)) {
        memcpy(line, name.p, name.len);
        line[name.len] = ':';
        line[name.len + 1] = ' ';
        memcpy(line + name.len + 2, value.p, value.len);
        line[name.len + 2 + value.len] = '\r';
        line[name.len + 3 + value.len] = '\n';
        evbuffer_add(b, line, name.len + value.len + 4);
        return;
    }
    evbuffer_add(b, name.p, name.len);
    evbuffer_add(b, ": ", 2);
    evbuffer_add(b, value.p, value.len);
    evbuffer_add(b, "\r\n", 2);
}

void gw_out_hdr_u64(struct evbuffer *b, struct gw_str name, unsigned long long v)
{
    char digits[24];
    size_t n = sizeof(digits);

    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    gw_out_hdr(b, name, (struct gw_str){digits + n, sizeof(digits) - n});
}

/* Reads from `bev`'s socket into its input buffer with one readv(2). libevent 2.1's own
 * reads ask the kernel how much is readable first (an ioctl per read); a fixed room does
 * without. Returns the bytes read, 0 at end of stream, -1 on error (errno; EAGAIN when there
 * was nothing after all). */
int gw_bev_read(struct bufferevent *bev, size_t room)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    int nv, n;

    /* a bufferevent keeps the end of its input frozen so that only it adds there */
    evbuffer_unfreeze(in, 0);
    nv = evbuffer_reserve_space(in, (ev_ssize_t)room, v, 2);
    if (nv <= 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < nv; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    n = (int)readv(bufferevent_getfd(bev), iov, nv);
    if (n > 0) {
        size_t left = (size_t)n;
        for (int i = 0; i < nv; i++) {
            size_t take = left < v[i].iov_len ? left : v[i].iov_len;
            v[i].iov_len = take;
            left -= take;
        }
        evbuffer_commit_space(in, v, nv);
    } else {
        evbuffer_commit_space(in, v, 0);
    }
    evbuffer_freeze(in, 0);
    return n;
}
