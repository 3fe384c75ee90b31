"""Scenario files: the pydantic models of the format, and a strict loader.

Follows ``shared/SCENARIO.md`` (the scenario format, v1) and principle 7 of
ARCHITECTURE.md. Every key of the format has a model here, with
``extra='forbid'`` everywhere: an unknown key is an error, never ignored.
Sizes become ``int`` bytes (:func:`linmem.units.parse_size`), durations
``float`` seconds (:func:`linmem.units.parse_duration`); sysctl values are
checked against the kernel's ranges (:mod:`linmem.sysctl`).

:func:`load_scenario` and :func:`parse_scenario` turn any problem into ONE
:class:`~linmem.errors.InputError` whose ``where`` is ``FILE:LINE: key.path``
(``scen.yaml:15: processes[0].steps[2].touch.pattern``) and whose ``what`` says
what is wrong with the offending value; of several problems, the first in
document order. After the shape, the loader checks references: regions a step
names exist, files read exist, cgroups exist and are leaves, names are unique.

Values the model reads:

- ``Scenario``: ``name seed machine sysctl swap files cgroups programs
  processes at sample``;
- ``Machine``: ``arch ram cpus thp lru``;
- ``sysctl`` (and a ``sysctl`` step or ``at`` event): a model whose
  :meth:`~SysctlMap.as_dict` gives ``{"swappiness": 60, ...}`` (proc file
  names, in the order written: the kernel's handlers make order matter,
  e.g. writing ``dirty_ratio`` clears ``dirty_bytes``);
- ``Step``: one step; ``step.kind`` is its key (``"touch"``), ``step.args``
  its value (a model such as :class:`Touch`, or a scalar for ``brk``,
  ``wait``, ``mlock``, ``munmap``, ``free``, ``sleep``, ``snapshot``,
  ``swapon``, ``swapoff``, ``cgroup_move``, ``exit``);
- a ``cgroup`` step or event: :class:`CgroupWrite`, whose
  :meth:`~CgroupWrite.writes` gives ``(file, text)`` in the order written.
- cgroup limits are ``int`` bytes or the string ``"max"``.

Swap areas are declared once, in the ``swap`` section, as /etc/fstab lists
them: each with its path, size, priority and type. The machine boots with
every listed area on (``swapon -a``) except those marked ``active: false``
(fstab's ``noauto``). ``swapon: PATH`` and ``swapoff: PATH``, as a process
step or an ``at`` event, turn a listed area on or off by its path; naming
a path not listed under ``swap`` is an error of the scenario::

    swap:
      - {path: /swapfile, size: 1GiB}
      - {path: /dev/zram0, size: 512MiB, type: zram, priority: 100, active: false}
    at:
      - {time: 2s, swapon: /dev/zram0}
      - {time: 5s, swapoff: /swapfile}

An area turned on again takes the priority written for it, or, when none
is, the next default one (-2, -3, ...), as swapon(8) does. Whether the
call succeeds is decided at run time, as on a real machine: swapon of an
area already on fails with EBUSY, swapoff of one that is off with EINVAL,
and swapoff without the memory to bring the area's pages back with ENOMEM
(the area stays on); each attempt is a ``swapon``/``swapoff`` event in
events.jsonl (with ``errno`` when it failed), and the run goes on.

Memory cgroups are declared in the ``cgroups`` section; while the scenario
runs, a ``cgroup`` step or ``at`` event writes control files of one of
them, in the order written, and a ``cgroup_move`` step moves the process
itself (its write of its PID to ``cgroup.procs``)::

    processes:
      - name: app
        cgroup: /batch
        steps:
          - cgroup: {path: /batch, memory.high: 48MiB, memory.peak: reset}
          - cgroup: {path: /batch, memory.reclaim: 16MiB}
          - cgroup: {path: /batch, memory.reclaim: {size: 16MiB, swappiness: max}}
          - cgroup_move: /other
    at:
      - {time: 5s, cgroup: {path: /batch, memory.max: 32MiB, memory.oom.group: true}}

The files are memory.max, memory.high, memory.low, memory.min,
memory.swap.max (values as in ``cgroups``), memory.oom.group (true or
false), memory.reclaim (a size, or ``{size, swappiness: 0..200|max}``) and
memory.peak (``reset``). The path is a cgroup of the ``cgroups`` section or
a parent of one; the root takes memory.reclaim only. ``cgroup_move`` names a
leaf (or the root). What the kernel refuses at run time (memory.reclaim
that cannot reclaim enough: EAGAIN) is an event, as for swapon.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      PrivateAttr, ValidationError, create_model, field_validator,
                      model_serializer, model_validator)

from linmem import sysctl as _sysctl
from linmem.errors import InputError
from linmem.units import format_size, parse_duration, parse_size
from linmem.workload import yamlloc

MIN_RAM = 64 << 20
MAX_RAM = 1 << 40
MAX_RAM_I386 = 4 << 30   # Linux 6.15 dropped HIGHMEM64G: 32-bit x86 sees 4GiB at most
MIN_SWAP = 10 * 4096     # mkswap refuses areas of fewer than 10 pages
BUILTIN_REGIONS = ("heap", "stack", "text", "data")


# --- value types ----------------------------------------------------------------

def _size(value: Any) -> int:
    """A size in bytes (see units.parse_size)."""
    return parse_size(value)


def _positive_size(value: Any) -> int:
    """A size in bytes that is not zero."""
    n = parse_size(value)
    if n == 0:
        raise ValueError("size must be greater than 0")
    return n


def _limit(value: Any) -> int | str:
    """A cgroup limit: ``max`` or a size in bytes."""
    if value == "max":
        return value
    try:
        return parse_size(value)
    except ValueError:
        raise ValueError(f"expected max or a size such as 512MiB, got {value!r}") from None


def _abs_path(value: str) -> str:
    """An absolute path of the simulated file system."""
    if not value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError(f"expected an absolute file path such as /data/f1, got {value!r}")
    return value


_CGROUP_RE = re.compile(r"^(/[A-Za-z0-9_][A-Za-z0-9_.:@-]*)+$")


def _cgroup_path(value: str) -> str:
    """A cgroup v2 path: ``/`` (the root) or ``/a/b``."""
    if value != "/" and not _CGROUP_RE.match(value):
        raise ValueError(f"expected a cgroup path such as /batch or /a/b, got {value!r}")
    return value


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def _name(value: str) -> str:
    """A name used as a key or a directory: letters, digits, ``_ . + -``."""
    if not _NAME_RE.match(value):
        raise ValueError(f"expected a name of letters, digits, _ . + -, got {value!r}")
    return value


def _any_case(*words: str) -> str:
    """A regex alternative matching ``words`` in any case (JSON Schema
    patterns have no flags): ``ms`` -> ``[mM][sS]``."""
    return "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in w) for w in words)


# What a size or a duration may be written as, for the JSON Schema
# (`linmem schema`); the validators above decide.
SizeText = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(" + _any_case(
    "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib", "t", "tb", "tib", "p", "pb",
    "pib") + r")?\s*$", examples=["4096", "64KiB", "512MiB", "4GiB"])]
DurationText = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(" + _any_case(
    "ns", "us", "ms", "s", "m", "min", "h") + r")?\s*$", examples=["250ms", "10s", "2m"])]
_SIZE_INPUT = Annotated[int, Field(ge=0)] | SizeText
_DURATION_INPUT = Annotated[float, Field(ge=0)] | DurationText

Size = Annotated[int, BeforeValidator(_size, json_schema_input_type=_SIZE_INPUT)]
PositiveSize = Annotated[int, BeforeValidator(_positive_size, json_schema_input_type=_SIZE_INPUT)]
Duration = Annotated[float, BeforeValidator(parse_duration,
                                            json_schema_input_type=_DURATION_INPUT)]
Limit = Annotated[int | Literal["max"], BeforeValidator(
    _limit, json_schema_input_type=Literal["max"] | _SIZE_INPUT)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
CgroupPath = Annotated[str, AfterValidator(_cgroup_path)]
Name = Annotated[str, AfterValidator(_name)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    """Base of every scenario model: unknown keys refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


