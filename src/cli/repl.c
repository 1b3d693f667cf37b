/*
 * repl.c - the interactive chat: `aichat chat` bare on a terminal.
 *
 * Line editing, history and bracketed paste come from GNU readline; the
 * replies stream through the same one-shot path as `aichat chat`
 * (cli_chat_once), which owns SIGINT while a reply runs: Ctrl-C then stops
 * that reply and keeps the conversation.  At the prompt, Ctrl-C clears
 * the line and Ctrl-D leaves.  Every exchange is logged like a one-shot
 * chat, in one conversation until /clear.
 */
#include "aichat/cli.h"
#include "aichat/convlog.h"
#include "aichat/json.h"
#include "aichat/store.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

static const char *const commands[] = {
	"/help", "/model", "/system", "/temperature", "/clear", "/retry",
	"/save", "/load", "/history", "/exit", NULL
};

static const char *const models[] = {
	"mock:echo", "openai:gpt-4o-mini", "openai:gpt-4o",
	"anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5",
	"ollama:llama3.2", NULL
};

static volatile sig_atomic_t got_sigint;
static const struct config *cur_cfg;

static void on_sigint(int sig)
{
	(void)sig;
	got_sigint = 1;
}

/* Called by readline when a read was interrupted: Ctrl-C clears the
 * line and starts a fresh prompt. */
static int signal_hook(void)
{
	if (got_sigint) {
		got_sigint = 0;
		rl_replace_line("", 0);
		rl_crlf();
		rl_on_new_line();
		rl_redisplay();
	}
	return 0;
}

/* ---- tab completion ---- */

static char *complete_from(const char *const *list, const char *text, int state)
{
	static size_t i, len;

	if (!state) {
		i = 0;
		len = strlen(text);
	}
	for (; list[i]; i++)
		if (!strncmp(list[i], text, len))
			return xstrdup(list[i++]);
	return NULL;
}

static char *command_gen(const char *text, int state)
{
	return complete_from(commands, text, state);
}

static char *model_gen(const char *text, int state)
{
	static size_t alias;
	char *m = complete_from(models, text, state);

	if (!state)
		alias = 0;
	if (m)
		return m;
	for (; cur_cfg && alias < cur_cfg->naliases; alias++)
		if (!strncmp(cur_cfg->aliases[alias].name, text, strlen(text)))
			return xstrdup(cur_cfg->aliases[alias++].name);
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;   /* never file names */
	if (start == 0 && text[0] == '/')
		return rl_completion_matches(text, command_gen);
	if (!strncmp(rl_line_buffer, "/model ", 7))
		return rl_completion_matches(text, model_gen);
	return NULL;
}

/* ---- the conversation ---- */

struct repl {
	const struct config *cfg;
	struct chat_request conv;     /* model, system, temperature, messages */
	const struct llm_opts *lo;
	sqlite3 *db;
	char cid[CONVLOG_ID_MAX];
	char *logged;                 /* the system prompt cid has in the log */
	struct cli_limit limit;       /* bytes of one message */
	int verbose;
	char *histfile;
	char *sessions;               /* directory of /save files */
};

static void push(struct chat_request *c, const char *role, const char *content)
{
	chat_request_add(c, role, content, NULL);
}

static void pop(struct chat_request *c)
{
	if (!c->nmessages)
		return;
	c->nmessages--;
	free((char *)c->messages[c->nmessages].role);
	free((char *)c->messages[c->nmessages].content);
}

static void clear_messages(struct chat_request *c)
{
	while (c->nmessages)
		pop(c);
}

/* Sends the conversation (its last message is the user's) and keeps the
 * answer -- the partial one too, after Ctrl-C: it was shown. */
