"""The outbox and the lock: rows survive until delivered; one cycle per state directory."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ai_job_tester.domain.rows import LeaderboardRow
from ai_job_tester.errors import CycleLocked, StateDirError
from ai_job_tester.storage.outbox import Outbox
from ai_job_tester.storage.state import CycleLock, default_state_dir, prepare_state_dir


def row(model: str) -> LeaderboardRow:
    return LeaderboardRow(
        region="FRA", orchestrator="0xa", success_rate=1.0, round_trip_time=0.5, errors=[], timestamp=1,
        model=model, pipeline="Text to image", model_is_warm=True, input_parameters="{}", response_payload="{}",
    )  # fmt: skip


def test_rows_wait_oldest_first_until_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for model in ("first", "second", "third"):
        outbox.put(row(model))
    pending = list(outbox.pending())
    assert [p.row.model for p in pending] == ["first", "second", "third"]
    outbox.delivered(pending[0])
    outbox.close()
    again = Outbox(tmp_path)  # as the next run sees it
    assert [p.row.model for p in again.pending()] == ["second", "third"]
    again.close()
    # Opening compacted the journal to the two waiting rows.
    assert len((tmp_path / "outbox.jsonl").read_bytes().splitlines()) == 2


def test_a_rejected_row_is_kept_with_the_servers_message(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.reject(outbox.put(row("m")), "HTTP 400: invalid region")
    assert outbox.count() == 0 and len(list((tmp_path / "rejected").glob("*.json"))) == 1
    document = json.loads(next((tmp_path / "rejected").glob("*.json")).read_text())
    assert document["message"] == "HTTP 400: invalid region" and document["row"]["model"] == "m"
    outbox.close()
    assert Outbox(tmp_path).count() == 0


def test_a_line_torn_by_a_crash_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put(row("good"))
    outbox.close()
    with (tmp_path / "outbox.jsonl").open("ab") as journal:
        journal.write(b'{"id":"x","row":{"region":"FR')  # the process died mid-write
    assert [p.row.model for p in Outbox(tmp_path).pending()] == ["good"]


def test_a_lost_answer_means_one_more_post_not_a_lost_row(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    parcel = outbox.put(row("m"))
    journal = (tmp_path / "outbox.jsonl").read_bytes()
    outbox.delivered(parcel)
    outbox.close()
    (tmp_path / "outbox.jsonl").write_bytes(journal)  # the unsynced answer line never reached the disk
    assert [p.row.model for p in Outbox(tmp_path).pending()] == ["m"]


def test_outbox_files_are_private_to_the_user(tmp_path: Path) -> None:
    Outbox(tmp_path).put(row("m"))
    assert stat.S_IMODE((tmp_path / "outbox.jsonl").stat().st_mode) == 0o600


def test_the_lock_admits_one_cycle_and_names_the_holder(tmp_path: Path) -> None:
    with CycleLock(tmp_path):
        with pytest.raises(CycleLocked, match=f"another cycle \\(pid {os.getpid()}\\) is running") as caught:
            CycleLock(tmp_path).acquire()
        assert caught.value.exit_code == 5
    with CycleLock(tmp_path):  # released on exit
        pass


def test_default_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "ai-job-tester"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / ".local" / "state" / "ai-job-tester"


def test_an_unusable_state_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateDirError, match=r"cannot create the state directory .*; set stateDir or --state-dir"):
        prepare_state_dir(blocker / "state")


def test_a_stored_row_this_version_cannot_post_is_set_aside_not_dropped(tmp_path: Path) -> None:
    line = {"id": "1-a", "row": {**row("m").model_dump(mode="json"), "orchestrator": "0x" + "b" * 60}}
    (tmp_path / "outbox.jsonl").write_text(json.dumps(line) + "\n")
    with Outbox(tmp_path) as outbox:
        assert outbox.count() == 0
    document = json.loads((tmp_path / "rejected" / "1-a.json").read_text())
    assert document["message"].startswith("could not be read back") and document["row"]["model"] == "m"


@pytest.mark.parametrize("journal", ["outbox.jsonl", "held.jsonl"])
def test_a_journal_that_is_a_directory_is_one_clear_error(tmp_path: Path, journal: str) -> None:
    (tmp_path / journal).mkdir()
    with pytest.raises(StateDirError, match=f"{journal} is not a regular file; move it out of the way"):
        Outbox(tmp_path, journal)


def test_a_lock_file_that_cannot_be_opened_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lock").mkdir()  # as unopenable as another user's file, even for root
    with pytest.raises(StateDirError, match=r"cannot open the lock file .* remove it or give it to the user"):
        CycleLock(tmp_path).acquire()


def test_a_rejected_folder_that_cannot_be_made_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "rejected").write_text("not a folder")
    with pytest.raises(StateDirError, match=r"cannot use .*rejected \("):
        Outbox(tmp_path)


def test_a_journal_id_never_names_a_file_outside_rejected(tmp_path: Path) -> None:
    line = {"id": "../../escape", "row": {**row("m").model_dump(mode="json"), "orchestrator": "0x" + "b" * 60}}
    (tmp_path / "outbox.jsonl").write_text(json.dumps(line) + "\n")
    with Outbox(tmp_path):
        pass
    assert not (tmp_path.parent / "escape.json").exists()
    [kept] = (tmp_path / "rejected").iterdir()
    assert json.loads(kept.read_text())["row"]["model"] == "m"


@pytest.mark.parametrize("document", ['{"row": "abc"}', "[1, 2]", '{"row": [1]}', "{"])
def test_outbox_lists_a_garbled_rejected_file_without_a_traceback(tmp_path: Path, document: str) -> None:
    from ai_job_tester.storage.inventory import read_inventory

    (tmp_path / "rejected").mkdir()
    (tmp_path / "rejected" / "x.json").write_text(document)
    listed = read_inventory(tmp_path).rejected
    assert all(entry.row == {} for entry in listed)


def test_an_archive_that_is_a_directory_is_one_clear_error(tmp_path: Path) -> None:
    from ai_job_tester.storage.inventory import read_inventory

    (tmp_path / "archive.jsonl").mkdir()
    with pytest.raises(StateDirError, match=r"cannot read .*archive.jsonl .*move it aside"):
        read_inventory(tmp_path)
