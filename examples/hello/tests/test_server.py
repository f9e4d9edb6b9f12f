"""The HTTP service mode.  Runs in place on each host during deploys: fast, and
only on ports the kernel hands out (never a fixed one)."""

import contextlib
import http.client
import io
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

from hello import __version__, server


def get(port: int, path: str = "/") -> tuple[int, str]:
    """GET over http.client (never through a proxy from the environment)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PageTest(unittest.TestCase):
    def test_page_names_greeting_version_host_and_release(self) -> None:
        text = server.page("world", "web01", "hello-1.0.0-abc", greeting="hi")
        self.assertEqual(
            text.splitlines(),
            ["hi, world", f"version: {__version__}", "host: web01", "release: hello-1.0.0-abc"],
        )


class UsageTest(unittest.TestCase):
    def test_bad_input_is_one_line_not_a_traceback(self) -> None:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as exit_:
            server.main(["restart", "--port", "0", "--pidfile", "x.pid"])
        self.assertEqual(exit_.exception.code, 2)
        self.assertIn("'0' is not a port", err.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = server.main(["restart", "--port", "1", "--pidfile", "/nonexistent/dir/x.pid"])
        self.assertEqual(code, 1)
        self.assertEqual(len(err.getvalue().splitlines()), 1, err.getvalue())
        self.assertIn("/nonexistent/dir/x.log", err.getvalue())


class ServeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.srv = server.make_server("127.0.0.1", 0, name="box")
        self.thread = threading.Thread(
            target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()
        self.port = self.srv.server_address[1]

    def tearDown(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)

    def test_get_root(self) -> None:
        status, body = get(self.port)
        self.assertEqual(status, 200)
        self.assertIn("host: box", body.splitlines())

    def test_other_paths_are_404(self) -> None:
        self.assertEqual(get(self.port, "/nope")[0], 404)

    def test_a_stop_finishes_the_request_in_flight(self) -> None:
        threads = threading.active_count()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n")  # headers not finished: the request is in flight
            deadline = time.monotonic() + 5
            while threading.active_count() == threads and time.monotonic() < deadline:
                time.sleep(0.01)  # until a request thread has it
            stopping = threading.Thread(target=self.tearDown)
            stopping.start()
            stopping.join(0.3)
            self.assertTrue(stopping.is_alive(), "the stop did not wait for the request")
            conn.sendall(b"\r\n")
            answer = conn.makefile("rb").read()
        stopping.join(5)
        self.assertFalse(stopping.is_alive())
        self.assertTrue(answer.startswith(b"HTTP/1.0 200"), answer[:80])


class RestartTest(unittest.TestCase):
    """One real restart cycle: a detached server process, its pid file, stop."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.pidfile = os.path.join(self.dir, "hello.pid")
        self.log = os.path.join(self.dir, "hello.log")

    def tearDown(self) -> None:
        server.stop(self.pidfile)
        shutil.rmtree(self.dir)

    def test_restart_serves_then_stop_closes(self) -> None:
        port = free_port()
        with contextlib.redirect_stdout(io.StringIO()):
            code = server.restart("127.0.0.1", port, self.pidfile, self.log, "one")
        self.assertEqual(code, 0)
        pid = server._read_pid(self.pidfile)
        self.assertIsNotNone(pid)
        self.assertIn("host: one", get(port)[1])
        self.assertTrue(server.stop(self.pidfile))
        self.assertFalse(os.path.exists(self.pidfile))
        self.assertFalse(server._alive(pid or 0))
        with self.assertRaises(OSError):
            get(port)

    def test_stale_pidfile_is_ignored(self) -> None:
        with open(self.pidfile, "w") as f:
            f.write("999999999\n")
        self.assertFalse(server.stop(self.pidfile))
        self.assertFalse(os.path.exists(self.pidfile))


if __name__ == "__main__":
    unittest.main()
