/*
 * cli.h - the terminal face: one entry point per command.
 *
 * Each cmd_* takes the arguments after the command name and returns the
 * process exit status (enum exit_status).  Messages go to stderr as
 * "aichat: <command>: <message>".
 */
#ifndef AICHAT_CLI_H
#define AICHAT_CLI_H

#include <stddef.h>

#include "aichat/chat.h"
#include "aichat/convlog.h"
#include "aichat/err.h"
#include "aichat/opt.h"

int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_rag(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_usage(int argc, char **argv);

enum cli_output {
	CLI_STREAM,   /* the answer to stdout as it arrives (styled on a tty) */
	CLI_JSON,     /* one ChatResponse object at the end */
	CLI_QUIET,    /* nothing: the caller prints from *out */
};

/*
 * One chat request on a fresh loop, SIGINT/SIGTERM stopping it; messages
 * on stderr as "aichat: CMD: ...".  The result, partial when interrupted,
 * is left in *out (content owned by the caller).  Returns the exit status.
 * Shared by `aichat chat`, the interactive chat and `aichat rag query`.
 */
int cli_chat_once(const char *cmd, const struct config *cfg,
		  const struct chat_request *req, const struct llm_opts *lo,
		  enum cli_output mode, int verbose, struct chat_result *out);

/*
 * The interactive chat on the terminal, starting from conv (its model,
 * system, temperature and any earlier messages; taken over and emptied).
 * Exchanges are logged in conversation cid when db is not NULL; logged is
 * the system prompt that conversation has in the log (NULL if none).
 */
int repl_run(const struct config *cfg, struct chat_request *conv,
	     const struct llm_opts *lo, sqlite3 *db, char cid[CONVLOG_ID_MAX],
	     const char *logged, int verbose);

/*
 * The system prompt to record with an exchange of conversation cid
 * (convlog_record): system itself for a new conversation (cid empty),
 * NULL when it is still logged, "" when it was cleared.
 */
const char *cli_system_change(const char *cid, const char *system,
			      const char *logged);
/* A CLI copy of an HTTP table (schema_lift): the user's text (prompt,
 * system, messages and their content, query) bounded by bytes instead. */
struct schema *cli_schema_lift(const struct schema *s);

/* ---- bounds of what is sent (prompt.c) ---- */

/* The byte cap of one prompt (config_max_prompt_bytes). */
struct cli_limit {
	size_t max;
	const char *source;  /* for messages: "max_prompt_bytes", ... */
};

/* l from the environment and cfg; -1 with e (ERR_CONFIG). */
int cli_limit_load(const struct config *cfg, struct cli_limit *l,
		   struct err *e);
/*
 * -1 with e (ERR_INVALID_REQUEST) when n bytes of what ("the prompt")
 * pass the cap, or when more says that n is only a lower bound:
 * "the prompt is 17.0 MiB (17825792 bytes), over the 16 MiB limit
 * (max_prompt_bytes)".
 */
int cli_limit_check(const struct cli_limit *l, const char *what, size_t n,
		    int more, struct err *e);
/*
 * Reads stdin to its end onto b, whose earlier content counts toward l
 * unless stdin is empty (b may end with a separator the caller drops
 * then).  Holds at most l->max bytes and one read: past the cap, the rest
 * is read and counted (up to 1 GiB more) but not kept.  -1 with e: past
 * the cap (as cli_limit_check, naming what), or a read error (ERR_IO).
 */
int cli_read_stdin(struct buf *b, const struct cli_limit *l, const char *what,
		   struct err *e);
/*
 * -1 with e (ERR_INVALID_REQUEST) when req (system prompt and messages)
 * is past the context budget of its model (config_context_budget).
 */
int cli_check_budget(const struct config *cfg, const struct chat_request *req,
		     struct err *e);
/*
 * Drops the oldest messages of req past the budget, saying so on stderr
 * as "aichat: CMD: ..."; then -1 with e as cli_check_budget when what
 * stays (the system prompt and the last message) is still past it.
 */
int cli_fit_budget(const char *cmd, const struct config *cfg,
		   struct chat_request *req, struct err *e);

/*
 * -1 with e (ERR_INVALID_REQUEST) when n bytes of s, named what ("the
 * prompt"), hold a NUL or malformed UTF-8, saying at which byte: text
 * is refused rather than sent cut short or mangled.
 */
int cli_text_check(const char *what, const char *s, size_t n,
		   struct err *e);

/* Prints "aichat: cmd: msg" to stderr and returns the exit status. */
int cli_fail(const char *cmd, const struct err *e);

/* Options of a command, for --help and the docs test. */
struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const struct opt *opts;
	size_t nopts;
};

extern const struct cli_command cli_commands[];
extern const size_t cli_ncommands;

extern const struct opt chat_opts[];
extern const size_t chat_nopts;
extern const struct opt history_opts[];
extern const size_t history_nopts;
extern const struct opt usage_opts[];
extern const size_t usage_nopts;
extern const struct opt batch_opts[];
extern const size_t batch_nopts;
extern const struct opt serve_opts[];
extern const size_t serve_nopts;
extern const struct opt rag_opts[];
extern const size_t rag_nopts;
extern const struct opt models_opts[];
extern const size_t models_nopts;

#endif
