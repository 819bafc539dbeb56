import numpy as np
import pytest
from pydantic import Field

from outlearn.config import Config, load_toml, parse_config
from outlearn.errors import ConfigError
from outlearn.stats import bootstrap_ci, iqm


class Inner(Config):
    size: int = Field(9, ge=2)


class Outer(Config):
    name: str = "x"
    inner: Inner = Inner()


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "a"\n[inner]\nsiez = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key 'inner.siez'"):
        load_toml(Outer, p)


def test_wrong_type_and_impossible_value():
    with pytest.raises(ConfigError, match=r"key 'inner.size'"):
        parse_config(Outer, {"inner": {"size": "big"}})
    with pytest.raises(ConfigError, match=r"greater than or equal to 2"):
        parse_config(Outer, {"inner": {"size": 1}})


def test_hash_is_stable():
    assert Outer().content_hash() == Outer().content_hash()
    assert Outer().content_hash() != Outer(name="y").content_hash()


def test_bootstrap_brackets_and_is_reproducible():
    x = [0.0, 1.0, 2.0, 3.0, 10.0]
    a, b = bootstrap_ci(x, seed=3), bootstrap_ci(x, seed=3)
    assert a == b
    assert a.value == pytest.approx(3.2)
    assert a.low <= a.value <= a.high and a.low < a.high
    assert iqm([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)


def test_difference_ci_paired_and_independent():
    from outlearn.stats import difference_ci

    a, b = np.array([3.0, 4.0, 5.0, 6.0]), np.array([1.0, 1.5, 2.0, 2.5])
    paired = difference_ci(a, b, paired=True, seed=1)
    assert paired == bootstrap_ci(a - b, seed=1)
    ind = difference_ci(a, b, seed=1)
    assert ind.value == pytest.approx(2.75) and ind.low <= 2.75 <= ind.high
    assert ind == difference_ci(a, b, seed=1)
    assert ind.high - ind.low > paired.high - paired.low  # pairing removes shared spread
