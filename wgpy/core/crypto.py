"""The cryptographic primitives of whitepaper section 5.4, and nothing else.

    DH           X25519 (RFC 7748), rejecting the all-zero result
    AEAD         ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce: 32 zero bits || 64-bit LE counter
    XAEAD        XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03), HChaCha20 computed here
    HASH         BLAKE2s-256 (RFC 7693)
    MAC          keyed BLAKE2s with a 128-bit output
    HMAC         HMAC over BLAKE2s (RFC 2104, 64-byte block)
    KDF1/2/3     HKDF (RFC 5869) over that HMAC, with 1, 2 or 3 outputs

This is the only module of the core that imports ``cryptography``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# BLAKE2s and the constant-time compare straight from the interpreter's own C modules, which is where
# ``hashlib.blake2s`` and (without OpenSSL) ``hmac.compare_digest`` come from: importing ``hashlib`` or
# ``hmac`` loads the system's libcrypto, 3.4 MiB of resident memory an idle daemon does not need.
from _blake2 import blake2s as _blake2s
from _operator import _compare_digest

from .constants import KEY_LEN
from .errors import Drop, Rejected

_CRYPTOGRAPHY_NAMES = ("InvalidTag", "X25519PrivateKey", "X25519PublicKey", "Cipher", "algorithms", "ChaCha20Poly1305")
_loaded = False


def _load() -> None:
    """Import ``cryptography`` on the first use of a key rather than with this module: it is about 7 MiB of
    resident memory and 10 ms of start-up that an unconfigured daemon, ``wgpy --help`` or ``wgpy decode``
    of a capture without keys never need (benchmarks/bench_startup.py). Every function below that uses
    one of its names calls this first."""
    global _loaded, InvalidTag, X25519PrivateKey, X25519PublicKey, Cipher, algorithms, ChaCha20Poly1305
    if _loaded:
        return
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    _loaded = True
    _warm_up()


def _warm_up() -> None:
    """Use each primitive of a handshake once, on throwaway inputs. OpenSSL looks an algorithm up on its
    first use in a process (about 0.3 ms for ChaCha20-Poly1305, 0.05 ms for X25519 here): paid now, when
    a key is set, that is not added to the first handshake, and so to the first packet's round trip."""
    aead = ChaCha20Poly1305(ZERO_KEY)
    aead.decrypt(bytes(12), aead.encrypt(bytes(12), ZERO_KEY, ZERO_KEY), ZERO_KEY)
    key = X25519PrivateKey.from_private_bytes(ZERO_KEY)
    key.exchange(X25519PrivateKey.from_private_bytes(bytes(31) + b"\x01").public_key())


def __getattr__(name: str):
    """``crypto.InvalidTag`` (and the other names of ``cryptography`` used here), loaded when first asked for."""
    if name in _CRYPTOGRAPHY_NAMES:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

Rng = Callable[[int], bytes]
"""Where the core's randomness comes from: ``rng(n)`` returns ``n`` random bytes (``os.urandom`` in the
runtime, a seeded generator in tests)."""

ZERO_KEY = bytes(KEY_LEN)


def _check_len(value: bytes, length: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != length:
        raise ValueError(f"{what} must be {length} bytes")
    return bytes(value)


# ---------------------------------------------------------------------------------------------- X25519


class PrivateKey:
    """An X25519 private key. It never prints its bytes: ``repr`` shows the public key only."""

    __slots__ = ("_raw", "_key", "public")

    def __init__(self, raw: bytes) -> None:
        _load()
        self._raw = _check_len(raw, KEY_LEN, "a private key")
        self._key = X25519PrivateKey.from_private_bytes(self._raw)
        self.public: bytes = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, rng: Rng) -> "PrivateKey":
        """DH-GENERATE(): 32 random bytes, clamped as RFC 7748 section 5 and ``wg genkey`` do."""
        return cls(clamp(rng(KEY_LEN)))

    def exchange(self, public: bytes) -> bytes:
        """DH(self, public). Raises :class:`Rejected` if the result is all zeros (a low-order point),
        which the kernel and wireguard-go refuse."""
        peer = X25519PublicKey.from_public_bytes(_check_len(public, KEY_LEN, "a public key"))
        try:
            shared = self._key.exchange(peer)
        except ValueError:  # OpenSSL refuses the all-zero result itself
            raise Rejected(Drop.ZERO_SHARED_SECRET) from None
        if constant_time_equal(shared, ZERO_KEY):  # the kernel's crypto_memneq: no early exit on a secret
            raise Rejected(Drop.ZERO_SHARED_SECRET)
        return shared

    def private_bytes(self) -> bytes:
        """The raw key, for the few places that must write it (UAPI ``get``, ``wgpy explain``)."""
        return self._raw

    def __repr__(self) -> str:
        return f"PrivateKey(<redacted>, public={self.public.hex()[:16]}...)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and constant_time_equal(self._raw, other.private_bytes())

    def __hash__(self) -> int:
        return hash(self.public)


