# shellcheck shell=dash
# An `http` step run on a host (`from: host`).  Needs URL, STATUS, BODY (a
# fixed string the body must contain; empty: any), TRIES, DELAY and TIMEOUT
# (seconds), assigned as quoted variables.  Uses curl, else python3.

# The python3 fallback: GET argv[1] with a timeout of argv[2] seconds, write
# the body to argv[3], print the status (0 when there was no answer).
HTTP_PY='
import sys, urllib.request, urllib.error
url, timeout, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
code, data = 0, b""
try:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        code, data = answer.status, answer.read()
except urllib.error.HTTPError as exc:
    code, data = exc.code, exc.read()
except Exception as exc:
    sys.stderr.write(f"{exc}\n")
with open(out, "wb") as fh:
    fh.write(data)
print(code)
'

# http_get: one try; sets CODE (000 when nothing answered) and fills "$HTTP_OUT".
http_get() {
    if command -v curl > /dev/null 2>&1; then
        CODE=$(curl -sS --globoff -o "$HTTP_OUT" -w '%{http_code}' --max-time "$TIMEOUT" -- "$URL") || CODE=000
    elif command -v python3 > /dev/null 2>&1; then
        CODE=$(python3 -c "$HTTP_PY" "$URL" "$TIMEOUT" "$HTTP_OUT") || CODE=000
    else
        printf '%s\n' "this host has neither curl nor python3 for an http step" >&2
        exit 1
    fi
}

# http_check: up to TRIES tries, DELAY seconds apart, until the status is
# STATUS and the body contains BODY; exit 1 naming the last answer otherwise.
http_check() {
    HTTP_OUT=$(mktemp)
    trap 'rm -f "$HTTP_OUT"' EXIT
    n=1
    while :; do
        http_get
        if [ "$CODE" = "$STATUS" ] && { [ -z "$BODY" ] || grep -qF -- "$BODY" "$HTTP_OUT"; }; then
            printf 'GET %s: status %s (try %s)\n' "$URL" "$CODE" "$n"
            return 0
        fi
        if [ "$n" -ge "$TRIES" ]; then break; fi
        n=$((n + 1))
        sleep "$DELAY"
    done
    if [ "$CODE" = "$STATUS" ]; then
        printf 'GET %s: the body does not contain %s (after %s tries)\n' "$URL" "$BODY" "$n" >&2
    else
        printf 'GET %s: status %s, want %s (after %s tries)\n' "$URL" "$CODE" "$STATUS" "$n" >&2
    fi
    exit 1
}
