"""An integration's tests, run against deskd instead of a Zendesk sandbox (see conftest.py).
compat/run.sh runs them in CI, so this example stays true."""
from zenpy.lib.api_objects import User

FIXTURE = {
    "deskd_fixture": 1,
    "organizations": [{"id": 501, "name": "Acme"}],
    "users": [
        {"id": 1001, "name": "Ann Agent", "role": "agent", "email": "ann@acme.test",
         "organization_id": 501},
        {"id": 1002, "name": "Ed End", "email": "ed@acme.test", "tags": ["vip"]},
    ],
}


def sync_user(zendesk, name, email):
    """The code under test: create or update a user by email."""
    return zendesk.users.create_or_update(User(name=name, email=email))


def test_each_test_starts_from_an_empty_account(zendesk):
    # Only the admin is there, whatever an earlier test created.
    assert [u.email for u in zendesk.users()] == [zendesk.users.me().email]
    sync_user(zendesk, "Temp", "temp@example.org")


def test_a_seeded_fixture_is_what_the_client_sees(deskd, zendesk):
    deskd.seed(FIXTURE)
    ann = zendesk.users(id=1001)
    assert (ann.name, ann.role, ann.organization_id) == ("Ann Agent", "agent", 501)
    updated = sync_user(zendesk, "Ed Updated", "ed@acme.test")
    assert updated.id == 1002 and updated.tags == ["vip"]
    # The journal shows what the code sent.
    calls = deskd.requests("method=POST&path=/api/v2/users/create_or_update*")
    assert len(calls) == 1
    assert calls[0]["request"]["body"]["user"]["email"] == "ed@acme.test"
    assert deskd.token not in str(calls[0]), "credentials are redacted in the journal"


def test_the_client_retries_after_a_429(deskd, zendesk):
    deskd.seed(FIXTURE)
    deskd.fault({"method": "GET", "path": "/api/v2/users/1001*", "times": 1,
                 "response": {"status": 429, "retry_after": 1}})
    assert zendesk.users(id=1001).name == "Ann Agent"
    statuses = [r["response"]["status"] for r in deskd.requests("path=/api/v2/users/1001*")]
    assert statuses == [429, 200], statuses
