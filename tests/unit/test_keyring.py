"""The keyring and the ZAP decision: which handshake is admitted, as whom, which is refused (no sockets)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest
import zmq
from zmq.utils import z85

from bus.credentials import Credential, read_credential, write_file
from bus.keyring import BUS_DOMAIN, EVENTS_DOMAIN, Admitted, Keyring, Principal, Refused
from bus.zap import ZapHandler, peer_process
from swarm_core.errors import ConfigError


def plain(cred: Credential, secret: str | None = None) -> list[bytes]:
    """The credential frames a PLAIN handshake hands the ZAP handler."""
    return [cred.key_id.encode(), (cred.secret if secret is None else secret).encode()]


def test_a_plain_credential_is_admitted_as_its_principal():
    """The right secret for a live key id: admitted, the User-Id is the key id, the principal its peer."""
    keys = Keyring()
    cred = keys.issue("w", "agent")
    verdict = keys.authenticate(BUS_DOMAIN, "plain", plain(cred))
    assert verdict == Admitted(cred.key_id, Principal("w", "agent"))
    assert keys.principals[cred.key_id] == Principal("w", "agent")


@pytest.mark.parametrize("frames, why", [
    (lambda c: plain(c, c.secret[:-1] + ("A" if c.secret[-1] != "A" else "B")), "forged"),
    (lambda c: [b"nobody.123", c.secret.encode()], "forged"),
    (lambda c: [c.key_id.encode()], "malformed"),
])
def test_forged_unknown_or_malformed_plain_credentials_are_refused(frames, why):
    """A wrong secret, an unknown key id or malformed frames: refused, with what was claimed."""
    keys = Keyring()
    cred = keys.issue("w", "agent")
    verdict = keys.authenticate(BUS_DOMAIN, "plain", frames(cred))
    assert isinstance(verdict, Refused) and why in (verdict.reason + verdict.claimed)


def test_a_revoked_or_replaced_credential_is_refused():
    """Revoking drops the principal at once; a new issue for the same peer revokes the old one."""
    keys = Keyring()
    first = keys.issue("w", "agent")
    second = keys.issue("w", "agent")
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(first)), Refused)
    assert first.key_id not in keys.principals and keys.current("w") == Principal("w", "agent")
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(second)), Admitted)
    keys.revoke("w")
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(second)), Refused)
    assert keys.principals == {} and keys.current("w") is None


def test_the_wrong_mechanism_is_refused():
    """A NULL (no security) or CURVE handshake on a PLAIN keyring is refused, naming the mechanism."""
    keys = Keyring()
    cred = keys.issue("w", "agent")
    assert "NULL" in keys.authenticate(BUS_DOMAIN, "", []).reason
    assert "curve" in keys.authenticate(BUS_DOMAIN, "curve", plain(cred)).reason


def test_curve_keys_map_to_their_principal():
    """On CURVE the proven public key finds the credential; an unissued key is refused."""
    keys = Keyring("curve")
    cred = keys.issue("gateway", "gateway")
    assert cred.server == keys.server_public.decode() and cred.mechanism == "curve"
    verdict = keys.authenticate(BUS_DOMAIN, "curve", [z85.decode(cred.public)])
    assert verdict == Admitted(cred.key_id, Principal("gateway", "gateway"))
    stranger = zmq.curve_keypair()[0]
    assert isinstance(keys.authenticate(BUS_DOMAIN, "curve", [z85.decode(stranger)]), Refused)
    assert isinstance(keys.authenticate(BUS_DOMAIN, "curve", [b"short"]), Refused)


def test_the_events_socket_admits_only_supervisor_and_operator():
    """The PUB socket's domain refuses an agent or a service; the supervisor and the operator subscribe."""
    keys = Keyring()
    for peer, kind in (("a", "agent"), ("gateway", "gateway"), ("memory", "memory")):
        verdict = keys.authenticate(EVENTS_DOMAIN, "plain", plain(keys.issue(peer, kind)))
        assert isinstance(verdict, Refused)
        assert f"a {kind} may not connect to the events socket" in verdict.reason
    for peer, kind in (("supervisor", "supervisor"), ("operator", "operator")):
        assert isinstance(keys.authenticate(EVENTS_DOMAIN, "plain", plain(keys.issue(peer, kind))), Admitted)
    assert isinstance(keys.authenticate("elsewhere", "plain", plain(keys.issue("b", "agent"))), Refused)


def test_a_one_process_credential_is_good_only_from_its_process():
    """The first process to use it binds it; another pid is refused; the supervisor's pid confirms it."""
    keys = Keyring()
    cred = keys.issue("w", "agent", one_process=True)
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(cred), pid=100), Admitted)
    refused = keys.authenticate(BUS_DOMAIN, "plain", plain(cred), pid=200)
    assert isinstance(refused, Refused) and "presented by pid 200" in refused.reason
    assert keys.bind_pid("w", 100)
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(cred), 100), Admitted)


def test_a_credential_first_used_by_another_process_is_revoked_when_the_pid_is_known():
    """If a stranger used the credential before its process did, binding the real pid revokes it."""
    keys = Keyring()
    cred = keys.issue("w", "agent", one_process=True)
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(cred), pid=666), Admitted)
    assert not keys.bind_pid("w", 100)
    assert isinstance(keys.authenticate(BUS_DOMAIN, "plain", plain(cred), pid=100), Refused)
    assert keys.principals == {}


