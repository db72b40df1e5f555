"""`cut --publish` against a real S3 server: the release goes up once, and a second cut sends nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from release.cut.releasefile import load_release_file
from release.cut.run import run_cut
from release.publish.check import verify_bucket
from release.publish.s3 import S3Settings, S3Store
from tests.cli.test_cut import ALLOW
from tests.conftest import Dataset
from tests.integration.s3server import S3Server
from tests.integration.test_publish import env  # noqa: F401  # the fixture: credentials in the environment


def test_cut_publishes_when_asked_and_only_once(env: S3Server, dataset: Dataset, tmp_path: Path) -> None:  # noqa: F811
    bucket = env.bucket("cut")
    shutil.copytree(dataset.root(2017), tmp_path / "root", copy_function=shutil.copy2)
    path = tmp_path / "danbooru2017.toml"
    path.write_text(
        "\n".join([
            'name = "danbooru2017"', "year = 2017", 'root = "root"', 'output = "out"',
            f"scan_allow = {json.dumps(ALLOW)}", "[torrents]", "creation_date = 1577836800",
            "[[publish.s3]]", f'bucket = "{bucket}"', 'prefix = "mirror"', f'endpoint_url = "{env.endpoint}"',
            'addressing_style = "path"',
        ]) + "\n"
    )  # fmt: skip
    loaded = load_release_file(path)
    first = run_cut(loaded)
    assert next(s for s in first.steps if s.name == "publish").status == "not wanted"
    published = run_cut(loaded, publish=True)
    ran = [s.name for s in published.steps if s.status == "done" and s.reason != "finished earlier"]
    assert ran == ["publish"]  # everything else was done: asking to publish reruns nothing else
    summary = next(s for s in published.steps if s.name == "publish").summary
    assert summary[f"s3://{bucket}/mirror"]["uploaded"] > 100
    store = S3Store(S3Settings(bucket=bucket, prefix="mirror", endpoint_url=env.endpoint, addressing_style="path"))
    check = verify_bucket(store, tmp_path / "out" / "danbooru2017.manifest.jsonl.zst", name="danbooru2017")
    assert not check.failed and check.totals.OK > 100 and check.totals.MISSING == 0
    again = run_cut(loaded, publish=True)
    assert all(s.reason == "finished earlier" or s.status == "not wanted" for s in again.steps)
