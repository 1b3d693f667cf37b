#!/usr/bin/env bats
# tests/docs.bats - --help, the man pages and the shell completions agree.
#
# The source of truth is the binary: the options of `aichat CMD --help`
# for every command (lines under "options:" like "  -m, --model MODEL   help"
# or "      --json   help") and the commands and global options of
# `aichat --help`.  Each completion file and man page must name every one
# of them and no other, and agree on which options take a value.  The
# checks are functions, so that the last tests can show that each of them
# fails on a copy with an option added or removed.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	ROOT=$AICHAT_ROOT
}

# ---- what --help says ----

# help_options TEXT: prints one line "--long -s ARG" per option under
# "options:" ("-" for no short name or no value).
help_options() {
	local line in=0 short
	local re='^  (-([A-Za-z]), )?[ ]*--([a-z][a-z0-9-]*)( ([A-Z][A-Z0-9_]*))?( |$)'
	while IFS= read -r line; do
		case $line in
		options:) in=1; continue ;;
		'') in=0; continue ;;
		esac
		((in)) || continue
		[[ $line =~ $re ]] || continue
		short=${BASH_REMATCH[2]:+-${BASH_REMATCH[2]}}
		printf -- '--%s %s %s\n' "${BASH_REMATCH[3]}" "${short:--}" "${BASH_REMATCH[5]:--}"
	done <<<"$1"
}

# help_commands TEXT: the command names under "commands:".
help_commands() {
	local line in=0
	while IFS= read -r line; do
		case $line in
		commands:) in=1; continue ;;
		'') in=0; continue ;;
		esac
		((in)) || continue
		if [[ $line =~ ^\ \ ([a-z][a-z0-9-]*)\  ]]; then
			echo "${BASH_REMATCH[1]}"
		fi
	done <<<"$1"
}

# Loads, from the binary, COMMANDS, TOP_OPTS and per command C:
# OPTS[C] (all names, short and long), ARGOPTS[C] (names of options taking
# a value), HELP[C] (parsed --help lines) and TEXT[C] (the --help text);
# ALL_OPTS is every option of every command.  CHAT_* are chat's.
load_help() {
	local top c text
	declare -gA OPTS ARGOPTS HELP TEXT
	top=$("$AICHAT_BIN" --help) || return 1
	TOP_OPTS=$(help_options "$top" | awk '{ print $1; if ($2 != "-") print $2 }' | sort -u)
	COMMANDS=$(help_commands "$top" | sort -u)
	ALL_OPTS=$TOP_OPTS
	for c in $COMMANDS; do
		text=$("$AICHAT_BIN" "$c" --help) || return 1
		TEXT[$c]=$text
		HELP[$c]=$(help_options "$text")
		OPTS[$c]=$(awk '{ print $1; if ($2 != "-") print $2 }' <<<"${HELP[$c]}" | sort -u)
		ARGOPTS[$c]=$(awk '$3 != "-" { print $1; if ($2 != "-") print $2 }' <<<"${HELP[$c]}" | sort -u)
		ALL_OPTS="$ALL_OPTS ${OPTS[$c]}"
		# A parse that finds nothing would make every check pass, and
		# one that skips a line would leave that option unchecked: every
		# line under "options:" that starts with a dash must be read.
		[ "$(wc -l <<<"${HELP[$c]}")" -ge 2 ] ||
			{ echo "cannot read the options of 'aichat $c --help'" >&2; return 1; }
		[ "$(wc -l <<<"${HELP[$c]}")" -eq \
			"$(sed -n '/^options:$/,/^$/p' <<<"$text" | grep -cE '^ +-')" ] ||
			{ echo "cannot read every option line of 'aichat $c --help'" >&2; return 1; }
		grep -qx -- --help <<<"${OPTS[$c]}" ||
			{ echo "'aichat $c --help' does not list --help" >&2; return 1; }
	done
	CHAT_HELP=${HELP[chat]}
	CHAT_OPTS=${OPTS[chat]}
	CHAT_ARGOPTS=${ARGOPTS[chat]}
	CHAT_TEXT=${TEXT[chat]}
	[ "$(wc -l <<<"$CHAT_HELP")" -ge 5 ] || { echo "cannot read the options of 'aichat chat --help'" >&2; return 1; }
	grep -qx -- --help <<<"$TOP_OPTS" || { echo "cannot read the options of 'aichat --help'" >&2; return 1; }
	grep -qx chat <<<"$COMMANDS" || { echo "cannot read the commands of 'aichat --help'" >&2; return 1; }
}

