"""`python3 -m hello [--version | NAME]`: prints a greeting or the version.

`python3 -m hello serve|restart|stop ...` runs it as an HTTP service (see server.py).
"""

import sys

from hello import __version__, greet

SERVER_VERBS = ("serve", "restart", "stop")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(__version__)
        return 0
    if argv[:1] and argv[0] in SERVER_VERBS:
        from hello import server  # the CLI's one-line greeting does not pay for http.server

        return server.main(argv)
    print(greet(argv[0] if argv else "world"))
    return 0


def run() -> None:
    """The `hello` console script (pyproject's [project.scripts])."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
