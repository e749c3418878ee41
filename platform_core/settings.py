"""Django settings, read from the environment (contract §8).

Bare-machine defaults: SQLite, an embedded Celery broker, a generated local credentials key in
DEBUG; a development checkout's var/local.env turns DEBUG on (below). In production (DEBUG off)
the process refuses to start without SECRET_KEY and CREDENTIALS_KEYS, because a guessed or lost
key would expose or destroy every tenant's credentials.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from platform_core.conf import DEFAULTS as PLATFORM_DEFAULTS
from platform_core.conf import SERVER_DEFAULTS, parse_networks
from platform_core.keys import load_credentials_keys, refuse_weak_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", BASE_DIR / "var"))

# A development checkout: scripts/run.sh writes var/local.env (DEBUG=1 and a generated
# SECRET_KEY) once, so every command in any shell of this checkout runs as local development
# without exported variables. The file is git-ignored and never in the image (.dockerignore), so
# a machine without it is production. Real environment variables win over the file.
LOCAL_ENV_FILE = VAR_DIR / "local.env"
load_dotenv(LOCAL_ENV_FILE, override=False)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else float(default)


def proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` (meaning ``X-Forwarded-Proto: https``) or ``Header-Name=value`` as
    Django's ``SECURE_PROXY_SSL_HEADER`` pair; unset is None."""
    name, _, value = raw.strip().partition("=")
    name, value = name.strip(), value.strip() or "https"
    if not name:
        return None
    if not all(c.isalnum() or c == "-" for c in name):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto, "
            f"optionally =value; got {raw!r}."
        )
    return "HTTP_" + name.upper().replace("-", "_"), value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"
elif not DEBUG:
    # The same bar as `check --deploy` (security.W009), enforced at start-up: admin sessions and
    # CSRF tokens signed with a guessable key can be forged.
    refuse_weak_secret_key(SECRET_KEY)

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "platform_core",
    "tenants",
    "elements",
    "instances",
    "usage",
    "bulk",
    "events",
    "transformations",
]

MIDDLEWARE = [
    "platform_core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, users and messages: the admin's only (platform_core/middleware.py).
    "platform_core.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "platform_core.middleware.AdminAuthenticationMiddleware",
    "platform_core.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "platform_core.urls"
WSGI_APPLICATION = "platform_core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", SERVER_DEFAULTS["DATABASE_CONN_MAX_AGE"]),
        conn_health_checks=env_bool(
            "DATABASE_CONN_HEALTH_CHECKS", SERVER_DEFAULTS["DATABASE_CONN_HEALTH_CHECKS"]
        ),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Request bodies above this are refused with 413 before they are read (contract §2).
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
APPEND_SLASH = False  # element paths tolerate a trailing slash instead (contract §5)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.OrganizationUserAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "platform_core.exceptions.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "platform_core.negotiation.JSONFallbackNegotiation",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The API reference (GET /elements/api-v2/openapi.json, /api-docs/, /redoc/): the platform's
# DRF views through drf-spectacular, with every element's operations merged in. The pages load
# Swagger UI and Redoc from the sidecar package's static files: no CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Elements platform API",
    "DESCRIPTION": (
        "Instances, the element catalog, bulk downloads and the usage log, and every element's "
        "operations in both URL styles. Errors have one shape (components.schemas.Error)."
    ),
    "VERSION": "2",
    "OAS_VERSION": "3.1.0",
    "SERVERS": [{"url": "/"}],
    "SCHEMA_PATH_PREFIX": "/elements/api-v2",
    "SERVE_INCLUDE_SCHEMA": False,
    "DISABLE_DOCSTRING_DESCRIPTIONS": True,  # the views' docstrings are for developers
    # The document and its pages are public: they describe the API, not a tenant's data.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "PREPROCESSING_HOOKS": ["platform_core.openapi.document_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "platform_core.openapi.add_components",
        "elements.framework.openapi.merge_element_documents",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    # No badge fetched from validator.swagger.io: the pages load nothing from another host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


def env_setting(name: str, default):
    """The environment variable ``name`` read as the type of its default."""
    if isinstance(default, str):
        return os.environ.get(name, default)
    if isinstance(default, bool):
        return env_bool(name, default)
    if isinstance(default, int):
        return env_int(name, default)
    return env_float(name, default)


# Everything the platform itself reads, in one namespace: platform_core/conf.py names each
# setting, its default and its meaning; an environment variable of the same name overrides it.
PLATFORM = {
    name: env_setting(name, default)
    for name, default in PLATFORM_DEFAULTS.items()
    if name != "CREDENTIALS_KEYS"
}
parse_networks(PLATFORM["METRICS_ALLOWED_NETWORKS"])  # a typo stops start-up, not a scrape
PLATFORM["CREDENTIALS_KEYS"] = load_credentials_keys(
    os.environ.get("CREDENTIALS_KEYS", ""), debug=DEBUG, var_dir=VAR_DIR
)

