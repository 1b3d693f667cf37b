/*
 * extract.h - the text of a file as `aichat rag index` indexes it.
 *
 * A file is read through one reader that undoes what stands between its
 * bytes and its words: gzip (zlib, streamed; the inner name decides the
 * format, so foo.1.gz is a man page), HTML (tags, <script> and <style>
 * dropped, entities decoded, headings kept as Markdown "# " lines), roff
 * man pages, man(7) and mdoc(7) (rendered to plain text by a small
 * built-in renderer, headings as "# " lines), PDF (through pdftotext(1)
 * when it is installed, with a time limit and bounded output).  Markdown
 * and plain text pass through unchanged.
 *
 * Memory stays bounded whatever the size of the file: every stage works
 * on pieces.  The text a file gives, decompressed or converted, is capped
 * (a gzip bomb stops at the cap).  A file that cannot give text gets a
 * short reason (extract_why()), never a partial document.
 */
#ifndef AICHAT_EXTRACT_H
#define AICHAT_EXTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aichat/buf.h"

enum extract_kind {
	EXTRACT_TEXT,       /* plain text and Markdown: as they are */
	EXTRACT_HTML,
	EXTRACT_ROFF,
	EXTRACT_PDF,
};

/* "text", "html", "man" or "pdf". */
const char *extract_kind_name(enum extract_kind k);

/*
 * The kind of a file named name (a path; its last ".gz" ignored) whose
 * text starts with head[0..n): HTML by the name (.html, .htm, .xhtml) or
 * a "<!DOCTYPE html" or "<html" start; roff by a leading comment or .TH,
 * .Dd or .Dt, or a man-section name (foo.1, foo.3pm, foo.man) whose head
 * has a control line; PDF by "%PDF-".  Else text.
 */
enum extract_kind extract_kind_of(const char *name, const char *head, size_t n);

/* Whether the first bytes p[0..n) are gzip's magic number. */
int extract_is_gzip(const unsigned char *p, size_t n);

/* ---- HTML to text, fed in pieces ---- */

struct html {
	int state, pre, raw, heading, quote, at_line, blank, space;
	char tag[16];
	size_t taglen;
	char ent[40];
	size_t entlen;
	size_t rawmatch;
};

void html_init(struct html *h);
/* Appends to out the text of p[0..n); state carries over to the next call. */
void html_feed(struct html *h, const char *p, size_t n, struct buf *out);
/* Ends the text (an entity or tag cut off by the end is dropped). */
void html_finish(struct html *h, struct buf *out);

/* ---- roff (man and mdoc) to text, fed in pieces ---- */

struct roff {
	struct buf line;      /* the line being read */
	struct buf held;      /* lines of a skipped block (.de, .ig, \{) */
	int skip;             /* 1 in .de/.ig until "..", 2 in \{ blocks */
	int depth;            /* open \{ */
	int heading;          /* the next text line is a heading of this level */
	int blank;            /* the output ends with a blank line */
	long lines, unknown;  /* lines read; unknown macros (kept as text) */
	long unterminated;    /* blocks the end of the file cut short */
	char first_unknown[16];
	char defined[64][8];  /* macros the file defines with .de */
	int ndefined;
	int replay;           /* feeding held lines back: no block skipping */
	int nofill;           /* .nf and the like: lines kept as they are */
	int tag;              /* the next line is .TP's tag: a line alone */
	int tbl;              /* in .TS: 1 options and format, 2 rows */
	size_t col;           /* columns on the current output line */
};

void roff_init(struct roff *r);
/* Appends to out the rendered text of p[0..n); lines carry over. */
void roff_feed(struct roff *r, const char *p, size_t n, struct buf *out);
/* Renders what is left (a last line without newline; the lines of a
 * block never closed, as text) and frees r's buffers. */
void roff_finish(struct roff *r, struct buf *out);

/* ---- the reader ---- */

struct extract;

/*
 * A reader of the text of the file open on fd (at offset 0; not closed
 * here), named path: at most max bytes of text.  The kind is chosen on
 * the first read, from path and the first bytes of (decompressed) text.
 * Owned: extract_close().
 */
struct extract *extract_open(int fd, const char *path, size_t max);

/*
 * Reads up to n bytes of text into p: how many, 0 at the end, -1 when it
 * fails: extract_why() then gives the reason the file yields no text
 * (corrupt gzip data, too large, pdftotext missing or failing), or NULL
 * when reading the file failed (errno says why).  A rag_read_fn.
 */
ssize_t extract_read(void *x, char *p, size_t n);

/* The reason of the last failed read ("" when none).  The class of it
 * (a short word for a summary: "corrupt", "too large", "no pdftotext",
 * "pdftotext failed") in *klass when klass is not NULL. */
const char *extract_why(const struct extract *x, const char **klass);
/* After the end: a warning about text rendered with guesses (unknown roff
 * macros), "" when none. */
const char *extract_note(const struct extract *x);
/* The kind chosen (EXTRACT_TEXT before the first read). */
enum extract_kind extract_kind(const struct extract *x);
/* Stops a pdftotext still running and frees x. */
void extract_close(struct extract *x);

/* Seconds pdftotext may take for one file (AICHAT_PDF_TIMEOUT, default). */
#define EXTRACT_PDF_TIMEOUT 30

#endif
