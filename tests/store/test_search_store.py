"""Hyperparameter searches in the store, on SQLite and PostgreSQL: saved through the
engine's batches (``SaveSearch``, an upsert: the last snapshot wins), read back with their
JSON intact, listed per owner newest first, and the running ones loaded after a restart."""

from __future__ import annotations

from jupyter_orch.core.ids import new_id
from jupyter_orch.core.records import SaveSearch, SearchRow
from jupyter_orch.core.search import SearchConfig, SearchState
from jupyter_orch.store import SqlStore


def search(owner: str = "ann", state: str = "running") -> SearchRow:
    search_state = SearchState(
        SearchConfig(metric="loss", max_trials=3, max_t=9), {"lr": {"uniform": [0, 1]}}
    )
    search_state.next_trials(0)
    return SearchRow(
        id=new_id(),
        name="tune",
        owner=owner,
        state=state,
        request={"config": search_state.config.to_dict(), "space": search_state.space.to_dict(), "task": {}},
        search_state=search_state.to_dict(),
        payload_key="searches/xx/abc",
        created_at=1.0,
        updated_at=2.0,
    )


def test_a_search_is_saved_updated_and_read_back(store: SqlStore) -> None:
    row = search()
    store.apply([SaveSearch(row)])
    assert store.get_search(row.id) == row
    rebuilt = SearchState.from_dict(store.get_search(row.id).search_state)  # type: ignore[union-attr]
    assert rebuilt.counts()["planned"] == 3
    later = SearchRow(**{**row.__dict__, "state": "succeeded", "ended_at": 3.0, "updated_at": 3.0})
    store.apply([SaveSearch(row), SaveSearch(later)])  # one batch: the last snapshot wins
    assert store.get_search(row.id) == later
    assert store.get_search(new_id()) is None


def test_searches_are_listed_per_owner_and_the_running_ones_loaded(store: SqlStore) -> None:
    a1, b1, a2 = search("ann"), search("bob"), search("ann", "cancelled")
    store.apply([SaveSearch(a1), SaveSearch(b1), SaveSearch(a2)])
    assert [s.id for s in store.list_searches(owner="ann")] == [a2.id, a1.id]
    assert [s.id for s in store.list_searches()] == [a2.id, b1.id, a1.id]
    assert [s.id for s in store.list_searches(owner="ann", states=["running"])] == [a1.id]
    assert [s.id for s in store.load_active_searches()] == [a1.id, b1.id]