# --- sysctl maps ----------------------------------------------------------------

def _field_name(proc_name: str) -> str:
    """A Python identifier for a sysctl (``page-cluster`` -> ``page_cluster``)."""
    return proc_name.replace("-", "_")


_PROC_NAME = {_field_name(n): n for n in _sysctl.SYSCTLS}


class _Ordered(_Model):
    """A mapping whose keys are writes the kernel sees in the order written."""

    _order: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler):
        """Remember the order in which the scenario wrote the keys."""
        obj = handler(data)
        if isinstance(data, dict):
            obj._order = [cls._written_key(k) for k in data if isinstance(k, str)]
        return obj

    @staticmethod
    def _written_key(key: str) -> str:
        """The name a key is remembered by."""
        return key


class SysctlMap(_Ordered):
    """``vm.NAME: value`` pairs, checked by :func:`linmem.sysctl.validate_sysctl`."""

    _written_key = staticmethod(_sysctl._bare)

    def as_dict(self) -> dict[str, Any]:
        """``{proc_name: value}`` in the order written (``{"swappiness": 60}``)."""
        return {n: getattr(self, _field_name(n)) for n in self._order}

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        """Dumps as the scenario writes it: ``{"vm.swappiness": 60}``."""
        return {f"vm.{n}": v for n, v in self.as_dict().items()}

    def __repr_args__(self):
        return [(f"vm.{n}", v) for n, v in self.as_dict().items()]


def _sysctl_model(name: str, initial: bool) -> type[SysctlMap]:
    """A SysctlMap with one optional field per sysctl, aliased ``vm.NAME``."""
    def check(cls, value, info):
        arch = (info.context or {}).get("arch", "x86_64")
        proc = _PROC_NAME[info.field_name]
        return _sysctl.validate_sysctl(f"vm.{proc}", value, arch, initial=initial)

    fields = {_field_name(n): (Any, Field(None, alias=f"vm.{n}")) for n in _sysctl.SYSCTLS}
    validators = {"_check": field_validator("*", mode="before")(check)}
    return create_model(name, __base__=SysctlMap, __validators__=validators, **fields)