# The words of $1 (blank-separated), one per line, sorted, unique.
wordlist() {
	tr -s ' \t' '\n' <<<"$1" | sed '/^$/d' | sort -u
}

# same_set WHAT EXPECTED ACTUAL: the two word lists hold the same words;
# otherwise says which are missing and which are extra, and fails.
same_set() {
	local what=$1 missing extra
	missing=$(comm -23 <(wordlist "$2") <(wordlist "$3") | tr '\n' ' ')
	extra=$(comm -13 <(wordlist "$2") <(wordlist "$3") | tr '\n' ' ')
	if [ -n "$missing$extra" ]; then
		echo "$what disagrees with --help:${missing:+ missing: $missing}${extra:+ not in --help: $extra}" >&2
		return 1
	fi
}

# subset WHAT ALLOWED ACTUAL: every word of ACTUAL is in ALLOWED.
subset() {
	local what=$1 extra
	extra=$(comm -13 <(wordlist "$2") <(wordlist "$3") | tr '\n' ' ')
	if [ -n "$extra" ]; then
		echo "$what names options that --help lacks: $extra" >&2
		return 1
	fi
}

# Every --long-option written anywhere in a file.
long_options_in() {
	grep -oE -- '(^|[^a-zA-Z0-9_-])--[a-z][a-z0-9-]*' "$1" | sed 's/^[^-]*//' | sort -u
}

# ---- completion files ----

# bash: the word lists _aichat_commands, _aichat_global_opts,
# _aichat_chat_opts and _aichat_chat_argopts, the short and long names of
# the case arms, and every --long-option in the file.
bash_words() { # bash_words FILE VAR
	sed -n "s/^$2='\\(.*\\)'\$/\\1/p" "$1"
}

check_bash() {
	local f=$1 arms c
	for c in $COMMANDS; do
		same_set "$f: _aichat_${c}_opts" "${OPTS[$c]}" "$(bash_words "$f" "_aichat_${c}_opts")" || return 1
		same_set "$f: _aichat_${c}_argopts (options taking a value)" "${ARGOPTS[$c]}" \
			"$(bash_words "$f" "_aichat_${c}_argopts")" || return 1
	done
	same_set "$f: _aichat_global_opts" "$TOP_OPTS" "$(bash_words "$f" _aichat_global_opts)" || return 1
	same_set "$f: _aichat_commands" "$COMMANDS" "$(bash_words "$f" _aichat_commands)" || return 1
	arms=$(grep -E '^[[:space:]]*[a-z*]*:?-[-A-Za-z0-9 |:*]*\)' "$f" | sed 's/).*//' | tr '|' '\n' |
		sed 's/^[[:space:]]*[a-z*]*://' | tr -d ' \t' | grep -E '^--?[A-Za-z][A-Za-z0-9-]*$')
	subset "$f: case arms" "$ALL_OPTS" "$arms" || return 1
	subset "$f" "$ALL_OPTS" "$(long_options_in "$f")"
}

# zsh: the specs of the arrays chat_opts and top_opts (one option name per
# spec; a value-taking option has "]:" after its description) and the
# names of _aichat_commands.
zsh_specs() { # zsh_specs FILE ARRAY: prints "NAME VALUE?" per spec
	awk -v arr="$2" -v q="'" '
		$0 ~ "^[ \t]*" arr "=\\($" { on = 1; next }
		on && /^[ \t]*\)/ { on = 0 }
		on && match($0, "^[ \t]*" q "(\\([^)]*\\))?--?[A-Za-z][A-Za-z0-9-]*") {
			s = substr($0, 1, RLENGTH)
			sub("^[ \t]*" q "(\\([^)]*\\))?", "", s)
			print s, (index($0, "]:") ? "value" : "flag")
		}' "$1"
}

