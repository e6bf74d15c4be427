import errno
import json
import os
import tempfile

import pytest

from mtl_runner.errors import RunError, UsageError
from mtl_runner.results import RunDirectory, atomic_write, new_run_id


def test_run_ids_have_time_name_and_random_suffix():
    run_id = new_run_id("quickstart")
    stamp, name, suffix = run_id[:15], run_id[16:-5], run_id[-4:]
    assert stamp[8] == "-" and name == "quickstart" and int(suffix, 16) >= 0


def test_create_never_reuses_a_folder(tmp_path):
    paths = {RunDirectory.create(tmp_path, "same").path for _ in range(20)}
    assert len(paths) == 20


def test_run_names_are_restricted(tmp_path):
    with pytest.raises(UsageError, match="letters, digits"):
        RunDirectory.create(tmp_path, "../escape")


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write(tmp_path / "f.txt", "one")
    atomic_write(tmp_path / "f.txt", "two")
    assert os.listdir(tmp_path) == ["f.txt"] and (tmp_path / "f.txt").read_text() == "two"


@pytest.mark.parametrize("code, words", [(errno.EROFS, "Read-only file system"),
                                         (errno.ENOSPC, "No space left on device")])
def test_unwritable_folder_or_full_disk_names_the_folder(tmp_path, monkeypatch, code, words):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(RunError) as caught:
        atomic_write(tmp_path / "f.txt", "x")
    assert caught.value.format_message() == f"cannot write in {tmp_path}: {words}"


def test_status_lifecycle(tmp_path):
    run = RunDirectory.create(tmp_path, "r")
    run.write_json("run.json", {"status": "running", "started_at": "2026-01-01T00:00:00+00:00"})
    info = run.finish("failed", "boom")
    on_disk = json.loads(run.file("run.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == "boom"
    assert on_disk["duration_s"] > 0 and info == on_disk
