"""Sub-commands of the ``pndmkit`` command line, one module each (see :mod:`pndmkit.cli`)."""
