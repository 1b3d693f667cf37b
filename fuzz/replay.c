/*
 * replay.c - runs a fuzz target over its files without libFuzzer, as TAP:
 * fuzz/regress/NAME/ (inputs that once broke it) and fuzz/corpus/NAME/
 * (its seeds), or the files and directories given as arguments.  Each
 * input runs in a child process, so a crash or a broken property is one
 * "not ok" line naming the file and the others still run.  Linked with
 * each target as BUILD/tests/test_fuzz_NAME for `make check` (and under
 * `make asan` with its sanitizers); NAME comes from the program's name.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int n, failed;
static const char *name;

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, got;

	*len = 0;
	if (!f)
		return NULL;
	do {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			p = realloc(p, cap);
			if (!p)
				abort();
		}
		got = fread(p + *len, 1, cap - *len, f);
		*len += got;
	} while (got);
	fclose(f);
	return p;
}

static void run_file(const char *path)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		size_t len;
		uint8_t *p = slurp(path, &len);

		if (!p && errno)
			_exit(3);
		/* An exact-size copy, so an over-read is caught by ASan. */
		uint8_t *copy = malloc(len ? len : 1);
		if (len)
			memcpy(copy, p, len);
		free(p);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		exit(0);   /* not _exit: a leak check (make asan) runs at exit */
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	n++;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok %d - %s %s\n", n, name, path);
		return;
	}
	failed++;
	if (WIFSIGNALED(status))
		printf("not ok %d - %s %s: killed by signal %d\n", n, name,
		       path, WTERMSIG(status));
	else
		printf("not ok %d - %s %s: exit status %d\n", n, name, path,
		       WEXITSTATUS(status));
}

/* A file, or every regular file of a directory in name order. */
static void run_path(const char *path)
{
	struct stat st;
	struct dirent *d;
	char **names = NULL;
	size_t nn = 0;
	DIR *dir;

	if (stat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		size_t l = strlen(path) + strlen(d->d_name) + 2;
		char *full;

		if (d->d_name[0] == '.')
			continue;
		full = malloc(l);
		snprintf(full, l, "%s/%s", path, d->d_name);
		names = realloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = full;
	}
	closedir(dir);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp);
	for (size_t i = 0; i < nn; i++) {
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			run_file(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	char dir[256];

	base = base ? base + 1 : argv[0];
	name = strncmp(base, "test_fuzz_", 10) ? base : base + 10;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
		snprintf(dir, sizeof(dir), "fuzz/regress/%s", name);
		run_path(dir);
		snprintf(dir, sizeof(dir), "fuzz/corpus/%s", name);
		run_path(dir);
	}
	if (!n) {
		printf("not ok 1 - %s: no input found (run from the top of the tree)\n1..1\n",
		       name);
		return 1;
	}
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
