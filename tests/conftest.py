import random

import pytest


def seeded_rng(seed: int = 0):
    """A deterministic ``rng(n) -> bytes`` for the core."""
    generator = random.Random(seed)
    return generator.randbytes


@pytest.fixture
def rng():
    return seeded_rng(0)
