/*
 * fuzz.h - shared by the libFuzzer targets in fuzz/ (README.md, Development).
 *
 * Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Linked with -fsanitize=fuzzer it is a fuzzer;
 * linked with fuzz/replay.c it replays its seed corpus and regression
 * inputs as TAP tests in `make check`.  A broken property is reported on
 * stderr and abort()s, which both drivers count as a failure.
 */
#ifndef AICHAT_FUZZ_H
#define AICHAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: property broken: %s: ", __FILE__, \
			__LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

/* Reads input as a sequence of choices: bytes are taken from the front.
 * Past the end, every read gives 0. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline unsigned fuzz_byte(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static inline int fuzz_utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 2;
		else if (c >= 0xE0 && c <= 0xEF)
			k = 3;
		else if (c >= 0xF0 && c <= 0xF4)
			k = 4;
		else
			return 0;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		else if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
		if (i + k > n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j < k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

#endif
