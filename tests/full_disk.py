#!/usr/bin/python3
"""tests/full_disk.py RESULTS TICKCORE: a journal's disk that fills for real, mid-day.

As root: a 1 MiB tmpfs (mount -t tmpfs -o size=1M) holds the journal of `tickcore serve`, and a
day of 60,000 messages (about 1.9 MB) is published into it with `tickcore feed` over
SoupBinTCP. The disk fills about half way. Checked: /healthz turns 503 "degraded: journal" naming
"No space left on device" and never acknowledges more than the journal holds; the publisher is
refused with that reason (the feed exits non-zero saying it); queries are still answered
(/v1/symbols, /v1/symbols/SYM, /metrics: 200) while degraded; SIGTERM gives exit status 1 and
the report says FAILED; the journal is a byte prefix of the day, and a server started on a
copy of it (off the full disk) counts exactly its messages. Not root (mount needs it): every
check skipped with the reason (the fault seam's ENOSPC points of tests/fault_sweep.py run
instead). Appends "fulldisk <case> P F S" lines to RESULTS like tests/run.sh. Python standard
library only.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from stage import Stage, free_port  # noqa: E402

STAGE = Stage("fulldisk", RESULTS)
CHECKS = ["healthz_degraded_journal_enospc", "never_acknowledged_past_the_journal",
          "publisher_refused_with_the_reason", "queries_served_while_degraded",
          "exit_status_1_report_failed", "journal_is_a_prefix_of_the_day",
          "restart_counts_the_journal"]
SETS = ["server.analytics_interval=100ms", "stats.bar_interval=1s", "matrix.symbols=32",
        "graph.clusters=3", "book.max_orders=256K", "book.max_levels=64K",
        "symbols.max_symbols=1000", "pipeline.workers=1", "journal.buffer_size=16K",
        "journal.fsync_interval=20ms"]


def records(data):
    n, off = 0, 0
    while off + 2 <= len(data):
        ln = struct.unpack_from(">H", data, off)[0]
        if off + 2 + ln > len(data):
            break
        off += 2 + ln
        n += 1
    return n


class Server:
    def __init__(self, journal, log, out):
        self.tcp, self.udp, self.http = free_port(), free_port(socket.SOCK_DGRAM), free_port()
        self.out = out
        args = [BIN, "serve", "--set", f"live.tcp_port={self.tcp}",
                "--set", f"live.udp_port={self.udp}", "--set", f"http.port={self.http}",
                "--set", f"journal.path={journal}", "--set", f"server.log={log}"]
        for s in SETS:
            args += ["--set", s]
        self.outf = open(out, "w")
        self.p = subprocess.Popen(args, stdout=self.outf, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline and self.p.poll() is None:
            if self.get("/healthz")[0] == 200:
                return
            time.sleep(0.02)
        raise RuntimeError(f"serve did not come up: {open(out).read()[-500:]}")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        self.outf.close()
        return rc, open(self.out).read()


def main():
    if os.geteuid() != 0:
        for c in CHECKS:
            STAGE.record(c, False, "not root: mount -t tmpfs needs it; the fault seam's ENOSPC "
                         "points (tests/fault_sweep.py) stand in", skip=True)
        return STAGE.finish()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="tickcore-fulldisk-")
    mnt = os.path.join(tmp, "disk")
    os.makedirs(mnt)
    logdir = os.path.abspath("build/test-logs/fulldisk")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir, exist_ok=True)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", mnt],
                       capture_output=True, text=True)
    if m.returncode != 0:
        for c in CHECKS:
            STAGE.record(c, False, f"mount -t tmpfs failed: {m.stderr.strip()}", skip=True)
        shutil.rmtree(tmp, ignore_errors=True)
        return STAGE.finish()
    try:
        day = os.path.join(tmp, "day.itch")
        subprocess.run([BIN, "gen", "--messages", "60000", "--symbols", "12", "--seed", "31",
                        "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL)
        daybytes = open(day, "rb").read()
        total = records(daybytes)
        journal = os.path.join(mnt, "j.journal")
        srv = Server(journal, os.path.join(logdir, "serve.log"), os.path.join(logdir, "serve.out"))
        f = subprocess.run([BIN, "feed", day, "--to", f"tcp://127.0.0.1:{srv.tcp}", "--quiet",
                            "--rate", "100000/s"], capture_output=True, text=True, timeout=120)
        st, body = 0, ""
        for _ in range(100):
            st, body = srv.get("/healthz")
            if st == 503:
                break
            time.sleep(0.05)
        h = json.loads(body) if body.startswith("{") else {}
        STAGE.check("healthz_degraded_journal_enospc",
                    st == 503 and h.get("status", "").startswith("degraded: journal")
                    and "No space left on device" in body, f"{st} {body[:300]}")
        acked = h.get("next_sequence", 1 << 62) - 1  # the first 503's: right at the failure
        out = f.stdout + f.stderr
        STAGE.check("publisher_refused_with_the_reason",
                    f.returncode != 0 and "No space left on device" in out,
                    f"feed exit {f.returncode}: {out[-300:]}")
        q = [srv.get(p)[0] for p in ("/v1/symbols", "/metrics")]
        sym = json.loads(srv.get("/v1/symbols")[1] or "{}").get("symbols", [{}])[0].get("symbol")
        q.append(srv.get(f"/v1/symbols/{sym}")[0] if sym else 0)
        STAGE.check("queries_served_while_degraded", q == [200, 200, 200], f"{q}")
        rc, text = srv.stop()
        STAGE.check("exit_status_1_report_failed", rc == 1 and "FAILED" in text,
                    f"exit {rc}: {text[-300:]}")
        jbytes = open(journal, "rb").read()  # cut back to the failed write's start at exit
        held = records(jbytes)
        STAGE.check("never_acknowledged_past_the_journal", acked <= held and 0 < held < total,
                    f"/healthz acknowledged {acked}, the journal holds {held} of {total}")
        STAGE.check("journal_is_a_prefix_of_the_day", daybytes.startswith(jbytes),
                    f"journal {len(jbytes)} bytes")
        copy = os.path.join(tmp, "copy.journal")
        shutil.copy(journal, copy)
        if os.path.exists(journal + ".crc"):
            shutil.copy(journal + ".crc", copy + ".crc")
        r = Server(copy, os.path.join(logdir, "restart.log"), os.path.join(logdir, "restart.out"))
        st, body = r.get("/healthz")
        rh = json.loads(body) if body.startswith("{") else {}
        rrc, _ = r.stop()
        STAGE.check("restart_counts_the_journal",
                    st == 200 and rh.get("messages") == held and rrc == 0,
                    f"{st} {rh}, journal {held}, exit {rrc}")
        print(f"  fulldisk    1 MiB tmpfs: journal {len(jbytes):,} bytes, {held:,} of {total:,} "
              f"messages when the disk filled; {time.time() - t0:.1f} s")
    finally:
        subprocess.run(["umount", mnt])
        shutil.rmtree(tmp, ignore_errors=True)
    return STAGE.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a crash of the harness is a failure, not a silent pass
        STAGE.check("harness", False, repr(e))
        sys.exit(1)
