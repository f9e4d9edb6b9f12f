"""`python3 -m hello serve|restart|stop`: the example app as a small HTTP service.

GET / answers 200 with the greeting, the app version, the host name and the
release, one per line, so a client behind a load balancer can tell which host
and which version answered:

    hello, world
    version: 1.0.0
    host: web01
    release: hello-1.0.0-...

The host name is `--name`, else $FLEETDIST_HOST (fleetdist exports it to
hooks), else the machine's; the release is $FLEETDIST_RELEASE; the greeting
word is $HELLO_GREETING (the recipe's `env`).

Restart design: stop, then start.  `restart` stops the server its pid file
names (SIGTERM: it stops accepting, finishes the requests in flight, removes
its pid file and exits), starts the new one detached from the caller (own
session, output to a log file), and returns once the new one answers GET /.
The port is closed in between, for as long as a Python start takes, so
restart a host only while the load balancer has it drained (that is what
runbooks/rolling-deploy.yaml does).  A recipe calls it from `after_activate`,
in `current`: a deploy restarts into the new release, and a rollback (or a
revert) into the old one, the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hello import __version__, greet

STOP_WAIT = 10.0  # seconds a stopping server gets to finish its requests
START_WAIT = 10.0  # seconds a new server gets to answer GET /


def page(name: str, host: str, release: str, greeting: str = "hello") -> str:
    """The body of GET /: greeting, then `key: value` lines."""
    return f"{greet(name, greeting)}\nversion: {__version__}\nhost: {host}\nrelease: {release}\n"


class Handler(BaseHTTPRequestHandler):
    """GET / answers the page; anything else is 404.  One request per connection."""

    timeout = 5  # a client that stalls cannot hold a thread (or a graceful stop) for long

    def do_GET(self) -> None:  # (http.server's naming)
        if self.path.split("?", 1)[0] != "/":
            self.send_error(404)
            return
        body = self.server.page.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the log file holds start, stop and errors only."""


class Server(ThreadingHTTPServer):
    """Request threads are joined on close, so a stop finishes what is in flight."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], text: str) -> None:
        super().__init__(address, Handler)
        self.page = text


def make_server(bind: str, port: int, name: str | None = None) -> Server:
    """A bound server (port 0 picks a free one); `serve_forever` starts it."""
    host = name or os.environ.get("FLEETDIST_HOST") or socket.gethostname()
    release = os.environ.get("FLEETDIST_RELEASE") or "-"
    greeting = os.environ.get("HELLO_GREETING") or "hello"
    return Server((bind, port), page("world", host, release, greeting))


def serve(bind: str, port: int, pidfile: str, name: str | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the pid file names us only while we accept."""
    server = make_server(bind, port, name)
    stopping = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, which runs in this very thread.
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _write_pid(pidfile, os.getpid())
    print(f"serving on {bind}:{server.server_address[1]} as pid {os.getpid()}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        if _read_pid(pidfile) == os.getpid():
            os.unlink(pidfile)
        server.server_close()  # joins the request threads still running
    print(f"pid {os.getpid()} stopped", flush=True)
    return 0


def _write_pid(pidfile: str, pid: int) -> None:
    tmp = f"{pidfile}.{pid}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, pidfile)


def _read_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stop(pidfile: str, wait: float = STOP_WAIT) -> bool:
    """Stop the server `pidfile` names, gracefully then by force; False if none ran."""
    pid = _read_pid(pidfile)
    if pid is None or not _alive(pid):
        if os.path.exists(pidfile):
            os.unlink(pidfile)  # stale: its server died without cleaning up
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if _read_pid(pidfile) == pid:
        os.unlink(pidfile)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect `pid` if it is our own child (restart and stop in one process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _answers(bind: str, port: int) -> bool:
    """GET / answers 200 (http.client: no proxy from the environment)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1" if bind in ("", "0.0.0.0") else bind, port, timeout=1
    )
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _spawn(argv: list[str], cwd: str, log: str) -> int:
    """Start `argv` in `cwd` in its own session (no SIGHUP when the hook's SSH
    session ends), stdin from /dev/null and output to `log`; return its pid.

    A bare fork+exec rather than subprocess.Popen: the server outlives this
    process by design, and Popen warns about every child it never waited for.
    """
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child never returns)
        try:
            os.setsid()
            os.chdir(cwd)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, 256)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(out)
    return pid


def restart(
    bind: str, port: int, pidfile: str, log: str, name: str | None = None, wait: float = START_WAIT
) -> int:
    """Stop the running server, start this code's, return once it answers (see above)."""
    stop(pidfile)
    # The new server runs the code this process runs: cwd is the directory
    # that holds the `hello` package (for a release, releases/<id> itself).
    top = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    argv = [sys.executable, "-m", "hello", "serve", "--bind", bind, "--port", str(port)]
    argv += ["--pidfile", os.path.abspath(pidfile)] + (["--name", name] if name else [])
    pid = _spawn(argv, top, log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(f"hello: server exited ({status:#x}; see {log})", file=sys.stderr)
            return 1
        if _read_pid(pidfile) == pid and _answers(bind, port):
            print(f"hello: serving on port {port} as pid {pid}")
            return 0
        time.sleep(0.05)
    print(f"hello: server did not answer on port {port} within {wait:g}s", file=sys.stderr)
    stop(pidfile)
    return 1


def _port(text: str) -> int:
    """argparse type: a TCP port a restart can wait on (not 0, "any")."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def main(argv: list[str]) -> int:
    """The server verbs; a usage error exits 2 and any OS error 1, in one line."""
    parser = argparse.ArgumentParser(prog="python3 -m hello")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in ("serve", "restart"):
        sub = verbs.add_parser(verb)
        sub.add_argument("--port", type=_port, required=True)
        sub.add_argument("--bind", default="127.0.0.1")
        sub.add_argument("--pidfile", required=True)
        sub.add_argument("--name", help="host name shown in the page")
        if verb == "restart":
            sub.add_argument("--log", help="server output (default: PIDFILE with .log)")
    verbs.add_parser("stop").add_argument("--pidfile", required=True)
    args = parser.parse_args(argv)
    try:
        if args.verb == "serve":
            return serve(args.bind, args.port, args.pidfile, args.name)
        if args.verb == "restart":
            log = args.log or os.path.splitext(args.pidfile)[0] + ".log"
            return restart(args.bind, args.port, args.pidfile, log, args.name)
        stop(args.pidfile)
        return 0
    except OSError as exc:
        print(f"hello {args.verb}: {exc}", file=sys.stderr)
        return 1
