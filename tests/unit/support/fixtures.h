#ifndef GW_TEST_FIXTURES_H
#define GW_TEST_FIXTURES_H

#include <stdbool.h>

#include "gw/config.h"
#include "gw/err.h"

/* Loads a snapshot from YAML text; NULL on failure, errors kept for fx_errors(). */
struct gw_snapshot *fx_snapshot(const char *yaml);

/* Loads and expects failure; returns the printed diagnostics (static buffer), or NULL when the
 * document loaded. */
const char *fx_errors(const char *yaml);

/* Same for JSON text. */
const char *fx_errors_json(const char *json);

/* The diagnostics (errors and warnings) printed by the last fx_* call. */
const char *fx_last_output(void);

/* cmocka teardown: releases the snapshot in *state. */
int fx_teardown(void **state);

#endif
