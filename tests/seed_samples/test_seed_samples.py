"""The runnable seed samples start, accept a correctly signed delivery of their document's
example payload, and refuse one signed with another secret: the emulation runs the documents'
code, not a stand-in. (What the conformance suite finds in them is recorded in README.md.)"""

from __future__ import annotations

import json

import httpx
import pytest

from conformance import delivery_headers, load_profile, sign

from . import NODE, SAMPLES

SECRET = "whsec_seed-samples"

#: Each document's own example payload (Ztrace's document shows none; its fields are the
#: ones its handler destructures).
EXAMPLES = {
    "zaits": {
        "id": "evt_abc123xyz",
        "type": "document.signed",
        "created": 1642251600,
        "data": {"document_id": "doc_abc123", "signed_at": "2024-01-15T14:30:00Z"},
    },
    "zta": {
        "event": "pageview",
        "timestamp": "2024-12-12T16:30:00.000Z",
        "data": {"siteId": "site_abc123", "path": "/blog/my-article", "country": "US"},
    },
    "ztrace": {
        "event": "analysis.started",
        "timestamp": "2025-12-01T10:00:00Z",
        "data": {"analysis_id": "an_123", "image_id": "img_456"},
    },
    "zupertry": {
        "type": "job.completed",
        "data": {"job_id": "job_abc123", "status": "completed", "credits_consumed": 1},
    },
}


def _params() -> list[object]:
    return [
        pytest.param(
            name,
            id=name,
            marks=pytest.mark.skipif(
                sample.language == "node" and NODE is None, reason="node is not installed"
            ),
        )
        for name, sample in SAMPLES.items()
    ]


@pytest.mark.parametrize("name", _params())
def test_sample_accepts_signed_and_refuses_forged(name: str) -> None:
    """A signed example is acknowledged with 2xx; the same signed with another secret gets 401."""
    sample = SAMPLES[name]
    profile = load_profile(sample.profile)
    payload = EXAMPLES[sample.profile]
    body = json.dumps(payload, separators=(",", ":")).encode()
    good = delivery_headers(profile, SECRET, body, payload)
    forged = {**good, **sign(profile, "whsec_another-secret", body)}
    with sample.serve(SECRET) as url:
        accepted = httpx.post(url, content=body, headers=good, timeout=10)
        refused = httpx.post(url, content=body, headers=forged, timeout=10)
    assert accepted.status_code // 100 == 2, accepted.text
    assert refused.status_code == 401, refused.text


def test_every_sample_file_exists() -> None:
    """Each registered sample points at a file in this folder."""
    for sample in SAMPLES.values():
        assert sample.source.is_file(), sample.source
