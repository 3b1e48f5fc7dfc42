"""zenpy (from PyPI, unmodified) against a live deskd. Run by compat/run.sh.

Each scenario asserts on what the client returns. Prints `N passed, N failed` last.
"""
import os
import sys
import time
import traceback

from zenpy import Zenpy
from zenpy.lib.api_objects import Identity, Organization, OrganizationField, OrganizationMembership, User, UserField
from zenpy.lib.exception import APIException

EMAIL, TOKEN, TAG = os.environ["DESKD_EMAIL"], os.environ["DESKD_TOKEN"], os.environ["DESKD_TAG"]
# ZENPY_FORCE_NETLOC / ZENPY_FORCE_SCHEME point the client at deskd.
zd = Zenpy(subdomain="deskd", email=EMAIL, token=TOKEN)
# Read back what deskd holds, not zenpy's object cache.
zd.disable_caching()


def mail(name):
    return f"zenpy-{TAG}-{name}@example.org"


def wait_job(job_id):
    for _ in range(600):
        job = zd.job_status(id=job_id)
        if job.status in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not complete")


def test_create_or_update_creates_then_updates():
    first = zd.users.create_or_update(User(name="Zen One", email=mail("one"), external_id=f"zen-{TAG}-1"))
    assert isinstance(first, User) and first.id, first
    again = zd.users.create_or_update(User(name="Zen One Renamed", email=mail("one")))
    assert again.id == first.id
    assert again.name == "Zen One Renamed"
    assert zd.users(id=first.id).email == mail("one")


def test_create_or_update_many_and_job_polling():
    users = [User(name=f"Zen Bulk {i}", email=mail(f"bulk{i}"), external_id=f"zen-{TAG}-bulk-{i}") for i in range(30)]
    job = zd.users.create_or_update(users)
    assert job.status == "queued", job.status
    done = wait_job(job.id)
    assert done.status == "completed"
    assert done.total == 30 and done.progress == 30
    results = done.results
    assert len(results) == 30
    assert all(r.status == "Created" for r in results), [r.status for r in results]


def test_show_many_and_search_by_external_id():
    a = zd.users.create_or_update(User(name="Zen A", email=mail("a"), external_id=f"zen-{TAG}-a"))
    b = zd.users.create_or_update(User(name="Zen B", email=mail("b"), external_id=f"zen-{TAG}-b"))
    got = sorted(u.id for u in zd.users(ids=[a.id, b.id]))
    assert got == sorted([a.id, b.id]), got
    by_ext = list(zd.users(external_ids=[f"zen-{TAG}-a"]))
    assert [u.id for u in by_ext] == [a.id]
    found = list(zd.users.search(external_id=f"ZEN-{TAG}-B"))
    assert [u.id for u in found] == [b.id], found
    found = list(zd.users.search(query=f"email:{mail('a')}"))
    assert [u.id for u in found] == [a.id]


def test_identities_and_make_primary():
    u = zd.users.create_or_update(User(name="Zen Ident", email=mail("ident")))
    second = zd.users.identities.create(u, Identity(type="email", value=mail("ident2")))
    assert second.value == mail("ident2") and not second.primary
    identities = list(zd.users.identities(id=u.id))
    assert len(identities) == 2
    after = list(zd.users.identities.make_primary(u, second))
    assert after[0].id == second.id and after[0].primary
    assert zd.users(id=u.id).email == mail("ident2")


def test_organizations():
    org = zd.organizations.create(Organization(name=f"Zen Org {TAG}"))
    assert org.id and org.name == f"Zen Org {TAG}"
    assert zd.organizations(id=org.id).name == org.name
    u = zd.users.create_or_update(User(name="Zen Member", email=mail("member"), organization_id=org.id))
    assert u.organization_id == org.id
    members = list(zd.organizations.users(org))
    assert [m.id for m in members] == [u.id]


