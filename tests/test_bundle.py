"""The files of an experiment submitted at several times (a resume, a growing experiment): one bundle
keeps every path, the later submission's package winning where both ship one."""

from __future__ import annotations

from evalhub.execution.bundle import merged


def test_a_later_submission_adds_to_the_files_and_wins_where_both_ship_one() -> None:
    first = {"files": {"/data/a.jsonl": {"uri": "gcs://_ray_pkg_1.zip", "name": "a.jsonl"},
                       "/code": {"uri": "gcs://_ray_pkg_2.zip", "name": "code"}},
             "kept": ["/weights/huge"]}  # fmt: skip
    later = {"files": {"/code": {"uri": "gcs://_ray_pkg_3.zip", "name": "code"},
                       "/weights/huge": {"uri": "gcs://_ray_pkg_4.zip", "name": "huge"}},
             "kept": ["/other/huge"]}  # fmt: skip
    both = merged(first, later)
    assert both["files"] == {
        "/data/a.jsonl": {"uri": "gcs://_ray_pkg_1.zip", "name": "a.jsonl"},
        "/code": {"uri": "gcs://_ray_pkg_3.zip", "name": "code"},
        "/weights/huge": {"uri": "gcs://_ray_pkg_4.zip", "name": "huge"},
    }
    assert both["kept"] == ["/other/huge"]  # shipped now, so no longer kept back
    assert merged(None, first) == merged(first, None) == first