SysctlSettings = _sysctl_model("SysctlSettings", initial=True)
SysctlWrites = _sysctl_model("SysctlWrites", initial=False)


# --- machine, swap, files, cgroups, programs ------------------------------------

def _bandwidth(value: Any) -> int:
    """Bytes per second: a size, optionally written with ``/s`` (``2GiB/s``)."""
    if isinstance(value, str) and value.endswith("/s"):
        value = value[:-2]
    rate = parse_size(value)
    if rate <= 0:
        raise ValueError(f"a bandwidth must be positive, got {value!r}")
    return rate


Bandwidth = Annotated[int, BeforeValidator(_bandwidth, json_schema_input_type=int | Annotated[
    str, Field(pattern=r"^\s*\d+(\.\d+)?\s*[a-zA-Z]*\s*(/s)?$", examples=["2GiB/s"])])]


class Disk(_Model):
    """The disk holding the files: its size, speed and latency (defaults: a
    current NVMe SSD)."""

    size: PositiveSize = 256 << 30
    read_bandwidth: Bandwidth = 2 << 30
    write_bandwidth: Bandwidth = 1 << 30
    latency: Duration = 80e-6


class Machine(_Model):
    """The hardware: architecture, RAM, CPUs, THP mode, LRU flavour, disk."""

    arch: Literal["x86_64", "i386"] = "x86_64"
    ram: Size
    cpus: int = Field(2, ge=1, le=1024)
    thp: Literal["never", "madvise", "always"] = "madvise"
    lru: Literal["classic", "mglru"] = "classic"
    cgroup: Literal["v2", "v1"] = "v2"   # which memory controller's files /sys shows
    aslr: bool = False          # address-space randomisation, drawn from the seed
    disk: Disk = Field(default_factory=Disk)

    @field_validator("ram")
    @classmethod
    def _ram_range(cls, ram: int, info) -> int:
        """64MiB <= RAM <= 1TiB (4GiB on i386)."""
        top = MAX_RAM_I386 if info.data.get("arch") == "i386" else MAX_RAM
        if ram < MIN_RAM:
            raise ValueError(f"RAM {format_size(ram)} is too small: at least {format_size(MIN_RAM)}")
        if ram > top:
            arch = " on i386" if top == MAX_RAM_I386 else ""
            raise ValueError(f"RAM {format_size(ram)} is too big{arch}: at most {format_size(top)}")
        return ram


class SwapArea(_Model):
    """One swap area, as swapon(8) would add it."""

    path: AbsPath
    size: Size
    priority: Optional[int] = Field(None, ge=-32768, le=32767)
    type: Literal["file", "partition", "zram"] = "file"
    active: bool = True          # on at boot; false: only a swapon step or event turns it on

    @field_validator("size")
    @classmethod
    def _big_enough(cls, size: int) -> int:
        """mkswap needs at least 10 pages."""
        if size < MIN_SWAP:
            raise ValueError(f"swap size {format_size(size)} is too small: at least 40KiB")
        return size

    @field_validator("type")
    @classmethod
    def _device_path(cls, kind: str, info) -> str:
        """Partitions and zram devices live under /dev."""
        path = info.data.get("path", "")
        if kind == "zram" and not re.match(r"^/dev/zram\d+$", path):
            raise ValueError(f"a zram swap area is /dev/zramN, got path {path!r}")
        if kind == "partition" and not path.startswith("/dev/"):
            raise ValueError(f"a swap partition is a device under /dev, got path {path!r}")
        return kind


_CGROUP_FILES = {"memory_max": "memory.max", "memory_high": "memory.high",
                 "memory_low": "memory.low", "memory_min": "memory.min",
                 "memory_swap_max": "memory.swap.max", "memory_oom_group": "memory.oom.group"}


class CgroupLimits(_Model):
    """The memory controller files of one cgroup v2 directory."""

    memory_max: Limit = Field("max", alias="memory.max")
    memory_high: Limit = Field("max", alias="memory.high")
    memory_low: Limit = Field(0, alias="memory.low")
    memory_min: Limit = Field(0, alias="memory.min")
    memory_swap_max: Limit = Field("max", alias="memory.swap.max")
    memory_oom_group: bool = Field(False, alias="memory.oom.group")

    def settings(self) -> dict:
        """The control files to write, by name (memory.max ... memory.oom.group)."""
        return {name: getattr(self, attr) for attr, name in _CGROUP_FILES.items()}

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, data: Any) -> Any:
        """``/batch:`` with no value is a cgroup with default limits."""
        return {} if data is None else data


def _swappiness(value: Any) -> int | str:
    """memory.reclaim's swappiness: 0..200, or ``max`` (anonymous pages only)."""
    if value == "max" or (type(value) is int and 0 <= value <= 200):
        return value
    raise ValueError(f"swappiness is 0..200 or max, got {value!r}")


class Reclaim(_Model):
    """A memory.reclaim write: how much to reclaim, optionally with the
    swappiness to reclaim it at (the kernel's ``"BYTES swappiness=N"``)."""

    size: PositiveSize
    swappiness: Optional[Annotated[int | Literal["max"], BeforeValidator(_swappiness)]] = None

    def text(self) -> str:
        """What is written to the file: ``"16777216"``, ``"16777216 swappiness=0"``."""
        extra = "" if self.swappiness is None else f" swappiness={self.swappiness}"
        return f"{self.size}{extra}"


