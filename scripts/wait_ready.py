"""Waits until a service answers 200 on a URL, at most 30 s.

    python3 scripts/wait_ready.py http://127.0.0.1:PORT/healthz PID

Fails early when the process PID exits. Used by scripts/clients.sh and
scripts/statistics-postgres.sh after they start the service.
"""

import os
import sys
import time
import urllib.request

url, pid = sys.argv[1], int(sys.argv[2])
for _ in range(300):  # at most 30 s
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("the service exited")
    time.sleep(0.1)
sys.exit(f"{url} did not answer 200 within 30 s")
