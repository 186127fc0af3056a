#!/usr/bin/python3
"""Holds the documentation to the configuration key table.

Usage: check_keys_docs.py CFG_KEYS DOCS_DIR

CFG_KEYS is the cfg-keys program (tests/docs/cfg_keys.c), which prints
the table in config/keys.c as "[section] key" lines ("later" after keys
that CONFIG.md has but this version does not build yet). Every key must
be documented in each of the three places an operator reads, within the
part of the document that belongs to its section:

  configuration.md    a "### key" heading under "## [section]"
  man/apexd.ini.5     a ".TP" paragraph tagged '.B "key = "', '.BI "key = "'
                      or '.BR "key = "' under ".SH [section]"
  apexd.ini.example   a "key = ..." line, or ";key = ..." for a commented
                      default, after "[section]" or ";[section]"

"[zone NAME]" stands for any "[zone example.com]" in the example. The
reverse holds too: a key documented in any of them under a section
heading, but missing from the table, is an error, so the docs cannot
promise a key the loader rejects. Keys not built yet ("later") are held
to the same rules: CONFIG.md wants every key in all three places.

A key is either built or refused, never read and ignored. So the entry
of a later key must say what the loader says, "not supported by this
version of apexd yet" (configuration.md and apexd.ini(5)), and its line
in the example must be commented out (the loader would refuse it); the
entry of a built key must not say that this version does not do it yet.

Prints one line per problem, naming the file and the key, and exits 1;
prints a summary and exits 0 when everything is documented.
"""
import os
import re
import subprocess
import sys

KEY = r"[a-z][a-z0-9-]*"

# Each reader returns {section: {key: line number}} for one document.


def open_section(heading, found):
    """The section a heading such as "[flatten]" starts (None for any other
    heading, whose part of the document holds no keys)."""
    m = re.fullmatch(r"\[(.+)\]", heading)
    if m is None:
        return None
    found.setdefault(m.group(1), {})
    return m.group(1)


def read_markdown(lines):
    found, sec, fenced = {}, None, False
    for n, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = re.match(r"## (?!#)(.*?)\s*$", line)
        if m:
            sec = open_section(m.group(1), found)
            continue
        m = re.fullmatch(r"### (%s)\s*" % KEY, line)
        if m and sec is not None:
            found[sec].setdefault(m.group(1), n)
    return found


def read_man(lines):
    found, sec, tagged = {}, None, False
    for n, line in enumerate(lines, 1):
        # Hyphens in roff may be written "\-"; both spell the key.
        line = line.replace("\\-", "-")
        m = re.match(r"\.SH\s+\"?(.*?)\"?\s*$", line)
        if m:
            sec, tagged = open_section(m.group(1), found), False
            continue
        if line.startswith(".TP"):
            tagged = True
            continue
        if tagged:
            m = re.match(r'\.B[IR]?\s+"(%s) = "' % KEY, line)
            if m and sec is not None:
                found[sec].setdefault(m.group(1), n)
        tagged = False
    return found


def read_example(lines):
    found, sec = {}, None
    for n, line in enumerate(lines, 1):
        m = re.fullmatch(r";?\[(.+)\]\s*", line)
        if m:
            sec = m.group(1).strip()
            if sec.startswith("zone "):
                sec = "zone NAME"
            found.setdefault(sec, {})
            continue
        m = re.match(r";?(%s) = " % KEY, line)
        if m and sec is not None:
            found[sec].setdefault(m.group(1), n)
    return found


# The text of one key's entry, from its line: up to the next heading in
# Markdown, the next paragraph macro in roff, the line itself in the example.
def entry_markdown(lines, n):
    out = [lines[n - 1]]
    for line in lines[n:]:
        if line.startswith("#"):
            break
        out.append(line)
    return " ".join(out)


def entry_man(lines, n):
    out = [lines[n - 1]]
    for line in lines[n:]:
        if re.match(r"\.(TP|SH|SS|PP|P)\b", line):
            break
        out.append(line)
    return " ".join(out).replace("\\-", "-")


def entry_example(lines, n):
    return lines[n - 1]


DOCS = [
    ("configuration.md", read_markdown, '"### {key}" under "## [{sec}]"', entry_markdown),
    ("man/apexd.ini.5", read_man, '".TP" then \'.BI "{key} = "\' under ".SH [{sec}]"',
     entry_man),
    ("apexd.ini.example", read_example, '"{key} = " or ";{key} = " after "[{sec}]" or ";[{sec}]"',
     entry_example),
]

LATER_SAYS = "not supported by this version of apexd yet"
# "this version ... yet" in one sentence: how a key read and ignored gets
# explained away ("this version of apexd does not send it yet").
NOT_YET = re.compile(r"this version\b[^.;]*\byet\b", re.IGNORECASE)


def entry_problem(name, entry, later):
    """What is wrong with the entry of a key, or None."""
    flat = re.sub(r"\s+", " ", entry)
    if name == "apexd.ini.example":
        if later and not flat.startswith(";"):
            return "not built yet, so its line must be commented out (the loader refuses it)"
        return None
    if later and LATER_SAYS not in flat.lower():
        return "not built yet; its entry must say \"%s\"" % LATER_SAYS
    if not later and NOT_YET.search(flat):
        return ("built, but its entry says this version does not do it yet; a key is "
                "either built or refused (make it LATER in config/keys.c)")
    return None


def table(cfg_keys):
    out = subprocess.run([cfg_keys], check=True, capture_output=True, text=True).stdout
    keys = []
    for line in out.splitlines():
        m = re.fullmatch(r"\[(.+)\] (%s)( later)?" % KEY, line)
        if not m:
            sys.exit("%s: cannot read the line %r" % (cfg_keys, line))
        keys.append((m.group(1), m.group(2), m.group(3) is not None))
    if not keys:
        sys.exit("%s: printed no keys" % cfg_keys)
    return keys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    keys = table(sys.argv[1])
    known = {(s, k) for s, k, _ in keys}
    problems = 0
    for name, reader, want, entry in DOCS:
        path = os.path.join(sys.argv[2], name)
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        found = reader(lines)
        shown = os.path.join("docs", name)
        for sec, key, later in keys:
            if key not in found.get(sec, {}):
                print("%s: [%s] %s%s: not documented; want %s"
                      % (shown, sec, key, " (not built yet)" if later else "",
                         want.format(sec=sec, key=key)))
                problems += 1
                continue
            n = found[sec][key]
            why = entry_problem(name, entry(lines, n), later)
            if why is not None:
                print("%s:%d: [%s] %s: %s" % (shown, n, sec, key, why))
                problems += 1
        for sec in sorted(found):
            for key, n in sorted(found[sec].items(), key=lambda x: x[1]):
                if (sec, key) not in known:
                    print("%s:%d: [%s] %s: documented, but not in the key table "
                          "(config/keys.c)" % (shown, n, sec, key))
                    problems += 1
    if problems:
        print("%d problem(s): the key table in config/keys.c and the docs disagree"
              % problems)
        return 1
    print("ok: %d keys, each in docs/%s" % (len(keys), ", docs/".join(d[0] for d in DOCS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
