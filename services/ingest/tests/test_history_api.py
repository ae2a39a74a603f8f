"""The history API for real: ingest on PostgreSQL and Mosquitto, asking a running registry.

Each test makes its own users, home and devices at the registry (``stack``); readings are
seeded straight into ``ingest.telemetry`` (what the pipeline stores is tested elsewhere),
except the rejects, which a device publishes.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hearth.ingest.config import IngestSettings
from hearth.ingest.main import create_app
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker
from hearth.testing.database import PostgresServer, execute, fetchval, run_async
from hearth.testing.services import ServiceStack, User, ingest_settings, running_stack

T0 = datetime(2026, 3, 1, tzinfo=UTC)
"""Seeded readings start here: one a minute."""


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class History:
    app: RunningApp
    http: httpx.Client
    database_url: str
    settings: IngestSettings


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """This module's own Mosquitto: the ingest apps here keep persistent sessions in the
    ``$share/ingest`` group, which the session's broker would go on feeding after them."""
    running = RunningBroker.launch(tmp_path_factory.mktemp("history-broker"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceStack]:
    """Auth and the registry on this module's broker (its events reach the ingest here)."""
    with running_stack(postgres_server, broker, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def history(
    stack: ServiceStack,
    broker: RunningBroker,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[History]:
    """An ingest app on a fresh database, asking ``stack``'s registry, verifying its tokens."""
    url = postgres_server.create_database()
    tmp: Path = tmp_path_factory.mktemp("ingest-history")
    settings = ingest_settings(
        broker,
        url,
        tmp,
        jwks_url=f"{stack.auth.url}/.well-known/jwks.json",
        registry_url=stack.registry.url,
        token_leeway=0,
        log_level="WARNING",
    )
    try:
        with serve_app(create_app(settings), wait_path="/readyz") as app:
            deadline = time.monotonic() + 20
            while httpx.get(f"{app.url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "ingest never became ready"
                time.sleep(0.05)
            with httpx.Client(base_url=app.url, timeout=30) as http:
                yield History(app, http, url, settings)
    finally:
        postgres_server.drop_database(url)


@dataclass
class Home:
    slug: str
    owner: User


def make_home(stack: ServiceStack, **fields: Any) -> Home:
    owner = stack.create_user("owner")
    home = stack.create_home(owner, **fields)["slug"]
    stack.create_device(
        owner,
        home,
        "node",
        metrics=[{"name": "temperature", "unit": "°C", "min": -40, "max": 85}],
    )
    stack.create_device(owner, home, "door", metrics=[{"name": "open", "kind": "boolean"}])
    return Home(home, owner)


def seed(url: str, home: str, device: str, metric: str, count: int, **kind: Any) -> None:
    """``count`` readings, one a minute from T0; value = minute number (or its parity)."""
    value = "(n % 2)::float" if kind.get("is_bool") else "n::float"
    run_async(
        execute(
            url,
            f"""
            INSERT INTO ingest.telemetry
                (home, device, metric, ts, device_ts, value, is_bool, received_at)
            SELECT $1, $2, $3, $4::timestamptz + n * interval '1 minute', true, {value}, $5, now()
            FROM generate_series(0, $6 - 1) AS n
            """,  # noqa: S608 (a test's own constant)
            home,
            device,
            metric,
            T0,
            bool(kind.get("is_bool")),
            count,
        )
    )


def series_path(home: str, device: str = "node", metric: str = "temperature") -> str:
    return f"/telemetry/homes/{home}/devices/{device}/metrics/{metric}"


def day(start: datetime = T0) -> dict[str, str]:
    return {"from": iso(start), "to": iso(start + timedelta(days=1))}


# --------------------------------------------------------------------------- series


def test_series_raw_and_buckets(history: History, stack: ServiceStack) -> None:
    home = make_home(stack)
    seed(history.database_url, home.slug, "node", "temperature", 180)
    http, headers = history.http, home.owner.headers

    raw = http.get(series_path(home.slug), params={**day(), "limit": 100}, headers=headers)
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["from"] == "2026-03-01T00:00:00Z"
    assert [p["value"] for p in body["points"]] == [float(n) for n in range(100)]
    assert body["truncated"] is True
    rest = http.get(series_path(home.slug), params={**day(), "limit": 1000}, headers=headers)
    assert len(rest.json()["points"]) == 180
    assert rest.json()["truncated"] is False

    hourly = http.get(
        series_path(home.slug), params={**day(), "bucket": "1h", "agg": "avg"}, headers=headers
    ).json()
    assert [(p["ts"], p["value"], p["count"]) for p in hourly["points"]] == [
        ("2026-03-01T00:00:00Z", 29.5, 60),
        ("2026-03-01T01:00:00Z", 89.5, 60),
        ("2026-03-01T02:00:00Z", 149.5, 60),
    ]
    for agg, expected in {
        "min": 0.0,
        "max": 59.0,
        "sum": 1770.0,
        "count": 60.0,
        "last": 59.0,
    }.items():
        got = http.get(
            series_path(home.slug), params={**day(), "bucket": "1h", "agg": agg}, headers=headers
        ).json()["points"][0]["value"]
        assert got == expected, agg


def test_day_buckets_follow_the_home_time_zone(history: History, stack: ServiceStack) -> None:
    home = make_home(stack, timezone="Asia/Kolkata")  # UTC+05:30, no daylight saving
    seed(history.database_url, home.slug, "node", "temperature", 24 * 60)
    response = history.http.get(
        series_path(home.slug),
        params={**day(T0 - timedelta(days=1)), "to": iso(T0 + timedelta(days=2)), "bucket": "1d"},
        headers=home.owner.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tz"] == "Asia/Kolkata"
    # Local midnights are 18:30 UTC: the UTC day of readings spans two local days.
    assert [(p["ts"], p["count"]) for p in body["points"]] == [
        ("2026-02-28T18:30:00Z", 18 * 60 + 30),
        ("2026-03-01T18:30:00Z", 5 * 60 + 30),
    ]


def test_booleans_come_back_as_booleans(history: History, stack: ServiceStack) -> None:
    home = make_home(stack)
    seed(history.database_url, home.slug, "door", "open", 2, is_bool=True)
    points = history.http.get(
        series_path(home.slug, "door", "open"), params=day(), headers=home.owner.headers
    ).json()["points"]
    assert [p["value"] for p in points] == [False, True]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "invalid_query"),
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "invalid_query"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-03-02T00:00:00Z"}, "invalid_query"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "range_too_large"),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "bucket": "1m"},
            "range_too_large",
        ),
        ({"from": "yesterday"}, "validation"),
        ({"bucket": "2m"}, "validation"),
        ({"agg": "median"}, "validation"),
        ({"limit": "10001"}, "validation"),
    ],
)
def test_bad_queries_are_problems(
    history: History, stack: ServiceStack, params: dict[str, str], code: str
) -> None:
    home = make_home(stack)
    response = history.http.get(series_path(home.slug), params=params, headers=home.owner.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    # positive control: the same caller and series with a good range answers
    ok = history.http.get(series_path(home.slug), params=day(), headers=home.owner.headers)
    assert ok.status_code == 200, ok.text


def test_unknown_device_metric_and_another_home(history: History, stack: ServiceStack) -> None:
    home, other = make_home(stack), make_home(stack)
    seed(history.database_url, other.slug, "node", "temperature", 3)
    http, headers = history.http, home.owner.headers

    unknown = http.get(series_path(home.slug, "ghost"), params=day(), headers=headers)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "telemetry_not_found"
    undeclared = http.get(series_path(home.slug, "node", "pressure"), params=day(), headers=headers)
    assert undeclared.status_code == 404
    foreign = http.get(series_path(other.slug), params=day(), headers=headers)
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["code"] == "history_forbidden"
    missing_home = http.get(
        series_path(f"nohome-{uuid.uuid4().hex[:6]}"), params=day(), headers=headers
    )
    assert missing_home.status_code == 403  # the same as a home that exists: no probing
    assert http.get(series_path(home.slug), params=day()).status_code == 401
    # positive control: the other home's owner reads it
    mine = http.get(series_path(other.slug), params=day(), headers=other.owner.headers)
    assert mine.status_code == 200
    assert len(mine.json()["points"]) == 3


def test_a_removed_member_loses_access_within_a_second(
    history: History, stack: ServiceStack
) -> None:
    home = make_home(stack)
    viewer = stack.create_user("viewer")
    stack.add_member(home.owner, home.slug, viewer, "viewer")
    http = history.http
    for path in (series_path(home.slug), f"/telemetry/homes/{home.slug}/latest"):
        assert http.get(path, params=day(), headers=viewer.headers).status_code == 200
    removed = stack.http.delete(
        f"/registry/homes/{home.slug}/members/{viewer.id}", headers=home.owner.headers
    )
    assert removed.status_code == 204, removed.text
    gone_at = time.monotonic()
    statuses: list[int] = []
    while time.monotonic() - gone_at < 1.0:
        status = http.get(series_path(home.slug), params=day(), headers=viewer.headers).status_code
        statuses.append(status)
        if status == 403:
            break
        time.sleep(0.02)
    assert statuses[-1] == 403, statuses
    latest = http.get(f"/telemetry/homes/{home.slug}/latest", headers=viewer.headers)
    assert latest.status_code == 403
    # positive control: the owner still reads
    assert (
        http.get(series_path(home.slug), params=day(), headers=home.owner.headers).status_code
        == 200
    )


# --------------------------------------------------------------------------- latest


def test_latest_value_of_every_metric(history: History, stack: ServiceStack) -> None:
    home, other = make_home(stack), make_home(stack)
    seed(history.database_url, home.slug, "node", "temperature", 50)
    seed(history.database_url, home.slug, "door", "open", 4, is_bool=True)
    seed(history.database_url, other.slug, "node", "temperature", 7)
    response = history.http.get(f"/telemetry/homes/{home.slug}/latest", headers=home.owner.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "home": home.slug,
        "values": [
            {
                "device": "door",
                "metric": "open",
                "ts": "2026-03-01T00:03:00Z",
                "value": True,
            },
            {
                "device": "node",
                "metric": "temperature",
                "ts": "2026-03-01T00:49:00Z",
                "value": 49.0,
            },
        ],
    }
    foreign = history.http.get(f"/telemetry/homes/{other.slug}/latest", headers=home.owner.headers)
    assert foreign.status_code == 403


# --------------------------------------------------------------------------- export


def test_export_row_count_equals_what_is_stored(history: History, stack: ServiceStack) -> None:
    home = make_home(stack)
    seed(history.database_url, home.slug, "node", "temperature", 12_345)
    seed(history.database_url, home.slug, "door", "open", 10, is_bool=True)
    stored = run_async(
        fetchval(
            history.database_url,
            "SELECT count(*) FROM ingest.telemetry WHERE home = $1",
            home.slug,
        )
    )
    span = {"from": iso(T0), "to": iso(T0 + timedelta(days=30))}
    path = f"/telemetry/homes/{home.slug}/export"
    with history.http.stream("GET", path, params=span, headers=home.owner.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.read().decode())))
    assert rows[0] == ["device", "metric", "ts", "value"]
    assert len(rows) - 1 == stored == 12_355
    assert rows[1] == ["door", "open", iso(T0), "false"]
    ndjson = history.http.get(
        path, params={**span, "format": "ndjson", "device": "node"}, headers=home.owner.headers
    )
    lines = ndjson.text.splitlines()
    assert len(lines) == 12_345
    assert json.loads(lines[-1]) == {
        "device": "node",
        "metric": "temperature",
        "ts": iso(T0 + timedelta(minutes=12_344)),
        "value": 12_344.0,
    }
    bad = history.http.get(
        path,
        params={"from": iso(T0), "to": iso(T0 - timedelta(days=1))},
        headers=home.owner.headers,
    )
    assert bad.status_code == 422
    other = make_home(stack)
    assert history.http.get(path, params=span, headers=other.owner.headers).status_code == 403


