/*
 * schema.h - request contracts as data, and validation against them.
 *
 * Each request type is one table of fields (name, type, required, default,
 * bounds, enum, help).  The same table validates CLI flags (exit 2) and
 * HTTP bodies (422), and feeds --help, the man pages and OpenAPI.
 * Validation runs before anything touches the network.
 */
#ifndef AICHAT_SCHEMA_H
#define AICHAT_SCHEMA_H

#include <cJSON.h>
#include <stddef.h>

enum field_type {
	FIELD_STRING,
	FIELD_NUMBER,
	FIELD_INTEGER,
	FIELD_BOOL,
	FIELD_ARRAY,   /* of objects described by items */
	FIELD_OBJECT,  /* an object described by items */
	FIELD_ANY,     /* any JSON value; the field's check says which */
};

#define FIELD_NO_BOUND (-1.0)

struct schema;
struct verrors;

/* A check the table cannot say (a value that may be a string or an array,
 * a rule across fields): adds errors for value, found at loc ("messages.0"
 * or "stop"), to out. */
typedef void (*field_check_fn)(const cJSON *value, const char *loc,
			       struct verrors *out);

struct field {
	const char *name;
	enum field_type type;
	int required;
	const char *def;             /* default, as JSON text; NULL = none */
	double min, max;             /* value, characters or items; -1 = none */
	const char *const *enums;    /* allowed strings, NULL-terminated */
	const struct schema *items;  /* FIELD_ARRAY element / FIELD_OBJECT schema */
	const char *help;
};

struct schema {
	const char *name;            /* "ChatRequest" */
	const struct field *fields;
	size_t nfields;
};

/*
 * Checks the field tables cannot say, as one more table: for a field of a
 * schema (or, with field NULL, the whole object after its fields), a
 * check run when the field's own type checks passed, and for a FIELD_ANY
 * field the JSON types it may have ("string|array|null", for OpenAPI).
 * The list ends with a NULL schema.
 */
struct schema_check {
	const struct schema *schema;
	const char *field;
	field_check_fn check;
	const char *any_of;
};

extern const struct schema_check schema_checks[];
/* The entry for field of s (NULL: the whole object), or NULL. */
const struct schema_check *schema_check_of(const struct schema *s,
					   const char *field);
/* The entry of field f, wherever its table is, or NULL. */
const struct schema_check *schema_check_for(const struct field *f);

extern const struct schema schema_chat_request;
extern const struct schema schema_conversation_request;
extern const struct schema schema_message;
extern const struct schema schema_batch_request;
extern const struct schema schema_batch_item;
extern const struct schema schema_openai_chat_request;
extern const struct schema schema_openai_stream_options;
extern const struct schema schema_openai_message;
extern const struct schema schema_openai_tool;
extern const struct schema schema_openai_tool_call;
extern const struct schema schema_openai_response_format;
extern const struct schema schema_anthropic_request;
extern const struct schema schema_anthropic_message;
/* Most messages an OpenAI- or Anthropic-compatible request may hold. */
#define OPENAI_MAX_MESSAGES 10000
/* OpenAI's embeddings request (/v1/embeddings): at most this many inputs. */
extern const struct schema schema_openai_embeddings_request;
#define EMBEDDINGS_MAX_INPUTS 2048
extern const struct schema schema_rag_request;
extern const struct schema schema_rag_search_request;
extern const struct schema schema_job_request;

/* One failing field, in the shape FastAPI/Pydantic clients know. */
struct verror {
	char loc[160];       /* dotted path below the root: "messages.0.role" */
	char field[64];      /* last path element: "role" */
	char value[80];      /* the offending value, shortened; "" if missing */
	char msg[160];       /* "must be <= 2" */
	const char *type;    /* "less_than_equal", "missing", ... */
};

struct verrors {
	struct verror *v;
	size_t n;
};

/*
 * Checks obj against s, appending one verror per failing field (all of
 * them, not just the first) and filling in defaults of absent optional
 * fields.  obj may be any JSON value; a non-object is one error.  Returns
 * the number of errors added.  Unknown fields are left alone.
 */
size_t schema_validate(const struct schema *s, cJSON *obj, struct verrors *out);
void verrors_release(struct verrors *v);
/* Adds one error at loc (a dotted path; its last element is the field). */
void verrors_add(struct verrors *out, const char *loc, const cJSON *value,
		 const char *type, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
const struct field *schema_field(const struct schema *s, const char *name);
/*
 * A copy of s in which the fields named in names (NULL-terminated; at any
 * depth, so "content" reaches the messages of a conversation) have no
 * upper bound; every other bound, default and message stays.  The CLI
 * bounds the user's text by bytes and by the model's context, not by the
 * characters an HTTP route allows (DESIGN.md).  Owned: schema_free().
 */
struct schema *schema_lift(const struct schema *s, const char *const *names);
void schema_free(struct schema *s);
/* Number of UTF-8 characters in s. */
size_t utf8_length(const char *s);

#endif
