"""Goal: `make test` (and so CI) fails when the HTTP API answers anything its OpenAPI document
does not describe: a 5xx other than the documented 503/504, or a status code, content type or
body the document does not allow for that route.

Method: run `make fuzz`'s runner (tests/fuzz/fuzz_openapi.py) as a subprocess: a live 3-node
dev cluster on free loopback ports, schemathesis with every check over every operation
(coverage and fuzzing phases, seed 1). About 1,900 requests, 20 to 40 s on 2 cores; the
subprocess is bounded so a hung cluster fails the test instead of the CI job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_TIMEOUT_S = 300
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(FUZZ_TIMEOUT_S + 30)
def test_the_api_answers_as_its_openapi_document_says() -> None:
    run = subprocess.run([sys.executable, "-m", "tests.fuzz.fuzz_openapi", "--seed", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S,
                         check=False)
    summary = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, summary
    assert " passed" in run.stdout and "failure" not in run.stdout.lower(), summary
