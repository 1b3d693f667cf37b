/*
 * keycmd.c - running a provider's api_key_cmd once per process; see
 * keycmd.h.
 *
 * The child starts with default signal handling and an empty signal mask
 * (the CLI blocks SIGINT and SIGTERM for its signalfd), and holds no
 * descriptor of ours but the pipe it writes the key to.
 */
#include "aichat/keycmd.h"
#include "aichat/buf.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_MAX (64 * 1024)

struct entry {
	char *provider, *cmd;
	char *key;               /* NULL when the command failed */
	struct err err;
	struct entry *next;
};

static struct entry *cache;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Starts cmd with its stdout on a pipe; the read end into *fd. */
static int spawn(const char *cmd, pid_t *pid, int *fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc) {
		close(p[0]);
		return rc;
	}
	*fd = p[0];
	return 0;
}

/* Runs cmd; its output into out (at most KEY_MAX + 1 bytes kept). */
static int run(const char *provider, const char *cmd, struct buf *out,
	       struct err *e)
{
	char tmp[4096];
	pid_t pid;
	ssize_t n;
	int fd = -1, rc, st;

	if ((rc = spawn(cmd, &pid, &fd)))
		return err_set(e, ERR_CONFIG, "cannot run the api_key_cmd of provider %s: %s",
			       provider, strerror(rc));
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		/* Past the cap the rest is read and dropped, so that the
		 * command is not stopped by a broken pipe half-way. */
		if (out->len <= KEY_MAX)
			buf_append(out, tmp, (size_t)n);
	}
	close(fd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_set(e, ERR_CONFIG, "api_key_cmd of provider %s: %s",
				       provider, strerror(errno));
	if (WIFSIGNALED(st))
		return err_set(e, ERR_CONFIG,
			       "the api_key_cmd of provider %s was killed by signal %d",
			       provider, WTERMSIG(st));
	if (WEXITSTATUS(st))
		return err_set(e, ERR_CONFIG,
			       "the api_key_cmd of provider %s failed with exit status %d",
			       provider, WEXITSTATUS(st));
	return 0;
}

/* The key in out, checked: one line, no control character. */
static int check(const char *provider, struct buf *out, struct err *e)
{
	while (out->len && (out->ptr[out->len - 1] == '\n' ||
			    out->ptr[out->len - 1] == '\r'))
		buf_truncate(out, out->len - 1);
	if (!out->len)
		return err_set(e, ERR_CONFIG,
			       "the api_key_cmd of provider %s printed no key (exit status 0)",
			       provider);
	if (out->len > KEY_MAX)
		return err_set(e, ERR_CONFIG,
			       "the api_key_cmd of provider %s printed more than 64 KiB",
			       provider);
	for (size_t i = 0; i < out->len; i++)
		if ((unsigned char)out->ptr[i] < 0x20 || out->ptr[i] == 0x7f)
			return err_set(e, ERR_CONFIG,
				       "the api_key_cmd of provider %s printed more than one line or a control character",
				       provider);
	return 0;
}

int keycmd_get(const char *provider, const char *cmd, const char **key,
	       struct err *e)
{
	struct entry *it;
	struct buf out;

	pthread_mutex_lock(&lock);
	for (it = cache; it; it = it->next)
		if (!strcmp(it->provider, provider) && !strcmp(it->cmd, cmd))
			break;
	if (!it) {
		it = xcalloc(1, sizeof(*it));
		it->provider = xstrdup(provider);
		it->cmd = xstrdup(cmd);
		buf_init(&out, 0);
		if (run(provider, cmd, &out, &it->err) == 0 &&
		    check(provider, &out, &it->err) == 0)
			it->key = buf_detach(&out);
		/* The output may hold the key: wipe it before freeing. */
		if (out.cap)
			memset(out.ptr, 0, out.cap);
		buf_release(&out);
		it->next = cache;
		cache = it;
	}
	pthread_mutex_unlock(&lock);
	if (!it->key) {
		if (e)
			*e = it->err;
		return -1;
	}
	*key = it->key;
	return 0;
}
