#!/usr/bin/python3
"""Strict checker for the Prometheus text exposition format 0.0.4, as
apexd's /metrics must serve it.

  promcheck.py check FILE [--prefix apexd_]
      exit 0 if FILE is well formed, else 1 with one line per problem
  promcheck.py value FILE SERIES
      print the value of SERIES, e.g. 'apexd_queries_udp_total' or
      'apexd_answers_by_rcode_total{rcode="NXDOMAIN"}' (labels in any
      order); exit 1 if it is absent

What "well formed" means here (the format's rules plus what we ask of
apexd):
  - every line ends in '\\n' and is a sample, '# HELP', '# TYPE' or
    another comment; no empty lines;
  - metric and label names match the format's character sets; label
    values are quoted with only \\\\, \\" and \\n escapes; a series has no
    label twice; values are Go floats (NaN, +Inf, -Inf allowed);
    no timestamps (apexd sends none);
  - every family has exactly one HELP and one TYPE, both before its
    first sample, TYPE one of counter/gauge/histogram/summary/untyped;
    a family's samples are contiguous; no series appears twice;
  - a counter's samples are named like its family (which ends in
    _total), never negative; a gauge's likewise;
  - a histogram has, per label set, _bucket series with an le label in
    strictly increasing order ending at +Inf, counts that never decrease,
    _count equal to the +Inf bucket, and a _sum;
  - with --prefix, every family starts with it.
"""
import math
import re
import sys

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise Bad(f"value {s!r} is not a float")
    return float(s)


