"""Who may see and change what (``jupyter_orch.core.access``): deny by default; rights only
from JupyterHub's scopes or its admin flag."""

from __future__ import annotations

import pytest

from jupyter_orch.core.access import SCOPE_ADMIN, SCOPE_READ_ALL, Identity
from jupyter_orch.core.errors import Forbidden


def test_a_user_reads_and_changes_only_their_own() -> None:
    bob = Identity("bob")
    assert bob.may_read("bob") and bob.may_change("bob")
    assert not bob.may_read("alice") and not bob.may_change("alice")
    assert bob.read_filter() == "bob" and bob.change_filter() == "bob"
    assert bob.listed_owner(None) == "bob" and bob.listed_owner("bob") == "bob"
    for other in ("alice", "*"):
        with pytest.raises(Forbidden, match=SCOPE_READ_ALL) as info:
            bob.listed_owner(other)
        assert info.value.field == "owner"
    with pytest.raises(Forbidden, match=SCOPE_ADMIN):
        bob.require_admin("a token for shared workers")


def test_read_all_reads_everyones_but_changes_only_its_own() -> None:
    carol = Identity("carol", scopes=frozenset({SCOPE_READ_ALL}))
    assert carol.may_read("alice") and not carol.may_change("alice")
    assert carol.read_filter() is None and carol.change_filter() == "carol"
    assert carol.listed_owner("alice") == "alice" and carol.listed_owner("*") is None
    assert carol.listed_owner(None) == "carol"  # by default, one's own
    with pytest.raises(Forbidden):
        carol.require_admin("cancelling another user's task")


@pytest.mark.parametrize(
    "identity", [Identity("dana", scopes=frozenset({SCOPE_ADMIN})), Identity("hubadmin", admin=True)]
)
def test_an_admin_by_scope_or_by_the_hub_reads_and_changes_everyones(identity: Identity) -> None:
    assert identity.is_admin and identity.reads_all
    assert identity.may_change("alice") and identity.change_filter() is None
    identity.require_admin("a token for shared workers")


def test_an_identity_from_a_hub_user_model() -> None:
    model = {
        "name": "alice",
        "admin": False,
        "groups": ["ml-team", 3],
        "scopes": ["access:servers!user=alice", SCOPE_READ_ALL],
    }
    alice = Identity.from_hub_model(model)
    assert alice.name == "alice" and alice.groups == frozenset({"ml-team"})
    assert alice.reads_all and not alice.is_admin
    # only a real true makes an admin; odd shapes give no rights
    assert not Identity.from_hub_model({"name": "x", "admin": "yes", "scopes": "custom:orch:admin"}).is_admin
