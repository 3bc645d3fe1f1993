"""OAuth client credentials, bearer tokens, JWKS and the venue endpoint, over real HTTP."""

from __future__ import annotations

import requests

from kiosk.tokens import KeySet, verify
from refbackend import DEMO_VENUE, ReferenceBackend

T = (2.0, 10.0)


def _token(url: str, auth: object, data: object) -> requests.Response:
    return requests.post(f"{url}/oauth/token", data=data, auth=auth, timeout=T)  # type: ignore[arg-type]


def test_client_credentials_grant_gives_a_bearer_token(refbackend, demo_client):
    resp = _token(refbackend.url, demo_client, {"grant_type": "client_credentials"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32


def test_wrong_secret_unknown_client_and_no_basic_auth_are_invalid_client(refbackend, demo_client):
    grant = {"grant_type": "client_credentials"}
    for auth in [(demo_client[0], "wrong"), ("cli_nobody", demo_client[1]), None]:
        resp = _token(refbackend.url, auth, grant)
        assert resp.status_code == 401
        assert resp.json()["status"] == "invalid_client"
        assert resp.json()["message"]


def test_other_grant_type_is_refused(refbackend, demo_client):
    resp = _token(refbackend.url, demo_client, {"grant_type": "password"})
    assert resp.status_code == 400
    assert resp.json()["status"] == "unsupported_grant_type"


def test_v1_needs_a_valid_bearer_token(refbackend, demo_bearer):
    url = f"{refbackend.url}/v1/venues/{DEMO_VENUE}"
    for headers in [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic eDp5"}]:
        resp = requests.get(url, headers=headers, timeout=T)
        assert resp.status_code == 401
        assert resp.json()["status"] == "invalid_token"
    ok = requests.get(url, headers={"Authorization": f"Bearer {demo_bearer}"}, timeout=T)
    assert ok.status_code == 200


def test_expired_token_is_401_then_a_fresh_token_works(clocked):
    api, clock = clocked
    assert api.get(f"/v1/venues/{DEMO_VENUE}").status_code == 200
    clock.advance(3601)
    resp = api.get(f"/v1/venues/{DEMO_VENUE}")
    assert resp.status_code == 401
    assert resp.json()["status"] == "invalid_token"
    assert "Bearer" in resp.headers["WWW-Authenticate"]
    api.token = api.fresh_token()
    assert api.get(f"/v1/venues/{DEMO_VENUE}").status_code == 200


def test_jwks_needs_no_auth_and_verifies_minted_tokens(refbackend):
    resp = requests.get(f"{refbackend.url}/.well-known/jwks.json", timeout=T)
    assert resp.status_code == 200
    (key,) = resp.json()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["use"] == "sig"
    assert key["kid"] == refbackend.kid
    assert resp.json() == refbackend.jwks()
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    receipt = verify(
        token, KeySet.from_jwks(resp.json()), refbackend.issuer, now=0, clock_trusted=False
    )
    assert receipt.venue == DEMO_VENUE


def test_demo_venue_is_seeded_exactly(api):
    resp = api.get(f"/v1/venues/{DEMO_VENUE}")
    assert resp.status_code == 200
    venue = resp.json()
    assert venue["id"] == "ven_demo0000000000"
    assert venue["name"] == "Hierontastudio Demo"
    assert venue["address"] == "Esimerkkikatu 1, 00100 Helsinki"
    services = {s["id"]: s for s in venue["services"]}
    assert list(services) == ["classic-60", "sports-45", "hotstone-60"]
    assert {k: (s["price_cents"], s["eligible"]) for k, s in services.items()} == {
        "classic-60": (6500, True),
        "sports-45": (5500, True),
        "hotstone-60": (7500, False),
    }
    assert all(s["benefit"] == "massage" and s["name"] for s in services.values())


def test_venue_of_another_client_is_wrong_venue(refbackend, api):
    other = refbackend.create_venue("Toinen studio", "Katu 2, Espoo")
    resp = api.get(f"/v1/venues/{other['id']}")
    assert resp.status_code == 403
    assert resp.json()["status"] == "wrong_venue"
    own = ReferenceBackend.create_client(refbackend, other["id"])
    assert own[0].startswith("cli_")
