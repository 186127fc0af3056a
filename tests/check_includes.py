#!/usr/bin/python3
"""Check who may include whom (docs/architecture.md, "Dependency rules").

Reads every #include line of the .c and .h files under codec/ config/ tls/
flatten/ proxy/ tests/ bench/ and checks them against RULES below. Prints
one line per violation (FILE:LINE: "HEADER": rule -- reason) and exits 1
if there is any, 0 otherwise.

    /usr/bin/python3 tests/check_includes.py [--root DIR]

--root checks another tree (default: the repository this script is in).
No network, no build needed.
"""

import argparse
import os
import re
import sys

# Folders whose .c/.h files are read.
SCANNED = ["codec", "config", "tls", "flatten", "proxy", "tests", "bench"]

# Patterns are paths relative to the repository root:
#   *   any characters except '/'     (proxy/*.h: a header at proxy/'s root)
#   **  any characters, '/' included  (codec/**: anything under codec/)
#
# A rule applies to the files matching `files` (and not `except_files`).
# It looks at their quoted includes ("..."), or at every include (also
# <...>) when `angle` is true; with `among`, only at the includes matching
# one of those patterns. Then:
#   only: each include looked at must match one of these patterns;
#   deny: no include looked at may match any of these patterns.
RULES = [
    dict(name="codec-alone", files=["codec/**"], only=["codec/**"],
         reason="the wire format is the bottom layer: it builds, tests and fuzzes on its own"),
    dict(name="config-alone", files=["config/**"], only=["config/**"],
         reason="the INI parser serves every module and must not depend on what it configures"),
    dict(name="tls-alone", files=["tls/**"], only=["tls/**"],
         reason="tls/ wraps OpenSSL only; proxy/ glues it to connections"),
    dict(name="tls-no-uv", files=["tls/**"], angle=True, deny=["uv.h", "uv/**"],
         reason="the TLS stream runs over memory BIOs (bytes in, bytes out); libuv stays in proxy/"),
    dict(name="flatten-pure", files=["flatten/**"], only=["flatten/**", "codec/**"],
         reason="flattening is pure logic over codec buffers, unit-testable without sockets or config"),
    dict(name="io-no-dns", files=["proxy/io/**"], among=["proxy/**", "flatten/**"],
         only=["proxy/io/**", "proxy/ops/log.h", "proxy/ops/stats.h"],
         reason="io/ is socket plumbing without DNS logic: no engine/ listen/ backend/ flat/ daemon/"),
    dict(name="listen-not-backend", files=["proxy/listen/**"], deny=["proxy/backend/**"],
         reason="transports never see the backend's structs; the engine stands between them"),
    dict(name="backend-not-listen", files=["proxy/backend/**"], deny=["proxy/listen/**"],
         reason="the backend never sees a transport's structs; the engine stands between them"),
    dict(name="ctlreq-alone", files=["proxy/ops/ctlreq.*"], only=["proxy/ops/ctlreq.h", "codec/**"],
         reason="ctlreq.c is linked into apexctl too, which links codec/ and nothing of the daemon"),
    dict(name="apexctl-thin", files=["proxy/apexctl.c"], only=["proxy/ops/ctlreq.h", "codec/**"],
         reason="apexctl is built from apexctl.c + ops/ctlreq.c against codec/ only"),
    dict(name="rooms-not-root", files=["proxy/*/**"], deny=["proxy/*"],
         reason="proxy/'s root holds the programs (main.c, apexctl.c); the rooms never reach up into them"),
    dict(name="no-c-include", files=["**"], deny=["**.c"],
         reason="a .c file is compiled once, by its own library; include its header instead"),
    dict(name="proxy-on-top", files=["**"], except_files=["proxy/**", "tests/**", "bench/**"],
         deny=["proxy/**"],
         reason="direction codec <- flatten <- proxy, tls <- proxy, config <- proxy: proxy/ is the top"),
]
# And one rule that is not a pattern:
RESOLVE_REASON = "quoted includes are written from the repository root and must name an existing file"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def glob_re(pattern):
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def compile_rules(rules):
    for r in rules:
        for key in ("files", "except_files", "among", "only", "deny"):
            r[key + "_re"] = [glob_re(p) for p in r.get(key, [])]
    return rules


def matches(path, regexes):
    return any(rx.match(path) for rx in regexes)


def sources(root):
    for top in SCANNED:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith((".c", ".h")):
                    full = os.path.join(dirpath, fn)
                    yield os.path.relpath(full, root).replace(os.sep, "/")


def check(root):
    rules = compile_rules(RULES)
    violations = []
    nfiles = nincl = 0
    for rel in sources(root):
        nfiles += 1
        applicable = [r for r in rules
                      if matches(rel, r["files_re"]) and not matches(rel, r["except_files_re"])]
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                quoted = m.group(1) == '"'
                hdr = m.group(2).strip()
                if quoted:
                    nincl += 1
                    if not os.path.isfile(os.path.join(root, hdr)):
                        violations.append((rel, lineno, hdr, "resolves", RESOLVE_REASON))
                for r in applicable:
                    if not quoted and not r.get("angle"):
                        continue
                    if r["among_re"] and not matches(hdr, r["among_re"]):
                        continue
                    if r["only_re"] and not matches(hdr, r["only_re"]):
                        violations.append((rel, lineno, hdr, r["name"], r["reason"]))
                    elif r["deny_re"] and matches(hdr, r["deny_re"]):
                        violations.append((rel, lineno, hdr, r["name"], r["reason"]))
    return nfiles, nincl, violations


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root to check (default: this script's repository)")
    ap.add_argument("--rules", action="store_true", help="print the rule table and exit")
    args = ap.parse_args()
    if args.rules:
        for r in RULES:
            print("%-20s %s" % (r["name"], r["reason"]))
        print("%-20s %s" % ("resolves", RESOLVE_REASON))
        return 0
    if not os.path.isdir(os.path.join(args.root, "proxy")):
        print("check_includes: %s is not an apexd tree" % args.root, file=sys.stderr)
        return 2
    nfiles, nincl, violations = check(args.root)
    for rel, lineno, hdr, name, reason in violations:
        print('%s:%d: "%s": %s -- %s' % (rel, lineno, hdr, name, reason))
    print("check_includes: %d files, %d quoted includes, %d violation(s)"
          % (nfiles, nincl, len(violations)), file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
