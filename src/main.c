/*
 * main.c - the command table, global flags and the exit status.
 *
 * After the command, writing stdout must have succeeded: a full disk or a
 * closed pipe is an error (exit 1), not a silent truncation.
 */
#include "aichat/cli.h"
#include "aichat/opt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const struct cli_command cli_commands[] = {
	{ "chat", cmd_chat, "chat with a model (one-shot; streams the answer)",
	  chat_opts, 0 },
	{ "rag", cmd_rag, "index local documents, search them, answer with sources",
	  rag_opts, 0 },
	{ "batch", cmd_batch, "run many prompts from JSONL, several at a time, one result per line",
	  batch_opts, 0 },
	{ "history", cmd_history, "list, show, search and remove logged conversations",
	  history_opts, 0 },
	{ "models", cmd_models, "list the models of the configured providers, and the aliases",
	  models_opts, 0 },
	{ "usage", cmd_usage, "tokens and cost of the logged exchanges, by day, model, provider or key",
	  usage_opts, 0 },
	{ "serve", cmd_serve, "serve the same features over HTTP (JSON, SSE, OpenAI-compatible)",
	  serve_opts, 0 },
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

static void usage(FILE *f)
{
	fputs("usage: aichat [--help] [--version] COMMAND [ARGS...]\n"
	      "\n"
	      "Fast terminal chat, shell pipelines and a local service for LLMs.\n"
	      "\n"
	      "commands:\n", f);
	for (size_t i = 0; i < cli_ncommands; i++)
		fprintf(f, "  %-10s%s\n", cli_commands[i].name, cli_commands[i].summary);
	fputs("\n"
	      "options:\n"
	      "  -h, --help                show this help and exit\n"
	      "  -V, --version             show the version and exit\n"
	      "\n"
	      "Run 'aichat COMMAND --help' for a command's options; man aichat for more.\n"
	      "Try it offline: aichat chat -m mock:echo hello\n", f);
}

static int finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			fprintf(stderr, "aichat: cannot write to stdout: %s\n",
				strerror(errno));
		return status ? status : EXIT_RUNTIME;
	}
	if (fclose(stdout) != 0 && status == 0) {
		fprintf(stderr, "aichat: cannot write to stdout: %s\n",
			strerror(errno));
		return EXIT_RUNTIME;
	}
	return status;
}

int main(int argc, char **argv)
{
	const char *cmd;
	const char *names[16];

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return finish(EXIT_OK);
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("aichat %s\n", AICHAT_VERSION);
		return finish(EXIT_OK);
	}
	for (size_t i = 0; i < cli_ncommands; i++)
		if (!strcmp(cmd, cli_commands[i].name))
			return finish(cli_commands[i].run(argc - 2, argv + 2));
	if (cmd[0] == '-') {
		fprintf(stderr, "aichat: unknown option '%.64s' (see 'aichat --help')\n", cmd);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < cli_ncommands && i < 16; i++)
		names[i] = cli_commands[i].name;
	const char *s = opt_suggest(cmd, names, cli_ncommands < 16 ? cli_ncommands : 16);
	if (s)
		fprintf(stderr, "aichat: unknown command '%.64s' (did you mean '%s'? see 'aichat --help')\n",
			cmd, s);
	else
		fprintf(stderr, "aichat: unknown command '%.64s' (see 'aichat --help')\n", cmd);
	return EXIT_USAGE;
}
