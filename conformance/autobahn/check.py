#!/usr/bin/env python3
"""Compares an Autobahn fuzzingserver report with conformance/autobahn/expected.json.

    python3 conformance/autobahn/check.py --report OUTDIR/index.json \
        --expected conformance/autobahn/expected.json [--cases '1.*,6.4.*'] \
        [--label blocking] [--json-summary FILE]
    python3 conformance/autobahn/check.py --update-reports ws://127.0.0.1:9001

Every case the selection names (the expected file's cases matching
--cases, Autobahn's own pattern rules: `*` is any text, matched whole) must
be in the report for every agent in it, with `behavior` and `behaviorClose`
equal to the expected ones. Anything NON-STRICT, FAILED, UNCLEAN, WRONG
CODE, FAILED BY CLIENT or UNIMPLEMENTED, a case missing from the report, a
case in the report that the expected file does not know, or a report with
no agent fails. Exit 0 when all hold, 1 otherwise, 2 on usage errors.
Standard library only.
"""
import argparse
import base64
import json
import os
import re
import socket
import sys
from urllib.parse import urlsplit

ACCEPTABLE = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(x) for x in case_id.split("."))


def pattern_re(patterns):
    """Autobahn's case patterns (caseset.py): '.' literal, '*' any text."""
    parts = ["^" + p.strip().replace(".", r"\.").replace("*", ".*") + "$" for p in patterns if p.strip()]
    return re.compile("|".join(parts)) if parts else None


def update_reports(url):
    """Asks the fuzzingserver to write its reports (for every agent): the
    WebSocket handshake to /updateReports is enough, the server writes them
    before it answers with a close frame."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET /updateReports?agent=mpnet-scripts HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(req.encode())
        data = b""
        # The 101 head, then the server's close frame (sent after the reports are written).
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 6:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"check.py: /updateReports was not accepted: {data[:200]!r}")
        # Answer the close (masked, code 1000) so the server closes cleanly.
        s.sendall(bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))


def check(args):
    with open(args.expected) as f:
        expected = json.load(f)["cases"]
    try:
        with open(args.report) as f:
            report = json.load(f)
    except FileNotFoundError:
        print(f"FAIL: no report at {args.report} (did the client run and the server write reports?)")
        return 1
    sel = pattern_re(args.cases.split(",")) if args.cases else None
    wanted = sorted((c for c in expected if sel is None or sel.match(c)), key=case_key)
    label = f"[{args.label}] " if args.label else ""
    if not report:
        print(f"{label}FAIL: the report has no agent (no case ran)")
        return 1
    failed = 0
    summary = {}
    for agent, results in sorted(report.items()):
        counts = {}
        problems = []
        for case in wanted:
            exp = expected[case]
            got = results.get(case)
            if got is None:
                problems.append((case, "missing from the report (the client did not run it)"))
                counts["MISSING"] = counts.get("MISSING", 0) + 1
                continue
            b, bc = got.get("behavior"), got.get("behaviorClose")
            counts[b] = counts.get(b, 0) + 1
            why = []
            if b not in ACCEPTABLE or bc not in ACCEPTABLE:
                why.append("not OK/INFORMATIONAL")
            if (b, bc) != (exp["behavior"], exp["behaviorClose"]):
                why.append(f"expected {exp['behavior']}/{exp['behaviorClose']}")
            if why:
                problems.append(
                    (case, f"{b}/{bc} (close code {got.get('remoteCloseCode')}, "
                           f"{got.get('duration')} ms): {'; '.join(why)}; see {got.get('reportfile')}")
                )
        for case in sorted(set(results) - set(expected), key=case_key):
            if sel is None or sel.match(case):
                problems.append((case, f"{results[case].get('behavior')}: not in the expected file"))
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        verdict = "PASS" if not problems else "FAIL"
        print(f"{label}{verdict} agent {agent}: {len(wanted)} cases: {shown}")
        for case, msg in problems:
            print(f"{label}  {case}: {msg}")
        failed += len(problems)
        summary[agent] = {"cases": len(wanted), "counts": counts, "problems": dict(problems)}
    if args.json_summary:
        with open(args.json_summary, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", help="the fuzzingserver's index.json")
    ap.add_argument("--expected", help="conformance/autobahn/expected.json")
    ap.add_argument("--cases", help="comma-separated case patterns (default: every expected case)")
    ap.add_argument("--label", help="a prefix for the output lines (the transport)")
    ap.add_argument("--json-summary", help="also write a JSON summary here")
    ap.add_argument("--update-reports", metavar="URL", help="ask the fuzzingserver at URL to write its reports")
    args = ap.parse_args()
    if args.update_reports:
        update_reports(args.update_reports)
        return 0
    if not args.report or not args.expected:
        ap.error("--report and --expected are required")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
