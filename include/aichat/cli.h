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
 * Exchanges are logged in conversation cid when db is not NULL.
 */
int repl_run(const struct config *cfg, struct chat_request *conv,
	     const struct llm_opts *lo, sqlite3 *db, char cid[CONVLOG_ID_MAX],
	     int verbose);

/* Drops the oldest messages of req past the model's context budget and
 * says so on stderr. */
void cli_fit_budget(const struct config *cfg, struct chat_request *req);

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
extern const struct opt batch_opts[];
extern const size_t batch_nopts;
extern const struct opt serve_opts[];
extern const size_t serve_nopts;
extern const struct opt rag_opts[];
extern const size_t rag_nopts;
extern const struct opt models_opts[];
extern const size_t models_nopts;

#endif
