"""telemetry partitioned by month; retention; 1-minute and 1-hour rollups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:30:00

- ``ingest.telemetry`` becomes a table partitioned by ``RANGE (ts)``; its partitions (one
  per UTC month, plus a default one for readings no month partition takes) live in schema
  ``ingest_part``. The primary key is ``(home, device, metric, ts, id)`` (it serves a
  series and the latest value; the old ``(home, device, metric, ts)`` index is gone) and
  the partial unique index on ``(home, device, metric, ts) WHERE device_ts`` stays: both
  hold the partition key, and a duplicate has the same ``ts``, hence the same partition.
- Existing rows are moved: the old table is renamed, a partition is made for every month
  it has rows in (and the next three), the rows are copied and the old table dropped.
- ``rollup_minute`` (partitioned by month too) and ``rollup_hour``: count, min, max, sum,
  last (and the time of the last) per (home, device, metric, bucket); filled here from the
  moved rows, then kept by the maintenance job from ``rollup_dirty``, which a statement
  trigger on ``telemetry`` fills with the (series, minute) of every inserted row.
- ``retention``: days per home (``device`` and ``metric`` empty), per device, per metric.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIES = """
    home varchar(63) NOT NULL,
    device varchar(63) NOT NULL,
    metric varchar(63) NOT NULL
"""
_ROLLUP_COLUMNS = f"""
    {_SERIES},
    bucket timestamptz NOT NULL,
    count integer NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    last double precision NOT NULL,
    last_ts timestamptz NOT NULL