check_zsh() {
	local f=$1 specs cmds c
	for c in $COMMANDS; do
		specs=$(zsh_specs "$f" "${c}_opts")
		same_set "$f: ${c}_opts" "${OPTS[$c]}" "$(awk '{ print $1 }' <<<"$specs")" || return 1
		same_set "$f: ${c}_opts taking a value" "${ARGOPTS[$c]}" \
			"$(awk '$2 == "value" { print $1 }' <<<"$specs")" || return 1
	done
	same_set "$f: top_opts" "$TOP_OPTS" "$(zsh_specs "$f" top_opts | awk '{ print $1 }')" || return 1
	cmds=$(awk -v q="'" '/^[ \t]*_aichat_commands=\($/ { on = 1; next }
		on && /^[ \t]*\)/ { on = 0 }
		on { sub("^[ \t]*" q, ""); sub(/:.*/, ""); print }' "$f")
	same_set "$f: _aichat_commands" "$COMMANDS" "$cmds" || return 1
	subset "$f" "$ALL_OPTS" "$(long_options_in "$f")"
}

# fish: `complete -c aichat` lines; those with
# "__fish_seen_subcommand_from chat" are chat's, those with
# "__fish_use_subcommand" the top level's.  -s X / -l NAME name options,
# -x or -r marks one that takes a value, -a names commands at the top.
fish_opts() { # fish_opts FILE CONDITION: prints "NAME value|flag|cmd"
	awk -v cond="$2" -v q="'" '
		/^[ \t]*complete[ \t]/ && /-c[ \t]+aichat/ && index($0, cond) {
			line = $0
			sub(/[ \t](-d|--description)[ \t].*/, "", line)
			# The condition is no option of aichat: drop it.
			if (!sub("[ \t](-n|--condition)[ \t]+" q "[^" q "]*" q, " ", line))
				sub(/[ \t](-n|--condition)[ \t]+[^ \t]+/, " ", line)
			n = split(line, w, /[ \t]+/)
			val = "flag"; names = ""
			for (i = 1; i <= n; i++) {
				if (w[i] == "-x" || w[i] == "-r" || w[i] == "--exclusive" || w[i] == "--require-parameter")
					val = "value"
				else if ((w[i] == "-s" || w[i] == "--short-option") && i < n)
					names = names " -" w[++i]
				else if ((w[i] == "-l" || w[i] == "--long-option") && i < n)
					names = names " --" w[++i]
				else if ((w[i] == "-a" || w[i] == "--arguments") && i < n && names == "") {
					a = w[++i]; gsub(q, "", a); gsub(/"/, "", a)
					if (a !~ /^\(/) print a, "cmd"
				}
			}
			k = split(names, nm, " ")
			for (j = 1; j <= k; j++) print nm[j], val
		}' "$1"
}

check_fish() {
	local f=$1 opts top c
	for c in $COMMANDS; do
		opts=$(fish_opts "$f" "__fish_seen_subcommand_from $c'")
		same_set "$f: $c options" "${OPTS[$c]}" "$(awk '$2 != "cmd" { print $1 }' <<<"$opts")" || return 1
		same_set "$f: $c options taking a value (-x)" "${ARGOPTS[$c]}" \
			"$(awk '$2 == "value" { print $1 }' <<<"$opts")" || return 1
	done
	top=$(fish_opts "$f" "__fish_use_subcommand")
	same_set "$f: top-level options" "$TOP_OPTS" "$(awk '$2 != "cmd" { print $1 }' <<<"$top")" || return 1
	same_set "$f: commands" "$COMMANDS" "$(awk '$2 == "cmd" { print $1 }' <<<"$top")" || return 1
	subset "$f" "$ALL_OPTS" "$(long_options_in "$f")"
}

# ---- man pages ----

# Roff to plain text, enough for names: \- to -, fonts and quotes gone.
unroff() {
	sed -e 's/\\-/-/g' -e 's/\\f\[[^]]*\]//g' -e 's/\\f([A-Z][A-Z]//g' \
		-e 's/\\f[A-Z1-4]//g' -e 's/\\&//g' -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" \
		-e 's/\\(lq//g' -e 's/\\(rq//g' -e 's/\\ / /g' -e 's/\\~/ /g'
}

# section FILE NAME: the lines of section NAME (from ".SH NAME" to the
# next ".SH").
section() {
	awk -v want="$2" '
		/^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s); on = (s == want); next }
		on' "$1"
}

# tags FILE NAME: the tag lines of the .TP entries of a section, as text.
tags() {
	section "$1" "$2" | awk 'tp { print; tp = 0; next } /^\.TP/ { tp = 1 }' |
		unroff | sed -E 's/^\.[A-Z]+[ \t]*//; s/"//g; s/,/ /g'
}