static void ask(struct repl *r)
{
	struct chat_result res;
	struct err e;
	const char *user;

	if (cli_fit_budget("chat", r->cfg, &r->conv, &e) < 0) {
		/* Not sent: the message is left out of the conversation. */
		cli_fail("chat", &e);
		pop(&r->conv);
		return;
	}
	memset(&res, 0, sizeof(res));
	buf_init(&res.content, 0);
	user = r->conv.messages[r->conv.nmessages - 1].content;
	cli_chat_once("chat", r->cfg, &r->conv, r->lo, CLI_STREAM, r->verbose, &res);
	if (res.err.code == ERR_OK || res.content.len) {
		if (res.content_truncated)
			fprintf(stderr, "aichat: chat: the answer is larger than %zu MiB: the conversation keeps its first %zu MiB\n",
				CHAT_CONTENT_MAX >> 20, CHAT_CONTENT_MAX >> 20);
		push(&r->conv, "assistant", res.content.ptr);
		if (r->db && res.model[0]) {
			if (convlog_record(r->db, r->cid,
					   cli_system_change(r->cid, r->conv.system, r->logged),
					   r->conv.temperature, user, &res, &e) < 0) {
				fprintf(stderr, "aichat: chat: could not log this exchange: %s\n", e.msg);
			} else {
				free(r->logged);
				r->logged = r->conv.system ? xstrdup(r->conv.system) : NULL;
			}
		}
	} else {
		/* Nothing came back: the question is not part of the
		 * conversation; it is in the line history to try again. */
		pop(&r->conv);
	}
	buf_release(&res.content);
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return n > 0 && strcmp(s - n, ".") && strcmp(s - n, "..");
}

static void save(struct repl *r, const char *name)
{
	cJSON *o, *msgs;
	char *text, path[4096];
	FILE *f;

	if (!valid_name(name)) {
		fprintf(stderr, "aichat: /save: invalid name '%.64s': use letters, digits, '.', '-' and '_'\n", name);
		return;
	}
	mkdir(r->sessions, 0700);
	snprintf(path, sizeof(path), "%s/%s.json", r->sessions, name);
	o = cJSON_CreateObject();
	if (r->conv.model)
		cJSON_AddStringToObject(o, "model", r->conv.model);
	if (r->conv.system)
		cJSON_AddStringToObject(o, "system", r->conv.system);
	cJSON_AddNumberToObject(o, "temperature", r->conv.temperature);
	msgs = cJSON_AddArrayToObject(o, "messages");
	for (size_t i = 0; i < r->conv.nmessages; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", r->conv.messages[i].role);
		cJSON_AddStringToObject(m, "content", r->conv.messages[i].content);
		cJSON_AddItemToArray(msgs, m);
	}
	text = json_print(o);
	cJSON_Delete(o);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0)
		fprintf(stderr, "aichat: /save: cannot write '%s': %s\n", path, strerror(errno));
	else
		printf("saved %zu messages as '%s'\n", r->conv.nmessages, name);
	free(text);
}

static void load(struct repl *r, const char *name)
{
	char path[4096];
	struct buf text;
	FILE *f;
	char tmp[4096];
	size_t n;
	cJSON *o;
	const cJSON *m;
	struct err e;
	double d;

	if (!valid_name(name)) {
		fprintf(stderr, "aichat: /load: invalid name '%.64s'\n", name);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s.json", r->sessions, name);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "aichat: /load: no saved conversation '%s'\n", name);
		return;
	}
	buf_init(&text, 16 * 1024 * 1024);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&text, tmp, n);
	fclose(f);
	o = json_parse(text.ptr, text.len, NULL);
	buf_release(&text);
	if (!o) {
		fprintf(stderr, "aichat: /load: '%s' is not a saved conversation\n", path);
		return;
	}
	clear_messages(&r->conv);
	if (json_str(o, "model")) {
		free(r->conv.model);
		r->conv.model = xstrdup(json_str(o, "model"));
	}
	free(r->conv.system);
	r->conv.system = json_str(o, "system") ? xstrdup(json_str(o, "system")) : NULL;
	if (json_num(o, "temperature", &d) == 0)
		r->conv.temperature = d;
	cJSON_ArrayForEach(m, json_arr(o, "messages"))
		if (json_str(m, "role") && json_str(m, "content"))
			push(&r->conv, json_str(m, "role"), json_str(m, "content"));
	cJSON_Delete(o);
	/* A new conversation in the log, holding what was loaded, so that
	 * 'aichat chat -c' goes on from it too. */
	r->cid[0] = '\0';
	free(r->logged);
	r->logged = NULL;
	if (r->db && convlog_import(r->db, r->cid, &r->conv, &e) < 0)
		fprintf(stderr, "aichat: /load: could not log the loaded conversation: %s\n",
			e.msg);
	else if (r->cid[0] && r->conv.system)
		r->logged = xstrdup(r->conv.system);
	printf("loaded %zu messages from '%s'\n", r->conv.nmessages, name);
}

