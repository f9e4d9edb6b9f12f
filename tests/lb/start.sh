#!/bin/sh
# PID 1 of the lb container: start HAProxy in the background with the
# configuration the pytest session rendered (/etc/fleet-lb/haproxy.cfg: a
# frontend on 127.0.0.1, one server per web host's published app port, the
# runtime API on /run/haproxy/admin.sock), then run sshd on 127.0.0.1.
set -eu
: "${FLEETTEST_LB_SSH_PORT:?}"
mkdir -p /run/haproxy /run/sshd
haproxy -c -q -f /etc/fleet-lb/haproxy.cfg
haproxy -D -f /etc/fleet-lb/haproxy.cfg -p /run/haproxy.pid
exec /usr/sbin/sshd -D -e -p "$FLEETTEST_LB_SSH_PORT"