# --------------------------------------------------------------------------- import


def test_import_reports_bad_lines_and_stores_nothing_twice(
    history: History, stack: ServiceStack
) -> None:
    home = make_home(stack)
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=365)  # past the live bound
    good = [f"node,temperature,{iso(old + timedelta(minutes=i))},{20 + i}" for i in range(5)]
    body = "\n".join(
        [
            "device,metric,ts,value",
            *good[:3],
            "node,temperature,not-a-time,21",  # line 5
            "node,temperature,2026-01-01T00:00:00Z,warm",  # line 6
            "ghost,temperature,2026-01-01T00:00:00Z,1",  # line 7: no such device
            "node,pressure,2026-01-01T00:00:00Z,1",  # line 8: undeclared metric
            f"door,open,{iso(old)},true",
            "node,temperature",  # line 10
            *good[3:],
            "",
        ]
    )
    path = f"/telemetry/homes/{home.slug}/import"
    headers = {**home.owner.headers, "Content-Type": "text/csv"}
    first = history.http.post(path, content=body, headers=headers)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["lines"], report["stored"], report["duplicates"]) == (11, 6, 0)
    assert report["errors_total"] == 5
    assert [e["line"] for e in report["errors"]] == [5, 6, 7, 8, 10]
    assert "no metric 'pressure'" in report["errors"][3]["error"]

    again = history.http.post(path, content=body, headers=headers).json()
    assert (again["stored"], again["duplicates"], again["errors_total"]) == (0, 6, 5)
    stored = run_async(
        fetchval(
            history.database_url,
            "SELECT count(*) FROM ingest.telemetry WHERE home = $1",
            home.slug,
        )
    )
    assert stored == 6
    series = history.http.get(
        series_path(home.slug),
        params={"from": iso(old), "to": iso(old + timedelta(hours=1))},
        headers=home.owner.headers,
    ).json()
    assert [p["value"] for p in series["points"]] == [20.0, 21.0, 22.0, 23.0, 24.0]


