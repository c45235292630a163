"""stage: what the Python test scripts of make test share (tests/serve_test.py, web_test.py,
plots_test.py): one line per check appended to the results file in tests/run.sh's format
"STAGE NAME PASSED FAILED SKIPPED", the line printed, the stage's closing count, and a free
loopback port for a server under test."""
import socket


class Stage:
    def __init__(self, name, results):
        self.name, self.results = name, results
        self.passed = self.failed = self.skipped = 0

    def record(self, check, ok, detail="", skip=False):
        if skip:
            self.skipped += 1
            print(f"  {self.name:<11} {check:<40} skipped ({detail})")
            counts = "0 0 1"
        elif ok:
            self.passed += 1
            print(f"  {self.name:<11} {check:<40} ok")
            counts = "1 0 0"
        else:
            self.failed += 1
            print(f"  {self.name:<11} {check:<40} FAILED: {detail}")
            counts = "0 1 0"
        with open(self.results, "a") as f:
            f.write(f"{self.name} {check} {counts}\n")

    def check(self, check, cond, detail=""):
        self.record(check, bool(cond), detail)
        return bool(cond)

    def finish(self):
        """Print the stage's count; the exit status (1 if anything failed)."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped")
        return 1 if self.failed else 0


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
