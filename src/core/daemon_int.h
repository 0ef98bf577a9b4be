#ifndef GW_DAEMON_INT_H
#define GW_DAEMON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gw/config.h"
#include "gw/worker.h"

/* Internals shared by the main thread's files: daemon.c (signals, reloads, workers) and
 * status.c (the status listener). Everything here belongs to the main thread. */

struct event_base;
struct event;
struct gw_status;
struct gw_err;

struct listen_set {
    unsigned id;
    struct gw_listen conf; /* address owned (strdup) */
    uint16_t port;         /* the bound port (differs from conf.port when that is 0) */
    int *fds;              /* one per worker, handed to the workers */
};

/* The outcome of the last SIGHUP reload, for GET /status. */
struct reload_record {
    bool done;          /* a reload was attempted */
    bool ok;            /* ... and succeeded */
    time_t at;          /* wall clock */
    char **errors;      /* malloc'd lines, `file:line:col: path: message` */
    size_t nerrors;     /* kept (at most RELOAD_ERRORS_KEPT) */
    size_t nerrors_all; /* reported */
};

#define RELOAD_ERRORS_KEPT 50

struct daemon {
    const char *conf_path;
    struct event_base *base;
    struct gw_publisher pub;
    struct gw_worker *workers;
    unsigned nworkers;
    struct listen_set **ls;
    size_t nls;
    unsigned next_set_id;
    struct event *sig_hup, *sig_term, *sig_int, *sig_usr1, *drain_timer, *check_timer;
    struct event *grace_timer;
    bool shutting_down; /* SIGTERM received: not ready */
    bool draining;      /* accepting stopped */
    char *access_log_path;
    uint64_t generation;
    unsigned reloads_ok, reloads_failed;
    uint64_t started_mono_s; /* CLOCK_MONOTONIC: uptime */
    time_t last_load_ok;     /* wall clock of the running configuration's load */
    struct reload_record last_reload;
    struct gw_status *status;
};

/* A non-blocking listening socket for `l` on `port` (SO_REUSEPORT), or -1 with a reason. */
int gw_daemon_socket(const struct gw_listen *l, uint16_t port, char *err, size_t errlen);

/* The running snapshot (the main thread's view). */
static inline const struct gw_snapshot *gw_daemon_snapshot(const struct daemon *d)
{
    return d->pub.cur;
}

/* ---- status.c ---- */

/* The status listener on the main thread's loop, and the metric families it serves that
 * describe the daemon (connections, reloads, generation). NULL when libevent fails. */
struct gw_status *gw_status_new(struct daemon *d);
void gw_status_free(struct gw_status *st);
/* Reconciles the bound status addresses with `g`'s in two steps, so that a reload stays all or
 * nothing: prepare binds what is new (nothing changes on failure: -1, logged); commit then
 * serves it and closes what `g` dropped, abort closes what prepare bound. */
int gw_status_prepare(struct gw_status *st, const struct gw_gateway *g);
void gw_status_commit(struct gw_status *st);
void gw_status_abort(struct gw_status *st);
/* Appends the bound addresses as JSON strings, comma-separated, for the ready file. */
size_t gw_status_addresses(const struct gw_status *st, char *buf, size_t size);

#endif
