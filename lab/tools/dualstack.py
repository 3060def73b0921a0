"""The lab's servers listen once for both families: an IPv6 socket with
IPV6_V6ONLY off takes IPv4 clients as ::ffff:a.b.c.d, so each style's clients
reach the same server over v4 and v6."""
import socket
import socketserver


class DualStackTCPServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_tcp(handler: type, port: int) -> None:
    """Serves `handler` on [::]:port, a thread per connection, until killed."""
    with DualStackTCPServer(("::", port), handler) as srv:
        srv.serve_forever()


def udp_socket(port: int) -> socket.socket:
    """A UDP socket bound to [::]:port for both families."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    return s
