#!/usr/bin/python3
"""bench/run.py - ringstord against tgt (iSCSI) and nfs-ganesha (NFSv3).

Usage (normally through `make bench` / `make bench-quick`):

    bench/run.py [--quick] [--rounds N] [--only iscsi|nfs] [--keep]
    bench/run.py --self-test        # parser smoke test, no servers

What it does (issue 6; see bench/README.md for how to read the output):
  * installs the reference servers and clients with apt-get if missing
    (tgt, nfs-ganesha, nfs-ganesha-vfs, rpcbind, libiscsi-bin, qemu-utils,
    qemu-block-extra, python3-matplotlib); without network the missing
    reference is skipped with a message;
  * creates identical 1 GiB backing files full of random data in a temp dir
    under /tmp, warms the page cache before every round;
  * iSCSI: starts ringstord (file LUN 1 + null LUN 2) and tgtd side by side on
    free loopback ports; NFS: ringstord's NFS gateway and nfs-ganesha in turn
    (both need the portmapper on port 111, so only one runs at a time);
  * runs every workload against every server, interleaved (A B, then B A in
    the next round, ...), takes medians over the rounds, measures server CPU
    (utime+stime of the whole process from /proc/PID/stat) per workload and
    the client ceiling (same client against ringstord's null LUN);
  * prints a table, writes bench/results/<timestamp>.json and a PNG chart.

Everything started is killed on exit (normal, error, Ctrl-C); every client
run has a timeout, so a dead server is reported, not waited for.
"""

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
CLK_TCK = os.sysconf("SC_CLK_TCK")

RS_IQN = "iqn.2026-11.io.ringstor:bench"
TGT_IQN = "iqn.2026-11.io.ringstor:tgtref"
IMG_SIZE = 1 << 30

# ---------------------------------------------------------------- parsers
# Kept free of side effects so that --self-test can check them on canned
# outputs of the exact tool versions on Debian 12.

_PERF_RE = re.compile(r"iops average (\d+)")
_QEMU_RE = re.compile(r"Run completed in ([0-9.]+) seconds")
_META_RE = re.compile(r"phase=(\w+) n=(\d+) seconds=([0-9.]+)")


def parse_iscsi_perf(out):
    """iscsi-perf prints progress lines separated by \\r and, at the end,
    'iops average N (M MB/s)'; the last match is the whole-run average."""
    m = _PERF_RE.findall(out)
    if not m:
        raise ValueError("no 'iops average' in iscsi-perf output")
    return float(m[-1])


def parse_qemu_bench(out):
    """qemu-img bench: 'Run completed in X seconds.' (time of the I/O loop
    only, after the image was opened)."""
    m = _QEMU_RE.search(out)
    if not m:
        raise ValueError("no 'Run completed in' in qemu-img bench output")
    secs = float(m.group(1))
    if secs <= 0:
        raise ValueError("qemu-img bench reported a zero duration")
    return secs


def parse_nfsmeta(out):
    """nfsmeta: one 'phase=P n=N seconds=S ...' line per phase."""
    res = {}
    for phase, n, secs in _META_RE.findall(out):
        res[phase] = (int(n), float(secs))
    for p in ("create", "stat", "list", "remove"):
        if p not in res:
            raise ValueError("nfsmeta printed no '%s' phase" % p)
    return res


