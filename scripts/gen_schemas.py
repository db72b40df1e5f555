"""Regenerate manifests/schema/*.schema.json from the pydantic models (tests check they match)."""

from __future__ import annotations

import json
from pathlib import Path

from release.models import SCHEMAS

OUT = Path(__file__).resolve().parents[1] / "manifests" / "schema"

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, model in sorted(SCHEMAS.items()):
        path = OUT / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        print(path)
