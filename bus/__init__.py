"""The roarm-hil message bus: sockets, envelope, endpoints, services, statistics,
and the process harness every launcher uses (processes.py).

Nothing here knows about robots. The runtime modules import only pyzmq,
msgpack, protobuf and numpy, so the bus also loads inside Isaac Sim's own
Python; ``cli_options`` (the nodes' shared command-line options) adds click
and ``yamlsource`` (YAML with line numbers) adds PyYAML, each only there.
"""
