from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    DEBUG: _ClassVar[Severity]
    INFO: _ClassVar[Severity]
    WARNING: _ClassVar[Severity]
    ERROR: _ClassVar[Severity]
    CRITICAL: _ClassVar[Severity]
SEVERITY_UNSPECIFIED: Severity
DEBUG: Severity
INFO: Severity
WARNING: Severity
ERROR: Severity
CRITICAL: Severity

class JointState(_message.Message):
    __slots__ = ("stamp_ns", "seq", "names", "position", "velocity", "effort", "sim_time", "randomization_hash", "trusted", "tcp")
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    SIM_TIME_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_HASH_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_FIELD_NUMBER: _ClassVar[int]
    TCP_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    seq: int
    names: _containers.RepeatedScalarFieldContainer[str]
    position: _containers.RepeatedScalarFieldContainer[float]
    velocity: _containers.RepeatedScalarFieldContainer[float]
    effort: _containers.RepeatedScalarFieldContainer[float]
    sim_time: float
    randomization_hash: str
    trusted: bool
    tcp: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, stamp_ns: _Optional[int] = ..., seq: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., position: _Optional[_Iterable[float]] = ..., velocity: _Optional[_Iterable[float]] = ..., effort: _Optional[_Iterable[float]] = ..., sim_time: _Optional[float] = ..., randomization_hash: _Optional[str] = ..., trusted: bool = ..., tcp: _Optional[_Iterable[float]] = ...) -> None: ...

class JointCommand(_message.Message):
    __slots__ = ("stamp_ns", "seq", "obs_seq", "names", "position", "velocity", "hold")
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OBS_SEQ_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    seq: int
    obs_seq: int
    names: _containers.RepeatedScalarFieldContainer[str]
    position: _containers.RepeatedScalarFieldContainer[float]
    velocity: _containers.RepeatedScalarFieldContainer[float]
    hold: bool
    def __init__(self, stamp_ns: _Optional[int] = ..., seq: _Optional[int] = ..., obs_seq: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., position: _Optional[_Iterable[float]] = ..., velocity: _Optional[_Iterable[float]] = ..., hold: bool = ...) -> None: ...

class JointTarget(_message.Message):
    __slots__ = ("names", "position")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    position: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, names: _Optional[_Iterable[str]] = ..., position: _Optional[_Iterable[float]] = ...) -> None: ...

class CartesianTarget(_message.Message):
    __slots__ = ("x", "y", "z", "gripper", "body", "quat")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    GRIPPER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    QUAT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    gripper: float
    body: str
    quat: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., gripper: _Optional[float] = ..., body: _Optional[str] = ..., quat: _Optional[_Iterable[float]] = ...) -> None: ...

class Goal(_message.Message):
    __slots__ = ("stamp_ns", "seq", "id", "joints", "tcp", "tolerance", "timeout_s")
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    JOINTS_FIELD_NUMBER: _ClassVar[int]
    TCP_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    seq: int
    id: str
    joints: JointTarget
    tcp: CartesianTarget
    tolerance: float
    timeout_s: float
    def __init__(self, stamp_ns: _Optional[int] = ..., seq: _Optional[int] = ..., id: _Optional[str] = ..., joints: _Optional[_Union[JointTarget, _Mapping]] = ..., tcp: _Optional[_Union[CartesianTarget, _Mapping]] = ..., tolerance: _Optional[float] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class Clock(_message.Message):
    __slots__ = ("stamp_ns", "step", "sim_time")
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SIM_TIME_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    step: int
    sim_time: float
    def __init__(self, stamp_ns: _Optional[int] = ..., step: _Optional[int] = ..., sim_time: _Optional[float] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("stamp_ns", "node", "role", "state", "uptime_s", "detail", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    node: str
    role: str
    state: str
    uptime_s: float
    detail: str
    counters: _containers.ScalarMap[str, int]
    def __init__(self, stamp_ns: _Optional[int] = ..., node: _Optional[str] = ..., role: _Optional[str] = ..., state: _Optional[str] = ..., uptime_s: _Optional[float] = ..., detail: _Optional[str] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("stamp_ns", "severity", "code", "text", "node", "correlation_seq", "suppressed")
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_SEQ_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    stamp_ns: int
    severity: Severity
    code: str
    text: str
    node: str
    correlation_seq: int
    suppressed: int
    def __init__(self, stamp_ns: _Optional[int] = ..., severity: _Optional[_Union[Severity, str]] = ..., code: _Optional[str] = ..., text: _Optional[str] = ..., node: _Optional[str] = ..., correlation_seq: _Optional[int] = ..., suppressed: _Optional[int] = ...) -> None: ...
