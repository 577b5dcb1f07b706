#!/usr/bin/env python3
"""Score an `iscsi-test-cu -v` log: "N passed, N failed, N skipped".

The verdict of each test is CUnit's own ("passed" / "FAILED" after the test's
output).  A test that logged "[SKIPPED]" and did not fail counts as skipped
(CUnit counts CU_PASS("[SKIPPED] ...") as a pass).  Lines like "[FAILED] WRITE10
command failed" are libiscsi helper logs, not verdicts: iSCSIDataSnInvalid, for
one, expects its writes to fail and logs them that way while passing.  With a
second argument, list every test as PASS/FAIL/SKIP."""
import re
import sys


def score(text):
    results = {}
    skipped = set()
    current = None
    suite = ""
    for line in text.splitlines():
        m = re.match(r"^Suite: (\S+)", line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r"\s*Test: (\S+) \.\.\.(.*)$", line)
        if m:
            current = f"{suite}.{m.group(1)}"
            results[current] = None
            rest = m.group(2)
        else:
            rest = line
        if current is None:
            continue
        if "[SKIPPED]" in rest:
            skipped.add(current)
        # CUnit prints the verdict at the start of a line (or right after the
        # "..." of the test line); libiscsi's next log may follow on the same
        # line, so only the leading token counts.
        verdict = re.match(r"^(passed|FAILED)\b", rest.lstrip() if m else rest)
        if verdict and results[current] is None:
            results[current] = "PASS" if verdict.group(1) == "passed" else "FAIL"
    out = {}
    for name, v in results.items():
        if v is None:
            v = "FAIL"  # no verdict: the run crashed or hung in this test
        if v == "PASS" and name in skipped:
            v = "SKIP"
        out[name] = v
    return out


def main():
    text = open(sys.argv[1], errors="replace").read()
    res = score(text)
    n = {k: sum(1 for v in res.values() if v == k) for k in ("PASS", "FAIL", "SKIP")}
    if "Run Summary" not in text:
        n["FAIL"] += 1
    print(f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
    if len(sys.argv) > 2:
        for name, v in res.items():
            print(f"{v} {name}")


if __name__ == "__main__":
    main()
