"""The SQL schema, as SQLAlchemy Core tables (the Alembic migrations must match these exactly).

Portable types: ids are BIGINT (INTEGER on SQLite so they alias the rowid), times are Unix seconds in
DOUBLE, free JSON is stored as text, long texts are LONGTEXT on MySQL, names are VARCHAR(255) so that
composite unique keys stay inside InnoDB's 3072-byte index limit under utf8mb4.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")
Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
# A key compared byte for byte, as SQLite compares every text: on MariaDB a utf8mb4_unicode_ci column
# holds "loss" and "Loss", or two characters outside the BMP, as one value (a series key from a user
# would merge into another, or two in one batch hit the unique key). Migration 0009 sets it.
ExactKey: sa.types.TypeEngine[str] = sa.String(255).with_variant(
    mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql"
)


def _name() -> sa.Column[str]:
    return sa.Column("name", sa.String(255), nullable=False)


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _project() -> sa.Column[int]:
    return sa.Column("project_id", Id, sa.ForeignKey("projects.id"), nullable=False)


def _created() -> sa.Column[float]:
    return sa.Column("created_at", Float, nullable=False)


def _meta() -> sa.Column[str]:
    return sa.Column("metadata", LongText, nullable=True)


def _described() -> list[sa.Column[Any]]:
    """What every registry object, run and experiment carries to be corrected and removed: a
    description, tags (a JSON object), and the time it was archived (a soft delete)."""
    return [
        sa.Column("description", LongText, nullable=True),
        sa.Column("tags", LongText, nullable=True),
        sa.Column("archived_at", Float, nullable=True),
    ]


projects = sa.Table("projects", metadata, _id(), _name(), _created(), sa.UniqueConstraint("name"))

tokens = sa.Table(
    "tokens",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("token_hash", sa.String(64), nullable=False),
    _created(),
    sa.Column("expires_at", Float, nullable=True),
    sa.Column("revoked_at", Float, nullable=True),
    sa.Column("last_used_at", Float, nullable=True),
    sa.Column("person", sa.String(64), nullable=True),  # a token issued to one person (who labels)
    sa.UniqueConstraint("token_hash"),
    sa.UniqueConstraint("project_id", "name"),
)

families = sa.Table(
    "families",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("modality", sa.String(64), nullable=False),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
)

models = sa.Table(
    "models",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("family_id", Id, sa.ForeignKey("families.id"), nullable=False),
    sa.Column("runtime", sa.String(64), nullable=False),
    sa.Column("code_uri", LongText, nullable=True),
    sa.Column("adapter", sa.String(512), nullable=True),
    sa.Column("default_params", LongText, nullable=True),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    _id(),
    _project(),
    sa.Column("model_id", Id, sa.ForeignKey("models.id"), nullable=False),
    _name(),
    sa.Column("uri", LongText, nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=True),
    sa.Column("epoch", Float, nullable=True),
    sa.Column("dataset_version", sa.String(255), nullable=True),
    sa.Column("training_config", LongText, nullable=True),
    sa.Column("run_id", Id, nullable=True),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("model_id", "name"),
    sa.Index(None, "model_id", "step"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("uri", LongText, nullable=True),
    sa.Column("schema", LongText, nullable=True),
    sa.Column("num_rows", sa.BigInteger(), nullable=True),
    sa.Column("content_hash", sa.String(128), nullable=True),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "name", "version"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("type", sa.String(64), nullable=True),
    sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=True),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("engine_config", LongText, nullable=False),
    sa.Column("metrics", LongText, nullable=False),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
)

benchmarks = sa.Table(
    "benchmarks",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("tasks", LongText, nullable=False),
    sa.Column("config", LongText, nullable=True),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
)

experiments = sa.Table(
    "experiments",
    metadata,
    _id(),
    _project(),
    _name(),
    sa.Column("spec", LongText, nullable=True),
    sa.Column("spec_yaml", LongText, nullable=True),
    sa.Column("config", LongText, nullable=True),
    sa.Column("client_key", sa.String(255), nullable=True),
    *_described(),
    _meta(),
    _created(),
    sa.UniqueConstraint("project_id", "client_key"),
)

runs = sa.Table(
    "runs",
    metadata,
    _id(),
    _project(),
    sa.Column("experiment_id", Id, sa.ForeignKey("experiments.id"), nullable=True),
    _name(),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("model", sa.String(255), nullable=True),
    sa.Column("checkpoint", sa.String(255), nullable=True),
    sa.Column("checkpoint_id", Id, sa.ForeignKey("checkpoints.id"), nullable=True),
    sa.Column("runtime", sa.String(64), nullable=True),
    sa.Column("task", sa.String(255), nullable=True),
    sa.Column("config", LongText, nullable=True),
    sa.Column("tags", LongText, nullable=True),
    sa.Column("description", LongText, nullable=True),
    _meta(),
    sa.Column("archived_at", Float, nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"),
    # the current attempt's lease (Unix seconds): renewed by its writer's event batches, reaped after
    sa.Column("lease_expires_at", Float, nullable=True),
    sa.Column("worker", LongText, nullable=True),
    sa.Column("error", LongText, nullable=True),
    sa.Column("progress_done", sa.BigInteger(), nullable=False),
    sa.Column("progress_total", sa.BigInteger(), nullable=True),
    _created(),
    sa.Column("started_at", Float, nullable=True),
    sa.Column("ended_at", Float, nullable=True),
    # what the run computes (checkpoint content, runtime and params, task hash, config): a completed run
    # with the same key is reused instead of evaluated again; reused_from names the run it came from
    sa.Column("work_key", sa.String(64), nullable=True),
    sa.Column("reused_from", Id, nullable=True),
    sa.Index(None, "project_id", "experiment_id"),
    sa.Index(None, "project_id", "status"),
    sa.Index(None, "status", "lease_expires_at"),
    sa.Index(None, "project_id", "work_key", "status"),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    sa.Column("key", ExactKey, primary_key=True),
    sa.Column("value", Float, nullable=True),  # NULL is NaN, ±DBL_MAX is ±infinity (numbers.py)
    sa.Column("higher_is_better", sa.SmallInteger(), nullable=True),
    sa.Column("updated_at", Float, nullable=False),
)

# One row per (run, key): the latest-value table, and the id that points reference.
series_latest = sa.Table(
    "series_latest",
    metadata,
    _id(),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", ExactKey, nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("last_step", sa.BigInteger(), nullable=False),
    sa.Column("last_value", Float, nullable=True),
    sa.Column("last_wall_time", Float, nullable=True),
    sa.Column("min_step", sa.BigInteger(), nullable=False),
    sa.Column("max_step", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("run_id", "key"),
)

# The big table. (series_id, step) identifies (run, key, step); the index covers the read columns so
# a full or downsampled read never touches the table rows. No foreign key: bulk inserts stay cheap.
series_points = sa.Table(
    "series_points",
    metadata,
    _id(),
    sa.Column("series_id", Id, nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("value", Float, nullable=True),  # NULL is NaN, ±DBL_MAX is ±infinity (numbers.py)
    sa.Column("wall_time", Float, nullable=True),
    sa.Index(None, "series_id", "step", "value", "wall_time"),
)

event_streams = sa.Table(
    "event_streams",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    sa.Column("stream", ExactKey, primary_key=True),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
)

samples = sa.Table(
    "samples",
    metadata,
    _id(),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("sample_key", ExactKey, nullable=False),
    sa.Column("sample_index", sa.BigInteger(), nullable=True),
    sa.Column("task", sa.String(255), nullable=True),  # the subtask of a group task
    sa.Column("prompt", LongText, nullable=True),
    sa.Column("reference", LongText, nullable=True),
    sa.Column("output", LongText, nullable=True),
    sa.Column("filtered_output", LongText, nullable=True),
    sa.Column("scores", LongText, nullable=True),
    sa.Column("primary_score", Float, nullable=True),
    sa.Column("latency_ms", Float, nullable=True),
    sa.Column("tokens_in", sa.BigInteger(), nullable=True),
    sa.Column("tokens_out", sa.BigInteger(), nullable=True),
    sa.Column("extra", LongText, nullable=True),
    sa.UniqueConstraint("run_id", "sample_key"),
    sa.Index(None, "run_id", "sample_index"),
    sa.Index(None, "run_id", "primary_score"),
)

logs = sa.Table(
    "logs",
    metadata,
    _id(),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", LongText, nullable=False),
    sa.Column("wall_time", Float, nullable=True),
    sa.Index(None, "run_id", "id"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    _id(),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=False),
    _name(),
    sa.Column("uri", LongText, nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    _created(),
    sa.UniqueConstraint("run_id", "name"),
)

# Answers of model requests, keyed by (checkpoint content, runtime and params, request, generation
# settings): a worker looks a run's requests up before it calls the model and stores each answer as it
# comes (events of type "cache"), so a run evaluated again after a crash calls the model only for what
# is missing. One row per key and project; a later write of a key replaces (the answer is the same).
request_cache = sa.Table(
    "request_cache",
    metadata,
    sa.Column("project_id", Id, sa.ForeignKey("projects.id"), primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", LongText, nullable=False),
    _created(),
)

# Rollups of each series on a grid of step blocks, one row per (series, level, block): level L covers
# 2**ROLLUP_SHIFTS[L] steps per block. A downsampled read of a whole series aggregates a few thousand
# of these rows instead of scanning every point. Merged on every ingest batch (one upsert per block).
ROLLUP_SHIFTS = (4, 7, 10, 13, 16, 19, 22)

series_blocks = sa.Table(
    "series_blocks",
    metadata,
    sa.Column("series_id", Id, primary_key=True, autoincrement=False),
    sa.Column("lvl", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("blk", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger(), nullable=False),
    sa.Column("vmin", Float, nullable=True),  # NULL when every value of the block is NaN
    sa.Column("vmax", Float, nullable=True),
    sa.Column("last_step", sa.BigInteger(), nullable=False),
    sa.Column("last_value", Float, nullable=True),
    sa.Column("last_wall", Float, nullable=True),
)

# One row per (experiment, task, sample_key): the alignment of a key across the experiment's runs of
# that task, kept by every samples batch (aligned.refresh) so that the aligned read never groups the
# samples. idx is the key's smallest sample index (the order of the pages); n_runs the number of runs
# with a sample for the key; n_wrong how many of them have primary_score < 1; the flags are the read's
# filters. A replaced sample (same run, same key) is recomputed from the stored samples, so the row
# always equals the GROUP BY over the samples.
aligned_samples = sa.Table(
    "aligned_samples",
    metadata,
    sa.Column("experiment_id", Id, primary_key=True, autoincrement=False),
    sa.Column("task", sa.String(255), primary_key=True),
    sa.Column("sample_key", ExactKey, primary_key=True),
    sa.Column("idx", sa.BigInteger(), nullable=True),
    sa.Column("n_runs", sa.Integer(), nullable=False),
    sa.Column("n_wrong", sa.Integer(), nullable=False),
    sa.Column("disagree", sa.SmallInteger(), nullable=False),
    sa.Column("any_wrong", sa.SmallInteger(), nullable=False),
    sa.Column("all_wrong", sa.SmallInteger(), nullable=False),
    sa.Index("ix_aligned_samples_order", "experiment_id", "task", "idx", "sample_key"),
    sa.Index("ix_aligned_samples_disagree", "experiment_id", "task", "disagree", "idx", "sample_key"),
    sa.Index("ix_aligned_samples_any_wrong", "experiment_id", "task", "any_wrong", "idx", "sample_key"),
    sa.Index("ix_aligned_samples_all_wrong", "experiment_id", "task", "all_wrong", "idx", "sample_key"),
)

# ---- Phase 3: scores over stored outputs ---------------------------------------------------------

# One row per rescoring of a run: which scorer (its name is the prefix of the score keys it writes,
# ``<name>.<metric>``), its version and config, the judge behind it, when it ran and what it found.
scorings = sa.Table(
    "scorings",
    metadata,
    _id(),
    _project(),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("experiment_id", Id, nullable=True),
    _name(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("config", LongText, nullable=True),
    sa.Column("judge", LongText, nullable=True),  # the judge's model, checkpoint, runtime (JSON)
    sa.Column("judge_run_id", Id, nullable=True),  # the run its worker judged in
    sa.Column("baseline_run_id", Id, nullable=True),  # a pairwise judge's other run
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("counts", LongText, nullable=True),
    sa.Column("error", LongText, nullable=True),
    sa.Column("client_key", sa.String(255), nullable=True),
    _created(),
    sa.Column("finished_at", Float, nullable=True),
    sa.UniqueConstraint("project_id", "client_key"),
    sa.Index(None, "run_id", "name"),
    sa.Index(None, "project_id", "experiment_id"),
)

# Every call of a judge, stored with the sample it judged: the rendered prompt, the raw output, the
# parsed verdict (NULL when it could not be parsed: never a guess), the rationale, the judge.
judge_calls = sa.Table(
    "judge_calls",
    metadata,
    _id(),
    sa.Column("scoring_id", Id, sa.ForeignKey("scorings.id"), nullable=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("sample_key", ExactKey, nullable=False),
    sa.Column("position", sa.String(16), nullable=False),  # single, AB (the run first), BA
    sa.Column("other_run_id", Id, nullable=True),
    sa.Column("judge", sa.String(512), nullable=True),
    sa.Column("prompt", LongText, nullable=True),
    sa.Column("raw_output", LongText, nullable=True),
    sa.Column("verdict", sa.String(64), nullable=True),
    sa.Column("score", Float, nullable=True),
    sa.Column("rationale", LongText, nullable=True),
    sa.Column("latency_ms", Float, nullable=True),
    _created(),
    sa.UniqueConstraint("scoring_id", "sample_key", "position"),
    sa.Index(None, "run_id", "sample_key"),
)

# ---- Phase 3: people as scorers -----------------------------------------------------------------

# An annotation queue over an experiment's samples of one task: its schema (scale, choice, pairwise,
# text) and how its items were selected (filter, search, a seeded sample), kept to say what it is.
annotation_queues = sa.Table(
    "annotation_queues",
    metadata,
    _id(),
    _project(),
    sa.Column("experiment_id", Id, sa.ForeignKey("experiments.id"), nullable=False),
    _name(),
    sa.Column("schema", LongText, nullable=False),
    sa.Column("task", sa.String(255), nullable=False),
    sa.Column("filter", sa.String(32), nullable=False),
    sa.Column("q", sa.String(255), nullable=True),
    sa.Column("sample", sa.BigInteger(), nullable=True),
    sa.Column("seed", sa.BigInteger(), nullable=False),
    sa.Column("run_ids", LongText, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
    sa.Index(None, "project_id", "experiment_id"),
)

# A queue's items in the order they are shown: a (sample, run) to label, or for a pairwise queue a
# sample and the two runs whose answers are compared.
annotation_items = sa.Table(
    "annotation_items",
    metadata,
    _id(),
    sa.Column("queue_id", Id, sa.ForeignKey("annotation_queues.id"), nullable=False),
    sa.Column("idx", sa.BigInteger(), nullable=False),
    sa.Column("sample_key", ExactKey, nullable=False),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("other_run_id", Id, nullable=True),
    sa.UniqueConstraint("queue_id", "idx"),
)

# One label per (item, person); a later label of the same person replaces it, an undo deletes it.
# value is the score it wrote into the run's sample (<queue>.<person>); order how a pair was shown.
annotation_labels = sa.Table(
    "annotation_labels",
    metadata,
    _id(),
    sa.Column("queue_id", Id, sa.ForeignKey("annotation_queues.id"), nullable=False),
    sa.Column("item_id", Id, sa.ForeignKey("annotation_items.id"), nullable=False),
    sa.Column("person", sa.String(64), nullable=False),
    sa.Column("value", Float, nullable=True),
    sa.Column("choice", sa.String(64), nullable=True),
    sa.Column("text", LongText, nullable=True),
    sa.Column("shown_order", sa.String(2), nullable=True),
    _created(),
    sa.Column("updated_at", Float, nullable=False),
    sa.UniqueConstraint("item_id", "person"),
    sa.Index(None, "queue_id", "person"),
)

# Evaluations that run by themselves: a spec and when to run it (every_s seconds, a cron expression
# the client's keeper reads, or on_checkpoint: each new checkpoint of that model, next_at then being
# the id of the last checkpoint taken). next_at is the next tick; a claimed tick is pending_tick until
# its experiment is reported (last_tick, last_experiment_id). See evalhub.protocol.schedules.
schedules = sa.Table(
    "schedules",
    metadata,
    _id(),
    _project(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("spec", LongText, nullable=False),
    sa.Column("every_s", Float, nullable=True),
    sa.Column("cron", sa.String(128), nullable=True),
    sa.Column("on_checkpoint", sa.String(255), nullable=True),
    sa.Column("next_at", Float, nullable=False),
    sa.Column("pending_tick", Float, nullable=True),
    sa.Column("last_tick", Float, nullable=True),
    sa.Column("last_experiment_id", Id, nullable=True),
    sa.Column("ticks_run", sa.BigInteger(), nullable=False, server_default="0"),
    _created(),
    sa.UniqueConstraint("project_id", "name"),
)
