#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw/access_log.h"
#include "gw/arena.h"
#include "gw/config.h"
#include "gw/daemon.h"
#include "gw/err.h"
#include "gw/log.h"
#include "gw/version.h"
#include "daemon_int.h"
#include "gw/metrics.h"
#include "gw/worker.h"
#include "http/http_int.h"

/* The daemon: the main thread loads and publishes configuration snapshots, handles signals
 * and the drain on shutdown; N workers each run an event loop with their own SO_REUSEPORT
 * listeners and connections (DESIGN.md §2). */

static atomic_int workers_done;

/* ---- snapshot publication --------------------------------------------------------------- */

void gw_worker_refresh(struct gw_worker *w)
{
    uint64_t g = atomic_load_explicit(&w->pub->generation, memory_order_acquire);
    struct gw_snapshot *n;

    if (g == w->generation)
        return;
    pthread_mutex_lock(&w->pub->mu);
    n = w->pub->cur;
    gw_snapshot_acquire(n);
    g = atomic_load_explicit(&w->pub->generation, memory_order_relaxed);
    pthread_mutex_unlock(&w->pub->mu);
    gw_snapshot_release(w->snap);
    w->snap = n;
    w->generation = g;
}

static void publish(struct daemon *d, struct gw_snapshot *s)
{
    struct gw_snapshot *old;

    s->generation = ++d->generation;
    pthread_mutex_lock(&d->pub.mu);
    old = d->pub.cur;
    d->pub.cur = s;
    atomic_store_explicit(&d->pub.generation, s->generation, memory_order_release);
    pthread_mutex_unlock(&d->pub.mu);
    gw_snapshot_release(old);
}

/* ---- listeners ------------------------------------------------------------------------ */

