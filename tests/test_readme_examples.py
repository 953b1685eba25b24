"""The README's receiver examples (``tests/examples``), run for real over loopback HTTP: a
signed delivery is accepted and a forged one rejected."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from seed_samples import serve_wsgi

from conformance import delivery_headers, load_profile, sign
from reference import read_events, serve_in_thread

EXAMPLES = Path(__file__).parent / "examples"
README = Path(__file__).parent.parent / "README.md"
SECRET = "whsec_readme-examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"readme_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deliveries(
    profile_name: str, payload: dict[str, Any]
) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """A body, its correct headers, and the same headers with a signature made with another
    secret."""
    profile = load_profile(profile_name)
    body = json.dumps(payload, indent=2).encode("utf-8")
    good = delivery_headers(profile, SECRET, body, payload)
    forged = {**good, **sign(profile, "not the secret", body)}
    return body, good, forged


ZAITS_EVENT = {
    "id": "evt_abc123xyz",
    "type": "document.signed",
    "created": 1642251600,
    "data": {
        "document_id": "doc_abc123",
        "signer": {"email": "john@example.com", "name": "Jöhn Doe"},
    },
}
ZTRACE_EVENT = {
    "event": "analysis.started",
    "timestamp": "2025-12-01T10:00:00Z",
    "data": {"analysis_id": "an_1"},
}
ZUPERTRY_EVENT = {"type": "job.completed", "data": {"job_id": "job_abc123", "status": "completed"}}


def test_flask_example() -> None:
    """The Flask example accepts a signed Zaits delivery and answers a forged one 401."""
    body, good, forged = deliveries("zaits", ZAITS_EVENT)
    with serve_wsgi(load_example("flask_receiver").create_app(SECRET)) as url:
        accepted = httpx.post(f"{url}/webhooks/zaits", content=body, headers=good)
        rejected = httpx.post(f"{url}/webhooks/zaits", content=body, headers=forged)
    assert (accepted.status_code, accepted.json()) == (200, {"received": True})
    assert (rejected.status_code, rejected.json()) == (
        401,
        {"error": "signature does not match", "header": "X-Zaits-Signature"},
    )


def test_fastapi_example() -> None:
    """The FastAPI example accepts a signed Ztrace delivery; forged and stale ones get 401."""
    body, good, forged = deliveries("ztrace", ZTRACE_EVENT)
    profile = load_profile("ztrace")
    stale = delivery_headers(profile, SECRET, body, ZTRACE_EVENT, now=time.time() - 600)
    with serve_in_thread(load_example("fastapi_receiver").create_app(SECRET)) as url:
        accepted = httpx.post(f"{url}/webhooks/ztrace", content=body, headers=good)
        rejected = httpx.post(f"{url}/webhooks/ztrace", content=body, headers=forged)
        late = httpx.post(f"{url}/webhooks/ztrace", content=body, headers=stale)
    assert (accepted.status_code, accepted.json()) == (200, {"received": True})
    assert rejected.status_code == 401
    assert rejected.json()["detail"]["error"] == "signature does not match"
    assert (late.status_code, late.json()["detail"]["error"]) == (401, "stale timestamp")


def test_mounted_reference_receiver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The mounted receiver accepts a signed Zupertry delivery at /webhooks/zupertry, rejects a
    forged one, processes the event, and leaves the rest of the site alone."""
    body, good, forged = deliveries("zupertry", ZUPERTRY_EVENT)
    db = tmp_path / "webhooks.sqlite3"
    site = load_example("mount_app").create_site(SECRET, db_path=str(db))
    with serve_in_thread(site) as url:
        accepted = httpx.post(f"{url}/webhooks/zupertry", content=body, headers=good)
        again = httpx.post(f"{url}/webhooks/zupertry", content=body, headers=good)
        rejected = httpx.post(f"{url}/webhooks/zupertry", content=body, headers=forged)
        home = httpx.get(f"{url}/")
        deadline = time.monotonic() + 5
        while not read_events(db)[0].processed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert (accepted.status_code, accepted.json()) == (200, {"received": True})
    assert again.json() == {"received": True, "duplicate": True}
    assert (rejected.status_code, rejected.json()["error"]) == (401, "signature does not match")
    assert home.text == "my site"
    assert [(e.key, e.processed) for e in read_events(db)] == [("job_abc123", True)]
    assert "processing job.completed job_abc123" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["flask_receiver", "fastapi_receiver", "mount_app"])
def test_readme_shows_the_example_verbatim(name: str) -> None:
    """README.md carries each example file exactly, so the documented code is the tested code."""
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    assert f"```python\n{source}```" in README.read_text(encoding="utf-8"), (
        f"README.md does not show tests/examples/{name}.py verbatim in a ```python block"
    )
