"""The one Settings object. Nothing else in imagerec reads the environment.

Every setting can be given as an environment variable with the ``IMAGEREC_`` prefix
(``IMAGEREC_DATA_DIR=/srv/imagerec``); list settings take JSON (``IMAGEREC_ALLOWED_ROOTS='["/data"]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # a Celery queue name: settings, requests, `imagerec worker`


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMAGEREC_", extra="forbid")

    data_dir: Path = Field(Path("./data"), description="Holds the database, datasets, task runs and model weights.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Server folders that the file browser and import-path may read. Empty: both refuse.",
    )
    models_dir: Path | None = Field(
        None, description="Pretrained weights folder (yolov8n.pt …); default data_dir/pretrained."
    )
    executor: Literal["local", "celery"] = Field(
        "local", description="Task executor: 'local' runs tasks in child processes of the API; 'celery' sends them "
                             "to `imagerec worker` processes on any machine (needs broker_url and PostgreSQL).")
    broker_url: str | None = Field(
        None, description="Celery broker for the 'celery' executor and `imagerec worker`, e.g. redis://host:6379/0.")
    default_queue: str = Field(
        "imagerec", pattern=QUEUE_PATTERN,
        description="The Celery queue a task goes to when its request names none.")
    worker_lease_seconds: float = Field(
        60.0, ge=2, le=3600, description="A task whose worker sent no heartbeat for this long becomes interrupted.")
    worker_heartbeat_seconds: float = Field(
        10.0, gt=0, le=600, description="How often workers renew their row and their tasks' leases.")
    executor_concurrency: int = Field(1, ge=1, le=64, description="Tasks the local executor runs at once.")
    executor_poll_seconds: float = Field(1.0, gt=0, le=60, description="How often the executor looks for queued work.")
    cancel_grace_seconds: float = Field(60.0, gt=0, description="Wait this long for a cooperative cancel, then kill.")
    db_busy_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="How long a write waits for SQLite's lock before the database counts as busy."
    )
    db_pool_size: int = Field(
        40, ge=1, le=1000, description="Database connections the API keeps (one per worker thread)."
    )
    api_max_concurrent: int = Field(
        32, ge=1, le=1000, description="API requests handled at once; more wait in a queue (below 40 worker threads)."
    )
    api_max_waiting: int = Field(1000, ge=0, le=100_000, description="Requests that may wait; more get 503.")
    api_max_wait_seconds: float = Field(
        20.0, gt=0, le=600, description="A request that waited this long for a slot gets 503 with Retry-After."
    )
    upload_max_bytes: int = Field(2 * 1024**3, gt=0, description="Largest accepted upload (bytes).")
    zip_max_uncompressed_bytes: int = Field(8 * 1024**3, gt=0, description="Largest total size a zip may unpack to.")
    zip_max_members: int = Field(200_000, gt=0, description="Most files a dataset zip may hold.")
    dataset_import_task_min_images: int = Field(
        5000, ge=1, description="Imports of at least this many images run as a dataset_import task (answer 202)."
    )
    image_max_pixels: int = Field(100_000_000, gt=0, description="Images with more pixels are refused (bombs).")
    default_workers: int = Field(2, ge=0, le=32, description="Dataloader workers when a request gives none.")
    training_plots: bool = Field(
        True, description="Ultralytics' training plots (results.png, confusion matrix, PR curves) in the run folder."
    )
    model_cache_size: int = Field(4, ge=1, le=64, description="Models kept loaded for auto-annotation (LRU).")
    annotate_max_concurrent: int = Field(2, ge=1, le=64, description="Annotation requests running inference at once.")
    annotate_max_waiting: int = Field(16, ge=0, le=10_000, description="Requests that may wait; more get 429/503.")
    annotate_max_files: int = Field(64, ge=1, le=10_000, description="Images in one auto-annotate request.")
    annotate_max_file_bytes: int = Field(50 * 1024**2, gt=0, description="Largest image file for auto-annotation.")
    annotate_max_pixels: int = Field(60_000_000, gt=0, description="Larger images are refused (decompression bombs).")
    annotate_runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="Engine for auto-annotation: auto = ONNX Runtime on a CPU machine, PyTorch with CUDA."
    )
    annotate_cpu_threads: int | None = Field(
        None, ge=1, le=64, description="ONNX Runtime threads per model; default: Ultralytics' CPU count (cores - 1)."
    )
    labelstudio_url: AnyHttpUrl | None = Field(
        None, description="Label Studio's base URL: the only host the ML backend fetches task images from."
    )
    labelstudio_api_token: SecretStr | None = Field(
        None, description="Label Studio token (personal access or legacy) for that host; or register connections "
                          "with POST /api/labelstudio/connections.")
    labelstudio_media_hosts: list[str] = Field(
        default_factory=list, description="Other hosts task images may come from (cloud storage pre-signed URLs, a "
                                          "media server), as scheme://host[:port]; they are sent no token.")
    labelstudio_train_every: int = Field(
        0, ge=0, le=1_000_000, description="Train from a Label Studio project after this many new or updated "
                                           "annotations (its ANNOTATION_* webhooks); 0: only on Start training.")
    secret_key: SecretStr | None = Field(
        None, description="Encrypts stored secrets (Label Studio tokens); unset: generated once into "
                          "data_dir/secret.key. Every API machine must have the same.")
    auth: Literal["on", "off"] = Field(
        "on", description="'off': no API keys (a single user on loopback; a warning is logged at start)."
    )
    admin_key: SecretStr | None = Field(
        None, description="An admin API key (deployments, tests); unset: generated once into data_dir/admin.key."
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="Host header values the server answers (DNS rebinding); '*' allows any. Ports are ignored.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS, and Origin on state-changing requests).",
    )
    log_format: Literal["text", "json"] = Field("text", description="One line per request, as text or JSON.")
    metrics: bool = Field(True, description="Prometheus metrics at GET /metrics (read scope); off: no /metrics.")

    @field_validator("allowed_roots")
    @classmethod
    def _roots_must_be_real_folders(cls, roots: list[Path]) -> list[Path]:
        resolved = []
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"allowed root {root} must be an absolute path")
            real = root.resolve()
            if real == Path(real.anchor):
                raise ValueError("the filesystem root '/' cannot be an allowed root")
            resolved.append(real)
        return resolved

    @field_validator("admin_key")
    @classmethod
    def _empty_admin_key_is_unset(cls, key: SecretStr | None) -> SecretStr | None:
        return key if key is not None and key.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.worker_heartbeat_seconds * 2 > self.worker_lease_seconds:
            raise ValueError("worker_heartbeat_seconds must be at most half of worker_lease_seconds, so one late "
                             "heartbeat does not lose a lease")
        if self.executor == "celery" and not self.broker_url:
            raise ValueError("executor 'celery' needs broker_url (IMAGEREC_BROKER_URL=redis://host:6379/0)")
        return self

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.models_dir is not None:
            self.models_dir = self.models_dir.expanduser().resolve()
        return self

    @property
    def pretrained_dir(self) -> Path:
        return self.models_dir or self.data_dir / "pretrained"

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir / 'imagerec.db'}"
        for plain in ("postgresql://", "postgres://"):  # psycopg 3 is the driver imagerec ships
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain):]
        return url

    @property
    def database_kind(self) -> str:
        return self.sqlalchemy_url.split(":", 1)[0].split("+", 1)[0]

    def ensure_dirs(self) -> None:
        for sub in ("datasets", "runs", "models", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.pretrained_dir.mkdir(parents=True, exist_ok=True)
