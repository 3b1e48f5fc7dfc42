// node-zendesk (from npm, unmodified) against a live deskd. Run by compat/run.sh.
// Each scenario asserts on what the client returns. Prints `N passed, N failed` last.
const assert = require('node:assert/strict');
const zendesk = require('node-zendesk');

const { DESKD_URL, DESKD_EMAIL, DESKD_TOKEN, DESKD_TAG } = process.env;
const client = zendesk.createClient({
  username: DESKD_EMAIL,
  token: DESKD_TOKEN,
  endpointUri: `${DESKD_URL}/api/v2`,
});
const mail = (name) => `node-${DESKD_TAG}-${name}@example.org`;

const tests = {
  async createOrUpdateCreatesThenUpdates() {
    const first = await client.users.createOrUpdate({ user: { name: 'Node One', email: mail('one') } });
    assert.equal(first.response.status, 201);
    assert.ok(first.result.id);
    const again = await client.users.createOrUpdate({ user: { name: 'Node One Renamed', email: mail('one') } });
    assert.equal(again.response.status, 200);
    assert.equal(again.result.id, first.result.id);
    assert.equal(again.result.name, 'Node One Renamed');
    const shown = await client.users.show(first.result.id);
    assert.equal(shown.result.email, mail('one'));
  },

  async createOrUpdateManyWithTheJobWatcher() {
    const users = Array.from({ length: 20 }, (_, i) => ({ name: `Node Bulk ${i}`, email: mail(`bulk${i}`) }));
    // node-zendesk hands back the whole body here: {job_status: {...}}.
    const submitted = await client.users.createOrUpdateMany({ users });
    const job = submitted.result.job_status;
    assert.equal(job.status, 'queued');
    const done = await client.jobstatuses.watch(job.id, 100, 100);
    const status = done.result ?? done.job_status ?? done;
    assert.equal(status.status, 'completed');
    assert.equal(status.results.length, 20);
    assert.ok(status.results.every((r) => r.status === 'Created'));
  },

  async showManyAndSearch() {
    const a = (await client.users.createOrUpdate({ user: { name: 'Node A', email: mail('a'), external_id: `node-${DESKD_TAG}-a` } })).result;
    const b = (await client.users.createOrUpdate({ user: { name: 'Node B', email: mail('b') } })).result;
    const many = (await client.users.showMany([a.id, b.id])).result;
    assert.deepEqual(many.map((u) => u.id).sort(), [a.id, b.id].sort());
    const found = await client.users.search({ external_id: `node-${DESKD_TAG}-a` });
    assert.deepEqual(found.map((u) => u.id), [a.id]);
    const byEmail = await client.users.search({ query: `email:${mail('b')}` });
    assert.deepEqual(byEmail.map((u) => u.id), [b.id]);
  },

  async identitiesAndMakePrimary() {
    const u = (await client.users.createOrUpdate({ user: { name: 'Node Ident', email: mail('ident') } })).result;
    const created = await client.useridentities.create(u.id, { identity: { type: 'email', value: mail('ident2') } });
    const second = created.result;
    assert.equal(second.primary, false);
    const list = await client.useridentities.list(u.id);
    assert.equal(list.length, 2);
    const after = await client.useridentities.makePrimary(u.id, second.id);
    const identities = after.result ?? after;
    assert.equal(identities[0].id, second.id);
    assert.equal((await client.users.show(u.id)).result.email, mail('ident2'));
  },

  async organizations() {
    const org = (await client.organizations.create({ organization: { name: `Node Org ${DESKD_TAG}` } })).result;
    assert.ok(org.id);
    assert.equal((await client.organizations.show(org.id)).result.name, `Node Org ${DESKD_TAG}`);
  },

  async organizationsInBulkAndMemberships() {
    const organizations = [0, 1].map((i) => ({ name: `Node Bulk Org ${DESKD_TAG} ${i}` }));
    const submitted = await client.organizations.createMany({ organizations });
    const job = (submitted.result ?? submitted).job_status;
    assert.equal(job.job_type, 'Bulk Create Organization');
    const done = await client.jobstatuses.watch(job.id, 100, 100);
    const status = done.result ?? done.job_status ?? done;
    assert.equal(status.status, 'completed');
    const [a, b] = status.results.map((r) => r.id);
    assert.ok(a && b);
    const u = (await client.users.createOrUpdate({ user: { name: 'Node Member', email: mail('member'), organization_id: a } })).result;
    // node-zendesk wraps the object in organization_membership itself.
    const created = await client.organizationmemberships.create({ user_id: u.id, organization_id: b });
    const m = created.result;
    assert.equal(m.organization_id, b);
    assert.equal(m.default, null);
    const mine = await client.organizationmemberships.listByUser(u.id);
    assert.deepEqual(mine.map((x) => x.organization_id), [a, b]);
    await client.organizationmemberships.makeDefault(u.id, m.id);
    assert.equal((await client.users.show(u.id)).result.organization_id, b);
    const inB = await client.organizationmemberships.listByOrganization(b);
    assert.deepEqual(inB.map((x) => x.user_id), [u.id]);
    await client.organizationmemberships.delete(m.id);
    assert.equal((await client.users.show(u.id)).result.organization_id, a);
    const deleting = await client.organizations.bulkDelete([a, b]);
    const deleteJob = (deleting.result ?? deleting).job_status;
    const gone = await client.jobstatuses.watch(deleteJob.id, 100, 100);
    const goneStatus = gone.result ?? gone.job_status ?? gone;
    assert.ok(goneStatus.results.every((r) => r.status === 'Deleted'));
  },

  async userTagsAndMerge() {
    const u = (await client.users.createOrUpdate({ user: { name: 'Node Tags', email: mail('tags') } })).result;
    const set = await client.users.setTags(u.id, { tags: ['a', 'b'] });
    assert.equal(set.response.status, 201);
    await client.users.addTags(u.id, { tags: ['c'] });
    // node-zendesk's removeTags drops its tags (its delete takes a path only); deskd answers
    // the bare DELETE as a remove of nothing.
    await client.users.removeTags(u.id, { tags: ['a'] });
    assert.deepEqual((await client.users.show(u.id)).result.tags, ['a', 'b', 'c']);
    const listed = await client.users.listTags(u.id);
    assert.ok(JSON.stringify(listed).includes('"c"'), JSON.stringify(listed));
    const target = (await client.users.createOrUpdate({ user: { name: 'Node Target', email: mail('target') } })).result;
    const merged = await client.users.merge(u.id, target.id);
    assert.equal(merged.result.id, target.id);
    assert.deepEqual(merged.result.tags, ['a', 'b', 'c']);
    assert.equal((await client.users.show(u.id)).result.active, false);
  },

  async timeBasedIncrementalExport() {
    // Everything this run wrote is younger than a minute, so it waits; the page is well formed.
    const users = await client.users.incremental(0);
    assert.ok(Array.isArray(users), JSON.stringify(users).slice(0, 200));
  },

  async userFieldsOptionsAndValues() {
    const key = `node_${DESKD_TAG}_tier`;
    const created = await client.userfields.create({ user_field: { type: 'dropdown', key, title: 'Tier',
      custom_field_options: [{ name: 'Gold', value: `gold_${DESKD_TAG}` }] } });
    const field = created.result;
    assert.equal(field.key, key);
    const listed = await client.userfields.list();
    assert.ok(listed.some((f) => f.key === key));
    const option = await client.userfields.createOrUpdateOption(field.id, { custom_field_option: { name: 'Silver', value: `silver_${DESKD_TAG}` } });
    assert.equal(option.response.status, 201);
    // node-zendesk hands back the whole body here: {custom_field_options: [...]}.
    const listedOptions = (await client.userfields.listOptions(field.id)).result;
    const options = listedOptions.custom_field_options ?? listedOptions;
    assert.deepEqual(options.map((o) => o.name), ['Gold', 'Silver']);
    const other = (await client.userfields.create({ user_field: { type: 'checkbox', key: `node_${DESKD_TAG}_vip`, title: 'VIP' } })).result;
    await client.userfields.reorder([other.id, field.id]);
    const order = (await client.userfields.list()).map((f) => f.id);
    assert.ok(order.indexOf(other.id) < order.indexOf(field.id), JSON.stringify(order));
    const user = (await client.users.createOrUpdate({ user: { name: 'Node Fields', email: mail('fields'), user_fields: { [key]: `silver_${DESKD_TAG}` } } })).result;
    assert.equal(user.user_fields[key], `silver_${DESKD_TAG}`);
    assert.equal(user.user_fields[other.key], false);
    await assert.rejects(client.users.update(user.id, { user: { user_fields: { [key]: 'bronze' } } }));
    await client.userfields.delete(other.id);
    const orgField = (await client.organizationfields.create({ organization_field: { type: 'integer', key: `node_${DESKD_TAG}_size`, title: 'Size' } })).result;
    const org = (await client.organizations.create({ organization: { name: `Node Fields Org ${DESKD_TAG}`, organization_fields: { [orgField.key]: '12' } } })).result;
    assert.equal(org.organization_fields[orgField.key], 12);
    await client.organizationfields.delete(orgField.id);
  },

  async searchCountAndExport() {
    await client.users.createOrUpdate({ user: { name: `Node Findable ${DESKD_TAG}`, email: mail('findable'), tags: [`n${DESKD_TAG}`] } });
    await client.organizations.create({ organization: { name: `Node Findable Org ${DESKD_TAG}`, tags: [`n${DESKD_TAG}`] } });
    const all = await client.search.queryAll(`tags:n${DESKD_TAG}`);
    assert.deepEqual(all.map((r) => r.result_type).sort(), ['organization', 'user']);
    const users = await client.search.queryAll(`type:user findable -tags:nothing`);
    assert.ok(users.some((u) => u.email === mail('findable')));
    const count = (await client.search.showResultsCount(`tags:n${DESKD_TAG}`)).result;
    assert.equal(count.count ?? count, 2);
    const exported = await client.search.exportResults(`tags:n${DESKD_TAG}`, 'organization', 1);
    assert.deepEqual(exported.map((o) => o.name), [`Node Findable Org ${DESKD_TAG}`]);
  },

  async listFollowsEveryPage() {
    for (let start = 0; start < 250; start += 100) {
      const users = Array.from({ length: 100 }, (_, i) => ({ name: `Node Page ${start + i}`, email: mail(`page${start + i}`) }));
      const job = (await client.users.createOrUpdateMany({ users })).result.job_status;
      await client.jobstatuses.watch(job.id, 100, 200);
    }
    const all = await client.users.list();
    const ids = all.map((u) => u.id);
    assert.equal(new Set(ids).size, ids.length, 'no user twice');
    assert.ok(ids.length >= 250, `${ids.length} users listed`);
  },
};

(async () => {
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of Object.entries(tests)) {
    try {
      await fn();
      passed += 1;
      console.log(`ok     node-zendesk ${name}`);
    } catch (err) {
      failed += 1;
      console.log(`FAILED node-zendesk ${name}`);
      console.log(err);
    }
  }
  console.log(`node-zendesk: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
