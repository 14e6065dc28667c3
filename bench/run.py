#!/usr/bin/python3
"""projlink benchmarks: every target of SPEC §12, each against a baseline
measured in the same run on the same machine and disk.

Each benchmark starts a real projlinkd on a fresh temporary state directory
and talks to it over its varlink socket:

  control   durable connection state changes/s from 64 concurrent clients
            (Connections.Request then .Approve, each acknowledged after
            COMMIT), and the latency of Connections.Get during that load.
            Baseline: SQLite autocommit inserts, WAL + synchronous=FULL.
  scale     projects stored (1k, 10k, 100k, 1M): time from exec to READY=1
            (sd_notify), resident memory; then 100,000 live project actors:
            resident bytes per actor. Baseline: the smallest size's READY.
  fanout    one upstream Publish of 100 revisions -> unpublished copies in
            each of 10, 100, 1,000 connected downstream projects (until
            every sync job is done), copies/s. Baseline: 10 downstreams.
  backfill  N published revisions (1,000, 10,000, 100,000) copied into a
            new downstream until its initial_sync_complete.
            Baseline: sha256sum of the same N files.
  upload    Drawings.Upload of one large file (hash + durable store), by
            path and by a passed descriptor (as projlinkctl does).
            Baseline: openssl dgst -sha256 + cp + sync FILE of that file.

Usage: bench/run.py [--quick] [--only NAME,...] [--build DIR] [--json FILE]
Normally through scripts/bench, which builds in Release first. Run it with
Debian's /usr/bin/python3 (standard library only).
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

# --------------------------------------------------------------------------
# plumbing


class Client:
    """A varlink connection: JSON + NUL, calls may be pipelined."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, method, params):
        self.s.sendall(json.dumps({"method": method, "parameters": params}).encode() + b"\0")

    def recv_raw(self):
        while b"\0" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("daemon closed the connection")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def recv(self):
        reply = self.recv_raw()
        if "error" in reply:
            raise RuntimeError(f"{reply['error']}: {reply.get('parameters')}")
        return reply["parameters"]

    def call(self, method, params):
        self.send(method, params)
        return self.recv()


def pipelined(sock_path, calls, clients=8, window=512, check=True):
    """Runs (method, params) calls over several connections, at most
    `window` in flight per connection; returns the replies in order."""
    conns = [Client(sock_path) for _ in range(clients)]
    out = [None] * len(calls)
    per = [list(range(k, len(calls), clients)) for k in range(clients)]
    for k, c in enumerate(conns):
        idx = per[k]
        for start in range(0, len(idx), window):
            chunk = idx[start:start + window]
            for i in chunk:
                c.send(*calls[i])
            for i in chunk:
                out[i] = c.recv() if check else c.recv_raw()
    return out


def wait_for(predicate, timeout=900, interval=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    raise RuntimeError("timed out")


class Daemon:
    """A projlinkd on its own state directory; start() measures exec -> READY=1."""

    def __init__(self, build, work, actors="", import_dirs=()):
        self.exe = os.path.abspath(os.path.join(build, "projlinkd"))
        self.work = work
        self.state = os.path.join(work, "state")
        self.sock = os.path.join(self.state, "projlink.sock")
        self.db_path = os.path.join(self.state, "projlink.db")
        self.cfg = os.path.join(work, "projlink.yaml")
        self.proc = None
        dirs = ", ".join(import_dirs)
        with open(self.cfg, "w") as f:
            f.write(f"""control:
  socket: projlink.sock
  operators: {{ uids: [{os.getuid()}], groups: [] }}
  clients: {{ uids: [], groups: [] }}
  max_clients: 1024
  max_message_bytes: 256MiB
storage:
  state_dir: {self.state}
  import_dirs: [{dirs}]
notifications:
  delivery: log
logging:
  level: warn
actors:
  passivate_after: 1h
{actors}""")

    def start(self):
        notify = os.path.join(self.work, "notify.sock")
        if os.path.exists(notify):
            os.unlink(notify)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(notify)
        ns.settimeout(300)
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.exe, "-c", self.cfg], env=env,
                                     stderr=open(os.path.join(self.work, "log"), "a"))
        while True:
            msg = ns.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                break
        ready = time.monotonic() - t0
        ns.close()
        return ready

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def client(self):
        return Client(self.sock)


