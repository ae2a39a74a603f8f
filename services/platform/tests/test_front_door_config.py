"""The front door's rendered nginx config: the route table, refusals of bad settings, nginx -t."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.platform.front_door import FrontDoorError, FrontDoorSettings, render, write_config
from hearth.platform.front_door_config import FrontDoorOptions
from hearth.platform.front_door_routes import OPENAPI_SERVICES, ROUTES, Route, routed_services
from hearth.platform.tls import ensure_generated

UPSTREAMS = {name: f"127.0.0.1:{8101 + i}" for i, name in enumerate(routed_services())}


def _settings(tmp_path: Path, **overrides: object) -> FrontDoorSettings:
    values: dict[str, object] = {
        "listen": "127.0.0.1:8100",
        "upstreams": UPSTREAMS,
        "site_dir": tmp_path / "site",
        "work_dir": tmp_path,
    }
    values.update(overrides)
    return FrontDoorSettings(**values)  # type: ignore[arg-type]


def _nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx is not None, "nginx is missing: scripts/install-tools installs it"
    return subprocess.run(
        [nginx, "-t", "-p", str(prefix), "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_every_route_of_the_table_is_proxied_unrewritten(tmp_path: Path) -> None:
    text = render(_settings(tmp_path))
    for route in ROUTES:
        block = f"location = {route.path} {{" if route.exact else f"location ^~ {route.path}/ {{"
        assert block in text, route
        assert f"proxy_pass http://{route.service};" in text  # no URI part: path kept as is
    for name in OPENAPI_SERVICES:
        assert f"proxy_pass http://{name}/openapi.json;" in text
    assert text.count("proxy_set_header Upgrade $http_upgrade;") == 2  # /socket.io and = form
    assert "http://" not in text.replace("proxy_pass http://", "")


def test_a_new_route_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth.platform.front_door as front_door

    monkeypatch.setattr(front_door, "ROUTES", (*ROUTES, Route("/automation", "registry")))
    assert "location ^~ /automation/ {" in render(_settings(tmp_path))
    monkeypatch.undo()
    assert "location ^~ /automation/ {" not in render(_settings(tmp_path))


@pytest.mark.parametrize("tls", [False, True])
def test_nginx_accepts_the_rendered_config(tmp_path: Path, tls: bool) -> None:
    files = ensure_generated(tmp_path / "tls") if tls else None
    settings = _settings(tmp_path, cors_origins=("https://app.example",), tls=files)
    write_config(settings, tmp_path / "nginx.conf")
    result = _nginx_test(tmp_path / "nginx.conf", tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("ssl_certificate" in (tmp_path / "nginx.conf").read_text()) is tls


def test_nginx_refuses_a_broken_config(tmp_path: Path) -> None:
    """Positive control for the test above: nginx -t does fail on a bad file."""
    (tmp_path / "nginx.conf").write_text("events {}\nhttp { nonsense; }\n")
    assert _nginx_test(tmp_path / "nginx.conf", tmp_path).returncode != 0


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("cors_origins", ("*",), "CORS origin"),
        ("cors_origins", ("https://app.example/path",), "CORS origin"),
        ("cors_origins", ('https://a.example"; evil',), "CORS origin"),
        ("listen", "localhost", "listen"),
        ("upstreams", {"auth": "127.0.0.1:8101"}, "no upstream address"),
        ("upstreams", {**UPSTREAMS, "auth": "auth:81;01"}, "not HOST:PORT"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, field: str, value: object, says: str) -> None:
    with pytest.raises(FrontDoorError, match=says):
        _settings(tmp_path, **{field: value})
    _settings(tmp_path)  # positive control


def test_route_paths_are_checked() -> None:
    with pytest.raises(ValueError, match="route path"):
        Route("/auth/", "auth")
    with pytest.raises(ValueError, match="route service"):
        Route("/x", "Auth Service")
    assert Route("/x", "auth").path == "/x"


def test_options_from_the_environment(tmp_path: Path) -> None:
    assert FrontDoorOptions.from_env({}, tmp_path) == FrontDoorOptions()
    options = FrontDoorOptions.from_env(
        {
            "HEARTH_WEB_CORS_ORIGINS": " https://a.example, http://localhost:5173 ,",
            "HEARTH_TLS": "files",
            "HEARTH_TLS_CERT_FILE": "certs/fullchain.pem",
            "HEARTH_TLS_KEY_FILE": "/etc/hearth/key.pem",
        },
        tmp_path,
    )
    assert options.cors_origins == ("https://a.example", "http://localhost:5173")
    assert options.tls_cert == tmp_path / "certs" / "fullchain.pem"
    assert options.tls_key == Path("/etc/hearth/key.pem")
    assert options.scheme == "https"
    with pytest.raises(FrontDoorError, match="does not exist"):
        options.tls_files(tmp_path / "tls")
    with pytest.raises(FrontDoorError, match="needs HEARTH_TLS_CERT_FILE"):
        FrontDoorOptions.from_env({"HEARTH_TLS": "files"}, tmp_path)
    with pytest.raises(FrontDoorError, match="is not one of"):
        FrontDoorOptions.from_env({"HEARTH_TLS": "yes"}, tmp_path)


def test_generated_certificate_follows_the_names(tmp_path: Path) -> None:
    options = FrontDoorOptions.from_env(
        {"HEARTH_TLS": "generated", "HEARTH_TLS_NAMES": "hearth.lan"}, tmp_path
    )
    first = options.tls_files(tmp_path / "tls")
    assert first is not None
    assert first.ca is not None
    cert = first.cert.read_bytes()
    ca = first.ca.read_bytes()
    assert options.tls_files(tmp_path / "tls") == first
    assert first.cert.read_bytes() == cert  # unchanged names: the same certificate
    more = FrontDoorOptions.from_env(
        {"HEARTH_TLS": "generated", "HEARTH_TLS_NAMES": "hearth.lan,10.0.0.5"}, tmp_path
    )
    again = more.tls_files(tmp_path / "tls")
    assert again is not None
    assert again.ca is not None
    assert again.cert.read_bytes() != cert  # new names: a new server certificate...
    assert again.ca.read_bytes() == ca  # ...from the same CA
