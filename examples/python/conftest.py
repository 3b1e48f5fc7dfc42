"""pytest fixtures for testing a Zendesk integration against deskd in test mode.

One deskd per test session (`deskd serve --test-mode --database memory --print-env`, which
leaves nothing behind), a reset before every test, and a zenpy client pointed at it. Set
DESKD_BIN to the deskd binary (default: `deskd` on PATH).
"""
import json
import os
import subprocess
import urllib.request

import pytest
from zenpy import Zenpy


class Deskd:
    """The running deskd: its URL, the admin's credentials, and its /__deskd/ controls."""

    def __init__(self, url, email, token):
        self.url, self.email, self.token = url, email, token

    def control(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + "/__deskd" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        auth = f"{self.email}/token:{self.token}".encode()
        import base64

        req.add_header("Authorization", "Basic " + base64.b64encode(auth).decode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def reset(self):
        return self.control("POST", "/reset")

    def seed(self, fixture):
        return self.control("POST", "/import", fixture)

    def fault(self, rule):
        return self.control("POST", "/faults", rule)

    def requests(self, query=""):
        return self.control("GET", "/requests?" + query)["requests"]


@pytest.fixture(scope="session")
def deskd():
    binary = os.environ.get("DESKD_BIN", "deskd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKD_")}
    env["DESKD_LOG"] = "warn"
    proc = subprocess.Popen(
        [binary, "serve", "--test-mode", "--database", "memory", "--listen", "127.0.0.1:0",
         "--print-env", "--rate-limits", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        for line in proc.stdout:
            if line.startswith("ZENDESK_URL="):
                # ZENDESK_URL=... ZENDESK_EMAIL=... ZENDESK_TOKEN=...
                found = dict(word.split("=", 1) for word in line.split())
                break
        else:
            raise RuntimeError("deskd exited before it was ready")
        yield Deskd(found["ZENDESK_URL"], found["ZENDESK_EMAIL"], found["ZENDESK_TOKEN"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def zendesk(deskd):
    """A zenpy client on a freshly reset account."""
    deskd.reset()
    # zenpy builds https://SUBDOMAIN.zendesk.com URLs; these two point it at deskd.
    os.environ["ZENPY_FORCE_NETLOC"] = deskd.url.split("://", 1)[1]
    os.environ["ZENPY_FORCE_SCHEME"] = "http"
    client = Zenpy(subdomain="deskd", email=deskd.email, token=deskd.token)
    client.disable_caching()
    return client