int gw_daemon_socket(const struct gw_listen *l, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[INET6_ADDRSTRLEN + 1];
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    snprintf(host, sizeof(host), "%s", l->address.p);
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        len = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "listen address '%s' is not an IP address", host);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 511) != 0) {
        snprintf(err, errlen, "bind %s port %u: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void free_set(struct listen_set *s, bool close_fds, unsigned nworkers)
{
    if (s == NULL)
        return;
    for (unsigned w = 0; close_fds && w < nworkers; w++)
        if (s->fds[w] >= 0)
            close(s->fds[w]);
    free((char *)s->conf.address.p);
    free(s->fds);
    free(s);
}

/* Binds one listen entry for every worker (SO_REUSEPORT). NULL when it cannot. */
static struct listen_set *open_set(struct daemon *d, const struct gw_listen *l)
{
    struct listen_set *s = gw_xcalloc(1, sizeof(*s));
    char err[256];

    s->id = ++d->next_set_id;
    s->conf = *l;
    s->conf.address = gw_str_c(gw_xstrdup(l->address.p));
    s->port = l->port;
    s->fds = gw_xcalloc(d->nworkers, sizeof(int));
    for (unsigned w = 0; w < d->nworkers; w++)
        s->fds[w] = -1;
    if (l->ssl) {
        /* never serve plain HTTP where TLS is expected */
        gw_log(GW_LOG_ERROR, "listener %s:%u: ssl is not supported by this build", l->address.p,
               l->port);
        free_set(s, true, d->nworkers);
        return NULL;
    }
    for (unsigned w = 0; w < d->nworkers; w++) {
        s->fds[w] = gw_daemon_socket(&s->conf, s->port, err, sizeof(err));
        if (s->fds[w] < 0) {
            gw_log(GW_LOG_ERROR, "cannot listen: %s", err);
            free_set(s, true, d->nworkers);
            return NULL;
        }
        if (s->port == 0) { /* the kernel chose: the other workers bind the same port */
            struct sockaddr_storage ss;
            socklen_t len = sizeof(ss);
            getsockname(s->fds[w], (struct sockaddr *)&ss, &len);
            s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    return s;
}

static struct gw_worker_listener *worker_listener(struct gw_worker *w, const struct listen_set *s)
{
    struct gw_worker_listener *l = gw_xcalloc(1, sizeof(*l));

    l->w = w;
    l->set_id = s->id;
    l->fd = s->fds[w->id];
    l->ssl = s->conf.ssl;
    l->proxy_protocol = s->conf.proxy_protocol;
    l->port = s->port;
    return l;
}

static bool same_listen(const struct gw_listen *a, const struct gw_listen *b)
{
    return gw_str_eq(a->address, b->address) && a->port == b->port && a->ssl == b->ssl &&
           a->proxy_protocol == b->proxy_protocol;
}

/* ---- workers ---------------------------------------------------------------------------- */

static void listeners_enable(struct gw_worker *w, bool on)
{
    w->accept_paused = !on;
    for (struct gw_worker_listener *l = w->listeners; l != NULL; l = l->next) {
        if (l->lev == NULL)
            continue;
        if (on)
            evconnlistener_enable(l->lev);
        else
            evconnlistener_disable(l->lev);
    }
}

static void listener_free(struct gw_worker_listener *l)
{
    if (l->lev != NULL)
        evconnlistener_free(l->lev); /* closes the socket */
    else if (l->fd >= 0)
        close(l->fd);
    free(l);
}

static void listener_start(struct gw_worker_listener *l);

/* Applies the listener changes a reload handed over. */
static void apply_listener_ops(struct gw_worker *w)
{
    struct gw_worker_listener *add;
    unsigned *rm;
    size_t nrm;

    pthread_mutex_lock(&w->ops_mu);
    add = w->ops_add;
    rm = w->ops_remove;
    nrm = w->nops_remove;
    w->ops_add = NULL;
    w->ops_remove = NULL;
    w->nops_remove = 0;
    pthread_mutex_unlock(&w->ops_mu);
    for (size_t i = 0; i < nrm; i++) {
        for (struct gw_worker_listener **pp = &w->listeners; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->set_id == rm[i]) {
                struct gw_worker_listener *l = *pp;
                *pp = l->next;
                listener_free(l);
                break;
            }
        }
    }
    free(rm);
    while (add != NULL) {
        struct gw_worker_listener *l = add;
        add = l->next;
        if (atomic_load(&w->stop_accepting)) {
            l->lev = NULL;
            listener_free(l);
            continue;
        }
        l->next = w->listeners;
        w->listeners = l;
        listener_start(l);
        if (w->accept_paused && l->lev != NULL) /* over max_connections or out of fds */
            evconnlistener_disable(l->lev);
    }
}

void gw_worker_maybe_done(struct gw_worker *w)
{
    if (atomic_load(&w->stop_accepting)) {
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    if (w->accept_paused && w->nconns < w->snap->gateway.limits.max_connections &&
        !evtimer_pending(w->pause_ev, NULL))
        listeners_enable(w, true); /* back under the limit */
}

static void *worker_main(void *arg);

/* The main thread wakes a worker through its eventfd: libevent's cross-thread
 * event_active() would need evthread locking on every event and bufferevent of every worker. */
static void wake_worker(struct gw_worker *w)
{
    uint64_t one = 1;

    if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        gw_log(GW_LOG_ERROR, "cannot wake worker %u: %s", w->id, strerror(errno));
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        gw_log(GW_LOG_ERROR, "worker %u: eventfd: %s", w->id, strerror(errno));

    gw_worker_refresh(w);
    apply_listener_ops(w);
    if (atomic_load(&w->exiting)) {
        gw_conn_close_all(w);
        event_base_loopexit(w->base, NULL);
        return;
    }
    if (atomic_load(&w->stop_accepting)) {
        while (w->listeners != NULL) {
            struct gw_worker_listener *l = w->listeners;
            w->listeners = l->next;
            listener_free(l);
        }
        gw_conn_close_idle(w);
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
    }
}

static void heartbeat(struct gw_worker *w)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store_explicit(&w->stats.heartbeat, (uint64_t)ts.tv_sec, memory_order_relaxed);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;

    heartbeat(w);
    gw_worker_refresh(w);
    gw_access_log_flush(w);
}

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;

    if (w->nconns < w->snap->gateway.limits.max_connections)
        listeners_enable(w, true);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct gw_worker_listener *l = arg;
    struct gw_worker *w = l->w;

    gw_worker_refresh(w);
    gw_conn_accept(l, fd, sa, salen);
    if (w->nconns >= w->snap->gateway.limits.max_connections)
        listeners_enable(w, false); /* re-enabled by gw_worker_maybe_done() */
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct gw_worker_listener *l = arg;
    struct timeval tv = {0, 100 * 1000};
    int e = EVUTIL_SOCKET_ERROR();

    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* out of descriptors: pause accepting briefly instead of spinning */
        gw_log(GW_LOG_WARN, "worker %u: accept: %s; pausing 100 ms", l->w->id, strerror(e));
        listeners_enable(l->w, false);
        event_add(l->w->pause_ev, &tv);
    }
}

static void listener_start(struct gw_worker_listener *l)
{
    l->lev = evconnlistener_new(l->w->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE, -1, l->fd);
    if (l->lev == NULL) {
        gw_log(GW_LOG_ERROR, "worker %u: cannot listen on descriptor %d", l->w->id, l->fd);
        return;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    struct timeval one_s = {1, 0};

    gw_metrics_set_thread(w->id);
    heartbeat(w);
    w->dns = evdns_base_new(w->base,
                            EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (w->dns == NULL) /* no resolv.conf: still serve IP targets */
        w->dns = evdns_base_new(w->base, 0);
    for (struct gw_worker_listener *l = w->listeners; l != NULL; l = l->next)
        listener_start(l);
    w->wake = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    event_add(w->wake, NULL);
    w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    w->pause_ev = evtimer_new(w->base, resume_accept_cb, w);
    event_add(w->tick, &one_s);
    atomic_store(&w->ready, true);
    event_base_dispatch(w->base);

    gw_conn_close_all(w);
    gw_upstream_pools_free(w);
    gw_access_log_free(w);
    gw_req_metrics_free(w);
    apply_listener_ops(w); /* frees what a late reload handed over */
    while (w->listeners != NULL) {
        struct gw_worker_listener *l = w->listeners;
        w->listeners = l->next;
        listener_free(l);
    }
    event_free(w->wake);
    event_free(w->tick);
    event_free(w->pause_ev);
    if (w->dns != NULL)
        evdns_base_free(w->dns, 0);
    atomic_store(&w->stats.exited, true);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* ---- signals ------------------------------------------------------------------------------ */

static int open_access_log(const struct gw_gateway *g)
{
    int fd;

    if (g->access_log.len == 0)
        return -1;
    if (gw_str_eqc(g->access_log, "stdout"))
        return dup(STDOUT_FILENO);
    fd = open(g->access_log.p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        gw_log(GW_LOG_ERROR, "cannot open access log %s: %s", g->access_log.p, strerror(errno));
    return fd;
}

/* Points the shared access-log descriptor at `g`'s log, in place when one is open. */
static void reopen_access_log(struct daemon *d, const struct gw_gateway *g)
{
    int cur = gw_access_log_fd(), fd = open_access_log(g);

    char *path = g->access_log.len > 0 ? gw_xstrdup(g->access_log.p) : NULL;

    free(d->access_log_path); /* `g` may point at it (SIGUSR1): copied first */
    d->access_log_path = path;
    if (fd < 0) {
        if (g->access_log.len == 0 && cur >= 0) {
            /* off: workers may still hold the number; point it at /dev/null, not closed */
            int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
            gw_access_log_set_fd(-1);
            if (null >= 0) {
                dup2(null, cur);
                close(null);
            }
        }
        return;
    }
    if (cur >= 0) {
        dup2(fd, cur); /* workers keep writing to `cur`, now the new file */
        close(fd);
    } else {
        gw_access_log_set_fd(fd);
    }
}

/* One diagnostic as the logs and GET /status show it: `file:line:col: path: message`. */
static void diag_text(const struct gw_err *err, const struct gw_diag *x, char *buf, size_t size)
{
    if (x->line != 0)
        snprintf(buf, size, "%s:%u:%u: %s%s%s", err->file, x->line, x->col, x->path,
                 x->path[0] != '\0' ? ": " : "", x->msg);
    else
        snprintf(buf, size, "%s: %s%s%s", err->file, x->path, x->path[0] != '\0' ? ": " : "",
                 x->msg);
}

static void log_errors(const struct gw_err *err, enum gw_log_level level)
{
    char line[2048];

    for (const struct gw_diag *x = err->head; x != NULL; x = x->next) {
        diag_text(err, x, line, sizeof(line));
        gw_log(x->level == GW_DIAG_ERROR ? level : GW_LOG_WARN, "%s", line);
    }
}

static void reload_record_clear(struct reload_record *r)
{
    for (size_t i = 0; i < r->nerrors; i++)
        free(r->errors[i]);
    free(r->errors);
    memset(r, 0, sizeof(*r));
}

/* Keeps the outcome of a reload for GET /status: its errors (not its warnings), or `why`. */
static void reload_record_set(struct daemon *d, bool ok, const struct gw_err *err, const char *why)
{
    struct reload_record *r = &d->last_reload;
    char line[2048];

    reload_record_clear(r);
    r->done = true;
    r->ok = ok;
    r->at = time(NULL);
    if (ok)
        return;
    r->errors = gw_xcalloc(RELOAD_ERRORS_KEPT + 1, sizeof(*r->errors));
    for (const struct gw_diag *x = err != NULL ? err->head : NULL; x != NULL; x = x->next) {
        if (x->level != GW_DIAG_ERROR)
            continue;
        r->nerrors_all++;
        if (r->nerrors < RELOAD_ERRORS_KEPT) {
            diag_text(err, x, line, sizeof(line));
            r->errors[r->nerrors++] = gw_xstrdup(line);
        }
    }
    if (why != NULL) {
        r->nerrors_all++;
        r->errors[r->nerrors++] = gw_xstrdup(why);
    }
}

/* Opens the listen entries `g` adds and closes those it drops; unchanged ones keep their
 * sockets. All or nothing: when a new one cannot be bound, nothing changes. */
static int update_listeners(struct daemon *d, const struct gw_gateway *g)
{
    struct listen_set **next = gw_xcalloc(g->nlisten != 0 ? g->nlisten : 1, sizeof(*next));
    bool *kept = gw_xcalloc(d->nls != 0 ? d->nls : 1, sizeof(*kept));
    bool fresh_any = false;

    for (size_t i = 0; i < g->nlisten; i++) {
        for (size_t j = 0; j < d->nls && next[i] == NULL; j++) {
            if (!kept[j] && same_listen(&d->ls[j]->conf, &g->listen[i])) {
                next[i] = d->ls[j];
                kept[j] = true;
            }
        }
        if (next[i] == NULL) {
            next[i] = open_set(d, &g->listen[i]);
            if (next[i] == NULL) {
                for (size_t k = 0; k < i; k++) {
                    bool old = false;
                    for (size_t j = 0; j < d->nls; j++)
                        old |= next[k] == d->ls[j];
                    if (!old)
                        free_set(next[k], true, d->nworkers);
                }
                free(next);
                free(kept);
                return -1;
            }
            fresh_any = true;
            gw_log(GW_LOG_NOTICE, "reload: listening on %s:%u", next[i]->conf.address.p,
                   next[i]->port);
        }
    }
    for (unsigned w = 0; w < d->nworkers; w++) {
        struct gw_worker *wk = &d->workers[w];
        pthread_mutex_lock(&wk->ops_mu);
        for (size_t i = 0; fresh_any && i < g->nlisten; i++) {
            bool old = false;
            for (size_t j = 0; j < d->nls; j++)
                old |= next[i] == d->ls[j];
            if (!old) {
                struct gw_worker_listener *l = worker_listener(wk, next[i]);
                l->next = wk->ops_add;
                wk->ops_add = l;
            }
        }
        for (size_t j = 0; j < d->nls; j++) {
            if (kept[j])
                continue;
            wk->ops_remove =
                gw_xrealloc(wk->ops_remove, (wk->nops_remove + 1) * sizeof(*wk->ops_remove));
            wk->ops_remove[wk->nops_remove++] = d->ls[j]->id;
        }
        pthread_mutex_unlock(&wk->ops_mu);
    }
    for (size_t j = 0; j < d->nls; j++) {
        if (!kept[j]) {
            gw_log(GW_LOG_NOTICE, "reload: no longer listening on %s:%u", d->ls[j]->conf.address.p,
                   d->ls[j]->port);
            free_set(d->ls[j], false, d->nworkers); /* the workers close the sockets */
        }
    }
    free(d->ls);
    free(kept);
    d->ls = next;
    d->nls = g->nlisten;
    return 0;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct gw_err err;
    struct gw_snapshot *next;

    if (d->shutting_down)
        return;
    gw_err_init(&err, d->conf_path);
    next = gw_snapshot_load(d->conf_path, &err);
    log_errors(&err, GW_LOG_ERROR);
    if (next == NULL) {
        d->reloads_failed++;
        reload_record_set(d, false, &err, NULL);
        gw_log(GW_LOG_ERROR, "reload failed, keeping generation %llu: %u error(s) in %s",
               (unsigned long long)d->generation, err.nerr, d->conf_path);
        gw_err_dispose(&err);
        return;
    }
    gw_err_dispose(&err);
    /* all or nothing: every new address, proxy and status, is bound before anything changes */
    if (gw_status_prepare(d->status, &next->gateway) != 0 ||
        update_listeners(d, &next->gateway) != 0) {
        gw_status_abort(d->status);
        d->reloads_failed++;
        reload_record_set(d, false, NULL, "a new listener could not be opened (see the log)");
        gw_log(GW_LOG_ERROR,
               "reload failed, keeping generation %llu: a new listener could "
               "not be opened",
               (unsigned long long)d->generation);
        gw_snapshot_release(next);
        return;
    }
    gw_status_commit(d->status);
    gw_log_set_level((enum gw_log_level)next->gateway.log_level);
    if ((d->access_log_path == NULL) != (next->gateway.access_log.len == 0) ||
        (d->access_log_path != NULL && !gw_str_eqc(next->gateway.access_log, d->access_log_path)))
        reopen_access_log(d, &next->gateway);
    if (next->gateway.workers != d->nworkers)
        gw_log(GW_LOG_WARN, "reload: gateway.workers changed; it takes effect on restart");
    publish(d, next);
    d->reloads_ok++;
    d->last_load_ok = time(NULL);
    reload_record_set(d, true, NULL, NULL);
    for (unsigned i = 0; i < d->nworkers; i++)
        wake_worker(&d->workers[i]);
    gw_log(GW_LOG_NOTICE, "reload succeeded: generation %llu, config %s",
           (unsigned long long)d->generation, next->config_hash);
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    if (d->access_log_path != NULL && strcmp(d->access_log_path, "stdout") != 0) {
        struct gw_gateway g = {0};
        g.access_log = gw_str_c(d->access_log_path);
        reopen_access_log(d, &g);
        gw_log(GW_LOG_NOTICE, "access log reopened");
    }
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    if ((unsigned)atomic_load(&workers_done) == d->nworkers)
        event_base_loopexit(d->base, NULL);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    gw_log(GW_LOG_WARN, "shutdown: drain time is over, closing the remaining connections");
    for (unsigned i = 0; i < d->nworkers; i++) {
        atomic_store(&d->workers[i].exiting, true);
        wake_worker(&d->workers[i]);
    }
}

/* Stops accepting and lets in-flight requests finish for up to timeouts.shutdown. */
static void start_drain(struct daemon *d)
{
    struct timeval deadline = {(time_t)d->pub.cur->gateway.timeouts.shutdown, 0};
    struct timeval every = {0, 50 * 1000};

    d->draining = true;
    gw_log(GW_LOG_NOTICE, "shutdown: no longer accepting, draining for up to %u s",
           d->pub.cur->gateway.timeouts.shutdown);
    for (unsigned i = 0; i < d->nworkers; i++) {
        atomic_store(&d->workers[i].stop_accepting, true);
        wake_worker(&d->workers[i]);
    }
    d->drain_timer = evtimer_new(d->base, on_drain_deadline, d);
    evtimer_add(d->drain_timer, &deadline);
    d->check_timer = event_new(d->base, -1, EV_PERSIST, on_check, d);
    evtimer_add(d->check_timer, &every);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    start_drain(arg);
}

/* SIGTERM/SIGINT: not ready at once (GET /status/ready answers 503), still serving for
 * timeouts.shutdown_grace so that load balancers and Kubernetes endpoints stop sending, then
 * the drain. A second signal skips what is left of the grace, a third stops at once. */
static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    uint32_t grace = d->pub.cur->gateway.timeouts.shutdown_grace;
    struct timeval tv = {(time_t)grace, 0};

    if (d->draining) {
        on_drain_deadline(-1, 0, d); /* stop now */
        return;
    }
    if (d->shutting_down) {
        evtimer_del(d->grace_timer);
        start_drain(d);
        return;
    }
    d->shutting_down = true;
    gw_log(GW_LOG_NOTICE, "shutdown: %s received; not ready, serving for %u s more",
           sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
    if (grace == 0) {
        start_drain(d);
        return;
    }
    d->grace_timer = evtimer_new(d->base, on_grace_over, d);
    evtimer_add(d->grace_timer, &tv);
}

/* ---- start and stop ------------------------------------------------------------------------ */

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            gw_log(GW_LOG_WARN, "cannot raise the open files limit: %s", strerror(errno));
    }
}

static int write_file_atomically(const char *path, const char *text)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static void write_ready_file(struct daemon *d, const char *path)
{
    char buf[4096];
    size_t off = 0;

    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "{\"pid\": %ld, \"listen\": [",
                            (long)getpid());
    for (size_t i = 0; i < d->nls && off < sizeof(buf); i++) {
        bool v6 = strchr(d->ls[i]->conf.address.p, ':') != NULL;
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, v6 ? "%s\"[%s]:%u\"" : "%s\"%s:%u\"",
                                i ? ", " : "", d->ls[i]->conf.address.p, d->ls[i]->port);
    }
    if (off < sizeof(buf))
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "], \"status_listen\": [");
    if (off < sizeof(buf))
        off += gw_status_addresses(d->status, buf + off, sizeof(buf) - off);
    if (off < sizeof(buf))
        snprintf(buf + off, sizeof(buf) - off, "]}\n");
    if (write_file_atomically(path, buf) != 0)
        gw_log(GW_LOG_ERROR, "cannot write the ready file %s: %s", path, strerror(errno));
}