def test_import_needs_manage_and_a_csv(history: History, stack: ServiceStack) -> None:
    home = make_home(stack)
    member = stack.create_user("member")
    stack.add_member(home.owner, home.slug, member, "member")
    path = f"/telemetry/homes/{home.slug}/import"
    body = f"device,metric,ts,value\nnode,temperature,{iso(T0)},1\n"
    denied = history.http.post(path, content=body, headers=member.headers)
    assert denied.status_code == 403, denied.text
    wrong = history.http.post(path, content="a,b,c\n1,2,3\n", headers=home.owner.headers)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "invalid_import"
    empty = history.http.post(path, content="", headers=home.owner.headers)
    assert empty.status_code == 422
    binary = history.http.post(
        path, content=b"device,metric,ts,value\n\xff\xfe,x,y,z\n", headers=home.owner.headers
    )
    assert binary.status_code == 200
    assert binary.json()["errors_total"] == 1
    ok = history.http.post(path, content=body, headers=home.owner.headers)
    assert ok.status_code == 200
    assert ok.json()["stored"] == 1


# --------------------------------------------------------------------------- rejects


def test_rejects_show_why_data_did_not_arrive(
    history: History,
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    home = make_home(stack)
    device = mqtt_client(broker, device_login(home.slug, "node"))
    topic = f"hearth/{home.slug}/node/telemetry/temperature"
    device.publish_and_wait(topic, b"warm")
    device.publish_and_wait(topic, b"\xff\xfe21")
    device.publish_and_wait(topic, b"21.5")  # positive control: stored, not rejected
    path = f"/telemetry/homes/{home.slug}/rejects"
    deadline = time.monotonic() + 15
    while True:
        rejects = history.http.get(path, headers=home.owner.headers).json()
        if len(rejects) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(r["reason"], r["payload"], r["payload_base64"]) for r in rejects] == [
        ("invalid_utf8", None, "//4yMQ=="),
        ("not_a_number", "warm", None),
    ]
    assert rejects[1]["topic"] == topic
    assert rejects[1]["device"] == "node"
    only_door = history.http.get(path, params={"device": "door"}, headers=home.owner.headers)
    assert only_door.json() == []
    later = history.http.get(
        path,
        params={"since": iso(datetime.now(UTC) + timedelta(minutes=1))},
        headers=home.owner.headers,
    )
    assert later.json() == []
    other = make_home(stack)
    assert history.http.get(path, headers=other.owner.headers).status_code == 403
    deadline = time.monotonic() + 15
    while not history.http.get(
        f"/telemetry/homes/{home.slug}/latest", headers=home.owner.headers
    ).json()["values"]:
        assert time.monotonic() < deadline, "the valid reading was never stored"
        time.sleep(0.05)


