"""Networks and connection pools: TCP and TLS handshakes, loss and retransmission,
HTTP/1.1 pools (Go ``http.Transport``, Node ``http.Agent``), HTTP/2 streams and
flow control, gRPC channels; model kind ``net.fanin`` (:mod:`models.net.builders`)."""
