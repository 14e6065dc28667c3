#!/usr/bin/python3
"""Sync benchmarks (SPEC §12): publish fan-out and backfill.

Starts a real projlinkd on a temporary state directory and measures, over
its varlink socket:

  fan-out   one upstream publish of one revision -> an unpublished copy in
            each of D downstream projects (default 100). Baseline: the same
            publish with one downstream, in the same run.
  backfill  N published revisions (default 10,000) copied into a newly
            connected downstream project, until initial_sync_complete.
            Baseline: sha256sum of the same N files (the verification every
            copy needs), in the same run.

Usage: bench/sync_bench.py [--downstreams D] [--revisions N] [--build DIR]
Run it with Debian's /usr/bin/python3 (standard library only).
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time


class Client:
    """A varlink connection: JSON + NUL, pipelined calls."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, method, params):
        self.s.sendall(json.dumps({"method": method, "parameters": params}).encode() + b"\0")

    def recv(self):
        while b"\0" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("daemon closed the connection")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        reply = json.loads(msg)
        if "error" in reply:
            raise RuntimeError(f"{reply['error']}: {reply.get('parameters')}")
        return reply["parameters"]

    def call(self, method, params):
        self.send(method, params)
        return self.recv()


def pipelined(sock_path, calls, clients=8):
    """Runs (method, params) calls over several connections, pipelined."""
    conns = [Client(sock_path) for _ in range(clients)]
    out = [None] * len(calls)
    for i, (m, p) in enumerate(calls):
        conns[i % clients].send(m, p)
    for i in range(len(calls)):
        out[i] = conns[i % clients].recv()
    return out


def wait_for(predicate, timeout=600, interval=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    raise RuntimeError("timed out")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--downstreams", type=int, default=100)
    ap.add_argument("--revisions", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=4096, help="bytes per drawing file")
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", "build"))
    args = ap.parse_args()

    daemon = os.path.abspath(os.path.join(args.build, "projlinkd"))
    work = tempfile.mkdtemp(prefix="projlink-bench-")
    state, files = os.path.join(work, "state"), os.path.join(work, "files")
    os.makedirs(files)
    sock = os.path.join(state, "projlink.sock")
    cfg = os.path.join(work, "projlink.yaml")
    with open(cfg, "w") as f:
        f.write(f"""control:
  socket: projlink.sock
  operators: {{ uids: [{os.getuid()}], groups: [] }}
  clients: {{ uids: [], groups: [] }}
  max_clients: 1024
storage:
  state_dir: {state}
  import_dirs: [{files}]
notifications:
  delivery: log
logging:
  level: warn
""")
    proc = subprocess.Popen([daemon, "-c", cfg], stderr=open(os.path.join(work, "log"), "w"))
    try:
        wait_for(lambda: os.path.exists(sock), timeout=30)
        time.sleep(0.2)
        run(args, sock, state, files)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def run(args, sock, state, files):
    c = Client(sock)
    D, N = args.downstreams, args.revisions
    projects = [{"id": "up", "company": "gc", "name": "Up"},
                {"id": "up1", "company": "gc", "name": "Up 1"},
                {"id": "big", "company": "gc", "name": "Big"},
                {"id": "late", "company": "sub", "name": "Late"},
                {"id": "solo", "company": "sub", "name": "Solo"}]
    projects += [{"id": f"d{i}", "company": "sub", "name": f"D{i}"} for i in range(D)]
    doc = {"companies": [{"id": "gc", "name": "GC"}, {"id": "sub", "name": "Sub"}],
           "projects": projects,
           "users": [{"id": "ga", "email": "ga@gc", "name": "GA", "company": "gc",
                      "company_admin": True},
                     {"id": "sa", "email": "sa@sub", "name": "SA", "company": "sub",
                      "company_admin": True}],
           "access": [{"project": p, "user": "sa", "drawings": "read_only"}
                      for p in ("up", "up1", "big")]}
    c.call("io.projlink.Directory.Import", {"document": json.dumps(doc)})
    db = sqlite3.connect(f"file:{state}/projlink.db?mode=ro", uri=True)

    def copies_of(rev):
        return db.execute("SELECT count(*) FROM revisions WHERE upstream_revision = ?",
                          (rev,)).fetchone()[0]

    def upload(project, name, seed):
        path = os.path.join(files, name)
        with open(path, "wb") as f:
            f.write(hashlib.sha256(str(seed).encode()).digest() * (args.size // 32))
        return path

    def fan_out(upstream, downstreams, tag):
        for d in downstreams:
            c.call("io.projlink.Connections.Request",
                   {"as": "sa", "downstream": d, "upstream": upstream})
        path = upload(upstream, f"{tag}.pdf", tag)
        rev = c.call("io.projlink.Drawings.Upload",
                     {"as": "ga", "project": upstream, "number": "A-1", "title": "t",
                      "revision": "A", "path": path})["revision"]["id"]
        start = time.monotonic()
        c.call("io.projlink.Drawings.Publish", {"as": "ga", "project": upstream, "revisions": [rev]})
        wait_for(lambda: copies_of(rev) == len(downstreams))
        return time.monotonic() - start

    # --- fan-out
    base = fan_out("up1", ["solo"], "solo")
    fan = fan_out("up", [f"d{i}" for i in range(D)], "fan")
    print(f"fan-out: publish of 1 revision -> unpublished copy in {D} downstream projects: "
          f"{fan:.3f} s (target <= 1 s); baseline 1 downstream: {base:.3f} s; "
          f"ratio {fan / base:.1f}x")

    # --- backfill
    t0 = time.monotonic()
    calls = []
    for i in range(N):
        path = upload("big", f"b{i}.pdf", 1_000_000 + i)
        calls.append(("io.projlink.Drawings.Upload",
                      {"as": "ga", "project": "big", "number": f"B-{i}", "title": "t",
                       "revision": "A", "path": path}))
    ids = [r["revision"]["id"] for r in pipelined(sock, calls)]
    for k in range(0, N, 10_000):
        c.call("io.projlink.Drawings.Publish",
               {"as": "ga", "project": "big", "revisions": ids[k:k + 10_000]})
    setup = time.monotonic() - t0
    start = time.monotonic()
    conn = c.call("io.projlink.Connections.Request",
                  {"as": "sa", "downstream": "late", "upstream": "big"})["connection"]["id"]
    wait_for(lambda: db.execute("SELECT 1 FROM events WHERE connection = ? AND "
                                "kind = 'initial_sync_complete'", (conn,)).fetchone(),
             interval=0.01)
    backfill = time.monotonic() - start
    t1 = time.monotonic()
    subprocess.run(["sha256sum"] + [p["path"] for _, p in calls], stdout=subprocess.DEVNULL,
                   check=True)
    verify = time.monotonic() - t1
    print(f"backfill: {N} published revisions into a new downstream project: {backfill:.2f} s "
          f"({N / backfill:.0f} revisions/s; target for 100,000: <= 20 s); "
          f"baseline sha256sum of the same {N} files: {verify:.2f} s; "
          f"ratio {backfill / verify:.1f}x")
    print(f"(setup: {N} uploads + publish in {setup:.1f} s = {N / setup:.0f} uploads/s)")


if __name__ == "__main__":
    sys.exit(main())
