"""`booru-release publish s3`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from release.cli import publish_app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, message, out_console
from release.cli.s3_opts import (
    AddressingOpt,
    ChecksumsOpt,
    ConditionalOpt,
    EndpointOpt,
    NameOpt,
    ProcessesOpt,
    ProfileOpt,
    RegionOpt,
    RetriesOpt,
    S3WorkersOpt,
    TimeoutOpt,
    make_store,
)

if TYPE_CHECKING:
    from release.publish.apply import PublishReport


@publish_app.command(
    "s3",
    epilog="""[b]Examples[/b]

  # what would change, what it costs, without touching anything
  booru-release publish s3 danbooru2019 --manifest 2019.jsonl.zst --bucket mirror --dry-run

  booru-release publish s3 danbooru2019 --manifest 2019.jsonl.zst --bucket mirror --prefix releases

  # Cloudflare R2 (credentials from the environment or --profile, never on the command line)
  booru-release publish s3 danbooru2019 --manifest 2019.jsonl.zst --bucket mirror \\
      --endpoint-url https://ACCOUNT.r2.cloudflarestorage.com --region auto

  # a mirror operator checks the bucket from listings alone
  booru-release verify s3://mirror/releases --manifest 2019.jsonl.zst --endpoint-url https://…
""",
)
@command
def s3_cmd(
    root: Annotated[Path, typer.Argument(help="Release root holding the files.")],
    manifest: Annotated[Path, typer.Option(help="The release's manifest (what to publish).")],
    bucket: Annotated[str, typer.Option(help="Bucket name.")],
    prefix: Annotated[str, typer.Option(help="Key prefix: objects are PREFIX/NAME/PATH.")] = "",
    name: NameOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    addressing_style: AddressingOpt = "auto",
    checksums: ChecksumsOpt = "when_required",
    workers: S3WorkersOpt = 32,
    processes: ProcessesOpt = None,
    retries: RetriesOpt = 10,
    timeout: TimeoutOpt = 60.0,
    conditional_writes: ConditionalOpt = True,
    part_size_mib: Annotated[int, typer.Option("--part-size-mib", help="Multipart above this, in parts of it.")] = 64,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan: counts, bytes, requests, cost.")] = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="Also delete objects the manifest lacks (old versions are kept).")
    ] = False,
    keep: Annotated[
        list[Path] | None, typer.Option(help="With --delete: never delete what this older manifest lists.")
    ] = None,
    price_table: Annotated[
        Path | None, typer.Option(help="JSON prices for the --dry-run estimate (default: AWS S3 Standard and R2).")
    ] = None,
    reconcile: Annotated[
        bool, typer.Option("--reconcile", help="Plan from a listing, not from the last published manifest.")
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Publish a release to an S3-compatible bucket: only what changed, nothing overwritten without keeping it.

    The plan is the diff against the manifest published last time (kept in the bucket); the first publish,
    --reconcile, or a run after a crash plans from a listing (one request per 1,000 objects). Objects are
    PREFIX/NAME/PATH, so the bucket is the web seed (`torrents build --web-seed URL/PREFIX/`) of the torrents.
    Ctrl-C or a crash: run the same command again; it uploads only what is left.
    """
    from release.manifest.io import ManifestReader
    from release.publish.apply import publish
    from release.publish.plan import load_prices
    from release.releases import CATALOGUE, load_release

    store = make_store(
        bucket, prefix, endpoint_url, profile, region, addressing_style, checksums, workers, retries, timeout,
        processes, conditional_writes,
    )  # fmt: skip
    kept = {r.path for older in keep or [] for r in ManifestReader(older)}
    # --delete never removes an image a published release may need for `reconstruct`
    protect = max((load_release(p).final_id for p in CATALOGUE.glob("*.toml")), default=None) if delete else None
    with ProgressView(not json_out) as view:
        report = publish(
            root, manifest, store, name=name, dry_run=dry_run, delete=delete, reconcile=reconcile, keep=kept,
            protect_up_to=protect, part_size=part_size_mib << 20,
            prices=load_prices(price_table) if price_table else None, progress=view,
        )  # fmt: skip
    if json_out:
        emit_json(report)
    else:
        _print(report)
    return 0


def _print(report: PublishReport) -> None:
    plan = report.plan
    table = Table("", "objects", "bytes")
    for kind, totals in plan.totals.items():
        table.add_row(kind, f"{totals.objects:,}", human_bytes(totals.bytes))
    out_console().print(table)
    where = f"s3://{report.bucket}/{'/'.join(p for p in (report.prefix, report.name) if p)}/"
    kept = "on: the bucket keeps old versions" if report.versioned else "off: old objects are copied to the archive"
    message(f"planned from the {plan.source} ({plan.remote_objects:,} objects in the bucket); versioning {kept}")
    requests = ", ".join(f"{k} {v:,}" for k, v in plan.requests.items())
    costs = ", ".join(f"{k} ${v:,.4f}" for k, v in plan.cost_usd.items())
    message(f"requests (estimated): {requests}; cost (requests + a month of storage): {costs}")
    if report.dry_run:
        message(f"dry run: nothing was sent to {where}")
        return
    sent = ", ".join(f"{k} {v:,}" for k, v in sorted(report.requests.items()))
    message(f"requests sent: {sent or 'none'} ({report.retries:,} retries)")
    message(
        f"[green]published[/] {where}: {report.uploaded:,} uploaded, {report.replaced:,} replaced, "
        f"{report.deleted:,} deleted, {human_bytes(report.bytes_sent)} sent"
    )
