"""Connections that outlive one CLI run, like OpenSSH's ControlPersist.

A rollback of a hundred hosts is a hundred tiny scripts; what it costs is a
hundred SSH handshakes (sshd spends ~35 ms of CPU on each).  With `--persist
SECONDS` (default 60) a per-user daemon keeps each host's authenticated
connection open after a run, and the next run (a rollback, a status, the next
deploy) opens a channel on it instead of handshaking again.

  * `wire.py`: the message format and where the socket lives;
  * `daemon.py`: the background process and its connection pool;
  * `client.py`: the Transport a run uses, and starting the daemon.
"""
