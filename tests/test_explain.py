"""``wgpy explain``: a deterministic handshake, printed step by step, that checks itself.

The strongest check here is independent of wgpy's own crypto module: each party's transcript is
recomputed from the printed (JSON) values with hashlib, hmac and ``cryptography`` directly, so a value
that wgpy printed wrongly, or printed out of order, cannot pass.
"""

import hashlib
import hmac
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wgpy import cli
from wgpy.study import explain
from wgpy.study.ip import icmp_echo
from wgpy.study.verify import verify
from wgpy.study.walkthrough import TEXT_VALUES, render_json, render_markdown, render_text
from wgpy.core import noise, tai64n
from wgpy.core.cookie import CookieChecker, CookieGenerator
from wgpy.core.crypto import PrivateKey
from wgpy.core.encoding import key_to_base64
from wgpy.core.trace import NULL_TRACE, NullTrace, Recorder

# HASH(CONSTRUCTION) and HASH(that || IDENTIFIER): the same for every WireGuard handshake (wireguard-go
# computes them once at start-up as InitialChainKey and InitialHash).
INITIAL_CHAINING_KEY = "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"
INITIAL_HASH = "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"
SECTIONS = {"5.2", "5.4", "5.4.2", "5.4.3", "5.4.4", "5.4.5", "5.4.6", "5.4.7", "6.5"}


# ------------------------------------------------------------------------ independent primitives


def blake2s(data: bytes) -> bytes:
    return hashlib.blake2s(data).digest()


def kdf(key: bytes, data: bytes, n: int) -> list[bytes]:
    prk = hmac.new(key, data, hashlib.blake2s).digest()
    out, previous = [], b""
    for i in range(1, n + 1):
        previous = hmac.new(prk, previous + bytes([i]), hashlib.blake2s).digest()
        out.append(previous)
    return out


