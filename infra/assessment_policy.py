"""The assessment policy (年终考核: score weights, 优秀 quota, grade thresholds) from the environment:
``ESUP_ASSESSMENT_POLICY``, a JSON object of ``domain.assessment.AssessmentPolicy``'s keys (those not
given keep their documented defaults), e.g. ``{"excellent_share": 0.15, "weights": {"anomaly": -2}}``."""

from __future__ import annotations

import json
import os
from typing import Mapping

from domain.assessment import AssessmentPolicy
from domain.errors import InvalidInput

ENV_VAR = "ESUP_ASSESSMENT_POLICY"


def assessment_policy_from_env(environ: Mapping[str, str] | None = None) -> AssessmentPolicy:
    raw = (os.environ if environ is None else environ).get(ENV_VAR)
    if not raw:
        return AssessmentPolicy()
    try:
        return AssessmentPolicy.parse(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{ENV_VAR} is not valid JSON: {exc}", code="invalid_policy") from None