static void help(void)
{
	puts("/help               this list\n"
	     "/model NAME         switch model (provider:model or an alias)\n"
	     "/system TEXT        set the system prompt (empty: none)\n"
	     "/temperature X      set the temperature (0..2)\n"
	     "/clear              start a new conversation\n"
	     "/retry              ask for the last answer again\n"
	     "/save NAME          save this conversation\n"
	     "/load NAME          load a saved conversation\n"
	     "/history            show this conversation\n"
	     "/exit               leave (or Ctrl-D)\n"
	     "\"\"\"                 start and end a multi-line message\n"
	     "Ctrl-C stops a reply and keeps the conversation; at the prompt it clears the line.");
}

/* One /command; returns 1 to leave. */
static int command(struct repl *r, char *line)
{
	char *arg = strchr(line, ' ');

	if (arg) {
		*arg++ = '\0';
		while (*arg == ' ')
			arg++;
	} else {
		arg = line + strlen(line);
	}
	if (!strcmp(line, "/exit") || !strcmp(line, "/quit"))
		return 1;
	if (!strcmp(line, "/help")) {
		help();
	} else if (!strcmp(line, "/model")) {
		struct model_ref m;
		struct err e;
		if (!*arg) {
			printf("model: %s\n", r->conv.model ? r->conv.model :
			       config_default_model(r->cfg));
		} else if (model_resolve(r->cfg, arg, &m, &e) < 0) {
			fprintf(stderr, "aichat: /model: %s\n", e.msg);
		} else {
			free(r->conv.model);
			r->conv.model = xstrdup(m.full);
			printf("model: %s\n", m.full);
		}
		model_ref_release(&m);
	} else if (!strcmp(line, "/system")) {
		free(r->conv.system);
		r->conv.system = *arg ? xstrdup(arg) : NULL;
		printf(*arg ? "system prompt set\n" : "system prompt cleared\n");
	} else if (!strcmp(line, "/temperature")) {
		/* The same table as --temperature and the HTTP field. */
		cJSON *o = cJSON_CreateObject();
		struct verrors ve = { 0 };
		char *end;
		double d = strtod(arg, &end);
		cJSON_AddStringToObject(o, "prompt", "x");
		if (*arg && !*end)
			cJSON_AddNumberToObject(o, "temperature", d);
		else
			cJSON_AddStringToObject(o, "temperature", arg);
		if (schema_validate(&schema_chat_request, o, &ve))
			fprintf(stderr, "aichat: /temperature: invalid value '%s': %s\n",
				ve.v[0].value, ve.v[0].msg);
		else {
			r->conv.temperature = d;
			printf("temperature: %g\n", d);
		}
		verrors_release(&ve);
		cJSON_Delete(o);
	} else if (!strcmp(line, "/clear")) {
		clear_messages(&r->conv);
		r->cid[0] = '\0';
		free(r->logged);
		r->logged = NULL;
		printf("new conversation\n");
	} else if (!strcmp(line, "/retry")) {
		if (r->conv.nmessages < 2 ||
		    strcmp(r->conv.messages[r->conv.nmessages - 1].role, "assistant")) {
			fprintf(stderr, "aichat: /retry: no answer to retry yet\n");
		} else {
			pop(&r->conv);
			ask(r);
		}
	} else if (!strcmp(line, "/save")) {
		save(r, arg);
	} else if (!strcmp(line, "/load")) {
		load(r, arg);
	} else if (!strcmp(line, "/history")) {
		if (r->conv.system)
			printf("[system] %s\n", r->conv.system);
		for (size_t i = 0; i < r->conv.nmessages; i++)
			printf("[%s] %s\n", r->conv.messages[i].role,
			       r->conv.messages[i].content);
		if (!r->conv.nmessages)
			printf("(empty)\n");
	} else {
		fprintf(stderr, "aichat: unknown command '%.64s' (try /help)\n", line);
	}
	return 0;
}

