from schemas import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Error(_message.Message):
    __slots__ = ("code", "text")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    code: str
    text: str
    def __init__(self, code: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("node", "role", "schema_version", "uptime_s", "stamp_ns")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    STAMP_NS_FIELD_NUMBER: _ClassVar[int]
    node: str
    role: str
    schema_version: str
    uptime_s: float
    stamp_ns: int
    def __init__(self, node: _Optional[str] = ..., role: _Optional[str] = ..., schema_version: _Optional[str] = ..., uptime_s: _Optional[float] = ..., stamp_ns: _Optional[int] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node", "role", "backend", "joint_names", "lower", "upper", "max_velocity", "dt", "schema_version", "model_hash", "mode", "randomization_hash", "extra", "metrics", "pid")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    JOINT_NAMES_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    MAX_VELOCITY_FIELD_NUMBER: _ClassVar[int]
    DT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_HASH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_HASH_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    node: str
    role: str
    backend: str
    joint_names: _containers.RepeatedScalarFieldContainer[str]
    lower: _containers.RepeatedScalarFieldContainer[float]
    upper: _containers.RepeatedScalarFieldContainer[float]
    max_velocity: _containers.RepeatedScalarFieldContainer[float]
    dt: float
    schema_version: str
    model_hash: str
    mode: str
    randomization_hash: str
    extra: _containers.ScalarMap[str, str]
    metrics: _containers.ScalarMap[str, float]
    pid: int
    def __init__(self, node: _Optional[str] = ..., role: _Optional[str] = ..., backend: _Optional[str] = ..., joint_names: _Optional[_Iterable[str]] = ..., lower: _Optional[_Iterable[float]] = ..., upper: _Optional[_Iterable[float]] = ..., max_velocity: _Optional[_Iterable[float]] = ..., dt: _Optional[float] = ..., schema_version: _Optional[str] = ..., model_hash: _Optional[str] = ..., mode: _Optional[str] = ..., randomization_hash: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., pid: _Optional[int] = ...) -> None: ...

class Randomization(_message.Message):
    __slots__ = ("mass_scale", "damping_scale", "friction_scale", "actuator_gain_scale", "obs_noise_std", "latency_steps")
    MASS_SCALE_FIELD_NUMBER: _ClassVar[int]
    DAMPING_SCALE_FIELD_NUMBER: _ClassVar[int]
    FRICTION_SCALE_FIELD_NUMBER: _ClassVar[int]
    ACTUATOR_GAIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    OBS_NOISE_STD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_STEPS_FIELD_NUMBER: _ClassVar[int]
    mass_scale: float
    damping_scale: float
    friction_scale: float
    actuator_gain_scale: float
    obs_noise_std: float
    latency_steps: int
    def __init__(self, mass_scale: _Optional[float] = ..., damping_scale: _Optional[float] = ..., friction_scale: _Optional[float] = ..., actuator_gain_scale: _Optional[float] = ..., obs_noise_std: _Optional[float] = ..., latency_steps: _Optional[int] = ...) -> None: ...

class RandomizationRanges(_message.Message):
    __slots__ = ("mass_scale", "damping_scale", "friction_scale", "actuator_gain_scale", "obs_noise_std", "max_latency_steps")
    MASS_SCALE_FIELD_NUMBER: _ClassVar[int]
    DAMPING_SCALE_FIELD_NUMBER: _ClassVar[int]
    FRICTION_SCALE_FIELD_NUMBER: _ClassVar[int]
    ACTUATOR_GAIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    OBS_NOISE_STD_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_STEPS_FIELD_NUMBER: _ClassVar[int]
    mass_scale: float
    damping_scale: float
    friction_scale: float
    actuator_gain_scale: float
    obs_noise_std: float
    max_latency_steps: int
    def __init__(self, mass_scale: _Optional[float] = ..., damping_scale: _Optional[float] = ..., friction_scale: _Optional[float] = ..., actuator_gain_scale: _Optional[float] = ..., obs_noise_std: _Optional[float] = ..., max_latency_steps: _Optional[int] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("position", "seed", "randomization", "scene")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    position: _containers.RepeatedScalarFieldContainer[float]
    seed: int
    randomization: RandomizationRanges
    scene: _containers.RepeatedCompositeFieldContainer[SceneObject]
    def __init__(self, position: _Optional[_Iterable[float]] = ..., seed: _Optional[int] = ..., randomization: _Optional[_Union[RandomizationRanges, _Mapping]] = ..., scene: _Optional[_Iterable[_Union[SceneObject, _Mapping]]] = ...) -> None: ...

class ResetReply(_message.Message):
    __slots__ = ("state", "applied", "randomization_hash")
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_HASH_FIELD_NUMBER: _ClassVar[int]
    state: _messages_pb2.JointState
    applied: Randomization
    randomization_hash: str
    def __init__(self, state: _Optional[_Union[_messages_pb2.JointState, _Mapping]] = ..., applied: _Optional[_Union[Randomization, _Mapping]] = ..., randomization_hash: _Optional[str] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: int
    def __init__(self, steps: _Optional[int] = ...) -> None: ...

class StepReply(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _messages_pb2.JointState
    def __init__(self, state: _Optional[_Union[_messages_pb2.JointState, _Mapping]] = ...) -> None: ...

class LimitRequest(_message.Message):
    __slots__ = ("last_step", "off")
    LAST_STEP_FIELD_NUMBER: _ClassVar[int]
    OFF_FIELD_NUMBER: _ClassVar[int]
    last_step: int
    off: bool
    def __init__(self, last_step: _Optional[int] = ..., off: bool = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("ok", "text")
    OK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    text: str
    def __init__(self, ok: bool = ..., text: _Optional[str] = ...) -> None: ...

class EstopRequest(_message.Message):
    __slots__ = ("engage",)
    ENGAGE_FIELD_NUMBER: _ClassVar[int]
    engage: bool
    def __init__(self, engage: bool = ...) -> None: ...

class TorqueRequest(_message.Message):
    __slots__ = ("enable",)
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    enable: bool
    def __init__(self, enable: bool = ...) -> None: ...

class SceneObject(_message.Message):
    __slots__ = ("name", "position", "quat", "hidden")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    QUAT_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    position: _containers.RepeatedScalarFieldContainer[float]
    quat: _containers.RepeatedScalarFieldContainer[float]
    hidden: bool
    def __init__(self, name: _Optional[str] = ..., position: _Optional[_Iterable[float]] = ..., quat: _Optional[_Iterable[float]] = ..., hidden: bool = ...) -> None: ...

class SceneRequest(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[SceneObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[SceneObject, _Mapping]]] = ...) -> None: ...

class SceneReply(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[SceneObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[SceneObject, _Mapping]]] = ...) -> None: ...
