import tests.integration.test_rebuild_served as t
t.CASES = 1500
import pytest

def test_dbg(store_settings, tmp_path, monkeypatch):
    import tests.integration.test_rebuild_served as m
    orig = m.comparable
    calls = []
    def cmp(v):
        calls.append(v)
        if len(calls) == 2:
            a, b = calls[0], calls[1]
            for k in a:
                if k == "anomalies": continue
                if a[k] != b[k]:
                    sa, sb = set(a[k]), set(b[k])
                    print("TABLE", k, "scratch-only", sorted(sa - sb, key=repr)[:3], "served-only", sorted(sb - sa, key=repr)[:3])
        return orig(v)
    monkeypatch.setattr(m, "comparable", cmp)
    m.test_rebuild_beside_a_served_district_under_load.__wrapped__(store_settings, tmp_path) if hasattr(m.test_rebuild_beside_a_served_district_under_load, "__wrapped__") else m.test_rebuild_beside_a_served_district_under_load(store_settings, tmp_path)
