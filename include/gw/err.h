#ifndef GW_ERR_H
#define GW_ERR_H

#include <stdarg.h>
#include <stdio.h>

struct gw_yaml;

/* A list of diagnostics (errors and warnings) collected while loading a configuration.
 * Validation goes on after an error so that every error of a file is reported at once.
 * Each entry carries the file, the line:column of the YAML node concerned (0 when unknown)
 * and the key path (`services[0].routes[1].paths[0]`). Messages never contain secrets. */
enum gw_diag_level { GW_DIAG_ERROR, GW_DIAG_WARN };

struct gw_diag {
    enum gw_diag_level level;
    unsigned line, col;
    char *path; /* may be empty */
    char *msg;
    struct gw_diag *next;
};

struct gw_err {
    const char *file; /* borrowed; shown in front of each diagnostic */
    struct gw_diag *head, **tail;
    unsigned nerr, nwarn;
};

void gw_err_init(struct gw_err *err, const char *file);
void gw_err_dispose(struct gw_err *err);

/* Adds an error at `node` (may be NULL) under `path` (may be NULL). Returns -1, so that
 * `return gw_err_at(...)` reads naturally. */
__attribute__((format(printf, 4, 5))) int gw_err_at(struct gw_err *err, const struct gw_yaml *node,
                                                    const char *path, const char *fmt, ...);
int gw_err_vat(struct gw_err *err, enum gw_diag_level level, unsigned line, unsigned col,
               const char *path, const char *fmt, va_list ap);

/* Adds a warning; the load still succeeds. */
__attribute__((format(printf, 4, 5))) void
gw_warn_at(struct gw_err *err, const struct gw_yaml *node, const char *path, const char *fmt, ...);

/* Adds an error with an explicit position (parsers, before nodes exist). Returns -1. */
__attribute__((format(printf, 4, 5))) int gw_err_pos(struct gw_err *err, unsigned line,
                                                     unsigned col, const char *fmt, ...);

/* Prints one line per diagnostic: `file:line:col: path: message` (warnings prefixed with
 * `warning: `), in the order they were found. */
void gw_err_print(const struct gw_err *err, FILE *out);

#endif