class Workdir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="projlink-bench-", dir=os.environ.get("BENCH_TMP"))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


RESULTS = []
SCALING = {}


def report(what, figure, baseline, ratio, target, met, note=""):
    RESULTS.append({"what": what, "figure": figure, "baseline": baseline, "ratio": ratio,
                    "target": target, "met": met, "note": note})
    mark = {True: "yes", False: "NO", None: "-"}[met]
    print(f"  {what}: {figure} | baseline {baseline} | ratio {ratio} | "
          f"target {target} | met: {mark}" + (f" ({note})" if note else ""), flush=True)


def directory(companies, projects, users, access):
    return {"companies": companies, "projects": projects, "users": users, "access": access}


def import_doc(client, doc):
    client.call("io.projlink.Directory.Import", {"document": json.dumps(doc)})


# --------------------------------------------------------------------------
# control throughput + read latency


def bench_control(args):
    print("control: durable state changes through the socket", flush=True)
    pairs, upstreams = args.pairs, 100
    with Workdir() as work:
        d = Daemon(args.build, work)
        d.start()
        try:
            c = d.client()
            projects = [{"id": f"u{i}", "company": "gcm", "name": f"U{i}"} for i in range(upstreams)]
            projects += [{"id": f"d{i}", "company": "sub", "name": f"D{i}"} for i in range(pairs)]
            projects.append({"id": "probe", "company": "sub", "name": "Probe"})
            import_doc(c, directory(
                [{"id": "gcm", "name": "GC", "auto_approve": False}, {"id": "sub", "name": "Sub"}],
                projects,
                [{"id": "ma", "email": "ma@gc", "name": "MA", "company": "gcm", "company_admin": True},
                 {"id": "sa", "email": "sa@sub", "name": "SA", "company": "sub", "company_admin": True}],
                [{"project": f"u{i}", "user": "sa", "drawings": "read_only"} for i in range(upstreams)]))
            loadgen = os.path.join(args.build, "projlink-loadgen")
            base = json.loads(subprocess.run(
                [loadgen, "--baseline-db", os.path.join(d.state, "baseline.db"), "--seconds", "3"],
                check=True, capture_output=True, text=True).stdout)
            runs = {}
            for depth in (1, 4):
                # Fresh downstreams for each run: a downstream connects once (R3).
                if depth != 1:
                    extra = [{"id": f"d{i}", "company": "sub", "name": f"D{i}"}
                             for i in range(pairs, 2 * pairs)]
                    import_doc(c, directory([], extra, [], []))
                    offset = pairs
                else:
                    offset = 0
                out = subprocess.run(
                    [loadgen, "--socket", d.sock, "--clients", "64", "--pairs", str(pairs),
                     "--upstreams", str(upstreams), "--depth", str(depth),
                     "--offset", str(offset)],
                    capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"loadgen failed: {out.stderr}")
                runs[depth] = json.loads(out.stdout)
                if runs[depth]["failed"]:
                    raise RuntimeError(f"loadgen saw errors: {runs[depth]}")
            m = c.call("io.projlink.Daemon.GetMetrics", {})
        finally:
            d.stop()
    b = base["per_second"]
    for depth, r in runs.items():
        rate = r["per_second"]
        report(f"state changes/s, 64 clients, {depth} call(s) in flight each",
               f"{rate:,.0f}/s ({r['state_changes']:,} in {r['seconds']:.2f} s)",
               f"{b:,.0f} inserts/s", f"{rate / b:.1f}x", ">= 20,000/s and >= 5x",
               rate >= 20000 and rate / b >= 5)
        report(f"Connections.Get latency under that load ({depth} in flight)",
               f"p50 {r['get_p50_ms']:.2f} ms, p99 {r['get_p99_ms']:.2f} ms "
               f"({r['get_calls']:,} calls, max {r['get_max_ms']:.1f} ms)",
               "-", "-", "p99 <= 2 ms", r["get_p99_ms"] <= 2.0)
    metrics = m.get("metrics", m)
    print(f"  (store over the whole run: {json.dumps(metrics)[:400]})", flush=True)


