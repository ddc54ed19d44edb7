"""JsonConfig: the JSON form shared by the typed configs (RankingConfig, RqVaeConfig, RunConfig):
their dataclass fields as a dict, tuples as lists, written with sorted keys."""
import dataclasses
import json


class JsonConfig:
    """Mixin for a dataclass config: to_dict() and to_json()."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