/* A """ block: lines until the closing """. NULL on Ctrl-D. */
static char *read_block(void)
{
	struct buf b;
	char *line;

	buf_init(&b, 0);
	while ((line = readline("... "))) {
		if (!strcmp(line, "\"\"\"")) {
			free(line);
			return buf_detach(&b);
		}
		if (b.len)
			buf_putc(&b, '\n');
		buf_appends(&b, line);
		free(line);
	}
	buf_release(&b);
	return NULL;
}

int repl_run(const struct config *cfg, struct chat_request *conv,
	     const struct llm_opts *lo, sqlite3 *db, char cid[CONVLOG_ID_MAX],
	     const char *logged, int verbose)
{
	struct repl r = { .cfg = cfg, .lo = lo, .db = db, .verbose = verbose };
	struct sigaction sa, old;
	char prompt[300], *home = store_home(), *line;
	struct buf path;
	struct err e;

	if (cli_limit_load(cfg, &r.limit, &e) < 0) {
		free(home);
		return cli_fail("chat", &e);
	}
	r.conv = *conv;
	memset(conv, 0, sizeof(*conv));
	snprintf(r.cid, sizeof(r.cid), "%s", cid);
	r.logged = logged ? xstrdup(logged) : NULL;
	cur_cfg = cfg;
	buf_init(&path, 0);
	if (home) {
		mkdir(home, 0700);
		buf_printf(&path, "%s/history", home);
		r.histfile = buf_detach(&path);
		buf_printf(&path, "%s/sessions", home);
		r.sessions = buf_detach(&path);
		read_history(r.histfile);
	} else {
		r.sessions = xstrdup(".");
	}
	free(home);
	rl_readline_name = "aichat";
	rl_attempted_completion_function = complete;
	rl_signal_event_hook = signal_hook;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);

	printf("aichat %s - %s. /help for commands, Ctrl-D to leave.\n",
	       AICHAT_VERSION, r.conv.model ? r.conv.model : config_default_model(cfg));
	for (;;) {
		snprintf(prompt, sizeof(prompt), "%s> ",
			 r.conv.model ? r.conv.model : config_default_model(cfg));
		got_sigint = 0;
		line = readline(prompt);
		if (!line) {
			putchar('\n');
			break;
		}
		if (!*line || strspn(line, " \t") == strlen(line)) {
			free(line);
			continue;
		}
		add_history(line);
		/* append_history needs the file to exist already. */
		if (r.histfile && append_history(1, r.histfile) != 0)
			write_history(r.histfile);
		if (!strcmp(line, "\"\"\"")) {
			free(line);
			line = read_block();
			if (!line)
				break;
			if (!*line) {
				free(line);
				continue;
			}
		} else if (line[0] == '/') {
			int quit = command(&r, line);
			free(line);
			if (quit)
				break;
			continue;
		}
		if (cli_limit_check(&r.limit, "the message", strlen(line), 0, &e) < 0) {
			cli_fail("chat", &e);
			free(line);
			continue;
		}
		push(&r.conv, "user", line);
		free(line);
		ask(&r);
	}
	sigaction(SIGINT, &old, NULL);
	snprintf(cid, CONVLOG_ID_MAX, "%s", r.cid);
	chat_request_release(&r.conv);
	free(r.logged);
	free(r.histfile);
	free(r.sessions);
	return EXIT_OK;
}
