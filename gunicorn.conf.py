"""gunicorn settings for every way the platform is served (scripts/run.sh, the Dockerfile, the
tests' live platform): gunicorn reads ./gunicorn.conf.py by default; flags override it."""

import os

wsgi_app = "platform_core.wsgi"
# Threads: an element call mostly waits on its vendor.
worker_class = "gthread"
# Each worker touches a heartbeat file on every pass of its loop, so once per request. On a
# disk-backed temp directory that is a journaled metadata write; /dev/shm keeps it in memory.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
