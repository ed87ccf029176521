"""The Share API: a relying party shares its sessions with persons named by personal code; it sees
and changes only its own shares, shares end with the session, and bad input gets the envelope."""

from __future__ import annotations

import httpx

from tests.harness import Service
from tests.signapi import SignApi

PERSON, OTHER = "010180-15097", "320000-12345"


def share(api: SignApi, sid: str, body: object) -> httpx.Response:
    return api.client.post(f"/api-share/v1.0/{sid}/persons", json=body)


def test_share_list_unshare_and_sessions_of_a_person(api: SignApi) -> None:
    sid, second = api.start(2)
    r = share(api, sid, {"persons": [{"personId": PERSON, "accessRights": "sign"},
                                     {"personId": OTHER, "accessRights": ["view", "sign"]}], "note": "Līgums Nr. 7"})
    assert r.status_code == 200, r.text
    shared = r.json()["data"]["persons"]
    assert {(p["personId"], str(p["accessRights"]), p["note"]) for p in shared} == \
        {(PERSON, "sign", "Līgums Nr. 7"), (OTHER, "['view', 'sign']", "Līgums Nr. 7")}
    assert share(api, second, {"persons": [{"personId": PERSON}]}).status_code == 200
    r = api.client.get(f"/api-share/v1.0/{PERSON}/sessions")
    assert r.status_code == 200 and {e["sessionId"] for e in r.json()["data"]} == {sid, second}

    r = api.client.delete(f"/api-share/v1.0/{sid}/persons/{OTHER}")
    assert r.status_code == 200, r.text
    assert [p["personId"] for p in api.client.get(f"/api-share/v1.0/{sid}/persons").json()["data"]] == [PERSON]
    r = api.client.delete(f"/api-share/v1.0/{sid}/persons/{OTHER}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_shared"

    # A closed session is shared with nobody any more.
    assert api.client.get(f"/api-session/v1.0/{second}/close").status_code == 200
    r = api.client.get(f"/api-share/v1.0/{PERSON}/sessions")
    assert [e["sessionId"] for e in r.json()["data"]] == [sid]


def test_bad_share_requests_get_the_envelope(api: SignApi) -> None:
    sid = api.start()
    for body, code in (({"persons": [{"personId": "PNOLV-010180-15097"}]}, "invalid_person_id"),
                       ({"persons": [{"personId": "12345"}]}, "invalid_person_id"),
                       ({"persons": []}, None), ({"persons": "x"}, None), ([], None)):
        r = share(api, sid, body)
        assert r.status_code in (400, 422) and r.json()["data"] is None, (body, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    r = share(api, "0" * 64, {"persons": [{"personId": PERSON}]})
    assert r.status_code == 404 and r.json()["data"] is None
    r = api.client.get("/api-share/v1.0/not-a-code/sessions")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_person_id"
    assert api.client.get(f"/api-share/v1.0/{sid}/persons").json() == {"data": []}


def test_another_relying_party_sees_no_share(service: Service, api: SignApi) -> None:
    sid = api.start()
    assert share(api, sid, {"persons": [{"personId": PERSON}]}).status_code == 200
    other = service.new_client("share outsider")
    with httpx.Client(base_url=service.url, timeout=30, headers={
            "Authorization": "Bearer " + service.token(other["client_id"], other["client_secret"])}) as client:
        assert client.get(f"/api-share/v1.0/{PERSON}/sessions").json()["data"] == []
        for method, path in (("GET", f"/api-share/v1.0/{sid}/persons"),
                             ("DELETE", f"/api-share/v1.0/{sid}/persons/{PERSON}"),
                             ("POST", f"/api-share/v1.0/{sid}/persons")):
            r = client.request(method, path, json={"persons": [{"personId": OTHER}]})
            assert r.status_code == 404, (method, path, r.text)
    assert [p["personId"] for p in api.client.get(f"/api-share/v1.0/{sid}/persons").json()["data"]] == [PERSON]
