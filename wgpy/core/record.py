"""Records: the core's small value classes (events, messages, handshake states), written as dataclasses
are, without the ``dataclasses`` module.

``@dataclass`` writes its methods as source text and runs ``exec`` on it for every class (and, with
``slots=True``, builds each class twice); with the module itself (it brings ``inspect``, ``ast``, ``dis``)
that cost the daemon about 15 ms of its start-up for some thirty classes (benchmarks/bench_startup.py).
``@record`` gives the same behaviour from a few shared methods instead: the fields are the class's
annotations in order, a class attribute of that name is the field's default, ``__slots__`` hold the
values; ``__init__`` (positional or by name, then ``__post_init__`` if the class has one), ``__repr__``
(without the ``hidden`` fields: secrets), ``__eq__`` and, when ``frozen``, ``__hash__`` and no assignment
(``FrozenInstanceError``, an AttributeError, as dataclasses raises)::

    @record(hidden=("chaining_key",))
    class HandshakeResult:
        chaining_key: bytes
        hash: bytes
        payload: bytes = b""
"""

from __future__ import annotations

_MISSING = object()
_set = object.__setattr__


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


def record(cls: type | None = None, *, frozen: bool = True, hidden: tuple[str, ...] = ()):
    """The class decorator; ``@record`` or ``@record(frozen=False, hidden=(...))``."""

    def build(cls: type) -> type:
        body = dict(cls.__dict__)
        names = tuple(body.get("__annotations__", {}))
        defaults = {name: body.pop(name) for name in names if name in body}
        body.pop("__dict__", None)
        body.pop("__weakref__", None)
        body.update(
            __slots__=names,
            __match_args__=names,
            _fields=names,
            _post_init=getattr(cls, "__post_init__", None),
            _defaults=defaults,
            _shown=tuple(name for name in names if name not in hidden),
            __init__=_init,
            __repr__=_repr,
            __eq__=_eq,
            __reduce__=_reduce,
        )
        if frozen:
            body.update(__hash__=_hash, __setattr__=_frozen, __delattr__=_frozen)
        else:
            body["__hash__"] = None   # as a mutable dataclass: equal by value, so not hashable
        new = type(cls)(cls.__name__, cls.__bases__, body)
        new.__qualname__ = cls.__qualname__
        return new

    return build if cls is None else build(cls)


def _init(self, *args, **kwargs) -> None:
    names = self._fields
    if len(args) == len(names) and not kwargs:
        for name, value in zip(names, args):
            _set(self, name, value)
    else:
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, {len(args)} given")
        given = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}")
            if name in given:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            given[name] = value
        defaults = self._defaults
        for name in names:
            value = given.get(name, defaults.get(name, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            _set(self, name, value)
    if self._post_init is not None:
        self._post_init()


def replace(instance, **changes):
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    values = dict(zip(instance.__match_args__, _values(instance)))
    values.update(changes)
    return type(instance)(**values)


def _values(self) -> tuple:
    return tuple(getattr(self, name) for name in self._fields)


def _repr(self) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _reduce(self) -> tuple:
    """For copy and pickle: the class and the values (a frozen record refuses the usual setattr)."""
    return type(self), _values(self)


def _hash(self) -> int:
    return hash(_values(self))


def _frozen(self, name: str, *value) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")
