"""`publish s3` and `verify s3://` against a real S3 server (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from release.build import build_manifest, build_torrents
from release.errors import BadInput, RemoteError
from release.manifest.diff import diff_manifests
from release.manifest.io import ManifestReader
from release.publish.apply import publish
from release.publish.check import verify_bucket
from release.publish.s3 import S3Settings, S3Store
from release.torrents.build import TorrentJob
from release.torrents.plan import TorrentSettings
from tests.conftest import REPO, Dataset, Run
from tests.integration.faultproxy import FaultProxy
from tests.integration.s3server import READER_KEY, READER_SECRET, SECRET_KEY, WEB_BUCKET, S3Server
from tests.integration.swarm import free_port, lt_leech


@pytest.fixture
def env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def store(s3: S3Server, bucket: str, prefix: str = "rel", **settings: Any) -> S3Store:
    return S3Store(S3Settings(bucket=bucket, prefix=prefix, endpoint_url=s3.endpoint, addressing_style="path",
                              workers=8, **settings))  # fmt: skip


def s3_cli(cli: Callable[..., Run], s3: S3Server, *args: object, **env: str) -> Run:
    return cli(*args, "--endpoint-url", s3.endpoint, "--addressing-style", "path", env={**s3.env, **env})


def test_publish_is_incremental_and_a_second_run_sends_nothing(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("incremental")
    first = publish(dataset.root(2017), dataset.manifests[2017], store(env, bucket), name="danbooru")
    assert first.published and first.plan.source == "listing"
    files = first.plan.totals["upload"].objects
    assert first.uploaded + first.unchanged_conflicts == files > 100
    again = store(env, bucket)
    second = publish(dataset.root(2017), dataset.manifests[2017], again, name="danbooru")
    assert second.plan.source == "published manifest" and second.plan.totals["keep"].objects == files
    sent = again.requests.sent  # counted by boto3's own event hooks: what really went on the wire
    assert sent["PutObject"] == 0 and sent["GetObject"] <= 3 and sent["HeadObject"] == 0, sent
    assert sum(sent.values()) <= 8, sent
    # next year, same folder: only new and changed files go up; the changed ones' old bytes are archived
    year = store(env, bucket)
    third = publish(dataset.root(2018), dataset.manifests[2018], year, name="danbooru")
    diff = diff_manifests(dataset.manifests[2017], dataset.manifests[2018])
    assert third.uploaded + third.unchanged_conflicts == diff.totals["added"].files
    assert third.replaced == third.archived == diff.totals["changed"].files > 0
    assert year.requests.sent["GetObject"] <= 3 and year.requests.sent["HeadObject"] == 0
    assert year.requests.sent["PutObject"] == diff.totals["added"].files + diff.totals["changed"].files + 3
    archived = [o.key for o in year.list("rel/.booru-release/danbooru/archive/")]
    assert len(archived) == diff.totals["changed"].files
    check = verify_bucket(store(env, bucket), dataset.manifests[2018], name="danbooru")
    assert check.totals.OK == diff.totals["added"].files + diff.totals["changed"].files + diff.totals["unchanged"].files
    assert not check.failed and check.totals.EXTRA == diff.totals["removed"].files  # takedowns are not deleted


def test_a_versioned_bucket_keeps_old_versions_itself(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("versioned", versioned=True)
    publish(dataset.root(2017), dataset.manifests[2017], store(env, bucket), name="d")
    report = publish(dataset.root(2018), dataset.manifests[2018], store(env, bucket), name="d")
    assert report.versioned and report.replaced > 0 and report.archived == 0
    changed = diff_manifests(dataset.manifests[2017], dataset.manifests[2018]).changed[0]
    versions = env.client().list_object_versions(Bucket=bucket, Prefix=f"rel/d/{changed}")["Versions"]
    assert len(versions) == 2


def test_multipart_objects_and_reconcile(env: S3Server, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "original" / "0001").mkdir(parents=True)
    (root / "original" / "0001" / "1001.zip").write_bytes(os.urandom(11 << 20))  # 3 parts of 5 MiB
    (root / "original" / "0002").mkdir()
    (root / "original" / "0002" / "1002.jpg").write_bytes(b"\xff\xd8\xff small")
    manifest = tmp_path / "m.zst"
    build_manifest(root, manifest, release="big")
    bucket = env.bucket("multipart")
    first = publish(root, manifest, store(env, bucket), part_size=5 << 20)
    assert first.uploaded == 2
    listed = {o.key: o.etag for o in store(env, bucket).list("rel/big/")}
    assert listed["rel/big/original/0001/1001.zip"].endswith("-3")
    again = store(env, bucket)
    assert publish(root, manifest, again, part_size=5 << 20, reconcile=True).plan.totals["keep"].objects == 2
    assert again.requests.sent["PutObject"] == 0 and again.requests.sent["UploadPart"] == 0
    assert not verify_bucket(store(env, bucket), manifest).failed


def test_verify_s3_names_corrupt_missing_and_extra_objects(
    cli: Callable[..., Run], env: S3Server, dataset: Dataset
) -> None:
    bucket = env.bucket("damaged")
    publish(dataset.root(2017), dataset.manifests[2017], store(env, bucket))
    url = f"s3://{bucket}/rel"
    clean = s3_cli(cli, env, "verify", url, "--manifest", dataset.manifests[2017], "--deep", "--sample", "0.2")
    assert clean.code == 0, clean.stdout + clean.stderr
    keys = [o.key for o in store(env, bucket).list("rel/danbooru2017/original/")]
    client = env.client()
    client.put_object(Bucket=bucket, Key=keys[0], Body=b"rotten")
    client.delete_object(Bucket=bucket, Key=keys[1])
    client.put_object(Bucket=bucket, Key="rel/danbooru2017/original/0000/999999000.jpg", Body=b"stranger")
    run = s3_cli(cli, env, "verify", url, "--manifest", dataset.manifests[2017], "--json")
    assert run.code == 1
    report = run.json()
    assert (report["totals"]["CORRUPT"], report["totals"]["MISSING"], report["totals"]["EXTRA"]) == (1, 1, 1)
    assert {p["path"] for p in report["problems"]} == {
        keys[0].removeprefix("rel/danbooru2017/"), keys[1].removeprefix("rel/danbooru2017/"),
        "original/0000/999999000.jpg",
    }  # fmt: skip


def test_dry_run_writes_nothing_and_prices_the_plan(cli: Callable[..., Run], env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("dry")
    args = ("publish", "s3", dataset.root(2017), "--manifest", dataset.manifests[2017], "--bucket", bucket)
    run = s3_cli(cli, env, *args, "--dry-run", "--json")
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["plan"]["totals"]["upload"]["objects"] > 100 and report["plan"]["cost_usd"]["aws"] > 0
    writes = ("PutObject", "CopyObject", "DeleteObject", "UploadPart", "CreateMultipartUpload")
    assert not any(report["requests"].get(op) for op in writes) and report["requests"].get("GetObject", 0) <= 2
    assert list(store(env, bucket).list("")) == []
    human = s3_cli(cli, env, *args, "--dry-run")
    assert "dry run: nothing was sent" in human.stderr and "cost" in human.stderr


def test_delete_never_removes_what_an_older_release_needs(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("deleting")
    publish(dataset.root(2017), dataset.manifests[2017], store(env, bucket), name="d")
    removed = diff_manifests(dataset.manifests[2017], dataset.manifests[2018]).removed
    assert removed
    protected = publish(
        dataset.root(2018), dataset.manifests[2018], store(env, bucket), name="d", delete=True,
        keep={removed[0]}, protect_up_to=None,
    )  # fmt: skip
    assert protected.deleted == len(removed) - 1 == protected.archived - protected.replaced
    keys = {o.key for o in store(env, bucket).list("rel/d/")}
    assert f"rel/d/{removed[0]}" in keys and all(f"rel/d/{p}" not in keys for p in removed[1:])


def manifest_lines(manifest: Path) -> list[str]:
    reader = ManifestReader(manifest)
    return [reader.header.model_dump_json()] + [r.model_dump_json() for r in reader]


def test_credentials_and_bad_buckets_give_clear_errors_without_secrets(
    cli: Callable[..., Run], env: S3Server, dataset: Dataset, tmp_path: Path
) -> None:
    args = ("publish", "s3", dataset.root(2017), "--manifest", dataset.manifests[2017])
    wrong = s3_cli(cli, env, *args, "--bucket", WEB_BUCKET, "--json", AWS_SECRET_ACCESS_KEY="wrong-" + SECRET_KEY)
    assert wrong.code == 2 and "credentials" in wrong.stderr
    missing = s3_cli(cli, env, *args, "--bucket", "no-such-bucket-here", "--json")
    assert missing.code == 2 and "no such bucket" in missing.stderr
    unreachable = cli(*args, "--bucket", "x", "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--retries", "2",
                      env=env.env)  # fmt: skip
    assert unreachable.code == 3 and "cannot reach the endpoint" in unreachable.stderr
    garbage = s3_cli(cli, env, *args[:-2], "--manifest", REPO / "pyproject.toml", "--bucket", WEB_BUCKET)
    assert garbage.code == 2
    lines = manifest_lines(dataset.manifests[2017])
    lines[2] = lines[2].replace('"path":"', '"path":"../', 1)
    traversal = tmp_path / "traversal.jsonl"
    traversal.write_text("\n".join(lines) + "\n")
    unsafe = s3_cli(cli, env, *args[:-2], "--manifest", traversal, "--bucket", WEB_BUCKET)
    assert unsafe.code == 2 and f"{traversal}:3" in unsafe.stderr and "unsafe path" in unsafe.stderr
    bucket = env.bucket("readonly")
    reader = s3_cli(cli, env, *args, "--bucket", bucket, AWS_ACCESS_KEY_ID=READER_KEY,
                    AWS_SECRET_ACCESS_KEY=READER_SECRET)  # fmt: skip
    assert reader.code == 2 and "permissions" in reader.stderr, reader.stderr
    assert [o.key for o in store(env, bucket, prefix="").list("")] == []  # no marker, no object, no manifest
    for run in (wrong, missing, unreachable, garbage, unsafe, reader):
        assert SECRET_KEY not in run.stdout + run.stderr and READER_SECRET not in run.stdout + run.stderr


def test_the_bucket_is_the_web_seed(env: S3Server, dataset: Dataset, tmp_path: Path) -> None:
    env.bucket(WEB_BUCKET)
    publish(dataset.root(2019), dataset.manifests[2019], store(env, WEB_BUCKET, prefix="mirror"), name="d2019")
    settings = TorrentSettings(release="d2019", piece_length=65536, web_seeds=[f"{env.endpoint}/{WEB_BUCKET}/mirror/"])
    report = build_torrents(dataset.root(2019), TorrentJob(settings, tmp_path / "t"))
    torrent = Path(report.shards[0].file)
    result = lt_leech(torrent, tmp_path / "dl")  # no tracker, no peers: the bucket alone, read anonymously
    assert result["downloaded"] >= report.shards[0].bytes
    check = subprocess.run(
        [sys.executable, "-m", "release", "verify", str(tmp_path / "dl" / "d2019"), "--torrent", str(torrent)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert check.returncode == 0, check.stdout


def test_kill_9_mid_publish_then_the_same_command_uploads_only_what_is_left(
    cli: Callable[..., Run], env: S3Server, dataset: Dataset
) -> None:
    bucket = env.bucket("killed")
    args = ["publish", "s3", str(dataset.root(2019)), "--manifest", str(dataset.manifests[2019]), "--bucket", bucket,
            "--addressing-style", "path", "--workers", "1"]  # fmt: skip
    host, port = env.endpoint.removeprefix("http://").split(":")
    # through a slow link (20 ms a request): the killed run cannot finish before the kill, however fast it is
    with FaultProxy((host, int(port)), rate=0.0, delay=0.02) as slow:
        proc = subprocess.Popen(
            [sys.executable, "-m", "release", *args, "--endpoint-url", slow.url], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, **env.env, "PYTHONPATH": str(REPO)}, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while sum(1 for _ in store(env, bucket, prefix="").list("danbooru2019/")) < 50:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    args += ["--endpoint-url", env.endpoint]
    already = sum(1 for _ in store(env, bucket, prefix="").list("danbooru2019/"))
    run = cli(*args, "--json", env=env.env)
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["plan"]["source"] == "listing"  # the marker said the last run did not finish
    assert report["plan"]["totals"]["keep"]["objects"] >= already - 1
    assert report["uploaded"] + report["unchanged_conflicts"] == report["plan"]["totals"]["upload"]["objects"]
    verify = s3_cli(cli, env, "verify", f"s3://{bucket}", "--manifest", dataset.manifests[2019])
    assert verify.code == 0, verify.stdout


def test_faults_are_survived_and_counted(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("faulty")
    host, port = env.endpoint.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), rate=0.2, seed=5, stall=2.0) as proxy:
        flaky = S3Store(S3Settings(bucket=bucket, prefix="rel", endpoint_url=proxy.url, addressing_style="path",
                                   workers=8, read_timeout=1.0, connect_timeout=1.0, max_attempts=12))  # fmt: skip
        report = publish(dataset.root(2017), dataset.manifests[2017], flaky)
    assert report.published and report.retries > 0
    assert all(proxy.counts[fate] > 0 for fate in ("reset", "error500", "slowdown", "stall", "corrupt")), proxy.counts
    check = verify_bucket(store(env, bucket), dataset.manifests[2017], deep=True)
    assert not check.failed and check.totals.OK == report.plan.totals["upload"].objects
    assert json.loads(env.client().get_object(Bucket=bucket, Key="rel/.booru-release/danbooru2017/published.json")[
        "Body"].read())["release"] == "danbooru2017"  # fmt: skip


def test_a_server_without_conditional_writes_is_named_and_can_be_published_to(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("unconditional")
    host, port = env.endpoint.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), rate=0.0, conditional=False) as proxy:
        settings = S3Settings(bucket=bucket, prefix="rel", endpoint_url=proxy.url, addressing_style="path", workers=4)
        with pytest.raises(BadInput) as refused:
            publish(dataset.root(2017), dataset.manifests[2017], S3Store(settings))
        assert "--no-conditional-writes" in (refused.value.hint or "") and "NotImplemented" in refused.value.message
        asked = proxy.counts["conditional"]
        report = publish(dataset.root(2017), dataset.manifests[2017], S3Store(replace(settings, conditional=False)))
    assert report.published and asked > 0 and proxy.counts["conditional"] == asked  # not one conditional PUT more
    check = verify_bucket(store(env, bucket), dataset.manifests[2017])
    assert not check.failed and check.totals.OK == report.plan.totals["upload"].objects


def test_a_file_that_changed_since_the_manifest_is_refused_by_the_server(
    env: S3Server, dataset: Dataset, tree_copy: Callable[[int], Path]
) -> None:
    root = tree_copy(2017)
    victim = next(r for r in ManifestReader(dataset.manifests[2017]) if r.size > 100)
    data = bytearray((root / victim.path).read_bytes())
    data[50] ^= 0xFF  # same size: only the md5 the server checks can tell
    (root / victim.path).write_bytes(bytes(data))
    bucket = env.bucket("changed")
    flaky = store(env, bucket)
    with pytest.raises(RemoteError, match="differs from the manifest"):
        publish(root, dataset.manifests[2017], flaky)
    assert flaky.requests.sent["PutObject"] < flaky.requests.calls["PutObject"] + 2  # not sent ten times
    assert victim.path not in {o.key.split("/", 2)[-1] for o in flaky.list("rel/")}


def test_a_replacement_never_overwrites_what_another_publisher_wrote(env: S3Server, dataset: Dataset) -> None:
    bucket = env.bucket("racing")
    publish(dataset.root(2017), dataset.manifests[2017], store(env, bucket), name="d")
    changed = diff_manifests(dataset.manifests[2017], dataset.manifests[2018]).changed[0]
    env.client().put_object(Bucket=bucket, Key=f"rel/d/{changed}", Body=b"another publisher's bytes")
    with pytest.raises(RemoteError, match="written by someone else"):
        publish(dataset.root(2018), dataset.manifests[2018], store(env, bucket), name="d")  # plans from last time
    body = env.client().get_object(Bucket=bucket, Key=f"rel/d/{changed}")["Body"].read()
    assert body == b"another publisher's bytes"  # If-Match refused the PUT: nothing silently overwritten
    again = publish(dataset.root(2018), dataset.manifests[2018], store(env, bucket), name="d", reconcile=True)
    assert again.published  # a listing sees the bucket as it is, and the publish completes
