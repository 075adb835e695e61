"""Configuration files (wgpy/config.py): both dialects as wireguard-tools' config.c and wg-quick's
linux.bash read them, every named error with its line, the UAPI text `wg setconf` sends and `wg-quick strip`
(the plans of `ip` commands for up and down are in test_quick_plan.py)."""

from __future__ import annotations

import base64
import os
from ipaddress import IPv4Address, IPv6Address, ip_interface

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.config import (
    ConfigError,
    Endpoint,
    InterfaceConfig,
    PeerConfig,
    Reason,
    WorldAccessibleWarning,
    format_ip,
    interface_name,
    load,
    parse,
    parse_key,
    strip,
    to_uapi_set,
)
from wgpy.quick_plan import plan_down, plan_up


def key(n: int) -> bytes:
    return bytes([n]) * 32


def b64(n: int) -> str:
    return base64.b64encode(key(n)).decode()


PRIVATE = b64(0x11)      # EREREREREREREREREREREREREREREREREREREREREkE= -- never in a message or repr
PUBLIC_A, PUBLIC_B = b64(0x22), b64(0x33)
PRESHARED = b64(0x44)

FULL = f"""\
# Every key of both dialects.
[Interface]
PrivateKey = {PRIVATE}
ListenPort = 51820
FwMark = 0x1234
Address = 10.0.0.2/24, fd00::2/64
Address = 192.0.2.9
DNS = 10.0.0.1, fd00::1, internal.example, corp.example
MTU = 1380
Table = 1234
PreUp = echo pre-up %i
PostUp = iptables -A FORWARD -i %i -j ACCEPT  # the comment stays: wg-quick keeps hooks whole
PreDown = echo pre-down %i
PostDown = echo post-down %i
SaveConfig = true

[Peer]
PublicKey = {PUBLIC_A}
PresharedKey = {PRESHARED}
AllowedIPs = 10.0.0.0/24, fd00::/64
AllowedIPs = 10.1.2.3/16
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = {PUBLIC_B}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = [2001:db8::1]:4500
PersistentKeepalive = off
"""


def test_full_wg_quick_file():
    config = parse(FULL)
    assert config == InterfaceConfig(
        private_key=key(0x11),
        listen_port=51820,
        fwmark=0x1234,
        addresses=(ip_interface("10.0.0.2/24"), ip_interface("fd00::2/64"), ip_interface("192.0.2.9/32")),
        dns=(IPv4Address("10.0.0.1"), IPv6Address("fd00::1")),
        dns_search=("internal.example", "corp.example"),
        mtu=1380,
        table="1234",
        pre_up=("echo pre-up %i",),
        post_up=("iptables -A FORWARD -i %i -j ACCEPT  # the comment stays: wg-quick keeps hooks whole",),
        pre_down=("echo pre-down %i",),
        post_down=("echo post-down %i",),
        save_config=True,
        peers=(
            PeerConfig(
                public_key=key(0x22),
                preshared_key=key(0x44),
                allowed_ips=(ip_interface("10.0.0.0/24"), ip_interface("fd00::/64"), ip_interface("10.1.2.3/16")),
                endpoint=Endpoint("192.0.2.1", 51820),
                persistent_keepalive=25,
            ),
            PeerConfig(
                public_key=key(0x33),
                allowed_ips=(ip_interface("0.0.0.0/0"), ip_interface("::/0")),
                endpoint=Endpoint("2001:db8::1", 4500),
                persistent_keepalive=0,
            ),
        ),
    )


SETCONF = f"""\
[Interface]
PrivateKey={PRIVATE}
ListenPort=0
FwMark=off
[Peer]
PublicKey={PUBLIC_A}
AllowedIPs=10.0.0.0/8
"""


def test_setconf_file():
    config = parse(SETCONF, quick=False)
    assert config.listen_port == 0 and config.fwmark == 0
    assert config.peers == (PeerConfig(public_key=key(0x22), allowed_ips=(ip_interface("10.0.0.0/8"),)),)
    assert config.addresses == () and config.table is None


