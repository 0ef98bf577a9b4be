#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level { GW_LOG_ERROR, GW_LOG_WARN, GW_LOG_NOTICE, GW_LOG_INFO, GW_LOG_DEBUG };

/* Process-wide minimum level (default NOTICE). */
void gw_log_set_level(enum gw_log_level level);

/* Parses `error`, `warn`, `notice`, `info`, `debug`; returns -1 for anything else. */
int gw_log_level_parse(const char *name, enum gw_log_level *out);

/* One line on stderr: `<ISO-8601 time> [level] message`. Never pass secrets. Thread-safe. */
__attribute__((format(printf, 2, 3))) void gw_log(enum gw_log_level level, const char *fmt, ...);

#endif
