"""The mapping file (``WEBHOOK_INPUTS``): per input topic, its format and where the
envelope's parts come from. Read once at start; a mapping that cannot work stops the worker
with one line naming the file, the mapping and the key (docs/usage.md, "Input formats")."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from worker.config import ConfigError, Settings
from worker.inputs.formats import FORMATS, InputFormat
from worker.inputs.options import Options, SpecError
from worker.inputs.sources import Source

__all__ = ["InputSpec", "Mapping", "is_input_topic", "load_inputs"]


@dataclass(frozen=True, slots=True)
class Mapping:
    """One entry of the file, built: its topics, its format and the common sources."""

    label: str  # "inputs[1] (crm-cdc)"
    topics: tuple[str, ...]
    pattern: re.Pattern[str] | None
    format_name: str
    format: InputFormat
    workspace: Source | None
    entity: Source | None
    ordering_key: Source | None

    def matches(self, topic: str) -> bool:
        if self.pattern is not None:
            return self.pattern.match(topic) is not None
        return topic in self.topics


class InputSpec:
    """Every mapping of the file; :meth:`mapping_for` finds a topic's (None: an envelope)."""

    def __init__(self, path: str, mappings: list[Mapping]) -> None:
        self.path = path
        self.mappings = tuple(mappings)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one spec per process, topics are few
    def mapping_for(self, topic: str) -> Mapping | None:
        found = [m for m in self.mappings if m.matches(topic)]
        if len(found) > 1:
            raise ConfigError(
                f"WEBHOOK_INPUTS {self.path}: topic {topic!r} is matched by "
                f"{found[0].label} and {found[1].label}"
            )
        return found[0] if found else None


def load_inputs(settings: Settings) -> InputSpec | None:
    """The mapping file named by ``WEBHOOK_INPUTS``, checked; None when it is unset."""
    if not settings.inputs:
        return None
    path = settings.inputs
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise ConfigError(f"WEBHOOK_INPUTS {path}: cannot read: {exc.strerror}") from None
    try:
        raw = orjson.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).replace("\n", " ")
        raise ConfigError(f"WEBHOOK_INPUTS {path}: not valid JSON or YAML: {reason}") from None
    entries = raw.get("inputs") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"WEBHOOK_INPUTS {path}: expected {{inputs: [mapping, ...]}}")
    mappings = []
    for index, entry in enumerate(entries):
        label = f"inputs[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']})"
        try:
            mappings.append(_mapping(label, entry))
        except SpecError as exc:
            raise ConfigError(f"WEBHOOK_INPUTS {path}: {label}: {exc}") from None
    spec = InputSpec(path, mappings)
    _check_overlaps(spec, settings)
    return spec


def _mapping(label: str, entry: Any) -> Mapping:
    if not isinstance(entry, dict):
        raise SpecError("inputs", "each mapping is an object")
    options = Options(entry)
    options.mark("name", "topics", "format")
    topics, pattern = _topics(entry.get("topics"))
    name = entry.get("format")
    if name not in FORMATS:
        raise SpecError("format", f"unknown {name!r} (choose from {', '.join(FORMATS)})")
    built = FORMATS[name](options)
    mapping = Mapping(
        label=label,
        topics=topics,
        pattern=pattern,
        format_name=name,
        format=built,
        workspace=options.source("workspace", required=name != "envelope"),
        entity=options.source("entity") if name != "debezium" else None,
        ordering_key=options.source("ordering_key"),
    )
    options.finish()
    return mapping


def _topics(raw: Any) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    if isinstance(raw, str) and raw.startswith("^"):
        try:
            return (), re.compile(raw)
        except re.error as exc:
            raise SpecError("topics", f"bad regular expression: {exc}") from None
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t for t in raw):
        raise SpecError("topics", "expected a list of topic names or one '^regex'")
    if len(set(raw)) != len(raw):
        raise SpecError("topics", "a topic is listed twice")
    return tuple(raw), None


def _check_overlaps(spec: InputSpec, settings: Settings) -> None:
    where = f"WEBHOOK_INPUTS {spec.path}"
    seen: dict[str, str] = {}
    for mapping in spec.mappings:
        for topic in mapping.topics:
            if topic in seen:
                raise ConfigError(
                    f"{where}: {mapping.label}: topics: {topic!r} is also in {seen[topic]}"
                )
            seen[topic] = mapping.label
            others = [m for m in spec.mappings if m.pattern is not None and m.matches(topic)]
            if others:
                raise ConfigError(
                    f"{where}: {mapping.label}: topics: {topic!r} is also matched by "
                    f"{others[0].label}"
                )
            if not is_input_topic(topic, settings):
                raise ConfigError(
                    f"{where}: {mapping.label}: topics: {topic!r} is not an input topic "
                    f"(WEBHOOK_INPUT_TOPICS={settings.input_topics})"
                )
    patterns: dict[str, str] = {}
    for mapping in spec.mappings:
        if mapping.pattern is not None:
            text = mapping.pattern.pattern
            if text in patterns:
                raise ConfigError(
                    f"{where}: {mapping.label}: topics: {text!r} is also in {patterns[text]}"
                )
            patterns[text] = mapping.label


def is_input_topic(topic: str, settings: Settings) -> bool:
    inputs = settings.input_topic_list()
    if len(inputs) == 1 and inputs[0].startswith("^"):
        return re.match(inputs[0], topic) is not None
    return topic in inputs
