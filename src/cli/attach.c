/*
 * attach.c - files, provider parameters, schemas and thinking budgets for
 * `aichat chat`; see attach.h.
 */
#include "aichat/attach.h"
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void attach_init(struct attachments *a)
{
	buf_init(&a->text, 0);
	a->images = cJSON_CreateArray();
	a->bytes = 0;
}

void attach_release(struct attachments *a)
{
	buf_release(&a->text);
	cJSON_Delete(a->images);
	a->images = NULL;
}

/* The image type of p's first bytes, or NULL. */
static const char *image_type(const unsigned char *p, size_t n)
{
	if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
		return "image/jpeg";
	if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
		return "image/gif";
	if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
		return "image/webp";
	return NULL;
}

static int named_like_image(const char *path)
{
	static const char *const ext[] = { ".png", ".jpg", ".jpeg", ".gif", ".webp" };
	size_t n = strlen(path);

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcasecmp(path + n - k, ext[i]))
			return 1;
	}
	return 0;
}

/* Whether p[0, n) is UTF-8 text: no NUL, no malformed sequence. */
static int is_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 :
			   (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;

		if (!c || !k || i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

static void base64(struct buf *out, const unsigned char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 |
			     (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		char q[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63],
			      i + 1 < n ? tab[v >> 6 & 63] : '=',
			      i + 2 < n ? tab[v & 63] : '=' };
		buf_append(out, q, 4);
	}
}

/* A file name fit for a message (trust.h). */
static void shown(char *dst, size_t cap, const char *path)
{
	trust_clean(dst, cap, path, strlen(path));
}

static int read_all(int fd, struct buf *b, size_t max, int *over)
{
	char tmp[65536];
	ssize_t n;

	*over = 0;
	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (b->len + (size_t)n > max) {
			*over = 1;
			return 0;
		}
		buf_append(b, tmp, (size_t)n);
	}
}

int attach_file(struct attachments *a, const char *path, size_t max,
		struct err *e)
{
	struct buf data;
	char name[256];
	const char *type;
	int fd, over = 0, rc = -1;

	shown(name, sizeof(name), path);
	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot read '%s': %s", name, strerror(errno));
	buf_init(&data, 0);
	if (read_all(fd, &data, max, &over) < 0) {
		err_set(e, ERR_IO, "cannot read '%s': %s", name, strerror(errno));
		goto cleanup;
	}
	if (over) {
		err_set(e, ERR_INVALID_REQUEST,
			"'%s' does not fit: the prompt may have %zu more bytes, and the file has more",
			name, max);
		goto cleanup;
	}
	type = image_type((const unsigned char *)data.ptr, data.len);
	if (type) {
		struct buf url;
		cJSON *part = cJSON_CreateObject();

		buf_init(&url, 0);
		buf_printf(&url, "data:%s;base64,", type);
		base64(&url, (const unsigned char *)data.ptr, data.len);
		cJSON_AddStringToObject(part, "type", "image_url");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(part, "image_url"),
					"url", url.ptr);
		cJSON_AddItemToArray(a->images, part);
		buf_release(&url);
	} else if (named_like_image(path)) {
		err_set(e, ERR_INVALID_REQUEST,
			"'%s' is not an image: its bytes are not PNG, JPEG, GIF or WebP",
			name);
		goto cleanup;
	} else if (is_text((const unsigned char *)data.ptr, data.len)) {
		buf_printf(&a->text, "\n\n==> %s <==\n", strcmp(path, "-") ? name : "stdin");
		buf_append(&a->text, data.ptr, data.len);
	} else {
		err_set(e, ERR_INVALID_REQUEST,
			"'%s' is neither UTF-8 text nor an image (PNG, JPEG, GIF, WebP)",
			name);
		goto cleanup;
	}
	a->bytes += data.len;
	rc = 0;
cleanup:
	if (fd != STDIN_FILENO)
		close(fd);
	buf_release(&data);
	return rc;
}

void attach_images(const struct attachments *a, struct chat_request *req)
{
	struct chat_message *m = NULL;
	cJSON *msg, *parts, *text;

	if (!cJSON_GetArraySize(a->images))
		return;
	for (size_t i = req->nmessages; i-- > 0;)
		if (!strcmp(req->messages[i].role, "user")) {
			m = &req->messages[i];
			break;
		}
	if (!m)
		return;
	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "role", "user");
	parts = cJSON_AddArrayToObject(msg, "content");
	text = cJSON_CreateObject();
	cJSON_AddStringToObject(text, "type", "text");
	cJSON_AddStringToObject(text, "text", m->content);
	cJSON_AddItemToArray(parts, text);
	for (const cJSON *p = a->images->child; p; p = p->next)
		cJSON_AddItemToArray(parts, cJSON_Duplicate(p, 1));
	cJSON_Delete((cJSON *)m->json);
	m->json = msg;
}

