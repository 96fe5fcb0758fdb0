#!/bin/sh
# Twin of Chatterbox's start.sh: start the TTS server in the background and return.
# Rehearsal hooks: a file .fail-next-start beside this script makes this one start fail (and is removed);
# a file .fail-every-start makes every start fail until it is removed (a service that will not come back).
cd "$(dirname "$0")" || exit 1
if [ -e .fail-every-start ]; then echo "start.sh: failing every start (rehearsal)" >&2; exit 1; fi
if [ -e .fail-next-start ]; then rm -f .fail-next-start; echo "start.sh: failing once (rehearsal)" >&2; exit 1; fi
nohup python3 server.py --port 8772 >chatterbox.log 2>&1 </dev/null &
echo $! >chatterbox.pid
