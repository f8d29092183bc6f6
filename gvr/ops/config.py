"""Read gvr YAML configs outside the CLI (benchmarks, `gvr flops`), includes resolved as the CLI resolves them.

A config may start from another with ``config: OTHER.yaml`` (a path relative to the including file), as
LightningCLI reads it: the including file's values win, dicts merge key by key (a ``class_path`` entry of
the same class keeps the base's ``init_args`` it does not set) and lists are replaced whole.
"""

from pathlib import Path

import yaml
from jsonargparse import ArgumentParser


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: dicts merge recursively, anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            if "class_path" in value and value["class_path"] != out[key].get("class_path"):
                out[key] = value  # another class: the base's init_args do not apply
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(config: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The YAML file ``config`` as a dict, with its ``config:`` include (if any) merged underneath."""
    path = Path(config).resolve()
    if path in _seen:
        raise ValueError(f"{config}: configs include each other ({' -> '.join(str(p) for p in (*_seen, path))})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{config} is not a YAML mapping")
    include = data.pop("config", None)
    if include is None:
        return data
    return merge(load_config(path.parent / include, (*_seen, path)), data)


def instantiate_section(config: str, key: str, cls: type):
    """Instantiate ``cls`` from the ``key`` section of the YAML file ``config`` (class_path entries included)."""
    data = load_config(config)
    if key not in data:
        raise ValueError(f"{config} has no '{key}' section")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, key)
    return getattr(parser.instantiate_classes(parser.parse_object({key: data[key]})), key)
