"""Read gvr YAML configs outside the CLI (benchmarks, `gvr flops`), includes resolved as the CLI resolves them.

A config may start from another with ``config: OTHER.yaml`` (a path relative to the including file), as
LightningCLI reads it: the including file's values win, dicts merge key by key (a ``class_path`` entry of
the same class keeps the base's ``init_args`` it does not set) and lists are replaced whole.
"""

from pathlib import Path
from typing import Any

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


def config_layers(config: str | Path) -> list[tuple[Path, object]]:
    """``(path, parsed YAML)`` of ``config`` and of each config it starts from (``config:``), the deepest first.

    One walk serves both readers: the CLI, which passes the paths on as ``--config`` flags
    (`gvr.lit.cli.expand_configs`), and `load_config`, which merges the contents. A path that is not a file ends
    the walk with None as its content, for its reader to report; configs that include each other are an error.
    """
    layers: list[tuple[Path, object]] = []
    path = Path(config)
    while True:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
        layers.insert(0, (path, data))
        include = data.get("config") if isinstance(data, dict) else None
        if not isinstance(include, str):
            return layers
        path = path.parent / include
        if path.resolve() in {p.resolve() for p, _ in layers}:
            chain = " -> ".join(str(p) for p, _ in reversed(layers))
            raise ValueError(f"{config}: configs include each other ({chain} -> {path})")


def load_config(config: str | Path) -> dict:
    """The YAML file ``config`` as a dict, with the configs it starts from (``config:``) merged underneath."""
    out: dict = {}
    for path, data in config_layers(config):
        if data is None and not path.is_file():
            raise FileNotFoundError(f"config {path} not found")
        if not isinstance(data or {}, dict):
            raise ValueError(f"{path} is not a YAML mapping")
        out = merge(out, {k: v for k, v in (data or {}).items() if k != "config"})
    return out


def instantiate(base: type, spec: Any) -> Any:
    """``spec`` (a ``{class_path, init_args}`` config, as the CLI stores it in a checkpoint or reads it from YAML)
    built as a subclass of ``base`` by jsonargparse, as the CLI builds it; an instance already (e.g. a module
    saved outside the CLI) or None stays as it is."""
    if spec is None or isinstance(spec, base):
        return spec
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(base, "x")
    return parser.instantiate_classes(parser.parse_object({"x": spec})).x


def instantiate_section(config: str, key: str, cls: type):
    """Instantiate ``cls`` from the ``key`` section of the YAML file ``config`` (class_path entries included)."""
    data = load_config(config)
    if key not in data:
        raise ValueError(f"{config} has no '{key}' section")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, key)
    return getattr(parser.instantiate_classes(parser.parse_object({key: data[key]})), key)


def parse_recipe(config: str | Path, key: str, cls: type) -> tuple[dict, object]:
    """A recipe YAML's ``key`` section (or the whole file) parsed as ``cls``'s arguments, includes resolved:
    ``(canonical config with defaults filled in, JSON-safe for fingerprints; the instance)``."""
    import json

    data = load_config(config)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, key)
    cfg = parser.parse_object({key: data.get(key, data)})
    canonical = json.loads(json.dumps(cfg.as_dict()[key], default=str))
    return canonical, getattr(parser.instantiate_classes(cfg), key)
