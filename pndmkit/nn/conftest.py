"""pytest: skip collecting (and doctesting) the torch backend when torch is not installed."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") and importlib.util.find_spec("safetensors") else ["*.py"]