# The options of the lines that run "aichat CMD" (examples and text):
# the words after "aichat CMD", up to a pipe, a redirection or "--" on
# that line (a "--" ends the options of its own line only).
invoked_options() { # invoked_options FILE CMD
	unroff <"$1" | grep -F "aichat $2" | sed "s/.*aichat $2//; s/[|;<>].*//" |
		sed -E "s/\"[^\"]*\"//g; s/'[^']*'//g; s/(^|[ \t])--([ \t].*)?\$//" |
		tr -s ' \t' '\n' | grep -oE -- '^--?[A-Za-z][A-Za-z0-9-]*' | sort -u
}

# The aichat-CMD(1) OPTIONS: one .TP entry per option, its tag naming the
# short and long names and the metavariable of --help; the bounds and
# defaults that --help shows in parentheses, word for word; and no other
# option named anywhere outside examples, nor in examples of "aichat CMD".
# The text may show another command's line ("aichat chat --cid ID" in
# aichat-history(1)): such a line is left out here, and checked against
# that command's options by the test of every 'aichat CMD' line.
check_man_chat() {
	check_man_cmd "$1" chat
}

check_man_cmd() {
	local f=$1 c=$2 t names body long short arg paren tagline prose other others=''
	t=$(tags "$f" OPTIONS)
	names=$(grep -oE -- '(^|[ \t])--?[A-Za-z][A-Za-z0-9-]*' <<<"$t" | tr -d ' \t')
	same_set "$f: OPTIONS" "${OPTS[$c]}" "$names" || return 1
	body=$(section "$f" OPTIONS | unroff | sed -E 's/^\.[A-Z]+[ \t]*//; s/"//g' | tr '\n' ' ' | tr -s ' ')
	while read -r long short arg; do
		tagline=$(grep -E -- "(^|[ \t])$long([ \t]|\$)" <<<"$t" | head -1)
		if [ "$short" != - ] && ! grep -qE -- "(^|[ \t])$short([ \t]|\$)" <<<"$tagline"; then
			echo "$f: OPTIONS: $long is not given with $short" >&2
			return 1
		fi
		if [ "$arg" != - ] && ! grep -qE -- "${long}[ \t]+${arg}([ \t]|\$)" <<<"$tagline"; then
			echo "$f: OPTIONS: $long is not shown with its value $arg: '$tagline'" >&2
			return 1
		fi
		if [ "$arg" = - ] && grep -qE -- "${long}[ \t]+[A-Z]" <<<"$tagline"; then
			echo "$f: OPTIONS: $long takes no value, yet shows one: '$tagline'" >&2
			return 1
		fi
		paren=$(grep -A1 -E -- "^ *(-[A-Za-z], )?$long( |\$)" <<<"${TEXT[$c]}" |
			grep -oE '\([^()]*\)$' | head -1 || true)
		if [ -n "$paren" ] && ! grep -qF -- "$paren" <<<"$body"; then
			echo "$f: OPTIONS: $long lacks '$paren' of --help" >&2
			return 1
		fi
	done <<<"${HELP[$c]}"
	for other in $COMMANDS; do
		[ "$other" = "$c" ] || others+="s/aichat $other([^|;<>]*)//g;"
	done
	awk '/^\.EX/ { ex = 1 } /^\.EE/ { ex = 0; next } !ex' "$f" | unroff |
		sed -E "$others" >"$BATS_TEST_TMPDIR/prose"
	prose=$(long_options_in "$BATS_TEST_TMPDIR/prose")
	subset "$f: text" "${OPTS[$c]} $TOP_OPTS" "$prose" || return 1
	subset "$f: 'aichat $c' command lines" "${OPTS[$c]}" "$(invoked_options "$f" "$c")"
}

