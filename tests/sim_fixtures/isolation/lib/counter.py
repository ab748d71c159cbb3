"""A module with state: never shared between boards."""

_count = 0


def bump():
    global _count
    _count += 1


def value():
    return _count