"""


def _month_partitions(table: str, column: str, source: str) -> None:
    """A partition of ``ingest.{table}`` per month holding rows of ``source`` (and the next
    three months), plus the default partition."""
    op.execute(
        f"""
        DO $$
        DECLARE month timestamptz;
        BEGIN
            FOR month IN
                SELECT generate_series(
                    least(
                        (SELECT date_trunc('month', min({column}), 'UTC') FROM {source}),
                        date_trunc('month', now(), 'UTC')
                    ),
                    date_trunc('month', now(), 'UTC') + interval '3 months',
                    interval '1 month'
                )
            LOOP
                EXECUTE format(
                    'CREATE TABLE ingest_part.%I PARTITION OF ingest.{table} '
                    'FOR VALUES FROM (%L) TO (%L)',
                    '{table}_p' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'),
                    month, (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'
                );
            END LOOP;
        END $$
        """  # noqa: S608 (names are constants of this migration)
    )
    op.execute(f"CREATE TABLE ingest_part.{table}_default PARTITION OF ingest.{table} DEFAULT")


def upgrade() -> None:
    """Upgrade schema (see the module docstring)."""
    op.execute("CREATE SCHEMA IF NOT EXISTS ingest_part")
    op.execute("ALTER TABLE ingest.telemetry RENAME TO telemetry_unpartitioned")
    op.execute("ALTER SEQUENCE ingest.telemetry_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE ingest.telemetry_unpartitioned ALTER COLUMN id DROP DEFAULT")
    op.execute("ALTER INDEX ingest.pk_telemetry RENAME TO pk_telemetry_unpartitioned")
    op.execute("DROP INDEX ingest.uq_telemetry_device_ts")
    op.execute("DROP INDEX ingest.ix_telemetry_home_device_metric_ts")
    op.execute(
        f"""
        CREATE TABLE ingest.telemetry (
            id bigint NOT NULL DEFAULT nextval('ingest.telemetry_id_seq'),
            {_SERIES},
            ts timestamptz NOT NULL,
            device_ts boolean NOT NULL,
            value double precision NOT NULL,
            is_bool boolean NOT NULL,
            msg_id varchar(64),
            received_at timestamptz NOT NULL,
            CONSTRAINT pk_telemetry PRIMARY KEY (home, device, metric, ts, id)
        ) PARTITION BY RANGE (ts)
        """
    )
    op.execute("ALTER SEQUENCE ingest.telemetry_id_seq OWNED BY ingest.telemetry.id")
    op.execute(
        "CREATE UNIQUE INDEX uq_telemetry_device_ts ON ingest.telemetry "
        "(home, device, metric, ts) WHERE device_ts"
    )
    _month_partitions("telemetry", "ts", "ingest.telemetry_unpartitioned")
    op.execute(
        """
        INSERT INTO ingest.telemetry
            (id, home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at)
        SELECT id, home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at
        FROM ingest.telemetry_unpartitioned
        """
    )
    op.execute("DROP TABLE ingest.telemetry_unpartitioned")

    op.execute(
        f"""
        CREATE TABLE ingest.rollup_minute ({_ROLLUP_COLUMNS},
            CONSTRAINT pk_rollup_minute PRIMARY KEY (home, device, metric, bucket)
        ) PARTITION BY RANGE (bucket)
        """
    )
    _month_partitions("rollup_minute", "ts", "ingest.telemetry")
    op.execute(
        f"""
        CREATE TABLE ingest.rollup_hour ({_ROLLUP_COLUMNS},
            CONSTRAINT pk_rollup_hour PRIMARY KEY (home, device, metric, bucket)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE ingest.rollup_dirty ({_SERIES},
            minute timestamptz NOT NULL,
            CONSTRAINT pk_rollup_dirty PRIMARY KEY (home, device, metric, minute)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ingest.retention (
            home varchar(63) NOT NULL,
            device varchar(63) NOT NULL DEFAULT '',
            metric varchar(63) NOT NULL DEFAULT '',
            days integer NOT NULL CHECK (days > 0),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_retention PRIMARY KEY (home, device, metric)
        )
        """
    )
    # Rollups of the moved rows, in one pass each.
    op.execute(
        """
        INSERT INTO ingest.rollup_minute
            (home, device, metric, bucket, count, min, max, sum, last, last_ts)
        SELECT home, device, metric, date_trunc('minute', ts), count(*), min(value), max(value),
               sum(value), (array_agg(value ORDER BY ts DESC, id DESC))[1], max(ts)
        FROM ingest.telemetry GROUP BY 1, 2, 3, 4
        """
    )
    op.execute(
        """
        INSERT INTO ingest.rollup_hour
            (home, device, metric, bucket, count, min, max, sum, last, last_ts)
        SELECT home, device, metric, date_trunc('hour', bucket), sum(count), min(min), max(max),
               sum(sum), (array_agg(last ORDER BY last_ts DESC))[1], max(last_ts)
        FROM ingest.rollup_minute GROUP BY 1, 2, 3, 4
        """
    )
    # Every inserted reading marks its (series, minute) for the rollup job. DO UPDATE (not
    # DO NOTHING) takes the row lock, so a job that is rolling that minute up now is waited
    # for and the mark is made again after it (see hearth.ingest.rollups).
    op.execute(
        """
        CREATE FUNCTION ingest.telemetry_mark_dirty() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ingest.rollup_dirty (home, device, metric, minute)
            SELECT DISTINCT home, device, metric, date_trunc('minute', ts) FROM inserted
            ON CONFLICT (home, device, metric, minute) DO UPDATE SET minute = EXCLUDED.minute;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER telemetry_mark_dirty AFTER INSERT ON ingest.telemetry
        REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION ingest.telemetry_mark_dirty()
        """
    )


def downgrade() -> None:
    """Downgrade schema: back to one table (rollups and retention settings are lost)."""
    op.execute("DROP TRIGGER telemetry_mark_dirty ON ingest.telemetry")
    op.execute("DROP FUNCTION ingest.telemetry_mark_dirty()")
    for table in ("retention", "rollup_dirty", "rollup_hour", "rollup_minute"):
        op.execute(f"DROP TABLE ingest.{table}")
    op.execute("ALTER TABLE ingest.telemetry RENAME TO telemetry_partitioned")
    op.execute("ALTER INDEX ingest.pk_telemetry RENAME TO pk_telemetry_partitioned")
    op.execute("ALTER INDEX ingest.uq_telemetry_device_ts RENAME TO uq_telemetry_partitioned")
    op.execute("ALTER SEQUENCE ingest.telemetry_id_seq OWNED BY NONE")
    op.execute(
        """
        CREATE TABLE ingest.telemetry (LIKE ingest.telemetry_partitioned INCLUDING DEFAULTS,
            CONSTRAINT pk_telemetry PRIMARY KEY (id))
        """
    )
    op.execute("ALTER SEQUENCE ingest.telemetry_id_seq OWNED BY ingest.telemetry.id")
    op.execute("INSERT INTO ingest.telemetry SELECT * FROM ingest.telemetry_partitioned")
    op.execute("DROP TABLE ingest.telemetry_partitioned")
    op.execute("DROP SCHEMA ingest_part CASCADE")
    op.execute(
        "CREATE INDEX ix_telemetry_home_device_metric_ts ON ingest.telemetry "
        "(home, device, metric, ts)"
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_telemetry_device_ts ON ingest.telemetry "
        "(home, device, metric, ts) WHERE device_ts"
    )
