#!/usr/bin/env python3
"""slow_client.py - an HTTP client that reads an SSE stream slowly, or not
at all for a while, for tests/backpressure.bats.

    slow_client.py --port P --path /chat --body JSON [--header 'K: V']...
                   [--stall S] [--rate BYTES_PER_S] [--close-after-stall]
                   [--pid PID] [--report FILE] [--rcvbuf BYTES]

Sends the request, reads the response head, then reads nothing for --stall
seconds, then reads the body at --rate bytes a second (0: as fast as it
comes) to its end, or closes the connection at once (--close-after-stall).
All along it samples the VmRSS of --pid and the number in --report (the
fake upstream's count of bytes sent) every 0.1 s.  Prints one JSON object:

    status          the HTTP status
    bytes           body bytes read (after de-chunking)
    events          SSE events read; bad_events: those whose data is not
                    JSON (nor [DONE])
    content         characters of answer text in the events (aichat's
                    "content", OpenAI's delta.content, Anthropic's
                    delta.text)
    last            the data of the last event (its first 200 characters)
    cut             the server closed the connection before the end
    error_events    events named "error" or with an "error" field
    rss_start_kb, rss_max_kb       of --pid, at the start and the most seen
    sent_at_stall_end              --report's number when the stall ended
    sent_late_in_stall             and 1.5 s before (0 for a shorter stall)
    max_lag         the most --report ran ahead of the bytes read
    seconds         from the request to the end
"""
import argparse
import http.client
import json
import socket
import sys
import time


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reported(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


class Stats:
    def __init__(self, a):
        self.a = a
        self.rss_start = rss_kb(a.pid) if a.pid else 0
        self.rss_max = self.rss_start
        self.max_lag = 0
        self.read = 0
        self.last_sample = 0.0

    def sample(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_sample < 0.1:
            return
        self.last_sample = now
        if self.a.pid:
            self.rss_max = max(self.rss_max, rss_kb(self.a.pid))
        if self.a.report:
            self.max_lag = max(self.max_lag, reported(self.a.report) - self.read)


def text_of(obj):
    if not isinstance(obj, dict):
        return ""
    if isinstance(obj.get("content"), str):
        return obj["content"]
    if obj.get("type") == "content_block_delta":
        return (obj.get("delta") or {}).get("text") or ""
    out = ""
    for ch in obj.get("choices") or []:
        c = (ch.get("delta") or {}).get("content")
        if isinstance(c, str):
            out += c
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--stall", type=float, default=0)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--close-after-stall", action="store_true")
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--report")
    p.add_argument("--rcvbuf", type=int, default=0)
    a = p.parse_args()

    st = Stats(a)
    start = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    sock.connect(("127.0.0.1", a.port))
    conn = http.client.HTTPConnection("127.0.0.1", a.port)
    conn.sock = sock
    headers = {"Content-Type": "application/json"}
    for h in a.header:
        k, v = h.split(":", 1)
        headers[k.strip()] = v.strip()
    conn.request("POST", a.path, a.body.encode(), headers)
    resp = conn.getresponse()

    end_stall = time.monotonic() + a.stall
    sent_late = None
    while time.monotonic() < end_stall:
        st.sample(force=True)
        if sent_late is None and a.report and a.stall > 1.5 and \
                end_stall - time.monotonic() <= 1.5:
            sent_late = reported(a.report)
        time.sleep(0.1)
    st.sample(force=True)
    sent_at_stall_end = reported(a.report) if a.report else 0

    result = {"status": resp.status, "bytes": 0, "events": 0, "bad_events": 0,
              "content": 0, "last": None, "error_events": 0, "cut": False}
    if a.close_after_stall:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    else:
        pending = b""
        t0 = time.monotonic()
        while True:
            try:
                chunk = resp.read1(16384)
            except (http.client.IncompleteRead, ConnectionError):
                result["cut"] = True
                break
            if not chunk:
                break
            st.read += len(chunk)
            pending += chunk
            *events, pending = pending.split(b"\n\n")
            for ev in events:
                name, data = None, []
                for line in ev.split(b"\n"):
                    if line.startswith(b"event:"):
                        name = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        data.append(line[5:].lstrip(b" "))
                if not data:
                    continue  # a comment (keep-alive)
                d = b"\n".join(data).decode()
                result["events"] += 1
                result["last"] = d
                if name == "error":
                    result["error_events"] += 1
                if d == "[DONE]":
                    continue
                try:
                    obj = json.loads(d)
                except ValueError:
                    result["bad_events"] += 1
                    continue
                if isinstance(obj, dict) and (obj.get("error") or obj.get("type") == "error"):
                    result["error_events"] += 1
                result["content"] += len(text_of(obj))
            st.sample()
            if a.rate > 0:
                ahead = st.read / a.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        result["bytes"] = st.read
    st.sample(force=True)
    result.update(rss_start_kb=st.rss_start, rss_max_kb=st.rss_max,
                  sent_at_stall_end=sent_at_stall_end,
                  sent_late_in_stall=sent_late or 0, max_lag=st.max_lag,
                  seconds=round(time.monotonic() - start, 2))
    if result["last"] and len(result["last"]) > 200:
        result["last"] = result["last"][:200] + "..."
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
