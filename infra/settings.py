"""Settings from ``ESUP_*`` environment variables, with zero-config defaults (SQLite in ./data)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

TRANSCODER_TOPIC = "infra.transcoder:OrjsonTranscoder"
MAPPER_TOPIC = "infra.transcoder:FastMapper"


@dataclass
class Settings:
    data_dir: Path = Path("data")
    postgres: dict[str, str] | None = None  # eventsourcing POSTGRES_* settings when PostgreSQL is used
    pii_key: bytes | None = None
    late_entry_hours: float = 24.0
    max_batch: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024
    anomaly_sweep_seconds: float = 60.0
    refusal_sample: int = 100  # refused steps kept per source (counts are always exact)
    checkpoint_key: str | None = None  # ESUP_CHECKPOINT_KEY: base64 of a 32-byte Ed25519 seed, or a PRIVATE+KEY+... note key
    checkpoint_seconds: float = 300.0  # a serving process signs a checkpoint this often (when the log moved)
    district: str | None = None  # ESUP_DISTRICT: the checkpoints' origin when reference data names no center
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        s = cls(data_dir=Path(env.get("ESUP_DATA_DIR", "data")))
        pg = {}
        for key in ("HOST", "PORT", "DBNAME", "USER", "PASSWORD", "SCHEMA"):
            value = env.get(f"ESUP_POSTGRES_{key}", env.get(f"POSTGRES_{key}"))
            if value is not None:
                pg[f"POSTGRES_{key}"] = value
        if "POSTGRES_HOST" in pg or "POSTGRES_DBNAME" in pg:
            pg.setdefault("POSTGRES_PORT", "5432")
            pg.setdefault("POSTGRES_USER", "postgres")
            pg.setdefault("POSTGRES_PASSWORD", "")
            pg.setdefault("POSTGRES_DBNAME", "esup")
            s.postgres = pg
        if env.get("ESUP_PII_KEY"):
            s.pii_key = base64.b64decode(env["ESUP_PII_KEY"])
        if env.get("ESUP_LATE_ENTRY_HOURS"):
            s.late_entry_hours = float(env["ESUP_LATE_ENTRY_HOURS"])
        if env.get("ESUP_ANOMALY_SWEEP_SECONDS"):
            s.anomaly_sweep_seconds = float(env["ESUP_ANOMALY_SWEEP_SECONDS"])
        if env.get("ESUP_REFUSAL_SAMPLE"):
            s.refusal_sample = int(env["ESUP_REFUSAL_SAMPLE"])
        s.checkpoint_key = env.get("ESUP_CHECKPOINT_KEY") or None
        if env.get("ESUP_CHECKPOINT_SECONDS"):
            s.checkpoint_seconds = float(env["ESUP_CHECKPOINT_SECONDS"])
        s.district = env.get("ESUP_DISTRICT") or None
        if env.get("ESUP_MAX_BATCH"):
            s.max_batch = int(env["ESUP_MAX_BATCH"])
        return s

    @property
    def store(self) -> str:
        return "postgres" if self.postgres else "sqlite"

    @property
    def late_entry_after(self) -> timedelta:
        return timedelta(hours=self.late_entry_hours)

    def app_env(self, name: str) -> dict[str, str]:
        """eventsourcing settings for the application called ``name``."""
        env = {"TRANSCODER_TOPIC": TRANSCODER_TOPIC, "MAPPER_TOPIC": MAPPER_TOPIC, **self.extra_env}
        if self.postgres:
            env.update({"PERSISTENCE_MODULE": "eventsourcing.postgres", **self.postgres})
            env.setdefault("POSTGRES_POOL_SIZE", "4")
            env.setdefault("APPLICATION_RECORDER_TOPIC", "infra.recorders:GuardedPostgresRecorder")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            env.update({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.data_dir / f"{name}.sqlite")})
            env.setdefault("APPLICATION_RECORDER_TOPIC", "infra.recorders:GuardedSQLiteRecorder")
        return env

    def resolve_pii_key(self) -> bytes:
        """The configured key, else one kept in the data directory (created on first use)."""
        if self.pii_key:
            return self.pii_key
        from infra.pii import Sealer

        path = self.data_dir / "pii.key"
        if path.exists():
            return base64.b64decode(path.read_text().strip())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = Sealer.new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(key).decode())
        return key

    def resolve_checkpoint_key(self) -> str:
        """The district's checkpoint-signing key: configured, else kept in the data directory
        (``checkpoint.key``, base64 of a 32-byte Ed25519 seed, created on first use)."""
        if self.checkpoint_key:
            return self.checkpoint_key
        path = self.data_dir / "checkpoint.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(os.urandom(32)).decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key

def anomaly_policy(environ: dict[str, str] | None = None):
    """The anomaly thresholds (``domain.anomalies.AnomalyPolicy``) from ``ESUP_*`` variables."""
    from domain.anomalies import AnomalyPolicy

    env = os.environ if environ is None else environ

    def num(name: str, default: float) -> float:
        raw = env.get(name)
        return float(raw) if raw else default

    return AnomalyPolicy(
        accept_within_working_days=int(num("ESUP_ACCEPT_WITHIN_DAYS", 5)),
        bulk_min_steps=int(num("ESUP_BULK_STEPS", 4)),
        bulk_window=timedelta(seconds=num("ESUP_BULK_SECONDS", 60)),
        bulk_min_span=timedelta(hours=num("ESUP_BULK_SPAN_HOURS", 24)),
        suspensions_frequent=int(num("ESUP_SUSPENSIONS_FREQUENT", 3)),
        suspension_long=timedelta(days=num("ESUP_SUSPENSION_LONG_DAYS", 30)),
    )
