/*
 * fake_script.c - picks the response spec for each request from the script.
 *
 * The script is a JSONL file of response specs, re-read at every request so
 * a test may rewrite it while the fake runs.  Lines with a "match" string are
 * rules: the first whose string occurs in the raw request body answers that
 * request.  The other lines are a sequence: the k-th request no rule took
 * gets the k-th line, and the last line repeats once they run out.  The
 * position in the sequence is global (all connections) and goes back to the
 * first line whenever the file's content changes.  Blank lines are skipped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;
static char *last_text;  /* the content the sequence position refers to */
static size_t seq_next;  /* index of the next sequential line */

/* The whole file as an owned string; "" when it is missing or unreadable. */
static char *read_text(const char *path)
{
	struct fbuf b = { 0 };
	char tmp[8192];
	size_t n;
	FILE *f = path ? fopen(path, "rb") : NULL;

	if (f) {
		while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			fbuf_append(&b, tmp, n);
		fclose(f);
	}
	if (!b.ptr)
		return fake_xstrdup("");
	return b.ptr;
}

static cJSON *error_spec(int lineno)
{
	cJSON *spec = cJSON_CreateObject();
	cJSON *doc = cJSON_CreateObject();
	cJSON *err = cJSON_AddObjectToObject(doc, "error");
	char msg[128], *body;

	snprintf(msg, sizeof(msg), "fake: script line %d is not a JSON object", lineno);
	fprintf(stderr, "fake_upstream: %s\n", msg + 6);
	cJSON_AddStringToObject(err, "message", msg);
	cJSON_AddStringToObject(err, "type", "fake_script_error");
	cJSON_AddNullToObject(err, "code");
	body = cJSON_PrintUnformatted(doc);
	cJSON_AddNumberToObject(spec, "status", 500);
	cJSON_AddStringToObject(spec, "body", body);
	free(body);
	cJSON_Delete(doc);
	return spec;
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return 0;
	return 1;
}

cJSON *script_select(const char *path, const char *body)
{
	cJSON *seq = cJSON_CreateArray(), *rule = NULL, *item, *match, *spec;
	char *text, *line, *next;
	int lineno = 0, count;

	pthread_mutex_lock(&script_lock);
	text = read_text(path);
	if (!last_text || strcmp(text, last_text) != 0) {
		free(last_text);
		last_text = fake_xstrdup(text);
		seq_next = 0;
	}
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (blank(line))
			continue;
		item = cJSON_Parse(line);
		if (!cJSON_IsObject(item)) {
			cJSON_Delete(item);
			cJSON_Delete(rule);
			spec = error_spec(lineno);
			goto done;
		}
		match = cJSON_GetObjectItemCaseSensitive(item, "match");
		if (!match)
			cJSON_AddItemToArray(seq, item);
		else if (!rule && cJSON_IsString(match) && strstr(body, match->valuestring))
			rule = item;
		else
			cJSON_Delete(item);
	}
	count = cJSON_GetArraySize(seq);
	if (rule) {
		spec = rule;
	} else if (count > 0) {
		spec = cJSON_DetachItemFromArray(seq,
			seq_next < (size_t)count ? (int)seq_next : count - 1);
		seq_next++;
	} else {
		spec = cJSON_CreateObject();
	}
done:
	pthread_mutex_unlock(&script_lock);
	free(text);
	cJSON_Delete(seq);
	return spec;
}
