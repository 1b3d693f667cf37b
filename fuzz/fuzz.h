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

#endif