def parse_proc_stat(text):
    """utime+stime in seconds from /proc/PID/stat.  For a thread-group
    leader these fields already sum all threads (proc(5)).  The command name
    (field 2) may contain spaces and parentheses: split after the last ')'."""
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime/stime are fields 14/15.
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def self_test():
    perf = ("iscsi-perf version 0.1\n\nconnected to iscsi://x/1\n"
            "00:00:02 - lba 1, iops current 24189 (94 MB/s), iops average 24189 (94 MB/s), "
            "in_flight 32, busy 0        \r00:00:01 - lba 3, iops current 24358 (95 MB/s), "
            "iops average 24273 (94 MB/s), in_flight 32, busy 0   \riops average 24138 "
            "(94 MB/s)      \n\nfinished.\n")
    assert parse_iscsi_perf(perf) == 24138.0
    q = ("Sending 20000 read requests, 4096 bytes each, 32 in parallel (starting at offset 0, "
         "step size 4096)\nRun completed in 0.617 seconds.\n")
    assert parse_qemu_bench(q) == 0.617
    meta = ("phase=create n=5000 seconds=3.109357 ops_per_s=1608.0\n"
            "phase=stat n=5000 seconds=0.753169 ops_per_s=6638.6\n"
            "phase=list n=5000 seconds=0.054047 ops_per_s=92512.5\n"
            "phase=remove n=5000 seconds=0.783545 ops_per_s=6381.3\n")
    r = parse_nfsmeta(meta)
    assert r["list"] == (5000, 0.054047) and r["create"][0] == 5000
    st = "4862 (tgt d (x)) S 1 4862 4862 0 -1 4194624 1 0 0 0 150 250 0 0 20 0 9 0 1 1 1\n"
    assert abs(parse_proc_stat(st) - 400 / CLK_TCK) < 1e-9
    for bad, fn in (("", parse_iscsi_perf), ("Run completed in 0 seconds.", parse_qemu_bench),
                    ("phase=create n=1 seconds=1", parse_nfsmeta)):
        try:
            fn(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("%s accepted %r" % (fn.__name__, bad))
    assert median([3, None, 1, 2]) == 2 and median([None]) is None
    w = Workload("x", "iscsi", "qemu", "ops/s", "higher", goal=2.0, ceiling_ok=True)
    assert goal_met(w, 2.1, None, None) and not goal_met(w, 1.5, None, None)
    assert goal_met(w, 1.5, 95.0, 100.0)          # within 10% of the client ceiling
    assert not goal_met(w, 1.5, 80.0, 100.0)
    w = Workload("lat", "iscsi", "qemu", "us", "lower", goal=1.0)
    assert goal_met(w, 0.9, None, None) and not goal_met(w, 1.2, None, None)
    print("bench/run.py self-test: all parser checks passed")
    return 0


# ---------------------------------------------------------------- workloads

class Workload:
    """One measured quantity.  kind: perf | qemu | meta.  better: higher|lower.
    goal: the ratio ringstord/reference issue 6 asks for (>= goal when higher
    is better, <= goal when lower is better); ceiling_ok: the goal is also met
    within 10% of the client ceiling (4 KiB depth 32, where the client may
    saturate first)."""

    def __init__(self, name, proto, kind, unit, better, goal=None, ceiling_ok=False, **params):
        self.name, self.proto, self.kind, self.unit = name, proto, kind, unit
        self.better, self.goal, self.ceiling_ok, self.params = better, goal, ceiling_ok, params


def goal_met(w, ratio, rs_value, ceiling_value):
    if w.goal is None or ratio is None:
        return None
    ok = ratio >= w.goal if w.better == "higher" else ratio <= w.goal
    if not ok and w.ceiling_ok and rs_value and ceiling_value:
        ok = rs_value >= 0.9 * ceiling_value
    return ok


def make_workloads(quick):
    s = 0.2 if quick else 1.0
    perf_t = 3 if quick else 10
    ws = []
    for proto in ("iscsi", "nfs"):
        if proto == "iscsi":
            ws.append(Workload("iscsi-perf 4k randread d32", proto, "perf", "IOPS", "higher",
                               goal=2.0, ceiling_ok=True, t=perf_t))
        ws += [
            Workload("4k read d32", proto, "qemu", "ops/s", "higher", goal=2.0, ceiling_ok=True,
                     write=False, count=int(200000 * s), depth=32, size=4096),
            Workload("4k write d32", proto, "qemu", "ops/s", "higher", goal=2.0, ceiling_ok=True,
                     write=True, count=int(100000 * s), depth=32, size=4096),
            Workload("4k read d1 latency", proto, "qemu", "us", "lower", goal=1.0,
                     write=False, count=int(20000 * s), depth=1, size=4096),
            Workload("4k write d1 latency", proto, "qemu", "us", "lower", goal=1.0,
                     write=True, count=int(10000 * s), depth=1, size=4096),
            Workload("128k read d8", proto, "qemu", "MB/s", "higher", goal=1.5,
                     write=False, count=int(8000 * s), depth=8, size=131072),
            Workload("128k write d8", proto, "qemu", "MB/s", "higher", goal=1.5,
                     write=True, count=int(4000 * s), depth=8, size=131072),
        ]
    ws.append(Workload("metadata", "nfs", "meta", "ops/s", "higher",
                       files=5000 if quick else 50000))
    return ws


# Derived rows of the metadata workload: (phase, goal).
META_PHASES = (("create", None), ("stat", None), ("list", 3.0), ("remove", None))

# ---------------------------------------------------------------- processes


def log(msg):
    print("[bench] " + msg, flush=True)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_busy(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def wait_port(port, proc, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        if port_busy(port):
            return True
        time.sleep(0.05)
    return False


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return parse_proc_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Procs:
    """Every process the harness starts, so that cleanup can end them all."""

    def __init__(self):
        self.procs = []          # (name, Popen, stop_fn)

    def start(self, name, argv, logpath, stop=None, cwd=None):
        f = open(logpath, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=cwd)
        f.close()
        self.procs.append((name, p, stop))
        return p

    def stop(self, p, grace=5.0):
        for i, (name, q, stopfn) in enumerate(self.procs):
            if q is p:
                del self.procs[i]
                self._stop(name, q, stopfn, grace)
                return

    @staticmethod
    def _stop(name, p, stopfn, grace):
        if p.poll() is None and stopfn:
            try:
                stopfn()
            except Exception as e:   # best effort: SIGKILL follows
                log("stopping %s: %s" % (name, e))
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def stop_all(self):
        while self.procs:
            name, p, stopfn = self.procs.pop()
            self._stop(name, p, stopfn, 3.0)


def run_client(argv, timeout, env=None, watch=None):
    """Run a client with a hard timeout; returns (rc, output).  rc None = timed
    out or, with watch (the server's Popen), the server died meanwhile: the
    client's process group is killed at once instead of letting it retry
    against a dead server until the timeout."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    end = time.time() + timeout
    try:
        while True:
            try:
                out, _ = p.communicate(timeout=max(0.01, min(0.5, end - time.time())))
                return p.returncode, out.decode(errors="replace")
            except subprocess.TimeoutExpired:
                if time.time() < end and (watch is None or watch.poll() is None):
                    continue
            break
    finally:
        # Also on Ctrl-C / SIGTERM: the client runs in its own session, so it
        # would otherwise outlive the harness.
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    out, _ = p.communicate()
    return None, out.decode(errors="replace")


# ---------------------------------------------------------------- packages

PACKAGES = [
    # (package, file that proves it is installed)
    ("tgt", "/usr/sbin/tgtd"),
    ("nfs-ganesha", "/usr/bin/ganesha.nfsd"),
    ("nfs-ganesha-vfs", "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so"),
    ("rpcbind", "/usr/sbin/rpcbind"),
    ("libiscsi-bin", "/usr/bin/iscsi-perf"),
    ("qemu-utils", "/usr/bin/qemu-img"),
    ("qemu-block-extra", "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so"),
    ("python3-matplotlib", "/usr/lib/python3/dist-packages/matplotlib/__init__.py"),
]


def pkg_installed(pkg, path):
    if os.path.exists(path):
        return True
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def ensure_packages(no_install):
    missing = [p for p, path in PACKAGES if not pkg_installed(p, path)]
    if not missing:
        return
    if no_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        log("missing packages (not installing): " + " ".join(missing))
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing
    log("installing: " + " ".join(missing))
    for attempt in (1, 2):
        rc, out = run_client(cmd, 900, env=env)
        if rc == 0:
            return
        if attempt == 1:
            log("apt-get install failed; trying apt-get update first")
            run_client(["apt-get", "update", "-q"], 600, env=env)
    # One by one, so that one unavailable package does not block the rest.
    for p in missing:
        run_client(["apt-get", "install", "-y", "-q", "--no-install-recommends", p], 600, env=env)
    still = [p for p, path in PACKAGES if not pkg_installed(p, path)]
    if still:
        log("could not install (no network?): %s -- the parts needing them are skipped"
            % " ".join(still))


# ---------------------------------------------------------------- servers

class Server:
    """A server under test: a name, a process to account CPU to, and URLs."""

    def __init__(self, name, role, proc=None):
        self.name, self.role, self.proc = name, role, proc
        self.failed = None          # reason, once it is found dead / unusable
        self.reported = False
        self.iscsi_url = None       # iSCSI LUN URL
        self.nfs_server = self.nfs_export = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        if self.failed:
            return False
        if self.proc is not None and self.proc.poll() is not None:
            self.failed = "exited with status %s" % self.proc.returncode
            return False
        return True


class Bench:
    def __init__(self, args):
        self.args = args
        self.procs = Procs()
        self.work = tempfile.mkdtemp(prefix="rsbench.", dir="/tmp")
        self.notes = []             # skipped parts, failures: printed and saved
        self.samples = {}           # (workload name, proto, server) -> list of dicts
        self.rss = []               # ringstord (iSCSI) RSS after each round, KiB
        self.build = os.environ.get("BUILD", "build")
        self.rsbin = os.environ.get("RINGSTORD") or os.path.join(ROOT, self.build, "ringstord")
        self.admbin = os.environ.get("RINGSTORADM") or os.path.join(ROOT, self.build,
                                                                     "ringstoradm")
        self.nfsmeta = os.path.join(ROOT, self.build, "bench", "nfsmeta")
        self.external_rpcbind = False

    def note(self, msg):
        log(msg)
        self.notes.append(msg)

    def cleanup(self):
        self.procs.stop_all()
        for path in getattr(self, "tgt_sockets", []):
            for suffix in ("", ".lock"):
                try:
                    os.unlink(path + suffix)
                except OSError:
                    pass
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log("kept " + self.work)

    # -- data
    def make_files(self):
        os.makedirs(os.path.join(self.work, "rs"))
        os.makedirs(os.path.join(self.work, "ref"))
        self.rs_img = os.path.join(self.work, "rs", "img.raw")
        self.ref_img = os.path.join(self.work, "ref", "img.raw")
        log("creating two identical 1 GiB backing files of random data")
        with open("/dev/urandom", "rb") as src, open(self.rs_img, "wb") as dst:
            left = IMG_SIZE
            while left:
                chunk = src.read(min(left, 8 << 20))
                dst.write(chunk)
                left -= len(chunk)
        subprocess.run(["cp", "--sparse=never", self.rs_img, self.ref_img], check=True)

    def warm(self):
        # Read both files so that every server starts a round from the page cache.
        for path in (self.rs_img, self.ref_img):
            with open(path, "rb") as f:
                while f.read(8 << 20):
                    pass

    # -- ringstord (iSCSI)
    def start_ringstord_iscsi(self):
        if not os.access(self.rsbin, os.X_OK):
            self.note("ringstord not built (%s): iSCSI part skipped" % self.rsbin)
            return None
        port = free_port()
        conf = os.path.join(self.work, "ringstord-iscsi.conf")
        with open(conf, "w") as f:
            f.write("""# generated by bench/run.py
daemon = { log_level = "warning"; };
targets = (
  { tid = 1; name = "%s";
    luns = ( { lun = 1; type = "file"; path = "%s"; },
             { lun = 2; type = "null"; size = "1G"; } );
    initiator_address = [ "127.0.0.1" ]; }
);
""" % (RS_IQN, self.rs_img))
        state = os.path.join(self.work, "rs-state-iscsi")
        os.makedirs(state)
        logp = os.path.join(self.work, "ringstord-iscsi.log")
        argv = [self.rsbin, "-f", "-c", conf, "--iscsi-portal", "127.0.0.1:%d" % port,
                "-C", os.path.join(self.work, "rs-iscsi.sock"), "--state-dir", state]
        p = self.procs.start("ringstord", argv, logp)
        if not wait_port(port, p):
            self.note("ringstord (iSCSI) did not come up:\n" + tail(logp))
            self.procs.stop(p)
            return None
        rs = Server("ringstord", "iscsi", p)
        rs.iscsi_url = "iscsi://127.0.0.1:%d/%s/1" % (port, RS_IQN)
        ceil = Server("ceiling", "iscsi", p)
        ceil.iscsi_url = "iscsi://127.0.0.1:%d/%s/2" % (port, RS_IQN)
        rs.log = ceil.log = logp
        return rs, ceil

    # -- tgt
    def start_tgt(self):
        if not shutil.which("tgtd") or not shutil.which("tgtadm"):
            self.note("tgt is not installed: iSCSI reference skipped")
            return None
        port = free_port()
        # tgtd's management socket is /var/run/tgtd/socket.<N>; pick an unused N
        # so that a system tgtd (N = 0) or another harness is left alone.
        while True:
            cport = random.randint(1000, 32767)   # tgtadm -C accepts <= 32767
            sock = "/var/run/tgtd/socket.%d" % cport
            if not os.path.exists(sock):
                break
        self.tgt_sockets = [sock]
        logp = os.path.join(self.work, "tgtd.log")
        p = self.procs.start("tgtd", ["tgtd", "-f", "-C", str(cport), "--iscsi",
                                      "portal=127.0.0.1:%d" % port], logp,
                             stop=lambda: self.tgt_shutdown(cport))
        adm = ["tgtadm", "-C", str(cport), "--lld", "iscsi"]
        end = time.time() + 15
        while time.time() < end and p.poll() is None:
            if run_client(adm + ["--mode", "target", "--op", "show"], 5)[0] == 0:
                break
            time.sleep(0.1)
        steps = [["--mode", "target", "--op", "new", "--tid", "1", "-T", TGT_IQN],
                 ["--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1",
                  "-b", self.ref_img],
                 ["--mode", "target", "--op", "bind", "--tid", "1", "-I", "ALL"]]
        for st in steps:
            rc, out = run_client(adm + st, 10)
            if rc != 0:
                self.note("tgtadm %s failed: %s\n%s" % (" ".join(st), out.strip(), tail(logp)))
                self.procs.stop(p)
                return None
        if not wait_port(port, p):
            self.note("tgtd did not listen:\n" + tail(logp))
            self.procs.stop(p)
            return None
        s = Server("tgt", "iscsi", p)
        s.iscsi_url = "iscsi://127.0.0.1:%d/%s/1" % (port, TGT_IQN)
        s.log = logp
        return s

    @staticmethod
    def tgt_shutdown(cport):
        # tgtd ignores SIGTERM while targets exist: delete them, then the system.
        adm = ["tgtadm", "-C", str(cport)]
        run_client(adm + ["--lld", "iscsi", "--mode", "target", "--op", "delete",
                          "--force", "--tid", "1"], 5)
        run_client(adm + ["--mode", "sys", "--op", "delete"], 5)

    # -- NFS: portmapper
    def portmapper_answers(self):
        return shutil.which("rpcinfo") and run_client(["rpcinfo", "-p", "127.0.0.1"], 5)[0] == 0

    def wait_port_free(self, port, what, timeout=30):
        end = time.time() + timeout
        while port_busy(port):
            if time.time() > end:
                self.note("port %d (%s) stays busy (another portmapper/NFS server?)" % (port, what))
                return False
            time.sleep(0.5)
        return True

    def wait_nfs_ready(self, srv, proc, logp, timeout=30):
        """Ready = a real MOUNT + READDIR through the portmapper succeeds."""
        end = time.time() + timeout
        url = "nfs://127.0.0.1%s/" % srv.nfs_export
        out = ""
        while time.time() < end:
            if proc.poll() is not None:
                break
            rc, out = run_client(["nfs-ls", url], 5) if shutil.which("nfs-ls") else \
                run_client(["qemu-img", "info", "-f", "raw", url + "img.raw"], 10)
            if rc == 0:
                return True
            time.sleep(0.2)
        self.note("%s (NFS) is not ready: %s\n%s" % (srv.name, out.strip()[-300:], tail(logp)))
        return False

    def start_rpcbind(self):
        if port_busy(111):
            if self.portmapper_answers():
                if not self.external_rpcbind:
                    self.note("a portmapper already runs on port 111: using it")
                self.external_rpcbind = True
                return None, True
            self.note("port 111 is busy and answers no portmap call")
            return None, False
        logp = os.path.join(self.work, "rpcbind.log")
        # No -w: a warm start would reload registrations of earlier runs.
        p = self.procs.start("rpcbind", ["rpcbind", "-f"], logp)
        if not wait_port(111, p, 10):
            self.note("rpcbind did not start:\n" + tail(logp))
            self.procs.stop(p)
            return None, False
        return p, True

    # -- nfs-ganesha
    def start_ganesha(self):
        for tool in ("ganesha.nfsd", "rpcbind"):
            if not shutil.which(tool):
                self.note("%s is not installed: NFS reference skipped" % tool)
                return None
        if not os.path.exists(PACKAGES[2][1]):
            self.note("nfs-ganesha-vfs is not installed: NFS reference skipped")
            return None
        rpcb, ok = self.start_rpcbind()
        if not ok:
            return None
        nfs_port, mnt_port, nlm_port = free_port(), free_port(), free_port()
        conf = os.path.join(self.work, "ganesha.conf")
        export = os.path.join(self.work, "ref")
        with open(conf, "w") as f:
            f.write("""# generated by bench/run.py (as in /work/shared/reference/anchors.md)
NFS_CORE_PARAM { Protocols = 3; NFS_Port = %d; MNT_Port = %d; NLM_Port = %d;
                 Bind_addr = 127.0.0.1; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; }
EXPORT { Export_Id = 1; Path = %s; Pseudo = %s; Protocols = 3;
         Access_Type = RW; Squash = No_root_squash; SecType = sys;
         FSAL { Name = VFS; } }
""" % (nfs_port, mnt_port, nlm_port, export, export))
        logp = os.path.join(self.work, "ganesha.log")
        p = self.procs.start("ganesha", ["ganesha.nfsd", "-F", "-f", conf, "-L", logp,
                                         "-p", os.path.join(self.work, "ganesha.pid")], logp)
        s = Server("nfs-ganesha", "nfs", p)
        s.nfs_server, s.nfs_export, s.log = "127.0.0.1", export, logp
        s.helpers = [rpcb] if rpcb else []
        if not self.wait_nfs_ready(s, p, logp):
            self.stop_nfs(s)
            return None
        return s

    # -- ringstord NFS gateway
    def ringstord_nfs_style(self):
        """How this ringstord takes NFS options: "export" (--nfs-export 'PATH
        SPEC(opts)', --nfs-bind, --nfs-port, --mount-port, --portmap MODE),
        "listen" (issue 4's --nfs-listen ADDR:PORT + ringstoradm export new),
        or None (no NFS gateway)."""
        if not os.access(self.rsbin, os.X_OK):
            return None
        rc, out = run_client([self.rsbin, "--help"], 10)
        if "--nfs-export" in out:
            return "export"
        if "--nfs-listen" in out:
            return "listen"
        return None

    def ringstord_has_nfs(self):
        return self.ringstord_nfs_style() is not None

    def start_ringstord_nfs(self):
        style = self.ringstord_nfs_style()
        if not style:
            self.note("ringstord has no NFS gateway (no --nfs-export in --help): "
                      "NFS part skipped for ringstord")
            return None
        if not self.wait_port_free(111, "portmapper"):
            if not self.portmapper_answers():
                return None
        nfs_port, iscsi_port = free_port(), free_port()
        export = os.path.join(self.work, "rs")
        state = os.path.join(self.work, "rs-state-nfs")
        os.makedirs(state, exist_ok=True)
        conf = os.path.join(self.work, "ringstord-nfs.conf")
        with open(conf, "w") as f:
            f.write('# generated by bench/run.py\ndaemon = { log_level = "warning"; };\n')
        sock = os.path.join(self.work, "rs-nfs.sock")
        logp = os.path.join(self.work, "ringstord-nfs.log")
        clients = "127.0.0.1(rw,no_root_squash,insecure,sync)"
        argv = [self.rsbin, "-f", "-c", conf, "-C", sock, "--state-dir", state,
                "--iscsi-portal", "127.0.0.1:%d" % iscsi_port]
        if style == "export":
            # --portmap auto: the built-in portmapper answers on 111 unless a
            # portmapper already runs there, in which case ringstord registers
            # with it.
            argv += ["--nfs-bind", "127.0.0.1", "--nfs-port", str(nfs_port),
                     "--mount-port", str(free_port()), "--nlm-port", str(free_port()),
                     "--portmap", "auto", "--nfs-export", "%s %s" % (export, clients)]
        else:
            argv += ["--nfs-listen", "127.0.0.1:%d" % nfs_port]
            if not port_busy(111):
                argv += ["--portmap", "127.0.0.1:111"]
        argv += os.environ.get("RS_NFS_ARGS", "").split()
        p = self.procs.start("ringstord-nfs", argv, logp)
        s = Server("ringstord", "nfs", p)
        s.nfs_server, s.nfs_export, s.log, s.helpers = "127.0.0.1", export, logp, []
        if not wait_port(nfs_port, p):
            self.note("ringstord (NFS) did not listen on %d:\n%s" % (nfs_port, tail(logp)))
            self.stop_nfs(s)
            return None
        rc = 0
        if style == "listen":
            rc, out = run_client([self.admbin, "-C", sock, "--lld", "nfs", "--mode", "export",
                                  "--op", "new", "--export-id", "1", "--path", export,
                                  "--clients", clients], 10)
        if rc != 0:
            self.note("ringstoradm export new failed: %s\n%s" % (out.strip(), tail(logp)))
            self.stop_nfs(s)
            return None
        if not self.wait_nfs_ready(s, p, logp):
            self.stop_nfs(s)
            return None
        return s

    def stop_nfs(self, s):
        self.procs.stop(s.proc, grace=10)
        for h in getattr(s, "helpers", []):
            self.procs.stop(h)
        # The next server needs port 111 (and rpcbind must have let go of it).
        if not self.external_rpcbind:
            end = time.time() + 10
            while port_busy(111) and time.time() < end:
                time.sleep(0.1)

    # -- running one workload against one server
    def client_argv(self, w, srv):
        pr = w.params
        if w.kind == "perf":
            return (["iscsi-perf", "-m", "32", "-b", "8", "-r", "-t", str(pr["t"]), srv.iscsi_url],
                    pr["t"] + 60)
        if w.kind == "qemu":
            url = srv.iscsi_url if w.proto == "iscsi" else \
                "nfs://%s%s/img.raw" % (srv.nfs_server, srv.nfs_export)
            argv = ["qemu-img", "bench", "-f", "raw", "-c", str(pr["count"]), "-d", str(pr["depth"]),
                    "-s", str(pr["size"]), "-S", str(pr["size"])]
            if pr["write"]:
                argv.insert(2, "-w")
            # Generous: at least 1000 ops/s (4 KiB) or 50 MB/s, plus login/mount.
            limit = 60 + max(pr["count"] / 1000.0, pr["count"] * pr["size"] / 50e6)
            return argv + [url], limit
        return ([self.nfsmeta, srv.nfs_server, srv.nfs_export, str(pr["files"]),
                 "nfsmeta.%d" % os.getpid()], 60 + pr["files"] / 100.0)

    def run_one(self, w, srv, rnd):
        key = (w.name, w.proto, srv.name)
        if not srv.alive():
            if not srv.reported:
                srv.reported = True
                self.note("%s (%s) is dead (%s): its remaining workloads are skipped\n%s"
                          % (srv.name, srv.role, srv.failed, tail(srv.log)))
            self.samples.setdefault(key, []).append({"round": rnd, "value": None,
                                                     "error": "server " + srv.failed})
            log("  %-5s %-27s %-12s SKIPPED (server dead)" % (w.proto, w.name, srv.name))
            return
        argv, limit = self.client_argv(w, srv)
        cpu0, t0 = cpu_seconds(srv.pid), time.time()
        rc, out = run_client(argv, limit, watch=srv.proc)
        wall = time.time() - t0
        cpu1 = cpu_seconds(srv.pid)
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        sample = {"round": rnd, "wall": round(wall, 3), "server_cpu_s": cpu}
        try:
            if rc is None:
                raise ValueError("server died during the run" if not srv.alive() else
                                 "timed out after %.0f s" % limit)
            if rc != 0:
                raise ValueError("exit status %d" % rc)
            pr = w.params
            if w.kind == "perf":
                iops = parse_iscsi_perf(out)
                sample.update(value=iops, ios=iops * pr["t"])
            elif w.kind == "qemu":
                secs = parse_qemu_bench(out)
                sample["seconds"] = secs
                sample["ios"] = pr["count"]
                if w.unit == "us":
                    sample["value"] = secs / pr["count"] * 1e6
                elif w.unit == "MB/s":
                    sample["value"] = pr["count"] * pr["size"] / secs / 1e6
                else:
                    sample["value"] = pr["count"] / secs
            else:
                phases = parse_nfsmeta(out)
                sample["phases"] = {p: {"n": n, "seconds": s, "ops_per_s": n / s if s else None}
                                    for p, (n, s) in phases.items()}
                sample["ios"] = sum(n for n, _ in phases.values())
                sample["value"] = sample["ios"] / sum(s for _, s in phases.values())
        except ValueError as e:
            alive = srv.alive()
            msg = "%s / %s / %s round %d: %s%s" % (w.proto, w.name, srv.name, rnd + 1, e,
                                                   "" if alive else " (server %s)" % srv.failed)
            self.note(msg + "\n    " + " ".join(argv) + "\n    " + out.strip()[-400:].replace(
                "\n", "\n    "))
            if not alive and not srv.reported:
                srv.reported = True
                self.note("%s (%s) died (%s); its log ends:\n%s"
                          % (srv.name, srv.role, srv.failed, tail(srv.log)))
            sample["error"] = str(e)
            sample["value"] = None
        if sample.get("value") is not None and cpu is not None and sample.get("ios"):
            sample["cpu_us_per_io"] = cpu / sample["ios"] * 1e6
        self.samples.setdefault(key, []).append(sample)
        v = sample.get("value")
        log("  %-5s %-27s %-12s %s" % (w.proto, w.name, srv.name,
                                       "%.1f %s%s" % (v, w.unit, "" if sample.get(
                                           "cpu_us_per_io") is None else
                                           "  (server CPU %.1f us/IO)" % sample["cpu_us_per_io"])
                                       if v is not None else "FAILED"))

    # -- the whole run
    def snapshot_binaries(self):
        """Run copies, so that a rebuild during the run cannot swap the binary
        under the benchmark (or make the second half measure other code)."""
        for attr in ("rsbin", "admbin"):
            path = getattr(self, attr)
            if os.access(path, os.X_OK):
                copy = os.path.join(self.work, os.path.basename(path))
                shutil.copy2(path, copy)
                setattr(self, attr, copy)

    def run(self):
        a = self.args
        ensure_packages(a.no_install)
        self.snapshot_binaries()
        load = os.getloadavg()[0]
        if load > 0.5:
            self.note("the machine is not idle (load average %.2f at start): absolute numbers "
                      "and even ratios will be noisy" % load)
        for tool in ("qemu-img",):
            if not shutil.which(tool):
                self.note("%s is missing: qemu-img workloads will fail" % tool)
        self.make_files()
        self.workloads = make_workloads(a.quick)
        rounds = a.rounds or (1 if a.quick else 3)
        iscsi_ws = [w for w in self.workloads if w.proto == "iscsi"]
        nfs_ws = [w for w in self.workloads if w.proto == "nfs"]
        if not os.access(self.nfsmeta, os.X_OK):
            self.note("%s not built (libnfs-dev missing?): metadata workload skipped"
                      % self.nfsmeta)
            nfs_ws = [w for w in nfs_ws if w.kind != "meta"]
        if not shutil.which("iscsi-perf"):
            self.note("iscsi-perf missing (libiscsi-bin): its workload skipped")
            iscsi_ws = [w for w in iscsi_ws if w.kind != "perf"]

        iscsi_servers = []
        if a.only in (None, "iscsi"):
            r = self.start_ringstord_iscsi()
            t = self.start_tgt()
            if r:
                iscsi_servers += [r[0]]
            if t:
                iscsi_servers += [t]
            if r:
                iscsi_servers += [r[1]]
            self.rs_iscsi = r[0] if r else None
        nfs_kinds = []
        if a.only in (None, "nfs"):
            if self.ringstord_has_nfs():
                nfs_kinds.append("ringstord")
            else:
                self.note("ringstord has no NFS gateway yet (no --nfs-export in --help): "
                          "NFS workloads run against nfs-ganesha only")
            nfs_kinds.append("nfs-ganesha")

        for rnd in range(rounds):
            log("round %d of %d" % (rnd + 1, rounds))
            self.warm()
            order = iscsi_servers if rnd % 2 == 0 else list(reversed(iscsi_servers))
            for w in iscsi_ws:
                for srv in order:
                    self.run_one(w, srv, rnd)
            if iscsi_servers and getattr(self, "rs_iscsi", None):
                self.rss.append(rss_kib(self.rs_iscsi.pid))
            korder = nfs_kinds if rnd % 2 == 0 else list(reversed(nfs_kinds))
            for kind in korder:
                if not nfs_ws:
                    break
                srv = self.start_ringstord_nfs() if kind == "ringstord" else self.start_ganesha()
                if not srv:
                    self.note("NFS %s unavailable in round %d" % (kind, rnd + 1))
                    continue
                try:
                    for w in nfs_ws:
                        self.run_one(w, srv, rnd)
                finally:
                    self.stop_nfs(srv)
        return self.report()

    # ------------------------------------------------------------ report
    def rows(self):
        """Medians per workload: list of dicts, one per table row."""
        rows = []
        for w in self.workloads:
            ref = "tgt" if w.proto == "iscsi" else "nfs-ganesha"
            get = lambda srv: self.samples.get((w.name, w.proto, srv), [])
            if not get("ringstord") and not get(ref):
                continue
            if w.kind == "meta":
                for phase, goal in META_PHASES:
                    def med(srv, phase=phase):
                        return median([s["phases"][phase]["ops_per_s"] for s in get(srv)
                                       if s.get("phases")])
                    rows.append(self.row(w.proto, "metadata %s (%d files)" % (phase,
                                         w.params["files"]), "ops/s", "higher", goal, False,
                                         med("ringstord"), med(ref), None))
                continue
            med = lambda srv, k="value": median([s.get(k) for s in get(srv)])
            rows.append(self.row(w.proto, w.name, w.unit, w.better, w.goal, w.ceiling_ok,
                                 med("ringstord"), med(ref), med("ceiling")))
        for w in self.workloads:
            ref = "tgt" if w.proto == "iscsi" else "nfs-ganesha"
            get = lambda srv: self.samples.get((w.name, w.proto, srv), [])
            med = lambda srv: median([s.get("cpu_us_per_io") for s in get(srv)])
            rs, rf = med("ringstord"), med(ref)
            if rs is None and rf is None:
                continue
            # us per I/O == CPU seconds per million I/Os (metadata: per operation).
            rows.append(self.row(w.proto, "server CPU: " + w.name, "s/M IO", "lower",
                                 None if w.kind == "meta" else 0.5, False, rs, rf,
                                 med("ceiling")))
        return rows

    @staticmethod
    def row(proto, name, unit, better, goal, ceiling_ok, rs, ref, ceil):
        ratio = rs / ref if rs is not None and ref else None
        w = Workload(name, proto, "", unit, better, goal=goal, ceiling_ok=ceiling_ok)
        return {"proto": proto, "workload": name, "unit": unit, "better": better,
                "ringstord": rs, "reference": ref, "ceiling": ceil, "ratio": ratio,
                "goal": goal, "goal_met": goal_met(w, ratio, rs, ceil)}

    def report(self):
        rows = self.rows()
        fmt = lambda v: "-" if v is None else ("%.0f" % v if abs(v) >= 100 else "%.2f" % v)
        print()
        for proto, ref in (("iscsi", "tgt"), ("nfs", "nfs-ganesha")):
            pr = [r for r in rows if r["proto"] == proto]
            if not pr:
                continue
            print("== %s: ringstord vs %s (medians of %d round(s); ratio = ringstord/%s)"
                  % (proto.upper() if proto == "nfs" else "iSCSI", ref,
                     self.args.rounds or (1 if self.args.quick else 3), ref))
            hdr = "%-36s %-7s %10s %10s %7s %10s  %s" % ("workload", "unit", "ringstord", ref,
                                                         "ratio", "ceiling", "goal")
            print(hdr)
            print("-" * len(hdr))
            for r in pr:
                goal = ""
                if r["goal"] is not None:
                    goal = "%s%.1f %s" % (">=" if r["better"] == "higher" else "<=", r["goal"],
                                          {True: "met", False: "NOT met",
                                           None: "?"}[r["goal_met"]])
                print("%-36s %-7s %10s %10s %7s %10s  %s" % (
                    r["workload"][:36], r["unit"], fmt(r["ringstord"]), fmt(r["reference"]),
                    "-" if r["ratio"] is None else "%.2f" % r["ratio"], fmt(r["ceiling"]), goal))
            print()
        if self.rss:
            print("ringstord (iSCSI) RSS after each round: %s KiB" % ", ".join(
                "n/a" if x is None else str(x) for x in self.rss))
        if self.notes:
            print("notes:")
            for n in self.notes:
                print("  - " + n.split("\n")[0])
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        outdir = self.args.results or os.path.join(BENCH_DIR, "results")
        os.makedirs(outdir, exist_ok=True)
        base = os.path.join(outdir, stamp + ("-quick" if self.args.quick else ""))
        doc = {
            "timestamp": stamp, "quick": self.args.quick,
            "rounds": self.args.rounds or (1 if self.args.quick else 3),
            "host": {"uname": " ".join(os.uname()), "cpus": os.cpu_count(),
                     "loadavg_at_end": os.getloadavg()},
            "versions": self.versions(),
            "workloads": [{"name": w.name, "proto": w.proto, "kind": w.kind, "unit": w.unit,
                           "params": w.params} for w in self.workloads],
            "table": rows,
            "samples": [{"workload": k[0], "proto": k[1], "server": k[2], "runs": v}
                        for k, v in sorted(self.samples.items())],
            "ringstord_rss_kib_per_round": self.rss,
            "notes": self.notes,
        }
        with open(base + ".json", "w") as f:
            json.dump(doc, f, indent=1)
        log("results: %s.json" % base)
        self.chart(rows, base + ".png")
        return 0

    def versions(self):
        v = {}
        for name, argv in (("ringstord", [self.rsbin, "-V"]), ("tgtd", ["tgtd", "-V"]),
                           ("qemu-img", ["qemu-img", "--version"])):
            try:
                rc, out = run_client(argv, 5)
                v[name] = out.strip().split("\n")[0]
            except OSError:
                pass
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nfs-ganesha"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            v["nfs-ganesha"] = r.stdout
        return v

    def chart(self, rows, path):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.note("matplotlib missing (python3-matplotlib): no PNG chart")
            return
        rows = [r for r in rows if r["ratio"]]
        if not rows:
            return
        # Speed-up: > 1 always means ringstord is better (latency and CPU inverted).
        labels, vals, goals, colors = [], [], [], []
        for r in rows:
            inv = r["better"] == "lower"
            labels.append("%s: %s" % ("iSCSI" if r["proto"] == "iscsi" else "NFS", r["workload"]))
            vals.append(1 / r["ratio"] if inv else r["ratio"])
            goals.append(None if r["goal"] is None else (1 / r["goal"] if inv else r["goal"]))
            colors.append({True: "tab:green", False: "tab:red", None: "tab:blue"}[r["goal_met"]])
        fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
        y = range(len(rows))
        ax.barh(list(y), vals, color=colors)
        for i, g in enumerate(goals):
            if g:
                ax.plot([g, g], [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ringstord speed-up over reference (tgt / nfs-ganesha); "
                      ">1 = ringstord better; black tick = issue 6 goal")
        ax.set_title("ringstor bench %s (medians; green = goal met, red = not met)"
                     % os.path.basename(path)[:-4])
        for i, v in enumerate(vals):
            ax.text(v, i, " %.2f" % v, va="center", fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        log("chart:   %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="~1 minute subset: 1 round, short runs")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    ap.add_argument("--only", choices=("iscsi", "nfs"), help="run one protocol only")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--results", help="results directory (default bench/results)")
    ap.add_argument("--self-test", action="store_true", help="check the parsers and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    b = Bench(args)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    # Explicitly: a shell starting us in the background hands SIGINT down ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return b.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        b.cleanup()


if __name__ == "__main__":
    sys.exit(main())