# aichat(1): OPTIONS are the global options; the Commands subsection has
# one .TP entry per command; SEE ALSO names each command's page.
check_man_top() {
	local f=$1 cmds c
	same_set "$f: OPTIONS" "$TOP_OPTS" \
		"$(tags "$f" OPTIONS | grep -oE -- '(^|[ \t])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' \t')" || return 1
	cmds=$(awk '/^\.S[HS]/ { on = ($0 ~ /^\.SS[ \t]+"?Commands"?$/); next }
		on && tp { print; tp = 0; next } on && /^\.TP/ { tp = 1 }' "$f" | unroff |
		sed -E 's/^\.[A-Z]+[ \t]*//; s/"//g')
	same_set "$f: Commands" "$COMMANDS" "$cmds" || return 1
	for c in $COMMANDS; do
		section "$f" "SEE ALSO" | unroff | grep -q "aichat-$c" ||
			{ echo "$f: SEE ALSO lacks aichat-$c(1)" >&2; return 1; }
	done
	for c in $COMMANDS; do
		subset "$f: 'aichat $c' command lines" "${OPTS[$c]}" "$(invoked_options "$f" "$c")" || return 1
	done
}

# ---- the tests ----

@test "aichat --help and aichat CMD --help print to stdout and exit 0" {
	local c
	run --separate-stderr aichat --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ $output == usage:\ aichat* ]]
	load_help
	for c in $COMMANDS; do
		run --separate-stderr aichat "$c" --help
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
		[[ $output == "usage: aichat $c"* ]]
		run --separate-stderr aichat "$c" -h
		[ "$status" -eq 0 ]
		[[ $output == "usage: aichat $c"* ]]
	done
}

