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

#include "aichat/err.h"
#include "aichat/opt.h"

int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_history(int argc, char **argv);

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

#endif
