"""The front door for real: nginx started on a free port in front of the running services.

Everything goes through one origin (the front door's): login, the registry, Socket.IO over
websocket, the docs portal and each service's OpenAPI; CORS only for listed origins; HTTPS
with the platform's own CA.
"""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hearth.platform.front_door import FrontDoorSettings, worker_user, write_config
from hearth.platform.front_door_routes import routed_services
from hearth.platform.front_door_site import ASSETS, write_site
from hearth.platform.tls import TlsFiles, ensure_generated
from hearth.realtime.asyncapi import EVENTS, asyncapi_document
from hearth.testing.apps import RunningApp
from hearth.testing.ports import free_port
from hearth.testing.procs import ManagedProcess
from hearth.testing.services import USER_PASSWORD, ServiceStack
from hearth.testing.sockets import ClientFactory

LISTED = "https://app.example"
UNLISTED = "https://evil.example"

StartFrontDoor = Callable[..., str]


def _address(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


@pytest.fixture(scope="module")
def start_front_door(
    stack: ServiceStack, realtime: RunningApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartFrontDoor]:
    """Starts nginx (the rendered config) before the module's services; returns its origin."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.fail("nginx is missing: scripts/install-tools installs it (nginx-light)")
    started: list[ManagedProcess] = []
    # ingest is not running here: its routes must answer a 502 problem.
    upstreams = {name: f"127.0.0.1:{free_port()}" for name in routed_services()}
    upstreams.update(
        auth=_address(stack.auth.url),
        registry=_address(stack.registry.url),
        realtime=_address(realtime.url),
    )

    def start(tls: TlsFiles | None = None) -> str:
        base = tmp_path_factory.mktemp("web")
        port = free_port()
        settings = FrontDoorSettings(
            listen=f"127.0.0.1:{port}",
            upstreams=upstreams,
            site_dir=write_site(base / "site", tls.ca if tls else None),
            work_dir=base,
            cors_origins=(LISTED, "http://localhost:5173"),
            tls=tls,
            user=worker_user(),
        )
        write_config(settings, base / "nginx.conf")
        process = ManagedProcess(
            [nginx, "-p", str(base), "-e", "stderr", "-c", str(base / "nginx.conf")],
            base / "nginx.log",
        )
        process.start()
        started.append(process)
        process.wait_listening("127.0.0.1", port)
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def origin(start_front_door: StartFrontDoor) -> str:
    return start_front_door()


def test_login_and_homes_on_one_origin(stack: ServiceStack, origin: str) -> None:
    user = stack.create_user("door")
    home = stack.create_home(user)
    with httpx.Client(base_url=origin) as http:
        login = http.post(
            "/auth/token", data={"username": user.username, "password": USER_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        homes = http.get("/registry/homes", headers={"Authorization": f"Bearer {token}"})
        assert homes.status_code == 200, homes.text
        assert home["slug"] in json.dumps(homes.json())
        jwks = http.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
        # The token endpoint takes a form; JSON gets a problem that says so.
        as_json = http.post(
            "/auth/token", json={"username": user.username, "password": USER_PASSWORD}
        )
        assert as_json.status_code == 415
        assert as_json.headers["content-type"] == "application/problem+json"
        assert as_json.json()["code"] == "form_expected"
        assert "application/x-www-form-urlencoded" in as_json.json()["detail"]
        # Without the token the same route is refused with the service's own problem.
        refused = http.get("/registry/homes")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_socketio_over_websocket_through_the_front_door(
    stack: ServiceStack, origin: str, clients: ClientFactory
) -> None:
    user = stack.create_user("live")
    slug = stack.create_home(user)["slug"]
    client = clients("python", origin)
    assert await client.connect(user.token) is None
    topic = f"hearth/{slug}/#"
    assert await client.call("subscribe", {"topic": topic}) == {
        "ok": True,
        "topic": topic,
        "last": [],
    }
    refused = clients("python", origin)
    error = await refused.connect("not-a-token")
    assert error is not None
    assert error["message"] == "unauthorized"


def test_preflight_from_a_listed_origin_passes(origin: str) -> None:
    headers = {
        "Origin": LISTED,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with httpx.Client(base_url=origin) as http:
        for path in ("/auth/token", "/registry/homes", "/telemetry/homes/x/latest"):
            response = http.options(path, headers=headers)
            assert response.status_code == 204, (path, response.text)
            assert response.headers["access-control-allow-origin"] == LISTED
            assert "POST" in response.headers["access-control-allow-methods"]
            assert "Authorization" in response.headers["access-control-allow-headers"]
        # The real request from that origin carries the header too.
        jwks = http.get("/.well-known/jwks.json", headers={"Origin": LISTED})
        assert jwks.headers["access-control-allow-origin"] == LISTED


def test_preflight_from_an_unlisted_origin_is_refused(origin: str) -> None:
    with httpx.Client(base_url=origin) as http:
        for bad in (UNLISTED, "null", LISTED + ".evil.example", "http://app.example"):
            response = http.options(
                "/auth/token", headers={"Origin": bad, "Access-Control-Request-Method": "POST"}
            )
            assert response.status_code == 403, bad
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "cors_origin_refused"
            assert "access-control-allow-origin" not in response.headers
        plain = http.get("/.well-known/jwks.json", headers={"Origin": UNLISTED})
        assert plain.status_code == 200  # same-origin style calls are not CORS' business
        assert "access-control-allow-origin" not in plain.headers


def test_docs_portal_is_served_from_local_files(origin: str, stack: ServiceStack) -> None:
    with httpx.Client(base_url=origin) as http:
        assert http.get("/docs").status_code == 301
        page = http.get("/docs/")
        assert page.status_code == 200
        assert "swagger-ui-bundle.js" in page.text
        pages = ("/docs/redoc.html", "/docs/asyncapi.html", "/docs/asyncapi.js")
        for html in (page.text, *(http.get(path).text for path in pages)):
            assert "https://" not in html
            assert "http://" not in html
        for name in ASSETS:
            asset = http.get(f"/docs/assets/{name}")
            assert asset.status_code == 200, name
            assert len(asset.content) > 1000, name
        assert http.get("/docs/assets/swagger-ui.css").headers["content-type"] == "text/css"
        specs = http.get("/docs/specs.json").json()
        assert [spec["name"] for spec in specs][:2] == ["auth", "registry"]
        for name in ("auth", "registry", "realtime"):
            spec = http.get(f"/docs/openapi/{name}.json")
            assert spec.status_code == 200, name
            assert spec.json()["openapi"].startswith("3."), name
        assert (
            http.get("/docs/openapi/auth.json").json()
            == stack.auth_http.get("/openapi.json").json()
        )
        # Realtime's events: the AsyncAPI document, through the front door.
        assert http.get("/docs/events.json").json() == [
            {"name": "realtime", "url": "/docs/asyncapi/realtime.json"}
        ]
        events = http.get("/docs/asyncapi/realtime.json")
        assert events.status_code == 200
        assert events.json() == json.loads(json.dumps(asyncapi_document()))
        home = http.get("/")
        assert home.status_code == 200
        assert "/docs/" in home.text


def test_a_service_that_does_not_answer_is_a_problem(origin: str) -> None:
    with httpx.Client(base_url=origin) as http:
        response = http.get("/telemetry/homes/x/latest")
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "upstream_unavailable"
        # Positive control: a running service behind the same front door answers.
        assert http.get("/.well-known/jwks.json").status_code == 200


def test_https_with_the_platform_ca(
    start_front_door: StartFrontDoor, tmp_path: Path, stack: ServiceStack
) -> None:
    tls = ensure_generated(tmp_path / "tls", ["hearth.lan"])
    assert tls.ca is not None
    origin = start_front_door(tls)
    trusting = ssl.create_default_context(cafile=str(tls.ca))
    with httpx.Client(base_url=origin, verify=trusting) as http:
        jwks = http.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
        assert http.get("/tls/ca.crt").content == tls.ca.read_bytes()
    with (
        httpx.Client(base_url=origin, verify=ssl.create_default_context()) as http,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        http.get("/.well-known/jwks.json")
    # The same CA is kept on the next run; the server certificate is reused while current.
    again = ensure_generated(tmp_path / "tls", ["hearth.lan"])
    assert again.ca is not None
    assert again.ca.read_bytes() == tls.ca.read_bytes()
    assert again.cert.read_bytes() == tls.cert.read_bytes()
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------------- in a browser


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is missing: scripts/install-tools installs it")
    return found


@pytest.mark.slow
def test_docs_portal_in_chromium_offline_authorize_once_then_calls_work(
    stack: ServiceStack, origin: str
) -> None:
    """Headless Chromium with every request off loopback refused: the portal loads, Authorize
    (auth's password flow) once, then a call on auth's page and on the registry's works."""
    from playwright.sync_api import Request, Route, sync_playwright

    user = stack.create_user("docs")
    home = stack.create_home(user)["slug"]
    blocked: list[str] = []
    failed: list[str] = []

    def only_loopback(route: Route, request: Request) -> None:
        host = httpx.URL(request.url).host
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context()
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(f"{origin}/docs/?service=auth", wait_until="networkidle")
            page.locator(".swagger-ui .info .title").wait_for()
            assert "auth" in page.locator(".swagger-ui .info .title").inner_text().lower()

            # Authorize once, with auth's password flow (a real POST /auth/token).
            page.locator(".auth-wrapper button.authorize").click()
            page.locator("#oauth_username").fill(user.username)
            page.locator("#oauth_password").fill(USER_PASSWORD)
            password_flow = page.locator(".auth-container", has=page.locator("#oauth_username"))
            with page.expect_response(lambda r: r.url.endswith("/auth/token")) as login:
                password_flow.locator("button.authorize").click()
            assert login.value.status == 200
            page.locator("button.btn-done").first.click()

            def call(path: str) -> int:
                block = page.locator(f'.opblock-get:has(.opblock-summary-path[data-path="{path}"])')
                block.locator(".opblock-summary").first.click()
                block.locator("button.try-out__btn").click()
                with page.expect_response(lambda r: r.url.endswith(path)) as response:
                    block.locator("button.execute").click()
                assert response.value.request.header_value("authorization")
                return response.value.status

            assert call("/auth/users/me") == 200
            # Another service's page: the token follows, no copying.
            page.select_option("#service", "registry")
            page.locator(".swagger-ui .info .title", has_text="egistry").wait_for()
            page.wait_for_load_state("networkidle")
            assert call("/registry/homes") == 200
            assert home in page.locator(".live-responses-table").first.inner_text()

            # Realtime's Socket.IO events, rendered from its AsyncAPI document.
            page.locator("#events").click()
            page.locator("body[data-rendered=realtime]").wait_for()
            for event in EVENTS:
                section = page.locator(f"#event-{event.name}")
                assert event.summary in section.inner_text(), event.name
                arrow = "client → server" if event.direction == "client" else "server → client"
                assert arrow in section.locator("h2").inner_text(), event.name
            assert "Its ack" in page.locator("#event-subscribe").inner_text()
            assert "Hearth realtime" in page.locator("h1").inner_text()
        finally:
            browser.close()
    assert blocked == [], f"the portal asked for something off loopback: {blocked}"
    assert failed == []
