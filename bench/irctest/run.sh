#!/bin/sh
# Run irctest against chatd's IRC door with the markers of issue 12.
#   IRCTEST=/path/to/irctest  (a checkout of github.com/progval/irctest)
#   IRCTEST_PYTHON=python with irctest's requirements, pytest-xdist, pytest-timeout
#   CHATD_TWISTD=twistd whose Python has Twisted (see chatd_controller.py)
# Extra arguments go to pytest (e.g. -k away, or -x); MARKERS replaces the
# marker expression (the chathistory run: see README.md). A test that waits past
# TIMEOUT seconds (irctest waits for ever for 001 after a refused nickname)
# fails instead of hanging the run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${IRCTEST:?set IRCTEST to an irctest checkout}"
: "${IRCTEST_PYTHON:=python3}"
cd "$IRCTEST"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$IRCTEST_PYTHON" -m pytest \
    -p no:cacheprovider \
    --controller chatd_controller \
    -m "${MARKERS:-not services and not implementation-specific and not deprecated and not strict}" \
    -n "${JOBS:-2}" -q -rfE --timeout "${TIMEOUT:-60}" "$@"