def parse_labels(s, i):
    """s[i] == '{'; returns (tuple of (name, value), index after '}')."""
    labels = []
    i += 1
    seen = set()
    while True:
        if i < len(s) and s[i] == "}":
            return tuple(labels), i + 1
        m = LABEL_RE.match(s, i)
        if not m:
            raise Bad(f"bad label name at column {i + 1}")
        name = m.group(0)
        if name in seen:
            raise Bad(f"label {name} twice")
        seen.add(name)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad(f"label {name}: expected =\"")
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Bad(f"label {name}: unterminated value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt == "\\":
                    val.append("\\")
                elif nxt == '"':
                    val.append('"')
                elif nxt == "n":
                    val.append("\n")
                else:
                    raise Bad(f"label {name}: bad escape \\{nxt}")
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad(f"label {name}: raw newline")
            else:
                val.append(c)
                i += 1
        labels.append((name, "".join(val)))
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            continue
        else:
            raise Bad(f"label {name}: expected , or }}")


def parse_sample(line):
    m = NAME_RE.match(line)
    if not m:
        raise Bad("sample does not start with a metric name")
    name, i = m.group(0), m.end()
    labels = ()
    if i < len(line) and line[i] == "{":
        labels, i = parse_labels(line, i)
    if i >= len(line) or line[i] != " ":
        raise Bad("expected one space before the value")
    rest = line[i + 1:]
    parts = rest.split(" ")
    if len(parts) != 1:
        raise Bad("timestamps or extra fields after the value")
    return name, labels, parse_value(parts[0])


def family_of(sample, families):
    """The family a sample name belongs to (histogram suffixes)."""
    if sample in families:
        return sample
    for suf in ("_bucket", "_sum", "_count"):
        if sample.endswith(suf) and sample[: -len(suf)] in families:
            return sample[: -len(suf)]
    return None


def check(text, prefix=None):
    problems = []
    if not text.endswith("\n"):
        problems.append("the text does not end in a newline")
    helps, types = {}, {}
    order = []  # families in the order their samples appear
    samples = {}  # (name, sorted labels) -> value
    per_family = {}
    current = None
    for no, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line == "":
                raise Bad("empty line")
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    kind, fam = parts[1], parts[2]
                    if not NAME_RE.fullmatch(fam):
                        raise Bad(f"bad metric name {fam!r}")
                    if fam in per_family:
                        raise Bad(f"{kind} for {fam} after its samples")
                    d = helps if kind == "HELP" else types
                    if fam in d:
                        raise Bad(f"second {kind} for {fam}")
                    arg = parts[3] if len(parts) == 4 else ""
                    if kind == "TYPE" and arg not in TYPES:
                        raise Bad(f"TYPE {fam}: unknown type {arg!r}")
                    if kind == "HELP" and re.search(r"\\[^\\n]", arg.replace("\\\\", "")):
                        raise Bad(f"HELP {fam}: bad escape")
                    d[fam] = arg
                continue
            name, labels, value = parse_sample(line)
            fam = family_of(name, types)
            if fam is None:
                raise Bad(f"sample {name} before any TYPE of its family")
            if fam != current:
                if fam in per_family:
                    raise Bad(f"samples of {fam} are not contiguous")
                per_family[fam] = []
                order.append(fam)
                current = fam
            key = (name, tuple(sorted(labels)))
            if key in samples:
                raise Bad(f"series {name}{dict(labels)} twice")
            samples[key] = value
            per_family[fam].append((name, labels, value))
        except Bad as e:
            problems.append(f"line {no}: {e}: {line[:120]!r}")
    for fam in sorted(set(helps) | set(types)):
        if fam not in helps:
            problems.append(f"{fam}: no HELP")
        if fam not in types:
            problems.append(f"{fam}: no TYPE")
        if prefix and not fam.startswith(prefix):
            problems.append(f"{fam}: not prefixed {prefix}")
        if fam not in per_family:
            problems.append(f"{fam}: HELP/TYPE without samples")
    for fam, rows in per_family.items():
        t = types.get(fam)
        if t in ("counter", "gauge", "untyped"):
            for name, labels, value in rows:
                if name != fam:
                    problems.append(f"{fam}: sample named {name}")
                if t == "counter" and not value >= 0:
                    problems.append(f"{fam}: counter value {value}")
            if t == "counter" and not fam.endswith("_total"):
                problems.append(f"{fam}: counter family without _total")
        elif t == "histogram":
            problems += check_histogram(fam, rows)
    return problems


def check_histogram(fam, rows):
    problems = []
    groups = {}
    for name, labels, value in rows:
        rest = tuple(sorted(l for l in labels if l[0] != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            le = [v for k, v in labels if k == "le"]
            if len(le) != 1:
                problems.append(f"{fam}: bucket without le")
                continue
            try:
                g["buckets"].append((parse_value(le[0]), value))
            except Bad as e:
                problems.append(f"{fam}: le: {e}")
        elif name == fam + "_sum":
            g["sum"] = value
        elif name == fam + "_count":
            g["count"] = value
        else:
            problems.append(f"{fam}: sample {name} in a histogram")
    for rest, g in groups.items():
        where = f"{fam}{dict(rest)}"
        b = g["buckets"]
        if not b or b[-1][0] != math.inf:
            problems.append(f"{where}: no +Inf bucket last")
        for (le1, c1), (le2, c2) in zip(b, b[1:]):
            if not le2 > le1:
                problems.append(f"{where}: le {le2} after {le1}")
            if c2 < c1:
                problems.append(f"{where}: bucket count drops at le {le2}")
        if g["count"] is None or g["sum"] is None:
            problems.append(f"{where}: _count or _sum missing")
        elif b and g["count"] != b[-1][1]:
            problems.append(f"{where}: _count {g['count']} != +Inf bucket {b[-1][1]}")
    return problems


def series_key(spec):
    m = NAME_RE.match(spec)
    if not m:
        raise SystemExit(f"bad series {spec!r}")
    labels = ()
    if m.end() < len(spec):
        labels, end = parse_labels(spec, m.end())
        if end != len(spec):
            raise SystemExit(f"bad series {spec!r}")
    return (m.group(0), tuple(sorted(labels)))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        prefix = None
        if len(sys.argv) == 5 and sys.argv[3] == "--prefix":
            prefix = sys.argv[4]
        with open(sys.argv[2], encoding="utf-8") as f:
            text = f.read()
        problems = check(text, prefix)
        for p in problems[:50]:
            print(p)
        if problems:
            print(f"{len(problems)} problems")
            sys.exit(1)
        print(f"ok: {text.count(chr(10))} lines")
        return
    if len(sys.argv) == 4 and sys.argv[1] == "value":
        with open(sys.argv[2], encoding="utf-8") as f:
            text = f.read()
        want = series_key(sys.argv[3])
        for line in text.split("\n"):
            if not line or line.startswith("#"):
                continue
            name, labels, value = parse_sample(line)
            if (name, tuple(sorted(labels))) == want:
                print(int(value) if value == int(value) else value)
                return
        print(f"{sys.argv[3]}: not found", file=sys.stderr)
        sys.exit(1)
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
