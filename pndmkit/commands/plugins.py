"""Plugins: modules and installed packages that register methods when the ``pndmkit`` command starts.

The registry (:mod:`pndmkit.methods`) lives in one process; the command line loads plugins before it parses
its arguments, so a user's methods appear in ``pndmkit methods``, ``order``, ``compare`` and the rest, and
``python -m paper_figures`` does the same (:func:`load_plugins_or_exit`), so a figure knows them too.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["PLUGIN_ENV", "PLUGIN_GROUP", "load_plugins", "load_plugins_or_exit"]

#: environment variable naming modules (comma-separated) that register methods when ``pndmkit`` starts
PLUGIN_ENV = "PNDMKIT_PLUGINS"
#: entry-point group of installed packages that register methods when ``pndmkit`` starts
PLUGIN_GROUP = "pndmkit.methods"


def load_plugins(modules: Optional[str] = None) -> list[str]:
    """Import the modules that register user methods, so that a new ``pndmkit`` process knows them.

    A method registered with :func:`pndmkit.register_method` lives in the process that registered it. The command
    line imports, before it parses its arguments, every module named in the environment variable
    ``PNDMKIT_PLUGINS`` (comma-separated, importable from ``sys.path``, e.g. ``PNDMKIT_PLUGINS=mymethods``
    with ``mymethods.py`` in the current folder or on ``PYTHONPATH``) and every entry point of the group
    ``pndmkit.methods`` of installed packages (an entry point naming a callable is called). Importing a module
    twice does nothing, so its ``register_method`` calls run once.

    Parameters
    ----------
    modules : str, optional
        Comma-separated module names; default: the environment variable.

    Returns
    -------
    list of str
        What was loaded.

    Raises
    ------
    ImportError
        A named module cannot be imported (the message names the variable and the module).
    """
    import importlib
    import os
    import sys
    from importlib.metadata import entry_points

    loaded = []
    names = os.environ.get(PLUGIN_ENV, "") if modules is None else modules
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: a plugin module in the current folder
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"{PLUGIN_ENV}: cannot import {name!r} ({exc})") from exc
        except Exception as exc:  # a register_method refusal, or any error of the module's own code
            raise ImportError(f"{PLUGIN_ENV}: module {name!r} failed while registering its methods: "
                              f"{type(exc).__name__}: {exc}") from exc
        loaded.append(name)
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            obj = entry.load()
            if callable(obj):
                obj()
        except Exception as exc:
            raise ImportError(f"entry point {entry.name!r} ({entry.value}) of group {PLUGIN_GROUP!r} failed while "
                              f"registering its methods: {type(exc).__name__}: {exc}") from exc
        loaded.append(entry.name)
    return loaded


def load_plugins_or_exit(prog: str) -> list[str]:
    """:func:`load_plugins`, a failure reported as the ``pndmkit`` command reports it: one line on stderr,
    ``PROG: error: PNDMKIT_PLUGINS: ...`` (naming the module and its error), then ``SystemExit(2)``.

    For every command line that reads the registry (``pndmkit``, ``python -m paper_figures``): a plugin that
    cannot be imported, or fails while registering, is the user's to fix, so it shows no traceback.

    Parameters
    ----------
    prog : str
        The command the message starts with, e.g. ``"pndmkit"``.

    Returns
    -------
    list of str
        The modules and entry points :func:`load_plugins` loaded.

    Raises
    ------
    SystemExit
        Exit status 2 (argparse's, and the ``pndmkit`` command's, for bad input), after printing the line; its
        ``str`` is the line printed.
    """
    from pndmkit.commands.args import usage_exit

    try:
        return load_plugins()
    except Exception as exc:  # noqa: BLE001 - a plugin's own error is the user's to fix, in one line
        raise usage_exit(prog, str(exc) if PLUGIN_ENV in str(exc) else f"{PLUGIN_ENV}: {exc}") from None