# --------------------------------------------------------------------------
# scale: projects stored, READY time, memory per live actor


def bench_scale(args):
    print("scale: projects stored, time to READY, memory per live project actor", flush=True)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    live = min(args.live, sizes[-1])
    chunk = 50_000
    table = []
    with Workdir() as work:
        d = Daemon(args.build, work)
        d.start()
        c = d.client()
        import_doc(c, directory([{"id": "co", "name": "Co"}], [],
                                [{"id": "adm", "email": "a@co", "name": "A", "company": "co",
                                  "company_admin": True}], []))
        stored = 0
        for n in sizes:
            t0 = time.monotonic()
            while stored < n:
                k = min(chunk, n - stored)
                import_doc(c, directory([], [{"id": f"p{stored + i}", "company": "co",
                                              "name": f"Project {stored + i}"} for i in range(k)],
                                        [], []))
                stored += k
            imported = time.monotonic() - t0
            # Started twice: the first start after an import checkpoints the WAL.
            d.stop()
            d.start()
            d.stop()
            ready = d.start()
            c = d.client()
            table.append((n, ready, d.rss_kib(), imported))
            print(f"  {n:>9,} projects: READY in {ready * 1000:.0f} ms, RSS {d.rss_kib() / 1024:.1f} MiB"
                  f" (import took {imported:.1f} s)", flush=True)
        # Live actors: a refused self-connection wakes the project's actor
        # and changes nothing (SelfConnection).
        before = d.rss_kib()
        t0 = time.monotonic()
        calls = [("io.projlink.Connections.Request",
                  {"as": "adm", "downstream": f"p{i}", "upstream": f"p{i}"}) for i in range(live)]
        replies = pipelined(d.sock, calls, check=False)
        bad = [r for r in replies if r.get("error") != "io.projlink.Connections.SelfConnection"]
        if bad:
            raise RuntimeError(f"unexpected replies: {bad[:3]}")
        spawn = time.monotonic() - t0
        status = c.call("io.projlink.Daemon.GetStatus", {})
        after = d.rss_kib()
        d.stop()
    per_actor = (after - before) * 1024 / max(1, status["live_project_actors"])
    n0, r0 = table[0][0], table[0][1]
    for n, ready, rss, _ in table[1:]:
        report(f"start to READY, {n:,} projects stored", f"{ready * 1000:.0f} ms",
               f"{r0 * 1000:.0f} ms with {n0:,}", f"{ready / r0:.2f}x", "<= 2 s", ready <= 2.0)
    report(f"resident memory per live project actor ({status['live_project_actors']:,} live)",
           f"{per_actor:,.0f} B", f"RSS {before / 1024:.1f} MiB before",
           f"RSS {after / 1024:.1f} MiB after", "<= 2 KiB", per_actor <= 2048,
           f"woken in {spawn:.1f} s = {live / spawn:,.0f}/s")


# --------------------------------------------------------------------------
# sync: fan-out and backfill


def sync_world(c, downstreams):
    projects = [{"id": u, "company": "gc", "name": u} for u in ("up", "big")]
    projects += [{"id": p, "company": "sub", "name": p} for p in downstreams + ["late"]]
    import_doc(c, directory(
        [{"id": "gc", "name": "GC"}, {"id": "sub", "name": "Sub"}], projects,
        [{"id": "ga", "email": "ga@gc", "name": "GA", "company": "gc", "company_admin": True},
         {"id": "sa", "email": "sa@sub", "name": "SA", "company": "sub", "company_admin": True}],
        [{"project": p, "user": "sa", "drawings": "read_only"} for p in ("up", "big")]))