int gw_daemon_run(const char *conf_path, const char *ready_file, const char *pid_file)
{
    struct daemon d;
    struct gw_err err;
    struct gw_snapshot *snap;
    int rc = 1;

    memset(&d, 0, sizeof(d));
    d.conf_path = conf_path;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    /* http-parser's own header limit is process-wide: set it above any configurable
     * max_header_size so that ours (431) applies. */
    http_parser_set_max_header_size(4u << 20);
    gw_err_init(&err, conf_path);
    snap = gw_snapshot_load(conf_path, &err);
    log_errors(&err, GW_LOG_ERROR);
    gw_err_dispose(&err);
    if (snap == NULL) {
        gw_log(GW_LOG_ERROR, "configuration %s is invalid: not starting", conf_path);
        return 1;
    }
    gw_log_set_level((enum gw_log_level)snap->gateway.log_level);
    pthread_mutex_init(&d.pub.mu, NULL);
    atomic_init(&d.pub.generation, 0);
    d.pub.cur = NULL;
    publish(&d, snap);
    d.last_load_ok = time(NULL);
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        d.started_mono_s = (uint64_t)ts.tv_sec;
    }
    d.base = event_base_new();
    d.nworkers = snap->gateway.workers;
    /* one metrics shard per worker, and the main thread's */
    gw_metrics_init(d.nworkers + 1);
    gw_req_metrics_register();
    d.workers = gw_xcalloc(d.nworkers, sizeof(*d.workers));
    d.nls = snap->gateway.nlisten;
    d.ls = gw_xcalloc(d.nls, sizeof(*d.ls));
    for (size_t i = 0; i < d.nls; i++) {
        d.ls[i] = open_set(&d, &snap->gateway.listen[i]);
        if (d.ls[i] == NULL)
            goto out;
    }
    reopen_access_log(&d, &snap->gateway);
    atomic_store(&workers_done, 0);
    for (unsigned i = 0; i < d.nworkers; i++) {
        struct gw_worker *w = &d.workers[i];
        w->id = i;
        w->pub = &d.pub;
        w->base = event_base_new();
        pthread_mutex_lock(&d.pub.mu);
        w->snap = d.pub.cur;
        gw_snapshot_acquire(w->snap);
        w->generation = atomic_load(&d.pub.generation);
        pthread_mutex_unlock(&d.pub.mu);
        pthread_mutex_init(&w->ops_mu, NULL);
        w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->wake_fd < 0) {
            gw_log(GW_LOG_ERROR, "eventfd: %s", strerror(errno));
            goto out;
        }
        for (size_t j = d.nls; j-- > 0;) {
            struct gw_worker_listener *l = worker_listener(w, d.ls[j]);
            l->next = w->listeners;
            w->listeners = l;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            gw_log(GW_LOG_ERROR, "cannot start worker %u", i);
            goto out;
        }
    }
    for (unsigned i = 0; i < d.nworkers; i++)
        while (!atomic_load(&d.workers[i].ready))
            usleep(1000);
    d.status = gw_status_new(&d);
    if (d.status == NULL || gw_status_prepare(d.status, &snap->gateway) != 0)
        goto out;
    gw_status_commit(d.status);
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    d.sig_term = evsignal_new(d.base, SIGTERM, on_term, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_term, &d);
    d.sig_usr1 = evsignal_new(d.base, SIGUSR1, on_usr1, &d);
    event_add(d.sig_hup, NULL);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    event_add(d.sig_usr1, NULL);
    if (pid_file != NULL) {
        char pid[32];
        snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (write_file_atomically(pid_file, pid) != 0)
            gw_log(GW_LOG_ERROR, "cannot write the pid file %s: %s", pid_file, strerror(errno));
    }
    for (size_t i = 0; i < d.nls; i++)
        gw_log(GW_LOG_NOTICE, "listening on %s:%u", d.ls[i]->conf.address.p, d.ls[i]->port);
    if (ready_file != NULL)
        write_ready_file(&d, ready_file);
    gw_log(GW_LOG_NOTICE, "gatehouse %s started: %u worker(s), configuration generation %llu",
           GW_VERSION, d.nworkers, (unsigned long long)d.generation);
    event_base_dispatch(d.base);
    rc = 0;
    gw_log(GW_LOG_NOTICE, "shutdown complete");
