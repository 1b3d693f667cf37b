/*
 * dynlib.h - shared libraries loaded on first use.
 *
 * libcurl (with its TLS, Kerberos, LDAP, ... dependencies) and
 * libmicrohttpd (with GnuTLS) take about 3.5 ms to load, several times
 * what a one-shot `aichat chat -m mock:echo`, `aichat history` or
 * `aichat rag search` spends on everything else.  So they are not linked
 * but opened when the first transfer starts (engine) and when serve
 * starts (server), and their functions are called through pointers
 * resolved then, whose types come from the libraries' own headers.
 */
#ifndef AICHAT_DYNLIB_H
#define AICHAT_DYNLIB_H

#include <stddef.h>

#include "aichat/err.h"

/* A function to resolve: its name and where its address goes. */
struct dynlib_sym {
	const char *name;
	void **slot;
};

/*
 * Opens the library soname (kept open for the life of the process) and
 * fills every slot.  -1 with e (ERR_CONFIG) naming the library and what
 * is missing; the slots are then untouched.
 */
int dynlib_load(const char *soname, const struct dynlib_sym *syms, size_t n,
		struct err *e);

#endif
