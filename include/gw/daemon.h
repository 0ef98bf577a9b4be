#ifndef GW_DAEMON_H
#define GW_DAEMON_H

/* Runs gatehouse in the foreground on `conf_path` until SIGTERM/SIGINT and the drain that
 * follows. `ready_file` (may be NULL) receives, once every worker accepts, a JSON object with
 * the pid and the bound listen addresses (ports chosen by the kernel when configured as 0);
 * `pid_file` (may be NULL) the pid. Returns the process exit status: 0 after a clean
 * shutdown, 1 when the configuration is invalid or a listener cannot be opened. */
int gw_daemon_run(const char *conf_path, const char *ready_file, const char *pid_file);

#endif