out:
    for (unsigned i = 0; i < d.nworkers; i++) {
        struct gw_worker *w = &d.workers[i];
        if (w->thread != 0) {
            if (rc != 0) {
                atomic_store(&w->exiting, true);
                wake_worker(w);
            }
            pthread_join(w->thread, NULL);
        }
        if (w->base != NULL)
            event_base_free(w->base);
        gw_snapshot_release(w->snap);
        if (w->thread == 0) /* never started: its listeners are still here */
            while (w->listeners != NULL) {
                struct gw_worker_listener *l = w->listeners;
                w->listeners = l->next;
                l->lev = NULL;
                free(l); /* the descriptors are closed with their set below */
            }
        pthread_mutex_destroy(&w->ops_mu);
        if (w->wake_fd > 0)
            close(w->wake_fd);
    }
    for (size_t i = 0; i < d.nls; i++) /* the sockets belong to the workers by now */
        free_set(d.ls[i], rc != 0 && d.workers[0].thread == 0, d.nworkers);
    free(d.ls);
    free(d.workers);
    if (d.sig_hup != NULL) {
        event_free(d.sig_hup);
        event_free(d.sig_term);
        event_free(d.sig_int);
        event_free(d.sig_usr1);
    }
    if (d.drain_timer != NULL)
        event_free(d.drain_timer);
    if (d.check_timer != NULL)
        event_free(d.check_timer);
    if (d.grace_timer != NULL)
        event_free(d.grace_timer);
    gw_status_free(d.status);
    gw_metrics_reset(); /* the collectors point into `d` */
    reload_record_clear(&d.last_reload);
    event_base_free(d.base);
    pthread_mutex_lock(&d.pub.mu);
    gw_snapshot_release(d.pub.cur);
    pthread_mutex_unlock(&d.pub.mu);
    if (gw_access_log_fd() >= 0)
        close(gw_access_log_fd());
    free(d.access_log_path);
    if (pid_file != NULL && rc == 0)
        unlink(pid_file);
    return rc;
}
