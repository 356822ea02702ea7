"""Every page carries a strict Content-Security-Policy with a fresh nonce; HSTS is on with
DEBUG=0; /favicon.ico answers."""

from __future__ import annotations

import re

import pytest

from tests.config.test_settings_profiles import ROOT

pytestmark = pytest.mark.django_db


def test_pages_carry_a_nonce_based_policy(client, demo, make_user):
    from teams_app.models import Membership

    user = make_user("ada")
    Membership.objects.create(user=user, project=demo, role="architect")
    seen = set()
    for url in ("/accounts/login/", "/", "/projects/demo/", "/projects/demo/diagrams/", "/projects/demo/decisions/"):
        if url != "/accounts/login/":
            client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        nonce = re.search(r"'nonce-([^']+)'", directives["script-src"])
        assert nonce, (url, policy)
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in policy
        assert directives["style-src"] == f"'self' 'nonce-{nonce.group(1)}'"
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        html = response.content.decode()
        # Every inline <script> or <style> carries the nonce (there are none without a src today).
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
            assert "src=" in tag or f'nonce="{nonce.group(1)}"' in tag, (url, tag)
        assert not re.search(r"\son[a-z]+=", html), url  # no inline event handlers
        seen.add(nonce.group(1))
    assert len(seen) == 5  # one nonce per response


def test_the_diagram_script_gets_the_nonce_it_hands_to_mermaid(client, demo, make_user):
    from teams_app.models import Membership

    user = make_user("ada")
    Membership.objects.create(user=user, project=demo, role="viewer")
    client.force_login(user)
    response = client.get("/projects/demo/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'diagrams.js" defer nonce="{nonce}"' in response.content.decode()


def test_favicon_ico_points_at_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/static/favicon.svg")


def _probe(env: dict[str, str], tmp_path) -> dict:
    import json
    import os
    import subprocess
    import sys

    probe = ("import json, django; from django.conf import settings; print(json.dumps([settings.SECURE_HSTS_SECONDS, "
             "settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD]))")
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MAESTRO_DATA_DIR": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hsts_is_on_without_debug_and_off_with_it(tmp_path):
    assert _probe({"DEBUG": "0"}, tmp_path) == [31536000, True, False]
    assert _probe({"DEBUG": "1"}, tmp_path) == [0, False, False]


def test_hsts_header_on_https_requests(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
