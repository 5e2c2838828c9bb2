#!/usr/bin/env python3
"""Independent reader for the Edifact tests: parses a Medeur interchange with PyPI pydifact and prints
its segments as JSON, so tests/edifact.rs can compare the gateway's own reader against a parser it did
not write.

Usage:   python3 tests/edifact_oracle.py FILE...
Output:  one JSON line per FILE, in order:
         [{"tag": "TXT", "counters": [1], "elements": [["component", ...], ...]}, ...]
         (the UNA service string advice is not a segment). Several files in one run keep the tests
         fast: starting Python and importing pydifact is most of the cost.
Needs:   pip install pydifact   (tested with 0.2.3)

pydifact reads standard EDIFACT syntax but refuses Medeur's tag counters ("TXT:1" is an invalid segment
name), so they are taken off the tag first, as ../shared/spec/background/legacy-transports.md section 1.5
proposes. That regex is adapted here for CR/LF between segments and for a segment with no elements
("TXT:3'"). The counters are not dropped but moved into a first element marked with a character that a
UNOA interchange cannot contain, so that pydifact's own tokenizer carries them and they can be reported.
"""

import json
import re
import sys
import warnings

MARK = "\u00a7"  # not in UNOA: the gateway's writer never emits it
COUNTERS = re.compile(r"(^|')(\s*)([A-Z0-9]{3})((?::\d+)+)(?=[+'])")


def move_counters(text: str) -> str:
    """TXT:1:2+x'  ->  TXT+<MARK>1:2+x'   (and TXT:3'  ->  TXT+<MARK>3')."""
    return COUNTERS.sub(lambda m: f"{m[1]}{m[2]}{m[3]}+{MARK}{m[4][1:]}", text)


def components(element):
    """pydifact gives a simple element as a string and a composite as a list."""
    return list(element) if isinstance(element, list) else [element]


def segments(path: str) -> list:
    from pydifact.segmentcollection import RawSegmentCollection

    with open(path, encoding="ascii") as f:
        text = f.read()
    out = []
    for seg in RawSegmentCollection.from_str(move_counters(text)).segments:
        if seg.tag == "UNA":
            continue
        elements = [components(e) for e in seg.elements]
        counters = []
        if elements and elements[0] and elements[0][0].startswith(MARK):
            first = elements.pop(0)
            counters = [int(first[0][len(MARK):])] + [int(c) for c in first[1:]]
        out.append({"tag": seg.tag, "counters": counters, "elements": elements})
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # pydifact warns about directories it has no tables for
    for path in sys.argv[1:]:
        json.dump(segments(path), sys.stdout)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
