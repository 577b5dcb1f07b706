#!/usr/bin/env python3
"""Score an `iscsi-test-cu -v` log: "N passed, N failed, N skipped".

CUnit counts a test that calls CU_PASS("[SKIPPED] ...") as passed; we count it
as skipped.  With a second argument, list every test as PASS/FAIL/SKIP."""
import re
import sys


def score(text):
    results = {}
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
            results[current] = "PASS"
            rest = m.group(2)
        else:
            rest = line
        if current is None:
            continue
        if "[SKIPPED]" in rest and results[current] != "FAIL":
            results[current] = "SKIP"
        if re.search(r"\bFAILED\b", rest) and "Run Summary" not in rest:
            results[current] = "FAIL"
    return results


def main():
    text = open(sys.argv[1], errors="replace").read()
    res = score(text)
    if "Run Summary" not in text and not res:
        print("0 passed, 1 failed, 0 skipped (no CUnit summary: crashed or refused)")
        return
    n = {k: sum(1 for v in res.values() if v == k) for k in ("PASS", "FAIL", "SKIP")}
    if "Run Summary" not in text:
        n["FAIL"] += 1
    print(f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
    if len(sys.argv) > 2:
        for name, v in res.items():
            print(f"{v} {name}")


if __name__ == "__main__":
    main()
