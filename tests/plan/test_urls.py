"""The one http(s) URL check, as the experiment file and the driver/metrics callers use it."""

from __future__ import annotations

import pytest

from capacity.core.errors import CapacityError, ExperimentError
from capacity.core.urls import check_http_url, is_http_url
from capacity.plan.experiment import parse_experiment


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://staging.example.org/api"])
def test_http_urls_pass_with_their_parts(url: str) -> None:
    assert is_http_url(url)
    assert check_http_url(url).hostname in ("127.0.0.1", "staging.example.org")


@pytest.mark.parametrize("url", ["ftp://host", "http://", "localhost:8080", ""])
def test_others_fail_in_the_callers_words(url: str) -> None:
    assert not is_http_url(url)
    with pytest.raises(ValueError, match=r"^must be an http\(s\) URL"):
        check_http_url(url)
    with pytest.raises(CapacityError, match=r"^--target: must be an http\(s\) URL"):
        check_http_url(url, "--target", error=CapacityError)


def test_experiment_target_uses_it() -> None:
    data = {
        "name": "x",
        "target": {"base_url": "ftp://x"},
        "workload": {"endpoints": [{"name": "h", "path": "/health"}]},
    }
    with pytest.raises(ExperimentError, match="http\\(s\\) URL or 'sandbox://'") as info:
        parse_experiment(data, source="x.toml")
    assert info.value.key == "target.base_url"
