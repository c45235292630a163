#!/usr/bin/python3
"""tests/asan_attack.py RESULTS ASAN_TICKCORE [SLOW_HTTP] [SILENT_TCP] [SECONDS]: the attack
suite once with the server under AddressSanitizer and UndefinedBehaviorSanitizer.

Runs bench/hostile_clients.py against ASAN_TICKCORE (build/asan-ubsan/tickcore, built by
`make SAN=address,undefined`): the binary generates and replays its day, `serve` takes the day
from `feed`, then a good client's queries and a publisher's logins run with no bad client and
then while SLOW_HTTP (default 200) slow HTTP clients and SILENT_TCP (default 100) silent TCP
connections are held open for SECONDS (default 5). Every process of the binary writes its
sanitizer reports to files (ASAN_OPTIONS/UBSAN_OPTIONS log_path, leak detection on); checked:
none was written (no memory error, leak or undefined behaviour in serve, feed, gen or replay,
under attack or at exit), the suite finished, and the good client and the publisher were
answered under attack (at least one 200 and one Login Accepted: the server was alive and not
locked out; the rates are printed, not judged, since ASan makes it several times slower).
Appends "asanattack <case> P F S" lines to RESULTS like tests/run.sh.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
SLOW = sys.argv[3] if len(sys.argv) > 3 else "200"
SILENT = sys.argv[4] if len(sys.argv) > 4 else "100"
SECONDS = sys.argv[5] if len(sys.argv) > 5 else "5"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
from stage import Stage  # noqa: E402

STAGE = Stage("asanattack", RESULTS)


def main():
    if not os.path.exists(BIN):
        STAGE.check("asan_binary_built", False, f"{BIN} missing (make SAN=address,undefined)")
        return STAGE.finish()
    tmp = tempfile.mkdtemp(prefix="tickcore-asanattack-")
    san = os.path.join(tmp, "san")
    env = dict(os.environ,
               ASAN_OPTIONS=f"log_path={san}:detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS=f"log_path={san}:print_stacktrace=1:halt_on_error=1")
    try:
        p = subprocess.run([sys.executable, os.path.join(HERE, "..", "bench", "hostile_clients.py"),
                            BIN, SLOW, SILENT, SECONDS], capture_output=True, text=True,
                           env=env, timeout=400)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = f"timed out after 400 s: {e}"
        p = None
    print("\n".join("  asanattack  " + ln for ln in out.strip().splitlines()[-8:]))
    reports = sorted(n for n in os.listdir(tmp) if n.startswith("san"))
    text = "".join(open(os.path.join(tmp, n), errors="replace").read()[:1500] for n in reports)
    STAGE.check("no_sanitizer_report", not reports, f"{reports}: {text[:1500]}")
    STAGE.check("attack_suite_finished", p is not None and p.returncode == 0, out[-800:])
    m = re.search(r"slow HTTP \+ \d+ silent TCP: good client (?:\([^)]*\) )?(\d+) of (\d+) queries "
                  r"answered 200"
                  r".*publisher logged in (\d+) of (\d+) times", out)
    STAGE.check("answered_under_attack", m and int(m.group(1)) > 0 and int(m.group(3)) > 0,
                out[-800:])
    shutil.rmtree(tmp, ignore_errors=True)
    return STAGE.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a crash of the harness is a failure, not a silent pass
        STAGE.check("harness", False, repr(e))
        sys.exit(1)
