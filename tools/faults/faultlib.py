"""What the fault scripts of tools/faults share: building otpgate, a scratch
database (SQLite or PostgreSQL), the gateway's configuration and process, a stub
SMS API that can be switched down and up, and cleaning up on exit.

Python 3 standard library only. Run as a program (`python3 faultlib.py stub ...`),
it is the stub SMS API, which the scripts start as a process of its own.

Nothing here prints a code or a phone number: the stub keeps only the time, the
Idempotency-Key header and the status it answered of each request.
"""

import argparse
import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- cleaning up --------------------------------------------------------------------

_cleanups = []


def on_exit(fn):
    """Runs `fn` at exit, last registered first, whatever ends the script."""
    _cleanups.append(fn)


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - cleaning up must go on
            print(f"cleanup: {e}", file=sys.stderr)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def run(main):
    """Runs `main` and exits with its status, cleaning up however it ends: an
    exception, Ctrl-C, SIGTERM or SIGHUP. The clean-up runs before the interpreter's
    own exit handlers (multiprocessing's among them)."""
    atexit.register(_run_cleanups)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    try:
        status = main()
    finally:
        # A second signal must not cut the clean-up short.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        _run_cleanups()
    sys.exit(status)


def scratch_dir(keep=False):
    d = Path(tempfile.mkdtemp(prefix="otpgate-faults-"))
    if keep:
        on_exit(lambda: say(f"kept {d}"))
    else:
        on_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def raise_nofile():
    """Raises this process's soft open-file limit to the hard one (`ulimit -n`)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the common command line ----------------------------------------------------------


def common_args(parser, postgres=True):
    parser.add_argument(
        "--bin",
        help="the otpgate binary to run (default: build with `cargo build --release` "
        "and run target/release/otpgate)",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="do not run cargo build; use the binary as it is"
    )
    if postgres:
        parser.add_argument(
            "--postgres",
            nargs="?",
            const="postgres://postgres@127.0.0.1:5432",
            metavar="SERVER_URL",
            help="run on PostgreSQL: a scratch database is created on this server "
            "(default postgres://postgres@127.0.0.1:5432) and dropped at the end; "
            "without it, SQLite in a temporary directory",
        )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, database)"
    )


def otpgate_binary(args):
    if args.bin:
        return Path(args.bin).resolve()
    if not args.no_build:
        say("cargo build --release")
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    exe = REPO / "target" / "release" / "otpgate"
    if not exe.exists():
        raise SystemExit(f"{exe} does not exist; build it or give --bin")
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the database ------------------------------------------------------------------------


class Database:
    """A scratch database: SQLite in `workdir`, or a PostgreSQL database created on
    `server` and dropped at exit. `rows(sql)` reads it while the gateway runs."""

    def __init__(self, workdir, server=None, tag="faults"):
        self.server = server
        if server is None:
            self.path = Path(workdir) / "otpgate.db"
            self.url = f"sqlite://{self.path}"
            self.kind = "SQLite"
            return
        self.kind = "PostgreSQL"
        # Any database the URL names is left alone: the scratch one is made beside it.
        parsed = urllib.parse.urlsplit(server)
        self.name = f"otpgate_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin_url = urllib.parse.urlunsplit(parsed._replace(path="/postgres"))
        self.url = urllib.parse.urlunsplit(parsed._replace(path=f"/{self.name}"))
        self._psql(self.admin_url, f'CREATE DATABASE "{self.name}"')
        on_exit(self._drop)

    def _drop(self):
        self._psql(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    @staticmethod
    def _psql(url, sql):
        out = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout

    def rows(self, sql):
        """The rows of a query, each a tuple of strings (None for NULL on SQLite)."""
        if self.server is None:
            con = sqlite3.connect(self.path, timeout=30)
            try:
                return [tuple(None if v is None else str(v) for v in r) for r in con.execute(sql)]
            finally:
                con.close()
        out = self._psql(self.url, sql)
        return [tuple(line.split("\t")) for line in out.splitlines() if line != ""]

    def setting(self, name):
        """A PostgreSQL server setting (`SHOW name`), None on SQLite."""
        if self.server is None:
            return None
        return self.rows(f"SHOW {name}")[0][0]

    def scalar(self, sql):
        return int(self.rows(sql)[0][0])


# --- the gateway ------------------------------------------------------------------------


def toml_str(s):
    return json.dumps(str(s))


def write_config(path, *, port, database_url, sms_url=None, delivery=None, top=None):
    """A configuration for a scratch gateway: loopback, the scratch database, a fresh
    key, the SMS channel only (through the stub when `sms_url` is given, else the log
    provider), the throttle off (every request of a script comes from one address).
    `top` and `delivery` add top-level and `[delivery]` settings."""
    lines = [
        f"bind = {toml_str(f'127.0.0.1:{port}')}",
        f"database_url = {toml_str(database_url)}",
    ]
    for k, v in (top or {}).items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines += [
        "",
        "[log]",
        'level = "warn"',
        "",
        "[secrets]",
        f"otp_key = {toml_str(secrets.token_hex(32))}",
        "",
        "[otp]",
        'channels = ["sms"]',
    ]
    lines += ["", "[security.throttle]", "enabled = false", "", "[delivery]"]
    lines.append('sms = ["stub"]' if sms_url else 'sms = ["log"]')
    lines.append('email = ["log"]')
    lines.append(f"file_path = {toml_str(Path(path).parent / 'deliveries.jsonl')}")
    for k, v in (delivery or {}).items():
        lines.append(f"{k} = {json.dumps(v)}")
    if sms_url:
        lines += [
            "",
            "[[delivery.providers]]",
            'name = "stub"',
            'kind = "http_sms"',
            f"url = {toml_str(sms_url)}",
            'headers = { "Idempotency-Key" = "{id}" }',
            'body = { to = "{to}", text = "{text}" }',
            "timeout_seconds = 10",
        ]
    Path(path).write_text("\n".join(lines) + "\n")


class Gateway:
    """`otpgate serve` as a child process with its own process group, its output
    appended to `log`. Stopped (SIGTERM, then SIGKILL) at exit."""

    def __init__(self, exe, config, port, log):
        self.exe, self.config, self.port, self.log = exe, config, port, log
        self.proc = None
        on_exit(self.stop)

    def command(self, *args):
        """Runs `otpgate --config CONFIG ARGS…` to its end; returns its output."""
        out = subprocess.run(
            [str(self.exe), "--config", str(self.config), *args], capture_output=True, text=True
        )
        if out.returncode != 0:
            raise RuntimeError(f"otpgate {' '.join(args)}: {out.stderr.strip() or out.stdout}")
        return out.stdout

    def start(self, timeout=120):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.exe), "--config", str(self.config), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "NO_COLOR": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"otpgate serve exited with {self.proc.returncode}; see {self.log}:\n"
                    + self.tail()
                )
            try:
                status, _ = http_get(self.port, "/readyz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"otpgate serve was not ready within {timeout} s")

    def tail(self, n=20):
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def http_get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post_json(conn, path, body):
    """POSTs `body` as JSON on a kept-alive connection; (status, decoded answer)."""
    data = json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    raw = r.read()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, None


SUMMIT = "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall"
TWOFACTOR_CREATE = "/api/TwoFactor/CreateTwoFactorSmsOtp"


# --- the stub SMS API ------------------------------------------------------------------


class Stub:
    """The stub SMS API, a process of its own (so the scripts' own work does not slow
    it down). It answers each message after `delay_ms` ("MS", or "MIN,MAX" drawn at
    random for each message). `down()` makes it answer 503 to every message, `up()`
    200;
    `records()` returns what it received: [time received, Idempotency-Key, status,
    time its answer was written (None if the connection was gone)]."""

    def __init__(self, workdir, delay_ms=0, up=True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sms"
        log = open(Path(workdir) / "stub.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "stub",
                "--port",
                str(self.port),
                "--delay-ms",
                str(delay_ms),
                "--state",
                "up" if up else "down",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        on_exit(self.stop)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._control("GET", "/control/state")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the stub SMS API did not start")
                time.sleep(0.05)

    def _control(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=b"" if method == "POST" else None)
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def up(self):
        return self._control("POST", "/control/up")["at"]

    def down(self):
        return self._control("POST", "/control/down")["at"]

    def records(self):
        return self._control("GET", "/control/records")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve_stub(port, delay_ms, state):
    """An asyncio HTTP/1.1 server (keep-alive, Content-Length bodies): one thread, so
    its answers are not held up by a crowd of threads taking turns."""
    import asyncio

    import random

    lo, _, hi = str(delay_ms).partition(",")
    delay = (float(lo), float(hi or lo))
    records = []  # [received, Idempotency-Key, status, answered]
    status = {"up": state == "up"}

    def answer(code, body):
        data = json.dumps(body).encode()
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(code, "")
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path = line.decode("latin-1").split(" ")[:2]
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)  # not kept: the message holds a code
                now = time.time()
                record = None
                if method == "GET" and path == "/control/records":
                    out = answer(200, records)
                elif method == "GET" and path == "/control/state":
                    out = answer(200, {"up": status["up"]})
                elif method == "POST" and path in ("/control/up", "/control/down"):
                    status["up"] = path == "/control/up"
                    out = answer(200, {"at": now})
                elif method == "POST" and path == "/sms":
                    up = status["up"]
                    record = [now, headers.get("idempotency-key", ""), 200 if up else 503, None]
                    records.append(record)
                    if up:
                        if delay[1]:
                            await asyncio.sleep(random.uniform(*delay) / 1000)
                        out = answer(200, {"status": "accepted", "id": f"stub-{len(records)}"})
                    else:
                        out = answer(503, {"error": "service unavailable"})
                else:
                    out = answer(404, {"error": "not found"})
                writer.write(out)
                await writer.drain()
                if record is not None:
                    record[3] = time.time()
                if headers.get("connection", "").lower() == "close":
                    break
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- small statistics --------------------------------------------------------------------


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return v[k]


def spread(values, fmt="{:.0f}"):
    """min / median / max of `values`, or '-'."""
    if not values:
        return "-"
    return " / ".join(fmt.format(x) for x in (min(values), percentile(values, 50), max(values)))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="the stub SMS API of the fault scripts")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("stub")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--delay-ms", default="0", help="MS, or MIN,MAX drawn per message")
    s.add_argument("--state", choices=["up", "down"], default="up")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _serve_stub(a.port, a.delay_ms, a.state)
