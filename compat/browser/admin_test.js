// The admin pages in a real browser: Debian's chromium, headless, driven through chromedriver's
// WebDriver API (plain HTTP from Node; no npm package). Signs in, searches a user, edits a field,
// watches a 1,000-user import reach 100 %, revokes a token, and checks that an agent cannot reach
// the settings. A screenshot of each page goes to $DESKD_SCREENSHOTS, printed at the start.
//
// Needs DESKD_URL, DESKD_EMAIL, DESKD_PASSWORD, DESKD_TOKEN (the admin's) and a free port for
// chromedriver; run by compat/browser/run.sh.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const assert = require("node:assert/strict");

const base = process.env.DESKD_URL;
const email = process.env.DESKD_EMAIL;
const password = process.env.DESKD_PASSWORD;
const token = process.env.DESKD_TOKEN;
const shots = process.env.DESKD_SCREENSHOTS || path.join(os.tmpdir(), "deskd-admin-screenshots");
const tag = String(process.env.DESKD_TAG || process.pid);
fs.rmSync(shots, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });
console.log("admin pages: screenshots in " + shots);

const apiAuth = "Basic " + Buffer.from(email + "/token:" + token).toString("base64");
async function api(method, p, body) {
  const r = await fetch(base + "/api/v2" + p, {
    method, headers: { Authorization: apiAuth, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// WebDriver, the few commands used.
const port = 9515 + (process.pid % 400);
const wd = "http://127.0.0.1:" + port;
let session;
async function cmd(method, p, body) {
  const r = await fetch(wd + (session ? "/session/" + session : "") + p, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const out = await r.json();
  if (r.status >= 400) throw new Error(method + " " + p + ": " + JSON.stringify(out.value));
  return out.value;
}
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
const go = (p) => cmd("POST", "/url", { url: base + p });
const find = async (css) => (await cmd("POST", "/element", { using: "css selector", value: css }))[ELEMENT];
const findAll = async (css) => (await cmd("POST", "/elements", { using: "css selector", value: css })).map((e) => e[ELEMENT]);
const click = async (css) => cmd("POST", "/element/" + (await find(css)) + "/click", {});
const text = async (css) => cmd("GET", "/element/" + (await find(css)) + "/text");
const title = () => cmd("GET", "/title");
const current = () => cmd("GET", "/url");
async function type(css, value, clear = true) {
  const el = await find(css);
  if (clear) await cmd("POST", "/element/" + el + "/clear", {});
  await cmd("POST", "/element/" + el + "/value", { text: value });
}
const run = (script, args = []) => cmd("POST", "/execute/sync", { script, args });
let n = 0;
async function shot(name) {
  n += 1;
  const file = path.join(shots, String(n).padStart(2, "0") + "-" + name + ".png");
  // The whole page: the window grown to the page's height for the picture, then put back.
  const rect = await cmd("GET", "/window/rect");
  const height = await run("return document.documentElement.scrollHeight");
  if (height > rect.height) await cmd("POST", "/window/rect", { width: rect.width, height: Math.min(height + 140, 5000) });
  fs.writeFileSync(file, Buffer.from(await cmd("GET", "/screenshot"), "base64"));
  if (height > rect.height) await cmd("POST", "/window/rect", { width: rect.width, height: rect.height });
}
// Waits for a condition the page reaches by itself (an import, a stream); bounded.
async function until(what, f, ms = 30000) {
  const start = Date.now();
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() - start > ms) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function signIn(who, pw) {
  await go("/admin/login");
  await type("input[name=email]", who);
  await type("input[name=password]", pw);
  await click("button[type=submit]");
  await until("the users page", async () => (await title()).startsWith("Users"));
}
async function signOut() {
  await click("form.signout button");
  await until("the sign-in page", async () => (await title()).startsWith("Sign in"));
}

async function main() {
  // Data the test needs, through the API.
  const suffix = tag.replace(/[^0-9a-z]/gi, "");
  // Values of undefined fields are dropped, as Zendesk drops them: define the one edited below
  // (422 when an earlier run on this server defined it already).
  const field = await api("POST", "/user_fields", { user_field: { type: "text", key: "plan", title: "Plan" } });
  assert.ok([201, 422].includes(field.status), JSON.stringify(field.body));
  const person = await api("POST", "/users", { user: { name: "Searchable Person " + suffix, email: "searchable-" + suffix + "@browser.test", user_fields: {} } });
  assert.equal(person.status, 201, JSON.stringify(person.body));
  const personId = person.body.user.id;
  await api("POST", "/users", { user: { name: "<script>window.__pwned=1</script> " + suffix, email: "xss-" + suffix + "@browser.test" } });
  const agent = await api("POST", "/users", { user: { name: "Browser Agent " + suffix, email: "agent-" + suffix + "@browser.test", role: "agent" } });
  const agentPassword = "agent browser password " + suffix;
  assert.equal((await api("POST", "/users/" + agent.body.user.id + "/password", { password: agentPassword })).status, 200);
  await api("POST", "/organizations", { organization: { name: "Browser Org " + suffix } });
  const csvFile = path.join(os.tmpdir(), "deskd-browser-import-" + suffix + ".csv");
  let csv = "name,email,tags,user_fields.plan\n";
  for (let i = 0; i < 1000; i++) csv += "Imported " + i + "," + "imp" + i + "-" + suffix + "@browser.test,imported,gold\n";
  fs.writeFileSync(csvFile, csv);

  const driver = spawn("chromedriver", ["--port=" + port], { stdio: "ignore" });
  try {
    await until("chromedriver", async () => (await (await fetch(wd + "/status")).json()).value.ready, 20000);
    const s = await cmd("POST", "/session", { capabilities: { alwaysMatch: {
      browserName: "chrome",
      "goog:chromeOptions": { binary: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"] },
    } } });
    session = s.sessionId;

    // No page without a session.
    await go("/admin/settings");
    assert.ok((await current()).includes("/admin/login"), "settings without a session goes to sign-in");
    await shot("sign-in");

    // A wrong password, then the right one.
    await type("input[name=email]", email);
    await type("input[name=password]", "not the password");
    await click("button[type=submit]");
    await until("the error", async () => (await text(".error")).includes("Invalid email or password"));
    await type("input[name=password]", password);
    await click("button[type=submit]");
    await until("the settings page after sign-in", async () => (await title()).startsWith("Settings"));
    await go("/admin/users");
    await shot("users");

    // The stored name with a script tag is text, and never ran.
    assert.ok((await run("return document.body.innerText")).includes("<script>window.__pwned=1</script>"));
    assert.equal(await run("return window.__pwned === undefined"), true);

    // Search a user with the API's syntax.
    await type("input[name=q]", "name:\"Searchable Person " + suffix + "\"");
    await click("form.filters button");
    await until("the search result", async () => (await findAll("table.list tbody tr")).length === 1);
    assert.ok((await text("table.list tbody")).includes("searchable-" + suffix + "@browser.test"));
    await shot("users-search");

    // Edit a field on the user's page.
    await click("table.list tbody a");
    await until("the user page", async () => (await title()).startsWith("Searchable Person"));
    await type("textarea[name=notes]", "edited in the browser");
    await type("textarea[name=user_fields]", "{\"plan\": \"platinum\"}");
    await shot("user");
    await click("form.edit button[type=submit]");
    await until("the saved notice", async () => (await text(".notice")).includes("Changes saved"));
    const saved = await api("GET", "/users/" + personId);
    assert.equal(saved.body.user.notes, "edited in the browser");
    assert.equal(saved.body.user.user_fields.plan, "platinum");
    await shot("user-saved");

    // Organizations.
    await go("/admin/organizations");
    await until("the organizations list", async () => (await text("main")).includes("Browser Org " + suffix));
    await click("table.list tbody a");
    await until("the organization page", async () => (await title()).startsWith("Browser Org"));
    await shot("organization");

    // A 1,000-user import, watched to 100 %.
    await go("/admin/import");
    await cmd("POST", "/element/" + (await find("#import-file")) + "/value", { text: csvFile });
    await shot("import-form");
    await click("#import button[type=submit]");
    const seen = new Set();
    await until("the import's end", async () => {
      seen.add(await text("#import-percent"));
      return (await text("#import-status")).startsWith("Imported 1000 rows");
    });
    assert.equal(await text("#import-percent"), "100 %");
    assert.equal(await run("return document.getElementById('import-bar').value"), 100);
    assert.match(await text("#import-status"), /1000 created, 0 updated, 0 failed/);
    console.log("admin pages: the import's bar showed " + [...seen].join(", "));
    await shot("import-done");
    const check = await api("GET", "/users/search?query=" + encodeURIComponent("email:imp999-" + suffix + "@browser.test"));
    assert.equal(check.body.users[0].user_fields.plan, "gold");

    // Jobs: the list and one job's page.
    await go("/admin/jobs");
    await shot("jobs");
    await click("table.list tbody a");
    await until("a job page", async () => (await text("main")).includes("Results"));
    assert.equal(await run("return document.querySelector('progress').value"), 100);
    await shot("job");

    // Settings: create a token (shown once), then revoke it.
    await go("/admin/settings");
    await type("#new-token input[name=description]", "browser token " + suffix);
    await click("#new-token button");
    const secret = await until("the new token", async () => text("[data-field=new-token]"));
    const tokenAuth = "Basic " + Buffer.from(email + "/token:" + secret).toString("base64");
    const me = async () => (await fetch(base + "/api/v2/users/me", { headers: { Authorization: tokenAuth } })).status;
    assert.equal(await me(), 200, "the new token works");
    await shot("settings-token-created");
    await go("/admin/settings");
    const rows = await findAll("table.list tbody tr");
    let revoked = false;
    for (const row of rows) {
      const t = await cmd("GET", "/element/" + row + "/text");
      if (t.includes("browser token " + suffix)) {
        const button = (await cmd("POST", "/element/" + row + "/element", { using: "css selector", value: "button" }))[ELEMENT];
        await cmd("POST", "/element/" + button + "/click", {});
        await cmd("POST", "/alert/accept", {});
        revoked = true;
        break;
      }
    }
    assert.ok(revoked, "the token's row");
    await until("the revoked notice", async () => (await text(".notice")).includes("Token revoked"));
    assert.equal(await me(), 401, "the revoked token no longer works");
    await shot("settings-token-revoked");

    // An agent: no settings.
    await signOut();
    await signIn("agent-" + suffix + "@browser.test", agentPassword);
    assert.equal((await findAll("header nav a[href='/admin/settings']")).length, 0, "no settings link for an agent");
    await go("/admin/settings");
    await until("the refusal", async () => (await text("h1")) === "Not allowed");
    assert.ok(!(await text("main")).includes("API tokens"));
    await shot("agent-settings-refused");

    // On a phone.
    await cmd("POST", "/window/rect", { width: 390, height: 844 });
    await go("/admin/users");
    await shot("users-phone");
    await signOut();
    console.log("admin pages: 1 passed, 0 failed");
  } catch (e) {
    // What the browser showed when it went wrong, beside the others.
    if (session) await shot("failure").catch(() => {});
    throw e;
  } finally {
    if (session) await cmd("DELETE", "").catch(() => {});
    driver.kill();
    fs.rmSync(csvFile, { force: true });
  }
}

main().catch((e) => {
  console.error("admin pages: " + (e && e.stack || e));
  console.log("admin pages: 0 passed, 1 failed");
  process.exit(1);
});
