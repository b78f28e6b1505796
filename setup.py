"""Build hook for the optional C modules; everything else is in pyproject.toml.

The rule engine's word scan (``_ctext``) and evaluator (``_cmatch``) and the story signature's
loop (``_cstories``) are optional: where they cannot be compiled the install still succeeds and
the pure-Python paths give the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "watchers.rules._ctext",
            ["watchers/rules/_ctext.c"],
            optional=True,
        ),
        Extension(
            "watchers.rules._cmatch",
            ["watchers/rules/_cmatch.c"],
            optional=True,
        ),
        Extension(
            "watchers.stories._cstories",
            ["watchers/stories/_cstories.c"],
            optional=True,
        ),
    ]
)