def clamp(raw: bytes) -> bytes:
    """Clamp a scalar as RFC 7748 section 5 describes (what ``wg genkey`` stores)."""
    b = bytearray(_check_len(raw, KEY_LEN, "a private key"))
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return bytes(b)


def public_key(raw_private: bytes) -> bytes:
    """The X25519 public key of a raw private key."""
    return PrivateKey(raw_private).public


def x25519(scalar: bytes, u: bytes) -> bytes:
    """Raw X25519 (RFC 7748 section 5), without the all-zero check: for vectors and explanations."""
    _load()
    key = X25519PrivateKey.from_private_bytes(_check_len(scalar, KEY_LEN, "a scalar"))
    peer = X25519PublicKey.from_public_bytes(_check_len(u, KEY_LEN, "a u-coordinate"))
    try:
        return key.exchange(peer)
    except ValueError:
        return ZERO_KEY


# ---------------------------------------------------------------------------------------------- Hashes


def HASH(data: bytes) -> bytes:
    """BLAKE2s-256."""
    return _blake2s(data).digest()


def MAC(key: bytes, data: bytes) -> bytes:
    """Keyed BLAKE2s with a 16-byte output (MAC1, MAC2 and the cookie)."""
    return _blake2s(data, digest_size=16, key=key).digest()


