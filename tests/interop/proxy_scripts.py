"""Small programs that test_proxy.py and test_proxy_world.py run in their namespaces (``python -c``)."""

# An echo server on 127.0.0.1:7007, a thread per connection.
TCP_ECHO = """
import socket, threading
server = socket.create_server(("127.0.0.1", 7007))
def serve(connection):
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""

# SOCKS5 UDP ASSOCIATE through the proxy on 127.0.0.1:1080: five datagrams to NAME:9999 (argv[1], so the
# proxy asks the tunnel's DNS), each sent again up to five times until answered; prints the ASSOCIATE
# reply and the answers as JSON.
SOCKS_UDP_CLIENT = """
import json, socket, struct, sys
name = sys.argv[1].encode()
control = socket.create_connection(("127.0.0.1", 1080), timeout=10)
control.sendall(b"\\x05\\x01\\x00")
assert control.recv(2) == b"\\x05\\x00"
control.sendall(b"\\x05\\x03\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00")
reply = control.recv(10)
relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(float(sys.argv[2]))
header = b"\\x00\\x00\\x00\\x03" + bytes([len(name)]) + name + struct.pack("!H", 9999)
answers = []
for n in range(5):
    for attempt in range(5):
        udp.sendto(header + b"datagram %d" % n, relay)
        try:
            answers.append(udp.recv(2048).hex())
            break
        except socket.timeout:
            pass
print(json.dumps({"reply": reply.hex(), "answers": answers}))
"""
