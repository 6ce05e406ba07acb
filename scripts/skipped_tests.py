#!/usr/bin/env python3
"""Lists every test ctest skipped, with the reason the test printed, from ctest's JUnit report
(ctest --output-junit FILE): a check that could not run here (a missing peer, not root) is named
at the end of the run, never taken for a pass.

usage: skipped_tests.py JUNIT_XML
The reason is a GoogleTest skip's message (the lines after "FILE:LINE: Skipped"), else the last
line that says "skip" of a script that exited with the test's SKIP_RETURN_CODE, else its last line.
"""
import re
import sys
import xml.etree.ElementTree as ET


def reason_of(output: str) -> str:
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if re.search(r":\d+: Skipped$", line):
            message = []
            for follow in lines[i + 1:]:
                if follow.startswith("[  SKIPPED ]"):
                    break
                message.append(follow)
            return " ".join(message) or "(GTEST_SKIP without a message)"
    said = [l for l in lines if "skip" in l.lower()]
    if said:
        return said[-1]
    return lines[-1] if lines else "(no output)"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    try:
        suite = ET.parse(sys.argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"skipped_tests: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    skipped = []
    for case in suite.iter("testcase"):
        if case.find("skipped") is not None:
            skipped.append((case.get("name"), reason_of(case.findtext("system-out") or "")))
    total = len(list(suite.iter("testcase")))
    for name, reason in skipped:
        print(f"SKIPPED {name}: {reason}")
    print(f"skipped tests: {len(skipped)} of {total}" + (" (each listed above with its reason)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
