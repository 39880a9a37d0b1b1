"""esup audit export / verify-export: a case's history with proofs, checked with no database."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

from api.cli import main as cli
from domain.access import Role
from domain.export_check import check_export
from infra.settings import Settings
from projections import access_log
from projections import merkle as tree_view
from services.audit_export import export_case
from tools.tamper_trial import build

WHO = SimpleNamespace(key="k1", role=Role.OFFICER)


def test_an_export_verifies_offline_and_any_change_to_it_fails(store_settings):
    esup = build(store_settings, cases=12)
    try:
        case_no = sorted(tree_view.case_numbers(esup.views).values())[3]
        doc = export_case(esup, case_no, WHO, remote="10.0.0.7")
        esup.runner.catch_up()
        logged = access_log.entries(esup.views, case_no=case_no)
        other = export_case(esup, sorted(tree_view.case_numbers(esup.views).values())[4], WHO)
    finally:
        esup.close()
    assert [(e["action"], e["key"], e["remote"]) for e in logged] == [("export", "k1", "10.0.0.7")]
    assert len(doc["events"]) >= 2 and check_export(doc) == []
    assert check_export(json.loads(json.dumps(doc))) == []  # as read back from the file

    def broken(change):
        d = copy.deepcopy(doc)
        change(d)
        return check_export(d)

    assert broken(lambda d: d["events"][1]["body"]["actor"].update(staff="X"))  # content edited
    assert broken(lambda d: d["events"].pop(1))  # an event left out
    assert broken(lambda d: d["events"].reverse())  # reordered
    assert broken(lambda d: d["events"][0]["proof"].__setitem__(0, d["events"][0]["proof"][-1][::-1]))
    assert broken(lambda d: d["events"][0].update(leaf_index=d["events"][0]["leaf_index"] + 1))
    size = doc["checkpoint"].split("\n")[1]
    assert broken(lambda d: d.update(checkpoint=d["checkpoint"].replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)))
    assert broken(lambda d: d.update(case_no="NOPE"))
    # Another district's key (the file's own replaced) does not verify the checkpoint.
    assert broken(lambda d: d.update(key=other["key"].replace("esup.cdgx", "esup.other")))
    assert check_export(doc, trusted_key=other["key"]) == []  # the same district's key


def test_the_cli_exports_and_verifies_with_no_database(tmp_path, capsys):
    settings = Settings(data_dir=tmp_path / "data")
    esup = build(settings, cases=5)
    case_no = sorted(tree_view.case_numbers(esup.views).values())[0]
    esup.close()
    assert cli(["--data-dir", str(settings.data_dir), "audit", "checkpoint"]) == 0
    assert capsys.readouterr().out.startswith("esup.cdgx/ledger\n")
    out = tmp_path / "case.json"
    assert cli(["--data-dir", str(settings.data_dir), "audit", "export", case_no, "-o", str(out)]) == 0
    shutil.rmtree(settings.data_dir)  # no store left at all
    done = subprocess.run([sys.executable, "-m", "api.cli", "--data-dir", str(tmp_path / "none"), "audit",
                           "verify-export", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "verified" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "none").exists()  # nothing was opened or created
    doc = json.loads(out.read_text())
    doc["events"][0]["body"]["occurred_at"] = doc["events"][0]["body"]["occurred_at"].replace("T0", "T1", 1)
    out.write_text(json.dumps(doc))
    assert cli(["audit", "verify-export", str(out)]) == 1
    assert "does NOT verify" in capsys.readouterr().out