def _reclaim(value: Any) -> Any:
    """``memory.reclaim: 16MiB`` is short for ``memory.reclaim: {size: 16MiB}``."""
    if isinstance(value, (dict, Reclaim)):
        return value
    return Reclaim.model_construct(size=_positive_size(value))


class CgroupWrite(_Ordered):
    """Writes to the control files of the cgroup at ``path``, in the order
    written (a ``cgroup`` step or ``at`` event). Values are those of the
    ``cgroups`` section; besides, ``memory.reclaim`` (a size, or ``{size,
    swappiness}``) and ``memory.peak: reset``. A file given no value is an
    error: each key is one write(2)."""

    path: CgroupPath
    memory_max: Limit = Field(None, alias="memory.max")
    memory_high: Limit = Field(None, alias="memory.high")
    memory_low: Limit = Field(None, alias="memory.low")
    memory_min: Limit = Field(None, alias="memory.min")
    memory_swap_max: Limit = Field(None, alias="memory.swap.max")
    memory_oom_group: bool = Field(None, alias="memory.oom.group")
    memory_reclaim: Annotated[Reclaim, BeforeValidator(
        _reclaim, json_schema_input_type=Reclaim | _SIZE_INPUT)] = Field(
        None, alias="memory.reclaim")
    memory_peak: Literal["reset"] = Field(None, alias="memory.peak")

    @model_validator(mode="after")
    def _some_file(self) -> "CgroupWrite":
        """At least one control file besides the path."""
        if self.model_fields_set <= {"path"}:
            raise ValueError(f"a cgroup write names the cgroup (path) and at least one file "
                             f"of: {', '.join(CGROUP_WRITE_FILES)}")
        return self

    def files(self) -> list[str]:
        """The control files written, in the order written."""
        return [key for key in self._order if key != "path"]

    def writes(self) -> list[tuple[str, str]]:
        """(file, text written) in order: ``[("memory.max", "33554432"), ...]``."""
        return [(key, _file_text(self.value(key))) for key in self.files()]

    def value(self, key: str) -> Any:
        """The value given for a control file (``"memory.max"``)."""
        return getattr(self, _WRITE_ATTR[key])

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        """Dumps as the scenario writes it: ``{"path": "/a", "memory.max": 1024}``."""
        return {"path": self.path, **{key: self.value(key) for key in self.files()}}


_WRITE_ATTR = {f.alias: name for name, f in CgroupWrite.model_fields.items() if f.alias}
CGROUP_WRITE_FILES = tuple(_WRITE_ATTR)


def _file_text(value: Any) -> str:
    """A scenario value as the text written to a control file."""
    if isinstance(value, bool):
        return str(int(value))
    return value.text() if isinstance(value, Reclaim) else str(value)


class Program(_Model):
    """An executable image: its segments and shared libraries."""

    text: PositiveSize
    rodata: Size = 0
    data: Size = 0
    bss: Size = 0
    libs: list[NonEmpty] = Field(default_factory=list)


# --- steps ----------------------------------------------------------------------

class Mmap(_Model):
    """mmap(2): anonymous private by default, or of a file."""

    as_: Name = Field(alias="as")
    size: Optional[PositiveSize] = None
    file: Optional[AbsPath] = None
    shared: bool = False
    prot: str = "rw"

    @field_validator("prot")
    @classmethod
    def _prot(cls, prot: str) -> str:
        """``none`` or letters from ``rwx`` in that order."""
        if prot != "none" and not re.match(r"^(?=.)r?w?x?$", prot):
            raise ValueError(f"prot is 'none' or letters of 'rwx' in order, got {prot!r}")
        return prot

    @model_validator(mode="after")
    def _size_or_file(self) -> "Mmap":
        """An anonymous mapping needs a size (a file mapping defaults to the file's)."""
        if self.size is None and self.file is None:
            raise ValueError("an anonymous mmap needs a size")
        return self


class Malloc(_Model):
    """malloc(3) through the libc model."""

    as_: Name = Field(alias="as")
    size: PositiveSize


class Touch(_Model):
    """Accesses to a region: which pages, in what order, how often."""

    region: NonEmpty
    pattern: Literal["sequential", "random", "zipf", "stride"] = "sequential"
    write: bool = False
    count: Optional[int] = Field(None, ge=1)
    passes: int = Field(1, ge=1)
    fraction: float = Field(1.0, gt=0, le=1)
    alpha: Optional[float] = Field(None, gt=0, validate_default=True)
    stride: Optional[PositiveSize] = Field(None, validate_default=True)

    @field_validator("alpha", "stride")
    @classmethod
    def _pattern_option(cls, value: Any, info) -> Any:
        """``alpha`` goes with (and only with) zipf, ``stride`` with stride."""
        pattern = info.data.get("pattern")
        owner = "zipf" if info.field_name == "alpha" else "stride"
        if pattern is None:
            return value
        if pattern == owner and value is None:
            raise ValueError(f"pattern {owner} needs {info.field_name}")
        if pattern != owner and value is not None:
            raise ValueError(f"{info.field_name} is only for pattern {owner}, not {pattern}")
        return value


