#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;
struct evconnlistener;
struct evdns_base;
struct gw_snapshot;
struct gw_map;
struct gw_conn;
struct gw_upstream_pools;
struct gw_access_log;
struct gw_req_metrics;

/* The configuration publisher: the main thread swaps `cur` under `mu` and bumps `generation`;
 * workers notice the new generation at a safe point and take their own reference
 * (reference/dependencies.md §0.3). A bare atomic pointer would be a use-after-free race. */
struct gw_publisher {
    pthread_mutex_t mu;
    struct gw_snapshot *cur; /* holds one reference */
    atomic_uint_fast64_t generation;
};

/* What a worker counts for the status listener: written by the worker only (gw_stat_add),
 * read by the main thread. Connection states as nginx's stub_status: `reading` a request
 * head, `writing` (a request in progress: proxying, answering, tunnelling); the rest of
 * `active` is `waiting` (idle keep-alive). */
struct gw_worker_stats {
    atomic_uint_fast64_t accepted, handled, requests;
    atomic_uint_fast64_t active, reading, writing;
    atomic_uint_fast64_t heartbeat; /* CLOCK_MONOTONIC seconds of the last tick */
    atomic_bool exited;             /* the worker's loop has ended */
};

/* One listening socket of one worker (worker thread only, once the worker runs). */
struct gw_worker_listener {
    struct gw_worker *w;
    unsigned set_id; /* the daemon's listen entry this socket belongs to */
    int fd;
    struct evconnlistener *lev;
    uint16_t port; /* the bound port (connections' local port) */
    bool ssl, proxy_protocol;
    struct gw_worker_listener *next;
};

/* A worker thread: its own event loop, listeners, connections and upstream pools. Everything
 * here is touched by its own thread only, except the atomics and `wake_fd`, which the main
 * thread uses to hand it messages. */
struct gw_worker {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    struct evdns_base *dns;
    int wake_fd;            /* eventfd the main thread writes to wake the worker */
    struct event *wake;     /* reads wake_fd: reload, shutdown, listener changes */
    struct event *tick;     /* 1 s timer: access-log flush, pool housekeeping */
    struct event *pause_ev; /* re-enables accepting after EMFILE */
    struct gw_publisher *pub;
    struct gw_snapshot *snap; /* this worker's reference */
    uint64_t generation;
    struct gw_worker_listener *listeners;
    /* listener changes from a reload, handed over by the main thread under ops_mu */
    pthread_mutex_t ops_mu;
    struct gw_worker_listener *ops_add;
    unsigned *ops_remove;
    size_t nops_remove;
    struct gw_conn *conns; /* every open downstream connection (doubly linked) */
    size_t nconns;         /* open connections */
    struct gw_upstream_pools *pools;
    struct gw_access_log *alog;
    bool accept_paused;         /* listeners disabled (max_connections or EMFILE) */
    atomic_bool stop_accepting; /* set by the main thread on shutdown */
    atomic_bool exiting;        /* set by the main thread after the drain deadline */
    atomic_bool ready;          /* set by the worker once it accepts */
    struct gw_worker_stats stats;
    struct gw_req_metrics *req_metrics; /* cached series handles (req_metrics.c) */
};

/* Takes the published snapshot if it changed since the worker last looked. Cheap (one
 * atomic load) when nothing changed. Worker thread only. */
void gw_worker_refresh(struct gw_worker *w);

/* Called by connection code when a connection closes or finishes a request, so that a
 * draining worker can exit once it is idle. */
void gw_worker_maybe_done(struct gw_worker *w);

#endif
