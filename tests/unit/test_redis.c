/*
 * test_redis.c - unit tests for what serve's Redis backend computes
 * without a server: SHA-256 (src/util/sha256.c, the cache key) against
 * FIPS 180-4's vectors and lengths around the padding boundary, and the
 * URLs redis_url_parse() (src/serve/redis.c) takes and refuses.
 */
#include "aichat/redis.h"
#include "aichat/sha256.h"
#include "tap.h"

#include <string.h>

static const struct {
	const char *in;
	const char *hex;
} vectors[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
};

static const struct {
	const char *url;
	int ok;
	const char *host, *path, *password;
	int port, db;
	const char *shown;       /* or, when refused, a part of the message */
} urls[] = {
	{ "redis://127.0.0.1:6380/2", 1, "127.0.0.1", "", "", 6380, 2,
	  "redis://127.0.0.1:6380/2" },
	{ "redis://localhost", 1, "localhost", "", "", 6379, 0,
	  "redis://localhost:6379/0" },
	{ "redis://:s3cret@h:1/0", 1, "h", "", "s3cret", 1, 0,
	  "redis://:***@h:1/0" },
	{ "redis://user:pw@h", 1, "h", "", "pw", 6379, 0, "redis://:***@h:6379/0" },
	{ "unix:///tmp/r.sock", 1, "", "/tmp/r.sock", "", 6379, 0,
	  "unix:///tmp/r.sock" },
	{ "redis://h:65535", 1, "h", "", "", 65535, 0, "redis://h:65535/0" },
	{ "redis://h:65536", 0, 0, 0, 0, 0, 0, "the port must be 1 to 65535" },
	{ "redis://h:0", 0, 0, 0, 0, 0, 0, "the port must be 1 to 65535" },
	{ "redis://:pw@h:x", 0, 0, 0, 0, 0, 0, "(password hidden)" },
	{ "redis://", 0, 0, 0, 0, 0, 0, "no host" },
	{ "redis://h/db", 0, 0, 0, 0, 0, 0, "the database must be a number" },
	{ "rediss://h", 0, 0, 0, 0, 0, 0, "TLS" },
	{ "unix://rel", 0, 0, 0, 0, 0, 0, "absolute path" },
	{ "http://h", 0, 0, 0, 0, 0, 0, "expected redis://" },
};

int main(void)
{
	char hex[65], want[65];
	static char big[200];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		sha256_hex(vectors[i].in, strlen(vectors[i].in), hex);
		is_str(hex, vectors[i].hex, "sha256 vector %zu", i);
	}
	/* Lengths around one and two padding blocks all differ, and match
	 * byte-at-a-time differences: 55, 56, 63, 64, 65 bytes. */
	memset(big, 'a', sizeof(big));
	sha256_hex(big, 55, want);
	sha256_hex(big, 56, hex);
	ok(strcmp(hex, want) != 0, "sha256: 55 and 56 bytes differ");
	sha256_hex(big, 1000 / 10, hex);
	is_str(hex, "2816597888e4a0d3a36b82b83316ab32680eb8f00f8cd3b904d681246d285a0e",
	       "sha256: 100 x 'a'");
	sha256_hex(big, 64, hex);
	is_str(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
	       "sha256: 64 x 'a'");

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct redis_target t;
		struct err e;
		int rc;

		err_clear(&e);
		rc = redis_url_parse(urls[i].url, &t, &e);
		is_int(rc == 0, urls[i].ok, "url %s: accepted or refused", urls[i].url);
		if (!urls[i].ok) {
			ok(strstr(e.msg, urls[i].shown) != NULL,
			   "url %s: message '%s' names the fault", urls[i].url, e.msg);
			ok(!strstr(e.msg, "pw@"), "url %s: no password echoed", urls[i].url);
			continue;
		}
		is_str(t.host, urls[i].host, "url %s: host", urls[i].url);
		is_str(t.path, urls[i].path, "url %s: path", urls[i].url);
		is_str(t.password, urls[i].password, "url %s: password", urls[i].url);
		is_int(t.port, urls[i].port, "url %s: port", urls[i].url);
		is_int(t.db, urls[i].db, "url %s: db", urls[i].url);
		is_str(t.shown, urls[i].shown, "url %s: shown without password",
		       urls[i].url);
	}
	return tap_done();
}