def test_the_store_holds_verifiers_only_and_a_resume_keeps_the_adopted(tmp_path):
    """The 0600 store has no plain secret; load() keeps only the peers asked for, with their pids."""
    store = tmp_path / "credentials.json"
    keys = Keyring(store=store)
    kept = keys.issue("a", "agent", one_process=True)
    keys.bind_pid("a", 4242)
    lost = keys.issue("b", "agent")
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    text = store.read_text()
    assert kept.secret not in text and lost.secret not in text
    again = Keyring.load(store, keep={"a"})
    assert isinstance(again.authenticate(BUS_DOMAIN, "plain", plain(kept), pid=4242), Admitted)
    assert isinstance(again.authenticate(BUS_DOMAIN, "plain", plain(kept), pid=1), Refused)
    assert isinstance(again.authenticate(BUS_DOMAIN, "plain", plain(lost)), Refused)
    assert [e["peer"] for e in json.loads(store.read_text())["entries"]] == ["a"]


def test_a_curve_store_keeps_the_broker_key_for_a_resume(tmp_path):
    """A resumed CURVE keyring has the same broker key pair, so adopted agents' credentials still work."""
    store = tmp_path / "credentials.json"
    keys = Keyring("curve", store=store)
    cred = keys.issue("a", "agent")
    again = Keyring.load(store, keep={"a"})
    assert again.server_public == keys.server_public and again.server_secret == keys.server_secret
    assert isinstance(again.authenticate(BUS_DOMAIN, "curve", [z85.decode(cred.public)]), Admitted)


def test_an_unreadable_store_is_one_clear_error(tmp_path):
    """A corrupt store is a ConfigError naming the file."""
    bad = tmp_path / "credentials.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="credentials.json"):
        Keyring.load(bad, keep=set())


class Log:
    def __init__(self):
        self.events = []

    def warning(self, event, **kw):
        self.events.append((event, kw))


def zap(keys: Keyring, **kw) -> tuple[ZapHandler, Log]:
    log = Log()
    return ZapHandler(zmq.Context.instance(), keys, log=log, **kw), log


def request(cred: Credential | None, address: str = "localhost:0:0:4242", domain: str = BUS_DOMAIN,
            secret: str | None = None) -> list[bytes]:
    frames = [b"1.0", b"7", domain.encode(), address.encode(), b"", b"PLAIN" if cred else b"NULL"]
    return frames + (plain(cred, secret) if cred else [])


def test_zap_replies_with_the_key_id_as_user_id():
    """An admitted handshake gets 200 and the credential's key id as User-Id."""
    keys = Keyring()
    cred = keys.issue("w", "agent", one_process=True)
    handler, log = zap(keys, ipc=True, uid=0)
    assert handler.decide(request(cred)) == [b"1.0", b"7", b"200", b"OK", cred.key_id.encode(), b""]
    assert keys.bind_pid("w", 4242)  # the ipc address told the keyring the pid: 4242 bound it
    assert handler.refused == 0 and log.events == []


def test_zap_refusals_are_counted_and_logged_with_the_claim_pid_and_rule():
    """A forged secret, another user's process, no credential: 400, counted, logged with what was claimed."""
    keys = Keyring()
    cred = keys.issue("w", "agent")
    handler, log = zap(keys, ipc=True, uid=0)
    assert handler.decide(request(cred, secret="forged"))[2] == b"400"
    assert handler.decide(request(cred, address="localhost:1000:1000:77"))[2] == b"400"
    assert handler.decide(request(None))[2] == b"400"
    assert handler.decide([b"1.0"])[2] == b"400"
    assert handler.refused == 4
    event, fields = log.events[0]
    assert event == "bus_auth_refused" and fields["claimed"] == cred.key_id and fields["pid"] == 4242
    assert "forged" in fields["rule"]


def test_zap_on_tcp_ignores_addresses():
    """On tcp the address is an IP: no uid or pid is read from it (a one-process credential is not pinned)."""
    keys = Keyring()
    cred = keys.issue("w", "agent", one_process=True)
    handler, _ = zap(keys, ipc=False)
    assert handler.decide(request(cred, address="1:2:3:4"))[2] == b"200"
    assert keys.bind_pid("w", 99)


@pytest.mark.parametrize("address, expected", [("localhost:0:0:4242", (0, 4242)), ("127.0.0.1", (None, None)),
                                               ("", (None, None)), ("x:a:b:c", (None, None))])
def test_peer_process_reads_ipc_addresses_only(address, expected):
    """``localhost:UID:GID:PID`` gives (uid, pid); anything else gives nothing."""
    assert peer_process(address) == expected


def test_credentials_round_trip_hide_their_secret_and_refuse_junk(tmp_path):
    """A credential survives JSON and a 0600 file; its repr shows no secret; malformed ones are refused."""
    cred = Keyring().issue("w", "agent")
    path = write_file(tmp_path / "w.cred", cred)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_credential(path) == cred == Credential.from_json(cred.to_json())
    assert cred.secret not in repr(cred)
    junks = ("[]", "{}", json.dumps({**cred.to_dict(), "kind": "god"}),
             json.dumps({**cred.to_dict(), "x": "1"}))
    for junk in (*junks, "not json"):
        with pytest.raises(ConfigError):
            Credential.from_json(junk, "test")
    with pytest.raises(ConfigError, match="cannot read the bus credential"):
        read_credential(tmp_path / "missing.cred")
    assert dataclasses.replace(cred, secret="x") != cred
