"""The results file is replaced atomically and is readable like any file the user writes."""

import json
import os

import pytest

from leaderboard.results import atomic_write_json, load_results


def test_atomic_write_keeps_the_old_file_on_failure_and_uses_the_umask(tmp_path):
    path = tmp_path / "out" / "results.json"
    atomic_write_json(path, {"a": 1})
    assert load_results(path) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600

    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})  # fails half-way through json.dump
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left behind
