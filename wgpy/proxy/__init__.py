"""The proxy protocols of ``wgpy proxy``, sans-IO: SOCKS5 (socks5.py) and the HTTP proxy's request head
(http_connect.py). Bytes in, a request or a named refusal out; wgpy/runtime/proxy.py moves the bytes."""
