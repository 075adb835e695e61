"""Keys as text (wgpy/core/encoding.py) against wireguard-tools' encoding.c."""

import base64

import pytest

from wgpy.core.encoding import key_from_base64, key_from_hex, key_to_base64, key_to_hex

KEY = bytes(range(32))


def test_round_trips():
    assert key_to_base64(KEY) == base64.b64encode(KEY).decode()
    assert key_from_base64(key_to_base64(KEY)) == KEY
    assert key_to_hex(KEY) == KEY.hex()
    assert key_from_hex(key_to_hex(KEY)) == KEY == key_from_hex(KEY.hex().upper())


def test_base64_is_exactly_44_canonical_characters():
    text = key_to_base64(KEY)
    non_canonical = text[:42] + chr(ord(text[42]) + 1) + "="   # the 43rd character's unused bits set
    for bad in ["", text[:-1], text + "=", " " + text[1:], text[:43] + "A", non_canonical, "é" * 43 + "="]:
        with pytest.raises(ValueError):
            key_from_base64(bad)


def test_hex_is_exactly_64_digits_and_errors_never_quote_the_text():
    for bad in ["", KEY.hex()[:-1], KEY.hex() + "0", "g" * 64, " " + KEY.hex()[1:], "٠" * 64]:
        with pytest.raises(ValueError) as caught:
            key_from_hex(bad)
        assert bad[1:] not in str(caught.value) or not bad
