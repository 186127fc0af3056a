#!/usr/bin/python3
"""Check header and function sizes (docs/architecture.md, "Dependency rules").

Prints every violation (FILE:LINE: what: N lines, limit M -- reason) and
exits 1 if there is any, 0 otherwise.

    /usr/bin/python3 tests/check_sizes.py [--root DIR]

A function body is counted the way the house style writes it: a line that
is exactly "{" at column 0 right after a signature (the previous non-blank
line ends with ")"), up to the next line starting with "}" at column 0;
the lines strictly between the two are the body's size.
"""

import argparse
import os
import re
import sys

# (what, folders, file suffixes, limit, reason)
LIMITS = [
    ("header", ["proxy"], (".h",), 300,
     "a room's header is its table of contents; past 300 lines it hides more than it shows"),
    ("function", ["codec", "config", "flatten", "tls", "proxy"], (".c", ".h"), 100,
     "a function over 100 lines does several things; name them as functions"),
]

SIG_NAME_RE = re.compile(r"([A-Za-z_]\w*)\s*\(")


def files(root, folders, suffixes):
    for top in folders:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith(suffixes):
                    full = os.path.join(dirpath, fn)
                    yield os.path.relpath(full, root).replace(os.sep, "/")


def function_name(lines, brace):
    """The name in the signature that ends just above line index `brace`."""
    sig = []
    i = brace - 1
    while i >= 0 and lines[i].strip() and len(sig) < 8:
        s = lines[i].rstrip()
        if sig and (s.endswith((";", "}", "*/")) or s.startswith("#")):
            break
        sig.insert(0, s.strip())
        i -= 1
    m = SIG_NAME_RE.search(" ".join(sig))
    return m.group(1) if m else "?"


def functions(lines):
    """Yield (line number of the '{', name, body lines)."""
    i = 0
    n = len(lines)
    while i < n:
        if lines[i].rstrip("\n") == "{":
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and lines[j].rstrip().endswith(")"):
                k = i + 1
                while k < n and not lines[k].startswith("}"):
                    k += 1
                yield i + 1, function_name(lines, i), k - i - 1
                i = k
        i += 1


def check(root):
    violations = []
    for what, folders, suffixes, limit, reason in LIMITS:
        for rel in files(root, folders, suffixes):
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
            if what == "header":
                if len(lines) > limit:
                    violations.append((rel, 1, "header", len(lines), limit, reason))
            else:
                for lineno, name, size in functions(lines):
                    if size > limit:
                        violations.append((rel, lineno, "function %s()" % name, size, limit, reason))
    return violations


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root to check (default: this script's repository)")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.root, "proxy")):
        print("check_sizes: %s is not an apexd tree" % args.root, file=sys.stderr)
        return 2
    violations = check(args.root)
    for rel, lineno, what, size, limit, reason in violations:
        print("%s:%d: %s: %d lines, limit %d -- %s" % (rel, lineno, what, size, limit, reason))
    print("check_sizes: %d violation(s)" % len(violations), file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
