"""A small registry: string keys -> strategy classes (``_key`` on each)."""

from __future__ import annotations

from sklearn.base import clone


class Registry:
    """Maps string keys to subclasses of a strategy base class.

    Parameters
    ----------
    base : type
        The base class; registered classes and accepted instances derive from it.
    what : str
        What the strategy is called in error messages ("objective", "method").
    """

    def __init__(self, base: type, what: str) -> None:
        self.base = base
        self.what = what
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: register ``cls`` under ``cls._key``."""
        key = getattr(cls, "_key", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"{cls.__name__} needs a non-empty string `_key`.")
        if not issubclass(cls, self.base):
            raise TypeError(f"{cls.__name__} must subclass {self.base.__name__}.")
        self._classes[key] = cls
        return cls

    def keys(self) -> list[str]:
        """Registered keys, sorted."""
        return sorted(self._classes)

    def resolve(self, value):
        """A fresh strategy object from a key, or a clone of an instance."""
        if isinstance(value, str):
            try:
                return self._classes[value]()
            except KeyError:
                raise ValueError(
                    f"Unknown {self.what} {value!r}; choose one of {self.keys()} "
                    f"or pass a {self.base.__name__} instance."
                ) from None
        if isinstance(value, self.base):
            return clone(value)
        raise TypeError(
            f"{self.what} must be a string in {self.keys()} or a "
            f"{self.base.__name__} instance, got {type(value).__name__}."
        )
