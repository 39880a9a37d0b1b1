"""The streaming demo generator (for the scale run) gives exactly the steps of ``case_steps``."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from domain.calendar import CHINA_TZ
from domain.clock import ManualClock
from infra.settings import Settings
from services.demo import build_district, case_steps, stream_case_steps
from services.system import Esup


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    clock = ManualClock(datetime(2008, 1, 1, 8, tzinfo=CHINA_TZ))
    esup = Esup.open(Settings(data_dir=tmp_path_factory.mktemp("stream")), clock)
    build_district(esup, random.Random(2008))
    yield esup
    esup.close()


@pytest.mark.parametrize("cases", [251 * 6, 2000])  # days in order (streamed); days drawn at random (fallback)
def test_the_stream_is_case_steps_in_the_same_order(demo, cases):
    expected = list(case_steps(demo, cases, random.Random(5)))
    assert list(stream_case_steps(demo, cases, random.Random(5))) == expected


def test_left_out_cases_are_left_out_whole(demo):
    cases = 251 * 4
    everything = list(case_steps(demo, cases, random.Random(9)))
    odd = lambda steps: int(steps[0][1]["case_no"][-1]) % 2 == 1  # noqa: E731
    kept = list(stream_case_steps(demo, cases, random.Random(9), keep=odd))
    assert kept == [p for p in everything if int(p[1]["case_no"][-1]) % 2 == 1]
    assert 0 < len(kept) < len(everything)