@test "aichat --version and -V print 'aichat X.Y.Z'" {
	run --separate-stderr aichat --version
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ $output =~ ^aichat\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	if [ -f "$ROOT/VERSION" ]; then
		[ "$output" = "aichat $(<"$ROOT/VERSION")" ]
	fi
	run aichat -V
	[ "$status" -eq 0 ]
	[[ $output =~ ^aichat\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "bash completion names exactly the options and commands of --help" {
	load_help
	check_bash "$ROOT/completions/aichat.bash"
}

@test "zsh completion names exactly the options and commands of --help" {
	load_help
	check_zsh "$ROOT/completions/_aichat"
}

@test "fish completion names exactly the options and commands of --help" {
	load_help
	check_fish "$ROOT/completions/aichat.fish"
}

@test "aichat-CMD(1) OPTIONS document exactly the options of each command's --help" {
	local c
	load_help
	for c in $COMMANDS; do
		check_man_cmd "$ROOT/man/aichat-$c.1" "$c"
	done
}

@test "aichat(1) documents the commands and global options of --help" {
	load_help
	check_man_top "$ROOT/man/aichat.1"
	for c in $COMMANDS; do
		[ -f "$ROOT/man/aichat-$c.1" ] || { echo "no man page man/aichat-$c.1" >&2; false; }
	done
}

@test "man pages and README use only existing options on 'aichat CMD' lines" {
	local f c
	load_help
	for f in "$ROOT"/man/*.1 "$ROOT/README.md"; do
		for c in $COMMANDS; do
			subset "${f##*/}: 'aichat $c' command lines" "${OPTS[$c]}" \
				"$(invoked_options "$f" "$c")"
		done
	done
}

@test "man pages have every required section" {
	local f s
	for f in "$ROOT"/man/*.1; do
		for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES \
			"EXIT STATUS" EXAMPLES "SEE ALSO"; do
			grep -qE "^\.SH[ \t]+\"?$s\"?[ \t]*\$" "$f" ||
				{ echo "${f##*/}: no section $s" >&2; false; }
		done
	done
}

@test "aichat(1) documents every exit status" {
	local s
	for s in 0 1 2 3 4 5 130; do
		section "$ROOT/man/aichat.1" "EXIT STATUS" | grep -qx "\.B $s" ||
			{ echo "aichat.1: EXIT STATUS lacks $s" >&2; false; }
	done
}

@test "bash completion completes commands, options and models" {
	complete_bash() { # complete_bash CWORD WORD...
		bash -c 'source "$1"; shift; COMP_CWORD=$1; shift; COMP_WORDS=("$@")
			_aichat; printf "%s\n" "${COMPREPLY[@]}"' _ \
			"$ROOT/completions/aichat.bash" "$@"
	}
	load_help
	run complete_bash 2 aichat chat --mo
	[ "$status" -eq 0 ]
	[ "$output" = --model ]
	for c in $COMMANDS; do
		run complete_bash 2 aichat "$c" -
		same_set "bash completion of 'aichat $c -'" "${OPTS[$c]}" "$output"
	done
	run complete_bash 1 aichat -
	same_set "bash completion of 'aichat -'" "$TOP_OPTS" "$output"
	run complete_bash 1 aichat ''
	same_set "bash completion of 'aichat '" "$COMMANDS" "$output"
	run complete_bash 3 aichat chat -m ''
	grep -qx mock:echo <<<"$output"
	grep -qx anthropic:claude-sonnet-4-6 <<<"$output"
	# A value, not a file name.
	run complete_bash 3 aichat chat --timeout ''
	[ -z "$output" ]
	run complete_bash 3 aichat chat -t ''
	[ -z "$output" ]
	# serve: models as for chat, a fixed list, file names, or nothing.
	run complete_bash 3 aichat serve -m ''
	grep -qx mock:echo <<<"$output"
	run complete_bash 2 aichat serve --model=anthropic:claude-h
	[ "$output" = claude-haiku-4-5 ]
	run complete_bash 3 aichat serve --log-format ''
	same_set "bash completion of 'aichat serve --log-format '" "json text" "$output"
	run complete_bash 2 aichat serve --log-format=t
	[ "$output" = text ]
	run complete_bash 3 aichat serve --host ''
	[ -z "$output" ]
	run complete_bash 3 aichat serve --port ''
	[ -z "$output" ]
	mkdir "$BATS_TEST_TMPDIR/keys.d" && touch "$BATS_TEST_TMPDIR/keys.d/keys.txt"
	run complete_bash 3 aichat serve --api-key-file "$BATS_TEST_TMPDIR/keys.d/k"
	[ "$output" = "$BATS_TEST_TMPDIR/keys.d/keys.txt" ]
	if grep -qx history <<<"$COMMANDS"; then
		run complete_bash 2 aichat history ''
		same_set "bash completion of 'aichat history '" "list show search rm" "$output"
		run complete_bash 3 aichat history show ''
		[ -z "$output" ]
	fi
}

@test "bash completion offers the aliases of the config file" {
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '{\n "aliases": {\n  "fast": "openai:gpt-4o-mini",\n  "smart": "anthropic:claude-sonnet-4-6"\n }\n}\n' \
		>"$XDG_CONFIG_HOME/aichat/config.json"
	run bash -c 'source "$1"; COMP_WORDS=(aichat chat --model s); COMP_CWORD=3
		_aichat; printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/completions/aichat.bash"
	[ "$status" -eq 0 ]
	[ "$output" = smart ]
}

# zsh and fish come from tools/deps.sh, like bats itself.
@test "zsh and fish completions parse; fish completes the options and serve's models" {
	local c
	load_help
	zsh -n "$ROOT/completions/_aichat"
	fish -n "$ROOT/completions/aichat.fish"
	for c in $COMMANDS; do
		# shellcheck disable=SC2016 # fish expands $argv
		run fish -N -c 'source $argv[1]; complete -C "aichat $argv[2] -"' \
			"$ROOT/completions/aichat.fish" "$c"
		[ "$status" -eq 0 ]
		same_set "fish completion of 'aichat $c -'" "${OPTS[$c]}" "$(cut -f1 <<<"$output")"
	done
	# shellcheck disable=SC2016
	run fish -N -c 'source $argv[1]; complete -C "aichat serve -m mock:"' \
		"$ROOT/completions/aichat.fish"
	[ "$status" -eq 0 ]
	[ "$(cut -f1 <<<"$output")" = mock:echo ]
}

@test "make install puts the binary, man pages and completions in place" {
	local root=$BATS_TEST_TMPDIR/root build=build f
	# Install the binary under test: ./aichat, or build-asan/aichat etc.
	case $AICHAT_BIN in
	"$ROOT"/*/aichat) build=${AICHAT_BIN#"$ROOT"/}; build=${build%/aichat} ;;
	esac
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory install DESTDIR="$root" PREFIX=/usr BUILD="$build"
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	[ -x "$root/usr/bin/aichat" ]
	[ "$("$root/usr/bin/aichat" --version)" = "$(aichat --version)" ]
	for f in "$ROOT"/man/*.1; do
		cmp "$f" "$root/usr/share/man/man1/${f##*/}"
	done
	[ -f "$root/usr/share/man/man1/aichat.1" ]
	[ -f "$root/usr/share/man/man1/aichat-chat.1" ]
	cmp "$ROOT/completions/aichat.bash" "$root/usr/share/bash-completion/completions/aichat"
	cmp "$ROOT/completions/_aichat" "$root/usr/share/zsh/site-functions/_aichat"
	cmp "$ROOT/completions/aichat.fish" "$root/usr/share/fish/vendor_completions.d/aichat.fish"
}