class Read(_Model):
    """read(2) of a file, or of the part ``offset``..``offset + size``, through
    the page cache: ``block`` bytes per call, in order or (``random``)
    ``count`` blocks at random block-aligned offsets; ``advice`` is
    posix_fadvise'd first."""

    file: AbsPath
    passes: int = Field(1, ge=1)
    offset: Size = 0
    size: Optional[PositiveSize] = None
    block: PositiveSize = 128 * 1024
    pattern: Literal["sequential", "random"] = "sequential"
    count: Optional[int] = Field(None, ge=1)
    advice: Literal["normal", "sequential", "random", "willneed", "dontneed"] = "normal"

    @field_validator("count")
    @classmethod
    def _random_count(cls, count: Optional[int], info) -> Optional[int]:
        """``count`` goes with pattern random only."""
        pattern = info.data.get("pattern")
        if count is not None and pattern not in (None, "random"):
            raise ValueError(f"count is only for pattern random, not {pattern}")
        return count


class Write(_Model):
    """write(2) of ``size`` bytes to a file (created if absent), at ``offset``
    (default: appended at the end), then fsync(2) if ``sync``."""

    file: AbsPath
    size: PositiveSize
    offset: Optional[Size] = None
    sync: bool = False


class Madvise(_Model):
    """madvise(2) over a whole region."""

    region: NonEmpty
    advice: Literal["normal", "random", "sequential", "willneed", "dontneed", "free",
                    "cold", "pageout", "hugepage", "nohugepage", "collapse",
                    "populate_read", "populate_write"]


class Exec(_Model):
    """execve(2) of a program: a new address space."""

    program: NonEmpty


class Replay(_Model):
    """This process's accesses from a recorded trace, in the address space
    its capture recorded (``maps``; default: TRACE.maps.json when it exists).
    Relative paths are relative to the scenario file."""

    trace: NonEmpty
    format: Literal["lackey", "native"] = "lackey"
    maps: Optional[NonEmpty] = None
    cold: bool = False


class Fork(_Model):
    """fork(2): a child that runs its own steps."""

    name: NonEmpty
    steps: list["Step"] = Field(default_factory=list)


STEP_KINDS = ("mmap", "malloc", "brk", "touch", "read", "write", "fsync", "unlink", "fork",
              "wait", "madvise", "mlock", "munmap", "free", "exec", "sleep", "snapshot", "sysctl",
              "swapon", "swapoff", "cgroup", "cgroup_move", "replay", "exit")


class Step(_Model):
    """One step of a process: a mapping with exactly one key, the step type."""

    mmap: Optional[Mmap] = None
    malloc: Optional[Malloc] = None
    brk: Optional[PositiveSize] = None
    touch: Optional[Touch] = None
    read: Optional[Read] = None
    write: Optional[Write] = None
    fsync: Optional[AbsPath] = None
    unlink: Optional[AbsPath] = None
    fork: Optional[Fork] = None
    wait: Optional[NonEmpty] = None
    madvise: Optional[Madvise] = None
    mlock: Optional[NonEmpty] = None
    munmap: Optional[NonEmpty] = None
    free: Optional[NonEmpty] = None
    exec: Optional[Exec] = None
    sleep: Optional[Duration] = None
    snapshot: Optional[Name] = None
    sysctl: Optional[SysctlWrites] = None
    swapon: Optional[AbsPath] = None
    swapoff: Optional[AbsPath] = None
    cgroup: Optional[CgroupWrite] = None
    cgroup_move: Optional[CgroupPath] = None
    replay: Optional[Replay] = None
    exit: Optional[int] = Field(None, ge=0, le=255)

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        """A step is ``{type: value}``: exactly one key, with a value."""
        if not isinstance(data, dict):
            raise ValueError(f"a step is a mapping with one key, such as `exit: 0`; got {data!r}")
        if len(data) != 1:
            keys = ", ".join(map(str, data)) or "none"
            raise ValueError(f"a step has exactly one key (the step type), got {len(data)}: {keys}")
        (key, value), = data.items()
        if key in STEP_KINDS and value is None:
            raise ValueError(f"step {key!r} needs a value")
        return data

    @property
    def kind(self) -> str:
        """The step type, e.g. ``"touch"``."""
        return next(iter(self.model_fields_set))

    @property
    def args(self) -> Any:
        """The step's value: a model (``Touch``...) or a scalar (``exit: 0``)."""
        return getattr(self, self.kind)

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """Dumps as the scenario writes it: ``{"touch": {...}}``."""
        return {self.kind: handler(self)[self.kind]}

    def __repr_args__(self):
        return [(self.kind, self.args)]


Fork.model_rebuild()


class Process(_Model):
    """A process started at ``start`` that runs its steps in order.

    ``program`` defaults to the process's name.
    """

    name: NonEmpty
    program: Optional[NonEmpty] = None
    cgroup: CgroupPath = "/"
    oom_score_adj: int = Field(0, ge=-1000, le=1000)
    start: Duration = 0.0
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _program_defaults_to_name(self) -> "Process":
        """A process without ``program`` runs the program of its own name."""
        if self.program is None:
            self.program = self.name
        return self


