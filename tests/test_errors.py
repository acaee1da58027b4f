"""searec's errors survive pickling: a run in a worker process (searec experiment --jobs,
the DDP launcher) hands its error to the parent that way."""

import pickle

import pytest

from searec.errors import ConfigError, DataError, SearecError
from searec.inference.recommend import UnknownIdError
from searec.inference.serving.limits import BodyRejected
from searec.inference.serving.service import RequestError

ERRORS = [
    DataError("data/x.inter", "column 'rating' is not a number", line=7),
    DataError("data/x.inter", "no rows"),
    ConfigError("model.embedding_dim: expected an integer > 0"),
    UnknownIdError("u42", "unknown user id 'u42'"),
    RequestError(503, "reloading", headers={"Retry-After": "1"}),
    BodyRejected(413, "body over 1,048,576 bytes"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_error_round_trips_through_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_every_error_with_its_own_constructor_is_covered():
    """A new error class whose __init__ takes other arguments than the message needs a
    __reduce__ (and a case above)."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    own_init = {c for c in [*subclasses(SearecError), BodyRejected]
                if "__init__" in vars(c) and c.__module__.startswith("searec")}
    assert own_init <= {type(e) for e in ERRORS}
    assert all("__reduce__" in vars(c) for c in own_init)
