"""Random audit samples (抽查): sample sizes, designs, verifiable draws, double-random reviewers.

Everything here is a pure function: the same inputs give the same sample on any machine and any
Python version (no ``random``; every choice comes from SHA-256).

**Sample size (attribute sampling).** The smallest n with binomial P(X ≤ k; n, tolerable) ≤
1 − confidence, where k = ⌈n · expected⌉: 59 at 95%/5%/0, 45 at 90%/5%/0, 29 at 95%/10%/0, 93 at
95%/5%/1%. Rates are exact fractions (``Fraction("0.05")``); the tail is summed in log space and
recomputed exactly with fractions whenever it lies within 1e-9 of the risk, so a float never
decides a boundary case.

**The draw.** The randomness is a seed announced by the commission before the draw combined with
the root of the checkpoint at which the population is fixed (nobody knew it in advance). Each
case's ticket is ``SHA-256(seed ‖ 0x0A ‖ root ‖ case number)`` (UTF-8; the seed may not hold a
line break, the root is 32 bytes, so the message parses one way only):

- ``simple``: the n cases with the smallest tickets; inclusion probability n/N each.
- ``stratified`` (by department or item kind): allocation proportional (largest remainder) or
  equal (capped at each stratum's size, the rest passed on), then the smallest tickets within
  each stratum; inclusion probability n_h/N_h.
- ``weighted`` (risk): each case's weight is 1 plus the configured weight of each risk it shows
  (warnings, anomalies, late entries, fees); inclusion probabilities π_i = min(1, c·w_i), c such
  that Σπ = n exactly (fractions), then systematic πps sampling over the cases in ticket order
  with a start u = SHA-256(seed ‖ 0x0A ‖ root ‖ "start") / 2^256: each case is drawn with
  probability exactly π_i, so the Horvitz–Thompson estimate (1/N) Σ y_i/π_i of the population's
  deviation rate is unbiased.

**Double random (双随机).** For each drawn case the reviewers are the k eligible officers with the
smallest ``SHA-256(seed ‖ 0x0A ‖ root ‖ "reviewer" ‖ 0x00 ‖ case number ‖ 0x00 ‖ reviewer)``; a
reviewer is never eligible for a case of a department they belong to or declared a conflict
with (回避), nor for a case they declared a conflict with.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from domain.errors import Conflict, InvalidInput

MAX_SAMPLE = 20_000
METHODS = ("simple", "stratified", "weighted")
STRATA_KEYS = ("department", "item_kind")
ALLOCATIONS = ("proportional", "equal")
RISKS = ("warnings", "anomalies", "late_entry", "fees")
DEFAULT_WEIGHTS: dict[str, Fraction] = {"warnings": Fraction(3), "anomalies": Fraction(2), "late_entry": Fraction(2),
                                        "fees": Fraction(1)}
TICKET = "sha256(seed ‖ 0x0A ‖ root ‖ case_no)"


class InvalidSampling(InvalidInput):
    code = "invalid_sampling"


class RecusalImpossible(Conflict):
    code = "recusal_impossible"


def rate(raw: object, what: str, *, low_open: bool = True, allow_zero: bool = False) -> Fraction:
    """A rate given as a fraction of one (``0.05``) or a string (``"0.05"``, ``"5%"``), exactly."""
    if isinstance(raw, bool) or raw is None:
        raise InvalidSampling(f"{what} must be a number between 0 and 1", code="missing_field" if raw is None else "invalid_sampling")
    try:
        if isinstance(raw, str) and raw.strip().endswith("%"):
            value = Fraction(raw.strip()[:-1].strip()) / 100
        elif isinstance(raw, float):
            value = Fraction(repr(raw))  # 0.05 as typed, not its binary approximation
        else:
            value = Fraction(raw)  # type: ignore[arg-type]
    except (ValueError, TypeError, ZeroDivisionError):
        raise InvalidSampling(f"{what} must be a number between 0 and 1") from None
    if not (Fraction(0) <= value < 1) or (value == 0 and not allow_zero):
        raise InvalidSampling(f"{what} must be {'at least 0' if allow_zero else 'above 0'} and below 1 (got {raw})")
    return value


# -- binomial tails ------------------------------------------------------------------------------

def _log_pmf(n: int, i: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if i == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if i == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p))


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p): small tails summed in log space, large ones as the
    incomplete beta I_{1-p}(n-k, k+1) (no overflow, constant work for any n)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k > 50:
        return min(1.0, max(0.0, _betainc(n - k, k + 1, 1.0 - p)))
    logs = [_log_pmf(n, i, p) for i in range(k + 1)]
    top = max(logs)
    if top == -math.inf:
        return 0.0
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


def binomial_cdf_exact(k: int, n: int, p: Fraction) -> Fraction:
    q = 1 - p
    return sum((Fraction(math.comb(n, i)) * p**i * q ** (n - i) for i in range(min(k, n) + 1)), Fraction(0))


def sample_size(confidence: Fraction, tolerable: Fraction, expected: Fraction = Fraction(0)) -> int:
    """The smallest n with P(X ≤ ⌈n·expected⌉; n, tolerable) ≤ 1 − confidence."""
    if expected >= tolerable:
        raise InvalidSampling("the expected deviation rate must be below the tolerable rate")
    risk = 1 - confidence
    risk_f, p_f = float(risk), float(tolerable)
    # Never fewer than the zero-deviation size; and refuse at once what would need too many cases
    # (the normal approximation, generously).
    z = 4.0
    gap = float(tolerable - expected)
    if (risk_f <= 0.0 or p_f <= 0.0 or gap <= 0.0 or z * z * p_f * (1 - p_f) / gap**2 > 4 * MAX_SAMPLE
            or math.log(risk_f) / math.log1p(-p_f) > MAX_SAMPLE):
        raise InvalidSampling(f"no sample of at most {MAX_SAMPLE} cases reaches that confidence")
    start = max(1, math.floor(math.log(risk_f) / math.log1p(-p_f)) - 1)
    for n in range(start, MAX_SAMPLE + 1):
        k = math.ceil(n * expected)
        if k >= n:
            continue
        tail = binomial_cdf(k, n, p_f)
        if abs(tail - risk_f) <= 1e-9 * risk_f and n <= 5000:
            if binomial_cdf_exact(k, n, tolerable) <= risk:
                return n
        elif tail <= risk_f:
            return n
    raise InvalidSampling(f"no sample of at most {MAX_SAMPLE} cases reaches that confidence")


def upper_limit(deviations: int, n: int, confidence: Fraction | float) -> float:
    """The upper deviation limit at ``confidence`` (one-sided, Clopper–Pearson): the rate p with
    P(X ≤ deviations; n, p) = 1 − confidence."""
    if n <= 0:
        raise InvalidSampling("no sample to evaluate")
    if deviations >= n:
        return 1.0
    risk = 1.0 - float(confidence)
    lo, hi = 0.0, 1.0
    for _ in range(200):  # the tail falls as p grows: bisect to the float's precision
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if binomial_cdf(deviations, n, mid) > risk:
            lo = mid
        else:
            hi = mid
    return hi


# -- tickets -------------------------------------------------------------------------------------

def check_seed(seed: object) -> str:
    if not isinstance(seed, str) or not seed.strip():
        raise InvalidInput("seed must be a non-empty string (announced by the commission before the draw)",
                           code="missing_field" if seed is None else "invalid_field")
    if len(seed) > 500 or any(ord(c) < 0x20 or c == "\x7f" for c in seed):
        raise InvalidInput("seed is at most 500 printable characters (no line breaks)", code="invalid_field")
    return seed


def ticket(seed: str, root: bytes, *parts: str) -> bytes:
    h = hashlib.sha256(seed.encode() + b"\n" + root)
    h.update(b"\x00".join(p.encode() for p in parts))
    return h.digest()


def population_digest(case_nos: Sequence[str]) -> str:
    """SHA-256 over the ordered case numbers, one a line."""
    h = hashlib.sha256()
    for c in case_nos:
        h.update(c.encode() + b"\n")
    return h.hexdigest()


# -- designs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """A case of the population, with what the designs need to know about it."""

    case_no: str
    department: str
    item_code: str = ""
    item_kind: str = ""
    risks: frozenset[str] = frozenset()  # of RISKS

    def stratum(self, key: str) -> str:
        return self.department if key == "department" else self.item_kind


@dataclass(frozen=True)
class Design:
    method: str = "simple"
    stratify_by: str | None = None
    allocation: str = "proportional"
    weights: Mapping[str, Fraction] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @classmethod
    def parse(cls, raw: object) -> Design:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidSampling("design must be an object")
        unknown = set(raw) - {"method", "stratify_by", "allocation", "weights"}
        if unknown:
            raise InvalidSampling(f"unknown design fields: {', '.join(sorted(unknown))}")
        method = raw.get("method", "simple")
        if method not in METHODS:
            raise InvalidSampling(f"design method is one of {', '.join(METHODS)}")
        by = raw.get("stratify_by")
        allocation = raw.get("allocation", "proportional")
        if method == "stratified":
            by = by or "department"
            if by not in STRATA_KEYS:
                raise InvalidSampling(f"stratify_by is one of {', '.join(STRATA_KEYS)}")
            if allocation not in ALLOCATIONS:
                raise InvalidSampling(f"allocation is one of {', '.join(ALLOCATIONS)}")
        elif by is not None:
            raise InvalidSampling("stratify_by goes with the stratified method")
        weights = dict(DEFAULT_WEIGHTS)
        if raw.get("weights") is not None:
            if method != "weighted" or not isinstance(raw["weights"], dict):
                raise InvalidSampling("weights (an object) go with the weighted method")
            for k, v in raw["weights"].items():
                if k not in RISKS:
                    raise InvalidSampling(f"weights are given for {', '.join(RISKS)}")
                try:
                    w = Fraction(repr(v)) if isinstance(v, float) else Fraction(v)
                except (ValueError, TypeError):
                    raise InvalidSampling(f"weight of {k} must be a number") from None
                if isinstance(v, bool) or w < 0 or w > 1000:
                    raise InvalidSampling(f"weight of {k} must be between 0 and 1000")
                weights[k] = w
        return cls(method, by if method == "stratified" else None, allocation if method == "stratified" else "proportional",
                   weights)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.method == "stratified":
            out.update(stratify_by=self.stratify_by, allocation=self.allocation)
        if self.method == "weighted":
            out["weights"] = {k: _num(v) for k, v in sorted(self.weights.items())}
        return out

    def weight(self, m: Member) -> Fraction:
        return 1 + sum((self.weights.get(r, Fraction(0)) for r in m.risks), Fraction(0))


def _num(x: Fraction) -> int | str:
    return int(x) if x.denominator == 1 else str(x)


@dataclass(frozen=True)
class Selection:
    """A drawn sample: the cases in draw order, each with its inclusion probability (exact)."""

    method: str
    sample: tuple[str, ...]
    probabilities: Mapping[str, Fraction]
    strata: tuple[dict[str, Any], ...] = ()  # per stratum: key, population, n
    total: Fraction = Fraction(0)  # Σ π over the whole population: the sample size, exactly

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "sample": list(self.sample),
                "probabilities": {c: str(self.probabilities[c]) for c in self.sample},
                "strata": [dict(s) for s in self.strata], "total": str(self.total)}


def allocate(sizes: Mapping[str, int], n: int, allocation: str) -> dict[str, int]:
    """Per-stratum sample sizes adding up to n (each at most its stratum's size)."""
    total = sum(sizes.values())
    if n > total:
        raise InvalidSampling(f"a sample of {n} from a population of {total}")
    keys = sorted(sizes)
    if allocation == "proportional":
        exact = {k: Fraction(n * sizes[k], total) for k in keys}
        out = {k: math.floor(exact[k]) for k in keys}
        left = n - sum(out.values())
        # largest remainder first; ties by the larger stratum, then by key
        for k in sorted(keys, key=lambda k: (-(exact[k] - out[k]), -sizes[k], k))[:left]:
            out[k] += 1
        return out
    out = {k: 0 for k in keys}
    left = n
    while left:
        room = [k for k in keys if out[k] < sizes[k]]
        share, extra = divmod(left, len(room))
        for i, k in enumerate(room):
            give = min(sizes[k] - out[k], share + (1 if i < extra else 0))
            out[k] += give
            left -= give
    return out


def draw(seed: str, root: bytes, population: Sequence[Member], n: int, design: Design) -> Selection:
    """The sample: a pure function of (seed, root, the ordered population, n, the design)."""
    check_seed(seed)
    if not population:
        raise InvalidSampling("the population is empty", code="empty_population")
    if not 1 <= n <= len(population):
        raise InvalidSampling(f"a sample of {n} from a population of {len(population)}")
    if len({m.case_no for m in population}) != len(population):
        raise InvalidSampling("a case appears twice in the population")
    tickets = {m.case_no: ticket(seed, root, m.case_no) for m in population}
    ordered = sorted(population, key=lambda m: (tickets[m.case_no], m.case_no))
    if design.method == "simple":
        chosen = [m.case_no for m in ordered[:n]]
        p = Fraction(n, len(population))
        return Selection("simple", tuple(chosen), {c: p for c in chosen}, (), p * len(population))
    if design.method == "stratified":
        assert design.stratify_by is not None
        sizes: dict[str, int] = {}
        for m in population:
            sizes[m.stratum(design.stratify_by)] = sizes.get(m.stratum(design.stratify_by), 0) + 1
        alloc = allocate(sizes, n, design.allocation)
        chosen, probs, taken = [], {}, {k: 0 for k in sizes}
        for m in ordered:
            k = m.stratum(design.stratify_by)
            if taken[k] < alloc[k]:
                taken[k] += 1
                chosen.append(m.case_no)
                probs[m.case_no] = Fraction(alloc[k], sizes[k])
        strata = tuple({"key": k, "population": sizes[k], "n": alloc[k]} for k in sorted(sizes))
        total = sum((Fraction(alloc[k], sizes[k]) * sizes[k] for k in sizes), Fraction(0))
        return Selection("stratified", tuple(chosen), probs, strata, total)
    # weighted: πps with exact inclusion probabilities, systematic over the ticket order
    pis = inclusion_probabilities([design.weight(m) for m in ordered], n)
    u = Fraction(int.from_bytes(ticket(seed, root, "start"), "big"), 2**256)
    chosen, probs = [], {}
    cumulative, j = Fraction(0), 0
    for m, pi in zip(ordered, pis):
        cumulative += pi
        while j < n and u + j < cumulative:  # the j-th point falls in this case's interval
            chosen.append(m.case_no)
            probs[m.case_no] = pi
            j += 1
    assert j == n and len(set(chosen)) == n, "π ≤ 1 keeps each case to one point"
    return Selection("weighted", tuple(chosen), probs, (), sum(pis, Fraction(0)))


def inclusion_probabilities(weights: Sequence[Fraction], n: int) -> list[Fraction]:
    """π_i = min(1, c·w_i) with Σπ = n exactly (the cases that would exceed 1 are taken for sure)."""
    if any(w <= 0 for w in weights):
        raise InvalidSampling("weights must be positive")
    certain: set[int] = set()  # the cases that would exceed 1: taken for sure
    while True:
        rest = [i for i in range(len(weights)) if i not in certain]
        if not rest or len(certain) == n:
            c = Fraction(0)
            break
        c = Fraction(n - len(certain)) / sum((weights[i] for i in rest), Fraction(0))
        over = {i for i in rest if c * weights[i] >= 1}  # at most n - len(certain) of them
        if not over:
            break
        certain |= over
    return [Fraction(1) if i in certain else c * weights[i] for i in range(len(weights))]


def ht_rate(deviating: Mapping[str, bool], probabilities: Mapping[str, Fraction], population: int) -> Fraction:
    """Horvitz–Thompson estimate of the population's deviation rate: (1/N) Σ y_i / π_i."""
    if population <= 0:
        raise InvalidSampling("empty population")
    return sum((Fraction(int(bool(y))) / probabilities[c] for c, y in deviating.items()), Fraction(0)) / population


# -- double random ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Reviewer:
    id: str
    name: str = ""
    departments: frozenset[str] = frozenset()  # where they belong: never reviews those
    conflicts: frozenset[str] = frozenset()  # declared conflicts: departments or case numbers

    def may_review(self, case_no: str, department: str) -> bool:
        return department not in self.departments and department not in self.conflicts and case_no not in self.conflicts

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "departments": sorted(self.departments),
                "conflicts": sorted(self.conflicts)}


