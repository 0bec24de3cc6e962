"""The real RoArm-M3 on a serial port (``hil node hw``) and an emulator of its
firmware on a pseudo-terminal (``hil emulate roarm``).

Modules: ``lines`` (byte stream -> bounded lines), ``protocol`` (the JSON line
protocol, unit conversion, plausibility), ``link`` (the serial port, DTR/RTS
held low, fault/reconnect), ``arm`` (the robot backend class), ``control``
(what target to send when: safety clamp, rate cap, deadline hold), ``node``
(the bus loop), ``firmware`` + ``emulator`` (the emulated arm), ``cli``.
The bench probe the hil tests and ``hil bench hw`` share is tools/bench/rig.py.
"""
