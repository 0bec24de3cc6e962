"""Protobuf schemas of the roarm-hil bus (package ``roarm.v1``).

Only protobuf is imported here, so the schemas load inside Isaac Sim's Python.
"""

from __future__ import annotations

# A change of SCHEMA_MAJOR is the only breaking change allowed on the wire;
# nodes refuse peers of another major version. SCHEMA_MINOR grows with
# compatible additions (new fields, new messages).
SCHEMA_MAJOR = 1
SCHEMA_MINOR = 4
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"

PACKAGE = "roarm.v1"
