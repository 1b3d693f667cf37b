/*
 * ragcorpus.c - a deterministic generated corpus for bench/rag.sh.
 *
 *   ragcorpus DIR MEGABYTES FILE_KB NQUERIES
 *
 * Writes about MEGABYTES MiB of markdown-like text into DIR/dNN/fNNNNN.md,
 * files of about FILE_KB KiB: headings, paragraphs of sentences, and now
 * and then a fenced code block.  Words come from a vocabulary of 60,000
 * made-up words drawn with a Zipf law (as in natural text: a few words are
 * everywhere, most are rare).  It also prints NQUERIES queries to stdout,
 * one per line: the file a random sentence is in, a tab, and four to six
 * consecutive words of that sentence, so each query has a file that holds
 * all of its words.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VOCAB 60000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double unit(void)
{
	return (double)(next() >> 11) / 9007199254740992.0;
}

static char *words[VOCAB];
static double cdf[VOCAB];

static void make_vocab(void)
{
	static const char *syl[] = {
		"ka", "lo", "mi", "ter", "an", "sel", "vo", "ru", "den", "qua",
		"pi", "tor", "el", "ni", "bar", "cu", "fe", "gin", "hol", "jo",
		"ple", "rax", "sta", "un", "wim", "zor", "ix", "ob", "tri", "mon",
	};
	double sum = 0;

	for (int i = 0; i < VOCAB; i++) {
		char w[32] = "";
		int n = 1 + (i > 30) + (i > 900) + (i > 20000), v = i;
		for (int s = 0; s < n; s++) {
			strcat(w, syl[v % 30]);
			v = v / 30 + s * 7 + 3;
		}
		words[i] = strdup(w);
		sum += 1.0 / (i + 1);
		cdf[i] = sum;
	}
	for (int i = 0; i < VOCAB; i++)
		cdf[i] /= sum;
}

static int zipf(void)
{
	double u = unit();
	int lo = 0, hi = VOCAB - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One sentence into s; its word indices into w[0..*nw). */
static size_t sentence(char *s, int *w, int *nw)
{
	int n = 6 + (int)(next() % 14);
	size_t len = 0;

	*nw = n;
	for (int i = 0; i < n; i++) {
		w[i] = zipf();
		len += (size_t)sprintf(s + len, "%s%s", i ? " " : "", words[w[i]]);
	}
	if (s[0] >= 'a' && s[0] <= 'z')
		s[0] = (char)(s[0] - 'a' + 'A');
	len += (size_t)sprintf(s + len, ". ");
	return len;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	char path[4096], s[1024];
	int w[32], nw, nq;
	double total, per;
	size_t written = 0;
	long files = 0;
	char **queries;
	double *offs;
	int q = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: ragcorpus DIR MEGABYTES FILE_KB NQUERIES\n");
		return 2;
	}
	total = atof(argv[2]) * 1048576.0;
	per = atof(argv[3]) * 1024.0;
	nq = atoi(argv[4]);
	queries = calloc((size_t)nq + 1, sizeof(*queries));
	make_vocab();
	offs = calloc((size_t)nq + 1, sizeof(*offs));
	for (int i = 0; i < nq; i++)
		offs[i] = unit() * total;
	qsort(offs, (size_t)nq, sizeof(*offs), cmp);
	mkdir(argv[1], 0755);
	while (written < total) {
		FILE *f;
		size_t size = 0;
		snprintf(path, sizeof(path), "%s/d%02ld", argv[1], files / 1000);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/d%02ld/f%05ld.md", argv[1],
			 files / 1000, files);
		if (!(f = fopen(path, "w"))) {
			fprintf(stderr, "ragcorpus: %s: %s\n", path, strerror(errno));
			return 1;
		}
		size += (size_t)fprintf(f, "# %s %s %ld\n\n", words[zipf()], words[zipf()], files);
		while (size < per) {
			int sentences = 2 + (int)(next() % 6);
			if (next() % 5 == 0)
				size += (size_t)fprintf(f, "## %s %s\n\n", words[zipf()],
							words[zipf()]);
			if (next() % 25 == 0)
				size += (size_t)fprintf(f, "```\n%s(%s, %s);\nreturn %s;\n```\n\n",
							words[zipf()], words[zipf()],
							words[zipf()], words[zipf()]);
			for (int i = 0; i < sentences; i++) {
				size_t n = sentence(s, w, &nw);
				fwrite(s, 1, n, f);
				size += n;
				/* The sentence that crosses the next query offset. */
				while (q < nq && offs[q] < written + size) {
					char qs[512] = "";
					int k = 4 + (int)(next() % 3), start;
					if (k > nw)
						k = nw;
					start = (int)(next() % (uint64_t)(nw - k + 1));
					for (int j = 0; j < k; j++) {
						strcat(qs, j ? " " : "");
						strcat(qs, words[w[start + j]]);
					}
					char line[600];
					snprintf(line, sizeof(line), "d%02ld/f%05ld.md\t%s",
						 files / 1000, files, qs);
					queries[q++] = strdup(line);
				}
			}
			size += (size_t)fprintf(f, "\n\n");
		}
		fclose(f);
		written += size;
		files++;
	}
	for (q = 0; q < nq; q++)
		printf("%s\n", queries[q] ? queries[q] : "-\tkalo");
	fprintf(stderr, "ragcorpus: %ld files, %.1f MiB\n", files, written / 1048576.0);
	return 0;
}