def test_organizations_in_bulk():
    orgs = [Organization(name=f"Zen Bulk Org {TAG} {i}", external_id=f"zen-org-{TAG}-{i}") for i in range(3)]
    done = wait_job(zd.organizations.create(orgs).id)
    assert done.status == "completed", done.status
    ids = [r.id for r in done.results]
    assert len(ids) == 3 and all(ids), ids
    assert sorted(o.id for o in zd.organizations(ids=ids)) == sorted(ids)
    done = wait_job(zd.organizations.update([Organization(id=i, notes="bulk") for i in ids]).id)
    assert all(r.success for r in done.results), [r.status for r in done.results]
    assert zd.organizations(id=ids[0]).notes == "bulk"
    done = wait_job(zd.organizations.delete([Organization(id=i) for i in ids]).id)
    assert [r.status for r in done.results] == ["Deleted"] * 3, [r.status for r in done.results]


def test_organization_memberships():
    a = zd.organizations.create(Organization(name=f"Zen Mem A {TAG}"))
    b = zd.organizations.create(Organization(name=f"Zen Mem B {TAG}"))
    u = zd.users.create_or_update(User(name="Zen Multi", email=mail("multi"), organization_id=a.id))
    m = zd.organization_memberships.create(OrganizationMembership(user_id=u.id, organization_id=b.id))
    assert m.id and m.organization_id == b.id and not m.default, m
    listed = [x.organization_id for x in zd.users.organization_memberships(u)]
    assert listed == [a.id, b.id], listed
    assert [x.id for x in zd.organizations.users(b)] == [u.id]
    assert [x.user_id for x in zd.organizations.organization_memberships(b)] == [u.id]
    zd.organization_memberships.delete(m)
    assert [x.organization_id for x in zd.users.organization_memberships(u)] == [a.id]
    assert zd.users(id=u.id).organization_id == a.id


def test_pagination_offset_and_cursor():
    users = [User(name=f"Zen Page {i}", email=mail(f"page{i}")) for i in range(100)]
    for start in range(0, 250, 100):
        batch = [User(name=f"Zen Page {i}", email=mail(f"page{i}")) for i in range(start, min(start + 100, 250))]
        wait_job(zd.users.create_or_update(batch).id)
    del users
    offset_ids = [u.id for u in zd.users()]
    assert len(offset_ids) == len(set(offset_ids)) >= 250, len(offset_ids)
    cursor_ids = [u.id for u in zd.users(cursor_pagination=50)]
    assert cursor_ids == offset_ids, (len(cursor_ids), len(offset_ids))


def tag_list(result):
    # zenpy hands tag writes back as the response body, reads as a generator of tags.
    if isinstance(result, dict):
        return result["tags"]
    return [str(t) for t in result]


def test_user_and_organization_tags():
    u = zd.users.create_or_update(User(name="Zen Tags", email=mail("tags")))
    assert tag_list(zd.users.set_tags(u.id, ["a", "b"])) == ["a", "b"]
    assert tag_list(zd.users.add_tags(u.id, ["c"])) == ["a", "b", "c"]
    assert tag_list(zd.users.delete_tags(u.id, ["a"])) == ["b", "c"]
    assert zd.users(id=u.id).tags == ["b", "c"]
    org = zd.organizations.create(Organization(name=f"Zen Tag Org {TAG}"))
    assert tag_list(zd.organizations.set_tags(org.id, ["x"])) == ["x"]
    assert tag_list(zd.organizations.add_tags(org.id, ["y"])) == ["x", "y"]
    assert tag_list(zd.organizations.delete_tags(org.id, ["x"])) == ["y"]
    assert zd.organizations(id=org.id).tags == ["y"]


def test_related_and_merge():
    src = zd.users.create_or_update(User(name="Zen Src", email=mail("src"), tags=["from-src"]))
    dst = zd.users.create_or_update(User(name="Zen Dst", email=mail("dst")))
    related = zd.users.related(dst)
    assert related.requested_tickets == 0 and related.assigned_tickets == 0, related
    merged = zd.users.merge(src, dst)
    assert merged.id == dst.id and "from-src" in merged.tags, merged
    assert zd.users(id=src.id).active is False
    emails = sorted(i.value for i in zd.users.identities(id=dst.id))
    assert emails == sorted([mail("src"), mail("dst")]), emails


