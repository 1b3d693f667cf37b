/*
 * err.h - the one error type.
 *
 * A failing function returns -1 and fills the struct err passed as its last
 * argument (which may be NULL when the caller does not care).  The code is
 * stable (it is what scripts and HTTP clients see); the message is for
 * humans: lowercase, no trailing period, subject quoted, never a secret.
 * Each code maps to one HTTP status (serve) and one exit status (CLI).
 */
#ifndef AICHAT_ERR_H
#define AICHAT_ERR_H

enum err_code {
	ERR_OK = 0,
	ERR_USAGE,                /* bad command line */
	ERR_INVALID_REQUEST,      /* a field out of its bounds */
	ERR_CONFIG,               /* config file, missing key, unknown provider */
	ERR_UNAUTHORIZED,         /* client not authenticated (serve) */
	ERR_UPSTREAM_AUTH,        /* provider refused our key: 401/403 */
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_PAYLOAD_TOO_LARGE,
	ERR_RATE_LIMITED,         /* 429 that may be retried */
	ERR_QUOTA,                /* 429 insufficient_quota: never retried */
	ERR_UPSTREAM_ERROR,       /* provider answered with an error */
	ERR_UPSTREAM_UNREACHABLE, /* could not connect */
	ERR_UPSTREAM_TIMEOUT,
	ERR_UPSTREAM_PROTOCOL,    /* malformed stream, stream cut */
	ERR_OVERLOADED,           /* busy: 503/529 */
	ERR_CANCELLED,            /* Ctrl-C, client went away */
	ERR_IO,
	ERR_INTERNAL,
	ERR_FORBIDDEN,            /* serve: a Host not allowed */
	ERR_UNSUPPORTED_MEDIA,    /* serve: a body that is not JSON */
	ERR_HEADERS_TOO_LARGE,    /* serve: 431 */
	ERR_URI_TOO_LONG,         /* serve: 414 */
	ERR__COUNT
};

/* Exit statuses, as documented under EXIT STATUS in aichat(1). */
enum exit_status {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,
	EXIT_USAGE = 2,
	EXIT_CONFIG = 3,
	EXIT_PROVIDER = 4,
	EXIT_PARTIAL = 5,
	EXIT_INTERRUPTED = 130,
};

struct err {
	enum err_code code;
	char msg[256];
};

/* Fills e (when not NULL) and returns -1, for `return err_set(...)`. */
int err_set(struct err *e, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void err_clear(struct err *e);
/* Stable snake_case name of a code, e.g. "upstream_timeout". */
const char *err_code_name(enum err_code code);
/* HTTP status the code maps to in serve (422, 429, 502, ...). */
int err_http_status(enum err_code code);
/* Process exit status the code maps to in the CLI. */
int err_exit_status(enum err_code code);

#endif
