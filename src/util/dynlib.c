/*
 * dynlib.c - shared libraries loaded on first use; see dynlib.h.
 */
#include "aichat/dynlib.h"
#include "aichat/xalloc.h"

#include <dlfcn.h>
#include <stdlib.h>

int dynlib_load(const char *soname, const struct dynlib_sym *syms, size_t n,
		struct err *e)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL), **got;
	const char *why;

	if (!lib)
		return err_set(e, ERR_CONFIG, "cannot load %s (is it installed?): %s",
			       soname, (why = dlerror()) ? why : "unknown error");
	/* All or nothing: a library without one of them is not used. */
	got = xcalloc(n + 1, sizeof(*got));
	for (size_t i = 0; i < n; i++) {
		if (!(got[i] = dlsym(lib, syms[i].name))) {
			free(got);
			dlclose(lib);
			return err_set(e, ERR_CONFIG, "%s has no function %s: too old?",
				       soname, syms[i].name);
		}
	}
	for (size_t i = 0; i < n; i++)
		*syms[i].slot = got[i];
	free(got);
	return 0;
}