def dh(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


def aead(key: bytes, counter: int, plaintext: bytes, associated: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(bytes(4) + counter.to_bytes(8, "little"), plaintext, associated)


def document(**options) -> dict:
    return json.loads(render_json(explain.run(**options)))


def steps(doc: dict, by: str | None = None) -> list[dict]:
    found = [i for p in doc["parts"] for i in p["items"] if i["kind"] == "step"]
    return [s for s in found if by is None or s["by"] == by]


def recompute_transcript(doc: dict, party: str) -> dict[str, bytes]:
    """Follow one party's C, H and k through the printed steps, recomputing each; return the final keys."""
    c = h = k = None
    keys = {}
    for step in steps(doc, party):
        f, v = step["formula"], {n: bytes.fromhex(x) for n, x in step["values"].items()}
        if f == "C = HASH(CONSTRUCTION)":
            c = blake2s(v["CONSTRUCTION"])
            assert v["C"] == c
        elif f == "H = HASH(C || IDENTIFIER)":
            h = blake2s(c + v["IDENTIFIER"])
        elif m := re.fullmatch(r"H = HASH\(H \|\| (.+)\)", f):
            h = blake2s(h + v[m[1]])
        elif m := re.fullmatch(r"C = KDF1\(C, (.+)\)", f):
            (c,) = kdf(c, v[m[1]], 1)
        elif m := re.fullmatch(r"\(C, k\) = KDF2\(C, (.+)\)", f):
            c, k = kdf(c, v[m[1]], 2)
        elif f == "(C, tau, k) = KDF3(C, Q)":
            c, tau, k = kdf(c, v["Q"], 3)
            assert v["tau"] == tau
        elif m := re.fullmatch(r"DH\((\w+), (\w+)\)", f):
            assert v[f] == dh(v[m[1]], v[m[2]]), f
            continue
        elif m := re.fullmatch(r"(\S+) = AEAD\(k, 0, (\S+), H\)", f):
            assert (v["k"], v["H"]) == (k, h)
            assert v[m[1]] == aead(k, 0, v[m[2]], h), f
            continue
        elif m := re.fullmatch(r"(\S+) = AEAD-DECRYPT\(k, 0, (\S+), H\)", f):
            assert (v["k"], v["H"]) == (k, h)
            assert v[m[2]] == aead(k, 0, v[m[1]], h), f
            continue
        elif f.startswith("(T_send_i = T_recv_r"):
            keys["T_send_i"], keys["T_recv_i"] = kdf(c, b"", 2)
            assert (v["T_send_i"], v["T_recv_i"]) == (keys["T_send_i"], keys["T_recv_i"])
            continue
        else:
            continue  # MACs, key pairs, the data packets: checked in other tests
        # Every C, H and k a transcript step prints is the one computed here.
        for name, value in (("C", c), ("H", h), ("k", k)):
            if name in v:
                assert v[name] == value, f"{party}: {f}: {name}"
    return keys


# ------------------------------------------------------------------------ the checks


def test_default_run_checks_itself():
    walkthrough = explain.run()
    assert walkthrough.ok, [c for c in walkthrough.checks if not c.ok]
    names = " ".join(c.name for c in walkthrough.checks)
    assert "final keys equal what the two peers derived" in names and "hash chain" in names


def test_the_transcript_starts_from_the_well_known_values():
    first = steps(document(), "initiator")
    construction = next(s for s in first if s["formula"] == "C = HASH(CONSTRUCTION)")
    identifier = next(s for s in first if s["formula"] == "H = HASH(C || IDENTIFIER)")
    assert construction["values"]["C"] == INITIAL_CHAINING_KEY
    assert identifier["values"]["H"] == INITIAL_HASH


@pytest.mark.parametrize("under_load", [False, True], ids=["normal", "under-load"])
def test_both_transcripts_recompute_independently_and_agree(under_load):
    doc = document(under_load=under_load, psk=bytes(range(32)))
    initiator, responder = recompute_transcript(doc, "initiator"), recompute_transcript(doc, "responder")
    assert initiator == responder and len(initiator) == 2
    # The data packet and the keepalive decrypt with the keys recomputed here.
    layouts = [i for p in doc["parts"] for i in p["items"] if i["kind"] == "layout"]
    data, keepalive = (bytes.fromhex(layout["wire"]) for layout in layouts[-2:])
    packet = ChaCha20Poly1305(initiator["T_send_i"]).decrypt(bytes(12), data[16:], b"")
    assert packet[:20] == icmp_echo(explain.INITIATOR_ADDRESS, explain.RESPONDER_ADDRESS)[:20]
    assert ChaCha20Poly1305(initiator["T_recv_i"]).decrypt(bytes(12), keepalive[16:], b"") == b""


@pytest.mark.parametrize("where", ["an H", "a DH result", "a ciphertext", "a MAC", "a transport key", "a layout byte"])
def test_one_wrong_printed_value_is_caught(where):
    doc = document()
    failures, count = verify(doc)
    assert not failures and count > 40
    wanted = {"an H": "H", "a DH result": "DH(S_priv_i, S_pub_r)", "a ciphertext": "msg.encrypted_static",
              "a MAC": "msg.mac1", "a transport key": "T_send_i"}
    if where == "a layout byte":
        layout = next(i for p in doc["parts"] for i in p["items"] if i["kind"] == "layout")
        layout["fields"][3]["hex"] = "00" + layout["fields"][3]["hex"][2:]
    else:
        step = next(s for s in steps(doc) if wanted[where] in s["values"] and not s["given"])
        value = step["values"][wanted[where]]
        step["values"][wanted[where]] = ("0" if value[0] != "0" else "1") + value[1:]
    failures, _ = verify(doc)
    assert failures, where


def test_verification_reads_operations_not_formulas():
    """Rewording every formula changes nothing; a step that claims another operation is caught."""
    doc = document(under_load=True)
    for step in steps(doc):
        step["formula"] = "reworded"
    failures, count = verify(doc)
    assert not failures and count > 60
    hashed = next(s for s in steps(doc) if s["operation"] == "HASH" and not s["given"])
    hashed["operation"] = "MAC"
    assert verify(doc)[0]


def test_same_options_same_output_and_the_seed_changes_only_random_values():
    assert render_json(explain.run(seed=3)) == render_json(explain.run(seed=3))
    first, second = document(seed=1), document(seed=2)
    assert first["parameters"]["S_pub_i"] == second["parameters"]["S_pub_i"]
    ephemeral = [next(s["values"]["E_pub_i"] for s in steps(d) if "E_pub_i" in s["values"]) for d in (first, second)]
    assert ephemeral[0] != ephemeral[1]


def test_chosen_keys_and_preshared_key_are_used():
    initiator, responder, psk = bytes([1] * 32), bytes([2] * 32), bytes([3] * 32)
    walkthrough = explain.run(initiator, responder, psk)
    assert walkthrough.ok
    doc = json.loads(render_json(walkthrough))
    assert doc["parameters"]["S_pub_i"] == key_to_base64(PrivateKey(initiator).public)
    kdf3 = [s for s in steps(doc) if s["formula"] == "(C, tau, k) = KDF3(C, Q)"]
    assert len(kdf3) == 2 and all(s["values"]["Q"] == psk.hex() for s in kdf3)
    with pytest.raises(ValueError):
        explain.run(initiator, initiator)


def test_under_load_adds_the_cookie_round_trip():
    doc = document(under_load=True)
    formulas = [s["formula"] for s in steps(doc)]
    for expected in ("τ = MAC(R_m, A_m')", "msg.encrypted_cookie = XAEAD(cookie_key, msg.nonce, τ, M)",
                     "τ = XAEAD-DECRYPT(cookie_key, msg.nonce, msg.encrypted_cookie, M)", "msg.mac2 = MAC(L_m, msg_β)"):
        assert expected in formulas
    layouts = [i for p in doc["parts"] for i in p["items"] if i["kind"] == "layout"]
    assert [bytes.fromhex(layout["wire"])[0] for layout in layouts] == [1, 3, 1, 2, 4, 4]
    retried = bytes.fromhex(layouts[2]["wire"])
    assert retried[-16:] != bytes(16)  # MAC2, made with the cookie
    assert all(c["ok"] for c in doc["checks"])


def test_every_step_cites_its_whitepaper_section():
    for under_load in (False, True):
        doc = document(under_load=under_load)
        assert {s["section"] for s in steps(doc)} <= SECTIONS
        assert all(p["section"] in SECTIONS for p in doc["parts"])


def test_the_text_and_markdown_show_the_values_the_json_has():
    walkthrough = explain.run()
    doc = json.loads(render_json(walkthrough))
    text, markdown = render_text(walkthrough), render_markdown(walkthrough)
    for step in steps(doc):
        for name, value in step["values"].items():
            if name in TEXT_VALUES:
                continue
            for line in (value[i : i + 64] for i in range(0, len(value), 64)):
                assert line in text and line in markdown, (step["formula"], name)


def test_colour_only_when_asked():
    walkthrough = explain.run()
    assert "\033[" not in render_text(walkthrough)
    assert "\033[" in render_text(walkthrough, colour=True)


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_the_command(output_format, capsys):
    assert cli.main(["explain", "--format", output_format, "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "\033[" not in out  # not a terminal
    if output_format == "json":
        assert verify(json.loads(out))[0] == []
    else:
        assert "msg.encrypted_static = AEAD(k, 0, S_pub_i, H)" in out


def test_bad_keys_are_refused_by_name(capsys):
    assert cli.main(["explain", "--psk", "not-a-key"]) == 2
    assert "not a 32-byte key" in capsys.readouterr().err


# ------------------------------------------------------------------------ tracing in the core


class Exploding(NullTrace):
    """A disabled trace whose step must never be called: tracing off builds nothing."""

    def step(self, formula, section="", **values):
        raise AssertionError("traced while disabled")


def test_tracing_is_off_by_default_and_changes_no_result(rng):
    initiator, responder = PrivateKey.generate(rng), PrivateKey.generate(rng)
    ephemeral, ephemeral_r = PrivateKey.generate(rng), PrivateKey.generate(rng)
    timestamp = tai64n.encode(1.7e9)
    assert not NULL_TRACE.enabled
    off, state_off = noise.create_initiation(initiator, responder.public, ephemeral, 1, timestamp, trace=Exploding())
    recorder = Recorder()
    on, state_on = noise.create_initiation(initiator, responder.public, ephemeral, 1, timestamp, trace=recorder)
    assert off == on and state_off.hash == state_on.hash and recorder.steps
    received = noise.consume_initiation(responder, off, trace=Exploding())
    response, keys = noise.create_response(received, ephemeral_r, None, 2, 1, trace=Exploding())
    assert noise.consume_response(state_off, initiator, response, None, trace=Exploding()).sending_key == keys.receiving_key
    generator, checker = CookieGenerator(responder.public), CookieChecker(responder.public, rng)
    wire = generator.add_macs(off.pack(), 0.0, trace=Exploding())
    reply = checker.create_reply(wire, 1, ("192.0.2.1", 51820), 0.0, trace=Exploding())
    generator.consume_reply(reply, 0.0, trace=Exploding())
    assert generator.add_macs(off.pack(), 1.0, trace=Exploding())[-16:] != bytes(16)
