"""The trial journal: transactions, persistence, dataframe."""

import pytest

from bbo.study import Journal, TrialState, TrialUpdate, trials_dataframe


def test_running_then_complete_persists(tmp_path):
    path = tmp_path / "j.db"
    j = Journal(path)
    numbers = j.add_running(["CCO", "CCN"], ["CCO", "CCN"], round=0, optimizer="t")
    assert numbers == [0, 1]
    j.finish([TrialUpdate(0, "CCO", "CCO", 1.5, TrialState.COMPLETE, 0)], "t")
    j.close()
    again = Journal(path)
    trials = again.trials()
    assert [(t.number, t.state, t.value) for t in trials] == [
        (0, TrialState.COMPLETE, 1.5), (1, TrialState.RUNNING, None)
    ]
    assert trials[0].completed is not None and trials[1].completed is None
    assert again.count(TrialState.RUNNING) == 1


def test_finish_is_all_or_nothing(tmp_path):
    j = Journal(tmp_path / "j.db")
    j.add_running(["A"], ["A"], round=0, optimizer="t")
    bad = [TrialUpdate(0, "A", "A", 1.0, TrialState.COMPLETE, 0), TrialUpdate(7, "B", "B", 2.0, TrialState.COMPLETE, 0)]
    with pytest.raises(RuntimeError, match="trial 7 is not RUNNING"):
        j.finish(bad, "t")
    assert j.trials()[0].state is TrialState.RUNNING  # the first update was rolled back
    assert j.count() == 1


def test_external_trials_get_new_numbers_and_meta_roundtrips(tmp_path):
    j = Journal(tmp_path / "j.db")
    j.add_running(["A"], ["A"], round=0, optimizer="t")
    numbers = j.finish([TrialUpdate(None, "X", "X", 3.0, TrialState.COMPLETE, 0)], "t")
    assert numbers == [1]
    assert j.trials()[1].source.value == "external"
    j.set_meta("cfg", {"a": [1, 2]})
    assert j.get_meta("cfg") == {"a": [1, 2]}
    assert j.get_meta("missing", 5) == 5


def test_dataframe_has_one_row_per_trial(tmp_path):
    j = Journal(tmp_path / "j.db")
    j.add_running(["A", "B"], ["A", "B"], round=0, optimizer="t", metadata=[{"src": "x"}, {}])
    df = trials_dataframe(j.trials())
    assert list(df["number"]) == [0, 1]
    assert list(df["state"]) == ["RUNNING", "RUNNING"]
    assert df.loc[0, "meta_src"] == "x"
    assert trials_dataframe([]).columns.tolist()[:4] == ["number", "object", "key", "value"]


def test_a_journal_has_one_writing_process_and_a_killed_writer_frees_it(tmp_path):
    """Two processes appending to one journal would interleave their trials: the second writer gets
    a clear error naming the first, readers are not blocked, and SIGKILL releases the lock."""
    import os
    import signal
    import subprocess
    import sys

    from bbo.study import JournalInUseError

    path = tmp_path / "j.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from bbo.study import Journal; "
         f"j = Journal({str(path)!r}, exclusive=True); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(JournalInUseError, match=rf"j\.db is being written by another process \(pid {holder.pid}\)"):
            Journal(path, exclusive=True)
        Journal(path).close()  # a reader (reports) still opens it
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    first = Journal(path, exclusive=True)
    second = Journal(path, exclusive=True)  # one process may hold it twice (save, then load_optimizer)
    first.close()
    second.add_running(["CCO"], ["CCO"], round=0, optimizer="t")
    second.close()


def test_a_journal_that_cannot_be_used_keeps_no_lock(tmp_path):
    import fcntl

    path = tmp_path / "j.db"
    old = Journal(path)
    old.set_meta("schema_version", 99)
    old.close()
    with pytest.raises(ValueError, match="journal schema 99 is not supported"):
        Journal(path, exclusive=True)
    with open(tmp_path / "j.db.lock") as f:  # free: another holder can take it at once
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
