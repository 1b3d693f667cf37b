# aichat - see README.md.  `make` leaves ./aichat at the root.
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS     := libcurl libcjson libmicrohttpd sqlite3 readline zlib hiredis
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl and libmicrohttpd are opened on first use (include/aichat/dynlib.h):
# not linked, but their sonames are taken from the libraries built against.
DYN_PKGS   := libcurl libmicrohttpd
PKG_LIBS   := $(shell pkg-config --libs $(filter-out $(DYN_PKGS),$(PKGS)) 2>/dev/null)
soname      = $(shell objdump -p $$(pkg-config --variable=libdir $(1))/$(2) 2>/dev/null | \
                awk '/SONAME/ { print $$2 }')
CURL_SONAME := $(or $(call soname,libcurl,libcurl.so),libcurl.so.4)
MHD_SONAME  := $(or $(call soname,libmicrohttpd,libmicrohttpd.so),libmicrohttpd.so.12)

OPT      ?= -O2 -g
override CFLAGS += $(OPT) -std=c11 -Wall -Wextra -D_GNU_SOURCE -Iinclude -MMD -MP \
            -DAICHAT_VERSION='"$(VERSION)"' -DAICHAT_CURL_SONAME='"$(CURL_SONAME)"' \
            -DAICHAT_MHD_SONAME='"$(MHD_SONAME)"' $(PKG_CFLAGS) $(SAN)
override LDFLAGS += -Wl,--as-needed -Wl,-O1 $(SAN)
LDLIBS   += $(PKG_LIBS) -lm -ldl -lpthread

ifeq ($(BUILD),build)
BIN := aichat
else
BIN := $(BUILD)/aichat
endif

SRCS      := $(sort $(wildcard src/*/*.c))
# The playground's page, script and stylesheet, embedded by tools/embed.sh.
ASSETS    := src/serve/playground.html src/serve/playground.js src/serve/playground.css
ASSETS_C  := $(BUILD)/gen/assets.c
OBJS      := $(SRCS:%.c=$(BUILD)/%.o) $(ASSETS_C:.c=.o)
MAIN_OBJ  := $(BUILD)/src/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FAKE      := $(BUILD)/tests/fake_upstream
FAKE_SRCS := $(sort $(wildcard tests/fake/*.c))
# Fuzz targets (README.md, Development): libFuzzer binaries under
# build-fuzz, and the same targets linked with fuzz/replay.c as tests for
# `make check`.
FUZZ_NAMES  := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/test_fuzz_%)
FUZZ_SECONDS ?= 60
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: all check asan fuzz fuzz-build install uninstall clean deps demo bench bench-serve mutate
all: $(BIN)

$(BIN): $(MAIN_OBJ) $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(ASSETS_C): $(ASSETS) tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh playground_html=src/serve/playground.html \
	    playground_js=src/serve/playground.js \
	    playground_css=src/serve/playground.css >$@.tmp && mv -f $@.tmp $@

$(ASSETS_C:.c=.o): $(ASSETS_C)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(FAKE): $(FAKE_SRCS) $(wildcard tests/fake/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(FAKE_SRCS) $(LDLIBS) -lpthread

$(BUILD)/tests/test_fuzz_%: fuzz/fuzz_%.c $(BUILD)/fuzz/replay.o $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ifuzz $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ifuzz -fsanitize=fuzzer $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

check: $(BIN) $(UNIT_BINS) $(REPLAY_BINS) $(FAKE)
	@AICHAT_BIN=$(abspath $(BIN)) FAKE_UPSTREAM=$(abspath $(FAKE)) \
	    UNIT_DIR=$(abspath $(BUILD)/tests) tests/run.sh

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
	    SAN='-fsanitize=address,undefined -fno-sanitize-recover=undefined' check

# Every fuzz target for FUZZ_SECONDS each (clang, libFuzzer, ASan +
# UBSan), after replaying fuzz/regress and the seeds; fails on any crash.
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
	    OPT='-O1 -g -fno-omit-frame-pointer -Wno-string-concatenation' \
	    SAN='$(FUZZ_SAN) -fsanitize=fuzzer-no-link' fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh build-fuzz $(FUZZ_NAMES)

fuzz-build: $(FUZZ_BINS)
.SECONDARY: $(BUILD)/fuzz/replay.o

# Breaks the code on purpose, one row of tests/mutants.tsv at a time, in a
# copy of the tree; fails when a mutant survives its tests.  Not in check.
mutate: $(BIN) $(UNIT_BINS) $(FAKE)
	@tools/mutate.sh

deps:
	@sh tools/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@AICHAT_HOME=$(abspath $(BUILD))/demo-home AICHAT_MOCK_DELAY_MS=60 ./$(BIN) chat -m mock:echo \
	    "Hello from aichat: this reply streams word by word from the offline mock model, no key and no network needed."
	@AICHAT_HOME=$(abspath $(BUILD))/demo-home ./$(BIN) rag index -c aichat-docs README.md man 2>/dev/null
	@AICHAT_HOME=$(abspath $(BUILD))/demo-home ./$(BIN) rag query -c aichat-docs -k 3 -m mock:echo \
	    "which exit status means some batch items failed"

bench: $(BIN) $(BUILD)/bench/ragbench
	@bench/run.sh

# The serve part alone: aichat serve against nginx and the mock upstream
# (bench/serve.sh, then memory per held stream by prompt size,
# bench/prompt_rss.sh; installs Debian's nginx when it is missing).
bench-serve: $(BIN)
	@bench/serve.sh
	@bench/prompt_rss.sh

# Times rag's own search code in one process (bench/rag.sh).
$(BUILD)/bench/ragbench: bench/ragbench.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/aichat
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 completions/aichat.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/aichat
	install -m 644 completions/_aichat $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_aichat
	install -m 644 completions/aichat.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/aichat.fish

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/aichat $(DESTDIR)$(PREFIX)/share/man/man1/aichat*.1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/aichat \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_aichat \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/aichat.fish

clean:
	rm -rf build build-asan build-fuzz aichat

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d) $(REPLAY_BINS:=.d) \
    $(FUZZ_BINS:=.d) $(BUILD)/fuzz/replay.d
