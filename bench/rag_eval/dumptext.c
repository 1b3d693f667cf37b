/*
 * dumptext.c - writes the text aichat's extractor (src/core/extract.c)
 * reads from files, so that every engine of the evaluation indexes the
 * same text.  Reads "SOURCE<TAB>DEST" lines on stdin; a file that yields
 * no text is reported on stderr and left out.  Not part of aichat.
 */
#include "aichat/extract.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char line[8192], buf[65536];
	int bad = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *tab = strchr(line, '\t'), *nl;
		struct extract *x;
		FILE *out;
		ssize_t r;
		int fd;

		if (!tab)
			continue;
		*tab++ = '\0';
		if ((nl = strchr(tab, '\n')))
			*nl = '\0';
		if ((fd = open(line, O_RDONLY)) < 0) {
			perror(line);
			bad++;
			continue;
		}
		if (!(out = fopen(tab, "w"))) {
			perror(tab);
			close(fd);
			return 1;
		}
		x = extract_open(fd, line, 32u << 20);
		while ((r = extract_read(x, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)r, out);
		if (r < 0) {
			fprintf(stderr, "dumptext: %s: no text\n", line);
			bad++;
			fclose(out);
			unlink(tab);
		} else if (fclose(out) != 0) {
			perror(tab);
			return 1;
		}
		extract_close(x);
		close(fd);
	}
	return bad ? 3 : 0;
}
