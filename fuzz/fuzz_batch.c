/*
 * fuzz_batch.c - JSONL batch lines, through `aichat batch` itself
 * (cmd_batch in src/cli/batch.c, which reads each line into a request or
 * an error result, and src/core/batch.c, which runs them).
 *
 * Input: one byte of options (concurrency, --unordered), then the JSONL
 * file.  Items run on the offline mock model; a line that names another
 * model gets a config error or a refused connection to 127.0.0.1:9, never
 * the network.  Properties: the exit status is 0, 5 or 2 (2 only when no
 * line is JSON); every non-blank line gives exactly one result line, in
 * input order unless --unordered, each a JSON object with id, content and
 * error, exactly one of content and error non-null, error a string
 * without control characters; an id a line gives (string or number) is
 * the id of its result.
 */
#include "fuzz.h"

#include "aichat/cli.h"
#include "aichat/json.h"
#include "aichat/trust.h"

#include <string.h>
#include <unistd.h>

static char dir[64], in_path[96], out_path[96];
static pid_t owner;

/* By the process that made it: replay's children share it. */
static void remove_dir(void)
{
	if (getpid() != owner)
		return;
	unlink(in_path);
	unlink(out_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/aichat-fuzz-batch-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(in_path, sizeof(in_path), "%s/in.jsonl", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.jsonl", dir);
	owner = getpid();
	atexit(remove_dir);
	setenv("AICHAT_HOME", dir, 1);
	setenv("XDG_CONFIG_HOME", dir, 1);
	unsetenv("AICHAT_CONFIG");
	unsetenv("AICHAT_MODEL");
	unsetenv("OPENAI_API_KEY");
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("AICHAT_MAX_PROMPT_BYTES");
	unsetenv("AICHAT_CONTEXT_BUDGET");
	setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", 1);
	setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9", 1);
	setenv("OLLAMA_HOST", "http://127.0.0.1:9", 1);
	setenv("AICHAT_MOCK_DELAY_MS", "0", 1);
	setenv("AICHAT_RETRY_BASE", "0", 1);
	setenv("AICHAT_CONNECT_TIMEOUT", "1", 1);
	return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	FUZZ_CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* Lines of the input, as the batch reads them: split at \n, trailing \r
 * dropped, blank when only spaces and tabs. */
struct line {
	const char *s;
	size_t n;
};

static size_t lines_of(const char *s, size_t n, struct line *out, size_t cap)
{
	size_t k = 0, at = 0;

	while (at < n && k < cap) {
		const char *nl = memchr(s + at, '\n', n - at);
		size_t len = nl ? (size_t)(nl - (s + at)) : n - at, b = 0;

		out[k].s = s + at;
		while (len && s[at + len - 1] == '\r')
			len--;
		out[k].n = len;
		while (b < len && (s[at + b] == ' ' || s[at + b] == '\t'))
			b++;
		if (b < len)
			k++;
		else
			out[k].s = NULL;
		at += (nl ? (size_t)(nl - (s + at)) + 1 : n - at);
	}
	return k;
}

#define MAX_LINES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_byte(&in);
	char jobs[8];
	char *argv[10];
	int argc = 0, status, unordered = opt & 0x10;
	struct line *lines;
	size_t nlines, nres = 0, parsed = 0;
	uint8_t *out;
	size_t outlen = 0, cap = 1 << 16;
	FILE *f;

	if (memchr(in.p, '\0', in.n))
		return 0;   /* the batch reads text lines */
	lines = calloc(MAX_LINES, sizeof(*lines));
	nlines = lines_of((const char *)in.p, in.n, lines, MAX_LINES);
	if (nlines == MAX_LINES) {
		free(lines);
		return 0;
	}
	write_file(in_path, in.p, in.n);
	snprintf(jobs, sizeof(jobs), "%u", 1 + (opt & 0x7));
	argv[argc++] = "-m";
	argv[argc++] = "mock:echo";
	argv[argc++] = "-j";
	argv[argc++] = jobs;
	if (unordered)
		argv[argc++] = "--unordered";
	argv[argc++] = "-o";
	argv[argc++] = out_path;
	argv[argc++] = in_path;
	argv[argc] = NULL;
	status = cmd_batch(argc, argv);
	FUZZ_CHECK(status == 0 || status == 5 || status == 2, "exit status %d", status);

	f = fopen(out_path, "rb");
	FUZZ_CHECK(f != NULL, "no output file");
	out = malloc(cap);
	for (size_t got; (got = fread(out + outlen, 1, cap - outlen, f)) > 0;) {
		outlen += got;
		if (outlen == cap)
			out = realloc(out, cap *= 2);
	}
	fclose(f);
	FUZZ_CHECK(outlen == 0 || out[outlen - 1] == '\n', "last result line unfinished");

	for (size_t at = 0; at < outlen; nres++) {
		const char *s = (const char *)out + at;
		const char *nl = memchr(s, '\n', outlen - at);
		size_t len = (size_t)(nl - s);
		cJSON *r = json_parse(s, len, NULL), *id, *content, *err;

		FUZZ_CHECK(r && cJSON_IsObject(r), "result %zu is not a JSON object: %.*s",
			   nres, (int)len, s);
		id = cJSON_GetObjectItemCaseSensitive(r, "id");
		content = cJSON_GetObjectItemCaseSensitive(r, "content");
		err = cJSON_GetObjectItemCaseSensitive(r, "error");
		FUZZ_CHECK(id && content && err, "result %zu lacks id, content or error", nres);
		FUZZ_CHECK(cJSON_IsNull(content) != cJSON_IsNull(err),
			   "result %zu: content and error: %.*s", nres, (int)len, s);
		if (cJSON_IsString(err))
			for (const char *p = err->valuestring; *p; p++)
				FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
					   "control byte in error '%s'", err->valuestring);
		if (!unordered && nres < nlines) {
			/* The id the line gave, if it parses and gives one. */
			cJSON *l = json_parse(lines[nres].s, lines[nres].n, NULL);
			const cJSON *lid = cJSON_GetObjectItemCaseSensitive(l, "id");

			if (l)
				parsed++;
			/* An id that is not valid text cannot be written back in
			 * valid JSON: such a line's result carries its line
			 * number instead. */
			if (cJSON_IsNumber(lid) ||
			    (cJSON_IsString(lid) &&
			     trust_utf8_invalid(lid->valuestring,
						strlen(lid->valuestring)) < 0)) {
				char *want = json_print(lid), *got = json_print(id);
				FUZZ_CHECK(!strcmp(want, got), "result %zu: id %s, line gave %s",
					   nres, got, want);
				free(want);
				free(got);
			}
			cJSON_Delete(l);
		}
		cJSON_Delete(r);
		at += len + 1;
	}
	FUZZ_CHECK(nres == nlines, "%zu non-blank lines, %zu results", nlines, nres);
	FUZZ_CHECK(status != 2 || unordered || parsed == 0,
		   "exit 2 with %zu JSON lines", parsed);
	free(out);
	free(lines);
	return 0;
}
