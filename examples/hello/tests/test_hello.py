"""Runs in place on each host with only the host's python3 (stdlib unittest)."""

import subprocess
import sys
import unittest

from hello import __version__, greet


class HelloTest(unittest.TestCase):
    def test_greet(self) -> None:
        self.assertEqual(greet("fleet"), "hello, fleet")

    def test_cli_version(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "hello", "--version"], capture_output=True, text=True, check=True
        )
        self.assertEqual(out.stdout.strip(), __version__)


if __name__ == "__main__":
    unittest.main()
