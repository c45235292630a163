"""stage: what the Python test scripts of make test share (tests/serve_test.py, web_test.py,
plots_test.py, cluster_test.py, cluster_xs_test.py): one line per check appended to the results
file in tests/run.sh's format "STAGE NAME PASSED FAILED SKIPPED", the line printed, the stage's
closing count, a free loopback port for a server under test; for the cluster tests a
`nats-server -js` on a free port with its own store, a registry of every process started
(killed at the end however the test ends) and the per-shard message counts of an ITCH file."""
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

PROCS = []  # every process a test started: kill_all() at the end


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


def die_with_parent():
    """Popen's preexec_fn for a server under test: the kernel kills it (-9) when the test's
    process ends however it ends (even killed -9 itself: no finally runs then), so that no
    nats-server or shard outlives a test run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill_all():
    """Kill (-9) every process in PROCS still running: a failed check or an exception must not
    leave servers behind (a crashed run once left 4 shards running for minutes)."""
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def nats_server_path():
    """The nats-server binary, or None when it is truly absent: PATH first, then the sbin folders
    (Debian's nats-server is /usr/sbin/nats-server, which a non-root user's PATH often lacks: the
    cluster tests then skipped with nats-server installed)."""
    return shutil.which("nats-server") or shutil.which(
        "nats-server", path="/usr/local/sbin:/usr/sbin:/sbin")


def peak_rss_mib(pid):
    """A running process's peak resident set (VmHWM) in MiB, or None once it has gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class NatsServer:
    """`nats-server -js` on a free loopback port with its store in DIR (kept across restarts)."""

    def __init__(self, store, log):
        self.port = free_port()
        self.store, self.log = store, log
        self.url = f"nats://127.0.0.1:{self.port}"
        self.p = None
        self.start()

    def start(self):
        log = open(self.log, "a")
        self.p = subprocess.Popen([nats_server_path() or "nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js",
                                   "-sd", self.store], stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        PROCS.append(self.p)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen in 10 s")

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def itch_shard_counts(path, shards):
    """(messages, per-shard counts) of an ITCH file read here (the oracle): a message goes to
    shard locate % shards; System Event (S), Stock Directory (R) and locate-0 messages to every
    shard (feed/natspub's documented function)."""
    data = open(path, "rb").read()
    per = [0] * shards
    off = n = 0
    while off + 2 <= len(data):
        (ln,) = struct.unpack_from(">H", data, off)
        msg = data[off + 2:off + 2 + ln]
        off += 2 + ln
        n += 1
        locate = struct.unpack_from(">H", msg, 1)[0]
        if msg[0:1] in (b"S", b"R") or locate == 0:
            for s in range(shards):
                per[s] += 1
        else:
            per[locate % shards] += 1
    return n, per


def watchdog(stage_, seconds):
    """Fail the run (a check "finished_within_<N>s", then the cleanup of the caller's finally)
    if it has not ended after `seconds`: a hung process must not hang the test suite."""
    def on_alarm(signum, frame):
        stage_.record(f"finished_within_{seconds}s", False, "the run was stopped by its watchdog")
        raise TimeoutError(f"{stage_.name}: not finished after {seconds} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)

    def on_term(signum, frame):  # make interrupted (SIGTERM, SIGHUP): the caller's cleanup runs
        stage_.record("not_interrupted", False, f"signal {signum}")
        raise SystemExit(1)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