def test_a_registry_that_does_not_answer_is_a_503_not_a_denial(
    history: History, stack: ServiceStack, broker: RunningBroker
) -> None:
    home = make_home(stack)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings = history.settings.model_copy(
        update={
            "registry_url": f"http://127.0.0.1:{closed}",
            "replica": "test-noregistry",
            "mqtt_password": SecretStr(broker.service_login("ingest", "test-noregistry").password),
        }
    )
    with serve_app(create_app(settings), wait_path="/healthz") as app:
        response = httpx.get(
            f"{app.url}/telemetry/homes/{home.slug}/latest", headers=home.owner.headers
        )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "registry_unavailable"
    # positive control: the same request to the ingest that reaches the registry
    ok = history.http.get(f"/telemetry/homes/{home.slug}/latest", headers=home.owner.headers)
    assert ok.status_code == 200


# --------------------------------------------------------------------------- rollups, retention


def test_buckets_come_from_rollups_and_say_so(history: History, stack: ServiceStack) -> None:
    home = make_home(stack)
    seed(history.database_url, home.slug, "node", "temperature", 180)
    path = series_path(home.slug)
    answers = {}
    for source in ("auto", "raw"):
        got = history.http.get(
            path,
            params={**day(), "bucket": "1h", "agg": "avg", "source": source},
            headers=home.owner.headers,
        )
        assert got.status_code == 200, got.text
        answers[got.json()["source"]] = got.json()["points"]
    assert set(answers) == {"rollup_hour", "raw"}
    assert answers["rollup_hour"] == answers["raw"]
    assert [p["count"] for p in answers["raw"]] == [60, 60, 60]
    unaligned = {"from": iso(T0 + timedelta(seconds=30)), "to": iso(T0 + timedelta(hours=3))}
    got = history.http.get(path, params={**unaligned, "bucket": "5m"}, headers=home.owner.headers)
    assert got.json()["source"] == "raw"