def test_setconf_dialect_refuses_wg_quick_keys():
    with pytest.raises(ConfigError) as caught:
        parse(FULL, quick=False)
    assert (caught.value.reason, caught.value.line, caught.value.key) == (Reason.UNKNOWN_KEY, 6, "Address")


def test_whitespace_is_removed_everywhere_as_config_c_does():
    # config_read_line drops every char_is_space character before matching: inner blanks, tabs, CR.
    text = (f" [ interface ] \r\n\tPrivate Key\t=\t{PRIVATE[:20]} {PRIVATE[20:]}\r\n"
            f"[PEER]\npublickey = {PUBLIC_A} # trailing comment\nAllowed IPs = 10.0.0.0 / 8 ,\tfd00:: / 8\n"
            "endpoint = 192.0.2.1 : 51820\nPERSISTENTKEEPALIVE=OFF")
    config = parse(text)
    assert config.private_key == key(0x11)
    peer = config.peers[0]
    assert peer.allowed_ips == (ip_interface("10.0.0.0/8"), ip_interface("fd00::/8"))
    assert peer.endpoint == Endpoint("192.0.2.1", 51820) and peer.persistent_keepalive == 0


def test_empty_file_and_comments_only():
    assert parse("") == InterfaceConfig()
    assert parse("# nothing\n   \n\t# here\n") == InterfaceConfig()


@pytest.mark.parametrize(
    "value, expected",
    [("0", 0), ("off", 0), ("OFF", 0), ("4294967295", 0xFFFFFFFF), ("0xffffffff", 0xFFFFFFFF),
     ("0x0000000000000000000010", 16), ("0755", 755)],   # base 10 unless "0x" (config.c parse_fwmark)
)
def test_fwmark_forms(value, expected):
    assert parse(f"[Interface]\nFwMark = {value}\n").fwmark == expected


@pytest.mark.parametrize(
    "value, expected",
    [("1.2.3.4:51820", Endpoint("1.2.3.4", 51820)),
     ("[::1]:1", Endpoint("::1", 1)),
     ("[fe80::1%eth0]:51820", Endpoint("fe80::1%eth0", 51820)),
     ("fe80::1:51820", Endpoint("fe80::1", 51820)),                 # the last colon, as strrchr
     ("[::ffff:1.2.3.4]:5", Endpoint("::ffff:1.2.3.4", 5)),
     ("[2001:DB8:0:0::1]:5", Endpoint("2001:db8::1", 5)),          # canonical, as getnameinfo prints
     ("vpn.example.com:51820", Endpoint("vpn.example.com", 51820))],
)
def test_endpoint_forms(value, expected):
    config = parse(f"[Peer]\nPublicKey = {PUBLIC_A}\nEndpoint = {value}\n")
    assert config.peers[0].endpoint == expected


def test_endpoint_text():
    assert str(Endpoint("2001:db8::1", 4500)) == "[2001:db8::1]:4500"
    assert str(Endpoint("vpn.example.com", 1)) == "vpn.example.com:1"
    assert Endpoint("vpn.example.com", 1).is_name and not Endpoint("fe80::1%eth0", 1).is_name


def test_allowed_ips_keep_host_bits_and_routes_mask_them():
    config = parse(f"[Interface]\nAddress = 10.9.9.9/32\n[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 10.1.2.3/16\n")
    assert "allowed_ip=10.1.2.3/16\n" in to_uapi_set(config)       # as given: the kernel masks
    assert ["ip", "-4", "route", "add", "10.1.0.0/16", "dev", "wg0"] in [list(c.argv) for c in plan_up(config, "wg0").commands]


# --------------------------------------------------------------------------------------------------
# Every error, with its line and key
# --------------------------------------------------------------------------------------------------

I, P = "[Interface]\n", f"[Peer]\nPublicKey = {PUBLIC_A}\n"