AT_ACTIONS = ("snapshot", "sysctl", "swapon", "swapoff", "cgroup")


class AtEvent(_Model):
    """A timed event of the whole machine: a snapshot, sysctl writes,
    swapon/swapoff of an area listed under ``swap``, or writes to a cgroup's
    control files."""

    time: Duration
    snapshot: Optional[Name] = None
    sysctl: Optional[SysctlWrites] = None
    swapon: Optional[AbsPath] = None
    swapoff: Optional[AbsPath] = None
    cgroup: Optional[CgroupWrite] = None

    @model_validator(mode="after")
    def _one_action(self) -> "AtEvent":
        """Exactly one action."""
        if sum(getattr(self, a) is not None for a in AT_ACTIONS) != 1:
            raise ValueError(f"an `at` event has a time and exactly one of "
                             f"{', '.join(AT_ACTIONS)}")
        return self

    @property
    def action(self) -> str:
        """The event's action, e.g. ``"swapoff"``."""
        return next(a for a in AT_ACTIONS if getattr(self, a) is not None)


class Scenario(_Model):
    """A whole scenario file (SCENARIO.md v1)."""

    name: Optional[NonEmpty] = None
    seed: int = Field(0, ge=0)
    machine: Machine
    sysctl: SysctlSettings = Field(default_factory=SysctlSettings)
    swap: list[SwapArea] = Field(default_factory=list)
    files: dict[AbsPath, Size] = Field(default_factory=dict)
    cgroups: dict[CgroupPath, CgroupLimits] = Field(default_factory=dict)
    programs: dict[Name, Program] = Field(default_factory=dict)
    processes: list[Process] = Field(default_factory=list)
    at: list[AtEvent] = Field(default_factory=list)
    sample: Duration = Field(1.0, gt=0)

    _source: Optional[str] = PrivateAttr(None)

    @property
    def source(self) -> Optional[str]:
        """The file the scenario was loaded from, if any."""
        return self._source

    def resolve(self, path: str) -> Path:
        """A path written in the scenario (a trace), relative to its file."""
        base = Path(self._source).parent if self._source else Path.cwd()
        return base / path


# --- messages of pydantic errors ------------------------------------------------

_EXPECTED = {
    "int_type": "expected an integer", "int_parsing": "expected an integer",
    "int_from_float": "expected an integer", "float_type": "expected a number",
    "float_parsing": "expected a number", "bool_type": "expected true or false",
    "bool_parsing": "expected true or false", "string_type": "expected a string",
    "dict_type": "expected a mapping", "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping", "list_type": "expected a list",
    "none_required": "expected nothing", "string_too_short": "must not be empty",
}


def _known_keys() -> set[str]:
    """Every key the format knows, for "did you mean" hints."""
    models = [Scenario, Machine, SwapArea, CgroupLimits, CgroupWrite, Reclaim, Program, Mmap,
              Malloc, Touch, Read, Write, Madvise, Exec, Replay, Fork, Step, Process, AtEvent]
    return {f.alias or n for m in models for n, f in m.model_fields.items()}


def _short(value: Any) -> str:
    """``repr`` of an offending value, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key(loc: tuple) -> str:
    """The message for a key no model knows, with a hint where one helps."""
    key = loc[-1]
    if len(loc) >= 2 and loc[-2] == "sysctl":
        return _sysctl.unknown_message(str(key))
    if len(loc) >= 3 and isinstance(loc[-2], int) and loc[-3] == "steps":
        return f"unknown step {key!r} (steps: {', '.join(STEP_KINDS)})"
    close = difflib.get_close_matches(str(key), _known_keys(), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _message(err: dict) -> str:
    """One pydantic error as a sentence naming the offending value."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
        named = f"{err['loc'][-1]}: " if err["loc"] else None
        return text[len(named):] if named and text.startswith(named) else text
    if kind == "missing":
        return f"missing required key {err['loc'][-1]!r}"
    if kind == "extra_forbidden":
        return _unknown_key(err["loc"])
    if kind == "literal_error":
        phrase = f"expected {ctx['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
                 "greater_than": ("greater than", "gt"), "less_than": ("less than", "lt")}[kind]
        phrase = f"must be {bound[0]} {ctx[bound[1]]}"
    else:
        phrase = _EXPECTED.get(kind, err["msg"])
    return f"{phrase}, got {_short(value)}"


def _first_error(errors: list[tuple[tuple, str]], root, source: str) -> InputError:
    """The first of (loc, message) problems in document order, as an InputError."""
    lines = [(yamlloc.locate(root, loc), i) for i, (loc, _) in enumerate(errors)]
    line, i = min(lines)
    loc, what = errors[i]
    return InputError(yamlloc.where(source, line, loc), what)


# --- reference checks (after the shape is right) --------------------------------

