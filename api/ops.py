"""Operations: is the system well, and where does each view stand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import EsupDep

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz(esup: EsupDep) -> Any:
    views = esup.runner.health()
    alarms = [{"code": "view_stopped", "view": f["view"], "position": f["position"],
               "detail": f"视图 {f['view']} 无法处理日志位置 {f['position']} 的事件，已停在此处（其他视图照常）：{f['error']}"}
              for f in views["faults"]]
    return {"status": "degraded" if alarms else "ok", "store": esup.settings.store,
            "ledger_position": esup.ledger.recorder.max_notification_id(), "alarms": alarms,
            "calendar": esup.calendars.status(),  # next year's schedule missing from 1 Nov
            "views": views["views"]}