# ---- the checks catch a disagreement ----

# mutate SRC DST SED-SCRIPT: a changed copy, which must differ.
mutate() {
	sed -e "$3" "$1" >"$2"
	! cmp -s "$1" "$2" || { echo "mutation '$3' changed nothing in $1" >&2; return 1; }
}

@test "the checks fail on a completion file with an option --help lacks" {
	local d=$BATS_TEST_TMPDIR
	load_help
	mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
		"s/^_aichat_chat_opts='/_aichat_chat_opts='--frobnicate /"
	run check_bash "$d/a.bash"
	[ "$status" -ne 0 ]
	[[ $output == *--frobnicate* ]]
	mutate "$ROOT/completions/_aichat" "$d/_aichat" \
		"/^[[:space:]]*'--json\\[/a\\
		'--frobnicate[make it so]'"
	run check_zsh "$d/_aichat"
	[ "$status" -ne 0 ]
	[[ $output == *--frobnicate* ]]
	mutate "$ROOT/completions/aichat.fish" "$d/a.fish" \
		"\$a\\
complete -c aichat -n '__fish_seen_subcommand_from chat' -s F -l frobnicate -d 'make it so'"
	run check_fish "$d/a.fish"
	[ "$status" -ne 0 ]
	[[ $output == *--frobnicate* ]]
}

@test "the checks fail on a completion file or man page missing an option" {
	local d=$BATS_TEST_TMPDIR
	load_help
	mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
		"/^_aichat_chat_opts=/s/ --json//"
	run check_bash "$d/a.bash"
	[ "$status" -ne 0 ]
	[[ $output == *--json* ]]
	mutate "$ROOT/completions/_aichat" "$d/_aichat" "/^[[:space:]]*'--json\\[/d"
	run check_zsh "$d/_aichat"
	[ "$status" -ne 0 ]
	mutate "$ROOT/completions/aichat.fish" "$d/a.fish" "/-l json /d"
	run check_fish "$d/a.fish"
	[ "$status" -ne 0 ]
	mutate "$ROOT/man/aichat-chat.1" "$d/chat.1" '/^\.B \\-\\-json$/d'
	run check_man_chat "$d/chat.1"
	[ "$status" -ne 0 ]
	[[ $output == *--json* ]]
}

@test "the checks fail when a value-taking option or a bound disagrees" {
	local d=$BATS_TEST_TMPDIR
	load_help
	mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
		"/^_aichat_chat_argopts=/s/ --retries//"
	run check_bash "$d/a.bash"
	[ "$status" -ne 0 ]
	mutate "$ROOT/completions/aichat.fish" "$d/a.fish" "/-l retries /s/ -x / /"
	run check_fish "$d/a.fish"
	[ "$status" -ne 0 ]
	mutate "$ROOT/man/aichat-chat.1" "$d/chat.1" 's/(0\.\.10, default 2)/(0..9, default 2)/'
	run check_man_chat "$d/chat.1"
	[ "$status" -ne 0 ]
	mutate "$ROOT/man/aichat-chat.1" "$d/chat.1" 's/^\(\.BI \\-\\-retries\) " N"$/\1 " COUNT"/'
	run check_man_chat "$d/chat.1"
	[ "$status" -ne 0 ]
	mutate "$ROOT/man/aichat-chat.1" "$d/chat.1" 's/^aichat chat \\-m mock:echo hello$/aichat chat \\-\\-frobnicate hello/'
	run check_man_chat "$d/chat.1"
	[ "$status" -ne 0 ]
}