def files_daemon(args, work):
    """A daemon that may upload from `work`/files; returns it and that directory."""
    files = os.path.join(work, "files")
    os.makedirs(files)
    return Daemon(args.build, work, import_dirs=[files]), files


def write_file(path, seed, size):
    block = hashlib.sha256(str(seed).encode()).digest()
    with open(path, "wb") as f:
        f.write(block * (size // 32) + block[:size % 32])


def sync_done(db):
    """True when no sync job is pending or running (its copies are committed
    with it)."""
    return db.execute("SELECT 1 FROM sync_jobs WHERE state IN ('pending', 'running') "
                      "LIMIT 1").fetchone() is None


def upload_all(d, files, project, prefix, n, size, seed):
    """Writes n files and uploads them by path (pipelined); returns paths, ids."""
    paths, calls = [], []
    for i in range(n):
        path = os.path.join(files, f"{prefix}{i}.pdf")
        write_file(path, seed + i, size)
        paths.append(path)
        calls.append(("io.projlink.Drawings.Upload",
                      {"as": "ga", "project": project, "number": f"{prefix}-{i}", "title": "t",
                       "revision": "A", "path": path}))
    ids = [r["revision"]["id"] for r in pipelined(d.sock, calls)]
    return paths, ids


def fanout_once(args, downstreams, revisions):
    """One Publish of `revisions` revisions into `downstreams` connected
    downstream projects: seconds until every copy is committed."""
    with Workdir() as work:
        d, files = files_daemon(args, work)
        d.start()
        try:
            c = d.client()
            downs = [f"d{i}" for i in range(downstreams)]
            sync_world(c, downs)
            pipelined(d.sock, [("io.projlink.Connections.Request",
                                {"as": "sa", "downstream": p, "upstream": "up"}) for p in downs])
            _, ids = upload_all(d, files, "up", "A", revisions, args.size, downstreams * 10_000)
            db = sqlite3.connect(f"file:{d.db_path}?mode=ro", uri=True)
            wait_for(lambda: sync_done(db), interval=0.02)  # activations: nothing to copy
            t0 = time.monotonic()
            c.call("io.projlink.Drawings.Publish", {"as": "ga", "project": "up", "revisions": ids})
            wait_for(lambda: sync_done(db), interval=0.02)
            elapsed = time.monotonic() - t0
            copies = db.execute("SELECT count(*) FROM revisions WHERE connection IS NOT NULL "
                                "AND deleted_at IS NULL").fetchone()[0]
            db.close()
        finally:
            d.stop()
    if copies != downstreams * revisions:
        raise RuntimeError(f"fan-out made {copies} copies of {downstreams * revisions}")
    return elapsed


def bench_fanout(args):
    revs = args.fanout_revisions
    counts = [10, 100, 1000] if not args.quick else [10, 100]
    print(f"fan-out: one publish of {revs} revisions -> unpublished copies downstream", flush=True)
    times = {}
    for n in counts:
        times[n] = fanout_once(args, n, revs)
        print(f"  {n:>4} downstreams: {times[n]:.2f} s ({n * revs / times[n]:,.0f} copies/s)",
              flush=True)
    top = counts[-1]
    t = times[top]
    SCALING["fanout"] = {n: (times[n], n * revs / times[n]) for n in counts}
    report(f"{revs}-revision publish -> copies in {top:,} downstreams ({top * revs:,} copies)",
           f"{t:.2f} s ({top * revs / t:,.0f} copies/s)",
           f"{counts[0]} downstreams {times[counts[0]]:.2f} s "
           f"({counts[0] * revs / times[counts[0]]:,.0f} copies/s)",
           f"{t / times[counts[0]]:.1f}x for {top // counts[0]}x the copies",
           "<= 10 s for 1,000", t <= 10.0 if top >= 1000 else None)


def backfill_once(args, n):
    """n published revisions, then a new downstream: seconds until its
    initial_sync_complete, and sha256sum's seconds over the same files."""
    with Workdir() as work:
        d, files = files_daemon(args, work)
        d.start()
        try:
            c = d.client()
            sync_world(c, [])
            t0 = time.monotonic()
            paths, ids = upload_all(d, files, "big", "B", n, args.size, 1_000_000)
            for k in range(0, n, 10_000):
                c.call("io.projlink.Drawings.Publish",
                       {"as": "ga", "project": "big", "revisions": ids[k:k + 10_000]})
            setup = time.monotonic() - t0
            db = sqlite3.connect(f"file:{d.db_path}?mode=ro", uri=True)
            t0 = time.monotonic()
            conn = c.call("io.projlink.Connections.Request",
                          {"as": "sa", "downstream": "late", "upstream": "big"})["connection"]["id"]
            wait_for(lambda: db.execute(
                "SELECT 1 FROM events WHERE connection = ? AND kind = 'initial_sync_complete'",
                (conn,)).fetchone(), interval=0.01)
            backfill = time.monotonic() - t0
            copies = db.execute("SELECT count(*) FROM revisions WHERE project = 'late'").fetchone()[0]
            db.close()
        finally:
            d.stop()
        t0 = time.monotonic()
        for k in range(0, n, 2000):
            subprocess.run(["sha256sum"] + paths[k:k + 2000], stdout=subprocess.DEVNULL, check=True)
        verify = time.monotonic() - t0
    if copies != n:
        raise RuntimeError(f"backfill copied {copies} of {n}")
    print(f"  {n:>7,} revisions: {backfill:.2f} s ({n / backfill:,.0f}/s), sha256sum {verify:.2f} s "
          f"-> {backfill / verify:.2f}x (setup: uploads + publish {setup:.1f} s = "
          f"{n / setup:,.0f} uploads/s)", flush=True)
    return backfill, verify


def bench_backfill(args):
    n = args.revisions
    sizes = [s for s in (1_000, 10_000) if s < n] + [n]
    print(f"backfill: published revisions into a new downstream ({', '.join(f'{s:,}' for s in sizes)})",
          flush=True)
    runs = {s: backfill_once(args, s) for s in sizes}
    SCALING["backfill"] = {s: (b, v, s / b) for s, (b, v) in runs.items()}
    backfill, verify = runs[n]
    report(f"backfill of {n:,} published revisions", f"{backfill:.2f} s ({n / backfill:,.0f}/s)",
           f"sha256sum of the same files {verify:.2f} s", f"{backfill / verify:.2f}x",
           "<= 1.5x sha256sum", backfill / verify <= 1.5)


# --------------------------------------------------------------------------
# upload


def upload_call(c, path, number, by_fd):
    params = {"as": "ga", "project": "up", "number": number, "title": "t", "revision": "A"}
    if by_fd:
        # As projlinkctl drawing upload does: the client opens the file and
        # passes the descriptor with the call (SCM_RIGHTS).
        fd = os.open(path, os.O_RDONLY)
        try:
            params["file_fd"] = 0
            msg = json.dumps({"method": "io.projlink.Drawings.Upload",
                              "parameters": params}).encode() + b"\0"
            socket.send_fds(c.s, [msg], [fd])
        finally:
            os.close(fd)
        return c.recv()
    params["path"] = path
    return c.call("io.projlink.Drawings.Upload", params)


def bench_upload(args):
    print(f"upload: one {args.upload_mib} MiB file, hash + durable store", flush=True)
    with Workdir() as work:
        d, files = files_daemon(args, work)
        path = os.path.join(files, "big.pdf")
        with open(path, "wb") as f:
            for i in range(args.upload_mib):
                f.write(os.urandom(1 << 20))
        d.start()
        ours = {False: [], True: []}
        base = []
        try:
            c = d.client()
            sync_world(c, [])
            subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm cache
            dst = os.path.join(d.state, "copy.pdf")
            for i in range(6):
                t0 = time.monotonic()
                subprocess.run(["openssl", "dgst", "-sha256", path], stdout=subprocess.DEVNULL,
                               check=True)
                subprocess.run(["cp", path, dst], check=True)
                subprocess.run(["sync", dst], check=True)
                base.append(time.monotonic() - t0)
                os.unlink(dst)
                # A new revision each time; the same content would replace
                # the stored file, so make each upload new content.
                with open(path, "r+b") as f:
                    f.seek(0)
                    f.write(bytes([i]))
                by_fd = i % 2 == 1
                t0 = time.monotonic()
                upload_call(c, path, f"U-{i}", by_fd)
                ours[by_fd].append(time.monotonic() - t0)
        finally:
            d.stop()
    b = min(base)
    for by_fd, how in ((False, "by path"), (True, "by passed descriptor")):
        o = min(ours[by_fd])
        report(f"upload of {args.upload_mib} MiB {how} (best of 3)",
               f"{o:.3f} s ({args.upload_mib / o:,.0f} MiB/s)",
               f"openssl dgst -sha256 + cp + sync FILE {b:.3f} s (best of 6)", f"{o / b:.2f}x",
               "<= 1.3x", o / b <= 1.3)


# --------------------------------------------------------------------------


BENCHES = {"control": bench_control, "scale": bench_scale, "fanout": bench_fanout,
           "backfill": bench_backfill, "upload": bench_upload}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a quick look")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ",".join(BENCHES))
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", "build-release"))
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--pairs", type=int, help="Request+Approve pairs (default 50,000)")
    ap.add_argument("--live", type=int, default=100_000, help="live project actors")
    ap.add_argument("--revisions", type=int, help="backfill size (default 100,000)")
    ap.add_argument("--size", type=int, default=4096, help="bytes per drawing file")
    ap.add_argument("--upload-mib", type=int, help="upload file size (default 512)")
    ap.add_argument("--fanout-revisions", type=int, default=100,
                    help="revisions per fan-out publish (default 100)")
    args = ap.parse_args()
    args.pairs = args.pairs or (5_000 if args.quick else 50_000)
    args.revisions = args.revisions or (5_000 if args.quick else 100_000)
    if args.quick:
        args.fanout_revisions = min(args.fanout_revisions, 20)
    args.upload_mib = args.upload_mib or (64 if args.quick else 512)
    if args.quick:
        args.live = min(args.live, 10_000)
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in BENCHES:
            ap.error(f"unknown benchmark {n}")
    print(f"projlink benchmarks: {os.uname().nodename}, {os.cpu_count()} cores, "
          f"build {args.build}{' (quick sizes)' if args.quick else ''}", flush=True)
    t0 = time.monotonic()
    for n in names:
        BENCHES[n](args)
    print(f"\n| what | figure | baseline (same run) | ratio | SPEC §12 target | met |")
    print("|---|---|---|---|---|---|")
    for r in RESULTS:
        mark = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        note = f" ({r['note']})" if r["note"] else ""
        print(f"| {r['what']} | {r['figure']}{note} | {r['baseline']} | {r['ratio']} | "
              f"{r['target']} | {mark} |")
    if "fanout" in SCALING:
        print("\n| downstreams | " + " | ".join(f"{n:,}" for n in SCALING["fanout"]) + " |")
        print("|---" * (len(SCALING["fanout"]) + 1) + "|")
        print(f"| {args.fanout_revisions}-revision publish | " + " | ".join(
            f"{t:.2f} s ({r:,.0f} copies/s)" for t, r in SCALING["fanout"].values()) + " |")
    if "backfill" in SCALING:
        print("\n| revisions | " + " | ".join(f"{n:,}" for n in SCALING["backfill"]) + " |")
        print("|---" * (len(SCALING["backfill"]) + 1) + "|")
        print("| backfill | " + " | ".join(f"{b:.2f} s ({r:,.0f}/s)"
                                           for b, v, r in SCALING["backfill"].values()) + " |")
        print("| sha256sum, same files | " + " | ".join(f"{v:.2f} s"
                                                       for b, v, r in SCALING["backfill"].values()) + " |")
        print("| ratio | " + " | ".join(f"{b / v:.2f}x"
                                        for b, v, r in SCALING["backfill"].values()) + " |")
    print(f"\ntotal {time.monotonic() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": RESULTS, "scaling": SCALING}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
