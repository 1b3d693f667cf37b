/*
 * tap.h - a tiny TAP harness for the C unit tests.
 *
 *     ok(cond, "name %d", i);       one test point
 *     is_str(got, want, "name");    string equality, shows both on failure
 *     is_int(got, want, "name");
 *     lives_ok(stmt, "name");       stmt runs to its end in a child process
 *     return tap_done();            prints the plan, exit 1 if any failed
 *
 * Output is TAP 13 on stdout; tests/run.sh counts "ok" and "not ok" lines.
 */
#ifndef AICHAT_TAP_H
#define AICHAT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		tap_failed++;
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	if (!ok(g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_, __VA_ARGS__)) \
		printf("#   got:  '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)", \
		       w_ ? w_ : "(null)"); \
} while (0)

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		printf("#   got:  %lld\n#   want: %lld\n", g_, w_); \
} while (0)

/* Runs stmt in a forked child: passes when the child gets to its end and
 * exits 0, fails (and the tests go on) when it crashes or aborts. */
#define lives_ok(stmt, ...) do { \
	int st_ = -1; \
	pid_t pid_; \
	fflush(stdout); \
	pid_ = fork(); \
	if (pid_ == 0) { \
		stmt; \
		_exit(0); \
	} \
	if (pid_ > 0) \
		waitpid(pid_, &st_, 0); \
	if (!ok(pid_ > 0 && WIFEXITED(st_) && WEXITSTATUS(st_) == 0, __VA_ARGS__)) \
		printf("#   the child %s %d\n", WIFSIGNALED(st_) ? "died of signal" : \
		       "exited with status", WIFSIGNALED(st_) ? WTERMSIG(st_) : \
		       WEXITSTATUS(st_)); \
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