class _Walk:
    """Walks the steps of every process, collecting reference problems."""

    def __init__(self, scenario: Scenario):
        self.sc = scenario
        self.errors: list[tuple[tuple, str]] = []
        self.snapshots: dict[str, tuple] = {}
        written = {s.args.file for s in self._all_steps() if s.kind == "write"}
        self.files = set(scenario.files) | written

    def _all_steps(self, steps=None):
        """Every step of every process, forks included."""
        for step in steps if steps is not None else [s for p in self.sc.processes for s in p.steps]:
            yield step
            if step.kind == "fork":
                yield from self._all_steps(step.args.steps)

    def error(self, loc: tuple, what: str) -> None:
        self.errors.append((loc, what))

    def snapshot(self, name: str, loc: tuple) -> None:
        """Snapshot names are directories: each once."""
        if name in self.snapshots:
            self.error(loc, f"snapshot name {name!r} is used twice "
                            f"(also at {yamlloc.format_path(self.snapshots[name])})")
        self.snapshots.setdefault(name, loc)

    def steps(self, steps: list[Step], regions: dict[str, str], loc: tuple) -> None:
        """Check one list of steps; ``regions`` maps live names to mmap/malloc."""
        children: set[str] = set()
        for i, step in enumerate(steps):
            here = loc + ("steps", i, step.kind)
            if i and steps[i - 1].kind == "exit":
                self.error(loc + ("steps", i), "this step comes after `exit` and never runs")
            self.step(step, regions, children, here)

    def step(self, step: Step, regions: dict, children: set, here: tuple) -> None:
        """Check one step's references and update the live regions."""
        kind, args = step.kind, step.args
        if kind in ("mmap", "malloc"):
            self.define(args.as_, kind, regions, here + ("as",))
        if kind == "mmap" and args.file is not None:
            self.need_file(args.file, here + ("file",))
        if kind in ("touch", "madvise"):
            self.need_region(args.region, regions, here + ("region",))
        if kind == "mlock":
            self.need_region(args, regions, here)
        if kind in ("munmap", "free"):
            self.release(kind, args, regions, here)
        if kind == "read":
            self.need_file(args.file, here + ("file",))
            self.read_range(args, here)
        if kind in ("fsync", "unlink"):
            self.need_file(args, here)
        if kind == "fork":
            children.add(args.name)
            self.steps(args.steps, dict(regions), here)
        if kind == "wait" and args not in children:
            self.error(here, f"no child {args!r} was forked before this wait")
        if kind == "exec":
            regions.clear()
        if kind == "snapshot":
            self.snapshot(args, here)
        if kind in ("swapon", "swapoff"):
            self.need_swap(args, here)
        if kind == "cgroup":
            self.cgroup_write(args, here)
        if kind == "cgroup_move":
            self.need_leaf(args, here)

    def define(self, name: str, how: str, regions: dict, loc: tuple) -> None:
        """A new region name: not a built-in, not already live."""
        if name in BUILTIN_REGIONS:
            self.error(loc, f"{name!r} is a built-in region ({', '.join(BUILTIN_REGIONS)})")
        elif name in regions:
            self.error(loc, f"region {name!r} already exists (from {regions[name]})")
        regions[name] = how

    def need_region(self, name: str, regions: dict, loc: tuple) -> None:
        """A region named by a step must be live (or built in)."""
        if name not in regions and name not in BUILTIN_REGIONS:
            known = ", ".join([*regions, *BUILTIN_REGIONS])
            self.error(loc, f"no region {name!r} here (regions: {known})")

    def release(self, kind: str, name: str, regions: dict, loc: tuple) -> None:
        """munmap takes an mmap region, free a malloc one."""
        want = "mmap" if kind == "munmap" else "malloc"
        if regions.get(name) == want:
            del regions[name]
        elif name in regions:
            other = "free" if want == "mmap" else "munmap"
            self.error(loc, f"{name!r} was made by {regions[name]}: release it with {other}")
        else:
            self.error(loc, f"no {want} region {name!r} here")

    def read_range(self, args: "Read", here: tuple) -> None:
        """The part a read step names lies inside the file (when its size is
        known from ``files``)."""
        size = self.sc.files.get(args.file)
        if size is None:
            return
        if args.offset and args.offset >= size:
            self.error(here + ("offset",), f"offset {args.offset} is at or beyond the end of "
                                           f"{args.file} ({size} bytes)")
        elif args.size is not None and args.offset + args.size > size:
            self.error(here + ("size",), f"offset {args.offset} + size {args.size} goes beyond "
                                         f"the end of {args.file} ({size} bytes)")

    def need_swap(self, path: str, loc: tuple) -> None:
        """swapon and swapoff name an area listed under ``swap``."""
        listed = [a.path for a in self.sc.swap]
        if path not in listed:
            known = f" (listed: {', '.join(listed)})" if listed else ""
            self.error(loc, f"no swap area {path!r}: list it under `swap` (with "
                            f"`active: false` to leave it off at boot){known}")

    def cgroup_write(self, write: CgroupWrite, loc: tuple) -> None:
        """A cgroup write names a cgroup of the ``cgroups`` section (or one
        made as a parent of those); the root has only memory.reclaim."""
        if write.path == "/":
            other = [f for f in write.files() if f != "memory.reclaim"]
            if other:
                self.error(loc + (other[0],), f"the root cgroup has no {other[0]} "
                                              f"(of these files only memory.reclaim)")
        elif not _cgroup_exists(self.sc, write.path):
            self.error(loc + ("path",), f"no cgroup {write.path!r}: list it under `cgroups`")

    def need_leaf(self, path: str, loc: tuple) -> None:
        """Processes go into existing leaf cgroups (or the root)."""
        problem = _leaf_problem(self.sc, path)
        if problem:
            self.error(loc, problem)

    def need_file(self, path: str, loc: tuple) -> None:
        """A file read or mapped is listed under files or written by a step."""
        if path not in self.files:
            self.error(loc, f"no file {path!r}: list it under `files` or write it first")


