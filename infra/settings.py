"""Linkway's settings, read once from the environment (prefix ``LINKWAY_``).

The defaults are the embedded default: every server on loopback, state under ``var/``.
Production points the same code at a Temporal cluster, Apache Kafka and PostgreSQL by
setting the variables below; nothing else changes.

Two sections: ``Settings`` for the platform (servers, database, API, authentication)
and ``PaymentSettings`` (``LINKWAY_PAYMENTS_*``) for the outcomes contract's payment
engine, whose values the contract manager decides.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINKWAY_", extra="ignore")

    # Where the embedded default keeps its files (Temporal's SQLite, Linkway's SQLite, keys).
    data_dir: Path = Path("var")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    # The producer's delivery settings. They are checked at start-up: a relay refuses to run
    # with settings that could lose or duplicate an event.
    kafka_acks: str = "all"
    kafka_enable_idempotence: bool = True

    # Database: SQLite file under data_dir unless a URL is given (postgresql+psycopg://...).
    database_url: str | None = None

    # Equality monitoring: the postcode -> IMD decile lookup file (`linkway imd`
    # builds it from the published files; docs/equality.md). Unset: the packaged sample.
    imd_lookup: Path | None = None

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Largest request body accepted (bytes); larger ones get 413.
    api_max_body_bytes: int = 256 * 1024
    # Per-caller token bucket, in process: each API replica keeps its own, so the
    # effective limit is this times the replica count (or put a gateway in front).
    api_rate_per_second: float = 20.0
    api_rate_burst: int = 60
    # One bucket per caller in the database, shared by every API replica (compose turns
    # it on); off, each API process keeps its own buckets.
    api_rate_shared: bool = False

    # Authentication: bearer JWTs. Production sets jwks_url (the identity provider's
    # JWKS); the embedded default signs and verifies with a key generated once under
    # data_dir, and `linkway dev` prints demo tokens for the demo tenancy.
    jwks_url: str | None = None
    jwt_audience: str = "linkway"
    jwt_issuer: str = "urn:linkway:embedded"
    # Accepted signature algorithms: asymmetric only (never "none" or HS*).
    jwt_algorithms: str = "RS256,PS256,ES256,ES384,EdDSA"
    jwt_leeway_seconds: int = 30

    # Pathway configuration: a commissioner's durations (see config/pathways/).
    pathway_profile: str = "default"

    # Partner organisations and the localities each Tier One partner serves (TOML);
    # empty means the packaged demo tenancy.
    tenancy_file: str | None = None

    # Outbox relay. A batch is read, sent and then waited for as a whole: the wait for its
    # acknowledgements is paid once per batch (docs/benchmarks.md, P6), and a relay that
    # dies mid-batch leaves at most one batch to be sent again (duplicates consumers drop).
    relay_batch_size: int = 1000
    relay_poll_seconds: float = 0.2
    # The publishing lease (messaging/lease.py): how long it lasts without renewal, and
    # how often the active relay renews it and a standby tries to take it. A relay that
    # dies is replaced within about lease + renew seconds.
    relay_lease_seconds: float = Field(default=6.0, gt=0)
    relay_renew_seconds: float = Field(default=1.0, gt=0)

    # Each process but the API (which has /livez and /readyz on its own port) answers
    # GET /livez and /readyz on this port for its container platform; 0 turns it off.
    health_port: int = Field(default=0, ge=0, le=65535)
    health_host: str = "0.0.0.0"

    # How long a stopping process lets the work in flight finish (an HTTP request, a
    # workflow activity, a consumer's message) before it exits; keep the container
    # platform's stop timeout longer (compose: stop_grace_period).
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    # Telemetry: "none", "console" or "otlp" (then the standard OTEL_EXPORTER_OTLP_* apply).
    telemetry_exporter: str = "none"
    service_name: str = "linkway"

    # Personal-data store: comma-separated Fernet keys, newest first (rotation: prepend a key).
    # Empty in the embedded default: a key is generated once under data_dir.
    pii_keys: str = ""
    # Keys the pseudonymous episode ids of the evaluation dataset (docs/reporting.md), so
    # they cannot be traced back to referral ids without it. Empty in the embedded
    # default: one is generated once under data_dir.
    evaluation_key: str = ""

    # Event source URI in the CloudEvents envelope.
    event_source: str = Field(default="urn:linkway:pathway")

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'linkway.db'}"


class PaymentSettings(BaseSettings):
    """The payment engine's settings (``LINKWAY_PAYMENTS_*``); ``payments.engine`` turns
    them into the rate-card book and the checkpoint key."""

    model_config = SettingsConfigDict(env_prefix="LINKWAY_PAYMENTS_", extra="ignore")

    # HMAC key for ledger checkpoints, held with the contract manager. Empty only in the
    # embedded default: a key is generated once under the data directory.
    checkpoint_key: str = ""
    # Claims above this amount need a second, different approver.
    second_approval_above_pence: int = Field(default=50_000, ge=0)
    # Comma-separated rate-card files or directories; empty: the packaged demo rate cards.
    rate_cards: str = ""
    # A signed checkpoint is taken every this many ledger entries.
    checkpoint_every_entries: int = Field(default=1_000, ge=1)

    @property
    def rate_card_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.rate_cards.split(",") if p.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
