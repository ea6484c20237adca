"""An https target's certificate is checked unless the experiment says ``target.verify_tls = false``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from capacity.core.errors import TargetUnreachableError
from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings
from capacity.plan.experiment import Target, Workload
from tests.load.servers import DelayServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def _workload() -> Workload:
    return Workload.model_validate({"endpoints": [{"name": "a", "path": "/a"}], "test_data": {"source": "none"}})


def test_verify_tls_is_the_default() -> None:
    assert Target(base_url="https://staging.example.invalid").verify_tls is True


def test_self_signed_certificate_is_refused_by_default(self_signed: tuple[str, str]) -> None:
    with DelayServer(tls=self_signed) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        with LoadDriver(GeneratorSettings.of(srv.url, _workload())) as d, pytest.raises(TargetUnreachableError) as exc:
            d.preflight()
        assert "unreachable" in str(exc.value) and "\n" not in str(exc.value)
        assert srv.count == 0  # the handshake failed: no request reached the application


@pytest.mark.slow  # sends real load in real time
def test_verify_tls_false_accepts_it_and_runs_load(self_signed: tuple[str, str], tmp_path: Path) -> None:
    with (
        DelayServer(tls=self_signed) as srv,
        LoadDriver(GeneratorSettings.of(srv.url, _workload(), verify_tls=False)) as d,
    ):
        d.preflight()
        m = d.run_stage(StageSpec(0, 50.0, 2.0, 0.5, max_inflight=20))
    assert m.errors == 0 and m.requests > 0 and m.status_codes == {"200": m.requests}
    assert srv.count >= m.requests


def _locustfile(tmp_path: Path) -> Workload:
    lf = tmp_path / "lf.py"
    lf.write_text(
        "from locust import FastHttpUser, task\n\n\nclass U(FastHttpUser):\n"
        "    @task\n    def a(self):\n        self.client.get('/a')\n"
    )
    return Workload.model_validate({"locustfile": str(lf)})


@pytest.mark.slow  # sends real load in real time
@pytest.mark.parametrize("verify_tls", [True, False])
def test_locustfile_mode_follows_verify_tls(self_signed: tuple[str, str], tmp_path: Path, verify_tls: bool) -> None:
    with (
        DelayServer(tls=self_signed) as srv,
        LoadDriver(GeneratorSettings.of(srv.url, _locustfile(tmp_path), verify_tls=verify_tls)) as d,
    ):
        m = d.run_stage(StageSpec(0, 20.0, 1.0, 0.0, max_inflight=10))
    assert m.requests > 0
    if verify_tls:
        assert m.ok == 0 and srv.count == 0  # every handshake refused the self-signed certificate
    else:
        assert m.errors == 0 and m.ok == m.requests
