/*
 * keycmd.h - API keys printed by a command: a provider's "api_key_cmd".
 *
 * The command runs through /bin/sh -c, its standard input /dev/null, its
 * standard error the process's own; its standard output, trimmed of
 * trailing newlines, is the key.  It runs at most once per process for a
 * provider and command: the key, or the failure, is kept for every later
 * call (the items of a batch, the requests of a server).  The key is never
 * printed; messages name the provider and the exit status, never what the
 * command printed.
 */
#ifndef AICHAT_KEYCMD_H
#define AICHAT_KEYCMD_H

#include "aichat/err.h"

/*
 * The key printed by cmd for provider into *key (owned by the cache,
 * valid until the process ends).  Returns -1 with e (ERR_CONFIG) when the
 * command cannot run, exits with a non-zero status or by a signal, prints
 * nothing, more than one line, a control character or more than 64 KiB.
 * Thread-safe.
 */
int keycmd_get(const char *provider, const char *cmd, const char **key,
	       struct err *e);

#endif