def test_retention_is_set_by_managers_and_read_by_members(
    history: History, stack: ServiceStack
) -> None:
    home = make_home(stack)
    member = stack.create_user("member")
    stack.add_member(home.owner, home.slug, member, "member")
    base = f"/telemetry/homes/{home.slug}/retention"
    shown = history.http.get(base, headers=member.headers)
    assert shown.status_code == 200
    assert shown.json()["default"] is True
    denied = history.http.put(f"{base}/devices/node", json={"days": 7}, headers=member.headers)
    assert denied.status_code == 403
    ok = history.http.put(f"{base}/devices/node", json={"days": 7}, headers=home.owner.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["overrides"] == [{"device": "node", "metric": None, "days": 7}]
    too_long = history.http.put(base, json={"days": 5000}, headers=home.owner.headers)
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "invalid_retention"
    assert (
        history.http.put(base, json={"days": 90}, headers=home.owner.headers).json()["days"] == 90
    )
    cleared = history.http.delete(f"{base}/devices/node", headers=home.owner.headers)
    assert cleared.json()["overrides"] == []
    gone = history.http.delete(f"{base}/devices/node", headers=home.owner.headers)
    assert gone.status_code == 404
    other = make_home(stack)
    assert history.http.get(base, headers=other.owner.headers).status_code == 403