def parse_pool(raw: object) -> list[Reviewer]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("pool must be a non-empty list of reviewers", code="missing_field" if raw is None else "invalid_field")
    out: list[Reviewer] = []
    for entry in raw:
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"].strip():
            raise InvalidInput("each reviewer is an object with an id (an officer key's id)", code="invalid_field")
        lists = {}
        for k in ("departments", "conflicts"):
            v = entry.get(k) or []
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise InvalidInput(f"a reviewer's {k} is a list of codes", code="invalid_field")
            lists[k] = frozenset(v)
        name = entry.get("name") or ""
        if not isinstance(name, str):
            raise InvalidInput("a reviewer's name is a string", code="invalid_field")
        out.append(Reviewer(entry["id"].strip(), name, lists["departments"], lists["conflicts"]))
    if len({r.id for r in out}) != len(out):
        raise InvalidInput("a reviewer appears twice in the pool", code="invalid_field")
    return out


def assign_reviewers(seed: str, root: bytes, cases: Sequence[tuple[str, str]], pool: Sequence[Reviewer],
                     per_case: int = 2) -> dict[str, list[str]]:
    """For each (case number, department): ``per_case`` reviewers drawn from the eligible ones."""
    if not 1 <= per_case <= 10:
        raise InvalidInput("per_case is 1 to 10", code="invalid_field")
    out: dict[str, list[str]] = {}
    for case_no, department in cases:
        eligible = [r for r in pool if r.may_review(case_no, department)]
        if len(eligible) < per_case:
            raise RecusalImpossible(
                f"case {case_no} ({department}) needs {per_case} reviewers; only {len(eligible)} of the pool may "
                "review it (recusal: own departments and declared conflicts)", case_no=case_no,
                department=department, eligible=len(eligible))
        ranked = sorted(eligible, key=lambda r: (ticket(seed, root, "reviewer", case_no, r.id), r.id))
        out[case_no] = [r.id for r in ranked[:per_case]]
    return out


def members_digest(members: Iterable[Member]) -> str:
    return population_digest([m.case_no for m in members])
