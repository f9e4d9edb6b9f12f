"""hello: the example app fleetdist builds and deploys."""

__version__ = "1.0.0"


def greet(name: str) -> str:
    return f"hello, {name}"
