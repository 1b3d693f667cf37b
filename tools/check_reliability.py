#!/usr/bin/env python3
"""Checks that every test RELIABILITY.md cites exists.

    check_reliability.py RELIABILITY.md TESTS_DIR

A citation is a backticked bats file followed by quoted test names:
`serve.bats`: "name one", "name two".  A name ending in "..." is the start
of a test's name.  Prints each citation that names no test and exits 1 if
there is one; exits 1 as well if the file cites no test at all.
"""
import os
import re
import sys


def tests_of(path):
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*@test\s+"(.*)"\s*\{\s*$', line)
            if m:
                names.append(m.group(1).replace('\\"', '"'))
    return names


def main():
    doc, tests_dir = sys.argv[1], sys.argv[2]
    text = open(doc, encoding="utf-8").read()
    bad, seen = [], 0
    for line in text.splitlines():
        # Each `file.bats`: "..." run up to the next backticked file.
        for m in re.finditer(r'`([\w.-]+\.bats)`:((?:\s*,?\s*"[^"]*")+)', line):
            file = os.path.join(tests_dir, m.group(1))
            if not os.path.exists(file):
                bad.append(f"{m.group(1)}: no such test file")
                continue
            names = tests_of(file)
            for cited in re.findall(r'"([^"]*)"', m.group(2)):
                seen += 1
                if cited.endswith("..."):
                    ok = any(n.startswith(cited[:-3].rstrip()) for n in names)
                else:
                    ok = cited in names
                if not ok:
                    bad.append(f'{m.group(1)}: no test named "{cited}"')
    for b in bad:
        print(b)
    if not seen:
        print("no test cited")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
