"""The four prep steps over an output folder, and the parsing of their recipe (configs/prep.yaml).

Files in the output folder OUT::

    scan.recipe.json  scan.journal.jsonl   clips.jsonl  unreadable.jsonl         step 1: scan and split
    measure.recipe.json  measure.journal.jsonl  measured.jsonl                   step 2: measure
    filter.recipe.json  kept.jsonl  dropped.jsonl  summary.txt  hist/*.png       step 3: filter
    shards/                                                                      step 4: shard

Scan, measure and shard refuse an OUT made with another recipe; filter is cheap and simply redone when its
thresholds change (the shard step then refuses the old shards, which hold other clips).
"""

import functools
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from gvr.prep.filters import FilterRecipe, Histograms, explain, reasons, summary_table
from gvr.prep.jobs import atomic_writer, check_recipe, count_lines, digest, file_sha256, read_jsonl, run_journal
from gvr.prep.measures import MeasureRecipe, measure_clip
from gvr.prep.scenes import ScanRecipe, list_videos, scan_video
from gvr.prep.shard_writer import ShardRecipe, build_shards

log = logging.getLogger(__name__)


@dataclass
class PrepConfig:
    """A parsed configs/prep.yaml: the canonical dict of each section (for recipe records) and its object."""

    config: dict
    scan: ScanRecipe
    measure: MeasureRecipe
    filter: FilterRecipe
    shard: ShardRecipe


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> PrepConfig:
    """Parse a prep YAML (sections ``scan``, ``measure``, ``filter``, ``shard``; missing keys take defaults).

    ``overrides`` (``{"filter": {"min_short_side": 32}}``) is merged over the file, section by section.
    """
    from jsonargparse import ArgumentParser

    data = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    for section, values in (overrides or {}).items():
        data[section] = {**(data.get(section) or {}), **values}
    parser = ArgumentParser(exit_on_error=False)
    sections = {"scan": ScanRecipe, "measure": MeasureRecipe, "filter": FilterRecipe, "shard": ShardRecipe}
    for name, cls in sections.items():
        parser.add_class_arguments(cls, name)
    cfg = parser.parse_object({name: data.get(name) or {} for name in sections})
    config = json.loads(json.dumps(cfg.as_dict(), default=str))
    objects = parser.instantiate_classes(cfg)
    return PrepConfig(config, objects.scan, objects.measure, objects.filter, objects.shard)


def _video_key(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def run_scan(src: Path, out: Path, prep: PrepConfig, workers: int = 1) -> dict:
    """Step 1: journal every video under ``src``, then write ``clips.jsonl`` and ``unreadable.jsonl``."""
    src = Path(src).resolve()
    recipe = {"src": str(src), "scan": prep.config["scan"]}
    out.mkdir(parents=True, exist_ok=True)
    check_recipe(out / "scan.recipe.json", recipe, "a scan")
    journal = out / "scan.journal.jsonl"
    new = run_journal(journal, list_videos(src, prep.scan.exts), functools.partial(_video_key, src),
                      functools.partial(scan_video, root=src, recipe=prep.scan), workers, "scan")
    counts: Counter = Counter()
    with atomic_writer(out / "clips.jsonl") as clips, atomic_writer(out / "unreadable.jsonl") as bad:
        for entry in read_jsonl(journal):
            if "error" in entry:
                bad.write(json.dumps({"path": entry["path"], "reason": entry["error"], "detail": entry["detail"]}) + "\n")
                counts["unreadable"] += 1
                continue
            counts["videos"] += 1
            for clip in entry["clips"]:
                clips.write(json.dumps(clip) + "\n")
                counts["clips"] += 1
    return {"new": new, **counts}


def run_measure(out: Path, prep: PrepConfig, workers: int = 1) -> dict:
    """Step 2: journal the measures of every clip of ``clips.jsonl``, then write ``measured.jsonl``."""
    scan = json.loads((out / "scan.recipe.json").read_text())
    check_recipe(out / "measure.recipe.json", {"scan": digest(scan), "measure": prep.config["measure"]}, "measures")
    clips = out / "clips.jsonl"
    journal = out / "measure.journal.jsonl"
    new = run_journal(journal, read_jsonl(clips), lambda c: f"{c['video']}#{c['start']}",
                      functools.partial(measure_clip, recipe=prep.measure), workers, "measure", count_lines(clips))
    counts: Counter = Counter()
    with atomic_writer(out / "measured.jsonl") as f:
        for entry in read_jsonl(journal):
            clip = entry["clip"] if "error" not in entry else {**entry["clip"], "error": entry["error"]}
            f.write(json.dumps(clip) + "\n")
            counts["clips"] += 1
    return {"new": new, **counts}


def run_filter(out: Path, prep: PrepConfig, plots: bool = True) -> str:
    """Step 3: split ``measured.jsonl`` into ``kept.jsonl`` / ``dropped.jsonl``; returns the summary table.

    Unreadable files of the scan (and clips that failed to decode when measured) are listed in
    ``dropped.jsonl`` too, with their reason (``empty``, ``corrupt``, ``truncated``, ``short``).
    Redone only when the measures or the thresholds changed.
    """
    measured = out / "measured.jsonl"
    recipe = {"measured": file_sha256(measured), "unreadable": file_sha256(out / "unreadable.jsonl"),
              "filter": prep.config["filter"]}
    stamp = out / "filter.recipe.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe and (out / "summary.txt").is_file():
        return (out / "summary.txt").read_text().rstrip("\n")
    stamp.unlink(missing_ok=True)
    hist = Histograms()
    for clip in read_jsonl(measured):
        hist.see_range(clip)
    total = kept = 0
    why: Counter = Counter()
    unreadable: Counter = Counter()
    dropped: list[str] = []  # one line per dropped clip: which measure, which value, which bound
    with atomic_writer(out / "kept.jsonl") as keep, atomic_writer(out / "dropped.jsonl") as drop:
        for clip in read_jsonl(measured):
            total += 1
            hist.add(clip)
            found = [clip["error"]] if "error" in clip else reasons(clip, prep.filter)
            if found:
                detail = [clip["error"]] if "error" in clip else explain(clip, prep.filter)
                drop.write(json.dumps({**clip, "reason": found[0], "reasons": found, "why": detail}) + "\n")
                why.update(found[:1])
                dropped.append(f"{clip.get('video', clip.get('path'))} [{clip.get('start', 0)}+{clip.get('frames', '?')}]: "
                               + "; ".join(detail))
            else:
                keep.write(json.dumps(clip) + "\n")
                kept += 1
        for entry in read_jsonl(out / "unreadable.jsonl"):
            drop.write(json.dumps({**entry, "reasons": [entry["reason"]]}) + "\n")
            unreadable[entry["reason"]] += 1
            dropped.append(f"{entry.get('path')}: {entry['reason']} ({entry.get('detail', 'unreadable')})")
    table = summary_table(total, kept, why, unreadable) + "\n\n" + hist.table(prep.filter)
    if dropped:
        table += "\n\ndropped (measure value against its bound):\n" + "\n".join(f"  {line}" for line in dropped)
    with atomic_writer(out / "summary.txt") as f:
        f.write(table + "\n")
    if plots:
        hist.plot(out / "hist", prep.filter)
    check_recipe(stamp, recipe, "a filter")
    return table


def run_shard(out: Path, prep: PrepConfig, workers: int = 1) -> dict:
    """Step 4: write the kept clips as shards in ``out/shards``; returns the shard index."""
    return build_shards(out / "kept.jsonl", out / "shards", prep.shard, prep.config["shard"], workers)