_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def HMAC(key: bytes, data: bytes) -> bytes:
    """HMAC-BLAKE2s-256 (RFC 2104 with BLAKE2s's 64-byte block).

    Written out rather than through ``hmac.new`` because it is the inner loop of every KDF: two
    ``blake2s`` calls over the padded key cost about half as much.
    """
    if len(key) > _BLOCK:
        key = _blake2s(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _blake2s(key.translate(_IPAD))
    inner.update(data)
    outer = _blake2s(key.translate(_OPAD))
    outer.update(inner.digest())
    return outer.digest()


def KDF1(key: bytes, data: bytes) -> bytes:
    """HKDF with one 32-byte output (whitepaper section 5.4: KDF_1)."""
    prk = HMAC(key, data)
    return HMAC(prk, b"\x01")


def KDF2(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    """HKDF with two 32-byte outputs (KDF_2)."""
    prk = HMAC(key, data)
    t1 = HMAC(prk, b"\x01")
    return t1, HMAC(prk, t1 + b"\x02")


def KDF3(key: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF with three 32-byte outputs (KDF_3)."""
    prk = HMAC(key, data)
    t1 = HMAC(prk, b"\x01")
    t2 = HMAC(prk, t1 + b"\x02")
    return t1, t2, HMAC(prk, t2 + b"\x03")


# ---------------------------------------------------------------------------------------------- AEAD

_NONCE_PREFIX = bytes(4)
_COUNTER = struct.Struct("<Q")


def aead_nonce(counter: int) -> bytes:
    """WireGuard's 96-bit nonce: 32 zero bits, then the counter as 64-bit little-endian."""
    return _NONCE_PREFIX + _COUNTER.pack(counter)


def aead_context(key: bytes) -> ChaCha20Poly1305:
    """A reusable ChaCha20-Poly1305 context for one transport key: the hot path keeps one per direction
    and calls its ``encrypt``/``decrypt`` with :func:`aead_nonce` nonces (a failed ``decrypt`` raises
    :class:`InvalidTag`, re-exported here)."""
    _load()
    return ChaCha20Poly1305(key)


def AEAD(key: bytes, counter: int, plaintext: bytes, associated_data: bytes) -> bytes:
    """ChaCha20-Poly1305 encryption; returns ciphertext || 16-byte tag."""
    _load()
    return ChaCha20Poly1305(key).encrypt(aead_nonce(counter), plaintext, associated_data)


def AEAD_DECRYPT(key: bytes, counter: int, ciphertext: bytes, associated_data: bytes) -> bytes:
    """ChaCha20-Poly1305 decryption; raises :class:`Rejected` (DECRYPTION_FAILED) if the tag is wrong."""
    _load()
    try:
        return ChaCha20Poly1305(key).decrypt(aead_nonce(counter), ciphertext, associated_data)
    except InvalidTag:
        raise Rejected(Drop.DECRYPTION_FAILED) from None


_SIGMA = b"expand 32-byte k"
_WORDS = struct.Struct("<16I")


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 (draft-irtf-cfrg-xchacha-03 section 2.2).

    HChaCha20 is the ChaCha20 block function without its final addition of the input state, keeping
    words 0-3 and 12-15. One ChaCha20 keystream block *with* the addition is computed by
    ``cryptography`` (its 16-byte nonce is exactly state words 12-15), so subtracting the known input
    words back out gives HChaCha20's output: about 7 us, against about 60 us for the rounds in Python.
    """
    _load()
    _check_len(key, 32, "an HChaCha20 key")
    _check_len(nonce16, 16, "an HChaCha20 nonce")
    encryptor = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor()
    block = _WORDS.unpack(encryptor.update(bytes(64)))
    initial = struct.unpack("<4I", _SIGMA) + struct.unpack("<4I", nonce16)
    out = [(block[i] - initial[j]) & 0xFFFFFFFF for j, i in enumerate((0, 1, 2, 3, 12, 13, 14, 15))]
    return struct.pack("<8I", *out)


def _xaead_subkey_and_nonce(key: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    _check_len(nonce, 24, "an XChaCha20-Poly1305 nonce")
    return hchacha20(key, nonce[:16]), _NONCE_PREFIX + nonce[16:]


def XAEAD(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """XChaCha20-Poly1305 encryption with a 24-byte nonce (the cookie reply)."""
    _load()
    subkey, short_nonce = _xaead_subkey_and_nonce(key, nonce)
    return ChaCha20Poly1305(subkey).encrypt(short_nonce, plaintext, associated_data)


def XAEAD_DECRYPT(key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """XChaCha20-Poly1305 decryption; raises :class:`Rejected` (DECRYPTION_FAILED) on a wrong tag."""
    _load()
    subkey, short_nonce = _xaead_subkey_and_nonce(key, nonce)
    try:
        return ChaCha20Poly1305(subkey).decrypt(short_nonce, ciphertext, associated_data)
    except InvalidTag:
        raise Rejected(Drop.DECRYPTION_FAILED) from None


class XAEADSealer:
    """XChaCha20-Poly1305 encryption under one key for many messages: the cookie replies a flood asks for.

    HChaCha20 (the dearer half of XAEAD) depends only on the key and the first 16 bytes of the nonce, so
    this draws those 16 bytes afresh only every ``uses`` messages and the last 8 for each message. A
    receiver still sees 24 random-looking bytes, and no nonce repeats under a key: two draws of 8 random
    bytes under one prefix, among at most ``uses`` (1024), collide with probability below 2**-45. The first
    message's nonce is ``rng(24)``, exactly as :func:`XAEAD` with a fresh nonce would use it.
    """

    __slots__ = ("_key", "_rng", "_uses", "_left", "_prefix", "_aead")

    def __init__(self, key: bytes, rng: Rng, uses: int = 1024) -> None:
        self._key = _check_len(key, 32, "an XChaCha20-Poly1305 key")
        self._rng = rng
        self._uses = uses
        self._left = 0
        self._prefix = b""
        self._aead: ChaCha20Poly1305 | None = None

    def nonce(self) -> bytes:
        """A fresh 24-byte nonce for the next :meth:`seal`."""
        if self._left:
            self._left -= 1
            return self._prefix + self._rng(8)
        _load()
        nonce = self._rng(24)
        self._prefix = nonce[:16]
        self._aead = ChaCha20Poly1305(hchacha20(self._key, self._prefix))
        self._left = self._uses - 1
        return nonce

    def seal(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt under ``nonce``, the last one :meth:`nonce` gave."""
        if nonce[:16] != self._prefix:
            raise ValueError("seal takes the nonce that nonce() gave last")
        return self._aead.encrypt(_NONCE_PREFIX + nonce[16:], plaintext, associated_data)

    def __repr__(self) -> str:
        return "XAEADSealer(<key redacted>)"


# ---------------------------------------------------------------------------------------------- misc


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare secrets and authenticators without leaking where they differ."""
    return _compare_digest(a, b)   # hmac.compare_digest without OpenSSL: no early exit either way