def test_time_based_incremental_export():
    # Changes of the last minute wait; everything older comes, page by page.
    users = list(zd.users.incremental(start_time=0, paginate_by_time=True))
    ids = [u.id for u in users]
    assert len(ids) == len(set(ids)), "no user twice"
    orgs = list(zd.organizations.incremental(start_time=0))
    assert all(o.id for o in orgs)


def test_rate_limit_is_honoured():
    # The sixth create_or_update of one profile within a minute gets 429 + Retry-After; zenpy
    # sleeps that long and retries, and the call succeeds.
    u = zd.users.create_or_update(User(name="Zen Limit", email=mail("limit")))
    start = time.time()
    for _ in range(5):
        assert zd.users.create_or_update(User(name="Zen Limit", email=mail("limit"))).id == u.id
    assert time.time() - start >= 1, "zenpy waited for Retry-After"


def test_user_fields_and_values():
    key = f"zen_{TAG}_plan"
    field = zd.user_fields.create(UserField(type="dropdown", key=key, title="Plan", custom_field_options=[
        {"name": "Gold", "value": f"gold_{TAG}"}, {"name": "Silver", "value": f"silver_{TAG}"}]))
    assert field.id and field.key == key and field.type == "dropdown", field
    assert [o.value for o in field.custom_field_options] == [f"gold_{TAG}", f"silver_{TAG}"]
    assert zd.user_fields(id=field.id).title == "Plan"
    assert key in [f.key for f in zd.user_fields()]
    field.title = "Plan renamed"
    assert zd.user_fields.update(field).title == "Plan renamed"
    seats = zd.user_fields.create(UserField(type="integer", key=f"zen_{TAG}_seats", title="Seats"))
    user = zd.users.create_or_update(User(name="Zen Fields", email=mail("fields"),
                                          user_fields={key: f"GOLD_{TAG}", seats.key: "3", "undefined_key": 1}))
    assert user.user_fields[key] == f"gold_{TAG}" and user.user_fields[seats.key] == 3, user.user_fields
    assert "undefined_key" not in user.user_fields
    try:
        zd.users.create_or_update(User(email=mail("fields"), user_fields={seats.key: "many"}))
        raise AssertionError("a bad integer was accepted")
    except APIException as e:
        assert "Seats" in str(e), e
    zd.user_fields.delete(seats)
    assert seats.key not in zd.users(id=user.id).user_fields
    org_field = zd.organization_fields.create(OrganizationField(type="date", key=f"zen_{TAG}_since", title="Since"))
    org = zd.organizations.create(Organization(name=f"Zen Fields Org {TAG}", organization_fields={org_field.key: "2021-02-03"}))
    assert org.organization_fields[org_field.key] == "2021-02-03T00:00:00+00:00", org.organization_fields
    assert org_field.key in [f.key for f in zd.organization_fields()]
    zd.organization_fields.delete(org_field)


def test_search_count_and_export():
    zd.users.create_or_update(User(name=f"Zen Searchable {TAG}", email=mail("searchable"), tags=[f"s{TAG}"]))
    zd.organizations.create(Organization(name=f"Zen Searchable Org {TAG}", tags=[f"s{TAG}"]))
    found = list(zd.search(type="user", email=mail("searchable")))
    assert [u.email for u in found] == [mail("searchable")], found
    both = list(zd.search(f"tags:s{TAG}"))
    assert sorted(type(r).__name__ for r in both) == ["Organization", "User"], both
    orgs = list(zd.search(f"Searchable Org {TAG}", type="organization"))
    assert [o.name for o in orgs] == [f"Zen Searchable Org {TAG}"], orgs
    assert zd.search.count(f"tags:s{TAG}") == 2
    exported = list(zd.search_export(f"tags:s{TAG}", type="user"))
    assert [u.email for u in exported] == [mail("searchable")], exported


def main():
    passed = failed = 0
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                passed += 1
                print(f"ok     zenpy {name}")
            except Exception:
                failed += 1
                print(f"FAILED zenpy {name}")
                traceback.print_exc()
    print(f"zenpy: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
