"""distman drop-in: `fleetdist dist` and `fleetdist cache` on this machine.

Reads distman's `dist.json` and `distman.env` unchanged and writes distman
0.8.4's tree (see `release.distlayout`), without distman's bugs.
"""
