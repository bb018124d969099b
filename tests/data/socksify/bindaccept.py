"""
A program that listens for one connection, written to run under Dante's
socksify (tests/test_socksify.py runs it), where libdsocks turns its
bind(), listen() and accept() into a SOCKS BIND request.

It binds a TCP socket to an ephemeral port of 127.0.0.1 and listens;
prints "bound HOST:PORT accepting", the address getsockname() gives (under
socksify: the gateway's, from the first BIND reply); accepts one
connection; prints "peer HOST:PORT", the address getpeername() gives (under
socksify: the one in the second reply); reads until the peer's FIN;
answers "answer to " and what it read; and exits.

Python's own accept() calls accept4(), which libdsocks (1.4) does not wrap,
so the program calls libc's accept() through ctypes.  It passes a buffer
for the address: libdsocks 1.4.2 crashes on accept(s, NULL, NULL).
"""

import ctypes
import os
import socket

libc = ctypes.CDLL(None, use_errno=True)

listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listening.bind(("127.0.0.1", 0))
listening.listen(1)
host, port = listening.getsockname()
print(f"bound {host}:{port} accepting", flush=True)

address = ctypes.create_string_buffer(128)
length = ctypes.c_uint(len(address))
descriptor = libc.accept(listening.fileno(), address, ctypes.byref(length))
if descriptor < 0:
    error = ctypes.get_errno()
    raise OSError(error, os.strerror(error))
connection = socket.socket(fileno=descriptor)
host, port = connection.getpeername()
print(f"peer {host}:{port}", flush=True)

received = b""
while chunk := connection.recv(65536):
    received += chunk
connection.sendall(b"answer to " + received)
connection.close()
listening.close()