static cJSON *extra_of(cJSON **extra)
{
	if (!*extra)
		*extra = cJSON_CreateObject();
	return *extra;
}

int attach_option(cJSON **extra, const char *kv, struct err *e)
{
	static const struct { const char *key, *instead; } own[] = {
		{ "model", "-m" }, { "messages", "the prompt" },
		{ "stream", "--no-stream" },
	};
	const char *eq = strchr(kv, '=');
	char key[128];
	cJSON *v;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return err_set(e, ERR_USAGE,
			       "invalid value '%.64s' for '--option': expected KEY=VALUE", kv);
	snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (!strcmp(key, own[i].key))
			return err_set(e, ERR_USAGE,
				       "'--option %s' is aichat's to set: use %s",
				       key, own[i].instead);
	v = json_parse(eq + 1, strlen(eq + 1), NULL);
	if (!v)
		v = cJSON_CreateString(eq + 1);
	cJSON_DeleteItemFromObjectCaseSensitive(extra_of(extra), key);
	cJSON_AddItemToObject(*extra, key, v);
	return 0;
}

int attach_schema(cJSON **extra, const char *arg, struct err *e)
{
	cJSON *schema, *rf, *js;
	struct buf text;
	int over = 0;

	buf_init(&text, 0);
	/* JSON text starts with a bracket; anything else names a file. */
	if (strchr("{[", arg[strspn(arg, " \t\r\n")]) && arg[strspn(arg, " \t\r\n")]) {
		buf_appends(&text, arg);
	} else {
		int fd = open(arg, O_RDONLY | O_CLOEXEC);
		char name[256];

		shown(name, sizeof(name), arg);
		if (fd < 0 || read_all(fd, &text, 4u << 20, &over) < 0 || over) {
			int err = errno;
			if (fd >= 0)
				close(fd);
			buf_release(&text);
			return over ? err_set(e, ERR_USAGE, "schema file '%s' is larger than 4 MiB", name) :
			       err_set(e, ERR_IO, "cannot read schema file '%s': %s", name,
				       strerror(err));
		}
		close(fd);
	}
	schema = json_parse(text.ptr, text.len, NULL);
	buf_release(&text);
	if (!cJSON_IsObject(schema)) {
		cJSON_Delete(schema);
		return err_set(e, ERR_USAGE,
			       "invalid value for '--schema': expected a JSON Schema object, or a file holding one");
	}
	rf = cJSON_CreateObject();
	cJSON_AddStringToObject(rf, "type", "json_schema");
	js = cJSON_AddObjectToObject(rf, "json_schema");
	cJSON_AddStringToObject(js, "name", "output");
	cJSON_AddItemToObject(js, "schema", schema);
	cJSON_DeleteItemFromObjectCaseSensitive(extra_of(extra), "response_format");
	cJSON_AddItemToObject(*extra, "response_format", rf);
	return 0;
}

int attach_thinking(cJSON **extra, long budget, const char *kind,
		    const char *model, int *max_tokens, struct err *e)
{
	const struct model_family *f = model_family(kind, model);
	cJSON *t;

	if (!(f->flags & FAMILY_THINKING))
		return err_set(e, ERR_USAGE,
			       "'--thinking' is for models that take a thinking budget (Anthropic's), not %s (%s); for OpenAI reasoning models try -o reasoning_effort=high",
			       model, f->name);
	if (*max_tokens == 0)
		*max_tokens = (int)budget + 4096;
	else if (*max_tokens <= budget)
		return err_set(e, ERR_USAGE,
			       "'--max-tokens' (%d) must be larger than '--thinking' (%ld): the answer comes after the thinking",
			       *max_tokens, budget);
	t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "type", "enabled");
	cJSON_AddNumberToObject(t, "budget_tokens", (double)budget);
	cJSON_DeleteItemFromObjectCaseSensitive(extra_of(extra), "thinking");
	cJSON_AddItemToObject(*extra, "thinking", t);
	return 0;
}
