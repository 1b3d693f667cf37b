/*
 * startup.c - whole-process time of a command, next to a baseline.
 *
 *     startup N -- BASELINE... -- COMMAND...
 *
 * Runs each command N times alternately (posix_spawn, stdout and stdin on
 * /dev/null), then prints the median and 90th percentile wall time of
 * each and the ratio of the medians.  Alternating keeps both under the
 * same machine conditions.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double run(char **argv)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;
	double t0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = now_ms();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		perror(argv[0]);
		exit(1);
	}
	waitpid(pid, &status, 0);
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "startup: %s failed\n", argv[0]);
		exit(1);
	}
	return now_ms() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n, i, sep2 = 0;
	double *a, *b;

	if (argc < 6 || strcmp(argv[2], "--")) {
		fprintf(stderr, "usage: startup N -- BASELINE... -- COMMAND...\n");
		return 2;
	}
	n = atoi(argv[1]);
	for (i = 3; i < argc; i++)
		if (!strcmp(argv[i], "--"))
			sep2 = i;
	if (!sep2 || n < 1)
		return 2;
	argv[sep2] = NULL;
	a = calloc((size_t)n, sizeof(*a));
	b = calloc((size_t)n, sizeof(*b));
	for (i = 0; i < 5; i++) {       /* warm the page cache */
		run(argv + 3);
		run(argv + sep2 + 1);
	}
	for (i = 0; i < n; i++) {
		a[i] = run(argv + 3);
		b[i] = run(argv + sep2 + 1);
	}
	qsort(a, (size_t)n, sizeof(*a), cmp);
	qsort(b, (size_t)n, sizeof(*b), cmp);
	printf("%-34s median %7.3f ms   p90 %7.3f ms\n", argv[3], a[n / 2], a[n * 9 / 10]);
	printf("%-34s median %7.3f ms   p90 %7.3f ms\n", argv[sep2 + 1], b[n / 2], b[n * 9 / 10]);
	printf("ratio (command / baseline, medians): %.2f; command median %s the 5 ms target\n",
	       b[n / 2] / a[n / 2], b[n / 2] <= 5.0 ? "meets" : "MISSES");
	free(a);
	free(b);
	return 0;
}
