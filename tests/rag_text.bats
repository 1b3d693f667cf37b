#!/usr/bin/env bats
# aichat rag index reads real files: gzip, HTML, man pages, PDF through
# pdftotext; bad ones are skipped with a reason, counted in one summary
# line, listed by -v, and never stop the rest.  Fixtures are made here.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/aichat-home"
	T="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$T/d"
	printf 'The quokka lives on Rottnest Island.\n' >"$T/d/plain.txt"
	cd "$T" || return 1
}

index() {
	run --separate-stderr aichat rag index "$@"
}

# Every stored chunk of the file named $1 (a path under $T), joined.
chunks_of() {
	sqlite3 "$AICHAT_HOME/aichat.db" "SELECT group_concat(k.text, char(10)) FROM chunks k
		JOIN documents d ON d.id = k.document_id WHERE d.path = '$T/$1' ORDER BY k.seq"
}

manpage() {
	cat <<'EOF'
.\" a comment that must not be indexed: commentword
.TH FROBNICATE 1 "2024" "frob 1.0" "User Commands"
.de XX
macrobodyword should never show
..
.SH NAME
frobnicate \- twiddle the \fBwidgets\fR of a gadget
.SH SYNOPSIS
.B frobnicate
.RB [ \-\-force ]
.I FILE
.SH OPTIONS
.TP
.BR \-f ", " \-\-force
Overwrite the \fIoutput\fP file \(em without asking.
.IP \(bu 2
Lists use \e and \[em] glyphs.
.SS Exit status
Zero on success.
EOF
}

@test "a gzip man page and a gzip changelog are indexed as text; the inner name decides" {
	manpage | gzip >d/frobnicate.1.gz
	printf 'changelog mentions the zanzibar release\n' | gzip >d/changelog.gz
	index d
	[ "$status" -eq 0 ]
	[[ $stderr == *"3 files added, 0 updated, 0 unchanged, 0 skipped"* ]]
	[[ $stderr != *skipped\ 1* ]]
	run --separate-stderr aichat rag search --json -k 1 zanzibar
	[ "$(json_get 0.path <<<"$output")" = d/changelog.gz ]
	run --separate-stderr aichat rag search --json -k 1 twiddle widgets
	[ "$(json_get 0.path <<<"$output")" = d/frobnicate.1.gz ]
	text=$(chunks_of d/frobnicate.1.gz)
	# Rendered: headings as lines, glyphs as characters, no roff left.
	[[ $text == *"# FROBNICATE(1)"* ]]
	[[ $text == *"## NAME"* ]]
	[[ $text == *"frobnicate - twiddle the widgets of a gadget"* ]]
	[[ $text == *"frobnicate [--force] FILE"* ]]
	[[ $text == *"-f, --force"$'\n'"Overwrite the output file — without asking."* ]]
	[[ $text == *"### Exit status"* ]]
	[[ $text != *'\f'* && $text != *'\-'* && $text != *'\('* && $text != *.TP* ]]
	[[ $text != *commentword* && $text != *macrobodyword* ]]
}

@test "a re-run leaves converted files unchanged; a changed .gz is read again" {
	manpage | gzip >d/frobnicate.1.gz
	index d
	index d
	[[ $stderr == *"0 files added, 0 updated, 2 unchanged, 0 skipped"* ]]
	{ manpage; printf 'Added the quasar option.\n'; } | gzip >d/frobnicate.1.gz
	index d
	[[ $stderr == *"0 files added, 1 updated, 1 unchanged"* ]]
	run --separate-stderr aichat rag search --json -k 1 quasar
	[ "$(json_get 0.path <<<"$output")" = d/frobnicate.1.gz ]
}

@test "HTML: tags, comments, scripts and styles dropped, entities decoded, headings kept" {
	cat >d/page.html <<'EOF'
<!DOCTYPE html>
<html><head><title>Gadget &amp; Co</title>
<style>.scriptword { color: red }</style>
<script>var styleword = "<p>not text</p>";</script></head>
<body><!-- commentword -->
<h1>Install the <em>gadget</em></h1>
<p class="intro" data-x="a > b">Caf&eacute; &#233;t&#xE9; &lt;tag&gt; &copy; &unknown; AT&T</p>
<h2>Usage</h2><ul><li>first item</li><li>second&nbsp;item</li></ul>
</body></html>
EOF
	index d
	[ "$status" -eq 0 ]
	text=$(chunks_of d/page.html)
	[[ $text == *"# Gadget & Co"* ]]
	[[ $text == *"# Install the gadget"* ]]
	[[ $text == *"## Usage"* ]]
	[[ $text == *"Café été <tag> © &unknown; AT&T"* ]]
	[[ $text == *"first item"$'\n'"second item"* ]]
	[[ $text != *"<p"* && $text != *"<li>"* && $text != *intro* ]]
	for w in scriptword styleword commentword; do
		run --separate-stderr aichat rag search "$w"
		[ "$output" = "" ]
	done
}

@test "HTML without a name that says so is known by its start" {
	printf '<html><body><p>sniffedword&#33;</p></body></html>' >d/page.txt
	index d
	[ "$(chunks_of d/page.txt)" = "sniffedword!" ]
}

@test "a corrupt .gz is skipped with its reason, the rest is indexed, the old text kept" {
	printf 'yakword in a good gzip file\n' | gzip >d/notes.gz
	index d
	[[ $stderr == *"2 files added"* ]]
	# Cut short: the good version stays searchable.
	head -c 20 d/notes.gz >d/cut && mv d/cut d/notes.gz
	printf '\037\213garbage that is not deflate data at all' >d/junk.gz
	index d
	[ "$status" -eq 0 ]
	[[ $stderr == *"aichat: rag: skipped 2 files: 2 corrupt (--verbose lists them)"* ]]
	[[ $stderr == *"0 files added, 0 updated, 1 unchanged, 2 skipped"* ]]
	[[ $stderr != *notes.gz* ]]
	run --separate-stderr aichat rag search --json -k 1 yakword
	[ "$(json_get 0.path <<<"$output")" = d/notes.gz ]
	index -v d
	[[ $stderr == *"aichat: rag: '$T/d/notes.gz' is truncated gzip data, skipped"* ]]
	[[ $stderr == *"aichat: rag: '$T/d/junk.gz' is corrupt gzip data ("*"), skipped"* ]]
	[[ $stderr == *"aichat: rag: skipped 2 files: 2 corrupt"$'\n'* ]]
}

@test "a gzip bomb stops at --max-file-size: the text just under is indexed, one byte more is not" {
	# 4 MB of text in a few KB.
	{ printf 'bombword\n'; head -c 4000000 /dev/zero | tr '\0' 'a'; } | gzip >d/bomb.gz
	[ "$(stat -c %s d/bomb.gz)" -lt 100000 ]
	{ printf 'exactword\n'; head -c 1990 /dev/zero | tr '\0' 'b'; } >d/exact.txt
	gzip d/exact.txt
	index -v --max-file-size 1000000 d
	[ "$status" -eq 0 ]
	[[ $stderr == *"'$T/d/bomb.gz' decompresses to more than 1000000 bytes (--max-file-size), skipped"* ]]
	[[ $stderr == *"skipped 1 file: 1 too large"* ]]
	run --separate-stderr aichat rag search bombword
	[ "$output" = "" ]
	# exact.txt.gz holds 2000 bytes of text: a cap of 2000 takes it, 1999
	# does not.
	index -c edge --max-file-size 2000 d/exact.txt.gz
	[[ $stderr == *"1 files added"* ]]
	index -c edge2 --max-file-size 1999 d/exact.txt.gz
	[[ $stderr == *"skipped 1 file: 1 too large"* ]]
	[[ $stderr == *"0 files added"* ]]
}

@test "an HTML file of 50 MB with no newline is skipped at once as too large; the rest is indexed" {
	{ printf '<html><body><p>'; head -c 50000000 /dev/zero | tr '\0' 'w'; } >d/huge.html
	start=$(date +%s)
	index d
	[ "$status" -eq 0 ]
	[ $(($(date +%s) - start)) -lt 10 ]
	[[ $stderr == *"aichat: rag: skipped 1 file: 1 too large (--verbose lists them)"* ]]
	[[ $stderr == *"1 files added, 0 updated, 0 unchanged, 1 skipped"* ]]
	run --separate-stderr aichat rag search quokka
	[[ $output == *d/plain.txt* ]]
	index -v d
	[[ $stderr == *"'$T/d/huge.html' is larger than 33554432 bytes (--max-file-size), skipped"* ]]
}

@test "HTML of one long line under the cap is converted in pieces: its last word is found" {
	python3 - d/long.html <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("<html><body>")
    for i in range(60000):
        f.write("<p>filler &amp; words number %d here</p>" % i)
    f.write("<p>endmarker&#x21;</p></body></html>")
PY
	[ "$(wc -l <d/long.html)" -eq 0 ]
	index d
	[ "$status" -eq 0 ]
	run --separate-stderr aichat rag search --json -k 1 endmarker
	[ "$(json_get 0.path <<<"$output")" = d/long.html ]
	[[ $(json_get 0.snippet <<<"$output") == *"endmarker!"* ]]
}

@test "a man page with broken macros is indexed whole, with a warning -v explains" {
	cat >d/broken.1 <<'EOF'
.TH BROKEN 1
.SH NAME
broken \- a page with trouble
.ZZ unknownmacroword stays
Truncated escapes \f and \( and \[unclosed keep going word1
.de NEVERCLOSED
afterdefword is text after a definition never closed
EOF
	index d
	[ "$status" -eq 0 ]
	[[ $stderr == *"aichat: rag: 1 file indexed with warnings (--verbose lists them)"* ]]
	[[ $stderr == *"2 files added, 0 updated, 0 unchanged, 0 skipped"* ]]
	for w in unknownmacroword word1 afterdefword; do
		run --separate-stderr aichat rag search --json -k 1 "$w"
		[ "$(json_get 0.path <<<"$output")" = d/broken.1 ]
	done
	index -v --prune d -c again
	[[ $stderr == *"aichat: rag: '$T/d/broken.1' has 1 unknown roff macros (first .ZZ) and 1 unterminated blocks, kept as text"* ]]
}

@test "a PDF without pdftotext is skipped with the reason; the rest is indexed" {
	printf '%%PDF-1.4\n%%\342\343\n1 0 obj << >> endobj\n\0\0' >d/doc.pdf
	mkdir -p "$BATS_TEST_TMPDIR/empty"
	run --separate-stderr env PATH="$BATS_TEST_TMPDIR/empty" "$AICHAT_BIN" rag index -v d
	[ "$status" -eq 0 ]
	[[ $stderr == *"aichat: rag: '$T/d/doc.pdf' is a PDF and pdftotext is not installed (Debian: poppler-utils), skipped"* ]]
	[[ $stderr == *"aichat: rag: skipped 1 file: 1 no pdftotext"$'\n'* ]]
	[[ $stderr == *"1 files added"* ]]
}

@test "the four bad inputs in one run: each a reason in the summary, the rest indexed, nothing lost" {
	printf 'keptword in the first good version\n' | gzip >d/notes.gz
	printf '<p>htmlword</p>\n' >d/small.html
	index d
	[ "$status" -eq 0 ]
	[[ $stderr == *"3 files added"* ]]
	# Then notes.gz turns corrupt, and a 50 MB HTML line, a man page
	# with broken macros, a PDF (no pdftotext on PATH) and a good file
	# arrive.
	printf '\037\213not deflate data at all' >d/notes.gz
	{ printf '<html><body><p>'; head -c 50000000 /dev/zero | tr '\0' 'w'; } >d/huge.html
	printf '.TH BROKEN 1\n.SH NAME\nbroken \\- trouble\n.ZZ brokenword stays\n' >d/broken.1
	printf '%%PDF-1.4\n%%\342\343\n1 0 obj << >> endobj\n\0\0' >d/doc.pdf
	printf 'freshword in a new file\n' >d/new.txt
	mkdir -p "$BATS_TEST_TMPDIR/empty"
	run --separate-stderr env PATH="$BATS_TEST_TMPDIR/empty" "$AICHAT_BIN" rag index -v d
	[ "$status" -eq 0 ]
	[[ $stderr == *"aichat: rag: '$T/d/notes.gz' is corrupt gzip data ("*"), skipped"$'\n'* ]]
	[[ $stderr == *"aichat: rag: '$T/d/huge.html' is larger than 33554432 bytes (--max-file-size), skipped"$'\n'* ]]
	[[ $stderr == *"aichat: rag: '$T/d/broken.1' has 1 unknown roff macro (first .ZZ), kept as text"$'\n'* ]]
	[[ $stderr == *"aichat: rag: '$T/d/doc.pdf' is a PDF and pdftotext is not installed (Debian: poppler-utils), skipped"$'\n'* ]]
	[[ $stderr == *"aichat: rag: skipped 3 files: 1 corrupt, 1 no pdftotext, 1 too large"$'\n'* ]]
	[[ $stderr == *"aichat: rag: 1 file indexed with warnings"$'\n'* ]]
	[[ $stderr == *"2 files added, 0 updated, 2 unchanged, 3 skipped"* ]]
	# The old text of notes.gz is kept; everything else readable is in.
	run --separate-stderr aichat rag search --json -k 1 keptword
	[ "$(json_get 0.path <<<"$output")" = d/notes.gz ]
	run --separate-stderr aichat rag search --json -k 1 htmlword
	[ "$(json_get 0.path <<<"$output")" = d/small.html ]
	run --separate-stderr aichat rag search --json -k 1 brokenword
	[ "$(json_get 0.path <<<"$output")" = d/broken.1 ]
	run --separate-stderr aichat rag search --json -k 1 freshword
	[ "$(json_get 0.path <<<"$output")" = d/new.txt ]
	run --separate-stderr aichat rag search --json -k 1 quokka
	[ "$(json_get 0.path <<<"$output")" = d/plain.txt ]
	run --separate-stderr aichat rag info --json
	[ "$(json_get documents <<<"$output")" = 5 ]
}

# A stand-in for pdftotext: prints the words of its behaviour file.
fake_pdftotext() {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/pdftotext" <<EOF
#!/bin/sh
# args: -q -enc UTF-8 -- FILE -
echo "\$*" >"$BATS_TEST_TMPDIR/pdf-args"
$1
EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/pdftotext"
	printf '%%PDF-1.4\n\0\0' >d/doc.pdf
}

@test "a PDF goes through pdftotext when it is installed: its text is indexed" {
	fake_pdftotext 'printf "Pdfword on page one.\f\nSecond page.\n"'
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run --separate-stderr "$AICHAT_BIN" rag index d
	[ "$status" -eq 0 ]
	[[ $stderr == *"2 files added, 0 updated, 0 unchanged, 0 skipped"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/pdf-args")" = "-q -enc UTF-8 -- $T/d/doc.pdf -" ]
	run --separate-stderr aichat rag search --json -k 1 pdfword
	[ "$(json_get 0.path <<<"$output")" = d/doc.pdf ]
}

@test "pdftotext failing, hanging or printing without end: skipped with the reason" {
	fake_pdftotext 'echo partialword; exit 3'
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run --separate-stderr "$AICHAT_BIN" rag index -v d
	[ "$status" -eq 0 ]
	[[ $stderr == *"'$T/d/doc.pdf' could not be read by pdftotext (exit status 3), skipped"* ]]
	run --separate-stderr aichat rag search partialword
	[ "$output" = "" ]
	fake_pdftotext 'exec sleep 30'
	start=$(date +%s)
	AICHAT_PDF_TIMEOUT=1 PATH="$BATS_TEST_TMPDIR/bin:$PATH" run --separate-stderr "$AICHAT_BIN" rag index -v d
	[ $(($(date +%s) - start)) -lt 10 ]
	[[ $stderr == *"'$T/d/doc.pdf' took pdftotext more than 1 s (AICHAT_PDF_TIMEOUT), skipped"* ]]
	fake_pdftotext 'exec yes endlesstextword'
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run --separate-stderr "$AICHAT_BIN" rag index -v --max-file-size 100000 d
	[[ $stderr == *"'$T/d/doc.pdf' has more than 100000 bytes of text (--max-file-size), skipped"* ]]
	[[ $stderr == *"skipped 1 file: 1 too large"* ]]
}

@test "many skipped files make one summary line, counted by reason, most first" {
	for i in 1 2 3; do printf 'bin\0ary' >"d/b$i.bin"; done
	printf '\037\213xx' >d/c.gz
	index d
	[ "$status" -eq 0 ]
	[ "$(grep -c . <<<"$stderr")" -eq 2 ]
	[[ ${stderr%%$'\n'*} == "aichat: rag: skipped 4 files: 3 binary, 1 corrupt (--verbose lists them)" ]]
	index -v d
	[ "$(grep -c "skipped$" <<<"$stderr")" -eq 4 ]
}

@test "make demo's collection answers from rendered man pages, never roff" {
	cp -r "$BATS_TEST_DIRNAME/../man" "$BATS_TEST_DIRNAME/../README.md" .
	index -c aichat-docs README.md man
	[ "$status" -eq 0 ]
	[[ $stderr != *skipped\ [0-9]*\ file* ]]
	run --separate-stderr aichat rag query -c aichat-docs -k 3 -m mock:echo \
		"which exit status means some batch items failed"
	[ "$status" -eq 0 ]
	[[ $output == *"man/aichat-batch.1:"* || $output == *"man/aichat.1:"* ]]
	[[ $output == *"## EXIT STATUS"* ]]
	[[ $output != *.TP* && $output != *'\-'* && $output != *'\f'* && $output != *.SH* ]]
}