# The same for every command, not only chat: an option added to or removed
# from one command's list, or a command dropped, must make each check fail
# and name what differs.
@test "the checks fail on a disagreement about any command's options" {
	local d=$BATS_TEST_TMPDIR c long
	load_help
	for c in $COMMANDS; do
		# A long option of c that takes a value, other than --help.
		long=$(awk '$1 != "--help" && $3 != "-" { print $1; exit }' <<<"${HELP[$c]}")
		[ -n "$long" ]
		mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
			"s/^_aichat_${c}_opts='/_aichat_${c}_opts='--frobnicate /"
		run check_bash "$d/a.bash"
		[ "$status" -ne 0 ]
		[[ $output == *--frobnicate* ]]
		mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
			"/^_aichat_${c}_opts=/s/\\([ ']\\)$long\\([ ']\\)/\\1\\2/"
		run check_bash "$d/a.bash"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
			"/^_aichat_${c}_argopts=/s/\\([ ']\\)$long\\([ ']\\)/\\1\\2/"
		run check_bash "$d/a.bash"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		mutate "$ROOT/completions/_aichat" "$d/_aichat" \
			"/^[[:space:]]*${c}_opts=(\$/a\\
		'--frobnicate[make it so]'"
		run check_zsh "$d/_aichat"
		[ "$status" -ne 0 ]
		[[ $output == *--frobnicate* ]]
		mutate "$ROOT/completions/_aichat" "$d/_aichat" \
			"/^[[:space:]]*${c}_opts=(\$/,/^[[:space:]]*)/{/^[[:space:]]*'\\(([^)]*)\\)\\{0,1\\}$long[=[]/d;}"
		run check_zsh "$d/_aichat"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		mutate "$ROOT/completions/aichat.fish" "$d/a.fish" \
			"\$a\\
complete -c aichat -n '__fish_seen_subcommand_from $c' -l frobnicate -d 'make it so'"
		run check_fish "$d/a.fish"
		[ "$status" -ne 0 ]
		[[ $output == *--frobnicate* ]]
		mutate "$ROOT/completions/aichat.fish" "$d/a.fish" \
			"/__fish_seen_subcommand_from $c'.* -l ${long#--} /d"
		run check_fish "$d/a.fish"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		mutate "$ROOT/completions/aichat.fish" "$d/a.fish" \
			"/__fish_seen_subcommand_from $c'.* -l ${long#--} /s/ -[xr] / /"
		run check_fish "$d/a.fish"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		# The man page: the .TP tag of the option gone.
		mutate "$ROOT/man/aichat-$c.1" "$d/c.1" \
			"/^\\.TP\$/{n;/$(sed 's/-/\\\\-/g' <<<"$long")/d;}"
		run check_man_cmd "$d/c.1" "$c"
		[ "$status" -ne 0 ]
		[[ $output == *"$long"* ]]
		# A command line of the man page with an unknown option.
		printf '.SH EXAMPLES\n.EX\naichat %s \\-\\-frobnicate\n.EE\n' "$c" >"$d/ex"
		cat "$ROOT/man/aichat-$c.1" "$d/ex" >"$d/c.1"
		run check_man_cmd "$d/c.1" "$c"
		[ "$status" -ne 0 ]
		[[ $output == *--frobnicate* ]]
		# The command missing from each command list.
		mutate "$ROOT/completions/aichat.bash" "$d/a.bash" \
			"/^_aichat_commands=/{s/'$c /'/;s/ $c'/'/;s/ $c / /;}"
		run check_bash "$d/a.bash"
		[ "$status" -ne 0 ]
		mutate "$ROOT/completions/_aichat" "$d/_aichat" "/^[[:space:]]*'$c:/d"
		run check_zsh "$d/_aichat"
		[ "$status" -ne 0 ]
		mutate "$ROOT/completions/aichat.fish" "$d/a.fish" "/__fish_use_subcommand.* -a $c /d"
		run check_fish "$d/a.fish"
		[ "$status" -ne 0 ]
		mutate "$ROOT/man/aichat.1" "$d/top.1" "/^\\.SS Commands/,/^\\.S[HS]/{/^\\.B $c\$/d;}"
		run check_man_top "$d/top.1"
		[ "$status" -ne 0 ]
	done
}

@test "RELIABILITY.md cites only tests that exist" {
	run python3 "$ROOT/tools/check_reliability.py" "$ROOT/RELIABILITY.md" "$ROOT/tests"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# A citation of a test that is not there is caught, by file and name.
	d=$BATS_TEST_TMPDIR
	printf '| x | `serve.bats`: "no such test here", "SIGTERM drains: ..." |\n' >"$d/r.md"
	run python3 "$ROOT/tools/check_reliability.py" "$d/r.md" "$ROOT/tests"
	[ "$status" -eq 1 ]
	[ "$output" = 'serve.bats: no test named "no such test here"' ]
}
