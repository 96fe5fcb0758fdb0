#!/bin/sh
# Twin of Chatterbox's stop.sh: stop the TTS server and wait until it is gone.
cd "$(dirname "$0")" || exit 1
[ -e chatterbox.pid ] || exit 0
pid="$(cat chatterbox.pid)"
kill "$pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rm -f chatterbox.pid
