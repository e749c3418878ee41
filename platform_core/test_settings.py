"""Settings for the test suite: production-like (DEBUG off) with fixed test-only keys."""

import os

# Production-like whatever a developer's var/local.env says (the environment wins over it).
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
# A fixed, test-only Fernet key so subprocesses (gunicorn, celery) share it with the tests.
os.environ.setdefault("CREDENTIALS_KEYS", "f3qzN8mPq0mGmLqT6S6d2Qk4e5cU9wq8bJ1xH0sYcVg=")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# The test client and the live servers of the tests speak plain HTTP on loopback.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from platform_core.settings import *  # noqa: E402,F403

# In-process tests write the usage log in the caller's thread, inside the test transaction.
USAGE_LOG_MODE = "sync"

# In-process tests run inside transactions that are rolled back, so PostgreSQL never delivers
# the notifications the auth cache relies on: no cache here. Its own tests turn it on.
PLATFORM = {**PLATFORM, "AUTH_CACHE_SECONDS": 0}  # noqa: F405

# Two test runs against one PostgreSQL server (a developer's and CI's) need distinct databases.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}  # noqa: F405

# Tests serve no collected static files (the browser test's live server uses the finders);
# without this WhiteNoise warns on every request that var/static does not exist.
STATIC_ROOT = None
