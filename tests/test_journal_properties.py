"""Property-based tests of the ask/tell journal: random sequences of ask, tell (valid, NaN,
external, duplicate, malformed), save, close and reopen never break its invariants: every told
value is on disk when ``tell`` returns, no trial is in two states, a reopened study asks exactly
the trials left RUNNING first, and bad input changes nothing."""

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bbo import load_optimizer
from bbo.optimizers import RandomOptimizer
from bbo.study import Journal, check_journal

pytestmark = pytest.mark.filterwarnings("ignore::bbo.optimizer.FailedTrialWarning")

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


class JournalMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.path = self.dir / "journal.db"
        self.opt = RandomOptimizer(domain={"name": "vector", "dim": 2}, batch_size=3, storage=self.path)
        self.trials = []  # model: [number] -> {"key", "object", "state", "value"}
        self.orphans = []  # numbers a reopened study must ask again first, in order

    def teardown(self):
        self.opt.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _key(self, x):
        return str(self.opt.domain.key(x))

    def _pending(self):
        return [i for i, t in enumerate(self.trials) if t["state"] == "RUNNING"]

    @rule(n=st.integers(1, 4))
    def ask(self, n):
        xs = self.opt.ask(n)
        assert len(xs) == n
        k = min(n, len(self.orphans))
        for x, number in zip(xs[:k], self.orphans[:k]):  # the RUNNING trials, asked again, first
            assert self._key(x) == self.trials[number]["key"]
        self.orphans = self.orphans[k:]
        for x in xs[k:]:
            self.trials.append({"key": self._key(x), "object": x, "state": "RUNNING", "value": None})

    def _tell(self, x, y):
        key = self._key(x)
        match = next((i for i in self._pending() if self.trials[i]["key"] == key), None)
        self.opt.tell(x, y)
        state = "COMPLETE" if y is not None and math.isfinite(y) else "FAIL"
        value = y if state == "COMPLETE" else None
        if match is None:  # never asked, or told already: an external observation
            self.trials.append({"key": key, "object": x, "state": state, "value": value})
        else:
            self.trials[match].update(state=state, value=value)
            if match in self.orphans:
                self.orphans.remove(match)

    @precondition(lambda self: self._pending())
    @rule(data=st.data(), y=values)
    def tell_asked(self, data, y):
        self._tell(self.trials[data.draw(st.sampled_from(self._pending()))]["object"], y)

    @precondition(lambda self: self._pending())
    @rule(data=st.data(), y=st.sampled_from([math.nan, math.inf, None]))
    def tell_failed(self, data, y):
        self._tell(self.trials[data.draw(st.sampled_from(self._pending()))]["object"], y)

    @rule(x=st.lists(values, min_size=2, max_size=2), y=values)
    def tell_external(self, x, y):
        self._tell(np.asarray(x, dtype=float), y)

    @precondition(lambda self: any(t["state"] != "RUNNING" for t in self.trials))
    @rule(data=st.data(), y=values)
    def tell_duplicate(self, data, y):
        told = [i for i, t in enumerate(self.trials) if t["state"] != "RUNNING"]
        self._tell(self.trials[data.draw(st.sampled_from(told))]["object"], y)

    @rule(bad=st.sampled_from(["length", "value", "object", "metadata"]))
    def tell_malformed(self, bad):
        x = np.zeros(2)
        args = {"length": ([x, x], [1.0]), "value": ([x], ["high"]), "object": ([np.zeros(3)], [1.0]),
                "metadata": ([x], [1.0])}[bad]
        with pytest.raises(ValueError):
            self.opt.tell(*args, metadata=[{"a": object()}] if bad == "metadata" else None)

    @rule()
    def save(self):
        assert self.opt.save() == self.path

    @rule()
    def reopen(self):
        self.opt.close()
        self.opt = load_optimizer(self.path)
        self.orphans = self._pending()

    @invariant()
    def journal_matches_what_was_told(self):
        journal = Journal(self.path)  # a second connection: what is on disk
        try:
            rows = journal.trials()
        finally:
            journal.close()
        assert [(t.number, t.key, t.state.value, t.value) for t in rows] == [
            (i, t["key"], t["state"], t["value"]) for i, t in enumerate(self.trials)]
        assert self.opt.n_told == sum(t["state"] != "RUNNING" for t in self.trials)
        assert check_journal(self.path) == []


TestJournalMachine = JournalMachine.TestCase
TestJournalMachine.settings = settings(max_examples=40, stateful_step_count=20, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
