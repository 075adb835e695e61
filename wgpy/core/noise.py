"""The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake: whitepaper sections 5.4.2 to 5.4.5 (kernel noise.c).

Two layers, one file, because they are one protocol:

* The Noise messages themselves (``write_message_1`` ... ``read_message_2``), with the protocol name,
  prologue, pre-shared key and payloads as parameters. With the cacophony test vector's parameters they
  reproduce its messages byte for byte (``tests/test_noise.py``).
* WireGuard's use of them (``create_initiation`` ... ``consume_response``, ``derive_keypair``): prologue =
  IDENTIFIER, payload of message 1 = a TAI64N timestamp, payload of message 2 empty, indices around them.

The pattern, as Noise writes it::

    IKpsk2:
      <- s
      ...
      -> e, es, s, ss
      <- e, ee, se, psk

Every function computes on local values and returns new immutable state, or raises
:class:`~wgpy.core.errors.Rejected`; nothing is changed when a message is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from .constants import CONSTRUCTION, IDENTIFIER, KEY_LEN, TIMESTAMP_LEN
from .crypto import AEAD, AEAD_DECRYPT, HASH, KDF1, KDF2, KDF3, ZERO_KEY, PrivateKey, aead_nonce
from .messages import Initiation, Response
from .record import record
from .trace import NULL_TRACE, NullTrace, Op


def dh_name(names: tuple[str, str]) -> str:
    """How the whitepaper writes a Diffie-Hellman result: ``DH(E_priv_i, S_pub_r)``."""
    return f"DH({names[0]}, {names[1]})"


class Transcript:
    """Noise's symmetric state: the chaining key C and the hash H (section 5.4, "Protocol Overview").

    A transcript is a scratch object owned by one function call; the results leave it as frozen state.
    ``section`` is the whitepaper section of the message being processed, which every traced step cites.
    Each primitive traces only when ``trace.enabled``, so the default :data:`NULL_TRACE` costs one
    attribute test per step and builds no strings.
    """

    __slots__ = ("chaining_key", "hash", "trace", "section")

    def __init__(self, chaining_key: bytes, hash: bytes, trace: NullTrace, section: str = "5.4.2") -> None:
        self.chaining_key = chaining_key
        self.hash = hash
        self.trace = trace
        self.section = section

    @classmethod
    def start(
        cls,
        responder_public: bytes,
        *,
        protocol_name: bytes = CONSTRUCTION,
        prologue: bytes = IDENTIFIER,
        trace: NullTrace = NULL_TRACE,
    ) -> "Transcript":
        """InitializeSymmetric(protocol_name), MixHash(prologue), then the pre-message ``<- s``."""
        if len(protocol_name) <= KEY_LEN:  # Noise section 5.2; WireGuard's name is 37 bytes, so it is hashed
            chaining_key = protocol_name.ljust(KEY_LEN, b"\0")
            operation, formula = Op.PAD_TO_HASHLEN, "C = CONSTRUCTION padded to 32 bytes"
        else:
            chaining_key = HASH(protocol_name)
            operation, formula = Op.HASH, "C = HASH(CONSTRUCTION)"
        # Noise starts H equal to C, so its MixHash(prologue) is the whitepaper's HASH(C || IDENTIFIER).
        hash = HASH(chaining_key + prologue)
        if trace.enabled:
            trace.step(operation, formula, "5.4.2", ("CONSTRUCTION",), ("C",), CONSTRUCTION=protocol_name, C=chaining_key)
            trace.step(Op.HASH, "H = HASH(C || IDENTIFIER)", "5.4.2", ("C", "IDENTIFIER"), ("H",),
                       C=chaining_key, IDENTIFIER=prologue, H=hash)
        transcript = cls(chaining_key, hash, trace)
        transcript.mix_hash(responder_public, "S_pub_r")
        return transcript

    def mix_hash(self, data: bytes, what: str) -> None:
        """H = HASH(H || data)."""
        self.hash = HASH(self.hash + data)
        if self.trace.enabled:
            self.trace.step(Op.HASH, f"H = HASH(H || {what})", self.section, ("H", what), ("H",),
                            **{what: data, "H": self.hash})

    def mix_key(self, data: bytes, what: str) -> None:
        """C = KDF1(C, data)."""
        self.chaining_key = KDF1(self.chaining_key, data)
        if self.trace.enabled:
            self.trace.step(Op.KDF1, f"C = KDF1(C, {what})", self.section, ("C", what), ("C",),
                            **{what: data, "C": self.chaining_key})

    def mix_dh(self, private: PrivateKey, public: bytes, names: tuple[str, str], shared: bytes | None = None) -> None:
        """C = KDF1(C, DH(private, public)): the ``ee`` and ``se`` tokens of message 2. ``shared`` is
        DH(private, public) when the caller computed it ahead of time (a prepared response's ``se``)."""
        if shared is None:
            shared = self._dh(private, public, names)
        elif self.trace.enabled:
            self._trace_dh(private, public, names, shared)
        self.mix_key(shared, dh_name(names) if self.trace.enabled else "")

    def mix_dh_for_key(self, private: PrivateKey, public: bytes, names: tuple[str, str],
                       shared: bytes | None = None) -> bytes:
        """(C, k) = KDF2(C, DH(private, public)); returns k: the ``es`` and ``ss`` tokens of message 1.
        ``shared`` is DH(private, public) when the caller has it already (the static-static one, which
        the device keeps per peer as the kernel's ``precomputed_static_static``)."""
        if shared is None:
            shared = self._dh(private, public, names)
        elif self.trace.enabled:
            self._trace_dh(private, public, names, shared)
        self.chaining_key, key = KDF2(self.chaining_key, shared)
        if self.trace.enabled:
            what = dh_name(names)
            self.trace.step(Op.KDF2, f"(C, k) = KDF2(C, {what})", self.section, ("C", what), ("C", "k"),
                            **{what: shared, "C": self.chaining_key, "k": key})
        return key

    def _dh(self, private: PrivateKey, public: bytes, names: tuple[str, str]) -> bytes:
        """DH(private, public); ``names`` are the whitepaper's, ``("E_priv_i", "S_pub_r")``."""
        shared = private.exchange(public)
        if self.trace.enabled:
            self._trace_dh(private, public, names, shared)
        return shared

    def _trace_dh(self, private: PrivateKey, public: bytes, names: tuple[str, str], shared: bytes) -> None:
        what = dh_name(names)
        self.trace.step(Op.DH, what, self.section, names, (what,),
                        **{names[0]: private.private_bytes(), names[1]: public, what: shared})

    def mix_psk(self, preshared_key: bytes) -> bytes:
        """(C, tau, k) = KDF3(C, Q); H = HASH(H || tau); returns k: the ``psk`` token."""
        self.chaining_key, tau, key = KDF3(self.chaining_key, preshared_key)
        if self.trace.enabled:
            self.trace.step(Op.KDF3, "(C, tau, k) = KDF3(C, Q)", self.section, ("C", "Q"), ("C", "tau", "k"),
                            Q=preshared_key, C=self.chaining_key, tau=tau, k=key)
        self.mix_hash(tau, "tau")
        return key

    def encrypt_and_hash(self, key: bytes, plaintext: bytes, what: str, field: str = "ciphertext") -> bytes:
        """field = AEAD(k, 0, plaintext, H); H = HASH(H || field)."""
        ciphertext = AEAD(key, 0, plaintext, self.hash)
        if self.trace.enabled:
            values = {"k": key, "nonce": aead_nonce(0), "H": self.hash, what: plaintext, field: ciphertext}
            self.trace.step(Op.AEAD, f"{field} = AEAD(k, 0, {what}, H)", self.section, ("k", "0", what, "H"),
                            ("nonce", field), **values)
        self.mix_hash(ciphertext, field)
        return ciphertext

    def decrypt_and_hash(self, key: bytes, ciphertext: bytes, what: str, field: str = "ciphertext") -> bytes:
        """plaintext = AEAD-DECRYPT(k, 0, field, H); H = HASH(H || field). Raises Rejected on a bad tag."""
        plaintext = AEAD_DECRYPT(key, 0, ciphertext, self.hash)
        if self.trace.enabled:
            values = {"k": key, "nonce": aead_nonce(0), "H": self.hash, field: ciphertext, what: plaintext}
            self.trace.step(Op.AEAD_DECRYPT, f"{what} = AEAD-DECRYPT(k, 0, {field}, H)", self.section,
                            ("k", "0", field, "H"), ("nonce", what), **values)
        self.mix_hash(ciphertext, field)
        return plaintext


# ------------------------------------------------------------------------------------- handshake state


@record(hidden=("ephemeral", "chaining_key"))
class InitiatorHandshake:
    """What the initiator keeps between sending message 1 and reading message 2."""

    responder_public: bytes
    ephemeral: PrivateKey
    chaining_key: bytes
    hash: bytes


@record(hidden=("chaining_key",))
class ResponderHandshake:
    """What the responder learned from a valid message 1: who sent it, its payload, and the transcript."""

    initiator_public: bytes
    payload: bytes
    remote_ephemeral: bytes
    chaining_key: bytes
    hash: bytes


@record(hidden=("ephemeral", "chaining_key", "key"))
class PreparedMessage1:
    """Message 1 written up to its payload (``e, es, s, ss``): what ``begin_message_1`` computes before
    the payload is known, and ``finish_message_1`` completes. Nothing in it depends on the moment of
    sending, so the device can compute it ahead of time (prepare.py)."""

    initiator_public: bytes
    responder_public: bytes
    ephemeral: PrivateKey
    encrypted_static: bytes
    chaining_key: bytes
    hash: bytes
    key: bytes


@record(hidden=("chaining_key",))
class HandshakeResult:
    """The end of a handshake: the final chaining key (for the transport keys) and handshake hash."""

    chaining_key: bytes
    hash: bytes
    payload: bytes = b""


# ---------------------------------------------------------------------------------- the Noise messages


# What the payloads and their ciphertexts are called in traces: Noise's words by default; WireGuard's
# layer below names them as the whitepaper does (msg.encrypted_timestamp, msg.encrypted_nothing).
PAYLOAD = ("payload", "msg.encrypted_payload")


def write_message_1(
    transcript: Transcript,
    initiator: PrivateKey,
    responder_public: bytes,
    ephemeral: PrivateKey,
    payload: bytes,
    payload_names: tuple[str, str] = PAYLOAD,
    static_static: bytes | None = None,
) -> tuple[bytes, bytes, bytes, InitiatorHandshake]:
    """``-> e, es, s, ss`` with ``payload``; returns (e_pub, AEAD(s_pub), AEAD(payload), state).
    ``static_static``: DH(initiator, responder_public) if already known."""
    prepared = begin_message_1(transcript, initiator, responder_public, ephemeral, static_static)
    return finish_message_1(prepared, payload, transcript.trace, payload_names)


def begin_message_1(
    transcript: Transcript,
    initiator: PrivateKey,
    responder_public: bytes,
    ephemeral: PrivateKey,
    static_static: bytes | None = None,
) -> PreparedMessage1:
    """The part of ``-> e, es, s, ss`` that comes before the payload: every token of the message."""
    t = transcript
    # e
    t.mix_key(ephemeral.public, "E_pub_i")
    t.mix_hash(ephemeral.public, "E_pub_i")
    # es
    key = t.mix_dh_for_key(ephemeral, responder_public, ("E_priv_i", "S_pub_r"))
    # s
    encrypted_static = t.encrypt_and_hash(key, initiator.public, "S_pub_i", "msg.encrypted_static")
    # ss
    key = t.mix_dh_for_key(initiator, responder_public, ("S_priv_i", "S_pub_r"), static_static)
    return PreparedMessage1(initiator.public, responder_public, ephemeral, encrypted_static, t.chaining_key,
                            t.hash, key)


def finish_message_1(
    prepared: PreparedMessage1,
    payload: bytes,
    trace: NullTrace = NULL_TRACE,
    payload_names: tuple[str, str] = PAYLOAD,
) -> tuple[bytes, bytes, bytes, InitiatorHandshake]:
    """The payload of message 1 (the TAI64N timestamp in WireGuard), encrypted with the key ``ss`` left."""
    t = Transcript(prepared.chaining_key, prepared.hash, trace)
    encrypted_payload = t.encrypt_and_hash(prepared.key, payload, *payload_names)
    state = InitiatorHandshake(prepared.responder_public, prepared.ephemeral, t.chaining_key, t.hash)
    return prepared.ephemeral.public, prepared.encrypted_static, encrypted_payload, state


def read_message_1(
    transcript: Transcript,
    responder: PrivateKey,
    unencrypted_ephemeral: bytes,
    encrypted_static: bytes,
    encrypted_payload: bytes,
    payload_names: tuple[str, str] = PAYLOAD,
    static_static: Callable[[bytes], bytes | None] | None = None,
) -> ResponderHandshake:
    """The responder's side of ``-> e, es, s, ss``. Raises Rejected if any step fails. ``static_static``
    gives DH(responder, initiator's static public key) for the keys it has it for (None otherwise)."""
    t = transcript
    # e
    t.mix_key(unencrypted_ephemeral, "E_pub_i")
    t.mix_hash(unencrypted_ephemeral, "E_pub_i")
    # es
    key = t.mix_dh_for_key(responder, unencrypted_ephemeral, ("S_priv_r", "E_pub_i"))
    # s
    initiator_public = t.decrypt_and_hash(key, encrypted_static, "S_pub_i", "msg.encrypted_static")
    # ss
    known = static_static(initiator_public) if static_static is not None else None
    key = t.mix_dh_for_key(responder, initiator_public, ("S_priv_r", "S_pub_i"), known)
    # payload
    payload = t.decrypt_and_hash(key, encrypted_payload, *payload_names)
    return ResponderHandshake(initiator_public, payload, unencrypted_ephemeral, t.chaining_key, t.hash)


def write_message_2(
    state: ResponderHandshake,
    ephemeral: PrivateKey,
    preshared_key: bytes,
    payload: bytes,
    trace: NullTrace = NULL_TRACE,
    payload_names: tuple[str, str] = PAYLOAD,
    ephemeral_static: bytes | None = None,
) -> tuple[bytes, bytes, HandshakeResult]:
    """``<- e, ee, se, psk`` with ``payload``; returns (e_pub, AEAD(payload), result).
    ``ephemeral_static``: DH(ephemeral, initiator's static public key) if already known."""
    t = Transcript(state.chaining_key, state.hash, trace, "5.4.3")
    # e
    t.mix_key(ephemeral.public, "E_pub_r")
    t.mix_hash(ephemeral.public, "E_pub_r")
    # ee
    t.mix_dh(ephemeral, state.remote_ephemeral, ("E_priv_r", "E_pub_i"))
    # se
    t.mix_dh(ephemeral, state.initiator_public, ("E_priv_r", "S_pub_i"), ephemeral_static)
    # psk
    key = t.mix_psk(preshared_key)
    # payload (empty in WireGuard: "encrypted_nothing")
    encrypted_payload = t.encrypt_and_hash(key, payload, *payload_names)
    return ephemeral.public, encrypted_payload, HandshakeResult(t.chaining_key, t.hash)


def read_message_2(
    state: InitiatorHandshake,
    initiator: PrivateKey,
    unencrypted_ephemeral: bytes,
    encrypted_payload: bytes,
    preshared_key: bytes,
    trace: NullTrace = NULL_TRACE,
    payload_names: tuple[str, str] = PAYLOAD,
) -> HandshakeResult:
    """The initiator's side of ``<- e, ee, se, psk``. Raises Rejected if any step fails."""
    t = Transcript(state.chaining_key, state.hash, trace, "5.4.3")
    # e
    t.mix_key(unencrypted_ephemeral, "E_pub_r")
    t.mix_hash(unencrypted_ephemeral, "E_pub_r")
    # ee
    t.mix_dh(state.ephemeral, unencrypted_ephemeral, ("E_priv_i", "E_pub_r"))
    # se
    t.mix_dh(initiator, unencrypted_ephemeral, ("S_priv_i", "E_pub_r"))
    # psk
    key = t.mix_psk(preshared_key)
    # payload
    payload = t.decrypt_and_hash(key, encrypted_payload, *payload_names)
    return HandshakeResult(t.chaining_key, t.hash, payload)


def split(chaining_key: bytes, trace: NullTrace = NULL_TRACE) -> tuple[bytes, bytes]:
    """(T_i->r, T_r->i) = KDF2(C, empty): the initiator sends with the first, the responder with the second
    (section 5.4.5; Noise's Split())."""
    initiator_to_responder, responder_to_initiator = KDF2(chaining_key, b"")
    if trace.enabled:
        trace.step(
            Op.SPLIT,
            "(T_send_i = T_recv_r, T_recv_i = T_send_r) = KDF2(C, ε)",
            "5.4.5",
            ("C", "ε"),
            ("T_send_i", "T_recv_i", "T_recv_r", "T_send_r"),
            C=chaining_key,
            T_send_i=initiator_to_responder,
            T_recv_i=responder_to_initiator,
        )
    return initiator_to_responder, responder_to_initiator


# ------------------------------------------------------------------------------------ WireGuard's use


TIMESTAMP = ("timestamp", "msg.encrypted_timestamp")  # the payload of the initiation
NOTHING = ("ε", "msg.encrypted_nothing")  # the response's empty payload ("msg.empty" in the whitepaper)


@record(hidden=("sending_key", "receiving_key"))
class TransportKeys:
    """The symmetric keys of one session, seen from one side (section 5.4.5)."""

    sending_key: bytes
    receiving_key: bytes
    is_initiator: bool
    handshake_hash: bytes


def create_initiation(
    local: PrivateKey,
    responder_public: bytes,
    ephemeral: PrivateKey,
    sender_index: int,
    timestamp: bytes,
    *,
    trace: NullTrace = NULL_TRACE,
    static_static: bytes | None = None,
) -> tuple[Initiation, InitiatorHandshake]:
    """The handshake initiation (section 5.4.2), with MAC1 and MAC2 still zero (cookie.py adds them)."""
    prepared = prepare_initiation(local, responder_public, ephemeral, trace=trace, static_static=static_static)
    return finish_initiation(prepared, sender_index, timestamp, trace=trace)


def prepare_initiation(
    local: PrivateKey,
    responder_public: bytes,
    ephemeral: PrivateKey,
    *,
    trace: NullTrace = NULL_TRACE,
    static_static: bytes | None = None,
) -> PreparedMessage1:
    """An initiation from ``local`` to ``responder_public`` up to its timestamp: both X25519 operations
    and the encrypted static key. ``finish_initiation`` makes the message of it, once."""
    transcript = Transcript.start(responder_public, trace=trace)
    return begin_message_1(transcript, local, responder_public, ephemeral, static_static)


def finish_initiation(
    prepared: PreparedMessage1, sender_index: int, timestamp: bytes, *, trace: NullTrace = NULL_TRACE
) -> tuple[Initiation, InitiatorHandshake]:
    """The initiation of a prepared message 1, with its index and TAI64N timestamp (MACs still zero)."""
    if len(timestamp) != TIMESTAMP_LEN:
        raise ValueError("the initiation's payload is a 12-byte TAI64N timestamp")
    ephemeral_public, encrypted_static, encrypted_timestamp, state = finish_message_1(
        prepared, timestamp, trace, TIMESTAMP
    )
    message = Initiation(sender_index, ephemeral_public, encrypted_static, encrypted_timestamp)
    return message, state


def consume_initiation(local: PrivateKey, message: Initiation, *, trace: NullTrace = NULL_TRACE,
                       static_static: Callable[[bytes], bytes | None] | None = None) -> ResponderHandshake:
    """Decrypt an initiation addressed to ``local``. The caller then checks that ``initiator_public`` is a
    peer and that the timestamp (``payload``) is newer than the last one accepted from it.
    ``static_static(initiator_public)``, if given, is the static-static DH when the caller has it."""
    transcript = Transcript.start(local.public, trace=trace)
    return read_message_1(
        transcript, local, message.unencrypted_ephemeral, message.encrypted_static, message.encrypted_timestamp, TIMESTAMP,
        static_static,
    )


def create_response(
    state: ResponderHandshake,
    ephemeral: PrivateKey,
    preshared_key: bytes | None,
    sender_index: int,
    receiver_index: int,
    *,
    trace: NullTrace = NULL_TRACE,
    ephemeral_static: bytes | None = None,
) -> tuple[Response, TransportKeys]:
    """The handshake response (section 5.4.3) and the responder's transport keys (MACs still zero).
    ``ephemeral_static``: DH(ephemeral, the initiator's static public key), if computed ahead of time."""
    ephemeral_public, encrypted_nothing, result = write_message_2(
        state, ephemeral, _psk(preshared_key), b"", trace, NOTHING, ephemeral_static
    )
    message = Response(sender_index, receiver_index, ephemeral_public, encrypted_nothing)
    return message, derive_keys(result, is_initiator=False, trace=trace)


def consume_response(
    state: InitiatorHandshake,
    local: PrivateKey,
    message: Response,
    preshared_key: bytes | None,
    *,
    trace: NullTrace = NULL_TRACE,
) -> TransportKeys:
    """Finish the handshake on the initiator's side; raises Rejected if the response is not authentic."""
    result = read_message_2(
        state, local, message.unencrypted_ephemeral, message.encrypted_nothing, _psk(preshared_key), trace, NOTHING
    )
    return derive_keys(result, is_initiator=True, trace=trace)


def derive_keys(result: HandshakeResult, *, is_initiator: bool, trace: NullTrace = NULL_TRACE) -> TransportKeys:
    """The transport keys from the final chaining key (section 5.4.5)."""
    initiator_to_responder, responder_to_initiator = split(result.chaining_key, trace)
    if is_initiator:
        return TransportKeys(initiator_to_responder, responder_to_initiator, True, result.hash)
    return TransportKeys(responder_to_initiator, initiator_to_responder, False, result.hash)


def _psk(preshared_key: bytes | None) -> bytes:
    """Q: the pre-shared key, 32 zero bytes when there is none (section 5.2)."""
    if preshared_key is None:
        return ZERO_KEY
    if len(preshared_key) != KEY_LEN:
        raise ValueError("a preshared key is 32 bytes")
    return preshared_key
