"""One settings class, read from environment variables (see README, "Settings")."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.secretbox import parse_keys

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The embedded database: in a source checkout, its var/; an installed copy (the wheel) keeps it
# in var/ of the directory it is started from, never inside site-packages.
DATA_ROOT = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()
DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{DATA_ROOT / 'var' / 'pregnancy-butler.db'}"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SmsProvider(StrEnum):
    CONSOLE = "console"
    HTTP = "http"


class Routing(StrEnum):
    """How a checked-in mother is routed through the clinic.

    ``parallel`` (the default): she holds a place in the queue of every exam she may do now,
    stations call by the documented priority, and she is suggested the shortest next wait.
    ``fixed``: one exam at a time in catalogue order, first come first served at every
    station: the way most clinics work, kept as the simulator's baseline.
    """

    PARALLEL = "parallel"
    FIXED = "fixed"


class OgttBetweenDraws(StrEnum):
    """What she may do between the OGTT's draws (from the glucose drink to the last draw).

    ``rest`` (the default): nothing else; she sits still (CMA 2014 / CSOG 2022: 检查期间静坐、
    禁烟). ``listed``: only the exams in OGTT_BETWEEN_DRAWS_EXAMS (a scan lying down nearby).
    ``any``: any exam her other rules allow (how the routing worked before issue 20).
    """

    REST = "rest"
    LISTED = "listed"
    ANY = "any"


class BookingOutsideWindow(StrEnum):
    WARN = "warn"
    REFUSE = "refuse"


class Settings(BaseSettings):
    # A mistyped key must not reach a log through the validation error that names it.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="development, test or production; production refuses demo seeding.",
    )
    database_url: str = Field(
        default=DEFAULT_SQLITE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    sql_echo: bool = False

    clinic_timezone: str = Field(
        default="Asia/Shanghai", description="Time zone of the clinic's calendar day."
    )
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where mothers' phones reach the console, e.g. https://clinic.example.cn "
        "(the check-in slip's QR code encodes it); default: the request's own base URL.",
    )
    token_ttl_minutes: int = Field(
        default=12 * 60, ge=1, le=30 * 24 * 60, description="Lifetime of a login token."
    )
    token_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="How long a verified token is trusted without the database (0: never); "
        "revocation clears it at once.",
    )
    idempotency_ttl_hours: int = Field(default=48, ge=24, le=24 * 30)
    idempotency_lock_seconds: int = Field(
        default=60,
        ge=5,
        description="After this long an unfinished Idempotency-Key claim is considered abandoned.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get 413."
    )
    body_read_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="A request body not received whole within this long gets 408; on the "
        "embedded database the body is read before the write lock is taken.",
    )
    cors_allow_origins: str = Field(
        default="",
        description="Comma-separated origins (scheme://host[:port]) allowed cross-origin "
        "calls; empty (the default): CORS is off and no CORS header is sent.",
    )
    metrics_scrape_addresses: str = Field(
        default="",
        description="Comma-separated client addresses or networks (CIDR) that may read "
        "/metrics without a token; anyone else needs an admin token.",
    )
    lab_max_reports_per_message: int = Field(
        default=50, ge=1, le=10_000, description="More reports in one lab message: refused."
    )
    lab_max_observations_per_message: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="More observations in one lab message: refused.",
    )
    idempotency_purge_minutes: int = Field(
        default=60,
        ge=1,
        le=24 * 60,
        description="How often the service deletes Idempotency-Key copies past their keep time.",
    )
    sms_report_ready_window_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Report-ready texts to one mother within this window are sent as one.",
    )
    care_plan_guideline: str = Field(
        default="cn-2018", description="Code of the guideline table new pregnancies follow."
    )
    care_plan_dir: str | None = Field(
        default=None,
        description="A directory of the hospital's own guideline tables (JSON), added to the "
        "built-in ones; a file with a built-in table's code replaces it.",
    )
    care_plan_region_flags: frozenset[str] = Field(
        default=frozenset(),
        description="Indications the hospital's province turns on for every pregnancy, e.g. "
        "thalassaemia_region (CSOG 2018: thalassaemia screening at the first visit in "
        "Guangdong, Guangxi, Hainan, Hunan, Hubei, Sichuan and Chongqing).",
    )
    booking_outside_window: BookingOutsideWindow = Field(
        default=BookingOutsideWindow.WARN,
        description="warn: book and say so; refuse: 409 when a visit falls outside its window.",
    )
    caseload_weights: str = Field(
        default="green=1,yellow=1,orange=2,red=3,purple=3",
        description="Weight of a mother in a butler's caseload, by risk grade.",
    )
    visit_minutes: int = Field(
        default=180,
        ge=15,
        le=600,
        description="How long a butler is taken up by accompanying one visit.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed logins of one account from one client address per window before "
        "that client gets 429 for that account (other clients are not affected).",
    )
    login_account_max_failures: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Failed logins of one account from all clients per window before it opens "
        "only on clients it logged in from in the last 30 days (NIST SP 800-63B: at most 100).",
    )
    login_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="The window failed logins are counted in."
    )
    sms_per_mother_per_day: int = Field(
        default=3, ge=1, le=100, description="Texts sent by staff to one mother per day."
    )
    sms_per_account_per_hour: int = Field(
        default=30, ge=1, le=10_000, description="Texts one staff account may send per hour."
    )
    queue_routing: Routing = Field(
        default=Routing.PARALLEL,
        description="parallel: a place in every queue she may join now; fixed: one at a time.",
    )
    queue_ageing_minutes: int = Field(
        default=30,
        ge=1,
        le=480,
        description="After this long in a queue a mother is called before the ordinary ones.",
    )
    queue_no_show_delay_minutes: int = Field(
        default=10,
        ge=0,
        le=240,
        description="A mother who missed her call rejoins the queue after this delay.",
    )
    booking_max_wait_minutes: float = Field(
        default=15.0,
        ge=1,
        le=240,
        description="A booking is refused (the desk offered other hours and sessions) when, with "
        "her, the forecast wait at a station type she needs would pass this many minutes for "
        "her or a mother booked after her arrival (an admin may override).",
    )
    ogtt_between_draws: OgttBetweenDraws = Field(
        default=OgttBetweenDraws.REST,
        description="rest: no other exam between the glucose drink and the OGTT's last draw (the "
        "guideline); listed: only OGTT_BETWEEN_DRAWS_EXAMS; any: whatever her other rules allow.",
    )
    ogtt_between_draws_exams: str = Field(
        default="",
        max_length=2000,
        pattern=r"^\s*([a-z][a-z0-9_]{0,39}\s*(,\s*[a-z][a-z0-9_]{0,39}\s*)*)?$",
        description="Exam codes she may have between the OGTT's draws when OGTT_BETWEEN_DRAWS="
        "listed, comma-separated (e.g. us_obstetric); empty: none.",
    )
    ogtt_preparation_sms_at: time = Field(
        default=time(10, 0),
        description="Clinic time from which, the day before, a mother booked for tomorrow whose "
        "visit expects the OGTT is sent its preparation text (once per visit and day).",
    )
    critical_ack_minutes: int = Field(
        default=15,
        ge=1,
        le=240,
        description="Tier 0: a critical value no doctor on duty has closed in this time goes "
        "to the obstetric lead.",
    )
    critical_lead_minutes: int = Field(
        default=15,
        ge=1,
        le=240,
        description="Tier 1: a critical value the obstetric lead has not closed in this further "
        "time goes to the hospital's duty office (the last tier).",
    )
    critical_values_file: str | None = Field(
        default=None,
        description="The hospital's own critical-value table (JSON); the built-in one if unset.",
    )
    risk_rules_file: str | None = Field(
        default=None,
        description="The province's own risk-grading rules (JSON: colours, labels, tasks, age "
        "floors); the built-in NHFPC 2017 file if unset.",
    )
    dating_rules_file: str | None = Field(
        default=None,
        description="The hospital's own re-dating table (JSON); the built-in ACOG 700 (2017) "
        "table if unset.",
    )
    clinical_rules_file: str | None = Field(
        default=None,
        description="The hospital's own clinical rules (JSON: OGTT, blood pressure, "
        "haemoglobin, fetal heart, weight-gain referral); the built-in app/clinical/rules.json "
        "if unset.",
    )
    gwg_table: str | None = Field(
        default=None,
        description="The gestational weight-gain table in force: wst-801-2022 (the default) or "
        "iom-2009.",
    )
    gwg_tables_file: str | None = Field(
        default=None,
        description="The hospital's own weight-gain tables (JSON); the built-in "
        "app/clinical/gwg_tables.json if unset.",
    )
    measurement_limits_file: str | None = Field(
        default=None,
        description="The hospital's own measurement ranges and units (JSON); the built-in "
        "table (app/measurements/limits.json) if unset.",
    )
    lab_codes_file: str | None = Field(
        default=None,
        description="The hospital's own map of lab codes (LOINC) to her timeline's results "
        "(JSON); the built-in one (app/measurements/lab_codes.json) if unset.",
    )
    health_plan_nutrition_file: str | None = Field(
        default=None,
        description="The hospital's own nutrition table for health plans (JSON); the built-in "
        "Chinese DRIs 2023 table (app/healthplan/nutrition.json) if unset.",
    )
    health_plan_fetal_monitoring_file: str | None = Field(
        default=None,
        description="The hospital's own fetal-monitoring table for health plans (JSON); the "
        "built-in CSOG 2018 table (app/healthplan/fetal_monitoring.json) if unset.",
    )
    pickup_reminder_minutes: int = Field(
        default=120,
        ge=5,
        description="A final report not picked up by then reminds the butler "
        "(and, after twice as long, the front desk).",
    )
    sms_provider: SmsProvider = Field(
        default=SmsProvider.CONSOLE, description="console (logs a masked line) or http."
    )
    sms_http_url: str | None = Field(default=None, description="The SMS gateway's URL (http).")
    sms_http_token: str | None = Field(default=None, description="Bearer token for the gateway.")
    dispatcher_in_app: bool | None = Field(
        default=None,
        description="Deliver the outbox inside the web process; default: yes on SQLite, no on "
        "PostgreSQL (run `python -m app.cli dispatch` as a worker there).",
    )
    dispatch_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    feed_answer_cache: int = Field(
        default=5000,
        ge=0,
        le=1_000_000,
        description="How many butlers' last answers each process keeps (0: rebuild every time).",
    )
    feed_retention_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 30,
        description="How long the change feed keeps events; an older cursor gets 410 Gone.",
    )
    feed_stream_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="How long one Server-Sent Events stream of the feed lasts before the phone "
        "reconnects with Last-Event-ID.",
    )
    secrets_keys: str | None = Field(
        default=None,
        repr=False,
        description="AES-256 keys (base64url, 32 bytes; the first seals, all open) that seal "
        "the lab's webhook signing secrets at rest. Required in production; "
        "`python -m app.cli new-secrets-key` makes one.",
    )
    log_level: str = "INFO"
    log_json: bool = True

    demo_password: str = Field(default="butler-demo-2026", min_length=8)
    demo_lab_api_key: str = Field(default="pb_demo_lab_key_0001", min_length=16)
    demo_lab_secret: str = Field(default="demo-lab-signing-secret-2026", min_length=16)

    @field_validator("secrets_keys")
    @classmethod
    def _usable_keys(cls, value: str | None) -> str | None:
        parse_keys(value)  # a malformed key stops start-up, naming which one
        return value

    @field_validator("clinic_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("metrics_scrape_addresses")
    @classmethod
    def _scrape_addresses(cls, value: str) -> str:
        """Every part an address or a network, read as app.ops.router.scrape_networks reads
        them (host bits allowed): a typo stops start-up instead of opening /metrics to the
        wrong network or closing it to the scraper at the first scrape."""
        import ipaddress  # here: only this validator of settings.py is ours to edit

        for part in (p.strip() for p in value.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError as exc:
                    raise ValueError(f"{part!r} is no address or network (CIDR)") from exc
        return value

    @field_validator("caseload_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        """The form (``name=weight`` pairs, each weight at least 1); that every risk grade has
        one is checked by the assignments package when the app starts (``create_app``)."""
        for part in value.split(","):
            name, sep, weight = part.partition("=")
            if not sep or not name.strip() or not weight.strip().isdigit() or int(weight) < 1:
                raise ValueError(f"{part!r} is not name=weight with a weight of at least 1")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
