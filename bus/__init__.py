"""The roarm-hil message bus: sockets, envelope, endpoints, services, statistics,
and the process harness every launcher uses (processes.py).

Nothing here knows about robots. Only pyzmq, msgpack and protobuf are
imported, so the bus also loads inside Isaac Sim's own Python.
"""
