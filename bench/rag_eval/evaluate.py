#!/usr/bin/env python3
"""Scores the engines of bench/rag_eval.sh on the questions of QRELS.

usage: evaluate.py CORPUS QRELS AICHAT_HOME AICHAT LUNR_JSON [LABEL]

aichat: 'aichat rag search -k 20 --json' on collection 'eval' of
AICHAT_HOME, its chunks folded to files (first place of each).
fts5: SQLite FTS5, tokenize='porter unicode61', one row per whole file,
ranked by bm25() over the query's words joined by OR.
lunr: the rankings lunr_search.js wrote.
Scores are file-level: MRR@10, nDCG@10 (binary gains), Recall@10, per
kind of question.  Prints a markdown table.
"""
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import time


def words(q):
    return re.findall(r"[A-Za-z0-9]+", q)


def fts5_rankings(corpus, qrels):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(path UNINDEXED, text,"
               " tokenize='porter unicode61')")
    for d, _, fs in os.walk(corpus):
        for f in fs:
            p = os.path.join(d, f)
            with open(p, encoding="utf-8", errors="replace") as fh:
                db.execute("INSERT INTO f VALUES (?, ?)",
                           (os.path.relpath(p, corpus), fh.read()))
    out = {}
    for q in qrels:
        m = " OR ".join('"%s"' % w for w in words(q["query"]))
        rows = db.execute("SELECT path FROM f WHERE f MATCH ? ORDER BY bm25(f)"
                          " LIMIT 10", (m,)).fetchall()
        out[q["id"]] = [r[0] for r in rows]
    return out


def aichat_rankings(corpus, qrels, home, aichat):
    env = dict(os.environ, AICHAT_HOME=home)
    out, times = {}, []
    root = os.path.realpath(corpus)
    for q in qrels:
        t = time.monotonic()
        r = subprocess.run([aichat, "rag", "search", "-c", "eval", "-k", "20",
                            "--json", q["query"]], env=env,
                           capture_output=True, text=True)
        times.append(time.monotonic() - t)
        files = []
        if r.returncode == 0:
            for h in json.loads(r.stdout):
                p = os.path.relpath(os.path.realpath(h["path"]), root)
                if p not in files:
                    files.append(p)
        else:
            sys.stderr.write("aichat: %s: %s" % (q["id"], r.stderr))
        out[q["id"]] = files[:10]
    times.sort()
    return out, times[len(times) // 2]


def scores(ranking, rel):
    rr = 0.0
    for i, f in enumerate(ranking[:10]):
        if f in rel:
            rr = 1.0 / (i + 1)
            break
    dcg = sum(1 / math.log2(i + 2) for i, f in enumerate(ranking[:10]) if f in rel)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), 10)))
    rec = len(set(ranking[:10]) & rel) / len(rel)
    return rr, dcg / idcg, rec


def main():
    corpus, qfile, home, aichat, lunr = sys.argv[1:6]
    qrels = json.load(open(qfile))
    engines = [("aichat", aichat_rankings(corpus, qrels, home, aichat)[0])]
    engines.append(("FTS5 porter, whole files", fts5_rankings(corpus, qrels)))
    engines.append(("lunr 2.3, 40-line chunks", json.load(open(lunr))))
    print("| engine | natural MRR@10 | nDCG@10 | R@10 | keyword MRR@10 | nDCG@10 | R@10 |")
    print("|---|---|---|---|---|---|---|")
    for name, rk in engines:
        cells = []
        for kind in ("natural", "keyword"):
            qs = [q for q in qrels if q["kind"] == kind]
            s = [scores(rk.get(q["id"], []), set(q["relevant"])) for q in qs]
            cells += ["%.2f" % (sum(x[i] for x in s) / len(s)) for i in range(3)]
        print("| %s | %s |" % (name, " | ".join(cells)))
    if os.environ.get("RAG_EVAL_DETAIL"):
        for q in qrels:
            print("%s %-60s %s" % (q["id"], q["query"][:60], " ".join(
                "%.2f" % scores(rk.get(q["id"], []), set(q["relevant"]))[0]
                for _, rk in engines)))


if __name__ == "__main__":
    main()
