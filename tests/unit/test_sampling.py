"""Audit sampling in memory: sample sizes, the upper deviation limit, the designs, the draw as a
pure function of (seed, root, population, design), and double-random reviewers with recusal."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from fractions import Fraction as F

import pytest

from domain.audit import Audit, AuditState, Criteria, FindingsIncomplete, NotAssigned, Population
from domain.errors import InvalidInput
from domain.sampling import (Design, InvalidSampling, Member, RecusalImpossible, Reviewer, allocate, assign_reviewers,
                             binomial_cdf, binomial_cdf_exact, draw, ht_rate, inclusion_probabilities, sample_size,
                             ticket, upper_limit)

ROOT = hashlib.sha256(b"root").digest()
OTHER_ROOT = hashlib.sha256(b"another root").digest()


@pytest.mark.parametrize("confidence, tolerable, expected, n", [
    ("0.95", "0.05", "0", 59), ("0.90", "0.05", "0", 45), ("0.95", "0.10", "0", 29), ("0.95", "0.05", "0.01", 93),
    ("0.95", "0.02", "0", 149), ("0.95", "0.03", "0", 99), ("0.90", "0.10", "0", 22), ("0.95", "0.05", "0.02", 181),
    ("0.90", "0.05", "0.01", 77), ("0.95", "0.20", "0", 14),
])
def test_sample_sizes_are_the_tables(confidence, tolerable, expected, n):
    assert sample_size(F(confidence), F(tolerable), F(expected)) == n


def test_sample_size_is_the_smallest_n_by_exact_arithmetic():
    for c, t, e in [("0.95", "0.05", "0"), ("0.95", "0.05", "0.01"), ("0.9", "0.07", "0.01")]:
        c, t, e = F(c), F(t), F(e)
        n = sample_size(c, t, e)
        assert binomial_cdf_exact(math.ceil(n * e), n, t) <= 1 - c
        assert all(binomial_cdf_exact(math.ceil(m * e), m, t) > 1 - c for m in range(1, n) if math.ceil(m * e) < m)


def test_zero_expected_sizes_follow_the_closed_form():
    for c in ("0.9", "0.95", "0.99"):
        for t in ("0.02", "0.04", "0.06", "0.08", "0.15"):
            assert sample_size(F(c), F(t)) == math.ceil(math.log(1 - float(c)) / math.log(1 - float(t)) - 1e-12)


def test_impossible_parameters_are_refused():
    for c, t, e in [("0.95", "0.05", "0.05"), ("0.95", "1e-400", "0"), ("1", "0.05", "0"),
                    ("0." + "9" * 400, "0.05", "0"), ("0.95", "0.0001", "0"), ("0.95", "0.5", "0.4999")]:
        with pytest.raises(InvalidSampling):
            sample_size(F(c), F(t), F(e))


def test_upper_limit_is_the_clopper_pearson_bound():
    assert upper_limit(0, 59, F("0.95")) == pytest.approx(1 - 0.05 ** (1 / 59), rel=1e-9)
    assert upper_limit(2, 100, 0.95) == pytest.approx(0.0616, abs=5e-5)  # AICPA evaluation table: 6.2%
    for d, n in [(1, 93), (3, 50), (0, 10)]:
        u = upper_limit(d, n, 0.9)
        assert binomial_cdf(d, n, u) == pytest.approx(0.1, rel=1e-6)
    assert upper_limit(5, 5, 0.95) == 1.0


def population(n: int, departments=("GS", "DS", "ZJ"), kinds=("licence", "non_licence")) -> list[Member]:
    out = []
    for i in range(n):
        risks = frozenset(r for j, r in enumerate(("warnings", "anomalies", "late_entry", "fees")) if (i >> j) % 5 == 0)
        out.append(Member(f"C{i:05d}", departments[i % len(departments) if i % 7 else 0], f"IT-{i % 4}",
                          kinds[i % len(kinds)], risks))
    return out


def test_simple_draw_is_a_pure_function_of_seed_root_population():
    pop = population(500)
    a = draw("2026-Q4 公告 123", ROOT, pop, 59, Design())
    assert draw("2026-Q4 公告 123", ROOT, list(pop), 59, Design()) == a
    assert len(a.sample) == len(set(a.sample)) == 59
    expected = sorted(pop, key=lambda m: ticket("2026-Q4 公告 123", ROOT, m.case_no))[:59]
    assert list(a.sample) == [m.case_no for m in expected]
    assert draw("another seed", ROOT, pop, 59, Design()).sample != a.sample
    assert draw("2026-Q4 公告 123", OTHER_ROOT, pop, 59, Design()).sample != a.sample
    assert a.total == 59 and set(a.probabilities.values()) == {F(59, 500)}


def test_the_ticket_is_the_documented_hash():
    assert ticket("s", ROOT, "C1") == hashlib.sha256(b"s\n" + ROOT + b"C1").digest()


@pytest.mark.parametrize("allocation", ["proportional", "equal"])
@pytest.mark.parametrize("by", ["department", "item_kind"])
def test_stratified_allocations_add_up_and_each_stratum_is_shown(allocation, by):
    pop = population(301)
    for n in (1, 7, 59, 150, 301):
        sel = draw("seed", ROOT, pop, n, Design("stratified", by, allocation))
        assert sum(s["n"] for s in sel.strata) == n == len(sel.sample)
        sizes = Counter(m.stratum(by) for m in pop)
        assert {s["key"]: s["population"] for s in sel.strata} == dict(sizes)
        drawn = Counter(next(m for m in pop if m.case_no == c).stratum(by) for c in sel.sample)
        assert {s["key"]: s["n"] for s in sel.strata if s["n"]} == dict(drawn)
        assert all(s["n"] <= s["population"] for s in sel.strata)
        assert sel.total == n == sum(s["n"] for s in sel.strata)
        assert all(sel.probabilities[c] == F(drawn[k], sizes[k]) for c in sel.sample
                   for k in [next(m for m in pop if m.case_no == c).stratum(by)])


def test_allocation_caps_and_passes_on():
    assert allocate({"a": 2, "b": 50, "c": 50}, 30, "equal") == {"a": 2, "b": 14, "c": 14}
    assert allocate({"a": 1, "b": 2, "c": 97}, 10, "proportional") == {"a": 0, "b": 0, "c": 10}
    assert sum(allocate({"a": 3, "b": 3, "c": 3}, 4, "proportional").values()) == 4


def test_weighted_probabilities_sum_to_n_and_follow_the_weights():
    pop = population(400)
    design = Design("weighted", weights={"warnings": F(5), "anomalies": F(2), "late_entry": F(2), "fees": F(1)})
    for n in (1, 20, 100, 399):
        sel = draw("seed", ROOT, pop, n, design)
        assert len(set(sel.sample)) == n
        ordered = sorted(pop, key=lambda m: ticket("seed", ROOT, m.case_no))
        pis = inclusion_probabilities([design.weight(m) for m in ordered], n)
        assert sum(pis) == n == sel.total and all(0 < p <= 1 for p in pis)
        by_case = dict(zip((m.case_no for m in ordered), pis))
        assert all(sel.probabilities[c] == by_case[c] for c in sel.sample)
    risky = next(m for m in pop if "warnings" in m.risks)
    plain = next(m for m in pop if not m.risks)
    sel = draw("seed", ROOT, pop, 20, design)
    ordered = sorted(pop, key=lambda m: ticket("seed", ROOT, m.case_no))
    pis = dict(zip((m.case_no for m in ordered), inclusion_probabilities([design.weight(m) for m in ordered], 20)))
    assert pis[risky.case_no] / pis[plain.case_no] == design.weight(risky)


def test_weighted_inclusion_probabilities_are_the_real_frequencies():
    """Over many seeds, each case is drawn about π_i of the time (the design is what it says)."""
    pop = population(40)
    design = Design("weighted")
    counts: Counter[str] = Counter()
    trials = 3000
    for t in range(trials):
        counts.update(draw(f"seed {t}", ROOT, pop, 8, design).sample)
    ordered = sorted(pop, key=lambda m: m.case_no)
    # π does not depend on the ticket order: it is min(1, c·w)
    pis = dict(zip((m.case_no for m in ordered), inclusion_probabilities([design.weight(m) for m in ordered], 8)))
    for c, pi in pis.items():
        assert abs(counts[c] / trials - float(pi)) < 4 * math.sqrt(float(pi) * (1 - float(pi)) / trials) + 0.01, c


def test_horvitz_thompson_is_unbiased_over_draws():
    pop = population(60)
    truth = {m.case_no: ("warnings" in m.risks or m.department == "DS") for m in pop}
    true_rate = sum(truth.values()) / len(pop)
    design = Design("weighted")
    estimates = []
    for t in range(2000):
        sel = draw(f"s{t}", ROOT, pop, 12, design)
        estimates.append(float(ht_rate({c: truth[c] for c in sel.sample}, sel.probabilities, len(pop))))
    assert sum(estimates) / len(estimates) == pytest.approx(true_rate, abs=0.02)


def test_recusal_holds_in_a_thousand_random_assignments():
    rnd = random.Random(8)  # drives the test's inputs only; the assignment itself is hashed
    departments = [f"D{i}" for i in range(8)]
    checked = 0
    for trial in range(1000):
        pool = [Reviewer(f"r{i}", departments=frozenset(rnd.sample(departments, rnd.randint(0, 2))),
                         conflicts=frozenset(rnd.sample(departments, rnd.randint(0, 2))))
                for i in range(rnd.randint(2, 9))]
        cases = [(f"C{trial}-{j}", rnd.choice(departments)) for j in range(rnd.randint(1, 12))]
        per_case = rnd.choice([1, 2, 2, 3])
        try:
            out = assign_reviewers(f"seed{trial}", ROOT, cases, pool, per_case)
        except RecusalImpossible as exc:
            c, d = next((c, d) for c, d in cases if c == exc.context["case_no"])
            assert sum(r.may_review(c, d) for r in pool) < per_case
            continue
        by_id = {r.id: r for r in pool}
        for case_no, department in cases:
            chosen = out[case_no]
            assert len(chosen) == len(set(chosen)) == per_case
            for r in chosen:
                assert department not in by_id[r].departments and department not in by_id[r].conflicts
        checked += 1
    assert checked > 500


def test_assignment_is_reproducible_and_spread():
    pool = [Reviewer(f"r{i}") for i in range(6)]
    cases = [(f"C{i}", "GS") for i in range(300)]
    a = assign_reviewers("s", ROOT, cases, pool, 2)
    assert a == assign_reviewers("s", ROOT, cases, pool, 2)
    assert a != assign_reviewers("t", ROOT, cases, pool, 2)
    load = Counter(r for rs in a.values() for r in rs)
    assert set(load) == {r.id for r in pool} and min(load.values()) > 60


def test_a_case_conflict_by_number_recuses_too():
    pool = [Reviewer("a", conflicts=frozenset({"C1"})), Reviewer("b"), Reviewer("c")]
    assert "a" not in assign_reviewers("s", ROOT, [("C1", "GS")], pool, 2)["C1"]
    with pytest.raises(RecusalImpossible):
        assign_reviewers("s", ROOT, [("C1", "GS")], pool, 3)


# -- the aggregate --------------------------------------------------------------------------------

T0 = datetime(2008, 11, 1, tzinfo=timezone.utc)


class FakeEvent:
    """Only what Population reads from a case event."""

    def __init__(self, case_id, case_no, step, when, department="GS", item="GS-001", kind="licence", flags=()):
        from domain.steps import Step

        self.originator_id = case_id
        self.case_no = case_no
        self.STEP = Step(step)
        self.occurred_at = when
        self.actor = {"department": department}
        self.data = {"item_code": item} if step == "submitted" else {}
        self.derived = {"terms": {"code": item, "kind": kind}} if step in ("submitted", "accepted") else {}
        self.flags = [{"code": f} for f in flags]


def log_of(n: int):
    from uuid import uuid4

    out = []
    for i in range(n):
        cid = uuid4()
        dept = ("GS", "DS")[i % 2]
        day = T0 + timedelta(days=i % 20)
        out.append(("case", FakeEvent(cid, f"C{i:03d}", "submitted", day, dept)))
        out.append(("case", FakeEvent(cid, f"C{i:03d}", "accepted", day + timedelta(hours=1), dept,
                                      flags=("late_entry",) if i % 5 == 0 else ())))
        if i % 3:
            out.append(("case", FakeEvent(cid, f"C{i:03d}", "concluded", day + timedelta(days=2), dept)))
        if i % 4 == 0:
            out.append(("warning", f"C{i:03d}"))
    return out


def test_population_follows_the_criteria():
    pop = Population()
    for kind, item in log_of(60):
        (pop.case_event if kind == "case" else pop.warning_issued)(item)
    everything = pop.members(Criteria.parse({"from": "2008-01-01", "to": "2008-12-31"}))
    assert [m.case_no for m in everything] == sorted(f"C{i:03d}" for i in range(60) if i % 3)
    gs = pop.members(Criteria.parse({"from": "2008-01-01", "to": "2008-12-31", "departments": ["GS"], "on": "accepted"}))
    assert len(gs) == 30 and all(m.department == "GS" for m in gs)
    warned = pop.members(Criteria.parse({"from": "2008-01-01", "to": "2008-12-31", "only": "warnings"}))
    assert [m.case_no for m in warned] == sorted(f"C{i:03d}" for i in range(60) if i % 3 and i % 4 == 0)
    flagged = pop.members(Criteria.parse({"from": "2008-01-01", "to": "2008-12-31", "only": "anomalies"}))
    assert all("late_entry" in m.risks and "anomalies" in m.risks for m in flagged) and flagged
    early = pop.members(Criteria.parse({"from": "2008-11-01", "to": "2008-11-05"}))
    assert early and all(m.case_no in {e.case_no for e in everything} for m in early) and len(early) < len(everything)


def _audit(n=6, per_case=2):
    by = {"role": "officer", "key": "o1"}
    from uuid import uuid4

    a = Audit.plan({"title": "2008 Q4", "population": {"from": "2008-01-01", "to": "2008-12-31"},
                    "sampling": {"n": n}, "design": {"method": "stratified", "stratify_by": "department"}},
                   by, T0, uuid4())
    pop = Population()
    for kind, item in log_of(40):
        (pop.case_event if kind == "case" else pop.warning_issued)(item)
    members = pop.members(a.criteria_)
    sel = draw("seed", ROOT, members, n, a.design_())
    a.record_draw({"size": pop.leaves, "root": ROOT.hex(), "note": "", "position": 99}, members, "seed", sel, "test", by, T0)
    pool = [Reviewer("o1"), Reviewer("o2"), Reviewer("o3", departments=frozenset({"GS"}))]
    cases = [(c, a.cases[c]["department"]) for c in a.draw["sample"]]
    a.assign(pool, per_case, assign_reviewers("seed", ROOT, cases, pool, per_case), by, T0)
    return a


def finding(case_no, deviation: str | None = None):
    points = {p: {"result": "conforming"} for p in ("acceptance", "time_limits", "fees", "procedure", "documents", "delivery")}
    if deviation:
        points[deviation] = {"result": "deviation", "note": "超时未说明"}
    return {"case_no": case_no, "points": points}


def test_an_audit_goes_plan_draw_assign_findings_close():
    a = _audit()
    assert a.state == "assigned"
    with pytest.raises(AuditState):
        a.record_draw({}, [], "s", None, "", {}, T0)  # type: ignore[arg-type]
    first = a.draw["sample"][0]
    outsider = next(r for r in ("o1", "o2", "o3") if r not in a.assignments[first])
    with pytest.raises(NotAssigned):
        a.record_finding(outsider, finding(first), {}, T0)
    with pytest.raises(InvalidInput) as missing:
        a.record_finding(a.assignments[first][0], {"case_no": first, "points": {"fees": "conforming"}}, {}, T0)
    assert missing.value.code == "missing_field"
    with pytest.raises(InvalidInput):  # a deviation needs its note
        a.record_finding(a.assignments[first][0], {**finding(first), "points": {
            **finding(first)["points"], "fees": {"result": "deviation"}}}, {}, T0)
    with pytest.raises(FindingsIncomplete):
        a.close({}, T0)
    for i, c in enumerate(a.draw["sample"]):
        for r in a.assignments[c]:
            a.record_finding(r, finding(c, "time_limits" if i == 0 and r == a.assignments[c][0] else None), {}, T0)
    results = a.close({}, T0)
    assert results["n"] == 6 and results["deviations"] == 1 and results["rate"] == pytest.approx(1 / 6)
    assert results["upper_limit"] == pytest.approx(upper_limit(1, 6, F("0.95")))
    assert results["exceeds_tolerable"] is True
    assert sum(s["n"] for s in results["strata"]) == 6 and results["points"]["time_limits"] == 1
    assert results["weighted_estimate"] == pytest.approx(float(ht_rate(a.deviating(), {
        c: F(p) for c, p in a.draw["probabilities"].items()}, a.population["size"])))
    assert a.state == "closed"


def test_recusal_in_the_aggregate_never_assigns_own_department():
    a = _audit(n=10, per_case=1)
    for c, rs in a.assignments.items():
        if a.cases[c]["department"] == "GS":
            assert "o3" not in rs


def test_a_large_population_is_recorded_by_its_digest(monkeypatch):
    import domain.audit as audit_module
    from domain.sampling import population_digest

    monkeypatch.setattr(audit_module, "POPULATION_LIST_MAX", 5)
    a = _audit()
    assert a.population["case_nos"] == [] and a.population["size"] > 5
    pop = Population()
    for kind, item in log_of(40):
        (pop.case_event if kind == "case" else pop.warning_issued)(item)
    assert a.population["digest"] == population_digest([m.case_no for m in pop.members(a.criteria_)])
