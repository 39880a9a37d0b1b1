"""Specifications of the assessment's score and grades (年终考核), in memory."""

from __future__ import annotations

import pytest

from domain.assessment import FIGURES, AssessmentPolicy, distribution, grade, score
from domain.errors import InvalidInput


def row(**kw) -> dict:
    return {**{k: 0 for k in FIGURES}, **kw}


def test_the_seed_quota_115_staff_24_excellent():
    assert AssessmentPolicy().quota(115) == 24
    rows = {f"P{i:03d}": row(handled=100 + i) for i in range(115)}
    ranked = grade(rows, AssessmentPolicy())
    assert distribution(ranked) == {"优秀": 24, "称职": 91, "基本称职": 0, "不称职": 0}
    assert [r["staff"] for r in ranked[:2]] == ["P114", "P113"]  # more cases handled, higher score


def test_an_ineligible_staff_member_leaves_the_excellent_place_empty():
    rows = {"A": row(handled=500, overdue=1), "B": row(handled=10, complaint_substantiated=1), "C": row(handled=5)}
    ranked = grade(rows, AssessmentPolicy(excellent_count=2))
    assert [(r["staff"], r["grade"]) for r in ranked] == [("C", "优秀"), ("A", "称职"), ("B", "称职")]
    assert [r["score"] for r in ranked] == [100.05, 100.0, 90.1]


def test_grade_thresholds_and_the_score_formula():
    p = AssessmentPolicy(excellent_count=0)
    assert score(row(card_red=2, card_yellow=1, anomaly=3) | {"card_unanswered": 3}, p) == 100 - 6 - 1 - 3 - 3
    assert score(row(rated=10, satisfied=9) | {"satisfaction_rate": 90.0}, p) == 97.5
    ranked = grade({"A": row(complaint_substantiated=2), "B": row(complaint_substantiated=5), "C": row()}, p)
    assert {r["staff"]: r["grade"] for r in ranked} == {"C": "称职", "A": "称职", "B": "不称职"}
    ranked = grade({"A": row(complaint_substantiated=3)}, p)
    assert ranked[0]["grade"] == "基本称职"  # 70


def test_policy_is_configuration():
    p = AssessmentPolicy.parse({"excellent_share": 0.15, "weights": {"anomaly": -2}, "satisfied_scores": [1, 2]})
    assert (p.quota(115), p.weights["anomaly"], p.weights["overdue"], p.satisfied_scores) == (17, -2.0, -5.0, (1, 2))
    for bad in ({"excellent_share": 2}, {"weights": {"luck": 1}}, {"colour": 1}, {"base": "x"}, [],
                {"satisfied_scores": [0]}, {"excellent_count": -1}):
        with pytest.raises(InvalidInput) as e:
            AssessmentPolicy.parse(bad)
        assert e.value.code == "invalid_policy"
