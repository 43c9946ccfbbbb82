"""Django settings for a Pilar node, driven by environment variables.

PILAR_ENV selects the shape:

- ``development`` (default): SQLite under ``var/`` unless DATABASE_URL says otherwise, DEBUG on
  only if PILAR_DEBUG=1, a secret key generated once and kept in ``var/secret_key``.
- ``demo``: like development, but never DEBUG; what ``make demo`` runs.
- ``production``: requires PILAR_SECRET_KEY and PILAR_ALLOWED_HOSTS, HTTPS-only cookies, HSTS.
  ``pilar check --deploy`` passes with these settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("PILAR_VAR_DIR", Path.cwd() / "var")).resolve()

PILAR_ENV = os.environ.get("PILAR_ENV", "development")
if PILAR_ENV not in {"development", "demo", "production"}:
    raise RuntimeError(f"PILAR_ENV must be development, demo or production, not {PILAR_ENV!r}")
PRODUCTION = PILAR_ENV == "production"


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    configured = os.environ.get("PILAR_SECRET_KEY")
    if configured:
        return configured
    if PRODUCTION:
        raise RuntimeError("PILAR_SECRET_KEY must be set when PILAR_ENV=production")
    # Outside production a key is generated once per checkout so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = (not PRODUCTION) and PILAR_ENV != "demo" and os.environ.get("PILAR_DEBUG") == "1"

if PRODUCTION:
    ALLOWED_HOSTS = _env_list("PILAR_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise RuntimeError("PILAR_ALLOWED_HOSTS must be set when PILAR_ENV=production")
else:
    ALLOWED_HOSTS = _env_list("PILAR_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = _env_list("PILAR_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Listed so /api/docs serves Swagger UI from ninja's bundled static files, not a CDN:
    # the docs must work on a node without internet access.
    "ninja",
    "pilar.core",
    "pilar.registry",
    "pilar.contributions",
    "pilar.portal",
    "pilar.benefits",
    "pilar.linkage",
    "pilar.exchange",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "pilar.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pilar.urls"
WSGI_APPLICATION = "pilar.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pilar.core.context_processors.pilar",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'pilar.sqlite3'}"
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=60)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        # WAL lets the web process read while a job writes; IMMEDIATE transactions take the write
        # lock up front so two writers queue instead of failing with "database is locked".
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
if os.environ.get("PILAR_TEST_DATABASE_NAME"):
    _database["TEST"] = {"NAME": os.environ["PILAR_TEST_DATABASE_NAME"]}
elif _database["ENGINE"] == "django.db.backends.postgresql":
    # One test database per test process, so two test runs on one server never collide.
    _database["TEST"] = {"NAME": f"test_{_database['NAME']}_{os.getpid()}"}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = ["pilar.core.auth.LockoutModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "core:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "core:login"

# Failed logins: after PILAR_LOCKOUT_ATTEMPTS consecutive failures the account is locked for
# PILAR_LOCKOUT_MINUTES, whatever password is tried during that time.
PILAR_LOCKOUT_ATTEMPTS = int(os.environ.get("PILAR_LOCKOUT_ATTEMPTS", "5"))
PILAR_LOCKOUT_MINUTES = int(os.environ.get("PILAR_LOCKOUT_MINUTES", "15"))

# Roles whose holders see persons of every region; the others see their office's region only.
PILAR_NATIONAL_SCOPE_ROLES = frozenset(
    _env_list("PILAR_NATIONAL_SCOPE_ROLES", "auditor,data_steward,analyst,administrator")
)
# API tokens expire after this many days unless created with another lifetime.
# Payroll declarations (issue 3): where the original files are kept, the largest file accepted,
# how many report lines are stored, and what happens to a worker unknown to the registry
# ("error": the line is an error; "request": a warning and a registration request).
PILAR_DECLARATION_DIR = Path(os.environ.get("PILAR_DECLARATION_DIR", VAR_DIR / "declarations"))
PILAR_DECLARATION_MAX_BYTES = int(os.environ.get("PILAR_DECLARATION_MAX_MB", "100")) * 1024 * 1024
PILAR_DECLARATION_MAX_ISSUES = int(os.environ.get("PILAR_DECLARATION_MAX_ISSUES", "100000"))
PILAR_UNKNOWN_WORKER = os.environ.get("PILAR_UNKNOWN_WORKER", "error")
if PILAR_UNKNOWN_WORKER not in {"error", "request"}:
    raise RuntimeError("PILAR_UNKNOWN_WORKER must be error or request")
# Background jobs: a running job's lease, renewed as it reports progress; and retries.
PILAR_JOB_LEASE_SECONDS = int(os.environ.get("PILAR_JOB_LEASE_SECONDS", "300"))
PILAR_JOB_MAX_ATTEMPTS = int(os.environ.get("PILAR_JOB_MAX_ATTEMPTS", "3"))
# The web process runs a worker thread itself (the embedded shape); set 0 when `pilar worker`
# processes run beside it.
PILAR_EMBEDDED_WORKER = os.environ.get("PILAR_EMBEDDED_WORKER", "1") == "1"
# A request body other than an uploaded file (a JSON declaration of up to 200,000 lines through
# the API is ~40 MB) may be this large; uploaded files above 10 MB are streamed to a temporary
# file instead of memory, and declaration files are limited by PILAR_DECLARATION_MAX_MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

PILAR_API_TOKEN_DAYS = int(os.environ.get("PILAR_API_TOKEN_DAYS", "90"))
PILAR_INSTITUTION_NAME = os.environ.get(
    "PILAR_INSTITUTION_NAME", "Instituto de Pensiones del Estado"
)

# --- Federation (docs/federation.md) -------------------------------------------------------
# This node's member code in the federation (e.g. MX-IMSS) and its role: an ``institute`` keeps
# persons and answers exchange services, the ``hub`` publishes the trust list and keeps the
# pseudonymous federated person index, an ``auditor`` cosigns the members' log checkpoints.
PILAR_NODE_CODE = os.environ.get("PILAR_NODE_CODE", "MX-DEMO")
PILAR_NODE_ROLE = os.environ.get("PILAR_NODE_ROLE", "institute")
if PILAR_NODE_ROLE not in {"institute", "hub", "auditor"}:
    raise RuntimeError("PILAR_NODE_ROLE must be institute, hub or auditor")
# The base URL other nodes reach this node at (published in the trust list).
PILAR_NODE_URL = os.environ.get("PILAR_NODE_URL", "http://127.0.0.1:8000")
# The hub: its member code, its URL and its public key(s) in C2SP vkey form
# (``MX-HUB+<8 hex>+<base64>``, comma-separated): the trust anchor a trust list must verify with.
PILAR_HUB_CODE = os.environ.get("PILAR_HUB_CODE", "MX-HUB")
PILAR_HUB_URL = os.environ.get("PILAR_HUB_URL", "")
PILAR_HUB_KEYS = _env_list("PILAR_HUB_KEYS")
# Private signing keys live in files here (mode 0600), never in the database: a database backup
# must not carry the node's signing keys.
PILAR_KEYS_DIR = Path(os.environ.get("PILAR_KEYS_DIR", VAR_DIR / "keys"))
# Exchange limits: the largest message body accepted, how long a signed message is valid (the
# receiver refuses more than 300 s), the clock skew tolerated, and the HTTP timeout of a call.
PILAR_EXCHANGE_MAX_BYTES = int(os.environ.get("PILAR_EXCHANGE_MAX_KB", "2048")) * 1024
PILAR_EXCHANGE_TTL_SECONDS = min(int(os.environ.get("PILAR_EXCHANGE_TTL_SECONDS", "300")), 300)
PILAR_EXCHANGE_SKEW_SECONDS = int(os.environ.get("PILAR_EXCHANGE_SKEW_SECONDS", "30"))
PILAR_EXCHANGE_TIMEOUT_SECONDS = float(os.environ.get("PILAR_EXCHANGE_TIMEOUT_SECONDS", "10"))
# Outgoing messages that could not be delivered are retried with the same message id, with
# exponential back-off from 2 s, up to this many attempts, then shown as failed (retry by hand).
PILAR_EXCHANGE_MAX_ATTEMPTS = int(os.environ.get("PILAR_EXCHANGE_MAX_ATTEMPTS", "12"))
# The transparency log integrates queued leaves at least this often (seconds).
PILAR_LOG_INTEGRATE_SECONDS = float(os.environ.get("PILAR_LOG_INTEGRATE_SECONDS", "0.25"))
# ``pilar serve`` and ``pilar worker`` run the federation's periodic duties in a thread
# (pilar.exchange.scheduler); 0 turns that off (a node whose duties run elsewhere).
PILAR_EXCHANGE_DUTIES = os.environ.get("PILAR_EXCHANGE_DUTIES", "1") == "1"

# --- Sessions and security ------------------------------------------------------------------
SESSION_COOKIE_AGE = 8 * 60 * 60  # one working day
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "pilar.core.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
DATA_UPLOAD_MAX_NUMBER_FIELDS = 500
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = os.environ.get("PILAR_SSL_REDIRECT", "1") == "1"
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "es"
LANGUAGES = [("es", "Español"), ("en", "English")]
# One catalogue per part of the code base (domain messages, staff UI, API), merged at run time.
# The .po files are the source; `make messages` (part of every make target) compiles them.
LOCALE_PATHS = (
    sorted((PACKAGE_DIR / "locale").iterdir()) if (PACKAGE_DIR / "locale").is_dir() else []
)
TIME_ZONE = os.environ.get("PILAR_TIME_ZONE", "America/Mexico_City")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
# Pilar's CSS, htmx and icons live in the package, beside the templates.
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise expects the directory to exist even when it serves from the finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production the files are served straight from the package, no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PILAR_LOG_LEVEL", "WARNING")},
}
