"""`python3 -m hello [--version | NAME]`: prints a greeting or the version."""

import sys

from hello import __version__, greet


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(__version__)
        return 0
    print(greet(argv[0] if argv else "world"))
    return 0


def run() -> None:
    """The `hello` console script (pyproject's [project.scripts])."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
