"""hello: the example app fleetdist builds and deploys."""

__version__ = "1.0.0"


def greet(name: str, greeting: str = "hello") -> str:
    return f"{greeting}, {name}"