# Where bulk job results live (platform_core/conf.py; README, "Where results live"). The bucket
# is described by django-storages' and boto3's usual variables; credentials are not settings:
# boto3 finds them its own way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a role).
BULK_STORAGE = PLATFORM["BULK_STORAGE"].strip().lower() or "local"
if BULK_STORAGE == "s3":
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("BULK_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.")
    STORAGES["bulk"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            # Another S3-compatible service (MinIO, Ceph, R2...); unset for AWS itself.
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # "path" for services that have no per-bucket host names (MinIO); auto by default.
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
            # Keys under this prefix, so that the bucket can hold other things.
            "location": PLATFORM["BULK_S3_PREFIX"],
            # A part's name is never reused: a worker that lost its lease must not overwrite
            # the part another worker committed (bulk/storage.py).
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": False,  # the platform streams results; it hands out no URLs
        },
    }
elif BULK_STORAGE != "local":
    raise ImproperlyConfigured(f"BULK_STORAGE must be local or s3, not {BULK_STORAGE!r}.")

# Admin login lockout (platform_core/admin_login.py; README, "Admin login lockout").
AXES_FAILURE_LIMIT = PLATFORM["ADMIN_LOGIN_FAILURE_LIMIT"]
AXES_COOLOFF_TIME = (
    timedelta(minutes=PLATFORM["ADMIN_LOGIN_COOLOFF_MINUTES"])
    if PLATFORM["ADMIN_LOGIN_COOLOFF_MINUTES"] > 0
    else None
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "platform_core.admin_login.client_ip"
AXES_LOCKOUT_CALLABLE = "platform_core.admin_login.lockout_response"
# Masked in axes' log lines and in the form data it keeps of each failure (the password always).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]

# Usage log (contract §7): "spool" writes off the request path (usage/writer.py).
USAGE_LOG_MODE = os.environ.get("USAGE_LOG_MODE", "spool")
USAGE_SPOOL_DIR = Path(os.environ.get("USAGE_SPOOL_DIR", VAR_DIR / "usage-spool"))

# --- HTTPS (production: DEBUG off) -----------------------------------------------------------
# Every default below is the safe one with DEBUG off, so `manage.py check --deploy` is clean in
# the production environment the README documents ("Production"), with no HTTPS setting in it.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Off only where nothing can reach the server over plain HTTP except through a proxy that
# redirects itself, or on loopback (the tests' live platform).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Opt-in: trust a TLS-terminating proxy's header for "this request came over HTTPS". Safe only
# when every request reaches the server through that proxy and the proxy sets or strips the
# header on every request (otherwise a client sends it and passes for HTTPS).
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django logs every 4xx with the request path; ours are logged once by the middleware.
        "django.request": {"level": "ERROR"},
        # Its version banner, on every start of every process and management command.
        "axes.apps": {"level": "WARNING"},
    },
}

# --- Celery (bulk jobs) ----------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    # Kombu's filesystem transport, with consumers woken by a new message's file instead of
    # polling the folder every second (platform_core/broker.py).
    CELERY_BROKER_TRANSPORT = "platform_core.broker:Transport"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (control) exchanges; without this kombu writes ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A job runs for as long as it needs: its row's lease, not the broker, decides who
        # runs it, so a redelivery after this timeout is harmless (the claim fails).
        "visibility_timeout": env_int(
            "CELERY_VISIBILITY_TIMEOUT", SERVER_DEFAULTS["CELERY_VISIBILITY_TIMEOUT"]
        ),
    }
    key_prefix = os.environ.get("CELERY_BROKER_KEY_PREFIX", "")
    if key_prefix:
        # Several platforms (tests) can share one Redis server without seeing each other's
        # queues.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = key_prefix
# Periodic tasks (celery beat): the purge deletes result files past their retention. (The bulk
# sweeper, which re-queues jobs whose worker died or whose message was lost, runs inside every
# worker instead, beat or not: bulk/worker.py.) A purge that waited longer than its interval
# behind busy workers is dropped: the next one does the same work.
CELERY_BEAT_SCHEDULE = {
    "bulk-purge-results": {
        "task": "bulk.purge_results",
        "schedule": PLATFORM["BULK_PURGE_INTERVAL"],
        "options": {"expires": PLATFORM["BULK_PURGE_INTERVAL"]},
    },
    # Events: queue the polls and notification deliveries that are due (events/tasks.py).
    "events-tick": {
        "task": "events.tick",
        "schedule": PLATFORM["EVENTS_TICK_INTERVAL"],
        "options": {"expires": PLATFORM["EVENTS_TICK_INTERVAL"]},
    },
    "events-purge": {"task": "events.purge", "schedule": 3600.0, "options": {"expires": 3600.0}},
}