def _cgroups_below(sc: Scenario, path: str) -> list[str]:
    """The cgroups listed below ``path``, sorted."""
    return sorted(p for p in sc.cgroups if p.startswith(path.rstrip("/") + "/"))


def _cgroup_exists(sc: Scenario, path: str) -> bool:
    """A cgroup listed under ``cgroups``, a parent of one, or the root."""
    return path == "/" or path in sc.cgroups or bool(_cgroups_below(sc, path))


def _leaf_problem(sc: Scenario, path: str) -> Optional[str]:
    """Why ``path`` cannot take processes (it does not exist, or is not a
    leaf: cgroup v2's no-internal-process rule, the root exempt), or None."""
    if not _cgroup_exists(sc, path):
        return f"no cgroup {path!r}: list it under `cgroups`"
    below = _cgroups_below(sc, path)
    if path != "/" and below:
        return (f"cgroup {path!r} has child cgroups ({', '.join(below)}): "
                f"cgroup v2 puts processes only in leaves")
    return None


def _check_cgroups(sc: Scenario, errors: list) -> None:
    """cgroup keys are not the root; processes sit in existing leaf cgroups."""
    for path in sc.cgroups:
        if path == "/":
            errors.append((("cgroups", "/"), "the root cgroup has no memory limits to set"))
    for i, proc in enumerate(sc.processes):
        problem = _leaf_problem(sc, proc.cgroup)
        if problem:
            errors.append((("processes", i, "cgroup"), problem))


def _check_swap(sc: Scenario, errors: list) -> None:
    """Swap areas are distinct, and not also listed as regular files."""
    seen: set[str] = set()
    for i, area in enumerate(sc.swap):
        if area.path in seen:
            errors.append((("swap", i, "path"), f"swap area {area.path!r} is listed twice"))
        if area.path in sc.files:
            errors.append((("swap", i, "path"), f"{area.path!r} is both a swap area and a file"))
        seen.add(area.path)


def _reference_errors(sc: Scenario) -> list[tuple[tuple, str]]:
    """Every reference problem of a well-shaped scenario, as (loc, message)."""
    walk = _Walk(sc)
    for i, proc in enumerate(sc.processes):
        walk.steps(proc.steps, {}, ("processes", i))
    for i, event in enumerate(sc.at):
        if event.snapshot is not None:
            walk.snapshot(event.snapshot, ("at", i, "snapshot"))
        if event.action in ("swapon", "swapoff"):
            walk.need_swap(getattr(event, event.action), ("at", i, event.action))
        if event.action == "cgroup":
            walk.cgroup_write(event.cgroup, ("at", i, "cgroup"))
    _check_cgroups(sc, walk.errors)
    _check_swap(sc, walk.errors)
    return walk.errors


# --- loading --------------------------------------------------------------------

def _arch_of(data: dict) -> str:
    """The machine's arch as written (for sysctl ranges), x86_64 if unclear."""
    machine = data.get("machine")
    arch = machine.get("arch") if isinstance(machine, dict) else None
    return arch if arch in _sysctl.ARCHES else "x86_64"


def parse_scenario(text: str, source_name: str = "<scenario>") -> Scenario:
    """Parse and check scenario YAML; raise one InputError at ``FILE:LINE: path``."""
    data, root = yamlloc.load_located(text, source_name)
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        raise InputError(f"{source_name}:1", f"a scenario is a YAML mapping "
                                             f"(machine, processes, ...), got {got}")
    try:
        scenario = Scenario.model_validate(data, context={"arch": _arch_of(data)})
    except ValidationError as exc:
        problems = [(tuple(e["loc"]), _message(e)) for e in exc.errors()]
        raise _first_error(problems, root, source_name) from None
    problems = _reference_errors(scenario)
    if problems:
        raise _first_error(problems, root, source_name)
    scenario._source = source_name
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and check the scenario file at ``path`` (see :func:`parse_scenario`)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(name, "no such scenario file") from None
    except IsADirectoryError:
        raise InputError(name, "is a directory, not a scenario file") from None
    except UnicodeDecodeError as exc:
        raise InputError(name, f"not UTF-8 text (byte offset {exc.start})") from None
    except OSError as exc:
        raise InputError(name, f"cannot read: {exc.strerror}") from None
    return parse_scenario(text, name)


def default_scenario() -> Scenario:
    """The built-in scenario: a 4GiB x86_64 machine, 2 CPUs, THP madvise."""
    ref = resources.files("linmem").joinpath("data/scenarios/default.yaml")
    return parse_scenario(ref.read_text(encoding="utf-8"), "default.yaml")
