#ifndef GW_ACCESS_LOG_H
#define GW_ACCESS_LOG_H

struct gw_worker;

/* The access log descriptor shared by all workers (-1: off). The main thread opens it and
 * replaces it in place with dup2() on SIGUSR1 or when the path changes on reload. */
void gw_access_log_set_fd(int fd);
int gw_access_log_fd(void);

/* Writes out a worker's buffered lines (worker thread; on its 1 s tick and at exit). */
void gw_access_log_flush(struct gw_worker *w);
/* Flushes and frees the worker's buffer. */
void gw_access_log_free(struct gw_worker *w);

#endif
