#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gw/log.h"

static enum gw_log_level log_min = GW_LOG_NOTICE;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const log_names[] = {"error", "warn", "notice", "info", "debug"};

void gw_log_set_level(enum gw_log_level level)
{
    log_min = level;
}

int gw_log_level_parse(const char *name, enum gw_log_level *out)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
        if (strcmp(name, log_names[i]) == 0) {
            *out = (enum gw_log_level)i;
            return 0;
        }
    }
    return -1;
}

void gw_log(enum gw_log_level level, const char *fmt, ...)
{
    char when[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level > log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One lock per line keeps lines from different threads whole. */
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "%s.%03ldZ [%s] ", when, ts.tv_nsec / 1000000, log_names[level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_mu);
}
