/*
 * routes_playground.c - the playground: a chat page in the browser at
 * GET /, with its script and stylesheet, all three embedded in the binary
 * at build time (tools/embed.sh, from src/serve/playground.*).
 *
 * The page talks only to this server's API (/v1/models,
 * /v1/chat/completions, /rag/collections, /rag/query).  Its policy allows
 * nothing else: no inline script or style, no other origin, no frames;
 * model output is put in the page as text, never as markup (see
 * playground.js), so that even a policy bypass has nothing to run.
 */
#include "internal.h"

#include <string.h>

extern const unsigned char playground_html[], playground_js[], playground_css[];
extern const size_t playground_html_len, playground_js_len, playground_css_len;

#define PLAYGROUND_CSP \
	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"

void route_playground(struct req *r)
{
	const unsigned char *body = playground_html;
	size_t len = playground_html_len;
	const char *type = "text/html; charset=utf-8";
	struct MHD_Response *resp;

	if (!strcmp(r->route->path, "/playground.js")) {
		body = playground_js;
		len = playground_js_len;
		type = "text/javascript; charset=utf-8";
	} else if (!strcmp(r->route->path, "/playground.css")) {
		body = playground_css;
		len = playground_css_len;
		type = "text/css; charset=utf-8";
	}
	resp = make_response(type, (const char *)body, len);
	mhd.add_response_header(resp, "Content-Security-Policy", PLAYGROUND_CSP);
	mhd.add_response_header(resp, "X-Content-Type-Options", "nosniff");
	mhd.add_response_header(resp, "Referrer-Policy", "no-referrer");
	mhd.add_response_header(resp, "Cache-Control", "no-cache");
	send_response(r, 200, resp);
}
