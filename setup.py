"""Build hook for the optional C word scanner; everything else is in pyproject.toml.

The extension is optional: where it cannot be compiled the install still succeeds and
``watchers.rules.text`` uses its pure-Python path, which gives the same tokens.
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
    ]
)
