#!/usr/bin/env python3
"""Builds the evaluation corpus from documentation installed on Debian.

usage: build_corpus.py DUMPTEXT OUTDIR

Every file is rendered to text by aichat's own extractor (DUMPTEXT, built
from dumptext.c), so that every engine indexes the same text.  The choice
of files is a function of what is installed, sorted by name:
  man/NAME.SECTION      man pages of sections 1, 5 and 8 (no symlinks,
                        no gcloud_* pages: thousands of near-twins)
  licenses/NAME         /usr/share/common-licenses/*
  doc/PKG/FILE          /usr/share/doc/PKG/{copyright,changelog.Debian*,README*}
Prints the number of files written.
"""
import os
import subprocess
import sys

MAX = 2 << 20


def regular(p):
    return os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) <= MAX


def strip_gz(name):
    return name[:-3] if name.endswith(".gz") else name


def sources():
    for sec in ("1", "5", "8"):
        d = "/usr/share/man/man" + sec
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if f.startswith("gcloud") or not regular(p):
                continue
            yield p, "man/" + strip_gz(f)
    d = "/usr/share/common-licenses"
    if os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if regular(p):
                yield p, "licenses/" + f
    d = "/usr/share/doc"
    for pkg in sorted(os.listdir(d)):
        pd = os.path.join(d, pkg)
        if not os.path.isdir(pd) or os.path.islink(pd):
            continue
        for f in sorted(os.listdir(pd)):
            if not (f == "copyright" or f.startswith("changelog.Debian")
                    or f.startswith("README")):
                continue
            p = os.path.join(pd, f)
            if regular(p):
                yield p, "doc/%s/%s" % (pkg, strip_gz(f))


def main():
    dumptext, out = sys.argv[1], sys.argv[2]
    lines, seen = [], set()
    for src, rel in sources():
        if rel in seen:
            continue
        seen.add(rel)
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        lines.append("%s\t%s\n" % (src, dst))
    subprocess.run([dumptext], input="".join(lines).encode(), check=False,
                   stderr=subprocess.DEVNULL)
    n = sum(len(fs) for _, _, fs in os.walk(out))
    print(n)


if __name__ == "__main__":
    main()