ERRORS = [
    # (text, reason, line, key)
    ("PrivateKey = x\n", Reason.KEY_OUTSIDE_SECTION, 1, "PrivateKey"),
    ("[Interface]\n[Peers]\n", Reason.UNKNOWN_SECTION, 2, None),
    ("[Interface]x\n", Reason.UNKNOWN_SECTION, 1, None),
    (I + "ListenPort 51820\n", Reason.NOT_KEY_VALUE, 2, None),
    (I + "Colour = blue\n", Reason.UNKNOWN_KEY, 2, "Colour"),
    (P + "Address = 10.0.0.1\n", Reason.UNKNOWN_KEY, 3, "Address"),     # a wg-quick key outside [Interface]
    (I + "PublicKey = " + PUBLIC_A + "\n", Reason.UNKNOWN_KEY, 2, "PublicKey"),
    (I + "ListenPort = 1\n\nListenPort = 2\n", Reason.DUPLICATE_KEY, 4, "ListenPort"),
    (I + "MTU = 1400\n" + I + "mtu = 1400\n", Reason.DUPLICATE_KEY, 4, "MTU"),
    (P + "Endpoint = 1.2.3.4:1\nEndpoint = 1.2.3.4:2\n", Reason.DUPLICATE_KEY, 4, "Endpoint"),
    (I + "ListenPort =\n", Reason.MISSING_VALUE, 2, "ListenPort"),
    (I + "PostUp =   \n", Reason.MISSING_VALUE, 2, "PostUp"),
    (I + "PrivateKey = " + PRIVATE[:-1] + "\n", Reason.BAD_KEY, 2, "PrivateKey"),
    (I + "PrivateKey = " + PRIVATE[:-2] + "B=\n", Reason.BAD_KEY, 2, "PrivateKey"),   # not canonical
    ("[Peer]\nPublicKey = " + "!" * 43 + "=\n", Reason.BAD_KEY, 2, "PublicKey"),
    (P + "PresharedKey = " + PRESHARED[:-1] + "A\n", Reason.BAD_KEY, 3, "PresharedKey"),
    (I + "ListenPort = 65536\n", Reason.BAD_PORT, 2, "ListenPort"),
    (I + "ListenPort = http\n", Reason.BAD_PORT, 2, "ListenPort"),
    (I + "ListenPort = -1\n", Reason.BAD_PORT, 2, "ListenPort"),
    (I + "ListenPort = " + "9" * 5000 + "\n", Reason.BAD_PORT, 2, "ListenPort"),
    (I + "FwMark = 0x100000000\n", Reason.BAD_FWMARK, 2, "FwMark"),
    (I + "FwMark = 0X10\n", Reason.BAD_FWMARK, 2, "FwMark"),
    (I + "FwMark = 0x\n", Reason.BAD_FWMARK, 2, "FwMark"),
    (I + "FwMark = on\n", Reason.BAD_FWMARK, 2, "FwMark"),
    (I + "Address = 10.0.0.300/24\n", Reason.BAD_ADDRESS, 2, "Address"),
    (I + "Address = 10.0.0.1/33\n", Reason.BAD_ADDRESS, 2, "Address"),
    (I + "Address = 10.0.0.1/255.255.255.0\n", Reason.BAD_ADDRESS, 2, "Address"),
    (I + "Address = fe80::1%eth0/64\n", Reason.BAD_ADDRESS, 2, "Address"),
    (I + "DNS = 1.1.1\n", Reason.BAD_DNS, 2, "DNS"),
    (I + "DNS = bad:server\n", Reason.BAD_DNS, 2, "DNS"),
    (I + "DNS = not/a/domain\n", Reason.BAD_DNS, 2, "DNS"),
    (I + "MTU = 67\n", Reason.BAD_MTU, 2, "MTU"),
    (I + "MTU = 65536\n", Reason.BAD_MTU, 2, "MTU"),
    (I + "MTU = auto\n", Reason.BAD_MTU, 2, "MTU"),
    (I + "Table = 4294967296\n", Reason.BAD_TABLE, 2, "Table"),
    (I + "Table = two words\n", Reason.BAD_TABLE, 2, "Table"),
    (I + "SaveConfig = yes\n", Reason.BAD_BOOL, 2, "SaveConfig"),
    (P + "AllowedIPs = 10.0.0.0/33\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),
    (P + "AllowedIPs = 10.0.0.0/8,\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),       # strsep: empty entry
    (P + "AllowedIPs = 10.0.0.0/+8\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),
    (P + "AllowedIPs = +10.0.0.0/8\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),        # incremental: wg set only
    (P + "AllowedIPs = 010.0.0.0/8\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),        # inet_pton: no leading 0
    (P + "AllowedIPs = fe80::/10%eth0\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),
    (P + "AllowedIPs = ::/129\n", Reason.BAD_ALLOWED_IP, 3, "AllowedIPs"),
    (P + "Endpoint = 1.2.3.4\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = 1.2.3.4:\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = 1.2.3.4:0\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = 1.2.3.4:65536\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = 1.2.3:51820\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = [2001:db8::1:51820\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = [2001:db8::1]51820\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = [1.2.3.4]:51820\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = bad_host!:51820\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "Endpoint = host:https\n", Reason.BAD_ENDPOINT, 3, "Endpoint"),
    (P + "PersistentKeepalive = 65536\n", Reason.BAD_KEEPALIVE, 3, "PersistentKeepalive"),
    (P + "PersistentKeepalive = never\n", Reason.BAD_KEEPALIVE, 3, "PersistentKeepalive"),
    (I + "[Peer]\nAllowedIPs = 10.0.0.0/8\n", Reason.MISSING_PUBLIC_KEY, 2, None),
    (P + "\n" + P, Reason.DUPLICATE_PEER, 5, "PublicKey"),
    (I + "ListenPort = 1\0\n", Reason.NUL_CHARACTER, 2, None),
]


@pytest.mark.parametrize("text, reason, line, key", ERRORS, ids=[f"{e[1].name}-{i}" for i, e in enumerate(ERRORS)])
def test_error(text, reason, line, key):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    assert (error.reason, error.line, error.key) == (reason, line, key)
    assert isinstance(error, ValueError)
    assert reason.value in str(error) and f"line {line}" in str(error)


def test_every_reason_is_tested():
    # UNRESOLVED_ENDPOINT: tests/test_user_messages.py (it needs a resolver, not a file)
    tested = {e[1] for e in ERRORS} | {Reason.NOT_UTF8, Reason.BAD_INTERFACE_NAME, Reason.UNRESOLVED_ENDPOINT}
    assert tested == set(Reason)


def test_list_keys_may_repeat():
    config = parse(I + "Address = 10.0.0.1\nAddress = 10.0.0.2\nDNS = 1.1.1.1\nDNS = 8.8.8.8\n"
                   + "PostUp = a\nPostUp = b\n" + P + "AllowedIPs = 10.1.0.0/16\nAllowedIPs = 10.2.0.0/16\n")
    assert len(config.addresses) == 2 and len(config.dns) == 2 and config.post_up == ("a", "b")
    assert len(config.peers[0].allowed_ips) == 2


# --------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------


def secret_forms(n: int) -> list[str]:
    return [b64(n), key(n).hex(), repr(key(n))]


@pytest.mark.parametrize(
    "text",
    [
        I + f"PrivateKey = {PRIVATE}\nPrivateKey = {PRIVATE}\n",     # duplicate
        I + f"PrivateKey = {PRIVATE[:-2]}B=\n",                        # almost a key
        I + f"{PRIVATE}\n",                                            # a key pasted alone on a line
        f"{PRIVATE}\n",                                                # ... before any section
        I + f"PrivateKey = {PRIVATE} {PRIVATE}\n",                     # two keys run together
        P + f"PresharedKey = {PRIVATE[:-1]}\n",
        I + f"PrivateKey {PRIVATE}\n",
    ],
)
def test_secrets_are_not_in_error_messages(text):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    message = str(caught.value) + repr(caught.value) + str(caught.value.key)
    for form in secret_forms(0x11) + [PRIVATE[:20], PRIVATE[20:40]]:
        assert form not in message


def test_secrets_are_not_in_reprs():
    config = parse(FULL)
    text = repr(config) + str(config) + repr(config.peers)
    for form in secret_forms(0x11) + secret_forms(0x44):
        assert form not in text
    assert "private_key" not in text and "preshared_key" not in text
    assert key(0x22).hex() not in text and repr(key(0x22)) in text        # public keys do show


# --------------------------------------------------------------------------------------------------
# Keys and addresses as wg reads and prints them
# --------------------------------------------------------------------------------------------------


def test_parse_key():
    assert parse_key(PRIVATE) == key(0x11)
    assert parse_key("A" * 43 + "=") == bytes(32)
    for bad in ["", PRIVATE + "\n", PRIVATE[:-1], PRIVATE[:-1] + "A", "A" * 42 + "==", "A" * 42 + "B=",
                "A" * 43 + "=" + "A", "Ａ" * 43 + "=", " " + PRIVATE[1:]]:
        with pytest.raises(ConfigError) as caught:
            parse_key(bad)
        assert caught.value.reason is Reason.BAD_KEY


@pytest.mark.parametrize(
    "address, glibc",
    # glibc inet_ntop6: Python's text except that addresses zero but for ffff in their first 96 bits
    # print the last 32 dotted.
    [("::", "::"), ("::1", "::1"), ("1::", "1::"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
     ("::0.2.0.3", "::0.2.0.3"), ("::ffff:0:0", "::ffff:0.0.0.0"), ("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"),
     ("1:0:0:1:0:0:0:1", "1:0:0:1::1"), ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"), ("2001:DB8::A", "2001:db8::a"),
     ("10.0.0.1", "10.0.0.1")],
)
def test_format_ip_is_inet_ntop(address, glibc):
    from ipaddress import ip_address

    assert format_ip(ip_address(address)) == glibc


# --------------------------------------------------------------------------------------------------
# The UAPI set operation
# --------------------------------------------------------------------------------------------------


def test_to_uapi_set_is_what_wg_setconf_sends():
    resolved = []

    def resolve(host, port):
        resolved.append((host, port))
        return "2001:db8::99"

    config = parse(FULL + f"[Peer]\nPublicKey = {b64(0x55)}\nEndpoint = vpn.example.com:51820\n")
    assert to_uapi_set(config, resolve=resolve) == (
        "set=1\n"
        f"private_key={'11' * 32}\n"
        "listen_port=51820\n"
        "fwmark=4660\n"
        "replace_peers=true\n"
        f"public_key={'22' * 32}\n"
        f"preshared_key={'44' * 32}\n"
        "endpoint=192.0.2.1:51820\n"
        "persistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=10.0.0.0/24\n"
        "allowed_ip=fd00::/64\n"
        "allowed_ip=10.1.2.3/16\n"
        f"public_key={'33' * 32}\n"
        "endpoint=[2001:db8::1]:4500\n"
        "persistent_keepalive_interval=0\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=0.0.0.0/0\n"
        "allowed_ip=::/0\n"
        f"public_key={'55' * 32}\n"
        "endpoint=[2001:db8::99]:51820\n"
        "replace_allowed_ips=true\n"
        "\n"
    )
    assert resolved == [("vpn.example.com", 51820)]


def test_to_uapi_set_of_an_empty_file_clears_the_device():
    # config_read_init (not addconf): private key, port and fwmark are always sent, zero when absent.
    assert to_uapi_set(parse("")) == (
        f"set=1\nprivate_key={'00' * 32}\nlisten_port=0\nfwmark=0\nreplace_peers=true\n\n"
    )


def test_to_uapi_set_needs_a_resolver_for_host_names():
    config = parse(P + "Endpoint = vpn.example.com:51820\n")
    with pytest.raises(ValueError):
        to_uapi_set(config)


# --------------------------------------------------------------------------------------------------
# wg-quick strip
# --------------------------------------------------------------------------------------------------


def test_strip():
    text = (" [Interface]\nPrivateKey = K\n  Address = 10.0.0.1/24\nmtu=1400\nPostUp = a # b\n"
            "#Address = kept as a comment\nPost Up = not a wg-quick key\n[Peer]\nAddress = kept\n"
            "[interface]\nDNS\nTable = off")
    assert strip(text) == ("[Interface]\nPrivateKey = K\n#Address = kept as a comment\n"
                           "Post Up = not a wg-quick key\n[Peer]\nAddress = kept\n[interface]\n\n")
    assert strip("") == "\n"


def test_strip_refuses_a_bad_save_config():
    with pytest.raises(ConfigError) as caught:
        strip("[Interface]\nSaveConfig = maybe\n")
    assert (caught.value.reason, caught.value.line) == (Reason.BAD_BOOL, 2)


def test_strip_leaves_what_wg_setconf_reads():
    config = parse(FULL)
    assert parse(strip(FULL), quick=False) == InterfaceConfig(
        private_key=config.private_key, listen_port=config.listen_port, fwmark=config.fwmark, peers=config.peers
    )


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def test_load(tmp_path):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "wg0.conf"
    path.write_text(FULL)
    os.chmod(path, 0o600)
    assert load(str(path)) == parse(FULL)
    os.chmod(path, 0o644)
    with pytest.warns(WorldAccessibleWarning):
        load(str(path))
    os.chmod(path, 0o600)
    path.write_bytes(b"[Interface]\n# caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    assert (caught.value.reason, caught.value.line) == (Reason.NOT_UTF8, 2)


def test_interface_name():
    assert interface_name("/etc/wireguard/wg0.conf") == "wg0"
    assert interface_name("my_vpn-1.conf") == "my_vpn-1"
    for bad in ["/etc/wireguard/wg0", "/etc/wireguard/a-name-too-long0.conf", "/x/wg 0.conf", "wg0.conf.bak"]:
        with pytest.raises(ConfigError) as caught:
            interface_name(bad)
        assert caught.value.reason is Reason.BAD_INTERFACE_NAME


# --------------------------------------------------------------------------------------------------
# Fuzz: garbage raises ConfigError and nothing else
# --------------------------------------------------------------------------------------------------

KEYS = ["PrivateKey", "ListenPort", "FwMark", "Address", "DNS", "MTU", "Table", "PreUp", "PostDown", "SaveConfig",
        "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive", "Bogus"]
VALUES = [PRIVATE, PUBLIC_A, PUBLIC_B, "51820", "0x10", "off", "auto", "true", "10.0.0.1/24", "::/0", "0.0.0.0/0",
          "fd00::1", "1.2.3.4:5", "[::1]:5", "host.example:9", "1420", "echo %i", "", "99999999999999999999999"]
line = st.one_of(
    st.sampled_from(["[Interface]", "[Peer]", "[peer ]", "# c", "", "[x]"]),
    st.builds(lambda k, sep, v, tail: f"{k}{sep}{v}{tail}",
              st.sampled_from(KEYS), st.sampled_from(["=", " = ", "\t=", " "]),
              st.one_of(st.sampled_from(VALUES), st.text(max_size=20)), st.sampled_from(["", " # x", "\r", ","])),
    st.text(max_size=40),
)


def check_total(text: str) -> None:
    try:
        config = parse(text)
    except ConfigError:
        pass
    else:
        # Whatever parses can be sent and planned.
        to_uapi_set(config, resolve=lambda host, port: "192.0.2.1")
        plan_up(config, "wg0")
        plan_down(config, "wg0")
    try:
        strip(text)
    except ConfigError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_config_error(text):
    check_total(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(line, max_size=12))
def test_near_miss_files_raise_only_config_error(lines):
    check_total("\n".join(lines))


@st.composite
def allowed_ip(draw):
    address = draw(st.ip_addresses())
    return ip_interface((address, draw(st.integers(0, address.max_prefixlen))))


@settings(max_examples=300, deadline=None)
@given(st.lists(allowed_ip(), min_size=1, max_size=8))
def test_allowed_ips_survive_uapi_text(allowed):
    # What to_uapi_set prints for an allowed IP (inet_ntop text) reads back as the same prefix.
    config = InterfaceConfig(peers=(PeerConfig(public_key=key(1), allowed_ips=tuple(allowed)),))
    sent = [line.split("=", 1)[1] for line in to_uapi_set(config).splitlines() if line.startswith("allowed_ip=")]
    assert parse(f"[Peer]\nPublicKey = {b64(1)}\nAllowedIPs = {', '.join(sent)}\n") == config
