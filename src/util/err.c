/*
 * err.c - error codes, their names and the statuses they map to.
 *
 * The table is indexed by enum err_code; its order must follow the enum.
 */
#include "aichat/err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *name;
	int http;
	int exit;
} codes[ERR__COUNT] = {
	[ERR_OK]                   = { "ok", 200, EXIT_OK },
	[ERR_USAGE]                = { "usage", 400, EXIT_USAGE },
	[ERR_INVALID_REQUEST]      = { "invalid_request", 422, EXIT_USAGE },
	[ERR_CONFIG]               = { "config_error", 500, EXIT_CONFIG },
	[ERR_UNAUTHORIZED]         = { "unauthorized", 401, EXIT_PROVIDER },
	[ERR_UPSTREAM_AUTH]        = { "upstream_auth_failed", 502, EXIT_PROVIDER },
	[ERR_NOT_FOUND]            = { "not_found", 404, EXIT_RUNTIME },
	[ERR_METHOD_NOT_ALLOWED]   = { "method_not_allowed", 405, EXIT_USAGE },
	[ERR_PAYLOAD_TOO_LARGE]    = { "payload_too_large", 413, EXIT_USAGE },
	[ERR_RATE_LIMITED]         = { "rate_limited", 429, EXIT_PROVIDER },
	[ERR_QUOTA]                = { "insufficient_quota", 429, EXIT_PROVIDER },
	[ERR_UPSTREAM_ERROR]       = { "upstream_error", 502, EXIT_PROVIDER },
	[ERR_UPSTREAM_UNREACHABLE] = { "upstream_unreachable", 502, EXIT_PROVIDER },
	[ERR_UPSTREAM_TIMEOUT]     = { "upstream_timeout", 504, EXIT_PROVIDER },
	[ERR_UPSTREAM_PROTOCOL]    = { "upstream_protocol_error", 502, EXIT_PROVIDER },
	[ERR_OVERLOADED]           = { "overloaded", 503, EXIT_PROVIDER },
	[ERR_CANCELLED]            = { "cancelled", 499, EXIT_INTERRUPTED },
	[ERR_IO]                   = { "io_error", 500, EXIT_RUNTIME },
	[ERR_INTERNAL]             = { "internal_error", 500, EXIT_RUNTIME },
	[ERR_FORBIDDEN]            = { "forbidden", 403, EXIT_USAGE },
	[ERR_UNSUPPORTED_MEDIA]    = { "unsupported_media_type", 415, EXIT_USAGE },
	[ERR_HEADERS_TOO_LARGE]    = { "request_header_too_large", 431, EXIT_USAGE },
	[ERR_URI_TOO_LONG]         = { "uri_too_long", 414, EXIT_USAGE },
};

int err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void err_clear(struct err *e)
{
	e->code = ERR_OK;
	e->msg[0] = '\0';
}

const char *err_code_name(enum err_code code)
{
	return (unsigned)code < ERR__COUNT ? codes[code].name : "internal_error";
}

int err_http_status(enum err_code code)
{
	return (unsigned)code < ERR__COUNT ? codes[code].http : 500;
}

int err_exit_status(enum err_code code)
{
	return (unsigned)code < ERR__COUNT ? codes[code].exit : EXIT_RUNTIME;
}
