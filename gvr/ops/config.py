"""Build one section of a gvr YAML config (``model`` or ``data``) outside the CLI, e.g. in benchmarks."""

from pathlib import Path

import yaml
from jsonargparse import ArgumentParser


def instantiate_section(config: str, key: str, cls: type):
    """Instantiate ``cls`` from the ``key`` section of the YAML file ``config`` (class_path entries included)."""
    data = yaml.safe_load(Path(config).read_text()) or {}
    if key not in data:
        raise ValueError(f"{config} has no '{key}' section")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, key)
    return getattr(parser.instantiate_classes(parser.parse_object({key: data[key]})), key)
