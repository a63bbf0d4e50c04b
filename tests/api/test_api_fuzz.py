"""Fuzz every operation of the OpenAPI schema with schemathesis: no input gives a 5xx.

Schemathesis generates valid and invalid requests from /openapi.json (bodies, query
strings, path parameters, headers) and sends them to the real app on a copy of the seed
index. Bounded examples per operation keep it around a minute on 2 cores.
"""
from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import fake_config

# server processes / fuzzing: the full tier (README's command and .ci/run) runs it, the fast tier doesn't
pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def api_schema(fake_seed_home, fake_embedder, tmp_path_factory):
    from api import create_app

    home = tmp_path_factory.mktemp("fuzzhome") / "home"
    shutil.copytree(fake_seed_home, home, symlinks=True)
    app = create_app(fake_config(home, rate_feedback="off", rate_chat="off", rate_export="off",
                                 admin_token="fuzz-admin"), fake_embedder)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_gives_a_server_error(api_schema):
    from hypothesis import given
    from schemathesis import GenerationMode

    errors: list[str] = []
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 14  # every route of the API
    for op in operations:
        @given(case=op.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            r = case.call()
            if r.status_code >= 500:
                errors.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                              f"{r.status_code}: {r.text[:200]}")
        run()
    assert errors == []
